/* joblog.c - a job's log lines: append and read (see joblog.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/joblog.h"
#include "call.h"
#include "reply.h"

int
jm_joblog_append(jm_redis *r, const char *id, const char *lease, const char *const *lines,
                 const size_t *lens, size_t n, const char *progress, const jm_joblog_limits *lim,
                 long long *total, jm_error *err)
{
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, "id", "not a job id");
    char smax[24], sbytes[24];
    snprintf(smax, sizeof(smax), "%d", lim->max_lines > 0 ? lim->max_lines : 1);
    snprintf(sbytes, sizeof(sbytes), "%d", lim->max_line_bytes > 0 ? lim->max_line_bytes : 1);
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    jm_call_arg(&c, id);
    jm_call_arg(&c, lease != NULL ? lease : "");
    jm_call_arg(&c, smax);
    jm_call_arg(&c, sbytes);
    jm_call_arg(&c, progress != NULL ? progress : "");
    size_t na = (size_t)c.nargs + n;
    const char **args = malloc(sizeof(*args) * na);
    size_t *al = malloc(sizeof(*al) * na);
    if (args == NULL || al == NULL) {
        free(args);
        free(al);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    memcpy(args, c.args, sizeof(*args) * (size_t)c.nargs);
    memcpy(al, c.lens, sizeof(*al) * (size_t)c.nargs);
    for (size_t i = 0; i < n; i++) {
        args[(size_t)c.nargs + i] = lines[i];
        al[(size_t)c.nargs + i] = lens[i];
    }
    const char *keys[1] = {c.slot};
    redisReply *rep = jm_redis_eval(r, err, "log_append", 1, keys, (int)na, args, al);
    free(args);
    free(al);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_INTEGER) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "log_append: unexpected reply type");
    } else if (rep->integer < 0) {
        rc = jm_error_set(err, JM_ERR_FENCE, NULL,
                          "job %s: the claim with lease %s is no longer current", id,
                          lease != NULL ? lease : "");
    } else if (total != NULL) {
        *total = rep->integer;
    }
    freeReplyObject(rep);
    return rc;
}

/* parse_line splits "<ms> <text>" into l. */
static void
parse_line(const redisReply *e, jm_joblog_line *l)
{
    l->ts_ms = 0;
    l->text = "";
    l->len = 0;
    if (e->type != REDIS_REPLY_STRING)
        return;
    const char *sp = memchr(e->str, ' ', e->len);
    if (sp == NULL) {
        l->text = e->str;
        l->len = e->len;
        return;
    }
    for (const char *p = e->str; p < sp && *p >= '0' && *p <= '9'; p++)
        l->ts_ms = l->ts_ms * 10 + (*p - '0');
    l->text = sp + 1;
    l->len = e->len - (size_t)(sp + 1 - e->str);
}

int
jm_joblog_read(jm_redis *r, const char *id, long long since, int max, jm_joblog_page *page,
               jm_error *err)
{
    memset(page, 0, sizeof(*page));
    page->status = JM_STATE_UNKNOWN;
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "job %s not found", id);
    if (max < 1)
        max = 1;
    if (max > JM_JOBLOG_READ_MAX)
        max = JM_JOBLOG_READ_MAX;
    char ssince[24], smax[24];
    snprintf(ssince, sizeof(ssince), "%lld", since < 0 ? 0 : since);
    snprintf(smax, sizeof(smax), "%d", max);
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    jm_call_arg(&c, id);
    jm_call_arg(&c, ssince);
    jm_call_arg(&c, smax);
    redisReply *rep = jm_call_run(r, &c, "logs_read", err);
    if (rep == NULL)
        return jm__err_code(err);
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "logs_read: unexpected reply type");
    }
    if (rep->elements < 3) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "job %s not found", id);
    }
    page->status = jm_state_parse(jm__reply_str(rep->element[0]));
    page->next = jm__reply_ll(rep->element[1]);
    page->first = jm__reply_ll(rep->element[2]);
    page->n = rep->elements - 3;
    if (page->n > 0) {
        page->lines = calloc(page->n, sizeof(*page->lines));
        if (page->lines == NULL) {
            freeReplyObject(rep);
            memset(page, 0, sizeof(*page));
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
        for (size_t i = 0; i < page->n; i++) {
            parse_line(rep->element[3 + i], &page->lines[i]);
            page->lines[i].n = page->first + (long long)i;
        }
    }
    page->reply = rep;
    return JM_OK;
}

void
jm_joblog_page_clear(jm_joblog_page *page)
{
    if (page->reply != NULL)
        freeReplyObject(page->reply);
    free(page->lines);
    memset(page, 0, sizeof(*page));
}

/* seq_len returns the length of the valid UTF-8 sequence at s (n bytes
 * left), or 0 when it is not one (overlongs, surrogates and code points
 * past U+10FFFF included). */
static size_t
seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t k;
    unsigned cp;
    if ((c & 0xE0) == 0xC0)
        k = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        k = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

char *
jm_joblog_utf8(const char *s, size_t len, size_t *out_len)
{
    /* at worst each byte becomes the 3 bytes of U+FFFD */
    char *o = malloc(len * 3 + 1);
    if (o == NULL)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t q = seq_len(u + i, len - i);
        if (q == 0) {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
            continue;
        }
        memcpy(o + k, u + i, q);
        k += q;
        i += q;
    }
    o[k] = '\0';
    if (out_len != NULL)
        *out_len = k;
    return o;
}
