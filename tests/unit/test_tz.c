/* test_tz.c - the TZif reader and POSIX TZ rules: offsets at real
 * transitions of zones with DST, the footer rule for instants past the
 * table, and agreement with the C library's localtime_r over 1900-2200
 * (this single-threaded test may set TZ; the services never do). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <time.h>
#include "jobmill/tz.h"

static jm_tz *
load(const char *name)
{
    jm_error err;
    jm_error_clear(&err);
    jm_tz *tz = jm_tz_load(name, &err);
    cr_assert_not_null(tz, "%s: %s", name, err.msg);
    return tz;
}

Test(tz, civil_calendar_round_trips)
{
    cr_assert_eq(jm_civil_days(1970, 1, 1), 0);
    cr_assert_eq(jm_civil_days(2000, 3, 1), 11017);
    cr_assert_eq(jm_civil_days(1969, 12, 31), -1);
    cr_assert_eq(jm_civil_wday(0), 4, "1970-01-01 was a Thursday");
    cr_assert_eq(jm_civil_wday(jm_civil_days(2024, 3, 10)), 0, "2024-03-10 was a Sunday");
    for (int64_t d = -800000; d < 800000; d += 37) {
        int64_t y;
        int m, day;
        jm_civil_from_days(d, &y, &m, &day);
        cr_assert_eq(jm_civil_days(y, m, day), d);
    }
}

Test(tz, new_york_2024_transitions)
{
    jm_tz *tz = load("America/New_York");
    int dst;
    /* 2024-03-10 07:00 UTC: 02:00 EST becomes 03:00 EDT */
    cr_assert_eq(jm_tz_offset(tz, 1710054000 - 1, &dst), -5 * 3600);
    cr_assert_eq(dst, 0);
    cr_assert_eq(jm_tz_offset(tz, 1710054000, &dst), -4 * 3600);
    cr_assert_eq(dst, 1);
    /* 2024-11-03 06:00 UTC: 02:00 EDT becomes 01:00 EST */
    cr_assert_eq(jm_tz_offset(tz, 1730613600 - 1, NULL), -4 * 3600);
    cr_assert_eq(jm_tz_offset(tz, 1730613600, NULL), -5 * 3600);
    /* 2300 is past any table: the footer rule (EST5EDT,M3.2.0,M11.1.0) */
    int64_t mar = (jm_civil_days(2300, 3, 1) + 0) * 86400;
    cr_assert_eq(jm_tz_offset(tz, mar, NULL), -5 * 3600);
    cr_assert_eq(jm_tz_offset(tz, mar + 60LL * 86400, NULL), -4 * 3600);
    jm_tz_free(tz);
}

Test(tz, berlin_2024_transitions)
{
    jm_tz *tz = load("Europe/Berlin");
    cr_assert_eq(jm_tz_offset(tz, 1711846800 - 1, NULL), 3600); /* CET */
    cr_assert_eq(jm_tz_offset(tz, 1711846800, NULL), 7200);     /* CEST from 01:00 UTC */
    cr_assert_eq(jm_tz_offset(tz, 1729990800 - 1, NULL), 7200);
    cr_assert_eq(jm_tz_offset(tz, 1729990800, NULL), 3600);
    jm_tz_free(tz);
}

Test(tz, posix_rules_southern_and_fixed)
{
    jm_error err;
    jm_tz *tz = jm_tz_posix("AEST-10AEDT,M10.1.0,M4.1.0/3", &err);
    cr_assert_not_null(tz, "%s", err.msg);
    /* January is summer in Sydney */
    cr_assert_eq(jm_tz_offset(tz, (jm_civil_days(2030, 1, 15)) * 86400, NULL), 11 * 3600);
    cr_assert_eq(jm_tz_offset(tz, (jm_civil_days(2030, 7, 15)) * 86400, NULL), 10 * 3600);
    jm_tz_free(tz);
    tz = jm_tz_posix("<+0530>-5:30", &err);
    cr_assert_not_null(tz, "%s", err.msg);
    cr_assert_eq(jm_tz_offset(tz, 0, NULL), 5 * 3600 + 1800);
    jm_tz_free(tz);
    cr_assert_null(jm_tz_posix("EST5EDT,M3.2", &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
    cr_assert_null(jm_tz_posix("X5", &err));
}

Test(tz, bad_names_and_files_are_refused_naming_tz)
{
    const char *bad[] = {"",    "../etc/passwd", "/etc/passwd", "Europe/Nowhere", "Europe/../UTC",
                         "a b", "Europe",        NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        jm_error err;
        jm_error_clear(&err);
        cr_assert_null(jm_tz_load(bad[i], &err), "%s", bad[i]);
        cr_assert_eq(err.code, JM_ERR_INVALID, "%s", bad[i]);
        cr_assert_str_eq(err.field, "tz");
    }
    jm_error err;
    unsigned char junk[60] = "TZif2";
    cr_assert_null(jm_tz_parse(junk, sizeof(junk), &err));
    cr_assert_null(jm_tz_parse(junk, 10, &err));
}

Test(tz, utc_works_without_the_database)
{
    setenv("TZDIR", "/nonexistent", 1);
    jm_tz *tz = load("UTC");
    cr_assert_eq(jm_tz_offset(tz, 1710054000, NULL), 0);
    jm_tz_free(tz);
    jm_error err;
    cr_assert_null(jm_tz_load("Europe/Berlin", &err));
    unsetenv("TZDIR");
}

/* Every hour-ish instant over three centuries agrees with glibc. */
Test(tz, agrees_with_the_c_library)
{
    const char *zones[] = {"America/New_York", "Europe/Berlin",     "Australia/Sydney",
                           "Asia/Kolkata",     "America/Sao_Paulo", "Pacific/Chatham",
                           "Europe/London",    "America/Santiago"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        jm_tz *tz = load(zones[z]);
        setenv("TZ", zones[z], 1);
        tzset();
        for (int64_t t = -2208988800LL; t < 7258118400LL; t += 3599 * 7) {
            time_t tt = (time_t)t;
            struct tm tm;
            cr_assert_not_null(localtime_r(&tt, &tm));
            int dst;
            int32_t off = jm_tz_offset(tz, t, &dst);
            cr_assert_eq(off, tm.tm_gmtoff, "%s at %lld: %d vs %ld", zones[z], (long long)t, off,
                         tm.tm_gmtoff);
            cr_assert_eq(dst, tm.tm_isdst > 0, "%s at %lld", zones[z], (long long)t);
        }
        jm_tz_free(tz);
    }
    unsetenv("TZ");
}
