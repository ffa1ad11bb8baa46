/* workers.h - the registry of live workers (jm:{registry}:workers ZSET +
 * jm:{registry}:worker:<id>).
 *
 * A worker registers at start, beats every heartbeat period (the beat also
 * refreshes its record's TTL, a few of its own periods and at least
 * JM_WORKERS_TTL_MIN_MS), and deregisters on a clean exit. The janitor prunes
 * workers whose record expired: each by its own heartbeat, not the
 * janitor's. Times are Redis's.
 */
#ifndef JOBMILL_WORKERS_H
#define JOBMILL_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/redis.h"

#define JM_WORKERS_TTL_MIN_MS 2000 /* the shortest record TTL a beat may set */

typedef struct jm_worker_info {
    char *id; /* owned strings */
    char *host;
    char *queues; /* comma list */
    int pid;
    int concurrency;
    int busy;
    int64_t started_ms;
    int64_t heartbeat_age_ms;
} jm_worker_info;

void jm_worker_info_clear(jm_worker_info *w);

/* jm_workers_beat registers or refreshes w (id, host, pid, queues,
 * concurrency, busy; started_ms is set by Redis on first beat). ttl_ms bounds
 * how long the record outlives a silent worker. */
int jm_workers_beat(jm_redis *r, const jm_worker_info *w, int ttl_ms, jm_error *err);

/* jm_workers_touch refreshes the beat and record TTL of a registered worker
 * id without rewriting its other fields; busy >= 0 also stores busy. *found
 * (may be NULL) tells whether id was registered (nothing is written when not). */
int jm_workers_touch(jm_redis *r, const char *id, int ttl_ms, int busy, bool *found, jm_error *err);

/* jm_workers_remove deregisters id. */
int jm_workers_remove(jm_redis *r, const char *id, jm_error *err);

/* jm_workers_list returns the live workers: *out is a new array of n entries;
 * free with jm_workers_list_free. */
int jm_workers_list(jm_redis *r, jm_worker_info **out, size_t *n, jm_error *err);
void jm_workers_list_free(jm_worker_info *v, size_t n);

/* jm_workers_prune removes workers whose record expired (silent for longer
 * than the TTL of their last beat), looking only at those whose last beat is
 * older than horizon_ms (at most 1000 a call); *n gets how many. */
int jm_workers_prune(jm_redis *r, int64_t horizon_ms, int *n, jm_error *err);

/* jm_workers_stats reads the registry's liveness: *live the workers whose
 * record has not expired, *max_age_ms the Redis time since the stalest live
 * worker's last beat (0 when none is live). One script, for the janitor's
 * gauges. */
int jm_workers_stats(jm_redis *r, int64_t *live, int64_t *max_age_ms, jm_error *err);

#endif
