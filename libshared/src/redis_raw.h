/* redis_raw.h - raw access to a jm_redis, private to libshared (tests reach
 * it through a test-only include path): plain commands, pipelines, the
 * embedded scripts, and the connection's insides. Services cannot include
 * it, so no Redis command or key name can appear in a service.
 *
 * Ownership: returned replies are new; the caller frees them with
 * freeReplyObject(). Strings passed in are borrowed for the call.
 */
#ifndef JM_REDIS_RAW_H
#define JM_REDIS_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include "jobmill/clock.h"
#include "jobmill/redis.h"

/* Redis Cluster: at most this many nodes in a process's map (redis_cluster.c). */
#define JM_CLUSTER_MAX_NODES 64
#define JM_CLUSTER_SLOTS 16384

/* One pipelined command of a cluster handle: its node, that connection's
 * generation when sent (a reconnect loses the reply), and the command
 * itself, sent again after MOVED or ASK. */
typedef struct jm_pipe_entry {
    int node;
    unsigned gen;
    char *cmd;
    size_t len;
    bool script;
    redisReply *early; /* its reply, read ahead of its turn (a redirect), or NULL */
} jm_pipe_entry;

struct jm_redis {
    redisContext *ctx; /* in Cluster mode: the node connection last used */
    jm_redis_url url;
    char *prefix;
    int timeout_ms;
    int read_timeout_ms;     /* command timeout; 0 = timeout_ms (kept across reconnects) */
    jm_backoff backoff;      /* reconnect backoff (100 ms doubling to 5 s) */
    int64_t next_try_ms;     /* monotonic: no connect attempt before this */
    int pipe_pending;        /* replies still to read in a pipeline */
    unsigned sentinel_epoch; /* jm__redis_sentinel_epoch() when connected */
    /* Cluster mode (redis_route.c): a connection per node index of the
     * process's map, the current one's index, and the pipeline's entries
     * (a ring: pipe_head, pipe_len of pipe_cap). */
    bool cluster;
    int cur;
    redisContext *node[JM_CLUSTER_MAX_NODES];
    unsigned node_gen[JM_CLUSTER_MAX_NODES];
    int node_tmo[JM_CLUSTER_MAX_NODES];
    int64_t node_retry_ms[JM_CLUSTER_MAX_NODES]; /* monotonic: no connect before */
    jm_pipe_entry *pipe;
    size_t pipe_cap, pipe_head, pipe_len;
};

/* jm_redis_set_read_timeout changes the command timeout (for blocking
 * commands such as BLPOP, set it longer than their own timeout); 0 restores
 * the handle's default. It stays in force across reconnects. */
void jm_redis_set_read_timeout(jm_redis *r, int timeout_ms);

/* jm_redis_command runs a printf-style hiredis command. Returns a new reply,
 * or NULL with err set (JM_ERR_REDIS or JM_ERR_REPLY). */
redisReply *jm_redis_command(jm_redis *r, jm_error *err, const char *fmt, ...);

/* jm_redis_command_argv runs a command given as argc strings with lengths
 * (argvlen may be NULL for NUL-terminated strings). Same return contract. */
redisReply *jm_redis_command_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                                  const size_t *argvlen);

/* jm_redis_eval runs the embedded script `name` (a file libshared/lua/NAME.lua)
 * with FCALL of its function in the jobmill library, loading the library
 * again when the server lost it (a restarted Redis). keys and args are borrowed strings (NUL-terminated when
 * the lengths are NULL). Same return contract as jm_redis_command. */
redisReply *jm_redis_eval(jm_redis *r, jm_error *err, const char *name, int nkeys,
                          const char **keys, int nargs, const char **args, const size_t *arglens);

/* Pipelining: append several evals, then read their replies in order with
 * jm_redis_pipe_reply. jm_redis_pipe_eval returns JM_OK or JM_ERR_REDIS (not
 * connected). jm_redis_pipe_reply returns a new reply or NULL with err set;
 * after an I/O error the remaining replies are lost and the context dropped.
 * A lost library inside a pipeline makes jm_redis_pipe_reply drop the
 * connection (the reconnect loads it again) and fail that reply, which the
 * caller's batch logic redoes (the library is loaded on connect, so this is
 * rare). */
int jm_redis_pipe_eval(jm_redis *r, jm_error *err, const char *name, int nkeys, const char **keys,
                       int nargs, const char **args, const size_t *arglens);
redisReply *jm_redis_pipe_reply(jm_redis *r, jm_error *err);
/* jm_redis_pipe_argv appends a plain command (MULTI, EXEC, ...) to the
 * pipeline. JM_OK or JM_ERR_REDIS. */
int jm_redis_pipe_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                       const size_t *argvlen);
/* jm_redis_script_reload loads the library that holds script `name` again
 * (after "Function not found" seen inside a transaction). JM_OK or an error. */
int jm_redis_script_reload(jm_redis *r, const char *name, jm_error *err);
/* jm_redis_pipe_discard reads and frees n pending replies (after an error
 * midway), dropping the connection if that fails. */
void jm_redis_pipe_discard(jm_redis *r, int n);

/* jm_redis_context returns the hiredis context (borrowed, may be NULL when
 * disconnected), for the pub/sub subscriber only. */
redisContext *jm_redis_context(jm_redis *r);

/* jm_redis_drop closes the context after an error seen by the caller, so the
 * next call reconnects. */
void jm_redis_drop(jm_redis *r);

/* ---- shared by redis.c, redis_script.c and redis_ready.c ---- */

/* jm__redis_check_reply checks a reply of a synchronous call: returns it, or
 * NULL with err set (JM_ERR_REDIS for I/O errors, which drop the connection,
 * and for transient error replies; JM_ERR_REPLY for other error replies). */
redisReply *jm__redis_check_reply(jm_redis *r, redisReply *rep, jm_error *err, const char *what);
/* jm__redis_observe reports one round trip begun at start_us to the latency hook. */
void jm__redis_observe(const jm_redis *r, int64_t start_us);
/* jm__redis_load_scripts loads the function library on connect, once per
 * process (later connections find it there). */
int jm__redis_load_scripts(jm_redis *r, jm_error *err);
/* redis_sentinel.c: whether Sentinel discovery is on, and the primary's
 * address as the sentinels see it now (JM_OK or JM_ERR_REDIS). */
bool jm__redis_sentinel_enabled(void);
/* jm__redis_sentinel_epoch: how many +switch-master events for our master
 * the watcher has seen (0 without Sentinel); a connection made under an
 * older epoch is dropped before its next command. */
unsigned jm__redis_sentinel_epoch(void);
int jm__redis_sentinel_primary(char host[256], int *port, jm_error *err);
/* jm__redis_library_lost makes the next connect load the library again. */
void jm__redis_library_lost(void);
/* jm__redis_is_unloaded tells whether rep says the server lacks the library
 * ("Function not found"; NOSCRIPT too). */
int jm__redis_is_unloaded(const redisReply *rep);
struct timeval jm__tv_ms(int ms);
/* jm__redis_load_library sends FUNCTION LOAD on r's current connection
 * ("already exists" is success). JM_OK or an error. */
int jm__redis_load_library(jm_redis *r, jm_error *err);

/* ---- Redis Cluster: the slot map (redis_cluster.c) ---- */
bool jm__redis_cluster_enabled(void);
unsigned jm__cluster_crc16(const char *s, size_t n);
/* jm__cluster_key_slot: the slot of a key (its {hash tag} when it has one). */
unsigned jm__cluster_key_slot(const char *key, size_t len);
/* jm__cluster_slot_node: the node index serving slot (reading the map
 * first when it is stale), or a negative error. */
int jm__cluster_slot_node(unsigned slot, const char *user, const char *password, jm_error *err);
/* jm__cluster_refresh reads CLUSTER SLOTS from a known node or a seed
 * (at most every 100 ms). JM_OK or JM_ERR_REDIS. */
int jm__cluster_refresh(const char *user, const char *password, jm_error *err);
void jm__cluster_want_refresh(void);
/* jm__cluster_moved parses a MOVED or ASK error: the target node's index
 * (a MOVED also updates the map), or -1 when msg is neither. */
int jm__cluster_moved(const char *msg, bool *ask, unsigned *slot);
int jm__cluster_node_addr(int idx, char host[256], int *port);
int jm__cluster_node_count(void);
/* jm__cluster_primaries writes the distinct node indexes that serve slots
 * (at most max); returns how many. */
int jm__cluster_primaries(int *idx, int max);

/* ---- Redis Cluster: routing a handle's commands (redis_route.c) ---- */
int jm__route_connect(jm_redis *r, jm_error *err);
redisReply *jm__route_argv(jm_redis *r, jm_error *err, int argc, const char **argv,
                           const size_t *lens, const char *what);
int jm__route_append(jm_redis *r, jm_error *err, int argc, const char **argv, const size_t *lens);
redisReply *jm__route_pipe_reply(jm_redis *r, jm_error *err);
void jm__route_pipe_discard(jm_redis *r, int n);
void jm__route_drop(jm_redis *r);
void jm__route_free(jm_redis *r);
/* jm_redis_is_cluster tells whether r routes by slot (Cluster mode). */
bool jm_redis_is_cluster(const jm_redis *r);
/* jm_redis_use_node makes node idx of the map r's current connection (for
 * per-node work: SCAN, per-node BLPOP). JM_OK or JM_ERR_REDIS. */
int jm_redis_use_node(jm_redis *r, int idx, jm_error *err);

#endif
