/* batch.c - the C face of lua/batch_*.lua (see batch.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/batch.h"
#include "jobmill/queue.h"
#include "call.h"
#include "queue_registry.h"
#include "reply.h"

#define STAGE_ARGS 10 /* per job: see make_job in lua/_lib.lua */
typedef char stage_nums[7][24];

/* stage_args fills a[0..STAGE_ARGS) for job id of spec s (payload given). */
static void
stage_args(const char **a, const jm_job_spec *s, const char *id, const char *payload,
           stage_nums num)
{
    snprintf(num[0], 24, "%d", s->max_attempts > 0 ? s->max_attempts : 3);
    snprintf(num[1], 24, "%d", s->timeout_s);
    snprintf(num[2], 24, "%" PRId64, s->delay_ms);
    snprintf(num[3], 24, "%" PRId64, s->run_at_ms);
    snprintf(num[4], 24, "%" PRId64, s->expires_in_ms);
    snprintf(num[5], 24, "%d", s->result_ttl_s);
    snprintf(num[6], 24, "%d", s->priority);
    a[0] = id;
    a[1] = s->type;
    a[2] = payload;
    for (int i = 0; i < 7; i++)
        a[3 + i] = num[i];
}

/* eval_args runs script in id's slot with c's common arguments followed by
 * the n arguments in a. A new reply or NULL with err set. */
static redisReply *
eval_args(jm_redis *r, const char *id, const char *script, const char **a, size_t n, jm_error *err)
{
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    size_t total = (size_t)c.nargs + n;
    const char **args = malloc(sizeof(*args) * total);
    if (args == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < c.nargs; i++)
        args[i] = c.args[i];
    memcpy(args + c.nargs, a, sizeof(*a) * n);
    const char *keys[1] = {c.slot};
    redisReply *rep = jm_redis_eval(r, err, script, 1, keys, (int)total, args, NULL);
    free(args);
    return rep;
}

/* A {code, id} reply: the code, and the id copied into id when given. */
static int
code_id_reply(redisReply *rep, const char *script, long long *code, char id[JM_ID_LEN + 1],
              jm_error *err)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "%s: unexpected reply", script);
    }
    *code = jm__reply_ll(rep->element[0]);
    if (*code >= 0 && rep->elements >= 2)
        snprintf(id, JM_ID_LEN + 1, "%s", jm__reply_str(rep->element[1]));
    freeReplyObject(rep);
    return JM_OK;
}

int
jm_batch_open(jm_redis *r, const jm_batch_spec *b, int max_queues, char id[JM_ID_LEN + 1],
              bool *created, jm_error *err)
{
    *created = false;
    char cb_id[JM_ID_LEN + 1] = "";
    int rc = jm_id_new(b->queue, id, err);
    if (rc == JM_OK && b->callback != NULL)
        rc = jm_id_new(b->callback->queue[0] != '\0' ? b->callback->queue : b->queue, cb_id, err);
    if (rc != JM_OK)
        return rc;
    const char *queues[2] = {b->queue, b->callback != NULL && b->callback->queue[0] != '\0'
                                           ? b->callback->queue
                                           : b->queue};
    if ((rc = jm__queue_register(r, queues, 2, max_queues, false, err)) != JM_OK)
        return rc;
    char maxq[24], ttl[24], open_ms[24];
    snprintf(maxq, sizeof(maxq), "%d", max_queues > 0 ? max_queues : 0);
    snprintf(ttl, sizeof(ttl), "%d", b->result_ttl_s);
    snprintf(open_ms, sizeof(open_ms), "%d", JM_BATCH_OPEN_MS);
    const char *a[7 + STAGE_ARGS] = {id,  b->queue, maxq,
                                     ttl, open_ms,  b->idem_key != NULL ? b->idem_key : ""};
    stage_nums num;
    char *cb_payload = NULL;
    size_t na = 6;
    if (b->callback != NULL) {
        const char *p = b->callback->payload != NULL ? b->callback->payload : "null";
        size_t len = strlen(p) + JM_ID_LEN + 32;
        if ((cb_payload = malloc(len)) == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        snprintf(cb_payload, len, "{\"batch_id\":\"%s\",\"payload\":%s}", id, p);
        stage_args(a + 6, b->callback, cb_id, cb_payload, num);
        a[6 + STAGE_ARGS] = b->callback->queue[0] != '\0' ? b->callback->queue : b->queue;
        na += STAGE_ARGS + 1;
    } else {
        a[6] = "";
        na = 7;
    }
    redisReply *rep = eval_args(r, id, "batch_open", a, na, err);
    free(cb_payload);
    if (rep == NULL)
        return jm__err_code(err);
    long long code;
    if ((rc = code_id_reply(rep, "batch_open", &code, id, err)) != JM_OK)
        return rc;
    if (code < 0)
        return jm_error_set(err, JM_ERR_LIMIT, "queue",
                            "queue would exceed max_queues; delete or reuse queues");
    *created = code == 1;
    return JM_OK;
}

int
jm_batch_stage(jm_redis *r, const char *id, const jm_batch_spec *b, size_t from, size_t n,
               jm_error *err)
{
    char open_ms[24];
    snprintf(open_ms, sizeof(open_ms), "%d", JM_BATCH_OPEN_MS);
    size_t na = 2 + STAGE_ARGS * n;
    const char **a = malloc(sizeof(*a) * na);
    stage_nums *nums = malloc(sizeof(*nums) * (n > 0 ? n : 1));
    char(*ids)[JM_ID_LEN + 1] = malloc(sizeof(*ids) * (n > 0 ? n : 1));
    int rc = a != NULL && nums != NULL && ids != NULL
                 ? JM_OK
                 : jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    if (rc == JM_OK) {
        a[0] = id;
        a[1] = open_ms;
    }
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        const jm_job_spec *s = &b->jobs[from + i];
        if ((rc = jm_id_new(b->queue, ids[i], err)) == JM_OK)
            stage_args(a + 2 + STAGE_ARGS * i, s, ids[i], s->payload != NULL ? s->payload : "null",
                       nums[i]);
    }
    redisReply *rep = rc == JM_OK ? eval_args(r, id, "batch_stage", a, na, err) : NULL;
    free(a);
    free(nums);
    free(ids);
    if (rc != JM_OK)
        return rc;
    if (rep == NULL)
        return jm__err_code(err);
    long long got = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -2;
    freeReplyObject(rep);
    if (got == -2)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "batch_stage: unexpected reply");
    if (got < 0)
        return jm_error_set(err, JM_ERR_STATE, NULL, "batch %s is not open (it expired)", id);
    return JM_OK;
}

int
jm_batch_seal(jm_redis *r, char id[JM_ID_LEN + 1], const jm_batch_spec *b, bool *created,
              jm_error *err)
{
    *created = false;
    char total[24];
    snprintf(total, sizeof(total), "%zu", b->n);
    const char *a[3] = {id, total, b->idem_key != NULL ? b->idem_key : ""};
    redisReply *rep = eval_args(r, id, "batch_seal", a, 3, err);
    if (rep == NULL)
        return jm__err_code(err);
    char got[JM_ID_LEN + 1] = "";
    long long code;
    int rc = code_id_reply(rep, "batch_seal", &code, got, err);
    if (rc != JM_OK)
        return rc;
    if (code < 0)
        return jm_error_set(err, JM_ERR_STATE, NULL, "batch %s cannot be sealed (%s)", id,
                            code == -1 ? "not open" : "staged count differs");
    snprintf(id, JM_ID_LEN + 1, "%s", got);
    *created = code == 1;
    return JM_OK;
}

int
jm_batch_release(jm_redis *r, const char *queue, const char *id, int max, int *n, bool *more,
                 jm_error *err)
{
    *n = 0;
    *more = false;
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    char smax[24];
    snprintf(smax, sizeof(smax), "%d", max);
    jm_call_arg(&c, queue);
    jm_call_arg(&c, smax);
    jm_call_arg(&c, id != NULL ? id : "");
    redisReply *rep = jm_call_run(r, &c, "batch_release", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "batch_release: unexpected reply");
    } else {
        *n = (int)jm__reply_ll(rep->element[0]);
        *more = jm__reply_ll(rep->element[1]) != 0;
    }
    freeReplyObject(rep);
    return rc;
}

int
jm_batch_submit(jm_redis *r, const jm_batch_spec *b, int max_queues, char id[JM_ID_LEN + 1],
                bool *created, jm_error *err)
{
    int rc = jm_batch_open(r, b, max_queues, id, created, err);
    if (rc != JM_OK || !*created)
        return rc;
    for (size_t from = 0; from < b->n && rc == JM_OK; from += JM_BATCH_CHUNK) {
        size_t k = b->n - from < JM_BATCH_CHUNK ? b->n - from : JM_BATCH_CHUNK;
        rc = jm_batch_stage(r, id, b, from, k, err);
    }
    if (rc == JM_OK)
        rc = jm_batch_seal(r, id, b, created, err);
    if (rc != JM_OK || !*created)
        return rc;
    /* sealed: accepted. What this loop does not release the janitor does. */
    bool more = true;
    while (more) {
        int n = 0;
        jm_error e;
        jm_error_clear(&e);
        if (jm_batch_release(r, b->queue, id, JM_BATCH_RELEASE, &n, &more, &e) != JM_OK)
            break;
    }
    return JM_OK;
}

/* ---- callbacks on a queue of another slot ---- */

#define CB_FIELDS 12 /* per batch: see lua/batch_callbacks.lua */

/* callback_submit submits one pending callback (e: CB_FIELDS strings) under
 * the batch's idempotency key and records it in the batch. */
static int
callback_submit(jm_redis *r, const char *queue, redisReply **e, jm_error *err)
{
    const char *bid = jm__reply_str(e[0]);
    if (!jm_id_valid(bid) || !jm_queue_name_valid(jm__reply_str(e[1])))
        return jm_error_set(err, JM_ERR_REPLY, NULL, "batch_callbacks: malformed entry");
    char idem[64];
    snprintf(idem, sizeof(idem), "batch:%s:callback", bid);
    jm_job_spec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.queue, sizeof(spec.queue), "%s", jm__reply_str(e[1]));
    spec.type = (char *)jm__reply_str(e[3]);
    spec.payload = (char *)jm__reply_str(e[4]);
    spec.max_attempts = (int)jm__reply_ll(e[5]);
    spec.timeout_s = (int)jm__reply_ll(e[6]);
    spec.delay_ms = jm__reply_ll(e[7]);
    spec.run_at_ms = jm__reply_ll(e[8]);
    spec.expires_in_ms = jm__reply_ll(e[9]);
    spec.result_ttl_s = (int)jm__reply_ll(e[10]);
    spec.priority = (int)jm__reply_ll(e[11]);
    spec.idem_key = idem;
    jm_enqueue_result res;
    int rc = jm_queue_enqueue(r, &spec, 0, &res, NULL, err); /* spec's strings stay borrowed */
    if (rc != JM_OK)
        return rc;
    jm_call c;
    jm_call_init(&c, r, bid, NULL);
    jm_call_arg(&c, bid);
    jm_call_arg(&c, res.id);
    jm_call_arg(&c, queue);
    long long set;
    return jm_call_int(r, &c, "batch_callback_set", &set, err);
}

int
jm_batch_callbacks(jm_redis *r, const char *queue, int max, int *n, jm_error *err)
{
    *n = 0;
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    char smax[24];
    snprintf(smax, sizeof(smax), "%d", max);
    jm_call_arg(&c, queue);
    jm_call_arg(&c, smax);
    redisReply *rep = jm_call_run(r, &c, "batch_callbacks", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % CB_FIELDS != 0)
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "batch_callbacks: unexpected reply");
    for (size_t i = 0; rc == JM_OK && i < rep->elements; i += CB_FIELDS) {
        if ((rc = callback_submit(r, queue, rep->element + i, err)) == JM_OK)
            (*n)++;
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- reads ---- */

void
jm_batch_clear(jm_batch *b)
{
    jm_strv_free(b->ids, b->nids);
    memset(b, 0, sizeof(*b));
}

static void
batch_field(jm_batch *b, const char *f, const char *v)
{
    long long n = strtoll(v, NULL, 10);
    if (strcmp(f, "queue") == 0)
        snprintf(b->queue, sizeof(b->queue), "%s", v);
    else if (strcmp(f, "status") == 0)
        b->done = strcmp(v, "done") == 0;
    else if (strcmp(f, "total") == 0)
        b->total = n;
    else if (strcmp(f, "released") == 0)
        b->released = n;
    else if (strcmp(f, "left") == 0)
        b->left = n;
    else if (strcmp(f, "created") == 0)
        b->created_ms = n;
    else if (strcmp(f, "finished") == 0)
        b->finished_ms = n;
    else if (strcmp(f, "callback") == 0)
        snprintf(b->callback, sizeof(b->callback), "%s", v);
    else if (strcmp(f, "cb") == 0)
        b->has_callback = true;
    else if (strncmp(f, "n_", 2) == 0) {
        jm_state s = jm_state_parse(f + 2);
        if (s != JM_STATE_UNKNOWN && jm_state_terminal(s))
            b->counts[s] = n;
    }
}

int
jm_batch_states(jm_redis *r, const char *id, int64_t out[JM_STATE_COUNT], jm_error *err)
{
    for (int s = 0; s < JM_STATE_COUNT; s++)
        out[s] = 0;
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "batch %s not found", id);
    int64_t offset = 0;
    while (offset >= 0) {
        jm_call c;
        jm_call_init(&c, r, id, NULL);
        char soff[24], sn[24];
        snprintf(soff, sizeof(soff), "%" PRId64, offset);
        snprintf(sn, sizeof(sn), "%d", JM_BATCH_STATES_SLICE);
        jm_call_arg(&c, id);
        jm_call_arg(&c, soff);
        jm_call_arg(&c, sn);
        redisReply *rep = jm_call_run(r, &c, "batch_states", err);
        if (rep == NULL)
            return jm__err_code(err);
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
            freeReplyObject(rep);
            return jm_error_set(err, JM_ERR_REPLY, NULL, "batch_states: unexpected reply");
        }
        offset = jm__reply_ll(rep->element[0]);
        out[JM_STATE_QUEUED] += jm__reply_ll(rep->element[1]);
        out[JM_STATE_SCHEDULED] += jm__reply_ll(rep->element[2]);
        out[JM_STATE_RUNNING] += jm__reply_ll(rep->element[3]);
        freeReplyObject(rep);
    }
    return JM_OK;
}

int
jm_batch_get(jm_redis *r, const char *id, bool watch, int64_t offset, int limit, jm_batch *out,
             jm_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "batch %s not found", id);
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    char soff[24], slim[24];
    snprintf(soff, sizeof(soff), "%" PRId64, offset);
    snprintf(slim, sizeof(slim), "%d", limit);
    jm_call_arg(&c, id);
    jm_call_arg(&c, watch ? "1" : "0");
    jm_call_arg(&c, soff);
    jm_call_arg(&c, slim);
    redisReply *rep = jm_call_run(r, &c, "batch_get", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "batch_get: unexpected reply");
    } else if (rep->elements == 0) {
        rc = jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "batch %s not found", id);
    } else if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_ARRAY ||
               rep->element[1]->type != REDIS_REPLY_ARRAY) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "batch_get: unexpected reply");
    } else {
        snprintf(out->id, sizeof(out->id), "%s", id);
        const redisReply *h = rep->element[0], *ids = rep->element[1];
        for (size_t i = 0; i + 1 < h->elements; i += 2)
            batch_field(out, jm__reply_str(h->element[i]), jm__reply_str(h->element[i + 1]));
        if (ids->elements > 0) {
            out->ids = calloc(ids->elements, sizeof(*out->ids));
            for (size_t i = 0; out->ids != NULL && i < ids->elements; i++) {
                if ((out->ids[i] = strdup(jm__reply_str(ids->element[i]))) == NULL)
                    break;
                out->nids = i + 1;
            }
            if (out->nids != ids->elements)
                rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
    }
    freeReplyObject(rep);
    return rc;
}
