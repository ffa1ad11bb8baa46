"""test_config_limits.py - queue limits from the janitor's YAML config
(janitor.queue_limits): a janitor sets them at start, the api shows them in
GET /v1/queues, a queue only the YAML names is created, and a bad entry
stops the janitor with exit 2 naming the file, line and field.
"""
import os
import subprocess
import tempfile
import unittest

import harness
from harness import RedisServer, Service, free_port, http, start_api, stop_api, wait_for

YAML = """janitor:
  queue_limits:
    scrape:
      rate: {n: 60, per_s: 30}
    solver:
      concurrency: 4
      types: {big: {concurrency: 1}}
"""


class TestConfigLimits(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.redis.start()
        self.api, self.base = start_api(self.redis.url)
        self.dir = tempfile.mkdtemp(prefix="jm-cfg-limits-")
        self.janitor = None

    def tearDown(self):
        if self.janitor is not None:
            self.janitor.stop()
        stop_api(self.api, self.redis)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_limits_are_set_at_start_and_shown(self):
        self.janitor = Service("janitor", self.redis.url,
                               args=("--config", self.write("j.yaml", YAML)),
                               env={"JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % free_port(),
                                    "JOBMILL_JANITOR_INTERVAL_MS": "50"}).start()

        def queues():
            status, _, body = http("GET", self.base + "/v1/queues")
            qs = {q["name"]: q for q in body["queues"]} if status == 200 else {}
            return qs if {"scrape", "solver"} <= set(qs) else None

        qs = wait_for(queues, timeout=15, what="both queues")
        self.assertEqual(qs["scrape"]["limits"]["rate"]["n"], 60)
        self.assertEqual(qs["scrape"]["limits"]["rate"]["per_s"], 30)
        self.assertIsNone(qs["scrape"]["limits"]["concurrency"])
        self.assertEqual(qs["solver"]["limits"]["concurrency"], 4)
        self.assertEqual(qs["solver"]["limits"]["types"]["big"]["concurrency"], 1)
        self.assertIn('"queue limits set from the config"', self.janitor.logs())

    def test_a_bad_entry_stops_the_janitor_naming_line_and_field(self):
        path = self.write("bad.yaml", "janitor:\n  queue_limits:\n    q:\n      rate: {n: 0, per_s: 1}\n")
        p = subprocess.run([os.path.join(harness.BIN_DIR, "jobmill-janitor"), "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                           env=dict(os.environ, REDIS_URL=self.redis.url))
        self.assertEqual(p.returncode, 2)
        self.assertIn("bad.yaml:4: janitor.queue_limits.q.rate.n: rate must be", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
