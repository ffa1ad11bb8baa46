"""rq_jobs.py - the no-op job function the RQ workers of bench/run import."""


def noop():
    return None
