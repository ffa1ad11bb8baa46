"""test_http_worker.py - workers over HTTP against the real api, janitor and
C worker (docs/workers-http.md).

The protocol: a claim hands out jobs with lease tokens and long-polls; the
heartbeat, complete, fail and progress routes commit under the token and
refuse a stale, forged or unknown one with 409 lease_lost, changing nothing;
HTTP workers show in /v1/workers; the janitor recovers an HTTP worker's
expired lease. The clients (clients/python/jobmill.py): a Python worker
SIGKILLed mid-job has its job recovered by the janitor and finished by a C
worker; its late commit after losing the lease is refused with 409; a Python
and a C worker share a queue and lose nothing. POST /v1/jobs?wait=S answers
with the finished job.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import RedisServer, Service, free_port, http, scaled, wait_for, wait_http

CLIENTS = os.path.join(harness.SOURCE_DIR, "clients", "python")


class Stack(unittest.TestCase):
    """A Redis, an api and (on demand) a janitor and C workers."""

    def setUp(self):
        self.redis = RedisServer()
        self.services = []
        self.procs = []
        self.api, self.base = harness.start_api(
            self.redis.url, env={"JOBMILL_HEARTBEAT_MS": "200", "JOBMILL_LEASE_MS": "3000",
                                 "JOBMILL_BACKOFF_BASE_MS": "20",
                                 "JOBMILL_BACKOFF_MAX_MS": "40"})

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            if getattr(p, "log", None):
                p.log.close()
        for s in self.services:
            s.stop()
        harness.stop_api(self.api, self.redis)

    # ---- processes ----

    def start_janitor(self):
        port = free_port()
        svc = Service("janitor", self.redis.url,
                      env={"JOBMILL_JANITOR_INTERVAL_MS": "100",
                           "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}).start()
        svc.base = "http://127.0.0.1:%d" % port
        self.services.append(svc)
        wait_http(svc.base + "/healthz")
        return svc

    def start_c_worker(self, queues, concurrency=2):
        port = free_port()
        svc = Service("worker", self.redis.url,
                      env={"JOBMILL_QUEUES": queues, "JOBMILL_CONCURRENCY": str(concurrency),
                           "JOBMILL_LEASE_MS": "3000", "JOBMILL_HEARTBEAT_MS": "200",
                           "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}).start()
        svc.base = "http://127.0.0.1:%d" % port
        self.services.append(svc)
        wait_http(svc.base + "/readyz")
        return svc

    # ---- api calls ----

    def submit(self, queue, type_="t", payload=None, **extra):
        body = {"queue": queue, "type": type_, "payload": payload}
        body.update(extra)
        status, _, job = http("POST", self.base + "/v1/jobs", body)
        self.assertEqual(status, 201, job)
        return job

    def get(self, jid):
        status, _, job = http("GET", self.base + "/v1/jobs/" + jid)
        self.assertEqual(status, 200, job)
        return job

    def claim(self, queue, worker="hw-1", max_=1, wait_s=0, **extra):
        body = {"worker": worker, "max": max_, "wait_s": wait_s}
        body.update(extra)
        status, _, out = http("POST", self.base + "/v1/queues/%s/claim" % queue, body,
                              timeout=wait_s + 10)
        self.assertEqual(status, 200, out)
        return out["jobs"]

    def call(self, jid, what, token, **body):
        body["lease_token"] = token
        return http("POST", self.base + "/v1/jobs/%s/%s" % (jid, what), body)


class ProtocolTest(Stack):

    def test_claim_complete(self):
        job = self.submit("hq", payload={"n": 1})
        jobs = self.claim("hq", max_=5)
        self.assertEqual(len(jobs), 1)
        c = jobs[0]
        self.assertEqual((c["id"], c["status"], c["payload"], c["attempts"], c["worker"]),
                         (job["id"], "running", {"n": 1}, 1, "hw-1"))
        fence, _, nonce = c["lease_token"].partition("-")
        self.assertTrue(fence.isdigit() and len(nonce) == 16, c["lease_token"])
        self.assertGreater(c["lease_deadline"], c["started_at"])
        status, _, hb = self.call(c["id"], "heartbeat", c["lease_token"], worker="hw-1")
        self.assertEqual(status, 200, hb)
        self.assertFalse(hb["cancel_requested"])
        self.assertGreaterEqual(hb["lease_deadline"], c["lease_deadline"])
        status, _, pr = self.call(c["id"], "progress", c["lease_token"], progress=50,
                                  message="half")
        self.assertEqual(status, 200, pr)
        self.assertEqual(self.get(c["id"])["progress"], {"progress": 50, "message": "half"})
        status, _, done = self.call(c["id"], "complete", c["lease_token"], result={"ok": True})
        self.assertEqual((status, done["status"]), (200, "succeeded"), done)
        got = self.get(c["id"])
        self.assertEqual((got["status"], got["result"]), ("succeeded", {"ok": True}))
        # a second commit of the same claim is stale
        status, _, err = self.call(c["id"], "complete", c["lease_token"], result=1)
        self.assertEqual((status, err["error"]["code"]), (409, "lease_lost"))
        self.assertEqual(self.get(c["id"])["result"], {"ok": True})

    def test_fail_retryable_permanent_and_cancel(self):
        a = self.submit("hf")
        b = self.submit("hf")
        c = self.submit("hf")
        claimed = {j["id"]: j for j in self.claim("hf", max_=3)}
        self.assertEqual(set(claimed), {a["id"], b["id"], c["id"]})
        status, _, out = self.call(a["id"], "fail", claimed[a["id"]]["lease_token"], error="boom")
        self.assertEqual((status, out["status"]), (200, "scheduled"), out)
        status, _, out = self.call(b["id"], "fail", claimed[b["id"]]["lease_token"],
                                   error="bad input", retryable=False)
        self.assertEqual((status, out["status"]), (200, "failed"), out)
        self.assertEqual(self.get(b["id"])["error"], "bad input")
        self.assertEqual(http("POST", self.base + "/v1/jobs/%s/cancel" % c["id"])[0], 200)
        status, _, hb = self.call(c["id"], "heartbeat", claimed[c["id"]]["lease_token"])
        self.assertEqual((status, hb["cancel_requested"]), (200, True), hb)
        status, _, out = self.call(c["id"], "fail", claimed[c["id"]]["lease_token"],
                                   error="stopped: cancel requested")
        self.assertEqual((status, out["status"]), (200, "canceled"), out)

    def test_every_route_refuses_stale_forged_and_unknown_tokens(self):
        """A token from an earlier claim (the lease expired, the janitor
        requeued the job, another claim holds it), a forged token, another
        job's token and an unknown job: 409 lease_lost on every fenced route,
        and the job record stays exactly as it was."""
        self.start_janitor()
        job = self.submit("hs")
        old = self.claim("hs", worker="slow", lease_ms=1000)[0]
        wait_for(lambda: self.get(job["id"])["status"] == "queued", timeout=15,
                 what="the janitor requeues the expired lease")
        cur = self.claim("hs", worker="fast", wait_s=5, lease_ms=60000)[0]
        self.assertEqual(cur["id"], job["id"])
        self.assertNotEqual(cur["lease_token"], old["lease_token"])
        other = self.submit("hs")
        other_c = self.claim("hs", worker="fast", wait_s=5, lease_ms=60000)[0]
        self.assertEqual(other_c["id"], other["id"])
        fence = cur["lease_token"].partition("-")[0]
        bad_tokens = [old["lease_token"], fence + "-0000000000000000", fence,
                      other_c["lease_token"], "x" * 200, cur["lease_token"] + " "]
        bodies = {"heartbeat": {}, "complete": {"result": "stolen"},
                  "fail": {"error": "stolen", "retryable": False},
                  "progress": {"progress": 99, "message": "stolen"}}
        before = self.get(job["id"])
        for route, body in bodies.items():
            for tok in bad_tokens:
                status, _, out = self.call(job["id"], route, tok, **body)
                self.assertEqual(status, 409, (route, tok, out))
                self.assertEqual(out["error"]["code"], "lease_lost")
            # a well-formed id of no job
            status, _, out = self.call(job["id"][:4] + "A" * 22, route, cur["lease_token"],
                                       **body)
            self.assertEqual((status, out["error"]["code"]), (409, "lease_lost"), (route, out))
        self.assertEqual(self.get(job["id"]), before)
        # the current token still works
        status, _, out = self.call(job["id"], "complete", cur["lease_token"], result="mine")
        self.assertEqual((status, out["status"]), (200, "succeeded"), out)
        self.assertEqual(self.get(job["id"])["result"], "mine")

    def test_long_poll_wakes_on_submit_and_times_out(self):
        t0 = time.monotonic()
        self.assertEqual(self.claim("hl", wait_s=0.5), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        out = {}

        def poll():
            out["jobs"] = self.claim("hl", wait_s=20)
            out["t"] = time.monotonic()
        th = threading.Thread(target=poll)
        th.start()
        wait_for(lambda: any(w["id"] == "hw-1" for w in
                             http("GET", self.base + "/v1/workers")[2]["workers"]),
                 what="the claiming worker is registered")
        job = self.submit("hl")
        t_submit = time.monotonic()
        th.join(30)
        self.assertFalse(th.is_alive())
        self.assertEqual([j["id"] for j in out["jobs"]], [job["id"]])
        self.assertLess(out["t"] - t_submit, 5.0)

    def test_operator_limits_hold_http_claims_back(self):
        """A queue's concurrency cap counts HTTP workers' claims too; a claim
        held back waits and gets the job once the cap lets go."""
        for _ in range(3):
            self.submit("hc")
        status, _, out = http("PUT", self.base + "/v1/queues/hc/limits", {"concurrency": 1})
        self.assertEqual(status, 200, out)
        first = self.claim("hc", max_=5)
        self.assertEqual(len(first), 1)
        self.assertEqual(self.claim("hc", max_=5, wait_s=0.3), [])
        out = {}

        def poll():
            out["jobs"] = self.claim("hc", worker="hw-2", max_=5, wait_s=20)
        th = threading.Thread(target=poll)
        th.start()
        status, _, done = self.call(first[0]["id"], "complete", first[0]["lease_token"])
        self.assertEqual(status, 200, done)
        th.join(30)
        self.assertFalse(th.is_alive())
        self.assertEqual(len(out["jobs"]), 1, out)

    def test_workers_listing_and_bad_bodies(self):
        self.claim("hw", worker="py-7", max_=3, host="box-1", pid=42, queues=["hw", "other"])
        workers = http("GET", self.base + "/v1/workers")[2]["workers"]
        w = [w for w in workers if w["id"] == "py-7"]
        self.assertEqual(len(w), 1, workers)
        self.assertEqual((w[0]["host"], w[0]["pid"], w[0]["queues"], w[0]["concurrency"]),
                         ("box-1", 42, ["hw", "other"], 3))
        many = ["q%02d-%s" % (i, "x" * 60) for i in range(16)]  # the longest list allowed
        self.claim("hw", worker="py-8", queues=many)
        w = [w for w in http("GET", self.base + "/v1/workers")[2]["workers"] if w["id"] == "py-8"]
        self.assertEqual(w[0]["queues"], many)
        url = self.base + "/v1/queues/hw/claim"
        for body, field in (({"max": 1}, "worker"), ({"worker": "a b"}, "worker"),
                            ({"worker": "w", "max": 0}, "max"),
                            ({"worker": "w", "max": 101}, "max"),
                            ({"worker": "w", "wait_s": 61}, "wait_s"),
                            ({"worker": "w", "lease_ms": 10}, "lease_ms"),
                            ({"worker": "w", "queues": many + ["one-more"]}, "queues"),
                            ({"worker": "w", "queues": ["bad name"]}, "queues")):
            status, _, out = http("POST", url, body)
            self.assertEqual((status, out["error"].get("field")), (400, field), body)
        self.assertEqual(http("POST", url, "[1]", {"Content-Type": "application/json"})[0], 400)
        job = self.submit("hw")
        status, _, out = http("POST", self.base + "/v1/jobs/%s/complete" % job["id"], {})
        self.assertEqual((status, out["error"]["field"]), (400, "lease_token"))
        status, _, out = http("POST", self.base + "/v1/jobs/nope/heartbeat", {"lease_token": "1-a"})
        self.assertEqual(status, 404)
        self.assertEqual(self.get(job["id"])["status"], "queued")

    def test_janitor_recovers_an_http_lease_for_a_c_worker(self):
        self.start_janitor()
        job = self.submit("hr", "echo", {"v": 3})
        c = self.claim("hr", worker="gone", lease_ms=1000)[0]
        self.assertEqual(c["id"], job["id"])
        self.start_c_worker("hr")
        wait_for(lambda: self.get(job["id"])["status"] == "succeeded", timeout=20,
                 what="the janitor requeues the HTTP worker's job and a C worker runs it")
        got = self.get(job["id"])
        self.assertEqual((got["result"], got["attempts"]), ({"v": 3}, 2))
        status, _, out = self.call(job["id"], "complete", c["lease_token"], result="late")
        self.assertEqual(status, 409, out)
        self.assertEqual(self.get(job["id"])["result"], {"v": 3})


class SubmitWaitTest(Stack):

    def test_submit_and_wait(self):
        self.start_c_worker("sw")
        status, _, job = http("POST", self.base + "/v1/jobs?wait=20",
                              {"queue": "sw", "type": "echo", "payload": {"x": 1}}, timeout=30)
        self.assertEqual(status, 201, job)
        self.assertEqual((job["status"], job["result"]), ("succeeded", {"x": 1}))
        # idempotent resubmit: 200 with the finished job at once
        body = {"queue": "sw", "type": "echo", "payload": 2, "idempotency_key": "k1"}
        status, _, first = http("POST", self.base + "/v1/jobs?wait=20", body, timeout=30)
        self.assertEqual((status, first["status"]), (201, "succeeded"))
        status, _, again = http("POST", self.base + "/v1/jobs?wait=20", body, timeout=30)
        self.assertEqual((status, again["id"], again["result"]), (200, first["id"], 2))

    def test_timeout_answers_the_job_as_it_is_and_bad_wait_stores_nothing(self):
        t0 = time.monotonic()
        status, _, job = http("POST", self.base + "/v1/jobs?wait=0.5",
                              {"queue": "nobody", "type": "t"})
        self.assertEqual((status, job["status"]), (201, "queued"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        for bad in ("61", "-1", "x", "1e1", ""):
            status, _, out = http("POST", self.base + "/v1/jobs?wait=" + bad,
                                  {"queue": "nobody", "type": "t"})
            self.assertEqual((status, out["error"]["field"]), (400, "wait"), bad)
        status, _, q = http("GET", self.base + "/v1/queues")
        counts = [x for x in q["queues"] if x["name"] == "nobody"][0]
        self.assertEqual(counts["queued"], 1)


class PythonWorkerTest(Stack):
    """clients/python: the example worker as a process, the Client in-process."""

    def setUp(self):
        super().setUp()
        sys.path.insert(0, CLIENTS)
        import jobmill
        self.jobmill = jobmill
        self.client = jobmill.Client(self.base)

    def start_py_worker(self, queues, concurrency=2, lease_ms=2000, worker_id=None):
        log = open(os.path.join(self.api.logdir, "py-worker-%d.log" % len(self.procs)), "w+b")
        args = [sys.executable, os.path.join(CLIENTS, "example_worker.py"), "--url", self.base,
                "--queues", queues, "--concurrency", str(concurrency), "--lease-ms",
                str(lease_ms), "--wait-s", "2", "--grace-s", "20"]
        if worker_id:
            args += ["--worker-id", worker_id]
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=harness.die_with_parent)
        p.log = log
        p.worker_id = worker_id
        self.procs.append(p)
        if worker_id:
            wait_for(lambda: any(w["id"] == worker_id for w in self.client.workers()),
                     timeout=15, what="the Python worker registers")
        return p

    @staticmethod
    def log_of(p):
        p.log.flush()
        p.log.seek(0)
        return p.log.read().decode("utf-8", "replace")

    def wait_running_on(self, jid, worker_id, timeout=15):
        wait_for(lambda: (lambda j: j["status"] == "running" and j["worker"] == worker_id)(
            self.get(jid)), timeout=timeout, what="job %s running on %s" % (jid, worker_id))

    def test_python_worker_runs_jobs_and_stops_gracefully(self):
        self.start_janitor()  # promotes the retry of the failed attempt
        p = self.start_py_worker("py", worker_id="py-a")
        job = self.client.submit("echo", {"x": [1, 2]}, queue="py", wait=20)
        self.assertEqual((job["status"], job["result"], job["worker"]),
                         ("succeeded", {"x": [1, 2]}, "py-a"))
        job = self.client.submit("wordcount", {"text": "a b c"}, queue="py", wait=20)
        self.assertEqual(job["result"], {"words": 3})
        job = self.client.submit("fail", {"message": "nope", "permanent": True}, queue="py",
                                 wait=20)
        self.assertEqual((job["status"], job["error"], job["attempts"]), ("failed", "nope", 1))
        job = self.client.submit("unknown.type", queue="py", wait=20)
        self.assertEqual((job["status"], job["error"]),
                         ("failed", 'no handler for type "unknown.type"'))
        job = self.client.submit("fail", {"message": "again"}, queue="py", max_attempts=2,
                                 wait=20)
        job = self.client.wait(job["id"], timeout=20)
        self.assertEqual((job["status"], job["attempts"]), ("failed", 2))
        # SIGTERM with a job in flight: it finishes, then the worker exits 0
        slow = self.client.submit("sleep", {"ms": 1500}, queue="py")
        self.wait_running_on(slow["id"], "py-a")
        wait_for(lambda: self.get(slow["id"])["progress"] is not None, timeout=10,
                 what="progress reported")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, self.log_of(p))
        self.assertEqual(self.get(slow["id"])["status"], "succeeded")

    def test_sigkill_mid_job_is_recovered_and_finished_by_a_c_worker(self):
        self.start_janitor()
        p = self.start_py_worker("pk", worker_id="py-k")
        job = self.client.submit("sleep", {"ms": 2000}, queue="pk")
        self.wait_running_on(job["id"], "py-k")
        p.kill()
        p.wait()
        c = self.start_c_worker("pk")
        done = self.client.wait(job["id"], timeout=30)
        self.assertEqual(done["status"], "succeeded", done)
        self.assertEqual(done["attempts"], 2)
        self.assertNotEqual(done["worker"], "py-k")
        self.assertTrue(c.alive())
        # the killed worker leaves the registry once its record expires
        wait_for(lambda: all(w["id"] != "py-k" for w in self.client.workers()), timeout=30,
                 what="the killed worker is pruned")

    def test_late_commit_after_losing_the_lease_is_refused(self):
        """In-process with the Client: every late call is 409 LeaseLost and
        the new holder's result stands. Then the example worker frozen
        (SIGSTOP) past its lease: its commit after SIGCONT is refused."""
        self.start_janitor()
        cl = self.client
        job = cl.submit("sleep", {"ms": 500}, queue="pl")
        mine = cl.claim("pl", "py-late", lease_ms=1000)[0]
        wait_for(lambda: self.get(job["id"])["status"] == "queued", timeout=15,
                 what="the lease expires and the janitor requeues the job")
        theirs = cl.claim("pl", "py-new", wait_s=5)[0]
        cl.complete(job["id"], theirs["lease_token"], "theirs")
        for call in (lambda: cl.complete(job["id"], mine["lease_token"], "mine"),
                     lambda: cl.fail(job["id"], mine["lease_token"], "x", retryable=False),
                     lambda: cl.heartbeat(job["id"], mine["lease_token"]),
                     lambda: cl.progress(job["id"], mine["lease_token"], 10)):
            with self.assertRaises(self.jobmill.LeaseLost) as ctx:
                call()
            self.assertEqual((ctx.exception.status, ctx.exception.code), (409, "lease_lost"))
        self.assertEqual(self.get(job["id"])["result"], "theirs")

        p = self.start_py_worker("pf", worker_id="py-frozen", lease_ms=1000)
        job = cl.submit("sleep", {"ms": 3000}, queue="pf")
        self.wait_running_on(job["id"], "py-frozen")
        p.send_signal(signal.SIGSTOP)
        try:
            self.start_c_worker("pf")
            done = cl.wait(job["id"], timeout=30)
            self.assertEqual(done["status"], "succeeded")
            self.assertNotEqual(done["worker"], "py-frozen")
        finally:
            p.send_signal(signal.SIGCONT)
        wait_for(lambda: '"lease_lost"' in self.log_of(p) or '"lease lost"' in self.log_of(p),
                 timeout=20, what="the frozen worker learns it lost the lease")
        wait_for(lambda: "commit refused: lease lost" in self.log_of(p), timeout=20,
                 what="its late commit is refused")
        line = [x for x in self.log_of(p).splitlines() if "commit refused" in x][0]
        self.assertEqual(json.loads(line)["http_status"], 409)
        self.assertEqual(cl.get(job["id"])["worker"], done["worker"])

    def test_python_and_c_workers_share_a_queue_under_a_kill(self):
        self.start_janitor()
        n = scaled(60, minimum=30)
        ids = [self.client.submit("sleep", {"ms": 500}, queue="mix")["id"] for _ in range(n)]

        def on(worker, states):
            return [i for i in ids if (lambda j: j["worker"] == worker and j["status"] in states)(
                self.get(i))]
        p = self.start_py_worker("mix", concurrency=3, worker_id="py-m1")
        wait_for(lambda: len(on("py-m1", ("succeeded",))) >= 3, timeout=30, interval=0.05,
                 what="the Python worker finishes jobs")
        self.start_c_worker("mix", concurrency=2)
        wait_for(lambda: on("py-m1", ("running",)), timeout=30, interval=0.02,
                 what="the Python worker holds a job")
        p.kill()  # mid-job
        p.wait()
        self.start_py_worker("mix", concurrency=3, worker_id="py-m2")
        jobs = [self.client.wait(i, timeout=60) for i in ids]
        self.assertEqual([j["status"] for j in jobs], ["succeeded"] * n)
        by = {}
        for j in jobs:
            by[j["worker"]] = by.get(j["worker"], 0) + 1
        self.assertGreaterEqual(by.get("py-m1", 0), 3, by)
        self.assertTrue(any(not w.startswith("py-m") for w in by), by)
        self.assertTrue(any(j["attempts"] == 2 for j in jobs), "a killed job ran again")
        status, _, q = http("GET", self.base + "/v1/queues")
        mix = [x for x in q["queues"] if x["name"] == "mix"][0]
        self.assertEqual((mix["succeeded"], mix["queued"], mix["running"], mix["failed"]),
                         (n, 0, 0, 0))


class NodeWorkerTest(Stack):
    """clients/node/example_worker.mjs (built-in fetch) as a process."""

    def test_node_worker_runs_jobs_and_stops_gracefully(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is missing (scripts/lib/deps.sh installs nodejs)")
        log = open(os.path.join(self.api.logdir, "node-worker.log"), "w+b")
        env = dict(os.environ, JOBMILL_URL=self.base, JOBMILL_QUEUES="nq",
                   JOBMILL_WORKER_ID="node-1", JOBMILL_CONCURRENCY="2", JOBMILL_WAIT_S="2")
        p = subprocess.Popen([node, os.path.join(harness.SOURCE_DIR, "clients", "node",
                                                 "example_worker.mjs")],
                             env=env, stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=harness.die_with_parent)
        p.log = log
        self.procs.append(p)
        status, _, job = http("POST", self.base + "/v1/jobs?wait=20",
                              {"queue": "nq", "type": "wordcount", "payload": {"text": "x y"}},
                              timeout=30)
        self.assertEqual((job["status"], job["result"], job["worker"]),
                         ("succeeded", {"words": 2}, "node-1"), job)
        status, _, job = http("POST", self.base + "/v1/jobs?wait=20",
                              {"queue": "nq", "type": "nope", "max_attempts": 5}, timeout=30)
        self.assertEqual((job["status"], job["attempts"], job["error"]),
                         ("failed", 1, 'no handler for type "nope"'), job)
        slow = self.submit("nq", "sleep", {"ms": 1000})
        wait_for(lambda: self.get(slow["id"])["status"] == "running", timeout=15,
                 what="the sleep job runs")
        p.send_signal(signal.SIGTERM)
        log.flush()
        self.assertEqual(p.wait(30), 0)
        self.assertEqual(self.get(slow["id"])["status"], "succeeded")


if __name__ == "__main__":
    unittest.main()
