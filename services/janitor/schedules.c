/* schedules.c - the janitor's cron duty: each tick, fire every due schedule
 * (libshared schedule.h: each tick's job enqueued idempotently by schedule +
 * tick, then a compare-and-set advance, so any number of janitors fire each
 * tick exactly once), by Redis TIME, never this host's clock. */
#include "janitor.h"
#include "jobmill/log.h"
#include "jobmill/schedule.h"

int
janitor_schedules_upsert(janitor *j)
{
    const char *text = j->svc.cfg.janitor_schedules;
    json_t *arr = text != NULL ? jm_json_parse_text(text) : NULL;
    int rc = JM_OK;
    for (size_t i = 0; rc == JM_OK && i < json_array_size(arr); i++) {
        jm_error err;
        jm_error_clear(&err);
        jm_schedule s;
        int result = 0;
        rc = jm_schedule_from_json(json_array_get(arr, i), &s, &err);
        if (rc == JM_OK)
            rc = jm_schedule_put(j->redis, &s, "yaml", &result, &err);
        if (rc == JM_OK && result != 0)
            jm_log_info(result == 1 ? "schedule created from the config"
                                    : "schedule replaced from the config",
                        "schedule", s.name, "cron", s.cron, "tz", s.tz, NULL);
        if (rc == JM_ERR_REDIS || rc == JM_ERR_REPLY) {
            rc = janitor_redis_failed(j, "schedules", s.name, &err);
        } else if (rc != JM_OK) { /* validated at load: only a stranger Redis state */
            jm_log_error("schedule from the config not stored", "schedule", s.name, "error",
                         err.msg, NULL);
            rc = JM_OK;
        }
        jm_schedule_clear(&s);
    }
    json_decref(arr);
    if (rc == JM_OK)
        j->schedules_synced = true;
    return rc == JM_ERR_REDIS ? rc : JM_OK; /* a bad reply: logged, tried again next tick */
}

int
janitor_schedules(janitor *j)
{
    if (!j->schedules_synced) {
        int rc = janitor_schedules_upsert(j);
        if (rc != JM_OK)
            return rc;
    }
    jm_error err;
    jm_error_clear(&err);
    jm_schedule_stats st;
    /* a tick is on time (not missed) while no more than two of our ticks late */
    int64_t grace = 2 * (int64_t)j->svc.cfg.janitor_interval_ms;
    if (grace < JM_SCHEDULE_GRACE_MS)
        grace = JM_SCHEDULE_GRACE_MS;
    int rc = jm_schedule_run_due(j->redis, JANITOR_SCHEDULES_PER_TICK, grace, &st, &err);
    jm_metric_add(j->m.sched_fired, st.fired);
    jm_metric_add(j->m.sched_skipped, st.skipped);
    if (st.fired + st.skipped > 0)
        jm_log_info("schedules fired", JM_LOG_INT("fired", st.fired),
                    JM_LOG_INT("skipped", st.skipped), NULL);
    /* the next tick of any schedule, as a deadline on this host's monotonic
     * clock (a difference of two Redis times: no trust in this host's wall
     * clock); none after an error: the next janitor tick looks again */
    j->sched_at = -1;
    if (rc == JM_OK && st.next_ms > 0) {
        int64_t wait = st.next_ms - st.now_ms;
        j->sched_at =
            jm_clock_ms() + (wait > JANITOR_SCHED_MIN_WAIT_MS ? wait : JANITOR_SCHED_MIN_WAIT_MS);
    }
    if (rc != JM_OK && janitor_redis_failed(j, "schedules", NULL, &err) == JM_ERR_REDIS)
        return JM_ERR_REDIS; /* the tick stops; anything else is logged and the tick goes on */
    return JM_OK;
}
