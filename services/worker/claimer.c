/* claimer.c - the claim loop (see worker.h).
 *
 * One thread with its own connection. Each round it waits (condition
 * variable, no polling) until a slot is free, then visits the queues in this
 * round's order (strict priority, or weighted: order.h) and claims up to the
 * free slot count with one jm_queue_claim call per queue until the slots are
 * filled. When a round yields nothing the worker is idle: it blocks in
 * BLPOP on its queues' wake lists (jm_wake_wait, WK_WAKE_TIMEOUT_MS so the
 * drain flag is seen), then claims again. Every script that makes a job
 * claimable pushes a wake token, so an idle worker starts a new job within
 * a round trip or two of its submission. A claim drops the dead entries
 * (canceled, expired) it meets, a bounded number per call; while it says
 * there may be more it is called again at once, so dead entries never send
 * the worker back to a blocking wait with a job queued behind them. A
 * queue's operator limits (rate, concurrency cap) are enforced in the claim
 * script; one that holds a claim back says for how long, and an otherwise
 * idle claimer sleeps on the wake lists that long instead of a full second.
 * On Redis errors it backs off (100 ms doubling to 2 s, cut short by a
 * drain) and tries again: a Redis outage pauses claiming, it never ends the
 * process. A claim whose reply was lost may still have run: before claiming
 * anything else the claimer takes its jobs back (jm_queue_claim_recover by
 * the lost call's nonce), so they run now and spend no extra attempt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "jobmill/wake.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/* trouble logs a Redis error (at most once per outage) and backs off.
 * Returns 1 when draining began meanwhile. */
static int
trouble(wk_worker *w, const char *op, const jm_error *err, jm_backoff *backoff)
{
    jm_service_redis_error(w->svc, op);
    if (backoff->cur_ms == 0)
        jm_log_warn("redis unavailable; claiming paused", "op", op, "error", err->msg, NULL);
    return wk_slots_wait_drain(&w->slots, jm_backoff_next(backoff));
}

/* give_back releases claims this worker cannot run (drain: back to the
 * head of the queue, attempt given back); a failure leaves them to lease
 * expiry. */
static void
give_back(jm_redis *r, jm_claim *c, int n)
{
    for (int j = 0; j < n; j++) {
        jm_error err;
        jm_error_clear(&err);
        if (jm_queue_release(r, c[j].id, c[j].lease, NULL, &err) != JM_OK)
            jm_log_warn("could not give a job back; its lease will expire", "job_id", c[j].id,
                        "error", err.msg, NULL);
        jm_claim_clear(&c[j]);
    }
}

/* assign hands got claims to free slots; what does not fit (a recovered
 * fetch larger than the slots free right now) is given back at once. */
static void
assign(wk_worker *w, jm_claim *buf, int got, int64_t t0)
{
    for (int j = 0; j < got; j++) {
        if (wk_slots_assign(&w->slots, &buf[j], t0 + w->cfg->lease_ms) < 0) {
            jm_log_info("no free slot for a recovered job; giving it back", "job_id", buf[j].id,
                        NULL);
            give_back(w->claim_r, &buf[j], 1);
        }
    }
}

void
wk_claimer_recover_rest(wk_worker *w)
{
    jm_claim_call lost;
    while (wk_commit_take_lost(w, &lost)) {
        jm_claim *buf = calloc((size_t)(lost.max > 0 ? lost.max : 1), sizeof(*buf));
        int got = 0;
        jm_error err;
        jm_error_clear(&err);
        if (buf != NULL && jm_queue_claim_recover(w->claim_r, &lost, buf, &got, &err) == JM_OK)
            give_back(w->claim_r, buf, got);
        else
            jm_log_warn("could not take back a lost fetch; its jobs wait out the lease", "queue",
                        lost.queue, "error", buf != NULL ? err.msg : "out of memory", NULL);
        free(buf);
    }
}

/* recover takes back the jobs of the claim whose reply was lost, if any:
 * the claimer's own, or a commit's fetch (commit.c). Returns how many, or -1
 * on a Redis error (the recovery stays pending). */
static int
recover(wk_worker *w, jm_claim *buf, jm_error *err)
{
    if (!w->lost_pending && wk_commit_take_lost(w, &w->lost))
        w->lost_pending = 1;
    if (!w->lost_pending)
        return 0;
    int got = 0;
    int64_t t0 = jm_clock_ms();
    if (jm_queue_claim_recover(w->claim_r, &w->lost, buf, &got, err) != JM_OK)
        return -1;
    w->lost_pending = 0;
    if (got > 0)
        jm_log_info("took back the jobs of a claim whose reply was lost", "queue", w->lost.queue,
                    JM_LOG_INT("jobs", got), NULL);
    assign(w, buf, got, t0);
    return got;
}

/* round claims up to free jobs; returns how many were claimed, or -1 on a
 * Redis error (err set, *op names the call). */
static int
round_claim(wk_worker *w, jm_claim *buf, int free_slots, int *throttle_ms, const char **op,
            jm_error *err)
{
    *throttle_ms = 0;
    int total = recover(w, buf, err);
    if (total < 0) {
        *op = "claim_recover";
        return -1;
    }
    int order[JM_CFG_MAX_QUEUES];
    wk_order_next(&w->order, order);
    for (int k = 0; k < w->order.n && total < free_slots; k++) {
        jm_claim_call call = {
            .queue = w->queue_names[order[k]], .lease_ms = w->cfg->lease_ms, .worker_id = w->id};
        do {
            if (wk_slots_is_draining(&w->slots))
                return total;
            call.max = free_slots - total;
            call.nonce[0] = '\0'; /* set by jm_queue_claim just before it sends */
            int got = 0;
            int64_t t0 = jm_clock_ms();
            int rc = jm_queue_claim(w->claim_r, &call, buf, &got, err);
            assign(w, buf, got, t0);
            total += got;
            if (rc != JM_OK) {
                /* The script may have run with its reply lost. */
                if (got == 0 && rc == JM_ERR_REDIS && call.nonce[0] != '\0') {
                    w->lost = call;
                    w->lost_pending = 1;
                }
                *op = "claim";
                return -1;
            }
            if (call.throttle_ms > 0) {
                /* a rate limit or concurrency cap: the shortest wait wins */
                wk_metrics_throttled(&w->m, call.queue);
                if (*throttle_ms == 0 || call.throttle_ms < *throttle_ms)
                    *throttle_ms = call.throttle_ms;
            }
        } while (call.more && total < free_slots);
    }
    return total;
}

static void *
claimer_main(void *p)
{
    wk_worker *w = p;
    jm_claim *buf = calloc((size_t)w->slots.n, sizeof(*buf));
    jm_backoff backoff = JM_BACKOFF(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    while (buf != NULL) {
        int free_slots = wk_slots_wait_free(&w->slots);
        if (free_slots == 0)
            break; /* draining */
        jm_error err;
        jm_error_clear(&err);
        const char *op = "claim";
        int throttle_ms = 0;
        int got = round_claim(w, buf, free_slots, &throttle_ms, &op, &err);
        if (got < 0) {
            if (trouble(w, op, &err, &backoff))
                break;
            continue;
        }
        if (jm_backoff_reset(&backoff))
            jm_log_info("redis reachable again; claiming resumed", NULL);
        if (got > 0 || wk_slots_is_draining(&w->slots))
            continue;
        /* Idle, or held back by a limit until a token is due: sleep on the
         * wake lists (a submit or a raised limit wakes us sooner). */
        int wait_ms =
            throttle_ms > 0 && throttle_ms < WK_WAKE_TIMEOUT_MS ? throttle_ms : WK_WAKE_TIMEOUT_MS;
        int rc = jm_wake_wait(w->claim_r, w->queue_names, (size_t)w->order.n, wait_ms, &err);
        if (rc != JM_OK && trouble(w, "wake", &err, &backoff))
            break;
    }
    if (buf == NULL)
        jm_log_error("claimer: out of memory", NULL);
    free(buf);
    atomic_store(&w->claimer_done, 1);
    wk_worker_notify(w);
    return NULL;
}

int
wk_claimer_start(wk_worker *w, jm_error *err)
{
    wk_order_init(&w->order, w->cfg->queues, w->cfg->n_queues);
    if (pthread_create(&w->claimer, NULL, claimer_main, w) != 0)
        return jm_error_set(err, JM_ERR_IO, NULL, "cannot start the claimer thread");
    return JM_OK;
}

void
wk_claimer_join(wk_worker *w)
{
    pthread_join(w->claimer, NULL);
}
