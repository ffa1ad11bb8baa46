/* test_batched.c - the batched forms of the hot scripts keep every guard:
 * outcomes with "complete and fetch next" (jm_queue_outcomes_fetch: stale
 * token, canceled, paused, expired, lost reply), enqueue of many jobs of
 * several queues in one transaction (order, idempotency inside one batch),
 * and the counts equal to the indexes after each.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/queue.h"
#include "keys.h"
#include "redis_fixture.h"

JM_TEST_SUITE(batched);

/* index_size is ZCARD (or LLEN for "pending") of one of queue's indexes. */
static long long
index_size(const char *queue, const char *what)
{
    jm_keybuf key;
    jm_key_queue(key, r, queue, what);
    redisReply *rep =
        jm_redis_command(r, &err, strcmp(what, "pending") == 0 ? "LLEN %s" : "ZCARD %s", key);
    cr_assert_not_null(rep, "%s", err.msg);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* counts_match_indexes checks the exact counts against the indexes. */
static void
counts_match_indexes(const char *queue)
{
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_RUNNING), index_size(queue, "active"));
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_SUCCEEDED), index_size(queue, "succeeded"));
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_FAILED), index_size(queue, "failed"));
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_SCHEDULED), index_size(queue, "scheduled"));
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_EXPIRED), index_size(queue, "expired"));
    cr_assert_eq(jm_test_count(r, queue, JM_STATE_CANCELED), index_size(queue, "canceled"));
}

static void
claim_all(int want, jm_claim *c)
{
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", want, 60000, "w", c, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, want);
}

Test(batched, fetch_claims_next_jobs_with_the_outcomes)
{
    for (int i = 0; i < 5; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c[2];
    claim_all(2, c);
    jm_outcome v[2] = {
        {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = c[0].lease, .result = "1"},
        {.kind = JM_OUTCOME_FAIL,
         .id = c[1].id,
         .lease = c[1].lease,
         .error = "x",
         .backoff_ms = 1},
    };
    jm_claim_call call = {.queue = "default", .max = 2, .lease_ms = 60000, .worker_id = "w"};
    jm_claim next[2];
    int got = -1;
    cr_assert_eq(jm_queue_outcomes_fetch(r, v, 2, &ret, &call, next, &got), JM_OK);
    cr_assert_eq(v[0].state, JM_STATE_SUCCEEDED);
    cr_assert_eq(v[1].state, JM_STATE_SCHEDULED);
    cr_assert_eq(got, 2);
    for (int i = 0; i < got; i++) {
        cr_assert_eq(jm_test_state(r, next[i].id), JM_STATE_RUNNING);
        cr_assert_gt(next[i].fence, c[1].fence, "fences keep growing");
        cr_assert_eq(jm_queue_complete(r, next[i].id, next[i].lease, "2", &ret, &err), JM_OK);
        jm_claim_clear(&next[i]);
    }
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
    counts_match_indexes("default");
    for (int i = 0; i < 2; i++)
        jm_claim_clear(&c[i]);
}

Test(batched, fetch_skips_canceled_and_expires_stale_and_refuses_stale_tokens)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c[1];
    claim_all(1, c);
    jm_enqueue_result gone = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_enqueue_result stale = jm_test_submit(r, "{\"type\":\"t\",\"expires_in_s\":0.05}");
    jm_enqueue_result live = jm_test_submit(r, "{\"type\":\"t\"}");
    cr_assert_eq(jm_queue_cancel(r, gone.id, &ret, &err), JM_OK);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, stale.id, &j, &err), JM_OK);
    int64_t expires = j.expires_ms;
    jm_job_clear(&j);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) > expires, 5000, "Redis time past expires_at");
    /* the outcome carries a stale token: refused, yet the fetch runs */
    jm_outcome v = {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = "1-stale", .result = "1"};
    jm_claim_call call = {.queue = "default", .max = 3, .lease_ms = 60000, .worker_id = "w"};
    jm_claim next[3];
    int got = -1;
    cr_assert_eq(jm_queue_outcomes_fetch(r, &v, 1, &ret, &call, next, &got), JM_OK);
    cr_assert_eq(v.rc, JM_ERR_FENCE);
    cr_assert_eq(jm_test_state(r, c[0].id), JM_STATE_RUNNING, "nothing changed for it");
    cr_assert_eq(got, 1, "the canceled job is skipped, the stale one expired");
    cr_assert_str_eq(next[0].id, live.id);
    cr_assert_eq(jm_test_state(r, stale.id), JM_STATE_EXPIRED);
    cr_assert_eq(jm_test_state(r, gone.id), JM_STATE_CANCELED);
    counts_match_indexes("default");
    jm_claim_clear(&next[0]);
    jm_claim_clear(&c[0]);
}

Test(batched, fetch_from_a_paused_queue_takes_nothing)
{
    for (int i = 0; i < 3; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c[1];
    claim_all(1, c);
    cr_assert_eq(jm_queue_pause(r, "default", true, &err), JM_OK);
    jm_outcome v = {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = c[0].lease, .result = "1"};
    jm_claim_call call = {.queue = "default", .max = 1, .lease_ms = 60000, .worker_id = "w"};
    jm_claim next[1];
    int got = -1;
    cr_assert_eq(jm_queue_outcomes_fetch(r, &v, 1, &ret, &call, next, &got), JM_OK);
    cr_assert_eq(v.state, JM_STATE_SUCCEEDED, "the outcome commits");
    cr_assert_eq(got, 0, "a paused queue yields nothing");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 2);
    counts_match_indexes("default");
    jm_claim_clear(&c[0]);
}

Test(batched, fetch_after_a_lost_reply_is_recovered_by_nonce)
{
    for (int i = 0; i < 3; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c[1];
    claim_all(1, c);
    jm_outcome v = {.kind = JM_OUTCOME_COMPLETE, .id = c[0].id, .lease = c[0].lease, .result = "1"};
    jm_claim_call call = {.queue = "default", .max = 2, .lease_ms = 60000, .worker_id = "w"};
    jm_claim lost[2];
    int got = 0;
    cr_assert_eq(jm_queue_outcomes_fetch(r, &v, 1, &ret, &call, lost, &got), JM_OK);
    cr_assert_eq(got, 2);
    cr_assert_str_eq(call.nonce, "", "delivered: nothing to take back");
    /* the reply never reached the worker: it would still hold the call's
     * nonce (the end of each lease token "<fence>-<nonce>") */
    snprintf(call.nonce, sizeof(call.nonce), "%s", strchr(lost[0].lease, '-') + 1);
    for (int i = 0; i < got; i++)
        jm_claim_clear(&lost[i]);
    jm_claim back[2];
    int n = 0;
    cr_assert_eq(jm_queue_claim_recover(r, &call, back, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 2, "the fetch's receipt gives its jobs back");
    for (int i = 0; i < n; i++) {
        cr_assert_eq(jm_queue_complete(r, back[i].id, back[i].lease, "2", &ret, &err), JM_OK);
        jm_claim_clear(&back[i]);
    }
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_SUCCEEDED), 3);
    counts_match_indexes("default");
    jm_claim_clear(&c[0]);
}

Test(batched, released_job_can_be_fetched_again_in_the_same_call)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c[1];
    claim_all(1, c);
    jm_outcome v = {.kind = JM_OUTCOME_RELEASE, .id = c[0].id, .lease = c[0].lease};
    jm_claim_call call = {.queue = "default", .max = 1, .lease_ms = 60000, .worker_id = "w"};
    jm_claim next[1];
    int got = 0;
    cr_assert_eq(jm_queue_outcomes_fetch(r, &v, 1, &ret, &call, next, &got), JM_OK);
    cr_assert_eq(v.state, JM_STATE_QUEUED);
    cr_assert_eq(got, 1);
    cr_assert_str_eq(next[0].id, c[0].id, "the released job comes back under a new fence");
    cr_assert_gt(next[0].fence, c[0].fence);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 1);
    counts_match_indexes("default");
    cr_assert_eq(jm_queue_complete(r, c[0].id, c[0].lease, "1", &ret, &err), JM_ERR_FENCE,
                 "the old claim is fenced off");
    jm_claim_clear(&next[0]);
    jm_claim_clear(&c[0]);
}

Test(batched, enqueue_batch_of_several_queues_keeps_order_and_idempotency)
{
    enum { N = 9 };
    jm_job_spec specs[N];
    static const char *const queues[] = {"a", "b", "c"};
    for (int i = 0; i < N; i++) {
        json_t *b = i == 7 ? json_pack("{s:s, s:s, s:i, s:s}", "type", "t", "queue", "a", "payload",
                                       i, "idempotency_key", "k1")
                    : i == 1 ? json_pack("{s:s, s:s, s:i, s:s}", "type", "t", "queue", "a",
                                         "payload", i, "idempotency_key", "k1")
                             : json_pack("{s:s, s:s, s:i}", "type", "t", "queue", queues[i % 3],
                                         "payload", i);
        cr_assert_eq(jm_job_spec_from_json(b, "", &specs[i], &err), JM_OK, "%s", err.msg);
        json_decref(b);
    }
    jm_enqueue_result res[N];
    jm_job jobs[N];
    cr_assert_eq(jm_queue_enqueue_batch(r, specs, N, 0, res, jobs, &err), JM_OK, "%s", err.msg);
    cr_assert(res[1].created);
    cr_assert(!res[7].created, "the second job of one key in one batch gets the first");
    cr_assert_str_eq(res[7].id, res[1].id);
    cr_assert_str_eq(jobs[7].payload, "1");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].status, JM_STATE_QUEUED);
        jm_job_clear(&jobs[i]);
        jm_job_spec_clear(&specs[i]);
    }
    /* queues by index: a gets 0, 1, 3, 6 (7 is 1 again), b gets 4, c 2, 5, 8 */
    cr_assert_eq(jm_test_count(r, "a", JM_STATE_QUEUED), 4);
    cr_assert_eq(jm_test_count(r, "b", JM_STATE_QUEUED), 1);
    cr_assert_eq(jm_test_count(r, "c", JM_STATE_QUEUED), 3);
    for (int q = 0; q < 3; q++) {
        cr_assert_eq(index_size(queues[q], "pending"),
                     jm_test_count(r, queues[q], JM_STATE_QUEUED));
        counts_match_indexes(queues[q]);
    }
    /* each queue's jobs come out in request order */
    jm_claim c[3];
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "c", 3, 10000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(c[0].id, res[2].id);
    cr_assert_str_eq(c[1].id, res[5].id);
    cr_assert_str_eq(c[2].id, res[8].id);
    for (int i = 0; i < 3; i++)
        jm_claim_clear(&c[i]);
}
