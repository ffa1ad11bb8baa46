/* wmetrics.h - the worker's Prometheus families (docs/metrics.md).
 *
 * Every labelled family is pre-created at zero for every configured queue
 * (and status, and handled job type), so dashboards never meet a missing
 * series. The type label only takes handled types (built-ins and configured
 * exec handlers); any other type is reported as "unhandled", so job input
 * can never blow up the series count.
 *
 * Series live in the service's registry;
 * updates are lock-free and safe from any thread.
 */
#ifndef WK_WMETRICS_H
#define WK_WMETRICS_H

#include "jobmill/config.h"
#include "jobmill/metrics.h"

typedef enum wk_finish {
    WK_FINISH_SUCCEEDED = 0,
    WK_FINISH_FAILED,
    WK_FINISH_CANCELED,
    WK_FINISH_COUNT,
} wk_finish;

typedef struct wk_metrics {
    const jm_config *cfg;       /* borrowed */
    jm_metric_family *duration; /* jobmill_job_duration_seconds{queue,type} */
    jm_metric_series *finished[JM_CFG_MAX_QUEUES][WK_FINISH_COUNT];
    jm_metric_series *wait[JM_CFG_MAX_QUEUES];
    jm_metric_series *retries[JM_CFG_MAX_QUEUES];
    jm_metric_series *throttled[JM_CFG_MAX_QUEUES];
    jm_metric_series *busy, *concurrency;
    jm_metric_series *leases_lost, *spawn_failures, *heartbeats;
    jm_metric_series *log_lines_dropped, *progress_ignored; /* logship.c */
} wk_metrics;

/* wk_metrics_init registers the worker families in reg and pre-creates their
 * series. Returns JM_OK, or JM_ERR_NOMEM when the registry ran out of memory. */
int wk_metrics_init(wk_metrics *m, jm_metrics *reg, const jm_config *cfg);

/* wk_metrics_queue returns the index of queue in cfg->queues, or -1. */
int wk_metrics_queue(const wk_metrics *m, const char *queue);

/* Per-job updates; queue names outside the configuration are ignored. */
void wk_metrics_finished(wk_metrics *m, const char *queue, wk_finish status);
void wk_metrics_retry(wk_metrics *m, const char *queue);
/* wk_metrics_throttled counts a claim an operator limit held back. */
void wk_metrics_throttled(wk_metrics *m, const char *queue);
void wk_metrics_wait(wk_metrics *m, const char *queue, double seconds);
void wk_metrics_duration(wk_metrics *m, const char *queue, const char *type, double seconds);

/* wk_metric_bump adds one to s when s is not NULL. */
void wk_metric_bump(jm_metric_series *s);

#endif
