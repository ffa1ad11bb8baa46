/* queue_registry.c - the queue set (P:{registry}:queues), written outside
 * the transition scripts so that no script spans two slots (the set lives
 * in its own slot; a queue's keys in its queue's). A submit, pause or
 * limits call registers its queue first; a process-wide cache of the
 * queues seen lately makes that free for a known queue (one SISMEMBER per
 * queue and process a minute, none in the hot path), and a queue that Redis
 * forgot (a restart without persistence) is registered again within a
 * minute. See queue_registry.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "jobmill/job.h"
#include "keys.h"
#include "queue_registry.h"
#include "reply.h"

#define CACHE_SLOTS 4096
#define CACHE_TTL_MS 60000
#define NAME_MAX_LEN (JM_KEY_MAX + 80) /* the set's key, a newline, a queue name */

/* A direct-mapped cache: a colliding queue just takes the slot over. */
static struct {
    char name[NAME_MAX_LEN];
    int64_t until_ms;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned
slot_of(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_SLOTS;
}

static bool
cached(const char *name)
{
    pthread_mutex_lock(&cache_lock);
    unsigned k = slot_of(name);
    bool hit = cache[k].until_ms > jm_clock_ms() && strcmp(cache[k].name, name) == 0;
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void
remember(const char *name)
{
    pthread_mutex_lock(&cache_lock);
    unsigned k = slot_of(name);
    snprintf(cache[k].name, sizeof(cache[k].name), "%s", name);
    cache[k].until_ms = jm_clock_ms() + CACHE_TTL_MS;
    pthread_mutex_unlock(&cache_lock);
}

/* ask sends a command about the set and returns its integer reply, or -1. */
static long long
ask(jm_redis *r, const char *cmd, const char *key, const char *queue, jm_error *err)
{
    const char *argv[3] = {cmd, key, queue};
    redisReply *rep = jm_redis_command_argv(r, err, queue != NULL ? 3 : 2, argv, NULL);
    if (rep == NULL)
        return -1;
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return v;
}

int
jm__queue_register(jm_redis *r, const char *const *queues, size_t n, int max_queues, bool batch,
                   jm_error *err)
{
    jm_keybuf key;
    jm_key_queues(key, r);
    /* first pass: which queues are new (nothing written); second: add them */
    bool fresh_inline[16];
    bool *fresh = n <= 16 ? fresh_inline : calloc(n, sizeof(*fresh));
    if (fresh == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    long long known = -1; /* SCARD, asked once when a queue is new */
    size_t added = 0;
    int rc = JM_OK;
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        fresh[i] = false;
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(queues[k], queues[i]) == 0;
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof(name), "%s\n%.64s", key, queues[i]);
        if (dup || cached(name))
            continue;
        long long member = ask(r, "SISMEMBER", key, queues[i], err);
        if (member < 0) {
            rc = jm__err_code(err);
            break;
        }
        if (member == 1) {
            remember(name);
            continue;
        }
        fresh[i] = true;
        if (max_queues > 0) {
            if (known < 0 && (known = ask(r, "SCARD", key, NULL, err)) < 0) {
                rc = jm__err_code(err);
                break;
            }
            if (known + (long long)++added > max_queues) {
                char field[64];
                if (batch)
                    snprintf(field, sizeof(field), "jobs[%zu].queue", i);
                else
                    snprintf(field, sizeof(field), "queue");
                rc = jm_error_set(err, JM_ERR_LIMIT, field, "%s would exceed max_queues (%d)",
                                  field, max_queues);
            }
        }
    }
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        if (!fresh[i])
            continue;
        if (ask(r, "SADD", key, queues[i], err) < 0) {
            rc = jm__err_code(err);
            break;
        }
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof(name), "%s\n%.64s", key, queues[i]);
        remember(name);
    }
    if (fresh != fresh_inline)
        free(fresh);
    return rc;
}
