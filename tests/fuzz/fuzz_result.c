/* fuzz_result.c - libFuzzer target: what the worker does with an exec
 * handler's stdout, and what the api then does with the stored result.
 *
 * Input: the handler's stdout. As services/worker/exec.c (result_json):
 * blank output is null; else jm_json_loadb(JSON_DECODE_ANY), refusing
 * nesting past JM_JSON_MAX_DEPTH; an accepted value is stored compact
 * (json_dumps JSON_COMPACT | JSON_ENCODE_ANY). Then, as the api: the stored
 * text is read back with jm_json_parse_text inside the job's JSON and printed.
 * The parse and the reads run on a thread with civetweb's 100 KiB stack.
 *
 * Invariants: jm_json_depth and jm_json_check agree with each other and with
 * the loader (a refusal for depth means the scan found it too deep); what
 * was accepted is stored within the nesting limit, parses back to an equal
 * value and can be answered by the api; a refusal has a message.
 */
#include <jansson.h>
#include "fuzz_common.h"
#include "jobmill/job.h"
#include "jobmill/json.h"

static int
real_depth(const json_t *v)
{
    int d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int c = real_depth(json_array_get(v, i));
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            int c = real_depth(x);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

static void *
run(void *arg)
{
    const fuzz_input *in = arg;
    const char *out = (const char *)in->data;
    size_t len = in->size;

    size_t at = 0;
    int depth = jm_json_depth(out, len, JM_JSON_MAX_DEPTH, &at);
    jm_error err;
    jm_error_clear(&err);
    int ck = jm_json_check(out, len, "stdout", &err);
    FUZZ_CHECK((depth > JM_JSON_MAX_DEPTH) == (ck != JM_OK), "depth %d, check %d", depth, ck);
    if (depth > JM_JSON_MAX_DEPTH)
        FUZZ_CHECK(at < len && (out[at] == '[' || out[at] == '{'), "offending offset %zu", at);

    size_t i = 0;
    while (i < len && strchr(" \t\r\n", out[i]) != NULL) /* as exec.c: NUL counts too */
        i++;
    if (i == len)
        return NULL; /* blank: the result is null */
    json_error_t je;
    json_t *v = jm_json_loadb(out, len, JSON_DECODE_ANY, &je);
    if (v == NULL) {
        FUZZ_CHECK(je.text[0] != '\0', "refused without a message");
        if (jm_json_error_is_depth(&je))
            FUZZ_CHECK(depth > JM_JSON_MAX_DEPTH, "refused for depth, scan says %d", depth);
        return NULL;
    }
    FUZZ_CHECK(real_depth(v) <= JM_JSON_MAX_DEPTH, "accepted depth %d", real_depth(v));
    char *stored = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    FUZZ_CHECK(stored != NULL, "accepted value cannot be stored");
    FUZZ_CHECK(jm_json_depth(stored, strlen(stored), JM_JSON_MAX_DEPTH, NULL) <= JM_JSON_MAX_DEPTH,
               "stored result too deep");

    /* the api reads the stored result back into the job's JSON */
    json_t *back = jm_json_parse_text(stored);
    FUZZ_CHECK(back != NULL && json_equal(back, v), "stored result reads back different: %s",
               stored);
    json_decref(back);
    jm_job job;
    memset(&job, 0, sizeof(job));
    strcpy(job.id, "0000AAAAAAAAAAAAAAAAAAAAAA");
    strcpy(job.queue, "default");
    job.type = strdup("fuzz");
    job.payload = strdup("null");
    job.result = stored;
    job.status = JM_STATE_SUCCEEDED;
    json_t *o = jm_job_to_json(&job);
    FUZZ_CHECK(o != NULL, "no job JSON");
    FUZZ_CHECK(json_equal(json_object_get(o, "result"), v), "answered result differs");
    char *text = json_dumps(o, JM_JSON_DUMP_FLAGS);
    FUZZ_CHECK(text != NULL, "the answer cannot be printed");
    free(text);
    json_decref(o);
    jm_job_clear(&job);
    json_decref(v);
    return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_on_api_stack(run, data, size);
    return 0;
}
