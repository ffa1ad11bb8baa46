"""nemesis.py - the chaos suite's seeded fault injector. It runs on the main
thread (the only one that starts processes) and injects one fault at a time,
picking kinds from a shuffled bag so every kind comes round once per bag:

  kill_api, kill_worker, kill_janitor  SIGKILL one replica, restart it after
                                       0-1.5 s
  stop_worker      SIGSTOP a worker for lease + 0.2-2 s (its leases run out,
                   the janitor hands its jobs to others), then SIGCONT: the
                   zombie must not commit over its successors
  kill_redis       SIGKILL redis-server, restart it 0-2 s later from its AOF
                   (appendfsync always: nothing acknowledged may be lost)
  stop_redis       SIGSTOP redis-server for 1.5-6.5 s: past the services'
                   Redis timeout (1 s), often past the HTTP client's (5 s) too,
                   so every client times out; then SIGCONT
  freeze_worker    a worker's proxy holds every byte for 0.3-3 s (below and
                   above the lease), then lets them through late
  reset_worker     a worker's proxy resets every connection, and refuses new
                   ones with an RST, for 0.1-2 s

Between faults it waits 0.5-2.5 s. Fault durations come from the seed; what
they hit depends on timing, so two runs with one seed are alike, not equal.
"""
import random
import threading
import time

from workload import HTTP_TIMEOUT

KINDS = ["kill_api", "kill_worker", "kill_janitor", "stop_worker", "kill_redis", "stop_redis",
         "freeze_worker", "reset_worker"]


class Nemesis:

    def __init__(self, cluster, seed, log, monitor):
        self.c = cluster
        self.rng = random.Random("%s/nemesis" % seed)
        self.log = log                  # workload.Log (shared client log file is fine)
        self.monitor = monitor          # called while waiting: crash detection
        self.counts = {k: 0 for k in KINDS}
        self.bag = []

    def hold(self, s):
        """Holds a fault (or the gap between two) for its randomized length:
        the length is part of the workload, not a wait for a condition. The
        crash monitor runs every 50 ms meanwhile."""
        end = time.monotonic() + s
        tick = threading.Event()  # never set: its wait is the monitor's period
        while True:
            self.monitor()
            left = end - time.monotonic()
            if left <= 0:
                return
            tick.wait(min(0.05, left))

    def next_kind(self):
        if not self.bag:
            self.bag = list(KINDS)
            self.rng.shuffle(self.bag)
        return self.bag.pop()

    def note(self, kind, **detail):
        self.counts[kind] += 1
        self.log.write(op="fault", fault=kind, **detail)

    def step(self):
        kind = self.next_kind()
        getattr(self, kind)()
        self.hold(self.rng.uniform(0.5, 2.5))

    def _kill(self, kind):
        s = self.rng.choice(self.c.of_kind(kind))
        if not s.alive():
            return
        self.note("kill_" + kind, target=s.name, pid=s.pid())
        s.sigkill()
        self.hold(self.rng.uniform(0.0, 1.5))
        s.start()
        s.wait_up()

    def kill_api(self):
        self._kill("api")

    def kill_worker(self):
        self._kill("worker")

    def kill_janitor(self):
        self._kill("janitor")

    def stop_worker(self):
        s = self.rng.choice(self.c.of_kind("worker"))
        d = self.c.lease_ms / 1000.0 + self.rng.uniform(0.2, 2.0)
        self.note("stop_worker", target=s.name, seconds=round(d, 3))
        s.sigstop()
        self.hold(d)
        s.sigcont()

    def kill_redis(self):
        self.note("kill_redis")
        self.c.kill_redis()
        self.hold(self.rng.uniform(0.0, 2.0))
        self.c.start_redis()

    def stop_redis(self):
        d = self.c.redis_timeout_ms / 1000.0 + self.rng.uniform(0.5, HTTP_TIMEOUT + 0.5)
        self.note("stop_redis", seconds=round(d, 3))
        self.c.stop_redis()
        self.hold(d)
        self.c.cont_redis()

    def _cut(self, kind, lo, hi):
        s = self.rng.choice(self.c.of_kind("worker"))
        d = self.rng.uniform(lo, hi)
        self.note(kind, target=s.name, seconds=round(d, 3))
        if kind == "freeze_worker":
            s.proxy.freeze()
        else:
            s.proxy.reset()
        self.hold(d)
        s.proxy.heal()

    def freeze_worker(self):
        self._cut("freeze_worker", 0.3, 3.0)

    def reset_worker(self):
        self._cut("reset_worker", 0.1, 2.0)
