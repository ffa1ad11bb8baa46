/* reconcile_pass.c - one bounded pass of the reconciler (libshared
 * reconcile.h): at most JANITOR_RECONCILE_SLICES Redis calls and a time
 * budget, resuming from the cursor the janitor keeps across ticks; what it
 * repaired goes to jobmill_janitor_repaired_total{kind} and the log, what it
 * purged (entries whose record expired normally) to
 * jobmill_janitor_purged_total{queue}. */
#include <inttypes.h>
#include <stdio.h>
#include "janitor.h"
#include "jobmill/log.h"

/* Calls per jm_reconciler_step, so the time budget is checked often. */
#define PASS_STEP 4

/* Entries the reconciler removed because their record expired normally are
 * purges, not repairs: counted per queue like the purge duty's. */
static void
on_purged(void *user, const char *queue, int64_t n)
{
    janitor *j = user;
    janitor_metrics_add(j->m.purged, queue, NULL, (int)n);
}

int
janitor_reconcile_pass(janitor *j, int64_t budget_ms)
{
    int64_t deadline = jm_clock_ms() + budget_ms;
    jm_reconcile_tally tally = {.on_purged = on_purged, .user = j};
    jm_error err;
    jm_error_clear(&err);
    int rc = JM_OK;
    for (int left = JANITOR_RECONCILE_SLICES; left > 0 && jm_clock_ms() < deadline;
         left -= PASS_STEP) {
        int done = 0;
        rc = jm_reconciler_step(j->reconciler, j->redis, left < PASS_STEP ? left : PASS_STEP,
                                &tally, &done, &err);
        if (rc != JM_OK)
            break;
        if (done) {
            jm_metric_inc(j->m.cycles);
            break;
        }
    }
    for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++) {
        if (tally.repaired[k] <= 0)
            continue;
        jm_metric_add(j->m.repaired[k], (double)tally.repaired[k]);
        jm_log_warn("reconciler repaired index drift", "kind",
                    jm_repair_kind_name((jm_repair_kind)k),
                    JM_LOG_INT("repaired", tally.repaired[k]), NULL);
    }
    if (rc != JM_OK)
        return janitor_redis_failed(j, "reconcile", NULL, &err);
    return JM_OK;
}
