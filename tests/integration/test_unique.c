/* test_unique.c - unique jobs: a unique_key refuses a second job while the
 * first holds it (until that job ends, or for its unique_for_s window),
 * idempotency keys still return the original job, every way a job ends
 * frees the key, and batches take no unique jobs.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/queue.h"
#include "redis_fixture.h"

JM_TEST_SUITE(unique);

/* submit enqueues json; returns the rc and, when created, the id in id. */
static int
submit(const char *json, char id[JM_ID_LEN + 1])
{
    json_error_t je;
    json_t *b = json_loads(json, 0, &je);
    cr_assert_not_null(b, "%s", je.text);
    jm_job_spec spec;
    cr_assert_eq(jm_job_spec_from_json(b, "", &spec, &err), JM_OK, "%s", err.msg);
    json_decref(b);
    jm_enqueue_result res;
    int rc = jm_queue_enqueue(r, &spec, 0, &res, NULL, &err);
    jm_job_spec_clear(&spec);
    if (rc == JM_OK && id != NULL)
        snprintf(id, JM_ID_LEN + 1, "%s", res.id);
    return rc;
}

Test(unique, held_until_the_job_ends)
{
    char a[JM_ID_LEN + 1], c[JM_ID_LEN + 1];
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\"}", a), JM_OK);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\"}", NULL), JM_ERR_DUPLICATE);
    cr_assert_str_eq(err.field, "unique_key");
    cr_assert(strstr(err.msg, a) != NULL, "names the holder: %s", err.msg);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\",\"queue\":\"other\"}", NULL),
                 JM_OK, "keys are per queue");
    jm_claim cl = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(cl.id, a);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\"}", NULL), JM_ERR_DUPLICATE,
                 "running still holds it");
    cr_assert_eq(jm_queue_complete(r, cl.id, cl.lease, "1", &ret, &err), JM_OK);
    jm_claim_clear(&cl);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\"}", c), JM_OK,
                 "freed at the end");
    cr_assert_eq(jm_queue_cancel(r, c, &ret, &err), JM_OK);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"report-7\"}", NULL), JM_OK,
                 "a cancel frees it too");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 1);
}

Test(unique, held_for_a_window)
{
    char a[JM_ID_LEN + 1];
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"k\",\"unique_for_s\":0.2}", a), JM_OK);
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"k\",\"unique_for_s\":0.2}", NULL),
                 JM_ERR_DUPLICATE);
    int64_t t0 = jm_redis_time_ms(r, &err);
    JM_TEST_WAIT_UNTIL(jm_redis_time_ms(r, &err) > t0 + 250, 5000, "past the window");
    cr_assert_eq(submit("{\"type\":\"t\",\"unique_key\":\"k\",\"unique_for_s\":0.2}", NULL), JM_OK,
                 "the window passed while the first is still queued");
    cr_assert_eq(jm_test_state(r, a), JM_STATE_QUEUED);
}

Test(unique, idempotency_replay_returns_the_original_first)
{
    char a[JM_ID_LEN + 1];
    const char *body = "{\"type\":\"t\",\"unique_key\":\"u\",\"idempotency_key\":\"i\"}";
    cr_assert_eq(submit(body, a), JM_OK);
    char b[JM_ID_LEN + 1];
    cr_assert_eq(submit(body, b), JM_OK, "a replay is not a second job");
    cr_assert_str_eq(a, b);
}

Test(unique, batches_take_no_unique_jobs)
{
    json_t *j = json_pack("{s:s, s:s}", "type", "t", "unique_key", "u");
    jm_job_spec specs[1];
    cr_assert_eq(jm_job_spec_from_json(j, "", &specs[0], &err), JM_OK);
    json_decref(j);
    jm_enqueue_result res[1];
    cr_assert_eq(jm_queue_enqueue_batch(r, specs, 1, 0, res, NULL, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "jobs[0].unique_key");
    jm_job_spec_clear(&specs[0]);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
}

Test(unique, window_without_key_is_refused)
{
    json_t *j = json_pack("{s:s, s:f}", "type", "t", "unique_for_s", 5.0);
    jm_job_spec spec;
    cr_assert_eq(jm_job_spec_from_json(j, "", &spec, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "unique_for_s");
    json_decref(j);
    jm_job_spec_clear(&spec);
}
