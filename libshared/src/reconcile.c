/* reconcile.c - the janitor's reconciler: a cursor over the job records and
 * every queue's indexes, advanced a bounded slice per Redis call; every
 * repair is made by lua/reconcile.lua, which re-checks its own guard.
 * See reconcile.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/job.h"
#include "jobmill/queue.h"
#include "jobmill/reconcile.h"
#include "call.h"
#include "reply.h"

/* Pending lists longer than this are not walked (LRANGE at an offset and
 * LREM are O(N)); claim drops their dead entries lazily anyway. */
#define RECONCILE_PENDING_MAX 100000

enum { STAGE_START, STAGE_RECORDS, STAGE_QUEUES };
enum { PHASE_SMALL, PHASE_INDEX, PHASE_PENDING, PHASE_COUNTS };

static const char *const zsets[] = {"active", "scheduled", "deadlines", "succeeded",
                                    "failed", "canceled",  "expired",   "prio"};
#define N_ZSETS ((int)(sizeof(zsets) / sizeof(zsets[0])))

static const char *const kind_names[JM_REPAIR_KIND_COUNT] = {
    "active_not_running", "running_without_lease", "orphan_entry",
    "stale_entry",        "unindexed_record",      "counts_drift",
};

struct jm_reconciler {
    int slice;            /* entries per call */
    int counts_max;       /* recount queues whose indexes hold at most this */
    int stage;            /* STAGE_* */
    char scan_cursor[32]; /* SCAN cursor over job records */
    int scan_node;        /* Redis Cluster: the primary being scanned (each in turn) */
    char **queues;        /* owned: queue names snapshotted at cycle start */
    size_t n_queues;
    size_t qi;        /* current queue */
    int phase;        /* PHASE_* within the current queue */
    int zi;           /* current ZSET in PHASE_INDEX */
    char zcursor[32]; /* ZSCAN cursor in PHASE_INDEX */
    long long offset; /* LRANGE offset in PHASE_PENDING */
};

const char *
jm_repair_kind_name(jm_repair_kind k)
{
    return k >= 0 && k < JM_REPAIR_KIND_COUNT ? kind_names[k] : "unknown";
}

jm_reconciler *
jm_reconciler_new(int slice, int counts_max)
{
    jm_reconciler *rec = calloc(1, sizeof(*rec));
    if (rec == NULL)
        return NULL;
    rec->slice = slice > 0 ? slice : 500;
    rec->counts_max = counts_max > 0 ? counts_max : 0;
    rec->stage = STAGE_START;
    return rec;
}

static void
drop_queues(jm_reconciler *rec)
{
    jm_strv_free(rec->queues, rec->n_queues);
    rec->queues = NULL;
    rec->n_queues = 0;
    rec->qi = 0;
}

void
jm_reconciler_free(jm_reconciler *rec)
{
    if (rec == NULL)
        return;
    drop_queues(rec);
    free(rec);
}

/* Runs reconcile.lua in the slot of queue with the mode's arguments;
 * returns a new reply with at least min_elems integer-ish elements, or NULL
 * with err set. */
static redisReply *
run(jm_redis *r, const char *queue, const char *const *extra, int n_extra, size_t min_elems,
    jm_error *err)
{
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    for (int i = 0; i < n_extra; i++)
        jm_call_arg(&c, extra[i]);
    redisReply *rep = jm_call_run(r, &c, "reconcile", err);
    if (rep == NULL)
        return NULL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < min_elems) {
        freeReplyObject(rep);
        jm_error_set(err, JM_ERR_REPLY, NULL, "reconcile %s: unexpected reply", extra[0]);
        return NULL;
    }
    return rep;
}

/* ---- records: SCAN the job keys, check each with one pipelined script ---- */

static int
records_slice(jm_reconciler *rec, jm_redis *r, jm_reconcile_tally *t, jm_error *err)
{
    jm_keybuf pattern;
    char count[16], maxlen[16];
    jm_key_job_pattern(pattern, r);
    snprintf(count, sizeof(count), "%d", rec->slice);
    snprintf(maxlen, sizeof(maxlen), "%d", rec->counts_max);
    const char *scan[6] = {"SCAN", rec->scan_cursor, "MATCH", pattern, "COUNT", count};
    /* On Redis Cluster each primary holds its own slots' records: SCAN them
     * one after the other (SCAN has no key, so it runs where r points). */
    int prim[JM_CLUSTER_MAX_NODES], nprim = 0;
    if (jm_redis_is_cluster(r)) {
        nprim = jm__cluster_primaries(prim, JM_CLUSTER_MAX_NODES);
        if (rec->scan_node >= nprim)
            rec->scan_node = 0;
        if (nprim > 0 && jm_redis_use_node(r, prim[rec->scan_node], err) != JM_OK)
            return jm__err_code(err);
    }
    redisReply *rep = jm_redis_command_argv(r, err, 6, scan, NULL);
    if (rep == NULL)
        return jm__err_code(err);
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "SCAN: unexpected reply");
    }
    const redisReply *keys = rep->element[1];
    int rc = JM_OK, sent = 0;
    for (size_t i = 0; i < keys->elements && rc == JM_OK; i++) {
        jm_keybuf slot;
        const char *key = keys->element[i]->type == REDIS_REPLY_STRING ? keys->element[i]->str : "";
        const char *id = jm_key_parse_job(slot, r, key);
        if (id == NULL)
            continue;
        jm_call c;
        jm_call_init(&c, r, id, NULL);
        jm_call_arg(&c, "record");
        jm_call_arg(&c, id);
        jm_call_arg(&c, maxlen);
        rc = jm_call_pipe(r, &c, "reconcile", err);
        if (rc == JM_OK)
            sent++;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *one = jm_redis_pipe_reply(r, rc == JM_OK ? err : NULL);
        if (one == NULL) {
            if (rc == JM_OK)
                rc = jm__err_code(err);
            if (!jm_redis_connected(r))
                break;
            continue;
        }
        if (one->type == REDIS_REPLY_ARRAY && one->elements == 2) {
            t->repaired[JM_REPAIR_RUNNING_UNLEASED] += jm__reply_ll(one->element[0]);
            t->repaired[JM_REPAIR_UNINDEXED_RECORD] += jm__reply_ll(one->element[1]);
        } else if (rc == JM_OK) {
            rc = jm_error_set(err, JM_ERR_REPLY, NULL, "reconcile record: unexpected reply");
        }
        freeReplyObject(one);
    }
    if (rc == JM_OK) {
        snprintf(rec->scan_cursor, sizeof(rec->scan_cursor), "%s", rep->element[0]->str);
        if (strcmp(rec->scan_cursor, "0") == 0 && ++rec->scan_node >= nprim) {
            rec->scan_node = 0;
            rec->stage = STAGE_QUEUES;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- one queue's indexes ---- */

static void
next_queue(jm_reconciler *rec)
{
    rec->qi++;
    rec->phase = PHASE_SMALL;
    rec->zi = 0;
    snprintf(rec->zcursor, sizeof(rec->zcursor), "0");
    rec->offset = 0;
}

static void
purged(jm_reconcile_tally *t, const char *queue, long long n)
{
    if (n <= 0)
        return;
    t->purged += n;
    if (t->on_purged != NULL)
        t->on_purged(t->user, queue, n);
}

static int
queue_slice(jm_reconciler *rec, jm_redis *r, jm_reconcile_tally *t, jm_error *err)
{
    const char *q = rec->queues[rec->qi];
    char a[3][32];
    redisReply *rep = NULL;
    switch (rec->phase) {
    case PHASE_SMALL: {
        snprintf(a[0], sizeof(a[0]), "%d", rec->slice);
        const char *ex[3] = {"small", q, a[0]};
        if ((rep = run(r, q, ex, 3, 1, err)) == NULL)
            return jm__err_code(err);
        if (jm__reply_ll(rep->element[0]) < 0) {
            rec->phase = PHASE_INDEX;
        } else if (rep->elements == 5) {
            purged(t, q, jm__reply_ll(rep->element[0]));
            t->repaired[JM_REPAIR_ORPHAN_ENTRY] += jm__reply_ll(rep->element[1]);
            t->repaired[JM_REPAIR_ACTIVE_NOT_RUNNING] += jm__reply_ll(rep->element[2]);
            t->repaired[JM_REPAIR_STALE_ENTRY] += jm__reply_ll(rep->element[3]);
            t->repaired[JM_REPAIR_COUNTS] += jm__reply_ll(rep->element[4]);
            next_queue(rec);
        } else {
            freeReplyObject(rep);
            return jm_error_set(err, JM_ERR_REPLY, NULL, "reconcile small: unexpected reply");
        }
        break;
    }
    case PHASE_INDEX: {
        snprintf(a[0], sizeof(a[0]), "%d", rec->slice);
        const char *ex[5] = {"index", q, zsets[rec->zi], rec->zcursor, a[0]};
        if ((rep = run(r, q, ex, 5, 5, err)) == NULL)
            return jm__err_code(err);
        purged(t, q, jm__reply_ll(rep->element[1]));
        t->repaired[JM_REPAIR_ORPHAN_ENTRY] += jm__reply_ll(rep->element[2]);
        t->repaired[JM_REPAIR_ACTIVE_NOT_RUNNING] += jm__reply_ll(rep->element[3]);
        t->repaired[JM_REPAIR_STALE_ENTRY] += jm__reply_ll(rep->element[4]);
        const redisReply *cur = rep->element[0];
        snprintf(rec->zcursor, sizeof(rec->zcursor), "%s",
                 cur->type == REDIS_REPLY_STRING ? cur->str : "0");
        if (strcmp(rec->zcursor, "0") == 0 && ++rec->zi >= N_ZSETS) {
            rec->phase = PHASE_PENDING;
            rec->offset = 0;
        }
        break;
    }
    case PHASE_PENDING: {
        snprintf(a[0], sizeof(a[0]), "%lld", rec->offset);
        snprintf(a[1], sizeof(a[1]), "%d", rec->slice);
        snprintf(a[2], sizeof(a[2]), "%d", RECONCILE_PENDING_MAX);
        const char *ex[5] = {"pending", q, a[0], a[1], a[2]};
        if ((rep = run(r, q, ex, 5, 3, err)) == NULL)
            return jm__err_code(err);
        purged(t, q, jm__reply_ll(rep->element[1]));
        t->repaired[JM_REPAIR_STALE_ENTRY] += jm__reply_ll(rep->element[2]);
        long long nxt = jm__reply_ll(rep->element[0]);
        if (nxt < 0)
            rec->phase = PHASE_COUNTS;
        else
            rec->offset = nxt;
        break;
    }
    default: {
        snprintf(a[0], sizeof(a[0]), "%d", rec->counts_max);
        const char *ex[3] = {"counts", q, a[0]};
        if ((rep = run(r, q, ex, 3, 1, err)) == NULL)
            return jm__err_code(err);
        long long fixed = jm__reply_ll(rep->element[0]);
        if (fixed > 0)
            t->repaired[JM_REPAIR_COUNTS] += fixed;
        next_queue(rec);
        break;
    }
    }
    freeReplyObject(rep);
    return JM_OK;
}

/* ---- the cursor ---- */

static int
start_cycle(jm_reconciler *rec, jm_redis *r, jm_error *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = jm_queue_names(r, &names, &n, err);
    if (rc != JM_OK)
        return rc;
    /* Keep only well-formed names: a corrupt member must not build keys. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (jm_queue_name_valid(names[i]))
            names[k++] = names[i];
        else
            free(names[i]);
    }
    drop_queues(rec);
    rec->queues = names;
    rec->n_queues = k;
    rec->qi = 0;
    rec->phase = PHASE_SMALL;
    rec->zi = 0;
    snprintf(rec->zcursor, sizeof(rec->zcursor), "0");
    rec->offset = 0;
    snprintf(rec->scan_cursor, sizeof(rec->scan_cursor), "0");
    rec->stage = STAGE_RECORDS;
    return JM_OK;
}

int
jm_reconciler_step(jm_reconciler *rec, jm_redis *r, int max_slices, jm_reconcile_tally *tally,
                   int *cycle_done, jm_error *err)
{
    *cycle_done = 0;
    for (int used = 0; used < max_slices; used++) {
        int rc;
        if (rec->stage == STAGE_START) {
            rc = start_cycle(rec, r, err);
        } else if (rec->stage == STAGE_RECORDS) {
            rc = records_slice(rec, r, tally, err);
        } else if (rec->qi < rec->n_queues) {
            rc = queue_slice(rec, r, tally, err);
        } else {
            drop_queues(rec);
            rec->stage = STAGE_START;
            *cycle_done = 1;
            return JM_OK;
        }
        if (rc != JM_OK)
            return rc;
    }
    /* A cycle whose last queue just finished is done without another call. */
    if (rec->stage == STAGE_QUEUES && rec->qi >= rec->n_queues) {
        drop_queues(rec);
        rec->stage = STAGE_START;
        *cycle_done = 1;
    }
    return JM_OK;
}
