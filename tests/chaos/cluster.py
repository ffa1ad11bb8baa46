"""cluster.py - the chaos suite's processes: one redis-server (AOF,
appendfsync always), api replicas on fixed loopback ports, workers each behind
its own FaultProxy, janitors. Every process is started from the main thread
(PR_SET_PDEATHSIG fires when the *thread* that started a child exits) and in
its own session, so stop_all() can always take down everything it started.
"""
import json
import os
import signal
import subprocess
import time

import harness
from harness import RedisServer, Service, free_port, http, wait_for
from redis_proxy import FaultProxy  # tests/system: on sys.path, see run

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER = os.path.join(HERE, "handler.sh")
QUEUES = ("chaos-a", "chaos-b")


class Slot:
    """One service replica: the current process and its history. kind is
    api, worker or janitor; index its replica number."""

    def __init__(self, cluster, kind, index):
        self.cluster, self.kind, self.index = cluster, kind, index
        self.name = "%s%d" % (kind, index)
        self.svc = None
        self.incarnation = 0
        self.port = free_port()          # api: fixed across restarts
        self.proxy = None                # worker: its own cut-off proxy
        self.expect_exit = False         # the nemesis (or the end) is killing it
        self.stopped = False             # SIGSTOPped right now
        self.logs = []                   # every incarnation's log file
        self.worker_ids = []

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        c = self.cluster
        self.incarnation += 1
        self.expect_exit = False
        self.stopped = False
        env = dict(c.env)
        args = []
        redis_url = c.redis.url
        if self.kind == "api":
            env.update({"JOBMILL_LISTEN": "127.0.0.1:%d" % self.port,
                        "JOBMILL_API_DRAIN_DELAY_MS": "0", "JOBMILL_API_THREADS": "16"})
        else:
            self.metrics_port = free_port()
            args += ["--metrics-listen", "127.0.0.1:%d" % self.metrics_port]
        if self.kind == "worker":
            # worker0 serves every queue (its claimer decides the order); the
            # others one queue each, so their commits also fetch next jobs
            if self.index > 0:
                env["JOBMILL_QUEUES"] = QUEUES[(self.index - 1) % len(QUEUES)]
            wid = "c%s-%d" % (self.name, self.incarnation)
            self.worker_ids.append(wid)
            args += ["--config", c.config, "--worker-id", wid]
            redis_url = self.proxy.url
        self.svc = Service(self.kind, redis_url, args=args, env=env, logdir=c.logdir).start()
        self.logs.append(self.svc.log_path)
        return self

    def alive(self):
        return self.svc is not None and self.svc.alive()

    def pid(self):
        return self.svc.proc.pid

    def wait_up(self, timeout=30):
        url = self.url if self.kind == "api" else "http://127.0.0.1:%d" % self.metrics_port

        def up():
            if not self.alive():
                raise AssertionError("%s exited during start-up: %s"
                                     % (self.name, self.svc.logs()[-2000:]))
            return http("GET", url + "/healthz", timeout=1.0, raw=True)[0] == 200
        wait_for(up, timeout=timeout, interval=0.05, what="%s /healthz" % self.name)

    def sigkill(self):
        self.expect_exit = True
        if self.stopped:
            self.svc.signal(signal.SIGCONT)
        self.svc.signal(signal.SIGKILL)
        self.svc.proc.wait(10)
        self.svc.log.close()
        self.stopped = False

    def sigstop(self):
        self.svc.signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        if self.stopped:
            self.svc.signal(signal.SIGCONT)
            self.stopped = False


class Cluster:

    def __init__(self, workdir, n_api=2, n_workers=3, n_janitors=2, concurrency=4, lease_ms=1000,
                 heartbeat_ms=200, janitor_ms=200, redis_timeout_ms=1000, backoff_base_ms=200,
                 backoff_max_ms=1000):
        self.workdir = workdir
        self.logdir = os.path.join(workdir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.record = os.path.join(workdir, "record.txt")
        open(self.record, "w").close()
        self.lease_ms, self.redis_timeout_ms = lease_ms, redis_timeout_ms
        self.backoff_base_ms, self.backoff_max_ms = backoff_base_ms, backoff_max_ms
        self.config = os.path.join(workdir, "jobmill.yaml")
        with open(self.config, "w") as f:
            f.write("worker:\n  handlers:\n")
            for mode in ("fence", "long", "flaky"):
                argv = ["/bin/sh", HANDLER, self.record, mode]
                f.write("    %s:\n      exec: %s\n      timeout_s: 60\n" % (mode, json.dumps(argv)))
        ttl = "86400"
        self.env = {
            "JOBMILL_LOG_LEVEL": "info",
            "JOBMILL_LEASE_MS": str(lease_ms), "JOBMILL_HEARTBEAT_MS": str(heartbeat_ms),
            "JOBMILL_JANITOR_INTERVAL_MS": str(janitor_ms),
            "JOBMILL_JANITOR_RECONCILE_EVERY": "5",
            "JOBMILL_REDIS_TIMEOUT_MS": str(redis_timeout_ms),
            "JOBMILL_QUEUES": ",".join(QUEUES), "JOBMILL_CONCURRENCY": str(concurrency),
            "JOBMILL_SHUTDOWN_GRACE_MS": "3000",
            "JOBMILL_BACKOFF_BASE_MS": str(backoff_base_ms),
            "JOBMILL_BACKOFF_MAX_MS": str(backoff_max_ms),
            "JOBMILL_RESULT_TTL_S": ttl, "JOBMILL_FAILED_TTL_S": ttl,
        }
        self.redis = None
        self.redis_stopped = False
        self.slots = []
        self.n = {"api": n_api, "worker": n_workers, "janitor": n_janitors}

    # ---- start / stop ----

    def start(self):
        self.redis = RedisServer(appendonly=True)
        self.redis_log = os.path.join(self.redis.dir, "redis.log")
        for kind in ("api", "worker", "janitor"):
            for i in range(self.n[kind]):
                s = Slot(self, kind, i)
                if kind == "worker":
                    s.proxy = FaultProxy(self.redis.port)
                self.slots.append(s)
        for s in self.slots:
            s.start()
        for s in self.slots:
            s.wait_up()
        for s in self.api_slots():
            harness.wait_http(s.url + "/readyz", timeout=30)

    def api_slots(self):
        return [s for s in self.slots if s.kind == "api"]

    def of_kind(self, kind):
        return [s for s in self.slots if s.kind == kind]

    def redis_cmd(self, *args):
        return self.redis.cmd(*args)

    def kill_redis(self):
        self.redis_stopped = False
        self.redis.kill()

    def start_redis(self):
        self.redis.start()

    def stop_redis(self):
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        self.redis_stopped = True

    def cont_redis(self):
        if self.redis_stopped:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
            self.redis_stopped = False

    def heal(self):
        """Undoes every fault in force: Redis and services continued, proxies
        open, dead services restarted."""
        if self.redis.proc.poll() is not None:
            self.start_redis()
        self.cont_redis()
        for s in self.slots:
            if s.proxy is not None:
                s.proxy.heal()
            if s.alive():
                s.sigcont()
            else:
                s.start()
        for s in self.slots:
            s.wait_up()

    def stop_services(self, timeout=30):
        """SIGTERMs every service and waits; returns [(slot, exit code or None)]."""
        for s in self.slots:
            s.expect_exit = True
            if s.alive():
                s.sigcont()
                s.svc.signal(signal.SIGTERM)
        out = []
        deadline = time.monotonic() + timeout
        for s in self.slots:
            try:
                rc = s.svc.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                rc = None
            out.append((s, rc))
        return out

    def stop_all(self):
        """Best effort, never raises: every process of every session we
        started gets SIGCONT then SIGKILL; proxies closed; Redis killed."""
        for s in self.slots:
            try:
                s.expect_exit = True
                if s.svc is not None and s.svc.proc.poll() is None:
                    try:
                        os.killpg(s.svc.proc.pid, signal.SIGCONT)
                    except OSError:
                        pass
                s.svc.stop() if s.svc is not None else None
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
            if s.proxy is not None:
                try:
                    s.proxy.close()
                except Exception:  # noqa: BLE001
                    pass
        if self.redis is not None:
            try:
                if self.redis.proc is not None and self.redis.proc.poll() is None:
                    os.kill(self.redis.proc.pid, signal.SIGCONT)
                self.redis.kill()
            except Exception:  # noqa: BLE001
                pass

    def remove_redis_dir(self):
        if self.redis is not None:
            self.redis.stop()
