/* slots.c - the in-flight table (see slots.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "slots.h"
#include "jobmill/clock.h"

const char *
wk_stop_name(wk_stop s)
{
    switch (s) {
    case WK_STOP_NONE: return "none";
    case WK_STOP_DRAIN: return "drain";
    case WK_STOP_CANCEL: return "cancel";
    case WK_STOP_LEASE_EXPIRED: return "lease_expired";
    case WK_STOP_LEASE_LOST: return "lease_lost";
    }
    return "unknown";
}

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void
poke(int fd)
{
    if (fd < 0)
        return;
    char b = 1;
    ssize_t w = write(fd, &b, 1); /* EAGAIN: a byte is already pending */
    (void)w;
}

int
wk_slots_init(wk_slots *s, int n, int notify_fd, jm_error *err)
{
    memset(s, 0, sizeof(*s));
    s->notify_fd = notify_fd;
    pthread_mutex_init(&s->mu, NULL);
    if (jm_cond_init(&s->freed) != 0)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "pthread_cond_init failed");
    s->v = calloc((size_t)n, sizeof(*s->v));
    if (s->v == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        wk_slot *sl = &s->v[i];
        sl->stop_pipe[0] = sl->stop_pipe[1] = -1;
        pthread_cond_init(&sl->assigned, NULL);
        s->n = i + 1;
        if (pipe(sl->stop_pipe) != 0 || set_flags(sl->stop_pipe[0]) != 0 ||
            set_flags(sl->stop_pipe[1]) != 0)
            return jm_error_set(err, JM_ERR_IO, NULL, "stop pipe: %s", strerror(errno));
    }
    return JM_OK;
}

void
wk_slots_destroy(wk_slots *s)
{
    for (int i = 0; s->v != NULL && i < s->n; i++) {
        wk_slot *sl = &s->v[i];
        jm_claim_clear(&sl->claim);
        if (sl->stop_pipe[0] >= 0)
            close(sl->stop_pipe[0]);
        if (sl->stop_pipe[1] >= 0)
            close(sl->stop_pipe[1]);
        pthread_cond_destroy(&sl->assigned);
    }
    free(s->v);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

int
wk_slots_wait_free(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->draining && s->busy >= s->n)
        pthread_cond_wait(&s->freed, &s->mu);
    int n = s->draining ? 0 : s->n - s->busy;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int
wk_slots_wait_drain(wk_slots *s, int ms)
{
    int64_t deadline = jm_clock_ms() + ms;
    pthread_mutex_lock(&s->mu);
    while (!s->draining && jm_cond_wait_until(&s->freed, &s->mu, deadline) == 0)
        ;
    int d = s->draining;
    pthread_mutex_unlock(&s->mu);
    return d;
}

int
wk_slots_is_draining(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    int d = s->draining;
    pthread_mutex_unlock(&s->mu);
    return d;
}

int
wk_slots_assign(wk_slots *s, jm_claim *c, int64_t lease_deadline)
{
    pthread_mutex_lock(&s->mu);
    int found = -1;
    for (int i = 0; i < s->n; i++) {
        if (!s->v[i].busy) {
            found = i;
            break;
        }
    }
    if (found >= 0) {
        wk_slot *sl = &s->v[found];
        sl->claim = *c;
        memset(c, 0, sizeof(*c));
        sl->busy = 1;
        sl->gen++;
        sl->lease_deadline = lease_deadline;
        sl->stop = WK_STOP_NONE;
        sl->child_pgid = 0;
        s->busy++;
        pthread_cond_signal(&sl->assigned);
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

void
wk_slots_reassign(wk_slots *s, int i, jm_claim *c, int64_t lease_deadline)
{
    pthread_mutex_lock(&s->mu);
    wk_slot *sl = &s->v[i];
    jm_claim_clear(&sl->claim);
    sl->claim = *c;
    memset(c, 0, sizeof(*c));
    sl->gen++;
    sl->lease_deadline = lease_deadline;
    sl->stop = s->draining ? WK_STOP_DRAIN : WK_STOP_NONE;
    sl->child_pgid = 0;
    drain_pipe(sl->stop_pipe[0]);
    pthread_mutex_unlock(&s->mu);
}

int
wk_slots_take(wk_slots *s, int i)
{
    pthread_mutex_lock(&s->mu);
    while (!s->closing && !s->v[i].busy)
        pthread_cond_wait(&s->v[i].assigned, &s->mu);
    int got = s->v[i].busy;
    pthread_mutex_unlock(&s->mu);
    return got;
}

const jm_claim *
wk_slots_claim(wk_slots *s, int i)
{
    return &s->v[i].claim;
}

int
wk_slots_stop_fd(wk_slots *s, int i)
{
    return s->v[i].stop_pipe[0];
}

wk_stop
wk_slots_stop_reason(wk_slots *s, int i)
{
    pthread_mutex_lock(&s->mu);
    drain_pipe(s->v[i].stop_pipe[0]);
    wk_stop r = s->v[i].stop;
    pthread_mutex_unlock(&s->mu);
    return r;
}

int64_t
wk_slots_lease_deadline(wk_slots *s, int i)
{
    pthread_mutex_lock(&s->mu);
    int64_t d = s->v[i].lease_deadline;
    pthread_mutex_unlock(&s->mu);
    return d;
}

void
wk_slots_set_child(wk_slots *s, int i, pid_t pgid)
{
    pthread_mutex_lock(&s->mu);
    s->v[i].child_pgid = pgid;
    pthread_mutex_unlock(&s->mu);
}

void
wk_slots_release(wk_slots *s, int i)
{
    pthread_mutex_lock(&s->mu);
    wk_slot *sl = &s->v[i];
    if (sl->busy) {
        jm_claim_clear(&sl->claim);
        sl->busy = 0;
        sl->stop = WK_STOP_NONE;
        sl->child_pgid = 0;
        drain_pipe(sl->stop_pipe[0]);
        s->busy--;
        pthread_cond_signal(&s->freed);
    }
    pthread_mutex_unlock(&s->mu);
    poke(s->notify_fd);
}

int
wk_slots_leases(wk_slots *s, wk_lease_ref *out)
{
    int k = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++) {
        const wk_slot *sl = &s->v[i];
        if (!sl->busy)
            continue;
        out[k].slot = i;
        out[k].gen = sl->gen;
        memcpy(out[k].id, sl->claim.id, sizeof(out[k].id));
        memcpy(out[k].queue, sl->claim.queue, sizeof(out[k].queue));
        memcpy(out[k].lease, sl->claim.lease, sizeof(out[k].lease));
        k++;
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

void
wk_slots_renewed(wk_slots *s, int slot, uint64_t gen, int64_t deadline)
{
    pthread_mutex_lock(&s->mu);
    wk_slot *sl = &s->v[slot];
    if (sl->busy && sl->gen == gen && deadline > sl->lease_deadline)
        sl->lease_deadline = deadline;
    pthread_mutex_unlock(&s->mu);
}

/* stop_locked raises slot's stop reason and pokes its handler. */
static void
stop_locked(wk_slot *sl, wk_stop reason)
{
    if (!sl->busy || reason <= sl->stop)
        return;
    sl->stop = reason;
    poke(sl->stop_pipe[1]);
}

void
wk_slots_stop(wk_slots *s, int slot, uint64_t gen, wk_stop reason)
{
    pthread_mutex_lock(&s->mu);
    wk_slot *sl = &s->v[slot];
    if (gen == 0 || sl->gen == gen)
        stop_locked(sl, reason);
    pthread_mutex_unlock(&s->mu);
}

int64_t
wk_slots_expire(wk_slots *s, int64_t now)
{
    int64_t earliest = INT64_MAX;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++) {
        wk_slot *sl = &s->v[i];
        if (!sl->busy)
            continue;
        if (sl->lease_deadline <= now)
            stop_locked(sl, WK_STOP_LEASE_EXPIRED);
        else if (sl->lease_deadline < earliest)
            earliest = sl->lease_deadline;
    }
    pthread_mutex_unlock(&s->mu);
    return earliest;
}

int
wk_slots_busy(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    int b = s->busy;
    pthread_mutex_unlock(&s->mu);
    return b;
}

void
wk_slots_drain(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

void
wk_slots_stop_all(wk_slots *s, wk_stop reason)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        stop_locked(&s->v[i], reason);
    pthread_mutex_unlock(&s->mu);
}

void
wk_slots_close(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    for (int i = 0; i < s->n; i++)
        pthread_cond_signal(&s->v[i].assigned);
    pthread_mutex_unlock(&s->mu);
}

void
wk_slots_kill_children(wk_slots *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        if (s->v[i].child_pgid > 0)
            kill(-s->v[i].child_pgid, SIGKILL);
    pthread_mutex_unlock(&s->mu);
}
