/* jobs.c - POST /v1/jobs (submit one; ?wait=S then long-polls like GET
 * ?wait), POST /v1/jobs/{id}/cancel and POST /v1/jobs/{id}/retry. The batch
 * submit is in jobs_batch.c and the (long-polling) read in jobs_get.c.
 *
 * Idempotency: the key comes from the Idempotency-Key header or the body's
 * idempotency_key (both given and different: 400). The enqueue script returns
 * the existing job of a known key; the answer is then 200 instead of 201.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "api_metrics.h"
#include "jobmill/log.h"

/* jobs_spec validates one submit body into spec, merging the idempotency key
 * of the header. Returns JM_OK or JM_ERR_INVALID (err names the field). */
static int
jobs_spec(const json_t *body, const char *idem_header, jm_job_spec *spec, jm_error *err)
{
    int rc = jm_job_spec_from_json(body, "", spec, err);
    if (rc != JM_OK || idem_header == NULL)
        return rc;
    size_t n = strlen(idem_header);
    if (n < 1 || n > JM_IDEM_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "Idempotency-Key",
                            "the Idempotency-Key header must be 1-%d characters", JM_IDEM_MAX);
    if (spec->idem_key != NULL) {
        if (strcmp(spec->idem_key, idem_header) != 0)
            return jm_error_set(err, JM_ERR_INVALID, "idempotency_key",
                                "idempotency_key differs from the Idempotency-Key header");
        return JM_OK;
    }
    if ((spec->idem_key = strdup(idem_header)) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    return JM_OK;
}

/* send_job_created answers a submit with the job as stored (from the
 * enqueue call itself: no second round trip that could fail after the job was
 * accepted) and its Location. Clears job. */
static int
send_job_created(api_req *req, int status, jm_job *job)
{
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", job->id);
    const char *hdrs[] = {"Location", loc, NULL};
    int rc = api_send_job_json(req, status, job, hdrs);
    jm_job_clear(job);
    return rc;
}

int
api_jobs_submit(api_req *req)
{
    int status;
    double secs;
    if (api_req_wait(req, &secs) != 0)
        return api_send_error(req, 400, "invalid_field", "wait",
                              "wait must be a number of seconds from 0 to 60");
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    jm_job_spec spec;
    jm_error err;
    jm_error_clear(&err);
    int rc = jobs_spec(body, mg_get_header(req->conn, "Idempotency-Key"), &spec, &err);
    json_decref(body);
    if (rc != JM_OK) {
        jm_job_spec_clear(&spec);
        return api_send_jm_error(req, &err, "submit");
    }
    jm_enqueue_result res;
    jm_job job;
    rc = jm_queue_enqueue(req->redis, &spec, req->app->cfg->api_max_queues, &res, &job, &err);
    if (rc == JM_OK && res.created) {
        api_metrics_submitted(req->app->metrics, spec.queue, 1);
        jm_log_debug("job submitted", "job_id", res.id, "queue", spec.queue, "type", spec.type,
                     NULL);
    }
    jm_job_spec_clear(&spec);
    if (rc == JM_OK && (rc = api_replicated(req, &err)) != JM_OK)
        jm_job_clear(&job);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "submit");
    /* ?wait=S: the job is stored; a failing read while waiting only ends the
     * wait, answering the job as last read (never an error for a stored job) */
    jm_error werr;
    jm_error_clear(&werr);
    if (api_job_wait(req, res.id, &job, secs, &werr) != JM_OK)
        jm_log_warn("submit: the wait for the job's end stopped early", "job_id", res.id, "error",
                    werr.msg, NULL);
    return send_job_created(req, res.created ? 201 : 200, &job);
}

int
api_replicated(api_req *req, jm_error *err)
{
    int n = req->app->cfg->api_submit_replicas, acked = 0;
    if (n <= 0)
        return JM_OK;
    /* half the Redis timeout: the answer still comes before a client that
     * uses the same timeout gives up */
    return jm_redis_wait_replicas(req->redis, n, req->app->cfg->redis_timeout_ms / 2, &acked, err);
}

/* transition runs cancel or retry on the job of the path and answers the job;
 * a forbidden state is 409 naming the job's current status. */
static int
transition(api_req *req, bool cancel)
{
    const char *id = req->param;
    const char *op = cancel ? "cancel" : "retry";
    jm_error err;
    jm_error_clear(&err);
    if (!jm_id_valid(id))
        return api_send_error(req, 404, "not_found", NULL, "job %s not found", id);
    int rc = cancel ? jm_queue_cancel(req->redis, id, &req->app->retention, &err)
                    : jm_queue_retry(req->redis, id, &err);
    if (rc == JM_ERR_STATE) {
        jm_job job;
        jm_error gerr;
        const char *now = "in a state that forbids it";
        char buf[64] = "";
        if (jm_queue_get(req->redis, id, &job, &gerr) == JM_OK) {
            snprintf(buf, sizeof(buf), "%s", jm_state_name(job.status));
            now = buf;
            jm_job_clear(&job);
        }
        return api_send_error(req, 409, "invalid_state", NULL, "job %s is %s; %s", id, now,
                              cancel ? "only queued, scheduled or running jobs can be canceled"
                                     : "only failed, canceled or expired jobs can be retried");
    }
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, op);
    return api_send_job(req, 200, id, op);
}

int
api_jobs_cancel(api_req *req)
{
    return transition(req, true);
}

int
api_jobs_retry(api_req *req)
{
    return transition(req, false);
}
