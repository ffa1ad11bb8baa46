/* wake.c - BLPOP on the wake lists of a worker's queues (see wake.h).
 *
 * The only place that spells the wake key.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/job.h"
#include "jobmill/wake.h"
#include "keys.h"
#include "redis_raw.h"

/* Room for "<prefix>:{<tag>}:q:<queue>:wake" with the longest queue name. */
/* The read timeout exceeds the BLPOP timeout by this much, so a healthy
 * server's "timed out, nil" reply is never mistaken for a dead connection. */
#define WAKE_READ_SLACK_MS 2000

/* On Redis Cluster one BLPOP can only wait on keys of one slot. A worker
 * whose queues span several slots waits on one slot's wake lists at a time,
 * in turn, each for at most WAKE_CLUSTER_SLICE_MS, and claims from all its
 * queues between the waits: a job on any of them starts within about that
 * slice (docs/scaling.md). The rotation is per thread. */
#define WAKE_CLUSTER_SLICE_MS 100
static _Thread_local unsigned wake_turn;

/* cluster_group keeps in keys/argv[1..] only the wake lists of this turn's
 * slot (*nk of them) and returns the BLPOP timeout to use. */
static int
cluster_group(jm_redis *r, const char *const *queues, size_t n, jm_keybuf *keys, const char **argv,
              size_t *nk, int timeout_ms)
{
    (void)r;
    char tags[64][JM_TAG_LEN + 1];
    size_t ntags = 0;
    for (size_t i = 0; i < n && ntags < 64; i++) {
        char t[JM_TAG_LEN + 1];
        jm_slot_tag(queues[i], t);
        bool seen = false;
        for (size_t k = 0; k < ntags && !seen; k++)
            seen = strcmp(tags[k], t) == 0;
        if (!seen)
            memcpy(tags[ntags++], t, sizeof(t));
    }
    if (ntags <= 1)
        return timeout_ms;
    const char *pick = tags[wake_turn++ % ntags];
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        char t[JM_TAG_LEN + 1];
        jm_slot_tag(queues[i], t);
        if (strcmp(t, pick) != 0)
            continue;
        if (out != i)
            memcpy(keys[out], keys[i], sizeof(keys[out]));
        argv[out + 1] = keys[out];
        out++;
    }
    *nk = out;
    return timeout_ms < WAKE_CLUSTER_SLICE_MS ? timeout_ms : WAKE_CLUSTER_SLICE_MS;
}

int
jm_wake_wait(jm_redis *r, const char *const *queues, size_t n, int timeout_ms, jm_error *err)
{
    if (n == 0)
        return jm_error_set(err, JM_ERR_INVALID, "queues", "no queue to wait on");
    if (timeout_ms < 1)
        timeout_ms = 1;
    int rc = JM_OK;
    size_t argc = n + 2;
    const char **argv = calloc(argc, sizeof(*argv));
    jm_keybuf *keys = calloc(n, sizeof(*keys));
    if (argv == NULL || keys == NULL) {
        rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        goto done;
    }
    argv[0] = "BLPOP";
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        if (!jm_queue_name_valid(queues[i])) {
            rc = jm_error_set(err, JM_ERR_INVALID, "queues", "bad queue name");
            goto done;
        }
        jm_key_queue(keys[nk], r, queues[i], "wake");
        argv[nk + 1] = keys[nk];
        nk++;
    }
    if (jm_redis_is_cluster(r))
        timeout_ms = cluster_group(r, queues, n, keys, argv, &nk, timeout_ms);
    argc = nk + 2;
    /* BLPOP takes seconds; Redis >= 6 accepts a decimal fraction. */
    char tmo[32];
    if (timeout_ms % 1000 == 0)
        snprintf(tmo, sizeof(tmo), "%d", timeout_ms / 1000);
    else
        snprintf(tmo, sizeof(tmo), "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
    argv[nk + 1] = tmo;

    if ((rc = jm_redis_connect(r, err)) != JM_OK)
        goto done;
    jm_redis_set_read_timeout(r, timeout_ms + WAKE_READ_SLACK_MS);
    redisReply *rep = jm_redis_command_argv(r, err, (int)argc, argv, NULL);
    jm_redis_set_read_timeout(r, 0); /* kept across reconnects: always restore */
    if (rep == NULL) {
        rc = err != NULL && err->code != JM_OK ? err->code : JM_ERR_REDIS;
        goto done;
    }
    /* nil on timeout, [key, token] on a token: both mean "claim again". */
    if (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_ARRAY)
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "BLPOP: unexpected reply type %d", rep->type);
    freeReplyObject(rep);

done:
    free(argv);
    free(keys);
    return rc;
}
