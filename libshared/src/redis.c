/* redis.c - one Redis connection with lazy (re)connect, capped backoff,
 * checked replies and EVALSHA of the embedded scripts. See redis.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobmill/redis.h"
#include "scripts.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_SCRIPTS 64

struct jm_redis {
    redisContext *ctx;
    jm_redis_url url;
    char *prefix;
    int timeout_ms;
    int read_timeout_ms; /* command timeout; 0 = timeout_ms (kept across reconnects) */
    int backoff_ms;      /* current reconnect backoff; 0 = none */
    int64_t next_try_ms; /* monotonic: no connect attempt before this */
    int pipe_pending;    /* replies still to read in a pipeline */
};

/* The process-wide latency observer (jm_redis_set_latency_hook). */
static jm_redis_latency_fn latency_hook;
static void *latency_user;

void
jm_redis_set_latency_hook(jm_redis_latency_fn fn, void *user)
{
    latency_user = user;
    latency_hook = fn;
}

static int64_t
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reports one synchronous round trip of r, begun at start_us, to the hook;
 * blocking commands (a read timeout override is set: BLPOP) wait on purpose
 * and are not round trips. */
static void
observe(const jm_redis *r, int64_t start_us)
{
    if (latency_hook != NULL && r->read_timeout_ms == 0)
        latency_hook(latency_user, (double)(mono_us() - start_us) / 1e6);
}

/* SHA1 of every script, filled by SCRIPT LOAD; the same on every server, so
 * one table serves every connection. */
static char script_sha[MAX_SCRIPTS][41];
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    return r;
}

void
jm_redis_free(jm_redis *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
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

static struct timeval
tv_ms(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

void
jm_redis_drop(jm_redis *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->pipe_pending = 0;
    if (r->backoff_ms == 0) {
        /* The first failure of a working connection (say, Redis restarted):
         * the next call may reconnect at once; backoff starts after that. */
        r->backoff_ms = BACKOFF_MIN_MS;
        r->next_try_ms = 0;
        return;
    }
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    r->next_try_ms = mono_ms() + r->backoff_ms;
}

void
jm_redis_set_read_timeout(jm_redis *r, int timeout_ms)
{
    r->read_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    if (r->ctx != NULL)
        redisSetTimeout(r->ctx, tv_ms(r->read_timeout_ms > 0 ? r->read_timeout_ms : r->timeout_ms));
}

/* transient_error tells whether an error reply passes by itself. */
static int
transient_error(const char *msg)
{
    static const char *const prefixes[] = {"OOM ", "BUSY ", "LOADING ", "READONLY ",
                                           "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN ",
                                           "NOREPLICAS "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Checks a reply from a synchronous call on ctx. Returns the reply (new) or
 * NULL with err set; drops the connection on I/O errors. */
static redisReply *
check_reply(jm_redis *r, redisReply *rep, jm_error *err, const char *what)
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
        jm_error_set(err, code, NULL, "redis %s: %.*s", what, (int)rep->len, rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static int
script_index(const char *name)
{
    for (int i = 0; jm_script_sources[i].name != NULL && i < MAX_SCRIPTS; i++)
        if (strcmp(jm_script_sources[i].name, name) == 0)
            return i;
    return -1;
}

/* Loads script i on the current connection and records its SHA1. */
static int
load_script(jm_redis *r, int i, jm_error *err)
{
    redisReply *rep = check_reply(
        r, redisCommand(r->ctx, "SCRIPT LOAD %s", jm_script_sources[i].source), err,
        "SCRIPT LOAD");
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "SCRIPT LOAD %s: bad reply",
                            jm_script_sources[i].name);
    }
    pthread_mutex_lock(&sha_lock);
    memcpy(script_sha[i], rep->str, 40);
    script_sha[i][40] = '\0';
    pthread_mutex_unlock(&sha_lock);
    freeReplyObject(rep);
    return JM_OK;
}

int
jm_redis_connect(jm_redis *r, jm_error *err)
{
    if (r->ctx != NULL)
        return JM_OK;
    if (r->next_try_ms != 0 && mono_ms() < r->next_try_ms)
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "redis %s:%d unreachable (next reconnect in %lld ms)", r->url.host,
                            r->url.port, (long long)(r->next_try_ms - mono_ms()));
    redisContext *c = redisConnectWithTimeout(r->url.host, r->url.port, tv_ms(r->timeout_ms));
    if (c == NULL || c->err) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis connect %s:%d: %s", r->url.host,
                     r->url.port, c != NULL ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        jm_redis_drop(r);
        return JM_ERR_REDIS;
    }
    redisSetTimeout(c, tv_ms(r->read_timeout_ms > 0 ? r->read_timeout_ms : r->timeout_ms));
    redisEnableKeepAlive(c);
    r->ctx = c;
    redisReply *rep = NULL;
    if (r->url.password[0] != '\0') {
        if (r->url.user[0] != '\0')
            rep = redisCommand(c, "AUTH %s %s", r->url.user, r->url.password);
        else
            rep = redisCommand(c, "AUTH %s", r->url.password);
        if ((rep = check_reply(r, rep, err, "AUTH")) == NULL)
            goto failed;
        freeReplyObject(rep);
    }
    if (r->url.db != 0) {
        if ((rep = check_reply(r, redisCommand(c, "SELECT %d", r->url.db), err, "SELECT")) == NULL)
            goto failed;
        freeReplyObject(rep);
    }
    for (int i = 0; jm_script_sources[i].name != NULL && i < MAX_SCRIPTS; i++)
        if (load_script(r, i, err) != JM_OK)
            goto failed;
    r->backoff_ms = 0;
    r->next_try_ms = 0;
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
    int64_t t0 = mono_us();
    redisReply *rep = redisvCommand(r->ctx, fmt, ap);
    observe(r, t0);
    va_end(ap);
    return check_reply(r, rep, err, "command");
}

redisReply *
jm_redis_command_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                      const size_t *argvlen)
{
    if (jm_redis_connect(r, err) != JM_OK)
        return NULL;
    int64_t t0 = mono_us();
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
    observe(r, t0);
    return check_reply(r, rep, err, argv[0]);
}

/* The argv of one EVALSHA: small calls use the inline arrays, large ones
 * (heartbeats of many jobs, batch reads) allocate. */
#define EVAL_INLINE 32
typedef struct eval_argv {
    int script;
    int n;
    const char **av;
    size_t *al;
    const char *av_inline[EVAL_INLINE];
    size_t al_inline[EVAL_INLINE];
    char sha[41];
    char nk[16];
} eval_argv;

static void
eval_release(eval_argv *e)
{
    if (e->av != e->av_inline) {
        free(e->av);
        free(e->al);
    }
}

/* Resolves the script, connects, and builds EVALSHA sha nkeys keys... args...
 * Returns JM_OK or an error (nothing to release then). */
static int
eval_prepare(jm_redis *r, eval_argv *e, jm_error *err, const char *name, int nkeys,
             const char **keys, int nargs, const char **args, const size_t *arglens)
{
    if ((e->script = script_index(name)) < 0)
        return jm_error_set(err, JM_ERR_INVALID, NULL, "no embedded script %s", name);
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    size_t total = 3 + (size_t)nkeys + (size_t)nargs;
    e->av = e->av_inline;
    e->al = e->al_inline;
    if (total > EVAL_INLINE) {
        e->av = malloc(sizeof(*e->av) * total);
        e->al = malloc(sizeof(*e->al) * total);
        if (e->av == NULL || e->al == NULL) {
            free(e->av);
            free(e->al);
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
    }
    pthread_mutex_lock(&sha_lock);
    memcpy(e->sha, script_sha[e->script], 41);
    pthread_mutex_unlock(&sha_lock);
    snprintf(e->nk, sizeof(e->nk), "%d", nkeys);
    int n = 0;
    e->av[n] = "EVALSHA", e->al[n++] = 7;
    e->av[n] = e->sha, e->al[n++] = 40;
    e->av[n] = e->nk, e->al[n++] = strlen(e->nk);
    for (int k = 0; k < nkeys; k++)
        e->av[n] = keys[k], e->al[n++] = strlen(keys[k]);
    for (int k = 0; k < nargs; k++)
        e->av[n] = args[k], e->al[n++] = arglens != NULL ? arglens[k] : strlen(args[k]);
    e->n = n;
    return JM_OK;
}

static int
is_noscript(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

redisReply *
jm_redis_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys,
              int nargs, const char **args, const size_t *arglens)
{
    eval_argv e;
    if (eval_prepare(r, &e, err, name, nkeys, keys, nargs, args, arglens) != JM_OK)
        return NULL;
    int64_t t0 = mono_us();
    redisReply *rep = redisCommandArgv(r->ctx, e.n, e.av, e.al);
    observe(r, t0);
    if (is_noscript(rep)) {
        /* The script cache was flushed (SCRIPT FLUSH, a failover): load, retry once. */
        freeReplyObject(rep);
        rep = NULL;
        if (load_script(r, e.script, err) != JM_OK) {
            eval_release(&e);
            return NULL;
        }
        pthread_mutex_lock(&sha_lock);
        memcpy(e.sha, script_sha[e.script], 41);
        pthread_mutex_unlock(&sha_lock);
        rep = redisCommandArgv(r->ctx, e.n, e.av, e.al);
    }
    eval_release(&e);
    return check_reply(r, rep, err, name);
}

int
jm_redis_pipe_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys,
                   int nargs, const char **args, const size_t *arglens)
{
    eval_argv e;
    int rc = eval_prepare(r, &e, err, name, nkeys, keys, nargs, args, arglens);
    if (rc != JM_OK)
        return rc;
    rc = redisAppendCommandArgv(r->ctx, e.n, e.av, e.al);
    eval_release(&e);
    if (rc != REDIS_OK) {
        jm_redis_drop(r);
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline append failed");
    }
    r->pipe_pending++;
    return JM_OK;
}

int
jm_redis_pipe_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                   const size_t *argvlen)
{
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
        jm_redis_drop(r);
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline append failed");
    }
    r->pipe_pending++;
    return JM_OK;
}

int
jm_redis_script_reload(jm_redis *r, const char *name, jm_error *err)
{
    int i = script_index(name);
    if (i < 0)
        return jm_error_set(err, JM_ERR_INVALID, NULL, "no embedded script %s", name);
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    return load_script(r, i, err);
}

redisReply *
jm_redis_pipe_reply(jm_redis *r, jm_error *err)
{
    if (r->ctx == NULL || r->pipe_pending <= 0) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline: connection lost");
        return NULL;
    }
    void *out = NULL;
    if (redisGetReply(r->ctx, &out) != REDIS_OK)
        out = NULL;
    r->pipe_pending--;
    redisReply *rep = out;
    if (is_noscript(rep)) {
        /* Scripts were flushed since connect: reload them all; the caller's
         * batch logic retries this one item as a failure it can redo. */
        freeReplyObject(rep);
        int pending = r->pipe_pending;
        jm_redis_pipe_discard(r, pending);
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis: scripts were flushed; reconnecting");
        jm_redis_drop(r);
        r->next_try_ms = 0;
        return NULL;
    }
    return check_reply(r, rep, err, "pipeline");
}

void
jm_redis_pipe_discard(jm_redis *r, int n)
{
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

int64_t
jm_redis_time_ms(jm_redis *r, jm_error *err)
{
    redisReply *rep = jm_redis_command(r, err, "TIME");
    if (rep == NULL)
        return -1;
    int64_t ms = -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
        ms = strtoll(rep->element[0]->str, NULL, 10) * 1000 +
             strtoll(rep->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(rep);
    if (ms < 0)
        jm_error_set(err, JM_ERR_REPLY, NULL, "TIME: bad reply");
    return ms;
}

int
jm_redis_check_version(jm_redis *r, jm_error *err)
{
    char key[300];
    snprintf(key, sizeof(key), "%s:version", r->prefix);
    redisReply *rep = jm_redis_command(r, err, "SET %s %d NX GET", key, JM_LAYOUT_VERSION);
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    int rc = JM_OK;
    if (rep->type == REDIS_REPLY_STRING) {
        long v = strtol(rep->str, NULL, 10);
        if (v > JM_LAYOUT_VERSION)
            rc = jm_error_set(err, JM_ERR_VERSION, NULL,
                              "redis layout version %ld is newer than this build's %d", v,
                              JM_LAYOUT_VERSION);
    }
    freeReplyObject(rep);
    return rc;
}

int
jm_redis_ready(jm_redis *r, jm_error *err)
{
    redisReply *rep = jm_redis_command(r, err, "INFO memory");
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    int rc = JM_OK;
    const char *p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "maxmemory_policy:") : NULL;
    if (p == NULL) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "redis INFO memory has no maxmemory_policy");
    } else {
        p += strlen("maxmemory_policy:");
        size_t n = strcspn(p, "\r\n");
        if (n != strlen("noeviction") || strncmp(p, "noeviction", n) != 0)
            rc = jm_error_set(err, JM_ERR_STATE, NULL,
                              "redis maxmemory-policy is %.*s, must be noeviction", (int)n, p);
    }
    freeReplyObject(rep);
    return rc;
}
