"""test_worker_load.py - 4 workers x concurrency 8 over scaled(20000) jobs:
every job succeeds exactly once (one attempt each, one committed outcome
each, counted once across all workers), with only a handful of Redis
connections per worker whatever its concurrency.
"""
import time
import unittest

from harness import scaled, wait_for
from test_worker import WorkerCase

WORKERS = 4
CONCURRENCY = 8


class LoadTest(WorkerCase):

    def test_many_jobs_exactly_once(self):
        n = scaled(20000, minimum=500)
        workers = [self.start_worker(concurrency=CONCURRENCY, lease_ms=10000,
                                     heartbeat_ms=1000)
                   for _ in range(WORKERS)]
        t0 = time.monotonic()
        ids = self.submit({"type": "echo", "payload": {"n": 1}}, n=n)
        self.assertEqual(len(set(ids)), n)

        def done():
            s = self.stats()
            return s["succeeded"] == n and s["running"] == 0 and s["queued"] == 0
        wait_for(done, timeout=max(120, n / 50), interval=0.2, what="%d jobs done" % n)
        elapsed = time.monotonic() - t0
        s = self.stats()
        self.assertEqual((s["succeeded"], s["failed"], s["scheduled"]), (n, 0, 0))
        jobs = self.get_many(ids)
        self.assertEqual(len(jobs), n)
        bad = [j for j in jobs if j["status"] != "succeeded" or j["attempts"] != 1
               or j["result"] != {"n": 1}]
        self.assertEqual(bad[:3], [])
        by_worker = {}
        for j in jobs:
            by_worker[j["worker"]] = by_worker.get(j["worker"], 0) + 1
        counted = [self.metric(w, 'jobmill_jobs_finished_total{queue="default",status="succeeded"}')
                   for w in workers]
        self.assertEqual(sum(counted), n)
        self.assertEqual(sorted(by_worker.values()), sorted(int(c) for c in counted))
        self.assertEqual(sum(self.metric(w, "jobmill_worker_leases_lost_total")
                             for w in workers), 0)
        # Three connections per worker (claim, heartbeat, outcomes), plus
        # this INFO's own.
        info = self.redis.cmd("INFO", "clients")
        connected = int(dict(line.split(":", 1) for line in info.split("\r\n")
                             if ":" in line)["connected_clients"])
        self.assertLessEqual(connected, WORKERS * 3 + 1, info)
        for w in workers:
            self.assertEqual(w.terminate(), 0)
        print("\n%d jobs in %.1f s (%.0f jobs/s)" % (n, elapsed, n / elapsed))


if __name__ == "__main__":
    unittest.main()
