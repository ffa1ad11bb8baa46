/* response.c - JSON responses and the contract's error objects.
 *
 * Every response carries Content-Type, Content-Length and Cache-Control:
 * no-store. Errors are {"error":{"code","message","field"?}} with the codes of
 * docs/api.md; Redis trouble (JM_ERR_REDIS, and error replies such as LOADING
 * while a restarted Redis reads its AOF) is 503 unavailable with
 * Retry-After: 1. 5xx answers are logged at warn.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "api.h"
#include "jobmill/text.h"
#include "jobmill/log.h"

#define API_JSON_TYPE "application/json"

/* has_token tells whether a comma list header (Connection) holds tok,
 * case-insensitively. */
static bool
has_token(const char *header, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = header; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p += n;
    }
    return false;
}

/* keep_alive decides whether the connection serves another request: the
 * client asked for it (HTTP/1.1 without "Connection: close", or an explicit
 * keep-alive), the answer is a success (an error may leave an unread body
 * behind), and the api is not stopping. Otherwise civetweb is told to close. */
static bool
keep_alive(api_req *req, int status)
{
    const char *conn = mg_get_header(req->conn, "Connection");
    const char *ver = req->ri->http_version;
    bool asked = conn != NULL ? has_token(conn, "keep-alive") && !has_token(conn, "close")
                              : ver != NULL && strcmp(ver, "1.1") == 0;
    bool keep = asked && status < 400 && !atomic_load(&req->app->stopping);
    if (!keep)
        mg_disable_connection_keep_alive(req->conn);
    return keep;
}

/* send_raw writes the status line, headers and body with ONE mg_write:
 * civetweb's header API sends every header line separately, which costs a
 * system call each (about a third of a submit's time). */
static int
send_raw(api_req *req, int status, const char *type, const char *body, size_t len,
         const char *const *hdrs)
{
    char head[2048], date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: %s\r\n",
                     status, mg_get_response_code_text(req->conn, status), date, type, len,
                     keep_alive(req, status) ? "keep-alive" : "close");
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL && hdrs[i + 1] != NULL; i += 2)
        if (n > 0 && (size_t)n < sizeof(head))
            n += snprintf(head + n, sizeof(head) - (size_t)n, "%s: %s\r\n", hdrs[i], hdrs[i + 1]);
    if (n < 0 || (size_t)n + 3 > sizeof(head))
        return status; /* headers are ours and short: cannot happen */
    memcpy(head + n, "\r\n", 2);
    size_t hl = (size_t)n + 2;
    char *buf = malloc(hl + len);
    if (buf == NULL) { /* two writes are still correct */
        mg_write(req->conn, head, hl);
        if (len > 0)
            mg_write(req->conn, body, len);
        return status;
    }
    memcpy(buf, head, hl);
    if (len > 0)
        memcpy(buf + hl, body, len);
    mg_write(req->conn, buf, hl + len);
    free(buf);
    return status;
}

int
api_send_text(api_req *req, int status, const char *type, const char *text, size_t len)
{
    return send_raw(req, status, type, text, len, NULL);
}

int
api_send_text_h(api_req *req, int status, const char *type, const char *text, size_t len,
                const char *const *hdrs)
{
    return send_raw(req, status, type, text, len, hdrs);
}

int
api_send_json(api_req *req, int status, json_t *body, const char *const *hdrs)
{
    if (body == NULL)
        body = json_object();
    char *text = body != NULL ? json_dumps(body, JM_JSON_DUMP_FLAGS) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return send_raw(req, 500, API_JSON_TYPE, oom, sizeof(oom) - 1, NULL);
    }
    send_raw(req, status, API_JSON_TYPE, text, strlen(text), hdrs);
    free(text);
    return status;
}

/* utf8_fix replaces every byte of s that is not part of a well-formed UTF-8
 * sequence with '?' (a message may echo a path or id of any bytes, or be cut
 * inside a character), so json_string always takes it. */
static void
utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p != '\0') {
        int n = *p < 0x80                           ? 1
                : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
                : (*p & 0xf0) == 0xe0               ? 3
                : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4
                                                    : 0;
        bool ok = n > 0;
        for (int k = 1; ok && k < n; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok && n == 3)
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* send_error_v builds and sends the error object; hdrs as in api_send_json. */
__attribute__((format(printf, 6, 0))) static int
send_error_v(api_req *req, int status, const char *code, const char *field, const char *const *hdrs,
             const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    utf8_fix(msg);
    if (status >= 500) {
        jm_log_warn("request failed", "route", req->route != NULL ? req->route->path : "",
                    JM_LOG_INT("status", status), "code", code, "error", msg, NULL);
    }
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    if (field != NULL && field[0] != '\0')
        json_object_set_new(e, "field", json_string(field));
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return api_send_json(req, status, o, hdrs);
}

int
api_send_error(api_req *req, int status, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = send_error_v(req, status, code, field, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int
api_send_error_h(api_req *req, int status, const char *const *hdrs, const char *code,
                 const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = send_error_v(req, status, code, field, hdrs, fmt, ap);
    va_end(ap);
    return rc;
}

int
api_send_jm_error(api_req *req, const jm_error *err, const char *op)
{
    static const char *const retry_after[] = {"Retry-After", "1", NULL};
    const char *msg = err->msg[0] != '\0' ? err->msg : jm_err_name(err->code);
    switch (err->code) {
    case JM_ERR_INVALID: return api_send_error(req, 400, "invalid_field", err->field, "%s", msg);
    case JM_ERR_LIMIT:
        return api_send_error(req, 400, "invalid_field", err->field[0] ? err->field : "queue", "%s",
                              msg);
    case JM_ERR_NOT_FOUND: return api_send_error(req, 404, "not_found", NULL, "%s", msg);
    case JM_ERR_STATE: return api_send_error(req, 409, "invalid_state", NULL, "%s", msg);
    case JM_ERR_DUPLICATE: return api_send_error(req, 409, "duplicate", err->field, "%s", msg);
    case JM_ERR_TOO_LARGE: return api_send_error(req, 413, "too_large", err->field, "%s", msg);
    case JM_ERR_REDIS:
    case JM_ERR_REPLY:
        jm_service_redis_error(req->app->svc, op);
        return api_send_error_h(req, 503, retry_after, "unavailable", NULL,
                                "redis is unavailable, retry later (%s)", msg);
    default: return api_send_error(req, 500, "internal", NULL, "%s", msg);
    }
}

int
api_send_json_text(api_req *req, int status, jm_text *t, const char *const *hdrs)
{
    size_t len = 0;
    char *text = jm_text_take(t, &len);
    if (text == NULL)
        return api_send_error(req, 500, "internal", NULL, "out of memory");
    send_raw(req, status, API_JSON_TYPE, text, len, hdrs);
    free(text);
    return status;
}

int
api_send_job_json(api_req *req, int status, const jm_job *job, const char *const *hdrs)
{
    jm_text t = JM_TEXT_INIT;
    jm_job_json_write(&t, job);
    return api_send_json_text(req, status, &t, hdrs);
}

int
api_send_job(api_req *req, int status, const char *id, const char *op)
{
    jm_job job;
    jm_error err;
    jm_error_clear(&err);
    if (jm_queue_get(req->redis, id, &job, &err) != JM_OK)
        return api_send_jm_error(req, &err, op);
    int rc = api_send_job_json(req, status, &job, NULL);
    jm_job_clear(&job);
    return rc;
}
