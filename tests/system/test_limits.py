"""test_limits.py - a queue's operator limits against real workers and the
real api: a rate limit holds under 4 workers (the measured start rate within
5 % of the limit), a concurrency cap is never exceeded (the running count
sampled every few ms) and is reached, so is a cap on one job type while
other types pass its waiting jobs, and PUT /v1/queues/{q}/limits answers
and refuses as documented (docs/limits.md).
"""
import json
import time
import unittest

import harness
from harness import http, scaled, start_api, wait_for
from test_worker import WorkerCase


class LimitsTest(WorkerCase):

    def setUp(self):
        super().setUp()
        self.api, self.base = start_api(self.url)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.api.terminate(timeout=30)
            self.api.stop()

    def put_limits(self, body, queue="default"):
        st, _, out = http("PUT", self.base + "/v1/queues/%s/limits" % queue, json.dumps(body),
                          {"Content-Type": "application/json"})
        return st, out

    def queue(self, name="default"):
        st, _, body = http("GET", self.base + "/v1/queues")
        self.assertEqual(st, 200)
        return [q for q in body["queues"] if q["name"] == name][0]

    def test_rate_limit_holds_under_four_workers(self):
        rate, per_s = 40, 1.0
        window = max(6.0, 30.0 * harness.scale())
        n = int(rate * (window + 10)) + 200
        self.submit({"type": "echo", "payload": 1}, n=n)
        st, q = self.put_limits({"rate": {"n": rate, "per_s": per_s}})
        self.assertEqual(st, 200, q)
        self.assertEqual(q["limits"]["rate"]["n"], rate)
        workers = [self.start_worker(concurrency=4) for _ in range(4)]
        # past the first burst (a full bucket), then one window
        wait_for(lambda: self.stats()["succeeded"] >= rate * 2, timeout=30, interval=0.05,
                 what="the first burst and a second of work")
        t0, s0 = time.monotonic(), self.stats()["succeeded"]
        time.sleep(window)  # the measurement window itself, not a wait for a condition
        t1, s1 = time.monotonic(), self.stats()["succeeded"]
        measured = (s1 - s0) / (t1 - t0)
        print("\nrate limit %d/s: measured %.2f/s over %.1f s" % (rate / per_s, measured, t1 - t0))
        self.assertLess(abs(measured - rate / per_s) / (rate / per_s), 0.05,
                        "measured %.2f jobs/s against a limit of %d/s" % (measured, rate))
        throttled = sum(self.metric(w, 'jobmill_worker_claims_throttled_total{queue="default"}')
                        for w in workers)
        self.assertGreater(throttled, 0)

    def test_concurrency_cap_is_never_exceeded(self):
        cap = 3
        n = scaled(150, minimum=40)
        self.submit({"type": "sleep", "payload": {"ms": 20}}, n=n)
        st, q = self.put_limits({"concurrency": cap})
        self.assertEqual((st, q["limits"]["concurrency"]), (200, cap), q)
        # paused while the workers start, so the sampling below sees the whole run
        self.assertEqual(http("POST", self.base + "/v1/queues/default/pause")[0], 200)
        for _ in range(4):
            self.start_worker(concurrency=4)
        self.assertEqual(http("POST", self.base + "/v1/queues/default/resume")[0], 200)
        # the exact running count, read straight from Redis every few ms
        counts = self.redis.cmd("KEYS", "*:q:default:counts")[0]
        client = self.redis.client()
        peak, samples = 0, 0
        deadline = time.monotonic() + 120
        while int(client("HGET", counts, "succeeded") or 0) < n and time.monotonic() < deadline:
            running = int(client("HGET", counts, "running") or 0)
            peak = max(peak, running)
            samples += 1
            self.assertLessEqual(running, cap, "running %d with a cap of %d" % (running, cap))
            time.sleep(0.002)
        client.close()
        self.assertEqual(self.stats()["succeeded"], n)
        self.assertEqual(peak, cap, "the cap is reached, so the check could fail")
        print("\nconcurrency cap %d: peak %d over %d samples" % (cap, peak, samples))

    def test_type_cap_is_never_exceeded_while_other_types_run(self):
        cap = 2
        n_sleep, n_echo = scaled(60, minimum=20), scaled(200, minimum=50)
        self.submit({"type": "sleep", "payload": {"ms": 20}}, n=n_sleep)
        self.submit({"type": "echo", "payload": 1}, n=n_echo)
        st, q = self.put_limits({"types": {"sleep": {"concurrency": cap}}})
        self.assertEqual(st, 200, q)
        self.assertEqual(q["limits"]["types"], {"sleep": {"concurrency": cap, "running": 0}})
        # paused while the workers start, so the sampling below sees the whole run
        self.assertEqual(http("POST", self.base + "/v1/queues/default/pause")[0], 200)
        for _ in range(3):
            self.start_worker(concurrency=4)
        self.assertEqual(http("POST", self.base + "/v1/queues/default/resume")[0], 200)
        # the running jobs of the type, read straight from Redis every few ms
        counts = self.redis.cmd("KEYS", "*:q:default:counts")[0]
        active = counts[:-len("counts")] + "active"
        client = self.redis.client()
        peak, samples, echo_done_early = 0, 0, False
        deadline = time.monotonic() + 120

        def count(state):
            return int(client("HGET", counts, state) or 0)
        while count("succeeded") < n_sleep + n_echo and time.monotonic() < deadline:
            ids = client("ZRANGE", active, 0, -1) or []
            running = 0
            for i in ids:
                key = "%s{%s}:job:%s" % (active.split("{")[0], i[:4], i)
                if client("HGET", key, "type") == "sleep" and client("HGET", key, "status") == "running":
                    running += 1
            peak = max(peak, running)
            samples += 1
            self.assertLessEqual(running, cap, "%d sleeps running with a cap of %d" % (running, cap))
            if count("succeeded") >= n_echo and count("queued") > 0:
                echo_done_early = True  # other types passed the waiting capped jobs
            time.sleep(0.002)
        client.close()
        self.assertEqual(self.stats()["succeeded"], n_sleep + n_echo)
        self.assertEqual(peak, cap, "the cap is reached, so the check could fail")
        self.assertTrue(echo_done_early, "the uncapped jobs did not wait for the capped ones")
        print("\ntype cap %d: peak %d over %d samples" % (cap, peak, samples))
        st, q = self.put_limits({"types": {"sleep": None}})
        self.assertEqual((st, q["limits"]["types"]), (200, {}))
        for bad in ({"types": {"bad type": {"concurrency": 1}}}, {"types": {"x": {"concurrency": 0}}},
                    {"types": {"x": 3}}, {"types": []}):
            st, body = self.put_limits(bad)
            self.assertEqual((st, body["error"]["field"]), (400, "types"), body)

    def test_put_limits_answers_and_refuses(self):
        self.submit({"type": "echo"}, n=1)
        st, q = self.put_limits({"rate": {"n": 10, "per_s": 2}, "concurrency": 5})
        self.assertEqual(st, 200, q)
        self.assertEqual(q["limits"]["rate"]["n"], 10)
        self.assertEqual(q["limits"]["rate"]["per_s"], 2.0)
        self.assertEqual(q["limits"]["concurrency"], 5)
        self.assertEqual(self.queue()["limits"]["concurrency"], 5)
        st, q = self.put_limits({"rate": None})  # clears the rate, keeps the cap
        self.assertEqual((st, q["limits"]["rate"], q["limits"]["concurrency"]), (200, None, 5))
        st, q = self.put_limits({"concurrency": None})
        self.assertEqual((st, q["limits"]), (200, {"rate": None, "concurrency": None,
                                                    "types": {}}))
        for bad, field in (({"rate": {"n": 0, "per_s": 1}}, "rate.n"),
                           ({"rate": {"n": 5, "per_s": 0}}, "rate.per_s"),
                           ({"rate": 5}, "rate.n"),
                           ({"concurrency": -1}, "concurrency"),
                           ({"concurrency": "3"}, "concurrency")):
            st, body = self.put_limits(bad)
            self.assertEqual(st, 400, bad)
            self.assertEqual(body["error"]["field"], field, body)
        st, body = self.put_limits({"concurrency": 2}, queue="never-used")
        self.assertEqual(st, 404, body)
        st, _, body = http("PUT", self.base + "/v1/queues/default/limits", "[]",
                           {"Content-Type": "application/json"})
        self.assertEqual(st, 400, body)


if __name__ == "__main__":
    unittest.main()
