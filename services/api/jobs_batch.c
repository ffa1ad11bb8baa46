/* jobs_batch.c - POST /v1/jobs/batch: {"jobs":[spec...]}, at most 1000.
 *
 * The whole batch is validated before anything is stored: any invalid job is
 * a 400 naming jobs[i].field. Then jm_queue_enqueue_batch_jobs stores all of
 * them or none in one pipelined MULTI/EXEC (a batch whose new queues would
 * pass max_queues is refused first, naming jobs[i].queue) and returns the
 * records as stored; the answer lists the jobs in request order.
 * Per-job idempotency keys work as for single submits; the Idempotency-Key
 * header is refused here (it cannot name one job of many).

 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "jobmill/text.h"
#include "api_metrics.h"
#include "jobmill/log.h"

#define API_BATCH_MAX 1000

static void
specs_free(jm_job_spec *specs, size_t n)
{
    for (size_t i = 0; specs != NULL && i < n; i++)
        jm_job_spec_clear(&specs[i]);
    free(specs);
}

/* validate fills specs[0..n) from the jobs array. */
static int
validate(const json_t *jobs, jm_job_spec *specs, size_t n, jm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *j = json_array_get(jobs, i);
        char prefix[32];
        if (!json_is_object(j)) {
            snprintf(prefix, sizeof(prefix), "jobs[%zu]", i);
            return jm_error_set(err, JM_ERR_INVALID, prefix, "%s must be a JSON object", prefix);
        }
        snprintf(prefix, sizeof(prefix), "jobs[%zu].", i);
        int rc = jm_job_spec_from_json(j, prefix, &specs[i], err);
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

/* respond answers 201 with the jobs as stored, in request order, and clears
 * them. */
static int
respond(api_req *req, jm_job *jobs, size_t n)
{
    jm_text t = JM_TEXT_INIT;
    jm_text_puts(&t, "{\"jobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            jm_text_putc(&t, ',');
        jm_job_json_write(&t, &jobs[i]);
        jm_job_clear(&jobs[i]);
    }
    jm_text_puts(&t, "]}");
    return api_send_json_text(req, 201, &t, NULL);
}

int
api_jobs_batch(api_req *req)
{
    if (mg_get_header(req->conn, "Idempotency-Key") != NULL)
        return api_send_error(req, 400, "invalid_field", "Idempotency-Key",
                              "Idempotency-Key is not accepted on a batch; give each job its "
                              "own idempotency_key");
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    const json_t *jobs = json_object_get(body, "jobs");
    size_t n = json_array_size(jobs);
    if (!json_is_array(jobs) || n < 1 || n > API_BATCH_MAX) {
        json_decref(body);
        return api_send_error(req, 400, "invalid_field", "jobs",
                              "jobs must be an array of 1-%d job objects", API_BATCH_MAX);
    }
    jm_job_spec *specs = calloc(n, sizeof(*specs));
    jm_enqueue_result *res = calloc(n, sizeof(*res));
    jm_job *stored = calloc(n, sizeof(*stored));
    jm_error err;
    jm_error_clear(&err);
    int rc = specs != NULL && res != NULL && stored != NULL
                 ? validate(jobs, specs, n, &err)
                 : jm_error_set(&err, JM_ERR_NOMEM, NULL, "out of memory");
    json_decref(body);
    if (rc == JM_OK)
        rc = jm_queue_enqueue_batch(req->redis, specs, n, req->app->cfg->api_max_queues, res,
                                    stored, &err);
    if (rc == JM_OK && (rc = api_replicated(req, &err)) != JM_OK)
        for (size_t i = 0; i < n; i++)
            jm_job_clear(&stored[i]);
    if (rc != JM_OK) {
        specs_free(specs, n);
        free(res);
        free(stored);
        return api_send_jm_error(req, &err, "submit");
    }
    for (size_t i = 0; i < n; i++)
        if (res[i].created)
            api_metrics_submitted(req->app->metrics, specs[i].queue, 1);
    jm_log_debug("batch submitted", JM_LOG_INT("jobs", n), "first_queue", specs[0].queue, NULL);
    status = respond(req, stored, n);
    specs_free(specs, n);
    free(res);
    free(stored);
    return status;
}
