/* schedule.h - cron schedules: definitions (validated from JSON), their
 * storage in Redis (one slot, "<prefix>:{schedules}:", written only by the
 * schedule_*.lua functions), and the janitor's firing of due ticks.
 * docs/schedules.md is the user's page.
 *
 * Exactly once per tick, across any number of janitors: a janitor reads the
 * due schedules and Redis TIME (schedule_due), enqueues each tick's job with
 * the idempotency key "schedule:<name>:<tick_ms>" (a second enqueue of the
 * same tick returns the first job), and only then advances the schedule's
 * next fire with a compare-and-set on (generation, next) (schedule_advance).
 * A janitor killed between the two leaves the schedule due; the next one
 * enqueues the same tick again, gets the same job back, and advances.
 *
 * Ownership: a jm_schedule owns its job text (jm_schedule_clear frees it);
 * arrays from jm_schedule_list/due are freed with jm_schedule_free_all.
 * Every function returns JM_OK or a negative jm_err (jobmill/err.h).
 */
#ifndef JOBMILL_SCHEDULE_H
#define JOBMILL_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "jobmill/cron.h"
#include "jobmill/job.h"
#include "jobmill/queue.h"
#include "jobmill/redis.h"
#include "jobmill/tz.h"

#define JM_SCHEDULE_CATCH_UP_MAX 1000   /* catch_up_max at most */
#define JM_SCHEDULE_CATCH_UP_DEFAULT 10 /* when missed is catch_up and none is given */
#define JM_SCHEDULE_LIST_MAX 10000      /* schedules listed at most */
/* A due tick at most this late is on time, not missed: it fires whatever the
 * policy (the janitor passes max(this, 2 ticks of its own)). */
#define JM_SCHEDULE_GRACE_MS 60000
/* Room for the ticks one firing picks: the missed ones kept plus the on-time
 * ones (at most one a second within the grace). */
#define JM_SCHEDULE_TICKS_MAX (JM_SCHEDULE_CATCH_UP_MAX + 1 + 3600)

/* Missed ticks: due ticks older than the grace (no janitor ran then).
 * On-time ticks always fire, oldest first. */
typedef enum jm_missed {
    JM_MISSED_SKIP = 0, /* missed ticks do not fire, except the latest due tick */
    JM_MISSED_CATCH_UP, /* the latest catch_up_max missed ticks fire too */
} jm_missed;

typedef struct jm_schedule {
    char name[JM_QUEUE_MAX + 1];
    char cron[JM_CRON_MAX + 1];
    char tz[JM_TZ_NAME_MAX + 1];
    char *job; /* the submit body, compact JSON (owned) */
    jm_missed missed;
    int catch_up_max; /* ticks fired at most per catch-up (1 for skip) */
    /* state, as stored (0 / "" = none): */
    char source[8]; /* "api" or "yaml" */
    bool paused;
    int64_t gen;     /* the definition's generation: a replace increments it */
    int64_t next_ms; /* the next tick (epoch ms, Redis time) */
    int64_t last_ms; /* the last tick fired */
    char last_job[JM_ID_LEN + 1];
} jm_schedule;

void jm_schedule_clear(jm_schedule *s);
void jm_schedule_free_all(jm_schedule *v, size_t n);

/* jm_schedule_from_json validates a schedule object {"name", "cron", "tz",
 * "job", "missed", "catch_up_max"} and fills s (cleared first; clear it in
 * every case). JM_ERR_INVALID with err->field naming the field (a job
 * field as "job.type"); a cron that never fires is refused too. */
int jm_schedule_from_json(const json_t *body, jm_schedule *s, jm_error *err);

/* jm_schedule_to_json: a new object: the definition, "paused", "source",
 * "next_run", "last_run" (epoch seconds or null), "last_job" (id or null). */
json_t *jm_schedule_to_json(const jm_schedule *s);

/* jm_schedule_ticks: the policy, a pure function. s->next_ms is the first
 * due tick; every tick up to now_ms is due; those older than grace_ms are
 * missed. Writes the ticks to fire, oldest first, into ticks (room for
 * JM_SCHEDULE_TICKS_MAX): every on-time tick, and of the missed ones the
 * latest catch_up_max (catch_up) or, when no tick is on time, the latest
 * (skip); their number into *n, how many were due into *due (the rest are
 * skipped), and the first tick after now_ms into *next_ms. JM_ERR_INVALID
 * when the stored cron or tz no longer parse. */
int jm_schedule_ticks(const jm_schedule *s, int64_t now_ms, int64_t grace_ms, int64_t *ticks,
                      int *n, int *due, int64_t *next_ms, jm_error *err);

/* ---- storage (Redis) ---- */

/* jm_schedule_put creates or replaces s (source "api" or "yaml"); its first
 * tick is the first after Redis's now. *result gets 1 created, 2 replaced,
 * 0 unchanged (same definition: the next tick is kept). JM_ERR_STATE when
 * source is "api" and the janitor's YAML owns the name. */
int jm_schedule_put(jm_redis *r, const jm_schedule *s, const char *source, int *result,
                    jm_error *err);

/* jm_schedule_list reads one schedule (name) or all (name NULL, by name, at
 * most JM_SCHEDULE_LIST_MAX) into a new array *out of *n. One named but
 * absent: JM_ERR_NOT_FOUND. */
int jm_schedule_list(jm_redis *r, const char *name, jm_schedule **out, size_t *n, jm_error *err);

/* jm_schedule_delete removes a schedule. JM_ERR_NOT_FOUND when absent. */
int jm_schedule_delete(jm_redis *r, const char *name, jm_error *err);

/* jm_schedule_pause pauses or resumes a schedule (a resumed one next fires
 * at its first tick after now: paused ticks are never caught up).
 * JM_ERR_NOT_FOUND when absent. */
int jm_schedule_pause(jm_redis *r, const char *name, bool paused, jm_error *err);

/* ---- firing (the janitor) ---- */

/* jm_schedule_due reads at most max due schedules into a new array (free
 * with jm_schedule_free_all), Redis's clock into *now_ms and, when later_ms
 * is not NULL, the next tick of the first schedule not due yet (0: none). */
int jm_schedule_due(jm_redis *r, int max, jm_schedule **out, size_t *n, int64_t *now_ms,
                    int64_t *later_ms, jm_error *err);

/* jm_schedule_enqueue_tick enqueues the job of s for tick_ms, idempotent by
 * (s->name, tick_ms): out->created is false when the tick was enqueued
 * before. JM_ERR_DUPLICATE when the job's unique_key is held by another job
 * (the tick is then done without a job). */
int jm_schedule_enqueue_tick(jm_redis *r, const jm_schedule *s, int64_t tick_ms,
                             jm_enqueue_result *out, jm_error *err);

/* jm_schedule_advance: the compare-and-set that ends a firing: when s still
 * has generation s->gen and next tick s->next_ms, its next tick becomes
 * next_ms and its last run last_ms with last_job (may be ""). *won tells
 * whether this call advanced it. */
int jm_schedule_advance(jm_redis *r, const jm_schedule *s, int64_t next_ms, int64_t last_ms,
                        const char *last_job, bool *won, jm_error *err);

/* What jm_schedule_run_due did. */
typedef struct jm_schedule_stats {
    int fired;       /* ticks whose job this call created */
    int skipped;     /* due ticks the missed policy dropped */
    int failed;      /* schedules that could not fire (bad job, ...): logged */
    int64_t now_ms;  /* Redis's clock when the call read the due schedules */
    int64_t next_ms; /* the earliest next tick of any schedule after the call
                        (Redis time; 0 = no schedule): when to call again */
} jm_schedule_stats;

/* jm_schedule_run_due fires every due schedule (at most max per call): the
 * ticks jm_schedule_ticks picks (grace_ms as there), each enqueued, then the
 * advance. A
 * schedule whose job cannot be enqueued for good (its queue name or job no
 * longer valid) is advanced anyway, so it never blocks the others. Returns
 * JM_OK or the Redis error that stopped it. */
int jm_schedule_run_due(jm_redis *r, int max, int64_t grace_ms, jm_schedule_stats *st,
                        jm_error *err);

#endif
