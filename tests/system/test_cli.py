"""test_cli.py - the jobmill command line against a real api and worker.

Every command, in human and --json form, and every exit code: 0 ok, 1 the
job ended failed/canceled/expired (or the api refused: 409), 2 usage, 3 not
found, 4 api unreachable (nothing listening, or Redis down: 503), 5
unauthorized (auth on, token missing or wrong), 6 wait timed out.
"""
import json
import os
import subprocess
import tempfile
import unittest

import harness
from harness import BIN_DIR, Service, http, start_api, stop_api, wait_for, wait_http

CLI = os.path.join(BIN_DIR, "jobmill")


def run_cli(*args, url=None, env=None, stdin=None, timeout=60):
    """Runs jobmill with args; returns (exit code, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if k not in ("JOBMILL_URL", "JOBMILL_TOKEN")}
    if url is not None:
        e["JOBMILL_URL"] = url
    e.update(env or {})
    p = subprocess.run([CLI] + [str(a) for a in args], input=stdin, env=e, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.stdout.decode(), p.stderr.decode()
    for mark in harness.SANITIZER_MARKS:
        if mark in err:
            raise AssertionError("sanitizer report from jobmill %s:\n%s" % (args, err))
    return p.returncode, out, err


def start_worker(redis_url, queues):
    port = harness.free_port()
    w = Service("worker", redis_url, env={
        "JOBMILL_QUEUES": queues, "JOBMILL_CONCURRENCY": "4",
        "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port, "JOBMILL_HEARTBEAT_MS": "200",
        "JOBMILL_LEASE_MS": "3000", "JOBMILL_SHUTDOWN_GRACE_MS": "5000",
        "JOBMILL_BACKOFF_BASE_MS": "20", "JOBMILL_BACKOFF_MAX_MS": "40"}).start()
    wait_http("http://127.0.0.1:%d/readyz" % port, timeout=20)
    return w


class CliTest(unittest.TestCase):
    """One Redis, api and worker (queues default, cq, rfq) for the class."""

    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()
        cls.api, cls.base = start_api(cls.redis.url)
        cls.worker = start_worker(cls.redis.url, "default,cq,rfq")

    @classmethod
    def tearDownClass(cls):
        code = cls.worker.terminate(timeout=30)
        log = cls.worker.logs()
        cls.worker.stop()
        stop_api(cls.api, cls.redis)
        if code != 0 or any(m in log for m in harness.SANITIZER_MARKS):
            raise AssertionError("worker exited %s; log:\n%s" % (code, log[-4000:]))

    def cli(self, *args, **kw):
        kw.setdefault("url", self.base)
        return run_cli(*args, **kw)

    def ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        self.assertEqual(rc, 0, "jobmill %s: %s" % (args, err))
        return out

    def job(self, job_id):
        st, _, j = http("GET", self.base + "/v1/jobs/" + job_id)
        self.assertEqual(st, 200, j)
        return j

    # ---- help and usage (exit 2) ----

    def test_help_lists_every_command_and_each_has_its_own(self):
        out = self.ok("--help")
        cmds = ("submit", "get", "wait", "cancel", "retry", "ls", "queues", "workers", "pause",
                "resume", "retry-failed")
        for c in cmds:
            self.assertIn("\n  %s " % c, out)
            with self.subTest(cmd=c):
                rc, text, _ = self.cli(c, "--help")
                self.assertEqual(rc, 0)
                self.assertTrue(text.startswith("usage: jobmill %s" % c), text)
                self.assertEqual(self.cli("help", c)[1], text)
        self.assertIn("--url URL", out)
        self.assertRegex(self.ok("--version"), r"^jobmill \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2_and_say_why(self):
        cases = [((), "usage: jobmill"), (("frobnicate",), 'unknown command "frobnicate"'),
                 (("queues", "--nope"), "unknown option --nope"),
                 (("submit",), "expected TYPE [PAYLOAD]"),
                 (("submit", "echo", "{bad"), "the payload is not JSON"),
                 (("submit", "echo", "@/nonexistent/p.json"), "cannot read the payload file"),
                 (("submit", "echo", "--max-attempts", "x"), "--max-attempts"),
                 (("submit", "echo", "--queue"), "--queue needs a value"),
                 (("ls", "default"), "--state is required"),
                 (("ls", "default", "--state", "weird"), 'unknown state "weird"'),
                 (("ls", "default", "--state", "queued", "--limit", "0"), "--limit"),
                 (("wait", "x", "--timeout", "soon"), "--timeout"),
                 (("get",), "expected one job ID"), (("pause",), "expected one QUEUE"),
                 (("queues", "--count", "2"), "go with --watch"),
                 (("--url", "https://127.0.0.1:1", "queues"), "https is not supported")]
        for args, want in cases:
            with self.subTest(args=args):
                rc, out, err = self.cli(*args)
                self.assertEqual(rc, 2, (out, err))
                self.assertIn(want, err)

    def test_an_invalid_field_from_the_api_exits_2_with_code_and_message(self):
        rc, _, err = self.cli("submit", "echo", "--queue", "no spaces allowed")
        self.assertEqual(rc, 2)
        self.assertIn("jobmill: invalid_field:", err)
        self.assertIn("(field queue)", err)

    # ---- submit ----

    def test_submit_prints_the_id_and_sends_every_option(self):
        job_id = self.ok("submit", "echo", '{"a": 1}', "--queue", "cq", "--max-attempts", "7",
                         "--delay", "120").strip()
        j = self.job(job_id)
        self.assertEqual((j["queue"], j["type"], j["payload"], j["max_attempts"], j["status"]),
                         ("cq", "echo", {"a": 1}, 7, "scheduled"))
        self.assertGreater(j["run_at"] - j["created_at"], 100)
        out = self.ok("--json", "submit", "echo", "--queue=cq", "--delay=60")
        self.assertEqual(json.loads(out)["payload"], None)

    def test_submit_payload_from_a_file_and_from_stdin(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"from": "file", "n": [1, 2]}, f)
        self.addCleanup(os.unlink, f.name)
        job_id = self.ok("submit", "echo", "@" + f.name, "--delay", "60").strip()
        self.assertEqual(self.job(job_id)["payload"], {"from": "file", "n": [1, 2]})
        job_id = self.ok("submit", "echo", "-", "--delay", "60", stdin=b'"from stdin"').strip()
        self.assertEqual(self.job(job_id)["payload"], "from stdin")

    def test_idempotency_key_returns_the_first_job(self):
        a = self.ok("submit", "echo", "1", "--idempotency-key", "cli-k1", "--delay", "60")
        b = self.ok("submit", "echo", "2", "--idempotency-key", "cli-k1", "--delay", "60")
        self.assertEqual(a, b)
        self.assertEqual(self.job(a.strip())["payload"], 1)

    def test_submit_wait_prints_the_result_and_exits_with_the_outcome(self):
        rc, out, _ = self.cli("submit", "echo", '{"hello": "cli"}', "--wait")
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), {"hello": "cli"})
        rc, out, err = self.cli("submit", "fail", '{"message": "it broke", "permanent": true}',
                                "--wait")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertRegex(err, r"job \S+ failed: it broke")
        rc, out, _ = self.cli("--json", "submit", "echo", "[3]", "--wait")
        self.assertEqual(rc, 0)
        j = json.loads(out)
        self.assertEqual((j["status"], j["result"]), ("succeeded", [3]))
        self.assertGreaterEqual(j["fence"], 1)

    # ---- get, wait ----

    def test_get_shows_every_field_and_404_exits_3(self):
        job_id = self.ok("submit", "echo", '{"k": "v"}').strip()
        wait_for(lambda: self.job(job_id)["status"] == "succeeded", what="echo job done")
        out = self.ok("get", job_id)
        for field in ("id", "queue", "type", "status", "attempts", "fence", "worker",
                      "created_at", "started_at", "finished_at", "payload", "result"):
            self.assertRegex(out, r"(?m)^%s +\S" % field)
        self.assertRegex(out, r"(?m)^status +succeeded$")
        self.assertRegex(out, r'(?m)^result +\{"k":"v"\}$')
        self.assertEqual(json.loads(self.ok("--json", "get", job_id))["id"], job_id)
        rc, out, err = self.cli("get", "no-such-job")
        self.assertEqual((rc, out), (3, ""))
        self.assertIn("jobmill: not_found:", err)
        for cmd in ("wait", "cancel", "retry"):
            self.assertEqual(self.cli(cmd, "no-such-job")[0], 3, cmd)

    def test_wait_exit_codes(self):
        ok_id = self.ok("submit", "sleep", '{"ms": 200}').strip()
        rc, out, _ = self.cli("wait", ok_id)
        self.assertEqual((rc, out), (0, "null\n"))
        bad_id = self.ok("submit", "fail", '{"message": "nope", "permanent": true}').strip()
        self.assertEqual(self.cli("wait", bad_id, "--timeout", "30")[0], 1)
        later = self.ok("submit", "echo", "--delay", "300").strip()
        rc, out, err = self.cli("wait", later, "--timeout", "0.3")
        self.assertEqual(rc, 6)
        self.assertIn("still scheduled", err)
        rc, out, _ = self.cli("--json", "wait", later, "--timeout", "0")
        self.assertEqual((rc, json.loads(out)["status"]), (6, "scheduled"))
        self.ok("cancel", later)
        self.assertEqual(self.cli("wait", later)[0], 1)

    # ---- cancel, retry ----

    def test_cancel_and_retry_and_their_409(self):
        job_id = self.ok("submit", "echo", "--delay", "300").strip()
        self.assertEqual(self.ok("cancel", job_id), "%s canceled\n" % job_id)
        rc, _, err = self.cli("cancel", job_id)
        self.assertEqual(rc, 1)
        self.assertIn("jobmill: invalid_state:", err)
        out = json.loads(self.ok("--json", "retry", job_id))
        # the answer is read after the retry: the worker may have claimed it already
        self.assertEqual(out["id"], job_id)
        self.assertIn((out["status"], out["attempts"]),
                      (("queued", 0), ("running", 1), ("succeeded", 1)))
        wait_for(lambda: self.job(job_id)["status"] == "succeeded", what="retried job done")
        rc, _, err = self.cli("retry", job_id)
        self.assertEqual(rc, 1)
        self.assertIn("invalid_state", err)

    def test_cancel_of_a_running_job_asks_it_to_stop(self):
        job_id = self.ok("submit", "sleep", '{"ms": 20000}').strip()
        wait_for(lambda: self.job(job_id)["status"] == "running", what="sleep job running")
        self.assertEqual(self.ok("cancel", job_id), "%s running (cancel requested)\n" % job_id)
        self.assertEqual(self.cli("wait", job_id, "--timeout", "20")[0], 1)
        self.assertEqual(self.job(job_id)["status"], "canceled")

    # ---- queues, ls, pause, resume, retry-failed ----

    def test_ls_follows_cursors_past_one_page(self):
        n = 1200  # the api's pages hold at most 1000
        for start in range(0, n, 600):
            st, _, body = http("POST", self.base + "/v1/jobs/batch",
                               {"jobs": [{"queue": "lsq", "type": "echo", "payload": i}
                                         for i in range(start, start + 600)]})
            self.assertEqual(st, 201, body)
        jobs = json.loads(self.ok("--json", "ls", "lsq", "--state", "queued"))["jobs"]
        self.assertEqual(len(jobs), n)
        self.assertEqual(len({j["id"] for j in jobs}), n)
        self.assertEqual([j["payload"] for j in jobs[:3]], [0, 1, 2])  # FIFO
        jobs = json.loads(self.ok("--json", "ls", "lsq", "--state", "queued",
                                  "--limit", "1001"))["jobs"]
        self.assertEqual(len(jobs), 1001)
        out = self.ok("ls", "lsq", "--state", "queued", "--limit", "3").splitlines()
        self.assertEqual(len(out), 4)
        self.assertRegex(out[0], r"^ID +STATUS +TYPE +ATTEMPTS +CREATED +FINISHED +ERROR$")
        self.assertRegex(out[1], r"^\S+ +queued +echo +0/3 ")
        self.assertEqual(self.ok("ls", "lsq", "--state", "failed").count("\n"), 1)
        self.assertEqual(self.cli("ls", "no-such-queue", "--state", "queued")[0], 3)

    def test_queues_table_and_json(self):
        self.ok("submit", "echo", "--queue", "tabq", "--delay", "300")
        out = self.ok("queues")
        self.assertRegex(out.splitlines()[0], r"^QUEUE +QUEUED +SCHEDULED +RUNNING +SUCCEEDED "
                         r"+FAILED +CANCELED +EXPIRED +PAUSED$")
        self.assertRegex(out, r"(?m)^tabq +0 +1 +0 +0 +0 +0 +0 +no$")
        q = {x["name"]: x for x in json.loads(self.ok("--json", "queues"))["queues"]}
        self.assertEqual(q["tabq"]["scheduled"], 1)

    def test_queues_watch_refreshes_with_rates(self):
        rc, out, _ = self.cli("--json", "queues", "--watch", "--interval", "0.3", "--count", "3")
        self.assertEqual(rc, 0)
        lines = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(lines), 3)
        for line in lines:
            self.assertIsInstance(line["ts"], float)
            for q in line["queues"]:
                self.assertEqual(set(q["rates"]), {"queued", "scheduled", "running", "succeeded",
                                                   "failed", "canceled", "expired"})
        self.assertGreaterEqual(lines[2]["ts"] - lines[0]["ts"], 0.5)
        out = self.ok("queues", "--watch", "--interval", "0.2", "--count", "2")
        self.assertEqual(out.count("SUCCEEDED/S"), 2)

    def test_watch_rates_count_jobs_finished_between_refreshes(self):
        # a background batch of jobs finishes while the watch runs; the queue
        # exists before the first refresh (a delayed job), so however fast the
        # batch runs, its jobs finish after a refresh that saw the queue at 0
        self.ok("submit", "echo", "--queue", "cq", "--delay", "300")
        p = subprocess.Popen([CLI, "--url", self.base, "--json", "queues", "--watch",
                              "--interval", "0.5", "--count", "6"], stdout=subprocess.PIPE)
        wait_for(lambda: http("GET", self.base + "/v1/queues")[0] == 200, what="api")
        st, _, body = http("POST", self.base + "/v1/jobs/batch",
                           {"jobs": [{"queue": "cq", "type": "sleep", "payload": {"ms": 50}}
                                     for _ in range(40)]})
        self.assertEqual(st, 201, body)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        rates = [q["rates"]["succeeded"] for line in out.decode().splitlines()
                 for q in json.loads(line)["queues"] if q["name"] == "cq"]
        self.assertGreater(max(rates), 0, rates)

    def test_pause_and_resume(self):
        self.ok("submit", "echo", "--queue", "pq", "--delay", "300")
        self.assertEqual(self.ok("pause", "pq"), "queue pq paused\n")
        q = {x["name"]: x for x in http("GET", self.base + "/v1/queues")[2]["queues"]}
        self.assertTrue(q["pq"]["paused"])
        self.assertRegex(self.ok("queues"), r"(?m)^pq +.* yes$")
        self.assertFalse(json.loads(self.ok("--json", "resume", "pq"))["paused"])
        rc, _, err = self.cli("pause", "never-used-queue")
        self.assertEqual(rc, 3)
        self.assertIn("not_found", err)

    def test_limits_show_set_and_clear(self):
        self.ok("submit", "echo", "--queue", "lq", "--delay", "300")
        self.assertEqual(self.ok("limits", "lq"),
                         "queue lq\n  rate         none\n  concurrency  none\n")
        out = self.ok("limits", "lq", "--rate", "30/60", "--concurrency", "2")
        self.assertIn("  rate         30 per 60 s (30 tokens now)\n", out)
        self.assertIn("  concurrency  2 (running 0)\n", out)
        q = json.loads(self.ok("--json", "limits", "lq", "--no-rate"))
        self.assertEqual(q["limits"], {"rate": None, "concurrency": 2, "types": {}})
        out = self.ok("limits", "lq", "--type-concurrency", "solve:v2=3")
        self.assertIn("  type solve:v2  3 (running 0)\n", out)
        q = json.loads(self.ok("--json", "limits", "lq", "--no-type-concurrency", "solve:v2"))
        self.assertEqual(q["limits"]["types"], {})
        self.assertEqual(self.cli("limits", "lq", "--type-concurrency", "solve")[0], 2)
        self.assertEqual(self.cli("limits", "lq", "--type-concurrency", "solve=0")[0], 2)
        q = json.loads(self.ok("--json", "limits", "lq"))
        self.assertEqual(q["limits"]["concurrency"], 2)
        self.assertEqual(self.cli("limits", "lq", "--rate", "5")[0], 2)
        self.assertEqual(self.cli("limits", "lq", "--concurrency", "0")[0], 2)
        self.assertEqual(self.cli("limits", "lq", "--rate", "5/1", "--no-rate")[0], 2)
        rc, _, err = self.cli("limits", "never-used-queue", "--concurrency", "1")
        self.assertEqual(rc, 3)
        self.assertIn("not_found", err)

    def test_retry_failed_counts_then_needs_yes(self):
        ids = [self.ok("submit", "fail", '{"message": "m%d", "permanent": true}' % i,
                       "--queue", "rfq").strip() for i in range(3)]
        wait_for(lambda: all(self.job(i)["status"] == "failed" for i in ids), timeout=20,
                 what="three failed jobs")
        self.ok("pause", "rfq")  # retried jobs stay queued, so the test can see them
        rc, out, err = self.cli("retry-failed", "rfq")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("queue rfq has 3 failed jobs; nothing was changed", err)
        self.assertTrue(all(self.job(i)["status"] == "failed" for i in ids))
        self.assertEqual(self.ok("retry-failed", "rfq", "--yes"),
                         "retried 3 of 3 failed jobs in queue rfq\n")
        self.assertEqual([self.job(i)["status"] for i in ids], ["queued"] * 3)
        out = json.loads(self.ok("--json", "retry-failed", "rfq", "--yes"))
        self.assertEqual(out, {"queue": "rfq", "failed": 0, "retried": 0, "skipped": 0})
        self.ok("resume", "rfq")
        self.assertEqual(self.cli("retry-failed", "no-such-queue", "--yes")[0], 3)

    def test_workers_table_and_json(self):
        ws = json.loads(self.ok("--json", "workers"))["workers"]
        self.assertEqual(len(ws), 1)
        w = ws[0]
        self.assertEqual(w["queues"], ["default", "cq", "rfq"])
        out = self.ok("workers").splitlines()
        self.assertRegex(out[0], r"^ID +HOST +PID +QUEUES +BUSY +STARTED +HEARTBEAT$")
        self.assertRegex(out[1], r"^%s +\S+ +%d +default,cq,rfq +\d/4 +\S+ +\d+\.\ds ago$"
                         % (w["id"], w["pid"]))


class CliAuthTest(unittest.TestCase):
    """An api with bearer tokens: 401 exits 5; --token and JOBMILL_TOKEN."""

    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()
        cls.tmp = tempfile.mkdtemp(prefix="jm-cli-auth-")
        tokens = os.path.join(cls.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("# test\ncli-secret-1\n")
        cls.api, cls.base = start_api(cls.redis.url, env={"JOBMILL_API_TOKENS_FILE": tokens})

    @classmethod
    def tearDownClass(cls):
        stop_api(cls.api, cls.redis)

    def test_unauthorized_exits_5_and_a_token_gets_through(self):
        rc, out, err = run_cli("queues", url=self.base)
        self.assertEqual((rc, out), (5, ""))
        self.assertIn("jobmill: unauthorized:", err)
        self.assertIn("JOBMILL_TOKEN", err)
        self.assertEqual(run_cli("--token", "wrong", "workers", url=self.base)[0], 5)
        self.assertEqual(run_cli("get", "x", url=self.base, env={"JOBMILL_TOKEN": "bad"})[0], 5)
        job_id = run_cli("submit", "echo", "--delay", "60", url=self.base,
                         env={"JOBMILL_TOKEN": "cli-secret-1"})[1].strip()
        self.assertTrue(job_id)
        rc, out, _ = run_cli("--json", "get", job_id, "--token=cli-secret-1", url=self.base)
        self.assertEqual((rc, json.loads(out)["id"]), (0, job_id))


class CliDownTest(unittest.TestCase):
    def test_nothing_listening_exits_4(self):
        port = harness.free_port()
        for args in (("queues",), ("get", "x"), ("submit", "echo")):
            with self.subTest(args=args):
                rc, out, err = run_cli(*args, url="http://127.0.0.1:%d" % port)
                self.assertEqual((rc, out), (4, ""))
                self.assertIn("cannot reach the api at http://127.0.0.1:%d" % port, err)
        # the default URL is used without --url / JOBMILL_URL
        rc, _, err = run_cli("queues", env={"JOBMILL_URL": ""})
        self.assertIn(rc, (0, 4, 5), err)

    def test_redis_down_503_exits_4(self):
        redis = harness.RedisServer()
        api, base = start_api(redis.url)
        try:
            redis.kill()
            rc, out, err = run_cli("queues", url=base)
            self.assertEqual((rc, out), (4, ""))
            self.assertIn("jobmill: unavailable:", err)
        finally:
            redis.start()
            stop_api(api, redis)


if __name__ == "__main__":
    unittest.main()
