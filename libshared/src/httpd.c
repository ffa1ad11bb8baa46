/* httpd.c - the health/metrics HTTP listener of worker and janitor (see
 * httpd.h), on civetweb 1.15 through the shim in civetweb.c.
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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>
#include "jobmill/civetweb.h"
#include "jobmill/httpd.h"
#include "jobmill/log.h"

#define JM_HTTPD_THREADS 4
#define JM_HTTPD_REQUEST_TIMEOUT_MS 10000
#define JM_HTTPD_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define JM_HTTPD_TEXT_TYPE "text/plain; charset=utf-8"

struct jm_httpd {
    struct mg_context *ctx;
    jm_metrics *metrics; /* borrowed */
    jm_httpd_ready_fn ready;
    jm_httpd_refresh_fn refresh;
    void *user;           /* borrowed */
    jm_civetweb_log clog; /* civetweb's messages (start errors, warnings) */
    char listen[128];     /* the configured address, for the stop */
};

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
                     strlen("method not allowed\n"), "Allow", "GET, HEAD");
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

jm_httpd *
jm_httpd_start(const jm_httpd_opts *opts, jm_error *err)
{
    if (opts == NULL || opts->metrics == NULL) {
        jm_error_set(err, JM_ERR_INVALID, "metrics", "httpd needs a metrics registry");
        return NULL;
    }
    char ports[300];
    if (jm_civetweb_listen_ports(opts->listen, ports, sizeof(ports)) != JM_OK) {
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
    jm_civetweb_opts co = {.ports = ports,
                           .threads = JM_HTTPD_THREADS,
                           .request_timeout_ms = JM_HTTPD_REQUEST_TIMEOUT_MS};
    srv->ctx = jm_civetweb_start(&cb, srv, &co, &srv->clog, "listen", opts->listen, err);
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

void
jm_httpd_stop(jm_httpd *srv)
{
    if (srv == NULL)
        return;
    jm_civetweb_stop(srv->ctx, srv->listen);
    jm_civetweb_log_destroy(&srv->clog);
    free(srv);
}
