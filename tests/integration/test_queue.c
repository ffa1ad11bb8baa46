/* test_queue.c - every transition script and every guard refusal against a
 * real redis-server (one per test process, see redis_fixture.h). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/queue.h"
#include "redis_fixture.h"

static jm_test_redis srv;
static jm_redis *r;
static jm_error err;
static const jm_retention ret = {.result_ttl_s = 3600, .failed_ttl_s = 86400};

static void
setup(void)
{
    jm_test_redis_start(&srv, NULL);
    r = jm_test_redis_connect(&srv);
}

static void
teardown(void)
{
    jm_redis_free(r);
    jm_test_redis_stop(&srv);
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 60);

/* Builds a spec from a JSON body (the api's path) and submits it. */
static jm_enqueue_result
submit(const char *json)
{
    json_error_t je;
    json_t *body = json_loads(json, 0, &je);
    cr_assert(body != NULL, "bad test json: %s", je.text);
    jm_job_spec spec;
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_OK, "%s", err.msg);
    jm_enqueue_result res;
    cr_assert_eq(jm_queue_enqueue(r, &spec, 0, &res, &err), JM_OK, "%s", err.msg);
    jm_job_spec_clear(&spec);
    json_decref(body);
    return res;
}

static jm_state
state_of(const char *id)
{
    jm_job j;
    cr_assert_eq(jm_queue_get(r, id, &j, &err), JM_OK, "%s", err.msg);
    jm_state s = j.status;
    jm_job_clear(&j);
    return s;
}

static int64_t
count_of(const char *queue, jm_state s)
{
    jm_queue_info info;
    cr_assert_eq(jm_queue_stats(r, queue, &info, &err), JM_OK, "%s", err.msg);
    return info.counts[s];
}

static jm_claim
claim_one(const char *queue, int lease_ms)
{
    jm_claim c[1];
    int n = 0;
    cr_assert_eq(jm_queue_claim(r, queue, 1, lease_ms, "w1", c, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 1, "expected one claim");
    return c[0];
}

Test(queue, enqueue_claim_complete)
{
    jm_enqueue_result e = submit("{\"type\":\"echo\",\"payload\":{\"a\":1}}");
    cr_assert(e.created);
    cr_assert(jm_id_valid(e.id));
    cr_assert_eq(state_of(e.id), JM_STATE_QUEUED);
    cr_assert_eq(count_of("default", JM_STATE_QUEUED), 1);

    jm_claim c = claim_one("default", 10000);
    cr_assert_str_eq(c.id, e.id);
    cr_assert_str_eq(c.type, "echo");
    cr_assert_str_eq(c.payload, "{\"a\":1}");
    cr_assert_eq(c.attempt, 1);
    cr_assert_gt(c.fence, 0);
    cr_assert_eq(state_of(e.id), JM_STATE_RUNNING);
    cr_assert_eq(count_of("default", JM_STATE_QUEUED), 0);
    cr_assert_eq(count_of("default", JM_STATE_RUNNING), 1);

    cr_assert_eq(jm_queue_complete(r, c.id, c.fence, "{\"ok\":true}", &ret, &err), JM_OK, "%s",
                 err.msg);
    jm_job j;
    cr_assert_eq(jm_queue_get(r, e.id, &j, &err), JM_OK);
    cr_assert_eq(j.status, JM_STATE_SUCCEEDED);
    cr_assert_str_eq(j.result, "{\"ok\":true}");
    cr_assert_gt(j.finished_ms, 0);
    jm_job_clear(&j);
    cr_assert_eq(count_of("default", JM_STATE_RUNNING), 0);
    cr_assert_eq(count_of("default", JM_STATE_SUCCEEDED), 1);
    /* double complete is refused */
    cr_assert_eq(jm_queue_complete(r, c.id, c.fence, "2", &ret, &err), JM_ERR_FENCE);
    jm_claim_clear(&c);
}

Test(queue, claim_empty_and_fifo)
{
    jm_claim c[4];
    int n = -1;
    cr_assert_eq(jm_queue_claim(r, "default", 4, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 0);
    jm_enqueue_result a = submit("{\"type\":\"t\",\"payload\":1}");
    jm_enqueue_result b = submit("{\"type\":\"t\",\"payload\":2}");
    jm_enqueue_result d = submit("{\"type\":\"t\",\"payload\":3}");
    cr_assert_eq(jm_queue_claim(r, "default", 2, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].id, a.id);
    cr_assert_str_eq(c[1].id, b.id);
    cr_assert_neq(c[0].fence, c[1].fence);
    jm_claim_clear(&c[0]);
    jm_claim_clear(&c[1]);
    cr_assert_eq(jm_queue_claim(r, "default", 4, 1000, "w", c, &n, &err), JM_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].id, d.id);
    jm_claim_clear(&c[0]);
}
