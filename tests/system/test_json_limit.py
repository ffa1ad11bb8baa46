"""test_json_limit.py - the one JSON nesting limit (100 levels) against the
real binaries (issue 9 item 1).

The api: a 100,000-level body (arrays, objects, chunked) gets 400 bad_json
naming the limit, and the api keeps serving; a body exactly at the limit is
stored, and reads back through GET and ?wait on the api's small civetweb
thread stacks. The worker: an exec handler that prints JSON nested past the
limit fails its job permanently with a clear error (before the fix the
result was stored, and reading it back crashed the api); one that prints
exactly the limit succeeds and its result reads back through the api.
"""
import http.client as httpclient
import json
import os
import unittest

import harness
from harness import http, wait_for
from test_worker import WorkerCase

LIMIT = 100
JSON_HDR = {"Content-Type": "application/json"}


def arrays(n, inner=""):
    return "[" * n + inner + "]" * n


def objects(n, inner="0"):
    return '{"k":' * n + inner + "}" * n


class JsonLimitCase(WorkerCase):
    """A redis-server (from WorkerCase) and one jobmill-api on it."""

    def setUp(self):
        super().setUp()
        self.api, self.base = harness.start_api(self.url)
        self.services.append(self.api)

    def post(self, body, path="/v1/jobs"):
        return http("POST", self.base + path, body, headers=JSON_HDR, timeout=30)

    def assert_serving(self):
        self.assertTrue(self.api.alive(), "the api died; log:\n" + self.api.logs()[-3000:])
        st, _, b = self.post('{"type":"echo","payload":{"still":"here"}}')
        self.assertEqual(st, 201, b)
        return b


class ApiTest(JsonLimitCase):

    def assert_too_deep(self, status, body):
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["code"], "bad_json", body)
        self.assertIn("nesting limit of 100 levels", body["error"]["message"])

    def test_hundred_thousand_levels_get_400_and_the_api_keeps_serving(self):
        for payload in (arrays(100000), objects(100000)):
            st, _, b = self.post('{"type":"echo","payload":' + payload + "}")
            self.assert_too_deep(st, b)
            self.assert_serving()
        # the whole body nested, and a batch
        st, _, b = self.post(arrays(100000))
        self.assert_too_deep(st, b)
        st, _, b = self.post('{"jobs":[{"type":"echo","payload":' + arrays(100000) + "}]}",
                             "/v1/jobs/batch")
        self.assert_too_deep(st, b)
        self.assert_serving()

    def test_chunked_deep_body_gets_400(self):
        body = ('{"type":"echo","payload":' + arrays(100000) + "}").encode()
        port = int(self.base.rsplit(":", 1)[1])
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.putrequest("POST", "/v1/jobs")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            self.assert_too_deep(resp.status, json.loads(resp.read()))
        finally:
            conn.close()
        self.assert_serving()

    def test_the_message_names_the_limit_and_the_position(self):
        st, _, b = self.post('{"type":"echo",\n"payload":' + arrays(LIMIT) + "}")
        self.assert_too_deep(st, b)
        self.assertEqual(b["error"]["message"],
                         "JSON nested deeper than the nesting limit of 100 levels "
                         "at line 2 column 110")

    def test_exactly_at_the_limit_is_stored_and_reads_back(self):
        # the body's own object is one level: the payload may nest 99 deep
        for payload in (arrays(LIMIT - 1), objects(LIMIT - 1)):
            st, _, b = self.post('{"type":"nobody-runs-this","payload":' + payload + "}")
            self.assertEqual(st, 201, b)
            self.assertEqual(b["payload"], json.loads(payload))
            st, _, g = http("GET", self.base + "/v1/jobs/" + b["id"])
            self.assertEqual(st, 200, g)
            self.assertEqual(g["payload"], json.loads(payload))
        st, _, b = self.post('{"type":"echo","payload":' + arrays(LIMIT) + "}")
        self.assert_too_deep(st, b)
        # a batch: body, "jobs" and the job object leave 97
        st, _, b = self.post('{"jobs":[{"type":"t","payload":' + objects(LIMIT - 3) + "}]}",
                             "/v1/jobs/batch")
        self.assertEqual(st, 201, b)
        st, _, b = self.post('{"jobs":[{"type":"t","payload":' + objects(LIMIT - 2) + "}]}",
                             "/v1/jobs/batch")
        self.assert_too_deep(st, b)
        self.assert_serving()


class ExecResultTest(JsonLimitCase):

    def printer(self, name, text):
        """An exec handler that prints text (from a file) as its result."""
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            f.write(text)
        return {"exec": ["/bin/cat", path]}

    def test_results_past_the_limit_fail_the_job_and_at_the_limit_read_back(self):
        cfg = self.config({
            "deep": self.printer("deep", arrays(100000)),
            "over": self.printer("over", objects(LIMIT + 1)),
            "at": self.printer("at", arrays(LIMIT, "1")),
        })
        w = self.start_worker(config=cfg)
        ids = {t: self.submit_one({"type": t, "max_attempts": 3}) for t in ("deep", "over", "at")}
        for t in ("deep", "over"):
            j = self.wait_job(ids[t])
            self.assertEqual((j["status"], j["attempts"]), ("failed", 1), j)  # permanent
            self.assertIn("stdout is JSON nested deeper than the nesting limit of 100 levels",
                          j["error"])
            # read back through the api, whose threads have the small stacks
            st, _, g = http("GET", self.base + "/v1/jobs/" + ids[t])
            self.assertEqual((st, g["status"], g["result"]), (200, "failed", None), g)
        j = self.wait_job(ids["at"])
        self.assertEqual(j["status"], "succeeded", j)
        st, _, g = http("GET", self.base + "/v1/jobs/" + ids["at"] + "?wait=1")
        self.assertEqual(st, 200, g)
        self.assertEqual(g["result"], json.loads(arrays(LIMIT, "1")))
        # a listing nests it two levels deeper still
        st, _, page = http("GET", self.base + "/v1/queues/default/jobs?state=succeeded")
        self.assertEqual(st, 200, page)
        self.assertEqual([j["result"] for j in page["jobs"]], [json.loads(arrays(LIMIT, "1"))])
        self.assertTrue(w.alive())
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
