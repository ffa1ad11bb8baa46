"""test_janitor.py - jobmill-janitor as a process against a real redis-server.

Flags and exit codes (--help, --version, a bad flag, a bad config file, a
newer Redis layout), every metric family from start-up (and promtool clean),
/readyz (Redis down, wrong maxmemory-policy, draining), SIGTERM exits 0, the
duties and the reconciler seen through the metrics, and three janitors on one
Redis never double-requeue an expired lease.

Jobs are submitted, claimed and read back with the test tools (jm_submit,
jm_testctl): no api or worker is needed. Corruption for the reconciler is
written with raw Redis commands.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from harness import RedisServer, Service, free_port, http, scaled, wait_for, wait_http

SUBMIT = os.path.join(harness.BIN_DIR, "jm_submit")
TESTCTL = os.path.join(harness.BIN_DIR, "jm_testctl")
JANITOR = os.path.join(harness.BIN_DIR, "jobmill-janitor")

FAMILIES = {
    "jobmill_build_info": "gauge",
    "jobmill_redis_errors_total": "counter",
    "jobmill_janitor_requeued_total": "counter",
    "jobmill_janitor_expired_total": "counter",
    "jobmill_janitor_repaired_total": "counter",
    "jobmill_janitor_promoted_total": "counter",
    "jobmill_janitor_purged_total": "counter",
    "jobmill_janitor_workers_pruned_total": "counter",
    "jobmill_janitor_ticks_total": "counter",
    "jobmill_janitor_last_tick_timestamp_seconds": "gauge",
    "jobmill_janitor_tick_duration_seconds": "histogram",
    "jobmill_janitor_reconcile_cycles_total": "counter",
    "jobmill_workers_live": "gauge",
    "jobmill_worker_heartbeat_age_max_seconds": "gauge",
    "jobmill_janitor_schedule_fired_total": "counter",
    "jobmill_janitor_schedule_skipped_total": "counter",
}
REPAIR_KINDS = ("active_not_running", "running_without_lease", "orphan_entry", "stale_entry",
                "unindexed_record", "counts_drift")


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


def crc16(data):
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def qkey(queue, what):
    """The key of one of a queue's structures (docs/design.md's layout)."""
    return "jm:{%04x}:q:%s:%s" % (crc16(queue.encode()) % 16384, queue, what)


def jkey(job_id):
    return "jm:{%s}:job:%s" % (job_id[:4], job_id)


class JanitorCase(unittest.TestCase):
    def setUp(self):
        result = getattr(self._outcome, "result", None)
        self._problems_before = self._problems(result)
        self.redis = RedisServer()
        self.logdir = tempfile.mkdtemp(prefix="jm-janitor-test-")
        self.services = []

    def tearDown(self):
        for s in self.services:
            s.stop()
        self.redis.stop()
        if self._problems(getattr(self._outcome, "result", None)) > self._problems_before:
            for s in self.services:
                print("---- %s log (%s) ----\n%s" % (s.name, s.log_path, s.logs()[-3000:]))
        shutil.rmtree(self.logdir, ignore_errors=True)

    @staticmethod
    def _problems(result):
        return len(getattr(result, "failures", [])) + len(getattr(result, "errors", []))

    # ---- helpers ----

    def janitor(self, interval_ms=50, reconcile_every=1, heartbeat_ms=100, extra=(), env=None,
                wait=True):
        port = free_port()
        args = ["--metrics-listen", "127.0.0.1:%d" % port,
                "--janitor-interval-ms", str(interval_ms),
                "--janitor-reconcile-every", str(reconcile_every),
                "--heartbeat-ms", str(heartbeat_ms), "--lease-ms", str(heartbeat_ms * 3)]
        svc = Service("janitor", self.redis.url, args=args + list(extra), env=env,
                      logdir=self.logdir).start()
        svc.url = "http://127.0.0.1:%d" % port
        self.services.append(svc)
        if wait:
            wait_http(svc.url + "/healthz", timeout=15)
        return svc

    def metrics(self, svc):
        status, _, text = http("GET", svc.url + "/metrics", raw=True)
        self.assertEqual(status, 200)
        return text

    def metric(self, svc, key):
        return parse_metrics(self.metrics(svc)).get(key)

    def tool(self, path, *args, check=True):
        p = subprocess.run([path, self.redis.url] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("%s %s failed (%d): %s" % (os.path.basename(path), args,
                                                            p.returncode, p.stderr.decode()))
        return p.stdout.decode()

    def submit(self, body, n=1):
        return self.tool(SUBMIT, "submit", "-n", n, json.dumps(body)).split()

    def get_many(self, ids):
        p = subprocess.run([SUBMIT, self.redis.url, "get"], input="\n".join(ids).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return [json.loads(line) for line in p.stdout.decode().splitlines()]

    def claim(self, queue, n, lease_ms):
        out = self.tool(TESTCTL, "claim", queue, n, lease_ms).split()
        return [(out[i], out[i + 1]) for i in range(0, len(out), 2)]

    def counts(self, queue):
        v = self.redis.cmd("HGETALL", qkey(queue, "counts")) or []
        return {v[i]: int(v[i + 1]) for i in range(0, len(v), 2)}


class TestJanitorProcess(JanitorCase):
    def run_janitor(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([JANITOR] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=e, timeout=30)

    def test_flags_and_exit_codes(self):
        p = self.run_janitor("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"--janitor-interval-ms", p.stdout)
        p = self.run_janitor("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^jobmill-janitor \d+\.\d+\.\d+\n$")
        p = self.run_janitor("--no-such-flag")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, p.stderr)
        self.assertIn(b"--no-such-flag", p.stderr)
        p = self.run_janitor("--janitor-interval-ms", "0")
        self.assertEqual(p.returncode, 2)
        cfg = os.path.join(self.logdir, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("janitor:\n  interval_ms: soon\n")
        p = self.run_janitor("--config", cfg)
        self.assertEqual(p.returncode, 2)
        line = p.stderr.decode().strip()
        self.assertEqual(len(line.splitlines()), 1, line)
        self.assertIn("bad.yaml:2", line)

    def test_metrics_from_startup_and_promtool_clean(self):
        j = self.janitor(interval_ms=1000)
        text = self.metrics(j)
        for fam, typ in FAMILIES.items():
            self.assertIn("# TYPE %s %s\n" % (fam, typ), text)
        m = parse_metrics(text)
        for reason in ("lease_expired", "dead_lettered"):
            self.assertEqual(m.get('jobmill_janitor_requeued_total{queue="default",reason="%s"}'
                                   % reason), 0.0)
        for fam in ("expired", "promoted", "purged"):
            self.assertEqual(m.get('jobmill_janitor_%s_total{queue="default"}' % fam), 0.0)
        for kind in REPAIR_KINDS:
            self.assertEqual(m.get('jobmill_janitor_repaired_total{kind="%s"}' % kind), 0.0)
        self.assertEqual(m.get('jobmill_redis_errors_total{op="requeue_expired"}'), 0.0)
        self.assertEqual(m.get("jobmill_workers_live"), 0.0)
        self.assertEqual(m.get("jobmill_worker_heartbeat_age_max_seconds"), 0.0)
        version = self.run_janitor("--version").stdout.decode().split()[1]
        self.assertEqual(m.get('jobmill_build_info{version="%s"}' % version), 1.0)
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout.decode())
        # a queue that appears later gets its series too
        self.submit({"queue": "late", "type": "t"})
        wait_for(lambda: self.metric(j, 'jobmill_janitor_expired_total{queue="late"}') == 0.0,
                 timeout=10, what="series of a new queue")
        wait_for(lambda: self.metric(j, "jobmill_janitor_last_tick_timestamp_seconds") > 0,
                 timeout=10, what="a completed tick")
        self.assertLess(abs(self.metric(j, "jobmill_janitor_last_tick_timestamp_seconds")
                            - time.time()), 30)

    def test_sigterm_exits_zero_promptly(self):
        j = self.janitor(interval_ms=5000)
        wait_for(lambda: self.metric(j, "jobmill_janitor_ticks_total") >= 1, what="first tick")
        t0 = time.monotonic()
        self.assertEqual(j.terminate(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 3.0, "SIGTERM must cut the 5 s sleep short")
        self.assertIn('"janitor stopped"', j.logs())

    def test_readyz_follows_redis_policy_and_reachability(self):
        j = self.janitor(interval_ms=50)
        wait_http(j.url + "/readyz", timeout=10)
        self.redis.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        status, _, body = http("GET", j.url + "/readyz", raw=True)
        self.assertEqual(status, 503)
        self.assertIn("noeviction", body)
        self.redis.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
        wait_http(j.url + "/readyz", timeout=10)
        self.redis.kill()
        wait_http(j.url + "/readyz", want=503, timeout=10)
        errors = 'jobmill_redis_errors_total{op="queue_names"}'
        wait_for(lambda: (self.metric(j, errors) or 0) > 0, timeout=10, what="errors counted")
        self.assertTrue(j.alive(), "a Redis outage is never fatal")
        self.redis.start()
        wait_http(j.url + "/readyz", timeout=20)
        ticks = self.metric(j, "jobmill_janitor_last_tick_timestamp_seconds")
        wait_for(lambda: self.metric(j, "jobmill_janitor_last_tick_timestamp_seconds") > ticks,
                 timeout=15, what="ticks resume after the outage")
        self.assertIn("redis reachable again", j.logs())
        self.assertEqual(j.terminate(timeout=10), 0)

    def test_refuses_newer_layout(self):
        self.redis.cmd("SET", "jm:version", "999")
        j = self.janitor(interval_ms=50, wait=False)
        self.assertEqual(j.wait(15), 1)
        self.assertIn("newer", j.logs())


class TestJanitorDuties(JanitorCase):
    def test_duties_seen_through_metrics(self):
        lease = self.submit({"queue": "dq", "type": "t", "max_attempts": 2}, n=3)
        self.assertEqual(len(self.claim("dq", 3, 100)), 3)
        dead = self.submit({"queue": "dq", "type": "t", "max_attempts": 1})
        self.assertEqual(self.claim("dq", 1, 100)[0][0], dead[0])
        due = self.submit({"queue": "dq", "type": "t", "delay_s": 0.2}, n=2)
        stale = self.submit({"queue": "xq", "type": "t", "expires_in_s": 0.2}, n=4)
        short = self.submit({"queue": "dq", "type": "t", "result_ttl_s": 1})
        _, fence = self.claim("dq", 1, 60000)[0]
        self.tool(TESTCTL, "complete", short[0], fence)
        # a worker whose own heartbeat TTL (100 ms) ran out: silent by its measure
        self.tool(TESTCTL, "beat", "w-gone", "dq", 1, 0, 100)
        j = self.janitor(interval_ms=50, heartbeat_ms=100)  # after the states are set up
        m = lambda k: self.metric(j, k) or 0  # noqa: E731
        wait_for(lambda: m('jobmill_janitor_requeued_total{queue="dq",reason="lease_expired"}')
                 == 3, timeout=10, what="3 leases requeued")
        wait_for(lambda: m('jobmill_janitor_requeued_total{queue="dq",reason="dead_lettered"}')
                 == 1, timeout=10, what="1 lease dead-lettered")
        wait_for(lambda: m('jobmill_janitor_promoted_total{queue="dq"}') == 2, timeout=10,
                 what="2 promoted")
        wait_for(lambda: m('jobmill_janitor_expired_total{queue="xq"}') == 4, timeout=10,
                 what="4 expired")
        wait_for(lambda: m('jobmill_janitor_purged_total{queue="dq"}') == 1, timeout=15,
                 what="1 purged after its 1 s retention")
        wait_for(lambda: m("jobmill_janitor_workers_pruned_total") == 1, timeout=10,
                 what="the silent worker pruned")
        self.assertIsNone(self.redis.cmd("ZSCORE", "jm:{registry}:workers", "w-gone"))
        jobs = {x["id"]: x for x in self.get_many(lease + dead + due + stale + short)}
        for i in lease:
            self.assertEqual((jobs[i]["status"], jobs[i]["attempts"]), ("queued", 1))
        self.assertEqual(jobs[dead[0]]["status"], "failed")
        self.assertEqual(jobs[dead[0]]["error"], "lease expired: worker lost")
        for i in due:
            self.assertEqual(jobs[i]["status"], "queued")
        for i in stale:
            self.assertEqual(jobs[i]["status"], "expired")
        self.assertIsNone(jobs[short[0]]["status"], "purged record is gone")
        # the counts followed every move (the reconciler found nothing to fix)
        self.assertEqual(self.counts("dq"), {"queued": 5, "running": 0, "failed": 1,
                                             "scheduled": 0, "succeeded": 0})
        self.assertEqual(self.counts("xq").get("expired"), 4)
        wait_for(lambda: m("jobmill_janitor_reconcile_cycles_total") >= 2, timeout=10,
                 what="two reconciler cycles")
        for kind in REPAIR_KINDS:
            self.assertEqual(m('jobmill_janitor_repaired_total{kind="%s"}' % kind), 0, kind)

    def test_reconciler_repairs_corruption_and_counts_it(self):
        ids = self.submit({"type": "t", "max_attempts": 5}, n=3)
        claimed = self.claim("default", 3, 600000)
        self.assertEqual(len(claimed), 3)
        queued = self.submit({"type": "t"})
        # corruption: a running job without lease, a ghost in scheduled, counts off
        self.redis.cmd("ZREM", qkey("default", "active"), ids[0])
        # (far in the future: promote_due drops due ghosts on its own)
        self.redis.cmd("ZADD", qkey("default", "scheduled"), "99999999999999",
                       "0000AAAAAAAAAAAAAAAAAAAAAA")
        self.redis.cmd("HSET", qkey("default", "counts"), "queued", "42")
        self.redis.cmd("LREM", qkey("default", "pending"), "0", queued[0])
        j = self.janitor(interval_ms=50, reconcile_every=2)
        m = lambda k: self.metric(j, k) or 0  # noqa: E731
        wait_for(lambda: m('jobmill_janitor_repaired_total{kind="running_without_lease"}') == 1,
                 timeout=10, what="lease repaired")
        wait_for(lambda: m('jobmill_janitor_repaired_total{kind="orphan_entry"}') == 1,
                 timeout=10, what="ghost removed")
        wait_for(lambda: m('jobmill_janitor_repaired_total{kind="unindexed_record"}') == 1,
                 timeout=10, what="lost queued job re-indexed")
        wait_for(lambda: m('jobmill_janitor_repaired_total{kind="counts_drift"}') >= 1,
                 timeout=10, what="counts recomputed")
        # the unleased job went through the normal expiry: requeued, its attempt spent
        wait_for(lambda: m('jobmill_janitor_requeued_total{queue="default",'
                           'reason="lease_expired"}') == 1, timeout=10, what="requeue")
        jobs = {x["id"]: x for x in self.get_many(ids + queued)}
        self.assertEqual((jobs[ids[0]]["status"], jobs[ids[0]]["attempts"]), ("queued", 1))
        self.assertEqual(jobs[ids[1]]["status"], "running")
        wait_for(lambda: self.counts("default").get("queued") == 2, timeout=10,
                 what="counts settled")
        self.assertEqual(self.counts("default").get("running"), 2)
        self.assertIn("reconciler repaired index drift", j.logs())
        # both queued jobs are claimable
        got = sorted(i for i, _ in self.claim("default", 5, 60000))
        self.assertEqual(got, sorted([ids[0], queued[0]]))


class TestWorkerLiveness(JanitorCase):
    """jobmill_workers_live and jobmill_worker_heartbeat_age_max_seconds follow
    the registry: a beat adds a live worker, a stalled one ages, an expired
    one leaves both gauges."""

    def test_gauges_follow_the_registry(self):
        j = self.janitor(interval_ms=50)
        m = lambda k: self.metric(j, k)  # noqa: E731
        wait_for(lambda: m("jobmill_janitor_ticks_total") >= 1, what="a tick")
        self.assertEqual(m("jobmill_workers_live"), 0.0)
        self.tool(TESTCTL, "beat", "w-steady", "q", 1, 0, 60000)
        self.tool(TESTCTL, "beat", "w-short", "q", 1, 0, 2000)
        wait_for(lambda: m("jobmill_workers_live") == 2, timeout=10, what="two live workers")
        # nobody beats again: the stalest worker's age grows past a second
        wait_for(lambda: m("jobmill_worker_heartbeat_age_max_seconds") >= 1.0, timeout=10,
                 what="the heartbeat age grows")
        # w-short's record expires: it is pruned and no longer counted
        wait_for(lambda: m("jobmill_workers_live") == 1, timeout=15, what="w-short expired")
        # a fresh beat of the last one brings the age back down
        self.tool(TESTCTL, "beat", "w-steady", "q", 1, 0, 60000)
        wait_for(lambda: m("jobmill_worker_heartbeat_age_max_seconds") < 1.0, timeout=10,
                 what="the age drops after a beat")
        self.redis.cmd("DEL", "jm:{registry}:worker:w-steady")
        wait_for(lambda: m("jobmill_workers_live") == 0, timeout=10, what="no live worker")
        self.assertEqual(m("jobmill_worker_heartbeat_age_max_seconds"), 0.0)


class TestJanitorReplicas(JanitorCase):
    def test_three_janitors_never_double_requeue(self):
        n = scaled(600, minimum=60)
        rounds = 3
        # small batches: each round takes many calls, so the three interleave
        janitors = [self.janitor(interval_ms=20, reconcile_every=1, extra=("--janitor-batch", "5"))
                    for _ in range(3)]
        ids = self.submit({"queue": "race", "type": "t", "max_attempts": rounds + 1}, n=n)
        self.assertEqual(len(ids), n)

        def requeued_total():
            return sum(self.metric(j, 'jobmill_janitor_requeued_total{queue="race",'
                                      'reason="lease_expired"}') or 0 for j in janitors)

        for k in range(1, rounds + 1):
            got = self.claim("race", n, 150)
            self.assertEqual(len(got), n, "round %d claims every job" % k)
            wait_for(lambda: self.counts("race").get("queued") == n and
                     self.counts("race").get("running") == 0,
                     timeout=30, what="round %d: every expired lease requeued" % k)
            wait_for(lambda: requeued_total() >= k * n, timeout=10, what="metrics caught up")
            self.assertEqual(requeued_total(), k * n, "round %d: a lease requeued twice" % k)
            self.assertEqual(self.redis.cmd("LLEN", qkey("race", "pending")), n,
                             "round %d: each job in pending once" % k)
            attempts = {x["attempts"] for x in self.get_many(ids)}
            self.assertEqual(attempts, {k}, "round %d: one attempt per expired lease" % k)
        shares = [self.metric(j, 'jobmill_janitor_requeued_total{queue="race",'
                                 'reason="lease_expired"}') for j in janitors]
        print("requeues per janitor: %s" % shares)
        for j in janitors:
            self.assertEqual(self.metric(j, 'jobmill_janitor_repaired_total{kind="counts_drift"}'),
                             0)
            self.assertEqual(j.terminate(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
