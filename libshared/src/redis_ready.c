/* redis_ready.c - what the services ask of Redis besides the transitions:
 * its clock, the layout version check, and readiness (reachable,
 * maxmemory-policy noeviction). See redis.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys.h"
#include "redis_raw.h"

int64_t
jm_redis_time_ms(jm_redis *r, jm_error *err)
{
    redisReply *rep = jm_redis_command(r, err, "TIME");
    if (rep == NULL)
        return -1;
    int64_t ms = -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
        ms = strtoll(rep->element[0]->str, NULL, 10) * 1000 +
             strtoll(rep->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(rep);
    if (ms < 0)
        jm_error_set(err, JM_ERR_REPLY, NULL, "TIME: bad reply");
    return ms;
}

/* upgrade_from_1 moves layout 1's queue set to its layout-2 place (the
 * worker registry refills with the next heartbeats; layout 1's global
 * idempotency keys are left to expire: docs/scaling.md) and sets the
 * version to 2. Layout 1 never ran on Redis Cluster, so the one command
 * that spans two slots runs on a single server. */
static int
upgrade_from_1(jm_redis *r, const char *vkey, jm_error *err)
{
    jm_keybuf old, now;
    snprintf(old, sizeof(old), "%s:queues", jm_redis_prefix(r));
    jm_key_queues(now, r);
    const char *u[4] = {"SUNIONSTORE", now, now, old};
    redisReply *rep = jm_redis_command_argv(r, err, 4, u, NULL);
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    freeReplyObject(rep);
    char ver[16];
    snprintf(ver, sizeof(ver), "%d", JM_LAYOUT_VERSION);
    const char *set[3] = {"SET", vkey, ver};
    if ((rep = jm_redis_command_argv(r, err, 3, set, NULL)) == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    freeReplyObject(rep);
    return JM_OK;
}

int
jm_redis_check_version(jm_redis *r, jm_error *err)
{
    jm_keybuf key;
    jm_key_version(key, r);
    char ver[16];
    snprintf(ver, sizeof(ver), "%d", JM_LAYOUT_VERSION);
    const char *argv[5] = {"SET", key, ver, "NX", "GET"};
    redisReply *rep = jm_redis_command_argv(r, err, 5, argv, NULL);
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    int rc = JM_OK;
    long v = rep->type == REDIS_REPLY_STRING ? strtol(rep->str, NULL, 10) : JM_LAYOUT_VERSION;
    freeReplyObject(rep);
    if (v > JM_LAYOUT_VERSION)
        rc = jm_error_set(err, JM_ERR_VERSION, NULL,
                          "redis layout version %ld is newer than this build's %d", v,
                          JM_LAYOUT_VERSION);
    else if (v == 1)
        rc = upgrade_from_1(r, key, err);
    return rc;
}

int
jm_redis_ready(jm_redis *r, jm_error *err)
{
    redisReply *rep = jm_redis_command(r, err, "INFO memory");
    if (rep == NULL)
        return err != NULL ? err->code : JM_ERR_REDIS;
    int rc = JM_OK;
    const char *p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "maxmemory_policy:") : NULL;
    if (p == NULL) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "redis INFO memory has no maxmemory_policy");
    } else {
        p += strlen("maxmemory_policy:");
        size_t n = strcspn(p, "\r\n");
        if (n != strlen("noeviction") || strncmp(p, "noeviction", n) != 0)
            rc = jm_error_set(err, JM_ERR_STATE, NULL,
                              "redis maxmemory-policy is %.*s, must be noeviction", (int)n, p);
    }
    freeReplyObject(rep);
    if (rc == JM_OK && jm_redis_is_cluster(r)) {
        /* Redis Cluster: the node we reach must see the whole cluster serving */
        if ((rep = jm_redis_command(r, err, "CLUSTER INFO")) == NULL)
            return err != NULL ? err->code : JM_ERR_REDIS;
        if (rep->type != REDIS_REPLY_STRING || strstr(rep->str, "cluster_state:ok") == NULL)
            rc = jm_error_set(err, JM_ERR_STATE, NULL, "redis cluster_state is not ok");
        freeReplyObject(rep);
    }
    return rc;
}
