/* qlimits.c - a queue limits change from JSON, and applying it: see
 * qlimits.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/qlimits.h"

/* rate_arg reads "rate": c->rate and c->want.rate_n/rate_ms. */
static int
rate_arg(const json_t *body, jm_qlimits_change *c, jm_error *err)
{
    const json_t *rate = json_object_get(body, "rate");
    c->rate = rate == NULL ? JM_LIMIT_KEEP : json_is_null(rate) ? JM_LIMIT_CLEAR : JM_LIMIT_SET;
    if (c->rate != JM_LIMIT_SET)
        return JM_OK;
    const json_t *n = json_object_get(rate, "n"), *per = json_object_get(rate, "per_s");
    if (!json_is_object(rate) || !json_is_integer(n) || json_integer_value(n) < 1 ||
        json_integer_value(n) > JM_QLIMITS_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "rate.n",
                            "rate must be {\"n\": 1-%d, \"per_s\": seconds} or null",
                            JM_QLIMITS_MAX);
    double s = json_is_number(per) ? json_number_value(per) : -1;
    if (!(s >= 0.001 && s <= JM_QLIMITS_PER_S_MAX))
        return jm_error_set(err, JM_ERR_INVALID, "rate.per_s",
                            "rate.per_s must be a number of seconds from 0.001 to %.0f",
                            JM_QLIMITS_PER_S_MAX);
    c->want.rate_n = (int)json_integer_value(n);
    c->want.rate_ms = (int64_t)llround(s * 1000.0);
    return JM_OK;
}

/* conc_arg reads "concurrency": c->conc and c->want.concurrency. */
static int
conc_arg(const json_t *body, jm_qlimits_change *c, jm_error *err)
{
    const json_t *v = json_object_get(body, "concurrency");
    c->conc = v == NULL ? JM_LIMIT_KEEP : json_is_null(v) ? JM_LIMIT_CLEAR : JM_LIMIT_SET;
    if (c->conc != JM_LIMIT_SET)
        return JM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > JM_QLIMITS_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "concurrency",
                            "concurrency must be an integer from 1 to %d, or null", JM_QLIMITS_MAX);
    c->want.concurrency = (int)json_integer_value(v);
    return JM_OK;
}

/* types_arg reads "types" (every entry valid, at most JM_TYPE_CAPS_MAX). */
static int
types_arg(const json_t *body, jm_qlimits_change *c, jm_error *err)
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
        int cap = 0;
        if (!json_is_null(v)) {
            const json_t *cv = json_object_get(v, "concurrency");
            if (!json_is_object(v) || !json_is_integer(cv) || json_integer_value(cv) < 1 ||
                json_integer_value(cv) > JM_QLIMITS_MAX)
                return jm_error_set(err, JM_ERR_INVALID, "types",
                                    "types.%s must be {\"concurrency\": 1-%d} or null", type,
                                    JM_QLIMITS_MAX);
            cap = (int)json_integer_value(cv);
        }
        snprintf(c->types[c->n_types].type, sizeof(c->types[0].type), "%s", type);
        c->types[c->n_types++].concurrency = cap;
    }
    return JM_OK;
}

int
jm_qlimits_from_json(const json_t *body, jm_qlimits_change *c, jm_error *err)
{
    memset(c, 0, sizeof(*c));
    if (!json_is_object(body))
        return jm_error_set(err, JM_ERR_INVALID, NULL, "the body must be a JSON object");
    int rc = rate_arg(body, c, err);
    if (rc == JM_OK)
        rc = conc_arg(body, c, err);
    if (rc == JM_OK)
        rc = types_arg(body, c, err);
    return rc;
}

int
jm_qlimits_apply(jm_redis *r, const char *queue, const jm_qlimits_change *c, jm_queue_limits *now,
                 jm_error *err)
{
    for (int i = 0; i < c->n_types; i++) {
        int rc = jm_queue_set_type_cap(r, queue, c->types[i].type, c->types[i].concurrency, err);
        if (rc != JM_OK)
            return rc;
    }
    jm_queue_limits scratch;
    return jm_queue_set_limits(r, queue, c->rate, c->conc, &c->want, now != NULL ? now : &scratch,
                               err);
}
