/* pubsub.h - a subscription to the job-done channel, for the api's one
 * long-poll subscriber thread.
 *
 * The finishing scripts PUBLISH a job's id on the done channel (P:done) whenever
 * the job reaches a terminal state. jm_pubsub_subscribe_done puts a jm_redis
 * in subscriber mode; from then on that handle may only be passed to
 * jm_pubsub_next, jm_redis_drop and jm_redis_free (after jm_redis_drop it is
 * an ordinary handle again and the next subscribe reconnects, honouring the
 * handle's backoff).
 *
 * Messages published while a handle is not subscribed are lost (Redis pub/sub
 * keeps nothing), so a caller that resubscribes must re-check whatever it was
 * waiting for. Like every jm_redis, a subscribed handle belongs to one thread.
 *
 * Part of libshared so that no service spells a
 * Redis command.
 */
#ifndef JOBMILL_PUBSUB_H
#define JOBMILL_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include "jobmill/err.h"
#include "jobmill/redis.h"

/* jm_pubsub_subscribe_done connects r when needed (honouring its backoff) and
 * SUBSCRIBEs to the done channel, waiting for Redis's confirmation. Returns
 * JM_OK, or JM_ERR_REDIS with the connection dropped. */
int jm_pubsub_subscribe_done(jm_redis *r, jm_error *err);

/* jm_pubsub_next waits up to timeout_ms (0 = do not wait) for the next message
 * on a subscribed r. On a message it copies the payload (a job id) into buf,
 * truncated to len - 1 bytes, and sets *got; on a timeout, a signal or a
 * non-message reply it clears *got. Both return JM_OK. When the connection
 * fails it returns JM_ERR_REDIS with the connection dropped: subscribe
 * again. */
int jm_pubsub_next(jm_redis *r, int timeout_ms, char *buf, size_t len, bool *got, jm_error *err);

#endif
