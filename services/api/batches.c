/* batches.c - POST /v1/batches and GET /v1/batches/{id} (docs/batches.md).
 *
 * Submit: {"queue", "jobs":[spec...], "callback": spec, "idempotency_key",
 * "result_ttl_s"}. The whole body is validated first (any invalid job is a
 * 400 naming jobs[i].field, and nothing is stored); then libshared opens the
 * batch, stages the jobs in chunks, seals it and releases them
 * (jm_batch_submit). The answer is 201 only after the seal: from then on
 * every job runs (the janitor finishes a release this process could not).
 * A repeated idempotency key answers 200 with the first batch.
 *
 * Get: the batch's counts and progress; ?results=1 adds a page of its
 * members in submission order (offset, limit); ?wait=S long-polls until the
 * batch is done like GET /v1/jobs/{id}?wait (a waiter on the batch id, woken
 * by the done channel: no Redis connection is held while waiting).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "api_metrics.h"
#include "jobmill/batch.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "jobmill/text.h"
#include "waiters.h"

#define API_BATCH_PAGE_DEFAULT 100
#define API_BATCH_RETRY_MS 200 /* re-read after a failed read while waiting */

/* ---- submit ---- */

/* member_spec validates job object j (field prefix pre, "jobs[3]." or
 * "callback.") into s: a member runs on the batch's queue (the callback on
 * any: any_queue; absent, the batch's) and carries no key of its own. */
static int
member_spec(const json_t *j, const char *pre, const char *queue, bool any_queue, jm_job_spec *s,
            jm_error *err)
{
    char f[64];
    if (!json_is_object(j)) {
        snprintf(f, sizeof(f), "%.*s", (int)strlen(pre) - 1, pre);
        return jm_error_set(err, JM_ERR_INVALID, f, "%s must be a JSON object", f);
    }
    int rc = jm_job_spec_from_json(j, pre, s, err);
    if (rc != JM_OK)
        return rc;
    const json_t *q = json_object_get(j, "queue");
    bool given = q != NULL && !json_is_null(q);
    if (given && !any_queue && strcmp(s->queue, queue) != 0) {
        snprintf(f, sizeof(f), "%squeue", pre);
        return jm_error_set(
            err, JM_ERR_INVALID, f,
            "%s must be the batch's queue (%s) or absent: a batch runs on one queue", f, queue);
    }
    if (!given) /* absent: the batch's (the callback may name another) */
        snprintf(s->queue, sizeof(s->queue), "%s", queue);
    static const char *const refused[] = {"idempotency_key", "unique_key"};
    for (size_t i = 0; i < 2; i++) {
        if (json_object_get(j, refused[i]) != NULL) {
            snprintf(f, sizeof(f), "%s%s", pre, refused[i]);
            return jm_error_set(err, JM_ERR_INVALID, f,
                                "%s is not accepted in a batch (give the batch an idempotency_key)",
                                f);
        }
    }
    return JM_OK;
}

/* A submit being validated: what jm_batch_submit needs, owned. */
typedef struct batch_body {
    char queue[JM_QUEUE_MAX + 1];
    jm_job_spec *jobs;
    size_t n;
    jm_job_spec callback;
    bool has_callback;
    char *idem;
    int result_ttl_s;
} batch_body;

static void
batch_body_clear(batch_body *b)
{
    for (size_t i = 0; b->jobs != NULL && i < b->n; i++)
        jm_job_spec_clear(&b->jobs[i]);
    free(b->jobs);
    jm_job_spec_clear(&b->callback);
    free(b->idem);
}

/* body_idem merges the body's idempotency_key with the header's. */
static int
body_idem(const json_t *body, const char *header, batch_body *b, jm_error *err)
{
    const json_t *k = json_object_get(body, "idempotency_key");
    const char *v = NULL;
    if (k != NULL && !json_is_null(k)) {
        if (!json_is_string(k) || json_string_length(k) < 1 || json_string_length(k) > JM_IDEM_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "idempotency_key",
                                "idempotency_key must be a string of 1-%d characters", JM_IDEM_MAX);
        v = json_string_value(k);
    }
    if (header != NULL) {
        if (strlen(header) < 1 || strlen(header) > JM_IDEM_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "Idempotency-Key",
                                "the Idempotency-Key header must be 1-%d characters", JM_IDEM_MAX);
        if (v != NULL && strcmp(v, header) != 0)
            return jm_error_set(err, JM_ERR_INVALID, "idempotency_key",
                                "idempotency_key differs from the Idempotency-Key header");
        v = header;
    }
    if (v != NULL && (b->idem = strdup(v)) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    return JM_OK;
}

/* body_parse validates the whole submit body into b. */
static int
body_parse(const json_t *body, const char *idem_header, batch_body *b, jm_error *err)
{
    if (!json_is_object(body))
        return jm_error_set(err, JM_ERR_INVALID, "body", "the body must be a JSON object");
    const json_t *q = json_object_get(body, "queue");
    if (q != NULL && !json_is_null(q) &&
        (!json_is_string(q) || !jm_queue_name_valid(json_string_value(q))))
        return jm_error_set(err, JM_ERR_INVALID, "queue",
                            "queue must be 1-%d characters of [A-Za-z0-9_.-]", JM_QUEUE_MAX);
    snprintf(b->queue, sizeof(b->queue), "%s",
             json_is_string(q) ? json_string_value(q) : "default");
    const json_t *ttl = json_object_get(body, "result_ttl_s");
    if (ttl != NULL && !json_is_null(ttl)) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
            json_integer_value(ttl) > JM_TTL_MAX_S)
            return jm_error_set(err, JM_ERR_INVALID, "result_ttl_s",
                                "result_ttl_s must be an integer from 1 to %d", JM_TTL_MAX_S);
        b->result_ttl_s = (int)json_integer_value(ttl);
    }
    int rc = body_idem(body, idem_header, b, err);
    if (rc != JM_OK)
        return rc;
    const json_t *jobs = json_object_get(body, "jobs");
    size_t n = json_array_size(jobs);
    if (!json_is_array(jobs) || n < 1 || n > JM_BATCH_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "jobs",
                            "jobs must be an array of 1-%d job objects", JM_BATCH_MAX);
    if ((b->jobs = calloc(n, sizeof(*b->jobs))) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    b->n = n;
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        char pre[32];
        snprintf(pre, sizeof(pre), "jobs[%zu].", i);
        rc = member_spec(json_array_get(jobs, i), pre, b->queue, false, &b->jobs[i], err);
    }
    const json_t *cb = json_object_get(body, "callback");
    if (rc == JM_OK && cb != NULL && !json_is_null(cb)) {
        rc = member_spec(cb, "callback.", b->queue, true, &b->callback, err);
        b->has_callback = rc == JM_OK;
    }
    return rc;
}

/* ---- the batch object ---- */

static void
ms_json(jm_text *t, int64_t ms)
{
    char buf[48];
    if (ms <= 0) {
        jm_text_puts(t, "null");
        return;
    }
    snprintf(buf, sizeof(buf), "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
    jm_text_puts(t, buf);
}

/* batch_write appends the batch object (without results) to t, leaving it
 * open for more members ("...," then "}" is the caller's). */
static void
batch_write(jm_text *t, const jm_batch *b, const int64_t states[JM_STATE_COUNT])
{
    char buf[640];
    int64_t finished = 0;
    for (int s = 0; s < JM_STATE_COUNT; s++)
        finished += b->counts[s];
    double progress = b->total > 0 ? floor(1000.0 * (double)finished / (double)b->total) / 10.0 : 0;
    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"queue\":\"%s\",\"status\":\"%s\",\"total\":%" PRId64
             ",\"released\":%" PRId64 ",\"counts\":{\"queued\":%" PRId64 ",\"scheduled\":%" PRId64
             ",\"running\":%" PRId64 ",\"succeeded\":%" PRId64 ",\"failed\":%" PRId64
             ",\"canceled\":%" PRId64 ",\"expired\":%" PRId64 ",\"unfinished\":%" PRId64
             "},\"progress\":%.1f,\"callback\":",
             b->id, b->queue, b->done ? "done" : "running", b->total, b->released,
             states[JM_STATE_QUEUED], states[JM_STATE_SCHEDULED], states[JM_STATE_RUNNING],
             b->counts[JM_STATE_SUCCEEDED], b->counts[JM_STATE_FAILED],
             b->counts[JM_STATE_CANCELED], b->counts[JM_STATE_EXPIRED], b->total - finished,
             progress);
    jm_text_puts(t, buf);
    if (b->callback[0] != '\0')
        jm_text_json_string(t, b->callback);
    else
        jm_text_puts(t, "null");
    jm_text_puts(t, ",\"has_callback\":");
    jm_text_puts(t, b->has_callback ? "true" : "false");
    jm_text_puts(t, ",\"created_at\":");
    ms_json(t, b->created_ms);
    jm_text_puts(t, ",\"finished_at\":");
    ms_json(t, b->done ? b->finished_ms : 0);
}

/* results_write appends ,"results":[...],"next_offset":N|null for b's page
 * of ids (read from offset), reading the members in one round trip. */
static int
results_write(api_req *req, jm_text *t, const jm_batch *b, int64_t offset, jm_error *err)
{
    jm_job *jobs = calloc(b->nids > 0 ? b->nids : 1, sizeof(*jobs));
    bool *found = calloc(b->nids > 0 ? b->nids : 1, sizeof(*found));
    if (jobs == NULL || found == NULL) {
        free(jobs);
        free(found);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    int rc = jm_queue_get_many(req->redis, (const char *const *)b->ids, b->nids, jobs, found, err);
    if (rc == JM_OK) {
        jm_text_puts(t, ",\"results\":[");
        for (size_t i = 0; i < b->nids; i++) {
            if (i > 0)
                jm_text_putc(t, ',');
            jm_text_puts(t, "{\"id\":");
            jm_text_json_string(t, b->ids[i]);
            jm_text_puts(t, ",\"status\":");
            if (found[i])
                jm_text_json_string(t, jm_state_name(jobs[i].status));
            else
                jm_text_puts(t, "null");
            jm_text_puts(t, ",\"result\":");
            jm_text_puts(t, found[i] && jobs[i].result != NULL ? jobs[i].result : "null");
            jm_text_puts(t, ",\"error\":");
            if (found[i] && jobs[i].error != NULL)
                jm_text_json_string(t, jobs[i].error);
            else
                jm_text_puts(t, "null");
            jm_text_putc(t, '}');
        }
        int64_t next = offset + (int64_t)b->nids;
        char buf[48];
        if (next < b->total)
            snprintf(buf, sizeof(buf), "],\"next_offset\":%" PRId64, next);
        else
            snprintf(buf, sizeof(buf), "],\"next_offset\":null");
        jm_text_puts(t, buf);
    }
    for (size_t i = 0; i < b->nids; i++)
        jm_job_clear(&jobs[i]);
    free(jobs);
    free(found);
    return rc;
}

int
api_batches_submit(api_req *req)
{
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    batch_body b;
    memset(&b, 0, sizeof(b));
    jm_error err;
    jm_error_clear(&err);
    int rc = body_parse(body, mg_get_header(req->conn, "Idempotency-Key"), &b, &err);
    json_decref(body);
    char id[JM_ID_LEN + 1] = "";
    bool created = false;
    if (rc == JM_OK) {
        jm_batch_spec spec = {.queue = b.queue,
                              .jobs = b.jobs,
                              .n = b.n,
                              .callback = b.has_callback ? &b.callback : NULL,
                              .idem_key = b.idem,
                              .result_ttl_s = b.result_ttl_s};
        rc = jm_batch_submit(req->redis, &spec, req->app->cfg->api_max_queues, id, &created, &err);
    }
    if (rc == JM_OK)
        rc = api_replicated(req, &err);
    if (rc != JM_OK) {
        batch_body_clear(&b);
        return api_send_jm_error(req, &err, "submit");
    }
    if (created) {
        api_metrics_submitted(req->app->metrics, b.queue, (int)b.n);
        jm_log_info("batch submitted", "batch_id", id, "queue", b.queue, JM_LOG_INT("jobs", b.n),
                    NULL);
    }
    jm_batch got;
    if (jm_batch_get(req->redis, id, false, 0, 0, &got, &err) != JM_OK) {
        /* accepted all the same: answer with what this request knows */
        jm_log_warn("batch submitted, but reading it back failed", "batch_id", id, "error", err.msg,
                    NULL);
        jm_batch_clear(&got);
        snprintf(got.id, sizeof(got.id), "%s", id);
        snprintf(got.queue, sizeof(got.queue), "%s", b.queue);
        got.total = (int64_t)b.n;
        got.has_callback = b.has_callback;
    }
    batch_body_clear(&b);
    int64_t states[JM_STATE_COUNT] = {0};
    if (!got.done && jm_batch_states(req->redis, id, states, &err) != JM_OK)
        states[JM_STATE_QUEUED] = got.total - got.counts[JM_STATE_SUCCEEDED] -
                                  got.counts[JM_STATE_FAILED] - got.counts[JM_STATE_CANCELED] -
                                  got.counts[JM_STATE_EXPIRED]; /* as accepted */
    jm_text t = JM_TEXT_INIT;
    batch_write(&t, &got, states);
    jm_text_putc(&t, '}');
    jm_batch_clear(&got);
    return api_send_json_text(req, created ? 201 : 200, &t, NULL);
}

/* ---- get ---- */

/* page_query reads ?results, ?offset and ?limit. */
static int
page_query(const api_req *req, bool *results, int64_t *offset, int *limit, jm_error *err)
{
    char buf[32];
    *results = false;
    *offset = 0;
    *limit = API_BATCH_PAGE_DEFAULT;
    int got = api_req_query(req, "results", buf, sizeof(buf));
    if (got < 0 || (got == 1 && strcmp(buf, "1") != 0 && strcmp(buf, "0") != 0 &&
                    strcmp(buf, "true") != 0 && strcmp(buf, "false") != 0))
        return jm_error_set(err, JM_ERR_INVALID, "results", "results must be 1 or 0");
    *results = got == 1 && (strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0);
    got = api_req_query(req, "offset", buf, sizeof(buf));
    if (got != 0) {
        char *end;
        long long v = got == 1 && buf[0] >= '0' && buf[0] <= '9' ? strtoll(buf, &end, 10) : -1;
        if (v < 0 || *end != '\0' || v > JM_BATCH_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "offset",
                                "offset must be an integer from 0 to %d", JM_BATCH_MAX);
        *offset = v;
    }
    got = api_req_query(req, "limit", buf, sizeof(buf));
    if (got != 0) {
        char *end;
        long v = got == 1 && buf[0] >= '0' && buf[0] <= '9' ? strtol(buf, &end, 10) : -1;
        if (v < 1 || *end != '\0' || v > JM_BATCH_PAGE_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "limit",
                                "limit must be an integer from 1 to %d", JM_BATCH_PAGE_MAX);
        *limit = (int)v;
    }
    return JM_OK;
}

/* batch_wait sleeps on a waiter for batch id until it is done, secs pass or
 * the api stops, keeping *b current (read with its page: offset, limit). A
 * failed read while waiting is retried; only the last read decides. */
static int
batch_wait(api_req *req, const char *id, double secs, int64_t offset, int limit, jm_batch *b,
           jm_error *err)
{
    if (secs <= 0 || b->done)
        return JM_OK;
    api_waiters *ws = req->app->waiters;
    api_waiter w;
    memset(&w, 0, sizeof(w));
    if (!api_waiters_add(ws, &w, id))
        return JM_OK; /* beyond the long-poll limit: answer at once */
    int64_t deadline = jm_clock_ms() + (int64_t)llround(secs * 1000.0), retry_at = 0;
    bool retry = false, last = false;
    int rc = JM_OK;
    for (;;) {
        jm_batch fresh;
        int got = jm_batch_get(req->redis, id, true, offset, limit, &fresh, err);
        if (got == JM_OK) {
            jm_batch_clear(b);
            *b = fresh;
        } else {
            jm_batch_clear(&fresh);
            if (last || got == JM_ERR_NOT_FOUND) {
                rc = got;
            } else {
                retry = true;
                retry_at = jm_clock_ms() + API_BATCH_RETRY_MS;
            }
        }
        if (last || rc != JM_OK || b->done)
            break;
        bool early = retry && retry_at < deadline;
        api_wait_result res = api_waiters_wait(ws, &w, early ? retry_at : deadline);
        last = res == API_WAIT_STOP || (res == API_WAIT_TIMEOUT && !early);
        retry = false;
    }
    api_waiters_remove(ws, &w);
    return rc;
}

int
api_batches_get(api_req *req)
{
    double secs;
    if (api_req_wait(req, &secs) != 0)
        return api_send_error(req, 400, "invalid_field", "wait",
                              "wait must be a number of seconds from 0 to 60");
    jm_error err;
    jm_error_clear(&err);
    bool results;
    int64_t offset;
    int limit;
    if (page_query(req, &results, &offset, &limit, &err) != JM_OK)
        return api_send_jm_error(req, &err, "get");
    if (!jm_id_valid(req->param))
        return api_send_error(req, 404, "not_found", NULL, "batch %s not found", req->param);
    int page = results ? limit : 0;
    jm_batch b;
    int rc = jm_batch_get(req->redis, req->param, false, offset, page, &b, &err);
    if (rc == JM_OK)
        rc = batch_wait(req, req->param, secs, offset, page, &b, &err);
    /* the non-terminal counts, read from the members while the batch runs
     * (a done batch has none) */
    int64_t states[JM_STATE_COUNT] = {0};
    if (rc == JM_OK && !b.done)
        rc = jm_batch_states(req->redis, req->param, states, &err);
    jm_text t = JM_TEXT_INIT;
    if (rc == JM_OK) {
        batch_write(&t, &b, states);
        if (results)
            rc = results_write(req, &t, &b, offset, &err);
        jm_text_putc(&t, '}');
    }
    jm_batch_clear(&b);
    if (rc != JM_OK) {
        jm_text_free(&t);
        if (rc == JM_ERR_NOT_FOUND)
            return api_send_error(req, 404, "not_found", NULL, "batch %s not found", req->param);
        return api_send_jm_error(req, &err, "get");
    }
    return api_send_json_text(req, 200, &t, NULL);
}
