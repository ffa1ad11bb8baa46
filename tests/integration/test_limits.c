/* test_limits.c - a queue's operator limits in the claim script: the
 * concurrency cap (across claims, counting outcomes committed in the same
 * call), the token-bucket rate limit in Redis time, the wait hint a held
 * back claim returns, clearing, and the limits in the queue's stats.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/queue.h"
#include "redis_fixture.h"

JM_TEST_SUITE(limits);

static void
submit_n(int n)
{
    for (int i = 0; i < n; i++)
        jm_test_submit(r, "{\"type\":\"t\"}");
}

static void
set_limits(jm_limit_op rate, int n, int64_t per_ms, jm_limit_op conc, int c)
{
    jm_queue_limits want = {.rate_n = n, .rate_ms = per_ms, .concurrency = c}, now;
    cr_assert_eq(jm_queue_set_limits(r, "default", rate, conc, &want, &now, &err), JM_OK, "%s",
                 err.msg);
}

/* claim_some claims up to max; returns how many, clears them, and puts the
 * call's throttle hint in *throttle_ms. */
static int
claim_some(int max, int *throttle_ms, jm_claim *keep)
{
    jm_claim_call call = {.queue = "default", .max = max, .lease_ms = 60000, .worker_id = "w"};
    jm_claim c[64];
    int n = 0;
    cr_assert_eq(jm_queue_claim(r, &call, c, &n, &err), JM_OK, "%s", err.msg);
    *throttle_ms = call.throttle_ms;
    for (int i = 0; i < n; i++) {
        if (keep != NULL)
            keep[i] = c[i];
        else
            jm_claim_clear(&c[i]);
    }
    return n;
}

Test(limits, concurrency_cap_holds_across_claims_and_frees_with_outcomes)
{
    submit_n(10);
    set_limits(JM_LIMIT_KEEP, 0, 0, JM_LIMIT_SET, 3);
    int throttle = 0;
    jm_claim held[64];
    cr_assert_eq(claim_some(8, &throttle, held), 3, "the cap, not the ask");
    cr_assert_eq(throttle, 0);
    cr_assert_eq(claim_some(8, &throttle, NULL), 0, "at the cap: nothing");
    cr_assert_gt(throttle, 0, "and a hint to look again later");
    /* completing one with a fetch frees exactly one place, in the same call */
    jm_outcome o = {
        .kind = JM_OUTCOME_COMPLETE, .id = held[0].id, .lease = held[0].lease, .result = "1"};
    jm_claim_call call = {.queue = "default", .max = 4, .lease_ms = 60000, .worker_id = "w"};
    jm_claim next[4];
    int got = 0;
    cr_assert_eq(jm_queue_outcomes_fetch(r, &o, 1, &ret, &call, next, &got), JM_OK);
    cr_assert_eq(got, 1, "the completed job's place, no more");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_RUNNING), 3);
    jm_claim_clear(&next[0]);
    for (int i = 0; i < 3; i++)
        jm_claim_clear(&held[i]);
    set_limits(JM_LIMIT_KEEP, 0, 0, JM_LIMIT_CLEAR, 0);
    cr_assert_eq(claim_some(8, &throttle, NULL), 6, "cleared: the rest");
}

Test(limits, rate_limit_is_a_token_bucket_in_redis_time)
{
    submit_n(20);
    set_limits(JM_LIMIT_SET, 5, 1000, JM_LIMIT_KEEP, 0);
    int throttle = 0;
    cr_assert_eq(claim_some(20, &throttle, NULL), 5, "a full bucket: a burst of n");
    cr_assert_eq(claim_some(20, &throttle, NULL), 0);
    cr_assert(throttle > 0 && throttle <= 200, "one token comes in 200 ms: %d", throttle);
    int64_t t0 = jm_redis_time_ms(r, &err);
    int got = 0;
    JM_TEST_WAIT_UNTIL((got += claim_some(20, &throttle, NULL)) >= 2, 5000, "two tokens refill");
    int64_t dt = jm_redis_time_ms(r, &err) - t0;
    cr_assert_geq(dt, 300, "two tokens take about 400 ms, took %lld", (long long)dt);
    jm_queue_info info;
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK);
    cr_assert_eq(info.limits.rate_n, 5);
    cr_assert_eq(info.limits.rate_ms, 1000);
    cr_assert_eq(info.limits.concurrency, 0);
    cr_assert_leq(info.limits.tokens, 1);
    set_limits(JM_LIMIT_CLEAR, 0, 0, JM_LIMIT_KEEP, 0);
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK);
    cr_assert_eq(info.limits.rate_n, 0);
}

Test(limits, no_limits_cost_one_read_and_change_nothing)
{
    submit_n(5);
    int throttle = -1;
    cr_assert_eq(claim_some(5, &throttle, NULL), 5);
    cr_assert_eq(throttle, 0);
    jm_queue_info info;
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK);
    cr_assert_eq(info.limits.rate_n, 0);
    cr_assert_eq(info.limits.concurrency, 0);
}
