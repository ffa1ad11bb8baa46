/* redis_script.c - the embedded Lua scripts (libshared/lua/) as one Redis
 * function library (cmake/embed_lua.cmake): FUNCTION LOAD once per process
 * (on its first connect), FCALL, and a reload when the server lost the
 * library (a restarted Redis without persistence, FUNCTION FLUSH, a fresh
 * replica promoted). See redis_raw.h. Needs Redis 7.0 or later. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "redis_raw.h"
#include "scripts.h"

/* Set once this process has seen the library on the server: later
 * connections skip the load (a server that lost it since answers
 * "Function not found", and the call loads it again). */
static atomic_bool library_seen;
/* Held while a connection loads the library, so the threads of a starting
 * process load it once between them. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
function_name(const char *name)
{
    for (int i = 0; jm_script_functions[i].name != NULL; i++)
        if (strcmp(jm_script_functions[i].name, name) == 0)
            return jm_script_functions[i].function;
    return NULL;
}

/* load_library sends FUNCTION LOAD on the current connection. A library of
 * that name already there is the same code (the name carries its hash), so
 * "already exists" is success. */
static int
load_library(jm_redis *r, jm_error *err)
{
    const char *av[] = {"FUNCTION", "LOAD", jm_lua_library};
    redisReply *rep = redisCommandArgv(r->ctx, 3, av, NULL);
    char exists[128];
    snprintf(exists, sizeof(exists), "Library '%s' already exists", jm_lua_library_name);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, exists)) {
        freeReplyObject(rep);
        atomic_store(&library_seen, true);
        return JM_OK;
    }
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "unknown command")) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL,
                            "redis has no FUNCTION command: jobmill needs Redis 7.0 or later");
    }
    rep = jm__redis_check_reply(r, rep, err, "FUNCTION LOAD");
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    freeReplyObject(rep);
    atomic_store(&library_seen, true);
    return JM_OK;
}

int
jm__redis_load_library(jm_redis *r, jm_error *err)
{
    return load_library(r, err);
}

void
jm__redis_library_lost(void)
{
    atomic_store(&library_seen, false);
}

int
jm__redis_load_scripts(jm_redis *r, jm_error *err)
{
    if (atomic_load(&library_seen))
        return JM_OK;
    pthread_mutex_lock(&load_lock);
    int rc = atomic_load(&library_seen) ? JM_OK : load_library(r, err);
    pthread_mutex_unlock(&load_lock);
    return rc;
}

/* The argv of one FCALL: small calls use the inline arrays, large ones
 * (heartbeats of many jobs, batch reads) allocate. */
#define FCALL_INLINE 32
typedef struct fcall_argv {
    int n;
    const char **av;
    size_t *al;
    const char *av_inline[FCALL_INLINE];
    size_t al_inline[FCALL_INLINE];
    char nk[16];
} fcall_argv;

static void
fcall_release(fcall_argv *e)
{
    if (e->av != e->av_inline) {
        free(e->av);
        free(e->al);
    }
}

/* Resolves the function, connects, and builds FCALL function nkeys keys...
 * args... Returns JM_OK or an error (nothing to release then). */
static int
fcall_prepare(jm_redis *r, fcall_argv *e, jm_error *err, const char *name, int nkeys,
              const char **keys, int nargs, const char **args, const size_t *arglens)
{
    const char *fn = function_name(name);
    if (fn == NULL)
        return jm_error_set(err, JM_ERR_INVALID, NULL, "no embedded script %s", name);
    if (!r->cluster && jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    size_t total = 3 + (size_t)nkeys + (size_t)nargs;
    e->av = e->av_inline;
    e->al = e->al_inline;
    if (total > FCALL_INLINE) {
        e->av = malloc(sizeof(*e->av) * total);
        e->al = malloc(sizeof(*e->al) * total);
        if (e->av == NULL || e->al == NULL) {
            free(e->av);
            free(e->al);
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
    }
    snprintf(e->nk, sizeof(e->nk), "%d", nkeys);
    int n = 0;
    e->av[n] = "FCALL", e->al[n++] = 5;
    e->av[n] = fn, e->al[n++] = strlen(fn);
    e->av[n] = e->nk, e->al[n++] = strlen(e->nk);
    for (int k = 0; k < nkeys; k++)
        e->av[n] = keys[k], e->al[n++] = strlen(keys[k]);
    for (int k = 0; k < nargs; k++)
        e->av[n] = args[k], e->al[n++] = arglens != NULL ? arglens[k] : strlen(args[k]);
    e->n = n;
    return JM_OK;
}

int
jm__redis_is_unloaded(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR &&
           (strstr(rep->str, "Function not found") != NULL ||
            strncmp(rep->str, "NOSCRIPT", 8) == 0);
}

redisReply *
jm_redis_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys, int nargs,
              const char **args, const size_t *arglens)
{
    fcall_argv e;
    if (fcall_prepare(r, &e, err, name, nkeys, keys, nargs, args, arglens) != JM_OK)
        return NULL;
    if (r->cluster) {
        /* routed by KEYS[1], redirects and a node's lost library handled there */
        redisReply *rep = jm__route_argv(r, err, e.n, e.av, e.al, name);
        fcall_release(&e);
        return rep;
    }
    int64_t t0 = jm_clock_us();
    redisReply *rep = redisCommandArgv(r->ctx, e.n, e.av, e.al);
    jm__redis_observe(r, t0);
    if (jm__redis_is_unloaded(rep)) {
        /* The server lost the library (a restart without persistence,
         * FUNCTION FLUSH, a failover to a replica that never had it): load,
         * retry once. */
        freeReplyObject(rep);
        rep = NULL;
        if (load_library(r, err) != JM_OK) {
            fcall_release(&e);
            return NULL;
        }
        rep = redisCommandArgv(r->ctx, e.n, e.av, e.al);
    }
    fcall_release(&e);
    return jm__redis_check_reply(r, rep, err, name);
}

int
jm_redis_pipe_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys,
                   int nargs, const char **args, const size_t *arglens)
{
    fcall_argv e;
    int rc = fcall_prepare(r, &e, err, name, nkeys, keys, nargs, args, arglens);
    if (rc != JM_OK)
        return rc;
    if (r->cluster) {
        rc = jm__route_append(r, err, e.n, e.av, e.al);
        fcall_release(&e);
        return rc;
    }
    rc = redisAppendCommandArgv(r->ctx, e.n, e.av, e.al);
    fcall_release(&e);
    if (rc != REDIS_OK) {
        jm_redis_drop(r);
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline append failed");
    }
    r->pipe_pending++;
    return JM_OK;
}

int
jm_redis_script_reload(jm_redis *r, const char *name, jm_error *err)
{
    if (function_name(name) == NULL)
        return jm_error_set(err, JM_ERR_INVALID, NULL, "no embedded script %s", name);
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    return load_library(r, err);
}
