/* redis_route.c - a jm_redis in Redis Cluster mode: a connection per node,
 * each command sent to the node that serves its key's slot (the slot map is
 * redis_cluster.c's), MOVED and ASK (with ASKING) followed, a node that lost
 * the function library given it again, and pipelines split per node (each
 * node's commands go out together; replies are read back in the order the
 * caller appended them). See redis_raw.h.
 *
 * A command's routing key is its first key: FCALL's first declared key (the
 * slot prefix "P:{t}:" of every script call), argv[1] for the others. A
 * keyless command (TIME, INFO, WAIT, SCAN...) goes to the node last used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "jobmill/clock.h"
#include "redis_raw.h"

#define MAX_REDIRECTS 5
/* A script call that meets ASK waits for the migration to end: this long at
 * most, in growing steps (see exec_on). */
#define MIGRATION_WAIT_MS 2000
/* After a failed connect to a node, calls for it fail at once this long. */
#define NODE_RETRY_MS 200

/* is_script tells whether a command runs a script (FCALL, EVAL...). */
static bool
is_script(const char *cmd)
{
    return strcasecmp(cmd, "FCALL") == 0 || strcasecmp(cmd, "FCALL_RO") == 0 ||
           strcasecmp(cmd, "EVALSHA") == 0 || strcasecmp(cmd, "EVAL") == 0;
}

/* route_slot finds the routing key of a command: true and *slot when it has one. */
static bool
route_slot(int argc, const char **argv, const size_t *lens, unsigned *slot)
{
    if (argc < 2)
        return false;
    const char *cmd = argv[0];
    int k = 1;
    if (strcasecmp(cmd, "FCALL") == 0 || strcasecmp(cmd, "FCALL_RO") == 0 ||
        strcasecmp(cmd, "EVALSHA") == 0 || strcasecmp(cmd, "EVAL") == 0) {
        if (argc < 4 || atoi(argv[2]) < 1)
            return false;
        k = 3;
    } else if (strcasecmp(cmd, "TIME") == 0 || strcasecmp(cmd, "INFO") == 0 ||
               strcasecmp(cmd, "WAIT") == 0 || strcasecmp(cmd, "SCAN") == 0 ||
               strcasecmp(cmd, "PING") == 0 || strcasecmp(cmd, "MULTI") == 0 ||
               strcasecmp(cmd, "EXEC") == 0 || strcasecmp(cmd, "FUNCTION") == 0 ||
               strcasecmp(cmd, "CLUSTER") == 0 || strcasecmp(cmd, "ROLE") == 0 ||
               strcasecmp(cmd, "SUBSCRIBE") == 0 || strcasecmp(cmd, "PUBLISH") == 0) {
        return false;
    }
    *slot = jm__cluster_key_slot(argv[k], lens != NULL ? lens[k] : strlen(argv[k]));
    return true;
}

/* node_close drops r's connection to node idx; replies still owed by it are lost. */
static void
node_close(jm_redis *r, int idx)
{
    if (r->node[idx] != NULL) {
        redisFree(r->node[idx]);
        r->node[idx] = NULL;
    }
    r->node_gen[idx]++;
    if (r->cur == idx) {
        r->ctx = NULL;
        r->cur = -1;
    }
}

/* node_open makes node idx the current connection, connecting (AUTH, the
 * function library) when needed. JM_OK or JM_ERR_REDIS. */
static int
node_open(jm_redis *r, int idx, jm_error *err)
{
    int want = r->read_timeout_ms > 0 ? r->read_timeout_ms : r->timeout_ms;
    if (r->node[idx] != NULL) {
        r->ctx = r->node[idx];
        r->cur = idx;
        if (r->node_tmo[idx] != want) {
            redisSetTimeout(r->ctx, jm__tv_ms(want));
            r->node_tmo[idx] = want;
        }
        return JM_OK;
    }
    if (r->node_retry_ms[idx] != 0 && jm_clock_ms() < r->node_retry_ms[idx])
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "redis cluster: node %d unreachable (retrying shortly)", idx);
    char host[256];
    int port;
    if (jm__cluster_node_addr(idx, host, &port) != JM_OK)
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis cluster: unknown node %d", idx);
    redisContext *c = redisConnectWithTimeout(host, port, jm__tv_ms(r->timeout_ms));
    if (c == NULL || c->err) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis connect %s:%d: %s", host, port,
                     c != NULL ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        r->node_gen[idx]++;
        /* fail fast for a moment: a dead primary stays in the map until
         * the cluster fails it over */
        r->node_retry_ms[idx] = jm_clock_ms() + NODE_RETRY_MS;
        jm__cluster_want_refresh();
        return JM_ERR_REDIS;
    }
    redisSetTimeout(c, jm__tv_ms(want));
    redisEnableKeepAlive(c);
    r->node_retry_ms[idx] = 0;
    r->node[idx] = c;
    r->node_tmo[idx] = want;
    r->ctx = c;
    r->cur = idx;
    if (r->url.password[0] != '\0') {
        redisReply *rep = r->url.user[0] != '\0'
                              ? redisCommand(c, "AUTH %s %s", r->url.user, r->url.password)
                              : redisCommand(c, "AUTH %s", r->url.password);
        if ((rep = jm__redis_check_reply(r, rep, err, "AUTH")) == NULL) {
            node_close(r, idx);
            return JM_ERR_REDIS;
        }
        freeReplyObject(rep);
    }
    /* Every primary needs the library; a node new to this connection may be
     * new to the cluster (a promoted replica has it through replication,
     * an added node does not). "Already exists" is success. */
    jm_error lerr;
    jm_error_clear(&lerr);
    if (jm__redis_load_library(r, &lerr) != JM_OK && strstr(lerr.msg, "READONLY") == NULL) {
        /* (a replica answers READONLY: a primary demoted by a failover that
         * the map does not know of yet; it answers commands with MOVED) */
        if (err != NULL)
            *err = lerr;
        node_close(r, idx);
        if (err != NULL)
            err->code = JM_ERR_REDIS;
        return JM_ERR_REDIS;
    }
    return JM_OK;
}

int
jm__route_connect(jm_redis *r, jm_error *err)
{
    if (r->ctx != NULL)
        return JM_OK;
    if (r->next_try_ms != 0 && jm_clock_ms() < r->next_try_ms)
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "redis cluster unreachable (next reconnect in %lld ms)",
                            (long long)(r->next_try_ms - jm_clock_ms()));
    for (int i = 0; i < JM_CLUSTER_MAX_NODES; i++)
        if (r->node[i] != NULL)
            return node_open(r, i, err);
    int idx = jm__cluster_slot_node(0, r->url.user, r->url.password, err);
    if (idx < 0 || node_open(r, idx, err) != JM_OK) {
        jm_redis_drop(r);
        return JM_ERR_REDIS;
    }
    jm_backoff_reset(&r->backoff);
    r->next_try_ms = 0;
    return JM_OK;
}

/* ring_clear forgets the pipeline, as dropping a single connection does:
 * a node that still owes replies is closed (they would answer later calls). */
static void
ring_clear(jm_redis *r)
{
    for (size_t k = 0; k < r->pipe_len; k++) {
        jm_pipe_entry *e = &r->pipe[(r->pipe_head + k) % r->pipe_cap];
        if (e->early != NULL)
            freeReplyObject(e->early);
        else if (r->node[e->node] != NULL && r->node_gen[e->node] == e->gen)
            node_close(r, e->node);
        redisFreeCommand(e->cmd);
    }
    r->pipe_head = r->pipe_len = 0;
    r->pipe_pending = 0;
}

void
jm__route_drop(jm_redis *r)
{
    ring_clear(r);
    if (r->cur >= 0)
        node_close(r, r->cur);
    r->ctx = NULL;
    jm__cluster_want_refresh();
}

void
jm__route_free(jm_redis *r)
{
    ring_clear(r);
    for (int i = 0; i < JM_CLUSTER_MAX_NODES; i++)
        if (r->node[i] != NULL)
            redisFree(r->node[i]);
    free(r->pipe);
    r->ctx = NULL;
}

/* exec_on sends the formatted command cmd to node idx (after ASKING when
 * ask) and follows redirects and a lost library. A new reply checked as
 * jm__redis_check_reply does, or NULL with err set.
 *
 * A script is never sent after ASK. Its declared key is the slot prefix
 * "P:{t}:", which no script writes, so while its slot migrates the source
 * node answers every script call with ASK: the script would run on the
 * importing node, which holds only the keys moved so far (it would find no
 * job, or start a second pending list that the next MIGRATE collides
 * with). Instead the call waits until the source answers MOVED (the
 * migration ended: the target holds every key), at most MIGRATION_WAIT_MS,
 * then fails as a transient error. So no script runs in a slot while it
 * moves. */
static redisReply *
exec_on(jm_redis *r, int idx, bool ask, bool script, const char *cmd, size_t len, const char *what,
        jm_error *err)
{
    int waited_ms = 0, step_ms = 2;
    for (int tries = 0; tries < MAX_REDIRECTS; tries++) {
        if (node_open(r, idx, err) != JM_OK)
            return NULL;
        redisContext *c = r->ctx;
        int64_t t0 = jm_clock_us();
        if (ask && redisAppendCommand(c, "ASKING") != REDIS_OK)
            return jm__redis_check_reply(r, NULL, err, what);
        if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK)
            return jm__redis_check_reply(r, NULL, err, what);
        void *out = NULL;
        if (ask) {
            if (redisGetReply(c, &out) != REDIS_OK || out == NULL)
                return jm__redis_check_reply(r, NULL, err, what);
            freeReplyObject(out);
            out = NULL;
        }
        if (redisGetReply(c, &out) != REDIS_OK)
            out = NULL;
        jm__redis_observe(r, t0);
        redisReply *rep = out;
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
            unsigned slot;
            int to = jm__cluster_moved(rep->str, &ask, &slot);
            if (to >= 0 && ask && script) {
                freeReplyObject(rep);
                if (waited_ms >= MIGRATION_WAIT_MS)
                    return jm_error_set(err, JM_ERR_REDIS, NULL,
                                        "redis cluster %s: slot %u is migrating", what, slot),
                           NULL;
                struct timespec ts = {0, (long)step_ms * 1000000L};
                nanosleep(&ts, NULL);
                waited_ms += step_ms;
                step_ms = step_ms < 50 ? step_ms * 2 : 50;
                ask = false;
                tries--; /* waiting is not redirecting */
                continue;
            }
            if (to >= 0) {
                freeReplyObject(rep);
                idx = to;
                continue;
            }
            if (jm__redis_is_unloaded(rep)) {
                freeReplyObject(rep);
                if (jm__redis_load_library(r, err) != JM_OK)
                    return NULL;
                ask = false;
                continue;
            }
        }
        return jm__redis_check_reply(r, rep, err, what);
    }
    return jm_error_set(err, JM_ERR_REDIS, NULL, "redis cluster %s: too many redirects", what),
           NULL;
}

/* target: the node for a command's key, or the current one for a keyless command. */
static int
target(jm_redis *r, int argc, const char **argv, const size_t *lens, jm_error *err)
{
    unsigned slot;
    if (route_slot(argc, argv, lens, &slot))
        return jm__cluster_slot_node(slot, r->url.user, r->url.password, err);
    if (jm__route_connect(r, err) != JM_OK)
        return -1;
    return r->cur;
}

redisReply *
jm__route_argv(jm_redis *r, jm_error *err, int argc, const char **argv, const size_t *lens,
               const char *what)
{
    int idx = target(r, argc, argv, lens, err);
    if (idx < 0)
        return NULL;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    redisReply *rep = exec_on(r, idx, false, is_script(argv[0]), cmd, (size_t)len, what, err);
    redisFreeCommand(cmd);
    return rep;
}

int
jm__route_append(jm_redis *r, jm_error *err, int argc, const char **argv, const size_t *lens)
{
    int idx = target(r, argc, argv, lens, err);
    if (idx < 0 || node_open(r, idx, err) != JM_OK)
        return JM_ERR_REDIS;
    if (r->pipe_len == r->pipe_cap) {
        size_t cap = r->pipe_cap != 0 ? r->pipe_cap * 2 : 16;
        jm_pipe_entry *p = malloc(cap * sizeof(*p));
        if (p == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        for (size_t k = 0; k < r->pipe_len; k++)
            p[k] = r->pipe[(r->pipe_head + k) % r->pipe_cap];
        free(r->pipe);
        r->pipe = p;
        r->pipe_cap = cap;
        r->pipe_head = 0;
    }
    jm_pipe_entry *e = &r->pipe[(r->pipe_head + r->pipe_len) % r->pipe_cap];
    int len = redisFormatCommandArgv(&e->cmd, argc, argv, lens);
    if (len < 0)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    e->len = (size_t)len;
    e->script = is_script(argv[0]);
    e->early = NULL;
    e->node = idx;
    e->gen = r->node_gen[idx];
    if (redisAppendFormattedCommand(r->ctx, e->cmd, e->len) != REDIS_OK) {
        redisFreeCommand(e->cmd);
        jm_redis_drop(r);
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline append failed");
    }
    r->pipe_len++;
    r->pipe_pending++;
    return JM_OK;
}

/* flush writes out every node's appended commands, so the nodes work in
 * parallel while the replies are read one node after the other. */
static void
flush(jm_redis *r)
{
    for (int i = 0; i < JM_CLUSTER_MAX_NODES; i++) {
        redisContext *c = r->node[i];
        int done = 0;
        while (c != NULL && !done)
            if (redisBufferWrite(c, &done) != REDIS_OK) {
                node_close(r, i);
                break;
            }
    }
}

/* drain reads every reply the nodes still owe the pipeline into its entry,
 * so a command sent again after a redirect (exec_on) reads its own reply
 * and not the next pipelined one on that connection. */
static void
drain(jm_redis *r)
{
    for (size_t k = 0; k < r->pipe_len; k++) {
        jm_pipe_entry *e = &r->pipe[(r->pipe_head + k) % r->pipe_cap];
        redisContext *c = r->node[e->node];
        if (e->early != NULL || c == NULL || r->node_gen[e->node] != e->gen)
            continue;
        void *out = NULL;
        if (redisGetReply(c, &out) != REDIS_OK || out == NULL) {
            node_close(r, e->node); /* its later entries fail as lost */
            continue;
        }
        e->early = out;
    }
}

redisReply *
jm__route_pipe_reply(jm_redis *r, jm_error *err)
{
    if (r->pipe_len == 0) {
        r->pipe_pending = 0;
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline: connection lost"), NULL;
    }
    flush(r);
    jm_pipe_entry e = r->pipe[r->pipe_head];
    r->pipe_head = (r->pipe_head + 1) % r->pipe_cap;
    r->pipe_len--;
    r->pipe_pending--;
    redisReply *rep = NULL;
    if (e.early == NULL && (r->node[e.node] == NULL || r->node_gen[e.node] != e.gen)) {
        jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline: connection lost");
    } else {
        void *out = e.early;
        redisContext *c = r->node[e.node];
        if (out == NULL && (redisGetReply(c, &out) != REDIS_OK || out == NULL)) {
            jm_error_set(err, JM_ERR_REDIS, NULL, "redis pipeline: %s",
                         c->errstr[0] ? c->errstr : "connection lost");
            node_close(r, e.node);
            jm__cluster_want_refresh();
        } else {
            rep = out;
            bool ask = false;
            unsigned slot;
            int to = rep->type == REDIS_REPLY_ERROR ? jm__cluster_moved(rep->str, &ask, &slot) : -1;
            if (to >= 0 || jm__redis_is_unloaded(rep)) {
                /* sent to the wrong node, or to one without the library: send
                 * it again where it belongs (exec_on loads the library) */
                bool unloaded = to < 0;
                freeReplyObject(rep);
                drain(r);
                if (unloaded && node_open(r, e.node, err) == JM_OK &&
                    jm__redis_load_library(r, err) != JM_OK)
                    rep = NULL;
                else
                    rep = exec_on(r,
                                  ask       ? e.node
                                  : to >= 0 ? to
                                            : e.node,
                                  false, e.script, e.cmd, e.len, "pipeline", err);
            } else if (c != NULL) {
                r->ctx = c;
                r->cur = e.node;
                rep = jm__redis_check_reply(r, rep, err, "pipeline");
            } else { /* an early reply of a node closed since: errors need no connection */
                rep = jm__redis_check_reply(r, rep, err, "pipeline");
            }
        }
    }
    redisFreeCommand(e.cmd);
    return rep;
}

void
jm__route_pipe_discard(jm_redis *r, int n)
{
    for (int k = 0; k < n && r->pipe_len > 0; k++) {
        redisReply *rep = jm__route_pipe_reply(r, NULL);
        if (rep != NULL)
            freeReplyObject(rep);
    }
}

bool
jm_redis_is_cluster(const jm_redis *r)
{
    return r->cluster;
}

int
jm_redis_use_node(jm_redis *r, int idx, jm_error *err)
{
    if (!r->cluster || idx < 0 || idx >= JM_CLUSTER_MAX_NODES)
        return jm_redis_connect(r, err);
    return node_open(r, idx, err);
}
