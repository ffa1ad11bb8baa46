#!/usr/bin/python3
"""rq_bench.py - RQ's side of bench/run. Needs Debian's python3-rq (RQ 1.13,
redis-py), so it runs under /usr/bin/python3. Env: REDIS_URL, BENCH_LOGDIR and
the BENCH_* sizes of benchlib.py. Prints "RESULT {json}".

RQ has no concurrency inside a worker process: we run BENCH_PROCS
SimpleWorker processes (in-process execution; RQ's default Worker forks a
child per job, which RQ's own docs put at several times slower).
"""
import os
import sys
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (BULK, CLIENTS, EWD_BATCH, LAT, M, N, PACED_N, PACED_RATE,  # noqa: E402
                      PROCESS_TIMEOUT, PROCS, REDIS_URL, WARM, emit, env_int, latency_summary,
                      lifecycle, log, paced, pct, proc_cpu_s, rate, redis_counters, spawn,
                      stop_all, wait_until)

# RQ drains under 1,000 jobs/s here: it gets a smaller N (said in its result)
N = env_int("BENCH_RQ_N", min(N, 5000))


def redis_cpu(conn):
    i = conn.info("cpu")
    return float(i["used_cpu_user"]) + float(i["used_cpu_sys"])

import redis  # noqa: E402
import rq  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402
from rq.registry import FinishedJobRegistry  # noqa: E402
from rq_jobs import noop  # noqa: E402

LOGDIR = os.environ.get("BENCH_LOGDIR", "/tmp")
procs = []


def ts(s):
    """RQ's timestamps: '%Y-%m-%dT%H:%M:%S.%fZ' in UTC."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def enqueue_single(conn):
    q = Queue("bench-single", connection=conn)
    per = [M // CLIENTS + (1 if i < M % CLIENTS else 0) for i in range(CLIENTS)]
    errors = []

    def client(n):
        try:
            for _ in range(n):
                q.enqueue(noop)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    threads = [threading.Thread(target=client, args=(n,)) for n in per]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        return {"error": errors[0]}
    return rate(M, dt, "Queue.enqueue, %d threads in one process sharing a redis-py pool"
                % CLIENTS, clients=CLIENTS)


def enqueue_bulk(conn):
    q = Queue("bench", connection=conn)
    t0 = time.perf_counter()
    done = 0
    while done < N:
        n = min(BULK, N - done)
        q.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])
        done += n
    dt = time.perf_counter() - t0
    return rate(N, dt, "Queue.enqueue_many (one MULTI/EXEC pipeline) with %d jobs per call, "
                "1 client" % BULK, per_call=BULK)


def start_workers():
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    for i in range(PROCS):
        procs.append(spawn(["/usr/bin/python3", "-m", "rq.cli", "worker", "-u", REDIS_URL,
                            "-w", "rq.worker.SimpleWorker", "--path", HERE,
                            "--logging_level", "WARNING", "--disable-job-desc-logging",
                            "-n", "bench-%d-%d" % (os.getpid(), i), "bench"],
                           os.path.join(LOGDIR, "rq-worker-%d.log" % i), env=env))


def ended(conn, ids):
    pipe = conn.pipeline(transaction=False)
    for jid in ids:
        pipe.hget("rq:job:" + jid, "ended_at")
    return [ts(v.decode()) for v in pipe.execute() if v]


def process(conn, after):
    """Drains the N stored jobs; after receives the Redis counters taken when
    the last job is seen done (before the job hashes are read)."""
    q = Queue("bench", connection=conn)
    reg = FinishedJobRegistry(queue=q)
    cpu0 = redis_cpu(conn)
    t0 = time.perf_counter()
    start_workers()
    done = wait_until(lambda: reg.count >= N, PROCESS_TIMEOUT, interval=0.05)
    wall = time.perf_counter() - t0
    after.update(redis_counters(REDIS_URL))
    cpu = after["cpu_s"] - cpu0
    wcpu = proc_cpu_s(p.pid for p in procs)
    ends = ended(conn, reg.get_job_ids())
    if not ends:
        return {"error": "no job finished within %ds" % PROCESS_TIMEOUT}
    span = max(ends) - min(ends)
    out = rate(len(ends), span, "jobs queued before the workers start; first to last ended_at "
               "of the job hashes (microseconds); %d SimpleWorker processes (RQ has no "
               "in-process concurrency)" % PROCS, wall_s=wall, complete=bool(done),
               redis_cpu_us_per_job=cpu * 1e6 / len(ends),
               worker_cpu_us_per_job_incl_startup=wcpu * 1e6 / len(ends))
    if not done:
        out["note"] = "only %d of %d finished within %ds" % (len(ends), N, PROCESS_TIMEOUT)
    return out


def enqueue_while_draining(conn):
    """Workers running and idle; one producer enqueue_many's N jobs in batches
    of EWD_BATCH as fast as it can; rate = N / (first submit to last ended_at)."""
    q = Queue("bench", connection=conn)
    reg = FinishedJobRegistry(queue=q)
    base = reg.count
    c0, w0 = redis_counters(REDIS_URL), proc_cpu_s(p.pid for p in procs)
    t_start = time.time()
    t0 = time.perf_counter()
    ids = []
    while len(ids) < N:
        n = min(EWD_BATCH, N - len(ids))
        ids.extend(j.id for j in q.enqueue_many([Queue.prepare_data(noop) for _ in range(n)]))
    t_prod = time.perf_counter() - t0
    done = wait_until(lambda: reg.count >= base + N, PROCESS_TIMEOUT, interval=0.02)
    c1, w1 = redis_counters(REDIS_URL), proc_cpu_s(p.pid for p in procs)
    ends = ended(conn, ids)
    if not ends:
        return {"error": "no job finished within %ds" % PROCESS_TIMEOUT}
    return rate(len(ends), max(ends) - t_start,
                "workers already running and idle; 1 producer calls Queue.enqueue_many with %d "
                "jobs at a time, as fast as it can; rate = jobs / (first submit to last ended_at)"
                % EWD_BATCH, complete=bool(done), producer_rate=N / t_prod,
                worker_cpu_us_per_job=(w1 - w0) * 1e6 / len(ends),
                worker_cpu_how="utime+stime of the %d rq worker processes (/proc/PID/stat) over "
                               "this phase / jobs" % len(procs),
                redis_cpu_us_per_job=(c1["cpu_s"] - c0["cpu_s"]) * 1e6 / len(ends),
                redis_commands_per_job=(c1["commands"] - c0["commands"]) / len(ends))


def paced_latency(conn):
    """Idle workers; PACED_N enqueues at PACED_RATE/s; submit-to-start =
    started_at - enqueued_at of the job hashes (RQ stamps microseconds)."""
    q = Queue("bench", connection=conn)
    ids = []
    achieved = paced(PACED_N, PACED_RATE, lambda _i: ids.append(q.enqueue(noop).id))

    def rows():
        pipe = conn.pipeline(transaction=False)
        for jid in ids:
            pipe.hmget("rq:job:" + jid, "enqueued_at", "started_at")
        return pipe.execute()
    r = wait_until(lambda: (lambda x: x if all(v[1] for v in x) else None)(rows()), 30)
    d = sorted((ts(v[1].decode()) - ts(v[0].decode())) * 1000 for v in (r or rows()) if v[1])
    if not d:
        return {"error": "no paced job started"}
    return {"samples": len(d), "p50_ms": pct(d, 50), "p95_ms": pct(d, 95), "p99_ms": pct(d, 99),
            "max_ms": d[-1], "mean_ms": sum(d) / len(d), "rate": achieved, "resolution_ms": 0.001,
            "how": "%d Queue.enqueue at %d/s from one thread; started_at - enqueued_at of the "
                   "job hashes (RQ stamps microseconds)" % (len(d), PACED_RATE)}


def latency(conn):
    q = Queue("bench", connection=conn)
    client, server = [], []
    for i in range(WARM + LAT):
        t0 = time.perf_counter()
        job = q.enqueue(noop)
        deadline = time.monotonic() + 5
        st = None
        while time.monotonic() < deadline:
            st = job.get_status(refresh=True)
            if st in (JobStatus.FINISHED, JobStatus.FAILED):
                break
            time.sleep(0.001)
        dt = (time.perf_counter() - t0) * 1000
        if st != JobStatus.FINISHED:
            return {"error": "job %s: %s after 5 s" % (job.id, st)}
        if i >= WARM:
            client.append(dt)
            j = Job.fetch(job.id, connection=conn)
            server.append((j.ended_at.replace(tzinfo=timezone.utc).timestamp()
                           - j.enqueued_at.replace(tzinfo=timezone.utc).timestamp()) * 1000)
    s = sorted(server)
    return latency_summary(
        client, "Queue.enqueue, then Job.get_status(refresh=True) polled every 1 ms (RQ 1.13 "
        "has no blocking wait for a result); client wall time; %d warm-up jobs not counted"
        % WARM, server_p50_ms=s[len(s) // 2], server_how="ended_at - enqueued_at of the job")


def main():
    res = {"system": "rq", "version": rq.__version__,
           "client": "redis-py %s" % redis.__version__,
           "setup": "%d rq SimpleWorker processes x 1 (RQ has no in-process concurrency)"
                    % PROCS,
           "notes": ["RQ 1.13 runs one job at a time per worker process; we use %d "
                     "processes, not %d x 8 slots" % (PROCS, PROCS),
                     "SimpleWorker (no fork per job); RQ's default Worker forks per job",
                     "bulk enqueue, drain and enqueue while draining use N=%d (BENCH_RQ_N): "
                     "RQ drains under 1,000 jobs/s here" % N]}
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        log("warm-up (untimed)")
        warm = Queue("bench-warm", connection=conn)
        for _ in range(200):
            warm.enqueue(noop)
        warm.enqueue_many([Queue.prepare_data(noop) for _ in range(BULK)])
        log("single enqueue", M)
        res["enqueue_single"] = enqueue_single(conn)
        log("bulk enqueue", N)
        c0 = redis_counters(REDIS_URL)
        res["enqueue_bulk"] = enqueue_bulk(conn)
        c1 = redis_counters(REDIS_URL)
        log("processing", N)
        c2 = {}
        res["process"] = process(conn, c2)
        res["lifecycle"] = lifecycle(
            c0, c1, c2, N, "INFO cpu / total_commands_processed over enqueue_many and the "
            "drain, divided by N; used_memory after the enqueue minus before, divided by N")
        log("enqueue while draining", N)
        res["enqueue_while_draining"] = enqueue_while_draining(conn)
        log("paced latency", PACED_N, "at", PACED_RATE, "/s")
        res["paced_latency"] = paced_latency(conn)
        log("latency", LAT)
        res["latency"] = latency(conn)
    except Exception as e:  # noqa: BLE001
        res["error"] = repr(e)
    finally:
        stop_all(procs)
    emit(res)


if __name__ == "__main__":
    main()
