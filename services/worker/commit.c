/* commit.c - committing the outcome of one attempt (see worker.h).
 *
 * What is committed, from the handler's outcome and the slot's stop reason:
 *   result                      -> complete (even if a cancel came late)
 *   failure, cancel requested   -> cancel_ack (canceled, no retry)
 *   failure                     -> fail with backoff (the script schedules a
 *                                  retry or dead-letters)
 *   stopped: cancel             -> cancel_ack
 *   stopped: drain              -> release (head of the queue, attempt back)
 *   stopped: lease expired      -> abandon: the watchdog killed the handler
 *                                  because renewals failed; if Redis is
 *                                  reachable again the job goes back at
 *                                  once instead of waiting out the lease
 *                                  (attempt given back while the lease
 *                                  still held in Redis, spent once it ran
 *                                  out there, as the janitor would)
 *   stopped: lease lost         -> nothing (someone else owns the job)
 * Group commit: a runner hands its outcome to whichever runner is already
 * talking to Redis (the leader); the leader sends every outcome waiting, up to
 * GROUP_MAX, in one pipelined round trip (jm_queue_outcomes) and hands the
 * answers back. A busy worker thus pays one round trip per batch of outcomes,
 * not one per job behind a lock; an idle one pays exactly one, as before.
 * Complete and fetch next: on a worker of one queue, the runners whose
 * outcome ends their job (complete, fail, cancel ack) ask for their slot's
 * next job, and the leader claims that many in the same script call
 * (jm_queue_outcomes_fetch), so a busy worker pays one round trip per batch
 * for both; the runner runs its new job at once, its slot never free. A
 * fetch whose reply was lost is handed to the claimer, which takes its jobs
 * back by nonce (jm_queue_claim_recover) as after a lost claim.
 * Every call carries the claim's lease token; JM_ERR_FENCE means the lease was
 * lost and the outcome is dropped (counted in leases_lost). While Redis is
 * unreachable the call is retried with capped backoff for as long as the
 * lease is ours by our own estimate (the heartbeat keeps renewing it while
 * the slot is busy), so an outcome is never dropped silently. When a retry
 * is refused after a reply was lost, the job is read back to tell "our
 * earlier try committed" from "the lease was lost".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "backoff.h"
#include "handler.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "worker.h"

#define MAX_REPLY_ERRORS 3
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

typedef enum action {
    ACT_NONE = 0,
    ACT_COMPLETE,
    ACT_FAIL,
    ACT_CANCEL_ACK,
    ACT_RELEASE,
    ACT_ABANDON,
} action;

static const char *const act_op[] = {"none",       "complete", "fail",
                                     "cancel_ack", "release",  "abandon"};

static _Thread_local wk_rng rng;
static _Thread_local int rng_seeded;

static action
decide(const wk_outcome *o, wk_stop stop)
{
    if (o->kind == WK_OUT_OK)
        return ACT_COMPLETE;
    if (o->kind == WK_OUT_FAIL)
        return stop == WK_STOP_CANCEL ? ACT_CANCEL_ACK : ACT_FAIL;
    switch (stop) {
    case WK_STOP_CANCEL: return ACT_CANCEL_ACK;
    case WK_STOP_LEASE_LOST: return ACT_NONE;
    case WK_STOP_LEASE_EXPIRED: return ACT_ABANDON;
    default: return ACT_RELEASE;
    }
}

#define GROUP_MAX 64

typedef struct wk_commit_req {
    jm_outcome o;
    int want;         /* asks for its slot's next job */
    int got;          /* set by the leader: fetched holds that job */
    jm_claim fetched; /* owned by the requester once got */
    int64_t fetched_deadline;
    int done; /* under commit_mu */
    struct wk_commit_req *next;
} wk_commit_req;

/* remember_lost records a fetch whose reply was lost. Under commit_mu. */
static void
remember_lost(wk_worker *w, const jm_claim_call *call)
{
    if (w->n_fetch_lost < WK_FETCH_LOST_MAX)
        w->fetch_lost[w->n_fetch_lost++] = *call;
    else
        jm_log_warn("too many lost fetches; their jobs wait out the lease", "queue", call->queue,
                    NULL);
}

int
wk_commit_take_lost(wk_worker *w, jm_claim_call *out)
{
    pthread_mutex_lock(&w->commit_mu);
    int got = w->n_fetch_lost > 0;
    if (got)
        *out = w->fetch_lost[--w->n_fetch_lost];
    pthread_mutex_unlock(&w->commit_mu);
    return got;
}

/* send commits batch[0..k) (with_fetch: and claims `wants` next jobs, handed
 * to the wanting requests in order). Called without commit_mu. */
static void
send(wk_worker *w, wk_commit_req **taken, jm_outcome *batch, size_t k, int wants)
{
    pthread_mutex_lock(&w->out_mu);
    if (wants == 0 || w->fetch_queue == NULL || wk_slots_is_draining(&w->slots)) {
        jm_queue_outcomes(w->out_r, batch, k, &w->ret);
        pthread_mutex_unlock(&w->out_mu);
        return;
    }
    jm_claim fetched[GROUP_MAX];
    jm_claim_call call = {
        .queue = w->fetch_queue, .max = wants, .lease_ms = w->cfg->lease_ms, .worker_id = w->id};
    int got = 0;
    int64_t t0 = jm_clock_ms();
    jm_queue_outcomes_fetch(w->out_r, batch, k, &w->ret, &call, fetched, &got);
    pthread_mutex_unlock(&w->out_mu);
    int j = 0;
    for (size_t i = 0; i < k && j < got; i++) {
        if (!taken[i]->want)
            continue;
        taken[i]->fetched = fetched[j++];
        taken[i]->fetched_deadline = t0 + w->cfg->lease_ms;
        taken[i]->got = 1;
    }
    if (call.nonce[0] != '\0') { /* the fetch may have run: recover by nonce */
        pthread_mutex_lock(&w->commit_mu);
        remember_lost(w, &call);
        pthread_mutex_unlock(&w->commit_mu);
    }
}

/* lead sends batches until req is answered, then frees the leadership.
 * Called and returns with commit_mu held. */
static void
lead(wk_worker *w, wk_commit_req *req)
{
    w->commit_leader = 1;
    while (!req->done) {
        wk_commit_req *taken[GROUP_MAX];
        jm_outcome batch[GROUP_MAX];
        size_t k = 0;
        int wants = 0;
        while (w->commit_head != NULL && k < GROUP_MAX) {
            taken[k] = w->commit_head;
            batch[k] = w->commit_head->o;
            wants += w->commit_head->want;
            w->commit_head = w->commit_head->next;
            k++;
        }
        if (w->commit_head == NULL)
            w->commit_tail = NULL;
        pthread_mutex_unlock(&w->commit_mu);
        send(w, taken, batch, k, wants);
        pthread_mutex_lock(&w->commit_mu);
        for (size_t i = 0; i < k; i++) {
            taken[i]->o = batch[i];
            taken[i]->done = 1;
        }
        pthread_cond_broadcast(&w->commit_cond); /* their answers are in */
    }
    w->commit_leader = 0;
    pthread_cond_broadcast(&w->commit_cond); /* a free leadership */
}

/* commit_one queues req and waits for its answer, leading when nobody is. */
static void
commit_one(wk_worker *w, wk_commit_req *req)
{
    req->done = 0;
    req->next = NULL;
    pthread_mutex_lock(&w->commit_mu);
    if (w->commit_tail != NULL)
        w->commit_tail->next = req;
    else
        w->commit_head = req;
    w->commit_tail = req;
    while (!req->done) {
        if (!w->commit_leader)
            lead(w, req);
        else
            pthread_cond_wait(&w->commit_cond, &w->commit_mu);
    }
    pthread_mutex_unlock(&w->commit_mu);
}

/* call commits action a; with next non-NULL it asks for the slot's next
 * job too, and *got tells whether *next got one (then owned by the caller). */
static int
call(wk_worker *w, action a, const jm_claim *c, const wk_outcome *o, int64_t backoff, jm_state *st,
     jm_error *err, jm_claim *next, int64_t *next_deadline, int *got)
{
    static const jm_outcome_kind kinds[] = {[ACT_COMPLETE] = JM_OUTCOME_COMPLETE,
                                            [ACT_FAIL] = JM_OUTCOME_FAIL,
                                            [ACT_CANCEL_ACK] = JM_OUTCOME_CANCEL_ACK,
                                            [ACT_RELEASE] = JM_OUTCOME_RELEASE,
                                            [ACT_ABANDON] = JM_OUTCOME_ABANDON};
    if (a == ACT_NONE)
        return JM_OK;
    wk_commit_req req = {.o = {.kind = kinds[a],
                               .id = c->id,
                               .lease = c->lease,
                               .result = o->result,
                               .error = o->error != NULL ? o->error : "failed",
                               .permanent = o->permanent,
                               .backoff_ms = backoff},
                         .want = next != NULL};
    commit_one(w, &req);
    *st = req.o.state;
    *err = req.o.err;
    *got = req.got;
    if (req.got) {
        *next = req.fetched;
        *next_deadline = req.fetched_deadline;
    }
    return req.o.rc;
}

/* landed reads the job back after a refused retry: 1 when it is no longer
 * running under our fence in the state our call would have produced. */
static int
landed(wk_worker *w, action a, const jm_claim *c, jm_state *st)
{
    jm_job job;
    jm_error err;
    jm_error_clear(&err);
    pthread_mutex_lock(&w->out_mu);
    int rc = jm_queue_get(w->out_r, c->id, &job, &err);
    pthread_mutex_unlock(&w->out_mu);
    if (rc != JM_OK) {
        jm_job_clear(&job);
        return 0;
    }
    int ok = 0;
    switch (a) {
    case ACT_COMPLETE: ok = job.fence == c->fence && job.status == JM_STATE_SUCCEEDED; break;
    case ACT_CANCEL_ACK: ok = job.fence == c->fence && job.status == JM_STATE_CANCELED; break;
    case ACT_FAIL:
        ok = job.fence == c->fence &&
             (job.status == JM_STATE_FAILED || job.status == JM_STATE_SCHEDULED ||
              job.status == JM_STATE_CANCELED);
        *st = job.status;
        break;
    case ACT_RELEASE:
        ok = job.fence == c->fence &&
             (job.status == JM_STATE_QUEUED || job.status == JM_STATE_CANCELED);
        *st = job.status;
        break;
    case ACT_ABANDON:
        ok = job.fence == c->fence &&
             (job.status == JM_STATE_QUEUED || job.status == JM_STATE_CANCELED ||
              job.status == JM_STATE_FAILED);
        *st = job.status;
        break;
    case ACT_NONE: break;
    }
    jm_job_clear(&job);
    return ok;
}

static void
log_outcome(wk_worker *w, const jm_claim *c, const char *status, double run_s, const char *error)
{
    jm_log_level lvl = strcmp(status, "lease_lost") == 0 || strcmp(status, "uncommitted") == 0
                           ? JM_LOG_WARN
                           : JM_LOG_INFO;
    jm_log(lvl, "job outcome", "job_id", c->id, "queue", c->queue, "type", c->type, "worker", w->id,
           JM_LOG_INT("attempt", c->attempt), JM_LOG_INT("fence", c->fence), "status", status,
           JM_LOG_INT("duration_ms", run_s * 1000.0), "error", error, NULL);
}

/* account updates metrics for a committed action; returns the log status. */
static const char *
account(wk_worker *w, action a, const jm_claim *c, jm_state st)
{
    switch (a) {
    case ACT_COMPLETE:
        wk_metrics_finished(&w->m, c->queue, WK_FINISH_SUCCEEDED);
        return "succeeded";
    case ACT_FAIL:
        if (st == JM_STATE_FAILED) {
            wk_metrics_finished(&w->m, c->queue, WK_FINISH_FAILED);
            return "failed";
        }
        if (st == JM_STATE_CANCELED) {
            wk_metrics_finished(&w->m, c->queue, WK_FINISH_CANCELED);
            return "canceled";
        }
        wk_metrics_retry(&w->m, c->queue);
        return "retrying";
    case ACT_CANCEL_ACK:
        wk_metrics_finished(&w->m, c->queue, WK_FINISH_CANCELED);
        return "canceled";
    case ACT_RELEASE:
    case ACT_ABANDON:
        if (st == JM_STATE_CANCELED) {
            wk_metrics_finished(&w->m, c->queue, WK_FINISH_CANCELED);
            return "canceled";
        }
        if (st == JM_STATE_FAILED) {
            wk_metrics_finished(&w->m, c->queue, WK_FINISH_FAILED);
            return "failed";
        }
        return a == ACT_ABANDON ? "abandoned" : "released";
    case ACT_NONE: break;
    }
    return "none";
}

/* lease_gone tells whether the lease of slot is certainly not ours. An
 * abandon is worth retrying while Redis may still hold our lease: up to one
 * lease past our estimate (a renewal whose reply was lost may have moved it
 * that far); after that the janitor does the same. */
static int
lease_gone(wk_worker *w, int slot, action a)
{
    int64_t deadline = wk_slots_lease_deadline(&w->slots, slot);
    if (a == ACT_ABANDON)
        return jm_clock_ms() >= deadline + w->cfg->lease_ms;
    wk_stop s = wk_slots_stop_reason(&w->slots, slot);
    return s >= WK_STOP_LEASE_EXPIRED || jm_clock_ms() >= deadline;
}

int
wk_commit(wk_worker *w, int slot, const wk_outcome *o, double run_s, jm_claim *next,
          int64_t *next_deadline)
{
    const jm_claim *c = wk_slots_claim(&w->slots, slot);
    action a = decide(o, wk_slots_stop_reason(&w->slots, slot));
    const char *error = o->kind == WK_OUT_OK ? NULL : o->error;
    if (a == ACT_NONE) {
        wk_metric_bump(w->m.leases_lost);
        log_outcome(w, c, "lease_lost", run_s, error);
        return 0;
    }
    /* a slot whose job ends here may take its next one with this commit */
    int fetch = next != NULL && w->fetch_queue != NULL &&
                (a == ACT_COMPLETE || a == ACT_FAIL || a == ACT_CANCEL_ACK);
    if (!rng_seeded) {
        wk_rng_seed(&rng, (uint64_t)slot + 1);
        rng_seeded = 1;
    }
    int64_t backoff = jm_retry_delay_ms(c->attempt, w->cfg->backoff_base_ms, w->cfg->backoff_max_ms,
                                        wk_rng_unit(&rng));
    jm_backoff retry = JM_BACKOFF(RETRY_MIN_MS, RETRY_MAX_MS);
    int lost_reply = 0, reply_errors = 0;
    for (;;) {
        jm_state st = JM_STATE_SCHEDULED;
        jm_error err;
        jm_error_clear(&err);
        int got = 0;
        /* only the first try fetches: a retry's outcome is already uncertain */
        int rc = call(w, a, c, o, backoff, &st, &err, fetch && !lost_reply ? next : NULL,
                      next_deadline, &got);
        if (rc == JM_OK) {
            log_outcome(w, c, account(w, a, c, st), run_s, error);
            return got;
        }
        if (got) {
            /* the outcome was refused (a lost lease) but the fetch ran: the
             * new job is ours all the same */
            log_outcome(w, c, rc == JM_ERR_FENCE ? "lease_lost" : "uncommitted", run_s, error);
            if (rc == JM_ERR_FENCE)
                wk_metric_bump(w->m.leases_lost);
            return got;
        }
        if (rc == JM_ERR_FENCE) {
            if (lost_reply && landed(w, a, c, &st)) {
                log_outcome(w, c, account(w, a, c, st), run_s, error);
                return 0;
            }
            wk_metric_bump(w->m.leases_lost);
            log_outcome(w, c, "lease_lost", run_s, error);
            return 0;
        }
        if (rc != JM_ERR_REDIS && rc != JM_ERR_REPLY) {
            jm_log_error("outcome not committed", "job_id", c->id, "op", act_op[a], "error",
                         err.msg, NULL);
            log_outcome(w, c, "uncommitted", run_s, error);
            return 0;
        }
        jm_service_redis_error(w->svc, act_op[a]);
        /* An error reply (a result Redis refuses, a broken record) repeats
         * forever: give up after a few, free the slot and let the lease
         * expire, so the janitor retries or dead-letters the job. */
        if (rc == JM_ERR_REPLY && ++reply_errors >= MAX_REPLY_ERRORS) {
            jm_log_error("outcome refused by Redis; leaving the job to lease expiry", "job_id",
                         c->id, "op", act_op[a], "error", err.msg, NULL);
            log_outcome(w, c, "uncommitted", run_s, error);
            return 0;
        }
        lost_reply = 1;
        if (lease_gone(w, slot, a)) {
            jm_log_warn("lease expired while Redis was unreachable; the job will be retried",
                        "job_id", c->id, "op", act_op[a], "error", err.msg, NULL);
            log_outcome(w, c, "uncommitted", run_s, error);
            return 0;
        }
        jm_log_warn("outcome commit failed; retrying", "job_id", c->id, "op", act_op[a], "error",
                    err.msg, NULL);
        jm_service_sleep_ms(jm_backoff_next(&retry));
    }
}
