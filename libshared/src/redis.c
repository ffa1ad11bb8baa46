/* redis.c - one Redis connection: lazy (re)connect with capped backoff,
 * checked replies, plain commands and pipelines. The embedded scripts live
 * in redis_script.c, the readiness policy in redis_ready.c. See redis.h and
 * redis_raw.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "redis_raw.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* The process-wide latency observer (jm_redis_set_latency_hook). */
static jm_redis_latency_fn latency_hook;
static void *latency_user;

void
jm_redis_set_latency_hook(jm_redis_latency_fn fn, void *user)
{
    latency_user = user;
    latency_hook = fn;
}

/* Reports one synchronous round trip of r, begun at start_us, to the hook;
 * blocking commands (a read timeout override is set: BLPOP) wait on purpose
 * and are not round trips. */
void
jm__redis_observe(const jm_redis *r, int64_t start_us)
{
    if (latency_hook != NULL && r->read_timeout_ms == 0)
        latency_hook(latency_user, (double)(jm_clock_us() - start_us) / 1e6);
}

int
jm_redis_url_parse(const char *url, jm_redis_url *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p = url;
    if (url == NULL || strncmp(p, "redis://", 8) != 0)
        return jm_error_set(err, JM_ERR_INVALID, "redis.url",
                            "must start with redis:// (rediss:// needs a TLS sidecar)");
    p += 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL)
            return jm_error_set(err, JM_ERR_INVALID, "redis.url",
                                "credentials must be [user]:password@");
        size_t ul = (size_t)(colon - p), pl = (size_t)(at - colon - 1);
        if (ul >= sizeof(out->user) || pl >= sizeof(out->password))
            return jm_error_set(err, JM_ERR_INVALID, "redis.url", "credentials too long");
        memcpy(out->user, p, ul);
        memcpy(out->password, colon + 1, pl);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(out->host))
        return jm_error_set(err, JM_ERR_INVALID, "redis.url", "missing or too long host");
    memcpy(out->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return jm_error_set(err, JM_ERR_INVALID, "redis.url", "bad port");
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || db < 0 || db > 1000)
            return jm_error_set(err, JM_ERR_INVALID, "redis.url", "bad db number");
        out->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        return jm_error_set(err, JM_ERR_INVALID, "redis.url", "unexpected text after host");
    }
    return JM_OK;
}

jm_redis *
jm_redis_new(const char *url, const char *prefix, int timeout_ms, jm_error *err)
{
    jm_redis *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (jm_redis_url_parse(url, &r->url, err) != JM_OK) {
        free(r);
        return NULL;
    }
    r->prefix = strdup(prefix != NULL ? prefix : "jm");
    if (r->prefix == NULL) {
        free(r);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    r->backoff = JM_BACKOFF(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    r->cluster = jm__redis_cluster_enabled();
    r->cur = -1;
    return r;
}

void
jm_redis_free(jm_redis *r)
{
    if (r == NULL)
        return;
    if (r->cluster)
        jm__route_free(r);
    else if (r->ctx != NULL)
        redisFree(r->ctx);
    free(r->prefix);
    free(r);
}

const char *
jm_redis_prefix(const jm_redis *r)
{
    return r->prefix;
}

int
jm_redis_connected(const jm_redis *r)
{
    return r->ctx != NULL;
}

redisContext *
jm_redis_context(jm_redis *r)
{
    return r->ctx;
}

struct timeval
jm__tv_ms(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

void
jm_redis_drop(jm_redis *r)
{
    if (r->cluster)
        jm__route_drop(r);
    else if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->pipe_pending = 0;
    /* The first failure of a working connection (say, Redis restarted):
     * the next call may reconnect at once; backoff starts after that. */
    int first = r->backoff.cur_ms == 0;
    int delay = jm_backoff_next(&r->backoff);
    r->next_try_ms = first ? 0 : jm_clock_ms() + delay;
}

void
jm_redis_set_read_timeout(jm_redis *r, int timeout_ms)
{
    r->read_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    int want = r->read_timeout_ms > 0 ? r->read_timeout_ms : r->timeout_ms;
    if (r->ctx != NULL)
        redisSetTimeout(r->ctx, jm__tv_ms(want));
    if (r->cluster && r->cur >= 0)
        r->node_tmo[r->cur] = want;
}

/* transient_error tells whether an error reply passes by itself. */
static int
transient_error(const char *msg)
{
    static const char *const prefixes[] = {"OOM ",         "BUSY ",       "LOADING ",
                                           "READONLY ",    "MASTERDOWN ", "TRYAGAIN ",
                                           "CLUSTERDOWN ", "NOREPLICAS "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Checks a reply from a synchronous call on ctx. Returns the reply (new) or
 * NULL with err set; drops the connection on I/O errors. */
redisReply *
jm__redis_check_reply(jm_redis *r, redisReply *rep, jm_error *err, const char *what)
{
    if (rep == NULL) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis %s: %s", what,
                     r->ctx != NULL && r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
        jm_redis_drop(r);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        /* Errors that pass by themselves (a full or busy, loading or failing
         * over Redis) are JM_ERR_REDIS like an outage: callers retry them.
         * Everything else (a script error, a wrong type) would repeat. */
        int code = transient_error(rep->str) ? JM_ERR_REDIS : JM_ERR_REPLY;
        /* A replica (a primary demoted by a failover): reconnect, which
         * finds the primary again when Sentinel is in use. */
        if (strncmp(rep->str, "READONLY", 8) == 0) {
            if (r->cluster) /* a demoted primary: the map is stale, the connection fine */
                jm__cluster_want_refresh();
            else
                jm_redis_drop(r);
        }
        jm_error_set(err, code, NULL, "redis %s: %.*s", what, (int)rep->len, rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

int
jm_redis_connect(jm_redis *r, jm_error *err)
{
    unsigned epoch = jm__redis_sentinel_epoch();
    if (r->ctx != NULL) {
        /* Sentinel announced a failover since this connection was made: find
         * the new primary now (never in the middle of a pipeline) */
        if (epoch == r->sentinel_epoch || r->pipe_pending > 0 || r->cluster)
            return JM_OK;
        jm_log_info("redis: sentinel switched the primary; reconnecting", NULL);
        jm_redis_drop(r);
    }
    if (r->cluster)
        return jm__route_connect(r, err);
    if (r->next_try_ms != 0 && jm_clock_ms() < r->next_try_ms)
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "redis %s:%d unreachable (next reconnect in %lld ms)", r->url.host,
                            r->url.port, (long long)(r->next_try_ms - jm_clock_ms()));
    /* With Sentinel the address comes from the sentinels, at every connect. */
    char host[256];
    int port = r->url.port;
    snprintf(host, sizeof(host), "%s", r->url.host);
    bool sentinel = jm__redis_sentinel_enabled();
    if (sentinel && jm__redis_sentinel_primary(host, &port, err) != JM_OK) {
        jm_redis_drop(r);
        return JM_ERR_REDIS;
    }
    redisContext *c = redisConnectWithTimeout(host, port, jm__tv_ms(r->timeout_ms));
    if (c == NULL || c->err) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis connect %s:%d: %s", host, port,
                     c != NULL ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        jm_redis_drop(r);
        return JM_ERR_REDIS;
    }
    redisSetTimeout(c, jm__tv_ms(r->read_timeout_ms > 0 ? r->read_timeout_ms : r->timeout_ms));
    redisEnableKeepAlive(c);
    r->ctx = c;
    redisReply *rep = NULL;
    if (r->url.password[0] != '\0') {
        if (r->url.user[0] != '\0')
            rep = redisCommand(c, "AUTH %s %s", r->url.user, r->url.password);
        else
            rep = redisCommand(c, "AUTH %s", r->url.password);
        if ((rep = jm__redis_check_reply(r, rep, err, "AUTH")) == NULL)
            goto failed;
        freeReplyObject(rep);
    }
    if (r->url.db != 0) {
        if ((rep = jm__redis_check_reply(r, redisCommand(c, "SELECT %d", r->url.db), err,
                                         "SELECT")) == NULL)
            goto failed;
        freeReplyObject(rep);
    }
    if (sentinel) {
        /* the sentinels' answer can be stale (a failover in progress) */
        rep = jm__redis_check_reply(r, redisCommand(c, "ROLE"), err, "ROLE");
        if (rep == NULL)
            goto failed;
        bool primary = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                       rep->element[0]->type == REDIS_REPLY_STRING &&
                       strcmp(rep->element[0]->str, "master") == 0;
        freeReplyObject(rep);
        if (!primary) {
            jm_error_set(err, JM_ERR_REDIS, NULL, "redis %s:%d is not the primary (yet)", host,
                         port);
            goto failed;
        }
    }
    if (jm__redis_load_scripts(r, err) != JM_OK)
        goto failed;
    jm_backoff_reset(&r->backoff);
    r->next_try_ms = 0;
    r->sentinel_epoch = epoch;
    return JM_OK;

failed:
    /* An error reply (bad password, script error) is not transient in the
     * usual sense, but the caller treats it as "Redis unusable" all the same. */
    if (r->ctx != NULL)
        jm_redis_drop(r);
    if (err != NULL)
        err->code = JM_ERR_REDIS;
    return JM_ERR_REDIS;
}

redisReply *
jm_redis_command(jm_redis *r, jm_error *err, const char *fmt, ...)
{
    if (jm_redis_connect(r, err) != JM_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int64_t t0 = jm_clock_us();
    redisReply *rep = redisvCommand(r->ctx, fmt, ap);
    jm__redis_observe(r, t0);
    va_end(ap);
    return jm__redis_check_reply(r, rep, err, "command");
}

redisReply *
jm_redis_command_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                      const size_t *argvlen)
{
    if (r->cluster)
        return jm__route_argv(r, err, argc, argv, argvlen, argv[0]);
    if (jm_redis_connect(r, err) != JM_OK)
        return NULL;
    int64_t t0 = jm_clock_us();
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
    jm__redis_observe(r, t0);
    return jm__redis_check_reply(r, rep, err, argv[0]);
}

int
jm_redis_pipe_argv(jm_redis *r, jm_error *err, int argc, const char **argv, const size_t *argvlen)
{
    if (r->cluster)
        return jm__route_append(r, err, argc, argv, argvlen);
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
        jm_redis_drop(r);
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline append failed");
    }
    r->pipe_pending++;
    return JM_OK;
}

redisReply *
jm_redis_pipe_reply(jm_redis *r, jm_error *err)
{
    if (r->cluster)
        return jm__route_pipe_reply(r, err);
    if (r->ctx == NULL || r->pipe_pending <= 0) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline: connection lost");
        return NULL;
    }
    void *out = NULL;
    if (redisGetReply(r->ctx, &out) != REDIS_OK)
        out = NULL;
    r->pipe_pending--;
    redisReply *rep = out;
    if (jm__redis_is_unloaded(rep)) {
        /* The library was lost since connect: reconnect, which loads it; the
         * caller's batch logic retries this one item as a failure it can redo. */
        freeReplyObject(rep);
        int pending = r->pipe_pending;
        jm_redis_pipe_discard(r, pending);
        jm__redis_library_lost();
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis: the function library was lost; reconnecting");
        jm_redis_drop(r);
        r->next_try_ms = 0;
        return NULL;
    }
    return jm__redis_check_reply(r, rep, err, "pipeline");
}

void
jm_redis_pipe_discard(jm_redis *r, int n)
{
    if (r->cluster) {
        jm__route_pipe_discard(r, n);
        return;
    }
    for (int k = 0; k < n && r->ctx != NULL && r->pipe_pending > 0; k++) {
        void *out = NULL;
        if (redisGetReply(r->ctx, &out) != REDIS_OK) {
            jm_redis_drop(r);
            return;
        }
        r->pipe_pending--;
        freeReplyObject(out);
    }
}

int
jm_redis_wait_replicas(jm_redis *r, int n, int timeout_ms, int *acked, jm_error *err)
{
    *acked = 0;
    redisReply *rep = jm_redis_command(r, err, "WAIT %d %d", n, timeout_ms);
    if (rep == NULL)
        return JM_ERR_REDIS;
    *acked = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
    freeReplyObject(rep);
    if (*acked < n)
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "only %d of %d replicas confirmed the write within %d ms", *acked, n,
                            timeout_ms);
    return JM_OK;
}
