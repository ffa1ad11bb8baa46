/* backoff.h - the jitter draws of retry delays: a tiny per-thread PRNG
 * whose uniform draw goes to libshared's jm_retry_delay_ms (clock.h, the
 * contract's formula, shared with the api's HTTP workers). No I/O, no locks.
 */
#ifndef WK_BACKOFF_H
#define WK_BACKOFF_H

#include <stdint.h>

/* wk_rng is a splitmix64 state; one per thread (not thread-safe). */
typedef struct wk_rng {
    uint64_t s;
} wk_rng;

/* wk_rng_seed seeds r from the clock, the thread and salt. */
void wk_rng_seed(wk_rng *r, uint64_t salt);

/* wk_rng_unit returns a uniform double in [0, 1). */
double wk_rng_unit(wk_rng *r);

#endif
