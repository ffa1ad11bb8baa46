/* jm_submit.c - the worker system tests' tool: submit jobs, read them back,
 * cancel them, and play a minimal janitor, all through libshared.
 *
 *   jm_submit REDIS_URL submit [-n COUNT] JSON...
 *       submits each JSON body (docs/api.md submit body), COUNT times each
 *       (pipelined in batches); prints one id per line.
 *   jm_submit REDIS_URL get [ID...]
 *       prints each job as one JSON line (the job object plus "fence");
 *       without ids, reads them from stdin (one a line). A missing job
 *       prints {"id": ID, "status": null}.
 *   jm_submit REDIS_URL cancel ID
 *       requests a cancel (queued/scheduled -> canceled; running -> flag).
 *   jm_submit REDIS_URL stats QUEUE
 *       prints {"queued": n, ...} (the exact counts).
 *   jm_submit REDIS_URL janitor INTERVAL_MS QUEUE...
 *       until SIGTERM/SIGINT: every INTERVAL_MS re-queues expired leases and
 *       promotes due retries of each queue (for tests that must not depend
 *       on jobmill-janitor).
 *
 * The key prefix comes from JOBMILL_PREFIX (default "jm"). Exit status: 0 ok,
 * 1 an operation failed (message on stderr), 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "jobmill/job.h"
#include "jobmill/queue.h"

#define BATCH 500

static volatile sig_atomic_t stop_flag = 0;

static void
on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int
usage(void)
{
    fprintf(stderr, "usage: jm_submit REDIS_URL submit [-n COUNT] JSON...\n"
                    "       jm_submit REDIS_URL get [ID...]\n"
                    "       jm_submit REDIS_URL cancel ID\n"
                    "       jm_submit REDIS_URL stats QUEUE\n"
                    "       jm_submit REDIS_URL janitor INTERVAL_MS QUEUE...\n");
    return 2;
}

static int
fail(const jm_error *err)
{
    fprintf(stderr, "jm_submit: %s%s%s\n", err->field[0] ? err->field : "",
            err->field[0] ? ": " : "", err->msg);
    return 1;
}

static int
submit(jm_redis *r, int argc, char **argv)
{
    long count = 1;
    int i = 0;
    if (argc >= 2 && strcmp(argv[0], "-n") == 0) {
        count = strtol(argv[1], NULL, 10);
        i = 2;
    }
    if (i >= argc || count < 1)
        return usage();
    jm_job_spec *specs = calloc(BATCH, sizeof(*specs));
    jm_enqueue_result *res = calloc(BATCH, sizeof(*res));
    if (specs == NULL || res == NULL)
        return 1;
    jm_error err;
    jm_error_clear(&err);
    int rc = 0;
    for (; i < argc && rc == 0; i++) {
        json_error_t je;
        json_t *body = json_loads(argv[i], 0, &je);
        if (body == NULL) {
            fprintf(stderr, "jm_submit: bad JSON: %s\n", je.text);
            rc = 1;
            break;
        }
        jm_job_spec spec;
        if (jm_job_spec_from_json(body, "", &spec, &err) != JM_OK) {
            rc = fail(&err);
            jm_job_spec_clear(&spec);
            json_decref(body);
            break;
        }
        for (long done = 0; done < count && rc == 0;) {
            size_t n = (size_t)(count - done > BATCH ? BATCH : count - done);
            for (size_t k = 0; k < n; k++)
                specs[k] = spec; /* shallow copies: the strings stay spec's */
            if (jm_queue_enqueue_batch(r, specs, n, 0, res, NULL, &err) != JM_OK) {
                rc = fail(&err);
                break;
            }
            for (size_t k = 0; k < n; k++)
                printf("%s\n", res[k].id);
            done += (long)n;
        }
        jm_job_spec_clear(&spec);
        json_decref(body);
    }
    free(specs);
    free(res);
    return rc;
}

static void
print_job(const char *id, const jm_job *job, bool found)
{
    json_t *o;
    if (found) {
        o = jm_job_to_json(job);
        json_object_set_new(o, "fence", json_integer(job->fence));
    } else {
        o = json_pack("{s:s, s:n}", "id", id, "status");
    }
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

static int
get_batch(jm_redis *r, char **ids, size_t n)
{
    jm_job *jobs = calloc(n, sizeof(*jobs));
    bool *found = calloc(n, sizeof(*found));
    jm_error err;
    jm_error_clear(&err);
    int rc = jobs != NULL && found != NULL
                 ? jm_queue_get_many(r, (const char *const *)ids, n, jobs, found, &err)
                 : JM_ERR_NOMEM;
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        print_job(ids[i], &jobs[i], found[i]);
    for (size_t i = 0; jobs != NULL && i < n; i++)
        jm_job_clear(&jobs[i]);
    free(jobs);
    free(found);
    return rc == JM_OK ? 0 : fail(&err);
}

static int
get(jm_redis *r, int argc, char **argv)
{
    if (argc > 0)
        return get_batch(r, argv, (size_t)argc);
    char *ids[BATCH];
    size_t n = 0;
    char line[256];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if ((ids[n++] = strdup(line)) == NULL)
            return 1;
        if (n == BATCH) {
            rc = get_batch(r, ids, n);
            for (size_t i = 0; i < n; i++)
                free(ids[i]);
            n = 0;
        }
    }
    if (rc == 0 && n > 0)
        rc = get_batch(r, ids, n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    return rc;
}

static int
stats(jm_redis *r, const char *queue)
{
    jm_queue_info info;
    jm_error err;
    jm_error_clear(&err);
    if (jm_queue_stats(r, queue, &info, &err) != JM_OK)
        return fail(&err);
    json_t *o = json_object();
    for (int s = 0; s < JM_STATE_COUNT; s++)
        json_object_set_new(o, jm_state_name((jm_state)s), json_integer(info.counts[s]));
    char *t = json_dumps(o, JSON_COMPACT);
    printf("%s\n", t);
    free(t);
    json_decref(o);
    return 0;
}

static int
janitor(jm_redis *r, int interval_ms, int nq, char **queues)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    jm_retention ret = {0, 0};
    while (!stop_flag) {
        for (int i = 0; i < nq; i++) {
            jm_error err;
            jm_error_clear(&err);
            int rq = 0, fl = 0, pr = 0;
            if (jm_queue_requeue_expired(r, queues[i], 500, &ret, &rq, &fl, NULL, NULL, &err) !=
                    JM_OK ||
                jm_queue_promote_due(r, queues[i], 500, &pr, &err) != JM_OK)
                fprintf(stderr, "jm_submit janitor: %s\n", err.msg);
            if (rq + fl > 0)
                fprintf(stderr, "jm_submit janitor: %s requeued %d failed %d\n", queues[i], rq, fl);
        }
        struct timespec ts = {.tv_sec = interval_ms / 1000,
                              .tv_nsec = (long)(interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *prefix = getenv("JOBMILL_PREFIX");
    jm_error err;
    jm_error_clear(&err);
    jm_redis *r = jm_redis_new(argv[1], prefix != NULL ? prefix : "jm", 5000, &err);
    if (r == NULL)
        return fail(&err);
    const char *cmd = argv[2];
    int rc;
    if (strcmp(cmd, "submit") == 0) {
        rc = submit(r, argc - 3, argv + 3);
    } else if (strcmp(cmd, "get") == 0) {
        rc = get(r, argc - 3, argv + 3);
    } else if (strcmp(cmd, "cancel") == 0 && argc == 4) {
        jm_retention ret = {0, 0};
        rc = jm_queue_cancel(r, argv[3], &ret, &err) == JM_OK ? 0 : fail(&err);
    } else if (strcmp(cmd, "stats") == 0 && argc == 4) {
        rc = stats(r, argv[3]);
    } else if (strcmp(cmd, "janitor") == 0 && argc >= 5) {
        rc = janitor(r, atoi(argv[3]), argc - 4, argv + 4);
    } else {
        rc = usage();
    }
    jm_redis_free(r);
    return rc;
}
