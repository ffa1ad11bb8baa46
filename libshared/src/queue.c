/* queue.c - the C face of the transition scripts (libshared/lua/) and the reads.
 * Each function builds the common script arguments (slot prefix, global
 * prefix, retention), runs one script (or pipelines one per item) and maps
 * the script's return code onto jm_err. See queue.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "jobmill/queue.h"
#include "call.h"
#include "queue_registry.h"
#include "reply.h"

/* ---- submit ---- */

/* The 14 arguments enqueue.lua reads per job; num is the caller's storage
 * for the numbers, borrowed until the call has run. */
#define ENQ_ARGS 14
typedef char enqueue_nums[8][24];

static void
enqueue_args(const char **a, const jm_job_spec *s, const char *id, enqueue_nums num)
{
    snprintf(num[0], 24, "%d", s->max_attempts > 0 ? s->max_attempts : 3);
    snprintf(num[1], 24, "%d", s->timeout_s);
    snprintf(num[2], 24, "%" PRId64, s->delay_ms);
    snprintf(num[3], 24, "%" PRId64, s->run_at_ms);
    snprintf(num[4], 24, "%" PRId64, s->expires_in_ms);
    snprintf(num[5], 24, "%d", s->result_ttl_s);
    a[0] = id;
    a[1] = s->queue;
    a[2] = s->type;
    a[3] = s->payload != NULL ? s->payload : "null";
    for (int i = 0; i < 6; i++)
        a[4 + i] = num[i];
    a[10] = s->idem_key != NULL ? s->idem_key : "";
    snprintf(num[6], 24, "%" PRId64, s->unique_for_ms);
    a[11] = s->unique_key != NULL ? s->unique_key : "";
    a[12] = num[6];
    snprintf(num[7], 24, "%d", s->priority);
    a[13] = num[7];
}

/* job_from_spec fills job for a job just created from spec, with what
 * enqueue.lua answered for it: status, created, run_at, expires_at. */
static int
job_from_spec(jm_job *job, const char *id, const jm_job_spec *s, redisReply **e, jm_error *err)
{
    memset(job, 0, sizeof(*job));
    snprintf(job->id, sizeof(job->id), "%s", id);
    snprintf(job->queue, sizeof(job->queue), "%s", s->queue);
    job->type = strdup(s->type);
    job->payload = strdup(s->payload != NULL ? s->payload : "null");
    job->idem_key = s->idem_key != NULL ? strdup(s->idem_key) : NULL;
    job->status = jm_state_parse(jm__reply_str(e[0]));
    job->max_attempts = s->max_attempts > 0 ? s->max_attempts : 3;
    job->priority = s->priority;
    job->timeout_s = s->timeout_s;
    job->result_ttl_s = s->result_ttl_s;
    job->created_ms = jm__reply_ll(e[1]);
    job->run_at_ms = jm__reply_ll(e[2]);
    job->expires_ms = jm__reply_ll(e[3]);
    if (job->type == NULL || job->payload == NULL || (s->idem_key != NULL && !job->idem_key)) {
        jm_job_clear(job);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    return JM_OK;
}

/* Reads one job's enqueue reply (see enqueue.lua); fills job when it is not
 * NULL: from spec for a created job, from the record for an existing one. */
static int
enqueue_result(const redisReply *rep, const jm_job_spec *spec, jm_enqueue_result *out, jm_job *job,
               jm_error *err)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "enqueue: unexpected reply");
    long long code = jm__reply_ll(rep->element[0]);
    if (code == -2)
        return jm_error_set(err, JM_ERR_DUPLICATE, "unique_key",
                            "unique_key %s is held by job %s (until it ends, or its window "
                            "passes)",
                            spec->unique_key != NULL ? spec->unique_key : "",
                            jm__reply_str(rep->element[1]));
    if (code < 0)
        return jm_error_set(err, JM_ERR_LIMIT, "queue",
                            "queue would exceed max_queues; delete or reuse queues");
    snprintf(out->id, sizeof(out->id), "%s", jm__reply_str(rep->element[1]));
    out->created = code == 1;
    if (job == NULL)
        return JM_OK;
    if (out->created) {
        if (rep->elements != 6)
            return jm_error_set(err, JM_ERR_REPLY, NULL, "enqueue: unexpected reply");
        return job_from_spec(job, out->id, spec, rep->element + 2, err);
    }
    size_t n = rep->elements - 2;
    const char **fv = malloc(sizeof(*fv) * (n + 1));
    if (fv == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        fv[i] = jm__reply_str(rep->element[2 + i]);
    int rc = jm_job_from_hash(job, out->id, fv, n, err);
    free(fv);
    return rc;
}

/* A call's reply is one per job: checks that rep is an array of n. */
static int
enqueue_replies(const redisReply *rep, size_t n, jm_error *err)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "enqueue: unexpected reply");
    return JM_OK;
}

int
jm_queue_enqueue(jm_redis *r, const jm_job_spec *spec, int max_queues, jm_enqueue_result *out,
                 jm_job *job, jm_error *err)
{
    char id[JM_ID_LEN + 1];
    enqueue_nums num;
    const char *a[ENQ_ARGS];
    int rc = jm_id_new(spec->queue, id, err);
    if (rc != JM_OK)
        return rc;
    const char *queue = spec->queue;
    if ((rc = jm__queue_register(r, &queue, 1, max_queues, false, err)) != JM_OK)
        return rc;
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    enqueue_args(a, spec, id, num);
    for (int i = 0; i < ENQ_ARGS; i++)
        jm_call_arg(&c, a[i]);
    redisReply *rep = jm_call_run(r, &c, "enqueue", err);
    if (rep == NULL)
        return jm__err_code(err);
    if ((rc = enqueue_replies(rep, 1, err)) == JM_OK)
        rc = enqueue_result(rep->element[0], spec, out, job, err);
    freeReplyObject(rep);
    return rc;
}

/* A batch split by slot: slot[i] is the group of job i, group g holds the
 * jobs with slot == g in request order; one enqueue call per group. */
typedef struct batch_plan {
    size_t *slot;  /* per job: its group */
    size_t *order; /* job indexes grouped: group g is order[start[g]..start[g+1]) */
    size_t *start; /* ngroups + 1 */
    size_t ngroups;
} batch_plan;

static void
batch_plan_free(batch_plan *p)
{
    free(p->slot);
    free(p->order);
    free(p->start);
}

static int
batch_plan_make(batch_plan *p, char (*ids)[JM_ID_LEN + 1], size_t n, jm_error *err)
{
    p->slot = malloc(n * sizeof(*p->slot));
    p->order = malloc(n * sizeof(*p->order));
    p->start = malloc((n + 1) * sizeof(*p->start));
    p->ngroups = 0;
    if (p->slot == NULL || p->order == NULL || p->start == NULL) {
        batch_plan_free(p);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    /* groups in order of first appearance; batches hold a few queues, so
     * the quadratic tag lookup stays cheap */
    size_t *first = p->start; /* scratch: first job of each group */
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < p->ngroups && strncmp(ids[first[g]], ids[i], JM_TAG_LEN) != 0)
            g++;
        if (g == p->ngroups)
            first[p->ngroups++] = i;
        p->slot[i] = g;
    }
    size_t k = 0;
    for (size_t g = 0; g < p->ngroups; g++) {
        for (size_t i = 0; i < n; i++)
            if (p->slot[i] == g)
                p->order[k++] = i;
    }
    for (size_t g = 0, at = 0; g <= p->ngroups; g++) {
        size_t cnt = 0;
        for (size_t i = 0; g < p->ngroups && i < n; i++)
            cnt += p->slot[i] == g;
        p->start[g] = at;
        at += cnt;
    }
    return JM_OK;
}

/* batch_send pipelines group g's one enqueue call. */
static int
batch_send(jm_redis *r, const batch_plan *p, size_t g, const jm_job_spec *specs,
           char (*ids)[JM_ID_LEN + 1], enqueue_nums *nums, jm_error *err)
{
    size_t cnt = p->start[g + 1] - p->start[g];
    jm_call c;
    jm_call_init(&c, r, ids[p->order[p->start[g]]], NULL);
    size_t na = (size_t)c.nargs + ENQ_ARGS * cnt;
    const char **args = malloc(sizeof(*args) * na);
    if (args == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    size_t k = 0;
    for (int i = 0; i < c.nargs; i++)
        args[k++] = c.args[i];
    for (size_t j = p->start[g]; j < p->start[g + 1]; j++) {
        size_t i = p->order[j];
        /* max_queues was checked for the whole batch before: a script must
         * not refuse one job of a transaction that cannot roll back. */
        enqueue_args(&args[k], &specs[i], ids[i], nums[i]);
        k += ENQ_ARGS;
    }
    const char *keys[1] = {c.slot};
    int rc = jm_redis_pipe_eval(r, err, "enqueue", 1, keys, (int)k, args, NULL);
    free(args);
    return rc;
}

/* group_results reads group g's enqueue reply e into out and jobs. */
static int
group_results(const redisReply *e, const batch_plan *p, size_t g, const jm_job_spec *specs,
              jm_enqueue_result *out, jm_job *jobs, jm_error *err)
{
    size_t cnt = p->start[g + 1] - p->start[g];
    int rc = enqueue_replies(e, cnt, err);
    for (size_t j = 0; j < cnt && rc == JM_OK; j++) {
        size_t i = p->order[p->start[g] + j];
        rc = enqueue_result(e->element[j], &specs[i], &out[i], jobs != NULL ? &jobs[i] : NULL, err);
    }
    return rc;
}

/* batch_cluster sends the groups' enqueue calls without a transaction: on
 * Redis Cluster the slots of a batch may live on different nodes, and a
 * transaction cannot span them. Each group (one slot) is stored or not as
 * a whole; a failure midway may leave earlier groups stored (the api
 * answers 503: a client retrying with idempotency keys gets those jobs
 * back). The route layer loads a lost library itself. */
static int
batch_cluster(jm_redis *r, const batch_plan *p, const jm_job_spec *specs,
              char (*ids)[JM_ID_LEN + 1], enqueue_nums *nums, jm_enqueue_result *out, jm_job *jobs,
              jm_error *err)
{
    size_t sent = 0;
    int rc = JM_OK;
    for (size_t g = 0; g < p->ngroups && rc == JM_OK; g++)
        if ((rc = batch_send(r, p, g, specs, ids, nums, err)) == JM_OK)
            sent++;
    for (size_t g = 0; g < sent; g++) {
        redisReply *rep = jm_redis_pipe_reply(r, rc == JM_OK ? err : NULL);
        if (rep == NULL) {
            if (rc == JM_OK)
                rc = jm__err_code(err);
            continue;
        }
        if (rc == JM_OK)
            rc = group_results(rep, p, g, specs, out, jobs, err);
        freeReplyObject(rep);
    }
    return rc;
}

/* One MULTI/EXEC of one enqueue call per slot: all are stored or none.
 * *noscript is set when the server had lost the library (nothing ran then). */
static int
batch_once(jm_redis *r, const jm_job_spec *specs, size_t n, char (*ids)[JM_ID_LEN + 1],
           jm_enqueue_result *out, jm_job *jobs, bool *noscript, jm_error *err)
{
    *noscript = false;
    batch_plan p;
    enqueue_nums *nums = malloc(n * sizeof(*nums));
    if (nums == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    int rc = batch_plan_make(&p, ids, n, err);
    if (rc != JM_OK) {
        free(nums);
        return rc;
    }
    if (jm_redis_is_cluster(r)) {
        rc = batch_cluster(r, &p, specs, ids, nums, out, jobs, err);
        free(nums);
        batch_plan_free(&p);
        return rc;
    }
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
    rc = jm_redis_pipe_argv(r, err, 1, multi, NULL);
    size_t sent = rc == JM_OK ? 1 : 0;
    for (size_t g = 0; g < p.ngroups && rc == JM_OK; g++)
        if ((rc = batch_send(r, &p, g, specs, ids, nums, err)) == JM_OK)
            sent++;
    if (rc == JM_OK && (rc = jm_redis_pipe_argv(r, err, 1, exec, NULL)) == JM_OK)
        sent++;
    free(nums);
    if (rc != JM_OK) {
        /* Without EXEC nothing runs; close the transaction politely. */
        jm_redis_pipe_discard(r, (int)sent);
        jm_redis_drop(r);
        batch_plan_free(&p);
        return rc;
    }
    /* MULTI and each command answer +OK / +QUEUED; EXEC answers the array. */
    for (size_t i = 0; i + 1 < sent; i++) {
        redisReply *rep = jm_redis_pipe_reply(r, err);
        if (rep == NULL) {
            jm_redis_pipe_discard(r, (int)(sent - i - 1));
            batch_plan_free(&p);
            return jm__err_code(err);
        }
        freeReplyObject(rep);
    }
    redisReply *rep = jm_redis_pipe_reply(r, err);
    if (rep == NULL) {
        batch_plan_free(&p);
        return jm__err_code(err);
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != p.ngroups) {
        freeReplyObject(rep);
        batch_plan_free(&p);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "enqueue batch: transaction aborted");
    }
    for (size_t g = 0; g < p.ngroups && rc == JM_OK; g++) {
        const redisReply *e = rep->element[g];
        if (e->type == REDIS_REPLY_ERROR) {
            *noscript = jm__redis_is_unloaded(e);
            rc = jm_error_set(err, JM_ERR_REPLY, NULL, "enqueue: %s", e->str);
            break;
        }
        rc = group_results(e, &p, g, specs, out, jobs, err);
    }
    freeReplyObject(rep);
    batch_plan_free(&p);
    return rc;
}

int
jm_queue_enqueue_batch(jm_redis *r, const jm_job_spec *specs, size_t n, int max_queues,
                       jm_enqueue_result *out, jm_job *jobs, jm_error *err)
{
    if (n == 0)
        return JM_OK;
    for (size_t i = 0; jobs != NULL && i < n; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].status = JM_STATE_UNKNOWN;
    }
    /* A unique job refused midway could not be rolled back out of the
     * transaction: a batch takes none. */
    for (size_t i = 0; i < n; i++)
        if (specs[i].unique_key != NULL) {
            char field[64];
            snprintf(field, sizeof(field), "jobs[%zu].unique_key", i);
            return jm_error_set(err, JM_ERR_INVALID, field,
                                "%s: unique jobs are submitted one at a time, not in a batch",
                                field);
        }
    const char **queues = malloc(n * sizeof(*queues));
    if (queues == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        queues[i] = specs[i].queue;
    int rc = jm__queue_register(r, queues, n, max_queues, true, err);
    free(queues);
    if (rc != JM_OK)
        return rc;
    char(*ids)[JM_ID_LEN + 1] = malloc(n * sizeof(*ids));
    if (ids == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n && rc == JM_OK; i++)
        rc = jm_id_new(specs[i].queue, ids[i], err);
    bool noscript = false;
    if (rc == JM_OK)
        rc = batch_once(r, specs, n, ids, out, jobs, &noscript, err);
    /* A flushed script cache ran none of the batch: load and try once more. */
    if (rc != JM_OK && noscript && jm_redis_script_reload(r, "enqueue", err) == JM_OK)
        rc = batch_once(r, specs, n, ids, out, jobs, &noscript, err);
    free(ids);
    for (size_t i = 0; rc != JM_OK && jobs != NULL && i < n; i++)
        jm_job_clear(&jobs[i]);
    return rc;
}

/* ---- claim and the claimed job's life ---- */

void
jm_claim_clear(jm_claim *c)
{
    free(c->type);
    free(c->payload);
    memset(c, 0, sizeof(*c));
}

/* new_nonce fills out with JM_NONCE_LEN random hex digits. */
static int
new_nonce(char out[JM_NONCE_LEN + 1], jm_error *err)
{
    unsigned char raw[JM_NONCE_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t k = getrandom(raw + got, sizeof(raw) - got, 0);
        if (k < 0 && errno != EINTR)
            return jm_error_set(err, JM_ERR_IO, NULL, "getrandom: %s", strerror(errno));
        if (k > 0)
            got += (size_t)k;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[JM_NONCE_LEN] = '\0';
    return JM_OK;
}

#define CLAIM_FIELDS 10 /* per job in a claim reply; then started, more */

/* claim_reply fills out[] from a claim or claim_recover reply. */
static int
claim_reply(redisReply *rep, const char *queue, int max, jm_claim *out, int *n, bool *more,
            int *throttle_ms, jm_error *err)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        (rep->elements - 2) % CLAIM_FIELDS != 0 || (rep->elements - 2) / CLAIM_FIELDS > (size_t)max)
        return jm_error_set(err, JM_ERR_REPLY, NULL, "claim: unexpected reply");
    size_t jobs = (rep->elements - 2) / CLAIM_FIELDS;
    int64_t started = jm__reply_ll(rep->element[rep->elements - 2]);
    long long hint = jm__reply_ll(rep->element[rep->elements - 1]);
    if (more != NULL)
        *more = hint > 0;
    if (throttle_ms != NULL)
        *throttle_ms = hint < 0 ? (int)-hint : 0;
    for (size_t j = 0; j < jobs; j++) {
        redisReply **e = rep->element + j * CLAIM_FIELDS;
        jm_claim *cl = &out[j];
        memset(cl, 0, sizeof(*cl));
        snprintf(cl->id, sizeof(cl->id), "%s", jm__reply_str(e[0]));
        snprintf(cl->queue, sizeof(cl->queue), "%s", queue);
        cl->fence = jm__reply_ll(e[1]);
        snprintf(cl->lease, sizeof(cl->lease), "%s", jm__reply_str(e[2]));
        cl->attempt = (int)jm__reply_ll(e[3]);
        cl->type = strdup(jm__reply_str(e[4]));
        cl->payload = strdup(jm__reply_str(e[5]));
        cl->max_attempts = (int)jm__reply_ll(e[6]);
        cl->timeout_s = (int)jm__reply_ll(e[7]);
        cl->created_ms = jm__reply_ll(e[8]);
        cl->run_at_ms = jm__reply_ll(e[9]);
        cl->started_ms = started;
        /* All or nothing: on allocation failure nothing is handed out, so
         * the caller can take every job back by the call's nonce (or leave
         * them to lease expiry), never running one twice. */
        if (cl->type == NULL || cl->payload == NULL) {
            for (size_t k = 0; k <= j; k++)
                jm_claim_clear(&out[k]);
            *n = 0;
            return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        }
    }
    *n = (int)jobs;
    return JM_OK;
}

int
jm_queue_claim(jm_redis *r, jm_claim_call *call, jm_claim *out, int *n, jm_error *err)
{
    *n = 0;
    call->more = false;
    call->throttle_ms = 0;
    int rc = new_nonce(call->nonce, err);
    if (rc != JM_OK)
        return rc;
    char smax[16], slease[16];
    snprintf(smax, sizeof(smax), "%d", call->max);
    snprintf(slease, sizeof(slease), "%d", call->lease_ms);
    jm_call c;
    jm_call_init_queue(&c, r, call->queue, NULL);
    jm_call_arg(&c, call->queue);
    jm_call_arg(&c, smax);
    jm_call_arg(&c, slease);
    jm_call_arg(&c, call->worker_id);
    jm_call_arg(&c, call->nonce);
    redisReply *rep = jm_call_run(r, &c, "claim", err);
    if (rep == NULL)
        return jm__err_code(err);
    rc = claim_reply(rep, call->queue, call->max, out, n, &call->more, &call->throttle_ms, err);
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_claim_recover(jm_redis *r, const jm_claim_call *call, jm_claim *out, int *n, jm_error *err)
{
    *n = 0;
    char slease[16];
    snprintf(slease, sizeof(slease), "%d", call->lease_ms);
    jm_call c;
    jm_call_init_queue(&c, r, call->queue, NULL);
    jm_call_arg(&c, call->queue);
    jm_call_arg(&c, slease);
    jm_call_arg(&c, call->nonce);
    redisReply *rep = jm_call_run(r, &c, "claim_recover", err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = claim_reply(rep, call->queue, call->max, out, n, NULL, NULL, err);
    freeReplyObject(rep);
    return rc;
}

/* ---- heartbeat: one script per queue, all pipelined ---- */

typedef struct hb_ref {
    const jm_lease *lease;
    size_t index; /* in the caller's arrays */
} hb_ref;

static int
hb_cmp(const void *a, const void *b)
{
    const hb_ref *x = a, *y = b;
    int c = strcmp(x->lease->queue, y->lease->queue);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* hb_send appends the heartbeat of refs[0..cnt) (one queue) to the pipeline;
 * args/lens have room for 4 + 2 * cnt entries. */
static int
hb_send(jm_redis *r, const hb_ref *refs, size_t cnt, const char *slease, const char **args,
        size_t *lens, jm_error *err)
{
    jm_call c;
    jm_call_init(&c, r, refs[0].lease->id, NULL);
    size_t na = 0;
    for (int a = 0; a < c.nargs; a++)
        args[na] = c.args[a], lens[na++] = c.lens[a];
    args[na] = slease, lens[na++] = strlen(slease);
    for (size_t x = 0; x < cnt; x++) {
        const jm_lease *l = refs[x].lease;
        args[na] = l->id, lens[na++] = strlen(l->id);
        args[na] = l->lease, lens[na++] = strlen(l->lease);
    }
    const char *keys[1] = {c.slot};
    return jm_redis_pipe_eval(r, err, "heartbeat", 1, keys, (int)na, args, lens);
}

/* hb_read reads one group's reply into status[]; JM_OK or the error. */
static int
hb_read(jm_redis *r, const hb_ref *refs, size_t cnt, int *status, jm_error *err)
{
    redisReply *rep = jm_redis_pipe_reply(r, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != cnt)
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "heartbeat: unexpected reply");
    else
        for (size_t x = 0; x < cnt; x++)
            status[refs[x].index] = (int)jm__reply_ll(rep->element[x]);
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_heartbeat(jm_redis *r, const jm_lease *leases, size_t n, int lease_ms, int *status,
                   jm_error *err)
{
    if (n == 0)
        return JM_OK;
    /* Sort by queue (stable by index), so each queue's leases are a run. */
    hb_ref *refs = malloc(sizeof(*refs) * n);
    const char **args = malloc(sizeof(*args) * (4 + 2 * n));
    size_t *lens = malloc(sizeof(*lens) * (4 + 2 * n));
    int rc = JM_OK;
    if (refs == NULL || args == NULL || lens == NULL) {
        rc = jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = (hb_ref){.lease = &leases[i], .index = i};
    qsort(refs, n, sizeof(*refs), hb_cmp);
    char slease[16];
    snprintf(slease, sizeof(slease), "%d", lease_ms);
    /* Send every group, then read every reply sent. */
    size_t sent_upto = 0;
    int groups = 0;
    for (size_t g = 0; g < n && rc == JM_OK;) {
        size_t e = g + 1;
        while (e < n && strcmp(refs[e].lease->queue, refs[g].lease->queue) == 0)
            e++;
        if ((rc = hb_send(r, refs + g, e - g, slease, args, lens, err)) == JM_OK) {
            groups++;
            sent_upto = e;
        }
        g = e;
    }
    for (size_t g = 0; g < sent_upto && groups > 0; groups--) {
        size_t e = g + 1;
        while (e < n && strcmp(refs[e].lease->queue, refs[g].lease->queue) == 0)
            e++;
        int rrc = hb_read(r, refs + g, e - g, status, rc == JM_OK ? err : NULL);
        if (rc == JM_OK)
            rc = rrc;
        if (rrc != JM_OK && !jm_redis_connected(r))
            break;
        g = e;
    }
done:
    free(refs);
    free(args);
    free(lens);
    return rc;
}

/* ---- outcomes: complete, fail, release, abandon, cancel ack ---- */

/* One outcome as the 6 arguments outcomes.lua reads: kind, id, lease token,
 * a1, a2, a3. */
typedef struct outcome_args {
    const char *v[6];
    char backoff[24];
} outcome_args;

static void
outcome_args_of(outcome_args *a, const jm_outcome *o)
{
    static const char *const kinds[] = {"complete", "fail", "cancel_ack", "release", "release"};
    a->v[0] = kinds[o->kind];
    a->v[1] = o->id;
    a->v[2] = o->lease != NULL ? o->lease : "";
    a->v[3] = a->v[4] = a->v[5] = "";
    switch (o->kind) {
    case JM_OUTCOME_COMPLETE: a->v[3] = o->result != NULL ? o->result : "null"; break;
    case JM_OUTCOME_FAIL:
        snprintf(a->backoff, sizeof(a->backoff), "%" PRId64, o->backoff_ms > 0 ? o->backoff_ms : 0);
        a->v[3] = o->error != NULL ? o->error : "failed";
        a->v[4] = o->permanent ? "1" : "0";
        a->v[5] = a->backoff;
        break;
    case JM_OUTCOME_RELEASE: a->v[3] = "drain"; break;
    case JM_OUTCOME_ABANDON: a->v[3] = "abandon"; break;
    case JM_OUTCOME_CANCEL_ACK: break;
    }
}

/* outcome_finish maps outcomes.lua's code for o onto o->rc and o->state. */
static void
outcome_finish(jm_outcome *o, long long code)
{
    o->rc = JM_OK;
    if (code == 0) {
        o->rc = jm_error_set(&o->err, JM_ERR_FENCE, NULL,
                             "job %s: the claim with lease %s is no longer current", o->id,
                             o->lease != NULL ? o->lease : "");
        return;
    }
    switch (o->kind) {
    case JM_OUTCOME_COMPLETE: o->state = JM_STATE_SUCCEEDED; break;
    case JM_OUTCOME_CANCEL_ACK: o->state = JM_STATE_CANCELED; break;
    case JM_OUTCOME_FAIL:
        o->state = code == 3 ? JM_STATE_CANCELED : code == 2 ? JM_STATE_FAILED : JM_STATE_SCHEDULED;
        break;
    case JM_OUTCOME_RELEASE:
    case JM_OUTCOME_ABANDON:
        o->state = code == 2 ? JM_STATE_CANCELED : code == 3 ? JM_STATE_FAILED : JM_STATE_QUEUED;
        break;
    }
}

/* A fetch riding on an outcomes call: claim.lua's arguments, and where its
 * claims go. NULL = none. */
typedef struct outcomes_fetch {
    jm_claim_call *call;
    jm_claim *out;
    int *got;
} outcomes_fetch;

/* outcomes_group commits v[0..n), all of one slot (their ids share a tag),
 * with ONE outcomes.lua call, which also claims for fetch when given (its
 * queue in the same slot). Sets every rc; returns the Redis error that
 * stopped the call, if any (the fetch's claims are then unknown: its nonce
 * lets jm_queue_claim_recover take them back). */
static int
outcomes_group(jm_redis *r, jm_outcome **v, size_t n, const jm_retention *ret,
               const outcomes_fetch *fetch)
{
    jm_call c;
    jm_call_init(&c, r, v[0]->id, ret);
    char smax[16] = "0", slease[16] = "0";
    const char *head[5] = {"", smax, slease, "", ""};
    if (fetch != NULL) {
        snprintf(smax, sizeof(smax), "%d", fetch->call->max);
        snprintf(slease, sizeof(slease), "%d", fetch->call->lease_ms);
        head[0] = fetch->call->queue;
        head[3] = fetch->call->worker_id;
        head[4] = fetch->call->nonce;
    }
    size_t na = (size_t)c.nargs + 5 + 6 * n;
    const char **args = malloc(sizeof(*args) * na);
    outcome_args *oa = malloc(sizeof(*oa) * n);
    if (args == NULL || oa == NULL) {
        free(args);
        free(oa);
        for (size_t i = 0; i < n; i++)
            v[i]->rc = jm_error_set(&v[i]->err, JM_ERR_NOMEM, NULL, "out of memory");
        return JM_ERR_NOMEM;
    }
    size_t k = 0;
    for (int i = 0; i < c.nargs; i++)
        args[k++] = c.args[i];
    for (int i = 0; i < 5; i++)
        args[k++] = head[i];
    for (size_t i = 0; i < n; i++) {
        outcome_args_of(&oa[i], v[i]);
        for (int j = 0; j < 6; j++)
            args[k++] = oa[i].v[j];
    }
    const char *keys[1] = {c.slot};
    jm_error err;
    jm_error_clear(&err);
    redisReply *rep = jm_redis_eval(r, &err, "outcomes", 1, keys, (int)k, args, NULL);
    free(args);
    free(oa);
    int rc = JM_OK;
    if (rep == NULL) {
        rc = err.code != JM_OK ? err.code : JM_ERR_REDIS;
        for (size_t i = 0; i < n; i++) {
            v[i]->err = err;
            v[i]->rc = rc;
        }
        return rc;
    }
    const redisReply *codes =
        rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? rep->element[0] : NULL;
    if (codes == NULL || codes->type != REDIS_REPLY_ARRAY || codes->elements != n) {
        for (size_t i = 0; i < n; i++)
            v[i]->rc = jm_error_set(&v[i]->err, JM_ERR_REPLY, NULL, "outcomes: unexpected reply");
        rc = JM_ERR_REPLY;
    } else {
        for (size_t i = 0; i < n; i++)
            outcome_finish(v[i], jm__reply_ll(codes->element[i]));
        /* the fetch's jobs were delivered (or there were none): nothing to
         * take back by nonce; when the claims could not be read the nonce
         * stays, and the caller takes them back with it */
        if (fetch != NULL &&
            (rep->element[1]->elements == 0 ||
             claim_reply(rep->element[1], fetch->call->queue, fetch->call->max, fetch->out,
                         fetch->got, &fetch->call->more, &fetch->call->throttle_ms, &err) == JM_OK))
            fetch->call->nonce[0] = '\0';
    }
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_outcome(jm_redis *r, jm_outcome *o, const jm_retention *ret)
{
    jm_queue_outcomes(r, o, 1, ret);
    return o->rc;
}

/* outcomes_run commits v[0..n) with one call per slot; fetch (or NULL)
 * rides on the call of its queue's slot, if any outcome is in it. */
static int
outcomes_run(jm_redis *r, jm_outcome *v, size_t n, const jm_retention *ret,
             const outcomes_fetch *fetch)
{
    jm_outcome **group = malloc(sizeof(*group) * (n > 0 ? n : 1));
    bool *done = calloc(n > 0 ? n : 1, sizeof(*done));
    if (group == NULL || done == NULL) {
        free(group);
        free(done);
        for (size_t i = 0; i < n; i++)
            v[i].rc = jm_error_set(&v[i].err, JM_ERR_NOMEM, NULL, "out of memory");
        return JM_ERR_NOMEM;
    }
    char ftag[JM_TAG_LEN + 1] = "";
    if (fetch != NULL)
        jm_slot_tag(fetch->call->queue, ftag);
    int rc = JM_OK;
    for (size_t i = 0; i < n; i++) {
        jm_error_clear(&v[i].err);
        if (!jm_id_valid(v[i].id)) {
            v[i].rc = jm_error_set(&v[i].err, JM_ERR_NOT_FOUND, "id", "not a job id");
            done[i] = true;
        }
    }
    /* one call per slot (a worker's outcomes are nearly always of one queue) */
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        size_t g = 0;
        for (size_t j = i; j < n; j++) {
            if (!done[j] && strncmp(v[j].id, v[i].id, JM_TAG_LEN) == 0) {
                group[g++] = &v[j];
                done[j] = true;
            }
        }
        bool here = fetch != NULL && strncmp(v[i].id, ftag, JM_TAG_LEN) == 0;
        int grc = outcomes_group(r, group, g, ret, here ? fetch : NULL);
        if (here)
            fetch = NULL; /* asked once */
        if (rc == JM_OK)
            rc = grc;
    }
    if (fetch != NULL)
        fetch->call->nonce[0] = '\0'; /* no outcome in its slot: it never ran */
    free(group);
    free(done);
    return rc;
}

int
jm_queue_outcomes(jm_redis *r, jm_outcome *v, size_t n, const jm_retention *ret)
{
    return outcomes_run(r, v, n, ret, NULL);
}

int
jm_queue_outcomes_fetch(jm_redis *r, jm_outcome *v, size_t n, const jm_retention *ret,
                        jm_claim_call *call, jm_claim *out, int *got)
{
    *got = 0;
    call->more = false;
    call->throttle_ms = 0;
    jm_error err;
    jm_error_clear(&err);
    if (new_nonce(call->nonce, &err) != JM_OK) {
        call->nonce[0] = '\0';
        return outcomes_run(r, v, n, ret, NULL);
    }
    outcomes_fetch f = {call, out, got};
    return outcomes_run(r, v, n, ret, &f);
}

/* The single-outcome calls of queue.h, on jm_queue_outcome. */
static int
outcome1(jm_redis *r, jm_outcome *o, const jm_retention *ret, jm_state *out_state, jm_error *err)
{
    int rc = jm_queue_outcome(r, o, ret);
    if (err != NULL)
        *err = o->err;
    if (rc == JM_OK && out_state != NULL)
        *out_state = o->state;
    return rc;
}

int
jm_queue_complete(jm_redis *r, const char *id, const char *lease, const char *result,
                  const jm_retention *ret, jm_error *err)
{
    jm_outcome o = {.kind = JM_OUTCOME_COMPLETE, .id = id, .lease = lease, .result = result};
    return outcome1(r, &o, ret, NULL, err);
}

int
jm_queue_fail(jm_redis *r, const char *id, const char *lease, const char *error, bool permanent,
              int64_t backoff_ms, const jm_retention *ret, jm_state *out_state, jm_error *err)
{
    jm_outcome o = {.kind = JM_OUTCOME_FAIL,
                    .id = id,
                    .lease = lease,
                    .error = error,
                    .permanent = permanent,
                    .backoff_ms = backoff_ms};
    return outcome1(r, &o, ret, out_state, err);
}

int
jm_queue_release(jm_redis *r, const char *id, const char *lease, jm_state *out_state, jm_error *err)
{
    jm_outcome o = {.kind = JM_OUTCOME_RELEASE, .id = id, .lease = lease};
    return outcome1(r, &o, NULL, out_state, err);
}

int
jm_queue_abandon(jm_redis *r, const char *id, const char *lease, const jm_retention *ret,
                 jm_state *out_state, jm_error *err)
{
    jm_outcome o = {.kind = JM_OUTCOME_ABANDON, .id = id, .lease = lease};
    return outcome1(r, &o, ret, out_state, err);
}

int
jm_queue_cancel_ack(jm_redis *r, const char *id, const char *lease, const jm_retention *ret,
                    jm_error *err)
{
    jm_outcome o = {.kind = JM_OUTCOME_CANCEL_ACK, .id = id, .lease = lease};
    return outcome1(r, &o, ret, NULL, err);
}

int
jm_queue_progress(jm_redis *r, const char *id, const char *lease, const char *progress,
                  jm_error *err)
{
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, "id", "not a job id");
    jm_call c;
    jm_call_init(&c, r, id, NULL);
    jm_call_arg(&c, id);
    jm_call_arg(&c, lease != NULL ? lease : "");
    jm_call_arg(&c, progress != NULL ? progress : "null");
    long long code = 0;
    int rc = jm_call_int(r, &c, "progress", &code, err);
    if (rc == JM_OK && code == 0)
        return jm_error_set(err, JM_ERR_FENCE, NULL,
                            "job %s: the claim with lease %s is no longer current", id,
                            lease != NULL ? lease : "");
    return rc;
}

/* ---- operator transitions ---- */

static int
by_id(jm_redis *r, const char *script, const char *id, const char *mode, const jm_retention *ret,
      long long *code, jm_error *err)
{
    if (!jm_id_valid(id))
        return jm_error_set(err, JM_ERR_NOT_FOUND, "id", "job %s not found", id);
    jm_call c;
    jm_call_init(&c, r, id, ret);
    jm_call_arg(&c, id);
    if (mode != NULL)
        jm_call_arg(&c, mode);
    int rc = jm_call_int(r, &c, script, code, err);
    if (rc != JM_OK)
        return rc;
    if (*code < 0)
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "job %s not found", id);
    if (*code == 0)
        return jm_error_set(err, JM_ERR_STATE, NULL, "job %s: its state forbids %s", id, script);
    return JM_OK;
}

int
jm_queue_cancel(jm_redis *r, const char *id, const jm_retention *ret, jm_error *err)
{
    long long code = 0;
    return by_id(r, "cancel", id, NULL, ret, &code, err);
}

int
jm_queue_retry(jm_redis *r, const char *id, jm_error *err)
{
    long long code = 0;
    return by_id(r, "retry", id, NULL, NULL, &code, err);
}

int
jm_queue_pause(jm_redis *r, const char *queue, bool paused, jm_error *err)
{
    if (!jm_queue_name_valid(queue))
        return jm_error_set(err, JM_ERR_INVALID, "queue", "bad queue name");
    int rc = jm__queue_register(r, &queue, 1, 0, false, err);
    if (rc != JM_OK)
        return rc;
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    jm_call_arg(&c, queue);
    jm_call_arg(&c, paused ? "1" : "0");
    long long code = 0;
    return jm_call_int(r, &c, "pause", &code, err);
}

/* ---- janitor duties ---- */

static redisReply *
duty(jm_redis *r, const char *script, const char *queue, int batch, const jm_retention *ret,
     jm_error *err)
{
    char sb[16];
    snprintf(sb, sizeof(sb), "%d", batch > 0 ? batch : 100);
    jm_call c;
    jm_call_init_queue(&c, r, queue, ret);
    jm_call_arg(&c, queue);
    jm_call_arg(&c, sb);
    return jm_call_run(r, &c, script, err);
}

int
jm_queue_requeue_expired(jm_redis *r, const char *queue, int batch, const jm_retention *ret,
                         int *n_requeued, int *n_failed, int *n_canceled, int *n_dropped,
                         jm_error *err)
{
    redisReply *rep = duty(r, "requeue_expired", queue, batch, ret, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        *n_requeued = (int)jm__reply_ll(rep->element[0]);
        *n_failed = (int)jm__reply_ll(rep->element[1]);
        if (n_canceled != NULL)
            *n_canceled = (int)jm__reply_ll(rep->element[2]);
        if (n_dropped != NULL)
            *n_dropped = (int)jm__reply_ll(rep->element[3]);
    } else {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "requeue_expired: unexpected reply");
    }
    freeReplyObject(rep);
    return rc;
}

static int
duty_int(jm_redis *r, const char *script, const char *queue, int batch, const jm_retention *ret,
         int *n, jm_error *err)
{
    redisReply *rep = duty(r, script, queue, batch, ret, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type == REDIS_REPLY_INTEGER)
        *n = (int)rep->integer;
    else
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "%s: unexpected reply", script);
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_promote_due(jm_redis *r, const char *queue, int batch, int *n, jm_error *err)
{
    return duty_int(r, "promote_due", queue, batch, NULL, n, err);
}

int
jm_queue_expire_stale(jm_redis *r, const char *queue, int batch, const jm_retention *ret, int *n,
                      jm_error *err)
{
    return duty_int(r, "expire_stale", queue, batch, ret, n, err);
}

int
jm_queue_purge(jm_redis *r, const char *queue, int batch, int *n, jm_error *err)
{
    return duty_int(r, "purge", queue, batch, NULL, n, err);
}

int
jm_queue_trim_pending(jm_redis *r, const char *queue, int batch, int *n, jm_error *err)
{
    return duty_int(r, "trim_pending", queue, batch, NULL, n, err);
}

/* ---- operator limits ---- */

/* limits_call registers queue (a limit may be set before its first job) and
 * runs script with the queue then the n args: the shared start of the limit
 * setters. Returns the reply, or NULL with err set. */
static redisReply *
limits_call(jm_redis *r, const char *queue, const char *script, const char *const *args, int n,
            jm_error *err)
{
    if (jm__queue_register(r, &queue, 1, 0, false, err) != JM_OK)
        return NULL;
    jm_call c;
    jm_call_init_queue(&c, r, queue, NULL);
    jm_call_arg(&c, queue);
    for (int i = 0; i < n; i++)
        jm_call_arg(&c, args[i]);
    return jm_call_run(r, &c, script, err);
}

int
jm_queue_set_type_cap(jm_redis *r, const char *queue, const char *type, int concurrency,
                      jm_error *err)
{
    if (!jm_queue_name_valid(queue))
        return jm_error_set(err, JM_ERR_INVALID, "queue", "bad queue name");
    char cap[24], max[24];
    if (concurrency > 0)
        snprintf(cap, sizeof(cap), "%d", concurrency);
    else
        snprintf(cap, sizeof(cap), "-");
    snprintf(max, sizeof(max), "%d", JM_TYPE_CAPS_MAX);
    const char *args[3] = {type, cap, max};
    redisReply *rep = limits_call(r, queue, "type_cap", args, 3, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_INTEGER)
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "type_cap: unexpected reply");
    else if (rep->integer < 0)
        rc = jm_error_set(err, JM_ERR_INVALID, "types",
                          "a queue takes at most %d caps per job type", JM_TYPE_CAPS_MAX);
    freeReplyObject(rep);
    return rc;
}

int
jm_queue_set_limits(jm_redis *r, const char *queue, jm_limit_op rate, jm_limit_op conc,
                    const jm_queue_limits *want, jm_queue_limits *now, jm_error *err)
{
    memset(now, 0, sizeof(*now));
    if (!jm_queue_name_valid(queue))
        return jm_error_set(err, JM_ERR_INVALID, "queue", "bad queue name");
    char rn[24] = "", rms[24] = "", cc[24] = "";
    if (rate == JM_LIMIT_CLEAR)
        snprintf(rn, sizeof(rn), "-");
    else if (rate == JM_LIMIT_SET) {
        snprintf(rn, sizeof(rn), "%d", want->rate_n);
        snprintf(rms, sizeof(rms), "%" PRId64, want->rate_ms);
    }
    if (conc == JM_LIMIT_CLEAR)
        snprintf(cc, sizeof(cc), "-");
    else if (conc == JM_LIMIT_SET)
        snprintf(cc, sizeof(cc), "%d", want->concurrency);
    const char *args[3] = {rn, rms, cc};
    redisReply *rep = limits_call(r, queue, "limits", args, 3, err);
    if (rep == NULL)
        return jm__err_code(err);
    int rc = JM_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        rc = jm_error_set(err, JM_ERR_REPLY, NULL, "limits: unexpected reply");
    } else {
        now->rate_n = (int)jm__reply_ll(rep->element[0]);
        now->rate_ms = jm__reply_ll(rep->element[1]);
        now->concurrency = (int)jm__reply_ll(rep->element[2]);
    }
    freeReplyObject(rep);
    return rc;
}
