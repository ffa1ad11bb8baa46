/* workers.c - the live-worker registry (see workers.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/workers.h"
#include "call.h"
#include "reply.h"

void
jm_worker_info_clear(jm_worker_info *w)
{
    free(w->id);
    free(w->host);
    free(w->queues);
    memset(w, 0, sizeof(*w));
}

int
jm_workers_beat(jm_redis *r, const jm_worker_info *w, int ttl_ms, jm_error *err)
{
    char pid[16], conc[16], busy[16], ttl[16];
    snprintf(pid, sizeof(pid), "%d", w->pid);
    snprintf(conc, sizeof(conc), "%d", w->concurrency);
    snprintf(busy, sizeof(busy), "%d", w->busy);
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    jm_call c;
    jm_call_init(&c, r, NULL, NULL);
    const char *args[7] = {
        w->id, w->host != NULL ? w->host : "", pid, w->queues != NULL ? w->queues : "", conc, busy,
        ttl};
    for (int i = 0; i < 7; i++)
        jm_call_arg(&c, args[i]);
    redisReply *rep = jm_call_run(r, &c, "worker_beat", err);
    if (rep == NULL)
        return jm__err_code(err);
    freeReplyObject(rep);
    return JM_OK;
}

int
jm_workers_remove(jm_redis *r, const char *id, jm_error *err)
{
    jm_keybuf zkey, hkey;
    jm_key_workers(zkey, r);
    jm_key_worker(hkey, r, id);
    const char *a1[3] = {"ZREM", zkey, id};
    redisReply *rep = jm_redis_command_argv(r, err, 3, a1, NULL);
    if (rep == NULL)
        return jm__err_code(err);
    freeReplyObject(rep);
    const char *a2[2] = {"DEL", hkey};
    if ((rep = jm_redis_command_argv(r, err, 2, a2, NULL)) == NULL)
        return jm__err_code(err);
    freeReplyObject(rep);
    return JM_OK;
}

void
jm_workers_list_free(jm_worker_info *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        jm_worker_info_clear(&v[i]);
    free(v);
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int
jm_workers_list(jm_redis *r, jm_worker_info **out, size_t *n, jm_error *err)
{
    *out = NULL;
    *n = 0;
    int64_t now = jm_redis_time_ms(r, err);
    if (now < 0)
        return jm__err_code(err);
    jm_keybuf zkey;
    jm_key_workers(zkey, r);
    const char *a[5] = {"ZRANGE", zkey, "0", "999", "WITHSCORES"};
    redisReply *ids = jm_redis_command_argv(r, err, 5, a, NULL);
    if (ids == NULL)
        return jm__err_code(err);
    size_t cnt = ids->type == REDIS_REPLY_ARRAY ? ids->elements / 2 : 0;
    jm_worker_info *v = calloc(cnt + 1, sizeof(*v));
    if (v == NULL) {
        freeReplyObject(ids);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    size_t got = 0;
    int rc = JM_OK;
    for (size_t i = 0; i < cnt && rc == JM_OK; i++) {
        const char *id = ids->element[2 * i]->str;
        jm_keybuf hkey;
        jm_key_worker(hkey, r, id);
        const char *h[6] = {"HMGET", hkey, "host", "pid", "queues", "concurrency"};
        redisReply *rep = jm_redis_command_argv(r, err, 6, h, NULL);
        if (rep == NULL) {
            rc = jm__err_code(err);
            break;
        }
        const char *h2[4] = {"HMGET", hkey, "busy", "started"};
        redisReply *rep2 = jm_redis_command_argv(r, err, 4, h2, NULL);
        if (rep2 == NULL) {
            freeReplyObject(rep);
            rc = jm__err_code(err);
            break;
        }
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 &&
            rep->element[0]->type == REDIS_REPLY_STRING && rep2->type == REDIS_REPLY_ARRAY &&
            rep2->elements == 2) {
            jm_worker_info *w = &v[got++];
            w->id = dup_or_empty(id);
            w->host = dup_or_empty(rep->element[0]->str);
            w->pid = rep->element[1]->str != NULL ? atoi(rep->element[1]->str) : 0;
            w->queues = dup_or_empty(rep->element[2]->str);
            w->concurrency = rep->element[3]->str != NULL ? atoi(rep->element[3]->str) : 0;
            w->busy = rep2->element[0]->str != NULL ? atoi(rep2->element[0]->str) : 0;
            w->started_ms =
                rep2->element[1]->str != NULL ? strtoll(rep2->element[1]->str, NULL, 10) : 0;
            w->heartbeat_age_ms = now - strtoll(ids->element[2 * i + 1]->str, NULL, 10);
            if (w->id == NULL || w->host == NULL || w->queues == NULL)
                rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
        freeReplyObject(rep);
        freeReplyObject(rep2);
    }
    freeReplyObject(ids);
    if (rc != JM_OK) {
        jm_workers_list_free(v, got);
        return rc;
    }
    *out = v;
    *n = got;
    return JM_OK;
}

int
jm_workers_prune(jm_redis *r, int64_t horizon_ms, int *n, jm_error *err)
{
    char hz[24];
    snprintf(hz, sizeof(hz), "%lld", (long long)horizon_ms);
    jm_call c;
    jm_call_init(&c, r, NULL, NULL);
    jm_call_arg(&c, hz);
    redisReply *rep = jm_call_run(r, &c, "workers_prune", err);
    if (rep == NULL)
        return jm__err_code(err);
    *n = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
    freeReplyObject(rep);
    return JM_OK;
}

int
jm_workers_touch(jm_redis *r, const char *id, int ttl_ms, int busy, bool *found, jm_error *err)
{
    char ttl[16], sbusy[16] = "";
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    if (busy >= 0)
        snprintf(sbusy, sizeof(sbusy), "%d", busy);
    jm_call c;
    jm_call_init(&c, r, NULL, NULL);
    jm_call_arg(&c, id);
    jm_call_arg(&c, ttl);
    jm_call_arg(&c, sbusy);
    long long code = 0;
    int rc = jm_call_int(r, &c, "worker_touch", &code, err);
    if (rc == JM_OK && found != NULL)
        *found = code == 1;
    return rc;
}

int
jm_workers_stats(jm_redis *r, int64_t *live, int64_t *max_age_ms, jm_error *err)
{
    jm_call c;
    jm_call_init(&c, r, NULL, NULL);
    redisReply *rep = jm_call_run(r, &c, "workers_stats", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        *live = jm__reply_ll(rep->element[0]);
        *max_age_ms = jm__reply_ll(rep->element[1]);
    } else {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "workers_stats: unexpected reply");
    }
    freeReplyObject(rep);
    return rc;
}
