/* clock.h - the one clock of every process: monotonic time for deadlines
 * and durations, wall time for timestamps shown to people, and condition
 * variables whose timed waits run on the monotonic clock (a wall-clock jump
 * never stretches or cuts a wait). Job deadlines are never computed here:
 * they come from Redis TIME inside the scripts.
 */
#ifndef JOBMILL_CLOCK_H
#define JOBMILL_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds, microseconds, and seconds. */
int64_t jm_clock_ms(void);
int64_t jm_clock_us(void);
double jm_clock_s(void);

/* CLOCK_REALTIME in seconds (Unix time, with a fraction). */
double jm_clock_wall_s(void);

/* jm_cond_init initialises c to time its waits on the monotonic clock.
 * Returns 0 or an errno value (pthread style). */
int jm_cond_init(pthread_cond_t *c);

/* jm_cond_wait_until waits on c (mu held) until signalled or the monotonic
 * deadline_ms (jm_clock_ms() scale) passes. Returns 0 when signalled
 * (possibly spuriously), ETIMEDOUT once the deadline has passed. */
int jm_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms);

/* A capped doubling backoff (reconnects, retried outcomes, paused claiming):
 * min_ms after the first failure, doubling up to max_ms, until a reset. */
typedef struct jm_backoff {
    int min_ms, max_ms;
    int cur_ms; /* the last delay handed out; 0 = no failure since reset */
} jm_backoff;

#define JM_BACKOFF(min, max) ((jm_backoff){.min_ms = (min), .max_ms = (max), .cur_ms = 0})

/* jm_backoff_next returns the next delay and records it. */
int jm_backoff_next(jm_backoff *b);
/* jm_backoff_reset forgets the failures; returns whether there were any. */
int jm_backoff_reset(jm_backoff *b);

/* jm_retry_delay_ms returns the contract's delay before the retry that
 * follows failed attempt n (1-based): min(max_ms, base_ms * 2^(n-1)) scaled
 * by 0.5 + u / 2, where u in [0, 1) is the caller's uniform draw. */
int64_t jm_retry_delay_ms(int attempt, int base_ms, int max_ms, double u);

#endif
