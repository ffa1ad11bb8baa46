/* redis_fixture.h - a throw-away redis-server on a free loopback port, for
 * integration tests. Each test process starts its own (Criterion runs every
 * test in its own process), so tests never share state.
 *
 * Ownership: jm_test_redis is caller storage; jm_test_redis_stop kills the
 * server and removes its directory. jm_test_redis_connect returns a new
 * jm_redis the caller frees with jm_redis_free.
 */
#ifndef JM_TEST_REDIS_FIXTURE_H
#define JM_TEST_REDIS_FIXTURE_H

#include <sys/types.h>
#include "jobmill/queue.h"
#include "jobmill/redis.h"
#include "redis_raw.h" /* test-only include path: raw commands for set-up and checks */

typedef struct jm_test_redis {
    pid_t pid;
    int port;
    char dir[256];
    char url[128];
} jm_test_redis;

/* Starts redis-server ($REDIS_SERVER or "redis-server") on 127.0.0.1 and a free
 * port, waits (with a deadline) until it answers PING. Aborts the test on
 * failure. extra is NULL or a NULL-terminated list of extra server args. */
void jm_test_redis_start(jm_test_redis *t, const char *const *extra);
void jm_test_redis_stop(jm_test_redis *t);
/* Restarts the same server on the same port and dir (AOF data kept). */
void jm_test_redis_restart(jm_test_redis *t, const char *const *extra);
jm_redis *jm_test_redis_connect(const jm_test_redis *t);

/* A free loopback TCP port (bound then released). */
int jm_test_free_port(void);

/* Monotonic milliseconds. */
long long jm_test_now_ms(void);

/* jm_test_pause is the one poll interval of the integration tests (2 ms):
 * tests never sleep for a duration, they re-check a condition. */
void jm_test_pause(void);

/* JM_TEST_WAIT_UNTIL re-evaluates cond (an expression that may do work, such
 * as running a janitor duty) until it is true; the test fails naming what
 * when timeout_ms passes first. */
#define JM_TEST_WAIT_UNTIL(cond, timeout_ms, what)                                                 \
    do {                                                                                           \
        long long jm__deadline = jm_test_now_ms() + (timeout_ms);                                  \
        while (!(cond)) {                                                                          \
            cr_assert_lt(jm_test_now_ms(), jm__deadline, "timed out waiting for %s", (what));      \
            jm_test_pause();                                                                       \
        }                                                                                          \
    } while (0)

/* jm_test_submit validates json as the api does and enqueues it on r; the
 * test fails on any error. */
jm_enqueue_result jm_test_submit(jm_redis *r, const char *json);

/* ---- the helpers every integration suite uses (each fails the test on an
 * error); r is the suite's connection ---- */

/* jm_test_setup starts t and returns a connection to it (the suite's r);
 * jm_test_teardown frees r and stops t. */
jm_redis *jm_test_setup(jm_test_redis *t, const char *const *extra);
void jm_test_teardown(jm_test_redis *t, jm_redis *r);
/* jm_test_get reads job id (clear it with jm_job_clear); jm_test_state its state. */
jm_job jm_test_get(jm_redis *r, const char *id);
jm_state jm_test_state(jm_redis *r, const char *id);
/* jm_test_count is the exact count of queue's jobs in state s. */
int64_t jm_test_count(jm_redis *r, const char *queue, jm_state s);
/* jm_test_claim_one claims exactly one job of queue for worker "w1". */
jm_claim jm_test_claim_one(jm_redis *r, const char *queue, int lease_ms);
/* jm_test_claim_n claims up to max jobs of queue (then clears them); returns how many. */
int jm_test_claim_n(jm_redis *r, const char *queue, int max, int lease_ms);

/* JM_TEST_SUITE(name) declares the suite's fixture: a fresh redis-server
 * per test (srv), a connection to it (r), an error buffer (err), the
 * retention every call passes (ret), and the Criterion suite that sets them
 * up and tears them down. */
#define JM_TEST_SUITE(name)                                                                        \
    static jm_test_redis srv;                                                                      \
    static jm_redis *r;                                                                            \
    static jm_error err;                                                                           \
    static const jm_retention ret = {.result_ttl_s = 3600, .failed_ttl_s = 86400};                 \
    static void name##_setup(void)                                                                 \
    {                                                                                              \
        r = jm_test_setup(&srv, NULL);                                                             \
    }                                                                                              \
    static void name##_teardown(void)                                                              \
    {                                                                                              \
        jm_test_teardown(&srv, r);                                                                 \
    }                                                                                              \
    TestSuite(name, .init = name##_setup, .fini = name##_teardown, .timeout = 60)

/* jm_test_claim is jm_queue_claim with its call spelled as arguments (one
 * call; more is not followed). Returns jm_queue_claim's code. */
int jm_test_claim(jm_redis *r, const char *queue, int max, int lease_ms, const char *worker,
                  jm_claim *out, int *n, jm_error *err);

#endif
