/* jobs_get.c - GET /v1/jobs/{id}, with the ?wait=S long-poll.
 *
 * Without wait (or wait=0), or when the job is already terminal, the job is
 * answered at once. Otherwise the request registers a waiter (waiters.h),
 * then re-reads the job: a job that finished between the first read and the
 * registration is caught here, and one that finishes later publishes its id,
 * which wakes the waiter. No request polls Redis while it waits and none holds
 * a Redis connection: the one subscriber thread listens for all of them.
 * At the deadline, or when the api stops, the job is read once more and
 * answered as it is (200). Beyond the waiter limit, ?wait answers at once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api.h"
#include "jobmill/clock.h"
#include "waiters.h"

#define API_WAIT_MAX_S 60.0
#define API_WAIT_RETRY_MS 200 /* re-read after a failed read on a wake-up */

int
api_req_wait(const api_req *req, double *secs)
{
    char buf[32];
    *secs = 0;
    int got = api_req_query(req, "wait", buf, sizeof(buf));
    if (got == 0)
        return 0;
    if (got < 0 || buf[0] == '\0')
        return -1;
    /* decimal seconds only: digits, an optional fraction (no sign, blanks,
     * exponents, hex floats, inf or nan, all of which strtod takes) */
    size_t i = strspn(buf, "0123456789");
    if (i == 0 || (buf[i] == '.' && strspn(buf + i + 1, "0123456789") == 0))
        return -1;
    if (buf[i] == '.')
        i += 1 + strspn(buf + i + 1, "0123456789");
    if (buf[i] != '\0')
        return -1;
    double v = strtod(buf, NULL);
    if (!isfinite(v) || v > API_WAIT_MAX_S)
        return -1;
    *secs = v;
    return 0;
}

/* wait_terminal sleeps on w until the job is terminal, the deadline or stop;
 * *job is kept current. A read that fails (Redis going away or just back,
 * this thread's connection stale or in backoff) keeps the last job and is
 * retried every API_WAIT_RETRY_MS, so no wake-up is lost; that includes the
 * first read after w was added, which a Redis restart can meet. Only a read
 * at the deadline (or at stop) decides. Returns JM_OK or the error of a
 * deciding read. */
static int
wait_terminal(api_req *req, const char *id, api_waiter *w, jm_job *job, double secs, jm_error *err)
{
    api_waiters *ws = req->app->waiters;
    int64_t deadline = jm_clock_ms() + (int64_t)llround(secs * 1000.0), retry_at = 0;
    bool retry = false, last = false;
    int rc = JM_OK;
    for (;;) {
        /* the job may have finished before w was added: read before waiting
         * (and mark it watched, so its finish is published) */
        jm_job fresh;
        int got = jm_queue_watch(req->redis, id, &fresh, err);
        if (got == JM_OK) {
            jm_job_clear(job);
            *job = fresh;
        } else if (last || got == JM_ERR_NOT_FOUND) {
            rc = got;
        } else {
            retry = true;
            retry_at = jm_clock_ms() + API_WAIT_RETRY_MS;
        }
        if (last || rc != JM_OK || jm_state_terminal(job->status))
            break;
        bool early = retry && retry_at < deadline;
        api_wait_result res = api_waiters_wait(ws, w, early ? retry_at : deadline);
        last = res == API_WAIT_STOP || (res == API_WAIT_TIMEOUT && !early);
        retry = false;
    }
    return rc;
}

int
api_job_wait(api_req *req, const char *id, jm_job *job, double secs, jm_error *err)
{
    if (secs <= 0 || jm_state_terminal(job->status))
        return JM_OK;
    api_waiter w;
    memset(&w, 0, sizeof(w));
    if (!api_waiters_add(req->app->waiters, &w, id))
        return JM_OK; /* beyond the long-poll limit: answer at once */
    int rc = wait_terminal(req, id, &w, job, secs, err);
    api_waiters_remove(req->app->waiters, &w);
    return rc;
}

int
api_jobs_get(api_req *req)
{
    double secs;
    if (api_req_wait(req, &secs) != 0)
        return api_send_error(req, 400, "invalid_field", "wait",
                              "wait must be a number of seconds from 0 to 60");
    if (!jm_id_valid(req->param))
        return api_send_error(req, 404, "not_found", NULL, "job %s not found", req->param);
    jm_job job;
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_queue_get(req->redis, req->param, &job, &err);
    if (rc == JM_OK)
        rc = api_job_wait(req, req->param, &job, secs, &err);
    if (rc != JM_OK) {
        jm_job_clear(&job);
        return api_send_jm_error(req, &err, "get");
    }
    int sent = api_send_job_json(req, 200, &job, NULL);
    jm_job_clear(&job);
    return sent;
}
