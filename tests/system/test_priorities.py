"""test_priorities.py - priorities within a queue through the real api and a
real worker (docs/priorities.md): a backlog submitted over HTTP before any
worker runs, then run by one worker slot, goes priority 9 down to 0 and first come
first served within each level; the job object shows the priority; an
out-of-range priority is refused naming the field, storing nothing.
"""
import json
import random
import unittest

from harness import http, start_api, wait_for
from test_worker import WorkerCase


class PrioritiesTest(WorkerCase):

    def setUp(self):
        super().setUp()
        self.api, self.base = start_api(self.url)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.api.terminate(timeout=30)
            self.api.stop()

    def post(self, path, body):
        return http("POST", self.base + path, json.dumps(body),
                    {"Content-Type": "application/json"})

    def test_backlog_runs_by_priority_then_fifo(self):
        rng = random.Random(18)
        prios = [rng.choice([0, 0, 1, 5, 5, 9]) for _ in range(60)]
        ids = []
        for i, p in enumerate(prios):
            body = {"type": "echo", "payload": i}
            if p or i % 2:  # priority 0 both given and left out
                body["priority"] = p
            if i % 10 == 0:  # some through the batch route
                st, _, out = self.post("/v1/jobs/batch", {"jobs": [body]})
                self.assertEqual(st, 201, out)
                job = out["jobs"][0]
            else:
                st, _, job = self.post("/v1/jobs", body)
                self.assertEqual(st, 201, job)
            self.assertEqual(job["priority"], p)
            ids.append(job["id"])
        st, _, got = http("GET", self.base + "/v1/jobs/" + ids[1])
        self.assertEqual(got["priority"], prios[1])
        self.start_worker(concurrency=1)  # the whole backlog waits before the first claim
        wait_for(lambda: self.stats()["succeeded"] == len(ids), timeout=30,
                 what="every job to finish")
        jobs = self.get_many(ids)
        # fences grow with every claim in a queue: the exact claim order
        started = sorted(range(len(ids)), key=lambda i: jobs[i]["fence"])
        want = sorted(range(len(ids)), key=lambda i: (-prios[i], i))
        self.assertEqual([prios[i] for i in started], [prios[i] for i in want])
        for p in set(prios):
            level = [i for i in started if prios[i] == p]
            self.assertEqual(level, sorted(level), "FIFO within priority %d" % p)

    def test_out_of_range_priority_is_refused(self):
        for bad in (10, -1, 2.5, "high", True):
            st, _, out = self.post("/v1/jobs", {"type": "echo", "priority": bad})
            self.assertEqual(st, 400, out)
            self.assertEqual(out["error"]["field"], "priority", out)
        st, _, out = self.post("/v1/jobs/batch", {"jobs": [{"type": "echo"},
                                                           {"type": "echo", "priority": 11}]})
        self.assertEqual(st, 400, out)
        self.assertEqual(out["error"]["field"], "jobs[1].priority", out)
        self.assertEqual(self.stats().get("queued", 0), 0)


if __name__ == "__main__":
    unittest.main()
