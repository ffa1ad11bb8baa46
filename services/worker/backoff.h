/* backoff.h - retry delays of failed attempts, with jitter (docs/contract.md):
 * min(backoff_max, backoff_base * 2^(n-1)) * uniform[0.5, 1].
 *
 * Pure computation plus a tiny per-thread PRNG;
 * no I/O, no locks.
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

/* wk_backoff_ms returns the delay before the retry that follows failed
 * attempt n (1-based): min(max_ms, base_ms * 2^(n-1)) scaled by
 * 0.5 + u / 2, where u in [0, 1) is the caller's uniform draw. */
int64_t wk_backoff_ms(int attempt, int base_ms, int max_ms, double u);

#endif
