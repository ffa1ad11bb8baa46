/* queues.c - GET /v1/queues, POST /v1/queues/{queue}/pause and /resume, and
 * GET /v1/queues/{queue}/jobs (paged listing by state).
 *
 * A queue object is {"name", "queued", "scheduled", "running", "succeeded",
 * "failed", "canceled", "expired", "paused", "limits"}; the counts are the
 * exact per-state counts every transition script keeps.
 *
 * Listing: the cursor is an offset into the state's index (pending list,
 * scheduled/active/terminal sets), so a page can shift while jobs move: a job
 * may be skipped or seen twice across pages. Ids whose record is gone or no
 * longer in the asked state are left out, so a page may hold fewer than
 * `limit` jobs while next_cursor is still a string; null means the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "jobmill/text.h"

#define API_LIST_DEFAULT 100
#define API_LIST_MAX 1000

json_t *
api_queue_to_json(const jm_queue_info *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(q->name));
    for (int s = 0; s < JM_STATE_COUNT; s++)
        json_object_set_new(o, jm_state_name((jm_state)s), json_integer(q->counts[s]));
    json_object_set_new(o, "paused", json_boolean(q->paused));
    /* the operator limits and how close the queue is: tokens left in the
     * rate bucket (the running count is above) */
    json_t *lim = json_object();
    const jm_queue_limits *l = &q->limits;
    json_object_set_new(lim, "rate",
                        l->rate_n > 0 ? json_pack("{s:i, s:f, s:I}", "n", l->rate_n, "per_s",
                                                  (double)l->rate_ms / 1000.0, "tokens",
                                                  (json_int_t)l->tokens)
                                      : json_null());
    json_object_set_new(lim, "concurrency",
                        l->concurrency > 0 ? json_integer(l->concurrency) : json_null());
    /* caps per job type: {"<type>": {"concurrency": C, "running": R}} */
    json_t *types = json_object();
    for (int i = 0; i < l->n_types; i++)
        json_object_set_new(types, l->types[i].type,
                            json_pack("{s:i, s:i}", "concurrency", l->types[i].concurrency,
                                      "running", l->types[i].running));
    json_object_set_new(lim, "types", types);
    json_object_set_new(o, "limits", lim);
    return o;
}

int
api_queues_list(api_req *req)
{
    char **names = NULL;
    size_t n = 0;
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_queue_names(req->redis, &names, &n, &err);
    json_t *arr = json_array();
    for (size_t i = 0; rc == JM_OK && i < n; i++) {
        jm_queue_info info;
        if ((rc = jm_queue_stats(req->redis, names[i], &info, &err)) == JM_OK)
            json_array_append_new(arr, api_queue_to_json(&info));
    }
    jm_strv_free(names, n);
    if (rc != JM_OK) {
        json_decref(arr);
        return api_send_jm_error(req, &err, "queues");
    }
    json_t *o = json_object();
    json_object_set_new(o, "queues", arr);
    return api_send_json(req, 200, o, NULL);
}

int
api_queue_known(api_req *req, jm_error *err)
{
    const char *q = req->param;
    if (!jm_queue_name_valid(q))
        return jm_error_set(err, JM_ERR_INVALID, "queue",
                            "queue must be 1-64 characters of [A-Za-z0-9_.-]");
    char **names = NULL;
    size_t n = 0;
    int rc = jm_queue_names(req->redis, &names, &n, err);
    if (rc != JM_OK)
        return rc;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(names[i], q) == 0;
    jm_strv_free(names, n);
    if (!found)
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "queue %s not found", q);
    return JM_OK;
}

static int
set_paused(api_req *req, bool paused)
{
    jm_error err;
    jm_error_clear(&err);
    const char *op = "pause";
    int rc = api_queue_known(req, &err);
    if (rc == JM_OK)
        rc = jm_queue_pause(req->redis, req->param, paused, &err);
    jm_queue_info info;
    if (rc == JM_OK)
        rc = jm_queue_stats(req->redis, req->param, &info, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, op);
    return api_send_json(req, 200, api_queue_to_json(&info), NULL);
}

int
api_queues_pause(api_req *req)
{
    return set_paused(req, true);
}

int
api_queues_resume(api_req *req)
{
    return set_paused(req, false);
}

/* parse_list_args reads state (required), limit and cursor. */
static int
parse_list_args(const api_req *req, jm_state *state, int *limit, char *cursor, size_t cursor_len,
                jm_error *err)
{
    char buf[32];
    int got = api_req_query(req, "state", buf, sizeof(buf));
    *state = got == 1 ? jm_state_parse(buf) : JM_STATE_UNKNOWN;
    if (*state == JM_STATE_UNKNOWN)
        return jm_error_set(err, JM_ERR_INVALID, "state",
                            "state is required: one of queued, scheduled, running, succeeded, "
                            "failed, canceled, expired");
    *limit = API_LIST_DEFAULT;
    got = api_req_query(req, "limit", buf, sizeof(buf));
    if (got != 0) {
        char *end;
        long v = got == 1 ? strtol(buf, &end, 10) : 0;
        if (got != 1 || buf[0] == '\0' || *end != '\0' || v < 1 || v > API_LIST_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "limit",
                                "limit must be an integer from 1 to %d", API_LIST_MAX);
        *limit = (int)v;
    }
    cursor[0] = '\0';
    got = api_req_query(req, "cursor", cursor, cursor_len);
    if (got < 0)
        return jm_error_set(err, JM_ERR_INVALID, "cursor", "cursor is not valid");
    return JM_OK;
}

/* list_page answers the jobs of ids that are still in state. */
static int
list_page(api_req *req, char **ids, size_t n, jm_state state, const char *next)
{
    jm_job *jobs = calloc(n + 1, sizeof(*jobs));
    bool *found = calloc(n + 1, sizeof(*found));
    if (jobs == NULL || found == NULL) {
        free(jobs);
        free(found);
        return api_send_error(req, 500, "internal", NULL, "out of memory");
    }
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_queue_get_many(req->redis, (const char *const *)ids, n, jobs, found, &err);
    jm_text t = JM_TEXT_INIT;
    jm_text_puts(&t, "{\"jobs\":[");
    size_t listed = 0;
    for (size_t i = 0; i < n; i++) {
        /* Skip ids whose record moved on, and repeats: a canceled then
         * retried job can stand twice in pending (lazy deletion). */
        bool repeat = false;
        for (size_t k = 0; k < i && !repeat; k++)
            repeat = strcmp(ids[k], ids[i]) == 0;
        if (rc == JM_OK && found[i] && jobs[i].status == state && !repeat) {
            if (listed++ > 0)
                jm_text_putc(&t, ',');
            jm_job_json_write(&t, &jobs[i]);
        }
        jm_job_clear(&jobs[i]);
    }
    free(jobs);
    free(found);
    if (rc != JM_OK) {
        jm_text_free(&t);
        return api_send_jm_error(req, &err, "list");
    }
    jm_text_puts(&t, "],\"next_cursor\":");
    if (next[0] != '\0')
        jm_text_json_string(&t, next);
    else
        jm_text_puts(&t, "null");
    jm_text_putc(&t, '}');
    return api_send_json_text(req, 200, &t, NULL);
}

int
api_queues_jobs(api_req *req)
{
    jm_error err;
    jm_error_clear(&err);
    jm_state state = JM_STATE_UNKNOWN;
    int limit = API_LIST_DEFAULT;
    char cursor[64] = "", next[64] = "";
    int rc = parse_list_args(req, &state, &limit, cursor, sizeof(cursor), &err);
    if (rc == JM_OK)
        rc = api_queue_known(req, &err);
    char **ids = NULL;
    size_t n = 0;
    if (rc == JM_OK)
        rc = jm_queue_list_ids(req->redis, req->param, state, cursor, limit, &ids, &n, next, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "list");
    int status = list_page(req, ids, n, state, next);
    jm_strv_free(ids, n);
    return status;
}
