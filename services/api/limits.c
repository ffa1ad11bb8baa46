/* limits.c - PUT /v1/queues/{queue}/limits: a queue's operator limits.
 *
 * Body {"rate": {"n": N, "per_s": S} | null, "concurrency": C | null,
 * "types": {"<type>": {"concurrency": C} | null, ...}}: a key left out keeps
 * that limit, null clears it. At most n jobs of the queue start per per_s
 * seconds (a token bucket in Redis time, bursts up to n), at most C run at
 * once across every worker, and at most a type's C of that type. The claim
 * script enforces them (libshared/lua/_lib.lua limit(), type_gate()); see
 * docs/limits.md. The whole body is validated before anything changes.
 * Answers 200 with the queue object, which carries "limits".
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

/* types_arg checks "types" (every entry valid, at most JM_TYPE_CAPS_MAX). */
static int
types_arg(const json_t *body, jm_error *err)
{
    const json_t *types = json_object_get(body, "types");
    if (types == NULL)
        return JM_OK;
    if (!json_is_object(types) || json_object_size(types) > JM_TYPE_CAPS_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "types",
                            "types must be an object of at most %d job types", JM_TYPE_CAPS_MAX);
    const char *type;
    const json_t *v;
    json_object_foreach((json_t *)types, type, v)
    {
        if (!jm_type_name_valid(type))
            return jm_error_set(err, JM_ERR_INVALID, "types",
                                "types: a job type is 1-128 of [A-Za-z0-9_.:/-]");
        if (json_is_null(v))
            continue;
        const json_t *c = json_object_get(v, "concurrency");
        if (!json_is_object(v) || !json_is_integer(c) || json_integer_value(c) < 1 ||
            json_integer_value(c) > LIMIT_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "types",
                                "types.%s must be {\"concurrency\": 1-%d} or null", type,
                                LIMIT_MAX);
    }
    return JM_OK;
}

/* set_types applies a checked "types" (null clears a type's cap). */
static int
set_types(api_req *req, const json_t *body, jm_error *err)
{
    const json_t *types = json_object_get(body, "types");
    if (types == NULL)
        return JM_OK;
    const char *type;
    const json_t *v;
    json_object_foreach((json_t *)types, type, v)
    {
        int cap = json_is_null(v) ? 0 : (int)json_integer_value(json_object_get(v, "concurrency"));
        int rc = jm_queue_set_type_cap(req->redis, req->param, type, cap, err);
        if (rc != JM_OK)
            return rc;
    }
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
    if (rc == JM_OK)
        rc = types_arg(body, &err);
    if (rc == JM_OK)
        rc = api_queue_known(req, &err);
    if (rc == JM_OK)
        rc = set_types(req, body, &err);
    json_decref(body);
    if (rc == JM_OK)
        rc = jm_queue_set_limits(req->redis, req->param, rate, conc, &want, &now, &err);
    jm_queue_info info;
    if (rc == JM_OK)
        rc = jm_queue_stats(req->redis, req->param, &info, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "limits");
    return api_send_json(req, 200, api_queue_to_json(&info), NULL);
}
