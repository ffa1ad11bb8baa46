"""checker.py - the chaos suite's checker. After the quiet period it reads
Redis (every job record, every index, every counts hash, the idempotency
keys), the record file the exec handler appends to, the client's log and the
workers' and janitors' logs, and checks, for every job:

  lost            every job the api acknowledged exists and is terminal
  terminal_once   a record's id is in exactly the index of its state (one
                  terminal set; never also active, scheduled or live in
                  pending), and no index entry lacks a record
  double          at most one terminal outcome was committed for it (the
                  workers' "job outcome" lines)
  stale_result    a succeeded exec job's result carries the highest fence the
                  record file saw for it, which is also the record's fence
  rerun           no claim (fence) of a job ran twice
  over_attempts   attempts <= max_attempts, and the claims that ran <=
                  attempts + the attempts given back (drain/abandon releases)
  early_retry     a retry started no sooner than its backoff after the failed
                  attempt started; a delayed job no sooner than its delay
  canceled_result a canceled job has no result; a cancel answered "canceled"
                  stayed canceled
  read            a read (GET ?wait) that answered a terminal state answered
                  the job's final state
  idem_dup        an idempotency key names one job: every answer for it, the
                  key in Redis and the records carrying it agree
  counts          every queue's counts hash equals its indexes and its records
  bad_state       each kind ended in a state it can end in (a fence job
                  failed only with its attempts used up, an expired job never
                  started, a canceled job was asked to cancel, ...)
  phantom         records nobody acknowledged are no more than the jobs of
                  submits whose outcome stayed unknown
  http            no answer other than 2xx, 409 (cancel of a finished job) or
                  503 (Redis unavailable)
  crash           no service died unless the nemesis killed it, no sanitizer
                  report, every service stopped cleanly (exit 0) at the end
  drift           the janitors' reconciler never repaired anything

Violations carry the offending job's history: the client's requests, the
record file's lines, the workers' outcome lines and the record.
"""
import collections
import json
import os

TERMINAL = ("succeeded", "failed", "canceled", "expired")
STATES = ("queued", "scheduled", "running") + TERMINAL
EXEC_TYPES = ("fence", "long", "flaky")
CHECKS = ("lost", "terminal_once", "double", "stale_result", "rerun", "over_attempts",
          "early_retry", "canceled_result", "read", "idem_dup", "counts", "bad_state", "phantom",
          "http", "crash", "drift")


def crc16(data):
    """CRC16-CCITT (XMODEM), the one Redis Cluster uses for slots."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def slot_tag(queue):
    return "%04x" % (crc16(queue.encode()) % 16384)


def pipeline(client, commands, chunk=500):
    """Sends commands in chunks over one RESP connection; returns replies
    (an exception object in place of an error reply)."""
    out = []
    for i in range(0, len(commands), chunk):
        part = commands[i:i + chunk]
        buf = []
        for args in part:
            buf.append(b"*%d\r\n" % len(args))
            for a in args:
                b = a if isinstance(a, bytes) else str(a).encode()
                buf.append(b"$%d\r\n%s\r\n" % (len(b), b))
        client.sock.sendall(b"".join(buf))
        for _ in part:
            try:
                out.append(client._reply())
            except RuntimeError as e:
                out.append(e)
    return out


def read_jsonl(path):
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def backoff_min_ms(attempt, base, cap):
    d = base
    for _ in range(1, max(1, attempt)):
        if d >= cap:
            break
        d *= 2
    return min(d, cap) * 0.5


class Checker:

    def __init__(self, redis_client, record_path, client_log, worker_logs, janitor_logs,
                 backoff_base_ms, backoff_max_ms, prefix="jm"):
        self.r = redis_client
        self.record_path = record_path
        self.client_log = client_log
        self.worker_logs = worker_logs
        self.janitor_logs = janitor_logs
        self.base, self.cap = backoff_base_ms, backoff_max_ms
        self.prefix = prefix
        self.violations = collections.defaultdict(list)   # check -> [(job id or None, text)]
        self.stats = {}

    def bad(self, check, job_id, text):
        self.violations[check].append((job_id, text))

    # ---- loading ----

    def load_redis(self):
        r, p = self.r, self.prefix
        keys, cursor = [], "0"
        while True:
            cursor, batch = r("SCAN", cursor, "MATCH", "%s:{*}:job:*" % p, "COUNT", 1000)
            keys += batch
            if cursor == "0":
                break
        replies = pipeline(r, [("HGETALL", k) for k in keys])
        self.records = {}
        for k, fv in zip(keys, replies):
            if isinstance(fv, Exception) or not fv:
                continue
            self.records[k.rsplit(":", 1)[1]] = dict(zip(fv[0::2], fv[1::2]))
        self.queues = sorted(r("SMEMBERS", "%s:{registry}:queues" % p) or [])
        self.index = {}
        for q in self.queues:
            sp = "%s:{%s}:q:%s:" % (p, slot_tag(q), q)
            cmds = [("HGETALL", sp + "counts"), ("LRANGE", sp + "pending", 0, -1)]
            names = ["active", "scheduled", "deadlines"] + list(TERMINAL)
            cmds += [("ZRANGE", sp + n, 0, -1) for n in names]
            rep = pipeline(r, cmds)
            counts = dict(zip(rep[0][0::2], rep[0][1::2]))
            self.index[q] = {"counts": {k: int(v) for k, v in counts.items()},
                             "pending": rep[1]}
            for n, v in zip(names, rep[2:]):
                self.index[q][n] = v

    def load_files(self):
        self.runs = collections.defaultdict(list)     # id -> [(fence, attempt, ms, mode)]
        with open(self.record_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 5:
                    self.bad("rerun", None, "malformed record line %r" % line)
                    continue
                self.runs[parts[0]].append((int(parts[1]), int(parts[2]), int(parts[3]), parts[4]))
        self.client = read_jsonl(self.client_log)
        self.outcomes = collections.defaultdict(list)  # id -> [log line]
        for path in self.worker_logs:
            for e in read_jsonl(path):
                if e.get("msg") == "job outcome" and e.get("job_id"):
                    e["_log"] = os.path.basename(path)
                    self.outcomes[e["job_id"]].append(e)
        self.drift_lines = []
        for path in self.janitor_logs:
            for e in read_jsonl(path):
                if "repaired" in str(e.get("msg", "")):
                    self.drift_lines.append((os.path.basename(path), e))

    # ---- history of one job (for reports) ----

    def history(self, job_id):
        out = ["history of job %s:" % job_id]
        rec = self.records.get(job_id)
        key = rec.get("idem") if rec else None
        for e in self.client:
            if e.get("id") == job_id or job_id in (e.get("ids") or []) or \
                    (key and (e.get("key") == key or key in (e.get("keys") or []))):
                out.append("  client  " + json.dumps(e, sort_keys=True))
        for fence, attempt, ms, mode in self.runs.get(job_id, []):
            out.append("  ran     fence=%d attempt=%d start_ms=%d mode=%s" % (fence, attempt, ms, mode))
        for e in self.outcomes.get(job_id, []):
            keep = {k: e.get(k) for k in ("ts", "worker", "attempt", "fence", "status", "error",
                                          "duration_ms", "_log") if k in e}
            out.append("  outcome " + json.dumps(keep, sort_keys=True))
        out.append("  record  " + (json.dumps(rec, sort_keys=True) if rec else "(none in Redis)"))
        return "\n".join(out)

    # ---- checks ----

    def check(self, service_problems=()):
        self.load_redis()
        self.load_files()
        for p in service_problems:
            self.bad("crash", None, p)
        for name, e in self.drift_lines:
            self.bad("drift", None, "%s: %s" % (name, json.dumps(e, sort_keys=True)))
        self.check_client()
        self.check_indexes()
        for job_id, rec in self.records.items():
            self.check_job(job_id, rec)
        return self.violations

    def check_client(self):
        acked = {}                                    # id -> kind
        key_ids = collections.defaultdict(set)        # key -> ids acknowledged
        self.cancels = collections.defaultdict(list)  # id -> cancel answers
        cancel_tried = set()
        unknown_unkeyed = 0
        http_bad = 0
        self.reads = []
        codes = collections.Counter()
        for e in self.client:
            op = e.get("op")
            if op not in ("submit", "batch", "cancel", "wait"):
                continue
            st = e.get("status")
            codes[str(st)] += 1
            if op == "wait":
                if st not in (200, 503, None):
                    self.bad("http", e.get("id"), "unexpected answer: %s"
                             % json.dumps(e, sort_keys=True))
                elif e.get("job_status") in TERMINAL:
                    self.reads.append(e)
                continue
            ok = st in (200, 201) or (op == "cancel" and st == 409) or st is None or st == 503
            if not ok:
                http_bad += 1
                self.bad("http", e.get("id"), "unexpected answer: %s" % json.dumps(e, sort_keys=True))
            if op == "submit":
                if st in (200, 201) and e.get("id"):
                    acked[e["id"]] = e.get("kind")
                    if e.get("key"):
                        key_ids[e["key"]].add(e["id"])
                elif e.get("unknown") and not e.get("key"):
                    unknown_unkeyed += 1
            elif op == "batch":
                if st == 201 and e.get("ids"):
                    for i, (job_id, key) in enumerate(zip(e["ids"], e.get("keys") or [])):
                        acked[job_id] = (e.get("kinds") or ["?"] * (i + 1))[i]
                        if key:
                            key_ids[key].add(job_id)
                elif e.get("unknown") and not any(e.get("keys") or []):
                    unknown_unkeyed += e.get("n", 0)
            elif op == "cancel":
                cancel_tried.add(e.get("id"))
                if st == 200:
                    self.cancels[e["id"]].append(e)
        self.acked, self.key_ids, self.cancel_tried = acked, key_ids, cancel_tried
        self.stats.update(jobs=len(acked), http=dict(codes), unknown_unkeyed=unknown_unkeyed)

        # reads: a terminal state answered is the final one
        for e in self.reads:
            rec = self.records.get(e["id"])
            if rec is None or rec.get("status") != e["job_status"]:
                self.bad("read", e["id"], "a read answered %s, the job ended %s"
                         % (e["job_status"], rec.get("status") if rec else "(gone)"))
        # lost: every acknowledged job exists and is terminal
        for job_id in acked:
            rec = self.records.get(job_id)
            if rec is None:
                self.bad("lost", job_id, "acknowledged job %s is not in Redis" % job_id)
            elif rec.get("status") not in TERMINAL:
                self.bad("lost", job_id, "acknowledged job %s is %s after the quiet period"
                         % (job_id, rec.get("status")))
        # idempotency: one job per key
        client_keys = set()
        for e in self.client:
            if e.get("key"):
                client_keys.add(e["key"])
            for k in e.get("keys") or []:
                if k:
                    client_keys.add(k)
        by_key = collections.defaultdict(list)
        for job_id, rec in self.records.items():
            if rec.get("idem"):
                by_key[rec["idem"]].append(job_id)
        for key, ids in key_ids.items():
            if len(ids) > 1:
                self.bad("idem_dup", sorted(ids)[0], "key %s answered with %d jobs: %s"
                         % (key, len(ids), sorted(ids)))
            if len(by_key.get(key, [])) > 1:
                self.bad("idem_dup", sorted(ids)[0], "key %s is on %d records: %s"
                         % (key, len(by_key[key]), sorted(by_key[key])))
        if key_ids:
            # one global key space on a single Redis (under Redis Cluster a
            # key lives in its job's queue: q:<q>:idem:<key>)
            ks = sorted(key_ids)

            def idem_key(k):
                return "%s:idem:%s" % (self.prefix, k)
            vals = pipeline(self.r, [("GET", idem_key(k)) for k in ks])
            for k, v in zip(ks, vals):
                ids = key_ids[k]
                if len(ids) == 1 and v != next(iter(ids)):
                    self.bad("idem_dup", next(iter(ids)), "key %s maps to %r in Redis, the api "
                             "answered %s" % (k, v, next(iter(ids))))
        # phantoms: records nobody acknowledged
        orphans_unkeyed = 0
        for job_id, rec in self.records.items():
            if job_id in acked:
                continue
            key = rec.get("idem")
            if key:
                if key not in client_keys:
                    self.bad("phantom", job_id, "record %s carries key %s no client sent"
                             % (job_id, key))
                elif key_ids.get(key):
                    self.bad("idem_dup", job_id, "record %s carries key %s, answered as %s"
                             % (job_id, key, sorted(key_ids[key])))
            else:
                orphans_unkeyed += 1
        if orphans_unkeyed > unknown_unkeyed:
            self.bad("phantom", None, "%d unacknowledged records without a key, but only %d jobs "
                     "were submitted without a key and no answer" % (orphans_unkeyed,
                                                                     unknown_unkeyed))
        self.stats["unacknowledged"] = sum(1 for j in self.records if j not in acked)

    def check_indexes(self):
        where = collections.defaultdict(list)    # id -> [index names]
        for q in self.queues:
            ix = self.index[q]
            live_pending = [j for j in ix["pending"]
                            if self.records.get(j, {}).get("status") == "queued"
                            and self.records[j].get("queue") == q]
            dup = [j for j, n in collections.Counter(live_pending).items() if n > 1]
            for j in dup:
                self.bad("terminal_once", j, "queued job %s is in pending %d times"
                         % (j, live_pending.count(j)))
            for j in set(live_pending):
                where[j].append("queued")
            for name in ("active", "scheduled") + TERMINAL:
                state = "running" if name == "active" else name
                for j in ix[name]:
                    where[j].append(state)
                    if j not in self.records:
                        self.bad("terminal_once", j, "%s index of queue %s holds %s, which has "
                                 "no record" % (name, q, j))
            for j in ix["deadlines"]:
                st = self.records.get(j, {}).get("status")
                if st not in ("queued", "scheduled"):
                    self.bad("terminal_once", j, "deadlines of %s holds %s, which is %s"
                             % (q, j, st))
            # counts == indexes == records
            by_records = collections.Counter(r.get("status") for r in self.records.values()
                                             if r.get("queue") == q)
            by_index = {"queued": len(set(live_pending)), "running": len(ix["active"]),
                        "scheduled": len(ix["scheduled"])}
            for t in TERMINAL:
                by_index[t] = len(ix[t])
            for st in STATES:
                c = ix["counts"].get(st, 0)
                if not (c == by_index[st] == by_records.get(st, 0)):
                    self.bad("counts", None, "queue %s %s: counts %d, index %d, records %d"
                             % (q, st, c, by_index[st], by_records.get(st, 0)))
        for job_id, rec in self.records.items():
            st = rec.get("status")
            got = where.get(job_id, [])
            if got != [st]:
                self.bad("terminal_once", job_id, "job %s is %s but indexed as %s"
                         % (job_id, st, got))

    def check_job(self, job_id, rec):
        st = rec.get("status")
        typ = rec.get("type")
        try:
            payload = json.loads(rec.get("payload") or "null")
        except ValueError:
            payload = None
        kind = payload.get("kind") if isinstance(payload, dict) else None
        attempts = int(rec.get("attempts") or 0)
        max_attempts = int(rec.get("max_attempts") or 0)
        fence = int(rec.get("fence") or 0)
        result = rec.get("result")
        runs = self.runs.get(job_id, [])
        outs = self.outcomes.get(job_id, [])

        # double: one terminal outcome at most
        terminal_outs = [o for o in outs if o.get("status") in ("succeeded", "failed", "canceled")]
        if len(terminal_outs) > 1:
            self.bad("double", job_id, "%d terminal outcomes committed for %s"
                     % (len(terminal_outs), job_id))
        succ = [o for o in terminal_outs if o.get("status") == "succeeded"]
        if succ and (st != "succeeded" or any(int(o.get("fence", 0)) != fence for o in succ)):
            self.bad("double", job_id, "%s: a success was committed under fence %s but the "
                     "record is %s with fence %d" % (job_id, [o.get("fence") for o in succ], st,
                                                      fence))

        # claims that ran
        fences = [r[0] for r in runs]
        dup = [f for f, n in collections.Counter(fences).items() if n > 1]
        if dup:
            self.bad("rerun", job_id, "claim(s) %s of %s ran more than once" % (dup, job_id))
        if attempts > max_attempts:
            self.bad("over_attempts", job_id, "%s: attempts %d > max_attempts %d"
                     % (job_id, attempts, max_attempts))
        given_back = sum(1 for o in outs if o.get("status") in ("released", "abandoned",
                                                               "uncommitted"))
        if len(set(fences)) > attempts + given_back:
            self.bad("over_attempts", job_id, "%s: %d claims ran, attempts %d + %d given back"
                     % (job_id, len(set(fences)), attempts, given_back))

        # stale result: the highest fence that ran it
        if typ in EXEC_TYPES and st == "succeeded":
            try:
                res = json.loads(result) if result is not None else None
            except ValueError:
                res = None
            top = max(fences) if fences else None
            got = res.get("fence") if isinstance(res, dict) else None
            if top is None or got != top or fence != top:
                self.bad("stale_result", job_id, "%s: result %r, record fence %d, highest fence "
                         "that ran %r" % (job_id, result, fence, top))

        # backoff and delays
        by_fence = sorted(set((r[0], r[2]) for r in runs))
        start_of = dict(by_fence)
        for o in outs:
            if o.get("status") != "retrying":
                continue
            f = int(o.get("fence", 0))
            if f not in start_of:
                continue
            later = [(ff, ms) for ff, ms in by_fence if ff > f]
            if not later:
                continue
            gap = later[0][1] - start_of[f]
            need = backoff_min_ms(int(o.get("attempt", 1)), self.base, self.cap)
            if gap + 1 < need:
                self.bad("early_retry", job_id, "%s: retry after attempt %s started %d ms after "
                         "it, backoff is at least %.0f ms" % (job_id, o.get("attempt"), gap, need))
        delay_ms = payload.get("delay_ms") if isinstance(payload, dict) else None
        created = int(rec.get("created") or 0)
        if runs and delay_ms and created:
            first = min(r[2] for r in runs)
            if first + 1 < created + delay_ms:
                self.bad("early_retry", job_id, "%s: delayed %d ms but started %d ms after "
                         "creation" % (job_id, delay_ms, first - created))

        # cancels
        if st == "canceled" and result not in (None, "", "null"):
            self.bad("canceled_result", job_id, "canceled job %s has result %r" % (job_id, result))
        for c in self.cancels.get(job_id, []):
            if c.get("job_status") == "canceled" and st != "canceled":
                self.bad("canceled_result", job_id, "cancel of %s answered canceled, job ended %s"
                         % (job_id, st))

        # terminal state fits the kind
        why = None
        if st == "failed" and kind != "fail" and attempts < max_attempts:
            why = "failed with attempts left (%d of %d)" % (attempts, max_attempts)
        elif st == "succeeded" and kind == "fail":
            why = "a fail job succeeded"
        elif st == "expired":
            if not rec.get("expires_at"):
                why = "expired without expires_in_s"
            elif runs or int(rec.get("started") or 0) or attempts:
                why = "expired after it started"
        elif st == "canceled" and job_id not in self.cancel_tried:
            why = "canceled, but nobody asked"
        if why:
            self.bad("bad_state", job_id, "%s (kind %s): %s" % (job_id, kind, why))

    # ---- report ----

    def summary(self, faults):
        jobs = self.stats.get("jobs", 0)
        parts = ["jobs %d" % jobs,
                 "faults %d (%s)" % (sum(faults.values()),
                                     " ".join("%s=%d" % kv for kv in sorted(faults.items())))]
        for c in CHECKS:
            parts.append("%s %d" % (c, len(self.violations.get(c, []))))
        return ", ".join(parts)

    def report(self, limit=5):
        """Human-readable violations, each with its job's history."""
        out = []
        shown = set()
        for c in CHECKS:
            for job_id, text in self.violations.get(c, [])[:50]:
                out.append("VIOLATION %s: %s" % (c, text))
                if job_id and job_id not in shown and len(shown) < limit:
                    shown.add(job_id)
                    out.append(self.history(job_id))
        return "\n".join(out)
