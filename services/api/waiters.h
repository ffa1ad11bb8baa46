/* waiters.h - long-poll waiters of GET /v1/jobs/{id}?wait=S.
 *
 * One subscriber thread per process holds the only subscription to the
 * job-done channel (its own jm_redis, see jobmill/pubsub.h) and wakes the
 * requests waiting for that job id. Waiters sit in a hash table keyed by job
 * id, each with its own condition variable; a request thread registers one,
 * re-reads the job (closing the race "finished between the read and the
 * registration"), then sleeps on it until woken or its deadline.
 *
 * Whenever the subscription is (re)established, every waiter is told to
 * re-read its job, since completions published while unsubscribed are lost.
 *
 * The same limit also counts the claim long-polls of HTTP workers
 * (api_waiters_reserve), so waiting requests of both kinds together never
 * hold more than max threads.
 *
 * Ownership: api_waiters_new returns a registry the caller frees with
 * api_waiters_free after api_waiters_shutdown and after every request thread
 * is gone. An api_waiter is caller storage (the request's stack) and must be
 * removed before it goes out of scope.
 */
#ifndef JOBMILL_API_WAITERS_H
#define JOBMILL_API_WAITERS_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include "jobmill/config.h"
#include "jobmill/job.h"
#include "jobmill/service.h"

typedef struct api_waiters api_waiters;

typedef struct api_waiter {
    char id[JM_ID_LEN + 1];
    pthread_cond_t cond;
    int fired;                 /* a done message for id arrived */
    int recheck;               /* subscription re-established: re-read */
    struct api_waiter *next;   /* bucket chain */
    struct api_waiter **pprev; /* the pointer that points at this one */
} api_waiter;

typedef enum api_wait_result {
    API_WAIT_FIRED,   /* the job finished (re-read it) */
    API_WAIT_RECHECK, /* re-read it: a message may have been missed */
    API_WAIT_TIMEOUT, /* the deadline passed */
    API_WAIT_STOP,    /* the process is stopping */
} api_wait_result;

/* api_waiters_new starts the subscriber thread. max is the number of
 * concurrent waiters allowed (0 = none). svc counts subscriber Redis errors
 * (op "subscribe"). Returns NULL with err set. */
api_waiters *api_waiters_new(jm_service *svc, int max, jm_error *err);

/* api_waiters_add registers w for job id. Returns false (w untouched) when
 * max waiters are registered already or the registry is shutting down. */
bool api_waiters_add(api_waiters *ws, api_waiter *w, const char *id);

/* api_waiters_wait sleeps until w fires, a recheck, the monotonic
 * deadline_ms (jm_clock_ms scale) or shutdown. */
api_wait_result api_waiters_wait(api_waiters *ws, api_waiter *w, int64_t deadline_ms);

/* api_waiters_remove unregisters w (which must have been added). */
void api_waiters_remove(api_waiters *ws, api_waiter *w);

/* api_waiters_reserve takes one of the max slots for a long-poll that waits
 * on something other than a job's end (a worker's claim, which blocks on its
 * queue's wake list instead). Returns false when max slots are taken or the
 * registry is shutting down. api_waiters_release gives the slot back. */
bool api_waiters_reserve(api_waiters *ws);
void api_waiters_release(api_waiters *ws);

/* api_waiters_stopping tells whether api_waiters_shutdown was called. */
bool api_waiters_stopping(api_waiters *ws);

/* api_waiters_count returns the number registered now. */
int api_waiters_count(api_waiters *ws);

/* api_waiters_subscribed tells whether the subscription is up. */
bool api_waiters_subscribed(api_waiters *ws);

/* api_waiters_shutdown wakes every waiter with API_WAIT_STOP and refuses new
 * ones; the subscriber keeps running until api_waiters_free. */
void api_waiters_shutdown(api_waiters *ws);

/* api_waiters_free stops and joins the subscriber thread and frees ws; no
 * waiter may be registered. NULL is allowed. */
void api_waiters_free(api_waiters *ws);

#endif
