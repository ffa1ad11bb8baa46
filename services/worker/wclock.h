/* wclock.h - the worker's monotonic clock and deadline waits on condition
 * variables bound to that clock (wall-clock jumps never stretch a wait).
 */
#ifndef WK_WCLOCK_H
#define WK_WCLOCK_H

#include <pthread.h>
#include <stdint.h>

/* wk_mono_ms returns CLOCK_MONOTONIC in milliseconds. */
int64_t wk_mono_ms(void);

/* wk_cond_init initialises c to time its waits on CLOCK_MONOTONIC.
 * Returns 0 or an errno value. */
int wk_cond_init(pthread_cond_t *c);

/* wk_cond_wait_until waits on c (mu held) until signalled or the monotonic
 * deadline_ms passes. Returns 0 when signalled (possibly spuriously),
 * ETIMEDOUT once the deadline has passed. */
int wk_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms);

#endif
