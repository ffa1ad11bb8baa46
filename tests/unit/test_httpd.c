/* test_httpd.c - unit tests of libshared/src/httpd.c: the three endpoints over
 * a real loopback socket (a tiny raw HTTP/1.1 client below, no curl), 404 and
 * 405, readiness flipping to 503 with its reason, the refresh callback, a busy
 * port reported as an error, and listen-address conversion.
 *
 * Ownership: every test starts its server and registry and frees them.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "jobmill/civetweb.h"
#include "jobmill/httpd.h"

/* --- a tiny HTTP client -------------------------------------------------- */

typedef struct http_resp {
    int status;
    char head[4096]; /* status line and headers, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated */
    size_t body_len;
} http_resp;

static void
resp_free(http_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* free_port binds 127.0.0.1:0, reads the port the kernel chose and closes. */
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* http_do sends one request with Connection: close and reads the whole
 * response until the server closes. Returns 0, or -1 on a socket error. */
static int
http_do(int port, const char *method, const char *path, http_resp *r)
{
    memset(r, 0, sizeof(*r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n",
                     method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return -1;
    }
    size_t head_len = (size_t)(sep - buf);
    if (head_len >= sizeof(r->head))
        head_len = sizeof(r->head) - 1;
    memcpy(r->head, buf, head_len);
    r->head[head_len] = '\0';
    r->body_len = len - (size_t)(sep + 4 - buf);
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
    return 0;
}

/* header returns the value of a header (case-insensitive name) copied into
 * out, or NULL. */
static const char *
header(const http_resp *r, const char *name, char *out, size_t out_len)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t k = strcspn(h, "\r\n");
            snprintf(out, out_len, "%.*s", (int)k, h);
            return out;
        }
    }
    return NULL;
}

/* --- fixture --------------------------------------------------------------- */

typedef struct state {
    atomic_int ready;
    atomic_int refreshes;
    jm_metric_series *refreshed;
} state;

static int
ready_cb(void *user, char *why, size_t why_len)
{
    state *st = user;
    if (atomic_load(&st->ready))
        return 1;
    snprintf(why, why_len, "redis unreachable");
    return 0;
}

static void
refresh_cb(void *user)
{
    state *st = user;
    int n = atomic_fetch_add(&st->refreshes, 1) + 1;
    jm_metric_set(st->refreshed, n);
}

static jm_metrics *reg;
static jm_httpd *srv;
static state st;
static int port;

static void
start_server(void)
{
    reg = jm_metrics_new();
    cr_assert_not_null(reg);
    jm_metric_family *f = jm_metrics_family(reg, "jobmill_refreshes", "Refresh calls.",
                                            JM_METRIC_GAUGE, NULL, NULL, 0);
    cr_assert_not_null(f);
    atomic_init(&st.ready, 1);
    atomic_init(&st.refreshes, 0);
    st.refreshed = jm_metrics_series(f, NULL);
    const char *l[] = {"queue", NULL};
    jm_metric_family *c = jm_metrics_family(reg, "jobmill_jobs_submitted_total", "Submitted.",
                                            JM_METRIC_COUNTER, l, NULL, 0);
    const char *q[] = {"default"};
    jm_metric_add(jm_metrics_series(c, q), 5);

    char listen[64];
    jm_error err = {0};
    for (int attempt = 0; attempt < 5 && srv == NULL; attempt++) {
        port = free_port();
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        jm_httpd_opts o = {.listen = listen,
                           .metrics = reg,
                           .ready = ready_cb,
                           .refresh = refresh_cb,
                           .user = &st};
        srv = jm_httpd_start(&o, &err);
    }
    cr_assert_not_null(srv, "jm_httpd_start: %s", err.msg);
}

static void
stop_server(void)
{
    jm_httpd_stop(srv);
    srv = NULL;
    jm_metrics_free(reg);
    reg = NULL;
}

TestSuite(httpd, .init = start_server, .fini = stop_server, .timeout = 60);

/* --- endpoints ------------------------------------------------------------- */

Test(httpd, healthz)
{
    http_resp r;
    cr_assert_eq(http_do(port, "GET", "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    char v[128];
    cr_assert_not_null(header(&r, "Content-Length", v, sizeof(v)));
    cr_assert_str_eq(v, "3");
    resp_free(&r);
}

Test(httpd, readyz_flips_to_503_with_reason)
{
    http_resp r;
    cr_assert_eq(http_do(port, "GET", "/readyz", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready\n");
    resp_free(&r);

    atomic_store(&st.ready, 0);
    cr_assert_eq(http_do(port, "GET", "/readyz", &r), 0);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "not ready: redis unreachable\n");
    resp_free(&r);

    /* liveness does not depend on readiness */
    cr_assert_eq(http_do(port, "GET", "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    atomic_store(&st.ready, 1);
    cr_assert_eq(http_do(port, "GET", "/readyz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

Test(httpd, metrics_refreshes_then_renders)
{
    http_resp r;
    cr_assert_eq(http_do(port, "GET", "/metrics", &r), 0);
    cr_assert_eq(r.status, 200);
    char v[128];
    cr_assert_not_null(header(&r, "Content-Type", v, sizeof(v)));
    cr_assert_str_eq(v, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_not_null(header(&r, "Content-Length", v, sizeof(v)));
    cr_assert_eq(strtoul(v, NULL, 10), r.body_len);
    cr_assert_not_null(strstr(r.body, "# TYPE jobmill_refreshes gauge\njobmill_refreshes 1\n"),
                       "%s", r.body);
    cr_assert_not_null(strstr(r.body, "jobmill_jobs_submitted_total{queue=\"default\"} 5\n"));
    resp_free(&r);

    cr_assert_eq(http_do(port, "GET", "/metrics", &r), 0);
    cr_assert_not_null(strstr(r.body, "jobmill_refreshes 2\n"));
    /* the body is exactly what jm_metrics_render gives now */
    char *now = jm_metrics_render(reg, NULL);
    cr_assert_str_eq(r.body, now);
    free(now);
    resp_free(&r);
}

Test(httpd, head_has_headers_and_no_body)
{
    http_resp r;
    cr_assert_eq(http_do(port, "HEAD", "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 0);
    char v[128];
    cr_assert_not_null(header(&r, "Content-Length", v, sizeof(v)));
    cr_assert_str_eq(v, "3");
    resp_free(&r);

    cr_assert_eq(http_do(port, "HEAD", "/metrics", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 0);
    resp_free(&r);
}

Test(httpd, unknown_paths_404)
{
    const char *paths[] = {"/",        "/nope",   "/metrics/x",     "/healthzz",
                           "/readyz/", "/metric", "/healthz/../etc"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http_resp r;
        cr_assert_eq(http_do(port, "GET", paths[i], &r), 0, "%s", paths[i]);
        cr_assert_eq(r.status, 404, "%s gave %d", paths[i], r.status);
        resp_free(&r);
    }
    http_resp r;
    cr_assert_eq(http_do(port, "POST", "/nope", &r), 0);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
}

Test(httpd, other_methods_405)
{
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH"};
    const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        for (size_t j = 0; j < sizeof(paths) / sizeof(paths[0]); j++) {
            http_resp r;
            cr_assert_eq(http_do(port, methods[i], paths[j], &r), 0);
            cr_assert_eq(r.status, 405, "%s %s gave %d", methods[i], paths[j], r.status);
            char v[128];
            cr_assert_not_null(header(&r, "Allow", v, sizeof(v)));
            cr_assert_str_eq(v, "GET, HEAD");
            resp_free(&r);
        }
    }
    cr_assert_eq(atomic_load(&st.refreshes), 0, "a refused request must not refresh");
}

Test(httpd, port_in_use_is_an_error)
{
    /* the fixture's server holds `port` */
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    jm_httpd_opts o = {.listen = listen, .metrics = reg};
    jm_error err = {0};
    cr_assert_null(jm_httpd_start(&o, &err));
    cr_assert_eq(err.code, JM_ERR_IO);
    cr_assert_str_eq(err.field, "listen");
    cr_assert_not_null(strstr(err.msg, listen), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "in use"), "%s", err.msg);

    /* and the first server is still serving */
    http_resp r;
    cr_assert_eq(http_do(port, "GET", "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

Test(httpd, bad_args_are_errors)
{
    jm_error err = {0};
    jm_httpd_opts o = {.listen = "nope", .metrics = reg};
    cr_assert_null(jm_httpd_start(&o, &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "listen");
    o.listen = "127.0.0.1:0";
    cr_assert_null(jm_httpd_start(&o, &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
    o.listen = "127.0.0.1:9";
    o.metrics = NULL;
    cr_assert_null(jm_httpd_start(&o, &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
    cr_assert_null(jm_httpd_start(NULL, NULL));
    jm_httpd_stop(NULL);
}

/* Two servers in one process (worker and an api share the library). */
Test(httpd, second_server_on_other_port)
{
    jm_error err = {0};
    jm_httpd *other = NULL;
    int p2 = 0;
    for (int attempt = 0; attempt < 5 && other == NULL; attempt++) {
        p2 = free_port();
        char listen[64];
        snprintf(listen, sizeof(listen), ":%d", p2);
        jm_httpd_opts o = {.listen = listen, .metrics = reg};
        other = jm_httpd_start(&o, &err);
    }
    cr_assert_not_null(other, "%s", err.msg);
    http_resp r;
    cr_assert_eq(http_do(p2, "GET", "/readyz", &r), 0);
    cr_assert_eq(r.status, 200, "NULL ready callback means always ready");
    resp_free(&r);
    jm_httpd_stop(other);
}

Test(httpd, host_name_listen)
{
    jm_error err = {0};
    jm_httpd *other = NULL;
    int p2 = 0;
    for (int attempt = 0; attempt < 5 && other == NULL; attempt++) {
        p2 = free_port();
        char listen[64];
        snprintf(listen, sizeof(listen), "localhost:%d", p2);
        jm_httpd_opts o = {.listen = listen, .metrics = reg};
        other = jm_httpd_start(&o, &err);
    }
    cr_assert_not_null(other, "%s", err.msg);
    http_resp r;
    cr_assert_eq(http_do(p2, "GET", "/healthz", &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    jm_httpd_stop(other);
}

/* --- listen conversion (no server needed) ---------------------------------- */

Test(httpd_listen, conversions)
{
    const struct {
        const char *in, *out;
    } ok[] = {
        {"0.0.0.0:9090", "0.0.0.0:9090"},
        {"127.0.0.1:18080", "127.0.0.1:18080"},
        {":9090", "9090"},
        {"9090", "9090"},
        {"1", "1"},
        {"65535", "65535"},
        {"localhost:8080", "localhost:8080"},
        {"[::1]:9090", "[::1]:9090"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(out, 'x', sizeof(out));
        cr_assert_eq(jm_civetweb_listen_ports(ok[i].in, out, sizeof(out)), JM_OK, "%s", ok[i].in);
        cr_assert_str_eq(out, ok[i].out);
    }
    const char *bad[] = {"",
                         ":",
                         "abc",
                         "9090x",
                         "x9090",
                         "0",
                         ":0",
                         "65536",
                         "70000",
                         "99999999",
                         "-1",
                         "+80",
                         " 80",
                         "80 ",
                         "1.2.3.4:",
                         "a b:80",
                         "1.2.3.4:80,5.6.7.8:90",
                         "1.2.3.4:80s",
                         "[::1:80",
                         "[]:80",
                         "host/x:80",
                         "127.0.0.1:9090:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(jm_civetweb_listen_ports(bad[i], out, sizeof(out)), JM_ERR_INVALID,
                     "\"%s\" accepted as \"%s\"", bad[i], out);
    cr_assert_eq(jm_civetweb_listen_ports(NULL, out, sizeof(out)), JM_ERR_INVALID);
    /* too small an output buffer */
    char tiny[5];
    cr_assert_eq(jm_civetweb_listen_ports("127.0.0.1:9090", tiny, sizeof(tiny)), JM_ERR_INVALID);
    cr_assert_eq(jm_civetweb_listen_ports("9090", tiny, sizeof(tiny)), JM_OK);
    cr_assert_str_eq(tiny, "9090");
}
