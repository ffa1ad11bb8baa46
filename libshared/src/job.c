/* job.c - job states, ids, the submit spec and the JSON forms. No I/O but
 * getrandom(2) for ids. See job.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "jobmill/job.h"
#include "jobmill/json.h"

static const char *const state_names[JM_STATE_COUNT] = {
    "queued", "scheduled", "running", "succeeded", "failed", "canceled", "expired",
};

const char *
jm_state_name(jm_state s)
{
    return (s >= 0 && s < JM_STATE_COUNT) ? state_names[s] : "unknown";
}

jm_state
jm_state_parse(const char *s)
{
    for (int i = 0; s != NULL && i < JM_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0)
            return (jm_state)i;
    return JM_STATE_UNKNOWN;
}

bool
jm_state_terminal(jm_state s)
{
    return s == JM_STATE_SUCCEEDED || s == JM_STATE_FAILED || s == JM_STATE_CANCELED ||
           s == JM_STATE_EXPIRED;
}

static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

bool
jm_queue_name_valid(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n < 1 || n > JM_QUEUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

/* CRC16-CCITT (XMODEM), the function Redis Cluster hashes keys with. */
static unsigned
crc16(const char *s, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)(unsigned char)s[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

void
jm_slot_tag(const char *queue, char tag[JM_TAG_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned slot = crc16(queue, strlen(queue)) % 16384;
    for (int i = JM_TAG_LEN - 1; i >= 0; i--, slot >>= 4)
        tag[i] = hex[slot & 15];
    tag[JM_TAG_LEN] = '\0';
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
jm_id_new(const char *queue, char id[JM_ID_LEN + 1], jm_error *err)
{
    unsigned char raw[18] = {0}; /* 16 random bytes, padded to 18 = 24 chars of 6 bits */
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(raw + got, 16 - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return jm_error_set(err, JM_ERR_IO, NULL, "getrandom: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    jm_slot_tag(queue, id);
    /* 128 bits -> 22 base64url characters (the last carries 2 bits). */
    char *p = id + JM_TAG_LEN;
    for (int i = 0; i < 18 && p < id + JM_ID_LEN; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0 && p < id + JM_ID_LEN; k--)
            *p++ = b64url[(v >> (6 * k)) & 63];
    }
    id[JM_ID_LEN] = '\0';
    return JM_OK;
}

bool
jm_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != JM_ID_LEN)
        return false;
    for (int i = 0; i < JM_TAG_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    for (int i = JM_TAG_LEN; i < JM_ID_LEN; i++)
        if (strchr(b64url, id[i]) == NULL)
            return false;
    return true;
}

/* ---- submit spec ---- */

void
jm_job_spec_clear(jm_job_spec *spec)
{
    free(spec->type);
    free(spec->payload);
    free(spec->idem_key);
    free(spec->unique_key);
    memset(spec, 0, sizeof(*spec));
}

static int
bad(jm_error *err, const char *prefix, const char *field, const char *msg)
{
    char f[96];
    snprintf(f, sizeof(f), "%s%s", prefix, field);
    return jm_error_set(err, JM_ERR_INVALID, f, "%s %s", f, msg);
}

/* Reads an optional integer field in [lo, hi]; JSON reals with an integral
 * value are accepted (2.0), booleans and strings are not. */
static int
get_int(const json_t *body, const char *prefix, const char *key, long long lo, long long hi,
        long long *out, bool *present, jm_error *err)
{
    const json_t *v = json_object_get(body, key);
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return JM_OK;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))
        d = json_real_value(v);
    else
        return bad(err, prefix, key, "must be an integer");
    if (d < (double)lo || d > (double)hi) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %lld and %lld", lo, hi);
        return bad(err, prefix, key, msg);
    }
    *out = (long long)d;
    return JM_OK;
}

/* Reads an optional number of seconds in [lo, hi] as milliseconds. */
static int
get_seconds_ms(const json_t *body, const char *prefix, const char *key, double lo, double hi,
               int64_t *out_ms, bool *present, jm_error *err)
{
    const json_t *v = json_object_get(body, key);
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return JM_OK;
    if (!json_is_number(v))
        return bad(err, prefix, key, "must be a number of seconds");
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %g and %g", lo, hi);
        return bad(err, prefix, key, msg);
    }
    *out_ms = (int64_t)llround(d * 1000.0);
    return JM_OK;
}

static bool
type_char(char c)
{
    return name_char(c) || c == ':' || c == '/';
}

bool
jm_type_name_valid(const char *type)
{
    size_t n = type != NULL ? strlen(type) : 0;
    if (n < 1 || n > JM_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!type_char(type[i]))
            return false;
    return true;
}

int
jm_job_spec_from_json(const json_t *body, const char *field_prefix, jm_job_spec *spec,
                      jm_error *err)
{
    const char *px = field_prefix != NULL ? field_prefix : "";
    memset(spec, 0, sizeof(*spec));
    if (!json_is_object(body))
        return jm_error_set(err, JM_ERR_INVALID, px, "%s must be a JSON object",
                            px[0] ? px : "the body");

    const json_t *q = json_object_get(body, "queue");
    if (q == NULL || json_is_null(q)) {
        strcpy(spec->queue, "default");
    } else if (!json_is_string(q) || !jm_queue_name_valid(json_string_value(q))) {
        return bad(err, px, "queue", "must be 1-64 characters of [A-Za-z0-9_.-]");
    } else {
        strcpy(spec->queue, json_string_value(q));
    }

    const json_t *t = json_object_get(body, "type");
    if (t == NULL || json_is_null(t))
        return bad(err, px, "type", "is required");
    const char *ts = json_string_value(t);
    size_t tl = ts != NULL ? strlen(ts) : 0;
    if (!json_is_string(t) || tl < 1 || tl > JM_TYPE_MAX)
        return bad(err, px, "type", "must be a string of 1-128 characters");
    for (size_t i = 0; i < tl; i++)
        if (!type_char(ts[i]))
            return bad(err, px, "type", "must use only [A-Za-z0-9_.:/-]");
    if ((spec->type = strdup(ts)) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");

    const json_t *p = json_object_get(body, "payload");
    /* 17 digits: the stored payload keeps every double exactly, so handlers
     * see the numbers the client sent (responses print 16, see job.h). */
    spec->payload = json_dumps(p != NULL ? p : json_null(),
                               JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (spec->payload == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    /* A body parsed by jm_json_load* nests the payload one level less than
     * the limit; a body built in code might not: what is stored must parse
     * again everywhere (workers, api, HTTP workers). */
    if (jm_json_depth(spec->payload, strlen(spec->payload), JM_JSON_MAX_DEPTH, NULL) >
        JM_JSON_MAX_DEPTH) {
        char msg[96];
        snprintf(msg, sizeof(msg), "is nested deeper than the nesting limit of %d levels",
                 JM_JSON_MAX_DEPTH);
        return bad(err, px, "payload", msg);
    }

    long long v;
    bool has;
    int rc;
    if ((rc = get_int(body, px, "max_attempts", 1, JM_MAX_ATTEMPTS_MAX, &v, &has, err)) != JM_OK)
        return rc;
    spec->max_attempts = has ? (int)v : 3;
    if ((rc = get_int(body, px, "priority", 0, JM_PRIORITY_MAX, &v, &has, err)) != JM_OK)
        return rc;
    spec->priority = has ? (int)v : 0;
    if ((rc = get_int(body, px, "timeout_s", 1, JM_TIMEOUT_MAX_S, &v, &has, err)) != JM_OK)
        return rc;
    spec->timeout_s = has ? (int)v : 0;
    if ((rc = get_int(body, px, "result_ttl_s", 1, JM_TTL_MAX_S, &v, &has, err)) != JM_OK)
        return rc;
    spec->result_ttl_s = has ? (int)v : 0;

    bool has_delay, has_run_at, has_exp;
    if ((rc = get_seconds_ms(body, px, "delay_s", 0, JM_DELAY_MAX_S, &spec->delay_ms, &has_delay,
                             err)) != JM_OK)
        return rc;
    if ((rc = get_seconds_ms(body, px, "run_at", 0, 32503680000.0, &spec->run_at_ms, &has_run_at,
                             err)) != JM_OK)
        return rc;
    if (has_delay && has_run_at)
        return bad(err, px, "run_at", "cannot be given together with delay_s");
    if ((rc = get_seconds_ms(body, px, "expires_in_s", 0.001, JM_DELAY_MAX_S, &spec->expires_in_ms,
                             &has_exp, err)) != JM_OK)
        return rc;

    const json_t *k = json_object_get(body, "idempotency_key");
    if (k != NULL && !json_is_null(k)) {
        const char *ks = json_string_value(k);
        if (!json_is_string(k) || strlen(ks) < 1 || strlen(ks) > JM_IDEM_MAX)
            return bad(err, px, "idempotency_key", "must be a string of 1-256 characters");
        if ((spec->idem_key = strdup(ks)) == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    const json_t *u = json_object_get(body, "unique_key");
    bool has_window;
    if ((rc = get_seconds_ms(body, px, "unique_for_s", 0.001, JM_TTL_MAX_S, &spec->unique_for_ms,
                             &has_window, err)) != JM_OK)
        return rc;
    if (u != NULL && !json_is_null(u)) {
        const char *us = json_string_value(u);
        if (!json_is_string(u) || strlen(us) < 1 || strlen(us) > JM_IDEM_MAX)
            return bad(err, px, "unique_key", "must be a string of 1-256 characters");
        if ((spec->unique_key = strdup(us)) == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    } else if (has_window) {
        return bad(err, px, "unique_for_s", "needs a unique_key");
    }
    return JM_OK;
}

/* ---- job record ---- */

void
jm_job_clear(jm_job *job)
{
    free(job->type);
    free(job->payload);
    free(job->result);
    free(job->error);
    free(job->progress);
    free(job->worker);
    free(job->idem_key);
    memset(job, 0, sizeof(*job));
    job->status = JM_STATE_UNKNOWN;
}

static int
dup_into(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    return *dst != NULL ? JM_OK : JM_ERR_NOMEM;
}

int
jm_job_from_hash(jm_job *job, const char *id, const char *const *fv, size_t n, jm_error *err)
{
    memset(job, 0, sizeof(*job));
    job->status = JM_STATE_UNKNOWN;
    if (n == 0)
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "job %s not found", id);
    snprintf(job->id, sizeof(job->id), "%s", id);
    int rc = JM_OK;
    for (size_t i = 0; i + 1 < n && rc == JM_OK; i += 2) {
        const char *f = fv[i], *v = fv[i + 1];
        if (strcmp(f, "queue") == 0)
            snprintf(job->queue, sizeof(job->queue), "%s", v);
        else if (strcmp(f, "type") == 0)
            rc = dup_into(&job->type, v);
        else if (strcmp(f, "payload") == 0)
            rc = dup_into(&job->payload, v);
        else if (strcmp(f, "result") == 0)
            rc = dup_into(&job->result, v);
        else if (strcmp(f, "error") == 0)
            rc = dup_into(&job->error, v);
        else if (strcmp(f, "progress") == 0)
            rc = dup_into(&job->progress, v);
        else if (strcmp(f, "worker") == 0)
            rc = v[0] ? dup_into(&job->worker, v) : JM_OK;
        else if (strcmp(f, "idem") == 0)
            rc = v[0] ? dup_into(&job->idem_key, v) : JM_OK;
        else if (strcmp(f, "status") == 0)
            job->status = jm_state_parse(v);
        else if (strcmp(f, "attempts") == 0)
            job->attempts = atoi(v);
        else if (strcmp(f, "max_attempts") == 0)
            job->max_attempts = atoi(v);
        else if (strcmp(f, "priority") == 0)
            job->priority = atoi(v);
        else if (strcmp(f, "timeout_s") == 0)
            job->timeout_s = atoi(v);
        else if (strcmp(f, "result_ttl") == 0)
            job->result_ttl_s = atoi(v);
        else if (strcmp(f, "fence") == 0)
            job->fence = strtoll(v, NULL, 10);
        else if (strcmp(f, "cancel") == 0)
            job->cancel_requested = strcmp(v, "1") == 0;
        else if (strcmp(f, "created") == 0)
            job->created_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "run_at") == 0)
            job->run_at_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "started") == 0)
            job->started_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "finished") == 0)
            job->finished_ms = strtoll(v, NULL, 10);
        else if (strcmp(f, "batch") == 0)
            snprintf(job->batch, sizeof(job->batch), "%s", v);
        else if (strcmp(f, "expires_at") == 0)
            job->expires_ms = strtoll(v, NULL, 10);
    }
    if (rc != JM_OK) {
        jm_job_clear(job);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    if (job->status == JM_STATE_UNKNOWN || job->type == NULL) {
        jm_job_clear(job);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "job %s: malformed record", id);
    }
    return JM_OK;
}

json_t *
jm_json_parse_text(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *v = jm_json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return v != NULL ? v : json_null();
}

json_t *
jm_ms_to_json(int64_t ms)
{
    return ms > 0 ? json_real((double)ms / 1000.0) : json_null();
}

static json_t *
str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *
jm_job_to_json(const jm_job *job)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_string(job->id));
    json_object_set_new(o, "queue", json_string(job->queue));
    json_object_set_new(o, "type", str_or_null(job->type));
    json_object_set_new(o, "status", json_string(jm_state_name(job->status)));
    json_object_set_new(o, "attempts", json_integer(job->attempts));
    json_object_set_new(o, "max_attempts", json_integer(job->max_attempts));
    json_object_set_new(o, "priority", json_integer(job->priority));
    json_object_set_new(o, "payload", jm_json_parse_text(job->payload));
    json_object_set_new(o, "result", jm_json_parse_text(job->result));
    json_object_set_new(o, "error", str_or_null(job->error));
    json_object_set_new(o, "progress", jm_json_parse_text(job->progress));
    json_object_set_new(o, "worker", str_or_null(job->worker));
    json_object_set_new(o, "fence", job->fence > 0 ? json_integer(job->fence) : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(job->cancel_requested));
    json_object_set_new(o, "timeout_s",
                        job->timeout_s > 0 ? json_integer(job->timeout_s) : json_null());
    json_object_set_new(o, "created_at", jm_ms_to_json(job->created_ms));
    json_object_set_new(o, "run_at", jm_ms_to_json(job->run_at_ms));
    json_object_set_new(o, "started_at", jm_ms_to_json(job->started_ms));
    json_object_set_new(o, "finished_at", jm_ms_to_json(job->finished_ms));
    json_object_set_new(o, "expires_at", jm_ms_to_json(job->expires_ms));
    json_object_set_new(o, "batch", job->batch[0] != '\0' ? json_string(job->batch) : json_null());
    return o;
}
