/* heartbeat.c - the heartbeat thread (see worker.h).
 *
 * Every heartbeat_ms, with its own connection:
 *   1. renews the lease of every busy slot with ONE jm_queue_heartbeat call
 *      (one script per queue, pipelined). LOST stops that job's handler at
 *      once (SIGKILL: commit nothing); CANCEL stops it and the runner then
 *      acknowledges the cancel. A renewal moves the slot's lease estimate to
 *      (send time + lease_ms), which is never later than Redis's deadline.
 *   2. stops every handler whose lease estimate has passed: renewals have
 *      been failing (Redis unreachable), so another worker may soon take the
 *      job. A separate watchdog thread does this (it never touches Redis), so
 *      a renewal call blocked on a hung Redis for up to redis.timeout_ms
 *      cannot delay the kill past the lease: the kill happens before the
 *      lease can be reclaimed.
 *   3. registers/refreshes the worker in the registry (jm_workers_beat,
 *      TTL a few periods) and, at most once a second, probes Redis for
 *      /readyz (reachable, maxmemory-policy noeviction).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/log.h"
#include "jobmill/workers.h"
#include "jobmill/clock.h"
#include "worker.h"

#define READY_PROBE_MS 1000
#define REGISTRY_TTL_PERIODS 3
#define REGISTRY_TTL_MIN_MS JM_WORKERS_TTL_MIN_MS

typedef struct hb_buf {
    wk_lease_ref *refs;
    jm_lease *leases;
    int *status;
} hb_buf;

/* renew runs step 1; returns 0, or -1 when the call failed (err set). */
static int
renew(wk_worker *w, hb_buf *b, int64_t t0, jm_error *err)
{
    int k = wk_slots_leases(&w->slots, b->refs);
    if (k == 0)
        return 0;
    for (int i = 0; i < k; i++) {
        b->leases[i] =
            (jm_lease){.id = b->refs[i].id, .queue = b->refs[i].queue, .lease = b->refs[i].lease};
        b->status[i] = -1;
    }
    int rc = jm_queue_heartbeat(w->hb_r, b->leases, (size_t)k, w->cfg->lease_ms, b->status, err);
    for (int i = 0; i < k; i++) {
        const wk_lease_ref *r = &b->refs[i];
        switch (b->status[i]) {
        case JM_LEASE_OK:
            wk_slots_renewed(&w->slots, r->slot, r->gen, t0 + w->cfg->lease_ms);
            break;
        case JM_LEASE_CANCEL:
            wk_slots_renewed(&w->slots, r->slot, r->gen, t0 + w->cfg->lease_ms);
            jm_log_info("cancel requested; stopping the handler", "job_id", r->id, NULL);
            wk_slots_stop(&w->slots, r->slot, r->gen, WK_STOP_CANCEL);
            break;
        case JM_LEASE_LOST:
            jm_log_warn("lease lost; stopping the handler", "job_id", r->id, NULL);
            wk_slots_stop(&w->slots, r->slot, r->gen, WK_STOP_LEASE_LOST);
            break;
        default: break; /* no answer for this one */
        }
    }
    if (rc != JM_OK)
        return -1;
    wk_metric_bump(w->m.heartbeats);
    return 0;
}

/* beat runs step 3. */
static void
beat(wk_worker *w, int64_t *last_probe, int *was_down)
{
    int busy = wk_slots_busy(&w->slots);
    jm_metric_set(w->m.busy, busy);
    jm_worker_info info = {.id = w->id,
                           .host = w->host,
                           .queues = w->queues_csv,
                           .pid = (int)getpid(),
                           .concurrency = w->cfg->concurrency,
                           .busy = busy};
    int ttl = w->cfg->heartbeat_ms * REGISTRY_TTL_PERIODS;
    if (ttl < REGISTRY_TTL_MIN_MS)
        ttl = REGISTRY_TTL_MIN_MS;
    jm_error err;
    jm_error_clear(&err);
    if (jm_workers_beat(w->hb_r, &info, ttl, &err) != JM_OK) {
        jm_service_redis_error(w->svc, "worker_beat");
        wk_worker_set_redis(w, 0, err.msg);
        if (!*was_down)
            jm_log_warn("redis unavailable; heartbeats failing", "error", err.msg, NULL);
        *was_down = 1;
        return;
    }
    int64_t now = jm_clock_ms();
    if (*was_down || now - *last_probe >= READY_PROBE_MS) {
        *last_probe = now;
        int rc = jm_redis_ready(w->hb_r, &err);
        if (rc == JM_ERR_REDIS)
            jm_service_redis_error(w->svc, "ready");
        wk_worker_set_redis(w, rc == JM_OK, err.msg);
    }
    if (*was_down)
        jm_log_info("redis reachable again; heartbeats resumed", NULL);
    *was_down = 0;
}

static void *
hb_main(void *p)
{
    wk_worker *w = p;
    size_t n = (size_t)w->slots.n;
    hb_buf b = {.refs = calloc(n, sizeof(*b.refs)),
                .leases = calloc(n, sizeof(*b.leases)),
                .status = calloc(n, sizeof(*b.status))};
    int64_t last_probe = 0;
    int was_down = 0;
    while (b.refs != NULL && b.leases != NULL && b.status != NULL) {
        int64_t t0 = jm_clock_ms();
        jm_error err;
        jm_error_clear(&err);
        if (renew(w, &b, t0, &err) != 0) {
            jm_service_redis_error(w->svc, "heartbeat");
            if (!was_down)
                jm_log_warn("lease renewal failed", "error", err.msg, NULL);
        }
        beat(w, &last_probe, &was_down);
        int64_t next = t0 + w->cfg->heartbeat_ms;
        pthread_mutex_lock(&w->hb_mu);
        while (!w->hb_stop && jm_cond_wait_until(&w->hb_cond, &w->hb_mu, next) == 0)
            ;
        int stop = w->hb_stop;
        pthread_mutex_unlock(&w->hb_mu);
        if (stop)
            break;
    }
    if (b.refs == NULL || b.leases == NULL || b.status == NULL)
        jm_log_error("heartbeat: out of memory", NULL);
    free(b.refs);
    free(b.leases);
    free(b.status);
    return NULL;
}

static void
signal_stop(wk_worker *w)
{
    pthread_mutex_lock(&w->hb_mu);
    w->hb_stop = 1;
    pthread_cond_broadcast(&w->hb_cond);
    pthread_mutex_unlock(&w->hb_mu);
}

/* The watchdog: wakes at the earliest lease estimate (and at least every
 * WATCHDOG_MAX_MS) and stops every handler whose estimate has passed. Lease
 * estimates only move later (renewals, new claims), so waiting until the
 * earliest one seen is never too late. */
#define WATCHDOG_MAX_MS 250

static void *
watchdog_main(void *p)
{
    wk_worker *w = p;
    for (;;) {
        int64_t now = jm_clock_ms();
        /* A claim made during the wait is seen at the next wake-up: keep
         * that well inside even the shortest lease. */
        int64_t cap =
            w->cfg->lease_ms / 4 < WATCHDOG_MAX_MS ? w->cfg->lease_ms / 4 : WATCHDOG_MAX_MS;
        int64_t next = wk_slots_expire(&w->slots, now);
        if (next > now + cap)
            next = now + cap;
        pthread_mutex_lock(&w->hb_mu);
        while (!w->hb_stop && jm_cond_wait_until(&w->hb_cond, &w->hb_mu, next) == 0)
            ;
        int stop = w->hb_stop;
        pthread_mutex_unlock(&w->hb_mu);
        if (stop)
            return NULL;
    }
}

int
wk_heartbeat_start(wk_worker *w, jm_error *err)
{
    if (pthread_create(&w->heartbeat, NULL, hb_main, w) != 0)
        return jm_error_set(err, JM_ERR_IO, NULL, "cannot start the heartbeat thread");
    if (pthread_create(&w->watchdog, NULL, watchdog_main, w) != 0) {
        signal_stop(w);
        pthread_join(w->heartbeat, NULL);
        return jm_error_set(err, JM_ERR_IO, NULL, "cannot start the lease watchdog thread");
    }
    return JM_OK;
}

void
wk_heartbeat_stop(wk_worker *w)
{
    signal_stop(w);
    pthread_join(w->heartbeat, NULL);
    pthread_join(w->watchdog, NULL);
}
