/* redis_script.c - the embedded Lua scripts (libshared/lua/, see
 * cmake/embed_lua.cmake): SCRIPT LOAD on every connect, EVALSHA, reload on
 * NOSCRIPT (a restarted or flushed Redis). See redis_raw.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "redis_raw.h"
#include "scripts.h"

#define MAX_SCRIPTS 64

/* SHA1 of every script, filled by SCRIPT LOAD; the same on every server, so
 * one table serves every connection. */
static char script_sha[MAX_SCRIPTS][41];
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

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
    redisReply *rep = jm__redis_check_reply(
        r, redisCommand(r->ctx, "SCRIPT LOAD %s", jm_script_sources[i].source), err, "SCRIPT LOAD");
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
jm__redis_load_scripts(jm_redis *r, jm_error *err)
{
    for (int i = 0; jm_script_sources[i].name != NULL && i < MAX_SCRIPTS; i++)
        if (load_script(r, i, err) != JM_OK)
            return JM_ERR_REDIS;
    return JM_OK;
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

int
jm__redis_is_noscript(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

redisReply *
jm_redis_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys, int nargs,
              const char **args, const size_t *arglens)
{
    eval_argv e;
    if (eval_prepare(r, &e, err, name, nkeys, keys, nargs, args, arglens) != JM_OK)
        return NULL;
    int64_t t0 = jm_clock_us();
    redisReply *rep = redisCommandArgv(r->ctx, e.n, e.av, e.al);
    jm__redis_observe(r, t0);
    if (jm__redis_is_noscript(rep)) {
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
    return jm__redis_check_reply(r, rep, err, name);
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
jm_redis_script_reload(jm_redis *r, const char *name, jm_error *err)
{
    int i = script_index(name);
    if (i < 0)
        return jm_error_set(err, JM_ERR_INVALID, NULL, "no embedded script %s", name);
    if (jm_redis_connect(r, err) != JM_OK)
        return JM_ERR_REDIS;
    return load_script(r, i, err);
}
