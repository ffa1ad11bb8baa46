"""test_logs.py - job progress and logs from any api replica (docs/logs.md).

Two api processes on different loopback ports share one Redis. An exec
handler writes progress on JOBMILL_PROGRESS_FD and lines on stderr (a huge
line, binary bytes, invalid UTF-8, a line without a newline): the job's
progress and its log are visible through the api, and a follower on replica
B (?follow=1, server-sent events) gets the lines and an end event when the
job ends. An HTTP worker appends through replica A (POST /logs under its
lease token; a stale token is 409 lease_lost and changes nothing) while the
follower listens on replica B. A never-ending stderr flood is capped in
Redis and in the worker's memory.
"""
import http.client as httpclient
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import RedisServer, Service, free_port, http, wait_for, wait_http

HANDLERS = os.path.join(harness.SOURCE_DIR, "tests", "system", "handlers")


class Follower(threading.Thread):
    """GET base/v1/jobs/{id}/logs?follow=1 read as server-sent events."""

    def __init__(self, base, jid, query=""):
        super().__init__(daemon=True)
        host, port = base.replace("http://", "").split(":")
        self.conn = httpclient.HTTPConnection(host, int(port), timeout=60)
        self.path = "/v1/jobs/%s/logs?follow=1%s" % (jid, query)
        self.events = []  # (event, id, data)
        self.comments = 0
        self.status = None
        self.headers = {}
        self.closed = False
        self.lock = threading.Lock()
        self.started = threading.Event()

    def run(self):
        try:
            self.conn.request("GET", self.path)
            resp = self.conn.getresponse()
            self.status = resp.status
            self.headers = {k.lower(): v for k, v in resp.getheaders()}
            self.started.set()
            ev, eid, data = "message", None, []
            while True:
                raw = resp.fp.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\n")
                if line == "":
                    if data:
                        with self.lock:
                            self.events.append((ev, eid, json.loads("\n".join(data))))
                    ev, eid, data = "message", None, []
                elif line.startswith(":"):
                    with self.lock:
                        self.comments += 1
                elif line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("id: "):
                    eid = int(line[4:])
                elif line.startswith("data: "):
                    data.append(line[6:])
        finally:
            self.started.set()
            self.closed = True
            self.conn.close()

    def lines(self):
        with self.lock:
            return [d for e, _, d in self.events if e == "line"]

    def end(self):
        with self.lock:
            ends = [d for e, _, d in self.events if e == "end"]
        return ends[0] if ends else None


def metric(svc, name):
    """The value of an unlabelled metric of svc's /metrics."""
    status, _, text = http("GET", svc.base + "/metrics", raw=True)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not exposed" % name)


class LogsTest(unittest.TestCase):

    def setUp(self):
        self.redis = RedisServer()
        self.tmp = tempfile.mkdtemp(prefix="jm-logs-")
        self.services = []
        env = {"JOBMILL_LOGS_MAX_LINES": "50"}
        self.api_a, self.a = harness.start_api(self.redis.url, env=env)
        self.api_b, self.b = harness.start_api(self.redis.url, env=env)

    def tearDown(self):
        codes = []
        for s in self.services:
            codes.append((s.name, s.terminate(timeout=30) if s.alive() else 0, s.logs()))
            s.stop()
        harness.stop_api(self.api_b, self.redis)
        codes.append(("api", self.api_a.terminate(timeout=30), self.api_a.logs()))
        self.api_a.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        for name, code, log in codes:
            self.assertEqual(code, 0, "%s: %s" % (name, log[-3000:]))
            for mark in harness.SANITIZER_MARKS:
                self.assertNotIn(mark, log, "%s: %s" % (name, log[-6000:]))

    def start_worker(self, handlers, env=None):
        cfg = os.path.join(self.tmp, "worker.yaml")
        with open(cfg, "w") as f:
            f.write("worker:\n  handlers:\n")
            for typ, argv in handlers.items():
                f.write("    %s:\n      exec: %s\n" % (typ, json.dumps(argv)))
        port = free_port()
        e = {"JOBMILL_QUEUES": "logs", "JOBMILL_CONCURRENCY": "2", "JOBMILL_LEASE_MS": "3000",
             "JOBMILL_HEARTBEAT_MS": "200", "JOBMILL_LOGS_MAX_LINES": "50",
             "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}
        e.update(env or {})
        svc = Service("worker", self.redis.url, args=["--config", cfg], env=e,
                      logdir=self.tmp).start()
        svc.base = "http://127.0.0.1:%d" % port
        self.services.append(svc)
        wait_http(svc.base + "/readyz")
        return svc

    def submit(self, base, type_, **extra):
        body = {"queue": "logs", "type": type_, "payload": {"n": 1}}
        body.update(extra)
        status, _, job = http("POST", base + "/v1/jobs", body)
        self.assertEqual(status, 201, job)
        return job["id"]

    def get(self, base, jid):
        status, _, job = http("GET", base + "/v1/jobs/" + jid)
        self.assertEqual(status, 200, job)
        return job

    def follow(self, base, jid, query=""):
        f = Follower(base, jid, query)
        f.start()
        self.assertTrue(f.started.wait(15))
        self.assertEqual(f.status, 200)
        self.assertEqual(f.headers.get("content-type"), "text/event-stream")
        return f

    def test_exec_handler_progress_and_logs_followed_on_another_replica(self):
        gate = os.path.join(self.tmp, "gate")
        worker = self.start_worker(
            {"pl": [os.path.join(HANDLERS, "progress_logs.py"), gate]})
        jid = self.submit(self.a, "pl")
        # progress from the progress fd, visible through either replica
        wait_for(lambda: (self.get(self.b, jid).get("progress") or {}).get("progress") == 10,
                 timeout=15, what="progress 10")
        self.assertEqual(self.get(self.a, jid)["progress"], {"progress": 10, "message": "started"})
        f = self.follow(self.b, jid)
        wait_for(lambda: len(f.lines()) >= 4, timeout=15, what="the first four lines")
        first = f.lines()
        self.assertEqual([l["n"] for l in first[:4]], [0, 1, 2, 3])
        self.assertEqual(first[0]["line"], "first line")
        self.assertEqual(first[1]["line"], "x" * 4096 + "...[truncated]")
        self.assertEqual(first[2]["line"], "bin\ufffd\x01\ufffd\ufffd end")
        self.assertEqual(first[3]["line"], "bad utf8 \ufffd( \ufffd\ufffd\ufffd ok")
        self.assertIsNone(f.end(), "the job still runs")
        t0 = time.monotonic()
        open(gate, "w").close()
        wait_for(lambda: f.closed, timeout=15, what="the stream's end")
        # the end came through pub/sub, well before the 5 s keepalive re-read
        self.assertLess(time.monotonic() - t0, 4.0)
        end = f.end()
        self.assertEqual((end["status"], end["reason"], end["next"]), ("succeeded", "finished", 5))
        self.assertEqual(f.lines()[-1]["line"], "last line, no newline")
        job = self.get(self.a, jid)
        self.assertEqual(job["progress"], {"progress": 90, "message": "almost"})
        self.assertEqual(job["result"], {"ok": True})
        # the paged read gives the same lines
        status, _, page = http("GET", self.a + "/v1/jobs/%s/logs?since=2&limit=2" % jid)
        self.assertEqual(status, 200, page)
        self.assertEqual((page["first"], page["next"], page["status"]), (2, 4, "succeeded"))
        self.assertEqual([l["line"] for l in page["lines"]], [first[2]["line"], first[3]["line"]])
        self.assertIsInstance(page["lines"][0]["ts"], float)
        status, _, page = http("GET", self.b + "/v1/jobs/%s/logs" % jid)
        self.assertEqual((len(page["lines"]), page["next"]), (5, 5))
        # a follower of a finished job gets its lines and the end at once
        g = self.follow(self.a, jid, "&since=3")
        wait_for(lambda: g.closed, timeout=10, what="a finished job's stream")
        self.assertEqual([l["n"] for l in g.lines()], [3, 4])
        self.assertEqual(g.end()["reason"], "finished")
        # the two bad progress lines were counted in the worker's log
        wait_for(lambda: "progress lines ignored" in worker.logs(), timeout=5,
                 what="the ignored progress lines logged")
        self.assertEqual(metric(worker, "jobmill_worker_progress_lines_ignored_total"), 2)
        self.assertEqual(metric(worker, "jobmill_worker_log_lines_dropped_total"), 0)

    def test_http_worker_logs_through_a_followed_on_b(self):
        jid = self.submit(self.a, "h")
        status, _, out = http("POST", self.a + "/v1/queues/logs/claim",
                              {"worker": "hw", "max": 1, "wait_s": 0})
        self.assertEqual(status, 200, out)
        token = out["jobs"][0]["lease_token"]
        f = self.follow(self.b, jid)
        status, _, out = http("POST", self.a + "/v1/jobs/%s/logs" % jid,
                              {"lease_token": token, "lines": ["hello", "w\u00f6rld", "a\u0001b"]})
        self.assertEqual((status, out), (200, {"id": jid, "next": 3}))
        wait_for(lambda: len(f.lines()) == 3, timeout=4, what="three lines on replica B")
        self.assertEqual([l["line"] for l in f.lines()], ["hello", "w\u00f6rld", "a\u0001b"])
        # a stale or forged token: 409, nothing appended
        for bad in ("1-0000000000000000", token + "x"):
            status, _, err = http("POST", self.a + "/v1/jobs/%s/logs" % jid,
                                  {"lease_token": bad, "lines": ["zombie"]})
            self.assertEqual((status, err["error"]["code"]), (409, "lease_lost"))
        for body, field in (({"lease_token": token}, "lines"),
                            ({"lease_token": token, "lines": []}, "lines"),
                            ({"lease_token": token, "lines": [1]}, "lines"),
                            ({"lines": ["x"]}, "lease_token")):
            status, _, err = http("POST", self.b + "/v1/jobs/%s/logs" % jid, body)
            self.assertEqual((status, err["error"]["field"]), (400, field), err)
        status, _, page = http("GET", self.b + "/v1/jobs/%s/logs" % jid)
        self.assertEqual(page["next"], 3, "nothing changed")
        status, _, out = http("POST", self.a + "/v1/jobs/%s/complete" % jid,
                              {"lease_token": token, "result": 1})
        self.assertEqual(status, 200, out)
        wait_for(lambda: f.closed, timeout=4, what="the stream's end on B")
        self.assertEqual(f.end(), {"status": "succeeded", "next": 3, "reason": "finished"})
        status, _, err = http("POST", self.a + "/v1/jobs/%s/logs" % jid,
                              {"lease_token": token, "lines": ["late"]})
        self.assertEqual((status, err["error"]["code"]), (409, "lease_lost"))

    def test_python_client_log(self):
        import sys
        sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "clients", "python"))
        import jobmill
        c = jobmill.Client(self.a)
        jid = self.submit(self.a, "py")
        raw = c.claim("logs", "py-1", max=1)[0]
        self.assertEqual(c.log(jid, raw["lease_token"], "one")["next"], 1)
        self.assertEqual(c.log(jid, raw["lease_token"], ["two", "three"])["next"], 3)
        with self.assertRaises(jobmill.LeaseLost):
            c.log(jid, "1-0000000000000000", "zombie")
        page = jobmill.Client(self.b).logs(jid, since=1)
        self.assertEqual([l["line"] for l in page["lines"]], ["two", "three"])
        self.assertEqual((page["next"], page["total"]), (3, 3))

    def test_cli_logs_and_follow(self):
        cli = os.path.join(harness.BIN_DIR, "jobmill")
        jid = self.submit(self.a, "h")
        status, _, out = http("POST", self.a + "/v1/queues/logs/claim",
                              {"worker": "hw", "max": 1, "wait_s": 0})
        token = out["jobs"][0]["lease_token"]
        http("POST", self.a + "/v1/jobs/%s/logs" % jid, {"lease_token": token,
                                                          "lines": ["one", "tw\u00f6"]})
        p = subprocess.run([cli, "--url", self.b, "logs", jid], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, "one\ntw\u00f6\n"), p.stderr)
        p = subprocess.run([cli, "--url", self.b, "--json", "logs", jid, "--since", "1"],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertEqual([json.loads(l)["line"] for l in p.stdout.decode().splitlines()],
                         ["tw\u00f6"])
        # --follow on B while lines arrive through A, until the job ends
        f = subprocess.Popen([cli, "--url", self.b, "logs", jid, "--follow", "--since", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = f.stdout.readline()
            self.assertEqual(line, "tw\u00f6\n".encode())
            http("POST", self.a + "/v1/jobs/%s/logs" % jid, {"lease_token": token,
                                                              "lines": ["three"]})
            self.assertEqual(f.stdout.readline(), b"three\n")
            http("POST", self.a + "/v1/jobs/%s/fail" % jid,
                 {"lease_token": token, "error": "x", "retryable": False})
            self.assertEqual(f.wait(15), 1, "the job failed: exit 1")
        finally:
            if f.poll() is None:
                f.kill()
                f.wait()
            f.stdout.close()
            f.stderr.close()
        missing = jid[:4] + "0" * (len(jid) - 4)
        p = subprocess.run([cli, "--url", self.b, "logs", missing, "--follow"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_bad_queries(self):
        jid = self.submit(self.a, "h")
        for q, field in (("since=-1", "since"), ("since=x", "since"), ("limit=0", "limit"),
                         ("limit=1001", "limit"), ("follow=2", "follow")):
            status, _, err = http("GET", self.a + "/v1/jobs/%s/logs?%s" % (jid, q))
            self.assertEqual((status, err["error"]["field"]), (400, field), q)
        status, _, page = http("GET", self.a + "/v1/jobs/%s/logs" % jid)
        self.assertEqual((status, page["lines"], page["next"], page["status"]),
                         (200, [], 0, "queued"))
        missing = jid[:4] + "0" * (len(jid) - 4)
        for q in ("", "?follow=1"):
            status, _, err = http("GET", self.b + "/v1/jobs/%s/logs%s" % (missing, q))
            self.assertEqual((status, err["error"]["code"]), (404, "not_found"))

    def test_follow_cap_duration_and_shutdown(self):
        api_c, c = harness.start_api(self.redis.url, env={"JOBMILL_LOGS_FOLLOW_MAX": "1",
                                                           "JOBMILL_LOGS_FOLLOW_MAX_S": "1"})
        api_d, d = harness.start_api(self.redis.url)
        try:
            jid = self.submit(self.a, "never")  # no worker serves it: it stays queued
            f = self.follow(c, jid)
            status, h, err = http("GET", c + "/v1/jobs/%s/logs?follow=1" % jid)
            self.assertEqual((status, err["error"]["code"]), (503, "unavailable"))
            self.assertEqual(h.get("retry-after"), "5")
            wait_for(lambda: f.closed, timeout=15, what="the stream's end at follow_max_s")
            self.assertEqual(f.end(), {"status": "queued", "next": 0, "reason": "timeout"})
            g = self.follow(c, jid)  # the slot is free again
            wait_for(lambda: g.closed, timeout=15, what="the second stream's end")
            # a stopping api ends its streams with an end event and exits 0
            s = self.follow(d, jid)
            api_d.signal(15)
            wait_for(lambda: s.closed, timeout=15, what="the stream's end at shutdown")
            self.assertEqual(s.end()["reason"], "shutdown")
            self.assertEqual(api_d.wait(30), 0, api_d.logs()[-3000:])
            self.assertEqual(api_c.terminate(30), 0, api_c.logs()[-3000:])
        finally:
            api_c.stop()
            api_d.stop()

    def test_stderr_flood_is_capped(self):
        worker = self.start_worker(
            {"flood": [os.path.join(HANDLERS, "stderr_flood.py")]})

        def rss_kib():
            with open("/proc/%d/status" % worker.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
            return 0
        before = rss_kib()
        jid = self.submit(self.a, "flood", timeout_s=3, max_attempts=1)
        wait_for(lambda: self.get(self.a, jid)["status"] == "failed",
                 timeout=30, what="the flood's timeout")
        job = self.get(self.a, jid)
        self.assertIn("timeout", job["error"])
        status, _, page = http("GET", self.b + "/v1/jobs/%s/logs" % jid)
        self.assertEqual(status, 200)
        self.assertEqual(len(page["lines"]), 50, "logs.max_lines kept")
        self.assertGreater(page["next"], 50)
        texts = [l["line"] for l in page["lines"]]
        self.assertTrue(all(t == "flood line" or t.startswith("[jobmill: ") for t in texts), texts)
        self.assertTrue(any("lines dropped]" in t for t in texts), texts)
        self.assertIsNotNone(job["progress"])
        # at most ten flushes a second: the log numbers grew by a bounded amount
        self.assertLess(page["next"], 5 * 10 * 258)
        self.assertLess(rss_kib() - before, 64 * 1024, "worker memory stays bounded")
        self.assertGreater(metric(worker, "jobmill_worker_log_lines_dropped_total"), 1000)


if __name__ == "__main__":
    unittest.main()
