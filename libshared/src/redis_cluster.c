/* redis_cluster.c - the Redis Cluster slot map (see redis.h
 * jm_redis_set_cluster). Process-wide: the seed nodes, a table of the nodes
 * seen (append-only, so a node's index never changes and every jm_redis
 * keeps its own connection per index), and which node serves each of the
 * 16384 slots. The map is read from CLUSTER SLOTS on first use and again
 * whenever a connection meets MOVED or loses a node (at most every
 * REFRESH_MIN_MS); a MOVED also fixes its one slot at once. The routing
 * itself (a key's slot, MOVED and ASK) lives in redis.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "redis_raw.h"

#define MAX_SEEDS 16
#define REFRESH_MIN_MS 100
#define REFRESH_TIMEOUT_MS 1000

static struct {
    int nseeds;
    char seed_host[MAX_SEEDS][256];
    int seed_port[MAX_SEEDS];
    int nnodes;
    char host[JM_CLUSTER_MAX_NODES][256];
    int port[JM_CLUSTER_MAX_NODES];
    short slot_node[JM_CLUSTER_SLOTS]; /* node index, -1 unknown */
    bool mapped;                       /* a CLUSTER SLOTS answer was read */
    int64_t last_refresh_ms;
    char user[128], password[256];
} cl;
static pthread_mutex_t cl_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool cl_on;
static atomic_bool cl_stale; /* a refresh is wanted */

unsigned
jm__cluster_crc16(const char *s, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)(unsigned char)s[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

unsigned
jm__cluster_key_slot(const char *key, size_t len)
{
    /* Redis's hash tag: the text between the first '{' and the next '}',
     * when not empty, is hashed instead of the whole key. */
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return jm__cluster_crc16(open + 1, (size_t)(close - open - 1)) % JM_CLUSTER_SLOTS;
    }
    return jm__cluster_crc16(key, len) % JM_CLUSTER_SLOTS;
}

int
jm_redis_set_cluster(const char *list, jm_error *err)
{
    atomic_store(&cl_on, false);
    if (list == NULL || list[0] == '\0')
        return JM_OK;
    int n = 0;
    char host[MAX_SEEDS][256];
    int port[MAX_SEEDS];
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *colon = NULL;
        for (size_t i = len; i > 0 && colon == NULL; i--)
            if (p[i - 1] == ':')
                colon = p + i - 1;
        char *end = NULL;
        long pn = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
        if (n == MAX_SEEDS || colon == NULL || colon == p ||
            (size_t)(colon - p) >= sizeof(host[0]) || end != p + len || pn < 1 || pn > 65535)
            return jm_error_set(err, JM_ERR_INVALID, "redis.cluster",
                                "REDIS_CLUSTER must be host:port[,host:port...] (at most %d)",
                                MAX_SEEDS);
        memcpy(host[n], p, (size_t)(colon - p));
        host[n][colon - p] = '\0';
        port[n++] = (int)pn;
        p += len;
        if (*p == ',' && *++p == '\0')
            return jm_error_set(err, JM_ERR_INVALID, "redis.cluster",
                                "REDIS_CLUSTER must not end with a comma");
    }
    pthread_mutex_lock(&cl_lock);
    memcpy(cl.seed_host, host, sizeof(host));
    memcpy(cl.seed_port, port, sizeof(port));
    cl.nseeds = n;
    cl.nnodes = 0;
    cl.mapped = false;
    cl.last_refresh_ms = 0;
    for (int s = 0; s < JM_CLUSTER_SLOTS; s++)
        cl.slot_node[s] = -1;
    pthread_mutex_unlock(&cl_lock);
    atomic_store(&cl_stale, true);
    atomic_store(&cl_on, true);
    return JM_OK;
}

bool
jm__redis_cluster_enabled(void)
{
    return atomic_load(&cl_on);
}

/* node_index finds or adds host:port (cl_lock held); -1 when the table is full. */
static int
node_index(const char *host, int port)
{
    for (int i = 0; i < cl.nnodes; i++)
        if (cl.port[i] == port && strcmp(cl.host[i], host) == 0)
            return i;
    if (cl.nnodes == JM_CLUSTER_MAX_NODES)
        return -1;
    snprintf(cl.host[cl.nnodes], sizeof(cl.host[0]), "%s", host);
    cl.port[cl.nnodes] = port;
    return cl.nnodes++;
}

int
jm__cluster_node_addr(int idx, char host[256], int *port)
{
    pthread_mutex_lock(&cl_lock);
    int ok = idx >= 0 && idx < cl.nnodes;
    if (ok) {
        memcpy(host, cl.host[idx], 256);
        *port = cl.port[idx];
    }
    pthread_mutex_unlock(&cl_lock);
    return ok ? JM_OK : JM_ERR_INVALID;
}

int
jm__cluster_node_count(void)
{
    pthread_mutex_lock(&cl_lock);
    int n = cl.nnodes;
    pthread_mutex_unlock(&cl_lock);
    return n;
}

/* apply reads a CLUSTER SLOTS reply into the map (cl_lock held). */
static bool
apply(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        return false;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        int idx =
            node_index(e->element[2]->element[0]->str, (int)e->element[2]->element[1]->integer);
        if (idx < 0 || lo < 0 || hi >= JM_CLUSTER_SLOTS || lo > hi)
            continue;
        for (long long s = lo; s <= hi; s++)
            cl.slot_node[s] = (short)idx;
    }
    cl.mapped = true;
    return true;
}

/* ask_slots connects to host:port (with the credentials) and reads CLUSTER
 * SLOTS into the map. */
static bool
ask_slots(const char *host, int port, const char *user, const char *password)
{
    redisContext *c = redisConnectWithTimeout(host, port, jm__tv_ms(REFRESH_TIMEOUT_MS));
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, jm__tv_ms(REFRESH_TIMEOUT_MS));
    redisReply *rep = NULL;
    bool ok = true;
    if (password[0] != '\0') {
        rep = user[0] != '\0' ? redisCommand(c, "AUTH %s %s", user, password)
                              : redisCommand(c, "AUTH %s", password);
        ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        if (rep != NULL)
            freeReplyObject(rep);
    }
    rep = ok ? redisCommand(c, "CLUSTER SLOTS") : NULL;
    ok = false;
    if (rep != NULL) {
        pthread_mutex_lock(&cl_lock);
        ok = apply(rep);
        pthread_mutex_unlock(&cl_lock);
        freeReplyObject(rep);
    }
    redisFree(c);
    return ok;
}

int
jm__cluster_refresh(const char *user, const char *password, jm_error *err)
{
    pthread_mutex_lock(&cl_lock);
    int64_t now = jm_clock_ms();
    bool due = !cl.mapped || now - cl.last_refresh_ms >= REFRESH_MIN_MS;
    if (!due) {
        pthread_mutex_unlock(&cl_lock);
        return JM_OK;
    }
    cl.last_refresh_ms = now;
    /* ask the known nodes first (the seeds may be gone by now), then the seeds */
    int n = cl.nnodes + cl.nseeds;
    char(*host)[256] = malloc(sizeof(*host) * (size_t)(n > 0 ? n : 1));
    int *port = malloc(sizeof(*port) * (size_t)(n > 0 ? n : 1));
    if (host == NULL || port == NULL) {
        pthread_mutex_unlock(&cl_lock);
        free(host);
        free(port);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < cl.nnodes; i++)
        memcpy(host[i], cl.host[i], 256), port[i] = cl.port[i];
    for (int i = 0; i < cl.nseeds; i++)
        memcpy(host[cl.nnodes + i], cl.seed_host[i], 256), port[cl.nnodes + i] = cl.seed_port[i];
    pthread_mutex_unlock(&cl_lock);
    atomic_store(&cl_stale, false);
    bool ok = false;
    for (int i = 0; i < n && !ok; i++)
        ok = ask_slots(host[i], port[i], user, password);
    free(host);
    free(port);
    if (!ok) {
        atomic_store(&cl_stale, true);
        return jm_error_set(err, JM_ERR_REDIS, NULL,
                            "redis cluster: no node answered CLUSTER SLOTS");
    }
    return JM_OK;
}

void
jm__cluster_want_refresh(void)
{
    atomic_store(&cl_stale, true);
}

int
jm__cluster_slot_node(unsigned slot, const char *user, const char *password, jm_error *err)
{
    if (atomic_load(&cl_stale) && jm__cluster_refresh(user, password, err) != JM_OK) {
        /* an old map is better than none: keep routing with it */
        pthread_mutex_lock(&cl_lock);
        bool mapped = cl.mapped;
        pthread_mutex_unlock(&cl_lock);
        if (!mapped)
            return JM_ERR_REDIS;
    }
    pthread_mutex_lock(&cl_lock);
    int idx = cl.slot_node[slot % JM_CLUSTER_SLOTS];
    if (idx < 0) /* an unserved slot: any node answers with MOVED or CLUSTERDOWN */
        for (int s = 0; s < JM_CLUSTER_SLOTS && idx < 0; s++)
            idx = cl.slot_node[s];
    pthread_mutex_unlock(&cl_lock);
    if (idx < 0)
        return jm_error_set(err, JM_ERR_REDIS, NULL, "redis cluster: no slot is served");
    return idx;
}

int
jm__cluster_moved(const char *msg, bool *ask, unsigned *slot)
{
    /* "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" */
    *ask = strncmp(msg, "ASK ", 4) == 0;
    if (!*ask && strncmp(msg, "MOVED ", 6) != 0)
        return -1;
    const char *p = msg + (*ask ? 4 : 6);
    char *end;
    long s = strtol(p, &end, 10);
    if (end == p || *end != ' ' || s < 0 || s >= JM_CLUSTER_SLOTS)
        return -1;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= 256)
        return -1;
    char host[256];
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    if (port < 1 || port > 65535)
        return -1;
    pthread_mutex_lock(&cl_lock);
    int idx = node_index(host, port);
    if (idx >= 0 && !*ask)
        cl.slot_node[s] = (short)idx;
    pthread_mutex_unlock(&cl_lock);
    *slot = (unsigned)s;
    if (!*ask) /* the whole map may have changed (a failover moves many slots) */
        atomic_store(&cl_stale, true);
    return idx;
}

int
jm__cluster_primaries(int *idx, int max)
{
    pthread_mutex_lock(&cl_lock);
    int n = 0;
    for (int s = 0; s < JM_CLUSTER_SLOTS; s++) {
        int k = cl.slot_node[s];
        if (k < 0)
            continue;
        bool seen = false;
        for (int i = 0; i < n && !seen; i++)
            seen = idx[i] == k;
        if (!seen && n < max)
            idx[n++] = k;
    }
    pthread_mutex_unlock(&cl_lock);
    return n;
}
