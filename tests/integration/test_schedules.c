/* test_schedules.c - the schedule scripts against a real Redis: create,
 * replace, unchanged re-definition, YAML ownership, list, delete, pause and
 * resume; firing due ticks exactly once across two "janitors" (two
 * connections), after a janitor that died between the enqueue and the
 * advance, and from a janitor that read a tick another one already fired;
 * the skip and catch_up policies.
 *
 * Each test gets its own redis-server (JM_TEST_SUITE); nothing is shared.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/schedule.h"
#include "redis_fixture.h"

JM_TEST_SUITE(schedules);

static jm_schedule
def(const char *json)
{
    (void)ret; /* the fixture's retention: schedules use the defaults */
    json_error_t je;
    json_t *body = json_loads(json, 0, &je);
    cr_assert_not_null(body, "%s", je.text);
    jm_schedule s;
    int rc = jm_schedule_from_json(body, &s, &err);
    json_decref(body);
    cr_assert_eq(rc, JM_OK, "%s", err.msg);
    return s;
}

static int
put(const char *json, const char *source)
{
    jm_schedule s = def(json);
    int result = -1;
    int rc = jm_schedule_put(r, &s, source, &result, &err);
    jm_schedule_clear(&s);
    return rc == JM_OK ? result : rc;
}

static jm_schedule
get(const char *name)
{
    jm_schedule *v = NULL;
    size_t n = 0;
    cr_assert_eq(jm_schedule_list(r, name, &v, &n, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    jm_schedule s = v[0];
    v[0].job = NULL;
    jm_schedule_free_all(v, n);
    return s;
}

/* Moves a schedule's next tick to Redis's now + delta_ms (the test's
 * stand-in for time passing), through the stored hash and due set. */
static int64_t
make_due(const char *name, int64_t delta_ms)
{
    int64_t now = jm_redis_time_ms(r, &err);
    cr_assert_geq(now, 0);
    int64_t t = (now + delta_ms) / 1000 * 1000;
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, t);
    redisReply *rep = jm_redis_command(r, &err, "HSET jm:{schedules}:sched:%s next %s", name, ts);
    cr_assert_not_null(rep, "%s", err.msg);
    freeReplyObject(rep);
    rep = jm_redis_command(r, &err, "ZADD jm:{schedules}:sched_due %s %s", ts, name);
    cr_assert_not_null(rep, "%s", err.msg);
    freeReplyObject(rep);
    return t;
}

/* One tick a year: a test that makes it due sees exactly one due tick,
 * however slow the run (a sanitizer build). */
static const char *YEARLY =
    "{\"name\":\"s1\",\"cron\":\"0 0 1 1 *\",\"job\":{\"type\":\"echo\",\"queue\":\"cronq\"}}";
static const char *EVERY_SECOND =
    "{\"name\":\"s1\",\"cron\":\"* * * * * *\",\"job\":{\"type\":\"echo\",\"queue\":\"cronq\"}}";

Test(schedules, validation_names_the_field)
{
    const char *bad[][2] = {
        {"[]", ""},
        {"{\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\"}}", "name"},
        {"{\"name\":\"a b\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\"}}", "name"},
        {"{\"name\":\"a\",\"cron\":\"61 * * * *\",\"job\":{\"type\":\"t\"}}", "cron"},
        {"{\"name\":\"a\",\"cron\":7,\"job\":{\"type\":\"t\"}}", "cron"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"tz\":\"Mars/Base\",\"job\":{\"type\":\"t\"}}",
         "tz"},
        {"{\"name\":\"a\",\"cron\":\"* * * * "
         "*\",\"tz\":\"../../etc/passwd\",\"job\":{\"type\":\"t\"}}",
         "tz"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\"}", "job"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{}}", "job.type"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\",\"queue\":\"a b\"}}",
         "job.queue"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\",\"run_at\":5}}",
         "job.run_at"},
        {"{\"name\":\"a\",\"cron\":\"* * * * "
         "*\",\"job\":{\"type\":\"t\",\"idempotency_key\":\"k\"}}",
         "job.idempotency_key"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\"},\"missed\":\"all\"}",
         "missed"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\"},\"catch_up_max\":3}",
         "catch_up_max"},
        {"{\"name\":\"a\",\"cron\":\"* * * * *\",\"job\":{\"type\":\"t\"},\"missed\":\"catch_up\","
         "\"catch_up_max\":0}",
         "catch_up_max"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *body = json_loads(bad[i][0], 0, NULL);
        cr_assert_not_null(body);
        jm_schedule s;
        jm_error_clear(&err);
        cr_assert_eq(jm_schedule_from_json(body, &s, &err), JM_ERR_INVALID, "%s", bad[i][0]);
        cr_assert_str_eq(err.field, bad[i][1], "%s: %s", bad[i][0], err.msg);
        jm_schedule_clear(&s);
        json_decref(body);
    }
    /* parses, but never fires: refused when stored */
    jm_schedule s = def("{\"name\":\"feb30\",\"cron\":\"0 0 30 2 *\",\"job\":{\"type\":\"t\"}}");
    int result;
    cr_assert_eq(jm_schedule_put(r, &s, "api", &result, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "cron");
    jm_schedule_clear(&s);
    jm_schedule *v;
    size_t n;
    cr_assert_eq(jm_schedule_list(r, NULL, &v, &n, &err), JM_OK);
    cr_assert_eq(n, 0, "nothing stored");
}

Test(schedules, put_list_replace_delete_and_yaml_ownership)
{
    int64_t now = jm_redis_time_ms(r, &err);
    const char *a = "{\"name\":\"nightly\",\"cron\":\"30 2 * * *\",\"tz\":\"Europe/Berlin\","
                    "\"job\":{\"type\":\"report\",\"payload\":{\"x\":1}},\"missed\":\"catch_up\"}";
    cr_assert_eq(put(a, "api"), 1, "created");
    jm_schedule s = get("nightly");
    cr_assert_str_eq(s.cron, "30 2 * * *");
    cr_assert_str_eq(s.tz, "Europe/Berlin");
    cr_assert_eq(s.missed, JM_MISSED_CATCH_UP);
    cr_assert_eq(s.catch_up_max, JM_SCHEDULE_CATCH_UP_DEFAULT);
    cr_assert_gt(s.next_ms, now);
    cr_assert_leq(s.next_ms, now + 25 * 3600 * 1000LL);
    cr_assert_eq(s.last_ms, 0);
    int64_t gen = s.gen, next = s.next_ms;
    jm_schedule_clear(&s);
    cr_assert_eq(put(a, "api"), 0, "the same definition changes nothing");
    s = get("nightly");
    cr_assert_eq(s.gen, gen);
    cr_assert_eq(s.next_ms, next);
    jm_schedule_clear(&s);
    cr_assert_eq(
        put("{\"name\":\"nightly\",\"cron\":\"0 * * * *\",\"job\":{\"type\":\"report\"}}", "api"),
        2, "replaced");
    s = get("nightly");
    cr_assert_eq(s.gen, gen + 1);
    cr_assert_str_eq(s.tz, "UTC");
    cr_assert_leq(s.next_ms, now + 3600 * 1000LL + 1000);
    jm_schedule_clear(&s);

    cr_assert_eq(
        put("{\"name\":\"fromyaml\",\"cron\":\"0 * * * *\",\"job\":{\"type\":\"t\"}}", "yaml"), 1);
    cr_assert_eq(
        put("{\"name\":\"fromyaml\",\"cron\":\"5 * * * *\",\"job\":{\"type\":\"t\"}}", "api"),
        JM_ERR_STATE, "the YAML owns its names");
    s = get("fromyaml");
    cr_assert_str_eq(s.cron, "0 * * * *");
    cr_assert_str_eq(s.source, "yaml");
    jm_schedule_clear(&s);

    jm_schedule *v;
    size_t n;
    cr_assert_eq(jm_schedule_list(r, NULL, &v, &n, &err), JM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].name, "fromyaml", "listed by name");
    cr_assert_str_eq(v[1].name, "nightly");
    json_t *o = jm_schedule_to_json(&v[1]);
    cr_assert(json_is_object(json_object_get(o, "job")));
    cr_assert(json_is_real(json_object_get(o, "next_run")));
    cr_assert(json_is_null(json_object_get(o, "last_run")));
    json_decref(o);
    jm_schedule_free_all(v, n);

    cr_assert_eq(jm_schedule_delete(r, "nightly", &err), JM_OK);
    cr_assert_eq(jm_schedule_delete(r, "nightly", &err), JM_ERR_NOT_FOUND);
    cr_assert_eq(jm_schedule_list(r, "nightly", &v, &n, &err), JM_ERR_NOT_FOUND);
}

Test(schedules, fires_each_tick_once_across_janitors)
{
    jm_redis *r2 = jm_test_redis_connect(&srv);
    cr_assert_eq(put(YEARLY, "api"), 1);
    int64_t tick = make_due("s1", -200);
    jm_schedule_stats a, b;
    cr_assert_eq(jm_schedule_run_due(r, 100, JM_SCHEDULE_GRACE_MS, &a, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_schedule_run_due(r2, 100, JM_SCHEDULE_GRACE_MS, &b, &err), JM_OK, "%s",
                 err.msg);
    cr_assert_eq(a.fired + b.fired, 1, "one job for the tick");
    cr_assert_eq(jm_test_count(r, "cronq", JM_STATE_QUEUED), 1);
    jm_schedule s = get("s1");
    cr_assert_eq(s.last_ms, tick);
    cr_assert_gt(s.next_ms, tick);
    jm_job job = jm_test_get(r, s.last_job);
    cr_assert_str_eq(job.type, "echo");
    char key[96];
    snprintf(key, sizeof(key), "schedule:s1:%" PRId64, tick);
    cr_assert_str_eq(job.idem_key, key);
    jm_job_clear(&job);
    jm_schedule_clear(&s);
    jm_redis_free(r2);
}

Test(schedules, a_janitor_killed_between_enqueue_and_advance_fires_nothing_twice)
{
    cr_assert_eq(put(YEARLY, "api"), 1);
    int64_t tick = make_due("s1", -300);
    /* janitor A reads the due schedule and enqueues the tick, then dies */
    jm_schedule *v;
    size_t n;
    int64_t now;
    cr_assert_eq(jm_schedule_due(r, 10, &v, &n, &now, NULL, &err), JM_OK);
    cr_assert_eq(n, 1);
    jm_enqueue_result res;
    cr_assert_eq(jm_schedule_enqueue_tick(r, &v[0], tick, &res, &err), JM_OK, "%s", err.msg);
    cr_assert(res.created);
    /* janitor B finds it still due: the same job comes back, then it advances */
    jm_schedule_stats st;
    cr_assert_eq(jm_schedule_run_due(r, 100, JM_SCHEDULE_GRACE_MS, &st, &err), JM_OK);
    cr_assert_eq(st.fired, 0);
    cr_assert_eq(jm_test_count(r, "cronq", JM_STATE_QUEUED), 1);
    jm_schedule s = get("s1");
    cr_assert_str_eq(s.last_job, res.id);
    cr_assert_gt(s.next_ms, tick);
    /* a stale janitor that read the tick before B advanced it: its enqueue
     * returns the job, its advance loses */
    jm_enqueue_result again;
    cr_assert_eq(jm_schedule_enqueue_tick(r, &v[0], tick, &again, &err), JM_OK);
    cr_assert_not(again.created);
    cr_assert_str_eq(again.id, res.id);
    bool won = true;
    cr_assert_eq(jm_schedule_advance(r, &v[0], tick + 1000, tick, again.id, &won, &err), JM_OK);
    cr_assert_not(won);
    jm_schedule t = get("s1");
    cr_assert_eq(t.next_ms, s.next_ms, "unchanged by the loser");
    jm_schedule_clear(&t);
    jm_schedule_clear(&s);
    jm_schedule_free_all(v, n);
}

Test(schedules, missed_ticks_skip_or_catch_up)
{
    cr_assert_eq(put(EVERY_SECOND, "api"), 1);
    cr_assert_eq(put("{\"name\":\"s3\",\"cron\":\"* * * * * "
                     "*\",\"job\":{\"type\":\"echo\",\"queue\":\"cq3\"},"
                     "\"missed\":\"catch_up\",\"catch_up_max\":3}",
                     "api"),
                 1);
    cr_assert_eq(put("{\"name\":\"s9\",\"cron\":\"* * * * * "
                     "*\",\"job\":{\"type\":\"echo\",\"queue\":\"cq9\"},"
                     "\"missed\":\"catch_up\",\"catch_up_max\":100}",
                     "api"),
                 1);
    int64_t t1 = make_due("s1", -10000);
    make_due("s3", -10000);
    make_due("s9", -10000);
    jm_schedule_stats st;
    cr_assert_eq(jm_schedule_run_due(r, 100, 0, &st, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(jm_test_count(r, "cronq", JM_STATE_QUEUED), 1, "skip: the latest tick only");
    cr_assert_eq(jm_test_count(r, "cq3", JM_STATE_QUEUED), 3, "catch_up_max 3");
    int64_t n9 = jm_test_count(r, "cq9", JM_STATE_QUEUED);
    cr_assert(n9 >= 10 && n9 <= 15, "every missed tick: %lld", (long long)n9);
    cr_assert_eq(st.fired, 4 + n9);
    cr_assert_geq(st.skipped, 2 * (n9 - 1) - 3);
    jm_schedule s = get("s1");
    cr_assert_gt(s.last_ms, t1 + 8000, "the latest tick, not the first");
    jm_schedule_clear(&s);
    /* grace 0: only a tick due this very millisecond is on time, every older
     * one is missed (tests/unit/test_schedule.c covers the grace itself);
     * a second run fires only ticks that came due since: at most a couple */
    cr_assert_eq(jm_schedule_run_due(r, 100, 0, &st, &err), JM_OK);
    cr_assert_leq(st.fired, 3 * 2);
}

Test(schedules, pause_and_resume)
{
    cr_assert_eq(put(EVERY_SECOND, "api"), 1);
    cr_assert_eq(jm_schedule_pause(r, "s1", true, &err), JM_OK);
    cr_assert_eq(jm_schedule_pause(r, "nope", true, &err), JM_ERR_NOT_FOUND);
    make_due("s1", -5000);
    redisReply *rep = jm_redis_command(r, &err, "ZREM jm:{schedules}:sched_due s1");
    freeReplyObject(rep); /* make_due put it back: a paused one is not in the due set */
    jm_schedule_stats st;
    cr_assert_eq(jm_schedule_run_due(r, 100, JM_SCHEDULE_GRACE_MS, &st, &err), JM_OK);
    cr_assert_eq(st.fired, 0, "paused: nothing fires");
    jm_schedule s = get("s1");
    cr_assert(s.paused);
    jm_schedule_clear(&s);
    int64_t now = jm_redis_time_ms(r, &err);
    cr_assert_eq(jm_schedule_pause(r, "s1", false, &err), JM_OK, "%s", err.msg);
    s = get("s1");
    cr_assert_not(s.paused);
    cr_assert_gt(s.next_ms, now, "paused ticks are not caught up");
    jm_schedule_clear(&s);
}
