/* job_json.c - a job's JSON written straight into a jm_text (see job.h):
 * the same object jm_job_to_json builds, without building it. A batch
 * answer of 1,000 jobs spent most of the api's CPU making, dumping and
 * freeing jansson values; this writes each field once.
 *
 * The stored JSON texts (payload, result, progress) were written by jansson
 * (compact), so they are copied as they are once a scan has checked that
 * jansson would print them back byte for byte: valid JSON at most
 * JM_JSON_MAX_DEPTH deep, no fractional or exponent numbers (responses print
 * reals with 16 significant digits, records keep 17), no \u escapes, no
 * whitespace between tokens (the compact form has none). Any other text goes
 * through jansson as jm_job_to_json would, so the two never differ
 * (tests/unit/test_job_json.c). One difference remains by design: an object
 * with a repeated key (never written by jansson) is copied with both, where
 * jansson keeps the last.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/job.h"
#include "jobmill/json.h"
#include "jobmill/text.h"

typedef struct scan {
    const char *p;
    int depth;
} scan;

/* string scans a JSON string at s->p ('"') that jansson would print back
 * byte for byte: valid UTF-8, no control characters, and no escapes but
 * those jansson writes itself (\" \\ \b \f \n \r \t; a \u or \/ it would
 * print differently). */
static bool
string(scan *s)
{
    const unsigned char *p = (const unsigned char *)s->p + 1;
    for (;;) {
        if (*p == '"') {
            s->p = (const char *)p + 1;
            return true;
        }
        if (*p < 0x20)
            return false; /* control character or the end of the text */
        if (*p == '\\') {
            p++;
            if (*p == '\0' || strchr("\"\\bfnrt", *p) == NULL)
                return false;
            p++;
            continue;
        }
        size_t n = jm_text_utf8_len(p);
        if (n == 0)
            return false;
        p += n;
    }
}

/* integer scans a JSON number jansson prints back as it is: an integer of
 * at most 18 digits (so it fits json_int_t) and not "-0" (printed "0"). */
static bool
integer(scan *s)
{
    const char *p = s->p;
    bool minus = *p == '-';
    if (minus)
        p++;
    const char *digits = p;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.' || *p == 'e' || *p == 'E')
        return false; /* a real: jansson reprints it */
    if (p - digits > 18 || (minus && *digits == '0'))
        return false;
    s->p = p;
    return true;
}

static bool value(scan *s);

/* items scans the members of an object or array opened at s->p. */
static bool
items(scan *s, char close, bool object)
{
    if (++s->depth > JM_JSON_MAX_DEPTH)
        return false;
    s->p++;
    if (*s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        if (object) {
            if (*s->p != '"' || !string(s))
                return false;
            if (*s->p++ != ':')
                return false;
        }
        if (!value(s))
            return false;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p++ != close)
            return false;
        s->depth--;
        return true;
    }
}

static bool
literal(scan *s, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool
value(scan *s)
{
    bool ok;
    switch (*s->p) {
    case '{': ok = items(s, '}', true); break;
    case '[': ok = items(s, ']', false); break;
    case '"': ok = string(s); break;
    case 't': ok = literal(s, "true"); break;
    case 'f': ok = literal(s, "false"); break;
    case 'n': ok = literal(s, "null"); break;
    default: ok = integer(s); break;
    }
    return ok;
}

/* copyable tells whether text can be copied into an answer as it is. */
static bool
copyable(const char *text)
{
    scan s = {text, 0};
    return value(&s) && *s.p == '\0';
}

/* json_text appends a stored JSON text (NULL = null). */
static void
json_text(jm_text *t, const char *text)
{
    if (text == NULL) {
        jm_text_puts(t, "null");
        return;
    }
    if (copyable(text)) {
        jm_text_puts(t, text);
        return;
    }
    json_t *v = jm_json_parse_text(text);
    char *out = json_dumps(v, JM_JSON_DUMP_FLAGS);
    json_decref(v);
    if (out == NULL) {
        t->failed = true;
        return;
    }
    jm_text_puts(t, out);
    free(out);
}

static void
str_or_null(jm_text *t, const char *s)
{
    if (s != NULL)
        jm_text_json_string(t, s);
    else
        jm_text_puts(t, "null");
}

/* ms_json appends epoch ms as seconds with a millisecond fraction, as
 * jansson prints json_real(ms / 1000.0) with 16 digits ("12.5", "12.0"),
 * or null for 0. */
static void
ms_json(jm_text *t, int64_t ms)
{
    char b[48];
    if (ms <= 0) {
        jm_text_puts(t, "null");
        return;
    }
    int frac = (int)(ms % 1000);
    int n = snprintf(b, sizeof(b), "%" PRId64 ".%03d", ms / 1000, frac);
    while (n > 0 && b[n - 1] == '0' && b[n - 2] != '.')
        b[--n] = '\0';
    jm_text_add(t, b, (size_t)n);
}

static void
int_json(jm_text *t, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    jm_text_add(t, b, (size_t)n);
}

void
jm_job_json_write(jm_text *t, const jm_job *job)
{
    jm_text_puts(t, "{\"id\":");
    jm_text_json_string(t, job->id);
    jm_text_puts(t, ",\"queue\":");
    jm_text_json_string(t, job->queue);
    jm_text_puts(t, ",\"type\":");
    str_or_null(t, job->type);
    jm_text_puts(t, ",\"status\":\"");
    jm_text_puts(t, jm_state_name(job->status));
    jm_text_puts(t, "\",\"attempts\":");
    int_json(t, job->attempts);
    jm_text_puts(t, ",\"max_attempts\":");
    int_json(t, job->max_attempts);
    jm_text_puts(t, ",\"priority\":");
    int_json(t, job->priority);
    jm_text_puts(t, ",\"payload\":");
    json_text(t, job->payload);
    jm_text_puts(t, ",\"result\":");
    json_text(t, job->result);
    jm_text_puts(t, ",\"error\":");
    str_or_null(t, job->error);
    jm_text_puts(t, ",\"progress\":");
    json_text(t, job->progress);
    jm_text_puts(t, ",\"worker\":");
    str_or_null(t, job->worker);
    jm_text_puts(t, ",\"fence\":");
    if (job->fence > 0)
        int_json(t, job->fence);
    else
        jm_text_puts(t, "null");
    jm_text_puts(t, job->cancel_requested ? ",\"cancel_requested\":true"
                                          : ",\"cancel_requested\":false");
    jm_text_puts(t, ",\"timeout_s\":");
    if (job->timeout_s > 0)
        int_json(t, job->timeout_s);
    else
        jm_text_puts(t, "null");
    jm_text_puts(t, ",\"created_at\":");
    ms_json(t, job->created_ms);
    jm_text_puts(t, ",\"run_at\":");
    ms_json(t, job->run_at_ms);
    jm_text_puts(t, ",\"started_at\":");
    ms_json(t, job->started_ms);
    jm_text_puts(t, ",\"finished_at\":");
    ms_json(t, job->finished_ms);
    jm_text_puts(t, ",\"expires_at\":");
    ms_json(t, job->expires_ms);
    jm_text_puts(t, ",\"batch\":");
    str_or_null(t, job->batch[0] != '\0' ? job->batch : NULL);
    jm_text_putc(t, '}');
}
