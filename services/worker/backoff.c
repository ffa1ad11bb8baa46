/* backoff.c - the jitter PRNG of retry delays (see backoff.h).
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
