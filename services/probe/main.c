/* main.c - jobmill-probe: the container images' HEALTHCHECK, without curl.
 *
 *   jobmill-probe [-e VAR] [-p PATH] [-t MS] [ADDRESS]
 *
 * Sends GET PATH (default /healthz) to ADDRESS and exits 0 when the answer's
 * status is 200, 1 otherwise (one line on stderr says why), 2 on a bad
 * argument. ADDRESS is a listen address as the services take it (host:port,
 * :port, port or [v6]:port; default 127.0.0.1:8080). With -e VAR the address
 * comes from the environment variable VAR when it is set and not empty, so
 * the probe follows the JOBMILL_LISTEN / JOBMILL_METRICS_LISTEN the service
 * itself reads. A wildcard or missing host (0.0.0.0, ::) is probed on
 * loopback. Everything, connect included, finishes within -t MS (default
 * 2000).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_OK 0
#define PROBE_FAIL 1
#define PROBE_USAGE 2
#define DEFAULT_ADDRESS "127.0.0.1:8080"
#define DEFAULT_PATH "/healthz"
#define DEFAULT_TIMEOUT_MS 2000

typedef struct {
    char host[256]; /* without brackets */
    char port[6];
} probe_target;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: jobmill-probe [-e VAR] [-p PATH] [-t MS] [ADDRESS]\n"
            "  GET http://ADDRESS/PATH; exit 0 on status 200, 1 otherwise, 2 on bad arguments.\n"
            "  ADDRESS  host:port, :port, port or [v6]:port (default " DEFAULT_ADDRESS ");\n"
            "           a wildcard host (0.0.0.0, ::) means loopback\n"
            "  -e VAR   take ADDRESS from environment variable VAR when it is set\n"
            "  -p PATH  request path (default " DEFAULT_PATH ")\n"
            "  -t MS    overall timeout in milliseconds (default %d)\n",
            DEFAULT_TIMEOUT_MS);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* parse_address splits a listen address into a host to connect to and a
 * port; returns 0, or -1 when it is malformed. */
static int
parse_address(const char *addr, probe_target *t)
{
    const char *colon = strrchr(addr, ':');
    const char *port = colon != NULL ? colon + 1 : addr;
    size_t host_len = colon != NULL ? (size_t)(colon - addr) : 0;
    size_t port_len = strlen(port);
    if (port_len == 0 || port_len > 5 || strspn(port, "0123456789") != port_len)
        return -1;
    long p = strtol(port, NULL, 10);
    if (p < 1 || p > 65535)
        return -1;
    memcpy(t->port, port, port_len + 1);
    const char *host = addr;
    if (host_len >= 2 && addr[0] == '[' && addr[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (host_len >= sizeof(t->host))
        return -1;
    memcpy(t->host, host, host_len);
    t->host[host_len] = '\0';
    if (host_len == 0 || strcmp(t->host, "0.0.0.0") == 0)
        strcpy(t->host, "127.0.0.1");
    else if (strcmp(t->host, "::") == 0)
        strcpy(t->host, "::1");
    return 0;
}

/* wait_fd polls fd for events until deadline; returns 1 when ready, 0 on
 * timeout, -1 on error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* connect_any connects to the first address of t that answers before
 * deadline; returns the non-blocking socket, or -1 with why set. */
static int
connect_any(const probe_target *t, int64_t deadline, const char **why)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    *why = "no address";
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            *why = strerror(errno);
            continue;
        }
        int err = 0;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS)
                err = errno;
            else if (wait_fd(fd, POLLOUT, deadline) <= 0)
                err = ETIMEDOUT;
            else {
                socklen_t len = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                    err = errno;
            }
        }
        if (err != 0) {
            *why = strerror(err);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* probe sends the request and reads the status line; returns the HTTP
 * status, or -1 with why set. */
static int
probe(const probe_target *t, const char *path, int timeout_ms, const char **why)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int fd = connect_any(t, deadline, why);
    if (fd < 0)
        return -1;
    char req[512];
    int bracket = strchr(t->host, ':') != NULL;
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: jobmill-probe\r\n"
                     "Connection: close\r\n\r\n",
                     path, bracket ? "[" : "", t->host, bracket ? "]" : "", t->port);
    int status = -1;
    *why = "request too long";
    if (n <= 0 || (size_t)n >= sizeof(req))
        goto done;
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w > 0) {
            off += (int)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            *why = strerror(errno);
            goto done;
        }
        if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            *why = "timed out sending";
            goto done;
        }
    }
    char buf[256];
    size_t got = 0;
    while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            *why = strerror(errno);
            goto done;
        }
        if (wait_fd(fd, POLLIN, deadline) <= 0) {
            *why = "timed out waiting for the answer";
            goto done;
        }
    }
    buf[got] = '\0';
    /* "HTTP/1.x SSS reason" */
    int code = 0;
    if (strncmp(buf, "HTTP/", 5) != 0 || sscanf(buf, "HTTP/%*d.%*d %3d", &code) != 1 ||
        code < 100 || code > 599) {
        *why = "not an HTTP answer";
        goto done;
    }
    status = code;
done:
    close(fd);
    return status;
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return PROBE_OK;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("jobmill-probe %s\n", JM_VERSION);
        return PROBE_OK;
    }
    const char *env_var = NULL, *path = DEFAULT_PATH;
    long timeout_ms = DEFAULT_TIMEOUT_MS;
    int opt;
    while ((opt = getopt(argc, argv, "e:p:t:")) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'e': env_var = optarg; break;
        case 'p': path = optarg; break;
        case 't':
            timeout_ms = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || timeout_ms < 1 || timeout_ms > 600000) {
                fprintf(stderr, "jobmill-probe: -t: want milliseconds between 1 and 600000\n");
                return PROBE_USAGE;
            }
            break;
        default: usage(stderr); return PROBE_USAGE;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return PROBE_USAGE;
    }
    const char *addr = optind < argc ? argv[optind] : DEFAULT_ADDRESS;
    const char *from_env = env_var != NULL ? getenv(env_var) : NULL;
    if (from_env != NULL && from_env[0] != '\0')
        addr = from_env;
    if (path[0] != '/' || strpbrk(path, " \t\r\n") != NULL || strlen(path) > 256) {
        fprintf(stderr, "jobmill-probe: -p: want a path starting with / and without spaces\n");
        return PROBE_USAGE;
    }
    probe_target t;
    if (parse_address(addr, &t) != 0) {
        fprintf(stderr, "jobmill-probe: bad address \"%s\" (want host:port, :port or port)\n",
                addr);
        return PROBE_USAGE;
    }
    const char *why = "";
    int status = probe(&t, path, (int)timeout_ms, &why);
    if (status == 200)
        return PROBE_OK;
    if (status < 0)
        fprintf(stderr, "jobmill-probe: GET %s:%s%s: %s\n", t.host, t.port, path, why);
    else
        fprintf(stderr, "jobmill-probe: GET %s:%s%s: status %d\n", t.host, t.port, path, status);
    return PROBE_FAIL;
}
