#!/usr/bin/env python3
"""progress_logs.py GATE - exec handler of tests/system/test_logs.py.

Writes progress lines on JOBMILL_PROGRESS_FD (a good one, a line that is not
JSON, one out of range) and stderr lines (a plain one, one of 100,000 bytes,
one with NUL and other binary bytes, one of invalid UTF-8), then waits until
the file GATE exists (the test's follower is attached; deadline 60 s), then
writes a last progress line and a last stderr line without a newline, and
answers {"ok": true}.
"""
import json
import os
import sys
import time

gate = sys.argv[1]
sys.stdin.read()
prog = os.fdopen(int(os.environ["JOBMILL_PROGRESS_FD"]), "w", buffering=1)
prog.write('{"progress": 10, "message": "started"}\n')
prog.write("this is not json\n")
prog.write('{"progress": 500}\n')
err = sys.stderr.buffer
err.write(b"first line\n")
err.write(b"x" * 100000 + b"\n")
err.write(b"bin\x00\x01\xff\xfe end\r\n")
err.write(b"bad utf8 \xc3\x28 \xed\xa0\x80 ok\n")
err.flush()
deadline = time.monotonic() + 60
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.01)
prog.write('{"progress": 90, "message": "almost"}\n')
prog.close()
err.write(b"last line, no newline")
err.flush()
print(json.dumps({"ok": True}))
