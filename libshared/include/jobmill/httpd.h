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

#endif
