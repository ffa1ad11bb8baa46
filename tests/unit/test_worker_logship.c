/* test_worker_logship.c - an exec handler's stderr and progress lines as the
 * worker assembles them (logship.h), without Redis: line splitting across
 * reads, '\r' dropped, lines cut at max_line_bytes + 1 whatever their
 * length, a full batch counting the rest as dropped, progress lines parsed
 * and normalized, bad ones counted, and nothing kept without a side
 * connection. (Shipping itself is tested end to end in
 * tests/system/test_logs.py.) */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/config.h"
#include "logship.h"

static jm_config cfg;
static wk_side side; /* r stays NULL: no flush is made here */
static jm_claim claim;

static void
setup(void)
{
    cr_assert_eq(jm_config_defaults(&cfg), JM_OK);
    cfg.logs_max_line_bytes = 64;
    snprintf(claim.id, sizeof(claim.id), "%s", "0000abcdefghijklmnopqrstuv");
}

static void
teardown(void)
{
    jm_config_free(&cfg);
}

static void
feed(wk_ship *s, const char *text)
{
    wk_ship_stderr(s, text, strlen(text));
}

TestSuite(worker_logship, .init = setup, .fini = teardown);

Test(worker_logship, splits_lines_across_reads_and_drops_cr)
{
    wk_ship s;
    wk_ship_init(&s, &side, &claim, &cfg);
    feed(&s, "one\ntw");
    feed(&s, "o\r\n\nthr");
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.lens[0], 3);
    cr_assert_eq(memcmp(s.lines[1], "two", 3), 0);
    cr_assert_eq(s.lens[1], 3, "the \\r is dropped");
    cr_assert_eq(s.lens[2], 0, "an empty line is a line");
    cr_assert_eq(s.err.len, 3, "\"thr\" waits for its newline");
    cr_assert_gt(wk_ship_due(&s), 0);
    wk_ship_free(&s);
}

Test(worker_logship, a_huge_line_costs_a_bounded_buffer)
{
    wk_ship s;
    wk_ship_init(&s, &side, &claim, &cfg);
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 1000; i++) /* 4 MB without a newline */
        wk_ship_stderr(&s, chunk, sizeof(chunk));
    cr_assert_eq(s.err.cap, 65);
    cr_assert_eq(s.err.len, 65);
    feed(&s, "tail\nnext\n");
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.lens[0], 65, "max_line_bytes + 1: the script cuts and marks it");
    cr_assert_eq(memcmp(s.lines[1], "next", 4), 0);
    wk_ship_free(&s);
}

Test(worker_logship, a_full_batch_counts_the_rest_as_dropped)
{
    wk_ship s;
    wk_ship_init(&s, &side, &claim, &cfg);
    for (int i = 0; i < WK_SHIP_BATCH_LINES + 100; i++)
        feed(&s, "line\n");
    cr_assert_eq(s.n, WK_SHIP_BATCH_LINES);
    cr_assert_eq(s.dropped, 100);
    wk_ship_free(&s);
}

Test(worker_logship, binary_bytes_are_kept_as_they_are)
{
    wk_ship s;
    wk_ship_init(&s, &side, &claim, &cfg);
    const char bin[] = {'a', 0, '\xff', '\n'};
    wk_ship_stderr(&s, bin, sizeof(bin));
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.lens[0], 3);
    cr_assert_eq(memcmp(s.lines[0], bin, 3), 0);
    wk_ship_free(&s);
}

static void
prog(wk_ship *s, const char *text)
{
    wk_ship_progress(s, text, strlen(text));
}

Test(worker_logship, progress_lines_good_and_bad)
{
    wk_ship s;
    wk_ship_init(&s, &side, &claim, &cfg);
    prog(&s, "{\"progress\": 42, \"message\": \"half\", \"extra\": 1}\n");
    cr_assert_str_eq(s.progress, "{\"progress\":42,\"message\":\"half\"}", "normalized");
    prog(&s, "{\"progress\":7.5}\r\n");
    cr_assert_str_eq(s.progress, "{\"progress\":7.5}", "the latest wins");
    prog(&s, "not json\n{\"progress\":101}\n{\"progress\":-1}\n[1]\n{\"progress\":\"5\"}\n");
    prog(&s, "{\"progress\":5,\"message\":7}\n\n");
    cr_assert_eq(s.ignored, 6, "blank lines are not counted");
    char big[WK_SHIP_PROGRESS_LINE + 100];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"progress\":1}", 14);
    wk_ship_progress(&s, big, sizeof(big));
    prog(&s, "\n");
    cr_assert_eq(s.ignored, 7, "an over-long line is ignored, even when it would parse");
    cr_assert_str_eq(s.progress, "{\"progress\":7.5}");
    cr_assert_eq(s.n, 0, "progress is not a log line");
    wk_ship_free(&s);
}

Test(worker_logship, nothing_is_kept_without_a_side_connection)
{
    wk_ship s;
    wk_ship_init(&s, NULL, &claim, &cfg);
    feed(&s, "one\n");
    prog(&s, "{\"progress\":1}\n");
    cr_assert_eq(s.n, 0);
    cr_assert_null(s.progress);
    cr_assert_eq(wk_ship_due(&s), 0);
    wk_ship_free(&s);
}
