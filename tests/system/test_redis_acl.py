"""test_redis_acl.py - every service as its own Redis ACL user, with exactly
the rules docs/security.md documents (read from that page), through every
transition: submit, batch, long-poll, claim, complete, an HTTP worker's
claim, progress and complete through the api, exec handlers, fail
and backoff, retry, cancel (waiting and running), pause and resume, expiry,
purge, a cron schedule fired by the janitor, a killed worker's job recovered
by the janitor, worker pruning and the reconciler.

Checked: every job ends as expected; Redis's ACL LOG holds no denial and no
log says NOPERM; no log holds a Redis password (the effective configuration
shows it masked), not even after a wrong password, also with a plain
requirepass given in REDIS_URL or REDIS_PASSWORD; each user is refused what
it was not given (another prefix, FLUSHALL, a channel); the worker's /readyz
refuses an evicting Redis; an exec handler given shell metacharacters in its
payload reads them as bytes (no shell runs them).
"""
import json
import os
import re
import shutil
import signal
import tempfile
import unittest

import harness
from harness import SOURCE_DIR, RedisClient, RedisServer, Service, free_port, http, wait_for, \
    wait_http

SECURITY_MD = os.path.join(SOURCE_DIR, "docs", "security.md")
PASSWORDS = {"api": "api-s3cr3t:Pw#1", "worker": "wk-s3cr3t:Pw#2", "janitor": "jan-s3cr3t:Pw#3"}
WRONG = "wr0ng-s3cr3t-Pw#9"
LEASE_MS = 1500
HEARTBEAT_MS = 200


def documented_acl():
    """{service: [ACL SETUSER argument...]} from docs/security.md."""
    out = {}
    with open(SECURITY_MD) as f:
        for line in f:
            m = re.match(r"ACL SETUSER jobmill-(api|worker|janitor) (.*)$", line.strip())
            if m:
                out[m.group(1)] = ["ACL", "SETUSER", "jobmill-" + m.group(1)] + m.group(2).split()
    return out


# The scripts (libshared/lua/) each service runs (the api's second line: for
# HTTP workers). A script missing here fails test_scripts_commands_are_granted.
SCRIPTS = {
    "api": ["enqueue", "watch", "cancel", "retry", "pause", "limits", "stats", "list",
            "claim", "claim_recover", "heartbeat", "outcomes", "progress", "worker_beat",
            "worker_touch", "type_cap", "batch_open", "batch_stage", "batch_seal", "batch_release",
            "batch_get", "batch_states", "log_append", "logs_read", "schedule_put", "schedule_del", "schedule_pause",
            "schedule_list"],
    "worker": ["claim", "claim_recover", "heartbeat", "outcomes", "worker_beat", "log_append"],
    "janitor": ["requeue_expired", "promote_due", "expire_stale", "purge", "trim_pending",
                "workers_prune", "workers_stats", "reconcile", "batch_release", "batch_callbacks",
                "batch_callback_set", "enqueue",
                # cron schedules (a tick's job is an enqueue) and the YAML
                # schedules and queue limits set at start
                "schedule_due", "schedule_advance", "schedule_put", "limits", "type_cap"],
}
UNCALLED = []


def script_commands(lua_dir):
    """{script: set of commands its redis.call/pcall run}, _lib.lua's local
    functions followed transitively (comments ignored). A call whose command
    is not a literal (_lib.lua's acc_flush replaying ZADD/ZREM) is covered by
    the literal calls of the helpers that fill it."""
    def read(name):
        with open(os.path.join(lua_dir, name + ".lua")) as f:
            return re.sub(r"--[^\n]*", "", f.read())
    funcs = {}
    for block in re.split(r"(?m)^(?=local function )", read("_lib")):
        m = re.match(r"local function (\w+)\(", block)
        if m:
            funcs[m.group(1)] = block.split("(", 1)[1]

    def closure(text, seen):
        cmds = {c.lower() for c in re.findall(r"redis\.p?call\('([A-Za-z]+)'", text)}
        for name, body in funcs.items():
            if name not in seen and re.search(r"(?<![\w.])%s\(" % name, text):
                seen.add(name)
                cmds |= closure(body, seen)
        return cmds
    names = [f[:-4] for f in os.listdir(lua_dir) if f.endswith(".lua") and f != "_lib.lua"]
    return {n: closure(read(n), set()) for n in names}


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def qkey(queue, what):
    return "jm:{%04x}:q:%s:%s" % (crc16(queue.encode()) % 16384, queue, what)


class RedisAclTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jm-sys-acl-")
        self.services = []
        self.redis = RedisServer()
        self.acl = documented_acl()
        self.assertEqual(sorted(self.acl), ["api", "janitor", "worker"],
                         "docs/security.md must hold one ACL SETUSER line per service")
        for name, args in self.acl.items():
            args = [a.replace(">PASSWORD", ">" + PASSWORDS[name]) for a in args]
            self.assertEqual(self.redis.cmd(*args), "OK")

    def tearDown(self):
        for s in self.services:
            s.stop()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self, name, password=None):
        return "redis://jobmill-%s:%s@127.0.0.1:%d/0" % (name, password or PASSWORDS[name],
                                                         self.redis.port)

    def client_as(self, name):
        c = RedisClient(self.redis.port)
        self.assertEqual(c("AUTH", "jobmill-" + name, PASSWORDS[name]), "OK")
        return c

    # ---- the services ----

    def start(self, name, url, env, args=()):
        svc = Service(name, url, args=args, env=env, logdir=self.tmp).start()
        self.services.append(svc)
        return svc

    def start_worker(self, config):
        port = free_port()
        svc = self.start("worker", self.url("worker"), {
            "JOBMILL_QUEUES": "acl,acl-p", "JOBMILL_CONCURRENCY": "4",
            "JOBMILL_LEASE_MS": str(LEASE_MS), "JOBMILL_HEARTBEAT_MS": str(HEARTBEAT_MS),
            "JOBMILL_BACKOFF_BASE_MS": "20", "JOBMILL_BACKOFF_MAX_MS": "40",
            "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}, ["--config", config])
        svc.base = "http://127.0.0.1:%d" % port
        wait_http(svc.base + "/readyz", timeout=20)
        return svc

    def start_janitor(self, password=None):
        port = free_port()
        svc = self.start("janitor", self.url("janitor", password), {
            "JOBMILL_JANITOR_INTERVAL_MS": "100", "JOBMILL_JANITOR_RECONCILE_EVERY": "2",
            "JOBMILL_HEARTBEAT_MS": str(HEARTBEAT_MS),
            "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port})
        svc.base = "http://127.0.0.1:%d" % port
        return svc

    # ---- the api ----

    def submit(self, body):
        st, _, job = http("POST", self.base + "/v1/jobs", body)
        self.assertEqual(st, 201, job)
        return job

    def job(self, jid):
        st, _, job = http("GET", self.base + "/v1/jobs/" + jid)
        self.assertEqual(st, 200, job)
        return job

    def wait_status(self, jid, *statuses, timeout=20):
        box = {}

        def done():
            st, _, box["job"] = http("GET", self.base + "/v1/jobs/%s?wait=2" % jid, timeout=10)
            return st == 200 and box["job"]["status"] in statuses
        try:
            wait_for(done, timeout=timeout, what="job %s %s" % (jid, statuses))
        except AssertionError:
            raise AssertionError("job %s stayed %s; logs:\n%s"
                                 % (jid, json.dumps(box.get("job")), self.all_logs()[-6000:]))
        return box["job"]

    def post(self, path):
        st, _, body = http("POST", self.base + path)
        self.assertEqual(st, 200, body)
        return body

    def all_logs(self):
        return "".join("==== %s\n%s" % (s.name, s.logs()) for s in self.services)

    def denials(self):
        entries = self.redis.cmd("ACL", "LOG") or []
        return [dict(zip(e[::2], e[1::2])) for e in entries]

    def test_plain_requirepass_from_the_url_and_from_redis_password(self):
        """The default user with a password: the api takes it from REDIS_URL
        (redis://:PASSWORD@...), a worker from REDIS_HOST/REDIS_PORT/
        REDIS_PASSWORD; a wrong one keeps the api unready; no log holds it."""
        pw, wrong = "plain-s3cr3t@pw", "plain-wr0ng"
        admin = self.redis.client()
        self.assertEqual(admin("CONFIG", "SET", "requirepass", pw), "OK")  # admin stays in
        port = self.redis.port
        api, self.base = harness.start_api("redis://:%s@127.0.0.1:%d/0" % (pw, port))
        self.services.append(api)
        w_port = free_port()
        worker = Service("worker", "unused", env={
            "JOBMILL_QUEUES": "plain", "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % w_port,
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_PASSWORD": pw},
            logdir=self.tmp)
        del worker.env["REDIS_URL"]
        worker.start()
        self.services.append(worker)
        j = self.wait_status(self.submit({"queue": "plain", "type": "echo", "payload": 7})["id"],
                             "succeeded")
        self.assertEqual(j["result"], 7)
        bad, bad_base = harness.start_api("redis://:%s@127.0.0.1:%d/0" % (wrong, port),
                                          wait_ready=False)
        self.services.append(bad)
        st, _, body = http("GET", bad_base + "/readyz")
        self.assertEqual(st, 503, body)
        self.assertEqual(http("POST", bad_base + "/v1/jobs", {"type": "echo"})[0], 503)
        wait_for(lambda: "WRONGPASS" in bad.logs(), timeout=15, what="the refused AUTH logged")
        for s in (api, worker, bad):
            self.assertEqual(s.terminate(timeout=30), 0, s.logs()[-3000:])
        logs = self.all_logs()
        self.assertNotIn("s3cr3t", logs)
        self.assertNotIn(wrong, logs)
        self.assertIn("redis://:***@127.0.0.1", worker.logs())
        admin.close()

    def test_scripts_commands_are_granted(self):
        """Every command a service's scripts can run, rare paths included
        (the reconciler's repairs), is in its documented rules; every script
        belongs to a service."""
        cmds = script_commands(os.path.join(SOURCE_DIR, "libshared", "lua"))
        mapped = sorted(sum(SCRIPTS.values(), []) + UNCALLED)
        self.assertEqual(sorted(set(mapped)), sorted(cmds),
                         "map every script of libshared/lua to the services that run it")
        for name, scripts in SCRIPTS.items():
            granted = {a[1:] for a in self.acl[name] if a.startswith("+")}
            for script in scripts:
                self.assertEqual(cmds[script] - granted, set(),
                                 "%s runs %s.lua" % (name, script))

    def test_each_service_runs_with_exactly_its_documented_acl(self):
        marker = os.path.join(self.tmp, "pwned")
        handler = os.path.join(self.tmp, "copy.sh")
        with open(handler, "w") as f:
            f.write("#!/bin/sh\ncat\n")
        config = os.path.join(self.tmp, "worker.yaml")
        with open(config, "w") as f:
            f.write("worker:\n  handlers:\n    copy:\n      exec: %s\n"
                    % json.dumps(["/bin/sh", handler]))
        janitor = self.start_janitor()
        worker = self.start_worker(config)
        api, self.base = harness.start_api(self.url("api"), env={"JOBMILL_API_THREADS": "8"})
        self.services.append(api)
        wait_http(janitor.base + "/readyz", timeout=20)

        # submit -> claim -> complete, answered to a long-poll (SUBSCRIBE,
        # watch, PUBLISH), and a batch (MULTI/EXEC)
        j = self.wait_status(self.submit({"queue": "acl", "type": "echo", "payload": [1]})["id"],
                             "succeeded")
        self.assertEqual(j["result"], [1])
        st, _, batch = http("POST", self.base + "/v1/jobs/batch",
                            {"jobs": [{"queue": "acl", "type": "echo", "payload": i}
                                      for i in range(3)]})
        self.assertEqual(st, 201, batch)
        for i, b in enumerate(batch["jobs"]):
            self.assertEqual(self.wait_status(b["id"], "succeeded")["result"], i)

        # an HTTP worker through the api: claim (long-poll), progress, complete
        hid = self.submit({"queue": "acl-h", "type": "remote", "payload": {"x": 1}})["id"]
        st, _, got = http("POST", self.base + "/v1/queues/acl-h/claim",
                          {"worker": "http-w1", "max": 1, "wait_s": 5}, timeout=15)
        self.assertEqual((st, [j["id"] for j in got["jobs"]]), (200, [hid]), got)
        token = got["jobs"][0]["lease_token"]
        for path, body in (("heartbeat", {"lease_token": token}),
                           ("progress", {"lease_token": token, "progress": 50}),
                           ("complete", {"lease_token": token, "result": {"ok": True}})):
            st, _, out = http("POST", self.base + "/v1/jobs/%s/%s" % (hid, path), body)
            self.assertEqual(st, 200, (path, out))
        self.assertEqual(self.job(hid)["result"], {"ok": True})

        # an exec handler reads shell metacharacters as bytes
        evil = {"cmd": "; touch %s; $(touch %s) `touch %s` | touch %s && touch %s > %s"
                       % ((marker,) * 6),
                "quotes": "'\"\\'", "glob": "* ?[a]", "nl": "a\nb\x01"}
        j = self.wait_status(self.submit({"queue": "acl", "type": "copy", "payload": evil})["id"],
                             "succeeded", "failed")
        self.assertEqual((j["status"], j["result"]), ("succeeded", evil), j)
        self.assertFalse(os.path.exists(marker), "a shell ran the payload")

        # fail, backoff (the janitor promotes), dead letter; retry by the api
        fid = self.submit({"queue": "acl", "type": "fail", "max_attempts": 2})["id"]
        j = self.wait_status(fid, "failed")
        self.assertEqual(j["attempts"], 2, j)
        self.assertIn(self.post("/v1/jobs/%s/retry" % fid)["status"],
                      ("queued", "running", "scheduled"))  # the worker may be at it already
        self.assertEqual(self.wait_status(fid, "failed")["attempts"], 2)

        # cancel: a waiting (delayed) job at once, a running one via its worker
        did = self.submit({"queue": "acl", "type": "echo", "delay_s": 3600})["id"]
        self.assertEqual(self.post("/v1/jobs/%s/cancel" % did)["status"], "canceled")
        rid = self.submit({"queue": "acl", "type": "sleep", "payload": {"ms": 60000}})["id"]
        wait_for(lambda: self.job(rid)["status"] == "running", timeout=10, what="sleep running")
        self.post("/v1/jobs/%s/cancel" % rid)
        self.assertEqual(self.wait_status(rid, "canceled", "succeeded")["status"], "canceled")

        # pause and resume; a job expiring while its queue is paused
        self.submit({"queue": "acl-p", "type": "echo", "delay_s": 3600})  # makes the queue
        self.assertTrue(self.post("/v1/queues/acl-p/pause")["paused"])
        pid = self.submit({"queue": "acl-p", "type": "echo"})["id"]
        xid = self.submit({"queue": "acl-p", "type": "echo", "expires_in_s": 1})["id"]
        self.wait_status(self.submit({"queue": "acl", "type": "echo"})["id"], "succeeded")
        self.assertEqual(self.wait_status(xid, "expired")["status"], "expired")
        self.assertEqual(self.job(pid)["status"], "queued", "a paused queue is not claimed")
        self.assertFalse(self.post("/v1/queues/acl-p/resume")["paused"])
        self.wait_status(pid, "succeeded")

        # purge: a record with a 1 s retention leaves the purge index
        tid = self.submit({"queue": "acl-p", "type": "echo", "result_ttl_s": 1})["id"]
        self.wait_status(tid, "succeeded")
        wait_for(lambda: self.redis.cmd("ZSCORE", qkey("acl-p", "purge"),
                                        "succeeded|" + tid) is None, timeout=15,
                 what="the 1 s record purged")
        self.assertIsNone(self.redis.cmd("ZSCORE", qkey("acl-p", "succeeded"), tid))

        # a cron schedule: stored by the api, fired by the janitor (an
        # enqueue), run by the worker; paused, listed and deleted
        st, _, sched = http("POST", self.base + "/v1/schedules",
                            {"name": "acl-cron", "cron": "* * * * * *", "tz": "Europe/Berlin",
                             "job": {"queue": "acl", "type": "echo", "payload": "tick"}})
        self.assertEqual(st, 201, sched)

        def last_job():
            return http("GET", self.base + "/v1/schedules")[2]["schedules"][0]["last_job"]

        cron_job = wait_for(last_job, timeout=15, what="a tick's job")
        self.assertEqual(self.wait_status(cron_job, "succeeded")["result"], "tick")
        self.assertTrue(self.post("/v1/schedules/acl-cron/pause")["paused"])
        self.assertFalse(self.post("/v1/schedules/acl-cron/resume")["paused"])
        self.assertEqual(http("DELETE", self.base + "/v1/schedules/acl-cron")[0], 200)

        # a SIGKILLed worker's job: the janitor requeues it when the lease
        # runs out, a new worker finishes it; the dead worker is pruned
        kid = self.submit({"queue": "acl", "type": "sleep", "payload": {"ms": 2000}})["id"]
        wait_for(lambda: self.job(kid)["status"] == "running", timeout=10, what="sleep running")
        dead = self.job(kid)["worker"]
        self.assertEqual(worker.kill(), -signal.SIGKILL)
        worker = self.start_worker(config)
        j = self.wait_status(kid, "succeeded", timeout=30)
        self.assertEqual(j["attempts"], 2, j)
        wait_for(lambda: dead not in [w["id"] for w in
                                      http("GET", self.base + "/v1/workers")[2]["workers"]],
                 timeout=15, what="the dead worker pruned")

        # the reads and the reconciler
        st, _, qs = http("GET", self.base + "/v1/queues")
        self.assertEqual(st, 200, qs)
        self.assertEqual(http("GET", self.base + "/v1/queues/acl/jobs?state=succeeded")[0], 200)
        self.assertEqual(http("GET", self.base + "/metrics", raw=True)[0], 200)

        def reconciled():
            _, _, text = http("GET", janitor.base + "/metrics", raw=True)
            m = re.search(r"^jobmill_janitor_reconcile_cycles_total (\S+)$", text, re.M)
            return m and float(m.group(1)) >= 1
        wait_for(reconciled, timeout=30, what="a full reconciler cycle")

        # the worker's /readyz refuses an evicting Redis (and reads INFO)
        self.redis.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        wait_for(lambda: http("GET", worker.base + "/readyz", raw=True)[0] == 503, timeout=15,
                 what="worker /readyz 503 with allkeys-lru")
        self.assertIn("allkeys-lru", http("GET", worker.base + "/readyz", raw=True)[2])
        self.redis.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
        wait_http(worker.base + "/readyz", timeout=15)

        # nothing was denied
        self.assertEqual(self.denials(), [])
        self.assertNotIn("NOPERM", self.all_logs())

        # each user is held to its rules
        for name in ("api", "worker", "janitor"):
            c = self.client_as(name)
            try:
                for cmd in (("SET", "other:key", "1"), ("GET", "other:key"), ("FLUSHALL",),
                            ("CONFIG", "GET", "maxmemory"), ("KEYS", "*"),
                            ("EVAL", "return 1", "0"), ("FUNCTION", "FLUSH"),
                            ("PUBLISH", "other", "x")):
                    with self.assertRaisesRegex(RuntimeError, "NOPERM", msg=(name, cmd)):
                        c(*cmd)
            finally:
                c.close()
        c = self.client_as("janitor")
        try:
            with self.assertRaisesRegex(RuntimeError, "NOPERM"):
                c("SUBSCRIBE", "jm:done")
        finally:
            c.close()

        # a wrong password is refused, and the log says so without it
        bad = self.start_janitor(password=WRONG)
        wait_for(lambda: "WRONGPASS" in bad.logs(), timeout=15, what="the refused AUTH logged")

        # every service stops cleanly; no log ever holds a password
        for s in (api, worker, janitor, bad):
            self.assertEqual(s.terminate(timeout=30), 0, s.logs()[-3000:])
        logs = self.all_logs()
        for pw in list(PASSWORDS.values()) + [WRONG]:
            self.assertNotIn(pw, logs)
            self.assertNotIn(pw.split(":")[0], logs)
        self.assertIn("jobmill-api:***@127.0.0.1", api.logs())
        self.assertIn("jobmill-worker:***@127.0.0.1", worker.logs())
        for mark in harness.SANITIZER_MARKS:
            self.assertNotIn(mark, logs)


if __name__ == "__main__":
    unittest.main()
