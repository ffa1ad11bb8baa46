/* waiters.c - long-poll waiters and the one pub/sub subscriber thread of the
 * process (see waiters.h).
 *
 * One mutex guards the table, the counters and every waiter's flags; each
 * waiter has its own condition variable (CLOCK_MONOTONIC), so a done message
 * wakes exactly the requests waiting for that id. The subscriber thread reads
 * with a bounded wait (jm_pubsub_next, 250 ms) so it sees the stop flag, and
 * reconnects with the jm_redis backoff when Redis drops.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "jobmill/pubsub.h"
#include "waiters.h"

#define API_WAITERS_BUCKETS 64   /* power of two */
#define API_WAITERS_READ_MS 250  /* bounded subscriber read: stop latency */
#define API_WAITERS_RETRY_MS 100 /* pause between failed subscribe attempts */

struct api_waiters {
    pthread_mutex_t lock;
    pthread_cond_t stop_cond; /* wakes the subscriber's retry pause */
    api_waiter *buckets[API_WAITERS_BUCKETS];
    int count;
    int max;
    bool shutting_down; /* no new waiters */
    bool stop;          /* subscriber thread must exit */
    atomic_bool subscribed;
    pthread_t thread;
    bool thread_started;
    jm_redis *redis; /* the subscriber's own handle */
    jm_service *svc; /* borrowed: error counter */
};

static unsigned
bucket_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h & (API_WAITERS_BUCKETS - 1);
}

/* fire wakes every waiter of id. */
static void
fire(api_waiters *ws, const char *id)
{
    pthread_mutex_lock(&ws->lock);
    for (api_waiter *w = ws->buckets[bucket_of(id)]; w != NULL; w = w->next) {
        if (strcmp(w->id, id) == 0) {
            w->fired = 1;
            pthread_cond_signal(&w->cond);
        }
    }
    pthread_mutex_unlock(&ws->lock);
}

/* recheck_all tells every waiter to re-read its job. */
static void
recheck_all(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    for (int b = 0; b < API_WAITERS_BUCKETS; b++) {
        for (api_waiter *w = ws->buckets[b]; w != NULL; w = w->next) {
            w->recheck = 1;
            pthread_cond_signal(&w->cond);
        }
    }
    pthread_mutex_unlock(&ws->lock);
}

/* pause_unless_stopped waits up to ms for the stop flag; returns it. */
static bool
pause_unless_stopped(api_waiters *ws, int ms)
{
    int64_t until = jm_clock_ms() + ms;
    pthread_mutex_lock(&ws->lock);
    while (!ws->stop) {
        if (jm_cond_wait_until(&ws->stop_cond, &ws->lock, until) == ETIMEDOUT)
            break;
    }
    bool stop = ws->stop;
    pthread_mutex_unlock(&ws->lock);
    return stop;
}

static bool
stopping(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    bool stop = ws->stop;
    pthread_mutex_unlock(&ws->lock);
    return stop;
}

/* subscriber is the thread: subscribe, dispatch messages, resubscribe after
 * a failure. */
static void *
subscriber(void *arg)
{
    api_waiters *ws = arg;
    bool warned = false;
    while (!stopping(ws)) {
        jm_error err;
        jm_error_clear(&err);
        if (!atomic_load(&ws->subscribed)) {
            if (jm_pubsub_subscribe_done(ws->redis, &err) != JM_OK) {
                if (!warned) {
                    jm_service_redis_error(ws->svc, "subscribe");
                    jm_log_warn("long-poll subscriber cannot subscribe; retrying", "error", err.msg,
                                NULL);
                    warned = true;
                }
                pause_unless_stopped(ws, API_WAITERS_RETRY_MS);
                continue;
            }
            atomic_store(&ws->subscribed, true);
            if (warned)
                jm_log_info("long-poll subscriber subscribed again", NULL);
            warned = false;
            recheck_all(ws);
        }
        char id[JM_ID_LEN + 8];
        bool got = false;
        if (jm_pubsub_next(ws->redis, API_WAITERS_READ_MS, id, sizeof(id), &got, &err) != JM_OK) {
            atomic_store(&ws->subscribed, false);
            jm_service_redis_error(ws->svc, "subscribe");
            jm_log_warn("long-poll subscription lost; resubscribing", "error", err.msg, NULL);
            warned = true;
            continue;
        }
        if (got && jm_id_valid(id))
            fire(ws, id);
    }
    return NULL;
}

api_waiters *
api_waiters_new(jm_service *svc, int max, jm_error *err)
{
    api_waiters *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    ws->max = max;
    ws->svc = svc;
    atomic_init(&ws->subscribed, false);
    if (pthread_mutex_init(&ws->lock, NULL) != 0) {
        free(ws);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a mutex");
        return NULL;
    }
    if (jm_cond_init(&ws->stop_cond) != 0) {
        pthread_mutex_destroy(&ws->lock);
        free(ws);
        jm_error_set(err, JM_ERR_NOMEM, NULL, "cannot create a condition variable");
        return NULL;
    }
    const jm_config *cfg = &svc->cfg;
    ws->redis = jm_redis_new(cfg->redis_url, cfg->prefix, cfg->redis_timeout_ms, err);
    if (ws->redis == NULL)
        goto failed;
    if (pthread_create(&ws->thread, NULL, subscriber, ws) != 0) {
        jm_error_set(err, JM_ERR_IO, NULL, "cannot start the subscriber thread");
        goto failed;
    }
    ws->thread_started = true;
    return ws;

failed:
    api_waiters_free(ws);
    return NULL;
}

bool
api_waiters_add(api_waiters *ws, api_waiter *w, const char *id)
{
    pthread_mutex_lock(&ws->lock);
    if (ws->shutting_down || ws->count >= ws->max) {
        pthread_mutex_unlock(&ws->lock);
        return false;
    }
    if (jm_cond_init(&w->cond) != 0) {
        pthread_mutex_unlock(&ws->lock);
        return false;
    }
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->fired = 0;
    w->recheck = 0;
    api_waiter **head = &ws->buckets[bucket_of(w->id)];
    w->next = *head;
    if (*head != NULL)
        (*head)->pprev = &w->next;
    w->pprev = head;
    *head = w;
    ws->count++;
    pthread_mutex_unlock(&ws->lock);
    return true;
}

api_wait_result
api_waiters_wait(api_waiters *ws, api_waiter *w, int64_t deadline_ms)
{
    api_wait_result res = API_WAIT_TIMEOUT;
    pthread_mutex_lock(&ws->lock);
    for (;;) {
        if (ws->shutting_down) {
            res = API_WAIT_STOP;
            break;
        }
        if (w->fired) {
            w->fired = 0;
            w->recheck = 0;
            res = API_WAIT_FIRED;
            break;
        }
        if (w->recheck) {
            w->recheck = 0;
            res = API_WAIT_RECHECK;
            break;
        }
        if (jm_cond_wait_until(&w->cond, &ws->lock, deadline_ms) == ETIMEDOUT) {
            res = API_WAIT_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&ws->lock);
    return res;
}

void
api_waiters_remove(api_waiters *ws, api_waiter *w)
{
    pthread_mutex_lock(&ws->lock);
    *w->pprev = w->next;
    if (w->next != NULL)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = NULL;
    ws->count--;
    pthread_mutex_unlock(&ws->lock);
    pthread_cond_destroy(&w->cond);
}

bool
api_waiters_reserve(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    bool ok = !ws->shutting_down && ws->count < ws->max;
    if (ok)
        ws->count++;
    pthread_mutex_unlock(&ws->lock);
    return ok;
}

void
api_waiters_release(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    ws->count--;
    pthread_mutex_unlock(&ws->lock);
}

bool
api_waiters_stopping(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    bool stop = ws->shutting_down;
    pthread_mutex_unlock(&ws->lock);
    return stop;
}

int
api_waiters_count(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    int n = ws->count;
    pthread_mutex_unlock(&ws->lock);
    return n;
}

bool
api_waiters_subscribed(api_waiters *ws)
{
    return atomic_load(&ws->subscribed);
}

void
api_waiters_shutdown(api_waiters *ws)
{
    pthread_mutex_lock(&ws->lock);
    ws->shutting_down = true;
    for (int b = 0; b < API_WAITERS_BUCKETS; b++)
        for (api_waiter *w = ws->buckets[b]; w != NULL; w = w->next)
            pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&ws->lock);
}

void
api_waiters_free(api_waiters *ws)
{
    if (ws == NULL)
        return;
    if (ws->thread_started) {
        pthread_mutex_lock(&ws->lock);
        ws->stop = true;
        pthread_cond_broadcast(&ws->stop_cond);
        pthread_mutex_unlock(&ws->lock);
        pthread_join(ws->thread, NULL);
    }
    jm_redis_free(ws->redis);
    pthread_cond_destroy(&ws->stop_cond);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}
