"""test_worker.py - jobmill-worker round trips against a real redis-server.

Built-in handlers (echo, sleep, fail), exec handlers (payload on stdin, the
JOBMILL_* environment, argv as written, result from stdout, stderr tail as
the error, exit codes, timeouts with no surviving child, oversize results),
unknown types, retries with backoff then dead-letter, queue priority and
weights, idle wake-up latency, metrics and readiness.

Jobs are submitted and read back with tests/tools/jm_submit (libshared's
enqueue and get, no api needed); retries are promoted by its `janitor`
subcommand so these tests do not depend on jobmill-janitor.

WorkerCase (no tests of its own) is shared by the other test_worker_*.py.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import RedisServer, Service, http, scaled, wait_for, wait_http

TOOL = os.path.join(harness.BIN_DIR, "jm_submit")


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value} (labels as rendered)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        try:
            out[key] = float(val)
        except ValueError:
            pass
    return out


def read_text(path):
    """The stripped content of path, or "" when it does not exist (yet)."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def children_of(pid):
    """Pids whose parent is pid (zombies included)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(d))
    return kids


class WorkerCase(unittest.TestCase):
    """A redis-server, a scratch dir and helpers to run workers and jobs."""

    def setUp(self):
        self.redis = RedisServer()
        self.url = self.redis.url
        self.tmp = tempfile.mkdtemp(prefix="jm-worker-test-")
        self.services = []
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        failed = self._failed()
        problems = []
        for s in self.services:
            # Every worker still running must drain and exit 0 with nothing
            # leaked (LeakSanitizer turns a leak into a non-zero exit) and no
            # sanitizer report in its log.
            if not failed and s.alive():
                try:
                    code = s.terminate(timeout=30)
                    if code != 0:
                        problems.append("%s pid %d exited %s" % (s.name, s.pid, code))
                except AssertionError as e:
                    problems.append(str(e)[:2000])
            log = s.logs()
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                if marker in log:
                    problems.append("%s pid %d: %s in its log" % (s.name, s.pid, marker))
            if (failed or problems) and s.log_path:
                print("\n--- %s log (%s) ---\n%s" % (s.name, s.log_path, log[-3000:]))
            s.stop()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems and not failed:
            self.fail("; ".join(problems))

    def _failed(self):
        res = getattr(getattr(self, "_outcome", None), "result", None)
        if res is None:
            return False
        return any(t is self for t, _ in list(res.errors) + list(res.failures))

    # ---- files ----

    def script(self, name, body):
        """Writes an executable /bin/sh script into the scratch dir."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def config(self, handlers=None, queues=None):
        """Writes a YAML config with exec handlers {type: {exec: [...], ...}}
        and optional weighted queues [(name, weight)]; returns its path."""
        lines = ["worker:"]
        if queues:
            lines.append("  queues:")
            for name, weight in queues:
                lines.append("    - {name: %s, weight: %d}" % (name, weight))
        if handlers:
            lines.append("  handlers:")
            for typ, h in handlers.items():
                lines.append("    %s:" % typ)
                lines.append("      exec: %s" % json.dumps(h["exec"]))
                if "timeout_s" in h:
                    lines.append("      timeout_s: %d" % h["timeout_s"])
                if "permanent_exit_codes" in h:
                    lines.append("      permanent_exit_codes: %s"
                                 % json.dumps(h["permanent_exit_codes"]))
        path = os.path.join(self.tmp, "worker-%d.yaml" % len(os.listdir(self.tmp)))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # ---- processes ----

    def start_worker(self, queues="default", concurrency=4, lease_ms=3000, heartbeat_ms=200,
                     grace_ms=5000, config=None, env=None, wait_ready=True, wrapper=None,
                     worker_id=None, wait_up=True):
        port = harness.free_port()
        e = {"JOBMILL_CONCURRENCY": str(concurrency),
             "JOBMILL_LEASE_MS": str(lease_ms), "JOBMILL_HEARTBEAT_MS": str(heartbeat_ms),
             "JOBMILL_SHUTDOWN_GRACE_MS": str(grace_ms),
             "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port,
             "JOBMILL_BACKOFF_BASE_MS": "20", "JOBMILL_BACKOFF_MAX_MS": "40"}
        if queues is not None:
            e["JOBMILL_QUEUES"] = queues
        if worker_id:
            e["JOBMILL_WORKER_ID"] = worker_id
        e.update(env or {})
        args = ["--config", config] if config else []
        svc = Service("worker", self.url, args=args, env=e, logdir=self.tmp)
        if wrapper:
            svc.binary, svc.args = wrapper[0], wrapper[1:] + [svc.binary] + svc.args
        svc.base = "http://127.0.0.1:%d" % port
        svc.start()
        self.services.append(svc)
        if not wait_up:
            return svc
        try:
            wait_http(svc.base + "/healthz", timeout=60 if wrapper else 15)
            if wait_ready:
                wait_http(svc.base + "/readyz", timeout=60 if wrapper else 15)
        except AssertionError:
            raise AssertionError("worker did not come up; log:\n%s" % svc.logs()[-4000:])
        return svc

    def start_janitor(self, *queues, interval_ms=50):
        """jm_submit's minimal janitor: requeues expired leases and promotes
        due retries of queues until the test ends."""
        p = subprocess.Popen([TOOL, self.url, "janitor", str(interval_ms)] + list(queues),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def metrics(self, svc):
        status, _, text = http("GET", svc.base + "/metrics", raw=True)
        self.assertEqual(status, 200)
        return parse_metrics(text)

    def metric(self, svc, key):
        return self.metrics(svc).get(key, 0.0)

    # ---- jobs ----

    def tool(self, *args, stdin=None, check=True):
        p = subprocess.run([TOOL, self.url] + [str(a) for a in args], input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("jm_submit %s: %s" % (args[0], p.stderr.decode()))
        return p.stdout.decode()

    def submit(self, body, n=1):
        """Submits body (a dict) n times; returns the ids."""
        ids = self.tool("submit", "-n", n, json.dumps(body)).split()
        self.assertEqual(len(ids), n)
        return ids

    def submit_one(self, body):
        return self.submit(body)[0]

    def get(self, job_id):
        return json.loads(self.tool("get", job_id))

    def get_many(self, ids):
        out = self.tool("get", stdin="\n".join(ids).encode())
        return [json.loads(line) for line in out.splitlines()]

    def stats(self, queue="default"):
        return json.loads(self.tool("stats", queue))

    def cancel(self, job_id):
        self.tool("cancel", job_id)

    def wait_job(self, job_id, statuses=("succeeded", "failed", "canceled"), timeout=15):
        """Waits until the job's status is one of statuses; returns the job."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        box = {}

        def done():
            box["job"] = self.get(job_id)
            return box["job"]["status"] in statuses
        try:
            wait_for(done, timeout=timeout, interval=0.02, what="job %s in %s" % (job_id, statuses))
        except AssertionError:
            raise AssertionError("job %s stayed %s" % (job_id, json.dumps(box.get("job"))))
        return box["job"]


class BuiltinTest(WorkerCase):

    def test_echo_sleep_fail_round_trips(self):
        w = self.start_worker()
        echo = self.submit_one({"type": "echo", "payload": {"a": [1, "x"], "b": None}})
        sleep = self.submit_one({"type": "sleep", "payload": {"ms": 300}})
        fail = self.submit_one({"type": "fail", "max_attempts": 1,
                                "payload": {"message": "it broke", "permanent": False}})
        perm = self.submit_one({"type": "fail", "max_attempts": 5,
                                "payload": {"message": "never", "permanent": True}})
        j = self.wait_job(echo)
        self.assertEqual((j["status"], j["result"], j["attempts"]),
                         ("succeeded", {"a": [1, "x"], "b": None}, 1))
        self.assertEqual(j["worker"], self.worker_id(w))
        j = self.wait_job(sleep)
        self.assertEqual(j["status"], "succeeded")
        self.assertGreaterEqual(j["finished_at"] - j["started_at"], 0.29)
        j = self.wait_job(fail)
        self.assertEqual((j["status"], j["error"], j["attempts"]), ("failed", "it broke", 1))
        j = self.wait_job(perm)
        self.assertEqual((j["status"], j["error"], j["attempts"]), ("failed", "never", 1))
        m = self.metrics(w)
        self.assertEqual(m['jobmill_jobs_finished_total{queue="default",status="succeeded"}'], 2)
        self.assertEqual(m['jobmill_jobs_finished_total{queue="default",status="failed"}'], 2)
        self.assertEqual(m['jobmill_job_duration_seconds_count{queue="default",type="sleep"}'], 1)
        self.assertGreaterEqual(m['jobmill_job_duration_seconds_sum{queue="default",type="sleep"}'],
                                0.29)
        self.assertEqual(m['jobmill_job_wait_seconds_count{queue="default"}'], 4)

    def worker_id(self, w):
        out = self.redis.cmd("ZRANGE", "jm:{registry}:workers", 0, -1)
        self.assertEqual(len(out), 1)
        rec = self.redis.cmd("HGETALL", "jm:{registry}:worker:" + out[0])
        rec = dict(zip(rec[::2], rec[1::2]))
        self.assertEqual(int(rec["pid"]), w.pid)
        return out[0]

    def test_unknown_type_fails_permanently_with_exact_error(self):
        self.start_worker()
        jid = self.submit_one({"type": "mystery", "max_attempts": 5})
        j = self.wait_job(jid)
        self.assertEqual(j["status"], "failed")
        self.assertEqual(j["error"], 'no handler for type "mystery"')
        self.assertEqual(j["attempts"], 1)

    def test_retries_with_backoff_then_dead_letter(self):
        w = self.start_worker(env={"JOBMILL_BACKOFF_BASE_MS": "100",
                                   "JOBMILL_BACKOFF_MAX_MS": "150"})
        self.start_janitor("default", interval_ms=20)
        jid = self.submit_one({"type": "fail", "max_attempts": 3,
                               "payload": {"message": "flaky"}})
        # Between attempts the job waits out its backoff as scheduled.
        wait_for(lambda: self.get(jid)["status"] == "scheduled", timeout=10,
                 what="first retry scheduled")
        j = self.wait_job(jid, "failed", timeout=20)
        self.assertEqual((j["attempts"], j["error"]), (3, "flaky"))
        m = self.metrics(w)
        self.assertEqual(m['jobmill_worker_retries_total{queue="default"}'], 2)
        self.assertEqual(m['jobmill_jobs_finished_total{queue="default",status="failed"}'], 1)
        # Backoff for attempts 1 and 2 is at least 50 and 75 ms (jitter >= 0.5).
        self.assertGreaterEqual(j["finished_at"] - j["created_at"], 0.125)

    def test_cancel_running_sleep_stops_within_a_heartbeat(self):
        w = self.start_worker(heartbeat_ms=150)
        jid = self.submit_one({"type": "sleep", "payload": {"ms": 60000}})
        self.wait_job(jid, "running")
        t0 = time.monotonic()
        self.cancel(jid)
        j = self.wait_job(jid, "canceled", timeout=5)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(j["attempts"], 1)
        wait_for(lambda: self.metric(w, "jobmill_worker_busy") == 0, what="slot freed")
        self.assertEqual(
            self.metric(w, 'jobmill_jobs_finished_total{queue="default",status="canceled"}'), 1)

    def test_idle_worker_starts_a_new_job_at_once(self):
        self.start_worker(concurrency=2)
        waits = []
        for i in range(5):
            time.sleep(0.15 if i else 1.2)  # let the worker go idle in BLPOP
            jid = self.submit_one({"type": "echo"})
            j = self.wait_job(jid)
            waits.append(j["started_at"] - j["created_at"])
        waits.sort()
        # A couple of ms in practice; generous bounds for loaded CI machines.
        self.assertLess(waits[2], 0.05, waits)
        self.assertLess(waits[-1], 0.5, waits)

    def outcome_order(self, svc):
        """The queues of the jobs svc finished, in the order of its log."""
        order = []
        for line in svc.logs().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "job outcome":
                order.append(rec["queue"])
        return order

    def test_strict_priority_orders_claims(self):
        self.submit({"type": "echo", "queue": "low"}, n=6)
        self.submit({"type": "echo", "queue": "high"}, n=6)
        w = self.start_worker(queues="high,low", concurrency=1)
        wait_for(lambda: self.stats("low")["succeeded"] == 6, what="all done")
        self.assertEqual(self.outcome_order(w), ["high"] * 6 + ["low"] * 6)

    def test_weighted_queues_share_claims_by_weight(self):
        self.submit({"type": "echo", "queue": "qa"}, n=40)
        self.submit({"type": "echo", "queue": "qb"}, n=40)
        cfg = self.config(queues=[("qa", 3), ("qb", 1)])
        w = self.start_worker(queues=None, concurrency=1, config=cfg)
        wait_for(lambda: self.stats("qb")["succeeded"] == 40, timeout=20, what="all done")
        order = self.outcome_order(w)
        self.assertEqual(len(order), 80)
        # Smooth weighted round robin: qa, qa, qb, qa, ... while both have work.
        self.assertEqual(order[:20].count("qa"), 15, order[:20])
        self.assertEqual(order[:8], ["qa", "qa", "qb", "qa"] * 2)


class ExecTest(WorkerCase):

    def test_exec_gets_payload_env_and_argv(self):
        sh = self.script("env.sh", r"""
payload=$(cat)
printf '{"payload":%s,"id":"%s","queue":"%s","attempt":%s,"fence":%s,"argc":%d,"arg1":"%s"}' \
  "$payload" "$JOBMILL_JOB_ID" "$JOBMILL_QUEUE" "$JOBMILL_ATTEMPT" "$JOBMILL_FENCE" $# "$1"
""")
        cfg = self.config({"envcheck": {"exec": ["/bin/sh", sh, "two words; $(rm -rf /)"]}})
        self.start_worker(queues="jobs", config=cfg)
        jid = self.submit_one({"queue": "jobs", "type": "envcheck", "payload": {"k": [1, 2]}})
        j = self.wait_job(jid)
        self.assertEqual(j["status"], "succeeded", j)
        r = j["result"]
        self.assertEqual(r["payload"], {"k": [1, 2]})
        self.assertEqual((r["id"], r["queue"], r["attempt"]), (jid, "jobs", 1))
        self.assertEqual(r["fence"], j["fence"])
        self.assertGreater(r["fence"], 0)
        self.assertEqual((r["argc"], r["arg1"]), (1, "two words; $(rm -rf /)"))

    def test_exec_does_not_see_the_workers_configuration(self):
        sh = self.script("secrets.sh", r"""
cat >/dev/null
printf '{"redis":"%s","jobmill":"%s","path":"%s","fence":"%s"}' \
  "$(env | grep -c '^REDIS_')" "$(env | grep '^JOBMILL_' | grep -vc '^JOBMILL_\(JOB_ID\|QUEUE\|ATTEMPT\|FENCE\|PROGRESS_FD\)=')" \
  "${PATH:+set}" "${JOBMILL_FENCE:+set}"
""")
        cfg = self.config({"secrets": {"exec": ["/bin/sh", sh]}})
        self.start_worker(queues="jobs", config=cfg)
        jid = self.submit_one({"queue": "jobs", "type": "secrets"})
        j = self.wait_job(jid)
        self.assertEqual(j["status"], "succeeded", j)
        self.assertEqual(j["result"], {"redis": "0", "jobmill": "0", "path": "set", "fence": "set"})

    def test_exec_results_and_failures(self):
        ok_empty = self.script("empty.sh", "cat >/dev/null\n")
        not_json = self.script("notjson.sh", "echo 'hello there'\n")
        perm = self.script("perm.sh", "echo 'bad input' >&2; exit 65\n")
        code3 = self.script("code3.sh", "head -c 5000 /dev/zero | tr '\\0' x >&2; "
                                        "echo; echo 'the real reason' >&2; exit 3\n")
        missing = os.path.join(self.tmp, "does-not-exist")
        cfg = self.config({
            "empty": {"exec": [ok_empty]},
            "notjson": {"exec": [not_json]},
            "perm": {"exec": ["/bin/sh", perm], "permanent_exit_codes": [65]},
            "code3": {"exec": ["sh", code3]},  # found on PATH
            "missing": {"exec": [missing]},
        })
        w = self.start_worker(config=cfg)
        ids = {t: self.submit_one({"type": t, "max_attempts": 1 if t != "perm" else 4})
               for t in ("empty", "notjson", "perm", "code3", "missing")}
        j = self.wait_job(ids["empty"])
        self.assertEqual((j["status"], j["result"]), ("succeeded", None))
        j = self.wait_job(ids["notjson"])
        self.assertEqual(j["status"], "failed")
        self.assertIn("not valid JSON", j["error"])
        j = self.wait_job(ids["perm"])
        self.assertEqual((j["status"], j["attempts"]), ("failed", 1))
        self.assertEqual(j["error"], "exit code 65: bad input")
        j = self.wait_job(ids["code3"])
        self.assertEqual(j["status"], "failed")
        self.assertTrue(j["error"].startswith("exit code 3: "), j["error"][:80])
        self.assertTrue(j["error"].endswith("the real reason"), j["error"][-80:])
        self.assertLess(len(j["error"]), 2200)  # the tail, not all 5 KB
        j = self.wait_job(ids["missing"])
        self.assertEqual(j["status"], "failed")
        self.assertIn("No such file", j["error"])
        self.assertEqual(self.metric(w, "jobmill_worker_exec_spawn_failures_total"), 1)
        wait_for(lambda: not children_of(w.pid), what="no child left")

    def test_timeout_kills_the_whole_process_group(self):
        # The handler ignores SIGTERM (and so does its child, inherited), so
        # the timeout needs SIGKILL after the grace period.
        sh = self.script("stuck.sh", """
echo $$ > "$1/parent.pid"
trap '' TERM
sleep 60 &
echo $! > "$1/child.pid"
wait
""")
        cfg = self.config({"stuck": {"exec": ["/bin/sh", sh, self.tmp], "timeout_s": 30}})
        w = self.start_worker(config=cfg)
        t0 = time.monotonic()
        jid = self.submit_one({"type": "stuck", "timeout_s": 1, "max_attempts": 1})
        child_file = os.path.join(self.tmp, "child.pid")
        wait_for(lambda: read_text(child_file),
                 what="handler started")
        parent = int(read_text(os.path.join(self.tmp, "parent.pid")))
        child = int(read_text(child_file))
        j = self.wait_job(jid, timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEqual(j["status"], "failed")
        self.assertTrue(j["error"].startswith("timeout after 1000 ms"), j["error"])
        self.assertGreaterEqual(elapsed, 2.9)   # 1 s timeout + 2 s grace
        self.assertLess(elapsed, 10)
        self.assertFalse(proc_alive(parent))
        self.assertFalse(proc_alive(child))
        self.assertEqual(children_of(w.pid), [])

    def test_handler_timeout_default_and_sigterm(self):
        sh = self.script("slow.sh", "echo $$ > \"$1/pid\"; exec sleep 60\n")
        cfg = self.config({"slow": {"exec": ["/bin/sh", sh, self.tmp], "timeout_s": 1}})
        self.start_worker(config=cfg)
        t0 = time.monotonic()
        jid = self.submit_one({"type": "slow", "max_attempts": 1})
        j = self.wait_job(jid, timeout=10)
        self.assertLess(time.monotonic() - t0, 2.5)  # SIGTERM was enough
        self.assertEqual(j["status"], "failed")
        self.assertIn("timeout after 1000 ms", j["error"])
        self.assertFalse(proc_alive(int(read_text(os.path.join(self.tmp, "pid")))))

    def test_result_over_limit_fails_and_worker_survives(self):
        big = self.script("big.sh", "head -c 10000000 /dev/zero | tr '\\0' 7\n")
        cfg = self.config({"big": {"exec": [big]}})
        w = self.start_worker(config=cfg, env={"JOBMILL_MAX_RESULT_BYTES": "4096"})
        jid = self.submit_one({"type": "big", "max_attempts": 3})
        j = self.wait_job(jid)
        self.assertEqual((j["status"], j["attempts"]), ("failed", 1))  # permanent
        self.assertIn("max_result_bytes", j["error"])
        self.assertTrue(w.alive())
        self.assertEqual(http("GET", w.base + "/healthz", raw=True)[0], 200)
        j = self.wait_job(self.submit_one({"type": "echo", "payload": 7}))
        self.assertEqual((j["status"], j["result"]), ("succeeded", 7))
        wait_for(lambda: not children_of(w.pid), what="no child left")

    def test_large_payload_and_result_round_trip(self):
        # Bigger than a pipe buffer both ways: stdin and stdout are pumped
        # together, so a handler that writes before it has read all its
        # input does not deadlock.
        sh = self.script("cat.sh", "exec cat\n")
        cfg = self.config({"cat": {"exec": [sh]}})
        self.start_worker(config=cfg)
        payload = {"blob": "z" * 100000}
        j = self.wait_job(self.submit_one({"type": "cat", "payload": payload}))
        self.assertEqual(j["status"], "succeeded")
        self.assertEqual(j["result"], payload)

    def test_cancel_running_exec_kills_child_within_a_heartbeat(self):
        sh = self.script("long.sh", "echo $$ > \"$1/pid\"; sleep 60; echo 1\n")
        cfg = self.config({"long": {"exec": ["/bin/sh", sh, self.tmp]}})
        w = self.start_worker(config=cfg, heartbeat_ms=150)
        jid = self.submit_one({"type": "long"})
        pid_file = os.path.join(self.tmp, "pid")
        wait_for(lambda: read_text(pid_file),
                 what="handler started")
        pid = int(read_text(pid_file))
        t0 = time.monotonic()
        self.cancel(jid)
        wait_for(lambda: not proc_alive(pid), timeout=5, what="handler killed")
        self.assertLess(time.monotonic() - t0, 1.5)
        j = self.wait_job(jid, "canceled", timeout=5)
        self.assertEqual(j["attempts"], 1)
        wait_for(lambda: not children_of(w.pid), what="child reaped")


class ServiceTest(WorkerCase):

    def test_metrics_exposed_from_start_and_registry(self):
        cfg = self.config({"thing": {"exec": ["/bin/true"]}})
        w = self.start_worker(queues="a,b", concurrency=3, config=cfg, worker_id="w-test-1")
        m = self.metrics(w)
        for q in ("a", "b"):
            for st in ("succeeded", "failed", "canceled"):
                self.assertEqual(m['jobmill_jobs_finished_total{queue="%s",status="%s"}'
                                   % (q, st)], 0)
            self.assertEqual(m['jobmill_job_wait_seconds_count{queue="%s"}' % q], 0)
            self.assertEqual(m['jobmill_worker_retries_total{queue="%s"}' % q], 0)
            for t in ("echo", "sleep", "fail", "thing"):
                self.assertIn('jobmill_job_duration_seconds_count{queue="%s",type="%s"}'
                              % (q, t), m)
        self.assertEqual(m["jobmill_worker_concurrency"], 3)
        self.assertEqual(m["jobmill_worker_busy"], 0)
        for k in ("jobmill_worker_leases_lost_total", "jobmill_worker_exec_spawn_failures_total",
                  "jobmill_worker_heartbeats_total"):
            self.assertIn(k, m)
        self.assertEqual(m['jobmill_build_info{version="0.1.0"}'], 1)
        for op in ("check_version", "claim", "wake", "complete", "fail", "cancel_ack", "release",
                   "heartbeat", "worker_beat", "ready"):
            self.assertEqual(m['jobmill_redis_errors_total{op="%s"}' % op], 0)
        if shutil.which("promtool"):
            text = http("GET", w.base + "/metrics", raw=True)[2]
            p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual((p.returncode, p.stdout.decode()), (0, ""))
        rec = self.redis.cmd("HGETALL", "jm:{registry}:worker:w-test-1")
        rec = dict(zip(rec[::2], rec[1::2]))
        self.assertEqual((rec["queues"], rec["concurrency"], int(rec["pid"])), ("a,b", "3", w.pid))
        self.assertEqual(w.terminate(), 0)
        self.assertEqual(self.redis.cmd("EXISTS", "jm:{registry}:worker:w-test-1"), 0)
        self.assertEqual(self.redis.cmd("ZSCORE", "jm:{registry}:workers", "w-test-1"), None)

    def test_waits_for_redis_then_starts(self):
        self.redis.kill()
        w = self.start_worker(wait_ready=False)
        st, _, body = http("GET", w.base + "/readyz", raw=True)
        self.assertEqual(st, 503, body)
        self.redis.start()
        wait_http(w.base + "/readyz", timeout=15)
        j = self.wait_job(self.submit_one({"type": "echo", "payload": "hi"}))
        self.assertEqual(j["result"], "hi")

    def test_refuses_newer_layout(self):
        self.redis.cmd("SET", "jm:version", "99")
        w = self.start_worker(wait_up=False)
        self.assertEqual(w.wait(15), 1)
        self.assertIn("newer", w.logs())

    def test_redis_restart_loses_nothing(self):
        self.redis.stop()
        self.redis = RedisServer(appendonly=True)
        self.url = self.redis.url
        w = self.start_worker(concurrency=4, lease_ms=20000, heartbeat_ms=200)
        ids = self.submit({"type": "sleep", "payload": {"ms": 800}}, n=4)
        wait_for(lambda: self.metric(w, "jobmill_worker_busy") == 4, what="all running")
        self.redis.kill()
        st, _, _ = http("GET", w.base + "/healthz", raw=True)
        self.assertEqual(st, 200)
        # The jobs finish while Redis is down; their outcomes wait for it.
        wait_for(lambda: "outcome commit failed" in w.logs(), timeout=10,
                 what="commits retried")
        self.assertEqual(http("GET", w.base + "/readyz", raw=True)[0], 503)
        self.redis.start()
        jobs = [self.wait_job(i, timeout=20) for i in ids]
        self.assertEqual([(j["status"], j["attempts"]) for j in jobs], [("succeeded", 1)] * 4)
        wait_http(w.base + "/readyz", timeout=15)
        j = self.wait_job(self.submit_one({"type": "echo", "payload": 1}))
        self.assertEqual(j["status"], "succeeded")
        self.assertTrue(w.alive())
        m = self.metrics(w)
        self.assertEqual(m['jobmill_jobs_finished_total{queue="default",status="succeeded"}'], 5)
        self.assertGreater(sum(v for k, v in m.items()
                               if k.startswith("jobmill_redis_errors_total")), 0)
        self.assertEqual(w.terminate(), 0)

    def test_bad_flag_exits_2(self):
        p = subprocess.run([os.path.join(harness.BIN_DIR, "jobmill-worker"), "--no-such-flag"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()


class LeaseWatchdogTest(WorkerCase):

    def test_handler_dies_within_its_lease_when_redis_hangs(self):
        # Redis frozen (SIGSTOP): renewals block for the whole Redis timeout
        # (4 s here). The handler must still die by the lease estimate (1 s
        # after the last renewal was sent), before Redis could hand the job to
        # anyone else, not when the blocked renewal finally gives up.
        pidfile = os.path.join(self.tmp, "pid")
        sh = self.script("hang.sh", 'echo $$ > "%s"; exec sleep 30\n' % pidfile)
        cfg = self.config({"hang": {"exec": ["/bin/sh", sh]}})
        self.start_worker(queues="jobs", config=cfg, lease_ms=1000, heartbeat_ms=300,
                          env={"JOBMILL_REDIS_TIMEOUT_MS": "4000"})
        self.submit_one({"queue": "jobs", "type": "hang"})
        pid = int(wait_for(lambda: read_text(pidfile).strip(), timeout=10, what="handler pid"))
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            wait_for(lambda: not proc_alive(pid), timeout=8, what="handler killed")
            elapsed = time.monotonic() - t0
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.assertLess(elapsed, 1.6, "handler outlived its lease by %.2f s" % (elapsed - 1.0))
