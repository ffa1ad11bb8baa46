/* redis_sentinel.c - finding the primary through Redis Sentinel (see
 * redis.h jm_redis_set_sentinels). Process-wide: every jm_redis of the
 * process asks the sentinels for the primary of the configured master name
 * each time it connects, and checks with ROLE that the server it reached is
 * the primary; a connection that later meets READONLY (the server was
 * demoted by a failover) is dropped, so the next call asks again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
jm_redis_set_sentinels(const char *list, const char *master, jm_error *err)
{
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

/* ask one sentinel for the primary's address. */
static bool
ask(const char *shost, int sport, const char *master, char host[256], int *port)
{
    redisContext *c = redisConnectWithTimeout(shost, sport, jm__tv_ms(SENTINEL_TIMEOUT_MS));
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, jm__tv_ms(SENTINEL_TIMEOUT_MS));
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
