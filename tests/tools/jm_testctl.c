/* jm_testctl.c - a tiny test tool: drive job transitions through libshared
 * from a system test, without a worker.
 *
 *   jm_testctl REDIS_URL claim QUEUE [MAX] [LEASE_MS]   prints "ID LEASE" lines
 *   jm_testctl REDIS_URL complete ID LEASE [RESULT_JSON]
 *   jm_testctl REDIS_URL fail ID LEASE MESSAGE [permanent]
 * (LEASE is the claim's lease token.)
 *   jm_testctl REDIS_URL beat WORKER_ID QUEUES CONCURRENCY BUSY [TTL_MS]
 *
 * The key prefix comes from JOBMILL_PREFIX (default "jm"). Exit status: 0 ok,
 * 1 the operation failed (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/queue.h"
#include "jobmill/workers.h"

static int
usage(void)
{
    fprintf(stderr, "usage: jm_testctl REDIS_URL claim QUEUE [MAX] [LEASE_MS]\n"
                    "       jm_testctl REDIS_URL complete ID LEASE [RESULT_JSON]\n"
                    "       jm_testctl REDIS_URL fail ID LEASE MESSAGE [permanent]\n"
                    "       jm_testctl REDIS_URL beat WORKER_ID QUEUES CONCURRENCY BUSY "
                    "[TTL_MS]\n");
    return 2;
}

static int
claim(jm_redis *r, int argc, char **argv, jm_error *err)
{
    int max = argc > 1 ? atoi(argv[1]) : 1;
    int lease = argc > 2 ? atoi(argv[2]) : 30000;
    if (max < 1)
        max = 1;
    jm_claim *c = calloc((size_t)max, sizeof(*c));
    if (c == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    int n = 0;
    jm_claim_call call = {
        .queue = argv[0], .max = max, .lease_ms = lease, .worker_id = "jm_testctl"};
    int rc = jm_queue_claim(r, &call, c, &n, err);
    for (int i = 0; i < n; i++) {
        printf("%s %s\n", c[i].id, c[i].lease);
        jm_claim_clear(&c[i]);
    }
    free(c);
    return rc;
}

static int
beat(jm_redis *r, int argc, char **argv, jm_error *err)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    jm_worker_info w = {
        .id = argv[0],
        .host = host,
        .queues = argv[1],
        .pid = (int)getpid(),
        .concurrency = atoi(argv[2]),
        .busy = atoi(argv[3]),
    };
    return jm_workers_beat(r, &w, argc > 4 ? atoi(argv[4]) : 60000, err);
}

int
main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    const char *prefix = getenv("JOBMILL_PREFIX");
    jm_error err;
    jm_error_clear(&err);
    jm_redis *r = jm_redis_new(argv[1], prefix != NULL ? prefix : "jm", 5000, &err);
    if (r == NULL) {
        fprintf(stderr, "jm_testctl: %s\n", err.msg);
        return 1;
    }
    const char *cmd = argv[2];
    int n = argc - 3;
    char **a = argv + 3;
    jm_retention ret = {.result_ttl_s = 3600, .failed_ttl_s = 604800};
    int rc;
    if (strcmp(cmd, "claim") == 0 && n >= 1)
        rc = claim(r, n, a, &err);
    else if (strcmp(cmd, "complete") == 0 && n >= 2)
        rc = jm_queue_complete(r, a[0], a[1], n > 2 ? a[2] : NULL, &ret, &err);
    else if (strcmp(cmd, "fail") == 0 && n >= 3)
        rc = jm_queue_fail(r, a[0], a[1], a[2], n > 3 && strcmp(a[3], "permanent") == 0, 0, &ret,
                           NULL, &err);
    else if (strcmp(cmd, "beat") == 0 && n >= 4)
        rc = beat(r, n, a, &err);
    else {
        jm_redis_free(r);
        return usage();
    }
    jm_redis_free(r);
    if (rc != JM_OK) {
        fprintf(stderr, "jm_testctl %s: %s (%s)\n", cmd, err.msg, jm_err_name(rc));
        return 1;
    }
    return 0;
}
