#!/usr/bin/env python3
"""bench.py - bench/run's orchestrator (Python stdlib only).

Starts one throw-away redis-server (no persistence) on a free loopback port,
then for each system runs its driver (bench/lib/*_bench.*) against it, with
FLUSHALL before each, collects the driver's "RESULT {json}" line, prints the
comparison table and saves everything under bench/results/.

Each driver runs in its own session (process group) under a time limit; the
group is killed when the driver ends, so no worker outlives its system's
turn. The group ids and Redis's pid go to $BENCH_PIDFILE for bench/run's trap.

Env: BENCH_SYSTEMS (default "jobmill bullmq rq sidekiq"), JOBMILL_BIN_DIR,
BENCH_UNAVAILABLE_<SYSTEM> (a reason: the system's row says so and it is
skipped), BENCH_SYSTEM_TIMEOUT (s, default 300), BENCH_PIDFILE and the sizes
of benchlib.py.

Prints two tables: the issue's targets (one row per measure, one column per
system and per BullMQ set-up, jobmill's ratios, then each target met or not)
and the older per-system table; writes the raw JSON and a Markdown draft of
the facts (versions, machine, Redis) and both tables to bench/results/.
"""
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
from benchlib import RespClient, free_port, wait_until  # noqa: E402

SYSTEMS = os.environ.get("BENCH_SYSTEMS", "jobmill bullmq rq sidekiq").split()
SYSTEM_TIMEOUT = benchlib.env_int("BENCH_SYSTEM_TIMEOUT", 300)
PIDFILE = os.environ.get("BENCH_PIDFILE")
RESULTS = os.path.join(BENCH, "results")

DRIVERS = {
    "jobmill": [sys.executable, os.path.join(HERE, "jobmill_bench.py")],
    "bullmq": ["node", os.path.join(BENCH, "node", "bullmq_bench.js")],
    "rq": ["/usr/bin/python3", os.path.join(HERE, "rq_bench.py")],
    "sidekiq": ["ruby", os.path.join(HERE, "sidekiq_bench.rb")],
}

groups = []      # process-group ids we started (drivers, redis)


class Stop(Exception):
    pass


def on_signal(sig, _frame):
    raise Stop("signal %d" % sig)


def note_pid(pid):
    groups.append(pid)
    if PIDFILE:
        with open(PIDFILE, "a") as f:
            f.write("%d\n" % pid)


def kill_group(pgid, grace=5.0):
    """SIGTERM the group, then SIGKILL whatever is left after grace."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except OSError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def machine_busy_s():
    """CPU seconds all cores spent in user and system mode since boot."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    # user + nice + system only: irq/softirq time (loopback TCP) is charged
    # to no process, so it would look like somebody else's.
    return (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return None


class Redis:
    def __init__(self, logdir):
        self.dir = tempfile.mkdtemp(prefix="jm-bench-redis-")
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.log = open(os.path.join(logdir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--protected-mode", "no",
             "--maxmemory-policy", "noeviction", "--loglevel", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        note_pid(self.proc.pid)
        if not wait_until(self.ping, 10):
            raise RuntimeError("redis-server did not start")
        self.version = self.info("server").get("redis_version", "?")

    def ping(self):
        try:
            c = RespClient(self.url, timeout=1)
            try:
                return c("PING") == "PONG"
            finally:
                c.close()
        except OSError:
            return False

    def cmd(self, *a):
        c = RespClient(self.url)
        try:
            return c(*a)
        finally:
            c.close()

    def info(self, section):
        out = {}
        for line in self.cmd("INFO", section).splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def cpu(self):
        i = self.info("cpu")
        return float(i.get("used_cpu_user", 0)) + float(i.get("used_cpu_sys", 0))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_driver(system, redis, logdir):
    unavailable = os.environ.get("BENCH_UNAVAILABLE_" + system.upper())
    if unavailable:
        return {"system": system, "unavailable": unavailable}
    argv = DRIVERS[system]
    if shutil.which(argv[0]) is None:
        return {"system": system, "unavailable": "%s not found" % argv[0]}
    redis.cmd("FLUSHALL")
    env = dict(os.environ, REDIS_URL=redis.url, BENCH_LOGDIR=logdir)
    errlog = os.path.join(logdir, "%s-driver.log" % system)
    load0 = loadavg()
    cpu0, busy0, kids0, t0 = redis.cpu(), machine_busy_s(), children_cpu_s(), time.monotonic()
    with open(errlog, "wb") as err:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env,
                             start_new_session=True, cwd=BENCH)
        note_pid(p.pid)
        try:
            out, _ = p.communicate(timeout=SYSTEM_TIMEOUT)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            out = b""
        finally:
            kill_group(p.pid)
            if p.poll() is None:
                p.wait()
    elapsed = time.monotonic() - t0
    res = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("RESULT "):
            try:
                res = json.loads(line[7:])
            except ValueError:
                pass
    if res is None:
        with open(errlog, "rb") as f:
            tail = f.read().decode("utf-8", "replace").strip().splitlines()[-3:]
        why = ("timed out after %ds" % SYSTEM_TIMEOUT) if timed_out else \
            ("driver exited %s without a result" % p.returncode)
        return {"system": system, "unavailable": "%s: %s (log %s)"
                % (why, " | ".join(tail)[-300:], errlog)}
    res["elapsed_s"] = elapsed
    res["redis_cpu_s"] = redis.cpu() - cpu0
    res["bench_cpu_s"] = children_cpu_s() - kids0   # the driver and what it waited for
    busy1 = machine_busy_s()
    if busy0 is not None and busy1 is not None:
        # CPU time the machine spent on anything but this system's turn
        # (other users of the machine): a noise indicator.
        res["foreign_cpu_s"] = max(0.0, (busy1 - busy0) - res["bench_cpu_s"] - res["redis_cpu_s"])
    res["loadavg_1m_at_start"] = load0
    return res


# ---- the table ----

def g(res, phase, key):
    v = res.get(phase) or {}
    return v.get(key) if isinstance(v, dict) else None


COLS = [("enq bulk/s", "enqueue_bulk", "rate", True),
        ("enq single/s", "enqueue_single", "rate", True),
        ("enq wrk/s", "enqueue_wrk", "rate", True),
        ("process/s", "process", "rate", True),
        ("p50 ms", "latency", "p50_ms", False),
        ("p95 ms", "latency", "p95_ms", False),
        ("p99 ms", "latency", "p99_ms", False)]


def fmt(v, throughput):
    if v is None:
        return "n/a"
    return "{:,.0f}".format(v) if throughput else "%.2f" % v


def table(results, meta):
    lines = []
    head = "%-9s %-8s" % ("system", "version") + "".join("%14s" % c[0] for c in COLS)
    lines.append(head)
    lines.append("-" * len(head))
    jm = next((r for r in results if r["system"] == "jobmill" and "unavailable" not in r), None)
    for r in results:
        if "unavailable" in r:
            lines.append("%-9s %-8s unavailable: %s" % (r["system"], r.get("version", "-"),
                                                        r["unavailable"]))
            continue
        row = "%-9s %-8s" % (r["system"], r.get("version", "?"))
        for _, phase, key, thr in COLS:
            v = g(r, phase, key)
            cell = fmt(v, thr)
            if v is None and isinstance(r.get(phase), dict) and r[phase].get("error"):
                cell = "error"
            if phase == "process" and r.get(phase, {}).get("complete") is False:
                cell += "*"
            row += "%14s" % cell
        lines.append(row)
        if r.get("error"):
            lines.append("%-18s error: %s" % ("", r["error"][:200]))
    peers = [r for r in results if r is not jm and "unavailable" not in r]
    if jm and peers:
        lines.append("")
        lines.append("jobmill / peer (throughput columns: >1 means jobmill is faster; "
                     "latency columns: <1 means jobmill is faster)")
        for r in peers:
            row = "%-18s" % ("vs " + r["system"])
            for _, phase, key, _thr in COLS:
                a, b = g(jm, phase, key), g(r, phase, key)
                row += "%14s" % ("%.2fx" % (a / b) if a and b else "n/a")
            lines.append(row)
    if jm:
        d = g(jm, "enqueue_direct", "rate")
        if d:
            lines.append("")
            lines.append("jobmill enqueue without HTTP (libshared, pipelined 500, tests/tools/"
                         "jm_submit): {:,.0f} jobs/s".format(d))
        sp = [(r["system"], g(r, "latency", "server_p50_ms")) for r in results
              if "unavailable" not in r and g(r, "latency", "server_p50_ms") is not None]
        if sp:
            lines.append("server-side latency p50 (system's own timestamps; jobmill and bullmq "
                         "record milliseconds): " + ", ".join("%s %.2f ms" % x for x in sp))
        rc = [(r["system"], g(r, "process", "redis_cpu_us_per_job")) for r in results
              if "unavailable" not in r and g(r, "process", "redis_cpu_us_per_job") is not None]
        if rc:
            lines.append("Redis CPU per processed job (claim to completion, the shared "
                         "resource): " + ", ".join("%s %.0f us" % x for x in rc))
    fc = [(r["system"], r.get("foreign_cpu_s"), r.get("elapsed_s")) for r in results
          if "unavailable" not in r and r.get("foreign_cpu_s") is not None]
    if fc:
        lines.append("CPU used by other programs on this machine during each turn (noise): "
                     + ", ".join("%s %.1f s of %.0f s" % x for x in fc))
        if any(x[1] > 0.1 * x[2] for x in fc):
            lines.append("WARNING: other programs used the CPUs during the run; "
                         "the numbers above are noisy")
    if any(isinstance(r.get("process"), dict) and r["process"].get("complete") is False
           for r in results):
        lines.append("* processing did not finish within BENCH_PROCESS_TIMEOUT; "
                     "rate over the jobs that did")
    return "\n".join(lines)


# ---- the targets of the performance issue, beside the peers ----

def cfgs(r):
    """[(column name, result-like dict)] of one system: BullMQ's set-ups each."""
    if r["system"] == "bullmq" and isinstance(r.get("configs"), dict):
        return [("bullmq " + k, v) for k, v in r["configs"].items() if isinstance(v, dict)]
    return [(r["system"], r)]


# (label, getter, kind, better): kind picks the format; better: "max"/"min"
ROWS = [
    ("drain of a backlog, jobs/s", ("process", "rate"), "rate", "max"),
    ("enqueue while draining, jobs/s", ("enqueue_while_draining", "rate"), "rate", "max"),
    ("Redis CPU us / job lifecycle", ("lifecycle", "redis_cpu_us_per_job"), "us", "min"),
    ("Redis commands / job lifecycle", ("lifecycle", "redis_commands_per_job"), "n1", "min"),
    ("Redis memory B / waiting job", ("lifecycle", "redis_memory_bytes_per_waiting_job"), "n0", "min"),
    ("worker CPU us / no-op job", ("enqueue_while_draining", "worker_cpu_us_per_job"), "us", "min"),
    ("submit-to-start p50 ms @500/s", ("paced_latency", "p50_ms"), "ms", "min"),
    ("submit-to-start p99 ms @500/s", ("paced_latency", "p99_ms"), "ms", "min"),
    ("submit-to-start mean ms @500/s", ("paced_latency", "mean_ms"), "ms", "min"),
    ("client e2e p50 ms (idle, 1 by 1)", ("latency", "p50_ms"), "ms", "min"),
    ("client e2e p99 ms (idle, 1 by 1)", ("latency", "p99_ms"), "ms", "min"),
    ("HTTP single submits/s (wrk)", ("enqueue_wrk", "rate"), "rate", "max"),
    ("single submits/s (4 client threads)", ("enqueue_single", "rate"), "rate", "max"),
    ("batch submits jobs/s (1000/call)", ("enqueue_bulk", "rate"), "rate", "max"),
    ("HTTP batch submits jobs/s (wrk)", ("enqueue_wrk_batch", "rate"), "rate", "max"),
]


def cell(v, kind):
    if v is None:
        return "-"
    if kind == "rate":
        return "{:,.0f}".format(v)
    if kind == "us" or kind == "n1":
        return "%.1f" % v
    if kind == "n0":
        return "%.0f" % v
    return "%.2f" % v


def best(vals, better):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return max(vals) if better == "max" else min(vals)


def ratio(a, b):
    return a / b if a is not None and b else None


def targets(results):
    """The target rows: [(label, target text, value text, met: True/False/None)]
    plus the values the verdicts used, from one run's results."""
    by = {r["system"]: r for r in results if "unavailable" not in r}
    jm = by.get("jobmill")
    if jm is None:
        return []
    bull = by.get("bullmq")
    sk = by.get("sidekiq")

    def val(r, key):
        return g(r, *key) if r else None

    def bull_best(key, better):
        return best([g(c, *key) for _, c in cfgs(bull)], better) if bull else None
    out = []
    for label, key in (("drain of a backlog", ("process", "rate")),
                       ("enqueue while draining", ("enqueue_while_draining", "rate"))):
        a = val(jm, key)
        rb, rs = ratio(a, bull_best(key, "max")), ratio(a, val(sk, key))
        met = None if rb is None and rs is None else \
            bool((rb is None or rb >= 3.0) and (rs is None or rs >= 1.5))
        out.append((label, ">= 3x BullMQ best, >= 1.5x Sidekiq",
                    "%s/s = %s BullMQ best, %s Sidekiq" % (
                        cell(a, "rate"), "%.2fx" % rb if rb else "n/a",
                        "%.2fx" % rs if rs else "n/a"), met))
    v = val(jm, ("lifecycle", "redis_cpu_us_per_job"))
    out.append(("Redis CPU per job lifecycle", "<= 25 us", cell(v, "us") + " us",
                None if v is None else v <= 25))
    v = val(jm, ("lifecycle", "redis_commands_per_job"))
    out.append(("Redis commands per job", "reported", cell(v, "n1"), None))
    v = val(jm, ("lifecycle", "redis_memory_bytes_per_waiting_job"))
    b = bull_best(("lifecycle", "redis_memory_bytes_per_waiting_job"), "min")
    out.append(("Redis memory per waiting job", "<= BullMQ's (%s B)" % cell(b, "n0"),
                cell(v, "n0") + " B", None if v is None or b is None else v <= b))
    v = val(jm, ("enqueue_while_draining", "worker_cpu_us_per_job"))
    out.append(("worker CPU per no-op job", "<= 20 us", cell(v, "us") + " us",
                None if v is None else v <= 20))
    for p, lim in (("p50", 0.5), ("p99", 2.0)):
        v = val(jm, ("paced_latency", p + "_ms"))
        out.append(("submit-to-start %s at 500/s" % p, "<= %.1f ms (jobmill stamps ms)" % lim,
                    cell(v, "ms") + " ms", None if v is None else v <= lim))
    v = val(jm, ("enqueue_wrk", "rate"))
    out.append(("HTTP single submits (wrk)", ">= 15,000/s", cell(v, "rate") + "/s",
                None if v is None else v >= 15000))
    v = val(jm, ("enqueue_bulk", "rate"))
    vw = val(jm, ("enqueue_wrk_batch", "rate"))
    top = max(x for x in (v, vw, -1) if x is not None)
    out.append(("HTTP batch submits", ">= 100,000 jobs/s",
                "%s jobs/s with wrk, %s from 1 Python client" % (cell(vw, "rate"), cell(v, "rate")),
                None if top < 0 else top >= 100000))
    sc = jm.get("scaling") or {}
    steps = [x for x in sc.get("steps", []) if x.get("rate")]
    if steps:
        out.append(("scaling 1-2-4-8 processes x %d" % steps[0].get("concurrency", 0), "reported",
                    ", ".join("%d: %s/s" % (x["procs"], cell(x["rate"], "rate")) for x in steps)
                    + "; flattens at %s" % (sc.get("flattens_at_procs") or "none of these"),
                    None))
    rc = jm.get("recovery") or {}
    if rc.get("trials"):
        out.append(("recovery after SIGKILL", "<= lease + 1 tick = %.1f s (+%.0f ms hand-off)"
                    % (rc["bound_s"], rc.get("slack_s", 0) * 1000),
                    "max %.2f s (%s)" % (rc["max_s"], ", ".join(
                        "%.2f" % t["seconds"] for t in rc["trials"])), rc.get("met")))
    return out


def target_table(results):
    cols = []
    for r in results:
        if "unavailable" in r:
            continue
        cols.extend(cfgs(r))
        if r["system"] == "bullmq" and len(cfgs(r)) > 1:
            cols.append(("bullmq best", None))
    if not cols:
        return ""
    bulls = [c for n, c in cols if n.startswith("bullmq ") and c is not None]
    bull = next((r for r in results if r["system"] == "bullmq" and "unavailable" not in r), None)
    jm = next((r for r in results if r["system"] == "jobmill" and "unavailable" not in r), None)
    sk = next((r for r in results if r["system"] == "sidekiq" and "unavailable" not in r), None)
    w = max(12, max(len(n) for n, _ in cols) + 2)
    ratios = [n for n, ok in (("jm/bull best", jm and bull), ("jm/sidekiq", jm and sk)) if ok]
    lines = ["%-36s" % "metric (same Redis, same run)" + "".join("%*s" % (w, n) for n, _ in cols)
             + "".join("%14s" % n for n in ratios)]
    lines.append("-" * len(lines[0]))
    for label, key, kind, better in ROWS:
        row = "%-36s" % label
        bull_v = None
        for n, c in cols:
            if c is None:       # bullmq best: the best set-up's value
                v = best([g(b, *key) for b in bulls], better)
                if v is None and bull:      # a phase run once, not per set-up
                    v = g(bull, *key)
                bull_v = v
            else:
                v = g(c, *key)
                if v is None and bull and n == "bullmq " + bull.get("main_config", ""):
                    v = g(bull, *key)
                if bull and n == "bullmq" and len(bulls) <= 1:
                    bull_v = v
            row += "%*s" % (w, cell(v, kind))
        for n in ratios:
            a = g(jm, *key)
            b = bull_v if n == "jm/bull best" else g(sk, *key)
            row += "%14s" % ("%.2fx" % (a / b) if a is not None and b else "-")
        lines.append(row)
    tg = targets(results)
    if tg:
        lines.append("")
        lines.append("targets (jobmill)")
        for label, target, value, met in tg:
            lines.append("  %-32s %-48s %-8s %s" % (label, target, {True: "MET", False: "NOT MET",
                                                                     None: "-"}[met], value))
    return "\n".join(lines)


def machine_facts(redis):
    """Facts for bench/RESULTS.md: CPU, cores, memory, kernel, OS, versions."""
    def first(path, prefix):
        try:
            with open(path) as f:
                for ln in f:
                    if ln.startswith(prefix):
                        return ln.split(":", 1)[1].strip() if ":" in ln else ln.split("=", 1)[1]
        except OSError:
            pass
        return None

    def out(argv):
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=10)
            return p.stdout.strip().splitlines()[0] if p.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            return None
    mem = first("/proc/meminfo", "MemTotal")
    osr = first("/etc/os-release", "PRETTY_NAME=")
    root = os.path.dirname(BENCH)
    head = out(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu_model": first("/proc/cpuinfo", "model name"), "cpus_online": os.cpu_count(),
        "cores_per_socket": first("/proc/cpuinfo", "cpu cores"),
        "mem_total": mem, "kernel": platform.release(),
        "os": osr.strip().strip('"') if osr else None,
        "redis_version": redis.version,
        "redis_config": "save '' appendonly no maxmemory-policy noeviction, loopback TCP",
        "jobmill_commit": (head + ("+changes" if dirty else "")) if head else None,
        "versions": {"python": platform.python_version(), "node": out(["node", "--version"]),
                     "ruby": out(["ruby", "--version"]), "wrk": (out(["wrk", "-v"]) or "").split(" Copyright")[0] or None,
                     "cc": out(["cc", "--version"])},
    }


def facts_md(meta, results):
    """The facts of this run as Markdown (a draft for bench/RESULTS.md)."""
    f = meta.get("facts", {})
    vs = ", ".join("%s %s" % (r["system"], r.get("version", "?")) for r in results
                   if "unavailable" not in r)
    lines = ["# bench/run %s" % meta.get("time_utc", ""), "",
             "- systems: " + vs,
             "- CPU: %s, %s CPUs online (%s cores per socket), %s RAM"
             % (f.get("cpu_model"), f.get("cpus_online"), f.get("cores_per_socket"),
                f.get("mem_total")),
             "- kernel %s, %s" % (f.get("kernel"), f.get("os")),
             "- Redis %s (%s)" % (f.get("redis_version"), f.get("redis_config")),
             "- jobmill commit %s" % f.get("jobmill_commit"),
             "- " + ", ".join("%s: %s" % kv for kv in sorted(f.get("versions", {}).items())),
             "- load average (1 min) at start: %s" % meta.get("loadavg_1m_at_start"),
             "- settings: " + ", ".join("%s=%s" % kv for kv in meta.get("settings", {}).items()),
             ""]
    for r in results:
        if "unavailable" in r:
            lines.append("- %s: unavailable: %s" % (r["system"], r["unavailable"]))
        elif r.get("notes"):
            lines.append("- %s: %s" % (r["system"], "; ".join(r["notes"])))
    tg = targets(results)
    if tg:
        lines += ["", "| target (jobmill) | goal | measured | verdict |", "|---|---|---|---|"]
        lines += ["| %s | %s | %s | %s |" % (label, goal, value, {True: "met", False: "**not met**",
                                                              None: "reported"}[met])
                  for label, goal, value, met in tg]
    jm = next((r for r in results if r["system"] == "jobmill" and "unavailable" not in r), None)
    if jm:
        steps = [x for x in (jm.get("scaling") or {}).get("steps", []) if x.get("rate")]
        if steps:
            lines += ["", "jobmill scaling curve (worker processes x concurrency %d):" %
                      steps[0]["concurrency"], "",
                      "| processes | jobs/s | Redis CPU us/job | worker CPU us/job (incl. start-up) |",
                      "|---|---|---|---|"]
            lines += ["| %d | %s | %.1f | %.1f |" % (x["procs"], cell(x["rate"], "rate"),
                                                    x["redis_cpu_us_per_job"],
                                                    x["worker_cpu_us_per_job_incl_startup"])
                      for x in steps]
        rc = jm.get("recovery") or {}
        if rc.get("trials"):
            lines += ["", "jobmill recovery after SIGKILL (lease %.1f s, janitor tick %.1f s): %s s"
                      % (rc["lease_s"], rc["tick_s"],
                         ", ".join("%.2f" % t["seconds"] for t in rc["trials"]))]
        cs = (jm.get("lifecycle") or {}).get("commandstats") or []
        if cs:
            lines += ["", "jobmill: Redis commands per job over enqueue + drain (INFO commandstats; "
                      "a script's time includes its inner commands):", "",
                      "| command | calls/job | us/job | us/call |", "|---|---|---|---|"]
            lines += ["| %s | %.3f | %.2f | %.2f |" % (x["command"], x["calls_per_job"],
                                                    x["usec_per_job"], x["usec_per_call"])
                      for x in cs[:12]]
    return "\n".join(lines) + "\n"


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    logdir = os.path.join(RESULTS, "logs-" + stamp)
    os.makedirs(logdir, exist_ok=True)
    redis = None
    results = []
    meta = {}
    try:
        redis = Redis(logdir)
        cpu_model = ""
        try:
            with open("/proc/cpuinfo") as f:
                cpu_model = next((ln.split(":", 1)[1].strip() for ln in f
                                  if ln.startswith("model name")), "")
        except OSError:
            pass
        meta = {"time_utc": stamp, "host": platform.node(), "kernel": platform.release(),
                "cpus": os.cpu_count(), "cpu_model": cpu_model,
                "redis": {"version": redis.version, "url": redis.url,
                          "config": "save '' appendonly no maxmemory-policy noeviction"},
                "settings": {"N": benchlib.N, "M": benchlib.M, "latency_samples": benchlib.LAT,
                             "warmup": benchlib.WARM, "worker_processes": benchlib.PROCS,
                             "concurrency": benchlib.CONC, "clients": benchlib.CLIENTS,
                             "bulk": benchlib.BULK, "ewd_batch": benchlib.EWD_BATCH,
                             "paced_rate": benchlib.PACED_RATE, "paced_n": benchlib.PACED_N},
                "loadavg_1m_at_start": loadavg(), "facts": machine_facts(redis)}
        print("bench: N=%d no-op jobs (bulk enqueue + processing), %d single enqueues from %d "
              "concurrent clients, %d latency samples; %d worker processes x concurrency %d; "
              "Redis %s on %s; %s CPUs shared by clients, workers and Redis"
              % (benchlib.N, benchlib.M, benchlib.CLIENTS, benchlib.LAT, benchlib.PROCS,
                 benchlib.CONC, redis.version, redis.url, os.cpu_count()), flush=True)
        for system in SYSTEMS:
            if system not in DRIVERS:
                results.append({"system": system, "unavailable": "unknown system"})
                continue
            print("bench: %s ..." % system, flush=True)
            r = run_driver(system, redis, logdir)
            if "unavailable" in r:
                print("bench: %s unavailable: %s" % (system, r["unavailable"]), flush=True)
            else:
                print("bench: %s done in %.0f s" % (system, r["elapsed_s"]), flush=True)
            results.append(r)
    except Stop as e:
        print("bench: interrupted (%s)" % e, file=sys.stderr)
        done = {r["system"] for r in results}
        results.extend({"system": s, "unavailable": "not measured: bench/run was interrupted"}
                       for s in SYSTEMS if s not in done)
    finally:
        for pgid in groups:
            if redis is None or pgid != redis.proc.pid:
                kill_group(pgid, grace=2)
        if redis is not None:
            redis.stop()
    out = {"meta": meta, "results": results}
    path = os.path.join(RESULTS, "bench-%s.json" % stamp)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    tt = target_table(results)
    md = os.path.join(RESULTS, "facts-%s.md" % stamp)
    with open(md, "w") as f:
        f.write(facts_md(meta, results))
        f.write("\n```\n%s\n```\n\n```\n%s\n```\n" % (tt, table(results, meta)))
    print()
    print(tt)
    print()
    print(table(results, meta))
    print()
    print(facts_md(meta, results))
    rel = os.path.dirname(BENCH)
    print("raw results: %s (logs: %s; facts and tables as Markdown: %s)"
          % (os.path.relpath(path, rel), os.path.relpath(logdir, rel), os.path.relpath(md, rel)))
    jm = next((r for r in results if r["system"] == "jobmill"), None)
    return 0 if jm and "unavailable" not in jm and not jm.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())
