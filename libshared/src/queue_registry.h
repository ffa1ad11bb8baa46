/* queue_registry.h - the queue set, kept outside the transition scripts
 * (queue_registry.c). Private to libshared.
 *
 * Ownership: every string passed in is borrowed for the call.
 */
#ifndef JM_QUEUE_REGISTRY_H
#define JM_QUEUE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include "redis_raw.h"

/* jm__queue_register adds each of the n queues to the queue set unless the
 * process saw it there lately. With max_queues > 0 it first refuses
 * (JM_ERR_LIMIT, field "queue", or "jobs[i].queue" when batch) queues that
 * would make the set larger than that, adding none of them. Two processes
 * creating queues at the same instant may pass the limit by a few (the check
 * and the add are two commands). JM_OK or an error. */
int jm__queue_register(jm_redis *r, const char *const *queues, size_t n, int max_queues, bool batch,
                       jm_error *err);

#endif
