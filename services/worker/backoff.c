/* backoff.c - retry delay with jitter and a small PRNG (see backoff.h).
 */
#include <pthread.h>
#include <time.h>
#include "backoff.h"

static uint64_t
splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void
wk_rng_seed(wk_rng *r, uint64_t salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t self = (uint64_t)(uintptr_t)&ts; /* differs per thread stack */
    r->s =
        (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ self ^ (salt * 0x2545F4914F6CDD1DULL);
    (void)splitmix64(&r->s);
}

double
wk_rng_unit(wk_rng *r)
{
    return (double)(splitmix64(&r->s) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t
wk_backoff_ms(int attempt, int base_ms, int max_ms, double u)
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
