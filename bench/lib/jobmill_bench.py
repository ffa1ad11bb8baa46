#!/usr/bin/env python3
"""jobmill_bench.py - jobmill's side of bench/run (Python stdlib only).

Env: REDIS_URL, JOBMILL_BIN_DIR (jobmill-api/-worker/-janitor and jm_submit),
BENCH_LOGDIR, and the BENCH_* sizes of benchlib.py. Starts its own api,
janitor and workers on free loopback ports; prints "RESULT {json}".
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BULK, CLIENTS, CONC, LAT, M, N, PROCESS_TIMEOUT, PROCS, REDIS_URL, WARM,  # noqa: E402
                      RespClient, emit, free_port, latency_summary, log, rate, redis_cpu_s, spawn,
                      stop_all, wait_until)

BIN = os.environ["JOBMILL_BIN_DIR"]
LOGDIR = os.environ.get("BENCH_LOGDIR", "/tmp")
HOST = "127.0.0.1"
JSON_HDR = {"Content-Type": "application/json"}
procs = []


def request(port, method, path, body=None, timeout=30):
    """One HTTP exchange on a new TCP connection (set-up and reads; the
    timed single submits keep their connections alive)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path, body, JSON_HDR if body is not None else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def base_env(**kw):
    e = dict(os.environ)
    e.update({"REDIS_URL": REDIS_URL, "JOBMILL_LOG_LEVEL": "warn"})
    e.update({k: str(v) for k, v in kw.items()})
    return e


def start_api():
    port = free_port()
    p = spawn([os.path.join(BIN, "jobmill-api")], os.path.join(LOGDIR, "jobmill-api.log"),
              env=base_env(JOBMILL_LISTEN="%s:%d" % (HOST, port), JOBMILL_API_DRAIN_DELAY_MS=0))
    procs.append(p)

    def ready():
        try:
            return request(port, "GET", "/readyz", timeout=1)[0] == 200
        except OSError:
            return False
    if not wait_until(ready, 20):
        raise RuntimeError("jobmill-api did not become ready (see %s)" % LOGDIR)
    return port


def start_workers(queue):
    out = []
    for i in range(PROCS):
        p = spawn([os.path.join(BIN, "jobmill-worker")],
                  os.path.join(LOGDIR, "jobmill-worker-%d.log" % i),
                  env=base_env(JOBMILL_QUEUES=queue, JOBMILL_CONCURRENCY=CONC,
                               JOBMILL_METRICS_LISTEN="%s:%d" % (HOST, free_port())))
        out.append(p)
    p = spawn([os.path.join(BIN, "jobmill-janitor")], os.path.join(LOGDIR, "jobmill-janitor.log"),
              env=base_env(JOBMILL_METRICS_LISTEN="%s:%d" % (HOST, free_port())))
    out.append(p)
    procs.extend(out)
    return out


def queue_stats(port, queue):
    st, body = request(port, "GET", "/v1/queues")
    if st != 200:
        return {}
    for q in json.loads(body)["queues"]:
        if q["name"] == queue:
            return q
    return {}


def warm_up(port):
    """Untimed: 200 single submits and one batch to a queue no worker reads,
    so no system pays its first-use costs (connections, JIT) in a timed phase."""
    body = json.dumps({"queue": "bench-warm", "type": "echo", "payload": {}}).encode()
    for _ in range(200):
        request(port, "POST", "/v1/jobs", body)
    request(port, "POST", "/v1/jobs/batch", json.dumps(
        {"jobs": [{"queue": "bench-warm", "type": "echo", "payload": {}}] * BULK}).encode())


def enqueue_single(port):
    body = json.dumps({"queue": "bench-single", "type": "echo", "payload": {}}).encode()
    per = [M // CLIENTS + (1 if i < M % CLIENTS else 0) for i in range(CLIENTS)]
    errors = []

    def client(n):
        # one keep-alive connection per client thread
        c = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            for _ in range(n):
                c.request("POST", "/v1/jobs", body, JSON_HDR)
                r = c.getresponse()
                b = r.read()
                if r.status != 201:
                    raise RuntimeError("POST /v1/jobs -> %d %s" % (r.status, b[:200]))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in per]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        return {"error": errors[0]}
    return rate(M, dt, "POST /v1/jobs, %d Python http.client threads in one process, "
                "one keep-alive connection each (the client, not the api, is the limit: "
                "wrk reaches more)" % CLIENTS, clients=CLIENTS)


def enqueue_wrk(port, seconds=5, conns=16):
    """Single submits from wrk (C, keep-alive connections): the api's own rate,
    not a Python client's."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"error": "wrk not installed"}
    script = os.path.join(LOGDIR, "jobmill-wrk.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = \'{"queue":"bench-wrk","type":"echo","payload":{}}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run([wrk, "-t2", "-c%d" % conns, "-d%ds" % seconds, "-s", script,
                          "http://%s:%d/v1/jobs" % (HOST, port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m is None or "Non-2xx" in out:
        return {"error": "wrk: " + out[-300:]}
    return {"rate": float(m.group(1)), "how": "POST /v1/jobs from wrk, 2 threads, %d keep-alive "
            "connections, %d s" % (conns, seconds)}


def enqueue_bulk(port):
    t0 = time.perf_counter()
    done = 0
    while done < N:
        n = min(BULK, N - done)
        body = json.dumps({"jobs": [{"queue": "bench", "type": "echo", "payload": {}}] * n}).encode()
        st, b = request(port, "POST", "/v1/jobs/batch", body)
        if st != 201:
            return {"error": "POST /v1/jobs/batch -> %d %s" % (st, b[:200])}
        done += n
    dt = time.perf_counter() - t0
    return rate(N, dt, "POST /v1/jobs/batch with %d jobs per request, 1 client, sequential "
                "(body built per request inside the timed loop)" % BULK, per_call=BULK)


def enqueue_direct():
    """Reference only: libshared's pipelined enqueue (tests/tools/jm_submit), no HTTP."""
    tool = os.path.join(BIN, "jm_submit")
    if not os.access(tool, os.X_OK):
        return {"error": "jm_submit not built"}
    t0 = time.perf_counter()
    p = subprocess.run([tool, REDIS_URL, "submit", "-n", str(N),
                        json.dumps({"queue": "bench-direct", "type": "echo", "payload": {}})],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr.decode()[-300:]}
    return rate(N, dt, "tests/tools/jm_submit -n: libshared jm_queue_enqueue_batch, 500 per "
                "pipelined batch, no HTTP (a lower bound for the api's cost)")


def list_finished(port, queue):
    """Every succeeded job of queue through the list API (1000 a page)."""
    jobs, cursor = [], None
    while True:
        path = "/v1/queues/%s/jobs?state=succeeded&limit=1000" % queue
        if cursor:
            path += "&cursor=" + cursor
        st, b = request(port, "GET", path)
        if st != 200:
            raise RuntimeError("GET %s -> %d" % (path, st))
        d = json.loads(b)
        jobs.extend(d["jobs"])
        cursor = d.get("next_cursor")
        if not cursor:
            return jobs


def redis_cpu():
    c = RespClient(REDIS_URL)
    try:
        return redis_cpu_s(c("INFO", "cpu"))
    finally:
        c.close()


def process(port):
    cpu0 = redis_cpu()
    t0 = time.perf_counter()
    start_workers("bench")
    done = wait_until(lambda: queue_stats(port, "bench").get("succeeded", 0) >= N,
                      PROCESS_TIMEOUT, interval=0.05)
    wall = time.perf_counter() - t0
    cpu = redis_cpu() - cpu0
    jobs = list_finished(port, "bench")
    fin = [j["finished_at"] for j in jobs if j.get("finished_at")]
    if not fin:
        return {"error": "no job finished within %ds" % PROCESS_TIMEOUT}
    span = max(fin) - min(fin)
    out = rate(len(fin), span, "jobs queued before the workers start; first to last "
               "finished_at of the job records (millisecond resolution); %d jobmill-worker "
               "processes x concurrency %d, built-in echo handler, 1 janitor" % (PROCS, CONC),
               wall_s=wall, complete=bool(done), redis_cpu_us_per_job=cpu * 1e6 / len(fin))
    if not done:
        out["note"] = "only %d of %d finished within %ds" % (len(fin), N, PROCESS_TIMEOUT)
    return out


def latency(port):
    body = json.dumps({"queue": "bench", "type": "echo", "payload": {}}).encode()
    client, server = [], []
    for i in range(WARM + LAT):
        t0 = time.perf_counter()
        st, b = request(port, "POST", "/v1/jobs", body)
        if st != 201:
            return {"error": "POST /v1/jobs -> %d" % st}
        jid = json.loads(b)["id"]
        st, b = request(port, "GET", "/v1/jobs/%s?wait=5" % jid)
        dt = (time.perf_counter() - t0) * 1000
        j = json.loads(b)
        if st != 200 or j.get("status") != "succeeded":
            return {"error": "job %s: %d %s" % (jid, st, j.get("status"))}
        if i >= WARM:
            client.append(dt)
            server.append((j["finished_at"] - j["created_at"]) * 1000)
    s = sorted(server)
    return latency_summary(
        client, "POST /v1/jobs, then GET /v1/jobs/{id}?wait=5 (long-poll), each on a new "
        "connection; client wall time; %d warm-up jobs not counted" % WARM,
        server_p50_ms=s[len(s) // 2], server_how="finished_at - created_at of the job record "
        "(millisecond timestamps)")


def main():
    version = subprocess.run([os.path.join(BIN, "jobmill-api"), "--version"],
                             stdout=subprocess.PIPE, text=True).stdout.strip().split()[-1]
    res = {"system": "jobmill", "version": version,
           "setup": "1 jobmill-api (default 64 threads), %d jobmill-worker x concurrency %d, "
                    "1 jobmill-janitor" % (PROCS, CONC),
           "notes": []}
    try:
        port = start_api()
        log("api on port", port)
        log("warm-up (untimed)")
        warm_up(port)
        log("single enqueue", M)
        res["enqueue_single"] = enqueue_single(port)
        log("single enqueue with wrk (keep-alive)")
        res["enqueue_wrk"] = enqueue_wrk(port)
        log("direct (libshared) enqueue", N)
        res["enqueue_direct"] = enqueue_direct()
        log("bulk enqueue", N)
        res["enqueue_bulk"] = enqueue_bulk(port)
        log("processing", N)
        res["process"] = process(port)
        log("latency", LAT)
        res["latency"] = latency(port)
    except Exception as e:  # noqa: BLE001
        res["error"] = repr(e)
    finally:
        stop_all(procs)
    emit(res)


if __name__ == "__main__":
    main()
