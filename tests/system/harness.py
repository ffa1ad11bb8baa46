"""harness.py - shared helpers for the system tests (Python stdlib only).

System tests start a throw-away redis-server and the real jobmill binaries on
free loopback ports, drive them over HTTP and RESP, and kill/stop/restart
them. Nothing here sleeps for a fixed time: every wait is a condition polled
until a deadline (wait_for).

Environment (set by CTest, see tests/CMakeLists.txt):
  JOBMILL_BIN_DIR     directory holding jobmill-api, jobmill-worker, jobmill-janitor
  REDIS_SERVER        path of redis-server
  JOBMILL_TEST_SCALE  factor (0 < s <= 1) for the size of heavy tests
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("JOBMILL_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
BIN_DIR = os.environ.get("JOBMILL_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
REDIS_SERVER = os.environ.get("REDIS_SERVER", shutil.which("redis-server") or "redis-server")


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the test process dies, so a
    crashed or interrupted test never leaves servers behind."""
    _libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def scale():
    """JOBMILL_TEST_SCALE as a float (1 = full size)."""
    try:
        return max(0.01, float(os.environ.get("JOBMILL_TEST_SCALE", "1")))
    except ValueError:
        return 1.0


def scaled(n, minimum=1):
    return max(minimum, int(n * scale()))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    """Polls cond() until it returns a truthy value or the deadline passes;
    returns that value or raises AssertionError naming what."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - a condition may fail while a server starts
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)


# ---- a minimal RESP client (no redis-py on a fresh machine) ----

class RedisClient:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

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
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
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


def redis_ping(port):
    """True when a Redis (or a sentinel) answers PING on the loopback port."""
    try:
        c = RedisClient(port, timeout=0.5)
        try:
            return c("PING") == "PONG"
        finally:
            c.close()
    except OSError:
        return False


class RedisServer:
    """A throw-away redis-server on a free loopback port with its own dir."""

    def __init__(self, extra=None, appendonly=False):
        self.dir = tempfile.mkdtemp(prefix="jm-sys-redis-")
        self.port = free_port()
        self.extra = list(extra or [])
        self.appendonly = appendonly
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning",
                "--logfile", "redis.log"] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        wait_for(self.ping, timeout=10, what="redis-server on port %d" % self.port)

    def ping(self):
        return redis_ping(self.port)

    def client(self):
        return RedisClient(self.port)

    def cmd(self, *args):
        c = self.client()
        try:
            return c(*args)
        finally:
            c.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.kill()
        self.start()

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    """One jobmill binary: started with env and flags, logs in a file."""

    def __init__(self, name, redis_url, args=(), env=None, logdir=None):
        self.name = name
        self.binary = os.path.join(BIN_DIR, "jobmill-" + name)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env["REDIS_URL"] = redis_url
        self.env.setdefault("JOBMILL_LOG_LEVEL", "info")
        self.env.update(env or {})
        self.logdir = logdir or tempfile.mkdtemp(prefix="jm-sys-log-")
        self.log_path = None
        self.proc = None

    def start(self):
        self.log_path = os.path.join(self.logdir, "%s-%d.log" % (self.name, int(time.time() * 1e6)))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary] + self.args, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        return self.wait(10)

    def terminate(self, timeout=30):
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (pid %d) did not exit within %ss; log:\n%s"
                                 % (self.name, self.proc.pid, timeout, self.logs()[-4000:]))

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def stop(self):
        """Best-effort cleanup for tearDown: SIGKILL the whole session."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def http(method, url, body=None, headers=None, timeout=10.0, raw=False):
    """Returns (status, headers dict with lower-case names, parsed JSON or text)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
        status, rh, payload = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, rh, payload = e.code, e.headers, e.read()
    h = {k.lower(): v for k, v in rh.items()}
    text = payload.decode("utf-8", "replace")
    if raw:
        return status, h, text
    try:
        return status, h, json.loads(text) if text else None
    except ValueError:
        return status, h, text


def wait_http(url, timeout=15.0, want=200):
    """Waits until GET url answers the wanted status."""
    def ok():
        try:
            return http("GET", url, timeout=1.0, raw=True)[0] == want
        except OSError:
            return False
    wait_for(ok, timeout=timeout, what="GET %s -> %d" % (url, want))


# ---- Grafana dashboard helpers (test_rules, test_observability) ----

def grafana_targets(dashboard_path):
    """Returns [(panel title, refId, expr)] for every Prometheus query target
    of a Grafana dashboard JSON file, panels nested in rows included."""
    with open(dashboard_path) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels or []:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((p.get("title", ""), t.get("refId", ""), t["expr"]))
            walk(p.get("panels"))
    walk(dash.get("panels"))
    return out


def grafana_substitute(expr, rate_interval="1m", interval="15s", range_="1h", var_value=".*"):
    """Replaces Grafana's built-in and template variables in a PromQL
    expression with values Prometheus accepts: $__rate_interval, $__interval,
    $__range, then $var / ${var} / ${var:fmt} / [[var]] with var_value."""
    import re
    for name, val in (("__rate_interval", rate_interval), ("__interval", interval),
                      ("__range", range_)):
        expr = re.sub(r"\$\{%s\}|\$%s\b" % (name, name), val, expr)
    expr = re.sub(r"\$\{\w+(:\w+)?\}|\[\[\w+\]\]|\$[A-Za-z_]\w*", var_value, expr)
    return expr


# ---- jobmill-api helpers (test_api*, test_openapi) ----

def start_api(redis_url, env=None, args=(), wait_ready=True, timeout=30.0):
    """Starts jobmill-api on a free loopback port (drain delay 0 unless env
    says otherwise) and waits until /healthz answers (and /readyz is 200 when
    wait_ready). Returns (Service, base_url); the caller stops the Service."""
    port = free_port()
    e = {"JOBMILL_LISTEN": "127.0.0.1:%d" % port, "JOBMILL_API_DRAIN_DELAY_MS": "0",
         "JOBMILL_API_THREADS": "8"}
    e.update(env or {})
    svc = Service("api", redis_url, args=args, env=e).start()
    base = "http://127.0.0.1:%d" % port
    try:
        wait_http(base + "/healthz", timeout=timeout)
        if wait_ready:
            wait_http(base + "/readyz", timeout=timeout)
    except AssertionError:
        log = svc.logs()
        svc.stop()
        raise AssertionError("jobmill-api did not come up; log:\n%s" % log[-4000:])
    return svc, base


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def stop_api(api, redis):
    """Stops an api started by start_api with SIGTERM, and its Redis; raises
    AssertionError when the api did not exit 0 or its log holds a sanitizer
    report (a leak, UB): every class of api tests ends with it."""
    code = api.terminate(timeout=30)
    log = api.logs()
    api.stop()
    redis.stop()
    if code != 0:
        raise AssertionError("jobmill-api exited %s on SIGTERM; log:\n%s" % (code, log[-4000:]))
    if any(mark in log for mark in SANITIZER_MARKS):
        raise AssertionError("sanitizer report in the api log:\n%s" % log[-6000:])


def testctl(redis_url, *args, check=True, env=None):
    """Runs the jm_testctl tool (tests/tools) from BIN_DIR with args; returns
    its stdout. Raises AssertionError on a non-zero exit when check."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([os.path.join(BIN_DIR, "jm_testctl"), redis_url] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError("jm_testctl %s failed (%d): %s"
                             % (" ".join(map(str, args)), p.returncode, p.stderr.decode()))
    return p.stdout.decode()


def claim_one(redis_url, queue, lease_ms=60000):
    """Claims the next job of queue through jm_testctl; returns (id, fence)."""
    out = testctl(redis_url, "claim", queue, 1, lease_ms).split()
    if len(out) != 2:
        raise AssertionError("nothing to claim in queue %s" % queue)
    return out[0], out[1]


# ---- Redis Cluster (test_cluster.py) ----

def crc16(data):
    """Redis Cluster's CRC16 (XMODEM)."""
    crc = 0
    for b in data.encode() if isinstance(data, str) else data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xffff if crc & 0x8000 else (crc << 1) & 0xffff
    return crc


def key_slot(key):
    """The cluster slot of key, honouring a {hash tag}."""
    s = key.find("{")
    if s >= 0:
        e = key.find("}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % 16384


def queue_tag(queue):
    """A queue's slot tag: 4 hex digits of CRC16(name) mod 16384."""
    return "%04x" % (crc16(queue) % 16384)


def queue_slot(queue):
    """The cluster slot of every key of a queue (the slot of its tag)."""
    return key_slot("{%s}" % queue_tag(queue))


class RedisCluster:
    """A throw-away Redis Cluster on loopback ports: `primaries` primaries with
    `replicas` replicas each, slots split evenly, built by hand (ADDSLOTSRANGE,
    MEET, REPLICATE) and waited on with deadlines until every node reports
    cluster_state:ok and every replica is in sync."""

    def __init__(self, primaries=3, replicas=1, node_timeout_ms=2000):
        extra = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(node_timeout_ms)]
        self.nodes = []
        try:
            for _ in range(primaries * (1 + replicas)):
                # the bus port defaults to port + 10000, past 65535 for most
                # ephemeral ports: give it a free port of its own
                bus = free_port()
                self.nodes.append(RedisServer(extra=extra + ["--cluster-port", str(bus)]))
                self.nodes[-1].bus_port = bus
            self.primaries = self.nodes[:primaries]
            per = 16384 // primaries
            for i, p in enumerate(self.primaries):
                hi = 16383 if i == primaries - 1 else (i + 1) * per - 1
                p.cmd("CLUSTER", "ADDSLOTSRANGE", i * per, hi)
            for n in self.nodes[1:]:
                n.cmd("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port, self.nodes[0].bus_port)
            wait_for(lambda: all(len(self.cluster_nodes(n)) == len(self.nodes) for n in self.nodes),
                     timeout=20, interval=0.05, what="every node knows every other")
            for k, n in enumerate(self.nodes[primaries:]):
                p = self.primaries[k % primaries]
                n.cmd("CLUSTER", "REPLICATE", self.node_id(p))
            self.wait_ok()
            for n in self.nodes[primaries:]:
                wait_for(lambda n=n: "master_link_status:up" in n.cmd("INFO", "replication"),
                         timeout=20, interval=0.05, what="replica %d in sync" % n.port)
        except BaseException:
            self.stop()
            raise

    @property
    def seeds(self):
        return ",".join("127.0.0.1:%d" % n.port for n in self.nodes)

    @staticmethod
    def cluster_nodes(node):
        return [l.split() for l in node.cmd("CLUSTER", "NODES").splitlines() if l.strip()]

    @staticmethod
    def node_id(node):
        return node.cmd("CLUSTER", "MYID")

    def wait_ok(self, timeout=30):
        def ok():
            for n in self.nodes:
                try:
                    info = n.cmd("CLUSTER", "INFO")
                except (OSError, RuntimeError):
                    return False
                if "cluster_state:ok" not in info:
                    return False
            return True
        wait_for(ok, timeout=timeout, interval=0.05, what="cluster_state:ok on every node")

    def by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def owner(self, slot):
        """The node serving slot, as its primaries see it (CLUSTER SLOTS)."""
        for lo, hi, primary, *_ in self.nodes[0].cmd("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return self.by_port(int(primary[1]))
        raise AssertionError("slot %d is not served" % slot)

    def current_primaries(self):
        return [n for n in self.nodes if n.cmd("ROLE")[0] == "master"]

    def replica_of(self, primary):
        pid = self.node_id(primary)
        for n in self.nodes:
            role = n.cmd("ROLE")
            if role[0] == "slave" and int(role[2]) == primary.port:
                return n
        raise AssertionError("no replica of %d (%s)" % (primary.port, pid))

    def migrate_slot(self, slot, src, dst, batch=100):
        """Moves slot from src to dst the way redis-cli --cluster reshard does:
        SETSLOT IMPORTING on dst, MIGRATING on src, MIGRATE its keys in
        batches, then SETSLOT NODE on both and on every other primary.
        Returns the number of keys moved."""
        sid, did = self.node_id(src), self.node_id(dst)
        dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
        src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", did)
        moved = 0
        while True:
            keys = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            try:
                src.cmd("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
            except RuntimeError as e:
                raise AssertionError("MIGRATE of slot %d: %s; keys on the target: %r" % (
                    slot, e, dst.cmd("CLUSTER", "GETKEYSINSLOT", slot, 100)))
            moved += len(keys)
        for n in [dst, src] + [p for p in self.current_primaries() if p not in (src, dst)]:
            n.cmd("CLUSTER", "SETSLOT", slot, "NODE", did)
        return moved

    def failover(self, primary, timeout=30):
        """CLUSTER FAILOVER on primary's replica; waits until it serves the
        slots and the cluster is ok. Returns the new primary."""
        rep = self.replica_of(primary)
        rep.cmd("CLUSTER", "FAILOVER")
        wait_for(lambda: rep.cmd("ROLE")[0] == "master", timeout=timeout, interval=0.05,
                 what="replica %d promoted" % rep.port)
        self.wait_ok(timeout)
        return rep

    def stop(self):
        for n in self.nodes:
            n.stop()
