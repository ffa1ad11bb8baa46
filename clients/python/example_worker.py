#!/usr/bin/env python3
"""example_worker.py - a runnable jobmill worker in Python over HTTP.

It serves the types the C worker has built in, with the same payloads and
results, so it can share a queue with C workers:

  echo   result = payload
  sleep  payload {"ms": N}: waits N ms (reporting progress and log lines), stops early on a
         cancel request
  fail   payload {"message": "...", "permanent": bool}: fails the attempt

plus "wordcount" (payload {"text": "..."}: result {"words": N}) as an
example of your own handler.

  python3 clients/python/example_worker.py --url http://127.0.0.1:8080 \\
      --queues default --concurrency 4

SIGTERM or Ctrl-C stops claiming, lets the jobs in flight finish and exits 0.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobmill  # noqa: E402


def build(args):
    w = jobmill.Worker(args.url, queues=args.queues.split(","), concurrency=args.concurrency,
                       worker_id=args.worker_id, token=args.token, lease_ms=args.lease_ms,
                       wait_s=args.wait_s, grace_s=args.grace_s)

    @w.handler("echo")
    def echo(job):
        return job.payload

    @w.handler("sleep")
    def sleep(job):
        p = job.payload if isinstance(job.payload, dict) else {}
        ms = p.get("ms")
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 604800000:
            raise jobmill.PermanentError('sleep: payload must be {"ms": N} with 0 <= N <= 604800000')
        end = time.monotonic() + ms / 1000.0
        last = -1
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            if job.should_stop():
                raise RuntimeError("stopped: cancel requested or lease lost")
            pct = int(100 * (1 - left / (ms / 1000.0))) if ms else 100
            if pct // 25 != last:
                last = pct // 25
                job.progress(pct, "sleeping")
                job.log("%d%% done" % pct)
            time.sleep(min(left, 0.05))

    @w.handler("fail")
    def fail(job):
        p = job.payload if isinstance(job.payload, dict) else {}
        msg = p.get("message") if isinstance(p.get("message"), str) else "fail: requested failure"
        if p.get("permanent") is True:
            raise jobmill.PermanentError(msg)
        raise RuntimeError(msg)

    @w.handler("wordcount")
    def wordcount(job):
        text = (job.payload or {}).get("text", "") if isinstance(job.payload, dict) else ""
        return {"words": len(str(text).split())}

    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("JOBMILL_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--token", default=os.environ.get("JOBMILL_TOKEN"))
    ap.add_argument("--queues", default=os.environ.get("JOBMILL_QUEUES", "default"))
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--worker-id", default=None)
    ap.add_argument("--lease-ms", type=int, default=None)
    ap.add_argument("--wait-s", type=float, default=10.0)
    ap.add_argument("--grace-s", type=float, default=25.0)
    return build(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
