"""test_worker_drain.py - jobmill-worker under SIGTERM, a second signal, and
a freeze past its lease (SIGSTOP): drain releases without spending an
attempt, and a zombie worker can never commit over its successor.
"""
import json
import os
import signal
import time
import unittest

from harness import http, wait_for
from test_worker import WorkerCase, children_of, proc_alive, read_text


class DrainTest(WorkerCase):

    def slow_handler(self):
        """An exec handler that sleeps 60 s when the worker's environment has
        SLOW=1 (inherited by the child) and answers at once otherwise; it
        records each run's pid as <job id>.pid."""
        sh = self.script("slow.sh", r"""
echo $$ > "$1/$JOBMILL_JOB_ID.pid"
if [ -n "$SLOW" ]; then sleep 60; fi
printf '{"fence":%s,"attempt":%s}' "$JOBMILL_FENCE" "$JOBMILL_ATTEMPT"
""")
        return self.config({"slow": {"exec": ["/bin/sh", sh, self.tmp]}})

    def test_sigterm_releases_long_jobs_to_another_worker(self):
        cfg = self.slow_handler()
        a = self.start_worker(concurrency=3, config=cfg, grace_ms=700, env={"SLOW": "1"})
        ids = self.submit({"type": "slow", "max_attempts": 2}, n=3)
        wait_for(lambda: all(read_text(os.path.join(self.tmp, i + ".pid")) for i in ids),
                 what="handlers running")
        pids = [int(read_text(os.path.join(self.tmp, i + ".pid"))) for i in ids]
        t0 = time.monotonic()
        a.signal(signal.SIGTERM)
        wait_for(lambda: http("GET", a.base + "/readyz", raw=True, timeout=1)[0] == 503,
                 timeout=2, what="/readyz 503 while draining")
        self.assertEqual(a.wait(20), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.65)  # the grace was given
        self.assertFalse(any(proc_alive(p) for p in pids))
        for j in self.get_many(ids):
            self.assertEqual((j["status"], j["attempts"]), ("queued", 0), j)
            self.assertIsNone(j["result"])
        # Nothing was claimed after the signal: another worker takes them all.
        b = self.start_worker(concurrency=3, config=cfg)
        for i in ids:
            j = self.wait_job(i)
            self.assertEqual((j["status"], j["attempts"]), ("succeeded", 1), j)
            self.assertEqual(j["result"], {"fence": j["fence"], "attempt": 1})
        self.assertEqual(b.terminate(), 0)
        self.assertIn("shutdown grace over", a.logs())

    def test_sigterm_lets_short_jobs_finish(self):
        a = self.start_worker(concurrency=2, grace_ms=10000)
        ids = self.submit({"type": "sleep", "payload": {"ms": 700}}, n=2)
        wait_for(lambda: all(j["status"] == "running" for j in self.get_many(ids)),
                 what="running")
        a.signal(signal.SIGTERM)
        queued_after = self.submit_one({"type": "echo"})
        self.assertEqual(a.wait(15), 0)
        for j in self.get_many(ids):
            self.assertEqual((j["status"], j["attempts"]), ("succeeded", 1))
        self.assertEqual(self.get(queued_after)["status"], "queued")  # no claim after SIGTERM

    def test_second_signal_exits_at_once(self):
        cfg = self.slow_handler()
        a = self.start_worker(concurrency=1, config=cfg, grace_ms=60000, env={"SLOW": "1"})
        jid = self.submit_one({"type": "slow"})
        pid_file = os.path.join(self.tmp, jid + ".pid")
        wait_for(lambda: read_text(pid_file), what="handler running")
        pid = int(read_text(pid_file))
        a.signal(signal.SIGTERM)
        wait_for(lambda: "draining" in a.logs(), what="drain began")
        t0 = time.monotonic()
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait(5), 1)
        self.assertLess(time.monotonic() - t0, 2)
        wait_for(lambda: not proc_alive(pid), timeout=5, what="handler killed")
        self.assertEqual(self.get(jid)["status"], "running")  # its lease will expire

    def test_frozen_worker_cannot_commit_over_its_successor(self):
        sh = self.script("fence.sh", r"""
cat > /dev/null
sleep 0.3
printf '{"fence":%s,"by":"%s"}' "$JOBMILL_FENCE" "$WHO"
""")
        cfg = self.config({"fenced": {"exec": ["/bin/sh", sh]}})
        a = self.start_worker(concurrency=1, lease_ms=600, heartbeat_ms=150, config=cfg,
                              env={"WHO": "a"}, worker_id="worker-a")
        self.start_janitor("default", interval_ms=50)
        jid = self.submit_one({"type": "fenced", "max_attempts": 5})
        j = self.wait_job(jid, "running")
        self.assertEqual(j["worker"], "worker-a")
        fence_a = j["fence"]
        a.signal(signal.SIGSTOP)
        try:
            # Lease expiry (600 ms) + janitor: the job is queued again and
            # worker b finishes it under a newer fence.
            b = self.start_worker(concurrency=1, lease_ms=600, heartbeat_ms=150, config=cfg,
                                  env={"WHO": "b"}, worker_id="worker-b")
            j = self.wait_job(jid, "succeeded", timeout=15)
        finally:
            a.signal(signal.SIGCONT)
        self.assertEqual(j["worker"], "worker-b")
        self.assertGreater(j["fence"], fence_a)
        self.assertEqual(j["result"], {"fence": j["fence"], "by": "b"})
        self.assertEqual(j["attempts"], 2)
        # a wakes up with a finished handler and a dead lease: it commits
        # nothing, counts the loss and keeps working.
        wait_for(lambda: self.metric(a, "jobmill_worker_leases_lost_total") >= 1, timeout=10,
                 what="worker a saw its lease lost")
        self.assertEqual(self.get(jid)["result"], {"fence": j["fence"], "by": "b"})
        self.assertEqual(self.get(jid)["status"], "succeeded")
        self.assertTrue(a.alive())
        wait_for(lambda: not children_of(a.pid), what="a reaped its child")
        j2 = self.wait_job(self.submit_one({"type": "echo", "payload": 2}))
        self.assertEqual(j2["status"], "succeeded")
        self.assertEqual(a.terminate(), 0)
        self.assertEqual(b.terminate(), 0)

    def test_lease_lost_while_running_kills_the_handler(self):
        cfg = self.slow_handler()
        a = self.start_worker(concurrency=1, lease_ms=600, heartbeat_ms=150, config=cfg,
                              env={"SLOW": "1"})
        jid = self.submit_one({"type": "slow"})
        pid_file = os.path.join(self.tmp, jid + ".pid")
        wait_for(lambda: read_text(pid_file), what="handler running")
        pid = int(read_text(pid_file))
        # Someone else now owns the job: replace the record's lease token,
        # as a reclaim would. The next heartbeat must stop the handler.
        self.redis.cmd("HSET", "jm:{%s}:job:%s" % (jid[:4], jid), "lease", "1-someoneelse")
        wait_for(lambda: not proc_alive(pid), timeout=3, what="handler killed")
        wait_for(lambda: self.metric(a, "jobmill_worker_leases_lost_total") == 1,
                 what="loss counted")
        self.assertEqual(self.get(jid)["status"], "running")  # nothing committed
        wait_for(lambda: self.metric(a, "jobmill_worker_busy") == 0, what="slot freed")


if __name__ == "__main__":
    unittest.main()
