"""benchlib.py - helpers shared by bench/lib/*.py (Python stdlib only).

Every driver prints progress on stderr and its result as one last stdout
line "RESULT {json}". Processes it starts live in the driver's own process
group, which bench.py kills as a whole when the driver is done or overdue.
"""
import json
import os
import socket
import subprocess
import sys
import time


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


N = env_int("BENCH_N", 20000)            # jobs for bulk enqueue + processing
M = env_int("BENCH_M", 5000)             # jobs for single enqueue
LAT = env_int("BENCH_LAT", 200)          # latency samples
WARM = env_int("BENCH_WARMUP", 10)       # latency warm-up samples (not counted)
PROCS = env_int("BENCH_PROCS", 2)        # worker processes
CONC = env_int("BENCH_CONC", 8)          # concurrency per worker process
CLIENTS = env_int("BENCH_CLIENTS", 4)    # concurrent clients for single enqueue
BULK = env_int("BENCH_BULK", 1000)       # jobs per bulk call
PROCESS_TIMEOUT = env_int("BENCH_PROCESS_TIMEOUT", 90)  # s to wait for N completions
EWD_BATCH = env_int("BENCH_EWD_BATCH", 100)  # jobs per submit call while the workers drain
PACED_RATE = env_int("BENCH_PACED_RATE", 500)  # jobs/s of the paced latency phase
PACED_N = env_int("BENCH_PACED_N", 1000)     # jobs of the paced latency phase
REDIS_URL = os.environ.get("REDIS_URL", "")


def log(*a):
    print("  [%s]" % os.path.basename(sys.argv[0]), *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def latency_summary(ms, how, **extra):
    s = sorted(ms)
    out = {"samples": len(s), "p50_ms": pct(s, 50), "p95_ms": pct(s, 95), "p99_ms": pct(s, 99),
           "mean_ms": sum(s) / len(s) if s else None, "max_ms": s[-1] if s else None, "how": how}
    out.update(extra)
    return out


def rate(jobs, seconds, how, **extra):
    out = {"jobs": jobs, "seconds": seconds, "rate": jobs / seconds if seconds > 0 else None,
           "how": how}
    out.update(extra)
    return out


def emit(result):
    print("RESULT " + json.dumps(result), flush=True)


class RespClient:
    """A minimal RESP client (no redis-py needed for the jobmill driver)."""

    def __init__(self, url, timeout=10.0):
        hostport = url.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad RESP: %r" % line)

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()


def redis_cpu_s(info_text):
    """used_cpu_user + used_cpu_sys from the text of INFO cpu."""
    tot = 0.0
    for line in info_text.splitlines():
        if line.startswith(("used_cpu_user:", "used_cpu_sys:")):
            tot += float(line.split(":", 1)[1])
    return tot


def proc_cpu_s(pids):
    """utime + stime (s) of live processes, from /proc/PID/stat (own time only,
    not children's). A pid that is gone counts 0."""
    tot = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tot += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return tot


def redis_counters(url):
    """Redis's CPU seconds (user + sys), total_commands_processed and
    used_memory (bytes), read in one connection."""
    c = RespClient(url)
    try:
        info = c("INFO", "all")
    finally:
        c.close()
    d = {}
    for line in info.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k] = v.strip()
    return {"cpu_s": float(d.get("used_cpu_user", 0)) + float(d.get("used_cpu_sys", 0)),
            "commands": int(d.get("total_commands_processed", 0)),
            "used_memory": int(d.get("used_memory", 0))}


def commandstats(url):
    """{command: (calls, usec)} from INFO commandstats."""
    c = RespClient(url)
    try:
        info = c("INFO", "commandstats")
    finally:
        c.close()
    out = {}
    for line in info.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            kv = dict(x.split("=", 1) for x in rest.split(","))
            out[name] = (int(kv.get("calls", 0)), int(kv.get("usec", 0)))
    return out


def commandstats_delta(a, b, jobs):
    """Per-job calls and usec of each command between two commandstats
    snapshots, most usec first (a script's usec includes its inner calls,
    which are also counted under their own names)."""
    rows = []
    for name, (calls, usec) in b.items():
        c0, u0 = a.get(name, (0, 0))
        if calls - c0 > 0:
            rows.append({"command": name, "calls_per_job": (calls - c0) / jobs,
                         "usec_per_job": (usec - u0) / jobs,
                         "usec_per_call": (usec - u0) / (calls - c0)})
    rows.sort(key=lambda r: -r["usec_per_job"])
    return rows


def lifecycle(before_enqueue, after_enqueue, after_drain, jobs, how):
    """Redis cost per job from three redis_counters snapshots: memory per
    waiting job (after the enqueue, no workers), CPU and commands over the
    whole enqueue + drain."""
    return {"jobs": jobs,
            "redis_cpu_us_per_job": (after_drain["cpu_s"] - before_enqueue["cpu_s"]) * 1e6 / jobs,
            "redis_commands_per_job": (after_drain["commands"] - before_enqueue["commands"]) / jobs,
            "redis_memory_bytes_per_waiting_job":
                (after_enqueue["used_memory"] - before_enqueue["used_memory"]) / jobs,
            "how": how}


def paced(n, rate_per_s, submit):
    """Calls submit(i) n times on a fixed schedule of rate_per_s: call i at
    t0 + i/rate (after a late call the next ones follow at once until the
    schedule is met again). Returns the achieved rate."""
    period = 1.0 / rate_per_s
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        submit(i)
    dt = time.perf_counter() - t0
    return n / dt if dt > 0 else None


def wait_until(cond, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    return cond()


def spawn(argv, logpath, env=None, cwd=None):
    """Starts a child in this driver's process group, output to logpath."""
    f = open(logpath, "ab")
    return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def stop_all(procs, grace=10.0):
    for p in procs:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
