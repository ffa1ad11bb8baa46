/* logship.c - an exec handler's stderr and progress lines to Redis (see
 * logship.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jobmill/clock.h"
#include "jobmill/json.h"
#include "jobmill/log.h"
#include "logship.h"

#define WK_SHIP_MESSAGE_MAX 1024

void
wk_ship_init(wk_ship *s, wk_side *side, const jm_claim *claim, const jm_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->side = side;
    s->claim = claim;
    s->lim.max_lines = cfg->logs_max_lines;
    s->lim.max_line_bytes = cfg->logs_max_line_bytes;
    s->err.cap = (size_t)cfg->logs_max_line_bytes + 1;
    s->prog.cap = WK_SHIP_PROGRESS_LINE;
}

/* take_line adds the assembled stderr line to the batch (or counts it
 * dropped when the batch is full) and empties the buffer. */
static void
take_line(wk_ship *s)
{
    wk_ship_buf *b = &s->err;
    size_t len = b->len;
    if (len > 0 && b->buf[len - 1] == '\r' && !b->cut)
        len--;
    b->len = 0;
    b->cut = false;
    if (s->refused || s->side == NULL)
        return;
    if (s->lines == NULL) {
        s->lines = calloc(WK_SHIP_BATCH_LINES + 1, sizeof(*s->lines));
        s->lens = calloc(WK_SHIP_BATCH_LINES + 1, sizeof(*s->lens));
        if (s->lines == NULL || s->lens == NULL) {
            free(s->lines), free(s->lens);
            s->lines = NULL, s->lens = NULL;
            s->dropped++;
            return;
        }
    }
    char *copy = s->n < WK_SHIP_BATCH_LINES && s->bytes + len <= WK_SHIP_BATCH_BYTES
                     ? malloc(len > 0 ? len : 1)
                     : NULL;
    if (copy == NULL) {
        s->dropped++;
        return;
    }
    if (len > 0)
        memcpy(copy, b->buf, len);
    s->lines[s->n] = copy;
    s->lens[s->n++] = len;
    s->bytes += len;
}

/* feed appends n bytes to line buffer b, calling done(s) at each '\n'. */
static void
feed(wk_ship *s, wk_ship_buf *b, const char *buf, size_t n, void (*done)(wk_ship *))
{
    while (n > 0) {
        const char *nl = memchr(buf, '\n', n);
        size_t part = nl != NULL ? (size_t)(nl - buf) : n;
        if (!b->cut) {
            if (b->buf == NULL && (b->buf = malloc(b->cap)) == NULL)
                b->cut = true;
            size_t room = b->buf != NULL ? b->cap - b->len : 0;
            size_t take = part < room ? part : room;
            if (take > 0)
                memcpy(b->buf + b->len, buf, take);
            b->len += take;
            if (take < part)
                b->cut = true;
        }
        if (nl == NULL)
            return;
        done(s);
        buf += part + 1;
        n -= part + 1;
    }
}

void
wk_ship_stderr(wk_ship *s, const char *buf, size_t n)
{
    if (s->side != NULL && !s->refused)
        feed(s, &s->err, buf, n, take_line);
}

/* take_progress parses the assembled progress line; a good one becomes the
 * pending progress ({"progress":N} or {"progress":N,"message":"..."}). */
static void
take_progress(wk_ship *s)
{
    wk_ship_buf *b = &s->prog;
    size_t len = b->len;
    bool cut = b->cut;
    b->len = 0;
    b->cut = false;
    while (len > 0 && (b->buf[len - 1] == '\r' || b->buf[len - 1] == ' '))
        len--;
    if (len == 0 && !cut)
        return; /* blank lines are not worth a complaint */
    json_error_t je;
    json_t *v = cut ? NULL : jm_json_loadb(b->buf, len, 0, &je);
    const json_t *p = json_object_get(v, "progress");
    const json_t *m = json_object_get(v, "message");
    bool ok = json_is_object(v) && json_is_number(p) && json_number_value(p) >= 0 &&
              json_number_value(p) <= 100 &&
              (m == NULL || json_is_null(m) ||
               (json_is_string(m) && json_string_length(m) <= WK_SHIP_MESSAGE_MAX));
    if (!ok) {
        s->ignored++;
        if (s->side != NULL && s->side->m != NULL)
            wk_metric_bump(s->side->m->progress_ignored);
        json_decref(v);
        return;
    }
    json_t *stored = json_object();
    json_object_set(stored, "progress", (json_t *)p);
    if (m != NULL && !json_is_null(m))
        json_object_set(stored, "message", (json_t *)m);
    char *text = json_dumps(stored, JM_JSON_DUMP_FLAGS);
    json_decref(stored);
    json_decref(v);
    if (text != NULL) {
        free(s->progress);
        s->progress = text;
    }
}

void
wk_ship_progress(wk_ship *s, const char *buf, size_t n)
{
    if (s->side != NULL && !s->refused)
        feed(s, &s->prog, buf, n, take_progress);
}

int64_t
wk_ship_due(const wk_ship *s)
{
    if (s->n == 0 && s->dropped == 0 && s->progress == NULL)
        return 0;
    return s->next_flush > 0 ? s->next_flush : 1;
}

/* count_dropped adds n lines to the dropped counter. */
static void
count_dropped(wk_ship *s, long long n)
{
    if (n > 0 && s->side != NULL && s->side->m != NULL && s->side->m->log_lines_dropped != NULL)
        jm_metric_add(s->side->m->log_lines_dropped, (double)n);
}

/* clear_batch frees the batch's lines and the pending progress. */
static void
clear_batch(wk_ship *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->lines[i]);
    s->n = 0;
    s->bytes = 0;
    s->dropped = 0;
    free(s->progress);
    s->progress = NULL;
}

void
wk_ship_flush(wk_ship *s, int64_t now, bool final)
{
    if (final && s->err.len > 0)
        take_line(s); /* the last line had no newline */
    if (final && s->prog.len > 0)
        take_progress(s);
    int64_t due = wk_ship_due(s);
    if (due == 0 || (!final && now < due))
        return;
    if (s->refused || s->side == NULL) {
        count_dropped(s, (long long)s->n + s->dropped);
        clear_batch(s);
        return;
    }
    count_dropped(s, s->dropped);
    size_t lines = s->n;
    char note[64];
    if (s->dropped > 0) { /* the batch has a spare entry for this */
        if (s->lines == NULL) {
            s->lines = calloc(WK_SHIP_BATCH_LINES + 1, sizeof(*s->lines));
            s->lens = calloc(WK_SHIP_BATCH_LINES + 1, sizeof(*s->lens));
        }
        int k = snprintf(note, sizeof(note), "[jobmill: %lld lines dropped]", s->dropped);
        if (s->lines != NULL && s->lens != NULL) {
            s->lines[s->n] = strdup(note);
            s->lens[s->n] = (size_t)k;
            if (s->lines[s->n] != NULL)
                s->n++;
        }
    }
    jm_error err;
    jm_error_clear(&err);
    wk_side *side = s->side;
    pthread_mutex_lock(&side->mu);
    int rc = jm_joblog_append(side->r, s->claim->id, s->claim->lease, (const char *const *)s->lines,
                              s->lens, s->n, s->progress, &s->lim, NULL, &err);
    pthread_mutex_unlock(&side->mu);
    if (rc != JM_OK)
        count_dropped(s, (long long)lines);
    if (rc == JM_ERR_FENCE) {
        s->refused = true;
    } else if (rc != JM_OK) {
        jm_service_redis_error(side->svc, "logs");
        if (!s->warned)
            jm_log_warn("exec: job log lines lost (redis)", "job_id", s->claim->id, "error",
                        err.msg, NULL);
        s->warned = true;
    }
    clear_batch(s);
    s->next_flush = jm_clock_ms() + WK_SHIP_FLUSH_MS;
}

void
wk_ship_free(wk_ship *s)
{
    if (s->ignored > 0)
        jm_log_warn("exec: progress lines ignored (not {\"progress\":0-100,\"message\":...})",
                    "job_id", s->claim->id, JM_LOG_INT("lines", s->ignored), NULL);
    clear_batch(s);
    free(s->lines);
    free(s->lens);
    free(s->err.buf);
    free(s->prog.buf);
    memset(s, 0, sizeof(*s));
}
