/* test_worker_logic.c - the worker's pure logic without processes: the
 * retry backoff formula and the queue visiting order. */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/clock.h"
#include "backoff.h"
#include "order.h"

Test(worker_backoff, doubles_from_base_to_cap_with_jitter_in_half_to_full)
{
    /* u = 0 gives half the delay, u -> 1 the whole delay */
    cr_assert_eq(jm_retry_delay_ms(1, 1000, 300000, 0.0), 500);
    cr_assert_eq(jm_retry_delay_ms(1, 1000, 300000, 0.999999), 999);
    cr_assert_eq(jm_retry_delay_ms(2, 1000, 300000, 0.0), 1000);
    cr_assert_eq(jm_retry_delay_ms(3, 1000, 300000, 0.0), 2000);
    cr_assert_eq(jm_retry_delay_ms(10, 1000, 300000, 0.0), 150000, "capped at 300 s before jitter");
    cr_assert_eq(jm_retry_delay_ms(1000, 1000, 300000, 0.0), 150000, "no overflow");
    cr_assert_eq(jm_retry_delay_ms(0, 1000, 300000, 0.0), 500, "attempt < 1 counts as 1");
    cr_assert_eq(jm_retry_delay_ms(3, 1000, 500, 0.0), 500, "a cap below base is base");
    wk_rng r;
    wk_rng_seed(&r, 7);
    for (int i = 0; i < 10000; i++) {
        double u = wk_rng_unit(&r);
        cr_assert(u >= 0.0 && u < 1.0);
        int64_t d = jm_retry_delay_ms(2, 1000, 300000, u);
        cr_assert(d >= 1000 && d < 2000, "%lld", (long long)d);
    }
}

static void
check_permutation(const int *v, int n)
{
    int seen[JM_CFG_MAX_QUEUES] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert(v[i] >= 0 && v[i] < n);
        cr_assert_eq(seen[v[i]]++, 0, "queue %d visited twice", v[i]);
    }
}

Test(worker_order, strict_priority_keeps_the_configured_order)
{
    jm_cfg_queue q[3] = {{"high", 1}, {"mid", 1}, {"low", 1}};
    wk_order o;
    wk_order_init(&o, q, 3);
    for (int round = 0; round < 10; round++) {
        int v[3];
        wk_order_next(&o, v);
        cr_assert_eq(v[0], 0);
        cr_assert_eq(v[1], 1);
        cr_assert_eq(v[2], 2);
    }
}

Test(worker_order, weighted_leads_in_proportion_and_visits_every_queue)
{
    jm_cfg_queue q[3] = {{"a", 3}, {"b", 1}, {"c", 2}};
    wk_order o;
    wk_order_init(&o, q, 3);
    int lead[3] = {0};
    for (int round = 0; round < 600; round++) {
        int v[3];
        wk_order_next(&o, v);
        check_permutation(v, 3);
        lead[v[0]]++;
    }
    cr_assert_eq(lead[0], 300);
    cr_assert_eq(lead[1], 100);
    cr_assert_eq(lead[2], 200);
}
