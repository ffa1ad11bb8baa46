/* main.c - jobmill-worker: start, wait, drain, stop.
 *
 * Start: load the config (jm_service_start), block SIGTERM/SIGINT in every
 * thread but this one (they are only ever delivered here, where pselect
 * unblocks them atomically, so no wake-up is lost), serve /healthz /readyz
 * /metrics, wait for Redis and check its layout version (exit 1 when it is
 * newer than this build), then start the heartbeat, one runner per slot
 * and the claimer.
 *
 * Drain (first SIGTERM/SIGINT): /readyz turns 503, the claimer stops
 * claiming, in-flight jobs get shutdown_grace_ms to finish; then the rest
 * are stopped and released (back to the head of their queues, attempt
 * given back). Once every slot is free: stop the threads, deregister, free
 * everything, exit 0. A second signal exits at once (exit code 1): the
 * handlers' process groups are SIGKILLed and the leases left to expire.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include "jobmill/clock.h"
#include "jobmill/httpd.h"
#include "jobmill/log.h"
#include "jobmill/workers.h"
#include "worker.h"

#define EXIT_NOW_CODE 1
#define VERSION_RETRY_MAX_MS 5000

static sigset_t run_mask; /* this thread's mask with the stop signals unblocked */

/* wait_main sleeps until a notification, a signal or timeout_ms (< 0 =
 * none) passes. */
static void
wait_main(wk_worker *w, int64_t timeout_ms)
{
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(w->notify[0], &rd);
    struct timespec ts, *tp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    if (pselect(w->notify[0] + 1, &rd, NULL, NULL, tp, &run_mask) > 0) {
        char buf[64];
        while (read(w->notify[0], buf, sizeof(buf)) > 0)
            ;
    }
}

/* exit_now is the second-signal path: no cleanup beyond the children. */
static void __attribute__((noreturn)) exit_now(wk_worker *w)
{
    wk_slots_kill_children(&w->slots);
    jm_log_warn("second signal: exiting at once; leases will expire", "worker", w->id, NULL);
    _exit(EXIT_NOW_CODE);
}

/* keep_std_fds opens /dev/null on any of fds 0-2 that is closed, so pipes
 * never land there. */
static void
keep_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

/* check_version waits for Redis and checks the layout version. JM_OK to go
 * on; JM_ERR_VERSION (newer layout: exit 1); JM_ERR_USAGE when a signal
 * came first (nothing to drain: exit 0). */
static int
check_version(wk_worker *w)
{
    jm_backoff delay = JM_BACKOFF(100, VERSION_RETRY_MAX_MS);
    bool warned = false;
    while (jm_signals == 0) {
        int rc = jm_service_check_version(w->svc, w->claim_r, &warned);
        if (rc == JM_OK || rc == JM_ERR_VERSION)
            return rc;
        wk_worker_set_redis(w, 0, "redis unreachable: layout version not checked yet");
        wait_main(w, jm_backoff_next(&delay));
    }
    return JM_ERR_USAGE;
}

/* drain runs the graceful stop; returns when every slot is free and the
 * claimer has stopped (or never returns, on a second signal). */
static void
drain(wk_worker *w)
{
    jm_log_info("draining: claiming stopped", "worker", w->id,
                JM_LOG_INT("in_flight", wk_slots_busy(&w->slots)), NULL);
    atomic_store(&w->draining, 1);
    wk_slots_drain(&w->slots);
    int64_t deadline = jm_clock_ms() + w->cfg->shutdown_grace_ms;
    int killed = 0;
    for (;;) {
        if (jm_signals >= 2)
            exit_now(w);
        if (atomic_load(&w->claimer_done) && wk_slots_busy(&w->slots) == 0)
            return;
        int64_t now = jm_clock_ms();
        if (!killed && now >= deadline) {
            jm_log_warn("shutdown grace over: stopping and releasing jobs",
                        JM_LOG_INT("in_flight", wk_slots_busy(&w->slots)), NULL);
            wk_slots_stop_all(&w->slots, WK_STOP_DRAIN);
            killed = 1;
        }
        wait_main(w, killed ? -1 : deadline - now);
    }
}

static int
run(wk_worker *w)
{
    jm_error err;
    jm_error_clear(&err);
    jm_httpd_opts ho = {.listen = w->cfg->worker_metrics_listen,
                        .metrics = w->svc->metrics,
                        .ready = wk_worker_ready,
                        .refresh = wk_worker_refresh,
                        .user = w};
    jm_httpd *httpd = jm_httpd_start(&ho, &err);
    if (httpd == NULL) {
        jm_log_error("cannot serve health and metrics", "listen", w->cfg->worker_metrics_listen,
                     "error", err.msg, NULL);
        return 1;
    }
    int vrc = check_version(w);
    if (vrc != JM_OK) {
        jm_httpd_stop(httpd);
        jm_log_info("worker stopped before it started", "worker", w->id, NULL);
        return jm_service_exit_code(vrc);
    }
    wk_worker_set_redis(w, 1, NULL);
    int rc = wk_heartbeat_start(w, &err);
    int hb = rc == JM_OK;
    if (rc == JM_OK)
        rc = wk_runners_start(w, &err);
    int claimer = 0;
    if (rc == JM_OK && (rc = wk_claimer_start(w, &err)) == JM_OK)
        claimer = 1;
    if (!claimer)
        atomic_store(&w->claimer_done, 1); /* nothing to wait for in drain */
    if (rc == JM_OK) {
        atomic_store(&w->started, 1);
        jm_log_info("worker started", "worker", w->id, "queues", w->queues_csv,
                    JM_LOG_INT("concurrency", w->cfg->concurrency), "listen",
                    w->cfg->worker_metrics_listen, NULL);
        while (jm_signals == 0)
            wait_main(w, -1);
    } else {
        jm_log_error("cannot start worker threads", "error", err.msg, NULL);
    }
    drain(w); /* also stops what did start after a start-up failure */
    wk_runners_join(w);
    if (claimer)
        wk_claimer_join(w);
    wk_claimer_recover_rest(w);
    if (hb)
        wk_heartbeat_stop(w);
    jm_error_clear(&err);
    if (jm_workers_remove(w->hb_r, w->id, &err) != JM_OK)
        jm_log_warn("could not deregister; the registry entry will expire", "error", err.msg, NULL);
    jm_httpd_stop(httpd);
    jm_log_info("worker stopped", "worker", w->id, NULL);
    return rc == JM_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
    jm_service svc;
    int code = jm_service_start(&svc, "worker", argc, argv);
    if (code != JM_OK)
        return jm_service_exit_code(code);
    keep_std_fds();
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &run_mask);
    sigdelset(&run_mask, SIGTERM);
    sigdelset(&run_mask, SIGINT);

    wk_worker w;
    jm_error err;
    jm_error_clear(&err);
    if (wk_worker_init(&w, &svc, &err) != JM_OK) {
        jm_log_error("cannot initialise the worker", "error", err.msg, NULL);
        wk_worker_free(&w);
        jm_service_finish(&svc);
        return 1;
    }
    code = run(&w);
    wk_worker_free(&w);
    jm_service_finish(&svc);
    return code;
}
