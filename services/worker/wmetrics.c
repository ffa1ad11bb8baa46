/* wmetrics.c - registration and updates of the worker's metrics (see
 * wmetrics.h).
 */
#include <string.h>
#include "wmetrics.h"

static const char *const finish_names[WK_FINISH_COUNT] = {"succeeded", "failed", "canceled"};
static const char *const builtin_types[] = {"echo", "sleep", "fail"};
#define N_BUILTINS (sizeof(builtin_types) / sizeof(builtin_types[0]))
#define UNHANDLED_TYPE "unhandled"

/* handled_type tells whether type names a built-in or a configured handler. */
static int
handled_type(const jm_config *cfg, const char *type)
{
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcmp(type, builtin_types[i]) == 0)
            return 1;
    return jm_config_handler(cfg, type) != NULL;
}

int
wk_metrics_init(wk_metrics *m, jm_metrics *reg, const jm_config *cfg)
{
    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
    static const char *const ql[] = {"queue", NULL};
    static const char *const qsl[] = {"queue", "status", NULL};
    static const char *const qtl[] = {"queue", "type", NULL};
    jm_metric_family *fin = NULL, *wait = NULL, *retries = NULL, *throttled = NULL;
    const jm_metric_def defs[] = {
        {&fin, NULL, "jobmill_jobs_finished_total", JM_METRIC_COUNTER, qsl,
         "Jobs this worker moved to a terminal state, by queue and status."},
        {&m->duration, NULL, "jobmill_job_duration_seconds", JM_METRIC_HISTOGRAM, qtl,
         "Handler run time of each attempt."},
        {&wait, NULL, "jobmill_job_wait_seconds", JM_METRIC_HISTOGRAM, ql,
         "Time from submit (or run_at) to the start of the attempt."},
        {&retries, NULL, "jobmill_worker_retries_total", JM_METRIC_COUNTER, ql,
         "Failed attempts scheduled for a retry with backoff, by queue."},
        {&throttled, NULL, "jobmill_worker_claims_throttled_total", JM_METRIC_COUNTER, ql,
         "Claims that a queue's rate limit or concurrency cap held back, by queue."},
        {NULL, &m->busy, "jobmill_worker_busy", JM_METRIC_GAUGE, NULL,
         "Jobs in flight in this worker."},
        {NULL, &m->concurrency, "jobmill_worker_concurrency", JM_METRIC_GAUGE, NULL,
         "Jobs this worker runs at once at most."},
        {NULL, &m->leases_lost, "jobmill_worker_leases_lost_total", JM_METRIC_COUNTER, NULL,
         "Claims whose lease was lost before an outcome was committed."},
        {NULL, &m->spawn_failures, "jobmill_worker_exec_spawn_failures_total", JM_METRIC_COUNTER,
         NULL, "Exec handlers that could not be started."},
        {NULL, &m->heartbeats, "jobmill_worker_heartbeats_total", JM_METRIC_COUNTER, NULL,
         "Lease renewal round trips that succeeded."},
        {NULL, &m->log_lines_dropped, "jobmill_worker_log_lines_dropped_total", JM_METRIC_COUNTER,
         NULL,
         "Exec handlers' stderr lines not shipped to their job's log (batch full, Redis "
         "failure, lease lost)."},
        {NULL, &m->progress_ignored, "jobmill_worker_progress_lines_ignored_total",
         JM_METRIC_COUNTER, NULL,
         "Lines on JOBMILL_PROGRESS_FD that were not a valid progress object."},
    };
    if (jm_metrics_register(reg, defs, sizeof(defs) / sizeof(defs[0])) != JM_OK)
        return JM_ERR_NOMEM;
    for (int q = 0; q < cfg->n_queues && q < JM_CFG_MAX_QUEUES; q++) {
        const char *name = cfg->queues[q].name;
        for (int s = 0; s < WK_FINISH_COUNT; s++) {
            const char *v[] = {name, finish_names[s], NULL};
            if ((m->finished[q][s] = jm_metrics_series(fin, v)) == NULL)
                return JM_ERR_NOMEM;
        }
        const char *v[] = {name, NULL};
        if ((m->wait[q] = jm_metrics_series(wait, v)) == NULL ||
            (m->retries[q] = jm_metrics_series(retries, v)) == NULL ||
            (m->throttled[q] = jm_metrics_series(throttled, v)) == NULL)
            return JM_ERR_NOMEM;
        for (size_t b = 0; b < N_BUILTINS; b++) {
            const char *tv[] = {name, builtin_types[b], NULL};
            if (jm_metrics_series(m->duration, tv) == NULL)
                return JM_ERR_NOMEM;
        }
        for (int h = 0; h < cfg->n_handlers; h++) {
            const char *tv[] = {name, cfg->handlers[h].type, NULL};
            if (jm_metrics_series(m->duration, tv) == NULL)
                return JM_ERR_NOMEM;
        }
    }
    jm_metric_set(m->concurrency, cfg->concurrency);
    return JM_OK;
}

int
wk_metrics_queue(const wk_metrics *m, const char *queue)
{
    for (int q = 0; q < m->cfg->n_queues && q < JM_CFG_MAX_QUEUES; q++)
        if (strcmp(m->cfg->queues[q].name, queue) == 0)
            return q;
    return -1;
}

void
wk_metric_bump(jm_metric_series *s)
{
    if (s != NULL)
        jm_metric_inc(s);
}

void
wk_metrics_finished(wk_metrics *m, const char *queue, wk_finish status)
{
    int q = wk_metrics_queue(m, queue);
    if (q >= 0 && status >= 0 && status < WK_FINISH_COUNT)
        wk_metric_bump(m->finished[q][status]);
}

void
wk_metrics_throttled(wk_metrics *m, const char *queue)
{
    int q = wk_metrics_queue(m, queue);
    if (q >= 0)
        wk_metric_bump(m->throttled[q]);
}

void
wk_metrics_retry(wk_metrics *m, const char *queue)
{
    int q = wk_metrics_queue(m, queue);
    if (q >= 0)
        wk_metric_bump(m->retries[q]);
}

void
wk_metrics_wait(wk_metrics *m, const char *queue, double seconds)
{
    int q = wk_metrics_queue(m, queue);
    if (q >= 0 && m->wait[q] != NULL)
        jm_metric_observe(m->wait[q], seconds < 0 ? 0 : seconds);
}

void
wk_metrics_duration(wk_metrics *m, const char *queue, const char *type, double seconds)
{
    if (wk_metrics_queue(m, queue) < 0 || m->duration == NULL)
        return;
    const char *v[] = {queue, handled_type(m->cfg, type) ? type : UNHANDLED_TYPE, NULL};
    jm_metric_series *s = jm_metrics_series(m->duration, v);
    if (s != NULL)
        jm_metric_observe(s, seconds < 0 ? 0 : seconds);
}
