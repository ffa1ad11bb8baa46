/* test_cron.c - cron expressions (parse) and fire times (next), in UTC and
 * across real daylight-saving transitions of America/New_York and
 * Europe/Berlin, computed from fixed instants (never the machine clock). */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/cron.h"

static jm_cron
parse(const char *expr)
{
    jm_cron c;
    jm_error err;
    jm_error_clear(&err);
    cr_assert_eq(jm_cron_parse(expr, &c, &err), JM_OK, "%s: %s", expr, err.msg);
    return c;
}

static jm_tz *
zone(const char *name)
{
    jm_error err;
    jm_tz *tz = jm_tz_load(name, &err);
    cr_assert_not_null(tz, "%s: %s", name, err.msg);
    return tz;
}

/* next fire (epoch s) of expr in zone after epoch s `after` */
static int64_t
next_s(const char *expr, const char *tzname, int64_t after)
{
    jm_cron c = parse(expr);
    jm_tz *tz = zone(tzname);
    int64_t ms = 0;
    jm_error err;
    int rc = jm_cron_next(&c, tz, after * 1000, &ms, &err);
    jm_tz_free(tz);
    cr_assert_eq(rc, JM_OK, "%s: %s", expr, err.msg);
    cr_assert_eq(ms % 1000, 0);
    return ms / 1000;
}

#define UTC(y, mo, d, h, mi) (jm_civil_days(y, mo, d) * 86400 + (h)*3600 + (mi)*60)

Test(cron, parses_fields_lists_ranges_steps_and_names)
{
    jm_cron c = parse("*/15 9-17 * JAN-mar,DEC mon-FRI");
    cr_assert_eq(c.min, 1ull | 1ull << 15 | 1ull << 30 | 1ull << 45);
    cr_assert_eq(c.hour, 0x3fe00u);
    cr_assert_eq(c.mon, (1u << 1 | 1u << 2 | 1u << 3 | 1u << 12));
    cr_assert_eq(c.wday, 0x3eu);
    cr_assert(c.mday_star);
    cr_assert_not(c.wday_star);
    cr_assert_eq(c.sec, 1u, "5 fields fire at second 0");
    c = parse("5/20 0 1-10/3 * 7");
    cr_assert_eq(c.min, 1ull << 5 | 1ull << 25 | 1ull << 45);
    cr_assert_eq(c.mday, 1u << 1 | 1u << 4 | 1u << 7 | 1u << 10);
    cr_assert_eq(c.wday, 1u, "7 is Sunday");
    c = parse("@hourly");
    cr_assert_eq(c.min, 1u);
    cr_assert_eq(c.hour, 0xffffffu);
    c = parse("*/5 * * * * *");
    cr_assert(c.seconds);
    cr_assert_eq(c.sec, 0x084210842108421ull);
}

Test(cron, refuses_bad_expressions_naming_the_field)
{
    const char *bad[] = {
        "",           "* * * *",      "* * * * * * *", "60 * * * *",     "* 24 * * *",
        "* * 0 * *",  "* * * 13 *",   "* * * * 8",     "5-1 * * * *",    "*/0 * * * *",
        "a * * * *",  "1,,2 * * * *", ",1 * * * *",    "* * * FOO *",    "@reboot",
        "1- * * * *", "*/x * * * *",  "1;2 * * * *",   "* * * JANUARY *"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jm_cron c;
        jm_error err;
        jm_error_clear(&err);
        cr_assert_eq(jm_cron_parse(bad[i], &c, &err), JM_ERR_INVALID, "\"%s\"", bad[i]);
        cr_assert_str_eq(err.field, "cron");
    }
}

/* A field with line breaks (a YAML double-quoted scalar folds \r into \n)
 * is refused in a one-line message (found by the config fuzzer). */
Test(cron, a_refusal_quotes_control_characters_on_one_line)
{
    jm_cron c;
    jm_error err;
    jm_error_clear(&err);
    cr_assert_eq(jm_cron_parse("3\n\n\r0 2 * * *", &c, &err), JM_ERR_INVALID);
    cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
    cr_assert_null(strchr(err.msg, '\r'), "%s", err.msg);
    cr_assert(strstr(err.msg, "3???0") != NULL, "%s", err.msg);
}

Test(cron, next_in_utc)
{
    int64_t t = UTC(2025, 1, 1, 0, 0);
    cr_assert_eq(next_s("* * * * *", "UTC", t), t + 60, "strictly after");
    cr_assert_eq(next_s("* * * * *", "UTC", t - 1), t);
    cr_assert_eq(next_s("30 2 * * *", "UTC", t), UTC(2025, 1, 1, 2, 30));
    cr_assert_eq(next_s("0 0 1 * *", "UTC", t), UTC(2025, 2, 1, 0, 0));
    cr_assert_eq(next_s("0 0 29 2 *", "UTC", t), UTC(2028, 2, 29, 0, 0), "leap day");
    cr_assert_eq(next_s("59 23 31 12 *", "UTC", t), UTC(2025, 12, 31, 23, 59));
    cr_assert_eq(next_s("*/5 * * * * *", "UTC", t + 1), t + 5, "seconds field");
    /* 2025-01-01 is a Wednesday: Friday the 3rd, or any 13th (Vixie rule) */
    cr_assert_eq(next_s("0 0 13 * 5", "UTC", t), UTC(2025, 1, 3, 0, 0));
    cr_assert_eq(next_s("0 0 13 * 5", "UTC", UTC(2025, 1, 11, 0, 0)), UTC(2025, 1, 13, 0, 0));
    cr_assert_eq(next_s("0 0 13 * *", "UTC", t), UTC(2025, 1, 13, 0, 0));
    cr_assert_eq(next_s("0 0 * * 5", "UTC", UTC(2025, 1, 11, 0, 0)), UTC(2025, 1, 17, 0, 0));
    cr_assert_eq(next_s("0 0 */2 * 5", "UTC", t), UTC(2025, 1, 3, 0, 0), "*/2 counts as a star");
    /* a millisecond past a fire time: the next one */
    jm_cron c = parse("* * * * *");
    jm_tz *tz = zone("UTC");
    int64_t ms;
    cr_assert_eq(jm_cron_next(&c, tz, t * 1000 + 1, &ms, NULL), JM_OK);
    cr_assert_eq(ms, (t + 60) * 1000);
    cr_assert_eq(jm_cron_next(&c, tz, t * 1000 - 1, &ms, NULL), JM_OK);
    cr_assert_eq(ms, t * 1000);
    jm_cron never = parse("0 0 30 2 *");
    jm_error err;
    cr_assert_eq(jm_cron_next(&never, tz, t * 1000, &ms, &err), JM_ERR_NOT_FOUND);
    jm_tz_free(tz);
}

Test(cron, new_york_spring_gap_fires_once_at_the_end_of_the_gap)
{
    /* 2024-03-10: 02:00 EST -> 03:00 EDT at 07:00 UTC; 02:30 does not exist */
    int64_t before = UTC(2024, 3, 9, 17, 0);
    cr_assert_eq(next_s("30 2 * * *", "America/New_York", before), UTC(2024, 3, 10, 7, 0));
    cr_assert_eq(next_s("30 2 * * *", "America/New_York", UTC(2024, 3, 10, 7, 0)),
                 UTC(2024, 3, 11, 6, 30), "once, then 02:30 EDT the next day");
    /* every 15 minutes: 01:45 EST, then the gap's four wall times collapse to 03:00 EDT */
    int64_t t = UTC(2024, 3, 10, 6, 45);
    cr_assert_eq(next_s("*/15 * * * *", "America/New_York", t - 1), t);
    cr_assert_eq(next_s("*/15 * * * *", "America/New_York", t), UTC(2024, 3, 10, 7, 0));
    cr_assert_eq(next_s("*/15 * * * *", "America/New_York", UTC(2024, 3, 10, 7, 0)),
                 UTC(2024, 3, 10, 7, 15));
    /* a time after the gap is not disturbed */
    cr_assert_eq(next_s("0 3 * * *", "America/New_York", before), UTC(2024, 3, 10, 7, 0));
    cr_assert_eq(next_s("0 12 * * *", "America/New_York", before), UTC(2024, 3, 10, 16, 0));
}

Test(cron, new_york_autumn_overlap_fires_once_at_the_first_occurrence)
{
    /* 2024-11-03: 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:00-01:59 happen twice */
    int64_t before = UTC(2024, 11, 2, 16, 0);
    int64_t first = UTC(2024, 11, 3, 5, 30); /* 01:30 EDT */
    cr_assert_eq(next_s("30 1 * * *", "America/New_York", before), first);
    cr_assert_eq(next_s("30 1 * * *", "America/New_York", first), UTC(2024, 11, 4, 6, 30),
                 "not again at 01:30 EST");
    cr_assert_eq(next_s("0 * * * *", "America/New_York", UTC(2024, 11, 3, 5, 0)),
                 UTC(2024, 11, 3, 7, 0), "01:00 EST is the repeated wall time: 02:00 EST next");
}

Test(cron, berlin_transitions)
{
    /* 2024-03-31 01:00 UTC: 02:00 CET -> 03:00 CEST */
    cr_assert_eq(next_s("30 2 * * *", "Europe/Berlin", UTC(2024, 3, 30, 12, 0)),
                 UTC(2024, 3, 31, 1, 0));
    cr_assert_eq(next_s("30 2 * * *", "Europe/Berlin", UTC(2024, 3, 31, 1, 0)),
                 UTC(2024, 4, 1, 0, 30));
    /* 2024-10-27 01:00 UTC: 03:00 CEST -> 02:00 CET; 02:30 twice, fires at 00:30 UTC */
    cr_assert_eq(next_s("30 2 * * *", "Europe/Berlin", UTC(2024, 10, 26, 12, 0)),
                 UTC(2024, 10, 27, 0, 30));
    cr_assert_eq(next_s("30 2 * * *", "Europe/Berlin", UTC(2024, 10, 27, 0, 30)),
                 UTC(2024, 10, 28, 1, 30));
    /* 2060 is past the table: the footer rule gives the same behaviour */
    int64_t y = jm_civil_days(2060, 3, 28); /* the last Sunday of March 2060 */
    cr_assert_eq(jm_civil_wday(y), 0);
    cr_assert_eq(next_s("30 2 * * *", "Europe/Berlin", (y - 1) * 86400 + 43200), y * 86400 + 3600);
}

Test(cron, lord_howe_half_hour_shift_and_a_weekly_schedule_across_changes)
{
    /* Australia/Lord_Howe moves by 30 minutes. 2024-10-06 02:00 +10:30 becomes
     * 02:30 +11:00 (2024-10-05 15:30 UTC): 02:15 does not exist that day */
    cr_assert_eq(next_s("15 2 * * *", "Australia/Lord_Howe", UTC(2024, 10, 5, 0, 0)),
                 UTC(2024, 10, 5, 15, 30));
    cr_assert_eq(next_s("15 2 * * *", "Australia/Lord_Howe", UTC(2024, 10, 5, 15, 30)),
                 UTC(2024, 10, 6, 15, 15));
    /* 2024-04-07 02:00 +11:00 becomes 01:30 +10:30 (2024-04-06 15:00 UTC):
     * 01:45 happens twice; it fires at the first (14:45 UTC) only */
    cr_assert_eq(next_s("45 1 * * *", "Australia/Lord_Howe", UTC(2024, 4, 6, 0, 0)),
                 UTC(2024, 4, 6, 14, 45));
    cr_assert_eq(next_s("45 1 * * *", "Australia/Lord_Howe", UTC(2024, 4, 6, 14, 45)),
                 UTC(2024, 4, 7, 15, 15));
    /* every Monday 09:00 in New York: 14:00 UTC in winter, 13:00 in summer,
     * the week of each change included */
    int64_t t = UTC(2024, 3, 1, 0, 0);
    int64_t want[] = {UTC(2024, 3, 4, 14, 0), UTC(2024, 3, 11, 13, 0), UTC(2024, 3, 18, 13, 0)};
    for (size_t i = 0; i < 3; i++) {
        t = next_s("0 9 * * MON", "America/New_York", t);
        cr_assert_eq(t, want[i], "Monday %zu", i);
    }
    t = next_s("0 9 * * MON", "America/New_York", UTC(2024, 10, 27, 0, 0));
    cr_assert_eq(t, UTC(2024, 10, 28, 13, 0));
    cr_assert_eq(next_s("0 9 * * MON", "America/New_York", t), UTC(2024, 11, 4, 14, 0));
}

/* Over two years of a zone with DST, an hourly schedule fires once per
 * wall-clock hour, never twice at one instant, in order: 24 a day, 23 on
 * the spring day (the missing hour folds into the next, the same instant),
 * 24 on the 25-hour autumn day (the repeated hour fires once). */
Test(cron, hourly_over_two_years_in_berlin)
{
    jm_cron c = parse("0 * * * *");
    jm_tz *tz = zone("Europe/Berlin");
    /* from just before 2024-01-01 00:00 in Berlin (23:00 UTC) */
    int64_t t = UTC(2023, 12, 31, 23, 0) * 1000 - 1, end = UTC(2025, 12, 31, 23, 0) * 1000 - 1;
    int per_day[800] = {0};
    int64_t day0 = UTC(2024, 1, 1, 0, 0) / 86400;
    int64_t prev = 0;
    while (t < end) {
        cr_assert_eq(jm_cron_next(&c, tz, t, &t, NULL), JM_OK);
        cr_assert_gt(t, prev);
        prev = t;
        int64_t s = t / 1000;
        per_day[(s + jm_tz_offset(tz, s, NULL)) / 86400 - day0]++; /* by Berlin's date */
    }
    int short_days = 0;
    for (int d = 0; d < 731; d++) {
        cr_assert(per_day[d] == 24 || per_day[d] == 23, "day %d: %d", d, per_day[d]);
        if (per_day[d] == 23) /* the last Sunday of March */
            cr_assert_eq(jm_civil_wday(day0 + d), 0, "day %d", d);
        short_days += per_day[d] == 23;
    }
    cr_assert_eq(short_days, 2, "two springs");
    jm_tz_free(tz);
}
