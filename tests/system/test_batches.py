"""test_batches.py - POST /v1/batches and GET /v1/batches/{id} through the
real api (two replicas), real workers and a janitor.

A 20,000-job batch (JOBMILL_TEST_SCALE scales it down under sanitizers)
with a callback: 201 only once every job is stored, counts and progress
from either replica, a ?wait on the second replica woken when the last job
ends, the results in submission order page by page, and the callback job
created exactly once with the batch id in its payload. Then validation (400
naming jobs[i].field, nothing stored) and the idempotency key.
"""
import threading
import time
import unittest

import harness
from harness import Service, free_port, http, start_api, wait_for, wait_http


class Waiter(threading.Thread):
    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.result = self.error = None

    def run(self):
        try:
            self.result = http("GET", self.url, timeout=90.0)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


class BatchesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()
        env = {"JOBMILL_MAX_BODY_BYTES": str(8 << 20)}
        cls.api, cls.base = start_api(cls.redis.url, env=env)
        try:
            cls.api2, cls.base2 = start_api(cls.redis.url, env=env)
        except BaseException:
            harness.stop_api(cls.api, cls.redis)
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.api2.terminate(timeout=30)
        log = cls.api2.logs()
        cls.api2.stop()
        harness.stop_api(cls.api, cls.redis)
        if code != 0 or any(m in log for m in harness.SANITIZER_MARKS):
            raise AssertionError("second api exited %s; log:\n%s" % (code, log[-4000:]))

    def setUp(self):
        self.services = []

    def tearDown(self):
        for s in self.services:
            s.stop()

    def start(self, name, env):
        port = free_port()
        e = {"JOBMILL_METRICS_LISTEN": "127.0.0.1:%d" % port}
        e.update(env)
        svc = Service(name, self.redis.url, env=e).start()
        svc.base = "http://127.0.0.1:%d" % port
        self.services.append(svc)
        wait_http(svc.base + "/healthz")
        return svc

    def metric(self, base, name):
        st, _, text = http("GET", base + "/metrics", raw=True)
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return -1

    def queue(self, name):
        st, _, body = http("GET", self.base + "/v1/queues")
        self.assertEqual(st, 200, body)
        for q in body["queues"]:
            if q["name"] == name:
                return q
        return None

    def test_a_big_batch_with_a_callback_across_two_replicas(self):
        n = 20000 if harness.scale() >= 1 else harness.scaled(20000, 500)
        jobs = [{"type": "echo", "payload": {"i": i}} for i in range(n)]
        body = {"queue": "fan", "jobs": jobs,
                "callback": {"type": "echo", "payload": {"report": "r1"}}}
        t0 = time.monotonic()
        st, _, b = http("POST", self.base + "/v1/batches", body, timeout=60)
        submit_s = time.monotonic() - t0
        self.assertEqual(st, 201, b)
        bid = b["id"]
        self.assertEqual(b["total"], n)
        self.assertEqual(b["released"], n, "released before the answer")
        self.assertEqual(b["status"], "running")
        self.assertEqual(b["progress"], 0)
        self.assertIsNone(b["callback"])
        self.assertEqual(self.queue("fan")["queued"], n)

        # the other replica sees it, and long-polls for its end
        st, _, b2 = http("GET", self.base2 + "/v1/batches/" + bid)
        self.assertEqual(st, 200, b2)
        self.assertEqual(b2["counts"]["unfinished"], n)
        self.assertEqual((b2["counts"]["queued"], b2["counts"]["running"]), (n, 0))
        waiter = Waiter(self.base2 + "/v1/batches/%s?wait=60" % bid)
        waiter.start()
        wait_for(lambda: self.long_polls(self.base2) >= 1, timeout=10, what="the batch waiter")

        self.start("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "100"})
        t1 = time.monotonic()
        for _ in range(2):
            self.start("worker", {"JOBMILL_QUEUES": "fan", "JOBMILL_CONCURRENCY": "16"})
        waiter.join(90)
        run_s = time.monotonic() - t1
        self.assertIsNone(waiter.error)
        self.assertIsNotNone(waiter.result, "the ?wait answered")
        st, _, done = waiter.result
        self.assertEqual(st, 200, done)
        self.assertEqual(done["status"], "done", done)
        self.assertEqual(done["counts"]["succeeded"], n)
        self.assertEqual(done["counts"]["unfinished"], 0)
        self.assertEqual([done["counts"][s] for s in ("queued", "scheduled", "running")], [0, 0, 0])
        self.assertEqual(done["progress"], 100)
        self.assertIsNotNone(done["finished_at"])
        cb = done["callback"]
        self.assertIsNotNone(cb)

        st, _, job = http("GET", self.base + "/v1/jobs/%s?wait=30" % cb)
        self.assertEqual(st, 200, job)
        self.assertEqual(job["status"], "succeeded")
        self.assertEqual(job["payload"], {"batch_id": bid, "payload": {"report": "r1"}})
        # exactly once: every job of the queue is a member or the one callback
        wait_for(lambda: self.queue("fan")["succeeded"] == n + 1, timeout=10,
                 what="n + 1 jobs succeeded")
        q = self.queue("fan")
        self.assertEqual(sum(q[s] for s in ("queued", "scheduled", "running", "failed",
                                            "canceled", "expired")), 0, q)

        # results in submission order, page by page, from both replicas
        seen, offset, pages = 0, 0, 0
        while offset is not None:
            base = self.base if pages % 2 == 0 else self.base2
            st, _, page = http("GET", base + "/v1/batches/%s?results=1&offset=%d&limit=1000"
                               % (bid, offset))
            self.assertEqual(st, 200, page)
            for r in page["results"]:
                self.assertEqual(r["status"], "succeeded")
                self.assertEqual(r["result"], {"i": seen})
                seen += 1
            offset = page["next_offset"]
            pages += 1
        self.assertEqual(seen, n)
        print("\nbatch of %d: submit %.2f s, run %.2f s, %d result pages"
              % (n, submit_s, run_s, pages))

    def long_polls(self, base):
        return self.metric(base, "jobmill_api_long_polls")

    def test_an_api_killed_while_staging_runs_nothing(self):
        """SIGKILL the api between two chunks of a submit: no member is ever
        runnable (not even after janitor ticks and a reconciler pass), the
        batch is invisible, and everything it staged expires. Should the
        seal win the race with the kill, every member runs instead."""
        api, base = start_api(self.redis.url, env={"JOBMILL_MAX_BODY_BYTES": str(8 << 20)})
        n = 20000 if harness.scale() >= 1 else harness.scaled(20000, 2000)
        body = {"queue": "crash", "jobs": [{"type": "echo", "payload": {"i": i}}
                                           for i in range(n)],
                "callback": {"type": "echo"}}
        poster = threading.Thread(target=self.post_quietly, args=(base, body), daemon=True)
        c = self.redis.client()
        try:
            poster.start()

            def staging():
                return any(c("LLEN", k) >= 500 and c("HGET", k[:-len(":staged")], "queue") == "crash"
                           for k in c("KEYS", "jm:{*}:batch:*:staged"))

            wait_for(staging, timeout=30, interval=0.0005, what="the first chunks staged")
            api.kill()
        finally:
            api.stop()
        poster.join(30)
        bkeys = [k for k in c("KEYS", "jm:{*}:batch:*")
                 if not k.endswith(":staged") and not k.endswith(":ids")
                 and c("HGET", k, "queue") == "crash"]
        self.assertEqual(len(bkeys), 1, bkeys)
        bid = bkeys[0].rsplit(":", 1)[1]
        status = c("HGET", bkeys[0], "status")
        print("\nthe api was killed with the batch %s" % status)
        janitor = self.start("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "50",
                                         "JOBMILL_JANITOR_RECONCILE_EVERY": "2"})
        self.start("worker", {"JOBMILL_QUEUES": "crash", "JOBMILL_CONCURRENCY": "16"})
        if status == "open":
            ticks = self.metric(janitor.base, "jobmill_janitor_ticks_total")
            wait_for(lambda: self.metric(janitor.base, "jobmill_janitor_ticks_total") >= ticks + 6,
                     timeout=20, what="six janitor ticks")
            q = self.queue("crash")
            self.assertTrue(q is None or all(q[s] == 0 for s in (
                "queued", "scheduled", "running", "succeeded", "failed")), q)
            st, _, e = http("GET", self.base + "/v1/batches/" + bid)
            self.assertEqual(st, 404, e)
            for k in c("KEYS", "jm:{*}:batch:%s*" % bid):
                ttl = c("PTTL", k)
                self.assertTrue(0 < ttl <= 300000, (k, ttl))
        else:
            st, _, b = http("GET", self.base + "/v1/batches/%s?wait=60" % bid, timeout=90)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["status"], "done", b)
            self.assertEqual(b["counts"]["succeeded"], n)
        c.close()

    @staticmethod
    def post_quietly(base, body):
        try:
            http("POST", base + "/v1/batches", body, timeout=60)
        except OSError:
            pass  # the api was killed under it

    def test_a_callback_on_a_queue_of_another_slot(self):
        """The janitor submits it, once; it runs there with the batch id."""
        n = 200
        body = {"queue": "xs", "jobs": [{"type": "echo", "payload": i} for i in range(n)],
                "callback": {"queue": "xs-report", "type": "echo", "payload": "sum"}}
        st, _, b = http("POST", self.base + "/v1/batches", body)
        self.assertEqual(st, 201, b)
        bid = b["id"]
        self.start("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "50"})
        self.start("janitor", {"JOBMILL_JANITOR_INTERVAL_MS": "50"})
        self.start("worker", {"JOBMILL_QUEUES": "xs,xs-report", "JOBMILL_CONCURRENCY": "8"})
        st, _, done = http("GET", self.base2 + "/v1/batches/%s?wait=30" % bid, timeout=60)
        self.assertEqual(done["status"], "done", done)
        wait_for(lambda: http("GET", self.base + "/v1/batches/" + bid)[2]["callback"] is not None,
                 timeout=10, what="a janitor to submit the callback")
        cb = http("GET", self.base + "/v1/batches/" + bid)[2]["callback"]
        self.assertNotEqual(cb[:4], bid[:4], "job ids carry their queue's slot tag")
        st, _, job = http("GET", self.base + "/v1/jobs/%s?wait=30" % cb)
        self.assertEqual(job["queue"], "xs-report")
        self.assertEqual(job["status"], "succeeded", job)
        self.assertEqual(job["result"], {"batch_id": bid, "payload": "sum"})
        q = self.queue("xs-report")
        self.assertEqual(sum(q[s] for s in ("queued", "scheduled", "running", "succeeded",
                                            "failed", "canceled", "expired")), 1, q)

    def test_invalid_batches_store_nothing(self):
        cases = [
            ({"queue": "bad", "jobs": [{"type": "t"}, {"payload": 1}]}, "jobs[1].type"),
            ({"queue": "bad", "jobs": [{"type": "t"}, {"type": "t", "queue": "x"}]},
             "jobs[1].queue"),
            ({"queue": "bad", "jobs": [{"type": "t", "idempotency_key": "k"}]},
             "jobs[0].idempotency_key"),
            ({"queue": "bad", "jobs": [{"type": "t"}], "callback": {"type": 3}}, "callback.type"),
            ({"queue": "bad", "jobs": []}, "jobs"),
            ({"queue": "b@d", "jobs": [{"type": "t"}]}, "queue"),
            ({"queue": "bad", "jobs": [{"type": "t"}], "result_ttl_s": -1}, "result_ttl_s"),
        ]
        for body, field in cases:
            st, _, e = http("POST", self.base + "/v1/batches", body)
            self.assertEqual(st, 400, (body, e))
            self.assertEqual(e["error"]["field"], field, e)
        self.assertIsNone(self.queue("bad"), "nothing stored")
        st, _, e = http("GET", self.base + "/v1/batches/0000AAAAAAAAAAAAAAAAAAAAAA")
        self.assertEqual(st, 404, e)
        st, _, e = http("GET", self.base + "/v1/batches/0000AAAAAAAAAAAAAAAAAAAAAA?limit=0")
        self.assertEqual(st, 400, e)
        self.assertEqual(e["error"]["field"], "limit")

    def test_the_python_client(self):
        """clients/python/jobmill.py: submit_batch, batch(wait), batch_results."""
        import os
        import sys
        sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "clients", "python"))
        import jobmill
        client = jobmill.Client(self.base2)
        b = client.submit_batch([{"type": "echo", "payload": i} for i in range(30)], queue="py",
                                callback={"type": "echo"})
        self.assertEqual(b["total"], 30)
        self.start("worker", {"JOBMILL_QUEUES": "py", "JOBMILL_CONCURRENCY": "4"})
        done = client.batch(b["id"], wait=30)
        self.assertEqual(done["status"], "done", done)
        results = list(client.batch_results(b["id"], page=7))
        self.assertEqual([r["result"] for r in results], list(range(30)))
        self.assertEqual(client.get(results[3]["id"])["batch"], b["id"], "a member names it")
        self.assertIsNone(client.get(done["callback"])["batch"], "the callback is no member")
        with self.assertRaises(jobmill.JobmillError) as e:
            client.submit_batch([{"type": "echo"}, {}], queue="py")
        self.assertEqual(e.exception.field, "jobs[1].type")

    def test_idempotency_key_returns_the_first_batch(self):
        body = {"queue": "idem", "jobs": [{"type": "t"}] * 3, "idempotency_key": "b-1"}
        st, _, a = http("POST", self.base + "/v1/batches", body)
        self.assertEqual(st, 201, a)
        st, _, b = http("POST", self.base2 + "/v1/batches", body)
        self.assertEqual(st, 200, b)
        self.assertEqual(a["id"], b["id"])
        self.assertEqual(self.queue("idem")["queued"], 3)
        st, _, e = http("POST", self.base + "/v1/batches", body, headers={"Idempotency-Key": "x"})
        self.assertEqual(st, 400, e)


if __name__ == "__main__":
    unittest.main()
