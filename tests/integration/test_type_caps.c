/* test_type_caps.c - concurrency caps per job type in the claim script
 * (docs/limits.md): a capped type never runs more than its cap across
 * claims, other types pass its waiting jobs, which keep their place (in
 * pending and in the prio set), an ended job frees its place without any
 * extra write, a claim that finds only capped jobs says how long to wait,
 * clearing a cap releases the rest, and the queue's stats show the caps.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/queue.h"
#include "redis_fixture.h"

JM_TEST_SUITE(type_caps);

static void
submit_t(const char *type, int prio, char id[JM_ID_LEN + 1])
{
    char body[160];
    snprintf(body, sizeof(body), "{\"type\":\"%s\",\"priority\":%d}", type, prio);
    jm_enqueue_result res = jm_test_submit(r, body);
    if (id != NULL)
        snprintf(id, JM_ID_LEN + 1, "%s", res.id);
}

/* claim_call claims up to max into c (kept); returns how many, and the hint. */
static int
claim_call(int max, jm_claim *c, int *throttle_ms)
{
    jm_claim_call call = {.queue = "default", .max = max, .lease_ms = 60000, .worker_id = "w"};
    int n = 0;
    cr_assert_eq(jm_queue_claim(r, &call, c, &n, &err), JM_OK, "%s", err.msg);
    if (throttle_ms != NULL)
        *throttle_ms = call.throttle_ms;
    return n;
}

static int
count_type(const jm_claim *c, int n, const char *type)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += strcmp(c[i].type, type) == 0;
    return k;
}

Test(type_caps, a_capped_type_never_exceeds_its_cap_and_others_pass_it)
{
    char first[JM_ID_LEN + 1];
    submit_t("solve", 0, first);
    for (int i = 0; i < 5; i++)
        submit_t("solve", 0, NULL);
    for (int i = 0; i < 4; i++)
        submit_t("mail", 0, NULL);
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "solve", 2, &err), JM_OK, "%s", err.msg);
    jm_claim c[16];
    int n = claim_call(16, c, NULL);
    cr_assert_eq(n, 6, "2 solves and every mail");
    cr_assert_eq(count_type(c, n, "solve"), 2);
    cr_assert_str_eq(c[0].id, first, "FIFO: the first solve first");
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 4);
    /* nothing left but capped jobs: none, and a hint */
    jm_claim more[4];
    int throttle = 0;
    cr_assert_eq(claim_call(4, more, &throttle), 0);
    cr_assert_gt(throttle, 0, "the claimer is told to look again soon");
    /* one solve ends: exactly one place, to the next solve in order */
    cr_assert_eq(jm_queue_complete(r, c[0].id, c[0].lease, "1", &ret, &err), JM_OK);
    cr_assert_eq(claim_call(4, more, NULL), 1);
    cr_assert_str_eq(more[0].type, "solve");
    jm_claim_clear(&more[0]);
    cr_assert_eq(claim_call(4, more, NULL), 0);

    jm_queue_info info;
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(info.limits.n_types, 1);
    cr_assert_str_eq(info.limits.types[0].type, "solve");
    cr_assert_eq(info.limits.types[0].concurrency, 2);
    cr_assert_eq(info.limits.types[0].running, 2);

    /* cleared: the rest of the solves at once */
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "solve", 0, &err), JM_OK);
    cr_assert_eq(claim_call(8, more, NULL), 3);
    for (int i = 0; i < 3; i++)
        jm_claim_clear(&more[i]);
    cr_assert_eq(jm_queue_stats(r, "default", &info, &err), JM_OK);
    cr_assert_eq(info.limits.n_types, 0);
    for (int i = 0; i < n; i++)
        jm_claim_clear(&c[i]);
}

Test(type_caps, passed_over_jobs_keep_their_place_in_both_structures)
{
    char s1[JM_ID_LEN + 1], s2[JM_ID_LEN + 1], p1[JM_ID_LEN + 1], p2[JM_ID_LEN + 1];
    submit_t("solve", 0, s1);
    submit_t("solve", 0, s2);
    submit_t("solve", 5, p1);
    submit_t("solve", 5, p2);
    submit_t("mail", 0, NULL);
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "solve", 1, &err), JM_OK);
    jm_claim c[8];
    int n = claim_call(8, c, NULL);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].id, p1, "the priority solve first");
    cr_assert_str_eq(c[1].type, "mail");
    /* p1 fails for good: the next solve is the other priority one, then s1, s2 */
    jm_state st;
    cr_assert_eq(jm_queue_fail(r, c[0].id, c[0].lease, "x", true, 0, &ret, &st, &err), JM_OK);
    const char *order[3] = {p2, s1, s2};
    for (int k = 0; k < 3; k++) {
        jm_claim one[4];
        cr_assert_eq(claim_call(4, one, NULL), 1, "step %d", k);
        cr_assert_str_eq(one[0].id, order[k], "step %d", k);
        cr_assert_eq(jm_queue_complete(r, one[0].id, one[0].lease, "1", &ret, &err), JM_OK);
        jm_claim_clear(&one[0]);
    }
    for (int i = 0; i < n; i++)
        jm_claim_clear(&c[i]);
}

Test(type_caps, a_long_run_of_capped_jobs_is_passed_in_bounded_steps)
{
    for (int i = 0; i < 300; i++)
        submit_t("solve", 0, NULL);
    char mail[JM_ID_LEN + 1];
    submit_t("mail", 0, mail);
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "solve", 1, &err), JM_OK);
    jm_claim c[4];
    cr_assert_eq(claim_call(4, c, NULL), 1, "one solve, then the pass stops at its bound");
    jm_claim_clear(&c[0]);
    cr_assert_eq(jm_test_count(r, "default", JM_STATE_QUEUED), 300);
    char **ids = NULL;
    size_t n = 0;
    char next[64];
    cr_assert_eq(jm_queue_list_ids(r, "default", JM_STATE_QUEUED, NULL, 1000, &ids, &n, next, &err),
                 JM_OK);
    cr_assert_eq(n, 300, "every passed-over job is back, once");
    cr_assert_str_eq(ids[n - 1], mail, "in its place");
    jm_strv_free(ids, n);
}

Test(type_caps, at_most_sixteen_caps_per_queue)
{
    char type[32];
    for (int i = 0; i < JM_TYPE_CAPS_MAX; i++) {
        snprintf(type, sizeof(type), "t%d", i);
        cr_assert_eq(jm_queue_set_type_cap(r, "default", type, 1, &err), JM_OK);
    }
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "one.more", 1, &err), JM_ERR_INVALID);
    cr_assert_eq(jm_queue_set_type_cap(r, "default", "t3", 7, &err), JM_OK, "changing one is fine");
}
