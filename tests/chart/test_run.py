"""test_run.py - the chart, run: what `helm template` renders, started with
`podman kube play` from the images scripts/images builds, on the host network
and 127.0.0.1 only (no container network, no other address).

Set-up: a throw-away redis-server on a free loopback port (the "external
Redis"), a real Prometheus scraping every service the way the chart's
ServiceMonitor would label it, and the chart rendered with hostNetwork: true
(one Deployment per replica, each listener on its own port), one api, two
workers and a janitor.

  test_0_configs_load      the config file the chart generates for every ci/
                           values file is accepted by the real binaries
  test_0_redis_conf        the in-chart Redis' redis.conf, read by a real
                           redis-server: AOF on, noeviction
  test_1_pods_run          every pod is ready, runs as 10001 with a read-only
                           root file system and no capabilities; the two
                           workers listen on distinct ports, register, and
                           Prometheus scrapes all four targets
  test_2_jobs_succeed      jobs submitted through the api pod's port succeed,
                           on both workers, an exec handler from the chart's
                           values included
  test_3_helm_test_hook    the chart's `helm test` pod, run with kube play,
                           submits an echo job and exits 0
  test_4_drain             a worker stopped mid-job the way the kubelet stops
                           it (SIGTERM, the kill after terminationGracePeriod-
                           Seconds) drains: exit 0 before the kill, its job
                           released with the attempt given back and finished
                           by the other worker (attempts 1); then
                           `podman kube down` removes it
  test_5_autoscaling_signal
                           Prometheus evaluates the exact query of the KEDA
                           trigger (= the HPA external metric's): with 5,000
                           jobs waiting the HPA formula gives maxReplicas,
                           once drained minReplicas

podman 4.3's `kube down` SIGKILLs at once (no grace: it stops pods with a
zero timeout), so test_4 first does what the kubelet does, `podman pod stop
-t <terminationGracePeriodSeconds>`, and then `podman kube down`.

Environment (tests/chart/run sets it): HELM, NODE_PATH (js-yaml),
CONTAINERS_CONF, JOBMILL_IMAGE_TAG (default dev). Every wait is a condition
polled until a deadline.
"""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CHART = os.path.join(ROOT, "charts", "jobmill")
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
from harness import RedisClient, die_with_parent, http, wait_for  # noqa: E402

HELM = os.environ.get("HELM", "helm")
TAG = os.environ.get("JOBMILL_IMAGE_TAG", "dev")
RELEASE = "jmchart"
NAMESPACE = "default"
KUBE_VERSION = "1.30.0"
CONCURRENCY = 2
SHUTDOWN_GRACE_MS = 2000


def run(args, check=True, timeout=120, **kw):
    p = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(map(str, args[:4])), p.returncode,
                                                       p.stdout[-3000:], p.stderr[-3000:]))
    return p


def podman(*args, **kw):
    return run(("podman",) + args, **kw)


def yaml_docs(text):
    """Parses multi-document YAML with js-yaml (no PyYAML on a fresh machine)."""
    p = subprocess.run(["node", "-e", "const y=require('js-yaml');let s='';process.stdin.on('data',d=>s+=d);"
                        "process.stdin.on('end',()=>process.stdout.write(JSON.stringify(y.loadAll(s).filter(Boolean))))"],
                       input=text, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       check=True)
    return json.loads(p.stdout)


def helm_template(values_file, *extra):
    p = run([HELM, "template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
             "-f", values_file] + list(extra), env=dict(os.environ, KUBECONFIG="/dev/null"))
    return p.stdout


def free_ports(n):
    """n consecutive free loopback ports (a random base, checked by binding)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "big") % 40000
        socks = []
        try:
            for port in range(base, base + n):
                socks.append(socket.socket())
                socks[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no %d consecutive free ports" % n)


def hpa_desired(value, target, current, lo, hi, tolerance=0.1):
    """Replicas the HPA (and KEDA, which drives one) asks for from an
    AverageValue metric: ratio = value / (target x current), unchanged within
    the tolerance, else ceil(ratio x current), within [lo, hi]."""
    ratio = value / float(target * max(current, 1))
    desired = current if abs(ratio - 1.0) <= tolerance else int(math.ceil(ratio * max(current, 1)))
    return max(lo, min(hi, desired))


class ChartRunTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jobmill-chart-run-")
        cls.procs = []
        cls.stopped = []  # workers stopped by a test (class state: one instance per test)
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        # One block of free ports, so that no two listeners can pick the same.
        base = free_ports(6)
        cls.redis_port, cls.api_port, cls.janitor_port, cls.prom_port = base, base + 1, base + 2, base + 3
        cls.worker_port = base + 4   # worker-i listens on worker_port + i (chart: metricsPort + i)
        cls.api = "http://127.0.0.1:%d" % cls.api_port

        # The external Redis (defaults: maxmemory-policy noeviction).
        cls.spawn("redis", ["redis-server", "--port", cls.redis_port, "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", cls.tmp])

        values = {
            "hostNetwork": True,
            "listenHost": "127.0.0.1",
            "image": {"registry": "localhost", "tag": TAG},
            "redis": {"url": "redis://127.0.0.1:%d/0" % cls.redis_port},
            "api": {"replicaCount": 1, "port": cls.api_port, "drainDelayMs": 0},
            "worker": {
                "replicaCount": 2, "metricsPort": cls.worker_port, "concurrency": CONCURRENCY,
                "shutdownGraceMs": SHUTDOWN_GRACE_MS,
                "handlers": {"shout": {"exec": ["/bin/sh", "-c", "tr a-z A-Z"], "timeout_s": 10}},
            },
            "janitor": {"replicaCount": 1, "metricsPort": cls.janitor_port},
            "config": {"worker": {"lease_ms": 3000, "heartbeat_ms": 500}, "janitor": {"interval_ms": 250}},
            "tests": {"apiAddress": "127.0.0.1:%d" % cls.api_port, "timeoutSeconds": 30},
        }
        cls.values_file = os.path.join(cls.tmp, "values.yaml")
        with open(cls.values_file, "w") as f:
            json.dump(values, f, indent=2)  # JSON is YAML

        cls.rendered = os.path.join(cls.tmp, "rendered.yaml")
        text = helm_template(cls.values_file, "--skip-tests")
        with open(cls.rendered, "w") as f:
            f.write(text)
        cls.docs = yaml_docs(text)
        cls.hook = os.path.join(cls.tmp, "helm-test.yaml")
        with open(cls.hook, "w") as f:
            f.write(helm_template(cls.values_file, "--show-only", "templates/tests/api-test.yaml"))

        # One file per worker Deployment (with the ConfigMap its volume names):
        # what `kube down` removes and `kube play` starts again.
        cls.workers = []
        for d in cls.docs:
            if d["kind"] == "Deployment" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker":
                cm = next(v["configMap"]["name"] for v in d["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
                config = [x for x in cls.docs if x["kind"] == "ConfigMap" and x["metadata"]["name"] == cm]
                path = os.path.join(cls.tmp, d["metadata"]["name"] + ".yaml")
                with open(path, "w") as f:
                    f.write("\n---\n".join(json.dumps(x) for x in config + [d]) + "\n")
                env = {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
                cls.workers.append({"deployment": d["metadata"]["name"], "pod": d["metadata"]["name"] + "-pod-0",
                                    "file": path, "port": int(env["JOBMILL_METRICS_LISTEN"].rsplit(":", 1)[1]),
                                    "grace": d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]})
        assert [w["port"] for w in cls.workers] == [cls.worker_port, cls.worker_port + 1], cls.workers

        # Prometheus, labelling targets as the chart's ServiceMonitor would
        # (job = Service name, namespace), so the chart's default matchers apply.
        fullname = [d for d in cls.docs if d["kind"] == "Service"][0]["metadata"]["name"].rsplit("-", 1)[0]
        cls.fullname = fullname
        targets = {"%s-api" % fullname: [cls.api_port],
                   "%s-worker" % fullname: [w["port"] for w in cls.workers],
                   "%s-janitor" % fullname: [cls.janitor_port]}
        prom_yml = os.path.join(cls.tmp, "prometheus.yml")
        with open(prom_yml, "w") as f:
            json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                       "scrape_configs": [{"job_name": job, "static_configs": [{
                           "targets": ["127.0.0.1:%d" % p for p in ports],
                           "labels": {"namespace": NAMESPACE}}]} for job, ports in sorted(targets.items())]}, f)
        cls.prom = "http://127.0.0.1:%d" % cls.prom_port
        cls.spawn("prometheus", ["prometheus", "--config.file=" + prom_yml,
                                 "--storage.tsdb.path=" + os.path.join(cls.tmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % cls.prom_port])
        cls.targets = targets

        # Every pod and volume kube play makes here (removed before, in case an
        # interrupted run left them, and after): a pod per Deployment and the
        # test Pod, a named volume per ConfigMap (kube down keeps those).
        cls.pod_names = ["%s-pod-0" % d["metadata"]["name"] for d in cls.docs if d["kind"] == "Deployment"]
        cls.pod_names.append("%s-test" % fullname)
        cls.volume_names = [d["metadata"]["name"] for d in cls.docs if d["kind"] == "ConfigMap"]
        cls.clean_up_podman()
        t0 = time.monotonic()
        podman("kube", "play", cls.rendered)
        wait_for(lambda: all(cls.ready(p) for p in cls.ports()), timeout=60, interval=0.1,
                 what="every pod's /readyz")
        print("chart: kube play to all ready in %.1f s" % (time.monotonic() - t0), file=sys.stderr)

    @classmethod
    def spawn(cls, name, args):
        log = open(os.path.join(cls.tmp, name + ".log"), "w")
        p = subprocess.Popen([str(a) for a in args], stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=die_with_parent)
        cls.procs.append((p, log))
        return p

    @classmethod
    def clean_up_podman(cls):
        # Not `kube down`: it gives up at the first pod that is gone.
        podman("pod", "rm", "--force", "--ignore", "-t", "0", *cls.pod_names, check=False)
        podman("volume", "rm", "--force", *cls.volume_names, check=False)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "pod_names", None):
            cls.clean_up_podman()
        for p, log in cls.procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        if os.environ.get("JOBMILL_CHART_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----

    @classmethod
    def ports(cls):
        return [cls.api_port, cls.janitor_port] + [w["port"] for w in cls.workers]

    @staticmethod
    def ready(port):
        try:
            return http("GET", "http://127.0.0.1:%d/readyz" % port, timeout=2, raw=True)[0] == 200
        except OSError:
            return False

    def submit(self, body):
        status, _, job = http("POST", self.api + "/v1/jobs", body)
        self.assertEqual(status, 201, job)
        return job

    def job(self, job_id, wait=0):
        status, _, job = http("GET", self.api + "/v1/jobs/%s%s" % (job_id, "?wait=%d" % wait if wait else ""),
                              timeout=wait + 10)
        self.assertEqual(status, 200, job)
        return job

    def counts(self, queue="default"):
        status, _, body = http("GET", self.api + "/v1/queues")
        self.assertEqual(status, 200, body)
        return next((q for q in body["queues"] if q["name"] == queue), {})

    def promql(self, query):
        status, _, body = http("GET", self.prom + "/api/v1/query?" + urllib.parse.urlencode({"query": query}))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def stop_like_kubelet(self, worker):
        """SIGTERM, then SIGKILL after the Deployment's grace period (what the
        kubelet does; podman 4.3's kube down would SIGKILL at once), then
        `podman kube down` removes the pod. Returns (seconds, exit code, log)."""
        t0 = time.monotonic()
        podman("pod", "stop", "-t", worker["grace"], worker["pod"], timeout=worker["grace"] + 30)
        took = time.monotonic() - t0
        container = worker["pod"] + "-worker"
        code = json.loads(podman("inspect", container).stdout)[0]["State"]["ExitCode"]
        logs = podman("logs", container, check=False)
        podman("kube", "down", worker["file"])
        self.assertFalse(podman("pod", "exists", worker["pod"], check=False).returncode == 0)
        return took, code, logs.stdout + logs.stderr

    # ---- tests ----

    def test_0_configs_load(self):
        """The config file the chart renders for every ci/ values file loads in
        the real worker, api and janitor (exit 1 at the busy listen address
        that follows the config, never 2 = config refused). One container per
        image runs its binary once per file."""
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = "127.0.0.1:%d" % held.getsockname()[1]
        # Redis: a port bound but not listening refuses at once (a silent one
        # would hold the api in its connect timeout).
        refusing = socket.socket()
        refusing.bind(("127.0.0.1", 0))
        redis_url = "redis://127.0.0.1:%d/0" % refusing.getsockname()[1]
        try:
            ci = sorted(f for f in os.listdir(os.path.join(CHART, "ci")) if f.endswith(".yaml"))
            self.assertGreaterEqual(len(ci), 5)
            cfg_dir = os.path.join(self.tmp, "configs")
            os.makedirs(cfg_dir)
            for name in ci:
                text = helm_template(os.path.join(CHART, "ci", name), "--show-only", "templates/configmap.yaml")
                with open(os.path.join(cfg_dir, name), "w") as f:
                    f.write(yaml_docs(text)[0]["data"]["jobmill.yaml"])
            script = ('for f in /cfg/*.yaml; do echo "== $f"; "$0" --config "$f" "$1" "$2" --redis-url "$3" 2>&1; '
                      'echo "== rc=$?"; done')
            for service, flag in (("worker", "--metrics-listen"), ("api", "--listen"),
                                  ("janitor", "--metrics-listen")):
                p = podman("run", "--rm", "--network=host", "--read-only", "--cap-drop=ALL",
                           "-v", cfg_dir + ":/cfg:ro", "--entrypoint", "/bin/sh",
                           "localhost/jobmill-%s:%s" % (service, TAG), "-c", script,
                           "/usr/local/bin/jobmill-" + service, flag, busy, redis_url, timeout=120)
                runs = p.stdout.split("== /cfg/")[1:]
                self.assertEqual(len(runs), len(ci), p.stdout[-2000:])
                for run_out in runs:
                    name = run_out.split("\n", 1)[0]
                    self.assertIn("== rc=1", run_out, "%s refused the config of ci/%s:\n%s" % (service, name, run_out))
                    self.assertIn("cannot listen on " + busy, run_out, run_out)
        finally:
            held.close()
            refusing.close()

    def test_0_redis_conf(self):
        """The in-chart Redis' redis.conf (podman 4.3 runs no StatefulSet, so
        the real redis-server reads it here, on a loopback port): AOF on,
        noeviction, maxmemory and appendfsync from the values."""
        text = helm_template(os.path.join(CHART, "ci", "in-chart-redis-values.yaml"),
                             "--show-only", "templates/redis-configmap.yaml")
        data = os.path.join(self.tmp, "redis-data")
        os.makedirs(data)
        conf_text = yaml_docs(text)[0]["data"]["redis.conf"]
        # Redis changes into `dir` while it reads the file: the PVC's /data here.
        self.assertIn("\ndir /data\n", conf_text)
        conf = os.path.join(self.tmp, "redis.conf")
        with open(conf, "w") as f:
            f.write(conf_text.replace("\ndir /data\n", "\ndir %s\n" % data))
        port = free_ports(1)
        p = self.spawn("redis-conf", ["redis-server", conf, "--port", port, "--bind", "127.0.0.1"])
        try:
            client = wait_for(lambda: RedisClient(port), timeout=20, interval=0.05, what="redis.conf's Redis")
            try:
                got = {}
                for key in ("appendonly", "appendfsync", "maxmemory-policy", "maxmemory", "save"):
                    got[key] = client("CONFIG", "GET", key)[1]
            finally:
                client.close()
            self.assertEqual(got, {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction",
                                   "maxmemory": str(2 * 1024 ** 3), "save": ""})
        finally:
            p.terminate()
            p.wait(timeout=10)

    def test_1_pods_run(self):
        names = podman("ps", "--format", "{{.Names}}").stdout.split()
        containers = sorted(n for n in names if n.startswith(self.fullname) and not n.endswith("-infra"))
        self.assertEqual(containers, sorted(["%s-api-0-pod-0-api" % self.fullname,
                                             "%s-janitor-0-pod-0-janitor" % self.fullname,
                                             "%s-worker-0-pod-0-worker" % self.fullname,
                                             "%s-worker-1-pod-0-worker" % self.fullname]))
        for c in containers:
            info = json.loads(podman("inspect", c).stdout)[0]
            self.assertEqual(info["Config"]["User"], "10001:10001", c)
            self.assertTrue(info["HostConfig"]["ReadonlyRootfs"], c)
            self.assertEqual(info["EffectiveCaps"] or [], [], c)
            with open("/proc/%d/status" % info["State"]["Pid"]) as f:
                uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
            self.assertEqual(uids, ["10001"] * 4, c)
            p = podman("exec", c, "/bin/sh", "-c", ": > /jobmill-write-test", check=False)
            self.assertIn("Read-only file system", p.stderr, c)
        # Two workers, two ports, two processes, both registered.
        for w in self.workers:
            status, _, text = http("GET", "http://127.0.0.1:%d/metrics" % w["port"], raw=True)
            self.assertEqual(status, 200)
            # the chart's config, not defaults (concurrency 4) from an empty file
            self.assertIn("jobmill_worker_concurrency %d\n" % CONCURRENCY, text)
        status, _, body = http("GET", self.api + "/v1/workers")
        self.assertEqual(sorted(w["host"] for w in body["workers"]), sorted(w["pod"] for w in self.workers))
        # Prometheus scrapes all four targets (each worker on its own port).
        def all_up():
            up = {(r["metric"]["job"], r["metric"]["instance"]): r["value"][1] for r in self.promql("up")}
            want = {(job, "127.0.0.1:%d" % p) for job, ports in self.targets.items() for p in ports}
            return set(up) == want and all(v == "1" for v in up.values())
        wait_for(all_up, timeout=45, interval=0.5, what="Prometheus: every target up")

    def test_2_jobs_succeed(self):
        before = self.counts().get("succeeded", 0)
        n = 300
        status, _, body = http("POST", self.api + "/v1/jobs/batch",
                               {"jobs": [{"type": "echo", "payload": {"n": i}} for i in range(n)]})
        self.assertEqual(status, 201, body)
        ids = [j["id"] for j in body["jobs"]]
        shout = self.submit({"type": "shout", "payload": "from the chart's handlers"})
        self.assertEqual(self.job(shout["id"], wait=20)["result"], "FROM THE CHART'S HANDLERS")
        wait_for(lambda: self.counts().get("succeeded", 0) >= before + n + 1, timeout=60, interval=0.1,
                 what="%d jobs succeeded" % n)
        for job_id in ids[::10] + ids[-1:]:
            job = self.job(job_id)
            self.assertEqual(job["status"], "succeeded", job)
            self.assertEqual(job["result"], job["payload"])
            self.assertEqual(job["attempts"], 1)
        status, _, page = http("GET", self.api + "/v1/queues/default/jobs?state=succeeded&limit=1000")
        workers = {j["worker"] for j in page["jobs"]}
        self.assertEqual(len(workers), 2, "jobs ran on %s, not on both workers" % workers)

    def test_3_helm_test_hook(self):
        podman("kube", "play", self.hook)
        container = "%s-test-test" % self.fullname

        def exited():
            state = json.loads(podman("inspect", container).stdout)[0]["State"]
            return state if state["Status"] == "exited" else None
        state = wait_for(exited, timeout=60, interval=0.2, what="the helm test pod to finish")
        logs = podman("logs", container, check=False)
        out = logs.stdout + logs.stderr
        self.assertEqual(state["ExitCode"], 0, out)
        self.assertRegex(out, r"job \S+ succeeded")
        podman("kube", "down", self.hook)

    def test_4_drain(self):
        job = self.submit({"type": "sleep", "payload": {"ms": 6000}})
        running = wait_for(lambda: (lambda j: j if j["status"] == "running" else None)(self.job(job["id"])),
                           timeout=20, interval=0.05, what="the sleep job to start")
        status, _, body = http("GET", self.api + "/v1/workers")
        host = {w["id"]: w["host"] for w in body["workers"]}[running["worker"]]
        victim = next(w for w in self.workers if w["pod"] == host)
        # ceil(shutdownGraceMs / 1000) + 2 s handler kill grace + drainMarginSeconds (default 5)
        self.assertEqual(victim["grace"], math.ceil(SHUTDOWN_GRACE_MS / 1000.0) + 2 + 5)

        took, code, logs = self.stop_like_kubelet(victim)
        self.workers.remove(victim)
        self.stopped.append(victim)
        self.assertEqual(code, 0, "the worker did not drain cleanly:\n" + logs[-3000:])
        self.assertLess(took, victim["grace"] - 1, "the drain ran into the kill:\n" + logs[-3000:])
        outcome = [json.loads(ln) for ln in logs.splitlines()
                   if ln.startswith("{") and '"job outcome"' in ln and job["id"] in ln]
        self.assertEqual([(o["status"], str(o["attempt"])) for o in outcome], [("released", "1")], logs[-3000:])

        done = self.job(job["id"], wait=30)
        self.assertEqual(done["status"], "succeeded", done)
        self.assertNotEqual(done["worker"], running["worker"])
        self.assertEqual(done["attempts"], 1, "the drained attempt was not given back: %s" % done)

    def test_5_autoscaling_signal(self):
        # The query exactly as the chart renders it for KEDA and for the HPA.
        common = ["--set", "hostNetwork=false", "--set", "tests.enabled=false",
                  "--set", "worker.resources.requests.cpu=100m"]
        keda = yaml_docs(helm_template(self.values_file, *(common + [
            "--set", "worker.autoscaling.mode=keda",
            "--set", "worker.autoscaling.keda.serverAddress=" + self.prom])))
        hpa = yaml_docs(helm_template(self.values_file, *(common + [
            "--set", "worker.autoscaling.mode=hpa", "--set", "worker.autoscaling.hpa.external.enabled=true"])))
        so = [d for d in keda if d["kind"] == "ScaledObject"][0]
        trigger = so["spec"]["triggers"][0]
        query = trigger["metadata"]["query"]
        hpa_obj = [d for d in hpa if d["kind"] == "HorizontalPodAutoscaler"][0]
        self.assertEqual(hpa_obj["metadata"]["annotations"]["jobmill.io/demand-query"], query)
        target = int(trigger["metadata"]["threshold"])
        ext = [m for m in hpa_obj["spec"]["metrics"] if m["type"] == "External"][0]
        self.assertEqual(int(ext["external"]["target"]["averageValue"]), target)
        lo, hi = so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]
        self.assertEqual((lo, hi, target), (1, 10, CONCURRENCY))

        def signal():
            result = self.promql(query)
            self.assertEqual(len(result), 1, result)
            return float(result[0]["value"][1])

        wait_for(lambda: signal() == 0, timeout=30, interval=0.5, what="an idle signal of 0")
        self.assertEqual(hpa_desired(0, target, lo, lo, hi), lo)

        # No worker left (scaled in), then a backlog of 5,000 jobs arrives.
        for w in list(self.workers):
            took, code, logs = self.stop_like_kubelet(w)
            self.assertEqual(code, 0, logs[-2000:])
            self.workers.remove(w)
            self.stopped.append(w)
        backlog = 5000
        for start in range(0, backlog, 1000):
            status, _, body = http("POST", self.api + "/v1/jobs/batch",
                                   {"jobs": [{"type": "echo", "payload": i} for i in range(start, start + 1000)]},
                                   timeout=30)
            self.assertEqual(status, 201, body)
        value = wait_for(lambda: (lambda v: v if v >= backlog else None)(signal()), timeout=30, interval=0.5,
                         what="the signal to see the backlog")
        self.assertEqual(value, backlog)
        self.assertEqual(hpa_desired(value, target, lo, lo, hi), hi, "the backlog does not scale out to max")

        # Workers back (kube play), the backlog drains, the signal falls to 0.
        for w in self.stopped:
            podman("kube", "play", w["file"])
            self.workers.append(w)
        wait_for(lambda: all(self.ready(w["port"]) for w in self.workers), timeout=60, interval=0.1,
                 what="the workers to be ready again")
        for w in self.workers:  # they read the chart's config again, not an empty file
            text = http("GET", "http://127.0.0.1:%d/metrics" % w["port"], raw=True)[2]
            self.assertIn("jobmill_worker_concurrency %d\n" % CONCURRENCY, text)
        wait_for(lambda: self.counts().get("queued", 1) == 0 and self.counts().get("running", 1) == 0,
                 timeout=120, interval=0.2, what="the backlog to drain")
        wait_for(lambda: signal() == 0, timeout=30, interval=0.5, what="the signal to fall to 0")
        self.assertEqual(hpa_desired(0, target, hi, lo, hi), lo, "an empty queue does not scale in to min")
        # The rise and the fall are both in Prometheus' history of the query.
        status, _, body = http("GET", self.prom + "/api/v1/query_range?" + urllib.parse.urlencode({
            "query": query, "start": time.time() - 300, "end": time.time(), "step": "1"}))
        values = [float(v) for _, v in body["data"]["result"][0]["values"]]
        self.assertEqual(max(values), backlog)
        self.assertEqual(values[-1], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
