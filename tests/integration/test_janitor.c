/* test_janitor.c - the janitor's duties on crafted states and every
 * reconciler repair on deliberately corrupted states, against a real
 * redis-server (one per test process, see redis_fixture.h). Corruption is
 * written with raw commands (jm_redis_command), as a crash or an operator
 * would leave it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/queue.h"
#include "jobmill/reconcile.h"
#include "jobmill/workers.h"
#include "redis_fixture.h"

JM_TEST_SUITE(janitor);

/* ---- helpers ---- */

/* The key of one of queue's structures ("active", "pending", "counts", ...). */
static const char *
qkey(const char *queue, const char *what, char *buf, size_t len)
{
    char tag[JM_TAG_LEN + 1];
    jm_slot_tag(queue, tag);
    snprintf(buf, len, "jm:{%s}:q:%.64s:%.16s", tag, queue, what);
    return buf;
}

static const char *
jkey(const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "jm:{%.4s}:job:%.26s", id, id);
    return buf;
}

/* Runs a raw command that must succeed, returning its integer answer (or 0). */
static long long
raw(const char *fmt, const char *a, const char *b, const char *c)
{
    redisReply *rep = jm_redis_command(r, &err, fmt, a, b, c);
    cr_assert(rep != NULL, "raw %s: %s", fmt, err.msg);
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return v;
}

/* ZSCORE of id in queue's index what, or -1 when absent. */
static double
zscore(const char *queue, const char *what, const char *id)
{
    char k[160];
    redisReply *rep =
        jm_redis_command(r, &err, "ZSCORE %s %s", qkey(queue, what, k, sizeof(k)), id);
    cr_assert(rep != NULL, "%s", err.msg);
    double v = rep->type == REDIS_REPLY_STRING ? strtod(rep->str, NULL) : -1;
    freeReplyObject(rep);
    return v;
}

static long long
llen_pending(const char *queue)
{
    char k[160];
    return raw("LLEN %s", qkey(queue, "pending", k, sizeof(k)), NULL, NULL);
}

/* Runs one whole reconciler cycle with the given slice; what it did adds to
 * *t (repairs in t->repaired, normal purges in t->purged). */
static void
reconcile_cycle_tally(jm_redis *conn, int slice, jm_reconcile_tally *t)
{
    jm_reconciler *rc = jm_reconciler_new(slice, 10000);
    cr_assert(rc != NULL);
    int done = 0;
    for (int i = 0; i < 10000 && !done; i++) {
        jm_error e;
        cr_assert_eq(jm_reconciler_step(rc, conn, 3, t, &done, &e), JM_OK, "step: %s", e.msg);
    }
    cr_assert(done, "the cycle never finished");
    jm_reconciler_free(rc);
}

/* reconcile_cycle: the same, repairs only (and asserting nothing was purged). */
static void
reconcile_cycle(jm_redis *conn, int slice, int64_t rep[JM_REPAIR_KIND_COUNT])
{
    jm_reconcile_tally t = {0};
    reconcile_cycle_tally(conn, slice, &t);
    for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++)
        rep[k] += t.repaired[k];
    cr_assert_eq(t.purged, 0, "unexpected purges: %lld", (long long)t.purged);
}

static int64_t
total(const int64_t rep[JM_REPAIR_KIND_COUNT])
{
    int64_t t = 0;
    for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++)
        t += rep[k];
    return t;
}

/* Submits a job of type "t" to queue with extra fields (",\"k\":v..."). */
static jm_enqueue_result
submit_q(const char *queue, const char *extra)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"queue\":\"%s\",\"type\":\"t\"%s}", queue, extra);
    return jm_test_submit(r, body);
}

/* A healthy queue in every state: succeeded, failed, scheduled for a retry,
 * running, scheduled with a deadline, queued with a deadline, and canceled
 * while queued (its pending entry left for claim to drop). */
static void
healthy_states(const char *queue)
{
    jm_state st;
    submit_q(queue, "");
    jm_claim c = jm_test_claim_one(r, queue, 60000);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    jm_claim_clear(&c);
    submit_q(queue, "");
    c = jm_test_claim_one(r, queue, 60000);
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", true, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    jm_claim_clear(&c);
    submit_q(queue, ",\"expires_in_s\":900");
    c = jm_test_claim_one(r, queue, 60000);
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", false, 600000, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_SCHEDULED);
    jm_claim_clear(&c);
    submit_q(queue, "");
    c = jm_test_claim_one(r, queue, 60000);
    jm_claim_clear(&c);
    submit_q(queue, ",\"delay_s\":600,\"expires_in_s\":900");
    submit_q(queue, ",\"expires_in_s\":900");
    jm_enqueue_result x = submit_q(queue, "");
    cr_assert_eq(jm_queue_cancel(r, x.id, &ret, &err), JM_OK);
}

/* ---- the duties ---- */

Test(janitor, requeue_expired_in_batches_counts_one_attempt_each)
{
    for (int i = 0; i < 7; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":3}");
    cr_assert_eq(jm_test_claim_n(r, "default", 7, 1), 7);
    int64_t deadline = jm_test_now_ms() + 5000;
    int requeued = 0, calls = 0;
    while (requeued < 7) {
        int nr = 0, nf = 0;
        cr_assert_eq(jm_queue_requeue_expired(r, "default", 3, &ret, &nr, &nf, NULL, NULL, &err),
                     JM_OK, "%s", err.msg);
        cr_assert_leq(nr + nf, 3, "a call handles at most its batch");
        cr_assert_eq(nf, 0);
        requeued += nr;
        calls++;
        if (nr == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline, "leases never expired");
            jm_test_pause(); /* polling Redis time past the lease deadline */
        }
    }
    cr_assert_eq(requeued, 7);
    cr_assert_geq(calls, 3, "a batch of 3 needs three calls for 7 jobs");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 7);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 0);
    cr_assert_eq(llen_pending("default"), 7, "each job is back in pending exactly once");
    /* nothing left to requeue */
    int nr = -1, nf = -1;
    cr_assert_eq(jm_queue_requeue_expired(r, "default", 3, &ret, &nr, &nf, NULL, NULL, &err),
                 JM_OK);
    cr_assert_eq(nr + nf, 0);
    /* claiming again gives attempt 2 */
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(c.attempt, 2);
    jm_job j = jm_test_get(r, c.id);
    cr_assert_eq(j.attempts, 2);
    jm_job_clear(&j);
    jm_claim_clear(&c);
}

Test(janitor, requeue_expired_dead_letters_without_attempts_left)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_enqueue_result keep = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 1);
    jm_claim live = jm_test_claim_one(r, "default", 60000);
    int64_t deadline = jm_test_now_ms() + 5000;
    int nr = 0, nf = 0;
    while (nf == 0) {
        cr_assert_eq(jm_queue_requeue_expired(r, "default", 100, &ret, &nr, &nf, NULL, NULL, &err),
                     JM_OK);
        cr_assert_eq(nr, 0);
        if (nf == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline);
            jm_test_pause(); /* polling Redis time past the lease deadline */
        }
    }
    cr_assert_eq(nf, 1);
    jm_job j = jm_test_get(r, e.id);
    cr_assert_eq(j.status, JM_STATE_FAILED);
    cr_assert_str_eq(j.error, "lease expired: worker lost");
    jm_job_clear(&j);
    cr_assert_eq(jm_test_state(r, keep.id), JM_STATE_RUNNING, "a live lease is left alone");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_FAILED), 1);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_ERR_FENCE,
                 "the lost holder can commit nothing");
    jm_claim_clear(&c);
    jm_claim_clear(&live);
}

Test(janitor, promote_due_in_batches)
{
    for (int i = 0; i < 5; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"run_at\":1}"); /* run_at in the past: queued at once */
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 5);
    jm_enqueue_result s[4];
    for (int i = 0; i < 4; i++)
        s[i] = jm_test_submit(r, "{\"queue\":\"later\",\"type\":\"t\",\"delay_s\":0.001}");
    jm_enqueue_result far =
        jm_test_submit(r, "{\"queue\":\"later\",\"type\":\"t\",\"delay_s\":600}");
    int64_t deadline = jm_test_now_ms() + 5000;
    int promoted = 0;
    while (promoted < 4) {
        int n = 0;
        cr_assert_eq(jm_queue_promote_due(r, "later", 2, &n, &err), JM_OK, "%s", err.msg);
        cr_assert_leq(n, 2);
        promoted += n;
        if (n == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline);
            jm_test_pause(); /* polling Redis time past run_at */
        }
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(jm_test_state(r, s[i].id), JM_STATE_QUEUED);
    cr_assert_eq(jm_test_state(r, far.id), JM_STATE_SCHEDULED, "not due yet");
    cr_assert_eq(jm_test_count(r, "later", JM_STATE_QUEUED), 4);
    cr_assert_eq(jm_test_count(r, "later", JM_STATE_SCHEDULED), 1);
}

Test(janitor, expire_stale_only_before_start)
{
    jm_enqueue_result q = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.001}");
    jm_enqueue_result sched =
        jm_test_submit(r, "{\"type\":\"t\",\"delay_s\":600,\"expires_in_s\":0.002}");
    jm_enqueue_result started =
        jm_test_submit(r, "{\"queue\":\"run\",\"type\":\"t\",\"expires_in_s\":0.05}");
    jm_claim c = jm_test_claim_one(r, "run", 60000);
    cr_assert_str_eq(c.id, started.id);
    int64_t deadline = jm_test_now_ms() + 5000;
    int expired = 0;
    while (expired < 2) {
        int n = 0;
        cr_assert_eq(jm_queue_expire_stale(r, "default", 1, &ret, &n, &err), JM_OK);
        cr_assert_leq(n, 1);
        expired += n;
        if (n == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline);
            jm_test_pause(); /* polling Redis time past expires_at */
        }
    }
    cr_assert_eq(jm_test_state(r, q.id), JM_STATE_EXPIRED);
    cr_assert_eq(jm_test_state(r, sched.id), JM_STATE_EXPIRED);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_EXPIRED), 2);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    /* a started job never expires, even past its deadline */
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= c.started_ms + 60, 5000,
                       "Redis time past the started job's deadline");
    int n = -1;
    cr_assert_eq(jm_queue_expire_stale(r, "run", 10, &ret, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(jm_test_state(r, started.id), JM_STATE_RUNNING);
    jm_claim_clear(&c);
}

Test(janitor, purge_after_retention)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"result_ttl_s\":1}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim ca = jm_test_claim_one(r, "default", 60000);
    jm_claim cb = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(jm_queue_complete(r, ca.id, ca.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(jm_queue_complete(r, cb.id, cb.lease, "2", &ret, &err), JM_OK);
    char k[160];
    /* retention is the record's TTL: the job's own result_ttl_s, else the default */
    cr_assert_leq(raw("TTL %s", jkey(a.id, k, sizeof(k)), NULL, NULL), 1);
    long long ttl_b = raw("TTL %s", jkey(b.id, k, sizeof(k)), NULL, NULL);
    cr_assert(ttl_b > 3500 && ttl_b <= 3600, "default retention, got %lld", ttl_b);
    int n = -1;
    cr_assert_eq(jm_queue_purge(r, "default", 100, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "nothing past retention yet");
    int64_t deadline = jm_test_now_ms() + 5000;
    while (n == 0 || n == -1) {
        cr_assert_eq(jm_queue_purge(r, "default", 100, &n, &err), JM_OK);
        if (n == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline, "record never expired");
            jm_test_pause(); /* polling the record's TTL */
        }
    }
    cr_assert_eq(n, 1);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), 1);
    cr_assert_lt(zscore("default", "succeeded", a.id), 0);
    cr_assert_geq(zscore("default", "succeeded", b.id), 0);
    jm_claim_clear(&ca);
    jm_claim_clear(&cb);
}

Test(janitor, prune_silent_workers_only)
{
    /* Regression (issue 9.8): each worker is judged by its own heartbeat.
     * "w-old" beat with a 30 ms TTL and fell silent; "w-slow" beats every
     * few seconds (60 s TTL). Both last beats are older than the horizon, a
     * janitor with a fast heartbeat of its own must prune only w-old. */
    jm_worker_info old = {
        .id = "w-old", .host = "h", .queues = "default", .pid = 1, .concurrency = 1};
    jm_worker_info slow = {
        .id = "w-slow", .host = "h", .queues = "default", .pid = 2, .concurrency = 1};
    cr_assert_eq(jm_workers_beat(r, &old, 30, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_workers_beat(r, &slow, 60000, &err), JM_OK);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= t0 + 60, 5000, "Redis time");
    int n = -1;
    cr_assert_eq(jm_workers_prune(r, 25, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    jm_worker_info *list = NULL;
    size_t cnt = 0;
    cr_assert_eq(jm_workers_list(r, &list, &cnt, &err), JM_OK);
    cr_assert_eq(cnt, 1);
    cr_assert_str_eq(list[0].id, "w-slow");
    jm_workers_list_free(list, cnt);
}

Test(janitor, workers_touch_refreshes_only_registered_workers_and_stats_count_them)
{
    int64_t live = -1, age = -1;
    cr_assert_eq(jm_workers_stats(r, &live, &age, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(live, 0);
    cr_assert_eq(age, 0);
    bool found = true;
    cr_assert_eq(jm_workers_touch(r, "w-none", 60000, 1, &found, &err), JM_OK, "%s", err.msg);
    cr_assert(!found, "touch never creates a worker");
    jm_worker_info a = {
        .id = "w-a", .host = "h", .queues = "q1,q2", .pid = 1, .concurrency = 4, .busy = 0};
    cr_assert_eq(jm_workers_beat(r, &a, 60000, &err), JM_OK);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= t0 + 30, 5000, "Redis time");
    cr_assert_eq(jm_workers_stats(r, &live, &age, &err), JM_OK);
    cr_assert_eq(live, 1);
    cr_assert_geq(age, 30);
    cr_assert_eq(jm_workers_touch(r, "w-a", 60000, 3, &found, &err), JM_OK);
    cr_assert(found);
    cr_assert_eq(jm_workers_stats(r, &live, &age, &err), JM_OK);
    cr_assert_lt(age, 30, "a touch is a beat");
    jm_worker_info *list = NULL;
    size_t cnt = 0;
    cr_assert_eq(jm_workers_list(r, &list, &cnt, &err), JM_OK);
    cr_assert_eq(cnt, 1);
    cr_assert_str_eq(list[0].queues, "q1,q2", "touch keeps the other fields");
    cr_assert_eq(list[0].busy, 3);
    cr_assert_eq(list[0].concurrency, 4);
    jm_workers_list_free(list, cnt);
    /* a worker whose record expired is not live, even before the prune */
    jm_worker_info b = {.id = "w-b", .host = "h", .queues = "q", .pid = 2, .concurrency = 1};
    cr_assert_eq(jm_workers_beat(r, &b, 20, &err), JM_OK);
    t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= t0 + 40, 5000, "Redis time");
    cr_assert_eq(jm_workers_stats(r, &live, &age, &err), JM_OK);
    cr_assert_eq(live, 1);
}

/* ---- the reconciler ---- */

Test(janitor, reconciler_leaves_a_healthy_layout_alone)
{
    healthy_states("default");
    healthy_states("other.q");
    jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.001}");
    int64_t deadline = jm_test_now_ms() + 5000;
    int n = 0;
    while (n == 0) {
        cr_assert_eq(jm_queue_expire_stale(r, "default", 10, &ret, &n, &err), JM_OK);
        if (n == 0) {
            cr_assert_lt(jm_test_now_ms(), deadline);
            jm_test_pause(); /* polling Redis time past expires_at */
        }
    }
    for (int slice = 1; slice <= 500; slice *= 7) {
        int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
        reconcile_cycle(r, slice, rep);
        for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++)
            cr_assert_eq(rep[k], 0, "slice %d: false repair of kind %s", slice,
                         jm_repair_kind_name((jm_repair_kind)k));
    }
}

Test(janitor, active_entry_whose_record_is_not_running_is_removed)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    char k[160];
    raw("ZADD %s 99999999999999 %s", qkey("default", "active", k, sizeof(k)), e.id, NULL);
    int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
    reconcile_cycle(r, 500, rep);
    cr_assert_eq(rep[JM_REPAIR_ACTIVE_NOT_RUNNING], 1);
    cr_assert_eq(total(rep), 1);
    cr_assert_lt(zscore("default", "active", e.id), 0);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_SUCCEEDED, "the record is untouched");
    jm_claim_clear(&c);
}

Test(janitor, running_record_without_lease_gets_deadline_now_then_requeues)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 600000);
    char k[160];
    raw("ZREM %s %s", qkey("default", "active", k, sizeof(k)), e.id, NULL);
    int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
    int64_t before = jm_redis_time_ms(r, &err);
    reconcile_cycle(r, 500, rep);
    int64_t after = jm_redis_time_ms(r, &err);
    cr_assert_eq(rep[JM_REPAIR_RUNNING_UNLEASED], 1);
    cr_assert_eq(total(rep), 1);
    double score = zscore("default", "active", e.id);
    cr_assert(score >= (double)before && score <= (double)after, "deadline is now");
    int nr = 0, nf = 0;
    cr_assert_eq(jm_queue_requeue_expired(r, "default", 100, &ret, &nr, &nf, NULL, NULL, &err),
                 JM_OK);
    cr_assert_eq(nr, 1, "the normal expiry requeues it");
    jm_claim again = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(again.id, e.id);
    cr_assert_eq(again.attempt, 2);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_ERR_FENCE);
    jm_claim_clear(&c);
    jm_claim_clear(&again);
}

/* per-queue purges reported through the tally's callback */
typedef struct purge_log {
    char queue[JM_QUEUE_MAX + 1];
    int64_t n;
} purge_log;

static void
log_purge(void *user, const char *queue, int64_t n)
{
    purge_log *p = user;
    snprintf(p->queue, sizeof(p->queue), "%s", queue);
    p->n += n;
}

Test(janitor, index_entries_without_record_are_removed)
{
    const char *ghost = "0000AAAAAAAAAAAAAAAAAAAAAA";
    char k[160];
    /* make "default" known with one real job, then ghosts in every index */
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    const char *idx[] = {"active", "scheduled", "deadlines", "failed", "canceled"};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        raw("ZADD %s 99999999999999 %s", qkey("default", idx[i], k, sizeof(k)), ghost, NULL);
    raw("RPUSH %s %s", qkey("default", "pending", k, sizeof(k)), ghost, NULL);
    /* a canceled job whose record's retention ran out: its count goes with
     * its entry, and its lazily deleted pending entry goes too */
    jm_enqueue_result f = jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert_eq(jm_queue_cancel(r, f.id, &ret, &err), JM_OK);
    raw("DEL %s", jkey(f.id, k, sizeof(k)), NULL, NULL);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_CANCELED), 1);
    purge_log plog = {.n = 0};
    jm_reconcile_tally t = {.on_purged = log_purge, .user = &plog};
    reconcile_cycle_tally(r, 500, &t);
    /* drift: the ghosts of active, scheduled and deadlines */
    cr_assert_eq(t.repaired[JM_REPAIR_ORPHAN_ENTRY], 3, "got %lld",
                 (long long)t.repaired[JM_REPAIR_ORPHAN_ENTRY]);
    /* not drift: terminal and pending entries outliving their record (the
     * ghosts in failed, canceled, pending; f's canceled and pending entries) */
    cr_assert_eq(t.purged, 5, "got %lld", (long long)t.purged);
    cr_assert_eq(plog.n, 5);
    cr_assert_str_eq(plog.queue, "default");
    /* each terminal purge took a count along (purge's rule); the ghosts never
     * had one, so the recount put failed and canceled back to 0 */
    cr_assert_eq(t.repaired[JM_REPAIR_COUNTS], 2);
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        cr_assert_lt(zscore("default", idx[i], ghost), 0, "%s keeps the ghost", idx[i]);
    cr_assert_lt(zscore("default", "canceled", f.id), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_CANCELED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_FAILED), 0);
    cr_assert_eq(llen_pending("default"), 1, "only the real job stays pending");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(c.id, e.id);
    jm_claim_clear(&c);
}

/* In a big queue (sliced path) a finished job whose retention ran out is a
 * purge, not a repair, and its count goes with it. */
Test(janitor, expired_records_are_purged_not_repaired)
{
    char k[160];
    jm_enqueue_result ids[12];
    for (int i = 0; i < 12; i++)
        ids[i] = jm_test_submit(r, "{\"queue\":\"big\",\"type\":\"t\"}");
    for (int i = 0; i < 12; i++) {
        jm_claim c = jm_test_claim_one(r, "big", 60000);
        cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
        jm_claim_clear(&c);
    }
    for (int i = 0; i < 3; i++)
        raw("PEXPIRE %s 1", jkey(ids[i].id, k, sizeof(k)), NULL, NULL);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= t0 + 3, 5000,
                       "Redis time past the records' TTL");
    purge_log plog = {.n = 0};
    jm_reconcile_tally t = {.on_purged = log_purge, .user = &plog};
    reconcile_cycle_tally(r, 4, &t);
    cr_assert_eq(t.purged, 3);
    cr_assert_str_eq(plog.queue, "big");
    for (int kk = 0; kk < JM_REPAIR_KIND_COUNT; kk++)
        cr_assert_eq(t.repaired[kk], 0, "kind %s", jm_repair_kind_name((jm_repair_kind)kk));
    cr_assert_eq(jm_test_count(r, "big", JM_STATE_SUCCEEDED), 9);
}

Test(janitor, stale_entries_are_removed_and_lost_records_reindexed)
{
    char k[160];
    jm_enqueue_result d = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim cd = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(jm_queue_complete(r, cd.id, cd.lease, "1", &ret, &err), JM_OK);
    jm_enqueue_result q = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":600}");
    jm_enqueue_result s = jm_test_submit(r, "{\"type\":\"t\",\"delay_s\":600}");
    /* stale: q (queued) listed as scheduled; lost: s out of scheduled, q out of
     * pending and deadlines, d out of succeeded */
    raw("ZADD %s 1 %s", qkey("default", "scheduled", k, sizeof(k)), q.id, NULL);
    raw("ZREM %s %s", qkey("default", "scheduled", k, sizeof(k)), s.id, NULL);
    raw("LREM %s 0 %s", qkey("default", "pending", k, sizeof(k)), q.id, NULL);
    raw("ZREM %s %s", qkey("default", "deadlines", k, sizeof(k)), q.id, NULL);
    raw("ZREM %s %s", qkey("default", "succeeded", k, sizeof(k)), d.id, NULL);
    int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
    reconcile_cycle(r, 500, rep);
    cr_assert_eq(rep[JM_REPAIR_STALE_ENTRY], 1);
    cr_assert_eq(rep[JM_REPAIR_UNINDEXED_RECORD], 4);
    cr_assert_eq(rep[JM_REPAIR_COUNTS], 0, "counts were never wrong");
    cr_assert_eq(total(rep), 5);
    cr_assert_lt(zscore("default", "scheduled", q.id), 0);
    cr_assert_gt(zscore("default", "scheduled", s.id), 0);
    cr_assert_gt(zscore("default", "deadlines", q.id), 0);
    cr_assert_gt(zscore("default", "succeeded", d.id), 0);
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(c.id, q.id, "the lost queued job is claimable again");
    jm_claim_clear(&c);
    jm_claim_clear(&cd);
    /* a second cycle finds nothing */
    int64_t rep2[JM_REPAIR_KIND_COUNT] = {0};
    reconcile_cycle(r, 500, rep2);
    cr_assert_eq(total(rep2), 0);
}

Test(janitor, counts_drift_is_recomputed)
{
    for (int i = 0; i < 3; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
    jm_test_submit(r, "{\"type\":\"t\",\"delay_s\":600}");
    cr_assert_eq(jm_test_claim_n(r, "default", 1, 60000), 1);
    char k[160];
    raw("HSET %s queued 99", qkey("default", "counts", k, sizeof(k)), NULL, NULL);
    raw("HSET %s running -4", qkey("default", "counts", k, sizeof(k)), NULL, NULL);
    raw("HDEL %s scheduled", qkey("default", "counts", k, sizeof(k)), NULL, NULL);
    int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
    reconcile_cycle(r, 500, rep);
    cr_assert_eq(rep[JM_REPAIR_COUNTS], 3);
    cr_assert_eq(total(rep), 3);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 2);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 1);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 1);
}

/* Queues bigger than a slice take the sliced path: ZSCAN, pending walk,
 * separate recount. */
Test(janitor, large_queues_are_reconciled_in_slices)
{
    char k[160];
    jm_enqueue_result ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = jm_test_submit(r, "{\"queue\":\"big\",\"type\":\"t\",\"delay_s\":600}");
    for (int i = 0; i < 30; i++)
        jm_test_submit(r, "{\"queue\":\"big\",\"type\":\"t\"}");
    cr_assert_eq(jm_test_claim_n(r, "big", 10, 60000), 10);
    /* corrupt a bit of everything */
    raw("ZADD %s 1 %s", qkey("big", "active", k, sizeof(k)), "0000BBBBBBBBBBBBBBBBBBBBBB", NULL);
    raw("RPUSH %s %s", qkey("big", "pending", k, sizeof(k)), "0000CCCCCCCCCCCCCCCCCCCCCC", NULL);
    raw("ZREM %s %s", qkey("big", "scheduled", k, sizeof(k)), ids[5].id, NULL);
    raw("ZADD %s 1 %s", qkey("big", "succeeded", k, sizeof(k)), ids[6].id, NULL);
    raw("HSET %s queued 7", qkey("big", "counts", k, sizeof(k)), NULL, NULL);
    jm_reconcile_tally t = {0};
    reconcile_cycle_tally(r, 4, &t);
    int64_t *rep = t.repaired;
    cr_assert_eq(t.purged, 1, "the pending ghost");
    cr_assert_eq(rep[JM_REPAIR_ORPHAN_ENTRY], 1, "the active ghost");
    cr_assert_eq(rep[JM_REPAIR_UNINDEXED_RECORD], 1);
    cr_assert_eq(rep[JM_REPAIR_STALE_ENTRY], 1);
    cr_assert_eq(rep[JM_REPAIR_COUNTS], 1);
    cr_assert_eq(jm_test_count(r, "big", JM_STATE_QUEUED), 20);
    cr_assert_eq(jm_test_count(r, "big", JM_STATE_SCHEDULED), 40);
    cr_assert_eq(jm_test_count(r, "big", JM_STATE_RUNNING), 10);
    cr_assert_eq(jm_test_count(r, "big", JM_STATE_SUCCEEDED), 0);
    cr_assert_gt(zscore("big", "scheduled", ids[5].id), 0);
    cr_assert_eq(llen_pending("big"), 20);
}

/* Several reconcilers on one corruption repair each item exactly once.
 * Threads record failures; the test thread asserts. */
typedef struct rc_thread_arg {
    jm_reconcile_tally t;
    int failed;
    char msg[256];
} rc_thread_arg;

static void *
rc_thread(void *p)
{
    rc_thread_arg *a = p;
    jm_error e;
    jm_redis *conn = jm_redis_new(srv.url, "jm", 5000, &e);
    jm_reconciler *rc = jm_reconciler_new(2, 10000);
    int done = 0;
    for (int i = 0; conn != NULL && rc != NULL && i < 100000 && !done && !a->failed; i++) {
        if (jm_reconciler_step(rc, conn, 1, &a->t, &done, &e) != JM_OK) {
            a->failed = 1;
            snprintf(a->msg, sizeof(a->msg), "%s", e.msg);
        }
    }
    if (!done && !a->failed) {
        a->failed = 1;
        snprintf(a->msg, sizeof(a->msg), "cycle did not finish");
    }
    jm_reconciler_free(rc);
    jm_redis_free(conn);
    return NULL;
}

Test(janitor, concurrent_reconcilers_repair_once, .timeout = 120)
{
    char k[160];
    enum { N = 30 };
    jm_enqueue_result e[N];
    for (int i = 0; i < N; i++)
        e[i] = jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert_eq(jm_test_claim_n(r, "default", N, 600000), N);
    for (int i = 0; i < N; i++) {
        raw("ZREM %s %s", qkey("default", "active", k, sizeof(k)), e[i].id, NULL);
        char ghost[JM_ID_LEN + 1];
        snprintf(ghost, sizeof(ghost), "0000GGGGGGGGGGGGGGGGGGGG%02d", i);
        raw("ZADD %s 1 %s", qkey("default", "scheduled", k, sizeof(k)), ghost, NULL);
    }
    rc_thread_arg args[3];
    pthread_t th[3];
    memset(args, 0, sizeof(args));
    for (int t = 0; t < 3; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, rc_thread, &args[t]), 0);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    int64_t unleased = 0, orphans = 0;
    for (int t = 0; t < 3; t++) {
        cr_assert(!args[t].failed, "reconciler %d: %s", t, args[t].msg);
        unleased += args[t].t.repaired[JM_REPAIR_RUNNING_UNLEASED];
        orphans += args[t].t.repaired[JM_REPAIR_ORPHAN_ENTRY];
    }
    cr_assert_eq(unleased, N, "each lost lease repaired once, got %lld", (long long)unleased);
    cr_assert_eq(orphans, N, "each ghost removed once, got %lld", (long long)orphans);
    int nr = 0, nf = 0;
    cr_assert_eq(jm_queue_requeue_expired(r, "default", 500, &ret, &nr, &nf, NULL, NULL, &err),
                 JM_OK);
    cr_assert_eq(nr, N);
}

/* Three janitors' requeue calls racing on the same expired leases: every
 * lease is requeued once (one attempt each, one pending entry each). */
typedef struct rq_thread_arg {
    int requeued;
    int errors;
} rq_thread_arg;

static pthread_barrier_t rq_barrier;

static void *
rq_thread(void *p)
{
    rq_thread_arg *a = p;
    jm_error e;
    jm_redis *conn = jm_redis_new(srv.url, "jm", 5000, &e);
    if (conn != NULL && jm_redis_connect(conn, &e) != JM_OK)
        a->errors++;
    pthread_barrier_wait(&rq_barrier); /* all three race from the same instant */
    int64_t deadline = jm_test_now_ms() + 10000;
    for (int idle = 0; conn != NULL && idle < 50 && jm_test_now_ms() < deadline;) {
        int nr = 0, nf = 0;
        if (jm_queue_requeue_expired(conn, "default", 7, &ret, &nr, &nf, NULL, NULL, &e) != JM_OK)
            a->errors++;
        a->requeued += nr;
        idle = nr == 0 ? idle + 1 : 0;
    }
    if (conn == NULL)
        a->errors++;
    jm_redis_free(conn);
    return NULL;
}

Test(janitor, concurrent_requeues_never_double_requeue, .timeout = 120)
{
    enum { N = 200 };
    for (int i = 0; i < N; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":5}");
    cr_assert_eq(jm_test_claim_n(r, "default", N, 1), N);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) >= t0 + 5, 5000, "Redis time past every lease");
    rq_thread_arg args[3];
    pthread_t th[3];
    memset(args, 0, sizeof(args));
    pthread_barrier_init(&rq_barrier, NULL, 3);
    for (int t = 0; t < 3; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, rq_thread, &args[t]), 0);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&rq_barrier);
    cr_assert_eq(args[0].errors + args[1].errors + args[2].errors, 0);
    cr_assert_eq(args[0].requeued + args[1].requeued + args[2].requeued, N);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), N);
    cr_assert_eq(llen_pending("default"), N);
    /* every job claims with attempt 2: exactly one per expired lease */
    jm_claim *c = calloc(N, sizeof(*c));
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", N, 60000, "w2", c, &n, &err), JM_OK);
    cr_assert_eq(n, N);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(c[i].attempt, 2, "job %s attempt %d", c[i].id, c[i].attempt);
        jm_claim_clear(&c[i]);
    }
    free(c);
}

/* An entry of another queue's job is stale in this queue's indexes: "q19"
 * and "q2902" share the slot tag 3ee6, so their records are reachable from
 * each other's scripts (another tag's id is simply not found: an orphan). A
 * duplicated pending entry is counted once. */
Test(janitor, foreign_entries_removed_and_duplicates_counted_once)
{
    char k[160], t1[JM_TAG_LEN + 1], t2[JM_TAG_LEN + 1];
    jm_slot_tag("q19", t1);
    jm_slot_tag("q2902", t2);
    cr_assert_str_eq(t1, t2, "the test needs two queues of one slot");
    jm_enqueue_result mine = jm_test_submit(r, "{\"queue\":\"q19\",\"type\":\"t\"}");
    jm_enqueue_result running = jm_test_submit(r, "{\"queue\":\"q2902\",\"type\":\"t\"}");
    jm_claim held = jm_test_claim_one(r, "q2902", 600000);
    cr_assert_str_eq(held.id, running.id);
    jm_enqueue_result other = jm_test_submit(r, "{\"queue\":\"q2902\",\"type\":\"t\"}");
    jm_enqueue_result far = jm_test_submit(r, "{\"queue\":\"default\",\"type\":\"t\"}");
    raw("RPUSH %s %s", qkey("q19", "pending", k, sizeof(k)), mine.id, NULL);
    raw("ZADD %s 1 %s", qkey("q19", "active", k, sizeof(k)), running.id, NULL);
    raw("RPUSH %s %s", qkey("q19", "pending", k, sizeof(k)), other.id, NULL);
    raw("ZADD %s 1 %s", qkey("q19", "scheduled", k, sizeof(k)), far.id, NULL);
    int64_t rep[JM_REPAIR_KIND_COUNT] = {0};
    reconcile_cycle(r, 500, rep);
    cr_assert_eq(rep[JM_REPAIR_ACTIVE_NOT_RUNNING], 1, "q2902's running job is not q19's");
    cr_assert_eq(rep[JM_REPAIR_STALE_ENTRY], 1);
    cr_assert_eq(rep[JM_REPAIR_ORPHAN_ENTRY], 1);
    cr_assert_eq(rep[JM_REPAIR_COUNTS], 0, "the duplicate is one queued job");
    cr_assert_lt(zscore("q19", "active", running.id), 0);
    cr_assert_gt(zscore("q2902", "active", running.id), 0, "its own lease is untouched");
    cr_assert_eq(total(rep), 3);
    cr_assert_eq(jm_test_count(r, "q19", JM_STATE_QUEUED), 1);
    cr_assert_eq(jm_test_count(r, "q2902", JM_STATE_QUEUED), 1);
    cr_assert_eq(llen_pending("q19"), 2, "the duplicate is claim's to drop");
    jm_claim c = jm_test_claim_one(r, "q2902", 60000);
    cr_assert_str_eq(c.id, other.id, "the other queue's job is intact");
    jm_claim_clear(&c);
    c = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(c.id, far.id);
    jm_claim_clear(&c);
    jm_claim_clear(&held);
}
