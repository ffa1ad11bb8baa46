/* main.c - jobmill-janitor: start-up, the tick loop and shutdown;
 * docs/janitor.md describes the service.
 *
 * Each tick (janitor.interval_ms, measured from tick start) runs tick.c's
 * duties; the rest of the interval is slept with jm_service_sleep_ms, which a
 * SIGTERM cuts short, waking only to fire the next cron schedule tick. SIGTERM/SIGINT let the current tick finish, then the
 * janitor frees everything and exits 0 (a second signal also cuts the tick
 * short). Redis trouble is never fatal: the connection reconnects with
 * backoff and the next tick retries. Exit codes: 0 clean stop or
 * --help/--version, 1 start-up failure (metrics listener, no memory) or a
 * Redis layout newer than this build, 2 bad flag or config.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "janitor.h"
#include "jobmill/httpd.h"
#include "jobmill/log.h"

/* Starts the health/metrics listener with SIGTERM/SIGINT blocked, so
 * civetweb's threads inherit a mask that leaves the signals to the main
 * thread (whose sleep they must interrupt). */
static jm_httpd *
start_httpd(janitor *j, jm_error *err)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    jm_httpd_opts opts = {
        .listen = j->svc.cfg.janitor_metrics_listen,
        .metrics = j->svc.metrics,
        .ready = janitor_ready,
        .user = j,
    };
    jm_httpd *srv = jm_httpd_start(&opts, err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return srv;
}

/* Creates the connections, the reconciler and the metrics. JM_OK or an
 * error already logged. */
static int
setup(janitor *j)
{
    const jm_config *cfg = &j->svc.cfg;
    jm_error err;
    jm_error_clear(&err);
    j->ret.result_ttl_s = cfg->result_ttl_s;
    j->ret.failed_ttl_s = cfg->failed_ttl_s;
    atomic_init(&j->version_ok, 0);
    if (janitor_metrics_init(&j->m, j->svc.metrics) != JM_OK) {
        jm_log_error("out of memory registering metrics", NULL);
        return JM_ERR_NOMEM;
    }
    for (int i = 0; i < cfg->n_queues; i++)
        janitor_metrics_queue(&j->m, cfg->queues[i].name);
    /* jobmill_redis_errors_total{op} at 0 for every operation of the loop */
    static const char *const ops[] = {
        "check_version", "queue_names", "requeue_expired", "promote_due",   "expire_stale",
        "trim_pending",  "purge",       "workers_prune",   "workers_stats", "reconcile",
        "batch_release", "schedules",   "limits"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        const char *v[] = {ops[i], NULL};
        if (j->svc.redis_errors != NULL)
            jm_metrics_series(j->svc.redis_errors, v);
    }
    int ready_timeout = cfg->redis_timeout_ms < 2000 ? cfg->redis_timeout_ms : 2000;
    j->redis = jm_redis_new(cfg->redis_url, cfg->prefix, cfg->redis_timeout_ms, &err);
    if (j->redis != NULL)
        j->ready_redis = jm_redis_new(cfg->redis_url, cfg->prefix, ready_timeout, &err);
    if (j->redis == NULL || j->ready_redis == NULL) {
        jm_log_error("cannot set up the redis connection", "error", err.msg, NULL);
        return err.code != JM_OK ? err.code : JM_ERR_NOMEM;
    }
    j->reconciler = jm_reconciler_new(cfg->janitor_batch, JANITOR_RECOUNT_MAX);
    if (j->reconciler == NULL) {
        jm_log_error("out of memory", NULL);
        return JM_ERR_NOMEM;
    }
    return JM_OK;
}

/* Ticks until a stop signal; returns the exit code. Between ticks it wakes
 * for the next cron schedule tick (j->sched_at) and fires only that, so a
 * tick's job is enqueued within milliseconds, not up to an interval late. */
static int
run(janitor *j)
{
    int interval = j->svc.cfg.janitor_interval_ms;
    j->sched_at = -1;
    while (jm_signals == 0) {
        int64_t start = jm_clock_ms();
        if (janitor_tick(j) == JM_ERR_VERSION)
            return 1;
        for (int64_t left = start + interval - jm_clock_ms(); left > 0 && jm_signals == 0;
             left = start + interval - jm_clock_ms()) {
            int64_t now = jm_clock_ms();
            if (j->sched_at >= 0 && j->sched_at <= now && atomic_load(&j->version_ok)) {
                janitor_schedules(j); /* sets the next sched_at, or -1 */
                continue;
            }
            if (j->sched_at >= 0 && j->sched_at - now < left)
                left = j->sched_at - now;
            jm_service_sleep_ms((int)left);
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static janitor j;
    int code = jm_service_start(&j.svc, "janitor", argc, argv);
    if (code != JM_OK)
        return jm_service_exit_code(code);
    pthread_mutex_init(&j.ready_lock, NULL);
    jm_httpd *srv = NULL;
    code = 1;
    if (setup(&j) == JM_OK) {
        jm_error err;
        jm_error_clear(&err);
        srv = start_httpd(&j, &err);
        if (srv == NULL) {
            jm_log_error("cannot start the health/metrics listener", "listen",
                         j.svc.cfg.janitor_metrics_listen, "error", err.msg, NULL);
        } else {
            jm_log_info("janitor started", "listen", j.svc.cfg.janitor_metrics_listen, "version",
                        JM_VERSION, NULL);
            code = run(&j);
            jm_log_info(code == 0 ? "janitor stopped" : "janitor stopping on error", NULL);
        }
    }
    jm_httpd_stop(srv);
    jm_reconciler_free(j.reconciler);
    jm_redis_free(j.ready_redis);
    jm_redis_free(j.redis);
    pthread_mutex_destroy(&j.ready_lock);
    jm_service_finish(&j.svc);
    return code;
}
