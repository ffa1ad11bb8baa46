/* janitor.h - jobmill-janitor's internal interfaces: the janitor state shared
 * by its files (main.c the loop, tick.c the duties of one tick,
 * schedules.c the cron schedules, queue_limits.c the YAML queue limits,
 * reconcile_pass.c the reconciler slice, janitor_metrics.c the families,
 * ready.c the /readyz check).
 *
 * Ownership: main.c owns the one janitor value and everything in it; the
 * other files borrow it. Only the main thread touches it, except the
 * readiness state (janitor_ready), which civetweb threads read.
 */
#ifndef JOBMILL_JANITOR_H
#define JOBMILL_JANITOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "jobmill/clock.h"
#include "jobmill/metrics.h"
#include "jobmill/queue.h"
#include "jobmill/reconcile.h"
#include "jobmill/redis.h"
#include "jobmill/service.h"

/* Work caps per tick: a duty is called again for a queue while its last call
 * filled the batch, at most this many times per tick... */
#define JANITOR_MAX_CALLS 20
/* ...and the reconciler makes at most this many bounded calls per pass. */
#define JANITOR_RECONCILE_SLICES 32
/* Queues whose indexes hold at most this many entries get their counts
 * recomputed by the reconciler (one O(n) script). */
#define JANITOR_RECOUNT_MAX 10000
/* Due schedules fired per tick at most (the rest wait for the next tick). */
#define JANITOR_SCHEDULES_PER_TICK 1000
/* Between ticks the janitor wakes for the next schedule tick, but never
 * sooner than this after firing (no spinning on a tick that stays due). */
#define JANITOR_SCHED_MIN_WAIT_MS 5

/* Label values of jobmill_janitor_requeued_total{reason}. */
typedef enum janitor_reason {
    JANITOR_REASON_LEASE_EXPIRED = 0, /* lease expired, attempts left: back to queued */
    JANITOR_REASON_DEAD_LETTERED,     /* lease expired, no attempt left: failed */
    JANITOR_REASON_COUNT
} janitor_reason;

typedef struct janitor_metrics {
    jm_metric_family *requeued; /* jobmill_janitor_requeued_total{queue,reason} */
    jm_metric_family *expired;  /* jobmill_janitor_expired_total{queue} */
    jm_metric_family *promoted; /* jobmill_janitor_promoted_total{queue} */
    jm_metric_family *purged;   /* jobmill_janitor_purged_total{queue} */
    jm_metric_series *repaired[JM_REPAIR_KIND_COUNT]; /* jobmill_janitor_repaired_total{kind} */
    jm_metric_series *pruned;                         /* jobmill_janitor_workers_pruned_total */
    jm_metric_series *ticks;                          /* jobmill_janitor_ticks_total */
    jm_metric_series *last_tick;     /* jobmill_janitor_last_tick_timestamp_seconds */
    jm_metric_series *duration;      /* jobmill_janitor_tick_duration_seconds */
    jm_metric_series *cycles;        /* jobmill_janitor_reconcile_cycles_total */
    jm_metric_series *workers_live;  /* jobmill_workers_live */
    jm_metric_series *hb_age_max;    /* jobmill_worker_heartbeat_age_max_seconds */
    jm_metric_series *sched_fired;   /* jobmill_janitor_schedule_fired_total */
    jm_metric_series *sched_skipped; /* jobmill_janitor_schedule_skipped_total */
} janitor_metrics;

typedef struct janitor {
    jm_service svc;            /* config, registry, redis error counter */
    jm_redis *redis;           /* the loop's connection */
    jm_reconciler *reconciler; /* its cursor lives across ticks */
    janitor_metrics m;
    jm_retention ret;
    int64_t tick_no;       /* ticks started */
    bool redis_down;       /* the last tick met an unreachable Redis */
    atomic_int version_ok; /* layout version checked (read by /readyz) */
    bool version_warned;   /* "layout not checked yet" was logged */
    bool schedules_synced; /* janitor.schedules (YAML) stored in Redis */
    bool limits_synced;    /* janitor.queue_limits (YAML) set in Redis */
    int64_t sched_at;      /* jm_clock_ms() of the next schedule tick, -1 = none
                              known: run() fires it between ticks */
    /* /readyz: its own connection, used under ready_lock by civetweb threads */
    jm_redis *ready_redis;
    pthread_mutex_t ready_lock;
} janitor;

/* janitor_metrics_init registers the janitor's families in reg and creates
 * the unlabelled and per-kind series. Returns JM_OK or JM_ERR_NOMEM. */
int janitor_metrics_init(janitor_metrics *m, jm_metrics *reg);
/* janitor_metrics_queue creates queue's series at 0 (idempotent). */
void janitor_metrics_queue(janitor_metrics *m, const char *queue);
/* janitor_metrics_add adds n to fam's series {queue} or {queue, reason}. */
void janitor_metrics_add(jm_metric_family *fam, const char *queue, const char *reason, int n);
/* janitor_reason_name returns the static label of a reason. */
const char *janitor_reason_name(janitor_reason r);

/* janitor_tick runs one tick: every duty over every queue, the worker prune
 * and the worker liveness gauges, every janitor.reconcile_every ticks, a reconciler pass. Redis errors
 * are counted and logged, never fatal. Returns JM_OK, JM_ERR_REDIS (Redis
 * unreachable: the tick stopped early) or JM_ERR_VERSION (exit). */
int janitor_tick(janitor *j);

/* janitor_schedules fires the due cron schedules (schedules.c) and sets
 * j->sched_at to the next one. JM_OK, or JM_ERR_REDIS when Redis is
 * unreachable (other failures are counted and logged, and the tick goes
 * on). Called by every tick, and by main.c's loop at j->sched_at. */
int janitor_schedules(janitor *j);

/* janitor_schedules_upsert stores the schedules of the YAML config
 * (janitor.schedules) as YAML-owned; janitor_schedules calls it until it
 * has succeeded once (the first tick, or the first with Redis reachable).
 * JM_OK or the Redis error. */
int janitor_schedules_upsert(janitor *j);

/* janitor_queue_limits_apply sets the queue limits of the YAML config
 * (janitor.queue_limits; queue_limits.c); janitor_tick calls it until it
 * has succeeded once. JM_OK or JM_ERR_REDIS (other failures are logged). */
int janitor_queue_limits_apply(janitor *j);

/* janitor_reconcile_pass runs one bounded reconciler pass, with a time
 * budget of budget_ms. Returns JM_OK or the error that stopped it. */
int janitor_reconcile_pass(janitor *j, int64_t budget_ms);

/* janitor_redis_failed counts a failure of op, logs it (once per outage for
 * JM_ERR_REDIS) and returns err->code. */
int janitor_redis_failed(janitor *j, const char *op, const char *queue, const jm_error *err);

/* janitor_ready is the /readyz callback (user = the janitor). */
int janitor_ready(void *user, char *why, size_t why_len);

#endif
