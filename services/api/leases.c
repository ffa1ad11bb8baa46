/* leases.c - the calls an HTTP worker makes on a job it claimed (claim.c):
 * POST /v1/jobs/{id}/heartbeat, /complete, /fail, /progress and /logs.
 *
 * Every body carries the claim's "lease_token". Each call is the libshared
 * call the C worker makes for the same step (jm_queue_heartbeat,
 * jm_queue_outcome, jm_queue_progress), whose script re-checks the fencing
 * guard in Redis: the job must be running under exactly that token. A stale
 * token (lease expired and the job reclaimed or requeued, canceled, already
 * finished), a forged one or an unknown job id is refused with 409
 * lease_lost and nothing changes. A malformed id is 404 like on every route.
 *
 * Answers carry no second read: a commit that went through is answered from
 * the script's own result ({"id","status"}), so a failing read can never make
 * a committed outcome look failed to the worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "api.h"
#include "jobmill/clock.h"
#include "jobmill/joblog.h"
#include "jobmill/log.h"
#include "jobmill/workers.h"

#define API_LEASE_MS_MIN 1000
#define API_LEASE_MS_MAX 3600000
#define API_ERROR_MAX 4096     /* bytes of a failure message kept */
#define API_MESSAGE_MAX 1024   /* bytes of a progress message */
#define API_LOG_LINES_MAX 1000 /* lines of one POST /logs */

bool
api_worker_id_valid(const char *id)
{
    if (id == NULL)
        return false;
    size_t n = strlen(id);
    if (n < 1 || n > API_WORKER_ID_MAX)
        return false;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-") == n;
}

int
api_worker_ttl_ms(const jm_config *cfg)
{
    /* an HTTP worker beats through its claims and job heartbeats: its record
     * outlives a lease and three api heartbeat periods */
    int ttl = cfg->heartbeat_ms * 3;
    if (ttl < cfg->lease_ms)
        ttl = cfg->lease_ms;
    return ttl < JM_WORKERS_TTL_MIN_MS ? JM_WORKERS_TTL_MIN_MS : ttl;
}

int
api_lease_ms_field(api_req *req, const json_t *body, int *lease_ms)
{
    const json_t *v = json_object_get(body, "lease_ms");
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < API_LEASE_MS_MIN ||
        json_integer_value(v) > API_LEASE_MS_MAX)
        return api_send_error(req, 400, "invalid_field", "lease_ms",
                              "lease_ms must be an integer from %d to %d", API_LEASE_MS_MIN,
                              API_LEASE_MS_MAX);
    *lease_ms = (int)json_integer_value(v);
    return 0;
}

/* lease_lost answers 409 lease_lost for job id. */
static int
lease_lost(api_req *req)
{
    return api_send_error(req, 409, "lease_lost", "lease_token",
                          "job %s is not running under this lease token (the lease expired, the "
                          "job was canceled or finished, or the token is wrong); nothing changed",
                          req->param);
}

/* A fenced request: the parsed body and its token. */
typedef struct fenced {
    json_t *body;      /* owned */
    const char *token; /* borrowed from body */
} fenced;

/* fenced_open checks the id, parses the body and takes its lease_token.
 * Returns 0, or the status it sent (f->body is then NULL). */
static int
fenced_open(api_req *req, fenced *f)
{
    f->body = NULL;
    f->token = NULL;
    if (!jm_id_valid(req->param))
        return api_send_error(req, 404, "not_found", NULL, "job %s not found", req->param);
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    if (!json_is_object(body)) {
        json_decref(body);
        return api_send_error(req, 400, "bad_json", NULL, "the body must be a JSON object");
    }
    const json_t *t = json_object_get(body, "lease_token");
    if (!json_is_string(t) || json_string_length(t) < 1) {
        json_decref(body);
        return api_send_error(req, 400, "invalid_field", "lease_token",
                              "lease_token (the claim's token) is required");
    }
    if (json_string_length(t) > JM_LEASE_MAX ||
        strlen(json_string_value(t)) != json_string_length(t)) {
        json_decref(body);
        return lease_lost(req); /* no token this long (or with a NUL) was ever issued */
    }
    f->body = body;
    f->token = json_string_value(t);
    return 0;
}

/* outcome_answer maps a committed outcome onto the answer. */
static int
outcome_answer(api_req *req, jm_outcome *o, const char *op)
{
    if (o->rc == JM_ERR_FENCE)
        return lease_lost(req);
    if (o->rc != JM_OK)
        return api_send_jm_error(req, &o->err, op);
    json_t *a = json_object();
    json_object_set_new(a, "id", json_string(req->param));
    json_object_set_new(a, "status", json_string(jm_state_name(o->state)));
    return api_send_json(req, 200, a, NULL);
}

int
api_lease_heartbeat(api_req *req)
{
    fenced f;
    int st = fenced_open(req, &f);
    if (st != 0)
        return st;
    int lease_ms = req->app->cfg->lease_ms, busy = -1;
    const json_t *worker = json_object_get(f.body, "worker");
    if ((st = api_lease_ms_field(req, f.body, &lease_ms)) != 0)
        goto done;
    if (worker != NULL && !api_worker_id_valid(json_string_value(worker))) {
        st =
            api_send_error(req, 400, "invalid_field", "worker",
                           "worker must be 1-%d characters of [A-Za-z0-9_.:@-]", API_WORKER_ID_MAX);
        goto done;
    }
    const json_t *b = json_object_get(f.body, "busy");
    if (b != NULL) {
        if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 100000) {
            st = api_send_error(req, 400, "invalid_field", "busy",
                                "busy must be an integer from 0 to 100000");
            goto done;
        }
        busy = (int)json_integer_value(b);
    }
    jm_error err;
    jm_error_clear(&err);
    /* Redis's time before the renewal: the deadline answered is never later
     * than the one the script set */
    int64_t now = jm_redis_time_ms(req->redis, &err);
    jm_lease lease = {.id = req->param, .queue = "", .lease = f.token};
    int status = JM_LEASE_LOST;
    if (now < 0 || jm_queue_heartbeat(req->redis, &lease, 1, lease_ms, &status, &err) != JM_OK) {
        st = api_send_jm_error(req, &err, "heartbeat");
        goto done;
    }
    if (status == JM_LEASE_LOST) {
        st = lease_lost(req);
        goto done;
    }
    if (worker != NULL) {
        jm_error werr;
        jm_error_clear(&werr);
        if (jm_workers_touch(req->redis, json_string_value(worker),
                             api_worker_ttl_ms(req->app->cfg), busy, NULL, &werr) != JM_OK)
            jm_service_redis_error(req->app->svc, "worker_beat");
    }
    json_t *a = json_object();
    json_object_set_new(a, "id", json_string(req->param));
    json_object_set_new(a, "lease_deadline", jm_ms_to_json(now + lease_ms));
    json_object_set_new(a, "lease_ms", json_integer(lease_ms));
    json_object_set_new(a, "cancel_requested", json_boolean(status == JM_LEASE_CANCEL));
    st = api_send_json(req, 200, a, NULL);
done:
    json_decref(f.body);
    return st;
}

int
api_lease_complete(api_req *req)
{
    fenced f;
    int st = fenced_open(req, &f);
    if (st != 0)
        return st;
    const json_t *result = json_object_get(f.body, "result");
    char *text = json_dumps(result != NULL ? result : json_null(), JM_JSON_DUMP_FLAGS);
    long max = req->app->cfg->max_result_bytes;
    if (text == NULL) {
        st = api_send_error(req, 500, "internal", NULL, "out of memory");
    } else if (max > 0 && (long long)strlen(text) > (long long)max) {
        st = api_send_error(req, 413, "too_large", "result",
                            "result of %zu bytes is over worker.max_result_bytes (%ld)",
                            strlen(text), max);
    } else {
        jm_outcome o = {
            .kind = JM_OUTCOME_COMPLETE, .id = req->param, .lease = f.token, .result = text};
        jm_queue_outcome(req->redis, &o, &req->app->retention);
        st = outcome_answer(req, &o, "complete");
    }
    free(text);
    json_decref(f.body);
    return st;
}

/* unit_draw returns a uniform double in [0, 1) for the retry jitter. */
static double
unit_draw(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
        x = (uint64_t)jm_clock_us() * 0x9E3779B97F4A7C15ULL;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

int
api_lease_fail(api_req *req)
{
    fenced f;
    int st = fenced_open(req, &f);
    if (st != 0)
        return st;
    const json_t *e = json_object_get(f.body, "error");
    const json_t *r = json_object_get(f.body, "retryable");
    if (e != NULL && !json_is_string(e)) {
        st = api_send_error(req, 400, "invalid_field", "error", "error must be a string");
        goto done;
    }
    if (r != NULL && !json_is_boolean(r)) {
        st = api_send_error(req, 400, "invalid_field", "retryable", "retryable must be a boolean");
        goto done;
    }
    char msg[API_ERROR_MAX + 1];
    snprintf(msg, sizeof(msg), "%s", e != NULL ? json_string_value(e) : "failed");
    /* the retry delay grows with the attempt; an attempt read from a job no
     * longer ours only sets a delay the fenced commit then refuses */
    jm_job job;
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_queue_get(req->redis, req->param, &job, &err);
    if (rc == JM_ERR_NOT_FOUND) {
        st = lease_lost(req);
        goto done;
    }
    if (rc != JM_OK) {
        st = api_send_jm_error(req, &err, "fail");
        goto done;
    }
    const jm_config *cfg = req->app->cfg;
    int64_t backoff =
        jm_retry_delay_ms(job.attempts, cfg->backoff_base_ms, cfg->backoff_max_ms, unit_draw());
    jm_job_clear(&job);
    jm_outcome o = {.kind = JM_OUTCOME_FAIL,
                    .id = req->param,
                    .lease = f.token,
                    .error = msg,
                    .permanent = r != NULL && !json_is_true(r),
                    .backoff_ms = backoff};
    jm_queue_outcome(req->redis, &o, &req->app->retention);
    st = outcome_answer(req, &o, "fail");
done:
    json_decref(f.body);
    return st;
}

int
api_lease_progress(api_req *req)
{
    fenced f;
    int st = fenced_open(req, &f);
    if (st != 0)
        return st;
    const json_t *p = json_object_get(f.body, "progress");
    const json_t *m = json_object_get(f.body, "message");
    if (!json_is_number(p) || json_number_value(p) < 0 || json_number_value(p) > 100) {
        st = api_send_error(req, 400, "invalid_field", "progress",
                            "progress must be a number from 0 to 100");
        goto done;
    }
    if (m != NULL && !json_is_null(m) &&
        (!json_is_string(m) || json_string_length(m) > API_MESSAGE_MAX)) {
        st = api_send_error(req, 400, "invalid_field", "message",
                            "message must be a string of at most %d bytes", API_MESSAGE_MAX);
        goto done;
    }
    /* stored in the shape of an exec handler's progress line */
    json_t *stored = json_object();
    json_object_set(stored, "progress", (json_t *)p);
    if (m != NULL && !json_is_null(m))
        json_object_set(stored, "message", (json_t *)m);
    char *text = json_dumps(stored, JM_JSON_DUMP_FLAGS);
    json_decref(stored);
    if (text == NULL) {
        st = api_send_error(req, 500, "internal", NULL, "out of memory");
        goto done;
    }
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_queue_progress(req->redis, req->param, f.token, text, &err);
    free(text);
    if (rc == JM_ERR_FENCE) {
        st = lease_lost(req);
    } else if (rc != JM_OK) {
        st = api_send_jm_error(req, &err, "progress");
    } else {
        json_t *a = json_object();
        json_object_set_new(a, "id", json_string(req->param));
        json_object_set_new(a, "progress", json_deep_copy(p));
        st = api_send_json(req, 200, a, NULL);
    }
done:
    json_decref(f.body);
    return st;
}

int
api_lease_logs(api_req *req)
{
    fenced f;
    int st = fenced_open(req, &f);
    if (st != 0)
        return st;
    const json_t *lines = json_object_get(f.body, "lines");
    size_t n = json_array_size(lines);
    if (!json_is_array(lines) || n < 1 || n > API_LOG_LINES_MAX) {
        st = api_send_error(req, 400, "invalid_field", "lines",
                            "lines must be an array of 1 to %d strings", API_LOG_LINES_MAX);
        goto done;
    }
    const char **v = malloc(sizeof(*v) * n);
    size_t *lens = malloc(sizeof(*lens) * n);
    if (v == NULL || lens == NULL) {
        free(v);
        free(lens);
        st = api_send_error(req, 500, "internal", NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *l = json_array_get(lines, i);
        if (!json_is_string(l)) {
            free(v);
            free(lens);
            st = api_send_error(req, 400, "invalid_field", "lines", "lines[%zu] must be a string",
                                i);
            goto done;
        }
        v[i] = json_string_value(l);
        lens[i] = json_string_length(l); /* a \u0000 inside is kept */
    }
    const jm_config *cfg = req->app->cfg;
    jm_joblog_limits lim = {.max_lines = cfg->logs_max_lines,
                            .max_line_bytes = cfg->logs_max_line_bytes};
    long long total = 0;
    jm_error err;
    jm_error_clear(&err);
    int rc =
        jm_joblog_append(req->redis, req->param, f.token, v, lens, n, NULL, &lim, &total, &err);
    free(v);
    free(lens);
    if (rc == JM_ERR_FENCE || rc == JM_ERR_NOT_FOUND) {
        st = lease_lost(req);
    } else if (rc != JM_OK) {
        st = api_send_jm_error(req, &err, "logs");
    } else {
        json_t *a = json_object();
        json_object_set_new(a, "id", json_string(req->param));
        json_object_set_new(a, "next", json_integer(total));
        st = api_send_json(req, 200, a, NULL);
    }
done:
    json_decref(f.body);
    return st;
}
