/* request.c - reading a request: framing checks, the path (decoded here, not
 * by civetweb), the body (size limit, media type), query parameters and JSON
 * parsing.
 *
 * The size limit (cfg.api_max_body_bytes) is enforced twice: on the declared
 * Content-Length before a byte is read, and on the bytes actually read (a
 * chunked body declares nothing), so no request can make the api buffer more
 * than the limit plus one read. Each read asks for at most API_READ_CHUNK,
 * and the body must keep up a chunk per api.request_timeout_ms (civetweb's
 * request_timeout_ms bounds the headers and each read and write stall), so a
 * slow client holds a server thread about that long, not indefinitely.
 *
 * Bodies are parsed through libshared's jm_json_loadb, which refuses nesting
 * deeper than JM_JSON_MAX_DEPTH before jansson recurses on this civetweb
 * thread's small stack (400 bad_json naming the limit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "api.h"
#include "jobmill/clock.h"
#include "jobmill/json.h"

#define API_READ_CHUNK 65536

/* is_tchar: RFC 9110 token characters (a header name is a token). */
static bool
is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
all_digits(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int
api_req_check_framing(api_req *req)
{
    const struct mg_request_info *ri = req->ri;
    const char *clen = NULL, *idem = NULL;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name, *value = ri->http_headers[i].value;
        bool token = name != NULL && name[0] != '\0';
        for (const char *p = name; token && *p != '\0'; p++)
            token = is_tchar((unsigned char)*p);
        if (!token)
            return api_send_error(req, 400, "invalid_field", "headers",
                                  "a header name must be a token (no spaces, not empty)");
        if (strcasecmp(name, "Content-Length") == 0) {
            if (!all_digits(value) || (clen != NULL && strcmp(clen, value) != 0))
                return api_send_error(req, 400, "invalid_field", "Content-Length",
                                      "Content-Length must be one decimal number");
            clen = value;
        } else if (strcasecmp(name, "Idempotency-Key") == 0) {
            if (idem != NULL)
                return api_send_error(req, 400, "invalid_field", "Idempotency-Key",
                                      "give the Idempotency-Key header once");
            idem = value;
            for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
                if (*p < 0x21 || *p > 0x7e)
                    return api_send_error(req, 400, "invalid_field", "Idempotency-Key",
                                          "the Idempotency-Key header takes printable ASCII "
                                          "without spaces (use the body's idempotency_key "
                                          "for other characters)");
        }
    }
    const char *q = ri->query_string;
    for (const char *p = q; p != NULL && (p = strchr(p, '%')) != NULL; p++)
        if (p[1] == '0' && p[2] == '0')
            return api_send_error(req, 400, "invalid_field", "query",
                                  "a query value must not hold a NUL byte");
    return 0;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
api_req_decode_path(api_req *req, char *out, size_t len)
{
    const char *in = req->ri->local_uri != NULL ? req->ri->local_uri : "";
    size_t n = 0;
    for (const char *p = in; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            int hi = hex_value(p[1]), lo = hi >= 0 ? hex_value(p[2]) : -1;
            if (lo < 0)
                return api_send_error(req, 400, "invalid_field", "path",
                                      "a %% in the path must start an escape %%XX");
            c = (unsigned char)(hi * 16 + lo);
            if (c == '\0')
                return api_send_error(req, 400, "invalid_field", "path",
                                      "the path must not hold a NUL byte (%%00)");
            if (c == '/')
                return api_send_error(req, 400, "invalid_field", "path",
                                      "the path must not hold an encoded slash (%%2F)");
            p += 2;
        }
        if (n + 1 >= len)
            return api_send_error(req, 404, "not_found", NULL, "no route for a path that long");
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* media_is_json accepts "application/json" with optional parameters
 * ("; charset=utf-8"), case-insensitively. */
static bool
media_is_json(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    const char *rest = ct + sizeof(want) - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static bool
is_chunked(const api_req *req)
{
    const char *te = mg_get_header(req->conn, "Transfer-Encoding");
    for (const char *p = te; p != NULL && *p != '\0'; p++)
        if (strncasecmp(p, "chunked", 7) == 0)
            return true;
    return false;
}

int
api_req_read_body(api_req *req)
{
    long long declared = req->ri->content_length;
    long long max = req->app->cfg->api_max_body_bytes;
    bool chunked = declared < 0 && is_chunked(req);
    if (declared > max)
        return api_send_error(req, 413, "too_large", NULL,
                              "request body of %lld bytes is over the limit of %lld bytes",
                              declared, max);
    if (declared <= 0 && !chunked)
        return 0; /* no body */
    if (!media_is_json(mg_get_header(req->conn, "Content-Type")))
        return api_send_error(req, 415, "unsupported_media_type", NULL,
                              "a request body must have Content-Type: application/json");

    size_t cap = declared > 0 ? (size_t)declared + 1 : API_READ_CHUNK;
    char *buf = malloc(cap);
    if (buf == NULL)
        return api_send_error(req, 500, "internal", NULL, "out of memory");
    size_t len = 0;
    int64_t t0 = jm_clock_ms(), limit_ms = req->app->cfg->api_request_timeout_ms;
    api_readwatch_slot watch;
    api_readwatch_begin(req->app->readwatch, &watch, req->ri, t0 + limit_ms);
    bool slow = false;
    while (declared <= 0 || (long long)len < declared) {
        if (len + 1 >= cap) {
            if ((long long)len > max)
                break;
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                return api_send_error(req, 500, "internal", NULL, "out of memory");
            }
            buf = nb, cap = ncap;
        }
        size_t want = cap - 1 - len < API_READ_CHUNK ? cap - 1 - len : API_READ_CHUNK;
        int n = mg_read(req->conn, buf + len, want);
        if (n <= 0)
            break;
        len += (size_t)n;
        if ((long long)len > max)
            break;
        /* a minimum rate: a chunk per request timeout, so a client
         * trickling its body cannot hold this thread for long (the
         * watchdog ends an mg_read that waits past the deadline) */
        int64_t deadline = t0 + limit_ms * (1 + (int64_t)(len / API_READ_CHUNK));
        if (jm_clock_ms() > deadline) {
            slow = true;
            break;
        }
        api_readwatch_extend(req->app->readwatch, &watch, deadline);
    }
    if (api_readwatch_end(req->app->readwatch, &watch))
        slow = true;
    if (slow) {
        free(buf);
        return api_send_error(req, 400, "bad_json", NULL,
                              "request body too slow: %zu bytes in %lld ms (the api takes at "
                              "least %d KiB per api.request_timeout_ms)",
                              len, (long long)(jm_clock_ms() - t0), API_READ_CHUNK / 1024);
    }
    if ((long long)len > max) {
        free(buf);
        return api_send_error(req, 413, "too_large", NULL,
                              "request body is over the limit of %lld bytes", max);
    }
    if (declared > 0 && (long long)len < declared) {
        free(buf);
        return api_send_error(req, 400, "bad_json", NULL,
                              "request body ended after %zu of %lld bytes", len, declared);
    }
    buf[len] = '\0';
    req->body = buf;
    req->body_len = len;
    return 0;
}

int
api_req_query(const api_req *req, const char *name, char *buf, size_t len)
{
    const char *q = req->ri->query_string;
    if (q == NULL)
        return 0;
    int n = mg_get_var(q, strlen(q), name, buf, len);
    if (n == -1)
        return 0;
    if (n < 0)
        return -1;
    return 1;
}

json_t *
api_req_parse_json(api_req *req, int *status)
{
    if (req->body == NULL || req->body_len == 0) {
        *status = api_send_error(req, 400, "bad_json", NULL, "the request body is empty");
        return NULL;
    }
    json_error_t jerr;
    json_t *v = jm_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL && jm_json_error_is_depth(&jerr))
        *status = api_send_error(req, 400, "bad_json", NULL, "JSON %s at line %d column %d",
                                 jerr.text, jerr.line, jerr.column);
    else if (v == NULL)
        *status =
            api_send_error(req, 400, "bad_json", NULL, "malformed JSON at line %d column %d: %s",
                           jerr.line, jerr.column, jerr.text);
    return v;
}
