/* worker.h - the state one jobmill-worker process shares between its
 * threads: the main thread (start, drain, stop), the claimer, one runner per
 * slot and the heartbeat.
 *
 * Redis connections (a hiredis context is never used by two threads at
 * once): claim_r belongs to the claimer (and to main before the claimer
 * starts), hb_r to the heartbeat thread (and to main after it is joined),
 * out_r to whichever runner holds out_mu (the group-commit leader,
 * commit.c), side.r to whichever runner holds side.mu (an exec handler's
 * log lines and progress, logship.h; connected on first use). That is four
 * connections, whatever the concurrency.
 */
#ifndef WK_WORKER_H
#define WK_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include "jobmill/config.h"
#include "jobmill/queue.h"
#include "jobmill/redis.h"
#include "jobmill/service.h"
#include "logship.h"
#include "order.h"
#include "slots.h"
#include "wmetrics.h"

#define WK_ID_MAX 160
#define WK_WAKE_TIMEOUT_MS 1000 /* idle BLPOP: a stop is seen within this */
#define WK_FETCH_LOST_MAX 64    /* more lost fetches wait out their lease */

typedef struct wk_worker {
    jm_service *svc;      /* borrowed */
    const jm_config *cfg; /* &svc->cfg */
    char id[WK_ID_MAX];
    char host[256];
    char *queues_csv;                           /* owned: "a,b,c" for the registry */
    const char *queue_names[JM_CFG_MAX_QUEUES]; /* borrowed from cfg */
    jm_retention ret;
    wk_metrics m;
    wk_slots slots;
    wk_order order;     /* claimer thread only */
    jm_claim_call lost; /* claimer only: a claim whose reply was lost */
    int lost_pending;   /* claimer only: lost needs recovering */
    jm_redis *claim_r, *hb_r, *out_r;
    pthread_mutex_t out_mu; /* guards out_r */
    wk_side side;           /* log lines and progress of exec handlers */
    /* group commit (commit.c): outcomes waiting for the runner that is
     * talking to Redis, under commit_mu */
    pthread_mutex_t commit_mu;
    pthread_cond_t commit_cond; /* a request was answered, or leadership freed */
    struct wk_commit_req *commit_head, *commit_tail;
    int commit_leader; /* a runner is sending a batch */
    /* complete and fetch next (commit.c): a single-queue worker's commits
     * also claim the next jobs of their slots in the same call */
    const char *fetch_queue;                     /* that one queue (borrowed from cfg), or NULL */
    jm_claim_call fetch_lost[WK_FETCH_LOST_MAX]; /* fetches whose reply was
                                                    lost, for the claimer to
                                                    take back; under commit_mu */
    int n_fetch_lost;
    int notify[2]; /* pipe: threads -> main thread */
    /* readiness */
    atomic_int started; /* threads running, layout version checked */
    atomic_int draining;
    atomic_int redis_ok;
    pthread_mutex_t why_mu;
    char why[200]; /* why not ready (Redis side), under why_mu */
    /* threads */
    pthread_t claimer;
    atomic_int claimer_done;
    pthread_t *runners; /* one per slot */
    void *runner_args;  /* owned by runner.c */
    int n_runners;
    pthread_t heartbeat;
    pthread_t watchdog; /* kills handlers whose lease estimate passed */
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cond; /* wakes the heartbeat and watchdog to stop */
    int hb_stop;            /* under hb_mu */
} wk_worker;

/* wk_worker_init fills w for the service's config: identity, metrics,
 * slots, the three (not yet connected) Redis handles. On failure w holds
 * what was built; wk_worker_free releases it in every case. */
int wk_worker_init(wk_worker *w, jm_service *svc, jm_error *err);
void wk_worker_free(wk_worker *w);

/* /readyz and /metrics callbacks (jm_httpd_opts.ready / .refresh). */
int wk_worker_ready(void *user, char *why, size_t why_len);
void wk_worker_refresh(void *user);

/* wk_worker_notify wakes the main thread (non-blocking, any thread). */
void wk_worker_notify(wk_worker *w);

/* wk_worker_set_redis records the outcome of the latest Redis round trip of
 * the heartbeat for /readyz: ok, or the reason it failed. */
void wk_worker_set_redis(wk_worker *w, int ok, const char *why);

/* ---- threads (each file owns one) ---- */

/* claimer.c: claim rounds and the idle BLPOP; runs until draining. */
int wk_claimer_start(wk_worker *w, jm_error *err);
void wk_claimer_join(wk_worker *w);
/* wk_claimer_recover_rest takes back and releases the jobs of fetches whose
 * reply was lost and that the claimer did not recover before it stopped
 * (main thread, after the runners and the claimer are joined). */
void wk_claimer_recover_rest(wk_worker *w);

/* runner.c: one thread per slot runs the jobs handed to it and commits
 * their outcomes. */
int wk_runners_start(wk_worker *w, jm_error *err);
void wk_runners_join(wk_worker *w);

/* heartbeat.c: lease renewal, cancel and lease-loss detection, registry
 * beats and the readiness probe of Redis. */
int wk_heartbeat_start(wk_worker *w, jm_error *err);
void wk_heartbeat_stop(wk_worker *w);

/* commit.c: commits the outcome of the job in slot i (see commit.c). With
 * next non-NULL it may also claim the slot's next job in the same call:
 * returns 1 with *next filled (owned by the caller) and *next_deadline its
 * lease estimate, else 0. */
struct wk_outcome;
int wk_commit(wk_worker *w, int slot, const struct wk_outcome *o, double run_s, jm_claim *next,
              int64_t *next_deadline);
/* wk_commit_take_lost pops one fetch whose reply was lost into *out (the
 * claimer recovers it); returns 0 when there is none. */
int wk_commit_take_lost(wk_worker *w, jm_claim_call *out);

#endif
