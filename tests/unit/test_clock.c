/* test_clock.c - the clock module: monotonic time, condition waits on the
 * monotonic clock, and the capped doubling backoff. */
#include <criterion/criterion.h>
#include <errno.h>
#include "jobmill/clock.h"

Test(clock, monotonic_scales_agree_and_never_go_back)
{
    int64_t ms = jm_clock_ms(), us = jm_clock_us();
    double s = jm_clock_s();
    cr_assert_geq(us / 1000, ms);
    cr_assert_lt(us / 1000 - ms, 1000);
    cr_assert_geq(s * 1000.0 + 1.0, (double)ms);
    for (int i = 0; i < 1000; i++) {
        int64_t next = jm_clock_us();
        cr_assert_geq(next, us);
        us = next;
    }
    cr_assert_gt(jm_clock_wall_s(), 1.6e9, "Unix time, not monotonic");
}

Test(clock, cond_wait_until_times_out_on_the_monotonic_clock)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    cr_assert_eq(jm_cond_init(&c), 0);
    pthread_mutex_lock(&mu);
    cr_assert_eq(jm_cond_wait_until(&c, &mu, jm_clock_ms() - 1), ETIMEDOUT, "a past deadline");
    int64_t t0 = jm_clock_ms();
    int rc;
    while ((rc = jm_cond_wait_until(&c, &mu, t0 + 20)) == 0)
        ; /* spurious wake-ups are allowed */
    cr_assert_eq(rc, ETIMEDOUT);
    cr_assert_geq(jm_clock_ms(), t0 + 20);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&c);
}

Test(clock, backoff_doubles_to_its_cap_and_resets)
{
    jm_backoff b = JM_BACKOFF(100, 1000);
    cr_assert_eq(jm_backoff_reset(&b), 0, "no failure yet");
    int want[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_eq(jm_backoff_next(&b), want[i], "step %zu", i);
    cr_assert_eq(jm_backoff_reset(&b), 1);
    cr_assert_eq(jm_backoff_next(&b), 100);
    jm_backoff odd = JM_BACKOFF(300, 1000);
    cr_assert_eq(jm_backoff_next(&odd), 300);
    cr_assert_eq(jm_backoff_next(&odd), 600);
    cr_assert_eq(jm_backoff_next(&odd), 1000, "capped, not 1200");
}

Test(clock, retry_delay_doubles_to_its_cap_with_half_jitter)
{
    cr_assert_eq(jm_retry_delay_ms(1, 1000, 300000, 0.999999), 999);
    cr_assert_eq(jm_retry_delay_ms(1, 1000, 300000, 0.0), 500);
    cr_assert_eq(jm_retry_delay_ms(3, 1000, 300000, 0.0), 2000);
    cr_assert_eq(jm_retry_delay_ms(30, 1000, 300000, 0.0), 150000);
    cr_assert_eq(jm_retry_delay_ms(0, 1000, 300000, 0.0), 500, "attempt < 1 counts as 1");
    cr_assert_eq(jm_retry_delay_ms(2, 20, 10, 0.0), 10, "max below base is raised to base");
}
