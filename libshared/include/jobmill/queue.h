/* queue.h - every job state transition, each one Lua script run atomically in
 * Redis, plus the reads (get, list, counts) the services need.
 *
 * Every write re-checks its own guard inside its script (state, fencing token)
 * and changes nothing when the guard fails, so callers may race freely: any
 * number of workers, api processes and janitors against one Redis.
 * Deadlines come from Redis TIME inside the scripts, never from this host.
 *
 * All functions take a connected-or-reconnectable jm_redis (not shared across
 * threads) and return JM_OK or a negative jm_err; Redis trouble is
 * JM_ERR_REDIS (unreachable: retry later, nothing changed or the change is
 * atomic and its outcome unknown) or JM_ERR_REPLY.
 */
#ifndef JOBMILL_QUEUE_H
#define JOBMILL_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/job.h"
#include "jobmill/redis.h"

/* The built-in retention defaults (jobs.result_ttl_s, jobs.failed_ttl_s). */
#define JM_RESULT_TTL_DEFAULT_S 3600
#define JM_FAILED_TTL_DEFAULT_S 604800

/* Retention defaults passed to the scripts that finish jobs. */
typedef struct jm_retention {
    int result_ttl_s; /* succeeded, canceled, expired (job's own result_ttl_s wins) */
    int failed_ttl_s; /* failed (dead-letter) */
} jm_retention;

/* jm_queue_set_retention sets the process's defaults for every call given a
 * NULL jm_retention (and for zero fields of a given one). Call once at
 * start-up, before threads; jm_service_start does it from the config. */
void jm_queue_set_retention(const jm_retention *ret);

/* ---- submit ---- */

typedef struct jm_enqueue_result {
    char id[JM_ID_LEN + 1];
    bool created; /* false: the idempotency key matched an existing job */
} jm_enqueue_result;

/* jm_queue_enqueue stores spec as a new queued (or scheduled) job, or returns
 * the existing job of its idempotency key (out->created false). max_queues >
 * 0 refuses (JM_ERR_LIMIT) a spec whose queue would be one more than
 * max_queues known queues. When job is not NULL it gets the record as stored,
 * from the same round trip; the caller clears it with jm_job_clear. */
int jm_queue_enqueue(jm_redis *r, const jm_job_spec *spec, int max_queues, jm_enqueue_result *out,
                     jm_job *job, jm_error *err);

/* jm_queue_enqueue_batch submits n specs in one pipelined MULTI/EXEC: all are
 * stored or none (a failure before EXEC stores nothing). out has n slots.
 * JM_ERR_LIMIT (err->field "jobs[i].queue") when the batch would create more
 * than max_queues queues, checked before anything is stored. When jobs is
 * not NULL, jobs[n] get the records as stored: on success the caller clears
 * each, on failure they are already cleared. */
int jm_queue_enqueue_batch(jm_redis *r, const jm_job_spec *specs, size_t n, int max_queues,
                           jm_enqueue_result *out, jm_job *jobs, jm_error *err);

/* ---- claim and the claimed job's life ---- */

/* Lease tokens: "<fence>-<nonce>" (at most JM_LEASE_MAX chars), the proof
 * of holding a claim that every later fenced call presents. */
#define JM_LEASE_MAX 47
#define JM_NONCE_LEN 16

/* A claimed job, as handed to a handler. Owns its strings. */
typedef struct jm_claim {
    char id[JM_ID_LEN + 1];
    char queue[JM_QUEUE_MAX + 1];
    char lease[JM_LEASE_MAX + 1]; /* lease token: pass it to every fenced call */
    char *type;
    char *payload;
    int64_t fence; /* fencing token of this claim (JOBMILL_FENCE); grows
                           with every claim of the queue, also across a Redis
                           that lost writes, while its clock does not step back */
    int attempt;   /* 1-based */
    int max_attempts;
    int timeout_s; /* 0 = none given */
    int64_t created_ms, run_at_ms, started_ms;
} jm_claim;

void jm_claim_clear(jm_claim *c);

/* One claim call: what to claim, and what the call leaves for its caller. */
typedef struct jm_claim_call {
    const char *queue;
    int max; /* jobs at most */
    int lease_ms;
    const char *worker_id;
    /* set by jm_queue_claim: */
    char nonce[JM_NONCE_LEN + 1]; /* this call's random nonce: after a
                                       JM_ERR_REDIS (reply lost, outcome
                                       unknown) jm_queue_claim_recover takes
                                       back what the call claimed */
    bool more;                    /* the scan budget ran out before the
                                       list did: call again at once */
    int throttle_ms;              /* > 0: an operator limit (rate or
                                       concurrency) held the claim back;
                                       nothing more for this long */
} jm_claim_call;

/* jm_queue_claim claims up to call->max queued jobs of call->queue with a
 * lease of call->lease_ms (a paused queue yields none). out has max slots;
 * *n gets the number claimed (0 when none is queued). Each claim must be
 * cleared. Dead entries (canceled, expired) are dropped on the way, a
 * bounded number per call: call->more asks for another call. */
int jm_queue_claim(jm_redis *r, jm_claim_call *call, jm_claim *out, int *n, jm_error *err);

/* jm_queue_claim_recover returns, with a fresh lease, the jobs that the
 * claim call (same queue and nonce) took but whose reply was lost, as far as
 * they are still held under that call's tokens (for one lease after the
 * claim). *n may be 0: the claim never ran, or its jobs were given back. */
int jm_queue_claim_recover(jm_redis *r, const jm_claim_call *call, jm_claim *out, int *n,
                           jm_error *err);

/* A lease to renew. */
typedef struct jm_lease {
    const char *id;    /* borrowed */
    const char *queue; /* borrowed */
    const char *lease; /* borrowed lease token */
} jm_lease;

typedef enum jm_lease_status {
    JM_LEASE_OK = 0,     /* renewed */
    JM_LEASE_LOST = 1,   /* not ours any more: stop and commit nothing */
    JM_LEASE_CANCEL = 2, /* renewed, but a cancel was requested: stop it */
} jm_lease_status;

/* jm_queue_heartbeat renews n leases by lease_ms in one round trip (one
 * script per queue, pipelined); status[i] gets a jm_lease_status. */
int jm_queue_heartbeat(jm_redis *r, const jm_lease *leases, size_t n, int lease_ms, int *status,
                       jm_error *err);

/* jm_queue_complete commits success with result (JSON text, NULL = null).
 * JM_ERR_FENCE when the lease token is stale (lost lease, canceled, done). */
int jm_queue_complete(jm_redis *r, const char *id, const char *lease, const char *result,
                      const jm_retention *ret, jm_error *err);

/* jm_queue_fail commits a failed attempt. With attempts left and !permanent
 * the job is scheduled again after backoff_ms (*out_state = SCHEDULED); else it
 * is dead-lettered (*out_state = FAILED); a job whose cancel was requested
 * becomes canceled (*out_state = CANCELED). JM_ERR_FENCE when stale. */
int jm_queue_fail(jm_redis *r, const char *id, const char *lease, const char *error, bool permanent,
                  int64_t backoff_ms, const jm_retention *ret, jm_state *out_state, jm_error *err);

/* jm_queue_release puts a running job back at the head of its queue and
 * gives its attempt back (drain; *out_state = QUEUED); a job whose cancel was
 * requested becomes canceled instead (*out_state = CANCELED). out_state may
 * be NULL. JM_ERR_FENCE when stale. */
int jm_queue_release(jm_redis *r, const char *id, const char *lease, jm_state *out_state,
                     jm_error *err);

/* jm_queue_abandon: the worker stopped the handler because its lease could
 * not be renewed. While the lease still holds in Redis it is a release
 * (attempt given back); once it ran out there, it is the janitor's lease
 * expiry done at once (attempt spent: QUEUED, or FAILED with none left, or
 * CANCELED when a cancel was requested). JM_ERR_FENCE when stale. */
int jm_queue_abandon(jm_redis *r, const char *id, const char *lease, const jm_retention *ret,
                     jm_state *out_state, jm_error *err);

/* jm_queue_cancel_ack: the worker stopped a job whose cancel was requested;
 * it becomes canceled. JM_ERR_FENCE when stale. */
int jm_queue_cancel_ack(jm_redis *r, const char *id, const char *lease, const jm_retention *ret,
                        jm_error *err);

/* An outcome to commit: the single calls above, as data, so a worker can
 * commit several in one round trip (jm_queue_outcomes). */
typedef enum jm_outcome_kind {
    JM_OUTCOME_COMPLETE = 0, /* result */
    JM_OUTCOME_FAIL,         /* error, permanent, backoff_ms */
    JM_OUTCOME_CANCEL_ACK,
    JM_OUTCOME_RELEASE, /* drain: attempt given back */
    JM_OUTCOME_ABANDON, /* see jm_queue_abandon */
} jm_outcome_kind;

typedef struct jm_outcome {
    jm_outcome_kind kind;
    const char *id, *lease; /* borrowed */
    const char *result;     /* COMPLETE: JSON text, NULL = null (borrowed) */
    const char *error;      /* FAIL (borrowed) */
    bool permanent;         /* FAIL */
    int64_t backoff_ms;     /* FAIL */
    /* set by the call: */
    int rc;         /* JM_OK, JM_ERR_FENCE (stale), Redis errors... */
    jm_state state; /* JM_OK: the state the job is in now */
    jm_error err;
} jm_outcome;

/* jm_queue_outcome commits one outcome (what the single calls above do).
 * Returns o->rc. */
int jm_queue_outcome(jm_redis *r, jm_outcome *o, const jm_retention *ret);

/* jm_queue_outcomes commits n outcomes with one script call per slot (one
 * round trip for a queue's outcomes): each gets its own rc, state and err as
 * if committed alone (a Redis error is the rc of every outcome of the calls
 * it hit). Returns JM_OK, or the first error met. */
int jm_queue_outcomes(jm_redis *r, jm_outcome *v, size_t n, const jm_retention *ret);

/* jm_queue_outcomes_fetch is jm_queue_outcomes that also claims, in the same
 * script call as the outcomes of call->queue's slot, up to call->max jobs
 * of call->queue ("complete and fetch next": the slots these outcomes free
 * get their next jobs without a claim round trip). out has call->max slots;
 * *got gets the number claimed, 0 when no outcome was in that slot or none
 * was queued. When the function returns, call->nonce is "" if the fetch's
 * outcome is known (its jobs are in out, or it never ran), and the call's
 * nonce otherwise (a lost reply, a reply that could not be read): then
 * jm_queue_claim_recover with call takes back what the fetch claimed. */
int jm_queue_outcomes_fetch(jm_redis *r, jm_outcome *v, size_t n, const jm_retention *ret,
                            jm_claim_call *call, jm_claim *out, int *got);

/* jm_queue_progress stores progress (JSON text) on a running job. */
int jm_queue_progress(jm_redis *r, const char *id, const char *lease, const char *progress,
                      jm_error *err);

/* ---- operator transitions ---- */

/* jm_queue_cancel: queued/scheduled -> canceled; running -> cancel requested.
 * JM_ERR_NOT_FOUND, JM_ERR_STATE (already terminal). */
int jm_queue_cancel(jm_redis *r, const char *id, const jm_retention *ret, jm_error *err);

/* jm_queue_retry: failed/canceled/expired -> queued with attempts reset.
 * JM_ERR_NOT_FOUND, JM_ERR_STATE. */
int jm_queue_retry(jm_redis *r, const char *id, jm_error *err);

/* jm_queue_pause sets (paused=true) or clears a queue's pause flag. */
int jm_queue_pause(jm_redis *r, const char *queue, bool paused, jm_error *err);

/* ---- janitor duties: each handles at most batch ids; *n gets how many ---- */

/* Expired leases: back to queued (attempt spent at claim), dead-lettered when
 * none are left, canceled when a cancel was requested; active entries whose
 * record is not running are dropped. n_canceled and n_dropped may be NULL.
 * The four counts add up to the ids handled (batch at most). */
int jm_queue_requeue_expired(jm_redis *r, const char *queue, int batch, const jm_retention *ret,
                             int *n_requeued, int *n_failed, int *n_canceled, int *n_dropped,
                             jm_error *err);
/* Due scheduled jobs -> queued. */
int jm_queue_promote_due(jm_redis *r, const char *queue, int batch, int *n, jm_error *err);
/* Queued/scheduled jobs past expires_at -> expired. */
int jm_queue_expire_stale(jm_redis *r, const char *queue, int batch, const jm_retention *ret,
                          int *n, jm_error *err);
/* Terminal index entries whose record has expired -> removed (counts fixed),
 * by expiry time: a long retention never holds up a short one. */
int jm_queue_purge(jm_redis *r, const char *queue, int batch, int *n, jm_error *err);
/* Dead entries (record no longer queued) at the head of pending -> dropped,
 * so they never stand between an idle worker and a new job. */
int jm_queue_trim_pending(jm_redis *r, const char *queue, int batch, int *n, jm_error *err);

/* ---- reads ---- */

/* jm_queue_get reads a job. JM_ERR_NOT_FOUND when there is none. */
int jm_queue_get(jm_redis *r, const char *id, jm_job *out, jm_error *err);

/* jm_queue_watch is jm_queue_get for a long-poll: it also marks the job as
 * waited on, so the script that finishes it publishes its id on the done
 * channel (pubsub.h); jobs nobody watches are never published. */
int jm_queue_watch(jm_redis *r, const char *id, jm_job *out, jm_error *err);

/* jm_queue_get_many reads n jobs in one pipelined round trip; found[i] says
 * whether out[i] was filled. */
int jm_queue_get_many(jm_redis *r, const char *const *ids, size_t n, jm_job *out, bool *found,
                      jm_error *err);

/* A concurrency cap on one job type of a queue (docs/limits.md). */
#define JM_TYPE_CAPS_MAX 16 /* caps per queue */
typedef struct jm_type_cap {
    char type[JM_TYPE_MAX + 1];
    int concurrency; /* at most this many of the type running at once */
    int running;     /* jm_queue_stats only: running now, counted by the cap */
} jm_type_cap;

/* A queue's operator limits (docs/limits.md). */
typedef struct jm_queue_limits {
    int rate_n;      /* at most rate_n jobs started ... */
    int64_t rate_ms; /* ... per rate_ms; rate_n 0 = no rate limit */
    int concurrency; /* at most this many running at once; 0 = no cap */
    int64_t tokens;  /* jm_queue_stats only: whole tokens now */
    int n_types;     /* jm_queue_stats only: the caps per job type */
    jm_type_cap types[JM_TYPE_CAPS_MAX];
} jm_queue_limits;

typedef struct jm_queue_info {
    char name[JM_QUEUE_MAX + 1];
    int64_t counts[JM_STATE_COUNT];
    bool paused;
    int64_t oldest_ms; /* created/run_at of the oldest queued job, 0 = none */
    jm_queue_limits limits;
} jm_queue_info;

/* How jm_queue_set_limits changes one limit. */
typedef enum jm_limit_op { JM_LIMIT_KEEP = 0, JM_LIMIT_SET, JM_LIMIT_CLEAR } jm_limit_op;

/* jm_queue_set_limits sets, clears or keeps queue's rate limit (want's
 * rate_n per rate_ms; a new rate starts with a full bucket) and concurrency
 * cap; *now gets the limits as they are after it. Claims of every worker
 * obey them from the next call on. JM_OK or an error. */
int jm_queue_set_limits(jm_redis *r, const char *queue, jm_limit_op rate, jm_limit_op conc,
                        const jm_queue_limits *want, jm_queue_limits *now, jm_error *err);

/* jm_queue_set_type_cap sets (concurrency > 0) or clears (0) the cap on
 * job type of queue. JM_ERR_INVALID (field "types") when the queue has
 * JM_TYPE_CAPS_MAX caps already. */
int jm_queue_set_type_cap(jm_redis *r, const char *queue, const char *type, int concurrency,
                          jm_error *err);

/* jm_queue_names returns the known queue names: *names is a new array of new
 * strings (free each and the array); *n their number. */
int jm_queue_names(jm_redis *r, char ***names, size_t *n, jm_error *err);

/* jm_queue_info reads one queue's counts and pause flag. */
int jm_queue_stats(jm_redis *r, const char *queue, jm_queue_info *out, jm_error *err);

/* jm_queue_list_ids lists ids of queue in state, limit at most, from cursor
 * (NULL or "" = start). *ids is a new array of new strings; next_cursor gets
 * the cursor for the next page or "" when done. */
int jm_queue_list_ids(jm_redis *r, const char *queue, jm_state state, const char *cursor, int limit,
                      char ***ids, size_t *n, char next_cursor[64], jm_error *err);

/* jm_strv_free frees an array of n strings from the functions above. */
void jm_strv_free(char **v, size_t n);

#endif
