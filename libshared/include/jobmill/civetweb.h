/* civetweb.h - the shim between jobmill and civetweb 1.15, shared by the api
 * (its own civetweb context) and the health listener (httpd.h): listen
 * addresses, civetweb's log messages, start and fast stop.
 *
 * Ownership: a jm_civetweb_log is caller storage; contexts returned by
 * jm_civetweb_start are stopped and freed by jm_civetweb_stop.
 */
#ifndef JOBMILL_CIVETWEB_H
#define JOBMILL_CIVETWEB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "jobmill/err.h"

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

/* The options of one civetweb context. */
typedef struct jm_civetweb_opts {
    const char *ports;      /* civetweb syntax (jm_civetweb_listen_ports) */
    int threads;            /* worker threads: connections served at once */
    int request_timeout_ms; /* reading a request, writing a response */
    int keep_alive_ms;      /* > 0: HTTP keep-alive, an idle connection closes
                                 after this long; 0: one request per connection */
    bool raw_path;          /* civetweb leaves local_uri percent-encoded
                               (decode_url=no; dot segments still removed):
                               the handler decodes it and sees a %00 */
} jm_civetweb_opts;

/* jm_civetweb_start initialises civetweb once per process and starts a
 * context with opts, user as its user data; cb->log_message must feed clog.
 * On success clog is marked serving; on failure err names field and listen
 * with civetweb's cause. Returns the context or NULL. */
struct mg_context *jm_civetweb_start(const struct mg_callbacks *cb, void *user,
                                     const jm_civetweb_opts *opts, jm_civetweb_log *clog,
                                     const char *field, const char *listen, jm_error *err);

/* jm_civetweb_stop runs mg_stop(ctx) without civetweb's 2 s stop
 * latency: its master thread only looks at the stop flag between 2 s polls,
 * so while mg_stop runs we connect to our own listening port until it
 * returns. listen is the configured address ("host:port"): a wildcard or
 * "localhost" host is poked on 127.0.0.1, an IPv4 literal on itself; any
 * other host is not poked (plain mg_stop).  */
void jm_civetweb_stop(struct mg_context *ctx, const char *listen);

/* jm_civetweb_listen_ports converts "host:port" (or ":port", "port") to
 * civetweb's listening_ports syntax ("127.0.0.1:9090", "9090"). Returns
 * JM_OK or JM_ERR_INVALID. */
int jm_civetweb_listen_ports(const char *listen, char *out, size_t out_len);

#endif
