"""test_containers.py - jobmill as containers, from the images that
scripts/images builds (and the python-worker example built FROM the worker
image): Redis, the api, the janitor and the workers each in its own podman
container, all with --network=host on distinct 127.0.0.1 ports (no container
network, no traffic to any other address), as user 10001 with a read-only
root file system, no tmpfs and every capability dropped.

Checks: each container runs as non-root, cannot write its root file system,
and passes `podman healthcheck run`; 500 jobs submitted through the api all
succeed, spread over two workers; the python worker runs a job (and a bad
payload fails without a retry); a worker container killed (`podman kill`)
while it holds a long job loses it to the other worker within lease +
janitor tick; a worker container stopped (`podman stop`) mid-job exits 0 and
releases the job with its attempt given back. Every wait is a condition
polled until a deadline.

Run by tests/containers/run, which builds the images first. Environment:
  JOBMILL_IMAGE_TAG  tag of the images under test (default dev)
  CONTAINERS_CONF    podman settings (the runner sets scripts/lib/containers.conf)
"""
import atexit
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
from harness import RedisClient, free_port, http, wait_for  # noqa: E402

TAG = os.environ.get("JOBMILL_IMAGE_TAG", "dev")
IMAGES = {s: "localhost/jobmill-%s:%s" % (s, TAG) for s in ("api", "worker", "janitor")}
REDIS_IMAGE = "localhost/jobmill-test-redis:dev"
PYTHON_IMAGE = "localhost/jobmill-python-worker:" + TAG
UID = 10001
LEASE_MS, HEARTBEAT_MS, TICK_MS = 1000, 200, 200
RUN = "jmct-%d" % os.getpid()  # container name prefix of this run
LABEL = "jobmill.test=containers"


def podman(*args, check=True, timeout=120):
    """Runs podman with args; returns the CompletedProcess (text). Raises
    AssertionError on a non-zero exit when check."""
    p = subprocess.run(["podman"] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("podman %s exited %d: %s"
                             % (" ".join(map(str, args[:3])), p.returncode, p.stderr[-3000:]))
    return p


def build(ref, context, *build_args):
    """Builds an image from context/Dockerfile (layer cache on, no pull)."""
    args = ["build", "--format", "docker", "--pull=never", "--network=host", "--layers",
            "-q", "-t", ref]
    for a in build_args:
        args += ["--build-arg", a]
    podman(*(args + [context]), timeout=1200)


class Container:
    """One podman container of this run: --network=host, read-only, non-root."""

    def __init__(self, short, image, env=None, args=()):
        self.short = short
        self.name = "%s-%s" % (RUN, short)
        self.image = image
        self.env = dict(env or {})
        self.args = list(args)

    def start(self):
        cmd = ["run", "-d", "--name", self.name, "--label", LABEL, "--network=host",
               "--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL",
               "--security-opt=no-new-privileges",
               # No systemd here to run health checks on a timer: the test
               # runs them with `podman healthcheck run`.
               "--health-interval=disable"]
        for k, v in sorted(self.env.items()):
            cmd += ["-e", "%s=%s" % (k, v)]
        podman(*(cmd + [self.image] + self.args))
        return self

    def inspect(self):
        return json.loads(podman("inspect", self.name).stdout)[0]

    def running(self):
        return self.inspect()["State"]["Running"]

    def exit_code(self):
        return self.inspect()["State"]["ExitCode"]

    def healthy(self):
        return podman("healthcheck", "run", self.name, check=False, timeout=30).returncode == 0

    def logs(self):
        p = podman("logs", self.name, check=False)
        return p.stdout + p.stderr

    def remove(self):
        podman("rm", "-f", "-t", "0", self.name, check=False)


def remove_stale_containers():
    """Removes the containers of earlier runs whose test process is gone
    (an interrupted run leaves them behind); never another live run's."""
    p = podman("ps", "-a", "--filter", "label=" + LABEL, "--format", "{{.Names}}", check=False)
    for name in p.stdout.split():
        parts = name.split("-")
        if len(parts) > 2 and parts[0] == "jmct" and parts[1].isdigit() \
                and not os.path.exists("/proc/" + parts[1]):
            podman("rm", "-f", "-t", "0", name, check=False)


class ContainerTest(unittest.TestCase):
    containers = []

    # ---- containers ----

    @classmethod
    def start(cls, short, image, env=None, args=(), health_timeout=30):
        """Starts a container, waits until its health check passes, and checks
        that it runs as UID with a read-only root file system."""
        c = Container(short, image, env, args)
        cls.containers.append(c)
        c.start()
        wait_for(c.healthy, timeout=health_timeout, interval=0.1,
                 what="podman healthcheck run %s" % c.name)
        cls.check_hardened(c)
        return c

    @classmethod
    def check_hardened(cls, c):
        info = c.inspect()
        assert info["HostConfig"]["ReadonlyRootfs"] is True, c.name
        # The container's main process, seen from the host: every uid is UID.
        with open("/proc/%d/status" % info["State"]["Pid"]) as f:
            uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
        assert uids == [str(UID)] * 4, "%s runs with uids %s" % (c.name, uids)
        # Nothing is writable: not even /tmp, which any uid could write to.
        p = podman("exec", c.name, "/bin/sh", "-c", ": > /tmp/jobmill-write-test", check=False)
        assert p.returncode != 0 and "Read-only file system" in p.stderr, \
            "%s: writing /tmp gave %d %r" % (c.name, p.returncode, p.stderr)

    @classmethod
    def worker(cls, short, queue, concurrency=4, grace_ms=25000, image=None, env=None):
        """Starts a worker container serving queue; waits until it is ready."""
        port = free_port()
        e = {"REDIS_URL": cls.redis_url, "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port,
             "JOBMILL_WORKER_ID": short, "JOBMILL_CONCURRENCY": str(concurrency),
             "JOBMILL_LEASE_MS": str(LEASE_MS), "JOBMILL_HEARTBEAT_MS": str(HEARTBEAT_MS),
             "JOBMILL_SHUTDOWN_GRACE_MS": str(grace_ms)}
        if queue is not None:
            e["JOBMILL_QUEUES"] = queue
        e.update(env or {})
        c = cls.start(short, image or IMAGES["worker"], e)
        c.id = short
        c.base = "http://127.0.0.1:%d" % port
        wait_for(lambda: http("GET", c.base + "/readyz", timeout=2, raw=True)[0] == 200,
                 timeout=30, what="%s /readyz" % c.name)
        return c

    @classmethod
    def setUpClass(cls):
        remove_stale_containers()
        atexit.register(cls.tearDownClass)  # also when interrupted
        t0 = time.monotonic()
        build(REDIS_IMAGE, os.path.join(HERE, "redis"))
        build(PYTHON_IMAGE, os.path.join(ROOT, "examples", "python-worker"),
              "WORKER_IMAGE=" + IMAGES["worker"])
        print("\ntest images built in %.1f s" % (time.monotonic() - t0), file=sys.stderr)
        try:
            port = free_port()
            cls.redis_url = "redis://127.0.0.1:%d/0" % port
            cls.redis = cls.start("redis", REDIS_IMAGE, {"REDIS_PORT": str(port)},
                                  ["--port", str(port), "--bind", "127.0.0.1"])
            port = free_port()
            cls.api_url = "http://127.0.0.1:%d" % port
            cls.api = cls.start("api", IMAGES["api"],
                                {"REDIS_URL": cls.redis_url, "JOBMILL_LISTEN": "127.0.0.1:%d" % port,
                                 "JOBMILL_API_DRAIN_DELAY_MS": "0", "JOBMILL_API_THREADS": "8"})
            wait_for(lambda: http("GET", cls.api_url + "/readyz", timeout=2, raw=True)[0] == 200,
                     timeout=30, what="api /readyz")
            port = free_port()
            cls.janitor = cls.start("janitor", IMAGES["janitor"],
                                    {"REDIS_URL": cls.redis_url,
                                     "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port,
                                     "JOBMILL_JANITOR_INTERVAL_MS": str(TICK_MS)})
        except BaseException:
            for c in cls.containers:
                print("\n--- %s ---\n%s" % (c.name, c.logs()[-3000:]), file=sys.stderr)
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            c.remove()
        cls.containers = []

    def tearDown(self):
        failed = any(t is self for t, _ in self._outcome.result.errors + self._outcome.result.failures) \
            if hasattr(self._outcome, "result") else False
        if failed:
            for c in self.containers:
                print("\n--- %s ---\n%s" % (c.name, c.logs()[-3000:]), file=sys.stderr)

    # ---- the api ----

    def submit(self, job):
        status, _, body = http("POST", self.api_url + "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        return body["id"]

    def get(self, jid, wait_s=None):
        url = self.api_url + "/v1/jobs/" + jid + ("?wait=%d" % wait_s if wait_s else "")
        status, _, body = http("GET", url, timeout=(wait_s or 0) + 10)
        self.assertEqual(status, 200, body)
        return body

    def queue(self, name):
        status, _, body = http("GET", self.api_url + "/v1/queues")
        self.assertEqual(status, 200, body)
        return next((q for q in body["queues"] if q["name"] == name), {})

    # ---- tests ----

    def test_1_base_containers_are_hardened_and_healthy(self):
        # start() checked each at start; they still pass now.
        for c in (self.redis, self.api, self.janitor):
            self.assertTrue(c.running(), c.name)
            self.assertTrue(c.healthy(), c.name)
        r = RedisClient(int(self.redis_url.rsplit(":", 1)[1].split("/")[0]))
        try:
            self.assertEqual(r("PING"), "PONG")
            self.assertEqual(r("CONFIG", "GET", "maxmemory-policy")[1], "noeviction")
        finally:
            r.close()

    def test_2_500_jobs_through_the_api_all_succeed(self):
        a = self.worker("bulk-a", "bulk", concurrency=8)
        b = self.worker("bulk-b", "bulk", concurrency=8)
        ids = []
        for k in range(5):  # 250 in batches of 50 ...
            jobs = [{"queue": "bulk", "type": "echo", "payload": {"n": k * 50 + i}}
                    for i in range(50)]
            status, _, body = http("POST", self.api_url + "/v1/jobs/batch", {"jobs": jobs})
            self.assertEqual(status, 201, body)
            ids += [j["id"] for j in body["jobs"]]
        for n in range(250, 500):  # ... and 250 one by one
            ids.append(self.submit({"queue": "bulk", "type": "echo", "payload": {"n": n}}))
        self.assertEqual(len(set(ids)), 500)
        wait_for(lambda: self.queue("bulk").get("succeeded") == 500, timeout=120, interval=0.2,
                 what="500 jobs succeeded (queue: %s)" % self.queue("bulk"))
        q = self.queue("bulk")
        for state in ("queued", "scheduled", "running", "failed", "canceled", "expired"):
            self.assertEqual(q[state], 0, q)
        status, _, body = http("GET", self.api_url + "/v1/queues/bulk/jobs?state=succeeded&limit=1000")
        self.assertEqual(status, 200, body)
        self.assertIsNone(body["next_cursor"])
        jobs = {j["id"]: j for j in body["jobs"]}
        self.assertEqual(set(jobs), set(ids))
        for j in jobs.values():
            self.assertEqual((j["status"], j["attempts"]), ("succeeded", 1), j)
            self.assertEqual(j["result"], j["payload"], j)
        by = {w: sum(1 for j in jobs.values() if j["worker"] == w) for w in (a.id, b.id)}
        self.assertEqual(sum(by.values()), 500, by)
        self.assertTrue(all(by.values()), "both workers ran jobs: %s" % by)
        for c in (a, b):
            self.assertTrue(c.healthy(), c.name)

    def test_3_python_worker_example_runs_a_job(self):
        py = self.worker("python", None, image=PYTHON_IMAGE)
        jid = self.submit({"queue": "python", "type": "wordcount",
                           "payload": {"text": "the cat and the hat\nthe end", "top": 2}})
        j = self.get(jid, wait_s=30)
        self.assertEqual((j["status"], j["worker"], j["attempts"]), ("succeeded", py.id, 1), j)
        self.assertEqual(j["result"], {"words": 7, "lines": 2, "top": [["the", 3], ["and", 1]],
                                       "attempt": 1})
        # Exit 65 is in the example's permanent_exit_codes: no retry.
        bad = self.get(self.submit({"queue": "python", "type": "wordcount", "payload": {},
                                    "max_attempts": 3}), wait_s=30)
        self.assertEqual((bad["status"], bad["attempts"]), ("failed", 1), bad)
        self.assertIn("bad payload", bad["error"])
        self.assertTrue(py.healthy())

    def test_4_killed_worker_loses_its_job_within_lease_and_tick(self):
        a = self.worker("kill-a", "kill", concurrency=1)
        b = self.worker("kill-b", "kill", concurrency=1)
        jid = self.submit({"queue": "kill", "type": "sleep", "payload": {"ms": 3000},
                           "max_attempts": 3})
        j = wait_for(lambda: (lambda j: j if j["status"] == "running" else None)(self.get(jid)),
                     timeout=15, what="job running")
        holder, other = (a, b) if j["worker"] == a.id else (b, a)
        self.assertEqual(j["worker"], holder.id)
        t0 = time.monotonic()
        podman("kill", holder.name)
        j = wait_for(lambda: (lambda j: j if j["worker"] == other.id else None)(self.get(jid)),
                     timeout=15, interval=0.02, what="job claimed by %s" % other.id)
        moved = time.monotonic() - t0
        # The lease ends at most LEASE_MS after the kill (a heartbeat just
        # before it), the janitor's next tick requeues it and the idle worker
        # claims at once; the slack covers `podman kill` and polling.
        self.assertLess(moved, (LEASE_MS + TICK_MS) / 1000.0 + 1.0,
                        "job moved %.2f s after the kill" % moved)
        self.assertEqual(j["attempts"], 2, j)
        j = self.get(jid, wait_s=30)
        self.assertEqual((j["status"], j["worker"], j["attempts"]), ("succeeded", other.id, 2), j)
        wait_for(lambda: not holder.running(), timeout=10, what="%s gone" % holder.name)
        self.assertEqual(holder.exit_code(), 137)
        self.assertTrue(other.healthy())
        print("\njob moved to the other worker %.2f s after podman kill" % moved, file=sys.stderr)

    def test_5_stopped_worker_exits_0_and_gives_the_attempt_back(self):
        a = self.worker("stop-a", "stop", concurrency=1, grace_ms=500)
        jid = self.submit({"queue": "stop", "type": "sleep", "payload": {"ms": 4000},
                           "max_attempts": 3})
        wait_for(lambda: self.get(jid)["status"] == "running", timeout=15, what="job running")
        t0 = time.monotonic()
        podman("stop", "-t", "30", a.name, timeout=60)  # SIGTERM, then waits for the exit
        stopped = time.monotonic() - t0
        self.assertFalse(a.running())
        self.assertEqual(a.exit_code(), 0, a.logs()[-3000:])
        self.assertLess(stopped, 10, "drain took %.1f s" % stopped)
        self.assertIn("shutdown grace over", a.logs())
        j = self.get(jid)
        self.assertEqual((j["status"], j["attempts"]), ("queued", 0), j)
        self.assertIsNone(j["result"], j)
        b = self.worker("stop-b", "stop", concurrency=1)
        j = self.get(jid, wait_s=30)
        self.assertEqual((j["status"], j["worker"], j["attempts"]), ("succeeded", b.id, 1), j)
        self.assertTrue(b.healthy())


if __name__ == "__main__":
    unittest.main()
