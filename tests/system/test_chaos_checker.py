"""test_chaos_checker.py - the chaos suite's checker (tests/chaos/checker.py)
finds what it claims to find.

A small consistent layout is written into a throw-away redis-server by hand
(job records, indexes, counts, idempotency keys, as the scripts leave them),
with the record file, client log and worker log that go with it. The checker
must find nothing in it; then each test breaks one thing the way a bug would
and the checker must report exactly that kind of violation. (A full chaos
run can do the same with `tests/chaos/run --tamper KIND`; this is the fast
version that runs with every build.)
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

import harness

sys.path.insert(0, os.path.join(harness.HERE, "..", "chaos"))
from checker import Checker, slot_tag  # noqa: E402

Q = "q"
T0 = 1_700_000_000_000


def jid(n):
    return "%s%022d" % (slot_tag(Q), n)


A, B, C, D = jid(1), jid(2), jid(3), jid(4)


class CheckerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jm-checker-")
        self.redis.cmd("FLUSHALL")
        self.records, self.runs, self.client, self.outcomes = {}, [], [], []
        # A: a fence job, ran once, succeeded, acknowledged with key kA
        self.job(A, "fence", "succeeded", attempts=1, fence=100, result='{"fence":100}',
                 idem="kA")
        self.runs.append("%s 100 1 %d fence" % (A, T0 + 5))
        self.client.append({"op": "submit", "kind": "fence", "key": "kA", "status": 201, "id": A})
        self.outcomes.append({"msg": "job outcome", "job_id": A, "status": "succeeded",
                              "fence": 100, "attempt": 1})
        # B: a long job, canceled while queued
        self.job(B, "long", "canceled", kind="cancel")
        self.client.append({"op": "submit", "kind": "cancel", "key": None, "status": 201, "id": B})
        self.client.append({"op": "cancel", "id": B, "status": 200, "job_status": "canceled"})
        # C: a built-in failure, dead-lettered after 2 attempts
        self.job(C, "fail", "failed", kind="fail", attempts=2, max_attempts=2, fence=60)
        self.client.append({"op": "submit", "kind": "fail", "key": None, "status": 201, "id": C})
        self.outcomes += [{"msg": "job outcome", "job_id": C, "status": "retrying", "fence": 50,
                           "attempt": 1},
                          {"msg": "job outcome", "job_id": C, "status": "failed", "fence": 60,
                           "attempt": 2}]
        # D: a flaky job, failed once, retried after its backoff, succeeded
        self.job(D, "flaky", "succeeded", attempts=2, fence=11, result='{"fence":11}')
        self.runs += ["%s 10 1 %d flaky" % (D, T0 + 10), "%s 11 2 %d flaky" % (D, T0 + 400)]
        self.client.append({"op": "submit", "kind": "flaky", "key": None, "status": 201, "id": D})
        self.outcomes += [{"msg": "job outcome", "job_id": D, "status": "retrying", "fence": 10,
                           "attempt": 1},
                          {"msg": "job outcome", "job_id": D, "status": "succeeded", "fence": 11,
                           "attempt": 2}]

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the layout ----

    def key(self, what):
        return "jm:{%s}:q:%s:%s" % (slot_tag(Q), Q, what)

    def job(self, job_id, typ, status, kind=None, attempts=0, max_attempts=25, fence=0,
            result=None, idem=None):
        rec = {"queue": Q, "type": typ, "payload": json.dumps({"kind": kind or typ}),
               "status": status, "attempts": attempts, "max_attempts": max_attempts,
               "fence": fence, "created": T0, "run_at": T0, "cancel": 0}
        if result is not None:
            rec["result"] = result
        if idem:
            rec["idem"] = idem
            self.redis.cmd("SET", "jm:idem:" + idem, job_id)
        args = [x for kv in rec.items() for x in kv]
        self.redis.cmd("HSET", "jm:{%s}:job:%s" % (job_id[:4], job_id), *args)
        self.redis.cmd("ZADD", self.key(status), T0 + 1000, job_id)
        self.redis.cmd("HINCRBY", self.key("counts"), status, 1)
        self.redis.cmd("SADD", "jm:{registry}:queues", Q)

    def check(self):
        paths = {}
        for name, lines in (("record", self.runs),
                            ("client", [json.dumps(e) for e in self.client]),
                            ("worker", [json.dumps(e) for e in self.outcomes])):
            paths[name] = os.path.join(self.dir, name)
            with open(paths[name], "w") as f:
                f.write("".join(line + "\n" for line in lines))
        r = self.redis.client()
        try:
            c = Checker(r, paths["record"], paths["client"], [paths["worker"]], [], 200, 1000)
            v = c.check()
            self.summary = c.summary({"kill_worker": 1})
            return {k: len(x) for k, x in v.items() if x}
        finally:
            r.close()

    def assert_found(self, kind):
        found = self.check()
        self.assertIn(kind, found, self.summary)

    # ---- the clean layout, then one break each ----

    def test_a_consistent_layout_has_no_violation(self):
        self.assertEqual(self.check(), {}, self.summary)
        self.assertTrue(self.summary.startswith("jobs 4, faults 1 (kill_worker=1), lost 0,"),
                        self.summary)

    def test_lost_record(self):
        self.redis.cmd("DEL", "jm:{%s}:job:%s" % (A[:4], A))
        self.assert_found("lost")

    def test_stale_result(self):
        self.runs.append("%s 101 2 %d fence" % (A, T0 + 50))
        self.assert_found("stale_result")

    def test_rerun_of_one_claim(self):
        self.runs.append("%s 100 1 %d fence" % (A, T0 + 6))
        self.assert_found("rerun")

    def test_second_outcome(self):
        self.outcomes.append({"msg": "job outcome", "job_id": A, "status": "succeeded",
                              "fence": 99, "attempt": 1})
        self.assert_found("double")

    def test_counts_drift(self):
        self.redis.cmd("HINCRBY", self.key("counts"), "succeeded", 1)
        self.assert_found("counts")

    def test_job_in_two_indexes(self):
        self.redis.cmd("ZADD", self.key("failed"), T0, A)
        self.assert_found("terminal_once")

    def test_idempotency_key_rebound(self):
        self.redis.cmd("SET", "jm:idem:kA", B)
        self.assert_found("idem_dup")

    def test_canceled_job_with_a_result(self):
        self.redis.cmd("HSET", "jm:{%s}:job:%s" % (B[:4], B), "result", "{}")
        self.assert_found("canceled_result")

    def test_read_of_a_state_that_changed(self):
        self.client.append({"op": "wait", "id": B, "status": 200, "job_status": "succeeded"})
        self.assert_found("read")

    def test_retry_before_its_backoff(self):
        self.runs[-1] = "%s 11 2 %d flaky" % (D, T0 + 60)  # 50 ms after, backoff >= 100
        self.assert_found("early_retry")

    def test_more_claims_than_attempts(self):
        self.redis.cmd("HSET", "jm:{%s}:job:%s" % (D[:4], D), "attempts", 1)
        self.assert_found("over_attempts")

    def test_impossible_final_state(self):
        self.redis.cmd("HSET", "jm:{%s}:job:%s" % (A[:4], A), "status", "failed")
        self.redis.cmd("ZREM", self.key("succeeded"), A)
        self.redis.cmd("ZADD", self.key("failed"), T0, A)
        self.redis.cmd("HINCRBY", self.key("counts"), "succeeded", -1)
        self.redis.cmd("HINCRBY", self.key("counts"), "failed", 1)
        self.assert_found("bad_state")

    def test_record_nobody_submitted(self):
        self.job(jid(9), "fence", "succeeded", fence=0, result="null")
        self.assert_found("phantom")

    def test_unexpected_http_answer(self):
        self.client.append({"op": "submit", "kind": "fence", "key": None, "status": 500})
        self.assert_found("http")


if __name__ == "__main__":
    unittest.main()
