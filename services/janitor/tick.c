/* tick.c - one janitor tick: over every queue, in bounded batches, re-queue
 * expired leases, promote due scheduled/retry jobs, expire queued jobs past
 * their deadline, drop dead entries from the head of pending, release the
 * held jobs of sealed batches (docs/batches.md), and purge
 * finished records past retention; then (once) set the YAML queue limits,
 * fire the due cron schedules
 * (schedules.c), prune dead workers, set the worker
 * liveness gauges and, every janitor.reconcile_every ticks, run a
 * reconciler pass.
 * Each duty is one libshared call (one Lua script that re-checks its guard),
 * so several janitors may tick at once. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "janitor.h"
#include "jobmill/batch.h"
#include "jobmill/log.h"
#include "jobmill/workers.h"

int
janitor_redis_failed(janitor *j, const char *op, const char *queue, const jm_error *err)
{
    jm_service_redis_error(&j->svc, op);
    if (err->code == JM_ERR_REDIS) {
        if (!j->redis_down)
            jm_log_warn("redis unreachable; retrying with backoff", "op", op, "error", err->msg,
                        NULL);
        j->redis_down = true;
    } else {
        jm_log_error("janitor call failed", "op", op, "queue", queue, "error", err->msg, NULL);
    }
    return err->code != JM_OK ? err->code : JM_ERR_REDIS;
}

/* ---- the duties: each does one call, counts it, and says how many ids it
 * handled in *n (a full batch means "call again") ---- */

typedef int (*duty_fn)(janitor *j, const char *queue, int *n, jm_error *err);

static int
duty_requeue(janitor *j, const char *queue, int *n, jm_error *err)
{
    int requeued = 0, failed = 0, canceled = 0, dropped = 0;
    int rc = jm_queue_requeue_expired(j->redis, queue, j->svc.cfg.janitor_batch, &j->ret, &requeued,
                                      &failed, &canceled, &dropped, err);
    if (rc != JM_OK)
        return rc;
    janitor_metrics_add(j->m.requeued, queue, janitor_reason_name(JANITOR_REASON_LEASE_EXPIRED),
                        requeued);
    janitor_metrics_add(j->m.requeued, queue, janitor_reason_name(JANITOR_REASON_DEAD_LETTERED),
                        failed);
    if (requeued + failed > 0) {
        jm_log_info("expired leases recovered", "queue", queue, JM_LOG_INT("requeued", requeued),
                    JM_LOG_INT("dead_lettered", failed), NULL);
    }
    *n = requeued + failed + canceled + dropped; /* a full batch means "call again" */
    return JM_OK;
}

static int
duty_promote(janitor *j, const char *queue, int *n, jm_error *err)
{
    int rc = jm_queue_promote_due(j->redis, queue, j->svc.cfg.janitor_batch, n, err);
    if (rc == JM_OK)
        janitor_metrics_add(j->m.promoted, queue, NULL, *n);
    return rc;
}

static int
duty_expire(janitor *j, const char *queue, int *n, jm_error *err)
{
    int rc = jm_queue_expire_stale(j->redis, queue, j->svc.cfg.janitor_batch, &j->ret, n, err);
    if (rc == JM_OK && *n > 0) {
        janitor_metrics_add(j->m.expired, queue, NULL, *n);
        jm_log_info("jobs expired before starting", "queue", queue, JM_LOG_INT("expired", *n),
                    NULL);
    }
    return rc;
}

/* Dead entries at the head of pending (canceled or expired jobs: lazily
 * deleted) would make a claim scan past them before it reaches a new job;
 * drop them as soon as they die, not when a job arrives behind them. */
static int
duty_trim(janitor *j, const char *queue, int *n, jm_error *err)
{
    return jm_queue_trim_pending(j->redis, queue, j->svc.cfg.janitor_batch, n, err);
}

static int
duty_purge(janitor *j, const char *queue, int *n, jm_error *err)
{
    int rc = jm_queue_purge(j->redis, queue, j->svc.cfg.janitor_batch, n, err);
    if (rc == JM_OK)
        janitor_metrics_add(j->m.purged, queue, NULL, *n);
    return rc;
}

/* Sealed batches whose submitting api stopped releasing them (it died after
 * the seal): their held jobs are released here, in submission order. Then
 * the callbacks of done batches whose callback queue is in another slot. */
static int
duty_batches(janitor *j, const char *queue, int *n, jm_error *err)
{
    bool more = false;
    int rc = jm_batch_release(j->redis, queue, NULL, j->svc.cfg.janitor_batch, n, &more, err);
    int cbs = 0;
    if (rc == JM_OK && (rc = jm_batch_callbacks(j->redis, queue, 16, &cbs, err)) == JM_OK &&
        cbs > 0)
        jm_log_info("batch callbacks submitted", "queue", queue, JM_LOG_INT("callbacks", cbs),
                    NULL);
    return rc;
}

static const struct {
    const char *op;
    duty_fn fn;
} duties[] = {
    {"requeue_expired", duty_requeue},
    {"promote_due", duty_promote},
    {"expire_stale", duty_expire},
    {"trim_pending", duty_trim},
    {"purge", duty_purge},
    {"batch_release", duty_batches},
};

/* Runs every duty on queue: once, then again while a call fills its batch,
 * up to JANITOR_MAX_CALLS calls and not past deadline. Returns JM_OK or
 * JM_ERR_REDIS (stop the tick); other errors are logged and skipped. */
static int
queue_duties(janitor *j, const char *queue, int64_t deadline)
{
    for (size_t d = 0; d < sizeof(duties) / sizeof(duties[0]); d++) {
        for (int call = 0; call < JANITOR_MAX_CALLS; call++) {
            jm_error err;
            jm_error_clear(&err);
            int n = 0;
            if (duties[d].fn(j, queue, &n, &err) != JM_OK) {
                if (janitor_redis_failed(j, duties[d].op, queue, &err) == JM_ERR_REDIS)
                    return JM_ERR_REDIS;
                break;
            }
            if (n < j->svc.cfg.janitor_batch || jm_clock_ms() >= deadline || jm_signals >= 2)
                break;
        }
    }
    return JM_OK;
}

/* check_version: JM_OK once the layout was checked; JM_ERR_VERSION (stop);
 * a Redis error ends this tick (the next one retries). */
static int
check_version(janitor *j)
{
    if (atomic_load(&j->version_ok))
        return JM_OK;
    int rc = jm_service_check_version(&j->svc, j->redis, &j->version_warned);
    if (rc == JM_OK)
        atomic_store(&j->version_ok, 1);
    else if (rc != JM_ERR_VERSION)
        j->redis_down = true;
    return rc;
}

static int
prune_workers(janitor *j)
{
    jm_error err;
    jm_error_clear(&err);
    int n = 0;
    /* each worker is judged by the TTL its own beats set, not by ours */
    int64_t horizon = JM_WORKERS_TTL_MIN_MS / 2;
    if (jm_workers_prune(j->redis, horizon, &n, &err) != JM_OK)
        return janitor_redis_failed(j, "workers_prune", NULL, &err);
    if (n > 0) {
        jm_metric_add(j->m.pruned, n);
        jm_log_info("pruned silent workers", JM_LOG_INT("pruned", n), NULL);
    }
    return JM_OK;
}

/* worker_gauges sets jobmill_workers_live and
 * jobmill_worker_heartbeat_age_max_seconds from the registry, just pruned. */
static int
worker_gauges(janitor *j)
{
    jm_error err;
    jm_error_clear(&err);
    int64_t live = 0, age_ms = 0;
    if (jm_workers_stats(j->redis, &live, &age_ms, &err) != JM_OK)
        return janitor_redis_failed(j, "workers_stats", NULL, &err);
    jm_metric_set(j->m.workers_live, (double)live);
    jm_metric_set(j->m.hb_age_max, (double)age_ms / 1000.0);
    return JM_OK;
}

/* The duties over every queue; JM_OK or the error that stopped them. */
static int
all_queues(janitor *j, int64_t start)
{
    jm_error err;
    jm_error_clear(&err);
    char **names = NULL;
    size_t n = 0;
    if (jm_queue_names(j->redis, &names, &n, &err) != JM_OK)
        return janitor_redis_failed(j, "queue_names", NULL, &err);
    int64_t deadline = start + j->svc.cfg.janitor_interval_ms;
    int rc = JM_OK;
    for (size_t i = 0; i < n && rc == JM_OK && jm_signals < 2; i++) {
        if (!jm_queue_name_valid(names[i]))
            continue;
        janitor_metrics_queue(&j->m, names[i]);
        rc = queue_duties(j, names[i], deadline);
    }
    jm_strv_free(names, n);
    return rc;
}

int
janitor_tick(janitor *j)
{
    int64_t start = jm_clock_ms();
    j->tick_no++;
    int rc = check_version(j);
    if (rc == JM_OK)
        rc = all_queues(j, start);
    if (rc == JM_OK && !j->limits_synced)
        rc = janitor_queue_limits_apply(j);
    if (rc == JM_OK)
        rc = janitor_schedules(j);
    if (rc == JM_OK)
        rc = prune_workers(j);
    if (rc == JM_OK)
        rc = worker_gauges(j);
    if (rc == JM_OK && j->tick_no % j->svc.cfg.janitor_reconcile_every == 0) {
        int budget = j->svc.cfg.janitor_interval_ms / 2;
        rc = janitor_reconcile_pass(j, budget > 5 ? budget : 5);
    }
    if (rc == JM_OK) {
        if (j->redis_down)
            jm_log_info("redis reachable again", NULL);
        j->redis_down = false;
        jm_metric_set(j->m.last_tick, jm_clock_wall_s());
    }
    jm_metric_inc(j->m.ticks);
    jm_metric_observe(j->m.duration, (double)(jm_clock_ms() - start) / 1000.0);
    return rc;
}
