/* test_log.c - JSON log lines: string and integer fields, escaping, null. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/log.h"

/* Runs one jm_log call with stderr captured; returns the line (static). */
static const char *
capture(void (*emit)(void))
{
    static char line[8192];
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    emit();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    line[n > 0 ? n : 0] = '\0';
    return line;
}

static void
emit_fields(void)
{
    jm_log_init("test", JM_LOG_INFO);
    jm_log_info("job \"done\"", "job_id", "ab\ncd", JM_LOG_INT("attempt", 3),
                JM_LOG_INT("fence", 1764512345678901LL), "error", NULL, JM_LOG_INT("neg", -7),
                NULL);
}

Test(log, string_and_integer_fields)
{
    const char *l = capture(emit_fields);
    cr_assert_not_null(strstr(l, "\"level\":\"info\",\"service\":\"test\""), "%s", l);
    cr_assert_not_null(strstr(l, "\"msg\":\"job \\\"done\\\"\""), "%s", l);
    cr_assert_not_null(strstr(l, "\"job_id\":\"ab\\ncd\""), "%s", l);
    cr_assert_not_null(strstr(l, "\"attempt\":3,"), "%s", l);
    cr_assert_not_null(strstr(l, "\"fence\":1764512345678901,"), "%s", l);
    cr_assert_not_null(strstr(l, "\"error\":null"), "%s", l);
    cr_assert_not_null(strstr(l, "\"neg\":-7}"), "%s", l);
    cr_assert_eq(l[strlen(l) - 1], '\n');
}

static void
emit_below_level(void)
{
    jm_log_init("test", JM_LOG_WARN);
    jm_log_info("hidden", JM_LOG_INT("n", 1), NULL);
    jm_log_warn("shown", NULL);
}

Test(log, level_filters)
{
    const char *l = capture(emit_below_level);
    cr_assert_null(strstr(l, "hidden"));
    cr_assert_not_null(strstr(l, "shown"));
    jm_log_level lv;
    cr_assert_eq(jm_log_level_parse("debug", &lv), 0);
    cr_assert_eq(lv, JM_LOG_DEBUG);
    cr_assert_lt(jm_log_level_parse("loud", &lv), 0);
}
