"""test_worker_tree.py - nothing an exec handler starts outlives its job or
its worker (issue 9 item 2).

Handlers here leave processes behind in every way a program can: a
background job in the handler's process group (`sleep 300 &`), and a
double-forked setsid() daemon that has left the group and lost its parent.
Each handler process carries a marker in its environment, so the tests find
every survivor by scanning /proc, whatever its parent or group. After
SIGKILL of the worker, after a timeout, a cancel, and a normal exit, no
process with the marker may remain (waited for with a deadline). Exit codes
and deaths by signal still reach the job exactly.
"""
import os
import signal
import uuid
import unittest

from harness import wait_for
from test_worker import WorkerCase, proc_alive, read_text

MARK = "JMTEST_TREE_MARK"

# A background child in the handler's group, then a daemon: a subshell
# starts `setsid` in the background and exits, so the daemon has its own
# session and group, and its parent is gone. Every pid goes to a file.
LEAVER = r"""
dir=$1
sleep 300 &
echo $! > "$dir/bg.pid"
( setsid sh -c 'echo $$ > "$1/daemon.pid.tmp"; mv "$1/daemon.pid.tmp" "$1/daemon.pid"; exec sleep 300' sh "$dir" & )
while [ ! -s "$dir/daemon.pid" ]; do sleep 0.01; done
echo $$ > "$dir/handler.pid"
case "$2" in
  exit) echo '{"left":"behind"}' ;;
  *) sleep 301; echo '{}' ;;
esac
"""


def marked(mark, exclude=()):
    """Pids of live (not zombie) processes whose environment holds mark,
    but for the pids in exclude."""
    needle = ("%s=%s" % (MARK, mark)).encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0") and proc_alive(int(d)):
            found.append(int(d))
    return found


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def describe(pids):
    """'pid (ppid, command)' for each pid, for failure messages."""
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            out.append("%d (parent %s: %s)"
                       % (pid, stat.rpartition(")")[2].split()[1], cmdline(pid)))
        except OSError:
            out.append("%d (gone)" % pid)
    return ", ".join(out)


class TreeTest(WorkerCase):

    def setUp(self):
        super().setUp()
        self.mark = uuid.uuid4().hex
        self.workers = set()  # they carry the mark too

    def left(self):
        return marked(self.mark, exclude=self.workers)

    def tearDown(self):
        # never leave a survivor behind on the machine, pass or fail
        for pid in self.left():
            if any(s.pid == pid and s.alive() for s in self.services):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        super().tearDown()

    def worker(self, handlers, **kw):
        cfg = self.config(handlers)
        env = {MARK: self.mark}
        env.update(kw.pop("env", {}))
        w = self.start_worker(config=cfg, env=env, **kw)
        self.workers.add(w.pid)
        return w

    def leaver(self, **h):
        sh = self.script("leaver.sh", LEAVER)
        d = dict(h)
        d["exec"] = ["/bin/sh", sh, self.tmp] + d.pop("args", [])
        return d

    def pids(self):
        """Waits for the leaver's pid files; returns {name: pid}."""
        names = ("handler", "bg", "daemon")
        wait_for(lambda: all(read_text(os.path.join(self.tmp, n + ".pid")) for n in names),
                 timeout=15, what="the handler's pid files")
        return {n: int(read_text(os.path.join(self.tmp, n + ".pid"))) for n in names}

    def assert_all_gone(self, pids, what, timeout=10):
        try:
            wait_for(lambda: not self.left() and
                     not any(proc_alive(p) for p in pids.values()),
                     timeout=timeout, what="no process of the handler left " + what)
        except AssertionError:
            left = sorted(set(self.left()) |
                          {p for p in pids.values() if proc_alive(p)})
            raise AssertionError("still running %s: %s" % (what, describe(left)))

    # ---- the worker dies ----

    def test_sigkill_of_the_worker_ends_the_issues_handler(self):
        w = self.worker({"two": {"exec": ["/bin/sh", "-c", "sleep 300 & sleep 301; echo '{}'"]}})
        self.submit_one({"type": "two"})
        wait_for(lambda: {"sleep 300", "sleep 301"} <= {cmdline(p) for p in self.left()},
                 what="the handler's two sleeps running")
        w.kill()
        self.assert_all_gone({}, "after SIGKILL of the worker")

    def test_sigkill_of_the_worker_ends_background_and_setsid_daemons(self):
        w = self.worker({"leave": self.leaver()})
        jid = self.submit_one({"type": "leave", "max_attempts": 1})
        pids = self.pids()
        self.assertTrue(all(proc_alive(p) for p in pids.values()), pids)
        # the daemon really left the handler's session and group
        self.assertNotEqual(os.getsid(pids["daemon"]), os.getsid(pids["handler"]))
        self.assertNotEqual(os.getpgid(pids["daemon"]), os.getpgid(pids["handler"]))
        self.assertEqual(os.getpgid(pids["bg"]), os.getpgid(pids["handler"]))
        w.kill()
        self.assert_all_gone(pids, "after SIGKILL of the worker")
        self.assertEqual(self.get(jid)["status"], "running")  # the janitor's job now

    def test_death_by_other_signals_ends_the_tree(self):
        # signals the worker does not handle: it dies at once, no cleanup
        for sig in (signal.SIGHUP, signal.SIGALRM):
            with self.subTest(signal=sig.name):
                w = self.worker({"leave": self.leaver()})
                self.submit_one({"type": "leave", "max_attempts": 1})
                pids = self.pids()
                w.signal(sig)
                self.assertEqual(w.wait(10), -sig)
                self.assert_all_gone(pids, "after the worker died of %s" % sig.name)
                for n in ("handler", "bg", "daemon"):
                    os.unlink(os.path.join(self.tmp, n + ".pid"))

    def test_second_signal_exit_ends_the_tree(self):
        # SIGTERM starts a drain; a second signal exits at once
        w = self.worker({"leave": self.leaver()}, grace_ms=60000)
        self.submit_one({"type": "leave", "max_attempts": 1})
        pids = self.pids()
        w.signal(signal.SIGTERM)
        w.signal(signal.SIGINT)
        w.wait(20)
        self.assert_all_gone(pids, "after the worker's immediate exit")

    # ---- the worker lives ----

    def test_timeout_ends_background_and_setsid_daemons(self):
        w = self.worker({"leave": self.leaver(timeout_s=1)})
        jid = self.submit_one({"type": "leave", "max_attempts": 1})
        pids = self.pids()
        j = self.wait_job(jid, timeout=20)
        self.assertEqual(j["status"], "failed")
        self.assertTrue(j["error"].startswith("timeout after 1000 ms"), j["error"])
        self.assert_all_gone(pids, "after the timeout")
        self.assertTrue(w.alive())

    def test_cancel_ends_background_and_setsid_daemons(self):
        self.worker({"leave": self.leaver()})
        jid = self.submit_one({"type": "leave", "max_attempts": 1})
        pids = self.pids()
        self.cancel(jid)
        j = self.wait_job(jid, statuses=("canceled",), timeout=20)
        self.assertEqual(j["status"], "canceled")
        self.assert_all_gone(pids, "after the cancel")

    def test_normal_exit_ends_what_the_handler_left_running(self):
        self.worker({"leave": self.leaver(args=["exit"])})
        jid = self.submit_one({"type": "leave", "max_attempts": 1})
        j = self.wait_job(jid)
        self.assertEqual((j["status"], j["result"]), ("succeeded", {"left": "behind"}))
        pids = {n: int(read_text(os.path.join(self.tmp, n + ".pid")))
                for n in ("handler", "bg", "daemon")}
        self.assert_all_gone(pids, "after the handler exited")

    def test_exit_codes_and_signals_reach_the_job_exactly(self):
        self.worker({
            "code": {"exec": ["/bin/sh", "-c", "echo why >&2; exit 42"]},
            "sig": {"exec": ["/bin/sh", "-c", "sleep 300 & kill -USR1 $$"]},
            "segv": {"exec": ["/bin/sh", "-c", "kill -SEGV $$"]},
        })
        ids = {t: self.submit_one({"type": t, "max_attempts": 1}) for t in ("code", "sig", "segv")}
        self.assertEqual(self.wait_job(ids["code"])["error"], "exit code 42: why")
        self.assertEqual(self.wait_job(ids["sig"])["error"],
                         "killed by signal %d" % signal.SIGUSR1)
        self.assertEqual(self.wait_job(ids["segv"])["error"],
                         "killed by signal %d" % signal.SIGSEGV)
        self.assert_all_gone({}, "after the signalled handlers")


if __name__ == "__main__":
    unittest.main()
