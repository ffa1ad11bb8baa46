/* logs.c - GET /v1/jobs/{id}/logs: a job's log lines (libshared joblog.h),
 * paged with ?since=N&limit=M, or followed with ?follow=1 as server-sent
 * events until the job ends. (POST /v1/jobs/{id}/logs, an HTTP worker's
 * append under its lease token, is in leases.c.)
 *
 * A follower holds no Redis connection of its own while it waits: it
 * registers a waiter on the job id (waiters.h, the process's one pub/sub
 * subscriber thread), marks the job watched (watch.lua), then reads pages
 * from its line number on. log_append.lua publishes a watched job's id on
 * the done channel with every append, and terminal() when the job ends, so
 * an append made through any api replica or worker wakes the follower on
 * every replica. A waiter's wake-up is sticky: lines appended between a
 * read and the next wait are not missed. Every API_FOLLOW_BEAT_MS without
 * news the stream gets a comment (": keepalive", which also finds a client
 * that went away) and the job is read again, which also covers a message
 * lost while the subscription was being re-established.
 *
 * The stream ends with an "end" event ({"status","next","reason"}) when
 * the job is terminal and every line is sent (reason "finished"), after
 * logs.follow_max_s (reason "timeout"), when the api stops (reason
 * "shutdown") or when the job's record is gone ("gone"). At most
 * logs.follow_max streams run at once per api process, and each also holds
 * one of the long-poll slots (api.max_waiters); beyond either the request
 * gets 503 with Retry-After.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api.h"
#include "jobmill/clock.h"
#include "jobmill/joblog.h"
#include "jobmill/text.h"
#include "waiters.h"

#define API_FOLLOW_BEAT_MS 5000  /* keepalive comment and re-read period */
#define API_FOLLOW_RETRY_MS 1000 /* a failed read is retried this soon */

/* query_count reads ?name= as an integer from lo to hi into *out (def when
 * absent). Returns 0, or -1 when it is malformed or out of range. */
static int
query_count(const api_req *req, const char *name, long long lo, long long hi, long long def,
            long long *out)
{
    char buf[32];
    *out = def;
    int got = api_req_query(req, name, buf, sizeof(buf));
    if (got == 0)
        return 0;
    if (got < 0 || buf[0] == '\0' || strspn(buf, "0123456789") != strlen(buf) || strlen(buf) > 18)
        return -1;
    long long v = strtoll(buf, NULL, 10);
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* line_json appends {"n","ts","line"} for l to t; the line made valid UTF-8. */
static void
line_json(jm_text *t, const jm_joblog_line *l)
{
    char num[64];
    snprintf(num, sizeof(num), "{\"n\":%lld,\"ts\":%lld.%03lld,\"line\":", l->n,
             (long long)(l->ts_ms / 1000), (long long)(l->ts_ms % 1000));
    jm_text_puts(t, num);
    char *u = jm_joblog_utf8(l->text, l->len, NULL);
    if (u == NULL) {
        t->failed = true;
        return;
    }
    jm_text_json_string(t, u);
    free(u);
    jm_text_putc(t, '}');
}

/* send_page answers one page as JSON. */
static int
send_page(api_req *req, const jm_joblog_page *p)
{
    jm_text t = JM_TEXT_INIT;
    jm_text_puts(&t, "{\"id\":");
    jm_text_json_string(&t, req->param);
    jm_text_puts(&t, ",\"status\":");
    jm_text_json_string(&t, jm_state_name(p->status));
    jm_text_puts(&t, ",\"lines\":[");
    for (size_t i = 0; i < p->n; i++) {
        if (i > 0)
            jm_text_putc(&t, ',');
        line_json(&t, &p->lines[i]);
    }
    char tail[96];
    /* next: the since of the next page (more may be there already) */
    snprintf(tail, sizeof(tail), "],\"first\":%lld,\"next\":%lld,\"total\":%lld}", p->first,
             p->first + (long long)p->n, p->next);
    jm_text_puts(&t, tail);
    return api_send_json_text(req, 200, &t, NULL);
}

/* sse_write sends len bytes of the stream; false when the client is gone. */
static bool
sse_write(api_req *req, const char *s, size_t len)
{
    return len == 0 || mg_write(req->conn, s, len) == (int)len;
}

/* sse_lines sends p's lines as "line" events (id: the line's number, so an
 * EventSource resumes with Last-Event-ID). false when the client is gone. */
static bool
sse_lines(api_req *req, const jm_joblog_page *p)
{
    if (p->n == 0)
        return true;
    jm_text t = JM_TEXT_INIT;
    for (size_t i = 0; i < p->n; i++) {
        char head[64];
        snprintf(head, sizeof(head), "event: line\nid: %lld\ndata: ", p->lines[i].n);
        jm_text_puts(&t, head);
        line_json(&t, &p->lines[i]);
        jm_text_puts(&t, "\n\n");
    }
    size_t len = 0;
    char *s = jm_text_take(&t, &len);
    bool ok = s != NULL && sse_write(req, s, len);
    free(s);
    return ok;
}

static void
sse_end(api_req *req, jm_state st, long long next, const char *reason)
{
    char buf[192];
    int n = snprintf(buf, sizeof(buf),
                     "event: end\ndata: {\"status\":\"%s\",\"next\":%lld,\"reason\":\"%s\"}\n\n",
                     jm_state_name(st), next, reason);
    if (n > 0 && (size_t)n < sizeof(buf))
        sse_write(req, buf, (size_t)n);
}

/* follow streams job id's lines from since on (see the top of the file). */
static int
follow(api_req *req, long long since)
{
    api_app *app = req->app;
    api_waiter w;
    memset(&w, 0, sizeof(w));
    int max = app->cfg->logs_follow_max;
    if (atomic_fetch_add(&app->followers, 1) >= max) {
        atomic_fetch_sub(&app->followers, 1);
        static const char *const retry[] = {"Retry-After", "5", NULL};
        return api_send_error_h(req, 503, retry, "unavailable", NULL,
                                "too many log followers on this api (logs.follow_max %d)", max);
    }
    if (!api_waiters_add(app->waiters, &w, req->param)) {
        atomic_fetch_sub(&app->followers, 1);
        static const char *const retry[] = {"Retry-After", "5", NULL};
        return api_send_error_h(req, 503, retry, "unavailable", NULL,
                                "no long-poll slot is free (api.max_waiters)");
    }
    /* the first read marks the job watched: appends and its end publish */
    jm_error err;
    jm_error_clear(&err);
    jm_job job;
    int rc = jm_queue_watch(req->redis, req->param, &job, &err);
    int status;
    if (rc != JM_OK) {
        status = rc == JM_ERR_NOT_FOUND
                     ? api_send_error(req, 404, "not_found", NULL, "job %s not found", req->param)
                     : api_send_jm_error(req, &err, "logs");
        goto done;
    }
    jm_job_clear(&job);
    mg_disable_connection_keep_alive(req->conn);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nConnection: close\r\n"
                               "X-Accel-Buffering: no\r\n\r\n: following\n\n";
    status = 200;
    if (!sse_write(req, head, sizeof(head) - 1))
        goto done;
    int64_t end_at = jm_clock_ms() + (int64_t)app->cfg->logs_follow_max_s * 1000;
    long long next = since;
    jm_state st = JM_STATE_UNKNOWN;
    for (;;) {
        jm_joblog_page p;
        int64_t wake = jm_clock_ms() + API_FOLLOW_BEAT_MS;
        jm_error_clear(&err);
        rc = jm_joblog_read(req->redis, req->param, next, JM_JOBLOG_READ_MAX, &p, &err);
        if (rc == JM_ERR_NOT_FOUND) {
            sse_end(req, st, next, "gone");
            break;
        }
        if (rc == JM_OK) {
            bool ok = sse_lines(req, &p);
            bool more = p.n == JM_JOBLOG_READ_MAX;
            if (p.n > 0)
                next = p.first + (long long)p.n;
            st = p.status;
            jm_joblog_page_clear(&p);
            if (!ok)
                break;
            if (more)
                continue;
            if (jm_state_terminal(st)) {
                sse_end(req, st, next, "finished");
                break;
            }
        } else {
            wake = jm_clock_ms() + API_FOLLOW_RETRY_MS; /* Redis trouble: look again soon */
        }
        if (jm_clock_ms() >= end_at) {
            sse_end(req, st, next, "timeout");
            break;
        }
        api_wait_result res = api_waiters_wait(app->waiters, &w, wake < end_at ? wake : end_at);
        if (res == API_WAIT_STOP) {
            sse_end(req, st, next, "shutdown");
            break;
        }
        if (res == API_WAIT_TIMEOUT && !sse_write(req, ": keepalive\n\n", 13))
            break;
    }
done:
    api_waiters_remove(app->waiters, &w);
    atomic_fetch_sub(&app->followers, 1);
    return status;
}

int
api_jobs_logs(api_req *req)
{
    if (!jm_id_valid(req->param))
        return api_send_error(req, 404, "not_found", NULL, "job %s not found", req->param);
    long long since, limit, fol;
    if (query_count(req, "since", 0, 999999999999999LL, -1, &since) != 0)
        return api_send_error(req, 400, "invalid_field", "since",
                              "since must be a line number (an integer from 0)");
    if (query_count(req, "limit", 1, JM_JOBLOG_READ_MAX, JM_JOBLOG_READ_MAX, &limit) != 0)
        return api_send_error(req, 400, "invalid_field", "limit",
                              "limit must be an integer from 1 to %d", JM_JOBLOG_READ_MAX);
    if (query_count(req, "follow", 0, 1, 0, &fol) != 0)
        return api_send_error(req, 400, "invalid_field", "follow", "follow must be 0 or 1");
    if (since < 0) {
        /* an EventSource reconnecting says where it was */
        const char *last = fol ? mg_get_header(req->conn, "Last-Event-ID") : NULL;
        since = 0;
        if (last != NULL && last[0] != '\0' && strlen(last) <= 18 &&
            strspn(last, "0123456789") == strlen(last))
            since = strtoll(last, NULL, 10) + 1;
    }
    if (fol)
        return follow(req, since);
    jm_joblog_page p;
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_joblog_read(req->redis, req->param, since, (int)limit, &p, &err);
    if (rc == JM_ERR_NOT_FOUND)
        return api_send_error(req, 404, "not_found", NULL, "job %s not found", req->param);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "logs");
    int st = send_page(req, &p);
    jm_joblog_page_clear(&p);
    return st;
}
