/* clock.c - monotonic and wall time, monotonic condition waits, the retry
 * delay (clock.h). */
#include <errno.h>
#include <time.h>
#include "jobmill/clock.h"

int64_t
jm_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
jm_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
jm_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
jm_clock_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
jm_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

int
jm_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms)
{
    if (jm_clock_ms() >= deadline_ms)
        return ETIMEDOUT;
    struct timespec ts = {.tv_sec = deadline_ms / 1000,
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    int rc = pthread_cond_timedwait(c, mu, &ts);
    return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

int
jm_backoff_next(jm_backoff *b)
{
    b->cur_ms = b->cur_ms == 0 ? b->min_ms : b->cur_ms > b->max_ms / 2 ? b->max_ms : b->cur_ms * 2;
    return b->cur_ms;
}

int
jm_backoff_reset(jm_backoff *b)
{
    int had = b->cur_ms != 0;
    b->cur_ms = 0;
    return had;
}

int64_t
jm_retry_delay_ms(int attempt, int base_ms, int max_ms, double u)
{
    if (attempt < 1)
        attempt = 1;
    if (base_ms < 0)
        base_ms = 0;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (u < 0)
        u = 0;
    if (u >= 1)
        u = 1;
    return (int64_t)((double)d * (0.5 + u / 2.0));
}
