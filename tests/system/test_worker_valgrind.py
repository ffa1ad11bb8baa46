"""test_worker_valgrind.py - jobmill-worker under valgrind --leak-check=full
over scaled(1000) exec jobs: no leak, no memory error, a clean exit 0 on
SIGTERM, and no child process left behind.

Skipped in sanitizer builds, where LeakSanitizer does this job and valgrind
cannot run the binary: set JOBMILL_TEST_SANITIZED=1, or let the test notice
the ASan runtime in the binary. Skipped when valgrind is not installed.
"""
import os
import shutil
import signal
import unittest

import harness
from harness import scaled, wait_for
from test_worker import WorkerCase, children_of

WORKER = os.path.join(harness.BIN_DIR, "jobmill-worker")


def sanitized():
    if os.environ.get("JOBMILL_TEST_SANITIZED", "") not in ("", "0"):
        return True
    try:
        with open(WORKER, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


@unittest.skipIf(shutil.which("valgrind") is None, "valgrind is not installed")
@unittest.skipIf(sanitized(), "sanitizer build: LeakSanitizer covers leaks there")
class ValgrindTest(WorkerCase):

    def test_no_leaks_over_exec_jobs(self):
        n = scaled(1000, minimum=50)
        sh = self.script("echo.sh", "exec cat\n")
        cfg = self.config({"cat": {"exec": [sh], "timeout_s": 60}})
        vlog = os.path.join(self.tmp, "valgrind.log")
        wrapper = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                   "--errors-for-leak-kinds=definite,indirect", "--trace-children=no",
                   "--error-exitcode=99", "--log-file=" + vlog]
        w = self.start_worker(concurrency=4, lease_ms=30000, heartbeat_ms=500, config=cfg,
                              wrapper=wrapper)
        ids = self.submit({"type": "cat", "payload": {"x": "y"}}, n=n - 3)
        ids += [self.submit_one({"type": t, "payload": p, "max_attempts": 1})
                for t, p in (("echo", 1), ("fail", {"message": "m"}), ("nope", None))]
        wait_for(lambda: sum(self.stats()[s] for s in ("succeeded", "failed")) == n,
                 timeout=240, interval=0.25, what="%d jobs done under valgrind" % n)
        s = self.stats()
        self.assertEqual((s["succeeded"], s["failed"]), (n - 2, 2))
        self.assertEqual(children_of(w.pid), [])
        w.signal(signal.SIGTERM)
        code = w.wait(60)
        with open(vlog) as f:
            report = f.read()
        self.assertEqual(code, 0, report[-4000:])
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-4000:])
        self.assertNotIn("definitely lost: ", report.replace("definitely lost: 0 bytes", ""),
                         report[-4000:])


if __name__ == "__main__":
    unittest.main()
