/* test_job_json.c - jm_job_json_write writes exactly what jansson dumps of
 * jm_job_to_json, for ordinary jobs and for the texts that must take the
 * slow path (reals, invalid JSON, too deep) or need escaping (control
 * characters, quotes, invalid UTF-8). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/job.h"
#include "jobmill/json.h"
#include "jobmill/text.h"

/* same_as_jansson checks job's hand-written JSON against jansson's. */
static void
same_as_jansson(const jm_job *job)
{
    json_t *o = jm_job_to_json(job);
    char *want = json_dumps(o, JM_JSON_DUMP_FLAGS);
    json_decref(o);
    jm_text t = JM_TEXT_INIT;
    jm_job_json_write(&t, job);
    size_t len = 0;
    char *got = jm_text_take(&t, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, strlen(got));
    json_t *back = json_loads(got, 0, NULL);
    cr_assert_not_null(back, "valid JSON: %s", got);
    json_decref(back);
    cr_assert_str_eq(got, want);
    free(got);
    free(want);
}

static jm_job
job_with(char *payload, char *result, char *error)
{
    jm_job j;
    memset(&j, 0, sizeof(j));
    strcpy(j.id, "ab12c3d4e5f6a7b8c9d0e1f2");
    strcpy(j.queue, "default");
    j.type = "echo";
    j.payload = payload;
    j.result = result;
    j.error = error;
    j.status = JM_STATE_SUCCEEDED;
    j.attempts = 2;
    j.max_attempts = 3;
    j.created_ms = 1795383892035;
    j.run_at_ms = 1795383892000;
    j.started_ms = 1795383892100;
    j.finished_ms = 1795383892999;
    j.fence = 1795383892035123;
    return j;
}

Test(job_json, ordinary_jobs)
{
    jm_job j = job_with("{\"url\":\"s3://b/k.png\",\"w\":640,\"tags\":[1,-2,true,null]}",
                        "{\"ok\":true}", NULL);
    same_as_jansson(&j);
    j = job_with("null", NULL, NULL);
    j.status = JM_STATE_QUEUED;
    j.started_ms = j.finished_ms = 0;
    j.fence = 0;
    j.timeout_s = 30;
    j.cancel_requested = true;
    j.worker = "w-1";
    j.expires_ms = 5;
    same_as_jansson(&j);
    strcpy(j.batch, "ab12Xy_-0123456789abcdefgh");
    same_as_jansson(&j);
}

Test(job_json, texts_that_take_the_slow_path)
{
    const char *texts[] = {"0.1",
                           "[1e5,2]",
                           "{\"a\":1.50}",
                           "not json",
                           "{\"a\":",
                           "[1,]",
                           "\"\\u00e9\"",
                           "01",
                           "-0",
                           "\"\\ud83d\\ude00\"",
                           "123456789012345678901234",
                           "[\"a\\/b\"]",
                           " {\"a\": 1} ",
                           "[1, 2]"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        jm_job j = job_with((char *)texts[i], (char *)texts[i], NULL);
        same_as_jansson(&j);
    }
    char deep[2 * JM_JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i <= JM_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i <= JM_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    jm_job j = job_with(deep, NULL, NULL);
    same_as_jansson(&j); /* null, as jansson's loader refuses it */
}

Test(job_json, strings_are_escaped)
{
    jm_job j = job_with("\"tab\\tquote\\\"\"", NULL,
                        "line1\nline2 \"q\" back\\slash \x01 \x1b[31m caf\xc3\xa9");
    same_as_jansson(&j);
    /* invalid UTF-8: jansson refuses the string (the field goes missing);
     * written by hand it becomes U+FFFD and stays valid JSON */
    j = job_with("1", NULL, "bad \xff byte");
    jm_text t = JM_TEXT_INIT;
    jm_job_json_write(&t, &j);
    char *got = jm_text_take(&t, NULL);
    cr_assert(strstr(got, "\"error\":\"bad \xef\xbf\xbd byte\"") != NULL, "%s", got);
    json_t *back = json_loads(got, 0, NULL);
    cr_assert_not_null(back);
    json_decref(back);
    free(got);
}
