/* queue_read.c - the reads: a job, many jobs, queue names, queue stats and
 * paged listings. Writes live in queue.c. See queue.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/queue.h"
#include "call.h"
#include "reply.h"

/* Fills job from an HGETALL reply. */
static int
job_from_reply(jm_job *job, const char *id, const redisReply *rep, jm_error *err)
{
    if (rep->type != REDIS_REPLY_ARRAY)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "HGETALL: unexpected reply");
    const char **fv = malloc(sizeof(*fv) * (rep->elements + 1));
    if (fv == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < rep->elements; i++)
        fv[i] = rep->element[i]->type == REDIS_REPLY_STRING ? rep->element[i]->str : "";
    int rc = jm_job_from_hash(job, id, fv, rep->elements, err);
    free(fv);
    return rc;
}

/* read_job reads job id with HGETALL, or through watch.lua when watch. */
static int
read_job(jm_redis *r, const char *id, bool watch, jm_job *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    out->status = JM_STATE_UNKNOWN;
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "job %s not found", id);
    redisReply *rep;
    if (watch) {
        jm_call c;
        jm_call_init(&c, r, id, NULL);
        jm_call_arg(&c, id);
        rep = jm_call_run(r, &c, "watch", err);
    } else {
        jm_keybuf key;
        const char *argv[2] = {"HGETALL", jm_key_job(key, r, id)};
        rep = jm_redis_command_argv(r, err, 2, argv, NULL);
    }
    if (rep == NULL)
        return jm__err_code(err);
    int rc = job_from_reply(out, id, rep, err);
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_get(jm_redis *r, const char *id, jm_job *out, jm_error *err)
{
    return read_job(r, id, false, out, err);
}

int
jm_queue_watch(jm_redis *r, const char *id, jm_job *out, jm_error *err)
{
    return read_job(r, id, true, out, err);
}

int
jm_queue_get_many(jm_redis *r, const char *const *ids, size_t n, jm_job *out, bool *found,
                  jm_error *err)
{
    if (n == 0)
        return JM_OK;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].status = JM_STATE_UNKNOWN;
        found[i] = false;
        jm_keybuf key;
        jm_key_job(key, r, jm_id_valid(ids[i]) ? ids[i] : "0000-invalid");
        const char *argv[2] = {"HGETALL", key};
        if (jm_redis_pipe_argv(r, err, 2, argv, NULL) != JM_OK) {
            jm_redis_pipe_discard(r, (int)i);
            return JM_ERR_REDIS;
        }
    }
    int rc = JM_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = jm_redis_pipe_reply(r, err);
        if (rep == NULL) {
            rc = jm__err_code(err);
            jm_redis_pipe_discard(r, (int)(n - i - 1));
            for (size_t k = 0; k < n; k++)
                jm_job_clear(&out[k]), found[k] = false;
            return rc;
        }
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 && jm_id_valid(ids[i])) {
            jm_error e;
            found[i] = job_from_reply(&out[i], ids[i], rep, &e) == JM_OK;
        }
        freeReplyObject(rep);
    }
    return rc;
}

void
jm_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Copies the string elements of rep from index `from` into a new array. */
static int
strv_from_reply(const redisReply *rep, size_t from, char ***out, size_t *n, jm_error *err)
{
    *out = NULL;
    *n = 0;
    size_t cnt = rep->elements > from ? rep->elements - from : 0;
    char **v = calloc(cnt + 1, sizeof(*v));
    if (v == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const redisReply *e = rep->element[from + i];
        v[i] = strdup(e->type == REDIS_REPLY_STRING ? e->str : "");
        if (v[i] == NULL) {
            jm_strv_free(v, i);
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
    }
    *out = v;
    *n = cnt;
    return JM_OK;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
jm_queue_names(jm_redis *r, char ***names, size_t *n, jm_error *err)
{
    jm_keybuf key;
    jm_key_queues(key, r);
    const char *argv[2] = {"SMEMBERS", key};
    redisReply *rep = jm_redis_command_argv(r, err, 2, argv, NULL);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = rep->type == REDIS_REPLY_ARRAY
                 ? strv_from_reply(rep, 0, names, n, err)
                 : jm_error_set(err, JM_ERR_REPLY, NULL, "SMEMBERS: unexpected reply");
    freeReplyObject(rep);
    if (rc == JM_OK && *n > 1)
        qsort(*names, *n, sizeof(**names), cmp_str);
    return rc;
}

/* Runs a read-only script of one queue with extra args. */
static redisReply *
queue_script(jm_redis *r, const char *script, const char *queue, const char **extra, int n_extra,
             jm_error *err)
{
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    jm_call_arg(&c, queue);
    for (int i = 0; i < n_extra; i++)
        jm_call_arg(&c, extra[i]);
    return jm_call_run(r, &c, script, err);
}

int
jm_queue_stats(jm_redis *r, const char *queue, jm_queue_info *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", queue);
    if (!jm_queue_name_valid(queue))
        return jm_error_set(err, JM_ERR_INVALID, "queue", "bad queue name");
    redisReply *rep = queue_script(r, "stats", queue, NULL, 0, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 6 || rep->elements % 2 != 0) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "stats: unexpected reply");
    } else {
        out->paused = rep->element[0]->integer != 0;
        out->oldest_ms = rep->element[1]->integer;
        out->limits.rate_n = (int)jm__reply_ll(rep->element[2]);
        out->limits.rate_ms = jm__reply_ll(rep->element[3]);
        out->limits.concurrency = (int)jm__reply_ll(rep->element[4]);
        out->limits.tokens = jm__reply_ll(rep->element[5]);
        for (size_t i = 6; i + 1 < rep->elements; i += 2) {
            const char *name = rep->element[i]->str, *v = rep->element[i + 1]->str;
            if (name == NULL || v == NULL)
                continue;
            jm_state s = jm_state_parse(name);
            if (s != JM_STATE_UNKNOWN) {
                out->counts[s] = strtoll(v, NULL, 10);
            } else if (strncmp(name, "tcap:", 5) == 0 && out->limits.n_types < JM_TYPE_CAPS_MAX) {
                jm_type_cap *t = &out->limits.types[out->limits.n_types++];
                snprintf(t->type, sizeof(t->type), "%s", name + 5);
                char *end = NULL;
                t->concurrency = (int)strtol(v, &end, 10);
                t->running = end != NULL && *end == ':' ? (int)strtol(end + 1, NULL, 10) : 0;
            }
        }
    }
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_list_ids(jm_redis *r, const char *queue, jm_state state, const char *cursor, int limit,
                  char ***ids, size_t *n, char next_cursor[64], jm_error *err)
{
    *ids = NULL;
    *n = 0;
    long long off = 0;
    if (cursor != NULL && cursor[0] != '\0') {
        /* Digits only, and small enough that the script's arithmetic stays
         * exact and is written as a plain integer (Lua prints 1e+17). */
        size_t len = strspn(cursor, "0123456789");
        if (cursor[len] != '\0' || len > 13)
            return jm_error_set(err, JM_ERR_INVALID, "cursor",
                                "cursor must be a value from next_cursor");
        off = strtoll(cursor, NULL, 10);
    }
    next_cursor[0] = '\0'; /* only now: cursor and next_cursor may be the same buffer */
    if (!jm_queue_name_valid(queue))
        return jm_error_set(err, JM_ERR_INVALID, "queue", "bad queue name");
    char soff[24], slim[16];
    snprintf(soff, sizeof(soff), "%lld", off);
    snprintf(slim, sizeof(slim), "%d", limit);
    const char *extra[3] = {jm_state_name(state), soff, slim};
    redisReply *rep = queue_script(r, "list", queue, extra, 3, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "list: unexpected reply");
    } else {
        long long nxt = rep->element[0]->integer;
        if (nxt >= 0)
            snprintf(next_cursor, 64, "%lld", nxt);
        rc = strv_from_reply(rep, 1, ids, n, err);
    }
    freeReplyObject(rep);
    return rc;
}
