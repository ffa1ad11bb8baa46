/* janitor_metrics.c - the janitor's metric families (docs/janitor.md lists
 * them). Every labelled counter is created at 0 for every known queue and
 * every reason/kind, so the families are complete from start-up. */
#include "janitor.h"

static const char *const reason_names[JANITOR_REASON_COUNT] = {"lease_expired", "dead_lettered"};

const char *
janitor_reason_name(janitor_reason r)
{
    return r >= 0 && r < JANITOR_REASON_COUNT ? reason_names[r] : "unknown";
}

int
janitor_metrics_init(janitor_metrics *m, jm_metrics *reg)
{
    static const char *const qr[] = {"queue", "reason", NULL};
    static const char *const q[] = {"queue", NULL};
    static const char *const k[] = {"kind", NULL};
    jm_metric_family *rep = NULL;
    const jm_metric_def defs[] = {
        {&m->requeued, NULL, "jobmill_janitor_requeued_total", JM_METRIC_COUNTER, qr,
         "Running jobs whose lease expired, by queue and outcome (lease_expired: back to "
         "queued; dead_lettered: no attempt left, failed)."},
        {&m->expired, NULL, "jobmill_janitor_expired_total", JM_METRIC_COUNTER, q,
         "Queued or scheduled jobs expired past expires_in_s."},
        {&m->promoted, NULL, "jobmill_janitor_promoted_total", JM_METRIC_COUNTER, q,
         "Scheduled and retry jobs moved to queued when due."},
        {&m->purged, NULL, "jobmill_janitor_purged_total", JM_METRIC_COUNTER, q,
         "Finished jobs removed from the indexes after retention."},
        {&rep, NULL, "jobmill_janitor_repaired_total", JM_METRIC_COUNTER, k,
         "Index drift repaired by the reconciler, by kind."},
        {NULL, &m->pruned, "jobmill_janitor_workers_pruned_total", JM_METRIC_COUNTER, NULL,
         "Workers removed from the registry after missing three of their own heartbeats."},
        {NULL, &m->ticks, "jobmill_janitor_ticks_total", JM_METRIC_COUNTER, NULL,
         "Janitor ticks completed."},
        {NULL, &m->last_tick, "jobmill_janitor_last_tick_timestamp_seconds", JM_METRIC_GAUGE, NULL,
         "Unix time at which the last tick completed (0 = none yet)."},
        {NULL, &m->duration, "jobmill_janitor_tick_duration_seconds", JM_METRIC_HISTOGRAM, NULL,
         "Duration of janitor ticks."},
        {NULL, &m->cycles, "jobmill_janitor_reconcile_cycles_total", JM_METRIC_COUNTER, NULL,
         "Full reconciler cycles completed (every record and every queue index)."},
        {NULL, &m->workers_live, "jobmill_workers_live", JM_METRIC_GAUGE, NULL,
         "Workers in the registry whose record has not expired (C and HTTP workers)."},
        {NULL, &m->sched_fired, "jobmill_janitor_schedule_fired_total", JM_METRIC_COUNTER, NULL,
         "Cron schedule ticks whose job this janitor enqueued (each tick once across janitors)."},
        {NULL, &m->sched_skipped, "jobmill_janitor_schedule_skipped_total", JM_METRIC_COUNTER, NULL,
         "Missed cron schedule ticks dropped by their missed-tick policy."},
        {NULL, &m->hb_age_max, "jobmill_worker_heartbeat_age_max_seconds", JM_METRIC_GAUGE, NULL,
         "Seconds since the stalest live worker's last heartbeat (0 = no live worker)."},
    };
    if (jm_metrics_register(reg, defs, sizeof(defs) / sizeof(defs[0])) != JM_OK)
        return JM_ERR_NOMEM;
    for (int i = 0; i < JM_REPAIR_KIND_COUNT; i++) {
        const char *v[] = {jm_repair_kind_name((jm_repair_kind)i), NULL};
        if ((m->repaired[i] = jm_metrics_series(rep, v)) == NULL)
            return JM_ERR_NOMEM;
    }
    return JM_OK;
}

void
janitor_metrics_queue(janitor_metrics *m, const char *queue)
{
    for (int r = 0; r < JANITOR_REASON_COUNT; r++)
        janitor_metrics_add(m->requeued, queue, reason_names[r], 0);
    janitor_metrics_add(m->expired, queue, NULL, 0);
    janitor_metrics_add(m->promoted, queue, NULL, 0);
    janitor_metrics_add(m->purged, queue, NULL, 0);
}

void
janitor_metrics_add(jm_metric_family *fam, const char *queue, const char *reason, int n)
{
    const char *v[] = {queue, reason, NULL};
    jm_metric_series *s = jm_metrics_series(fam, v);
    if (s != NULL && n > 0)
        jm_metric_add(s, n);
}
