"""test_observability.py - the metrics of the running system, checked the way
operators use them.

Starts Redis, the api, two workers and the janitor (short lease, heartbeat,
backoff and janitor intervals, every HTTP address on a free loopback port) and
a real Prometheus (Debian's, on a free loopback port, its TSDB in a temp dir)
scraping the four targets every second with charts/jobmill/rules loaded. Then:

* every /metrics exposition, at start-up and after the workload, passes
  `promtool check metrics` with no finding at all (lint warnings count);
* every contract family is there from start-up, with the contract type;
* a workload of echo, sleep, failing and retried jobs (plus a delayed and an
  expiring one) moves the counters by exactly what it did;
* histogram buckets fit: echo jobs land in a finite bucket below 1 s, sleep
  jobs of 200 ms above 0.1 s, and +Inf equals _count for every series;
* every PromQL expression of the dashboard evaluates through Prometheus' HTTP
  API ($queue -> .*, $__rate_interval -> 15s) with status success and a
  non-empty result; every alert rule expression evaluates with status success,
  Prometheus reports every rule healthy, and JobmillDeadLetterGrowing fires
  for the queue that had failures while the janitor/Redis alerts stay quiet.

No fixed sleeps: every wait polls a condition up to a deadline. promtool and
prometheus come with Debian's prometheus package (scripts/test installs it);
their absence fails the test.
"""
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness
from harness import RedisServer, Service, free_port, http, wait_for, wait_http

CHART = os.path.join(harness.SOURCE_DIR, "charts", "jobmill")
RULES = os.path.join(CHART, "rules", "jobmill-alerts.yaml")
DASHBOARD = os.path.join(CHART, "dashboards", "jobmill.json")

QA, QB, QIDLE = "obs-a", "obs-b", "obs-idle"   # QIDLE has no worker
N_ECHO = {QA: 20, QB: 10}
N_SLEEP = {QA: 3, QB: 2}
SLEEP_MS = 200
LONG_SLEEP_MS = 1000    # one QB job that outlives several heartbeats (300 ms)
N_FAIL_PERMANENT = 3    # QA, fail at once
N_FAIL_RETRIED = 2      # QA, max_attempts 2: fail, retry, fail -> dead letter
RATE_WINDOW = "15s"
# alerts that must stay quiet while the system is healthy
QUIET_ALERTS = ("JobmillJanitorNotRunning", "JobmillJanitorAbsent", "JobmillRedisErrors")

CONTRACT = {
    "all": {"jobmill_build_info": "gauge", "jobmill_redis_errors_total": "counter"},
    "api": {"jobmill_http_requests_total": "counter",
            "jobmill_http_request_duration_seconds": "histogram",
            "jobmill_jobs_submitted_total": "counter",
            "jobmill_queue_jobs": "gauge",
            "jobmill_queue_paused": "gauge",
            "jobmill_queue_oldest_age_seconds": "gauge"},
    "worker": {"jobmill_jobs_finished_total": "counter",
               "jobmill_job_duration_seconds": "histogram",
               "jobmill_job_wait_seconds": "histogram",
               "jobmill_worker_busy": "gauge",
               "jobmill_worker_concurrency": "gauge",
               "jobmill_worker_leases_lost_total": "counter",
               "jobmill_worker_retries_total": "counter",
               "jobmill_worker_exec_spawn_failures_total": "counter",
               "jobmill_worker_heartbeats_total": "counter",
               "jobmill_worker_log_lines_dropped_total": "counter",
               "jobmill_worker_progress_lines_ignored_total": "counter"},
    "janitor": {"jobmill_janitor_requeued_total": "counter",
                "jobmill_janitor_expired_total": "counter",
                "jobmill_janitor_repaired_total": "counter",
                "jobmill_janitor_promoted_total": "counter",
                "jobmill_janitor_purged_total": "counter",
                "jobmill_janitor_ticks_total": "counter",
                "jobmill_janitor_last_tick_timestamp_seconds": "gauge",
                "jobmill_janitor_tick_duration_seconds": "histogram"},
}


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError("%s not found: install Debian's prometheus package "
                             "(scripts/test does)" % name)
    return path


# ---- Prometheus text exposition ----

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """Returns (types {family: type}, samples [(name, labels dict, value)])."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(None, 3)
            types[fam] = typ.strip()
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if not m:
                raise AssertionError("unparsable exposition line: %r" % line)
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def total(samples, name, **match):
    return sum(v for n, lb, v in samples
               if n == name and all(lb.get(k) == w for k, w in match.items()))


def histograms(samples, family):
    """{frozenset(labels without le): {"buckets": {le: count}, "count": c, "sum": s}}"""
    out = {}
    for n, lb, v in samples:
        if n not in (family + "_bucket", family + "_count", family + "_sum"):
            continue
        key = frozenset((k, w) for k, w in lb.items() if k != "le")
        h = out.setdefault(key, {"buckets": {}, "count": None, "sum": None})
        if n.endswith("_bucket"):
            h["buckets"][float(lb["le"])] = v
        elif n.endswith("_count"):
            h["count"] = v
        else:
            h["sum"] = v
    return out


class Observability(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        cls.promtool = tool("promtool")
        cls.prometheus_bin = tool("prometheus")
        cls.tmp = tempfile.mkdtemp(prefix="jm-obs-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.stop)

        cls.api_port = free_port()
        cls.api = cls.start("api", {"JOBMILL_LISTEN": "127.0.0.1:%d" % cls.api_port})
        cls.api_url = "http://127.0.0.1:%d" % cls.api_port
        cls.worker_urls, cls.workers = [], []
        for i in range(2):
            port = free_port()
            cls.workers.append(cls.start("worker", {
                "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port,
                "JOBMILL_WORKER_ID": "obs-w%d" % i,
                "JOBMILL_QUEUES": "%s,%s" % (QA, QB),
                "JOBMILL_CONCURRENCY": "4",
                "JOBMILL_LEASE_MS": "3000",
                "JOBMILL_HEARTBEAT_MS": "300",
                "JOBMILL_BACKOFF_BASE_MS": "50",
                "JOBMILL_BACKOFF_MAX_MS": "200",
                "JOBMILL_SHUTDOWN_GRACE_MS": "1000"}))
            cls.worker_urls.append("http://127.0.0.1:%d" % port)
        jport = free_port()
        cls.janitor = cls.start("janitor", {"JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % jport,
                                            "JOBMILL_JANITOR_INTERVAL_MS": "200"})
        cls.janitor_url = "http://127.0.0.1:%d" % jport
        cls.targets = {"jobmill-api": [cls.api_url], "jobmill-worker": cls.worker_urls,
                       "jobmill-janitor": [cls.janitor_url]}
        for url in [cls.api_url, cls.janitor_url] + cls.worker_urls:
            wait_http(url + "/readyz", timeout=15)

        cls.start_prometheus()
        # expositions as they are at start-up, before any job exists
        cls.startup = cls.scrape_all()
        wait_for(cls.all_targets_up, timeout=30, interval=0.2, what="prometheus scraping all 4 targets")
        cls.t_ready = time.monotonic()
        cls.run_workload()
        cls.t_workload = time.monotonic()
        cls.final = cls.scrape_all()

    @classmethod
    def start(cls, name, env):
        s = Service(name, cls.redis.url, env=env, logdir=cls.tmp)
        s.start()
        cls.addClassCleanup(s.stop)
        return s

    @classmethod
    def start_prometheus(cls):
        cls.prom_port = free_port()
        cls.prom_url = "http://127.0.0.1:%d" % cls.prom_port
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [RULES],
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics",
                 "static_configs": [{"targets": [u.split("//", 1)[1] for u in urls]}]}
                for job, urls in cls.targets.items()],
        }
        cfg = os.path.join(cls.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            json.dump(config, f, indent=1)   # JSON is YAML
        p = subprocess.run([cls.promtool, "check", "config", cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise AssertionError("promtool check config:\n" + p.stdout)
        cls.prom_log = open(os.path.join(cls.tmp, "prometheus.log"), "wb")
        cls.addClassCleanup(cls.prom_log.close)
        cls.prom = subprocess.Popen(
            [cls.prometheus_bin, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(cls.tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port,
             "--web.console.templates=" + os.path.join(cls.tmp, "consoles"),
             "--web.console.libraries=" + os.path.join(cls.tmp, "console_libraries")],
            stdout=cls.prom_log, stderr=subprocess.STDOUT, start_new_session=True)
        cls.addClassCleanup(cls.stop_prometheus)
        wait_http(cls.prom_url + "/-/ready", timeout=20)

    @classmethod
    def stop_prometheus(cls):
        if cls.prom.poll() is None:
            cls.prom.terminate()
            try:
                cls.prom.wait(15)
            except subprocess.TimeoutExpired:
                cls.prom.kill()
                cls.prom.wait()

    @classmethod
    def prom_logs(cls):
        try:
            with open(os.path.join(cls.tmp, "prometheus.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    @classmethod
    def all_targets_up(cls):
        st, _, body = http("GET", cls.prom_url + "/api/v1/targets?state=active", timeout=5)
        if st != 200:
            return False
        active = body["data"]["activeTargets"]
        return len(active) == 4 and all(t["health"] == "up" for t in active)

    @classmethod
    def scrape_all(cls):
        out = {}
        for name, url in [("api", cls.api_url), ("janitor", cls.janitor_url)] + \
                [("worker%d" % i, u) for i, u in enumerate(cls.worker_urls)]:
            st, hdrs, text = http("GET", url + "/metrics", raw=True)
            assert st == 200, "%s /metrics -> %d" % (name, st)
            out[name] = text
        return out

    @classmethod
    def submit(cls, queue, jtype, payload=None, **extra):
        body = dict(queue=queue, type=jtype, payload=payload, **extra)
        st, _, job = http("POST", cls.api_url + "/v1/jobs", body)
        assert st == 201, "submit %r -> %d %r" % (body, st, job)
        return job["id"]

    @classmethod
    def run_workload(cls):
        ids = []
        for q in (QA, QB):
            ids += [cls.submit(q, "echo", {"i": i}) for i in range(N_ECHO[q])]
            ids += [cls.submit(q, "sleep", {"ms": SLEEP_MS}) for _ in range(N_SLEEP[q])]
        ids += [cls.submit(QA, "fail", {"message": "boom", "permanent": True}, max_attempts=1)
                for _ in range(N_FAIL_PERMANENT)]
        ids += [cls.submit(QA, "fail", {"message": "flaky", "permanent": False}, max_attempts=2)
                for _ in range(N_FAIL_RETRIED)]
        ids.append(cls.submit(QB, "echo", {"delayed": True}, delay_s=1))
        ids.append(cls.submit(QB, "sleep", {"ms": LONG_SLEEP_MS}))
        cls.expiring = cls.submit(QIDLE, "echo", {"never": "runs"}, expires_in_s=1)
        ids.append(cls.expiring)
        cls.final_jobs = {}
        deadline = time.monotonic() + 30
        for jid in ids:
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "job %s did not finish in time" % jid
                st, _, job = http("GET", "%s/v1/jobs/%s?wait=%d" % (cls.api_url, jid, max(1, min(10, int(left)))),
                                  timeout=15)
                assert st == 200, (st, job)
                if job["status"] in ("succeeded", "failed", "canceled", "expired"):
                    cls.final_jobs[jid] = job
                    break

    # ---- Prometheus HTTP API ----

    def query(self, expr):
        url = "%s/api/v1/query?%s" % (self.prom_url, urllib.parse.urlencode({"query": expr}))
        st, _, body = http("GET", url, timeout=10)
        return st, body

    def query_ok(self, expr):
        st, body = self.query(expr)
        self.assertEqual((st, body.get("status")), (200, "success"),
                         "query %r failed: %r" % (expr, body))
        return body["data"]["result"]

    def metric_samples(self, key):
        return parse_exposition(self.final[key])[1]

    def worker_samples(self):
        return self.metric_samples("worker0") + self.metric_samples("worker1")

    # ---- tests ----

    def test_01_promtool_check_metrics(self):
        for phase, expositions in (("start-up", self.startup), ("after workload", self.final)):
            for name, text in expositions.items():
                with self.subTest(phase=phase, service=name):
                    p = subprocess.run([self.promtool, "check", "metrics"], input=text,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, timeout=30)
                    self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s" % p.stdout)
                    self.assertEqual(p.stdout.strip(), "", "promtool findings:\n%s" % p.stdout)

    def test_02_contract_families_from_startup(self):
        for name, text in self.startup.items():
            kind = re.sub(r"\d+$", "", name)
            types, samples = parse_exposition(text)
            want = dict(CONTRACT["all"], **CONTRACT[kind])
            for fam, typ in sorted(want.items()):
                with self.subTest(service=name, family=fam):
                    self.assertEqual(types.get(fam), typ, "%s: family %s missing or wrong type"
                                     % (name, fam))
            # build_info has the version of --version
            versions = [lb.get("version") for n, lb, _ in samples if n == "jobmill_build_info"]
            self.assertEqual(len(versions), 1, name)
            self.assertTrue(versions[0], name)
        # labelled counters exist at 0 for every served queue and every status
        for key in ("worker0", "worker1"):
            _, samples = parse_exposition(self.startup[key])
            for q in (QA, QB):
                for status in ("succeeded", "failed", "canceled"):
                    with self.subTest(worker=key, queue=q, status=status):
                        present = [v for n, lb, v in samples
                                   if n == "jobmill_jobs_finished_total"
                                   and lb.get("queue") == q and lb.get("status") == status]
                        self.assertEqual(present, [0.0])
            conc = [v for n, _, v in samples if n == "jobmill_worker_concurrency"]
            self.assertEqual(conc, [4.0], key)

    def test_03_counters_match_workload(self):
        w = self.worker_samples()
        succeeded = {q: N_ECHO[q] + N_SLEEP[q] for q in (QA, QB)}
        succeeded[QB] += 2   # the delayed echo, the long sleep
        failed = N_FAIL_PERMANENT + N_FAIL_RETRIED
        statuses = [j["status"] for j in self.final_jobs.values()]
        self.assertEqual(statuses.count("succeeded"), succeeded[QA] + succeeded[QB])
        self.assertEqual(statuses.count("failed"), failed)
        self.assertEqual(self.final_jobs[self.expiring]["status"], "expired")
        for q in (QA, QB):
            self.assertEqual(total(w, "jobmill_jobs_finished_total", queue=q, status="succeeded"),
                             succeeded[q], q)
            self.assertEqual(total(w, "jobmill_jobs_finished_total", queue=q, status="canceled"), 0)
        self.assertEqual(total(w, "jobmill_jobs_finished_total", queue=QA, status="failed"), failed)
        self.assertEqual(total(w, "jobmill_jobs_finished_total", queue=QB, status="failed"), 0)
        self.assertEqual(total(w, "jobmill_worker_retries_total", queue=QA), N_FAIL_RETRIED)
        self.assertEqual(total(w, "jobmill_worker_leases_lost_total"), 0)
        self.assertEqual(total(w, "jobmill_worker_exec_spawn_failures_total"), 0)
        # lease renewals happen while jobs run: the long sleep outlived several heartbeats
        self.assertGreaterEqual(total(w, "jobmill_worker_heartbeats_total"), 2)
        api = self.metric_samples("api")
        for q, n in ((QA, N_ECHO[QA] + N_SLEEP[QA] + N_FAIL_PERMANENT + N_FAIL_RETRIED),
                     (QB, N_ECHO[QB] + N_SLEEP[QB] + 2), (QIDLE, 1)):
            self.assertEqual(total(api, "jobmill_jobs_submitted_total", queue=q), n, q)
        self.assertGreaterEqual(total(api, "jobmill_http_requests_total", route="/v1/jobs",
                                      code="201"), 1)
        jan = self.metric_samples("janitor")
        self.assertEqual(total(jan, "jobmill_janitor_expired_total", queue=QIDLE), 1)
        # the delayed job, and the retried attempts, were promoted by the janitor
        self.assertGreaterEqual(total(jan, "jobmill_janitor_promoted_total", queue=QB), 1)
        self.assertGreater(total(jan, "jobmill_janitor_ticks_total"), 0)
        self.assertEqual(sum(v for n, _, v in self.redis_errors_seen()), 0,
                         "Redis errors during a healthy run")

    def redis_errors_seen(self):
        out = []
        for key in self.final:
            out += [(n, lb, v) for n, lb, v in self.metric_samples(key)
                    if n == "jobmill_redis_errors_total" and v]
        return out

    def test_04_histogram_buckets_fit_workload(self):
        # per worker (the raw expositions carry no instance label), then summed
        dur = [h for key in ("worker0", "worker1")
               for h in histograms(self.metric_samples(key), "jobmill_job_duration_seconds").items()]
        by_type = {}
        for key, h in dur:
            t = dict(key).get("type")
            agg = by_type.setdefault(t, {"buckets": {}, "count": 0, "sum": 0})
            agg["count"] += h["count"]
            agg["sum"] += h["sum"]
            for le, c in h["buckets"].items():
                agg["buckets"][le] = agg["buckets"].get(le, 0) + c
        echo = by_type["echo"]
        self.assertEqual(echo["count"], N_ECHO[QA] + N_ECHO[QB] + 1)
        below_1s = {le: c for le, c in echo["buckets"].items() if le < 1}
        self.assertTrue(any(c > 0 for c in below_1s.values()),
                        "no echo job in a finite bucket below 1 s: %r" % echo["buckets"])
        self.assertEqual(echo["buckets"][0.5], echo["count"], "echo jobs slower than 0.5 s?")
        sleep = by_type["sleep"]
        self.assertEqual(sleep["count"], N_SLEEP[QA] + N_SLEEP[QB] + 1)
        self.assertEqual(sleep["buckets"][0.1], 0, "sleep %d ms recorded below 0.1 s" % SLEEP_MS)
        self.assertEqual(sleep["buckets"][2.5], sleep["count"])
        self.assertGreaterEqual(sleep["sum"], ((sleep["count"] - 1) * SLEEP_MS + LONG_SLEEP_MS)
                                / 1000.0 * 0.95)
        self.assertEqual(sleep["buckets"][0.5], sleep["count"] - 1, "only the long sleep > 0.5 s")
        # attempts: every job but the expired one started once, the retried ones twice
        attempts = len(self.final_jobs) - 1 + N_FAIL_RETRIED
        self.assertEqual(sum(a["count"] for a in by_type.values()), attempts)
        wait = [h for key in ("worker0", "worker1")
                for h in histograms(self.metric_samples(key), "jobmill_job_wait_seconds").values()]
        self.assertEqual(sum(h["count"] for h in wait), attempts)
        # every histogram of every service: cumulative, +Inf == _count, 0.5 ms .. 30 min
        for key, text in self.final.items():
            types, samples = parse_exposition(text)
            for fam in [f for f, t in types.items() if t == "histogram"]:
                for labels, h in histograms(samples, fam).items():
                    with self.subTest(service=key, family=fam, labels=dict(labels)):
                        les = sorted(h["buckets"])
                        self.assertEqual(les[-1], math.inf)
                        self.assertEqual(h["buckets"][math.inf], h["count"])
                        counts = [h["buckets"][le] for le in les]
                        self.assertEqual(counts, sorted(counts), "buckets not cumulative")
                        self.assertEqual(les[0], 0.0005)
                        self.assertEqual(les[-2], 1800)
                        self.assertIsNotNone(h["sum"])

    def test_05_dashboard_queries_return_data(self):
        # wait until Prometheus holds the workload's results
        def finished_seen():
            r = self.query_ok('sum(jobmill_jobs_finished_total{queue="%s",status="failed"})' % QA)
            return r and float(r[0]["value"][1]) == N_FAIL_PERMANENT + N_FAIL_RETRIED
        wait_for(finished_seen, timeout=20, interval=0.2, what="prometheus to scrape the workload")
        targets = harness.grafana_targets(DASHBOARD)
        self.assertGreater(len(targets), 15)
        pending = {}
        for title, ref, expr in targets:
            pending[(title, ref)] = harness.grafana_substitute(expr, rate_interval=RATE_WINDOW)

        def drain():
            for k, e in list(pending.items()):
                if self.query_ok(e):
                    del pending[k]
            return not pending
        try:
            wait_for(drain, timeout=20, interval=0.5, what="every dashboard query to return data")
        except AssertionError:
            self.fail("dashboard queries without data: %s" % json.dumps(
                {"%s/%s" % k: e for k, e in pending.items()}, indent=1))
        # the values mean what the panels say
        throughput = self.query_ok('sum by (queue, status) (rate(jobmill_jobs_finished_total'
                                   '{queue=~".*"}[1m]))')
        got = {(r["metric"]["queue"], r["metric"]["status"]) for r in throughput
               if float(r["value"][1]) > 0}
        self.assertLessEqual({(QA, "succeeded"), (QA, "failed"), (QB, "succeeded")}, got)
        conc = self.query_ok("sum(jobmill_worker_concurrency)")
        self.assertEqual(float(conc[0]["value"][1]), 8.0)
        p50 = self.query_ok('histogram_quantile(0.5, sum by (le) (rate('
                            'jobmill_job_duration_seconds_bucket{queue=~".*"}[1m])))')
        self.assertLess(float(p50[0]["value"][1]), 1.0)
        states = {r["metric"]["state"] for r in self.query_ok(
            'max by (state) (jobmill_queue_jobs{queue="%s"})' % QA)}
        self.assertLessEqual({"queued", "scheduled", "running", "succeeded", "failed",
                              "canceled", "expired"}, states)
        # the queue variable: label_values(jobmill_queue_jobs, queue)
        def queue_labels():
            st, _, body = http("GET", "%s/api/v1/label/queue/values?%s" % (
                self.prom_url, urllib.parse.urlencode({"match[]": "jobmill_queue_jobs"})))
            self.assertEqual(st, 200)
            return set(body["data"])
        # every queue, once a scrape has seen it (a scrape may meet a slow Redis)
        wait_for(lambda: {QA, QB, QIDLE} <= queue_labels(), timeout=20, interval=0.5,
                 what="every queue among the dashboard's queue values")
        self.assertLessEqual({QA, QB, QIDLE}, queue_labels())

    def test_06_alert_rules_evaluate(self):
        st, _, body = http("GET", self.prom_url + "/api/v1/rules")
        self.assertEqual(st, 200)
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        with open(RULES) as f:
            n_alerts = len(re.findall(r"^\s*- alert:", f.read(), re.M))
        self.assertEqual(len(rules), n_alerts, "Prometheus loaded %d of %d rules"
                         % (len(rules), n_alerts))
        for r in rules:
            with self.subTest(alert=r["name"]):
                self.query_ok(r["query"])   # parses and evaluates (it may be empty)

        # rule evaluation is healthy, dead letters fire for QA, the janitor and Redis alerts stay quiet
        def settled():
            st, _, body = http("GET", self.prom_url + "/api/v1/rules")
            rs = {r["name"]: r for g in body["data"]["groups"] for r in g["rules"]}
            if any(r.get("health") != "ok" for r in rs.values()):
                return None
            self.last_rules = rs
            dl = rs["JobmillDeadLetterGrowing"]
            firing = {a["labels"].get("queue") for a in dl.get("alerts", []) if a["state"] == "firing"}
            quiet = all(rs[n]["state"] == "inactive" for n in QUIET_ALERTS)
            return rs if QA in firing and quiet else None
        self.last_rules = None
        try:
            rs = wait_for(settled, timeout=20, interval=0.3,
                          what="JobmillDeadLetterGrowing firing for %s, %s inactive"
                          % (QA, ", ".join(QUIET_ALERTS)))
        except AssertionError as e:
            self.fail("%s\nrules: %s" % (e, json.dumps(self.last_rules, indent=1)[:6000]))
        firing = {a["labels"].get("queue") for a in rs["JobmillDeadLetterGrowing"]["alerts"]}
        self.assertNotIn(QB, firing)


if __name__ == "__main__":
    unittest.main()
