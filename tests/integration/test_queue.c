/* test_queue.c - every transition script and every guard refusal against a
 * real redis-server (one per test process, see redis_fixture.h). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/queue.h"
#include "keys.h"
#include "redis_fixture.h"

JM_TEST_SUITE(queue);

/* Polls Redis's clock (the one every deadline uses) until the expires_at of
 * job id has passed, with a deadline. */
static void
wait_past_expiry(const char *id)
{
    jm_job j;
    cr_assert_eq(jm_queue_get(r, id, &j, &err), JM_OK);
    int64_t expires = j.expires_ms;
    jm_job_clear(&j);
    cr_assert_gt(expires, 0);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) > expires, 5000, "Redis time past expires_at");
}

/* duty_count checks a janitor duty's return code and passes its count on
 * (for JM_TEST_WAIT_UNTIL conditions). */
static int
duty_count(int rc, const int *n)
{
    cr_assert_eq(rc, JM_OK, "%s", err.msg);
    return *n; /* read after the call: argument order is unspecified */
}

/* Runs the lease-expiry duty once; *req and *failed get its counts; returns
 * their sum (for JM_TEST_WAIT_UNTIL). */
static int
requeue(int *req, int *failed)
{
    cr_assert_eq(jm_queue_requeue_expired(r, "default", 100, &ret, req, failed, NULL, NULL, &err),
                 JM_OK, "%s", err.msg);
    return *req + *failed;
}

/* One purge call; returns how many entries it removed. */
static int
purge_once(const char *queue, int batch)
{
    int n = -1;
    cr_assert_eq(jm_queue_purge(r, queue, batch, &n, &err), JM_OK, "%s", err.msg);
    return n;
}

Test(queue, enqueue_claim_complete)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"echo\",\"payload\":{\"a\":1}}");
    cr_assert(e.created);
    cr_assert(jm_id_valid(e.id));
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_QUEUED);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);

    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(c.id, e.id);
    cr_assert_str_eq(c.type, "echo");
    cr_assert_str_eq(c.payload, "{\"a\":1}");
    cr_assert_eq(c.attempt, 1);
    cr_assert_gt(c.fence, 0);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_RUNNING);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 1);

    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "{\"ok\":true}", &ret, &err), JM_OK, "%s",
                 err.msg);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_SUCCEEDED);
    cr_assert_str_eq(j.result, "{\"ok\":true}");
    cr_assert_gt(j.finished_ms, 0);
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), 1);
    /* double complete is refused */
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "2", &ret, &err), JM_ERR_FENCE);
    jm_claim_clear(&c);
}

Test(queue, claim_empty_and_fifo)
{
    jm_claim c[4];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 4, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"payload\":1}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\",\"payload\":2}");
    jm_enqueue_result d = jm_test_submit(r, "{\"type\":\"t\",\"payload\":3}");
    cr_assert_eq(jm_test_claim(r, "default", 2, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].id, a.id);
    cr_assert_str_eq(c[1].id, b.id);
    cr_assert_neq(c[0].fence, c[1].fence);
    jm_claim_clear(&c[0]);
    jm_claim_clear(&c[1]);
    cr_assert_eq(jm_test_claim(r, "default", 4, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].id, d.id);
    jm_claim_clear(&c[0]);
}

Test(queue, fail_retries_then_dead_letters)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":2}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "boom", false, 0, &ret, &st, &err), JM_OK, "%s",
                 err.msg);
    cr_assert_eq(st, JM_STATE_SCHEDULED);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_SCHEDULED);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 1);
    /* a stale fail of the same claim is refused */
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "again", false, 0, &ret, &st, &err), JM_ERR_FENCE);
    jm_claim_clear(&c);
    int n = 0;
    cr_assert_eq(jm_queue_promote_due(r, "default", 100, &n, &err), JM_OK);
    cr_assert_eq(n, 1);
    c = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(c.attempt, 2);
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "boom2", false, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_FAILED);
    cr_assert_eq(j.attempts, 2);
    cr_assert_str_eq(j.error, "boom2");
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_FAILED), 1);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 0);
    jm_claim_clear(&c);
}

Test(queue, permanent_failure_skips_retries)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":5}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "bad input", true, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_FAILED);
    jm_claim_clear(&c);
}

Test(queue, backoff_schedules_in_redis_time)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", false, 60000, &ret, &st, &err), JM_OK);
    int n = -1;
    cr_assert_eq(jm_queue_promote_due(r, "default", 100, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "not due for a minute");
    jm_job j;
    cr_assert_eq(jm_queue_get(r, c.id, &j, &err), JM_OK);
    int64_t now = jm_redis_time_ms(r, &err);
    cr_assert(j.run_at_ms > now + 50000 && j.run_at_ms <= now + 60000);
    jm_job_clear(&j);
    jm_claim_clear(&c);
}

Test(queue, lease_expiry_requeues_and_fences_old_holder)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim old = jm_test_claim_one(r, "default", 50);
    int req = 0, failed = 0;
    JM_TEST_WAIT_UNTIL(requeue(&req, &failed) > 0, 5000, "the lease to expire");
    cr_assert_eq(req, 1);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_QUEUED);
    /* the old holder can commit nothing, renew nothing */
    cr_assert_eq(jm_queue_complete(r, old.id, old.lease, "1", &ret, &err), JM_ERR_FENCE);
    jm_lease l = {.id = old.id, .queue = "default", .lease = old.lease};
    int status = -1;
    cr_assert_eq(jm_queue_heartbeat(r, &l, 1, 1000, &status, &err), JM_OK);
    cr_assert_eq(status, JM_LEASE_LOST);
    jm_claim cur = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(cur.attempt, 2);
    cr_assert_gt(cur.fence, old.fence);
    /* stale token after a requeue: every fenced transition refuses it */
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, old.id, old.lease, "x", false, 0, &ret, &st, &err), JM_ERR_FENCE);
    cr_assert_eq(jm_queue_release(r, old.id, old.lease, NULL, &err), JM_ERR_FENCE);
    cr_assert_eq(jm_queue_progress(r, old.id, old.lease, "{}", &err), JM_ERR_FENCE);
    cr_assert_eq(jm_queue_complete(r, cur.id, cur.lease, "\"new\"", &ret, &err), JM_OK);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_str_eq(j.result, "\"new\"");
    jm_job_clear(&j);
    jm_claim_clear(&old);
    jm_claim_clear(&cur);
}

Test(queue, lease_expiry_without_attempts_left_dead_letters)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 30);
    int req = 0, failed = 0;
    JM_TEST_WAIT_UNTIL(requeue(&req, &failed) > 0, 5000, "the lease to expire");
    cr_assert_eq(failed, 1);
    cr_assert_eq(req, 0);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_FAILED);
    jm_claim_clear(&c);
}

Test(queue, heartbeat_extends_and_reports_cancel)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"other\"}");
    jm_claim a = jm_test_claim_one(r, "default", 200);
    jm_claim b = jm_test_claim_one(r, "other", 200);
    jm_lease ls[2] = {{a.id, "default", a.lease}, {b.id, "other", b.lease}};
    int st[2] = {-1, -1};
    cr_assert_eq(jm_queue_cancel(r, b.id, &ret, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, b.id), JM_STATE_RUNNING, "running job is only flagged");
    cr_assert_eq(jm_queue_heartbeat(r, ls, 2, 60000, st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st[0], JM_LEASE_OK);
    cr_assert_eq(st[1], JM_LEASE_CANCEL);
    /* the lease deadline moved a minute ahead in Redis time, so nothing
     * expires where the original 200 ms lease would have */
    int64_t now = jm_redis_time_ms(r, &err);
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:q:default:active", a.id);
    redisReply *score = jm_redis_command(r, &err, "ZSCORE %s %s", key, a.id);
    cr_assert_not_null(score);
    cr_assert_eq(score->type, REDIS_REPLY_STRING);
    cr_assert_gt(strtoll(score->str, NULL, 10), now + 50000);
    freeReplyObject(score);
    int req = 0, failed = 0;
    cr_assert_eq(jm_queue_requeue_expired(r, "default", 100, &ret, &req, &failed, NULL, NULL, &err),
                 JM_OK);
    cr_assert_eq(req, 0);
    cr_assert_eq(jm_queue_cancel_ack(r, b.id, b.lease, &ret, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, b.id), JM_STATE_CANCELED);
    /* complete after cancel is refused */
    cr_assert_eq(jm_queue_complete(r, b.id, b.lease, "1", &ret, &err), JM_ERR_FENCE);
    /* cancel-ack without a request is refused */
    cr_assert_eq(jm_queue_cancel_ack(r, a.id, a.lease, &ret, &err), JM_ERR_FENCE);
    jm_claim_clear(&a);
    jm_claim_clear(&b);
}

Test(queue, cancel_queued_and_scheduled_and_terminal)
{
    jm_enqueue_result q = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_enqueue_result s = jm_test_submit(r, "{\"type\":\"t\",\"delay_s\":100}");
    cr_assert_eq(jm_test_state(r, s.id), JM_STATE_SCHEDULED);
    cr_assert_eq(jm_queue_cancel(r, q.id, &ret, &err), JM_OK);
    cr_assert_eq(jm_queue_cancel(r, s.id, &ret, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, q.id), JM_STATE_CANCELED);
    cr_assert_eq(jm_test_state(r, s.id), JM_STATE_CANCELED);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_CANCELED), 2);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 0);
    cr_assert_eq(jm_queue_cancel(r, q.id, &ret, &err), JM_ERR_STATE);
    /* the canceled id left in pending is dropped by claim (lazy deletion) */
    jm_claim c[2];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 2, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(jm_queue_cancel(r, "0000AAAAAAAAAAAAAAAAAAAAAA", &ret, &err), JM_ERR_NOT_FOUND);
    cr_assert_eq(jm_queue_cancel(r, "not-an-id", &ret, &err), JM_ERR_NOT_FOUND);
}

Test(queue, retry_resets_attempts)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    cr_assert_eq(jm_queue_retry(r, e.id, &err), JM_ERR_STATE, "queued cannot be retried");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", false, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    cr_assert_eq(jm_queue_retry(r, e.id, &err), JM_OK, "%s", err.msg);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_QUEUED);
    cr_assert_eq(j.attempts, 0);
    cr_assert_null(j.error);
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_FAILED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
    jm_claim d = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(d.attempt, 1);
    cr_assert_gt(d.fence, c.fence);
    jm_claim_clear(&c);
    jm_claim_clear(&d);
    /* the record is persistent again */
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", e.id, e.id);
    redisReply *rep = jm_redis_command(r, &err, "TTL %s", key);
    cr_assert_not_null(rep);
    cr_assert_eq(rep->integer, -1);
    freeReplyObject(rep);
}

Test(queue, release_gives_attempt_back_at_head)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(c.id, a.id);
    cr_assert_eq(jm_queue_release(r, c.id, c.lease, NULL, &err), JM_OK);
    cr_assert_eq(jm_queue_release(r, c.id, c.lease, NULL, &err), JM_ERR_FENCE);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, a.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_QUEUED);
    cr_assert_eq(j.attempts, 0);
    jm_job_clear(&j);
    jm_claim d = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(d.id, a.id, "released job goes to the head, before %s", b.id);
    cr_assert_eq(d.attempt, 1);
    jm_claim_clear(&c);
    jm_claim_clear(&d);
}

Test(queue, idempotent_replay)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"idempotency_key\":\"k1\"}");
    jm_enqueue_result b =
        jm_test_submit(r, "{\"type\":\"t\",\"idempotency_key\":\"k1\",\"payload\":9}");
    cr_assert(a.created);
    cr_assert_not(b.created);
    cr_assert_str_eq(a.id, b.id);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
    /* after the job finishes, the key still returns it (and its result) */
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "42", &ret, &err), JM_OK);
    jm_enqueue_result d = jm_test_submit(r, "{\"type\":\"t\",\"idempotency_key\":\"k1\"}");
    cr_assert_str_eq(d.id, a.id);
    cr_assert_not(d.created);
    /* the key expires with the record */
    jm_keybuf ik;
    snprintf(ik, sizeof(ik), "jm:idem:k1"); /* global outside Redis Cluster */
    const char *ttl[2] = {"TTL", ik};
    redisReply *rep = jm_redis_command_argv(r, &err, 2, ttl, NULL);
    cr_assert_not_null(rep);
    cr_assert(rep->integer > 3500 && rep->integer <= 3600);
    freeReplyObject(rep);
    jm_claim_clear(&c);
}

/* Outside Redis Cluster one key space serves every queue, as the API
 * promises: a key seen in queue x answers with x's job when submitted to y
 * (under Cluster keys are per queue: docs/cluster.md). */
Test(queue, idempotency_keys_are_global)
{
    jm_enqueue_result a =
        jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"x\",\"idempotency_key\":\"k\"}");
    jm_enqueue_result b =
        jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"y\",\"idempotency_key\":\"k\"}");
    jm_enqueue_result c =
        jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"y\",\"idempotency_key\":\"k\"}");
    cr_assert(a.created);
    cr_assert_not(b.created);
    cr_assert_str_eq(b.id, a.id, "the job of the key, from the other queue");
    cr_assert_not(c.created);
    cr_assert_str_eq(c.id, a.id);
    jm_job j = jm_test_get(r, b.id);
    cr_assert_str_eq(j.queue, "x");
    jm_job_clear(&j);
}

Test(queue, layout_1_is_upgraded_in_place)
{
    /* a layout-1 Redis: version 1, the queue set under its old name */
    redisReply *rep = jm_redis_command(r, &err, "SET jm:version 1");
    cr_assert_not_null(rep);
    freeReplyObject(rep);
    rep = jm_redis_command(r, &err, "SADD jm:queues old1 old2");
    cr_assert_not_null(rep);
    freeReplyObject(rep);
    jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"new\"}");
    cr_assert_eq(jm_redis_check_version(r, &err), JM_OK, "%s", err.msg);
    rep = jm_redis_command(r, &err, "GET jm:version");
    cr_assert_str_eq(rep->str, "2");
    freeReplyObject(rep);
    char **names;
    size_t n;
    cr_assert_eq(jm_queue_names(r, &names, &n, &err), JM_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "new");
    cr_assert_str_eq(names[1], "old1");
    cr_assert_str_eq(names[2], "old2");
    jm_strv_free(names, n);
    /* newer than this build: refused */
    rep = jm_redis_command(r, &err, "SET jm:version 3");
    freeReplyObject(rep);
    cr_assert_eq(jm_redis_check_version(r, &err), JM_ERR_VERSION);
}

Test(queue, delay_then_promote)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"delay_s\":0.05}");
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_SCHEDULED);
    jm_claim c[1];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 1, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "scheduled jobs are not claimable");
    int promoted = 0;
    JM_TEST_WAIT_UNTIL(
        duty_count(jm_queue_promote_due(r, "default", 10, &promoted, &err), &promoted) > 0, 5000,
        "the delay to pass");
    cr_assert_eq(promoted, 1);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_QUEUED);
    jm_claim got = jm_test_claim_one(r, "default", 1000);
    cr_assert_str_eq(got.id, e.id);
    jm_claim_clear(&got);
}

Test(queue, expiry_of_waiting_jobs)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.05}");
    jm_enqueue_result b =
        jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.05,\"delay_s\":100}");
    int total = 0, n = 0;
    JM_TEST_WAIT_UNTIL(
        (total += duty_count(jm_queue_expire_stale(r, "default", 10, &ret, &n, &err), &n)) >= 2,
        5000, "both jobs to expire");
    cr_assert_eq(total, 2);
    cr_assert_eq(jm_test_state(r, a.id), JM_STATE_EXPIRED);
    cr_assert_eq(jm_test_state(r, b.id), JM_STATE_EXPIRED);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_EXPIRED), 2);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 0);
}

Test(queue, expiry_never_applies_once_started)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.05}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    wait_past_expiry(e.id);
    int n = -1;
    cr_assert_eq(jm_queue_expire_stale(r, "default", 10, &ret, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_SUCCEEDED);
    jm_claim_clear(&c);
}

Test(queue, claim_expires_a_stale_queued_job_instead_of_running_it)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.02}");
    wait_past_expiry(e.id);
    jm_claim c[1];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 1, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_EXPIRED);
}

Test(queue, pause_blocks_claims)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert_eq(jm_queue_pause(r, "default", true, &err), JM_OK);
    jm_queue_info info;
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK);
    cr_assert(info.paused);
    jm_claim c[1];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 1, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    jm_test_submit(r, "{\"type\":\"t\"}"); /* paused queues keep accepting */
    cr_assert_eq(jm_queue_pause(r, "default", false, &err), JM_OK);
    cr_assert_eq(jm_test_claim(r, "default", 1, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 1);
    jm_claim_clear(&c[0]);
}

Test(queue, purge_removes_expired_records_from_indexes)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"result_ttl_s\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", e.id, e.id);
    redisReply *rep = jm_redis_command(r, &err, "TTL %s", key);
    cr_assert_eq(rep->integer, 1, "the job's own result_ttl_s wins");
    freeReplyObject(rep);
    int n = -1;
    cr_assert_eq(jm_queue_purge(r, "default", 100, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "nothing is purged before the record expires");
    /* purge runs by expiry time: the entry comes due with the record's TTL */
    JM_TEST_WAIT_UNTIL(purge_once("default", 100) == 1, 5000, "the purge after 1 s");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), 0);
    jm_claim_clear(&c);
}

/* Regression (issue 9.5): 500 long-lived records finished first must not
 * hold up the purge of shorter-lived records finished after them. */
Test(queue, purge_by_expiry_not_blocked_by_long_retention)
{
    enum { LONG = 500, SHORT = 5 };
    for (int i = 0; i < LONG; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"result_ttl_s\":86400}");
    jm_claim *c = calloc(LONG, sizeof(*c));
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", LONG, 60000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, LONG);
    for (int i = 0; i < LONG; i++) {
        cr_assert_eq(jm_queue_complete(r, c[i].id, c[i].lease, "1", &ret, &err), JM_OK);
        jm_claim_clear(&c[i]);
    }
    free(c);
    for (int i = 0; i < SHORT; i++) {
        jm_test_submit(r, "{\"type\":\"t\",\"result_ttl_s\":1}");
        jm_claim s = jm_test_claim_one(r, "default", 60000);
        cr_assert_eq(jm_queue_complete(r, s.id, s.lease, "1", &ret, &err), JM_OK);
        jm_claim_clear(&s);
    }
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), LONG + SHORT);
    /* batch 100 < LONG: a purge that looked only at the oldest entries of
     * each index would never get past the long-lived ones */
    int purged = 0;
    JM_TEST_WAIT_UNTIL((purged += purge_once("default", 100)) >= SHORT, 5000,
                       "the short-lived records purged");
    cr_assert_eq(purged, SHORT);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), LONG);
}

Test(queue, failed_jobs_keep_failed_ttl)
{
    jm_enqueue_result e =
        jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1,\"result_ttl_s\":5}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", false, 0, &ret, &st, &err), JM_OK);
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", e.id, e.id);
    redisReply *rep = jm_redis_command(r, &err, "TTL %s", key);
    cr_assert(rep->integer > 86000, "dead letters keep failed_ttl, got %lld", rep->integer);
    freeReplyObject(rep);
    jm_claim_clear(&c);
}

Test(queue, list_and_names)
{
    jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"b\"}");
    for (int i = 0; i < 5; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"queue\":\"a\"}");
    char **names;
    size_t n;
    cr_assert_eq(jm_queue_names(r, &names, &n, &err), JM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "a");
    cr_assert_str_eq(names[1], "b");
    jm_strv_free(names, n);
    char **ids, cursor[64];
    cr_assert_eq(jm_queue_list_ids(r, "a", JM_STATE_QUEUED, NULL, 3, &ids, &n, cursor, &err),
                 JM_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(cursor, "3");
    jm_strv_free(ids, n);
    cr_assert_eq(jm_queue_list_ids(r, "a", JM_STATE_QUEUED, cursor, 3, &ids, &n, cursor, &err),
                 JM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(cursor, "");
    jm_strv_free(ids, n);
    cr_assert_eq(jm_queue_list_ids(r, "a", JM_STATE_QUEUED, "zz", 3, &ids, &n, cursor, &err),
                 JM_ERR_INVALID);
}

Test(queue, max_queues_limit)
{
    json_t *b1 = json_pack("{s:s, s:s}", "type", "t", "queue", "q1");
    json_t *b2 = json_pack("{s:s, s:s}", "type", "t", "queue", "q2");
    jm_job_spec s1, s2;
    cr_assert_eq(jm_job_spec_from_json(b1, "", &s1, &err), JM_OK);
    cr_assert_eq(jm_job_spec_from_json(b2, "", &s2, &err), JM_OK);
    jm_enqueue_result res;
    cr_assert_eq(jm_queue_enqueue(r, &s1, 1, &res, NULL, &err), JM_OK);
    cr_assert_eq(jm_queue_enqueue(r, &s1, 1, &res, NULL, &err), JM_OK, "existing queue is fine");
    cr_assert_eq(jm_queue_enqueue(r, &s2, 1, &res, NULL, &err), JM_ERR_LIMIT);
    cr_assert_eq(jm_test_count(r, "q2", JM_STATE_QUEUED), 0);
    jm_job_spec_clear(&s1);
    jm_job_spec_clear(&s2);
    json_decref(b1);
    json_decref(b2);
}

Test(queue, batch_is_pipelined_and_ordered)
{
    jm_job_spec specs[50];
    for (int i = 0; i < 50; i++) {
        json_t *b = json_pack("{s:s, s:i}", "type", "t", "payload", i);
        cr_assert_eq(jm_job_spec_from_json(b, "", &specs[i], &err), JM_OK);
        json_decref(b);
    }
    jm_enqueue_result res[50];
    cr_assert_eq(jm_queue_enqueue_batch(r, specs, 50, 0, res, NULL, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 50);
    jm_claim c[50];
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", 50, 10000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 50);
    for (int i = 0; i < 50; i++) {
        cr_assert_str_eq(c[i].id, res[i].id);
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        cr_assert_str_eq(c[i].payload, want);
        jm_claim_clear(&c[i]);
        jm_job_spec_clear(&specs[i]);
    }
}

Test(queue, scripts_reload_after_flush)
{
    redisReply *rep = jm_redis_command(r, &err, "FUNCTION FLUSH");
    cr_assert_not_null(rep);
    freeReplyObject(rep);
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert(e.created);
}

Test(queue, redis_down_fails_fast_then_recovers)
{
    jm_test_redis_restart(&srv, NULL); /* drops the connection; data gone (no AOF) */
    jm_job_spec spec;
    json_t *b = json_pack("{s:s}", "type", "t");
    cr_assert_eq(jm_job_spec_from_json(b, "", &spec, &err), JM_OK);
    jm_enqueue_result res;
    int rc = jm_queue_enqueue(r, &spec, 0, &res, NULL, &err);
    if (rc != JM_OK) /* the first call may meet the dead socket */
        cr_assert_eq(rc, JM_ERR_REDIS);
    JM_TEST_WAIT_UNTIL(rc == JM_OK ||
                           (rc = jm_queue_enqueue(r, &spec, 0, &res, NULL, &err)) == JM_OK,
                       10000, "the reconnect");
    cr_assert_eq(rc, JM_OK, "%s", err.msg);
    jm_test_redis_stop(&srv);
    long long t0 = jm_test_now_ms();
    rc = jm_queue_enqueue(r, &spec, 0, &res, NULL, &err);
    cr_assert_eq(rc, JM_ERR_REDIS);
    cr_assert_lt(jm_test_now_ms() - t0, 6000, "must not hang");
    jm_job_spec_clear(&spec);
    json_decref(b);
    jm_test_redis_start(&srv, NULL); /* for teardown */
}

/* 8 threads with their own connections claim from one queue of 10,000 jobs:
 * every job is claimed exactly once. */
#define CLAIM_JOBS 10000
#define CLAIM_THREADS 8

typedef struct claimer {
    const char *url;
    char (*ids)[JM_ID_LEN + 1];
    int n;
} claimer;

static void *
claim_thread(void *arg)
{
    claimer *c = arg;
    jm_error e;
    jm_redis *rr = jm_redis_new(c->url, "jm", 5000, &e);
    jm_claim batch[16];
    for (;;) {
        int n = 0;
        if (jm_test_claim(rr, "default", 16, 60000, "w", batch, &n, &e) != JM_OK || n == 0)
            break;
        for (int i = 0; i < n; i++) {
            memcpy(c->ids[c->n++], batch[i].id, JM_ID_LEN + 1);
            jm_claim_clear(&batch[i]);
        }
    }
    jm_redis_free(rr);
    return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(queue, concurrent_claims_are_exclusive, .timeout = 120)
{
    enum { CHUNK = 500 };
    jm_job_spec *specs = calloc(CHUNK, sizeof(*specs));
    jm_enqueue_result *res = calloc(CHUNK, sizeof(*res));
    json_t *b = json_pack("{s:s}", "type", "t");
    for (int i = 0; i < CHUNK; i++)
        cr_assert_eq(jm_job_spec_from_json(b, "", &specs[i], &err), JM_OK);
    for (int k = 0; k < CLAIM_JOBS / CHUNK; k++)
        cr_assert_eq(jm_queue_enqueue_batch(r, specs, CHUNK, 0, res, NULL, &err), JM_OK, "%s",
                     err.msg);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), CLAIM_JOBS);

    pthread_t th[CLAIM_THREADS];
    claimer cl[CLAIM_THREADS];
    for (int t = 0; t < CLAIM_THREADS; t++) {
        cl[t] = (claimer){.url = srv.url, .ids = calloc(CLAIM_JOBS, JM_ID_LEN + 1), .n = 0};
        pthread_create(&th[t], NULL, claim_thread, &cl[t]);
    }
    char(*all)[JM_ID_LEN + 1] = calloc(CLAIM_JOBS * 2, JM_ID_LEN + 1);
    int total = 0;
    for (int t = 0; t < CLAIM_THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_assert_gt(cl[t].n, 0, "thread %d claimed nothing", t);
        memcpy(all[total], cl[t].ids, (size_t)cl[t].n * (JM_ID_LEN + 1));
        total += cl[t].n;
        free(cl[t].ids);
    }
    cr_assert_eq(total, CLAIM_JOBS, "claimed %d of %d", total, CLAIM_JOBS);
    qsort(all, (size_t)total, JM_ID_LEN + 1, cmp_id);
    for (int i = 1; i < total; i++)
        cr_assert_str_neq(all[i - 1], all[i], "double claim of %s", all[i]);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), CLAIM_JOBS);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    free(all);
    for (int i = 0; i < CHUNK; i++)
        jm_job_spec_clear(&specs[i]);
    free(specs);
    free(res);
    json_decref(b);
}

Test(queue, batch_survives_script_flush_and_respects_max_queues)
{
    jm_job_spec specs[3];
    const char *queues[3] = {"x", "y", "x"};
    for (int i = 0; i < 3; i++) {
        json_t *b = json_pack("{s:s, s:s}", "type", "t", "queue", queues[i]);
        cr_assert_eq(jm_job_spec_from_json(b, "", &specs[i], &err), JM_OK);
        json_decref(b);
    }
    jm_enqueue_result res[3];
    cr_assert_eq(jm_queue_enqueue_batch(r, specs, 3, 1, res, NULL, &err), JM_ERR_LIMIT);
    cr_assert_str_eq(err.field, "jobs[1].queue");
    cr_assert_eq(jm_test_count(r, "x", JM_STATE_QUEUED), 0, "nothing stored");
    redisReply *rep = jm_redis_command(r, &err, "FUNCTION FLUSH");
    freeReplyObject(rep);
    cr_assert_eq(jm_queue_enqueue_batch(r, specs, 3, 2, res, NULL, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_test_count(r, "x", JM_STATE_QUEUED), 2);
    cr_assert_eq(jm_test_count(r, "y", JM_STATE_QUEUED), 1);
    for (int i = 0; i < 3; i++)
        jm_job_spec_clear(&specs[i]);
}

Test(queue, released_job_never_expires_at_claim)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.05}");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(jm_queue_release(r, c.id, c.lease, NULL, &err), JM_OK);
    wait_past_expiry(e.id);
    jm_claim d = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(d.id, e.id, "a job that started once never expires");
    jm_claim_clear(&c);
    jm_claim_clear(&d);
}

Test(queue, cancel_request_survives_fail_and_release)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":5}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":5}");
    jm_claim ca = jm_test_claim_one(r, "default", 10000);
    jm_claim cb = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(jm_queue_cancel(r, a.id, &ret, &err), JM_OK);
    cr_assert_eq(jm_queue_cancel(r, b.id, &ret, &err), JM_OK);
    jm_state st = JM_STATE_UNKNOWN;
    cr_assert_eq(jm_queue_fail(r, ca.id, ca.lease, "boom", false, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_CANCELED, "a retryable failure must not resurrect a canceled job");
    cr_assert_eq(jm_test_state(r, a.id), JM_STATE_CANCELED);
    cr_assert_eq(jm_queue_release(r, cb.id, cb.lease, NULL, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, b.id), JM_STATE_CANCELED, "a drain must not put it back");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_CANCELED), 2);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SCHEDULED), 0);
    jm_claim_clear(&ca);
    jm_claim_clear(&cb);
}

Test(queue, malformed_running_record_does_not_block_lease_recovery)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim ca = jm_test_claim_one(r, "default", 20);
    jm_claim cb = jm_test_claim_one(r, "default", 20);
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", a.id, a.id);
    redisReply *rep = jm_redis_command(r, &err, "HDEL %s attempts max_attempts", key);
    freeReplyObject(rep);
    int req = 0, failed = 0, total = 0;
    JM_TEST_WAIT_UNTIL((total += requeue(&req, &failed)) >= 2, 5000, "both leases to expire");
    cr_assert_eq(total, 2);
    cr_assert_eq(jm_test_state(r, a.id), JM_STATE_FAILED, "malformed record is dead-lettered");
    cr_assert_eq(jm_test_state(r, b.id), JM_STATE_QUEUED);
    jm_claim_clear(&ca);
    jm_claim_clear(&cb);
}

Test(queue, process_retention_reaches_claim_expiry)
{
    jm_queue_set_retention(&(jm_retention){.result_ttl_s = 120, .failed_ttl_s = 240});
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.02}");
    wait_past_expiry(e.id);
    jm_claim c[1];
    int n = -1;
    cr_assert_eq(jm_test_claim(r, "default", 1, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_EXPIRED);
    char key[128];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", e.id, e.id);
    redisReply *rep = jm_redis_command(r, &err, "TTL %s", key);
    cr_assert_not_null(rep);
    cr_assert(rep->integer > 100 && rep->integer <= 120, "TTL %lld", rep->integer);
    freeReplyObject(rep);
}

Test(queue, full_redis_is_transient_not_a_bad_reply)
{
    redisReply *rep = jm_redis_command(r, &err, "CONFIG SET maxmemory 1");
    cr_assert_not_null(rep, "%s", err.msg);
    freeReplyObject(rep);
    jm_job_spec spec;
    json_t *b = json_pack("{s:s}", "type", "t");
    cr_assert_eq(jm_job_spec_from_json(b, "", &spec, &err), JM_OK);
    jm_enqueue_result res;
    cr_assert_eq(jm_queue_enqueue(r, &spec, 0, &res, NULL, &err), JM_ERR_REDIS,
                 "OOM must read as 'Redis unavailable, retry': %s", err.msg);
    cr_assert(strstr(err.msg, "OOM") != NULL, "%s", err.msg);
    rep = jm_redis_command(r, &err, "CONFIG SET maxmemory 0");
    cr_assert_not_null(rep, "%s", err.msg);
    freeReplyObject(rep);
    cr_assert_eq(jm_queue_enqueue(r, &spec, 0, &res, NULL, &err), JM_OK, "%s", err.msg);
    jm_job_spec_clear(&spec);
    json_decref(b);
}

/* ---- issue 9 regressions: dead pending entries, lost writes, lost replies,
 * the worker giving up a lease ---- */

/* Runs a raw command and frees its reply; the test fails on an error. */
static void
raw(const char *fmt, const char *arg)
{
    redisReply *rep = jm_redis_command(r, &err, fmt, arg);
    cr_assert_not_null(rep, "%s", err.msg);
    cr_assert_neq(rep->type, REDIS_REPLY_ERROR, "%s", rep->str);
    freeReplyObject(rep);
}

/* Pushes n ids without a record (as canceled or expired jobs leave them)
 * onto queue's pending list. */
static void
push_dead(const char *queue, int n)
{
    char tag[JM_TAG_LEN + 1], key[160];
    jm_slot_tag(queue, tag);
    snprintf(key, sizeof(key), "jm:{%s}:q:%s:pending", tag, queue);
    for (int i = 0; i < n; i += 1000) {
        const char *argv[1002] = {"RPUSH", key};
        char ids[1000][32];
        int k = 0;
        for (; k < 1000 && i + k < n; k++) {
            snprintf(ids[k], sizeof(ids[k]), "%sdead%08d", tag, i + k);
            argv[2 + k] = ids[k];
        }
        redisReply *rep = jm_redis_command_argv(r, &err, 2 + k, argv, NULL);
        cr_assert_not_null(rep, "%s", err.msg);
        freeReplyObject(rep);
    }
}

static long long
pending_len(const char *queue)
{
    char tag[JM_TAG_LEN + 1], key[160];
    jm_slot_tag(queue, tag);
    snprintf(key, sizeof(key), "jm:{%s}:q:%s:pending", tag, queue);
    redisReply *rep = jm_redis_command(r, &err, "LLEN %s", key);
    cr_assert_not_null(rep);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* Issue 9.3: 100,000 dead entries in front of a new job. One claim call
 * drops a bounded number and says "more"; following it reaches the job in
 * a bounded number of calls (before: the call answered "nothing" and the
 * worker went back to a 1 s blocking wait, ~100 s for this list). */
Test(queue, claim_keeps_going_past_dead_entries)
{
    push_dead("default", 100000);
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim_call call = {.queue = "default", .max = 1, .lease_ms = 10000, .worker_id = "w"};
    jm_claim c[1];
    int n = 0, calls = 0;
    do {
        cr_assert_eq(jm_queue_claim(r, &call, c, &n, &err), JM_OK, "%s", err.msg);
        calls++;
        cr_assert(n == 1 || call.more, "an empty claim must say more while dead entries remain");
    } while (n == 0 && calls < 1000);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].id, e.id);
    cr_assert_leq(calls, 101, "each call drops about a thousand dead entries (%d calls)", calls);
    cr_assert(!call.more);
    cr_assert_eq(pending_len("default"), 0);
    jm_claim_clear(&c[0]);
}

/* Issue 9.3: the janitor's trim drops dead entries from the head of pending
 * and stops at the first live one, so nothing stands in front of a new job. */
Test(queue, trim_pending_drops_dead_head_only)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert_eq(jm_queue_cancel(r, a.id, &ret, &err), JM_OK);
    push_dead("default", 2500);
    jm_enqueue_result live = jm_test_submit(r, "{\"type\":\"t\"}");
    push_dead("default", 10);
    int n = -1, total = 0;
    do {
        cr_assert_eq(jm_queue_trim_pending(r, "default", 1000, &n, &err), JM_OK, "%s", err.msg);
        total += n;
    } while (n == 1000);
    cr_assert_eq(total, 2501);
    cr_assert_eq(pending_len("default"), 11, "the live job and what lies behind it stay");
    jm_claim c = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(c.id, live.id);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
    jm_claim_clear(&c);
}

static void
setup_debug(void)
{
    static const char *const extra[] = {"--enable-debug-command", "yes", NULL};
    r = jm_test_setup(&srv, extra);
}

/* Issue 9.6: Redis loses the claim (a restart from an older snapshot, a
 * lagging replica promoted): the job is queued again and the fence counter
 * rolled back. The next claim must get a strictly greater fence and a new
 * lease token, and the first holder's token must be refused everywhere. */
Test(queue, lost_claim_cannot_be_forged, .init = setup_debug)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    raw("SAVE", NULL); /* the pre-claim snapshot */
    jm_claim first = jm_test_claim_one(r, "default", 60000);
    raw("DEBUG RELOAD NOSAVE", NULL); /* Redis lost the claim */
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_QUEUED);
    jm_claim second = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(second.id, first.id);
    cr_assert_gt(second.fence, first.fence, "fences keep growing across the loss");
    cr_assert_str_neq(second.lease, first.lease);
    cr_assert_eq(second.attempt, 1);
    jm_lease l = {.id = first.id, .queue = "default", .lease = first.lease};
    int st = -1;
    cr_assert_eq(jm_queue_heartbeat(r, &l, 1, 60000, &st, &err), JM_OK);
    cr_assert_eq(st, JM_LEASE_LOST, "the first holder's heartbeat is refused");
    cr_assert_eq(jm_queue_complete(r, first.id, first.lease, "\"zombie\"", &ret, &err),
                 JM_ERR_FENCE);
    cr_assert_eq(jm_queue_progress(r, first.id, first.lease, "{}", &err), JM_ERR_FENCE);
    cr_assert_eq(jm_queue_release(r, first.id, first.lease, NULL, &err), JM_ERR_FENCE);
    cr_assert_eq(jm_queue_complete(r, second.id, second.lease, "\"ok\"", &ret, &err), JM_OK);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_SUCCEEDED);
    cr_assert_eq(j.fence, second.fence);
    jm_job_clear(&j);
    jm_claim_clear(&first);
    jm_claim_clear(&second);
}

/* Fences are plain integers above Redis's clock in microseconds, and grow
 * by one per claim within a call. */
Test(queue, fences_grow_above_redis_clock)
{
    for (int i = 0; i < 3; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
    int64_t before_us = jm_redis_time_ms(r, &err) * 1000;
    jm_claim c[3];
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", 3, 10000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 3);
    cr_assert_geq(c[0].fence, before_us);
    cr_assert_eq(c[1].fence, c[0].fence + 1);
    cr_assert_eq(c[2].fence, c[1].fence + 1);
    char want[64];
    snprintf(want, sizeof(want), "%lld-", (long long)c[0].fence);
    cr_assert_eq(strncmp(c[0].lease, want, strlen(want)), 0, "token %s", c[0].lease);
    for (int i = 0; i < 3; i++)
        jm_claim_clear(&c[i]);
}

/* Issue 9.7: a claim ran but its reply was lost. Recovery by the call's
 * nonce hands the same jobs back (same fence and token, no new attempt);
 * with max_attempts 1 the job then succeeds instead of being dead-lettered
 * by the lease expiry. */
Test(queue, claim_recover_after_lost_reply)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_claim_call call = {.queue = "default", .max = 4, .lease_ms = 60000, .worker_id = "w"};
    jm_claim lost[4];
    int n = 0;
    cr_assert_eq(jm_queue_claim(r, &call, lost, &n, &err), JM_OK);
    cr_assert_eq(n, 2);
    for (int i = 0; i < n; i++) /* the reply never reached the claimer */
        jm_claim_clear(&lost[i]);
    jm_claim got[4];
    cr_assert_eq(jm_queue_claim_recover(r, &call, got, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(got[0].id, a.id);
    cr_assert_str_eq(got[1].id, b.id);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(got[i].attempt, 1);
        cr_assert_str_eq(got[i].type, "t");
        cr_assert_eq(jm_queue_complete(r, got[i].id, got[i].lease, "1", &ret, &err), JM_OK);
        jm_claim_clear(&got[i]);
    }
    jm_job j;
    cr_assert_eq(jm_queue_get(r, a.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_SUCCEEDED);
    cr_assert_eq(j.attempts, 1);
    jm_job_clear(&j);
    /* a receipt is used once; another nonce recovers nothing */
    cr_assert_eq(jm_queue_claim_recover(r, &call, got, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
}

/* Issue 9.7: recovery never hands out a job someone else holds now. */
Test(queue, claim_recover_skips_jobs_claimed_since)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim_call call = {.queue = "default", .max = 1, .lease_ms = 1, .worker_id = "w"};
    jm_claim lost[1];
    int n = 0;
    cr_assert_eq(jm_queue_claim(r, &call, lost, &n, &err), JM_OK);
    cr_assert_eq(n, 1);
    jm_claim_clear(&lost[0]);
    int req = 0, failed = 0;
    JM_TEST_WAIT_UNTIL(requeue(&req, &failed) == 1, 5000, "the 1 ms lease expired");
    jm_claim other = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(other.id, e.id);
    jm_claim got[1];
    call.lease_ms = 60000;
    cr_assert_eq(jm_queue_claim_recover(r, &call, got, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "the job is someone else's now");
    jm_claim_clear(&other);
}

/* Issue 9.8: a worker that stopped a handler because renewals failed hands
 * the job back at once. While the lease still holds in Redis the attempt is
 * given back; once it ran out there the attempt stays spent, as the
 * janitor's lease expiry would count it (none left: dead-lettered). */
Test(queue, abandon_gives_back_while_the_lease_holds)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    jm_state st = JM_STATE_UNKNOWN;
    cr_assert_eq(jm_queue_abandon(r, c.id, c.lease, &ret, &st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st, JM_STATE_QUEUED);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_QUEUED);
    cr_assert_eq(j.attempts, 0);
    jm_job_clear(&j);
    cr_assert_eq(jm_queue_abandon(r, c.id, c.lease, &ret, &st, &err), JM_ERR_FENCE);
    jm_claim_clear(&c);
}

Test(queue, abandon_after_redis_lease_ran_out_spends_the_attempt)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":2}");
    jm_claim ca = jm_test_claim_one(r, "default", 1), cb = jm_test_claim_one(r, "default", 1);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) > t0 + 2, 5000, "the 1 ms leases ran out");
    jm_state st = JM_STATE_UNKNOWN;
    cr_assert_eq(jm_queue_abandon(r, ca.id, ca.lease, &ret, &st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st, JM_STATE_FAILED);
    cr_assert_eq(jm_test_state(r, a.id), JM_STATE_FAILED);
    cr_assert_eq(jm_queue_abandon(r, cb.id, cb.lease, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_QUEUED);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, b.id, &j, &err), JM_OK);
    cr_assert_eq(j.attempts, 1);
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 0);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_FAILED), 1);
    jm_claim_clear(&ca);
    jm_claim_clear(&cb);
}

/* PUBLISH calls counted by Redis since the last CONFIG RESETSTAT. */
static long long
publish_calls(void)
{
    redisReply *rep = jm_redis_command(r, &err, "INFO commandstats");
    cr_assert_not_null(rep, "%s", err.msg);
    const char *p = strstr(rep->str, "cmdstat_publish:calls=");
    long long n = p != NULL ? atoll(p + strlen("cmdstat_publish:calls=")) : 0;
    freeReplyObject(rep);
    return n;
}

/* A finished job is published on the done channel only when a long-poll
 * watches it: jobs nobody waits on cost no PUBLISH. */
Test(queue, finish_publishes_only_watched_jobs)
{
    jm_enqueue_result a = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_enqueue_result b = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_job j;
    cr_assert_eq(jm_queue_watch(r, b.id, &j, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(j.status, JM_STATE_QUEUED, "watch returns the record");
    jm_job_clear(&j);
    cr_assert_eq(jm_queue_watch(r, "0000-nosuchjob0000000000", &j, &err), JM_ERR_NOT_FOUND);
    jm_job_clear(&j);
    raw("CONFIG RESETSTAT", NULL);
    jm_claim ca = jm_test_claim_one(r, "default", 10000);
    cr_assert_str_eq(ca.id, a.id);
    cr_assert_eq(jm_queue_complete(r, ca.id, ca.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(publish_calls(), 0, "nobody watches a");
    jm_claim cb = jm_test_claim_one(r, "default", 10000);
    cr_assert_eq(jm_queue_complete(r, cb.id, cb.lease, "2", &ret, &err), JM_OK);
    cr_assert_eq(publish_calls(), 1, "b is watched");
    jm_claim_clear(&ca);
    jm_claim_clear(&cb);
}

/* Outcomes committed in one pipelined round trip keep every guard of the
 * single calls: each answers as if committed alone. */
Test(queue, outcomes_batched_keep_their_guards)
{
    enum { N = 6 };
    for (int i = 0; i < N; i++)
        jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":2}");
    jm_claim c[N];
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", N, 60000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, N);
    cr_assert_eq(jm_queue_cancel(r, c[3].id, &ret, &err), JM_OK); /* running: requested */
    jm_outcome v[N + 1] = {
        {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = c[0].lease, .result = "{\"a\":1}"},
        {.kind = JM_OUTCOME_FAIL,
         .id = c[1].id,
         .lease = c[1].lease,
         .error = "boom",
         .backoff_ms = 60000},
        {.kind = JM_OUTCOME_RELEASE, .id = c[2].id, .lease = c[2].lease},
        {.kind = JM_OUTCOME_CANCEL_ACK, .id = c[3].id, .lease = c[3].lease},
        {.kind = JM_OUTCOME_COMPLETE, .id = c[4].id, .lease = "1-stale", .result = "1"},
        {.kind = JM_OUTCOME_FAIL,
         .id = c[5].id,
         .lease = c[5].lease,
         .error = "bad",
         .permanent = true},
        {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = c[0].lease, .result = "2"},
    };
    cr_assert_eq(jm_queue_outcomes(r, v, N + 1, &ret), JM_OK);
    cr_assert_eq(v[0].rc, JM_OK);
    cr_assert_eq(v[0].state, JM_STATE_SUCCEEDED);
    cr_assert_eq(v[1].rc, JM_OK);
    cr_assert_eq(v[1].state, JM_STATE_SCHEDULED);
    cr_assert_eq(v[2].rc, JM_OK);
    cr_assert_eq(v[2].state, JM_STATE_QUEUED);
    cr_assert_eq(v[3].rc, JM_OK);
    cr_assert_eq(v[3].state, JM_STATE_CANCELED);
    cr_assert_eq(v[4].rc, JM_ERR_FENCE, "a stale lease token is refused in a batch too");
    cr_assert_eq(v[5].rc, JM_OK);
    cr_assert_eq(v[5].state, JM_STATE_FAILED);
    cr_assert_eq(v[6].rc, JM_ERR_FENCE, "a second outcome of the same claim is refused");
    jm_job j = jm_test_get(r, c[0].id);
    cr_assert_str_eq(j.result, "{\"a\":1}");
    jm_job_clear(&j);
    cr_assert_eq(jm_test_state(r, c[4].id), JM_STATE_RUNNING);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 1);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
    for (int i = 0; i < N; i++)
        jm_claim_clear(&c[i]);
}
