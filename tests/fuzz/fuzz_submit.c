/* fuzz_submit.c - libFuzzer target: the api's submit path up to Redis.
 *
 * Input: "HEADER\nBODY". HEADER is the Idempotency-Key header value (an
 * empty line: no header), BODY the request body. Like the api it parses the
 * body with jm_json_loadb (nesting limit first, duplicate keys refused),
 * validates it with the api's own jobs_spec (services/api/jobs.c: header
 * merge + jm_job_spec_from_json) and, when the body holds "jobs", with the
 * batch validator (jobs_batch.c); every body also goes through POST
 * /v1/batches' validator (batches.c). Then it builds the record the enqueue
 * script would store and the JSON the api would answer with. All of it runs on a
 * thread with civetweb's 100 KiB stack, as in the api.
 *
 * Invariants: an accepted spec is within every documented bound; its stored
 * payload parses back (within the nesting limit) to a value equal to the
 * submitted one; the answer can be built and printed.
 */
#include <inttypes.h>
#include <math.h>
#include <jansson.h>
#include "fuzz_common.h"
#include "jobmill/job.h"
#include "jobmill/json.h"

/* fuzz_submit_jobs.c and fuzz_submit_batch.c: the api's static validators */
int fuzz_jobs_spec(const json_t *body, const char *idem_header, jm_job_spec *spec, jm_error *err);
int fuzz_batch_validate(const json_t *jobs, jm_job_spec *specs, size_t n, jm_error *err);
/* fuzz_submit_batches.c: POST /v1/batches' validator (aborts on a broken invariant) */
int fuzz_batches_parse(const json_t *body, const char *idem_header, jm_error *err);

static bool
type_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > JM_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_.-:/", c) != NULL))
            return false;
    }
    return true;
}

/* check_spec: the bounds of docs/api.md, the payload round trip and the
 * answer the api would build from the stored record. */
static void
check_spec(const jm_job_spec *s, const json_t *submitted)
{
    FUZZ_CHECK(jm_queue_name_valid(s->queue), "queue %s", s->queue);
    FUZZ_CHECK(s->type != NULL && type_ok(s->type), "type %s", s->type ? s->type : "(null)");
    FUZZ_CHECK(s->max_attempts >= 1 && s->max_attempts <= JM_MAX_ATTEMPTS_MAX, "%d",
               s->max_attempts);
    FUZZ_CHECK(s->timeout_s >= 0 && s->timeout_s <= JM_TIMEOUT_MAX_S, "%d", s->timeout_s);
    FUZZ_CHECK(s->result_ttl_s >= 0 && s->result_ttl_s <= JM_TTL_MAX_S, "%d", s->result_ttl_s);
    FUZZ_CHECK(s->delay_ms >= 0 && s->delay_ms <= (int64_t)JM_DELAY_MAX_S * 1000, "%" PRId64,
               s->delay_ms);
    FUZZ_CHECK(s->run_at_ms >= 0 && s->run_at_ms <= 32503680000000LL, "%" PRId64, s->run_at_ms);
    FUZZ_CHECK(!(s->delay_ms > 0 && s->run_at_ms > 0), "delay and run_at");
    FUZZ_CHECK(s->expires_in_ms >= 0 && s->expires_in_ms <= (int64_t)JM_DELAY_MAX_S * 1000,
               "%" PRId64, s->expires_in_ms);
    if (s->idem_key != NULL)
        FUZZ_CHECK(strlen(s->idem_key) >= 1 && strlen(s->idem_key) <= JM_IDEM_MAX, "idem len %zu",
                   strlen(s->idem_key));

    /* what is stored parses back, everywhere, to what was sent */
    FUZZ_CHECK(s->payload != NULL, "no payload");
    size_t plen = strlen(s->payload);
    FUZZ_CHECK(jm_json_depth(s->payload, plen, JM_JSON_MAX_DEPTH, NULL) <= JM_JSON_MAX_DEPTH,
               "stored payload too deep");
    json_error_t je;
    json_t *back = jm_json_loadb(s->payload, plen, JSON_DECODE_ANY, &je);
    FUZZ_CHECK(back != NULL, "stored payload does not parse: %s (%s)", je.text, s->payload);
    const json_t *sent = json_object_get(submitted, "payload");
    if (sent == NULL)
        sent = json_null();
    FUZZ_CHECK(json_equal(back, (json_t *)sent), "payload changed in storage: %s", s->payload);
    json_decref(back);

    /* the record the enqueue script stores, and the api's answer */
    char ma[16], to[16], ttl[16], exp[32];
    snprintf(ma, sizeof(ma), "%d", s->max_attempts);
    snprintf(to, sizeof(to), "%d", s->timeout_s);
    snprintf(ttl, sizeof(ttl), "%d", s->result_ttl_s);
    snprintf(exp, sizeof(exp), "%" PRId64, (int64_t)1700000000000LL + s->expires_in_ms);
    const char *fv[] = {"queue",        s->queue,
                        "type",         s->type,
                        "payload",      s->payload,
                        "status",       "queued",
                        "attempts",     "0",
                        "max_attempts", ma,
                        "timeout_s",    to,
                        "fence",        "0",
                        "created",      "1700000000000",
                        "run_at",       "1700000000000",
                        "result_ttl",   ttl,
                        "cancel",       "0",
                        "expires_at",   exp,
                        "idem",         s->idem_key != NULL ? s->idem_key : "x"};
    char id[JM_ID_LEN + 1];
    jm_error err;
    jm_error_clear(&err);
    FUZZ_CHECK(jm_id_new(s->queue, id, &err) == JM_OK, "%s", err.msg);
    FUZZ_CHECK(jm_id_valid(id), "%s", id);
    jm_job job;
    memset(&job, 0, sizeof(job));
    int rc = jm_job_from_hash(&job, id, fv, sizeof(fv) / sizeof(fv[0]), &err);
    FUZZ_CHECK(rc == JM_OK, "record does not load: %s", err.msg);
    json_t *o = jm_job_to_json(&job);
    FUZZ_CHECK(o != NULL, "no job JSON");
    char *text = json_dumps(o, JM_JSON_DUMP_FLAGS);
    FUZZ_CHECK(text != NULL, "the answer cannot be printed");
    FUZZ_CHECK(json_object_get(o, "payload") != NULL, "answer without payload");
    free(text);
    json_decref(o);
    jm_job_clear(&job);
}

static void *
run(void *arg)
{
    const fuzz_input *in = arg;
    const uint8_t *body;
    size_t body_len;
    size_t hlen = fuzz_split(in->data, in->size, '\n', &body, &body_len);
    char *header = hlen > 0 ? fuzz_strndup(in->data, hlen) : NULL;

    json_error_t je;
    json_t *v = jm_json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        FUZZ_CHECK(je.text[0] != '\0', "refused without a message");
        free(header);
        return NULL;
    }
    jm_job_spec spec;
    jm_error err;
    jm_error_clear(&err);
    int rc = fuzz_jobs_spec(v, header, &spec, &err);
    if (rc == JM_OK)
        check_spec(&spec, v);
    else
        FUZZ_CHECK(rc == JM_ERR_INVALID && err.msg[0] != '\0', "rc %d, no message", rc);
    jm_job_spec_clear(&spec);

    const json_t *jobs = json_object_get(v, "jobs");
    size_t n = json_array_size(jobs);
    if (json_is_array(jobs) && n >= 1 && n <= 1000) {
        jm_job_spec *specs = calloc(n, sizeof(*specs));
        FUZZ_CHECK(specs != NULL, "oom");
        jm_error_clear(&err);
        rc = fuzz_batch_validate(jobs, specs, n, &err);
        if (rc == JM_OK)
            for (size_t i = 0; i < n; i++)
                check_spec(&specs[i], json_array_get(jobs, i));
        else
            FUZZ_CHECK(strncmp(err.field, "jobs[", 5) == 0, "batch error field %s", err.field);
        for (size_t i = 0; i < n; i++)
            jm_job_spec_clear(&specs[i]);
        free(specs);
    }
    jm_error_clear(&err);
    rc = fuzz_batches_parse(v, header, &err);
    FUZZ_CHECK(rc == JM_OK || err.msg[0] != '\0', "batches: rc %d, no message", rc);
    json_decref(v);
    free(header);
    return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_on_api_stack(run, data, size);
    return 0;
}
