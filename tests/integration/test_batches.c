/* test_batches.c - batches (lua/batch_*.lua, the fan-in hook in _lib.lua):
 * a submit is all or nothing (nothing runs before the seal, an unsealed
 * batch expires), the janitor finishes releasing a sealed batch, members
 * run in submission order, the callback job is created exactly once however
 * many workers and janitors race, retries and idempotency keys behave as
 * docs/batches.md says, and a done batch expires.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "jobmill/batch.h"
#include "jobmill/queue.h"
#include "keys.h"
#include "redis_fixture.h"

JM_TEST_SUITE(batches);

/* specs_new makes n echo specs whose payload is {"i":k}. */
static jm_job_spec *
specs_new(size_t n)
{
    jm_job_spec *s = calloc(n, sizeof(*s));
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof(p), "{\"i\":%zu}", i);
        snprintf(s[i].queue, sizeof(s[i].queue), "bq");
        s[i].type = strdup("echo");
        s[i].payload = strdup(p);
        s[i].max_attempts = 1;
    }
    return s;
}

static void
specs_free(jm_job_spec *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jm_job_spec_clear(&s[i]);
    free(s);
}

static long long
raw_int(jm_redis *c, const char *fmt, const char *arg)
{
    redisReply *rep = jm_redis_command(c, &err, fmt, arg);
    cr_assert_not_null(rep, "%s", err.msg);
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -99;
    freeReplyObject(rep);
    return v;
}

static jm_batch
get(const char *id, int64_t offset, int limit)
{
    jm_batch b;
    cr_assert_eq(jm_batch_get(r, id, false, offset, limit, &b, &err), JM_OK, "%s", err.msg);
    return b;
}

/* work_all claims and finishes every job of queue bq on connection c, in
 * claims of up to 50: jobs whose payload index is divisible by fail_every
 * (0 = none) fail permanently, the rest complete. Returns how many it ran. */
static int
work_all(jm_redis *c, int fail_every)
{
    int ran = 0;
    for (;;) {
        jm_claim cl[50];
        int n = 0;
        jm_error e;
        jm_error_clear(&e);
        cr_assert_eq(jm_test_claim(c, "bq", 50, 60000, "w", cl, &n, &e), JM_OK, "%s", e.msg);
        if (n == 0)
            return ran;
        jm_outcome o[50];
        memset(o, 0, sizeof(o));
        for (int i = 0; i < n; i++) {
            const char *p = strstr(cl[i].payload, "\"i\":");
            long k = p != NULL ? strtol(p + 4, NULL, 10) : 1;
            o[i].id = cl[i].id;
            o[i].lease = cl[i].lease;
            if (fail_every > 0 && k % fail_every == 0) {
                o[i].kind = JM_OUTCOME_FAIL;
                o[i].error = "boom";
                o[i].permanent = true;
            } else {
                o[i].kind = JM_OUTCOME_COMPLETE;
                o[i].result = cl[i].payload;
            }
        }
        cr_assert_eq(jm_queue_outcomes(c, o, (size_t)n, &ret), JM_OK);
        for (int i = 0; i < n; i++) {
            cr_assert_eq(o[i].rc, JM_OK);
            jm_claim_clear(&cl[i]);
        }
        ran += n;
    }
}

Test(batches, submit_runs_in_order_and_fans_in_once)
{
    size_t n = 1200;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "bq", .type = strdup("echo"), .payload = strdup("{\"k\":1}")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert(created);
    cr_assert(strncmp(id, "", 1) != 0 && jm_id_valid(id));
    char tag[JM_TAG_LEN + 1];
    jm_slot_tag("bq", tag);
    cr_assert(strncmp(id, tag, JM_TAG_LEN) == 0, "the batch id carries its queue's tag");
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), (int64_t)n);

    jm_batch g = get(id, 10, 5);
    cr_assert_eq(g.total, (int64_t)n);
    cr_assert_eq(g.released, (int64_t)n);
    cr_assert_not(g.done);
    cr_assert(g.has_callback);
    cr_assert_str_eq(g.callback, "");
    cr_assert_eq(g.nids, 5);
    jm_job j = jm_test_get(r, g.ids[0]);
    cr_assert_str_eq(j.payload, "{\"i\":10}", "ids in submission order");
    jm_job_clear(&j);
    jm_batch_clear(&g);

    /* the first claim takes the first member; the counts by state follow
     * (read from the members, in slices smaller than the batch) */
    jm_claim first = jm_test_claim_one(r, "bq", 60000);
    cr_assert_str_eq(first.payload, "{\"i\":0}");
    int64_t st[JM_STATE_COUNT];
    cr_assert_eq(jm_batch_states(r, id, st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st[JM_STATE_QUEUED], (int64_t)n - 1);
    cr_assert_eq(st[JM_STATE_RUNNING], 1);
    cr_assert_eq(st[JM_STATE_SCHEDULED], 0);
    cr_assert_eq(jm_queue_complete(r, first.id, first.lease, "1", &ret, &err), JM_OK);
    jm_claim_clear(&first);
    cr_assert_eq(jm_batch_states(r, id, st, &err), JM_OK);
    cr_assert_eq(st[JM_STATE_QUEUED], (int64_t)n - 1);
    cr_assert_eq(st[JM_STATE_RUNNING], 0);

    cr_assert_eq(work_all(r, 7), (int)n - 1 + 1, "the members and then the callback");
    g = get(id, 0, 0);
    cr_assert(g.done);
    cr_assert_eq(g.left, 0);
    cr_assert_eq(g.counts[JM_STATE_FAILED], (int64_t)(n + 6) / 7 - 1 + 0,
                 "i %% 7 == 0 failed except i=0 (completed above): %lld",
                 (long long)g.counts[JM_STATE_FAILED]);
    cr_assert_eq(g.counts[JM_STATE_SUCCEEDED] + g.counts[JM_STATE_FAILED], (int64_t)n);
    cr_assert(jm_id_valid(g.callback));
    cr_assert(g.finished_ms > 0);
    j = jm_test_get(r, g.callback);
    cr_assert_eq(j.status, JM_STATE_SUCCEEDED, "the callback ran");
    char want[128];
    snprintf(want, sizeof(want), "{\"batch_id\":\"%s\",\"payload\":{\"k\":1}}", id);
    cr_assert_str_eq(j.payload, want);
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_SUCCEEDED) +
                     jm_test_count(r, "bq", JM_STATE_FAILED),
                 (int64_t)n + 1, "exactly one callback");
    /* a done batch expires with its jobs (failed_ttl: a member failed) */
    jm_keybuf k;
    snprintf(k, sizeof(k), "%s:{%.4s}:batch:%s", jm_redis_prefix(r), id, id);
    long long ttl = raw_int(r, "TTL %s", k);
    cr_assert(ttl > 3600 && ttl <= 86400, "ttl %lld", ttl);
    jm_batch_clear(&g);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

Test(batches, nothing_runs_before_the_seal_and_an_open_batch_expires)
{
    size_t n = 1000;
    jm_job_spec *s = specs_new(n);
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_open(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert(created);
    cr_assert_eq(jm_batch_stage(r, id, &b, 0, 500, &err), JM_OK, "%s", err.msg);
    /* the api dies here, between two chunks */
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), 0);
    int got = 0;
    bool more = true;
    cr_assert_eq(jm_batch_release(r, "bq", NULL, 1000, &got, &more, &err), JM_OK);
    cr_assert_eq(got, 0, "the janitor releases nothing of an open batch");
    cr_assert_eq(jm_batch_release(r, "bq", id, 1000, &got, &more, &err), JM_OK);
    cr_assert_eq(got, 0, "nor does a release naming it");
    cr_assert_eq(jm_test_claim_n(r, "bq", 100, 60000), 0, "no job is runnable");
    jm_batch g;
    cr_assert_eq(jm_batch_get(r, id, false, 0, 10, &g, &err), JM_ERR_NOT_FOUND,
                 "an open batch is not visible");
    jm_batch_clear(&g);
    cr_assert_eq(jm_batch_seal(r, id, &b, &created, &err), JM_ERR_STATE,
                 "a seal with chunks missing is refused");
    /* everything it holds expires */
    jm_keybuf k;
    const char *what[3] = {"", ":staged", ":ids"};
    for (int i = 0; i < 3; i++) {
        snprintf(k, sizeof(k), "%s:{%.4s}:batch:%s%s", jm_redis_prefix(r), id, id, what[i]);
        long long pttl = raw_int(r, "PTTL %s", k);
        cr_assert(pttl > 0 && pttl <= JM_BATCH_OPEN_MS, "%s pttl %lld", k, pttl);
        redisReply *rep = jm_redis_command(r, &err, "PEXPIRE %s 1", k);
        freeReplyObject(rep);
    }
    JM_TEST_WAIT_UNTIL(raw_int(r, "EXISTS %s", k) == 0, 5000, "the open batch to expire");
    cr_assert_eq(jm_batch_stage(r, id, &b, 500, 500, &err), JM_ERR_STATE,
                 "a late chunk is refused");
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), 0);
    specs_free(s, n);
}

Test(batches, the_janitor_finishes_a_sealed_batch)
{
    size_t n = 2500; /* more than one slice of jm_batch_states */
    jm_job_spec *s = specs_new(n);
    s[2400].delay_ms = 3600000; /* one member waits, in the second slice */
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_open(r, &b, 0, id, &created, &err), JM_OK);
    for (size_t f = 0; f < n; f += JM_BATCH_CHUNK)
        cr_assert_eq(jm_batch_stage(r, id, &b, f, JM_BATCH_CHUNK, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_batch_seal(r, id, &b, &created, &err), JM_OK, "%s", err.msg);
    cr_assert(created);
    int got = 0;
    bool more = false;
    cr_assert_eq(jm_batch_release(r, "bq", id, 300, &got, &more, &err), JM_OK);
    cr_assert_eq(got, 300);
    cr_assert(more);
    int64_t st[JM_STATE_COUNT];
    cr_assert_eq(jm_batch_states(r, id, st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st[JM_STATE_QUEUED], (int64_t)n, "staged members count as queued");
    /* the api dies here; the janitor's duty drains the release index */
    int total = 300;
    do {
        cr_assert_eq(jm_batch_release(r, "bq", NULL, 1000, &got, &more, &err), JM_OK);
        total += got;
    } while (more);
    cr_assert_eq(total, (int)n);
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), (int64_t)n - 1);
    cr_assert_eq(jm_batch_states(r, id, st, &err), JM_OK);
    cr_assert_eq(st[JM_STATE_QUEUED], (int64_t)n - 1);
    cr_assert_eq(st[JM_STATE_SCHEDULED], 1);
    cr_assert_eq(jm_batch_release(r, "bq", NULL, 1000, &got, &more, &err), JM_OK);
    cr_assert_eq(got, 0);
    jm_claim c = jm_test_claim_one(r, "bq", 60000);
    cr_assert_str_eq(c.payload, "{\"i\":0}", "still in submission order");
    jm_claim_clear(&c);
    cr_assert_eq(jm_batch_states(r, id, st, &err), JM_OK);
    cr_assert_eq(st[JM_STATE_QUEUED], (int64_t)n - 2);
    cr_assert_eq(st[JM_STATE_RUNNING], 1);
    specs_free(s, n);
}

/* Many workers and two janitors (releasing, each in its own process) race
 * on one batch: every member ends once, the callback is created once. */
Test(batches, exactly_once_callback_under_races)
{
    size_t n = 3000;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "bq", .type = strdup("echo"), .payload = strdup("null")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_open(r, &b, 0, id, &created, &err), JM_OK);
    for (size_t f = 0; f < n; f += JM_BATCH_CHUNK)
        cr_assert_eq(jm_batch_stage(r, id, &b, f, JM_BATCH_CHUNK, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_batch_seal(r, id, &b, &created, &err), JM_OK, "%s", err.msg);
    enum { WORKERS = 6, JANITORS = 2 };
    pid_t kids[WORKERS + JANITORS];
    for (int k = 0; k < WORKERS + JANITORS; k++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            jm_redis *c = jm_test_redis_connect(&srv);
            long long deadline = jm_test_now_ms() + 30000;
            if (k >= WORKERS) { /* a janitor: release in small steps */
                bool more = true;
                while (more && jm_test_now_ms() < deadline) {
                    int got;
                    jm_error e;
                    if (jm_batch_release(c, "bq", NULL, 100, &got, &more, &e) != JM_OK)
                        _exit(3);
                }
            } else { /* a worker: run until the batch is done */
                for (;;) {
                    work_all(c, 5);
                    jm_batch g;
                    jm_error e;
                    if (jm_batch_get(c, id, false, 0, 0, &g, &e) != JM_OK)
                        _exit(4);
                    bool done = g.done;
                    jm_batch_clear(&g);
                    if (done || jm_test_now_ms() > deadline)
                        break;
                    jm_test_pause();
                }
            }
            jm_redis_free(c);
            _exit(0);
        }
        kids[k] = pid;
    }
    for (int k = 0; k < WORKERS + JANITORS; k++) {
        int st;
        cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status %d", k, st);
    }
    jm_batch g = get(id, 0, 0);
    cr_assert(g.done, "done: left %lld", (long long)g.left);
    cr_assert_eq(g.left, 0);
    cr_assert_eq(g.counts[JM_STATE_FAILED], (int64_t)n / 5);
    cr_assert_eq(g.counts[JM_STATE_SUCCEEDED], (int64_t)(n - n / 5));
    cr_assert(jm_id_valid(g.callback));
    /* exactly one callback job: n members + 1 in the queue's counts */
    int64_t all = 0;
    for (int st = 0; st < JM_STATE_COUNT; st++)
        all += jm_test_count(r, "bq", (jm_state)st);
    cr_assert_eq(all, (int64_t)n + 1);
    jm_batch_clear(&g);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

Test(batches, retry_and_idempotency)
{
    size_t n = 3;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "bq", .type = strdup("cb"), .payload = strdup("null")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb, .idem_key = "order-9"};
    char id[JM_ID_LEN + 1], again[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert(created);
    cr_assert_eq(jm_batch_submit(r, &b, 0, again, &created, &err), JM_OK, "%s", err.msg);
    cr_assert_not(created, "the key returns the first batch");
    cr_assert_str_eq(again, id);
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), (int64_t)n);

    /* a member failed and retried while the batch runs is counted again */
    jm_claim c = jm_test_claim_one(r, "bq", 60000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", true, 0, &ret, &st, &err), JM_OK);
    jm_batch g = get(id, 0, 0);
    cr_assert_eq(g.counts[JM_STATE_FAILED], 1);
    cr_assert_eq(g.left, 2);
    jm_batch_clear(&g);
    cr_assert_eq(jm_queue_retry(r, c.id, &err), JM_OK);
    g = get(id, 0, 0);
    cr_assert_eq(g.counts[JM_STATE_FAILED], 0);
    cr_assert_eq(g.left, 3);
    jm_batch_clear(&g);
    jm_claim_clear(&c);

    cr_assert_eq(work_all(r, 0), 4, "3 members (one retried) and the callback");
    g = get(id, 0, 0);
    cr_assert(g.done);
    cr_assert_eq(g.counts[JM_STATE_SUCCEEDED], 3);
    cr_assert(jm_id_valid(g.callback));
    jm_batch_clear(&g);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

Test(batches, a_retry_after_the_fan_in_leaves_the_batch_done)
{
    size_t n = 4;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "bq", .type = strdup("cb"), .payload = strdup("null")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(work_all(r, 1), 5, "every job fails, the callback too");
    jm_batch g = get(id, 0, 4);
    cr_assert(g.done);
    cr_assert_eq(g.counts[JM_STATE_FAILED], 4);
    char cbid[JM_ID_LEN + 1];
    snprintf(cbid, sizeof(cbid), "%s", g.callback);
    cr_assert_eq(jm_queue_retry(r, g.ids[2], &err), JM_OK, "%s", err.msg);
    jm_batch_clear(&g);
    cr_assert_eq(work_all(r, 0), 1, "the retried member runs; no second callback");
    g = get(id, 0, 0);
    cr_assert(g.done);
    cr_assert_eq(g.counts[JM_STATE_FAILED], 4, "a done batch's counts stay as they were");
    cr_assert_str_eq(g.callback, cbid);
    jm_batch_clear(&g);
    int64_t all = 0;
    for (int st = 0; st < JM_STATE_COUNT; st++)
        all += jm_test_count(r, "bq", (jm_state)st);
    cr_assert_eq(all, (int64_t)n + 1);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

Test(batches, members_and_the_callback_keep_their_priority)
{
    size_t n = 10;
    jm_job_spec *s = specs_new(n);
    s[7].priority = 9;
    jm_job_spec cb = {
        .queue = "bq", .type = strdup("cb"), .payload = strdup("null"), .priority = 5};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_test_count(r, "bq", JM_STATE_QUEUED), (int64_t)n);
    jm_claim c = jm_test_claim_one(r, "bq", 60000);
    cr_assert_str_eq(c.payload, "{\"i\":7}", "priority 9 first");
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    jm_claim_clear(&c);
    jm_claim held = jm_test_claim_one(r, "bq", 60000);
    cr_assert_str_eq(held.payload, "{\"i\":0}", "then submission order");
    cr_assert_eq(work_all(r, 0), (int)n - 2, "the other members");
    jm_batch g = get(id, 0, 0);
    cr_assert_eq(g.left, 1, "the member held here still runs");
    jm_batch_clear(&g);
    jm_test_submit(r, "{\"queue\":\"bq\",\"type\":\"late\"}");
    cr_assert_eq(jm_queue_complete(r, held.id, held.lease, "1", &ret, &err), JM_OK);
    jm_claim_clear(&held);
    g = get(id, 0, 0);
    cr_assert(g.done);
    c = jm_test_claim_one(r, "bq", 60000);
    cr_assert_str_eq(c.id, g.callback, "the callback (priority 5) before the late job");
    cr_assert_str_eq(c.type, "cb");
    jm_claim_clear(&c);
    jm_batch_clear(&g);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

/* A callback on a queue of another slot: the fan-in marks it, and the
 * janitor's duty submits it once, however many janitors race, also after a
 * janitor died between submitting it and recording it. */
Test(batches, a_callback_in_another_slot_is_submitted_once_by_racing_janitors)
{
    char t1[JM_TAG_LEN + 1], t2[JM_TAG_LEN + 1];
    jm_slot_tag("bq", t1);
    jm_slot_tag("reports", t2);
    cr_assert_str_neq(t1, t2, "the two queues are in different slots");
    size_t n = 50;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "reports", .type = strdup("cb"), .payload = strdup("7")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(work_all(r, 0), (int)n, "the members; no callback in this slot");
    jm_batch g = get(id, 0, 0);
    cr_assert(g.done);
    cr_assert_str_eq(g.callback, "", "not submitted yet");
    jm_batch_clear(&g);
    cr_assert_eq(jm_test_count(r, "reports", JM_STATE_QUEUED), 0);

    /* a janitor submitted it and died before recording it */
    char idem[64];
    snprintf(idem, sizeof(idem), "batch:%s:callback", id);
    char want[128];
    snprintf(want, sizeof(want), "{\"batch_id\":\"%s\",\"payload\":7}", id);
    jm_job_spec early = {.queue = "reports",
                         .type = strdup("cb"),
                         .payload = strdup(want),
                         .idem_key = strdup(idem)};
    jm_enqueue_result first;
    cr_assert_eq(jm_queue_enqueue(r, &early, 0, &first, NULL, &err), JM_OK, "%s", err.msg);
    jm_job_spec_clear(&early);

    enum { JANITORS = 4 };
    pid_t kids[JANITORS];
    for (int k = 0; k < JANITORS; k++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            jm_redis *c = jm_test_redis_connect(&srv);
            for (int i = 0; i < 20; i++) {
                int got;
                jm_error e;
                if (jm_batch_callbacks(c, "bq", 16, &got, &e) != JM_OK)
                    _exit(3);
            }
            jm_redis_free(c);
            _exit(0);
        }
        kids[k] = pid;
    }
    for (int k = 0; k < JANITORS; k++) {
        int st;
        cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "janitor %d status %d", k, st);
    }
    g = get(id, 0, 0);
    cr_assert_str_eq(g.callback, first.id, "the job the dead janitor submitted");
    jm_batch_clear(&g);
    cr_assert_eq(jm_test_count(r, "reports", JM_STATE_QUEUED), 1, "exactly one callback");
    jm_job j = jm_test_get(r, first.id);
    cr_assert_str_eq(j.payload, want);
    jm_job_clear(&j);
    int got = -1;
    cr_assert_eq(jm_batch_callbacks(r, "bq", 16, &got, &err), JM_OK);
    cr_assert_eq(got, 0, "nothing left pending");
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}

Test(batches, a_callback_in_another_slot_without_a_crash)
{
    size_t n = 3;
    jm_job_spec *s = specs_new(n);
    jm_job_spec cb = {.queue = "reports", .type = strdup("cb"), .payload = strdup("null")};
    jm_batch_spec b = {.queue = "bq", .jobs = s, .n = n, .callback = &cb};
    char id[JM_ID_LEN + 1];
    bool created;
    cr_assert_eq(jm_batch_submit(r, &b, 0, id, &created, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(work_all(r, 0), (int)n);
    int got = 0;
    bool more = true;
    cr_assert_eq(jm_batch_release(r, "bq", NULL, 100, &got, &more, &err), JM_OK);
    cr_assert_eq(got, 0, "a pending callback is not a release");
    cr_assert_eq(jm_batch_callbacks(r, "bq", 16, &got, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(got, 1);
    jm_batch g = get(id, 0, 0);
    cr_assert(jm_id_valid(g.callback));
    jm_claim c = jm_test_claim_one(r, "reports", 60000);
    cr_assert_str_eq(c.id, g.callback);
    char want[128];
    snprintf(want, sizeof(want), "{\"batch_id\":\"%s\",\"payload\":null}", id);
    cr_assert_str_eq(c.payload, want);
    jm_claim_clear(&c);
    jm_batch_clear(&g);
    jm_job_spec_clear(&cb);
    specs_free(s, n);
}
