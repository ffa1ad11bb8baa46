/* httpd.c - the health/metrics HTTP listener of worker and janitor (see
 * httpd.h), on civetweb 1.15.
 *
 * Ownership: jm_httpd_start allocates the jm_httpd and the civetweb context;
 * jm_httpd_stop stops civetweb (joining its threads) and frees both. The
 * registry, callbacks and user pointer are borrowed from the caller.
 *
 * Routing: the three exact paths are civetweb request handlers. civetweb
 * matches handler URIs by prefix ("/metrics" would also take "/metrics/x"),
 * so the begin_request callback answers every other path with 404 before
 * handler lookup, and each handler rechecks its exact path. Only GET and HEAD
 * are served; other methods get 405 with an Allow header.
 *
 * civetweb never prints: its log_message callback collects the messages of a
 * failing start, so a busy port or bad address comes back in the caller's
 * jm_error with civetweb's own text, and sends later ones to the JSON log.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <civetweb.h>
#include "jobmill/clock.h"
#include "jobmill/httpd.h"
#include "jobmill/log.h"

#define JM_HTTPD_THREADS 4
#define JM_HTTPD_REQUEST_TIMEOUT_MS 10000
#define JM_HTTPD_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define JM_HTTPD_TEXT_TYPE "text/plain; charset=utf-8"

struct jm_httpd {
    struct mg_context *ctx;
    jm_metrics *metrics;         /* borrowed */
    jm_httpd_ready_fn ready;
    jm_httpd_refresh_fn refresh;
    void *user;                  /* borrowed */
    jm_civetweb_log clog;        /* civetweb's messages (start errors, warnings) */
    char listen[128];            /* the configured address, for the stop */
};

/* ---------------------------------------------------------------------------
 * Listen address conversion
 * ------------------------------------------------------------------------- */

/* parse_port accepts 1..65535 written as 1 to 5 decimal digits. */
static int
parse_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : 0;
}

/* host_ok accepts an IPv4 address or a host name ([A-Za-z0-9.-]), or a
 * bracketed IPv6 literal; never ',' or spaces, which civetweb would read as
 * more listening ports or options. */
static int
host_ok(const char *h, size_t n)
{
    if (n == 0 || n > 255)
        return 0;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = h[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int
jm_httpd_listen_to_civetweb(const char *listen, char *out, size_t out_len)
{
    if (listen == NULL || out == NULL || out_len == 0)
        return JM_ERR_INVALID;
    size_t n = strlen(listen);
    const char *colon = strrchr(listen, ':');
    const char *port = colon != NULL ? colon + 1 : listen;
    size_t port_len = n - (size_t)(port - listen);
    size_t host_len = colon != NULL ? (size_t)(colon - listen) : 0;
    if (parse_port(port, port_len) == 0)
        return JM_ERR_INVALID;
    if (host_len > 0 && !host_ok(listen, host_len))
        return JM_ERR_INVALID;
    /* "host:port" stays as it is; ":port" and "port" become "port" (all
     * interfaces). */
    const char *src = host_len > 0 ? listen : port;
    size_t len = host_len > 0 ? n : port_len;
    if (len + 1 > out_len)
        return JM_ERR_INVALID;
    memcpy(out, src, len);
    out[len] = '\0';
    return JM_OK;
}

/* ---------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------- */

static int
is_head(const struct mg_request_info *ri)
{
    return strcmp(ri->request_method, "HEAD") == 0;
}

/* reply sends a complete response with Content-Length; the body is left out
 * for HEAD. extra_name/extra_value add one more header (may be NULL). Returns
 * status, as civetweb handlers do. */
static int
reply(struct mg_connection *conn, int status, const char *type, const char *body, size_t len,
      const char *extra_name, const char *extra_value)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", len);
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", type, -1);
    mg_response_header_add(conn, "Content-Length", clen, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    if (extra_name != NULL)
        mg_response_header_add(conn, extra_name, extra_value, -1);
    mg_response_header_send(conn);
    if (!is_head(ri) && len > 0)
        mg_write(conn, body, len);
    return status;
}

static int
reply_text(struct mg_connection *conn, int status, const char *text)
{
    return reply(conn, status, JM_HTTPD_TEXT_TYPE, text, strlen(text), NULL, NULL);
}

/* check_route answers 404 or 405 when the request is not an exact-path GET or
 * HEAD of path; returns 0 when the handler should serve it. */
static int
check_route(struct mg_connection *conn, const char *path)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->local_uri == NULL || strcmp(ri->local_uri, path) != 0)
        return reply_text(conn, 404, "not found\n");
    if (strcmp(ri->request_method, "GET") != 0 && !is_head(ri))
        return reply(conn, 405, JM_HTTPD_TEXT_TYPE, "method not allowed\n",
                     strlen("method not allowed\n"), "Allow",
                     "GET, HEAD");
    return 0;
}

static int
route_known(const char *uri)
{
    return uri != NULL && (strcmp(uri, "/healthz") == 0 || strcmp(uri, "/readyz") == 0 ||
                           strcmp(uri, "/metrics") == 0);
}

/* on_begin_request answers every path other than the three routes with 404;
 * returning 0 lets civetweb go on to the request handlers. */
static int
on_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (route_known(ri->local_uri))
        return 0;
    return reply_text(conn, 404, "not found\n");
}

static int
handle_healthz(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    int rc = check_route(conn, "/healthz");
    return rc != 0 ? rc : reply_text(conn, 200, "ok\n");
}

static int
handle_readyz(struct mg_connection *conn, void *cbdata)
{
    jm_httpd *srv = cbdata;
    int rc = check_route(conn, "/readyz");
    if (rc != 0)
        return rc;
    char why[200] = "";
    if (srv->ready == NULL || srv->ready(srv->user, why, sizeof(why)) == 1)
        return reply_text(conn, 200, "ready\n");
    why[sizeof(why) - 1] = '\0';
    /* keep the reason on one line */
    for (char *p = why; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    char body[256];
    snprintf(body, sizeof(body), "not ready: %s\n", why[0] != '\0' ? why : "unspecified");
    return reply_text(conn, 503, body);
}

static int
handle_metrics(struct mg_connection *conn, void *cbdata)
{
    jm_httpd *srv = cbdata;
    int rc = check_route(conn, "/metrics");
    if (rc != 0)
        return rc;
    if (srv->refresh != NULL)
        srv->refresh(srv->user);
    size_t len = 0;
    char *text = jm_metrics_render(srv->metrics, &len);
    if (text == NULL)
        return reply_text(conn, 500, "cannot render metrics\n");
    reply(conn, 200, JM_HTTPD_METRICS_TYPE, text, len, NULL, NULL);
    free(text);
    return 200;
}

/* ---------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------- */

int
jm_civetweb_log_init(jm_civetweb_log *l, const char *who)
{
    memset(l, 0, sizeof(*l));
    l->who = who;
    return pthread_mutex_init(&l->lock, NULL) == 0 ? JM_OK : JM_ERR_NOMEM;
}

void
jm_civetweb_log_message(jm_civetweb_log *l, const char *message)
{
    int line = (int)strcspn(message, "\r\n");
    pthread_mutex_lock(&l->lock);
    int serving = l->serving;
    if (!serving) {
        size_t used = strlen(l->start_log);
        snprintf(l->start_log + used, sizeof(l->start_log) - used, "%s%.*s",
                 used > 0 ? "; " : "", line, message);
    }
    pthread_mutex_unlock(&l->lock);
    if (serving) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%.*s", line, message);
        jm_log_warn("civetweb reported an error", "server", l->who, "error", msg, NULL);
    }
}

void
jm_civetweb_log_serving(jm_civetweb_log *l)
{
    pthread_mutex_lock(&l->lock);
    l->serving = 1;
    pthread_mutex_unlock(&l->lock);
}

const char *
jm_civetweb_log_cause(const jm_civetweb_log *l, const char *fallback)
{
    if (l->start_log[0] != '\0')
        return l->start_log;
    return fallback != NULL && fallback[0] != '\0' ? fallback : "unknown error";
}

void
jm_civetweb_log_destroy(jm_civetweb_log *l)
{
    pthread_mutex_destroy(&l->lock);
}

/* on_log_message: civetweb's messages go to the server's jm_civetweb_log.
 * Non-zero tells civetweb the message was handled. */
static int
on_log_message(const struct mg_connection *conn, const char *message)
{
    struct mg_context *ctx = conn != NULL ? mg_get_context(conn) : NULL;
    jm_httpd *srv = ctx != NULL ? mg_get_user_data(ctx) : NULL;
    if (srv != NULL && message != NULL)
        jm_civetweb_log_message(&srv->clog, message);
    return 1;
}

static pthread_once_t jm_httpd_init_once = PTHREAD_ONCE_INIT;

static void
init_civetweb(void)
{
    mg_init_library(0);
}

struct mg_context *
jm_civetweb_start(const struct mg_callbacks *cb, void *user, const char *ports, int threads,
                  int request_timeout_ms, jm_civetweb_log *clog, const char *field,
                  const char *listen, jm_error *err)
{
    pthread_once(&jm_httpd_init_once, init_civetweb);
    char nthreads[16], timeout[16];
    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    snprintf(timeout, sizeof(timeout), "%d", request_timeout_ms);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", nthreads,
        "request_timeout_ms", timeout,
        NULL,
    };
    struct mg_init_data init = {.callbacks = cb, .user_data = user,
                                .configuration_options = options};
    unsigned code = 0;
    char text[256] = "";
    struct mg_error_data edata = {.code = &code, .text = text, .text_buffer_size = sizeof(text)};
    struct mg_context *ctx = mg_start2(&init, &edata);
    if (ctx == NULL) {
        /* The collected log lines name the cause; mg_start2's text is only
         * "Failed to setup server ports". */
        jm_error_set(err, JM_ERR_IO, field, "cannot listen on %s: %s", listen,
                     jm_civetweb_log_cause(clog, text));
        return NULL;
    }
    jm_civetweb_log_serving(clog);
    return ctx;
}

jm_httpd *
jm_httpd_start(const jm_httpd_opts *opts, jm_error *err)
{
    if (opts == NULL || opts->metrics == NULL) {
        jm_error_set(err, JM_ERR_INVALID, "metrics", "httpd needs a metrics registry");
        return NULL;
    }
    char ports[300];
    if (jm_httpd_listen_to_civetweb(opts->listen, ports, sizeof(ports)) != JM_OK) {
        jm_error_set(err, JM_ERR_INVALID, "listen",
                     "bad listen address \"%s\" (want host:port, :port or port, port 1-65535)",
                     opts->listen != NULL ? opts->listen : "");
        return NULL;
    }
    jm_httpd *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "httpd: out of memory");
        return NULL;
    }
    if (jm_civetweb_log_init(&srv->clog, "httpd") != JM_OK) {
        free(srv);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "httpd: cannot create a mutex");
        return NULL;
    }
    snprintf(srv->listen, sizeof(srv->listen), "%s", opts->listen);
    srv->metrics = opts->metrics;
    srv->ready = opts->ready;
    srv->refresh = opts->refresh;
    srv->user = opts->user;

    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.begin_request = on_begin_request;
    cb.log_message = on_log_message;
    srv->ctx = jm_civetweb_start(&cb, srv, ports, JM_HTTPD_THREADS,
                                 JM_HTTPD_REQUEST_TIMEOUT_MS, &srv->clog, "listen",
                                 opts->listen, err);
    if (srv->ctx == NULL) {
        jm_civetweb_log_destroy(&srv->clog);
        free(srv);
        return NULL;
    }
    mg_set_request_handler(srv->ctx, "/healthz", handle_healthz, srv);
    mg_set_request_handler(srv->ctx, "/readyz", handle_readyz, srv);
    mg_set_request_handler(srv->ctx, "/metrics", handle_metrics, srv);
    return srv;
}

typedef struct stopper {
    struct mg_context *ctx;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} stopper;

static void *
stop_thread(void *arg)
{
    stopper *st = arg;
    mg_stop(st->ctx);
    pthread_mutex_lock(&st->lock);
    st->done = true;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* Connects to addr:port and closes at once: wakes civetweb's poll(). */
static void
poke(struct in_addr addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr = addr};
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    (void)rc;
    close(fd);
}

/* poke_address finds where our own listener can be reached from here: 1 and
 * *addr set, or 0 when the host is not one we poke. */
static int
poke_address(const char *listen, struct in_addr *addr)
{
    const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
    char host[64] = "";
    if (colon != NULL && (size_t)(colon - listen) < sizeof(host))
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "localhost") == 0) {
        addr->s_addr = htonl(INADDR_LOOPBACK);
        return 1;
    }
    return inet_pton(AF_INET, host, addr) == 1;
}

void
jm_httpd_civetweb_stop(struct mg_context *ctx, const char *listen)
{
    struct mg_server_port ports[8];
    struct in_addr addr;
    int n = poke_address(listen, &addr) ? mg_get_server_ports(ctx, 8, ports) : 0;
    stopper st = {.ctx = ctx, .done = false};
    pthread_mutex_init(&st.lock, NULL);
    jm_cond_init(&st.cond);
    pthread_t th;
    if (n <= 0 || pthread_create(&th, NULL, stop_thread, &st) != 0) {
        mg_stop(ctx);
    } else {
        pthread_mutex_lock(&st.lock);
        while (!st.done) {
            pthread_mutex_unlock(&st.lock);
            for (int i = 0; i < n; i++)
                poke(addr, ports[i].port);
            pthread_mutex_lock(&st.lock);
            if (!st.done)
                jm_cond_wait_until(&st.cond, &st.lock, jm_clock_ms() + 50);
        }
        pthread_mutex_unlock(&st.lock);
        pthread_join(th, NULL);
    }
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.lock);
}

void
jm_httpd_stop(jm_httpd *srv)
{
    if (srv == NULL)
        return;
    jm_httpd_civetweb_stop(srv->ctx, srv->listen);
    jm_civetweb_log_destroy(&srv->clog);
    free(srv);
}
