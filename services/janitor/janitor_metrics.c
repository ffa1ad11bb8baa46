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

static jm_metric_series *
plain(jm_metrics *reg, const char *name, const char *help, jm_metric_type type)
{
    jm_metric_family *f = jm_metrics_family(reg, name, help, type, NULL, NULL, 0);
    return f != NULL ? jm_metrics_series(f, NULL) : NULL;
}

int
janitor_metrics_init(janitor_metrics *m, jm_metrics *reg)
{
    const char *qr[] = {"queue", "reason", NULL};
    const char *q[] = {"queue", NULL};
    const char *k[] = {"kind", NULL};
    m->requeued = jm_metrics_family(
        reg, "jobmill_janitor_requeued_total",
        "Running jobs whose lease expired, by queue and outcome (lease_expired: back to "
        "queued; dead_lettered: no attempt left, failed).",
        JM_METRIC_COUNTER, qr, NULL, 0);
    m->expired = jm_metrics_family(reg, "jobmill_janitor_expired_total",
                                   "Queued or scheduled jobs expired past expires_in_s.",
                                   JM_METRIC_COUNTER, q, NULL, 0);
    m->promoted = jm_metrics_family(reg, "jobmill_janitor_promoted_total",
                                    "Scheduled and retry jobs moved to queued when due.",
                                    JM_METRIC_COUNTER, q, NULL, 0);
    m->purged = jm_metrics_family(reg, "jobmill_janitor_purged_total",
                                  "Finished jobs removed from the indexes after retention.",
                                  JM_METRIC_COUNTER, q, NULL, 0);
    jm_metric_family *rep = jm_metrics_family(
        reg, "jobmill_janitor_repaired_total",
        "Index drift repaired by the reconciler, by kind.", JM_METRIC_COUNTER, k, NULL, 0);
    m->pruned = plain(reg, "jobmill_janitor_workers_pruned_total",
                      "Workers removed from the registry after missing three heartbeats.",
                      JM_METRIC_COUNTER);
    m->ticks = plain(reg, "jobmill_janitor_ticks_total", "Janitor ticks completed.",
                     JM_METRIC_COUNTER);
    m->last_tick = plain(reg, "jobmill_janitor_last_tick_timestamp_seconds",
                         "Unix time at which the last tick completed (0 = none yet).",
                         JM_METRIC_GAUGE);
    m->duration = plain(reg, "jobmill_janitor_tick_duration_seconds",
                        "Duration of janitor ticks.", JM_METRIC_HISTOGRAM);
    m->cycles = plain(reg, "jobmill_janitor_reconcile_cycles_total",
                      "Full reconciler cycles completed (every record and every queue index).",
                      JM_METRIC_COUNTER);
    if (m->requeued == NULL || m->expired == NULL || m->promoted == NULL || m->purged == NULL ||
        rep == NULL || m->pruned == NULL || m->ticks == NULL || m->last_tick == NULL ||
        m->duration == NULL || m->cycles == NULL)
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
