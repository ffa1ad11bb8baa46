/* server.c - civetweb glue: start/stop, one jm_redis per server thread, and
 * the dispatch every request goes through (route match, 404/405, auth, the
 * Redis gate, body reading, metrics).
 *
 * civetweb matches request handlers by prefix, so the api registers one
 * dispatcher for "/v1" (which takes every "/v1/..." path) and the three
 * health paths; the begin_request callback sends every other path through
 * the same dispatcher (where it meets the route table's 404) before civetweb
 * would try to serve files.
 *
 * civetweb drops every write once mg_stop has begun, so the stop sequence is:
 * main sets app->stopping (new /v1 requests get 503), wakes the long-polls,
 * waits in api_server_quiesce until no request is in flight, and only then
 * calls mg_stop.
 *
 * Each server thread gets its own jm_redis from init_thread (thread_type 1)
 * and frees it in exit_thread; requests find it with mg_get_thread_pointer.
 * civetweb's own messages go to the JSON log (and, during start, into the
 * start error).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api.h"
#include "api_metrics.h"
#include "jobmill/civetweb.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"

/* An idle keep-alive connection holds one of api.threads: close it soon. */
#define API_KEEP_ALIVE_MS 2000

struct api_server {
    struct mg_context *ctx;
    api_app *app;              /* borrowed */
    jm_civetweb_log clog;      /* civetweb's messages (start errors, warnings) */
    atomic_int handlers_set;   /* the request handlers are registered */
    pthread_mutex_t idle_lock; /* guards inflight */
    pthread_cond_t idle_cond;  /* signalled when inflight drops to 0 */
    int inflight;              /* requests between dispatch and answer */
};

/* dispatch routes one request and returns the status it sent. */
static int
dispatch(api_req *req)
{
    const char *method = req->ri->request_method;
    char path[API_PATH_MAX];
    size_t n_routes;
    const api_route *routes = api_routes(&n_routes);
    int framing = api_req_check_framing(req);
    if (framing == 0)
        framing = api_req_decode_path(req, path, sizeof(path));
    if (framing != 0)
        return framing;
    api_route_hit hit;
    if (api_route_match(method, path, &hit) != JM_OK) {
        if (hit.path_route < 0)
            return api_send_error(req, 404, "not_found", NULL, "no route for %s %s", method, path);
        req->route = &routes[hit.path_route]; /* the metric label */
        const char *hdrs[] = {"Allow", hit.allow, NULL};
        return api_send_error_h(req, 405, hdrs, "method_not_allowed", NULL,
                                "%s is not allowed on %s; allowed: %s", method, path, hit.allow);
    }
    req->route_index = hit.index;
    memcpy(req->param, hit.param, sizeof(req->param));
    req->route = &routes[req->route_index];
    api_app *app = req->app;
    if (!(req->route->flags & API_ROUTE_OPEN) && atomic_load(&app->stopping)) {
        static const char *const hdrs[] = {"Retry-After", "1", NULL};
        return api_send_error_h(req, 503, hdrs, "unavailable", NULL,
                                "the api is shutting down; retry");
    }
    if (!(req->route->flags & API_ROUTE_OPEN)) {
        api_access access = api_auth_decide(app, mg_get_header(req->conn, "Authorization"),
                                            (req->route->flags & API_ROUTE_ADMIN) != 0);
        if (access == API_ACCESS_UNAUTHORIZED) {
            static const char *const hdrs[] = {"WWW-Authenticate", "Bearer realm=\"jobmill\"",
                                               NULL};
            return api_send_error_h(req, 401, hdrs, "unauthorized", NULL,
                                    "a valid bearer token is required "
                                    "(Authorization: Bearer <token>)");
        }
        if (access == API_ACCESS_FORBIDDEN)
            return api_send_error(req, 403, "forbidden", NULL,
                                  "%s %s takes an admin token (api.admin_tokens_file)", method,
                                  req->route->path);
        if (req->redis == NULL || !atomic_load(&app->version_ok)) {
            jm_error err;
            jm_error_set(&err, JM_ERR_REDIS, NULL,
                         req->redis == NULL ? "no redis handle on this thread"
                                            : "redis layout version not verified yet");
            return api_send_jm_error(req, &err, "check_version");
        }
    }
    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        int rc = api_req_read_body(req);
        if (rc != 0)
            return rc;
    }
    return req->route->fn(req);
}

/* serve runs one request end to end, counted in srv->inflight. */
static int
serve(struct mg_connection *conn, api_server *srv)
{
    api_app *app = srv->app;
    pthread_mutex_lock(&srv->idle_lock);
    srv->inflight++;
    pthread_mutex_unlock(&srv->idle_lock);
    double t0 = jm_clock_s();
    api_req req;
    memset(&req, 0, sizeof(req));
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.app = app;
    req.redis = mg_get_thread_pointer(conn);
    req.route_index = -1;
    int status = dispatch(&req);
    free(req.body);
    api_metrics_request(app->metrics, req.route != NULL ? req.route->path : API_ROUTE_UNMATCHED,
                        status, jm_clock_s() - t0);
    pthread_mutex_lock(&srv->idle_lock);
    if (--srv->inflight == 0)
        pthread_cond_broadcast(&srv->idle_cond);
    pthread_mutex_unlock(&srv->idle_lock);
    return status;
}

static int
on_request(struct mg_connection *conn, void *cbdata)
{
    return serve(conn, cbdata);
}

/* handled_by_handler tells whether civetweb will pass uri to one of the
 * registered handlers; everything else is served from begin_request. */
static bool
handled_by_handler(const char *uri)
{
    if (uri == NULL)
        return false;
    return strcmp(uri, "/v1") == 0 || strncmp(uri, "/v1/", 4) == 0 ||
           strcmp(uri, "/healthz") == 0 || strcmp(uri, "/readyz") == 0 ||
           strcmp(uri, "/metrics") == 0;
}

static int
on_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    api_server *srv = mg_get_user_data(mg_get_context(conn));
    if (atomic_load(&srv->handlers_set) && handled_by_handler(ri->local_uri))
        return 0;
    return serve(conn, srv);
}

static void *
on_init_thread(const struct mg_context *ctx, int thread_type)
{
    if (thread_type != 1)
        return NULL;
    api_server *srv = mg_get_user_data(ctx);
    const jm_config *cfg = srv->app->cfg;
    jm_error err;
    jm_error_clear(&err);
    jm_redis *r = jm_redis_new(cfg->redis_url, cfg->prefix, cfg->redis_timeout_ms, &err);
    if (r == NULL)
        jm_log_error("api: cannot create a redis handle for a server thread", "error", err.msg,
                     NULL);
    return r;
}

static void
on_exit_thread(const struct mg_context *ctx, int thread_type, void *thread_pointer)
{
    (void)ctx;
    if (thread_type == 1)
        jm_redis_free(thread_pointer);
}

/* on_log_message: civetweb's messages go to the server's jm_civetweb_log. */
static int
on_log_message(const struct mg_connection *conn, const char *message)
{
    struct mg_context *ctx = conn != NULL ? mg_get_context(conn) : NULL;
    api_server *srv = ctx != NULL ? mg_get_user_data(ctx) : NULL;
    if (srv != NULL && message != NULL)
        jm_civetweb_log_message(&srv->clog, message);
    return 1;
}

api_server *
api_server_start(api_app *app, jm_error *err)
{
    char ports[300];
    if (jm_civetweb_listen_ports(app->cfg->api_listen, ports, sizeof(ports)) != JM_OK) {
        jm_error_set(err, JM_ERR_INVALID, "api.listen", "bad listen address \"%s\"",
                     app->cfg->api_listen);
        return NULL;
    }
    api_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (jm_civetweb_log_init(&srv->clog, "api") != JM_OK) {
        free(srv);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a mutex");
        return NULL;
    }
    if (pthread_mutex_init(&srv->idle_lock, NULL) != 0) {
        jm_civetweb_log_destroy(&srv->clog);
        free(srv);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a mutex");
        return NULL;
    }
    if (jm_cond_init(&srv->idle_cond) != 0) {
        pthread_mutex_destroy(&srv->idle_lock);
        jm_civetweb_log_destroy(&srv->clog);
        free(srv);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a condition variable");
        return NULL;
    }
    srv->app = app;
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.begin_request = on_begin_request;
    cb.init_thread = on_init_thread;
    cb.exit_thread = on_exit_thread;
    cb.log_message = on_log_message;
    jm_civetweb_opts co = {.ports = ports,
                           .threads = app->cfg->api_threads,
                           .request_timeout_ms = app->cfg->api_request_timeout_ms,
                           .keep_alive_ms = API_KEEP_ALIVE_MS,
                           .raw_path = true};
    srv->ctx =
        jm_civetweb_start(&cb, srv, &co, &srv->clog, "api.listen", app->cfg->api_listen, err);
    if (srv->ctx == NULL) {
        pthread_cond_destroy(&srv->idle_cond);
        pthread_mutex_destroy(&srv->idle_lock);
        jm_civetweb_log_destroy(&srv->clog);
        free(srv);
        return NULL;
    }
    mg_set_request_handler(srv->ctx, "/v1", on_request, srv);
    mg_set_request_handler(srv->ctx, "/healthz", on_request, srv);
    mg_set_request_handler(srv->ctx, "/readyz", on_request, srv);
    mg_set_request_handler(srv->ctx, "/metrics", on_request, srv);
    atomic_store(&srv->handlers_set, 1);
    return srv;
}

bool
api_server_quiesce(api_server *srv, int timeout_ms)
{
    if (srv == NULL)
        return true;
    int64_t until = jm_clock_ms() + timeout_ms;
    pthread_mutex_lock(&srv->idle_lock);
    while (srv->inflight > 0)
        if (jm_cond_wait_until(&srv->idle_cond, &srv->idle_lock, until) != 0)
            break;
    bool idle = srv->inflight == 0;
    pthread_mutex_unlock(&srv->idle_lock);
    return idle;
}

void
api_server_stop(api_server *srv)
{
    if (srv == NULL)
        return;
    jm_civetweb_stop(srv->ctx, srv->app->cfg->api_listen);
    pthread_cond_destroy(&srv->idle_cond);
    pthread_mutex_destroy(&srv->idle_lock);
    jm_civetweb_log_destroy(&srv->clog);
    free(srv);
}
