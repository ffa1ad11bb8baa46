/* test_schedule.c - a schedule's definition from JSON and the missed-tick
 * policy (jm_schedule_ticks, a pure function): on-time ticks always fire,
 * missed ones per skip or catch_up, oldest first, and the next tick. */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/schedule.h"

#define T 1800000000000LL /* a whole second, epoch ms */

static jm_schedule
every_second(jm_missed missed, int catch_up_max)
{
    jm_schedule s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "s");
    snprintf(s.cron, sizeof(s.cron), "* * * * * *");
    snprintf(s.tz, sizeof(s.tz), "UTC");
    s.missed = missed;
    s.catch_up_max = catch_up_max;
    s.next_ms = T;
    return s;
}

/* Runs the policy; checks the ticks are consecutive seconds ending at last. */
static int
fire(const jm_schedule *s, int64_t now, int64_t grace, int64_t last, int *due)
{
    static int64_t ticks[JM_SCHEDULE_TICKS_MAX];
    int n = 0;
    int64_t next = 0;
    jm_error err;
    cr_assert_eq(jm_schedule_ticks(s, now, grace, ticks, &n, due, &next, &err), JM_OK, "%s",
                 err.msg);
    if (strcmp(s->cron, "* * * * * *") == 0)
        cr_assert_eq(next, (now / 1000 + 1) * 1000, "the first tick after now");
    else
        cr_assert(next > now && next - 86400000 <= last, "the first tick after now");
    cr_assert_gt(n, 0);
    cr_assert_eq(ticks[n - 1], last);
    for (int i = 1; i < n; i++)
        cr_assert_eq(ticks[i], ticks[i - 1] + 1000, "oldest first, consecutive");
    return n;
}

Test(schedule, on_time_ticks_always_fire)
{
    int due;
    jm_schedule skip = every_second(JM_MISSED_SKIP, 1);
    jm_schedule cu = every_second(JM_MISSED_CATCH_UP, 5);
    /* 101 ticks due (T .. T+100 s); those of the last 10 s are on time */
    cr_assert_eq(fire(&skip, T + 100000, 10000, T + 100000, &due), 11);
    cr_assert_eq(due, 101);
    cr_assert_eq(fire(&cu, T + 100000, 10000, T + 100000, &due), 16, "11 on time + 5 missed");
    /* grace 0: only the tick of this very ms is on time */
    cr_assert_eq(fire(&skip, T + 100000, 0, T + 100000, &due), 1);
    cr_assert_eq(fire(&cu, T + 100000, 0, T + 100000, &due), 6);
    /* nothing on time (now is 500 ms past the last tick): skip fires the latest */
    cr_assert_eq(fire(&skip, T + 100500, 0, T + 100000, &due), 1);
    cr_assert_eq(fire(&cu, T + 100500, 0, T + 100000, &due), 5);
    /* one due tick, on time or not: it fires */
    cr_assert_eq(fire(&skip, T, 0, T, &due), 1);
    cr_assert_eq(fire(&skip, T + 999, 0, T, &due), 1);
    cr_assert_eq(due, 1);
    /* a daily schedule after a three-day outage: skip runs it once, late */
    jm_schedule daily = every_second(JM_MISSED_SKIP, 1);
    snprintf(daily.cron, sizeof(daily.cron), "30 2 * * *");
    daily.next_ms = (T / 86400000) * 86400000 + 9000000;
    int64_t now = daily.next_ms + 3 * 86400000LL + 3600000;
    cr_assert_eq(fire(&daily, now, JM_SCHEDULE_GRACE_MS, daily.next_ms + 3 * 86400000LL, &due), 1);
    cr_assert_eq(due, 4);
}

Test(schedule, a_long_outage_walks_a_bounded_number_of_ticks)
{
    /* a per-second schedule missed for 30 days: the latest 1000 fire */
    jm_schedule cu = every_second(JM_MISSED_CATCH_UP, 1000);
    int due;
    int64_t now = T + 30LL * 86400000;
    cr_assert_eq(fire(&cu, now, 0, now, &due), 1001);
}

Test(schedule, from_json_defaults_and_round_trip)
{
    json_t *body = json_loads("{\"name\":\"n\",\"cron\":\"@daily\",\"job\":{\"type\":\"t\","
                              "\"payload\":{\"a\":[1,2.5]}},\"missed\":\"catch_up\"}",
                              0, NULL);
    jm_schedule s;
    jm_error err;
    cr_assert_eq(jm_schedule_from_json(body, &s, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(s.tz, "UTC");
    cr_assert_eq(s.catch_up_max, JM_SCHEDULE_CATCH_UP_DEFAULT);
    json_t *o = jm_schedule_to_json(&s);
    cr_assert(json_equal(json_object_get(o, "job"), json_object_get(body, "job")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "missed")), "catch_up");
    cr_assert(json_is_null(json_object_get(o, "next_run")));
    json_decref(o);
    json_decref(body);
    jm_schedule_clear(&s);
}
