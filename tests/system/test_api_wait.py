"""test_api_wait.py - GET /v1/jobs/{id}?wait=S long-polls.

The api wakes waiting requests from one pub/sub subscriber thread. These
tests complete jobs through jm_testctl while a wait is pending and measure
how soon the waiting request answers; they wait for the waiter to be
registered by watching the jobmill_api_long_polls gauge (no fixed sleeps).
"""
import re
import threading
import time
import unittest

import harness
from harness import claim_one, http, start_api, testctl, wait_for


class Waiter(threading.Thread):
    """Runs one GET ?wait in the background and records when it answered."""

    def __init__(self, url, timeout=90.0):
        super().__init__(daemon=True)
        self.url, self.timeout = url, timeout
        self.result = self.error = self.answered_at = None

    def run(self):
        try:
            self.result = http("GET", self.url, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.answered_at = time.monotonic()


class WaitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer(appendonly=True)
        try:
            cls.api, cls.base = start_api(cls.redis.url, env={"JOBMILL_MAX_WAITERS": "3"})
        except BaseException:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        harness.stop_api(cls.api, cls.redis)

    def submit(self, queue, **extra):
        body = {"queue": queue, "type": "t"}
        body.update(extra)
        st, _, job = http("POST", self.base + "/v1/jobs", body)
        self.assertEqual(st, 201, job)
        return job

    def long_polls(self):
        st, _, text = http("GET", self.base + "/metrics", raw=True)
        m = re.search(r"^jobmill_api_long_polls (\S+)$", text, re.M)
        return float(m.group(1)) if m else -1

    def start_waiter(self, job_id, wait_s, expect_polls):
        w = Waiter(self.base + "/v1/jobs/%s?wait=%s" % (job_id, wait_s))
        w.start()
        wait_for(lambda: self.long_polls() >= expect_polls, timeout=10,
                 what="%d long-polls registered" % expect_polls)
        return w

    def test_wait_answers_within_a_second_of_completion(self):
        job = self.submit("w-done")
        w = self.start_waiter(job["id"], 30, 1)
        jid, fence = claim_one(self.redis.url, "w-done")
        testctl(self.redis.url, "complete", jid, fence, '{"r": 42}')
        completed_at = time.monotonic()
        w.join(30)
        self.assertIsNone(w.error)
        st, _, body = w.result
        self.assertEqual(st, 200, body)
        self.assertEqual((body["status"], body["result"]), ("succeeded", {"r": 42}))
        self.assertLess(w.answered_at - completed_at, 1.0)
        wait_for(lambda: self.long_polls() == 0, timeout=10, what="the waiter unregistered")

    def test_wait_wakes_on_cancel_and_failure(self):
        a = self.submit("w-term")
        w = self.start_waiter(a["id"], 30, 1)
        http("POST", self.base + "/v1/jobs/%s/cancel" % a["id"])
        w.join(10)
        self.assertEqual(w.result[2]["status"], "canceled")
        b = self.submit("w-term2", max_attempts=1)
        w = self.start_waiter(b["id"], 30, 1)
        jid, fence = claim_one(self.redis.url, "w-term2")
        testctl(self.redis.url, "fail", jid, fence, "nope", "permanent")
        failed_at = time.monotonic()
        w.join(10)
        self.assertEqual(w.result[2]["status"], "failed")
        self.assertLess(w.answered_at - failed_at, 1.0)

    def test_wait_times_out_with_the_current_job(self):
        job = self.submit("w-timeout")
        t0 = time.monotonic()
        st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=1.5" % job["id"], timeout=30)
        elapsed = time.monotonic() - t0
        self.assertEqual(st, 200, body)
        self.assertEqual(body["status"], "queued")
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 10)
        # the job moved while waiting: the answer shows it as it is now
        w = self.start_waiter(job["id"], 1.5, 1)
        claim_one(self.redis.url, "w-timeout")
        w.join(30)
        self.assertEqual(w.result[2]["status"], "running")

    def test_terminal_job_and_wait_zero_answer_at_once(self):
        job = self.submit("w-now")
        t0 = time.monotonic()
        st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=0" % job["id"])
        self.assertEqual((st, body["status"]), (200, "queued"))
        http("POST", self.base + "/v1/jobs/%s/cancel" % job["id"])
        st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=60" % job["id"])
        self.assertEqual((st, body["status"]), (200, "canceled"))
        self.assertLess(time.monotonic() - t0, 5)

    def test_wait_argument_is_validated(self):
        job = self.submit("w-arg")
        for v in ("61", "-1", "abc", "", "nan", "inf"):
            with self.subTest(v=v):
                st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=%s" % (job["id"], v))
                self.assertEqual(st, 400, body)
                self.assertEqual((body["error"]["code"], body["error"]["field"]),
                                 ("invalid_field", "wait"))
        st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=0.2" % job["id"])
        self.assertEqual(st, 200)

    def test_beyond_max_waiters_answers_at_once(self):
        jobs = [self.submit("w-max") for _ in range(4)]
        waiters = [self.start_waiter(j["id"], 40, n + 1) for n, j in enumerate(jobs[:3])]
        t0 = time.monotonic()
        st, _, body = http("GET", self.base + "/v1/jobs/%s?wait=40" % jobs[3]["id"], timeout=60)
        self.assertEqual((st, body["status"]), (200, "queued"))
        self.assertLess(time.monotonic() - t0, 5)
        for j in jobs[:3]:
            http("POST", self.base + "/v1/jobs/%s/cancel" % j["id"])
        for w in waiters:
            w.join(10)
            self.assertEqual(w.result[2]["status"], "canceled")

    def test_waiters_survive_a_redis_restart(self):
        """The subscriber resubscribes after Redis comes back (AOF keeps the
        job) and a completion after the restart still wakes the waiter."""
        job = self.submit("w-restart")
        w = self.start_waiter(job["id"], 60, 1)
        self.redis.restart()
        c = self.redis.client()
        try:
            wait_for(lambda: c("PUBSUB", "NUMSUB", "jm:done")[1] >= 1, timeout=20,
                     what="the api resubscribed")
        finally:
            c.close()
        self.assertTrue(w.is_alive(), "the long-poll ended early: %r %r" % (w.result, w.error))
        jid, fence = claim_one(self.redis.url, "w-restart")
        testctl(self.redis.url, "complete", jid, fence)
        done_at = time.monotonic()
        w.join(30)
        self.assertIsNone(w.error)
        st, _, body = w.result
        self.assertEqual((st, body["status"]), (200, "succeeded"), body)
        self.assertLess(w.answered_at - done_at, 1.0)


if __name__ == "__main__":
    unittest.main()
