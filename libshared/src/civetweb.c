/* civetweb.c - the shim every civetweb server of jobmill goes through (the
 * api and the health listener): listen-address conversion, civetweb's log
 * messages captured for start errors, one start with jobmill's options, and
 * a stop without civetweb's 2 s latency. See jobmill/civetweb.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <civetweb.h>
#include "jobmill/civetweb.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"

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
jm_civetweb_listen_ports(const char *listen, char *out, size_t out_len)
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
        snprintf(l->start_log + used, sizeof(l->start_log) - used, "%s%.*s", used > 0 ? "; " : "",
                 line, message);
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

static pthread_once_t jm_civetweb_init_once = PTHREAD_ONCE_INIT;

static void
init_civetweb(void)
{
    mg_init_library(0);
}

struct mg_context *
jm_civetweb_start(const struct mg_callbacks *cb, void *user, const jm_civetweb_opts *opts,
                  jm_civetweb_log *clog, const char *field, const char *listen, jm_error *err)
{
    pthread_once(&jm_civetweb_init_once, init_civetweb);
    char nthreads[16], timeout[16], keep[16];
    snprintf(nthreads, sizeof(nthreads), "%d", opts->threads);
    snprintf(timeout, sizeof(timeout), "%d", opts->request_timeout_ms);
    snprintf(keep, sizeof(keep), "%d", opts->keep_alive_ms > 0 ? opts->keep_alive_ms : 500);
    const char *options[] = {
        "listening_ports",
        opts->ports,
        "num_threads",
        nthreads,
        "request_timeout_ms",
        timeout,
        "enable_keep_alive",
        opts->keep_alive_ms > 0 ? "yes" : "no",
        "keep_alive_timeout_ms",
        keep,
        "decode_url",
        opts->raw_path ? "no" : "yes",
        NULL,
    };
    struct mg_init_data init = {
        .callbacks = cb, .user_data = user, .configuration_options = options};
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
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = addr};
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
jm_civetweb_stop(struct mg_context *ctx, const char *listen)
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
