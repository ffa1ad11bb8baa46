"""test_up.py - scripts/up end to end, in its non-interactive mode.

`scripts/up --check` installs what is missing (nothing, here), starts Redis,
the api, two workers and the janitor, runs the demo job, then stops all of it
and exits 0. These tests run it with the binaries of this build (--bin-dir,
no rebuild) and a scratch state dir (JOBMILL_UP_DIR), then check that it
succeeded, that --config reaches every service, that a bad config fails
cleanly, and that no process it started is left.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import harness

UP = os.path.join(harness.SOURCE_DIR, "scripts", "up")


def processes_mentioning(needle):
    """Pids (not zombies) whose command line or working directory contains
    needle (redis-server rewrites its command line, but runs in its --dir)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rpartition(")")[2].split()[0]
            cwd = os.readlink("/proc/%s/cwd" % d)
        except OSError:
            continue
        if (needle in cmd or needle in cwd) and state != "Z":
            found.append((int(d), cmd))
    return found


def port_open(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


class TestUp(unittest.TestCase):
    def setUp(self):
        for b in ("jobmill-api", "jobmill-worker", "jobmill-janitor"):
            if not os.access(os.path.join(harness.BIN_DIR, b), os.X_OK):
                self.skipTest("%s not built" % b)
        self.state = tempfile.mkdtemp(prefix="jm-up-test-")
        self.ports = set()

    def tearDown(self):
        needles = [self.state] + ["127.0.0.1:%d" % p for p in self.ports]
        for needle in needles:
            for pid, _ in processes_mentioning(needle):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        shutil.rmtree(self.state, ignore_errors=True)

    def up(self, *args, timeout=180):
        env = dict(os.environ, JOBMILL_UP_DIR=self.state)
        for k in ("REDIS_URL", "JOBMILL_LISTEN", "JOBMILL_METRICS_LISTEN", "JOBMILL_UP_EXIT"):
            env.pop(k, None)
        p = subprocess.run([UP, "--check", "--bin-dir", harness.BIN_DIR] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        self.ports |= {int(x) for x in re.findall(r"127\.0\.0\.1:(\d+)", out)}
        return p.returncode, out

    def assert_all_stopped(self, out):
        ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)}
        self.assertEqual(processes_mentioning(self.state), [], "redis-server left running")
        for port in ports:
            self.assertEqual(processes_mentioning("127.0.0.1:%d" % port), [],
                             "a process using port %d is left" % port)
            self.assertFalse(port_open(port), "port %d still listens" % port)

    def test_check_runs_demo_and_stops_everything(self):
        rc, out = self.up()
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"api\s+http://127\.0\.0\.1:\d+")
        self.assertRegex(out, r"dashboard\s+http://127\.0\.0\.1:\d+/ui/")
        self.assertRegex(out, r"demo job \S+ succeeded, result: \{\"hello\": \"jobmill\"\}")
        self.assertEqual(len(re.findall(r"http://127\.0\.0\.1:\d+/metrics", out)), 3, out)
        self.assert_all_stopped(out)
        for name in ("redis", "api", "worker-1", "worker-2", "janitor"):
            self.assertTrue(os.path.exists(os.path.join(self.state, "logs", name + ".log")))
        with open(os.path.join(self.state, "logs", "janitor.log")) as f:
            self.assertIn('"janitor stopped"', f.read(), "the janitor stopped gracefully")
        self.assertTrue(os.path.exists(os.path.join(self.state, "redis", "appendonlydir")),
                        "Redis runs with AOF in the state dir")
        # a second run reuses the data (the first demo job is still there)
        rc, out2 = self.up()
        self.assertEqual(rc, 0, out2)
        self.assert_all_stopped(out2)

    def test_config_reaches_every_service(self):
        cfg = os.path.join(self.state, "my.yaml")
        with open(cfg, "w") as f:
            f.write("worker:\n  concurrency: 3\n  lease_ms: 7000\n"
                    "janitor:\n  interval_ms: 250\napi:\n  max_queues: 77\n")
        rc, out = self.up("--config", cfg)
        self.assertEqual(rc, 0, out)
        logs = os.path.join(self.state, "logs")
        for name, needle in (("worker-1", '\\"concurrency\\":3'), ("worker-2", '\\"lease_ms\\":7000'),
                             ("janitor", '\\"interval_ms\\":250'), ("api", '\\"max_queues\\":77')):
            with open(os.path.join(logs, name + ".log")) as f:
                text = f.read()
            self.assertIn(needle, text, "%s did not get the config" % name)
            self.assertIn(cfg, text)
        self.assert_all_stopped(out)

    def test_bad_config_fails_cleanly(self):
        cfg = os.path.join(self.state, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("worker:\n  concurrency: lots\n")
        rc, out = self.up("--config", cfg, timeout=120)
        self.assertEqual(rc, 1, out)
        self.assertIn("exited during start-up", out)
        self.assertIn("bad.yaml:2", out)
        self.assert_all_stopped(out)


if __name__ == "__main__":
    unittest.main()
