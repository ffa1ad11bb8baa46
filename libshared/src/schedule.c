/* schedule.c - a schedule's definition: validation from JSON, its JSON
 * form, and the missed-tick policy (which due ticks fire). The Redis side
 * is schedule_store.c. See schedule.h and docs/schedules.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/schedule.h"

/* A catch-up that would walk more ticks than this restarts a day before now
 * (only ticks of the last day can be among the latest catch_up_max then). */
#define TICK_WALK_MAX 200000

void
jm_schedule_clear(jm_schedule *s)
{
    free(s->job);
    memset(s, 0, sizeof(*s));
}

void
jm_schedule_free_all(jm_schedule *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        jm_schedule_clear(&v[i]);
    free(v);
}

static int
bad(jm_error *err, const char *field, const char *msg)
{
    return jm_error_set(err, JM_ERR_INVALID, field, "%s %s", field, msg);
}

/* The job: a valid submit body, minus what a schedule sets itself. */
static int
job_arg(const json_t *job, jm_schedule *s, jm_error *err)
{
    if (!json_is_object(job))
        return bad(err, "job", "must be a submit body (an object with at least \"type\")");
    if (json_object_get(job, "run_at") != NULL)
        return bad(err, "job.run_at", "cannot be set: the schedule's tick is the run time");
    if (json_object_get(job, "idempotency_key") != NULL)
        return bad(err, "job.idempotency_key",
                   "cannot be set: each tick's job is keyed by schedule and tick");
    jm_job_spec spec;
    int rc = jm_job_spec_from_json(job, "job.", &spec, err);
    jm_job_spec_clear(&spec);
    if (rc != JM_OK)
        return rc;
    s->job = json_dumps(job, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    return s->job != NULL ? JM_OK : jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
}

static int
missed_arg(const json_t *body, jm_schedule *s, jm_error *err)
{
    const json_t *m = json_object_get(body, "missed"), *k = json_object_get(body, "catch_up_max");
    const char *ms = m == NULL || json_is_null(m) ? "skip" : json_string_value(m);
    if (ms != NULL && strcmp(ms, "skip") == 0)
        s->missed = JM_MISSED_SKIP;
    else if (ms != NULL && strcmp(ms, "catch_up") == 0)
        s->missed = JM_MISSED_CATCH_UP;
    else
        return bad(err, "missed", "must be \"skip\" or \"catch_up\"");
    if (k == NULL || json_is_null(k)) {
        s->catch_up_max = s->missed == JM_MISSED_CATCH_UP ? JM_SCHEDULE_CATCH_UP_DEFAULT : 1;
        return JM_OK;
    }
    if (s->missed != JM_MISSED_CATCH_UP)
        return bad(err, "catch_up_max", "applies only to \"missed\": \"catch_up\"");
    if (!json_is_integer(k) || json_integer_value(k) < 1 ||
        json_integer_value(k) > JM_SCHEDULE_CATCH_UP_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "catch_up_max",
                            "catch_up_max must be an integer from 1 to %d",
                            JM_SCHEDULE_CATCH_UP_MAX);
    s->catch_up_max = (int)json_integer_value(k);
    return JM_OK;
}

int
jm_schedule_from_json(const json_t *body, jm_schedule *s, jm_error *err)
{
    memset(s, 0, sizeof(*s));
    if (!json_is_object(body))
        return jm_error_set(err, JM_ERR_INVALID, NULL, "the body must be a JSON object");
    const char *name = json_string_value(json_object_get(body, "name"));
    if (name == NULL || !jm_queue_name_valid(name))
        return bad(err, "name", "must be 1-64 of [A-Za-z0-9_.-]");
    snprintf(s->name, sizeof(s->name), "%s", name);
    const char *cron = json_string_value(json_object_get(body, "cron"));
    jm_cron c;
    if (cron == NULL)
        return bad(err, "cron", "must be a cron expression (\"minute hour day month weekday\")");
    int rc = jm_cron_parse(cron, &c, err);
    if (rc != JM_OK)
        return rc;
    snprintf(s->cron, sizeof(s->cron), "%s", cron);
    const json_t *tzv = json_object_get(body, "tz");
    const char *tz = tzv == NULL || json_is_null(tzv) ? "UTC" : json_string_value(tzv);
    if (tz == NULL)
        return bad(err, "tz", "must be a time zone name like \"Europe/Berlin\"");
    jm_tz *zone = jm_tz_load(tz, err);
    if (zone == NULL)
        return err != NULL ? err->code : JM_ERR_INVALID;
    jm_tz_free(zone);
    snprintf(s->tz, sizeof(s->tz), "%s", tz);
    if ((rc = missed_arg(body, s, err)) != JM_OK)
        return rc;
    return job_arg(json_object_get(body, "job"), s, err);
}

static json_t *
ms_or_null(int64_t ms)
{
    return ms > 0 ? jm_ms_to_json(ms) : json_null();
}

json_t *
jm_schedule_to_json(const jm_schedule *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "cron", json_string(s->cron));
    json_object_set_new(o, "tz", json_string(s->tz));
    json_object_set_new(o, "job", jm_json_parse_text(s->job));
    json_object_set_new(o, "missed",
                        json_string(s->missed == JM_MISSED_CATCH_UP ? "catch_up" : "skip"));
    json_object_set_new(o, "catch_up_max", json_integer(s->catch_up_max));
    json_object_set_new(o, "paused", json_boolean(s->paused));
    json_object_set_new(o, "source", json_string(s->source[0] != '\0' ? s->source : "api"));
    json_object_set_new(o, "next_run", s->paused ? json_null() : ms_or_null(s->next_ms));
    json_object_set_new(o, "last_run", ms_or_null(s->last_ms));
    json_object_set_new(o, "last_job",
                        s->last_job[0] != '\0' ? json_string(s->last_job) : json_null());
    return o;
}

int
jm_schedule_ticks(const jm_schedule *s, int64_t now_ms, int64_t grace_ms, int64_t *ticks, int *n,
                  int *due, int64_t *next_ms, jm_error *err)
{
    *n = 0;
    *due = 0;
    jm_cron c;
    int rc = jm_cron_parse(s->cron, &c, err);
    if (rc != JM_OK)
        return rc;
    jm_tz *tz = jm_tz_load(s->tz, err);
    if (tz == NULL)
        return err != NULL ? err->code : JM_ERR_INVALID;
    int missed_keep = s->missed == JM_MISSED_CATCH_UP && s->catch_up_max > 1 ? s->catch_up_max : 1;
    /* ticks is a ring of the latest `keep` due ticks: the missed ones wanted
     * and every on-time one (at most one a second within the grace) */
    int64_t on_time_max = grace_ms / 1000 + 1;
    if (on_time_max > JM_SCHEDULE_TICKS_MAX - JM_SCHEDULE_CATCH_UP_MAX - 1)
        on_time_max = JM_SCHEDULE_TICKS_MAX - JM_SCHEDULE_CATCH_UP_MAX - 1;
    int keep = missed_keep + (int)on_time_max;
    int64_t t = s->next_ms;
    int head = 0, walked = 0;
    while (rc == JM_OK && t <= now_ms) {
        ticks[head] = t;
        head = (head + 1) % keep;
        (*due)++;
        if (++walked == TICK_WALK_MAX && now_ms - 86400000 > t) {
            /* jump: the ticks passed over are skipped (and not counted) */
            rc = jm_cron_next(&c, tz, now_ms - 86400000, &t, err);
            continue;
        }
        rc = jm_cron_next(&c, tz, t, &t, err);
    }
    jm_tz_free(tz);
    if (rc != JM_OK)
        return jm_error_set(err, JM_ERR_INVALID, "cron", "schedule %s: its cron never fires again",
                            s->name);
    *next_ms = t;
    int have = *due < keep ? *due : keep;
    /* oldest first: the ring starts at head once it has wrapped */
    int64_t *tmp = malloc((size_t)have * sizeof(int64_t) + 1);
    if (tmp == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (int i = 0; i < have; i++)
        tmp[i] = ticks[*due > keep ? (head + i) % keep : i];
    int first_on_time = have; /* the on-time ticks are the newest */
    while (first_on_time > 0 && now_ms - tmp[first_on_time - 1] <= grace_ms)
        first_on_time--;
    int missed_from = first_on_time - missed_keep;
    if (missed_from < 0)
        missed_from = 0;
    if (s->missed == JM_MISSED_SKIP && first_on_time < have)
        missed_from = first_on_time; /* skip: the latest tick is on time, no missed one fires */
    for (int i = missed_from; i < have; i++)
        ticks[(*n)++] = tmp[i];
    free(tmp);
    return JM_OK;
}
