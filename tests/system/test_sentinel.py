"""test_sentinel.py - jobmill on Redis Sentinel with real servers on loopback
ports: a primary, a replica and three sentinels (redis-server --sentinel).
Under a steady stream of submits (api.submit_replicas 1, idempotency keys),
the primary is SIGKILLed: the sentinels promote the replica, and the api,
the worker and the janitor find the new primary by themselves (no restart);
the old primary comes back as the new one's replica.
Every submit the api acknowledged is on the new primary and ends succeeded
exactly once.
A second case runs the sentinels with a password (REDIS_SENTINEL_PASSWORD)
and asks for a graceful failover (SENTINEL FAILOVER): the services follow
Sentinel's +switch-master event (their watcher logs the switch) and keep
running jobs.
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import (REDIS_SERVER, RedisClient, RedisServer, Service, die_with_parent, free_port,
                     http, redis_ping, start_api, wait_for)

MASTER = "jmmaster"


class Sentinel:
    """One redis-server --sentinel on a free loopback port watching port."""

    def __init__(self, primary_port, password=None):
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="jm-sentinel-")
        self.port = free_port()
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile sentinel.log\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 2000\n"
                    "sentinel failover-timeout %s 10000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, MASTER, primary_port, MASTER, MASTER, MASTER))
            if password:
                # the sentinels' own password, which they also use with each other
                f.write("requirepass %s\nsentinel sentinel-pass %s\n" % (password, password))
        self.proc = subprocess.Popen([REDIS_SERVER, conf, "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        wait_for(self.ping, timeout=10, what="sentinel on port %d" % self.port)

    def client(self, timeout=1):
        c = RedisClient(self.port, timeout=timeout)
        if self.password:
            c("AUTH", self.password)
        return c

    def call(self, *args, timeout=1):
        c = self.client(timeout=timeout)
        try:
            return c(*args)
        finally:
            c.close()

    def ping(self):
        if not self.password:
            return redis_ping(self.port)
        try:
            c = self.client(timeout=0.5)
        except (OSError, RuntimeError):
            return False
        try:
            return c("PING") == "PONG"
        finally:
            c.close()

    def primary_port(self):
        c = self.client()
        try:
            return int(c("SENTINEL", "get-master-addr-by-name", MASTER)[1])
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelCase(unittest.TestCase):
    """A primary and a replica with AOF, three sentinels (PASSWORD: theirs)."""
    PASSWORD = None

    def setUp(self):
        self.cleanup = []
        # both with AOF, as docs/sentinel.md asks: a server restarted or
        # promoted before it synchronised still has what it had
        self.primary = RedisServer(appendonly=True)
        self.cleanup.append(self.primary.stop)
        self.replica = RedisServer(extra=["--replicaof", "127.0.0.1", str(self.primary.port)],
                                   appendonly=True)
        self.cleanup.append(self.replica.stop)
        wait_for(lambda: "master_link_status:up" in self.replica.cmd("INFO", "replication"),
                 timeout=20, what="the replica in sync")
        self.sentinels = [Sentinel(self.primary.port, self.PASSWORD) for _ in range(3)]
        for s in self.sentinels:
            self.cleanup.append(s.stop)
        wait_for(lambda: all("num-other-sentinels" in "".join(
            str(x) for x in s.call("SENTINEL", "master", MASTER)) for s in self.sentinels),
            timeout=20, what="sentinels up")
        self.env = {"REDIS_SENTINELS": ",".join("127.0.0.1:%d" % s.port for s in self.sentinels),
                    "REDIS_SENTINEL_MASTER": MASTER,
                    "JOBMILL_REDIS_TIMEOUT_MS": "1000"}
        if self.PASSWORD:
            self.env["REDIS_SENTINEL_PASSWORD"] = self.PASSWORD

    def tearDown(self):
        for f in reversed(self.cleanup):
            f()

    def service(self, name, env):
        e = dict(self.env)
        e.update(env)
        # the URL's host and port are unused with Sentinel: point them nowhere
        s = Service(name, "redis://127.0.0.1:1/0", env=e).start()
        self.cleanup.append(s.stop)
        return s


class SentinelTest(SentinelCase):

    def test_failover_keeps_every_acknowledged_job(self):
        e = dict(self.env)
        e["JOBMILL_SUBMIT_REPLICAS"] = "1"
        api, base = start_api("redis://127.0.0.1:1/0", env=e)
        self.cleanup.append(api.stop)
        worker = self.service("worker", {"JOBMILL_LEASE_MS": "2000", "JOBMILL_HEARTBEAT_MS": "300",
                                         "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % free_port()})
        janitor = self.service("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "200",
                                           "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % free_port()})
        acked, lock, stop = {}, threading.Lock(), threading.Event()

        def submitter():
            i = 0
            while not stop.is_set():
                key = "sent-%d" % i
                body = {"type": "sleep", "payload": {"ms": 20}, "idempotency_key": key}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        st, _, job = http("POST", base + "/v1/jobs", body, timeout=5)
                    except OSError:
                        st = None
                    if st in (200, 201):
                        with lock:
                            acked[key] = job["id"]
                        break
                    time.sleep(0.05)  # a 503 during the failover: retry the same key
                i += 1
                time.sleep(0.01)
        t = threading.Thread(target=submitter, daemon=True)
        t.start()
        wait_for(lambda: len(acked) >= 30, timeout=30, what="submits before the failover")
        old = self.primary.port
        self.primary.kill()
        t0 = time.monotonic()
        wait_for(lambda: self.sentinels[0].primary_port() == self.replica.port, timeout=60,
                 interval=0.2, what="the sentinels promoting the replica")
        failover_s = time.monotonic() - t0
        # With submit_replicas 1 the new primary acknowledges once it has a
        # replica again (until then submits answer 503 and the client retries
        # its key): the old primary comes back as the new one's replica. Not
        # as an empty primary: a sentinel that has not seen the failover yet
        # could make the new primary replicate from it and wipe it (Redis's
        # warning about primaries without persistence, docs/sentinel.md).
        self.primary.extra = ["--replicaof", "127.0.0.1", str(self.replica.port)]
        self.primary.start()
        wait_for(lambda: "master_link_status:up" in self.primary.cmd("INFO", "replication"),
                 timeout=30, what="the old primary in sync as a replica")
        n_at_failover = len(acked)
        wait_for(lambda: len(acked) >= n_at_failover + 30, timeout=60,
                 what="submits acknowledged by the new primary")
        stop.set()
        t.join(70)
        with lock:
            ids = dict(acked)
        new = self.replica

        pending = {}

        def all_done():
            pending.clear()
            for key, job_id in ids.items():
                st, _, job = http("GET", base + "/v1/jobs/" + job_id)
                if st != 200 or job["status"] != "succeeded":
                    pending[key] = (st, job)
            return not pending
        try:
            wait_for(all_done, timeout=90, interval=0.5, what="every acknowledged job succeeded")
        except AssertionError:
            for name, svc in (("worker", worker), ("janitor", janitor), ("api", api)):
                print("\n--- %s log ---\n%s" % (name, svc.logs()[-3000:]))
            for name, srv in (("new primary", new), ("old primary", self.primary)):
                try:
                    keys = srv.cmd("KEYS", "*:q:default:counts")
                    print("\n--- %s: dbsize %s counts %s\n%s" % (
                        name, srv.cmd("DBSIZE"), keys and srv.cmd("HGETALL", keys[0]),
                        srv.cmd("INFO", "replication")))
                except OSError as e:
                    print("%s: %s" % (name, e))
            print("acknowledged before the failover: %d, in all: %d" % (n_at_failover, len(ids)))
            raise AssertionError("not succeeded: %r" % list(pending.items())[:5])
        for svc in (api, worker, janitor):
            self.assertTrue(svc.alive(), "%s restarted or died" % svc.name)
        keys = new.cmd("KEYS", "*:q:default:counts")
        counts = dict(zip(*[iter(new.cmd("HGETALL", keys[0]))] * 2))
        self.assertEqual(int(counts.get("succeeded", 0)), len(set(ids.values())), counts)
        print("\nfailover from port %d to %d seen by the sentinels in %.1f s; %d acknowledged "
              "jobs, all succeeded once" % (old, new.port, failover_s, len(ids)))


class SentinelSwitchTest(SentinelCase):
    PASSWORD = "s3ntinel-pw"

    def test_switch_master_is_followed_with_a_sentinel_password(self):
        api, base = start_api("redis://127.0.0.1:1/0", env=self.env)
        self.cleanup.append(api.stop)
        worker = self.service("worker", {"JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % free_port()})
        janitor = self.service("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "200",
                                           "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % free_port()})

        def run_one(i):
            st, _, job = http("POST", base + "/v1/jobs?wait=20",
                              {"type": "echo", "payload": i, "idempotency_key": "sw-%d" % i})
            return st in (200, 201) and job.get("status") == "succeeded"
        wait_for(lambda: run_one(0), timeout=30, what="a job through the sentinels' primary")
        def failover():
            # a sentinel learns of the replica from the primary's INFO (every
            # 10 s): until then it answers NOGOODSLAVE
            try:
                return self.sentinels[0].call("SENTINEL", "FAILOVER", MASTER, timeout=5) == "OK"
            except RuntimeError as e:
                if "NOGOODSLAVE" in str(e):
                    return False
                raise
        wait_for(failover, timeout=30, interval=0.5, what="a sentinel that knows the replica")
        wait_for(lambda: self.sentinels[0].primary_port() == self.replica.port, timeout=60,
                 what="the sentinels to switch to the replica")
        services = (api, worker, janitor)
        wait_for(lambda: any("sentinel switched the primary" in s.logs() for s in services),
                 timeout=30, what="a service following +switch-master")
        wait_for(lambda: run_one(1), timeout=60, interval=0.5,
                 what="a job through the new primary")
        for svc in services:
            self.assertTrue(svc.alive(), "%s restarted or died" % svc.name)
            self.assertNotIn(self.PASSWORD, svc.logs(), "%s logged the password" % svc.name)


if __name__ == "__main__":
    unittest.main()
