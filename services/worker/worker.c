/* worker.c - building and tearing down the shared worker state, its
 * identity, and the readiness answer (see worker.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/job.h"
#include "jobmill/log.h"
#include "jobmill/clock.h"
#include "worker.h"

/* make_id writes cfg.worker_id or "<host>-<pid>-<4 random hex>". */
static void
make_id(wk_worker *w)
{
    if (w->cfg->worker_id != NULL && w->cfg->worker_id[0] != '\0') {
        snprintf(w->id, sizeof(w->id), "%s", w->cfg->worker_id);
        return;
    }
    unsigned rnd = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
        rnd = (unsigned)jm_clock_ms() ^ (unsigned)getpid() * 2654435761u;
    if (fd >= 0)
        close(fd);
    /* Keep the id within [A-Za-z0-9_.:-] whatever the host name holds. */
    char host[64];
    size_t k = 0;
    for (const char *h = w->host; *h != '\0' && k + 1 < sizeof(host); h++)
        host[k++] = (strchr("_.:-", *h) != NULL || (*h >= 'a' && *h <= 'z') ||
                     (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9'))
                        ? *h
                        : '_';
    host[k] = '\0';
    snprintf(w->id, sizeof(w->id), "%s-%d-%04x", k > 0 ? host : "worker", (int)getpid(),
             rnd & 0xffffu);
}

static char *
join_queues(const jm_config *cfg)
{
    size_t len = 1;
    for (int i = 0; i < cfg->n_queues; i++)
        len += strlen(cfg->queues[i].name) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < cfg->n_queues; i++) {
        if (i > 0)
            strcat(s, ",");
        strcat(s, cfg->queues[i].name);
    }
    return s;
}

int
wk_worker_init(wk_worker *w, jm_service *svc, jm_error *err)
{
    memset(w, 0, sizeof(*w));
    w->notify[0] = w->notify[1] = -1;
    w->svc = svc;
    w->cfg = &svc->cfg;
    pthread_mutex_init(&w->out_mu, NULL);
    pthread_mutex_init(&w->side.mu, NULL);
    w->side.svc = svc;
    w->side.m = &w->m;
    pthread_mutex_init(&w->commit_mu, NULL);
    pthread_cond_init(&w->commit_cond, NULL);
    pthread_mutex_init(&w->why_mu, NULL);
    pthread_mutex_init(&w->hb_mu, NULL);
    if (jm_cond_init(&w->hb_cond) != 0)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "pthread_cond_init failed");
    snprintf(w->why, sizeof(w->why), "starting");
    if (gethostname(w->host, sizeof(w->host) - 1) != 0)
        snprintf(w->host, sizeof(w->host), "unknown");
    make_id(w);
    w->ret.result_ttl_s = w->cfg->result_ttl_s;
    w->ret.failed_ttl_s = w->cfg->failed_ttl_s;
    for (int i = 0; i < w->cfg->n_queues && i < JM_CFG_MAX_QUEUES; i++)
        w->queue_names[i] = w->cfg->queues[i].name;
    /* Fetching the next job with a commit takes it from the committed job's
     * queue, which keeps the claim order only when there is one queue. */
    w->fetch_queue = w->cfg->n_queues == 1 ? w->queue_names[0] : NULL;
    if ((w->queues_csv = join_queues(w->cfg)) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    if (pipe(w->notify) != 0)
        return jm_error_set(err, JM_ERR_IO, NULL, "pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(w->notify[i], F_SETFL, fcntl(w->notify[i], F_GETFL) | O_NONBLOCK);
        fcntl(w->notify[i], F_SETFD, FD_CLOEXEC);
    }
    if (wk_metrics_init(&w->m, svc->metrics, w->cfg) != JM_OK)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory registering metrics");
    /* Every Redis operation of the worker is in jobmill_redis_errors_total
     * from start-up, at 0. */
    static const char *const ops[] = {"check_version", "claim",     "claim_recover", "wake",
                                      "complete",      "fail",      "cancel_ack",    "release",
                                      "abandon",       "heartbeat", "worker_beat",   "ready",
                                      "logs"};
    for (size_t i = 0; svc->redis_errors != NULL && i < sizeof(ops) / sizeof(ops[0]); i++) {
        const char *v[] = {ops[i], NULL};
        if (jm_metrics_series(svc->redis_errors, v) == NULL)
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory registering metrics");
    }
    int rc = wk_slots_init(&w->slots, w->cfg->concurrency, w->notify[1], err);
    if (rc != JM_OK)
        return rc;
    const jm_config *c = w->cfg;
    if ((w->claim_r = jm_redis_new(c->redis_url, c->prefix, c->redis_timeout_ms, err)) == NULL ||
        (w->hb_r = jm_redis_new(c->redis_url, c->prefix, c->redis_timeout_ms, err)) == NULL ||
        (w->out_r = jm_redis_new(c->redis_url, c->prefix, c->redis_timeout_ms, err)) == NULL ||
        (w->side.r = jm_redis_new(c->redis_url, c->prefix, c->redis_timeout_ms, err)) == NULL)
        return err != NULL && err->code != JM_OK ? err->code : JM_ERR_NOMEM;
    return JM_OK;
}

void
wk_worker_free(wk_worker *w)
{
    jm_redis_free(w->claim_r);
    jm_redis_free(w->hb_r);
    jm_redis_free(w->out_r);
    jm_redis_free(w->side.r);
    if (w->slots.v != NULL)
        wk_slots_destroy(&w->slots);
    for (int i = 0; i < 2; i++)
        if (w->notify[i] >= 0)
            close(w->notify[i]);
    free(w->queues_csv);
    pthread_cond_destroy(&w->hb_cond);
    pthread_mutex_destroy(&w->hb_mu);
    pthread_mutex_destroy(&w->why_mu);
    pthread_mutex_destroy(&w->out_mu);
    pthread_mutex_destroy(&w->side.mu);
    pthread_cond_destroy(&w->commit_cond);
    pthread_mutex_destroy(&w->commit_mu);
    memset(w, 0, sizeof(*w));
}

void
wk_worker_notify(wk_worker *w)
{
    char b = 1;
    ssize_t n = write(w->notify[1], &b, 1); /* EAGAIN: a wake-up is pending */
    (void)n;
}

void
wk_worker_set_redis(wk_worker *w, int ok, const char *why)
{
    pthread_mutex_lock(&w->why_mu);
    if (!ok)
        snprintf(w->why, sizeof(w->why), "redis: %s", why != NULL && why[0] ? why : "unavailable");
    atomic_store(&w->redis_ok, ok != 0);
    pthread_mutex_unlock(&w->why_mu);
}

int
wk_worker_ready(void *user, char *why, size_t why_len)
{
    wk_worker *w = user;
    if (atomic_load(&w->draining)) {
        snprintf(why, why_len, "draining");
        return 0;
    }
    if (!atomic_load(&w->started) || !atomic_load(&w->redis_ok)) {
        pthread_mutex_lock(&w->why_mu);
        snprintf(why, why_len, "%s", atomic_load(&w->started) ? w->why : "starting");
        pthread_mutex_unlock(&w->why_mu);
        return 0;
    }
    return 1;
}

void
wk_worker_refresh(void *user)
{
    wk_worker *w = user;
    jm_metric_set(w->m.busy, wk_slots_busy(&w->slots));
}
