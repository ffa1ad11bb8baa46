/* wake.c - BLPOP on the wake lists of a worker's queues (see wake.h).
 *
 * The only place that spells the wake key.
 */
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
    for (size_t i = 0; i < n; i++) {
        if (!jm_queue_name_valid(queues[i])) {
            rc = jm_error_set(err, JM_ERR_INVALID, "queues", "bad queue name");
            goto done;
        }
        jm_key_queue(keys[i], r, queues[i], "wake");
        argv[i + 1] = keys[i];
    }
    /* BLPOP takes seconds; Redis >= 6 accepts a decimal fraction. */
    char tmo[32];
    if (timeout_ms % 1000 == 0)
        snprintf(tmo, sizeof(tmo), "%d", timeout_ms / 1000);
    else
        snprintf(tmo, sizeof(tmo), "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
    argv[n + 1] = tmo;

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
