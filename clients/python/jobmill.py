"""jobmill.py - a Python client for jobmill, standard library only (urllib, json).

Two parts (the protocol is docs/workers-http.md):

* ``Client``: submit jobs, wait for them (``submit(..., wait=S)`` or
  ``wait(id)``), read, cancel and retry them, read a job's log lines
  (``logs(id)``), and the raw HTTP worker calls (claim, heartbeat, complete,
  fail, progress, log).
* ``Worker``: a long-lived worker in Python. Handlers are registered per job
  type with a decorator; the worker claims jobs (long-polling), runs each in a
  thread, renews every lease it holds from one heartbeat thread, and commits
  the handler's return value (``complete``) or exception (``fail``; raise
  ``PermanentError`` for a failure that must not be retried). SIGTERM or
  SIGINT stops claiming, lets the jobs in flight finish (up to ``grace_s``)
  and returns from ``run()``.

Every commit carries the claim's lease token: when the lease was lost (the
worker stalled past its lease and the janitor gave the job to someone else),
the api refuses it with 409 ``lease_lost`` and nothing changes; the worker
logs it and moves on.

    import jobmill
    w = jobmill.Worker("http://127.0.0.1:8080", queues=["default"], concurrency=4)

    @w.handler("resize")
    def resize(job):
        job.progress(50, "half way")
        job.log("resized to %d" % job.payload["size"])
        return {"ok": True, "size": job.payload["size"]}

    w.run()
"""
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Client", "Worker", "Job", "JobmillError", "LeaseLost", "PermanentError"]

TERMINAL = ("succeeded", "failed", "canceled", "expired")


class JobmillError(Exception):
    """An error answer of the api (status, code, message, field), or a
    transport failure (status 0, code "unreachable")."""

    def __init__(self, status, code, message, field=None):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status, self.code, self.message, self.field = status, code, message, field


class LeaseLost(JobmillError):
    """409 lease_lost: the job is no longer running under this lease token."""


class PermanentError(Exception):
    """Raise from a handler for a failure that must not be retried."""


def _log(level, msg, **fields):
    rec = {"ts": round(time.time(), 3), "level": level, "msg": msg}
    rec.update(fields)
    sys.stderr.write(json.dumps(rec) + "\n")
    sys.stderr.flush()


class Client:
    """The jobmill HTTP API. url: "http://host:port"; token: a bearer token
    (api.tokens_file) or None. Methods raise JobmillError on error answers."""

    def __init__(self, url, token=None, timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method, path, body=None, timeout=None):
        """One call; returns (status, parsed JSON). Raises JobmillError."""
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise JobmillError(0, "unreachable", str(e))
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            raise JobmillError(status, "bad_answer", raw[:200].decode("utf-8", "replace"))
        if status >= 400:
            err = (out or {}).get("error", {}) if isinstance(out, dict) else {}
            cls = LeaseLost if err.get("code") == "lease_lost" else JobmillError
            raise cls(status, err.get("code", "http_%d" % status), err.get("message", ""),
                      err.get("field"))
        return status, out

    # ---- jobs ----

    def submit(self, type, payload=None, queue="default", wait=None, **fields):
        """Submits one job; returns it. wait=S (0-60 s) answers with the job
        once it ends or S seconds pass. fields: max_attempts, timeout_s,
        delay_s, run_at, expires_in_s, result_ttl_s, idempotency_key."""
        body = {"queue": queue, "type": type, "payload": payload}
        body.update(fields)
        path = "/v1/jobs"
        if wait is not None:
            path += "?wait=%s" % _secs(wait)
        return self.request("POST", path, body, timeout=self.timeout + (wait or 0))[1]

    def get(self, job_id, wait=None):
        path = "/v1/jobs/" + urllib.parse.quote(job_id, safe="")
        if wait is not None:
            path += "?wait=%s" % _secs(wait)
        return self.request("GET", path, timeout=self.timeout + (wait or 0))[1]

    def wait(self, job_id, timeout=None):
        """Waits until the job ends (or timeout seconds, None = forever);
        returns the job as it is then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 60.0 if deadline is None else min(60.0, deadline - time.monotonic())
            job = self.get(job_id, wait=max(0.0, left))
            if job["status"] in TERMINAL or (deadline is not None and
                                             time.monotonic() >= deadline):
                return job

    def cancel(self, job_id):
        return self.request("POST", "/v1/jobs/%s/cancel" % urllib.parse.quote(job_id))[1]

    def retry(self, job_id):
        return self.request("POST", "/v1/jobs/%s/retry" % urllib.parse.quote(job_id))[1]

    def workers(self):
        return self.request("GET", "/v1/workers")[1]["workers"]

    # ---- batches (docs/batches.md) ----

    def submit_batch(self, jobs, queue="default", callback=None, **fields):
        """Submits many jobs as one batch on queue, all or nothing; returns
        the batch. jobs: job specs (dicts with type, payload, ...); callback:
        a job spec created once when the last job ends. fields:
        idempotency_key, result_ttl_s."""
        body = {"queue": queue, "jobs": list(jobs)}
        if callback is not None:
            body["callback"] = callback
        body.update(fields)
        return self.request("POST", "/v1/batches", body)[1]

    def batch(self, batch_id, wait=None, results=False, offset=0, limit=100):
        """Reads a batch (counts, progress); results=True adds a page of its
        members' results in submission order; wait=S long-polls until done."""
        path = "/v1/batches/" + urllib.parse.quote(batch_id, safe="")
        query = []
        if wait is not None:
            query.append("wait=%s" % _secs(wait))
        if results:
            query.append("results=1&offset=%d&limit=%d" % (offset, limit))
        if query:
            path += "?" + "&".join(query)
        return self.request("GET", path, timeout=self.timeout + (wait or 0))[1]

    def batch_results(self, batch_id, page=1000):
        """Yields every member's result entry ({"id", "status", "result",
        "error"}) in submission order, a page at a time."""
        offset = 0
        while offset is not None:
            b = self.batch(batch_id, results=True, offset=offset, limit=page)
            for r in b["results"]:
                yield r
            offset = b["next_offset"]

    # ---- the HTTP worker protocol ----

    def claim(self, queue, worker, max=1, wait_s=0, **fields):
        """Claims up to max jobs, long-polling up to wait_s seconds; returns
        the jobs, each with its lease_token and lease_deadline."""
        body = {"worker": worker, "max": max, "wait_s": wait_s}
        body.update(fields)
        path = "/v1/queues/%s/claim" % urllib.parse.quote(queue, safe="")
        return self.request("POST", path, body, timeout=self.timeout + wait_s)[1]["jobs"]

    def _fenced(self, job_id, what, token, body):
        body = dict(body, lease_token=token)
        return self.request("POST", "/v1/jobs/%s/%s" % (urllib.parse.quote(job_id, safe=""),
                                                        what), body)[1]

    def heartbeat(self, job_id, token, **fields):
        return self._fenced(job_id, "heartbeat", token, fields)

    def complete(self, job_id, token, result=None):
        return self._fenced(job_id, "complete", token, {"result": result})

    def fail(self, job_id, token, error, retryable=True):
        return self._fenced(job_id, "fail", token, {"error": str(error), "retryable": retryable})

    def progress(self, job_id, token, progress, message=None):
        body = {"progress": progress}
        if message is not None:
            body["message"] = message
        return self._fenced(job_id, "progress", token, body)

    def log(self, job_id, token, lines):
        """Appends lines (a string or a list of 1-1000 strings) to a claimed
        job's log (POST /v1/jobs/{id}/logs); returns {"id", "next"}."""
        if isinstance(lines, str):
            lines = [lines]
        return self._fenced(job_id, "logs", token, {"lines": list(lines)})

    def logs(self, job_id, since=0, limit=None):
        """Reads a page of a job's log lines: {"lines": [{"n", "ts", "line"}],
        "first", "next", "total", "status"}; pass next as since for more."""
        q = "?since=%d" % since
        if limit is not None:
            q += "&limit=%d" % limit
        return self.request("GET", "/v1/jobs/%s/logs%s" % (urllib.parse.quote(job_id, safe=""),
                                                           q))[1]


def _secs(v):
    return ("%.3f" % float(v)).rstrip("0").rstrip(".") or "0"


class Job:
    """A claimed job as a handler sees it."""

    def __init__(self, worker, raw):
        self._worker = worker
        self.raw = raw
        self.id = raw["id"]
        self.queue = raw["queue"]
        self.type = raw["type"]
        self.payload = raw.get("payload")
        self.attempt = raw.get("attempts", 1)
        self.max_attempts = raw.get("max_attempts")
        self.lease_token = raw["lease_token"]
        self.lease_ms = int(raw.get("lease_ms") or 15000)
        self.cancel_requested = threading.Event()  # set by a heartbeat
        self.lease_lost = threading.Event()  # set by a heartbeat: stop, commit is refused

    def progress(self, progress, message=None):
        """Reports progress (0-100) and an optional message. Returns False
        when the lease is lost (nothing was stored)."""
        try:
            self._worker.client.progress(self.id, self.lease_token, progress, message)
            return True
        except LeaseLost:
            self.lease_lost.set()
            return False
        except JobmillError as e:
            _log("warn", "progress not stored", job_id=self.id, error=str(e))
            return False

    def log(self, *lines):
        """Appends lines to the job's log (readable with GET
        /v1/jobs/{id}/logs, followed live with ?follow=1). Returns False
        when the lease is lost (nothing was stored)."""
        try:
            self._worker.client.log(self.id, self.lease_token, [str(l) for l in lines])
            return True
        except LeaseLost:
            self.lease_lost.set()
            return False
        except JobmillError as e:
            _log("warn", "log lines not stored", job_id=self.id, error=str(e))
            return False

    def should_stop(self):
        """True when the handler should give up: cancel requested, lease
        lost, or the worker is stopping without grace left."""
        return self.cancel_requested.is_set() or self.lease_lost.is_set()


class Worker:
    """A jobmill worker in Python over the HTTP protocol.

    url, token: the api. queues: names in priority order. concurrency: jobs
    in flight. lease_ms: the lease asked for (None = the api's
    worker.lease_ms); leases are renewed every third of it. wait_s: the
    claim long-poll. grace_s: how long a stop waits for jobs in flight.
    """

    def __init__(self, url, queues=("default",), concurrency=1, worker_id=None, token=None,
                 lease_ms=None, wait_s=10.0, grace_s=25.0):
        self.client = Client(url, token=token)
        self.queues = list(queues)
        self.concurrency = max(1, int(concurrency))
        host = socket.gethostname()
        self.host = host[:128] or "python"
        self.worker_id = worker_id or re.sub(r"[^A-Za-z0-9_.:@-]", "-", "%s-%d-%04x" % (
            self.host, os.getpid(), random.getrandbits(16)))[:128]
        self.lease_ms = lease_ms
        self.wait_s = wait_s
        self.grace_s = grace_s
        self.handlers = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._held = {}  # id -> Job
        self._slots = threading.Semaphore(self.concurrency)
        self._threads = []
        self.stats = {"claimed": 0, "succeeded": 0, "failed": 0, "lease_lost": 0}

    # ---- handlers ----

    def handler(self, job_type):
        """Decorator: @worker.handler("type") registers fn(job) -> result."""
        def register(fn):
            self.handlers[job_type] = fn
            return fn
        return register

    # ---- lifecycle ----

    def stop(self):
        """Stops claiming; run() returns once the jobs in flight finish."""
        self._stop.set()

    def run(self):
        """Claims and runs jobs until stop() or SIGTERM/SIGINT (handlers are
        installed when called from the main thread). Returns 0."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        hb = threading.Thread(target=self._heartbeats, name="jobmill-heartbeat", daemon=True)
        hb.start()
        _log("info", "worker started", worker=self.worker_id, queues=self.queues,
             concurrency=self.concurrency)
        turn, backoff = 0, 0.1
        while not self._stop.is_set():
            free = self._free_slots()
            if free == 0:
                continue
            try:
                jobs = self._claim_round(free, turn)
                backoff = 0.1
            except JobmillError as e:
                _log("warn", "claim failed; retrying", error=str(e))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                jobs = []
            turn += 1
            for raw in jobs:
                self._start(raw)
            self._release_unused(free - len(jobs))
        self._drain()
        _log("info", "worker stopped", worker=self.worker_id, **self.stats)
        return 0

    def _free_slots(self):
        """Waits (up to a second, so a stop is seen) for at least one free
        slot and takes every free one; returns how many."""
        if not self._slots.acquire(timeout=1.0):
            return 0
        n = 1
        while n < self.concurrency and self._slots.acquire(blocking=False):
            n += 1
        return n

    def _release_unused(self, n):
        for _ in range(max(0, n)):
            self._slots.release()

    def _claim_round(self, free, turn):
        """Every queue in order without waiting; when all are empty,
        long-polls one of them (in turn)."""
        extra = {"host": self.host, "pid": os.getpid(), "concurrency": self.concurrency,
                 "busy": len(self._held), "queues": self.queues[:16]}
        if self.lease_ms:
            extra["lease_ms"] = self.lease_ms
        for q in self.queues:
            jobs = self.client.claim(q, self.worker_id, max=free, wait_s=0, **extra)
            if jobs:
                return jobs
        if self._stop.is_set():
            return []
        q = self.queues[turn % len(self.queues)]
        return self.client.claim(q, self.worker_id, max=free, wait_s=self.wait_s, **extra)

    def _start(self, raw):
        job = Job(self, raw)
        with self._lock:
            self._held[job.id] = job
            self.stats["claimed"] += 1
        t = threading.Thread(target=self._run_one, args=(job,), name="jobmill-" + job.id,
                             daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _run_one(self, job):
        try:
            fn = self.handlers.get(job.type)
            try:
                if fn is None:
                    raise PermanentError('no handler for type "%s"' % job.type)
                result = fn(job)
                self._commit(job, "complete", result=result)
            except PermanentError as e:
                self._commit(job, "fail", error=str(e) or "failed", retryable=False)
            except Exception as e:  # noqa: BLE001 - any handler error is a failed attempt
                self._commit(job, "fail", error="%s: %s" % (type(e).__name__, e), retryable=True)
        finally:
            with self._lock:
                self._held.pop(job.id, None)
            self._slots.release()

    def _commit(self, job, kind, **body):
        """Commits an outcome, retrying transport errors and 5xx answers
        until the lease would have run out; a 409 lease_lost is final."""
        deadline = time.monotonic() + job.lease_ms / 1000.0
        delay = 0.1
        while True:
            try:
                if kind == "complete":
                    out = self.client.complete(job.id, job.lease_token, body["result"])
                else:
                    out = self.client.fail(job.id, job.lease_token, body["error"],
                                           body["retryable"])
                key = "succeeded" if kind == "complete" else "failed"
                with self._lock:
                    self.stats[key] += 1
                _log("info", "job " + kind, job_id=job.id, status=out.get("status"))
                return
            except LeaseLost as e:
                with self._lock:
                    self.stats["lease_lost"] += 1
                _log("warn", "commit refused: lease lost", job_id=job.id, http_status=e.status,
                     code=e.code)
                return
            except JobmillError as e:
                if (0 < e.status < 500) or time.monotonic() + delay >= deadline:
                    _log("error", "commit failed; the lease expiry gives the job back",
                         job_id=job.id, error=str(e))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _heartbeats(self):
        """Renews every held lease every third of the shortest lease; marks
        a job whose lease is lost or whose cancel was requested."""
        while True:
            with self._lock:
                jobs = list(self._held.values())
            period = min([j.lease_ms for j in jobs] or [self.lease_ms or 15000]) / 3000.0
            for job in jobs:
                if job.lease_lost.is_set():
                    continue
                try:
                    fields = {"worker": self.worker_id, "busy": len(jobs)}
                    if self.lease_ms:
                        fields["lease_ms"] = self.lease_ms
                    out = self.client.heartbeat(job.id, job.lease_token, **fields)
                    if out.get("cancel_requested"):
                        job.cancel_requested.set()
                except LeaseLost:
                    job.lease_lost.set()
                    _log("warn", "lease lost", job_id=job.id)
                except JobmillError as e:
                    _log("warn", "heartbeat failed", job_id=job.id, error=str(e))
            time.sleep(max(0.05, period))

    def _drain(self):
        deadline = time.monotonic() + self.grace_s
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in self._threads if t.is_alive()]
        if left:
            _log("warn", "stopping with jobs in flight; their leases will expire",
                 jobs=len(left))
