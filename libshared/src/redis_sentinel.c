/* redis_sentinel.c - finding the primary through Redis Sentinel (see
 * redis.h jm_redis_set_sentinels). Process-wide: every jm_redis of the
 * process asks the sentinels for the primary of the configured master name
 * each time it connects, and checks with ROLE that the server it reached is
 * the primary; a connection that later meets READONLY (the server was
 * demoted by a failover) is dropped, so the next call asks again. A watcher
 * thread subscribes to the sentinels' +switch-master events: each one for
 * our master moves an epoch on, and every connection made under an older
 * epoch is dropped before its next command (jm__redis_sentinel_moved), so
 * a failover is followed even by connections that never meet an error.
 * The watcher owns its own connection (to one sentinel at a time). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "redis_raw.h"

#define MAX_SENTINELS 16
#define SENTINEL_TIMEOUT_MS 1000

static struct {
    int n;
    char host[MAX_SENTINELS][256];
    int port[MAX_SENTINELS];
    char master[128];
} sentinels;
static pthread_mutex_t sentinel_lock = PTHREAD_MUTEX_INITIALIZER;
static char sentinel_password[256]; /* AUTH for the sentinels; "" = none */

/* The +switch-master watcher: epoch moves on with each event for our master. */
static atomic_uint switch_epoch;
static struct {
    pthread_mutex_t lock; /* guards fd and the start/stop of the thread */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    int fd; /* the watcher's current socket, -1 = none (shut down to stop it) */
} watcher = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static void watcher_stop(void);
static void watcher_start(void);

int
jm_redis_set_sentinel_password(const char *password, jm_error *err)
{
    if (password != NULL && strlen(password) >= sizeof(sentinel_password))
        return jm_error_set(err, JM_ERR_INVALID, "REDIS_SENTINEL_PASSWORD", "too long");
    pthread_mutex_lock(&sentinel_lock);
    snprintf(sentinel_password, sizeof(sentinel_password), "%s", password != NULL ? password : "");
    pthread_mutex_unlock(&sentinel_lock);
    return JM_OK;
}

unsigned
jm__redis_sentinel_epoch(void)
{
    return atomic_load_explicit(&switch_epoch, memory_order_acquire);
}

int
jm_redis_set_sentinels(const char *list, const char *master, jm_error *err)
{
    watcher_stop();
    pthread_mutex_lock(&sentinel_lock);
    sentinels.n = 0;
    pthread_mutex_unlock(&sentinel_lock);
    if (list == NULL || list[0] == '\0')
        return JM_OK;
    if (master == NULL || master[0] == '\0' || strlen(master) >= sizeof(sentinels.master))
        return jm_error_set(err, JM_ERR_INVALID, "redis.sentinel_master",
                            "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master's name)");
    int n = 0;
    char host[MAX_SENTINELS][256];
    int port[MAX_SENTINELS];
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *colon = memchr(p, ':', len);
        char *end = NULL;
        long pn = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
        if (n == MAX_SENTINELS || colon == NULL || colon == p ||
            (size_t)(colon - p) >= sizeof(host[0]) || end != p + len || pn < 1 || pn > 65535)
            return jm_error_set(err, JM_ERR_INVALID, "redis.sentinels",
                                "REDIS_SENTINELS must be host:port[,host:port...] (at most %d)",
                                MAX_SENTINELS);
        memcpy(host[n], p, (size_t)(colon - p));
        host[n][colon - p] = '\0';
        port[n++] = (int)pn;
        p += len;
        if (*p == ',')
            p++;
    }
    pthread_mutex_lock(&sentinel_lock);
    memcpy(sentinels.host, host, sizeof(host));
    memcpy(sentinels.port, port, sizeof(port));
    snprintf(sentinels.master, sizeof(sentinels.master), "%s", master);
    sentinels.n = n;
    pthread_mutex_unlock(&sentinel_lock);
    watcher_start();
    return JM_OK;
}

bool
jm__redis_sentinel_enabled(void)
{
    pthread_mutex_lock(&sentinel_lock);
    bool on = sentinels.n > 0;
    pthread_mutex_unlock(&sentinel_lock);
    return on;
}

/* sentinel_connect opens a connection to one sentinel (authenticated when
 * a sentinel password is set); NULL when it cannot. */
static redisContext *
sentinel_connect(const char *shost, int sport, int timeout_ms)
{
    redisContext *c = redisConnectWithTimeout(shost, sport, jm__tv_ms(SENTINEL_TIMEOUT_MS));
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, jm__tv_ms(timeout_ms));
    char pw[sizeof(sentinel_password)];
    pthread_mutex_lock(&sentinel_lock);
    memcpy(pw, sentinel_password, sizeof(pw));
    pthread_mutex_unlock(&sentinel_lock);
    if (pw[0] != '\0') {
        redisReply *rep = redisCommand(c, "AUTH %s", pw);
        bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
        if (rep != NULL)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* ask one sentinel for the primary's address. */
static bool
ask(const char *shost, int sport, const char *master, char host[256], int *port)
{
    redisContext *c = sentinel_connect(shost, sport, SENTINEL_TIMEOUT_MS);
    if (c == NULL)
        return false;
    redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", master);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
              rep->element[0]->type == REDIS_REPLY_STRING &&
              rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len < 256;
    if (ok) {
        snprintf(host, 256, "%s", rep->element[0]->str);
        *port = atoi(rep->element[1]->str);
        ok = *port > 0 && *port <= 65535;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

int
jm__redis_sentinel_primary(char host[256], int *port, jm_error *err)
{
    pthread_mutex_lock(&sentinel_lock);
    int n = sentinels.n;
    char shost[MAX_SENTINELS][256], master[128];
    int sport[MAX_SENTINELS];
    memcpy(shost, sentinels.host, sizeof(shost));
    memcpy(sport, sentinels.port, sizeof(sport));
    memcpy(master, sentinels.master, sizeof(master));
    pthread_mutex_unlock(&sentinel_lock);
    /* Ask every sentinel and take the address most of them give: one that
     * has not seen a failover yet would send us to the old primary, which
     * may be back as a primary for a moment before the sentinels demote it
     * (writes there would be lost). */
    char ahost[MAX_SENTINELS][256];
    int aport[MAX_SENTINELS], answers = 0;
    for (int i = 0; i < n; i++)
        if (ask(shost[i], sport[i], master, ahost[answers], &aport[answers]))
            answers++;
    for (int i = 0; i < answers; i++) {
        int votes = 0;
        for (int k = 0; k < answers; k++)
            votes += aport[k] == aport[i] && strcmp(ahost[k], ahost[i]) == 0;
        if (votes * 2 > n) {
            memcpy(host, ahost[i], 256); /* NUL-terminated by ask() */
            *port = aport[i];
            return JM_OK;
        }
    }
    return jm_error_set(err, JM_ERR_REDIS, NULL,
                        "no majority of the %d sentinels (%d answered) agrees on the primary of %s",
                        n, answers, master);
}

/* ---- the +switch-master watcher ---- */

#define WATCH_READ_TIMEOUT_MS 30000 /* a quiet sentinel: reconnect this often */
#define WATCH_RETRY_MS 500

static void
watch_pause(int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&watcher.stop); waited += 50)
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
}

/* switch_event: is rep a +switch-master message for master? */
static bool
switch_event(const redisReply *rep, const char *master)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return false;
    const redisReply *kind = rep->element[0], *data = rep->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        data->type != REDIS_REPLY_STRING)
        return false;
    size_t n = strlen(master);
    return data->len > n && strncmp(data->str, master, n) == 0 && data->str[n] == ' ';
}

static void *
watch_main(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&watcher.stop); i++) {
        pthread_mutex_lock(&sentinel_lock);
        int n = sentinels.n;
        char host[256], master[128];
        int port = 0;
        if (n > 0) {
            memcpy(host, sentinels.host[i % n], sizeof(host));
            port = sentinels.port[i % n];
        }
        memcpy(master, sentinels.master, sizeof(master));
        pthread_mutex_unlock(&sentinel_lock);
        redisContext *c = n > 0 ? sentinel_connect(host, port, WATCH_READ_TIMEOUT_MS) : NULL;
        if (c == NULL) {
            watch_pause(WATCH_RETRY_MS);
            continue;
        }
        pthread_mutex_lock(&watcher.lock);
        watcher.fd = atomic_load(&watcher.stop) ? -1 : c->fd;
        pthread_mutex_unlock(&watcher.lock);
        redisReply *rep = watcher.fd >= 0 ? redisCommand(c, "SUBSCRIBE +switch-master") : NULL;
        if (rep != NULL) {
            freeReplyObject(rep);
            /* (an event missed while away is still met: READONLY or a reset) */
            void *msg = NULL;
            while (!atomic_load(&watcher.stop) && redisGetReply(c, &msg) == REDIS_OK) {
                if (switch_event(msg, master))
                    atomic_fetch_add_explicit(&switch_epoch, 1, memory_order_acq_rel);
                freeReplyObject(msg);
                msg = NULL;
            }
        }
        pthread_mutex_lock(&watcher.lock);
        watcher.fd = -1;
        pthread_mutex_unlock(&watcher.lock);
        redisFree(c);
    }
    return NULL;
}

static void
watcher_start(void)
{
    pthread_mutex_lock(&watcher.lock);
    if (!watcher.running) {
        atomic_store(&watcher.stop, false);
        watcher.running = pthread_create(&watcher.thread, NULL, watch_main, NULL) == 0;
    }
    pthread_mutex_unlock(&watcher.lock);
}

static void
watcher_stop(void)
{
    pthread_mutex_lock(&watcher.lock);
    bool running = watcher.running;
    if (running) {
        atomic_store(&watcher.stop, true);
        if (watcher.fd >= 0)
            shutdown(watcher.fd, SHUT_RDWR); /* ends a blocked read at once */
    }
    pthread_mutex_unlock(&watcher.lock);
    if (running) {
        pthread_join(watcher.thread, NULL);
        pthread_mutex_lock(&watcher.lock);
        watcher.running = false;
        pthread_mutex_unlock(&watcher.lock);
    }
}
