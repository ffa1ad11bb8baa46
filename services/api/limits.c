/* limits.c - PUT /v1/queues/{queue}/limits: a queue's operator limits.
 *
 * Body {"rate": {"n": N, "per_s": S} | null, "concurrency": C | null}: a key
 * left out keeps that limit, null clears it. At most n jobs of the queue
 * start per per_s seconds (a token bucket in Redis time, bursts up to n),
 * and at most C run at once across every worker. The claim script enforces
 * both (libshared/lua/_lib.lua limit()); see docs/limits.md. Answers 200 with
 * the queue object, which carries "limits".
 */
#include <math.h>
#include <stdio.h>
#include "api.h"

#define LIMIT_MAX 1000000
#define PER_S_MAX 86400.0

/* rate_arg reads "rate": *op and want->rate_n/rate_ms. */
static int
rate_arg(const json_t *body, jm_limit_op *op, jm_queue_limits *want, jm_error *err)
{
    const json_t *rate = json_object_get(body, "rate");
    *op = rate == NULL ? JM_LIMIT_KEEP : json_is_null(rate) ? JM_LIMIT_CLEAR : JM_LIMIT_SET;
    if (*op != JM_LIMIT_SET)
        return JM_OK;
    const json_t *n = json_object_get(rate, "n"), *per = json_object_get(rate, "per_s");
    if (!json_is_object(rate) || !json_is_integer(n) || json_integer_value(n) < 1 ||
        json_integer_value(n) > LIMIT_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "rate.n",
                            "rate must be {\"n\": 1-%d, \"per_s\": seconds} or null", LIMIT_MAX);
    double s = json_is_number(per) ? json_number_value(per) : -1;
    if (!(s >= 0.001 && s <= PER_S_MAX))
        return jm_error_set(err, JM_ERR_INVALID, "rate.per_s",
                            "rate.per_s must be a number of seconds from 0.001 to %.0f", PER_S_MAX);
    want->rate_n = (int)json_integer_value(n);
    want->rate_ms = (int64_t)llround(s * 1000.0);
    return JM_OK;
}

/* conc_arg reads "concurrency": *op and want->concurrency. */
static int
conc_arg(const json_t *body, jm_limit_op *op, jm_queue_limits *want, jm_error *err)
{
    const json_t *c = json_object_get(body, "concurrency");
    *op = c == NULL ? JM_LIMIT_KEEP : json_is_null(c) ? JM_LIMIT_CLEAR : JM_LIMIT_SET;
    if (*op != JM_LIMIT_SET)
        return JM_OK;
    if (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > LIMIT_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "concurrency",
                            "concurrency must be an integer from 1 to %d, or null", LIMIT_MAX);
    want->concurrency = (int)json_integer_value(c);
    return JM_OK;
}

int
api_queues_limits(api_req *req)
{
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    jm_error err;
    jm_error_clear(&err);
    jm_queue_limits want = {0}, now;
    jm_limit_op rate = JM_LIMIT_KEEP, conc = JM_LIMIT_KEEP;
    int rc = json_is_object(body)
                 ? JM_OK
                 : jm_error_set(&err, JM_ERR_INVALID, NULL, "the body must be a JSON object");
    if (rc == JM_OK)
        rc = rate_arg(body, &rate, &want, &err);
    if (rc == JM_OK)
        rc = conc_arg(body, &conc, &want, &err);
    json_decref(body);
    if (rc == JM_OK)
        rc = api_queue_known(req, &err);
    if (rc == JM_OK)
        rc = jm_queue_set_limits(req->redis, req->param, rate, conc, &want, &now, &err);
    jm_queue_info info;
    if (rc == JM_OK)
        rc = jm_queue_stats(req->redis, req->param, &info, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "limits");
    return api_send_json(req, 200, api_queue_to_json(&info), NULL);
}
