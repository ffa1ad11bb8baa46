/* http.c - a minimal HTTP/1.1 client over a plain socket: one request per
 * connection (Connection: close), every step bounded by one deadline
 * (non-blocking connect, poll before each read and write). It reads bodies
 * framed by Content-Length, chunked transfer coding, or the end of the
 * connection. No TLS: the api speaks plain HTTP behind its ingress. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cli.h"
#include "jobmill/clock.h"

#define CLI_HTTP_MAX_RESPONSE (256u << 20) /* a listing of 1000 big jobs fits */

int
cli_url_parse(const char *url, cli_url *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    if (strncasecmp(url, "https://", 8) == 0)
        return jm_error_set(err, JM_ERR_INVALID, "url",
                            "https is not supported (%s): use http:// through a port-forward "
                            "or a local proxy",
                            url);
    if (strncasecmp(url, "http://", 7) != 0)
        return jm_error_set(err, JM_ERR_INVALID, "url", "the url must start with http:// (%s)",
                            url);
    const char *h = url + 7, *end = h + strcspn(h, "/?#");
    const char *host_end = end, *port = NULL;
    if (*h == '[') { /* [v6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL)
            return jm_error_set(err, JM_ERR_INVALID, "url", "bad IPv6 address in %s", url);
        h++;
        host_end = rb;
        if (rb + 1 < end && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        if (colon != NULL) {
            host_end = colon;
            port = colon + 1;
        }
    }
    size_t hl = (size_t)(host_end - h);
    if (hl == 0 || hl >= sizeof(out->host))
        return jm_error_set(err, JM_ERR_INVALID, "url", "no host in %s", url);
    memcpy(out->host, h, hl);
    if (port != NULL) {
        size_t pl = (size_t)(end - port);
        if (pl == 0 || pl >= sizeof(out->port) || strspn(port, "0123456789") < pl)
            return jm_error_set(err, JM_ERR_INVALID, "url", "bad port in %s", url);
        memcpy(out->port, port, pl);
    } else {
        strcpy(out->port, "80");
    }
    const char *p = end;
    size_t pl = strcspn(p, "?#");
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(out->prefix))
        return jm_error_set(err, JM_ERR_INVALID, "url", "path too long in %s", url);
    memcpy(out->prefix, p, pl);
    return JM_OK;
}

/* wait_fd polls fd for events until deadline_ms; JM_OK or JM_ERR_IO. */
static int
wait_fd(int fd, short events, int64_t deadline_ms, jm_error *err)
{
    for (;;) {
        int64_t left = deadline_ms - jm_clock_ms();
        if (left <= 0)
            return jm_error_set(err, JM_ERR_IO, NULL, "timed out");
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0)
            return JM_OK;
        if (rc < 0 && errno != EINTR)
            return jm_error_set(err, JM_ERR_IO, NULL, "poll: %s", strerror(errno));
    }
}

/* dial connects to the first address of u that answers. Returns the fd
 * (non-blocking) or -1 with err set. */
static int
dial(const cli_url *u, int64_t deadline_ms, jm_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        jm_error_set(err, JM_ERR_IO, NULL, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    jm_error_set(err, JM_ERR_IO, NULL, "no address for %s", u->host);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int fl = fcntl(fd, F_GETFL, 0);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            close(fd);
            fd = -1;
            continue;
        }
        int c = connect(fd, ai->ai_addr, ai->ai_addrlen);
        int e = c == 0 ? 0 : errno;
        if (c < 0 && e == EINPROGRESS) {
            if (wait_fd(fd, POLLOUT, deadline_ms, err) == JM_OK) {
                socklen_t el = sizeof(e);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
                    e = errno;
            } else {
                e = ETIMEDOUT;
            }
        }
        if (e == 0)
            break;
        jm_error_set(err, JM_ERR_IO, NULL, "cannot connect to %s:%s: %s", u->host, u->port,
                     strerror(e));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int
send_all(int fd, const char *buf, size_t len, int64_t deadline_ms, jm_error *err)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return jm_error_set(err, JM_ERR_IO, NULL, "send: %s", strerror(errno));
        if (wait_fd(fd, POLLOUT, deadline_ms, err) != JM_OK)
            return JM_ERR_IO;
    }
    return JM_OK;
}

/* recv_all reads until the peer closes. *buf is owned by the caller. */
static int
recv_all(int fd, char **buf, size_t *len, int64_t deadline_ms, jm_error *err)
{
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= CLI_HTTP_MAX_RESPONSE) {
                free(b);
                return jm_error_set(err, JM_ERR_TOO_LARGE, NULL, "response over %u bytes",
                                    CLI_HTTP_MAX_RESPONSE);
            }
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, b + n, cap - n - 1, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            free(b);
            return jm_error_set(err, JM_ERR_IO, NULL, "recv: %s", strerror(errno));
        }
        if (wait_fd(fd, POLLIN, deadline_ms, err) != JM_OK) {
            free(b);
            return JM_ERR_IO;
        }
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return JM_OK;
}

/* header_value finds header name (case-insensitive) in the head [h, end);
 * returns a pointer to its value or NULL. */
static const char *
header_value(const char *h, const char *end, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = h; p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol > end)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* dechunk decodes a chunked body in place; returns its length or -1. */
static long
dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *eol = strstr(b + in, "\r\n");
        if (end == b + in || eol == NULL)
            return -1;
        in = (size_t)(eol - b) + 2;
        if (sz == 0)
            return (long)out;
        if (sz > len - in)
            return -1;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz;
        if (in + 2 > len || b[in] != '\r' || b[in + 1] != '\n')
            return -1;
        in += 2;
    }
}

/* parse_response splits raw (owned, taken) into resp. */
static int
parse_response(char *raw, size_t len, cli_http_resp *resp, jm_error *err)
{
    int status = 0;
    char *head_end = strstr(raw, "\r\n\r\n");
    if (strncmp(raw, "HTTP/1.", 7) != 0 || head_end == NULL ||
        sscanf(raw + 8, " %3d", &status) != 1 || status < 100) {
        free(raw);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "the answer is not HTTP");
    }
    char *body = head_end + 4;
    size_t blen = len - (size_t)(body - raw);
    const char *te = header_value(raw, head_end, "Transfer-Encoding");
    const char *cl = header_value(raw, head_end, "Content-Length");
    if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
        long n = dechunk(body, blen);
        if (n < 0) {
            free(raw);
            return jm_error_set(err, JM_ERR_REPLY, NULL, "bad chunked body");
        }
        blen = (size_t)n;
    } else if (cl != NULL) {
        unsigned long long want = strtoull(cl, NULL, 10);
        if (want > blen) {
            free(raw);
            return jm_error_set(err, JM_ERR_IO, NULL, "connection closed after %zu of %llu bytes",
                                blen, want);
        }
        blen = (size_t)want;
    }
    memmove(raw, body, blen);
    raw[blen] = '\0';
    resp->status = status;
    resp->body = raw;
    resp->len = blen;
    return JM_OK;
}

/* build_head writes the request line and headers of one request into a new
 * string (*n its length); NULL on no memory. */
static char *
build_head(const cli_url *u, const char *method, const char *path, const char *body,
           size_t body_len, const char *const *hdrs, const char *accept, int *n_out)
{
    size_t cap = 1024 + strlen(path) + strlen(u->prefix);
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        cap += strlen(hdrs[i]) + 2;
    char *head = malloc(cap);
    if (head == NULL)
        return NULL;
    bool v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(head, cap,
                     "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: jobmill-cli/%s\r\n"
                     "Accept: %s\r\nConnection: close\r\n",
                     method, u->prefix, path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
                     JM_VERSION, accept);
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        n += snprintf(head + n, cap - (size_t)n, "%s\r\n", hdrs[i]);
    if (body != NULL)
        n += snprintf(head + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    else if (strcmp(method, "POST") == 0)
        n += snprintf(head + n, cap - (size_t)n, "Content-Length: 0\r\n");
    n += snprintf(head + n, cap - (size_t)n, "\r\n");
    JM_ASSERT(n > 0 && (size_t)n < cap);
    *n_out = n;
    return head;
}

int
cli_http_request(const cli_url *u, const char *method, const char *path, const char *body,
                 size_t body_len, const char *const *hdrs, int timeout_ms, cli_http_resp *resp,
                 jm_error *err)
{
    memset(resp, 0, sizeof(*resp));
    int64_t deadline = jm_clock_ms() + timeout_ms;
    int n = 0;
    char *head = build_head(u, method, path, body, body_len, hdrs, "application/json", &n);
    if (head == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    int fd = dial(u, deadline, err);
    if (fd < 0) {
        free(head);
        return JM_ERR_IO;
    }
    int rc = send_all(fd, head, (size_t)n, deadline, err);
    free(head);
    if (rc == JM_OK && body != NULL)
        rc = send_all(fd, body, body_len, deadline, err);
    char *raw = NULL;
    size_t len = 0;
    if (rc == JM_OK)
        rc = recv_all(fd, &raw, &len, deadline, err);
    close(fd);
    if (rc != JM_OK)
        return rc == JM_ERR_NOMEM ? rc : JM_ERR_IO;
    return parse_response(raw, len, resp, err);
}

int
cli_http_stream(const cli_url *u, const char *path, const char *const *hdrs, int idle_ms,
                bool (*on_data)(void *user, const char *buf, size_t len), void *user,
                cli_http_resp *resp, jm_error *err)
{
    memset(resp, 0, sizeof(*resp));
    int n = 0;
    char *head = build_head(u, "GET", path, NULL, 0, hdrs, "text/event-stream", &n);
    if (head == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    int fd = dial(u, jm_clock_ms() + idle_ms, err);
    if (fd < 0) {
        free(head);
        return JM_ERR_IO;
    }
    int rc = send_all(fd, head, (size_t)n, jm_clock_ms() + idle_ms, err);
    free(head);
    /* the head first: read until its end (or the whole answer) */
    size_t cap = 65536, len = 0;
    char *b = rc == JM_OK ? malloc(cap + 1) : NULL;
    if (rc == JM_OK && b == NULL)
        rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    char *end = NULL;
    bool closed = false;
    while (rc == JM_OK && end == NULL && !closed && len < cap) {
        ssize_t r = recv(fd, b + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            b[len] = '\0';
            end = strstr(b, "\r\n\r\n");
        } else if (r == 0) {
            closed = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            rc = jm_error_set(err, JM_ERR_IO, NULL, "recv: %s", strerror(errno));
        } else {
            rc = wait_fd(fd, POLLIN, jm_clock_ms() + idle_ms, err);
        }
    }
    int status = 0;
    if (rc == JM_OK &&
        (end == NULL || strncmp(b, "HTTP/1.", 7) != 0 || sscanf(b + 8, " %3d", &status) != 1))
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "the answer is not HTTP");
    if (rc == JM_OK && status != 200) {
        /* an error answer: read the rest and hand it back whole */
        char *rest = NULL;
        size_t rlen = 0;
        rc = closed ? JM_OK : recv_all(fd, &rest, &rlen, jm_clock_ms() + idle_ms, err);
        char *raw = rc == JM_OK ? malloc(len + rlen + 1) : NULL;
        if (rc == JM_OK && raw == NULL)
            rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        if (raw != NULL) {
            memcpy(raw, b, len);
            if (rlen > 0)
                memcpy(raw + len, rest, rlen);
            raw[len + rlen] = '\0';
            rc = parse_response(raw, len + rlen, resp, err);
        }
        free(rest);
        free(b);
        close(fd);
        return rc;
    }
    if (rc == JM_OK) {
        resp->status = status;
        size_t off = (size_t)(end + 4 - b);
        bool go = len == off || on_data(user, b + off, len - off);
        while (go && !closed) {
            ssize_t r = recv(fd, b, cap, 0);
            if (r > 0) {
                go = on_data(user, b, (size_t)r);
            } else if (r == 0) {
                closed = true;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                rc = jm_error_set(err, JM_ERR_IO, NULL, "recv: %s", strerror(errno));
                break;
            } else if ((rc = wait_fd(fd, POLLIN, jm_clock_ms() + idle_ms, err)) != JM_OK) {
                break;
            }
        }
    }
    free(b);
    close(fd);
    return rc;
}

void
cli_http_resp_free(cli_http_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}
