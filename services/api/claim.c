/* claim.c - POST /v1/queues/{queue}/claim: an HTTP worker claims up to max
 * jobs, long-polling up to wait_s seconds when none is queued.
 *
 * Body {"worker": ID, "max": K, "wait_s": S} and optionally "lease_ms",
 * "host", "pid", "concurrency", "busy", "queues" (the registry record). The
 * claim is jm_queue_claim, exactly what the C worker's claimer calls: each
 * job comes back running under a fresh lease token ("<fence>-<nonce>") with
 * a lease deadline from Redis's clock, and every later call on it
 * (leases.c) presents that token. The worker is (re)registered in the
 * worker registry before claiming, and again every worker.heartbeat_ms
 * while the request waits, so it shows in GET /v1/workers like a C worker.
 *
 * Long-poll: when a claim finds nothing, the request blocks on the queue's
 * wake list (jm_wake_wait, as an idle C worker does) in slices of at most
 * API_CLAIM_SLICE_MS, so a stopping api answers within a slice; each wake
 * or slice end claims again; a claim held back by an operator limit (rate,
 * concurrency) claims again when the limit says it may. A waiting claim
 * holds one of the long-poll slots shared with GET ?wait (api.max_waiters);
 * when none is free the claim answers at once. A claim whose reply from
 * Redis was lost is taken back with jm_queue_claim_recover on the spot; one
 * whose HTTP answer never reaches the worker is recovered by lease expiry
 * (the janitor).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "jobmill/wake.h"
#include "jobmill/workers.h"
#include "waiters.h"

#define API_CLAIM_MAX 100        /* jobs per claim call */
#define API_CLAIM_WAIT_MAX_S 60  /* like GET ?wait */
#define API_CLAIM_SLICE_MS 500   /* longest uninterrupted block on the wake list */
#define API_WORKER_FIELD_MAX 128 /* a host name in the registry */
#define API_CLAIM_QUEUES_MAX 16  /* queue names a worker may list */

/* The registry record a claim body describes. */
typedef struct claim_body {
    const char *worker;
    int max;
    double wait_s;
    int lease_ms;
    char host[API_WORKER_FIELD_MAX + 1];
    char queues[API_CLAIM_QUEUES_MAX * (JM_QUEUE_MAX + 1) + 1];
    int pid, concurrency, busy;
} claim_body;

/* int_field reads an optional integer field within [lo, hi]; absent keeps
 * *out. Returns 0, or the 400 it sent. */
static int
int_field(api_req *req, const json_t *body, const char *name, long long lo, long long hi, int *out)
{
    const json_t *v = json_object_get(body, name);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return api_send_error(req, 400, "invalid_field", name,
                              "%s must be an integer from %lld to %lld", name, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

/* queues_field joins the optional "queues" array (valid queue names) into
 * a comma list; absent leaves the claim's queue. Returns 0 or the 400. */
static int
queues_field(api_req *req, const json_t *body, claim_body *b)
{
    const json_t *v = json_object_get(body, "queues");
    snprintf(b->queues, sizeof(b->queues), "%s", req->param);
    if (v == NULL)
        return 0;
    size_t i, used = 0;
    const json_t *q;
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > API_CLAIM_QUEUES_MAX)
        goto bad;
    json_array_foreach(v, i, q)
    {
        const char *s = json_string_value(q);
        if (s == NULL || !jm_queue_name_valid(s) || used + strlen(s) + 2 > sizeof(b->queues))
            goto bad;
        used += (size_t)snprintf(b->queues + used, sizeof(b->queues) - used, "%s%s",
                                 used > 0 ? "," : "", s);
    }
    return 0;
bad:
    return api_send_error(req, 400, "invalid_field", "queues",
                          "queues must be an array of 1-16 queue names (shown in /v1/workers)");
}

/* parse_body validates the claim body into b (b->worker borrows from
 * body). Returns 0, or the 400 it sent. */
static int
parse_body(api_req *req, const json_t *body, claim_body *b)
{
    const jm_config *cfg = req->app->cfg;
    memset(b, 0, sizeof(*b));
    b->max = 1;
    b->lease_ms = cfg->lease_ms;
    b->busy = 0;
    if (!json_is_object(body))
        return api_send_error(req, 400, "bad_json", NULL, "the claim body must be a JSON object");
    b->worker = json_string_value(json_object_get(body, "worker"));
    if (!api_worker_id_valid(b->worker))
        return api_send_error(req, 400, "invalid_field", "worker",
                              "worker is required: 1-%d characters of [A-Za-z0-9_.:@-]",
                              API_WORKER_ID_MAX);
    int st;
    if ((st = int_field(req, body, "max", 1, API_CLAIM_MAX, &b->max)) != 0)
        return st;
    b->concurrency = b->max;
    const json_t *w = json_object_get(body, "wait_s");
    if (w != NULL) {
        double v = json_is_number(w) ? json_number_value(w) : -1;
        if (!isfinite(v) || v < 0 || v > API_CLAIM_WAIT_MAX_S)
            return api_send_error(req, 400, "invalid_field", "wait_s",
                                  "wait_s must be a number of seconds from 0 to %d",
                                  API_CLAIM_WAIT_MAX_S);
        b->wait_s = v;
    }
    if ((st = api_lease_ms_field(req, body, &b->lease_ms)) != 0 ||
        (st = int_field(req, body, "pid", 0, 1 << 30, &b->pid)) != 0 ||
        (st = int_field(req, body, "concurrency", 1, 100000, &b->concurrency)) != 0 ||
        (st = int_field(req, body, "busy", 0, 100000, &b->busy)) != 0 ||
        (st = queues_field(req, body, b)) != 0)
        return st;
    const json_t *h = json_object_get(body, "host");
    if (h != NULL && (!json_is_string(h) || json_string_length(h) < 1 ||
                      json_string_length(h) > API_WORKER_FIELD_MAX))
        return api_send_error(req, 400, "invalid_field", "host",
                              "host must be a string of 1-%d characters", API_WORKER_FIELD_MAX);
    snprintf(b->host, sizeof(b->host), "%s",
             h != NULL ? json_string_value(h) : req->ri->remote_addr);
    return 0;
}

/* beat registers or refreshes the worker record of b. */
static int
beat(api_req *req, const claim_body *b, jm_error *err)
{
    jm_worker_info info = {.id = (char *)b->worker,
                           .host = (char *)b->host,
                           .queues = (char *)b->queues,
                           .pid = b->pid,
                           .concurrency = b->concurrency,
                           .busy = b->busy};
    return jm_workers_beat(req->redis, &info, api_worker_ttl_ms(req->app->cfg), err);
}

/* claim_once claims into buf[*total..max), calling again while the claim
 * says more entries wait; a lost reply is taken back at once. Returns
 * JM_OK or the error (err set); *total counts what was claimed, and
 * *throttle_ms how long an operator limit (rate, concurrency) holds the
 * queue back (0 = not held). */
static int
claim_once(api_req *req, const claim_body *b, jm_claim *buf, int *total, int *throttle_ms,
           jm_error *err)
{
    jm_claim_call call = {.queue = req->param, .lease_ms = b->lease_ms, .worker_id = b->worker};
    do {
        call.max = b->max - *total;
        call.nonce[0] = '\0';
        int got = 0;
        int rc = jm_queue_claim(req->redis, &call, buf + *total, &got, err);
        *total += got;
        if (rc == JM_ERR_REDIS && got == 0 && call.nonce[0] != '\0') {
            /* the script may have run with its reply lost: take its jobs back */
            jm_error rerr;
            jm_error_clear(&rerr);
            if (jm_queue_claim_recover(req->redis, &call, buf + *total, &got, &rerr) == JM_OK) {
                *total += got;
                return JM_OK;
            }
        }
        if (rc != JM_OK)
            return rc;
        *throttle_ms = call.throttle_ms;
    } while (call.more && *total < b->max && call.throttle_ms <= 0);
    return JM_OK;
}

/* claim_json is the job as claimed, with its lease token and deadline. */
static json_t *
claim_json(const jm_claim *c, const char *worker, int lease_ms)
{
    jm_job view;
    memset(&view, 0, sizeof(view));
    memcpy(view.id, c->id, sizeof(view.id));
    memcpy(view.queue, c->queue, sizeof(view.queue));
    view.type = c->type;
    view.payload = c->payload;
    view.worker = (char *)worker;
    view.status = JM_STATE_RUNNING;
    view.attempts = c->attempt;
    view.max_attempts = c->max_attempts;
    view.timeout_s = c->timeout_s;
    view.fence = c->fence;
    view.created_ms = c->created_ms;
    view.run_at_ms = c->run_at_ms;
    view.started_ms = c->started_ms;
    json_t *o = jm_job_to_json(&view); /* borrows the strings; nothing to clear */
    json_object_del(o, "priority");    /* not in a claim's reply (docs/priorities.md) */
    json_object_set_new(o, "lease_token", json_string(c->lease));
    json_object_set_new(o, "lease_deadline", jm_ms_to_json(c->started_ms + lease_ms));
    json_object_set_new(o, "lease_ms", json_integer(lease_ms));
    return o;
}

/* claim_loop claims, long-polling until something is claimed, the deadline
 * or stop. Returns JM_OK or the error that ended it. */
static int
claim_loop(api_req *req, const claim_body *b, jm_claim *buf, int *total, jm_error *err)
{
    api_app *app = req->app;
    int64_t now = jm_clock_ms();
    int64_t deadline = now + (int64_t)llround(b->wait_s * 1000.0);
    int64_t next_beat = now + app->cfg->heartbeat_ms;
    bool reserved = false;
    const char *queues[1] = {req->param};
    int rc;
    for (;;) {
        int throttle_ms = 0;
        if ((rc = claim_once(req, b, buf, total, &throttle_ms, err)) != JM_OK || *total > 0)
            break;
        now = jm_clock_ms();
        if (now >= deadline || atomic_load(&app->stopping) || api_waiters_stopping(app->waiters))
            break;
        if (!reserved && !(reserved = api_waiters_reserve(app->waiters)))
            break; /* every long-poll slot is taken: answer at once */
        if (now >= next_beat) {
            if ((rc = beat(req, b, err)) != JM_OK)
                break;
            next_beat = now + app->cfg->heartbeat_ms;
        }
        int64_t slice = deadline - now < API_CLAIM_SLICE_MS ? deadline - now : API_CLAIM_SLICE_MS;
        if (throttle_ms > 0 && throttle_ms < slice)
            slice = throttle_ms; /* a limit holds the queue back: claim again when it lets go */
        if ((rc = jm_wake_wait(req->redis, queues, 1, (int)(slice > 0 ? slice : 1), err)) != JM_OK)
            break;
    }
    if (reserved)
        api_waiters_release(app->waiters);
    return rc;
}

int
api_claim(api_req *req)
{
    if (!jm_queue_name_valid(req->param))
        return api_send_error(req, 400, "invalid_field", "queue",
                              "queue must be 1-64 characters of [A-Za-z0-9_.-]");
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    claim_body b;
    if ((status = parse_body(req, body, &b)) != 0) {
        json_decref(body);
        return status;
    }
    jm_claim *buf = calloc((size_t)b.max, sizeof(*buf));
    if (buf == NULL) {
        json_decref(body);
        return api_send_error(req, 500, "internal", NULL, "out of memory");
    }
    jm_error err;
    jm_error_clear(&err);
    int total = 0;
    const char *op = "worker_beat";
    int rc = beat(req, &b, &err);
    if (rc == JM_OK) {
        op = "claim";
        rc = claim_loop(req, &b, buf, &total, &err);
    }
    if (rc != JM_OK && total > 0) {
        /* what was claimed is handed out; the error ends the wait */
        jm_log_warn("claim: answering the jobs claimed before an error", "queue", req->param,
                    "error", err.msg, NULL);
        rc = JM_OK;
    }
    json_t *jobs = json_array();
    for (int i = 0; i < total; i++) {
        json_array_append_new(jobs, claim_json(&buf[i], b.worker, b.lease_ms));
        jm_claim_clear(&buf[i]);
    }
    free(buf);
    json_decref(body);
    if (rc != JM_OK) {
        json_decref(jobs);
        return api_send_jm_error(req, &err, op);
    }
    if (total > 0)
        jm_log_debug("jobs claimed over http", "queue", req->param, JM_LOG_INT("jobs", total),
                     NULL);
    json_t *o = json_object();
    json_object_set_new(o, "jobs", jobs);
    return api_send_json(req, 200, o, NULL);
}
