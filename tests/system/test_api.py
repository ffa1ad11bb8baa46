"""test_api.py - jobmill-api routes and error codes against a real Redis.

One redis-server and one jobmill-api serve the whole class; every test uses
its own queue names so tests do not see each other's jobs. Jobs are claimed,
completed and failed through the jm_testctl tool (libshared), never a worker.
Every error case checks that the store is unchanged (queue counts before ==
after). Long-polls: test_api_wait.py; Redis outages, auth, drain and the
command line: test_api_ops.py.
"""
import json
import re
import shutil
import socket
import subprocess
import unittest

import harness
from harness import claim_one, http, start_api, testctl

MAX_BODY = 262144


class ApiTestBase(unittest.TestCase):
    api_env = {}

    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()
        env = {"JOBMILL_MAX_BODY_BYTES": str(MAX_BODY)}
        env.update(cls.api_env)
        try:
            cls.api, cls.base = start_api(cls.redis.url, env=env)
        except BaseException:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        harness.stop_api(cls.api, cls.redis)

    # ---- helpers ----

    def req(self, method, path, body=None, headers=None, timeout=10.0):
        return http(method, self.base + path, body=body, headers=headers, timeout=timeout)

    def submit(self, body, headers=None, want=201):
        st, h, job = self.req("POST", "/v1/jobs", body, headers)
        self.assertEqual(st, want, job)
        return job

    def queues(self):
        st, _, body = self.req("GET", "/v1/queues")
        self.assertEqual(st, 200, body)
        return {q["name"]: q for q in body["queues"]}

    def assert_error(self, resp, status, code, field=None):
        st, h, body = resp
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"], body)
        self.assertIn("application/json", h.get("content-type", ""))
        if field is None:
            self.assertNotIn("field", body["error"], body)
        else:
            self.assertEqual(body["error"].get("field"), field, body)
        return body

    def assert_unchanged(self, before):
        self.assertEqual(self.queues(), before)


class SubmitTest(ApiTestBase):
    def test_submit_returns_201_with_the_stored_job(self):
        st, h, job = self.req("POST", "/v1/jobs", {"queue": "s1", "type": "echo",
                                                   "payload": {"n": 1, "s": "x"},
                                                   "max_attempts": 5, "timeout_s": 30})
        self.assertEqual(st, 201, job)
        for k in ("id", "queue", "type", "status", "attempts", "max_attempts", "payload",
                  "result", "error", "progress", "worker", "cancel_requested", "created_at",
                  "run_at", "started_at", "finished_at"):
            self.assertIn(k, job)
        self.assertEqual((job["queue"], job["type"], job["status"]), ("s1", "echo", "queued"))
        self.assertEqual(job["payload"], {"n": 1, "s": "x"})
        self.assertEqual((job["attempts"], job["max_attempts"]), (0, 5))
        self.assertIsNone(job["started_at"])
        self.assertIsInstance(job["created_at"], float)
        self.assertEqual(h.get("location"), "/v1/jobs/" + job["id"])
        st, _, again = self.req("GET", "/v1/jobs/" + job["id"])
        self.assertEqual(st, 200)
        self.assertEqual(again, job)
        self.assertEqual(self.queues()["s1"]["queued"], 1)

    def test_submit_defaults(self):
        job = self.submit({"type": "t"})
        self.assertEqual(job["queue"], "default")
        self.assertEqual(job["max_attempts"], 3)
        self.assertIsNone(job["payload"])

    def test_delayed_submit_is_scheduled(self):
        job = self.submit({"queue": "s-delay", "type": "t", "delay_s": 3600})
        self.assertEqual(job["status"], "scheduled")
        self.assertGreater(job["run_at"], job["created_at"] + 3000)
        self.assertEqual(self.queues()["s-delay"]["scheduled"], 1)

    def test_idempotency_key_header_replays_the_same_job(self):
        body = {"queue": "idem-h", "type": "t"}
        first = self.submit(body, headers={"Idempotency-Key": "key-h-1"})
        st, _, second = self.req("POST", "/v1/jobs", body, headers={"Idempotency-Key": "key-h-1"})
        self.assertEqual(st, 200, second)
        self.assertEqual(second["id"], first["id"])
        self.assertEqual(self.queues()["idem-h"]["queued"], 1)
        # the body form of the same key finds the same job
        st, _, third = self.req("POST", "/v1/jobs", dict(body, idempotency_key="key-h-1"))
        self.assertEqual((st, third["id"]), (200, first["id"]))

    def test_idempotency_key_body_replays_the_same_job(self):
        body = {"queue": "idem-b", "type": "t", "idempotency_key": "key-b-1"}
        first = self.submit(body)
        st, _, second = self.req("POST", "/v1/jobs", body)
        self.assertEqual((st, second["id"]), (200, first["id"]))
        # header and body equal: fine, same job
        st, _, third = self.req("POST", "/v1/jobs", body, headers={"Idempotency-Key": "key-b-1"})
        self.assertEqual((st, third["id"]), (200, first["id"]))
        self.assertEqual(self.queues()["idem-b"]["queued"], 1)

    def test_unique_key_refuses_a_second_job_with_409(self):
        first = self.submit({"queue": "uq", "type": "t", "unique_key": "nightly"})
        st, _, err = self.req("POST", "/v1/jobs", {"queue": "uq", "type": "t",
                                                  "unique_key": "nightly"})
        self.assertEqual(st, 409, err)
        self.assertEqual((err["error"]["code"], err["error"]["field"]), ("duplicate", "unique_key"))
        self.assertIn(first["id"], err["error"]["message"])
        self.assertEqual(self.queues()["uq"]["queued"], 1)
        st, _, _ = self.req("POST", "/v1/jobs/%s/cancel" % first["id"])
        self.assertEqual(st, 200)
        self.submit({"queue": "uq", "type": "t", "unique_key": "nightly"})  # freed
        self.assert_error(self.req("POST", "/v1/jobs/batch",
                                   {"jobs": [{"type": "t", "unique_key": "x"}]}),
                          400, "invalid_field", "jobs[0].unique_key")

    def test_idempotency_header_and_body_differ_is_400(self):
        self.submit({"queue": "idem-x", "type": "t"})
        before = self.queues()
        self.assert_error(self.req("POST", "/v1/jobs",
                                   {"queue": "idem-x", "type": "t", "idempotency_key": "a"},
                                   headers={"Idempotency-Key": "b"}),
                          400, "invalid_field", "idempotency_key")
        self.assert_unchanged(before)

    def test_invalid_fields_name_the_field_and_store_nothing(self):
        self.submit({"queue": "inv", "type": "t"})
        before = self.queues()
        cases = [({"queue": "inv"}, "type"),
                 ({"queue": "inv", "type": 5}, "type"),
                 ({"queue": "bad queue!", "type": "t"}, "queue"),
                 ({"queue": "inv", "type": "t", "max_attempts": "x"}, "max_attempts"),
                 ({"queue": "inv", "type": "t", "max_attempts": 0}, "max_attempts"),
                 ({"queue": "inv", "type": "t", "max_attempts": 1001}, "max_attempts"),
                 ({"queue": "inv", "type": "t", "delay_s": -1}, "delay_s"),
                 ({"queue": "inv", "type": "t", "delay_s": 1, "run_at": 2}, "run_at"),
                 ({"queue": "inv", "type": "t", "idempotency_key": ""}, "idempotency_key")]
        for body, field in cases:
            with self.subTest(body=body):
                err = self.assert_error(self.req("POST", "/v1/jobs", body), 400, "invalid_field",
                                        field)
                self.assertIn(field, err["error"]["message"])
        self.assert_unchanged(before)

    def test_malformed_json_is_bad_json(self):
        self.submit({"queue": "bj", "type": "t"})
        before = self.queues()
        for raw in ('{"type": "t",', "not json", "", '{"type":"t","type":"u"}'):
            with self.subTest(raw=raw):
                self.assert_error(self.req("POST", "/v1/jobs", raw,
                                           headers={"Content-Type": "application/json"}),
                                  400, "bad_json")
        self.assert_unchanged(before)

    def test_body_not_an_object_is_invalid(self):
        before = self.queues()
        self.assertEqual(self.req("POST", "/v1/jobs", [1, 2])[0], 400)
        self.assert_unchanged(before)

    def test_wrong_content_type_is_415(self):
        self.submit({"queue": "ct", "type": "t"})
        before = self.queues()
        for ct in ("text/plain", "application/x-www-form-urlencoded", None):
            with self.subTest(ct=ct):
                headers = {"Content-Type": ct} if ct else {}
                self.assert_error(self.req("POST", "/v1/jobs", json.dumps({"queue": "ct",
                                                                           "type": "t"}),
                                           headers=headers),
                                  415, "unsupported_media_type")
        # parameters are fine
        self.submit({"queue": "ct", "type": "t"}, headers={"Content-Type":
                                                           "application/json; charset=utf-8"})
        self.assertEqual(self.queues()["ct"]["queued"], before["ct"]["queued"] + 1)

    def test_oversized_body_is_413(self):
        self.submit({"queue": "big", "type": "t"})
        before = self.queues()
        big = {"queue": "big", "type": "t", "payload": "x" * (MAX_BODY + 10)}
        self.assert_error(self.req("POST", "/v1/jobs", big), 413, "too_large")
        self.assert_unchanged(before)

    def test_declared_huge_body_is_refused_before_reading(self):
        """A Content-Length far over the limit is answered at once: the api
        does not wait for (or buffer) the body."""
        port = int(self.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000000\r\n\r\n{")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def raw_chunked(self, body, chunk=16384):
        """POSTs body to /v1/jobs with chunked transfer encoding over a raw
        socket; returns the status line and the response text."""
        port = int(self.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                for i in range(0, len(body), chunk):
                    part = body[i:i + chunk]
                    s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the api may answer 413 and stop reading early
            data = b""
            while True:
                try:
                    got = s.recv(65536)
                except OSError:
                    break
                if not got:
                    break
                data += got
        return data.decode("utf-8", "replace")

    def test_chunked_body_is_read_and_capped(self):
        small = json.dumps({"queue": "chunked", "type": "t", "payload": "z" * 40000}).encode()
        resp = self.raw_chunked(small)
        self.assertTrue(resp.startswith("HTTP/1.1 201"), resp[:300])
        self.assertEqual(self.queues()["chunked"]["queued"], 1)
        before = self.queues()
        big = json.dumps({"queue": "chunked", "type": "t", "payload": "z" * (MAX_BODY * 2)})
        resp = self.raw_chunked(big.encode())
        self.assertTrue(resp.startswith("HTTP/1.1 413"), resp[:300])
        self.assertIn("too_large", resp)
        self.assert_unchanged(before)

    def test_job_at_the_body_limit_is_accepted(self):
        body = {"queue": "near", "type": "t", "payload": "y" * (MAX_BODY - 200)}
        job = self.submit(body)
        self.assertEqual(len(job["payload"]), MAX_BODY - 200)


class BatchTest(ApiTestBase):
    def test_batch_of_1000_in_request_order(self):
        jobs = [{"queue": "b1000", "type": "t", "payload": {"i": i}} for i in range(1000)]
        st, _, body = self.req("POST", "/v1/jobs/batch", {"jobs": jobs}, timeout=60)
        self.assertEqual(st, 201, body)
        self.assertEqual(len(body["jobs"]), 1000)
        self.assertEqual([j["payload"]["i"] for j in body["jobs"]], list(range(1000)))
        self.assertTrue(all(j["status"] == "queued" for j in body["jobs"]))
        self.assertEqual(len({j["id"] for j in body["jobs"]}), 1000)
        self.assertEqual(self.queues()["b1000"]["queued"], 1000)

    def test_batch_with_one_bad_job_stores_nothing(self):
        self.submit({"queue": "bbad", "type": "t"})
        before = self.queues()
        jobs = [{"queue": "bbad", "type": "t"}, {"queue": "bbad-new", "type": "t"},
                {"queue": "bbad", "payload": 1}, {"queue": "bbad", "type": "t"}]
        err = self.assert_error(self.req("POST", "/v1/jobs/batch", {"jobs": jobs}),
                                400, "invalid_field", "jobs[2].type")
        self.assertIn("jobs[2].type", err["error"]["message"])
        self.assert_error(self.req("POST", "/v1/jobs/batch",
                                   {"jobs": [{"queue": "bbad", "type": "t"},
                                             {"queue": "bbad", "type": "t", "max_attempts": -1}]}),
                          400, "invalid_field", "jobs[1].max_attempts")
        self.assert_error(self.req("POST", "/v1/jobs/batch", {"jobs": [{"type": "t"}, 7]}),
                          400, "invalid_field", "jobs[1]")
        self.assert_unchanged(before)
        self.assertNotIn("bbad-new", self.queues())

    def test_batch_shape_errors(self):
        before = self.queues()
        for body, field in (({}, "jobs"), ({"jobs": []}, "jobs"), ({"jobs": {"a": 1}}, "jobs"),
                            ({"jobs": [{"type": "t"}] * 1001}, "jobs")):
            with self.subTest(n=len(json.dumps(body))):
                self.assert_error(self.req("POST", "/v1/jobs/batch", body), 400, "invalid_field",
                                  field)
        self.assert_error(self.req("POST", "/v1/jobs/batch", "[", headers={
            "Content-Type": "application/json"}), 400, "bad_json")
        self.assert_error(self.req("POST", "/v1/jobs/batch", {"jobs": [{"type": "t"}]},
                                   headers={"Idempotency-Key": "k"}),
                          400, "invalid_field", "Idempotency-Key")
        self.assert_unchanged(before)

    def test_batch_idempotency_keys_per_job(self):
        jobs = [{"queue": "bidem", "type": "t", "idempotency_key": "bk-%d" % i} for i in range(3)]
        st, _, first = self.req("POST", "/v1/jobs/batch", {"jobs": jobs})
        self.assertEqual(st, 201, first)
        st, _, second = self.req("POST", "/v1/jobs/batch", {"jobs": jobs})
        self.assertEqual(st, 201, second)
        self.assertEqual([j["id"] for j in first["jobs"]], [j["id"] for j in second["jobs"]])
        self.assertEqual(self.queues()["bidem"]["queued"], 3)


class JobOpsTest(ApiTestBase):
    def test_get_unknown_or_malformed_job_is_404(self):
        job = self.submit({"queue": "g404", "type": "t"})
        unknown = job["id"][:-4] + ("AAAA" if not job["id"].endswith("AAAA") else "BBBB")
        for jid in (unknown, "nope", "x" * 300):
            with self.subTest(jid=jid[:30]):
                self.assert_error(self.req("GET", "/v1/jobs/" + jid), 404, "not_found")
        self.assert_error(self.req("POST", "/v1/jobs/%s/cancel" % unknown), 404, "not_found")
        self.assert_error(self.req("POST", "/v1/jobs/%s/retry" % unknown), 404, "not_found")

    def test_cancel_queued_then_409(self):
        job = self.submit({"queue": "cq", "type": "t"})
        st, _, c = self.req("POST", "/v1/jobs/%s/cancel" % job["id"])
        self.assertEqual(st, 200, c)
        self.assertEqual(c["status"], "canceled")
        self.assertIsNotNone(c["finished_at"])
        before = self.queues()
        self.assertEqual((before["cq"]["queued"], before["cq"]["canceled"]), (0, 1))
        err = self.assert_error(self.req("POST", "/v1/jobs/%s/cancel" % job["id"]),
                                409, "invalid_state")
        self.assertIn("canceled", err["error"]["message"])
        self.assert_unchanged(before)

    def test_cancel_running_requests_cancel(self):
        job = self.submit({"queue": "cr", "type": "t"})
        jid, _ = claim_one(self.redis.url, "cr")
        self.assertEqual(jid, job["id"])
        st, _, c = self.req("POST", "/v1/jobs/%s/cancel" % jid)
        self.assertEqual(st, 200, c)
        self.assertEqual((c["status"], c["cancel_requested"]), ("running", True))

    def test_retry_failed_job_and_409_from_queued(self):
        job = self.submit({"queue": "rt", "type": "t", "max_attempts": 1})
        before = self.queues()
        self.assert_error(self.req("POST", "/v1/jobs/%s/retry" % job["id"]), 409, "invalid_state")
        self.assert_unchanged(before)
        jid, fence = claim_one(self.redis.url, "rt")
        testctl(self.redis.url, "fail", jid, fence, "boom", "permanent")
        st, _, failed = self.req("GET", "/v1/jobs/" + jid)
        self.assertEqual((failed["status"], failed["error"], failed["attempts"]),
                         ("failed", "boom", 1))
        st, _, r = self.req("POST", "/v1/jobs/%s/retry" % jid)
        self.assertEqual(st, 200, r)
        self.assertEqual((r["status"], r["attempts"]), ("queued", 0))
        q = self.queues()["rt"]
        self.assertEqual((q["queued"], q["failed"]), (1, 0))

    def test_cancel_and_retry_refuse_a_non_json_body(self):
        job = self.submit({"queue": "cb", "type": "t"})
        before = self.queues()
        self.assert_error(self.req("POST", "/v1/jobs/%s/cancel" % job["id"], "x",
                                   headers={"Content-Type": "text/plain"}),
                          415, "unsupported_media_type")
        self.assert_unchanged(before)
        # an empty body (no Content-Type) is the normal form
        self.assertEqual(self.req("POST", "/v1/jobs/%s/cancel" % job["id"])[0], 200)

    def test_completed_job_shows_result(self):
        job = self.submit({"queue": "done", "type": "echo", "payload": {"a": 1}})
        jid, fence = claim_one(self.redis.url, "done")
        st, _, running = self.req("GET", "/v1/jobs/" + jid)
        self.assertEqual((running["status"], running["worker"]), ("running", "jm_testctl"))
        self.assertIsNotNone(running["started_at"])
        testctl(self.redis.url, "complete", jid, fence, '{"a": 1}')
        st, _, done = self.req("GET", "/v1/jobs/" + job["id"])
        self.assertEqual((done["status"], done["result"]), ("succeeded", {"a": 1}))


class QueuesTest(ApiTestBase):
    def test_queues_pause_resume(self):
        self.submit({"queue": "pq", "type": "t"})
        q = self.queues()["pq"]
        self.assertEqual(set(q), {"name", "queued", "scheduled", "running", "succeeded",
                                  "failed", "canceled", "expired", "paused", "limits"})
        self.assertEqual(q["limits"], {"rate": None, "concurrency": None, "types": {}})
        self.assertFalse(q["paused"])
        st, _, p = self.req("POST", "/v1/queues/pq/pause")
        self.assertEqual(st, 200, p)
        self.assertEqual((p["name"], p["paused"], p["queued"]), ("pq", True, 1))
        self.assertTrue(self.queues()["pq"]["paused"])
        # paused queues accept jobs, but nothing can be claimed
        self.submit({"queue": "pq", "type": "t"})
        self.assertEqual(testctl(self.redis.url, "claim", "pq", 5).strip(), "")
        st, _, r = self.req("POST", "/v1/queues/pq/resume")
        self.assertEqual((st, r["paused"], r["queued"]), (200, False, 2))
        self.assertNotEqual(testctl(self.redis.url, "claim", "pq", 1).strip(), "")

    def test_pause_unknown_or_bad_queue(self):
        before = self.queues()
        self.assert_error(self.req("POST", "/v1/queues/never-used/pause"), 404, "not_found")
        self.assert_error(self.req("POST", "/v1/queues/%s/pause" % ("q" * 65)), 400,
                          "invalid_field", "queue")
        self.assert_unchanged(before)

    def test_list_jobs_pages_with_cursor(self):
        ids = [self.submit({"queue": "lq", "type": "t", "payload": i})["id"] for i in range(7)]
        seen, cursor, pages = [], None, 0
        while True:
            path = "/v1/queues/lq/jobs?state=queued&limit=3"
            if cursor is not None:
                path += "&cursor=" + cursor
            st, _, page = self.req("GET", path)
            self.assertEqual(st, 200, page)
            self.assertLessEqual(len(page["jobs"]), 3)
            seen += [j["id"] for j in page["jobs"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(pages, 10)
        self.assertEqual(seen, ids)  # FIFO order
        st, _, page = self.req("GET", "/v1/queues/lq/jobs?state=queued")
        self.assertEqual(len(page["jobs"]), 7)  # default limit 100
        self.assertIsNone(page["next_cursor"])
        # a canceled job leaves the queued listing and shows under canceled
        self.req("POST", "/v1/jobs/%s/cancel" % ids[0])
        st, _, page = self.req("GET", "/v1/queues/lq/jobs?state=queued&limit=100")
        self.assertEqual([j["id"] for j in page["jobs"]], ids[1:])
        st, _, page = self.req("GET", "/v1/queues/lq/jobs?state=canceled")
        self.assertEqual([j["id"] for j in page["jobs"]], [ids[0]])

    def test_list_queued_shows_a_retried_job_once(self):
        jid = self.submit({"queue": "rq1", "type": "t"})["id"]
        st, _, _ = self.req("POST", "/v1/jobs/%s/cancel" % jid)
        self.assertEqual(st, 200)
        st, _, job = self.req("POST", "/v1/jobs/%s/retry" % jid)
        self.assertEqual((st, job["status"]), (200, "queued"))
        # the canceled entry is still in pending (lazy deletion) next to the new one
        st, _, page = self.req("GET", "/v1/queues/rq1/jobs?state=queued")
        self.assertEqual([j["id"] for j in page["jobs"]], [jid])
        self.assertEqual(self.queues()["rq1"]["queued"], 1)

    def test_list_jobs_argument_errors(self):
        self.submit({"queue": "la", "type": "t"})
        for qs, field in (("", "state"), ("?state=bogus", "state"), ("?state=queued&limit=0",
                          "limit"), ("?state=queued&limit=1001", "limit"),
                          ("?state=queued&limit=x", "limit"),
                          ("?state=queued&cursor=abc", "cursor"),
                          # regression (issue 9.4): Lua wrote 1e+17 and Redis refused (503)
                          ("?state=queued&cursor=100000000000000000", "cursor"),
                          ("?state=succeeded&cursor=99999999999999999999999", "cursor"),
                          ("?state=queued&cursor=-1", "cursor"),
                          ("?state=queued&cursor=+5", "cursor")):
            with self.subTest(qs=qs):
                self.assert_error(self.req("GET", "/v1/queues/la/jobs" + qs), 400,
                                  "invalid_field", field)
        # a large but valid cursor is an empty last page, not an error
        st, _, page = self.req("GET", "/v1/queues/la/jobs?state=queued&cursor=9999999999999")
        self.assertEqual((st, page["jobs"], page["next_cursor"]), (200, [], None))
        self.assert_error(self.req("GET", "/v1/queues/unknown-q/jobs?state=queued"), 404,
                          "not_found")

    def test_workers_list(self):
        st, _, body = self.req("GET", "/v1/workers")
        self.assertEqual(st, 200, body)
        self.assertIsInstance(body["workers"], list)
        testctl(self.redis.url, "beat", "w-test-1", "high,low", 4, 1)
        st, _, body = self.req("GET", "/v1/workers")
        w = [x for x in body["workers"] if x["id"] == "w-test-1"]
        self.assertEqual(len(w), 1, body)
        w = w[0]
        self.assertEqual(set(w), {"id", "host", "pid", "queues", "concurrency", "busy",
                                  "started_at", "heartbeat_age_ms"})
        self.assertEqual((w["queues"], w["concurrency"], w["busy"]), (["high", "low"], 4, 1))
        self.assertIsInstance(w["pid"], int)
        self.assertGreaterEqual(w["heartbeat_age_ms"], 0)
        self.assertLess(w["heartbeat_age_ms"], 60000)


class HttpTest(ApiTestBase):
    def test_unknown_route_is_404_json(self):
        for path in ("/", "/v2/jobs", "/v1", "/v1/jobs/", "/v1/nothing", "/healthz/x"):
            with self.subTest(path=path):
                self.assert_error(self.req("GET", path), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        for method, path, allow in (("DELETE", "/v1/jobs", "POST"), ("GET", "/v1/queues/q/pause",
                                    "POST"), ("PUT", "/v1/queues", "GET"),
                                    ("POST", "/healthz", "GET")):
            with self.subTest(method=method, path=path):
                st, h, body = self.req(method, path)
                self.assertEqual(st, 405, body)
                self.assertEqual(body["error"]["code"], "method_not_allowed")
                self.assertEqual(h.get("allow"), allow)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        import http.client
        host, port = self.base[len("http://"):].rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        ids = []
        for i in range(5):
            c.request("POST", "/v1/jobs", body=json.dumps({"queue": "ka", "type": "t"}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = json.loads(r.read())
            self.assertEqual((r.status, r.getheader("Connection")), (201, "keep-alive"))
            ids.append(body["id"])
            if i == 0:
                sock = c.sock
            self.assertIs(c.sock, sock, "the same connection serves every request")
        c.request("GET", "/v1/jobs/" + ids[0])
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["id"]), (200, ids[0]))
        self.assertIs(c.sock, sock)
        # an error answer closes the connection (it may leave a body unread)
        c.request("GET", "/v1/nothing")
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Connection")), (404, "close"))
        c.close()
        self.assertEqual(self.queues()["ka"]["queued"], 5)
        # a client that asks to close gets close
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("GET", "/healthz", headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Connection")), (200, "close"))
        c.close()

    def test_health_endpoints(self):
        st, _, body = self.req("GET", "/healthz")
        self.assertEqual((st, body["status"]), (200, "ok"))
        st, _, body = self.req("GET", "/readyz")
        self.assertEqual((st, body["status"]), (200, "ready"))

    def test_no_auth_configured_means_open(self):
        st, _, _ = self.req("GET", "/v1/queues", headers={"Authorization": "Bearer whatever"})
        self.assertEqual(st, 200)

    def test_metrics_families_and_labels(self):
        job = self.submit({"queue": "mq", "type": "t"})
        self.req("GET", "/v1/jobs/" + job["id"])
        self.req("GET", "/v1/nothing")
        st, h, text = http("GET", self.base + "/metrics", raw=True)
        self.assertEqual(st, 200)
        self.assertIn("text/plain", h["content-type"])
        for fam in ("jobmill_build_info", "jobmill_redis_errors_total",
                    "jobmill_http_requests_total", "jobmill_http_request_duration_seconds",
                    "jobmill_jobs_submitted_total", "jobmill_queue_jobs",
                    "jobmill_queue_oldest_age_seconds"):
            self.assertIn("# TYPE %s " % fam, text)
        self.assertIn('jobmill_jobs_submitted_total{queue="mq"} 1', text)
        self.assertIn('jobmill_queue_jobs{queue="mq",state="queued"} 1', text)
        self.assertIn('jobmill_http_requests_total{route="/v1/jobs/{id}",code="200"}', text)
        self.assertIn('route="unmatched",code="404"', text)
        self.assertIn('jobmill_queue_paused{queue="mq"} 0', text)
        self.req("POST", "/v1/queues/mq/pause")
        # the queue gauges are read from Redis at most once a second
        harness.wait_for(lambda: 'jobmill_queue_paused{queue="mq"} 1'
                         in http("GET", self.base + "/metrics", raw=True)[2], timeout=10,
                         what="jobmill_queue_paused 1 after a pause")
        self.req("POST", "/v1/queues/mq/resume")
        self.assertNotIn(job["id"], text)  # route labels are templates, never ids
        m = re.search(r'jobmill_queue_oldest_age_seconds\{queue="mq"\} (\S+)', text)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(float(m.group(1)), 0.0)
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
