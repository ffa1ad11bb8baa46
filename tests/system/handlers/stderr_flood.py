#!/usr/bin/env python3
"""stderr_flood.py - exec handler of tests/system/test_logs.py: floods stderr
with short lines and the progress fd with progress lines, never stopping (the
job's timeout ends it)."""
import os
import sys

sys.stdin.read()
burst = b"flood line\n" * 6000
prog = os.fdopen(int(os.environ["JOBMILL_PROGRESS_FD"]), "w", buffering=1)
n = 0
while True:
    sys.stderr.buffer.write(burst)
    sys.stderr.buffer.flush()
    n += 1
    prog.write('{"progress": %d}\n' % (n % 100))
