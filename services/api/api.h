/* api.h - the jobmill-api service's shared types: the process-wide app, one
 * request, the route table entry, and the prototypes every api file uses.
 *
 * Threading: civetweb serves requests on cfg.api_threads threads. Each thread
 * owns one jm_redis (created in civetweb's init_thread callback, freed in
 * exit_thread) and hands it to the request as req->redis; nothing Redis is
 * ever shared between threads. The app is read-only after start except for
 * its atomics and the objects that lock themselves (waiters, metrics).
 *
 * Error convention: handlers return the HTTP status they sent; helpers that
 * can fail return a jm_err (see jobmill/err.h).
 */
#ifndef JOBMILL_API_H
#define JOBMILL_API_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <civetweb.h>
#include <jansson.h>
#include "jobmill/err.h"
#include "jobmill/queue.h"
#include "jobmill/redis.h"
#include "jobmill/service.h"

typedef struct api_auth api_auth;
typedef struct api_waiters api_waiters;
typedef struct api_metrics api_metrics;
typedef struct api_readwatch api_readwatch;

/* The process: configuration, shared services, lifecycle flags. */
typedef struct api_app {
    jm_service *svc;        /* borrowed from main */
    const jm_config *cfg;   /* &svc->cfg */
    jm_retention retention; /* from cfg, for cancel */
    api_auth *auth;         /* api.tokens_file's set, NULL when unset; swapped on
                               SIGHUP under auth_lock, as admin_auth */
    api_auth *admin_auth;   /* api.admin_tokens_file's set, NULL when unset */
    pthread_rwlock_t auth_lock;
    api_waiters *waiters;     /* long-polls and their subscriber thread */
    api_metrics *metrics;     /* api metric families */
    api_readwatch *readwatch; /* ends body reads that fall behind; NULL: none */
    atomic_int draining;      /* SIGTERM seen: /readyz fails */
    atomic_int version_ok;    /* jm_redis_check_version passed */
    atomic_int stopping;      /* drain delay over: new /v1 requests get 503 */
    atomic_int followers;     /* GET /v1/jobs/{id}/logs?follow=1 streams (logs.c) */
} api_app;

/* Route flags. */
#define API_ROUTE_OPEN 1u /* no auth, no Redis gate: /healthz, /readyz, /metrics, /ui */
#define API_ROUTE_BODY 2u /* takes a JSON body (submit, batch) */
#define API_ROUTE_ADMIN                                                                            \
    4u /* an operator action: with api.admin_tokens_file set, only
                              admin tokens may use it (cancel, retry, pause, resume) */

#define API_PARAM_MAX 256 /* a path parameter, decoded, NUL included */
#define API_PATH_MAX 2048 /* a request path, decoded; longer ones match no route */

typedef struct api_req api_req;
typedef int (*api_handler_fn)(api_req *req);

typedef struct api_route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* template: "/v1/jobs/{id}" */
    api_handler_fn fn;
    unsigned flags;
} api_route;

/* One request, on the stack of the serving thread. */
struct api_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    api_app *app;
    jm_redis *redis;           /* this thread's handle (borrowed); NULL if none */
    const api_route *route;    /* matched route, NULL for 404 */
    int route_index;           /* index in the table, -1 for 404 */
    char param[API_PARAM_MAX]; /* the one path parameter ({id} or {queue}) */
    char *body;                /* owned: the request body, NUL-terminated */
    size_t body_len;
};

/* ---- routes.c: the single route table ---- */

/* api_routes returns the table (static) and its size in *n. */
const api_route *api_routes(size_t *n);
/* What api_route_match found. */
typedef struct api_route_hit {
    int index;                 /* the matched route (JM_OK), else -1 */
    int path_route;            /* the first route whose template matched the
                                   path, whatever its method; -1 when none */
    char param[API_PARAM_MAX]; /* the path parameter of the match */
    char allow[64];            /* methods the path takes: "GET, POST" */
} api_route_hit;

/* api_route_match finds the route for method and path. JM_OK with
 * hit->index; JM_ERR_NOT_FOUND otherwise: hit->path_route < 0 when no
 * template matches the path (404), else the path takes other methods (405,
 * hit->allow names them; hit->path_route labels the metric). */
int api_route_match(const char *method, const char *path, api_route_hit *hit);
/* api_routes_print writes "METHOD PATH" lines (the hidden --print-routes). */
void api_routes_print(FILE *out);

/* ---- server.c: civetweb glue and request dispatch ---- */

typedef struct api_server api_server;
/* api_server_start binds cfg.api_listen and serves. NULL with err set. */
api_server *api_server_start(api_app *app, jm_error *err);
/* api_server_quiesce waits up to timeout_ms until no request is in flight
 * (civetweb drops writes once mg_stop begins). Returns whether it got idle. */
bool api_server_quiesce(api_server *srv, int timeout_ms);
/* api_server_stop closes the listener, joins the threads, frees srv; NULL is
 * allowed. */
void api_server_stop(api_server *srv);

/* ---- request.c: body and query ---- */

/* api_req_check_framing refuses (400) what a proxy in front could read
 * otherwise: a header name that is not a token, a Content-Length that is not
 * one decimal number (or several that differ), a repeated Idempotency-Key or
 * one that is not printable ASCII, a NUL (%00) in the query. Returns 0 to go
 * on, or the status it sent. */
int api_req_check_framing(api_req *req);
/* api_req_decode_path percent-decodes the request path (civetweb hands it
 * over encoded: jm_civetweb_opts.raw_path) into out, so the route matcher sees
 * every byte the client sent. Refuses (400 invalid_field "path") a NUL (%00),
 * which would cut the path short; an encoded slash (%2F), which a path rule
 * in a proxy in front reads as part of a segment; a malformed escape. A path
 * that does not fit in len gets 404 (no route is that long). Returns 0 to go
 * on, or the status it sent. */
int api_req_decode_path(api_req *req, char *out, size_t len);
/* api_req_read_body enforces the size limit and media type, then reads the
 * body into req->body. Returns 0 to go on, or the error status it sent. */
int api_req_read_body(api_req *req);
/* api_req_query copies query parameter name (URL-decoded) into buf. Returns
 * 1 when present, 0 when absent, -1 when too long. */
int api_req_query(const api_req *req, const char *name, char *buf, size_t len);
/* api_req_wait reads ?wait=S (seconds, 0-60, fractions allowed) into *secs
 * (0 when absent). Returns 0, or -1 when it is malformed. */
int api_req_wait(const api_req *req, double *secs);
/* api_req_parse_json parses req->body. Returns a new reference or NULL after
 * sending 400 bad_json (*status gets it). */
json_t *api_req_parse_json(api_req *req, int *status);

/* ---- readwatch.c: body reads that fall behind ---- */

/* One body read being watched: the reading thread's storage. */
typedef struct api_readwatch_slot {
    struct api_readwatch_slot *next; /* the watchdog's list (its lock) */
    int64_t deadline_ms;             /* jm_clock_ms; past it the read is cut */
    bool fired;                      /* the watchdog shut the socket's reading side */
    char remote_addr[48];            /* the connection, to find its socket */
    int remote_port, server_port;
} api_readwatch_slot;

/* api_readwatch_new starts the watchdog thread. NULL with err set. */
api_readwatch *api_readwatch_new(jm_error *err);
/* api_readwatch_free stops and joins it; NULL is allowed. After the server
 * stopped (no read registered). */
void api_readwatch_free(api_readwatch *w);
/* api_readwatch_begin registers s (caller storage) for the request ri with a
 * deadline; extend moves the deadline; end unregisters it and tells whether
 * the watchdog cut the read. w may be NULL (nothing is watched). */
void api_readwatch_begin(api_readwatch *w, api_readwatch_slot *s, const struct mg_request_info *ri,
                         int64_t deadline_ms);
void api_readwatch_extend(api_readwatch *w, api_readwatch_slot *s, int64_t deadline_ms);
bool api_readwatch_end(api_readwatch *w, api_readwatch_slot *s);

/* ---- response.c: JSON responses and errors ---- */

/* api_send_json sends status with body (stolen; NULL sends {}) as JSON. hdrs
 * is NULL or a NULL-terminated list of name, value pairs. Returns status. */
int api_send_json(api_req *req, int status, json_t *body, const char *const *hdrs);
/* api_replicated waits (WAIT) until api.submit_replicas replicas confirmed
 * the submit just written on req's connection; JM_OK at once when the
 * setting is 0, else JM_ERR_REDIS with err set (answer 503: the job is on
 * the primary, and a retry with its idempotency key returns it). */
int api_replicated(api_req *req, jm_error *err);
/* api_send_json_text sends the JSON text written into t (emptied; out of
 * memory while writing it sends 500). hdrs as for api_send_json. */
struct jm_text;
int api_send_json_text(api_req *req, int status, struct jm_text *t, const char *const *hdrs);
/* api_send_job_json sends one job object (jm_job_json_write). */
int api_send_job_json(api_req *req, int status, const jm_job *job, const char *const *hdrs);
/* api_send_text sends a text body of the given type. Returns status. */
int api_send_text(api_req *req, int status, const char *type, const char *text, size_t len);
/* api_send_text_h is api_send_text with extra headers (as in api_send_json). */
int api_send_text_h(api_req *req, int status, const char *type, const char *text, size_t len,
                    const char *const *hdrs);
/* api_send_error sends {"error":{"code","message","field"?}}. field may be
 * NULL or "". Returns status. */
int api_send_error(api_req *req, int status, const char *code, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
/* api_send_error_h is api_send_error with extra headers (NULL or a
 * NULL-terminated list of name, value pairs: Allow, Retry-After, ...). */
int api_send_error_h(api_req *req, int status, const char *const *hdrs, const char *code,
                     const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* api_send_jm_error maps a libshared error onto the contract's codes (Redis
 * trouble is 503 with Retry-After, counted under op). Returns status. */
int api_send_jm_error(api_req *req, const jm_error *err, const char *op);
/* api_send_job reads job id and sends it with status (or the read's error). */
int api_send_job(api_req *req, int status, const char *id, const char *op);

/* ---- auth.c: bearer tokens ---- */

/* api_auth_load reads the tokens file: one token per line, blank lines and
 * # comments ignored. Returns a new api_auth or NULL with err set. */
api_auth *api_auth_load(const char *path, jm_error *err);
/* api_auth_init loads the configured tokens files into app (auth stays off
 * when neither is set). JM_OK, or an error naming the file. Main thread. */
int api_auth_init(api_app *app, jm_error *err);
/* What a request's credentials allow on one route. */
typedef enum api_access {
    API_ACCESS_OK,           /* go on (also: auth off) */
    API_ACCESS_UNAUTHORIZED, /* no valid token: 401 */
    API_ACCESS_FORBIDDEN,    /* a valid non-admin token on an admin route: 403 */
} api_access;
/* api_auth_decide checks a request's Authorization header against the app's
 * current tokens, under its read lock, for a route that is an admin route or
 * not (API_ROUTE_ADMIN). */
api_access api_auth_decide(api_app *app, const char *header, bool admin_route);
/* api_auth_reload reads the tokens files again and swaps both in; on any
 * error the old tokens stay (logged). Main thread, on SIGHUP. */
void api_auth_reload(api_app *app);
/* api_auth_check tells whether an Authorization header value carries a known
 * bearer token, comparing in constant time. */
bool api_auth_check(const api_auth *a, const char *header);
size_t api_auth_count(const api_auth *a);
void api_auth_free(api_auth *a);

/* ---- handlers (jobs.c, jobs_batch.c, jobs_get.c, queues.c, workers.c, health.c, ui.c) ---- */

int api_jobs_submit(api_req *req);
int api_jobs_batch(api_req *req);
int api_jobs_get(api_req *req);
/* api_job_wait long-polls (jobs_get.c) until job id is terminal or secs
 * pass, keeping *job (read already) current; answers at once when secs is 0,
 * the job is terminal or no long-poll slot is free. JM_OK or the error of a
 * deciding read (*job then stays as last read). */
int api_job_wait(api_req *req, const char *id, jm_job *job, double secs, jm_error *err);
/* api_jobs_logs: GET /v1/jobs/{id}/logs, paged or ?follow=1 (logs.c). */
int api_jobs_logs(api_req *req);
int api_jobs_cancel(api_req *req);
int api_jobs_retry(api_req *req);
int api_batches_submit(api_req *req); /* batches.c */
int api_batches_get(api_req *req);
int api_queues_list(api_req *req);
int api_queues_pause(api_req *req);
int api_queues_resume(api_req *req);
int api_queues_limits(api_req *req); /* limits.c */
int api_queues_jobs(api_req *req);
/* schedules.c: cron schedules */
int api_schedules_put(api_req *req);
int api_schedules_list(api_req *req);
int api_schedules_delete(api_req *req);
int api_schedules_pause(api_req *req);
int api_schedules_resume(api_req *req);
int api_workers_list(api_req *req);
int api_health_live(api_req *req);
int api_health_ready(api_req *req);
int api_health_metrics(api_req *req);

/* ---- ui.c: the dashboard's static files, embedded at build time ---- */

int api_ui_redirect(api_req *req); /* GET /ui → 301 /ui/ */
int api_ui_index(api_req *req);    /* GET /ui/ → index.html */
int api_ui_asset(api_req *req);    /* GET /ui/{asset} */

/* ---- HTTP workers (claim.c, leases.c) ---- */

#define API_WORKER_ID_MAX 128

int api_claim(api_req *req);
int api_lease_heartbeat(api_req *req);
int api_lease_complete(api_req *req);
int api_lease_fail(api_req *req);
int api_lease_progress(api_req *req);
int api_lease_logs(api_req *req);
/* api_worker_id_valid: 1-API_WORKER_ID_MAX characters of [A-Za-z0-9_.:@-]. */
bool api_worker_id_valid(const char *id);
/* api_worker_ttl_ms is the registry TTL of an HTTP worker's record. */
int api_worker_ttl_ms(const jm_config *cfg);
/* api_lease_ms_field reads the optional "lease_ms" of body into *lease_ms.
 * Returns 0, or the 400 it sent. */
int api_lease_ms_field(api_req *req, const json_t *body, int *lease_ms);

/* queues.c: the queue object {"name", a count per state, "paused", "limits"}.
 * New ref. */
json_t *api_queue_to_json(const jm_queue_info *q);
/* api_queue_known validates the path's queue name and checks that a job was
 * ever submitted to it. JM_OK, JM_ERR_INVALID, JM_ERR_NOT_FOUND or a Redis
 * error. */
int api_queue_known(api_req *req, jm_error *err);

#endif
