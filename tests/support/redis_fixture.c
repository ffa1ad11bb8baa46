/* redis_fixture.c - see redis_fixture.h. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "redis_fixture.h"

long long
jm_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
jm_test_pause(void)
{
    usleep(2000);
}

jm_enqueue_result
jm_test_submit(jm_redis *r, const char *json)
{
    json_error_t je;
    json_t *body = json_loads(json, 0, &je);
    cr_assert(body != NULL, "bad test json: %s", je.text);
    jm_job_spec spec;
    jm_error err;
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_OK, "%s", err.msg);
    jm_enqueue_result res;
    cr_assert_eq(jm_queue_enqueue(r, &spec, 0, &res, NULL, &err), JM_OK, "%s", err.msg);
    jm_job_spec_clear(&spec);
    json_decref(body);
    return res;
}

int
jm_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int
ping_ok(int port)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, (struct timeval){0, 200000});
    int ok = 0;
    if (c != NULL && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

static void
spawn(jm_test_redis *t, const char *const *extra)
{
    const char *server = getenv("REDIS_SERVER");
    if (server == NULL)
        server = "redis-server";
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    const char *argv[64] = {
        server, "--port",     port,      "--bind",       "127.0.0.1", "--dir",
        t->dir, "--save",     "",        "--appendonly", "no",        "--protected-mode",
        "no",   "--loglevel", "warning", "--logfile",    "redis.log"};
    int argc = 17;
    for (int i = 0; extra != NULL && extra[i] != NULL && argc < 62; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* The server dies with the test process, even when a failed setup
         * assertion skips the teardown. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        execvp(server, (char *const *)argv);
        _exit(127);
    }
    t->pid = pid;
    long long deadline = jm_test_now_ms() + 10000;
    while (!ping_ok(t->port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            t->pid = 0;
            return; /* died (port taken?): caller retries */
        }
        cr_assert(jm_test_now_ms() < deadline, "redis-server did not answer within 10 s");
        jm_test_pause();
    }
}

void
jm_test_redis_start(jm_test_redis *t, const char *const *extra)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/jm-redis-XXXXXX");
    cr_assert(mkdtemp(t->dir) != NULL);
    for (int attempt = 0; attempt < 5 && t->pid == 0; attempt++) {
        t->port = jm_test_free_port();
        spawn(t, extra);
    }
    cr_assert(t->pid > 0, "could not start redis-server");
    snprintf(t->url, sizeof(t->url), "redis://127.0.0.1:%d/0", t->port);
}

static void
kill_server(jm_test_redis *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
}

void
jm_test_redis_restart(jm_test_redis *t, const char *const *extra)
{
    kill_server(t);
    spawn(t, extra);
    cr_assert(t->pid > 0, "could not restart redis-server");
}

void
jm_test_redis_stop(jm_test_redis *t)
{
    kill_server(t);
    if (t->dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        int rc = system(cmd);
        (void)rc;
        t->dir[0] = '\0';
    }
}

jm_redis *
jm_test_redis_connect(const jm_test_redis *t)
{
    jm_error err;
    jm_redis *r = jm_redis_new(t->url, "jm", 5000, &err);
    cr_assert(r != NULL, "jm_redis_new: %s", err.msg);
    cr_assert(jm_redis_connect(r, &err) == JM_OK, "connect: %s", err.msg);
    return r;
}

int
jm_test_claim(jm_redis *r, const char *queue, int max, int lease_ms, const char *worker,
              jm_claim *out, int *n, jm_error *err)
{
    jm_claim_call call = {.queue = queue, .max = max, .lease_ms = lease_ms, .worker_id = worker};
    return jm_queue_claim(r, &call, out, n, err);
}

jm_redis *
jm_test_setup(jm_test_redis *t, const char *const *extra)
{
    jm_test_redis_start(t, extra);
    return jm_test_redis_connect(t);
}

void
jm_test_teardown(jm_test_redis *t, jm_redis *r)
{
    jm_redis_free(r);
    jm_test_redis_stop(t);
}

jm_job
jm_test_get(jm_redis *r, const char *id)
{
    jm_job j;
    jm_error err;
    cr_assert_eq(jm_queue_get(r, id, &j, &err), JM_OK, "get %s: %s", id, err.msg);
    return j;
}

jm_state
jm_test_state(jm_redis *r, const char *id)
{
    jm_job j = jm_test_get(r, id);
    jm_state s = j.status;
    jm_job_clear(&j);
    return s;
}

int64_t
jm_test_count(jm_redis *r, const char *queue, jm_state s)
{
    jm_queue_info info;
    jm_error err;
    cr_assert_eq(jm_queue_stats(r, queue, &info, &err), JM_OK, "%s", err.msg);
    return info.counts[s];
}

jm_claim
jm_test_claim_one(jm_redis *r, const char *queue, int lease_ms)
{
    jm_claim c[1];
    int n = 0;
    jm_error err;
    cr_assert_eq(jm_test_claim(r, queue, 1, lease_ms, "w1", c, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 1, "expected one claim");
    return c[0];
}

int
jm_test_claim_n(jm_redis *r, const char *queue, int max, int lease_ms)
{
    jm_claim *c = calloc((size_t)max, sizeof(*c));
    cr_assert_not_null(c);
    int n = 0;
    jm_error err;
    cr_assert_eq(jm_test_claim(r, queue, max, lease_ms, "w1", c, &n, &err), JM_OK, "%s", err.msg);
    for (int i = 0; i < n; i++)
        jm_claim_clear(&c[i]);
    free(c);
    return n;
}
