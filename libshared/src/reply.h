/* reply.h - internal helpers shared by the files that read script replies
 * (queue.c, queue_read.c, workers.c, reconcile.c). Not public API. */
#ifndef JM_REPLY_H
#define JM_REPLY_H

#include <stdlib.h>
#include <hiredis/hiredis.h>
#include "jobmill/err.h"
#include "redis_raw.h"

/* The code a failed jm_redis call left in err, or JM_ERR_REDIS without one. */
static inline int
jm__err_code(const jm_error *err)
{
    return err != NULL && err->code != JM_OK ? err->code : JM_ERR_REDIS;
}

/* An element of an array reply as an integer (integer or bulk string). */
static inline long long
jm__reply_ll(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

/* An element as a string ("" unless it is a bulk string); borrowed. */
static inline const char *
jm__reply_str(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING ? e->str : "";
}

#endif
