/* test_priority.c - priorities within a queue (docs/priorities.md): claim
 * takes priority 9 first and keeps FIFO within a level, a job handed back
 * goes to the head of its level, retries and promoted jobs keep their
 * priority, lazily deleted entries are dropped, listing follows claim order,
 * and the reconciler sees a healthy layout with priorities as healthy and
 * re-indexes a lost prio entry.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/queue.h"
#include "jobmill/reconcile.h"
#include "redis_fixture.h"

JM_TEST_SUITE(priority);

/* Submits a job of type t to "default" with priority p (-1: none given);
 * returns its id in id. */
static void
submit_p(int p, char id[JM_ID_LEN + 1])
{
    char body[128];
    if (p < 0)
        snprintf(body, sizeof(body), "{\"type\":\"t\"}");
    else
        snprintf(body, sizeof(body), "{\"type\":\"t\",\"priority\":%d}", p);
    jm_enqueue_result res = jm_test_submit(r, body);
    snprintf(id, JM_ID_LEN + 1, "%s", res.id);
}

/* Claims the next job and checks it is want (then leaves it running). */
static void
claim_expect(const char *want, const char *what)
{
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(c.id, want, "%s", what);
    jm_claim_clear(&c);
}

static void
reconcile_cycle(jm_reconcile_tally *t)
{
    jm_reconciler *rc = jm_reconciler_new(2, 10000);
    cr_assert(rc != NULL);
    int done = 0;
    for (int i = 0; i < 10000 && !done; i++) {
        jm_error e;
        cr_assert_eq(jm_reconciler_step(rc, r, 3, t, &done, &e), JM_OK, "step: %s", e.msg);
    }
    cr_assert(done, "the cycle never finished");
    jm_reconciler_free(rc);
}

Test(priority, higher_first_fifo_within_a_level)
{
    char a[JM_ID_LEN + 1], b[JM_ID_LEN + 1], c[JM_ID_LEN + 1], d[JM_ID_LEN + 1], e[JM_ID_LEN + 1],
        f[JM_ID_LEN + 1];
    submit_p(-1, a);
    submit_p(5, b);
    submit_p(9, c);
    submit_p(5, d);
    submit_p(0, e);
    submit_p(1, f);
    jm_job j = jm_test_get(r, b);
    cr_assert_eq(j.priority, 5);
    jm_job_clear(&j);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 6);
    claim_expect(c, "priority 9 first");
    claim_expect(b, "then 5, first come");
    claim_expect(d, "then the second 5");
    claim_expect(f, "then 1");
    claim_expect(a, "then 0, FIFO");
    claim_expect(e, "last");
    cr_assert_eq(jm_test_claim_n(r, "default", 8, 60000), 0);
}

Test(priority, one_claim_takes_across_levels_and_pending)
{
    char id[8][JM_ID_LEN + 1];
    for (int i = 0; i < 8; i++)
        submit_p(i % 2 == 0 ? 0 : 3 + i / 2, id[i]);
    jm_claim c[8];
    int n = 0;
    cr_assert_eq(jm_test_claim(r, "default", 8, 60000, "w", c, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 8, "every job in one call");
    const int order[8] = {7, 5, 3, 1, 0, 2, 4, 6};
    for (int i = 0; i < 8; i++) {
        cr_assert_str_eq(c[i].id, id[order[i]], "position %d", i);
        jm_claim_clear(&c[i]);
    }
}

Test(priority, released_job_goes_to_the_head_of_its_level)
{
    char x[JM_ID_LEN + 1], y[JM_ID_LEN + 1], z[JM_ID_LEN + 1];
    submit_p(4, x);
    submit_p(4, y);
    submit_p(0, z);
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    cr_assert_str_eq(c.id, x);
    jm_state st;
    cr_assert_eq(jm_queue_release(r, c.id, c.lease, &st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(st, JM_STATE_QUEUED);
    jm_claim_clear(&c);
    claim_expect(x, "the released job before its level's waiting job");
    claim_expect(y, "then the level");
    claim_expect(z, "then priority 0");
}

Test(priority, retried_and_promoted_jobs_keep_their_priority)
{
    char a[JM_ID_LEN + 1], b[JM_ID_LEN + 1];
    submit_p(7, a);
    jm_claim c = jm_test_claim_one(r, "default", 60000);
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c.id, c.lease, "x", true, 0, &ret, &st, &err), JM_OK);
    cr_assert_eq(st, JM_STATE_FAILED);
    jm_claim_clear(&c);
    submit_p(0, b);
    cr_assert_eq(jm_queue_retry(r, a, &err), JM_OK, "%s", err.msg);
    claim_expect(a, "the retried priority 7 job before the older priority 0 job");
    claim_expect(b, "then the rest");

    /* a delayed priority job, promoted by the janitor's duty */
    char s[JM_ID_LEN + 1], p0[JM_ID_LEN + 1];
    jm_enqueue_result res = jm_test_submit(r, "{\"type\":\"t\",\"priority\":2,\"delay_s\":0.05}");
    snprintf(s, sizeof(s), "%s", res.id);
    submit_p(0, p0);
    int n = 0;
    JM_TEST_WAIT_UNTIL((jm_queue_promote_due(r, "default", 10, &n, &err) == JM_OK && n == 1), 5000,
                       "the delayed job to be promoted");
    claim_expect(s, "promoted into its level, ahead of priority 0");
    claim_expect(p0, "then priority 0");
}

Test(priority, lazily_deleted_entries_are_dropped_and_listing_follows_claim_order)
{
    char a[JM_ID_LEN + 1], b[JM_ID_LEN + 1], c[JM_ID_LEN + 1];
    submit_p(0, a);
    submit_p(6, b);
    submit_p(3, c);
    char **ids = NULL;
    size_t n = 0;
    char next[64];
    cr_assert_eq(jm_queue_list_ids(r, "default", JM_STATE_QUEUED, NULL, 10, &ids, &n, next, &err),
                 JM_OK, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(ids[0], b);
    cr_assert_str_eq(ids[1], c);
    cr_assert_str_eq(ids[2], a);
    jm_strv_free(ids, n);
    /* paged across the two structures */
    cr_assert_eq(jm_queue_list_ids(r, "default", JM_STATE_QUEUED, NULL, 2, &ids, &n, next, &err),
                 JM_OK);
    cr_assert_eq(n, 2);
    jm_strv_free(ids, n);
    cr_assert_eq(jm_queue_list_ids(r, "default", JM_STATE_QUEUED, next, 2, &ids, &n, next, &err),
                 JM_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], a);
    jm_strv_free(ids, n);

    cr_assert_eq(jm_queue_cancel(r, b, &ret, &err), JM_OK, "%s", err.msg);
    int trimmed = 0;
    cr_assert_eq(jm_queue_trim_pending(r, "default", 10, &trimmed, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(trimmed, 1, "the canceled head of the prio set");
    cr_assert_eq(jm_queue_cancel(r, c, &ret, &err), JM_OK, "%s", err.msg);
    claim_expect(a, "canceled priority jobs are skipped");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 0);
}

Test(priority, reconciler_keeps_a_healthy_layout_and_reindexes_a_lost_entry)
{
    char a[JM_ID_LEN + 1], b[JM_ID_LEN + 1], c[JM_ID_LEN + 1];
    submit_p(0, a);
    submit_p(8, b);
    submit_p(2, c);
    cr_assert_eq(jm_queue_cancel(r, c, &ret, &err), JM_OK); /* a lazy entry */
    jm_reconcile_tally t = {0};
    reconcile_cycle(&t);
    for (int k = 0; k < JM_REPAIR_KIND_COUNT; k++)
        cr_assert_eq(t.repaired[k], 0, "false repair of kind %s",
                     jm_repair_kind_name((jm_repair_kind)k));
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 2);

    /* lose b's prio entry: the reconciler puts it back, in its level */
    char tag[JM_TAG_LEN + 1], key[128];
    jm_slot_tag("default", tag);
    snprintf(key, sizeof(key), "jm:{%s}:q:default:prio", tag);
    redisReply *rep = jm_redis_command(r, &err, "ZREM %s %s", key, b);
    cr_assert(rep != NULL && rep->integer == 1);
    freeReplyObject(rep);
    jm_reconcile_tally t2 = {0};
    reconcile_cycle(&t2);
    cr_assert_eq(t2.repaired[JM_REPAIR_UNINDEXED_RECORD], 1);
    claim_expect(b, "re-indexed, still first");
    claim_expect(a, "then priority 0");
}

Test(priority, out_of_range_priority_is_refused)
{
    jm_job_spec spec;
    json_t *body = json_loads("{\"type\":\"t\",\"priority\":10}", 0, NULL);
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "priority");
    jm_job_spec_clear(&spec);
    json_decref(body);
    body = json_loads("{\"type\":\"t\",\"priority\":\"high\"}", 0, NULL);
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_ERR_INVALID);
    jm_job_spec_clear(&spec);
    json_decref(body);
}
