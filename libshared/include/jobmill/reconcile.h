/* reconcile.h - the janitor's reconciler: finds and repairs index drift
 * (entries that disagree with job records, records missing from the index
 * their state needs, counts that disagree with the indexes), incrementally,
 * in bounded slices, with a cursor kept in the caller's memory.
 *
 * the scripts are libshared/lua/reconcile.lua.
 * Every repair is one Lua call that re-checks its own guard, so any number of
 * reconcilers (janitor replicas) may run against one Redis at once.
 *
 * One cycle: a SCAN over every job record (each record checked by one
 * script), then, for every queue known when the cycle began, its indexes:
 * a queue whose indexes are small is checked and recounted in one call,
 * otherwise each ZSET is ZSCANned and pending is walked a slice at a time,
 * then counts are recomputed when the indexes hold at most counts_max
 * entries. Each call of jm_reconciler_step does up to max_slices Redis
 * calls and resumes where the previous one stopped.
 *
 * Ownership: jm_reconciler_new returns a new reconciler the caller frees with
 * jm_reconciler_free. It is not thread-safe; the jm_redis passed to each step
 * is borrowed.
 */
#ifndef JOBMILL_RECONCILE_H
#define JOBMILL_RECONCILE_H

#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/redis.h"

/* What a repair fixed; the label values of jobmill_janitor_repaired_total. */
typedef enum jm_repair_kind {
    JM_REPAIR_ACTIVE_NOT_RUNNING = 0, /* active entry whose record is not running: removed */
    JM_REPAIR_RUNNING_UNLEASED,       /* running record missing from active: lease deadline now */
    JM_REPAIR_ORPHAN_ENTRY,           /* active/scheduled/deadlines entry with no record: removed */
    JM_REPAIR_STALE_ENTRY,            /* index entry whose record is in another state: removed */
    JM_REPAIR_UNINDEXED_RECORD,       /* queued/scheduled/terminal record missing from its index */
    JM_REPAIR_COUNTS,                 /* a queue's count of one state rewritten from the indexes */
    JM_REPAIR_KIND_COUNT
} jm_repair_kind;

/* jm_repair_kind_name returns the static label value of k
 * ("active_not_running", ...), or "unknown". */
const char *jm_repair_kind_name(jm_repair_kind k);

/* What reconciler steps did, added to by each step (caller storage; zero it
 * before the first step). Entries that outlive their record in the normal
 * course of things are not drift and are counted apart from the repairs: a
 * terminal entry whose record's retention TTL ran out (removed with its
 * count, as jm_queue_purge does) and a pending entry of a lazily deleted job
 * whose record expired. So a healthy system reports no repair at all. */
typedef struct jm_reconcile_tally {
    int64_t repaired[JM_REPAIR_KIND_COUNT];
    int64_t purged; /* total of the purged entries */
    /* called for every slice that purged n > 0 entries of queue; may be NULL */
    void (*on_purged)(void *user, const char *queue, int64_t n);
    void *user; /* borrowed, passed to on_purged */
} jm_reconcile_tally;

typedef struct jm_reconciler jm_reconciler;

/* jm_reconciler_new returns a new reconciler at the start of a cycle, or NULL
 * (no memory). slice bounds the entries one call examines (> 0); counts_max
 * bounds the index size up to which a queue's counts are recomputed (the
 * recount is one O(n) call). */
jm_reconciler *jm_reconciler_new(int slice, int counts_max);

/* jm_reconciler_free frees rc; NULL is allowed. */
void jm_reconciler_free(jm_reconciler *rc);

/* jm_reconciler_step runs up to max_slices bounded calls of the current
 * cycle, adding what it did to *tally (borrowed, not cleared). *cycle_done is
 * set to 1 when the cycle finished in this call (the step stops there; the
 * next step starts a new cycle), else 0. On an error the cursor stays where
 * it was, so the next step retries the same slice (repairs are idempotent).
 * Returns JM_OK or the error of the failing call (JM_ERR_REDIS, ...). */
int jm_reconciler_step(jm_reconciler *rc, jm_redis *r, int max_slices, jm_reconcile_tally *tally,
                       int *cycle_done, jm_error *err);

#endif
