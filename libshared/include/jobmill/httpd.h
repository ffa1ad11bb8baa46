/* httpd.h - the small health/metrics HTTP listener of worker and janitor.
 *
 * Serves GET /healthz (200 "ok" while the process lives), GET /readyz (200
 * while the ready callback returns 1, else 503 with its reason) and GET
 * /metrics (the registry rendered by jm_metrics_render, after the optional
 * refresh callback ran). Other paths: 404; other methods: 405. Runs on its own
 * civetweb threads.
 *
 * Ownership: jm_httpd_start returns a server the caller stops and frees with
 * jm_httpd_stop. The registry and user pointer are borrowed and must outlive
 * the server.
 */
#ifndef JOBMILL_HTTPD_H
#define JOBMILL_HTTPD_H

#include <pthread.h>
#include <stddef.h>
#include "jobmill/err.h"
#include "jobmill/metrics.h"

typedef struct jm_httpd jm_httpd;

/* Returns 1 when ready; else 0 and writes a short reason into why. */
typedef int (*jm_httpd_ready_fn)(void *user, char *why, size_t why_len);
/* Called before each /metrics render, to refresh gauges. */
typedef void (*jm_httpd_refresh_fn)(void *user);

typedef struct jm_httpd_opts {
    const char *listen;          /* "host:port"; port 0 is not supported */
    jm_metrics *metrics;         /* borrowed */
    jm_httpd_ready_fn ready;     /* NULL = always ready */
    jm_httpd_refresh_fn refresh; /* may be NULL */
    void *user;
} jm_httpd_opts;

/* jm_httpd_start binds and serves. Returns a new server, or NULL with err set
 * (bad address, port in use). */
jm_httpd *jm_httpd_start(const jm_httpd_opts *opts, jm_error *err);

/* jm_httpd_stop stops serving (waits for in-flight requests) and frees srv;
 * NULL is allowed. */
void jm_httpd_stop(jm_httpd *srv);

struct mg_context;

/* jm_civetweb_log takes civetweb's log messages (its log_message callback)
 * for a server that runs its own civetweb context: while mg_start2 runs they
 * are collected, first one first (that is the cause, e.g. "cannot bind to
 * ...: 98 (Address already in use)"), for the start error; once serving they
 * go to the JSON log at warn. Caller storage: init before mg_start2, mark
 * serving after it succeeded, destroy after mg_stop. who ("httpd", "api")
 * is a borrowed literal used in log lines. */
typedef struct jm_civetweb_log {
    pthread_mutex_t lock; /* guards serving and start_log */
    int serving;
    char start_log[256];
    const char *who;
} jm_civetweb_log;

int jm_civetweb_log_init(jm_civetweb_log *l, const char *who); /* JM_OK or JM_ERR_NOMEM */
void jm_civetweb_log_message(jm_civetweb_log *l, const char *message);
void jm_civetweb_log_serving(jm_civetweb_log *l);
/* The collected start messages, else fallback (mg_start2's own text, which
 * is only "Failed to setup server ports"), else "unknown error". Borrowed. */
const char *jm_civetweb_log_cause(const jm_civetweb_log *l, const char *fallback);
void jm_civetweb_log_destroy(jm_civetweb_log *l);

struct mg_callbacks;

/* jm_civetweb_start initialises civetweb once per process and starts a
 * context on ports (civetweb syntax) with threads worker threads and a
 * request timeout, user as its user data; cb->log_message must feed clog.
 * On success clog is marked serving; on failure err names field and listen
 * with civetweb's cause. Returns the context or NULL. */
struct mg_context *jm_civetweb_start(const struct mg_callbacks *cb, void *user,
                                     const char *ports, int threads, int request_timeout_ms,
                                     jm_civetweb_log *clog, const char *field,
                                     const char *listen, jm_error *err);

/* jm_httpd_civetweb_stop runs mg_stop(ctx) without civetweb's 2 s stop
 * latency: its master thread only looks at the stop flag between 2 s polls,
 * so while mg_stop runs we connect to our own listening port until it
 * returns. listen is the configured address ("host:port"): a wildcard or
 * "localhost" host is poked on 127.0.0.1, an IPv4 literal on itself; any
 * other host is not poked (plain mg_stop). Shared with the api, which runs
 * its own civetweb context. */
void jm_httpd_civetweb_stop(struct mg_context *ctx, const char *listen);

/* jm_httpd_listen_to_civetweb converts "host:port" (or ":port", "port") to
 * civetweb's listening_ports syntax ("127.0.0.1:9090", "9090"). Returns
 * JM_OK or JM_ERR_INVALID. Shared with the api. */
int jm_httpd_listen_to_civetweb(const char *listen, char *out, size_t out_len);

#endif
