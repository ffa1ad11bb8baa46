/* api_metrics.c - the api's metric families and the scrape-time queue gauges
 * (see api_metrics.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api.h"
#include "api_metrics.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"

#define API_METRICS_CACHE_MS 1000

struct api_metrics {
    jm_service *svc;              /* borrowed */
    jm_metric_family *requests;   /* counter {route,code} */
    jm_metric_family *duration;   /* histogram {route} */
    jm_metric_family *submitted;  /* counter {queue} */
    jm_metric_family *queue_jobs; /* gauge {queue,state} */
    jm_metric_family *oldest_age; /* gauge {queue} */
    jm_metric_family *paused;     /* gauge {queue}: 1 paused */
    jm_metric_series *long_polls; /* gauge */
    pthread_mutex_t refresh_lock; /* one refresh at a time; guards last_refresh */
    long long last_refresh_ms;    /* monotonic; 0 = never */
};

static jm_metric_series *
series1(jm_metric_family *f, const char *v)
{
    const char *vals[] = {v, NULL};
    return f != NULL ? jm_metrics_series(f, vals) : NULL;
}

static jm_metric_series *
series2(jm_metric_family *f, const char *a, const char *b)
{
    const char *vals[] = {a, b, NULL};
    return f != NULL ? jm_metrics_series(f, vals) : NULL;
}

api_metrics *
api_metrics_new(jm_service *svc)
{
    api_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->refresh_lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->svc = svc;
    static const char *const rc[] = {"route", "code", NULL};
    static const char *const r[] = {"route", NULL};
    static const char *const q[] = {"queue", NULL};
    static const char *const qs[] = {"queue", "state", NULL};
    const jm_metric_def defs[] = {
        {&m->requests, NULL, "jobmill_http_requests_total", JM_METRIC_COUNTER, rc,
         "HTTP requests answered, by route template and status code."},
        {&m->duration, NULL, "jobmill_http_request_duration_seconds", JM_METRIC_HISTOGRAM, r,
         "HTTP request latency by route template (long-polls included)."},
        {&m->submitted, NULL, "jobmill_jobs_submitted_total", JM_METRIC_COUNTER, q,
         "Jobs created by submits (idempotent replays excluded)."},
        {&m->queue_jobs, NULL, "jobmill_queue_jobs", JM_METRIC_GAUGE, qs,
         "Jobs per queue and state, read from Redis at scrape time."},
        {&m->paused, NULL, "jobmill_queue_paused", JM_METRIC_GAUGE, q,
         "1 while the queue is paused (workers claim nothing from it), else 0."},
        {&m->oldest_age, NULL, "jobmill_queue_oldest_age_seconds", JM_METRIC_GAUGE, q,
         "Age of the oldest queued job per queue (0 = none waiting)."},
        {NULL, &m->long_polls, "jobmill_api_long_polls", JM_METRIC_GAUGE, NULL,
         "Long-polls waiting now: GET /v1/jobs/{id}?wait and HTTP worker claims."},
    };
    if (jm_metrics_register(svc->metrics, defs, sizeof(defs) / sizeof(defs[0])) != JM_OK) {
        api_metrics_free(m);
        return NULL;
    }
    size_t n;
    const api_route *routes = api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        const char *ok = (routes[i].flags & API_ROUTE_BODY) ? "201" : "200";
        series2(m->requests, routes[i].path, ok);
        series1(m->duration, routes[i].path);
    }
    series1(m->duration, API_ROUTE_UNMATCHED);
    series1(m->submitted, "default");
    /* Redis operations this service can fail at, visible at 0 from start. */
    static const char *const ops[] = {
        "submit",    "get",      "cancel",  "retry",     "queues",        "pause", "list",
        "workers",   "ready",    "metrics", "subscribe", "check_version", "claim", "worker_beat",
        "heartbeat", "complete", "fail",    "progress",  "logs",          NULL};
    for (size_t i = 0; ops[i] != NULL; i++)
        series1(svc->redis_errors, ops[i]);
    return m;
}

void
api_metrics_free(api_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->refresh_lock);
    free(m);
}

void
api_metrics_request(api_metrics *m, const char *route, int code, double seconds)
{
    char c[16];
    snprintf(c, sizeof(c), "%d", code);
    jm_metric_series *s = series2(m->requests, route, c);
    if (s != NULL)
        jm_metric_inc(s);
    if ((s = series1(m->duration, route)) != NULL)
        jm_metric_observe(s, seconds);
}

void
api_metrics_submitted(api_metrics *m, const char *queue, int n)
{
    jm_metric_series *s = series1(m->submitted, queue);
    if (s != NULL)
        jm_metric_add(s, n);
}

/* refresh_queue sets the gauges of one queue; now_ms is Redis time. */
static int
refresh_queue(api_metrics *m, jm_redis *r, const char *name, int64_t now_ms, jm_error *err)
{
    jm_queue_info info;
    int rc = jm_queue_stats(r, name, &info, err);
    if (rc != JM_OK)
        return rc;
    for (int s = 0; s < JM_STATE_COUNT; s++) {
        jm_metric_series *g = series2(m->queue_jobs, name, jm_state_name((jm_state)s));
        if (g != NULL)
            jm_metric_set(g, (double)info.counts[s]);
    }
    double age = info.oldest_ms > 0 && now_ms > info.oldest_ms
                     ? (double)(now_ms - info.oldest_ms) / 1000.0
                     : 0.0;
    jm_metric_series *g = series1(m->oldest_age, name);
    if (g != NULL)
        jm_metric_set(g, age);
    if ((g = series1(m->paused, name)) != NULL)
        jm_metric_set(g, info.paused ? 1.0 : 0.0);
    series1(m->submitted, name); /* appears at 0 for every known queue */
    return JM_OK;
}

void
api_metrics_refresh(api_metrics *m, jm_redis *r, int waiters)
{
    jm_metric_set(m->long_polls, waiters);
    if (r == NULL)
        return;
    pthread_mutex_lock(&m->refresh_lock);
    long long now = jm_clock_ms();
    if (m->last_refresh_ms != 0 && now - m->last_refresh_ms < API_METRICS_CACHE_MS) {
        pthread_mutex_unlock(&m->refresh_lock);
        return;
    }
    m->last_refresh_ms = now;
    jm_error err;
    jm_error_clear(&err);
    char **names = NULL;
    size_t n = 0;
    int64_t redis_now = jm_redis_time_ms(r, &err);
    int rc = redis_now < 0 ? err.code : jm_queue_names(r, &names, &n, &err);
    /* one queue's failed read keeps its last values; the others still refresh */
    for (size_t i = 0; i < n && jm_redis_connected(r); i++) {
        jm_error qerr;
        jm_error_clear(&qerr);
        if (refresh_queue(m, r, names[i], redis_now, &qerr) != JM_OK && rc == JM_OK) {
            rc = qerr.code;
            err = qerr;
        }
    }
    jm_strv_free(names, n);
    pthread_mutex_unlock(&m->refresh_lock);
    if (rc != JM_OK) {
        jm_service_redis_error(m->svc, "metrics");
        jm_log_warn("metrics: cannot read queue gauges from redis; serving the last values",
                    "error", err.msg, NULL);
    }
}
