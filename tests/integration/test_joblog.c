/* test_joblog.c - a job's log list (lua/log_append.lua, lua/logs_read.lua):
 * fencing of appends (a stale token changes nothing), the line and byte
 * caps, numbering and paging across trims, progress in the same call, the
 * list expiring with the record (every terminal path, retry persisting it,
 * purge deleting it), a job that never logged getting no list, and the
 * reconciler's walk over the job keys passing log lists by.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/joblog.h"
#include "jobmill/queue.h"
#include "jobmill/reconcile.h"
#include "redis_fixture.h"

JM_TEST_SUITE(joblog);

static const jm_joblog_limits lim = {.max_lines = 5, .max_line_bytes = 16};

static int
append(const jm_claim *c, const char *const *lines, size_t n, const char *progress)
{
    size_t lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(lines[i]);
    return jm_joblog_append(r, c->id, c->lease, lines, lens, n, progress, &lim, NULL, &err);
}

/* ttl_of is the TTL of job id's record (logs false) or log list. */
static long long
ttl_of(bool logs, const char *id)
{
    char key[160];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s%s", id, id, logs ? ":logs" : "");
    redisReply *rep = jm_redis_command(r, &err, "TTL %s", key);
    cr_assert_not_null(rep);
    long long t = rep->integer;
    freeReplyObject(rep);
    return t;
}

#define LOGS_KEY true
#define JOB_KEY false

static int
purge_once(void)
{
    int n = -1;
    cr_assert_eq(jm_queue_purge(r, "default", 100, &n, &err), JM_OK, "%s", err.msg);
    return n;
}

Test(joblog, append_is_fenced_and_read_pages)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    const char *a[] = {"one", "two"};
    cr_assert_eq(append(&c, a, 2, "{\"progress\":10}"), JM_OK, "%s", err.msg);
    jm_claim stale = c;
    snprintf(stale.lease, sizeof(stale.lease), "%s", "1-forged");
    const char *b[] = {"zombie"};
    cr_assert_eq(append(&stale, b, 1, "{\"progress\":99}"), JM_ERR_FENCE);
    jm_job j = jm_test_get(r, c.id);
    cr_assert_str_eq(j.progress, "{\"progress\":10}", "the stale call changed nothing");
    jm_job_clear(&j);

    jm_joblog_page p;
    cr_assert_eq(jm_joblog_read(r, c.id, 0, 100, &p, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(p.n, 2);
    cr_assert_eq(p.next, 2);
    cr_assert_eq(p.status, JM_STATE_RUNNING);
    cr_assert_eq(p.lines[0].len, 3);
    cr_assert_eq(memcmp(p.lines[1].text, "two", 3), 0);
    cr_assert_gt(p.lines[0].ts_ms, 1600000000000LL, "Redis time in ms");
    jm_joblog_page_clear(&p);
    cr_assert_eq(jm_joblog_read(r, c.id, 1, 100, &p, &err), JM_OK);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.lines[0].n, 1);
    jm_joblog_page_clear(&p);
    cr_assert_eq(jm_joblog_read(r, c.id, 2, 100, &p, &err), JM_OK);
    cr_assert_eq(p.n, 0, "nothing new");
    cr_assert_eq(p.next, 2);
    jm_joblog_page_clear(&p);

    /* after the job ends the same token is refused too */
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(append(&c, b, 1, NULL), JM_ERR_FENCE);
    cr_assert_eq(jm_joblog_read(r, "0000nosuchjob00000000000", 0, 10, &p, &err), JM_ERR_NOT_FOUND);
    jm_claim_clear(&c);
}

Test(joblog, caps_lines_and_bytes_and_keeps_numbers_across_trims)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    const char *a[] = {"l0", "l1", "l2", "l3"};
    cr_assert_eq(append(&c, a, 4, NULL), JM_OK);
    const char *b[] = {"l4", "l5", "a line well over sixteen bytes long"};
    cr_assert_eq(append(&c, b, 3, NULL), JM_OK);
    jm_joblog_page p;
    cr_assert_eq(jm_joblog_read(r, c.id, 0, 100, &p, &err), JM_OK);
    cr_assert_eq(p.n, 5, "max_lines kept");
    cr_assert_eq(p.first, 2, "lines 0 and 1 were trimmed away");
    cr_assert_eq(p.next, 7);
    cr_assert_eq(p.lines[0].n, 2);
    cr_assert_eq(memcmp(p.lines[0].text, "l2", 2), 0);
    const jm_joblog_line *l = &p.lines[4];
    cr_assert_eq(l->len, 16 + strlen("...[truncated]"));
    cr_assert_eq(memcmp(l->text, "a line well over...[truncated]", l->len), 0);
    jm_joblog_page_clear(&p);
    /* binary bytes are stored as they are */
    const char bin[] = {'x', 0, '\xff', 'y'};
    const char *v[] = {bin};
    size_t lens[] = {sizeof(bin)};
    cr_assert_eq(jm_joblog_append(r, c.id, c.lease, v, lens, 1, NULL, &lim, NULL, &err), JM_OK);
    cr_assert_eq(jm_joblog_read(r, c.id, 7, 100, &p, &err), JM_OK);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.lines[0].len, sizeof(bin));
    cr_assert_eq(memcmp(p.lines[0].text, bin, sizeof(bin)), 0);
    size_t ol = 0;
    char *u = jm_joblog_utf8(p.lines[0].text, p.lines[0].len, &ol);
    cr_assert_str_eq(u, "x\xEF\xBF\xBD\xEF\xBF\xBDy", "NUL and a bad byte become U+FFFD");
    free(u);
    jm_joblog_page_clear(&p);
    jm_queue_complete(r, c.id, c.lease, "1", &ret, &err);
    jm_claim_clear(&c);
}

Test(joblog, list_expires_with_the_record_and_purge_removes_it)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"result_ttl_s\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    const char *a[] = {"x"};
    cr_assert_eq(append(&c, a, 1, NULL), JM_OK);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), -1, "no TTL while it runs");
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), ttl_of(JOB_KEY, e.id), "the record's own TTL");
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), 1);
    JM_TEST_WAIT_UNTIL(purge_once() == 1, 5000, "the purge after 1 s");
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), -2, "gone with the record");
    jm_claim_clear(&c);
}

Test(joblog, failed_and_canceled_jobs_expire_their_logs_and_retry_keeps_them)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\",\"max_attempts\":1}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    const char *a[] = {"x"};
    cr_assert_eq(append(&c, a, 1, NULL), JM_OK);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "boom", true, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), 86400, "the failed retention");
    cr_assert_eq(jm_queue_retry(r, e.id, &err), JM_OK);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), -1, "a retried job keeps its log, persistent again");
    jm_claim c2 = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(append(&c2, a, 1, NULL), JM_OK);
    cr_assert_eq(jm_queue_cancel(r, e.id, &ret, &err), JM_OK); /* cancel requested */
    cr_assert_eq(jm_queue_cancel_ack(r, c2.id, c2.lease, &ret, &err), JM_OK);
    cr_assert_eq(jm_test_state(r, e.id), JM_STATE_CANCELED);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), ttl_of(JOB_KEY, e.id));
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), 3600, "the result retention");
    jm_joblog_page p;
    cr_assert_eq(jm_joblog_read(r, e.id, 0, 10, &p, &err), JM_OK);
    cr_assert_eq(p.next, 2, "both attempts' lines");
    jm_joblog_page_clear(&p);
    jm_claim_clear(&c);
    jm_claim_clear(&c2);
}

Test(joblog, a_job_that_never_logged_has_no_list_and_no_field)
{
    jm_enqueue_result e = jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_eq(jm_queue_complete(r, c.id, c.lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(ttl_of(LOGS_KEY, e.id), -2);
    char key[160];
    snprintf(key, sizeof(key), "jm:{%.4s}:job:%s", e.id, e.id);
    redisReply *rep = jm_redis_command(r, &err, "HEXISTS %s logs", key);
    cr_assert_eq(rep->integer, 0);
    freeReplyObject(rep);
    jm_joblog_page p;
    cr_assert_eq(jm_joblog_read(r, e.id, 0, 10, &p, &err), JM_OK);
    cr_assert_eq(p.n, 0);
    cr_assert_eq(p.next, 0);
    cr_assert_eq(p.status, JM_STATE_SUCCEEDED);
    jm_joblog_page_clear(&p);
    jm_claim_clear(&c);
}

Test(joblog, the_reconciler_passes_log_lists_by)
{
    jm_test_submit(r, "{\"type\":\"t\"}");
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    const char *a[] = {"x"};
    cr_assert_eq(append(&c, a, 1, NULL), JM_OK);
    jm_reconciler *rc = jm_reconciler_new(2, 10000);
    jm_reconcile_tally t;
    memset(&t, 0, sizeof(t));
    int done = 0;
    for (int i = 0; i < 1000 && !done; i++)
        cr_assert_eq(jm_reconciler_step(rc, r, 3, &t, &done, &err), JM_OK, "step: %s", err.msg);
    cr_assert(done);
    for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++)
        cr_assert_eq(t.repaired[k], 0, "nothing to repair (kind %d)", k);
    jm_reconciler_free(rc);
    jm_joblog_page p;
    cr_assert_eq(jm_joblog_read(r, c.id, 0, 10, &p, &err), JM_OK);
    cr_assert_eq(p.n, 1);
    jm_joblog_page_clear(&p);
    jm_claim_clear(&c);
}
