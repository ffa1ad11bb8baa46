/* schedule_store.c - schedules in Redis (lua/schedule_*.lua, all in the one
 * slot "<prefix>:{schedules}:") and the janitor's firing of due ticks. See
 * schedule.h for the exactly-once argument. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "call.h"
#include "jobmill/log.h"
#include "jobmill/schedule.h"
#include "reply.h"

/* A call in the schedules' slot. */
static void
sched_call(jm_call *c, const jm_redis *r)
{
    jm_call_init(c, r, NULL, NULL);
    jm_key_schedules(c->slot, r);
}

/* The first tick of s after Redis's now. JM_ERR_INVALID (field "cron") when
 * it never fires. */
static int
first_tick(jm_redis *r, const jm_schedule *s, int64_t *next_ms, jm_error *err)
{
    int64_t now = jm_redis_time_ms(r, err);
    if (now < 0)
        return jm__err_code(err);
    jm_cron c;
    int rc = jm_cron_parse(s->cron, &c, err);
    if (rc != JM_OK)
        return rc;
    jm_tz *tz = jm_tz_load(s->tz, err);
    if (tz == NULL)
        return err != NULL ? err->code : JM_ERR_INVALID;
    rc = jm_cron_next(&c, tz, now, next_ms, err);
    jm_tz_free(tz);
    if (rc != JM_OK)
        return jm_error_set(err, JM_ERR_INVALID, "cron", "cron never fires (within %d years)",
                            JM_CRON_HORIZON_Y);
    return JM_OK;
}

int
jm_schedule_put(jm_redis *r, const jm_schedule *s, const char *source, int *result, jm_error *err)
{
    int64_t next;
    int rc = first_tick(r, s, &next, err);
    if (rc != JM_OK)
        return rc;
    char snext[24], smax[16];
    snprintf(snext, sizeof(snext), "%" PRId64, next);
    snprintf(smax, sizeof(smax), "%d", s->catch_up_max);
    jm_call c;
    sched_call(&c, r);
    jm_call_arg(&c, s->name);
    jm_call_arg(&c, s->cron);
    jm_call_arg(&c, s->tz);
    jm_call_arg(&c, s->job);
    jm_call_arg(&c, s->missed == JM_MISSED_CATCH_UP ? "catch_up" : "skip");
    jm_call_arg(&c, smax);
    jm_call_arg(&c, source);
    jm_call_arg(&c, snext);
    long long v = 0;
    if ((rc = jm_call_int(r, &c, "schedule_put", &v, err)) != JM_OK)
        return rc;
    if (v < 0)
        return jm_error_set(err, JM_ERR_STATE, "name",
                            "schedule %s is defined in the janitor's YAML config", s->name);
    *result = (int)v;
    return JM_OK;
}

/* Fills s from a flat field/value array reply. */
static int
from_hash(const redisReply *h, jm_schedule *s, jm_error *err)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->source, sizeof(s->source), "api");
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *f = jm__reply_str(h->element[i]), *v = jm__reply_str(h->element[i + 1]);
        if (strcmp(f, "name") == 0)
            snprintf(s->name, sizeof(s->name), "%s", v);
        else if (strcmp(f, "cron") == 0)
            snprintf(s->cron, sizeof(s->cron), "%s", v);
        else if (strcmp(f, "tz") == 0)
            snprintf(s->tz, sizeof(s->tz), "%s", v);
        else if (strcmp(f, "job") == 0 && s->job == NULL && (s->job = strdup(v)) == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        else if (strcmp(f, "missed") == 0)
            s->missed = strcmp(v, "catch_up") == 0 ? JM_MISSED_CATCH_UP : JM_MISSED_SKIP;
        else if (strcmp(f, "catch_up_max") == 0)
            s->catch_up_max = atoi(v);
        else if (strcmp(f, "source") == 0)
            snprintf(s->source, sizeof(s->source), "%s", v);
        else if (strcmp(f, "paused") == 0)
            s->paused = strcmp(v, "1") == 0;
        else if (strcmp(f, "gen") == 0)
            s->gen = strtoll(v, NULL, 10);
        else if (strcmp(f, "next") == 0)
            s->next_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "last") == 0)
            s->last_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "last_job") == 0)
            snprintf(s->last_job, sizeof(s->last_job), "%s", v);
    }
    if (s->catch_up_max < 1 || s->catch_up_max > JM_SCHEDULE_CATCH_UP_MAX)
        s->catch_up_max = 1;
    if (s->job == NULL && (s->job = strdup("null")) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    return JM_OK;
}

/* Reads a {now_ms, skip - 1 more..., hash...} reply into a new array. */
static int
read_hashes(redisReply *rep, const char *script, size_t skip, jm_schedule **out, size_t *n,
            int64_t *now_ms, jm_error *err)
{
    *out = NULL;
    *n = 0;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < skip)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "%s: unexpected reply", script);
    if (now_ms != NULL)
        *now_ms = jm__reply_ll(rep->element[0]);
    size_t cnt = rep->elements - skip;
    if (cnt == 0)
        return JM_OK;
    jm_schedule *v = calloc(cnt, sizeof(*v));
    if (v == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const redisReply *h = rep->element[i + skip];
        int rc = h->type == REDIS_REPLY_ARRAY
                     ? from_hash(h, &v[i], err)
                     : jm_error_set(err, JM_ERR_REPLY, NULL, "%s: unexpected reply", script);
        if (rc != JM_OK) {
            jm_schedule_free_all(v, cnt);
            return rc;
        }
    }
    *out = v;
    *n = cnt;
    return JM_OK;
}

int
jm_schedule_list(jm_redis *r, const char *name, jm_schedule **out, size_t *n, jm_error *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", JM_SCHEDULE_LIST_MAX);
    jm_call c;
    sched_call(&c, r);
    jm_call_arg(&c, name != NULL ? name : "");
    jm_call_arg(&c, lim);
    redisReply *rep = jm_call_run(r, &c, "schedule_list", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = read_hashes(rep, "schedule_list", 1, out, n, NULL, err);
    freeReplyObject(rep);
    if (rc == JM_OK && name != NULL && *n == 0)
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "no schedule %s", name);
    return rc;
}

int
jm_schedule_delete(jm_redis *r, const char *name, jm_error *err)
{
    jm_call c;
    sched_call(&c, r);
    jm_call_arg(&c, name);
    long long v = 0;
    int rc = jm_call_int(r, &c, "schedule_del", &v, err);
    if (rc == JM_OK && v == 0)
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "no schedule %s", name);
    return rc;
}

int
jm_schedule_pause(jm_redis *r, const char *name, bool paused, jm_error *err)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        char gen[24] = "", next[24] = "";
        if (!paused) { /* the first tick after now, of the definition as read */
            jm_schedule *v = NULL;
            size_t n = 0;
            int rc = jm_schedule_list(r, name, &v, &n, err);
            int64_t t = 0;
            if (rc == JM_OK)
                rc = first_tick(r, &v[0], &t, err);
            if (rc == JM_OK) {
                snprintf(gen, sizeof(gen), "%" PRId64, v[0].gen);
                snprintf(next, sizeof(next), "%" PRId64, t);
            }
            jm_schedule_free_all(v, n);
            if (rc != JM_OK)
                return rc;
        }
        jm_call c;
        sched_call(&c, r);
        jm_call_arg(&c, name);
        jm_call_arg(&c, paused ? "1" : "0");
        jm_call_arg(&c, gen);
        jm_call_arg(&c, next);
        long long v = 0;
        int rc = jm_call_int(r, &c, "schedule_pause", &v, err);
        if (rc != JM_OK)
            return rc;
        if (v == 0)
            return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "no schedule %s", name);
        if (v == 1)
            return JM_OK;
        /* -2: redefined meanwhile; read it again */
    }
    return jm_error_set(err, JM_ERR_STATE, NULL, "schedule %s keeps changing; try again", name);
}

int
jm_schedule_due(jm_redis *r, int max, jm_schedule **out, size_t *n, int64_t *now_ms,
                int64_t *later_ms, jm_error *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", max);
    jm_call c;
    sched_call(&c, r);
    jm_call_arg(&c, lim);
    redisReply *rep = jm_call_run(r, &c, "schedule_due", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = read_hashes(rep, "schedule_due", 2, out, n, now_ms, err);
    if (rc == JM_OK && later_ms != NULL)
        *later_ms = jm__reply_ll(rep->element[1]);
    freeReplyObject(rep);
    return rc;
}

int
jm_schedule_enqueue_tick(jm_redis *r, const jm_schedule *s, int64_t tick_ms, jm_enqueue_result *out,
                         jm_error *err)
{
    json_t *body = jm_json_parse_text(s->job);
    jm_job_spec spec;
    int rc = jm_job_spec_from_json(body, "job.", &spec, err);
    json_decref(body);
    char key[JM_QUEUE_MAX + 48];
    snprintf(key, sizeof(key), "schedule:%s:%" PRId64, s->name, tick_ms);
    if (rc == JM_OK) {
        free(spec.idem_key);
        if ((spec.idem_key = strdup(key)) == NULL)
            rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    if (rc == JM_OK)
        rc = jm_queue_enqueue(r, &spec, 0, out, NULL, err);
    jm_job_spec_clear(&spec);
    return rc;
}

int
jm_schedule_advance(jm_redis *r, const jm_schedule *s, int64_t next_ms, int64_t last_ms,
                    const char *last_job, bool *won, jm_error *err)
{
    char gen[24], expect[24], next[24], last[24];
    snprintf(gen, sizeof(gen), "%" PRId64, s->gen);
    snprintf(expect, sizeof(expect), "%" PRId64, s->next_ms);
    snprintf(next, sizeof(next), "%" PRId64, next_ms);
    snprintf(last, sizeof(last), "%" PRId64, last_ms);
    jm_call c;
    sched_call(&c, r);
    jm_call_arg(&c, s->name);
    jm_call_arg(&c, gen);
    jm_call_arg(&c, expect);
    jm_call_arg(&c, next);
    jm_call_arg(&c, last);
    jm_call_arg(&c, last_job);
    long long v = 0;
    int rc = jm_call_int(r, &c, "schedule_advance", &v, err);
    if (rc == JM_OK)
        *won = v == 1;
    return rc;
}

/* st->next_ms becomes t when t is earlier (0: none yet). */
static void
note_next(jm_schedule_stats *st, int64_t t)
{
    if (t > 0 && (st->next_ms == 0 || t < st->next_ms))
        st->next_ms = t;
}

/* Fires one due schedule: its ticks, then the advance. JM_OK, or a Redis
 * error (nothing more is tried: the schedule stays due). */
static int
fire(jm_redis *r, const jm_schedule *s, int64_t now, int64_t grace_ms, int64_t *ticks,
     jm_schedule_stats *st, jm_error *err)
{
    int n = 0, due = 0;
    int64_t next = 0;
    char last_job[JM_ID_LEN + 1] = "";
    int rc = jm_schedule_ticks(s, now, grace_ms, ticks, &n, &due, &next, err);
    if (rc != JM_OK) { /* cannot compute its ticks: look again in a minute */
        jm_log_warn("schedule cannot fire", "schedule", s->name, "error", err->msg, NULL);
        st->failed++;
        bool won;
        note_next(st, now + 60000);
        return jm_schedule_advance(r, s, now + 60000, s->last_ms, s->last_job, &won, err);
    }
    int created = 0;
    for (int i = 0; i < n; i++) {
        jm_enqueue_result res;
        jm_error e;
        jm_error_clear(&e);
        rc = jm_schedule_enqueue_tick(r, s, ticks[i], &res, &e);
        if (rc == JM_ERR_REDIS || rc == JM_ERR_REPLY || rc == JM_ERR_NOMEM) {
            *err = e;
            return rc;
        }
        if (rc == JM_OK) {
            snprintf(last_job, sizeof(last_job), "%s", res.id);
            created += res.created;
        } else if (rc != JM_ERR_DUPLICATE) {
            jm_log_warn("schedule tick not enqueued", "schedule", s->name, "error", e.msg, NULL);
            st->failed++;
        }
    }
    bool won = false;
    /* a tick without a job (unique key held, bad job) keeps the last job shown */
    rc = jm_schedule_advance(r, s, next, ticks[n - 1], last_job[0] != '\0' ? last_job : s->last_job,
                             &won, err);
    st->fired += created;
    note_next(st, next);
    if (rc == JM_OK && won)
        st->skipped += due - n;
    return rc;
}

int
jm_schedule_run_due(jm_redis *r, int max, int64_t grace_ms, jm_schedule_stats *st, jm_error *err)
{
    memset(st, 0, sizeof(*st));
    jm_schedule *v = NULL;
    size_t n = 0;
    int64_t now = 0;
    int64_t later = 0;
    int rc = jm_schedule_due(r, max, &v, &n, &now, &later, err);
    st->now_ms = now;
    note_next(st, (size_t)max == n ? now : later); /* a full batch: more are due now */
    int64_t *ticks = NULL;
    if (rc == JM_OK && n > 0 && (ticks = malloc(JM_SCHEDULE_TICKS_MAX * sizeof(int64_t))) == NULL)
        rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        rc = fire(r, &v[i], now, grace_ms, ticks, st, err);
    free(ticks);
    jm_schedule_free_all(v, n);
    return rc;
}
