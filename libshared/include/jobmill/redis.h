/* redis.h - one Redis connection: connect from a URL, reconnect with capped
 * backoff; Redis's clock, the layout version check and readiness.
 *
 * This is all a service sees of Redis: commands, scripts and key names are
 * libshared's own (src/redis_raw.h, src/keys.h), so the compiler keeps every
 * Redis command out of the services.
 *
 * A jm_redis is not thread-safe: one per thread (hiredis contexts are not
 * thread-safe either). It connects lazily; after an I/O error it drops the
 * context and reconnects on a later call, but no more often than the current
 * backoff (100 ms doubling to 5 s, reset on success), so while Redis is down
 * calls fail fast with JM_ERR_REDIS instead of hanging.
 *
 * Every reply is checked: a NULL reply or an I/O error gives JM_ERR_REDIS, a
 * Redis error reply gives JM_ERR_REPLY with the server's text in err->msg
 * (JM_ERR_REDIS for the ones that pass by themselves: OOM, BUSY, LOADING...).
 */
#ifndef JOBMILL_REDIS_H
#define JOBMILL_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"

/* The Redis layout version this build reads and writes (key jm:version). */
#define JM_LAYOUT_VERSION 2

typedef struct jm_redis_url {
    char host[256];
    int port;
    int db;
    char user[128];     /* "" = no ACL user */
    char password[256]; /* "" = no AUTH */
} jm_redis_url;

typedef struct jm_redis jm_redis;

/* jm_redis_set_sentinels makes every connection of the process find its
 * server through Redis Sentinel: list is "host:port[,host:port...]" (NULL or
 * "" turns discovery off), master the name the sentinels monitor. Each
 * connect asks every sentinel for the primary and takes the address a
 * majority of them gives, connects there (credentials and db from the handle's URL, whose
 * host and port are then unused) and checks with ROLE that it is the primary;
 * a connection that meets READONLY (its server was demoted) is dropped, so
 * the next call finds the new primary. A watcher thread also follows the
 * sentinels' +switch-master events: every connection is then dropped before
 * its next command. NULL list stops the watcher. Call it before connecting
 * (the services do at start-up, and with NULL at exit). JM_OK or
 * JM_ERR_INVALID. */
int jm_redis_set_sentinels(const char *list, const char *master, jm_error *err);

/* jm_redis_set_sentinel_password sets the password the sentinels themselves
 * require (requirepass on the sentinels; NULL or "" = none), for the
 * discovery and the +switch-master watcher. Call it before
 * jm_redis_set_sentinels. JM_OK or JM_ERR_INVALID. */
int jm_redis_set_sentinel_password(const char *password, jm_error *err);

/* jm_redis_set_cluster makes every connection of the process a Redis
 * Cluster client: list is the seed nodes "host:port[,host:port...]" (NULL
 * or "" turns it off). The slot map comes from CLUSTER SLOTS (asked of a
 * seed, later of any node known), each command goes to the primary that
 * serves its key's slot over a connection per node, MOVED and ASK are
 * followed (a MOVED refreshes the map), and pipelines are split per node.
 * Credentials come from the handle's URL (host, port and db unused: Cluster
 * has db 0 only). Call it before connecting (the services do at start-up).
 * JM_OK or JM_ERR_INVALID. */
int jm_redis_set_cluster(const char *list, jm_error *err);

/* jm_redis_wait_replicas sends WAIT n timeout_ms on r's connection (right
 * after a write on it): JM_OK when at least n replicas confirmed every write
 * made on the connection so far, JM_ERR_REDIS (with *acked) when fewer did in
 * time or Redis failed. */
int jm_redis_wait_replicas(jm_redis *r, int n, int timeout_ms, int *acked, jm_error *err);

/* A latency observer: called after every synchronous round trip (commands
 * and scripts, not pipelines) with its duration, from the calling thread.
 * Must be cheap and thread-safe. */
typedef void (*jm_redis_latency_fn)(void *user, double seconds);

/* jm_redis_set_latency_hook installs the process-wide observer (NULL removes
 * it). Call once at start-up, before any connection is used. */
void jm_redis_set_latency_hook(jm_redis_latency_fn fn, void *user);

/* jm_redis_url_parse parses redis://[[user]:password@]host:port/db (port and
 * db optional: 6379, 0). Returns JM_OK or JM_ERR_INVALID. */
int jm_redis_url_parse(const char *url, jm_redis_url *out, jm_error *err);

/* jm_redis_new returns a new, not yet connected handle, or NULL (bad URL,
 * no memory; err says which). prefix is the key prefix ("jm"); both strings
 * are copied. timeout_ms bounds connect and every command. */
jm_redis *jm_redis_new(const char *url, const char *prefix, int timeout_ms, jm_error *err);

/* jm_redis_free closes and frees r; NULL is allowed. */
void jm_redis_free(jm_redis *r);

/* jm_redis_prefix returns the key prefix (borrowed). */
const char *jm_redis_prefix(const jm_redis *r);

/* jm_redis_connect connects now if not connected (honouring the backoff),
 * selects the db, authenticates. JM_OK or JM_ERR_REDIS. */
int jm_redis_connect(jm_redis *r, jm_error *err);

/* jm_redis_connected tells whether a context is currently held. */
int jm_redis_connected(const jm_redis *r);

/* jm_redis_time_ms returns Redis's clock (TIME) in ms, or -1 with err set. */
int64_t jm_redis_time_ms(jm_redis *r, jm_error *err);

/* jm_redis_check_version reads jm:version: sets it when missing, JM_OK when
 * it is <= JM_LAYOUT_VERSION (a layout 1 is upgraded in place: its queue
 * set moves under the {registry} tag), JM_ERR_VERSION when newer. */
int jm_redis_check_version(jm_redis *r, jm_error *err);

/* jm_redis_ready checks readiness: reachable, maxmemory-policy noeviction.
 * Returns JM_OK or an error whose msg is the reason. */
int jm_redis_ready(jm_redis *r, jm_error *err);

#endif
