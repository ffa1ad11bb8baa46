"""test_schedules.py - cron schedules end to end: the api stores them, three
real janitors fire them, and every tick's job exists exactly once, also when
janitors are SIGKILLed at the tick and restarted; pause and resume over
HTTP; bad definitions get 400 naming the field.

The schedules use the seconds extension ("* * * * * *": every second) so
that a run sees many ticks in a few seconds; the 5-field form fires through
the same code (tests/unit/test_cron.c computes its times). Each tick's job
carries the idempotency key "schedule:<name>:<tick_ms>", read back from
Redis to list the ticks that fired.
"""
import json
import os
import signal
import subprocess
import time
import unittest

import harness
from harness import RedisServer, Service, free_port, http, scaled, start_api, stop_api, wait_for


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def counts(redis, queue):
    key = "jm:{%04x}:q:%s:counts" % (crc16(queue.encode()) % 16384, queue)
    v = redis.cmd("HGETALL", key) or []
    return {v[i]: int(v[i + 1]) for i in range(0, len(v), 2)}


class ScheduleCase(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.redis.start()
        self.api, self.base = start_api(self.redis.url)
        self.janitors = []

    def tearDown(self):
        for j in self.janitors:
            j.stop()
        stop_api(self.api, self.redis)

    def janitor(self, args=(), interval_ms=20):
        port = free_port()
        j = Service("janitor", self.redis.url, args=args,
                    env={"JOBMILL_JANITOR_INTERVAL_MS": str(interval_ms),
                         "JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}).start()
        j.metrics_url = "http://127.0.0.1:%d/metrics" % port
        self.janitors.append(j)
        return j

    @staticmethod
    def ticks_done(j):
        """The janitor's completed ticks (0 while its listener is not up)."""
        try:
            status, _, text = http("GET", j.metrics_url, raw=True)
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("jobmill_janitor_ticks_total "):
                return float(line.split()[1])
        return 0

    def post(self, path, body=None):
        return http("POST", self.base + path, body)

    def redis_ms(self):
        t = self.redis.cmd("TIME")
        return int(t[0]) * 1000 + int(t[1]) // 1000

    def redis_seconds(self, n):
        """Waits until n seconds have passed on Redis's clock; returns the
        start (ms)."""
        t0 = self.redis_ms()
        wait_for(lambda: self.redis_ms() >= t0 + n * 1000, timeout=n + 10, what="%d s" % n)
        return t0

    def ticks(self, name):
        """{tick_ms: job id} of every tick of schedule name that has a job."""
        keys = self.redis.cmd("KEYS", "jm:idem:schedule:%s:*" % name) or []
        out = {}
        for k in keys:
            tick = int(k.split(":")[4])  # jm:idem:schedule:<name>:<tick_ms>
            self.assertNotIn(tick, out, "two jobs for tick %d" % tick)
            out[tick] = self.redis.cmd("GET", k)
        return out


class TestSchedules(ScheduleCase):
    def test_bad_definitions_name_the_field(self):
        good = {"name": "n", "cron": "*/5 * * * *", "tz": "America/New_York",
                "job": {"type": "echo"}}
        cases = [({"cron": "61 * * * *"}, "cron"), ({"cron": "* * *"}, "cron"),
                 ({"tz": "Mars/Olympus"}, "tz"), ({"tz": "../../etc/passwd"}, "tz"),
                 ({"name": "a/b"}, "name"), ({"job": {"queue": "q"}}, "job.type"),
                 ({"job": "echo"}, "job"), ({"missed": "sometimes"}, "missed"),
                 ({"missed": "catch_up", "catch_up_max": 0}, "catch_up_max"),
                 ({"cron": "0 0 30 2 *"}, "cron")]
        for change, field in cases:
            body = dict(good)
            body.update(change)
            status, _, resp = self.post("/v1/schedules", body)
            self.assertEqual(status, 400, (change, resp))
            self.assertEqual(resp["error"]["field"], field, (change, resp))
        status, _, resp = http("GET", self.base + "/v1/schedules")
        self.assertEqual((status, resp), (200, {"schedules": []}), "nothing stored")
        status, _, resp = self.post("/v1/schedules", good)
        self.assertEqual(status, 201, resp)
        self.assertEqual(resp["tz"], "America/New_York")
        self.assertIsNone(resp["last_run"])
        self.assertGreater(resp["next_run"], time.time() - 5)
        status, _, again = self.post("/v1/schedules", good)
        self.assertEqual(status, 200, "the same definition again")
        self.assertEqual(again["next_run"], resp["next_run"])
        self.assertEqual(http("DELETE", self.base + "/v1/schedules/n")[0], 200)
        self.assertEqual(http("DELETE", self.base + "/v1/schedules/n")[0], 404)
        self.assertEqual(self.post("/v1/schedules/n/pause")[0], 404)

    def test_three_janitors_fire_each_tick_once_through_sigkills_at_the_tick(self):
        for _ in range(3):
            self.janitor()
        status, _, resp = self.post("/v1/schedules", {
            "name": "tick", "cron": "* * * * * *",  # the default policy: skip
            "job": {"type": "echo", "queue": "cron", "payload": {"hi": 1}}})
        self.assertEqual(status, 201, resp)
        wait_for(lambda: len(self.ticks("tick")) >= 3, timeout=15, what="three ticks")
        kills = scaled(6, minimum=3)
        for k in range(kills):
            # SIGKILL one janitor at a tick (a few ms after the second turns,
            # while the janitors are firing it), then start a new one
            now = time.time()
            time.sleep(int(now) + 1 - now + (k % 4) * 0.002)
            i = k % len(self.janitors)
            victim = self.janitors[i]
            victim.signal(signal.SIGKILL)
            victim.wait(10)
            self.janitor()
            self.janitors[i] = self.janitors.pop()
        last = max(self.ticks("tick"))
        wait_for(lambda: max(self.ticks("tick")) >= last + 2000, timeout=15, what="two more ticks")
        self.assertEqual(self.post("/v1/schedules/tick/pause")[0], 200)
        self.redis_seconds(1)  # a firing under way when the pause came ends
        ticks = self.ticks("tick")
        first, last = min(ticks), max(ticks)
        self.assertEqual(sorted(ticks), list(range(first, last + 1000, 1000)),
                         "every second once, no gap (on-time ticks fire under skip too)")
        self.assertEqual(len(set(ticks.values())), len(ticks), "a job per tick")
        wait_for(lambda: sum(counts(self.redis, "cron").values()) == len(ticks), timeout=10,
                 what="as many jobs as ticks")
        self.assertEqual(counts(self.redis, "cron").get("queued"), len(ticks))
        status, _, resp = http("GET", self.base + "/v1/schedules")
        s = resp["schedules"][0]
        self.assertTrue(s["paused"])
        self.assertEqual(s["last_run"] * 1000, last)
        self.assertEqual(s["last_job"], ticks[last])
        self.assertIsNone(s["next_run"])
        for j in self.janitors:
            self.assertNotIn("runtime error", j.logs())

    def test_pause_and_resume(self):
        self.janitor()
        status, _, _ = self.post("/v1/schedules", {
            "name": "p", "cron": "* * * * * *", "job": {"type": "echo", "queue": "pq"}})
        self.assertEqual(status, 201)
        wait_for(lambda: len(self.ticks("p")) >= 1, timeout=10, what="a tick")
        status, _, resp = self.post("/v1/schedules/p/pause")
        self.assertEqual(status, 200)
        self.assertTrue(resp["paused"])
        self.redis_seconds(1)  # a firing under way when the pause came ends
        paused_at = len(self.ticks("p"))
        t0_ms = self.redis_seconds(2)
        self.assertEqual(len(self.ticks("p")), paused_at, "no tick while paused")
        status, _, resp = self.post("/v1/schedules/p/resume")
        self.assertEqual(status, 200)
        self.assertFalse(resp["paused"])
        self.assertGreater(resp["next_run"] * 1000, t0_ms + 2000 - 1000,
                           "paused ticks are not caught up")
        wait_for(lambda: len(self.ticks("p")) > paused_at, timeout=10, what="ticks again")
        resumed_ms = resp["next_run"] * 1000
        self.assertEqual([t for t in self.ticks("p") if t0_ms <= t < resumed_ms], [],
                         "no tick of the paused seconds fired, then or later")

    def test_yaml_schedules_are_defined_at_start_and_owned_by_the_yaml(self):
        path = os.path.join(self.api.logdir, "janitor.yaml")
        with open(path, "w") as f:
            f.write("janitor:\n  schedules:\n"
                    "    - name: nightly\n      cron: '30 2 * * *'\n      tz: Europe/Berlin\n"
                    "      job: {type: report, queue: reports}\n")
        j = self.janitor(("--config", path))

        def listed():
            status, _, resp = http("GET", self.base + "/v1/schedules")
            return resp["schedules"] if status == 200 and resp["schedules"] else None

        s = wait_for(listed, timeout=15, what="the YAML schedule")[0]
        self.assertEqual((s["name"], s["source"], s["tz"]), ("nightly", "yaml", "Europe/Berlin"))
        status, _, resp = self.post("/v1/schedules", {"name": "nightly", "cron": "* * * * *",
                                                      "job": {"type": "echo"}})
        self.assertEqual(status, 409, resp)
        # a restart with the same YAML keeps the schedule as it is
        j.terminate()
        j2 = self.janitor(("--config", path))
        wait_for(lambda: self.ticks_done(j2) >= 2, timeout=15, what="the second janitor's ticks")
        self.assertEqual(listed()[0]["next_run"], s["next_run"])
        self.assertNotIn("schedule created", j2.logs())
        self.assertNotIn("schedule replaced", j2.logs())

    def test_cli_lists_pauses_resumes_and_deletes(self):
        cli = os.path.join(harness.BIN_DIR, "jobmill")

        def run(*args):
            p = subprocess.run([cli, "--url", self.base] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        self.assertEqual(self.post("/v1/schedules", {
            "name": "rep", "cron": "0 3 * * MON-FRI", "tz": "America/New_York",
            "job": {"type": "report", "queue": "reports"}})[0], 201)
        rc, out, _ = run("schedules")
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^NAME +CRON +TZ +QUEUE/TYPE +NEXT RUN +LAST RUN +LAST JOB +STATE")
        self.assertRegex(lines[1], r"^rep +0 3 \* \* MON-FRI +America/New_York +reports/report +"
                                   r"\d{4}-\d\d-\d\dT0[78]:00:00Z +- +- +active$")
        rc, out, _ = run("--json", "schedules", "rep")
        self.assertEqual((rc, json.loads(out)["name"]), (0, "rep"))
        self.assertEqual(run("schedules", "rep", "--pause")[:2], (0, "schedule rep paused\n"))
        self.assertIn(" paused", run("schedules", "rep")[1])
        self.assertEqual(run("schedules", "rep", "--resume")[:2], (0, "schedule rep resumed\n"))
        self.assertEqual(run("schedules", "rep", "--delete")[:2], (0, "schedule rep deleted\n"))
        self.assertEqual(run("schedules", "rep")[0], 3)
        self.assertEqual(run("schedules", "rep", "--delete")[0], 3)
        self.assertEqual(run("schedules", "--pause")[0], 2)
        self.assertEqual(run("schedules", "a", "--pause", "--resume")[0], 2)

    def test_a_tick_fires_on_time_between_janitor_ticks(self):
        # janitor ticks 5 s apart: the janitor wakes for each schedule tick
        # in between, so a tick's job is not up to 5 s late
        self.janitor(interval_ms=5000)
        status, _, _ = self.post("/v1/schedules", {
            "name": "prompt", "cron": "* * * * * *", "job": {"type": "echo", "queue": "pr"}})
        self.assertEqual(status, 201)
        # the janitor learns of a new schedule at its next tick (then fires
        # the ticks due since, late); from then on it knows when to wake
        def last_run():
            return http("GET", self.base + "/v1/schedules")[2]["schedules"][0]["last_run"]

        known = wait_for(last_run, timeout=30, what="the first ticks") * 1000
        wait_for(lambda: len([t for t in self.ticks("prompt") if t > known]) >= 4, timeout=30,
                 what="four more ticks")
        late = []
        for tick, job_id in sorted(self.ticks("prompt").items()):
            if tick > known:
                _, _, job = http("GET", self.base + "/v1/jobs/" + job_id)
                late.append(job["created_at"] * 1000 - tick)
        self.assertTrue(all(0 <= ms < 1000 for ms in late), late)


if __name__ == "__main__":
    unittest.main()
