"""workload.py - the chaos suite's client: submits a seeded mix of jobs over
HTTP to the api replicas at a steady rate and logs every request it makes,
with its outcome, as one JSON line (the checker's view of what was
acknowledged).

Mix: exec fence jobs, built-in sleeps, flaky exec jobs that fail twice and
then succeed (retries with backoff), built-in failures (dead letters), delayed
jobs, jobs that expire, long jobs canceled while queued or running,
idempotent resubmits of acknowledged jobs (to the other replica), batches,
and long-polls (GET ?wait) of acknowledged jobs.

Every job's payload names its kind ({"kind": ...}), so the checker can judge
any record it finds, acknowledged or not. Most submits carry an idempotency
key: a submit whose outcome is unknown (connection reset, timeout, 503 while
Redis is down) is retried with the same key until it is acknowledged; one in
five carries none, and an unknown outcome then stays unknown (the checker
allows one unacknowledged record per such job, no more).
"""
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request

from cluster import QUEUES

HTTP_TIMEOUT = 5.0
# kind -> weight
MIX = [("fence", 30), ("sleep", 10), ("flaky", 10), ("fail", 5), ("delay", 10), ("expire", 8),
       ("cancel", 10), ("resubmit", 7), ("batch", 10), ("wait", 6)]


def request(method, url, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One HTTP exchange (JSON in when body is given, JSON out); returns
    (status, parsed body) or raises OSError when no HTTP answer came (the
    outcome is unknown)."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
        status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    except (urllib.error.URLError, socket.timeout, ConnectionError, ValueError) as e:
        raise OSError(str(e))
    try:
        return status, json.loads(payload.decode("utf-8", "replace")) if payload else None
    except ValueError:
        return status, payload.decode("utf-8", "replace")


def get(url, timeout=HTTP_TIMEOUT):
    return request("GET", url, timeout=timeout)


def post(url, body, headers=None, timeout=HTTP_TIMEOUT):
    return request("POST", url, body, headers, timeout)


class Log:
    """The client log: one JSON object per line, thread-safe."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()

    def write(self, **entry):
        entry["t"] = round(time.time(), 3)
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()

    def close(self):
        with self.lock:
            self.f.close()


class Client(threading.Thread):
    """One client thread: an op every 1/rate seconds (no catching up in bursts
    after a stall), until stop is set; then it settles: every keyed submit
    still unknown is retried until acknowledged or the settle deadline."""

    def __init__(self, index, seed, apis, log, rate, shared):
        super().__init__(daemon=True, name="client%d" % index)
        self.index = index
        self.rng = random.Random("%s/client/%d" % (seed, index))
        self.apis = apis          # base URLs
        self.log = log
        self.rate = rate
        self.shared = shared      # {"lock", "acked": [(key, body, id)], "seq"}
        self.stop = threading.Event()
        self.settle_deadline = None
        self.unresolved = []      # keyed submits without an answer: retry callables
        self.error = None

    # ---- helpers ----

    def next_seq(self):
        with self.shared["lock"]:
            self.shared["seq"] += 1
            return self.shared["seq"]

    def api(self, avoid=None):
        choices = [a for a in range(len(self.apis)) if a != avoid] or list(range(len(self.apis)))
        return self.rng.choice(choices)

    def key(self, seq):
        return "chaos-%d-%d" % (self.index, seq) if self.rng.random() < 0.8 else None

    def job(self, kind, seq):
        """The submit body of one job of kind."""
        q = self.rng.choice(QUEUES)
        body = {"queue": q, "payload": {"kind": kind, "n": seq}}
        if kind == "fence":
            body.update(type="fence", max_attempts=25)
        elif kind == "sleep":
            ms = self.rng.randint(100, 1500)
            body.update(type="sleep", max_attempts=25)
            body["payload"]["ms"] = ms
        elif kind == "flaky":
            body.update(type="flaky", max_attempts=25)
        elif kind == "fail":
            body.update(type="fail", max_attempts=self.rng.randint(1, 3))
            body["payload"]["message"] = "chaos: failing on purpose"
        elif kind == "delay":
            delay = round(self.rng.uniform(0.2, 3.0), 3)
            body.update(type="fence", max_attempts=25, delay_s=delay)
            body["payload"]["delay_ms"] = int(delay * 1000)
        elif kind == "expire":
            exp = round(self.rng.uniform(0.1, 2.0), 3)
            body.update(type="fence", max_attempts=25, expires_in_s=exp)
            if self.rng.random() < 0.5:
                d = round(self.rng.uniform(0.0, 2.0 * exp), 3)
                if d > 0:
                    body["delay_s"] = d
                    body["payload"]["delay_ms"] = int(d * 1000)
        elif kind == "cancel":
            body.update(type="long", max_attempts=25)
            if self.rng.random() < 0.3:
                d = round(self.rng.uniform(0.2, 2.0), 3)
                body["delay_s"] = d
                body["payload"]["delay_ms"] = int(d * 1000)
        return body

    # ---- requests ----

    def submit(self, body, key, kind, settle=False):
        """One submit, retried while its outcome is unknown when it has a key.
        Returns the acknowledged job or None."""
        headers = {"Idempotency-Key": key} if key and self.rng.random() < 0.5 else {}
        if key and not headers:
            body = dict(body, idempotency_key=key)
        avoid = None
        backoff = 0.1
        while True:
            a = self.api(avoid)
            try:
                status, resp = post(self.apis[a] + "/v1/jobs", body, headers)
            except OSError as e:
                status, resp = None, str(e)
            unknown = status is None or status >= 500
            entry = {"op": "submit", "kind": kind, "api": a, "key": key, "status": status,
                     "unknown": unknown, "queue": body["queue"]}
            if status in (200, 201) and isinstance(resp, dict):
                entry.update(id=resp.get("id"), job_status=resp.get("status"))
                self.log.write(**entry)
                return resp
            entry["error"] = resp if not isinstance(resp, dict) else resp.get("error")
            self.log.write(**entry)
            if not unknown or not key:
                return None
            if not self.keep_trying(settle):
                self.unresolved.append(lambda: self.submit(body, key, kind, settle=True))
                return None
            avoid = a
            self.pause(backoff)
            backoff = min(1.0, backoff * 2)

    def batch(self, seq):
        n = self.rng.randint(2, 8)
        jobs, keys, kinds = [], [], []
        keyed = self.rng.random() < 0.8
        for i in range(n):
            kind = self.rng.choice(["fence", "fence", "sleep", "flaky", "delay"])
            j = self.job(kind, seq * 100 + i)
            k = "chaos-%d-%d-b%d" % (self.index, seq, i) if keyed else None
            if k:
                j["idempotency_key"] = k
            jobs.append(j)
            keys.append(k)
            kinds.append(kind)
        self.send_batch(jobs, keys, kinds, keyed)

    def send_batch(self, jobs, keys, kinds, keyed, settle=False):
        avoid, backoff = None, 0.1
        while True:
            a = self.api(avoid)
            try:
                status, resp = post(self.apis[a] + "/v1/jobs/batch", {"jobs": jobs})
            except OSError as e:
                status, resp = None, str(e)
            unknown = status is None or status >= 500
            entry = {"op": "batch", "api": a, "keys": keys, "kinds": kinds, "status": status,
                     "unknown": unknown, "n": len(jobs), "queues": [j["queue"] for j in jobs]}
            if status == 201 and isinstance(resp, dict):
                entry["ids"] = [j.get("id") for j in resp.get("jobs", [])]
                self.log.write(**entry)
                return
            entry["error"] = resp if not isinstance(resp, dict) else resp.get("error")
            self.log.write(**entry)
            if not unknown or not keyed:
                return
            if not self.keep_trying(settle):
                self.unresolved.append(lambda: self.send_batch(jobs, keys, kinds, keyed, True))
                return
            avoid = a
            self.pause(backoff)
            backoff = min(1.0, backoff * 2)

    def cancel(self, job_id):
        avoid, backoff = None, 0.1
        while True:
            a = self.api(avoid)
            try:
                status, resp = post(self.apis[a] + "/v1/jobs/%s/cancel" % job_id, None)
            except OSError as e:
                status, resp = None, str(e)
            unknown = status is None or status >= 500
            entry = {"op": "cancel", "api": a, "id": job_id, "status": status, "unknown": unknown}
            if isinstance(resp, dict) and status == 200:
                entry.update(job_status=resp.get("status"),
                             cancel_requested=resp.get("cancel_requested"))
            elif resp is not None:
                entry["error"] = resp if not isinstance(resp, dict) else resp.get("error")
            self.log.write(**entry)
            if not unknown or not self.keep_trying(False):
                return
            avoid = a
            self.pause(backoff)
            backoff = min(1.0, backoff * 2)

    def wait(self, job_id):
        """One long-poll of 0-2 s; the answer is logged (the checker holds a
        terminal state it reports to be final)."""
        a = self.api()
        secs = round(self.rng.uniform(0.0, 2.0), 3)
        try:
            status, resp = get(self.apis[a] + "/v1/jobs/%s?wait=%s" % (job_id, secs))
        except OSError as e:
            status, resp = None, str(e)
        entry = {"op": "wait", "api": a, "id": job_id, "status": status, "wait": secs,
                 "unknown": status is None or status >= 500}
        if status == 200 and isinstance(resp, dict):
            entry["job_status"] = resp.get("status")
        elif resp is not None:
            entry["error"] = resp if not isinstance(resp, dict) else resp.get("error")
        self.log.write(**entry)

    def keep_trying(self, settle):
        if settle:
            return time.monotonic() < self.settle_deadline
        return not self.stop.is_set()

    def pause(self, s):
        """Client pacing (part of the workload, not a test wait)."""
        self.stop.wait(s) if not self.stop.is_set() else time.sleep(s)

    # ---- the loop ----

    def one_op(self):
        kinds, weights = zip(*MIX)
        kind = self.rng.choices(kinds, weights)[0]
        seq = self.next_seq()
        if kind == "batch":
            self.batch(seq)
            return
        if kind == "wait":
            with self.shared["lock"]:
                pool = self.shared["acked"]
                pick = pool[self.rng.randrange(len(pool))] if pool else None
            if pick is not None:
                self.wait(pick[2])
            return
        if kind == "resubmit":
            with self.shared["lock"]:
                pool = self.shared["acked"]
                pick = pool[self.rng.randrange(len(pool))] if pool else None
            if pick is None:
                kind = "fence"
            else:
                key, body, _id, orig_kind = pick
                self.submit(body, key, orig_kind + ":resubmit")
                return
        body = self.job(kind, seq)
        key = self.key(seq)
        job = self.submit(body, key, kind)
        if job is None:
            return
        if key:
            with self.shared["lock"]:
                self.shared["acked"].append((key, body, job["id"], kind))
                if len(self.shared["acked"]) > 2000:
                    del self.shared["acked"][:1000]
        if kind == "cancel":
            self.pause(self.rng.uniform(0.0, 1.5))
            self.cancel(job["id"])

    def run(self):
        try:
            interval = 1.0 / self.rate
            next_t = time.monotonic()
            while not self.stop.is_set():
                self.one_op()
                next_t += interval
                now = time.monotonic()
                if next_t < now - 1.0:
                    next_t = now
                self.stop.wait(max(0.0, next_t - now))
            # settle: resolve every keyed submit whose outcome is unknown
            pending, self.unresolved = self.unresolved, []
            for retry in pending:
                retry()
        except Exception as e:  # noqa: BLE001 - reported by the runner
            self.error = e
            raise
