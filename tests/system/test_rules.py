"""test_rules.py - offline checks of the observability artifacts (no services):

* charts/jobmill/rules/jobmill-alerts.yaml passes `promtool check rules`, and
  its unit tests (charts/jobmill/rules/tests/*.yaml) pass `promtool test rules`;
  every alert has a runbook section, the required labels and annotations, and
  unit tests in which it fires and in which it does not;
* every PromQL expression of charts/jobmill/dashboards/jobmill.json parses
  (written as recording rules into a temporary file for `promtool check
  rules`), names only known jobmill metric families, and the dashboard has the
  variables, panels and selectors the operators rely on.

promtool comes with Debian's prometheus package (scripts/test installs it); a
missing promtool fails these tests instead of skipping them.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

CHART = os.path.join(harness.SOURCE_DIR, "charts", "jobmill")
RULES = os.path.join(CHART, "rules", "jobmill-alerts.yaml")
RULE_TESTS = sorted(glob.glob(os.path.join(CHART, "rules", "tests", "*.yaml")))
DASHBOARD = os.path.join(CHART, "dashboards", "jobmill.json")
ALERTS_DOC = os.path.join(harness.SOURCE_DIR, "docs", "operations-alerts.md")

# Families the services expose (docs/metrics.md, the fixed ones plus the documented
# extras); the dashboard and the rules may name no other jobmill_ metric.
KNOWN_FAMILIES = {
    "jobmill_build_info", "jobmill_redis_errors_total",
    "jobmill_http_requests_total", "jobmill_http_request_duration_seconds",
    "jobmill_jobs_submitted_total", "jobmill_queue_jobs", "jobmill_queue_oldest_age_seconds",
    "jobmill_queue_paused", "jobmill_api_long_polls",
    "jobmill_jobs_finished_total", "jobmill_job_duration_seconds", "jobmill_job_wait_seconds",
    "jobmill_worker_busy", "jobmill_worker_concurrency", "jobmill_worker_leases_lost_total",
    "jobmill_worker_retries_total", "jobmill_worker_exec_spawn_failures_total",
    "jobmill_worker_heartbeats_total", "jobmill_worker_log_lines_dropped_total",
    "jobmill_worker_progress_lines_ignored_total",
    "jobmill_janitor_requeued_total", "jobmill_janitor_expired_total",
    "jobmill_janitor_repaired_total", "jobmill_janitor_promoted_total",
    "jobmill_janitor_purged_total", "jobmill_janitor_ticks_total",
    "jobmill_janitor_last_tick_timestamp_seconds", "jobmill_janitor_tick_duration_seconds",
    "jobmill_janitor_workers_pruned_total", "jobmill_janitor_reconcile_cycles_total",
    "jobmill_workers_live", "jobmill_worker_heartbeat_age_max_seconds",
}
HISTOGRAMS = {"jobmill_http_request_duration_seconds", "jobmill_job_duration_seconds",
              "jobmill_job_wait_seconds", "jobmill_janitor_tick_duration_seconds"}
# Families that carry a queue label: dashboard selectors on them honour $queue.
QUEUE_LABELLED = {"jobmill_jobs_submitted_total", "jobmill_queue_jobs", "jobmill_queue_paused",
                  "jobmill_queue_oldest_age_seconds", "jobmill_jobs_finished_total",
                  "jobmill_job_duration_seconds", "jobmill_job_wait_seconds",
                  "jobmill_worker_retries_total", "jobmill_janitor_requeued_total",
                  "jobmill_janitor_expired_total", "jobmill_janitor_promoted_total",
                  "jobmill_janitor_purged_total"}


def promtool():
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool not found: install Debian's prometheus package "
                             "(scripts/test does)")
    return path


def run(args, stdin=None):
    p = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    return p.returncode, p.stdout


def metric_names(expr):
    """jobmill_ metric families an expression names (_bucket/_sum/_count folded)."""
    names = set()
    for n in re.findall(r"\bjobmill_[a-z0-9_]+", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            if n.endswith(suffix) and n[: -len(suffix)] in HISTOGRAMS:
                n = n[: -len(suffix)]
        names.add(n)
    return names


def alert_blocks(text):
    """{alert name: its YAML block text} of a rules file (text scan; the file
    is plain block YAML written by hand)."""
    parts = re.split(r"\n\s*- alert:\s*", text)
    out = {}
    for part in parts[1:]:
        name = part.split("\n", 1)[0].strip()
        out[name] = part
    return out


def check_exprs_parse(exprs):
    """Writes exprs as recording rules into a temporary rules file (JSON is
    YAML) and returns promtool check rules' (exit code, output)."""
    rules = [{"record": "jobmill_dashboard:expr_%d" % i, "expr": e} for i, e in enumerate(exprs)]
    d = tempfile.mkdtemp(prefix="jm-rules-")
    try:
        path = os.path.join(d, "dashboard-exprs.yaml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
        return run([promtool(), "check", "rules", path])
    finally:
        shutil.rmtree(d, ignore_errors=True)


class AlertRules(unittest.TestCase):
    def setUp(self):
        with open(RULES) as f:
            self.text = f.read()
        self.alerts = alert_blocks(self.text)

    def test_promtool_check_rules(self):
        rc, out = run([promtool(), "check", "rules", RULES])
        self.assertEqual(rc, 0, out)
        m = re.search(r"SUCCESS: (\d+) rules found", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(int(m.group(1)), len(self.alerts), out)

    def test_promtool_rule_unit_tests(self):
        self.assertTrue(RULE_TESTS, "no rule unit tests in charts/jobmill/rules/tests")
        for path in RULE_TESTS:
            with self.subTest(path=os.path.basename(path)):
                rc, out = run([promtool(), "test", "rules", path])
                self.assertEqual(rc, 0, out)
                self.assertIn("SUCCESS", out)

    def test_required_alerts_exist(self):
        for name in ("JobmillBacklogGrowing", "JobmillOldestJobTooOld", "JobmillWorkersSaturated",
                     "JobmillDeadLetterGrowing", "JobmillJanitorNotRunning",
                     "JobmillJanitorAbsent", "JobmillRedisErrors"):
            self.assertIn(name, self.alerts)
        self.assertIn("absent(jobmill_janitor_last_tick_timestamp_seconds)",
                      self.alerts["JobmillJanitorAbsent"])

    def test_alerts_have_labels_annotations_and_runbook(self):
        with open(ALERTS_DOC) as f:
            doc = f.read()
        headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                    for h in re.findall(r"^#+\s+(.*)$", doc, re.M)}
        for name, block in self.alerts.items():
            with self.subTest(alert=name):
                self.assertRegex(block, r"\n\s+severity: (critical|warning|info)\n")
                for key in ("summary", "description", "runbook"):
                    self.assertRegex(block, r"\n\s+%s: " % key)
                m = re.search(r"runbook: docs/operations-alerts\.md#(\S+)", block)
                self.assertIsNotNone(m, "runbook annotation must point into docs/operations-alerts.md")
                self.assertIn(m.group(1), headings, "no section %s in operations-alerts.md" % m.group(1))

    def test_rules_name_known_metrics_only(self):
        for name, block in self.alerts.items():
            with self.subTest(alert=name):
                names = metric_names(block.split("labels:", 1)[0])
                self.assertTrue(names, "alert %s names no jobmill metric" % name)
                self.assertLessEqual(names, KNOWN_FAMILIES)

    def test_every_alert_tested_firing_and_quiet(self):
        text = ""
        for path in RULE_TESTS:
            with open(path) as f:
                text += f.read()
        # alert_rule_test entries: alertname, then exp_alerts either [] or a list
        entries = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", text)
        firing = {n for n, empty in entries if not empty}
        quiet = {n for n, empty in entries if empty}
        for name in self.alerts:
            with self.subTest(alert=name):
                self.assertIn(name, firing, "no unit test where %s fires" % name)
                self.assertIn(name, quiet, "no unit test where %s stays quiet" % name)


class Dashboard(unittest.TestCase):
    def setUp(self):
        with open(DASHBOARD) as f:
            self.dash = json.load(f)
        self.targets = harness.grafana_targets(DASHBOARD)
        self.exprs = [e for _, _, e in self.targets]

    def test_every_expression_parses(self):
        self.assertGreater(len(self.exprs), 15)
        rc, out = check_exprs_parse([harness.grafana_substitute(e) for e in self.exprs])
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS: %d rules found" % len(self.exprs), out)

    def test_parse_check_catches_broken_expressions(self):
        # the checker above can fail: a missing ')' and a bad matcher are rejected
        rc, out = check_exprs_parse(["sum(rate(jobmill_jobs_finished_total[1m])"])
        self.assertNotEqual(rc, 0, out)
        rc, out = check_exprs_parse(['jobmill_queue_jobs{queue=~"$queue"}'.replace("$queue", "(")])
        self.assertNotEqual(rc, 0, out)

    def test_expressions_name_known_metrics_only(self):
        for title, ref, expr in self.targets:
            with self.subTest(panel=title, ref=ref):
                names = metric_names(expr)
                self.assertTrue(names, expr)
                self.assertLessEqual(names, KNOWN_FAMILIES, expr)

    def test_queue_variable_used_in_queue_selectors(self):
        for title, ref, expr in self.targets:
            with self.subTest(panel=title, ref=ref):
                self.assertNotIn('queue="$queue"', expr, "multi-value variables need =~")
                for name in metric_names(expr) & QUEUE_LABELLED:
                    self.assertRegex(expr, r'%s(_bucket)?\{[^}]*queue=~"\$queue"' % name, expr)

    def test_variables(self):
        self.assertGreaterEqual(self.dash.get("schemaVersion", 0), 36)
        self.assertTrue(self.dash.get("uid"))
        variables = {v["name"]: v for v in self.dash["templating"]["list"]}
        ds = variables["datasource"]
        self.assertEqual(ds["type"], "datasource")
        self.assertEqual(ds["query"], "prometheus")
        q = variables["queue"]
        self.assertEqual(q["type"], "query")
        self.assertTrue(q["multi"])
        self.assertTrue(q["includeAll"])
        self.assertEqual(q.get("allValue"), ".*")
        query = q["query"]["query"] if isinstance(q["query"], dict) else q["query"]
        self.assertEqual(query, "label_values(jobmill_queue_jobs, queue)")

    def test_panels_structure(self):
        ids = set()
        cells = set()

        def walk(panels):
            for p in panels:
                self.assertNotIn(p["id"], ids, "duplicate panel id %s" % p["id"])
                ids.add(p["id"])
                g = p["gridPos"]
                self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
                for x in range(g["x"], g["x"] + g["w"]):
                    for y in range(g["y"], g["y"] + g["h"]):
                        self.assertNotIn((x, y), cells, "panel %r overlaps another" % p["title"])
                        cells.add((x, y))
                if p["type"] != "row":
                    self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
                    self.assertTrue(p.get("targets"), p["title"])
                    refs = [t["refId"] for t in p["targets"]]
                    self.assertEqual(len(refs), len(set(refs)), p["title"])
                    for t in p["targets"]:
                        self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
                walk(p.get("panels") or [])
        walk(self.dash["panels"])

    def test_required_panels(self):
        joined = "\n".join(self.exprs)
        want = [
            r"sum by \(queue, status\) \(rate\(jobmill_jobs_finished_total\{",
            r"histogram_quantile\(0\.5, [^\n]*jobmill_job_wait_seconds_bucket",
            r"histogram_quantile\(0\.95, [^\n]*jobmill_job_wait_seconds_bucket",
            r"histogram_quantile\(0\.99, [^\n]*jobmill_job_wait_seconds_bucket",
            r"histogram_quantile\(0\.5, [^\n]*jobmill_job_duration_seconds_bucket",
            r"histogram_quantile\(0\.95, [^\n]*jobmill_job_duration_seconds_bucket",
            r"histogram_quantile\(0\.99, [^\n]*jobmill_job_duration_seconds_bucket",
            r"by \(queue, state\) \(jobmill_queue_jobs\{",
            r"jobmill_queue_oldest_age_seconds\{",
            r"sum\(jobmill_worker_busy\)",
            r"sum\(jobmill_worker_concurrency\)",
            r"rate\(jobmill_janitor_requeued_total",
            r"rate\(jobmill_janitor_expired_total",
            r"rate\(jobmill_janitor_repaired_total",
            r"sum by \(code\) \(rate\(jobmill_http_requests_total",
            r'jobmill_http_requests_total\{code=~"5\.\."\}',
            r"histogram_quantile\(0\.95, [^\n]*jobmill_http_request_duration_seconds_bucket",
            r"by \([^)]*op\) \(rate\(jobmill_redis_errors_total",
        ]
        for pattern in want:
            with self.subTest(pattern=pattern):
                self.assertRegex(joined, pattern)

    def test_substitution(self):
        s = harness.grafana_substitute(
            'rate(x{queue=~"$queue",a=~"${a}",b=~"${b:regex}",c=~"[[c]]"}[$__rate_interval])',
            rate_interval="15s")
        self.assertEqual(s, 'rate(x{queue=~".*",a=~".*",b=~".*",c=~".*"}[15s])')


if __name__ == "__main__":
    unittest.main()
