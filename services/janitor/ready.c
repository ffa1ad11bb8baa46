/* ready.c - the janitor's /readyz: 503 while draining (after SIGTERM), before
 * the Redis layout version was checked, while Redis is unreachable or its
 * maxmemory-policy is not noeviction. The check runs on a civetweb thread
 * with its own connection (a jm_redis is not thread-safe), serialised by a
 * mutex. */
#include <stdio.h>
#include "janitor.h"

int
janitor_ready(void *user, char *why, size_t why_len)
{
    janitor *j = user;
    if (jm_signals > 0) {
        snprintf(why, why_len, "draining");
        return 0;
    }
    if (!atomic_load(&j->version_ok)) {
        snprintf(why, why_len, "redis layout version not checked yet (redis unreachable?)");
        return 0;
    }
    jm_error err;
    jm_error_clear(&err);
    pthread_mutex_lock(&j->ready_lock);
    int rc = jm_redis_ready(j->ready_redis, &err);
    pthread_mutex_unlock(&j->ready_lock);
    if (rc != JM_OK) {
        snprintf(why, why_len, "%s", err.msg[0] != '\0' ? err.msg : "redis not ready");
        return 0;
    }
    return 1;
}
