/* readwatch.c - ends request-body reads that fall behind.
 *
 * civetweb's mg_read blocks until all it was asked for has arrived; its
 * request timeout fires only when nothing at all arrives for that long, so a
 * client sending a byte now and then would hold a server thread for as long
 * as it likes. A body read registers here with a deadline (api_req_read_body
 * moves it on as bytes arrive); a watchdog thread finds the socket of a read
 * past its deadline by its two addresses (civetweb does not expose it) among
 * /proc/self/fd and shuts its reading side down, so the blocked mg_read
 * returns at once; the request then gets 400 and its connection is closed.
 *
 * The socket cannot be closed and reused under the watchdog: a registered
 * read runs inside the handler, civetweb closes the socket only after the
 * handler returned, and the handler unregisters (api_readwatch_end) under the
 * same lock the watchdog holds while it looks and shuts down.
 *
 * Ownership: main owns the api_readwatch (new/free, after the server
 * stopped); an api_readwatch_slot is the reading thread's storage, linked in
 * between begin and end.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "api.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"

#define READWATCH_TICK_MS 100

struct api_readwatch {
    pthread_mutex_t lock; /* guards slots, stop */
    pthread_cond_t cond;  /* a slot was registered, or stop */
    api_readwatch_slot *slots;
    bool stop;
    pthread_t thread;
};

/* addr_port gives the textual address and port of sa. */
static bool
addr_port(const struct sockaddr_storage *sa, char *addr, size_t len, int *port)
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        *port = ntohs(in->sin_port);
        return inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)len) != NULL;
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        *port = ntohs(in6->sin6_port);
        return inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)len) != NULL;
    }
    return false;
}

/* same_peer tells whether socket fd is the connection of slot s. */
static bool
same_peer(int fd, const api_readwatch_slot *s)
{
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0)
        return false;
    char pa[INET6_ADDRSTRLEN], la[INET6_ADDRSTRLEN];
    int pp, lp;
    if (!addr_port(&peer, pa, sizeof(pa), &pp) || !addr_port(&local, la, sizeof(la), &lp))
        return false;
    if (pp != s->remote_port || lp != s->server_port)
        return false;
    /* civetweb writes an IPv4-mapped peer as the IPv4 address */
    const char *v4 = strncmp(pa, "::ffff:", 7) == 0 ? pa + 7 : pa;
    return strcmp(pa, s->remote_addr) == 0 || strcmp(v4, s->remote_addr) == 0;
}

/* cut shuts the reading side of slot s's socket down; true when found. */
static bool
cut(const api_readwatch_slot *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct stat st;
        if (end == e->d_name || *end != '\0' || fd == dirfd(d) || fstat((int)fd, &st) != 0 ||
            !S_ISSOCK(st.st_mode) || !same_peer((int)fd, s))
            continue;
        found = shutdown((int)fd, SHUT_RD) == 0;
    }
    closedir(d);
    return found;
}

static void *
watch_main(void *arg)
{
    api_readwatch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (w->slots == NULL) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        int64_t now = jm_clock_ms();
        for (api_readwatch_slot *s = w->slots; s != NULL; s = s->next) {
            if (s->fired || now <= s->deadline_ms)
                continue;
            s->fired = true;
            if (!cut(s))
                jm_log_warn("a request body fell behind but its socket was not found", "client",
                            s->remote_addr, NULL);
        }
        jm_cond_wait_until(&w->cond, &w->lock, jm_clock_ms() + READWATCH_TICK_MS);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

api_readwatch *
api_readwatch_new(jm_error *err)
{
    api_readwatch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a mutex");
        return NULL;
    }
    if (jm_cond_init(&w->cond) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a condition variable");
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot start the body-read watchdog");
        return NULL;
    }
    return w;
}

void
api_readwatch_free(api_readwatch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void
api_readwatch_begin(api_readwatch *w, api_readwatch_slot *s, const struct mg_request_info *ri,
                    int64_t deadline_ms)
{
    memset(s, 0, sizeof(*s));
    s->deadline_ms = deadline_ms;
    snprintf(s->remote_addr, sizeof(s->remote_addr), "%s", ri->remote_addr);
    s->remote_port = ri->remote_port;
    s->server_port = ri->server_port;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    s->next = w->slots;
    w->slots = s;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void
api_readwatch_extend(api_readwatch *w, api_readwatch_slot *s, int64_t deadline_ms)
{
    if (w == NULL) {
        s->deadline_ms = deadline_ms;
        return;
    }
    pthread_mutex_lock(&w->lock);
    s->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&w->lock);
}

bool
api_readwatch_end(api_readwatch *w, api_readwatch_slot *s)
{
    if (w == NULL)
        return false;
    pthread_mutex_lock(&w->lock);
    for (api_readwatch_slot **p = &w->slots; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    bool fired = s->fired;
    pthread_mutex_unlock(&w->lock);
    return fired;
}
