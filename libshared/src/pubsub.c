/* pubsub.c - the job-done subscription (see pubsub.h).
 *
 * Reading never relies on the socket timeout: a hiredis context that hits its
 * read timeout is marked failed and must be replaced, which would leave gaps
 * in the subscription every idle second. Instead jm_pubsub_next first drains
 * replies hiredis has already buffered, then poll(2)s the socket for at most
 * timeout_ms and only reads when data is there.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include "jobmill/pubsub.h"
#include "jobmill/queue.h"
#include "keys.h"
#include "redis_raw.h"

/* elem_is names whether array element i of rep is the string s. */
static bool
elem_is(const redisReply *rep, size_t i, const char *s)
{
    const redisReply *e = rep->element[i];
    return (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) &&
           strcmp(e->str, s) == 0;
}

static int
failed(jm_redis *r, jm_error *err, const char *what)
{
    redisContext *c = jm_redis_context(r);
    jm_error_set(err, JM_ERR_REDIS, NULL, "redis pubsub %s: %s", what,
                 c != NULL && c->errstr[0] != '\0' ? c->errstr : "connection lost");
    jm_redis_drop(r);
    return JM_ERR_REDIS;
}

int
jm_pubsub_subscribe_done(jm_redis *r, jm_error *err)
{
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    redisContext *c = jm_redis_context(r);
    jm_keybuf chan;
    jm_key_done(chan, r);
    const char *argv[2] = {"SUBSCRIBE", chan};
    if (redisAppendCommandArgv(c, 2, argv, NULL) != REDIS_OK)
        return failed(r, err, "subscribe");
    void *out = NULL;
    if (redisGetReply(c, &out) != REDIS_OK || out == NULL)
        return failed(r, err, "subscribe");
    redisReply *rep = out;
    bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && elem_is(rep, 0, "subscribe");
    freeReplyObject(rep);
    if (!ok) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis pubsub: unexpected SUBSCRIBE reply");
        jm_redis_drop(r);
        return JM_ERR_REDIS;
    }
    return JM_OK;
}

int
jm_pubsub_next(jm_redis *r, int timeout_ms, char *buf, size_t len, bool *got, jm_error *err)
{
    *got = false;
    redisContext *c = jm_redis_context(r);
    if (c == NULL)
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pubsub: not subscribed");
    void *out = NULL;
    if (redisGetReplyFromReader(c, &out) != REDIS_OK)
        return failed(r, err, "read");
    if (out == NULL) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms > 0 ? timeout_ms : 0);
        if (n < 0 && errno != EINTR)
            return failed(r, err, "poll");
        if (n <= 0)
            return JM_OK;
        if (redisBufferRead(c) != REDIS_OK)
            return failed(r, err, "read");
        if (redisGetReplyFromReader(c, &out) != REDIS_OK)
            return failed(r, err, "read");
        if (out == NULL)
            return JM_OK; /* a partial reply: the rest comes with the next read */
    }
    redisReply *rep = out;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && elem_is(rep, 0, "message") &&
        rep->element[2]->type == REDIS_REPLY_STRING && len > 0) {
        size_t n = rep->element[2]->len < len - 1 ? rep->element[2]->len : len - 1;
        memcpy(buf, rep->element[2]->str, n);
        buf[n] = '\0';
        *got = true;
    }
    freeReplyObject(rep);
    return JM_OK;
}
