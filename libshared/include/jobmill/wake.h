/* wake.h - the blocking wait of idle workers on their queues' wake lists.
 *
 * Every script that makes a job claimable (enqueue, promote_due, release,
 * requeue_expired) pushes a token on "<prefix>:{<tag>}:q:<queue>:wake" (the
 * list is trimmed to a small bound). An idle worker whose claim round found
 * nothing blocks here instead of sleep-polling, then claims again.
 *
 * The key is built here so that no service spells
 * a key name.
 */
#ifndef JOBMILL_WAKE_H
#define JOBMILL_WAKE_H

#include <stddef.h>
#include "jobmill/err.h"
#include "jobmill/redis.h"

/* jm_wake_wait blocks on the wake lists of the n queues (BLPOP, one token
 * taken) for at most timeout_ms (>= 1; rounded to Redis's millisecond
 * resolution). It raises r's read timeout above timeout_ms for the call and
 * restores the default afterwards. Returns JM_OK when a token arrived or the
 * timeout passed (the caller claims again either way), JM_ERR_INVALID for bad
 * arguments (n == 0, an invalid queue name), or JM_ERR_REDIS / JM_ERR_REPLY
 * with err set (the caller backs off before retrying). */
int jm_wake_wait(jm_redis *r, const char *const *queues, size_t n, int timeout_ms, jm_error *err);

#endif
