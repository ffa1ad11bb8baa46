/* schedules.c - the janitor's cron duty: each tick, fire every due schedule
 * (libshared schedule.h: each tick's job enqueued idempotently by schedule +
 * tick, then a compare-and-set advance, so any number of janitors fire each
 * tick exactly once), by Redis TIME, never this host's clock. */
#include "janitor.h"
#include "jobmill/log.h"
#include "jobmill/schedule.h"

int
janitor_schedules(janitor *j)
{
    jm_error err;
    jm_error_clear(&err);
    jm_schedule_stats st;
    int rc = jm_schedule_run_due(j->redis, JANITOR_SCHEDULES_PER_TICK, &st, &err);
    jm_metric_add(j->m.sched_fired, st.fired);
    jm_metric_add(j->m.sched_skipped, st.skipped);
    if (st.fired + st.skipped > 0)
        jm_log_info("schedules fired", JM_LOG_INT("fired", st.fired),
                    JM_LOG_INT("skipped", st.skipped), NULL);
    if (rc != JM_OK)
        return janitor_redis_failed(j, "schedules", NULL, &err);
    return JM_OK;
}
