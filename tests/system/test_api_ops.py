"""test_api_ops.py - jobmill-api operations: Redis outages and recovery,
readiness, bearer auth, the queue limit, SIGTERM drain, and the command line.

Each test starts its own redis-server and api (on free loopback ports) since
most of them kill, restart or misconfigure something.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BIN_DIR, Service, http, start_api, wait_for

API = os.path.join(BIN_DIR, "jobmill-api")


def sanitizer_clean(test, svc):
    log = svc.logs()
    test.assertNotIn("Sanitizer", log, log[-6000:])
    test.assertNotIn("runtime error:", log, log[-6000:])


class OpsTest(unittest.TestCase):
    def setUp(self):
        self.cleanup = []

    def tearDown(self):
        for f in reversed(self.cleanup):
            f()

    def redis(self, **kw):
        r = harness.RedisServer(**kw)
        self.cleanup.append(r.stop)
        return r

    def api(self, redis_url, env=None, **kw):
        svc, base = start_api(redis_url, env=env, **kw)
        self.cleanup.append(svc.stop)
        return svc, base

    def stop_clean(self, svc):
        self.assertEqual(svc.terminate(timeout=30), 0, svc.logs()[-4000:])
        sanitizer_clean(self, svc)

    # ---- Redis trouble ----

    def test_redis_down_gives_503_then_recovers_without_restart(self):
        r = self.redis()
        svc, base = self.api(r.url)
        st, _, job = http("POST", base + "/v1/jobs", {"queue": "rd", "type": "t"})
        self.assertEqual(st, 201)
        r.kill()
        for method, path, body in (("POST", "/v1/jobs", {"type": "t"}),
                                   ("GET", "/v1/jobs/" + job["id"], None),
                                   ("POST", "/v1/jobs/batch", {"jobs": [{"type": "t"}]}),
                                   ("GET", "/v1/queues", None),
                                   ("GET", "/v1/queues/rd/jobs?state=queued", None),
                                   ("POST", "/v1/queues/rd/pause", None),
                                   ("POST", "/v1/jobs/%s/cancel" % job["id"], None),
                                   ("GET", "/v1/workers", None)):
            with self.subTest(path=path):
                t0 = time.monotonic()
                st, h, err = http(method, base + path, body, timeout=30)
                self.assertEqual(st, 503, err)
                self.assertEqual(err["error"]["code"], "unavailable")
                self.assertEqual(h.get("retry-after"), "1")
                self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(http("GET", base + "/healthz")[0], 200)
        st, _, ready = http("GET", base + "/readyz")
        self.assertEqual(st, 503)
        self.assertTrue(ready["reason"])
        self.assertEqual(http("GET", base + "/metrics", raw=True)[0], 200)
        self.assertTrue(svc.alive())
        r.start()  # same port, empty data
        wait_for(lambda: http("POST", base + "/v1/jobs", {"queue": "rd", "type": "t"})[0] == 201,
                 timeout=30, what="submits succeed after Redis came back")
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, timeout=30,
                 what="/readyz 200 again")
        self.stop_clean(svc)

    def test_redis_down_at_start_keeps_running_and_retries(self):
        r = self.redis()
        r.kill()  # its port stays reserved for the restart below
        svc, base = self.api(r.url, wait_ready=False)
        st, h, err = http("POST", base + "/v1/jobs", {"type": "t"})
        self.assertEqual((st, err["error"]["code"], h.get("retry-after")), (503, "unavailable", "1"))
        self.assertEqual(http("GET", base + "/readyz")[0], 503)
        self.assertTrue(svc.alive())
        r.start()
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, timeout=30,
                 what="/readyz 200 once Redis is up")
        self.assertEqual(http("POST", base + "/v1/jobs", {"type": "t"})[0], 201)
        self.assertEqual(r.cmd("GET", "jm:version"), "2")
        self.stop_clean(svc)

    def test_newer_layout_refuses_to_start(self):
        r = self.redis()
        r.cmd("SET", "jm:version", "99")
        port = harness.free_port()
        svc = Service("api", r.url, env={"JOBMILL_LISTEN": "127.0.0.1:%d" % port}).start()
        self.cleanup.append(svc.stop)
        self.assertEqual(svc.wait(30), 1)
        self.assertIn("newer", svc.logs())
        sanitizer_clean(self, svc)

    def test_readyz_refuses_an_evicting_redis(self):
        r = self.redis(extra=["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"])
        svc, base = self.api(r.url, wait_ready=False)
        st, _, body = http("GET", base + "/readyz")
        self.assertEqual(st, 503, body)
        self.assertIn("allkeys-lru", body["reason"])
        self.assertEqual(http("GET", base + "/healthz")[0], 200)
        r.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, timeout=10,
                 what="/readyz 200 with noeviction")
        self.stop_clean(svc)

    def test_queue_limit(self):
        r = self.redis()
        svc, base = self.api(r.url, env={"JOBMILL_MAX_QUEUES": "2"})
        for q in ("ql1", "ql2"):
            self.assertEqual(http("POST", base + "/v1/jobs", {"queue": q, "type": "t"})[0], 201)
        before = http("GET", base + "/v1/queues")[2]
        st, _, err = http("POST", base + "/v1/jobs", {"queue": "ql3", "type": "t"})
        self.assertEqual((st, err["error"]["code"], err["error"]["field"]),
                         (400, "invalid_field", "queue"), err)
        st, _, err = http("POST", base + "/v1/jobs/batch",
                          {"jobs": [{"queue": "ql1", "type": "t"}, {"queue": "ql4", "type": "t"}]})
        self.assertEqual((st, err["error"]["field"]), (400, "jobs[1].queue"), err)
        self.assertEqual(http("GET", base + "/v1/queues")[2], before)
        # known queues still take jobs
        self.assertEqual(http("POST", base + "/v1/jobs", {"queue": "ql2", "type": "t"})[0], 201)
        self.stop_clean(svc)

    # ---- auth ----

    def test_bearer_auth(self):
        r = self.redis()
        d = tempfile.mkdtemp(prefix="jm-sys-tokens-")
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("# api tokens\n\n  s3cret-one  \n# s3cret-commented\ns3cret-two\n")
        svc, base = self.api(r.url, env={"JOBMILL_API_TOKENS_FILE": tokens})
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-one"},
                     {"Authorization": "Bearer s3cret-commented"},
                     {"Authorization": "Bearer s3cret-on"}, {"Authorization": "Basic s3cret-one"}):
            with self.subTest(hdrs=hdrs):
                st, h, err = http("GET", base + "/v1/queues", headers=hdrs)
                self.assertEqual((st, err["error"]["code"]), (401, "unauthorized"))
                self.assertIn("Bearer", h.get("www-authenticate", ""))
        st, _, _ = http("POST", base + "/v1/jobs", {"type": "t"})
        self.assertEqual(st, 401)
        self.assertEqual(r.cmd("SCARD", "jm:{registry}:queues"), 0)  # nothing stored
        for tok in ("s3cret-one", "s3cret-two"):
            st, _, body = http("GET", base + "/v1/queues", headers={"Authorization":
                                                                    "Bearer " + tok})
            self.assertEqual(st, 200, body)
        st, _, _ = http("POST", base + "/v1/jobs", {"type": "t"},
                        headers={"Authorization": "bearer s3cret-two"})
        self.assertEqual(st, 201)
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(http("GET", base + path, raw=True)[0], 200, path)
        self.stop_clean(svc)

    def test_sighup_reloads_the_tokens_file(self):
        r = self.redis()
        d = tempfile.mkdtemp(prefix="jm-sys-tokens-")
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("old-token\n")
        svc, base = self.api(r.url, env={"JOBMILL_API_TOKENS_FILE": tokens})

        def status(tok):
            return http("GET", base + "/v1/queues", headers={"Authorization": "Bearer " + tok})[0]
        self.assertEqual((status("old-token"), status("new-token")), (200, 401))
        with open(tokens + ".tmp", "w") as f:
            f.write("new-token\n")
        os.rename(tokens + ".tmp", tokens)
        svc.signal(signal.SIGHUP)
        wait_for(lambda: status("new-token") == 200, timeout=10, what="the new token accepted")
        self.assertEqual(status("old-token"), 401, "the old token is gone")
        # a file that cannot be read keeps the tokens in force
        os.remove(tokens)
        svc.signal(signal.SIGHUP)
        wait_for(lambda: "tokens file not reloaded" in svc.logs(), timeout=10,
                 what="the failed reload logged")
        self.assertEqual(status("new-token"), 200)
        self.assertNotIn("new-token", svc.logs(), "a token is never logged")
        self.assertTrue(svc.alive())
        self.stop_clean(svc)

    def test_admin_tokens_file_keeps_submit_tokens_off_operator_routes(self):
        r = self.redis()
        d = tempfile.mkdtemp(prefix="jm-sys-tokens-")
        tokens, admin = os.path.join(d, "tokens"), os.path.join(d, "admin")
        with open(tokens, "w") as f:
            f.write("submit-s3cret\n")
        with open(admin, "w") as f:
            f.write("# operators\nadmin-s3cret\n")
        svc, base = self.api(r.url, args=["--api-admin-tokens-file", admin],
                             env={"JOBMILL_API_TOKENS_FILE": tokens})

        def call(method, path, tok, body=None):
            hdrs = {"Authorization": "Bearer " + tok} if tok else {}
            return http(method, base + path, body, headers=hdrs)
        # the submit token submits, reads and lists
        st, _, job = call("POST", "/v1/jobs", "submit-s3cret", {"queue": "adm", "type": "t"})
        self.assertEqual(st, 201, job)
        st, _, batch = call("POST", "/v1/jobs/batch", "submit-s3cret",
                            {"jobs": [{"queue": "adm", "type": "t"}]})
        self.assertEqual(st, 201, batch)
        for path in ("/v1/jobs/" + job["id"], "/v1/queues", "/v1/queues/adm/jobs?state=queued",
                     "/v1/workers"):
            self.assertEqual(call("GET", path, "submit-s3cret")[0], 200, path)
        # ... and cannot cancel, retry, pause or resume: 403, nothing changes
        before = http("GET", base + "/v1/jobs/" + job["id"],
                      headers={"Authorization": "Bearer admin-s3cret"})[2]
        admin_routes = ("/v1/jobs/%s/cancel" % job["id"], "/v1/jobs/%s/retry" % job["id"],
                        "/v1/queues/adm/pause", "/v1/queues/adm/resume")
        for path in admin_routes:
            with self.subTest(path=path):
                st, h, err = call("POST", path, "submit-s3cret")
                self.assertEqual(st, 403, err)
                self.assertEqual(err["error"]["code"], "forbidden")
                self.assertIn("admin token", err["error"]["message"])
                self.assertEqual(h.get("content-type"), "application/json")
                # no token or a wrong one stays 401
                for tok in (None, "wrong", "submit-s3cre"):
                    self.assertEqual(call("POST", path, tok)[0], 401, tok)
        limits = {"rate": {"n": 5, "per_s": 1}, "concurrency": 2}
        st, _, err = call("PUT", "/v1/queues/adm/limits", "submit-s3cret", limits)
        self.assertEqual((st, err["error"]["code"]), (403, "forbidden"), err)
        queues = call("GET", "/v1/queues", "admin-s3cret")[2]["queues"]
        self.assertEqual([(q["paused"], q["limits"]) for q in queues if q["name"] == "adm"],
                         [(False, {"rate": None, "concurrency": None, "types": {}})], queues)
        self.assertEqual(call("PUT", "/v1/queues/adm/limits", "admin-s3cret", limits)[0], 200)
        self.assertEqual(call("GET", "/v1/jobs/" + job["id"], "admin-s3cret")[2], before)
        # the admin token does everything, the submit routes included
        self.assertEqual(call("POST", "/v1/jobs", "admin-s3cret", {"queue": "adm",
                                                                   "type": "t"})[0], 201)
        self.assertEqual(call("POST", "/v1/queues/adm/pause", "admin-s3cret")[0], 200)
        self.assertEqual(call("POST", "/v1/queues/adm/resume", "admin-s3cret")[0], 200)
        st, _, body = call("POST", "/v1/jobs/%s/cancel" % job["id"], "admin-s3cret")
        self.assertEqual((st, body["status"]), (200, "canceled"), body)
        st, _, body = call("POST", "/v1/jobs/%s/retry" % job["id"], "admin-s3cret")
        self.assertEqual((st, body["status"]), (200, "queued"), body)
        # SIGHUP reloads both files: the old admin token is demoted to submit
        with open(tokens + ".tmp", "w") as f:
            f.write("submit-s3cret\nadmin-s3cret\n")
        with open(admin + ".tmp", "w") as f:
            f.write("admin-n3w\n")
        os.rename(tokens + ".tmp", tokens)
        os.rename(admin + ".tmp", admin)
        svc.signal(signal.SIGHUP)
        wait_for(lambda: call("POST", "/v1/queues/adm/pause", "admin-n3w")[0] == 200, timeout=10,
                 what="the new admin token accepted")
        self.assertEqual(call("POST", "/v1/queues/adm/resume", "admin-s3cret")[0], 403)
        self.assertEqual(call("GET", "/v1/queues", "admin-s3cret")[0], 200)
        # a bad admin file keeps both sets as they were
        with open(admin, "w") as f:
            f.write("two words\n")
        svc.signal(signal.SIGHUP)
        wait_for(lambda: "tokens file not reloaded" in svc.logs(), timeout=10,
                 what="the failed reload logged")
        self.assertEqual(call("POST", "/v1/queues/adm/resume", "admin-n3w")[0], 200)
        self.assertEqual(call("POST", "/v1/queues/adm/resume", "submit-s3cret")[0], 403)
        log = svc.logs()
        for secret in ("s3cret", "n3w", "two words"):
            self.assertNotIn(secret, log, "a token is never logged")
        self.stop_clean(svc)

    def test_unreadable_admin_tokens_file_exits_2(self):
        r = self.redis()
        p = subprocess.run([API], env=dict(os.environ, REDIS_URL=r.url,
                                           JOBMILL_API_ADMIN_TOKENS_FILE="/nonexistent/admin",
                                           JOBMILL_LISTEN="127.0.0.1:%d" % harness.free_port()),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"/nonexistent/admin", p.stderr)
        self.assertIn(b"api.admin_tokens_file", p.stderr)

    def test_unreadable_tokens_file_exits_2(self):
        r = self.redis()
        p = subprocess.run([API, "--api-tokens-file", "/nonexistent/tokens"],
                           env=dict(os.environ, REDIS_URL=r.url,
                                    JOBMILL_LISTEN="127.0.0.1:%d" % harness.free_port()),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"/nonexistent/tokens", p.stderr)

    # ---- slow clients ----

    def test_request_timeout_is_a_minimum_body_rate(self):
        """api.request_timeout_ms: a body must keep up 64 KiB per timeout. A
        steady client above that rate is served however long its body takes;
        a trickling one gets 400 after about one timeout (the watchdog ends
        civetweb's blocked read) and stores nothing."""
        r = self.redis()
        svc, base = self.api(r.url, env={"JOBMILL_API_REQUEST_TIMEOUT_MS": "1000"})
        port = int(base.rsplit(":", 1)[1])

        def post(body, piece, pause):
            head = ("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % len(body)).encode()
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            t0 = time.monotonic()
            try:
                s.sendall(head)
                for i in range(0, len(body), piece):
                    time.sleep(pause)  # the client's pace under test, not a wait
                    try:
                        s.sendall(body[i:i + piece])
                    except OSError:
                        break  # the api gave up on it
                got = b""
                while not got.endswith(b"}"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                return int(got.split()[1]), got.partition(b"\r\n\r\n")[2], \
                    time.monotonic() - t0
            finally:
                s.close()
        steady = json.dumps({"queue": "slow", "type": "t", "payload": "x" * 300000}).encode()
        st, body, took = post(steady, 16384, 0.05)  # ~320 KiB/s for about 1 s
        self.assertEqual(st, 201, body)
        self.assertGreater(took, 0.8)
        trickle = json.dumps({"queue": "slow", "type": "t"}).encode()
        st, body, took = post(trickle, 1, 0.3)
        self.assertEqual(st, 400, body)
        self.assertIn(b"too slow", body)
        self.assertLess(took, 3.0)
        st, _, jobs = http("GET", base + "/v1/queues/slow/jobs?state=queued")
        self.assertEqual(len(jobs["jobs"]), 1, jobs)
        self.stop_clean(svc)

    # ---- drain ----

    def test_sigterm_drains_then_exits_0(self):
        r = self.redis()
        svc, base = self.api(r.url, env={"JOBMILL_API_DRAIN_DELAY_MS": "1500"})
        st, _, job = http("POST", base + "/v1/jobs", {"queue": "dr", "type": "t"})
        self.assertEqual(st, 201)
        waiter = subprocess.Popen(["python3", "-c", (
            "import sys, harness; st, _, b = harness.http('GET', sys.argv[1], timeout=60);"
            "print(st, b['status'])"), base + "/v1/jobs/%s?wait=55" % job["id"]],
            cwd=harness.HERE, stdout=subprocess.PIPE)
        self.cleanup.append(lambda: waiter.kill() if waiter.poll() is None else None)
        wait_for(lambda: "jobmill_api_long_polls 1" in http("GET", base + "/metrics", raw=True)[2],
                 timeout=10, what="the long-poll registered")
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        wait_for(lambda: http("GET", base + "/readyz")[0] == 503, timeout=1.0,
                 what="/readyz 503 right after SIGTERM")
        st, _, body = http("GET", base + "/readyz")
        self.assertIn("draining", body["reason"])
        # still serving during the drain delay
        self.assertEqual(http("GET", base + "/v1/jobs/" + job["id"])[0], 200)
        self.assertLess(time.monotonic() - t0, 1.4)
        code = svc.wait(30)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 0, svc.logs()[-4000:])
        self.assertGreaterEqual(elapsed, 1.4)
        out, _ = waiter.communicate(timeout=30)
        self.assertEqual(out.decode().split(), ["200", "queued"])  # woken, answered as it is
        sanitizer_clean(self, svc)

    def test_second_sigterm_exits_at_once(self):
        r = self.redis()
        svc, base = self.api(r.url, env={"JOBMILL_API_DRAIN_DELAY_MS": "60000"})
        svc.signal(signal.SIGTERM)
        wait_for(lambda: http("GET", base + "/readyz")[0] == 503, timeout=5,
                 what="draining")
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        code = svc.wait(10)
        self.assertEqual(code, 1)
        self.assertLess(time.monotonic() - t0, 5)


class CommandLineTest(unittest.TestCase):
    def run_api(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([API] + list(args), env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)

    def test_help_and_version_exit_0(self):
        p = self.run_api("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"--max-waiters", p.stdout)
        p = self.run_api("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"0.", p.stdout)

    def test_bad_flag_exits_2(self):
        p = self.run_api("--no-such-flag")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"no-such-flag", p.stderr)
        p = self.run_api("--max-waiters", "lots")
        self.assertEqual(p.returncode, 2)

    def test_bad_config_file_exits_2_naming_file_and_line(self):
        d = tempfile.mkdtemp(prefix="jm-sys-cfg-")
        path = os.path.join(d, "api.yaml")
        with open(path, "w") as f:
            f.write("api:\n  listen: 127.0.0.1:1\n  max_waiters: many\n")
        p = self.run_api("--config", path)
        self.assertEqual(p.returncode, 2, p.stderr)
        err = p.stderr.decode()
        self.assertIn("%s:3" % path, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_print_routes(self):
        p = self.run_api("--print-routes")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"GET /v1/jobs/{id}", p.stdout)


if __name__ == "__main__":
    unittest.main()
