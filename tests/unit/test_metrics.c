/* test_metrics.c - unit tests of libshared/src/metrics.c: counter, gauge and
 * histogram arithmetic, name validation, label escaping, the exact rendered
 * text, lock-free updates from many threads, and `promtool check metrics` on
 * a rendered registry (promtool is required: CI installs prometheus).
 *
 * Ownership: every test creates its registry and frees it before returning.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "jobmill/metrics.h"

static const char *const no_labels[] = {NULL};

Test(metrics, counter_math)
{
    jm_metrics *m = jm_metrics_new();
    cr_assert_not_null(m);
    jm_metric_family *f =
        jm_metrics_family(m, "jm_things_total", "Things.", JM_METRIC_COUNTER, NULL, NULL, 0);
    cr_assert_not_null(f);
    jm_metric_series *s = jm_metrics_series(f, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(jm_metric_value(s), 0.0);
    jm_metric_inc(s);
    jm_metric_inc(s);
    jm_metric_add(s, 2.5);
    cr_assert_eq(jm_metric_value(s), 4.5);
    jm_metric_add(s, -1); /* counters never go down */
    jm_metric_add(s, NAN);
    cr_assert_eq(jm_metric_value(s), 4.5);
    jm_metric_observe(s, 1); /* wrong type: ignored */
    cr_assert_eq(jm_metric_value(s), 4.5);
    /* the same (empty) label tuple gives the same series */
    cr_assert_eq(jm_metrics_series(f, no_labels), s);
    jm_metrics_free(m);
}

Test(metrics, gauge_math)
{
    jm_metrics *m = jm_metrics_new();
    const char *labels[] = {"queue", NULL};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_depth", "Depth.", JM_METRIC_GAUGE, labels, NULL, 0);
    cr_assert_not_null(f);
    const char *qa[] = {"a"}, *qb[] = {"b"};
    jm_metric_series *a = jm_metrics_series(f, qa);
    jm_metric_series *b = jm_metrics_series(f, qb);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    cr_assert_eq(jm_metrics_series(f, qa), a);
    jm_metric_set(a, 10);
    jm_metric_add(a, -3);
    jm_metric_inc(a);
    cr_assert_eq(jm_metric_value(a), 8.0);
    jm_metric_set(b, -0.25);
    cr_assert_eq(jm_metric_value(b), -0.25);
    /* a family with labels needs its values */
    cr_assert_null(jm_metrics_series(f, NULL));
    const char *qnull[] = {NULL};
    cr_assert_null(jm_metrics_series(f, qnull));
    /* NULL series updates are no-ops */
    jm_metric_inc(NULL);
    jm_metric_set(NULL, 1);
    jm_metric_observe(NULL, 1);
    cr_assert_eq(jm_metric_value(NULL), 0.0);
    jm_metrics_free(m);
}

Test(metrics, many_series_hash_growth)
{
    jm_metrics *m = jm_metrics_new();
    const char *labels[] = {"queue", "state", NULL};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_jobs", "Jobs.", JM_METRIC_GAUGE, labels, NULL, 0);
    jm_metric_series *keep[500];
    char q[32];
    for (int i = 0; i < 500; i++) {
        snprintf(q, sizeof(q), "q%d", i);
        const char *v[] = {q, "queued"};
        keep[i] = jm_metrics_series(f, v);
        cr_assert_not_null(keep[i]);
        jm_metric_set(keep[i], i);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(q, sizeof(q), "q%d", i);
        const char *v[] = {q, "queued"};
        cr_assert_eq(jm_metrics_series(f, v), keep[i]);
        cr_assert_eq(jm_metric_value(keep[i]), (double)i);
    }
    /* label tuples are compared value by value: ("ab","c") != ("a","bc") */
    const char *v1[] = {"ab", "c"}, *v2[] = {"a", "bc"};
    cr_assert_neq(jm_metrics_series(f, v1), jm_metrics_series(f, v2));
    jm_metrics_free(m);
}

Test(metrics, histogram_math_and_cumulative_buckets)
{
    jm_metrics *m = jm_metrics_new();
    const double b[] = {1, 2, 5};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_latency_seconds", "Latency.", JM_METRIC_HISTOGRAM, NULL, b, 3);
    cr_assert_not_null(f);
    jm_metric_series *s = jm_metrics_series(f, NULL);
    const double obs[] = {0.5, 1, 1.5, 2, 3, 7, 100};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        jm_metric_observe(s, obs[i]);
    jm_metric_inc(s);                      /* wrong type: ignored */
    cr_assert_eq(jm_metric_value(s), 7.0); /* histogram: the count */
    size_t len = 0;
    char *out = jm_metrics_render(m, &len);
    cr_assert_not_null(out);
    cr_assert_eq(len, strlen(out));
    /* le is an upper bound, inclusive: 0.5,1 | 1.5,2 | 3 | 7,100 */
    const char *want = "# HELP jm_latency_seconds Latency.\n"
                       "# TYPE jm_latency_seconds histogram\n"
                       "jm_latency_seconds_bucket{le=\"1\"} 2\n"
                       "jm_latency_seconds_bucket{le=\"2\"} 4\n"
                       "jm_latency_seconds_bucket{le=\"5\"} 5\n"
                       "jm_latency_seconds_bucket{le=\"+Inf\"} 7\n"
                       "jm_latency_seconds_sum 115\n"
                       "jm_latency_seconds_count 7\n";
    cr_assert_str_eq(out, want);
    free(out);
    jm_metrics_free(m);
}

Test(metrics, histogram_default_buckets)
{
    cr_assert_eq(jm_metrics_n_default_buckets, 20);
    cr_assert_eq(jm_metrics_default_buckets[0], 0.0005);
    cr_assert_eq(jm_metrics_default_buckets[19], 1800);
    for (size_t i = 1; i < jm_metrics_n_default_buckets; i++)
        cr_assert_gt(jm_metrics_default_buckets[i], jm_metrics_default_buckets[i - 1]);

    jm_metrics *m = jm_metrics_new();
    const char *labels[] = {"queue", NULL};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_wait_seconds", "Wait.", JM_METRIC_HISTOGRAM, labels, NULL, 0);
    cr_assert_not_null(f);
    const char *q[] = {"default"};
    jm_metric_series *s = jm_metrics_series(f, q);
    jm_metric_observe(s, 0.003);
    jm_metric_observe(s, 5000);
    char *out = jm_metrics_render(m, NULL);
    cr_assert_not_null(out);
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"0.0005\"} 0\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"0.0025\"} 0\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"0.005\"} 1\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"0.1\"} 1\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"1800\"} 1\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_bucket{queue=\"default\",le=\"+Inf\"} 2\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_sum{queue=\"default\"} 5000.003\n"));
    cr_assert_not_null(strstr(out, "jm_wait_seconds_count{queue=\"default\"} 2\n"));
    /* cumulativeness: each bucket >= the one before, across the whole output */
    unsigned long prev = 0;
    int buckets = 0;
    for (const char *p = strstr(out, "_bucket{"); p != NULL; p = strstr(p + 1, "_bucket{")) {
        const char *sp = strchr(p, ' ');
        unsigned long v = strtoul(sp + 1, NULL, 10);
        cr_assert_geq(v, prev);
        prev = v;
        buckets++;
    }
    cr_assert_eq(buckets, 21);
    free(out);
    jm_metrics_free(m);
}

Test(metrics, histogram_bucket_validation)
{
    jm_metrics *m = jm_metrics_new();
    const double unsorted[] = {1, 0.5};
    const double dup[] = {1, 1};
    const double nan[] = {NAN};
    const double inf_mid[] = {1, INFINITY, 2};
    const double inf_last[] = {1, INFINITY};
    cr_assert_null(
        jm_metrics_family(m, "jm_a_seconds", "h", JM_METRIC_HISTOGRAM, NULL, unsorted, 2));
    cr_assert_null(jm_metrics_family(m, "jm_b_seconds", "h", JM_METRIC_HISTOGRAM, NULL, dup, 2));
    cr_assert_null(jm_metrics_family(m, "jm_c_seconds", "h", JM_METRIC_HISTOGRAM, NULL, nan, 1));
    cr_assert_null(
        jm_metrics_family(m, "jm_d_seconds", "h", JM_METRIC_HISTOGRAM, NULL, inf_mid, 3));
    const char *le[] = {"le", NULL};
    cr_assert_null(jm_metrics_family(m, "jm_e_seconds", "h", JM_METRIC_HISTOGRAM, le, NULL, 0));
    /* a trailing +Inf is implied anyway and not printed twice */
    jm_metric_family *f =
        jm_metrics_family(m, "jm_f_seconds", "h", JM_METRIC_HISTOGRAM, NULL, inf_last, 2);
    cr_assert_not_null(f);
    jm_metric_observe(jm_metrics_series(f, NULL), NAN);
    char *out = jm_metrics_render(m, NULL);
    cr_assert_str_eq(out, "# HELP jm_f_seconds h\n"
                          "# TYPE jm_f_seconds histogram\n"
                          "jm_f_seconds_bucket{le=\"1\"} 0\n"
                          "jm_f_seconds_bucket{le=\"+Inf\"} 1\n"
                          "jm_f_seconds_sum NaN\n"
                          "jm_f_seconds_count 1\n");
    free(out);
    jm_metrics_free(m);
}

Test(metrics, invalid_names_rejected)
{
    jm_metrics *m = jm_metrics_new();
    const jm_metric_type C = JM_METRIC_COUNTER, G = JM_METRIC_GAUGE, H = JM_METRIC_HISTOGRAM;
    /* syntax */
    cr_assert_null(jm_metrics_family(m, "", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, NULL, "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "1abc", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "a-b", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "a b", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "a\xc3\xa9", "h", G, NULL, NULL, 0));
    /* promtool lints */
    cr_assert_null(jm_metrics_family(m, "jm_requests", "h", C, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth_total", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_lat_total", "h", H, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_x_count", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_x_sum", "h", H, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_x_bucket", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm:depth", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jmDepth", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth_gauge", "h", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_counter_x_total", "h", C, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", NULL, G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "", G, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", (jm_metric_type)42, NULL, NULL, 0));
    cr_assert_null(jm_metrics_family(NULL, "jm_depth", "h", G, NULL, NULL, 0));
    /* label names */
    const char *bad1[] = {"1q", NULL}, *bad2[] = {"q-x", NULL}, *bad3[] = {"__q", NULL};
    const char *bad4[] = {"q", "q", NULL}, *bad5[] = {"", NULL}, *bad6[] = {"queueName", NULL};
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad1, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad2, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad3, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad4, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad5, NULL, 0));
    cr_assert_null(jm_metrics_family(m, "jm_depth", "h", G, bad6, NULL, 0));
    /* nothing above was registered */
    char *out = jm_metrics_render(m, NULL);
    cr_assert_str_eq(out, "");
    free(out);
    /* valid ones */
    const char *ok[] = {"queue", "_state", "s2", NULL};
    cr_assert_not_null(jm_metrics_family(m, "jm_depth", "h", G, ok, NULL, 0));
    cr_assert_not_null(jm_metrics_family(m, "_x_total", "h", C, NULL, NULL, 0));
    cr_assert_not_null(jm_metrics_family(m, "jm_gauges", "h", G, NULL, NULL, 0));
    jm_metrics_free(m);
}

Test(metrics, re_registration)
{
    jm_metrics *m = jm_metrics_new();
    const char *l1[] = {"queue", NULL}, *l2[] = {"type", NULL};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_done_total", "Done.", JM_METRIC_COUNTER, l1, NULL, 0);
    cr_assert_not_null(f);
    cr_assert_eq(
        jm_metrics_family(m, "jm_done_total", "Other help.", JM_METRIC_COUNTER, l1, NULL, 0), f);
    /* same name, other labels or type: refused */
    cr_assert_null(jm_metrics_family(m, "jm_done_total", "Done.", JM_METRIC_COUNTER, l2, NULL, 0));
    cr_assert_null(
        jm_metrics_family(m, "jm_done_total", "Done.", JM_METRIC_COUNTER, NULL, NULL, 0));
    jm_metrics_free(m);
}

Test(metrics, render_golden)
{
    jm_metrics *m = jm_metrics_new();
    const char *qs[] = {"queue", "status", NULL};
    jm_metric_family *fin =
        jm_metrics_family(m, "jobmill_jobs_finished_total", "Jobs that reached a terminal state.",
                          JM_METRIC_COUNTER, qs, NULL, 0);
    jm_metric_family *busy =
        jm_metrics_family(m, "jobmill_worker_busy", "Slots running a job.\nSecond \\ line.",
                          JM_METRIC_GAUGE, NULL, NULL, 0);
    const char *v[] = {"version", NULL};
    jm_metric_family *info =
        jm_metrics_family(m, "jobmill_build_info", "Build \"info\".", JM_METRIC_GAUGE, v, NULL, 0);
    const char *q[] = {"queue", NULL};
    const double b[] = {0.1, 1};
    jm_metric_family *dur = jm_metrics_family(m, "jobmill_job_duration_seconds", "Run time.",
                                              JM_METRIC_HISTOGRAM, q, b, 2);
    const char *eq[] = {"queue", NULL};
    cr_assert_not_null(jm_metrics_family(m, "jobmill_janitor_expired_total", "Expired.",
                                         JM_METRIC_COUNTER, eq, NULL, 0));
    cr_assert_not_null(fin);
    cr_assert_not_null(busy);
    cr_assert_not_null(info);
    cr_assert_not_null(dur);

    const char *s1[] = {"default", "succeeded"};
    const char *s2[] = {"we\"ird\\q\nx", "failed"};
    jm_metric_add(jm_metrics_series(fin, s1), 3);
    jm_metric_inc(jm_metrics_series(fin, s2));
    jm_metric_set(jm_metrics_series(busy, NULL), 2);
    const char *ver[] = {"0.1.0"};
    jm_metric_set(jm_metrics_series(info, ver), 1);
    const char *dq[] = {"default"};
    jm_metric_series *d = jm_metrics_series(dur, dq);
    jm_metric_observe(d, 0.0625);
    jm_metric_observe(d, 0.25);
    jm_metric_observe(d, 2);

    size_t len = 0;
    char *out = jm_metrics_render(m, &len);
    const char *want =
        "# HELP jobmill_jobs_finished_total Jobs that reached a terminal state.\n"
        "# TYPE jobmill_jobs_finished_total counter\n"
        "jobmill_jobs_finished_total{queue=\"default\",status=\"succeeded\"} 3\n"
        "jobmill_jobs_finished_total{queue=\"we\\\"ird\\\\q\\nx\",status=\"failed\"} 1\n"
        "# HELP jobmill_worker_busy Slots running a job.\\nSecond \\\\ line.\n"
        "# TYPE jobmill_worker_busy gauge\n"
        "jobmill_worker_busy 2\n"
        "# HELP jobmill_build_info Build \"info\".\n"
        "# TYPE jobmill_build_info gauge\n"
        "jobmill_build_info{version=\"0.1.0\"} 1\n"
        "# HELP jobmill_job_duration_seconds Run time.\n"
        "# TYPE jobmill_job_duration_seconds histogram\n"
        "jobmill_job_duration_seconds_bucket{queue=\"default\",le=\"0.1\"} 1\n"
        "jobmill_job_duration_seconds_bucket{queue=\"default\",le=\"1\"} 2\n"
        "jobmill_job_duration_seconds_bucket{queue=\"default\",le=\"+Inf\"} 3\n"
        "jobmill_job_duration_seconds_sum{queue=\"default\"} 2.3125\n"
        "jobmill_job_duration_seconds_count{queue=\"default\"} 3\n"
        "# HELP jobmill_janitor_expired_total Expired.\n"
        "# TYPE jobmill_janitor_expired_total counter\n";
    cr_assert_str_eq(out, want);
    cr_assert_eq(len, strlen(want));
    free(out);
    jm_metrics_free(m);
}

Test(metrics, value_formatting)
{
    jm_metrics *m = jm_metrics_new();
    const char *l[] = {"k", NULL};
    jm_metric_family *f = jm_metrics_family(m, "jm_v", "h", JM_METRIC_GAUGE, l, NULL, 0);
    const struct {
        const char *k;
        double v;
    } cases[] = {
        {"a", 800000},   {"b", 0.1},       {"c", -2.5},      {"d", 1e20},
        {"e", INFINITY}, {"f", -INFINITY}, {"g", 1.0 / 3.0}, {"h", 123456789012.0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *v[] = {cases[i].k};
        jm_metric_set(jm_metrics_series(f, v), cases[i].v);
    }
    char *out = jm_metrics_render(m, NULL);
    cr_assert_not_null(strstr(out, "jm_v{k=\"a\"} 800000\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"b\"} 0.1\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"c\"} -2.5\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"d\"} 1e+20\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"e\"} +Inf\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"f\"} -Inf\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"g\"} 0.3333333333333333\n"));
    cr_assert_not_null(strstr(out, "jm_v{k=\"h\"} 123456789012\n"));
    free(out);
    jm_metrics_free(m);
}

Test(metrics, empty_registry_renders_empty_string)
{
    jm_metrics *m = jm_metrics_new();
    size_t len = 99;
    char *out = jm_metrics_render(m, &len);
    cr_assert_not_null(out);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(out, "");
    free(out);
    jm_metrics_free(m);
    jm_metrics_free(NULL);
}

/* --- concurrency ---------------------------------------------------------- */

#define N_THREADS 8
#define N_INCS 100000

typedef struct hammer_arg {
    jm_metric_family *fam; /* looks the series up itself, concurrently */
    jm_metric_series *hist;
} hammer_arg;

static void *
hammer(void *p)
{
    hammer_arg *a = p;
    const char *v[] = {"shared"};
    jm_metric_series *s = jm_metrics_series(a->fam, v);
    for (int i = 0; i < N_INCS; i++) {
        jm_metric_inc(s);
        jm_metric_observe(a->hist, (i % 2) ? 0.5 : 2.0);
    }
    return NULL;
}

Test(metrics, concurrent_increments_are_exact, .timeout = 120)
{
    jm_metrics *m = jm_metrics_new();
    const char *l[] = {"queue", NULL};
    jm_metric_family *f =
        jm_metrics_family(m, "jm_hits_total", "Hits.", JM_METRIC_COUNTER, l, NULL, 0);
    const double b[] = {1};
    jm_metric_family *h =
        jm_metrics_family(m, "jm_obs_seconds", "Obs.", JM_METRIC_HISTOGRAM, NULL, b, 1);
    hammer_arg arg = {f, jm_metrics_series(h, NULL)};
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &arg), 0);
    /* render concurrently with the updates: must not crash or block them */
    for (int i = 0; i < 20; i++)
        free(jm_metrics_render(m, NULL));
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    const char *v[] = {"shared"};
    cr_assert_eq(jm_metric_value(jm_metrics_series(f, v)), (double)N_THREADS * N_INCS);
    char *out = jm_metrics_render(m, NULL);
    cr_assert_not_null(strstr(out, "jm_hits_total{queue=\"shared\"} 800000\n"));
    cr_assert_not_null(strstr(out, "jm_obs_seconds_bucket{le=\"1\"} 400000\n"));
    cr_assert_not_null(strstr(out, "jm_obs_seconds_bucket{le=\"+Inf\"} 800000\n"));
    cr_assert_not_null(strstr(out, "jm_obs_seconds_sum 1000000\n"));
    cr_assert_not_null(strstr(out, "jm_obs_seconds_count 800000\n"));
    free(out);
    jm_metrics_free(m);
}

/* --- promtool ------------------------------------------------------------- */

#define PROMTOOL "/usr/bin/promtool"

/* Under `valgrind --trace-children=yes` promtool (a Go binary) runs under
 * valgrind too, which reports the Go runtime and may replace its exit status
 * (--error-exitcode). Then only promtool's own lines count: valgrind's start
 * with "==pid==" or "--pid--". */
static int
under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p != NULL && strstr(p, "vgpreload") != NULL;
}

static void
drop_valgrind_lines(char *s)
{
    char *w = s;
    for (char *line = s; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        size_t next = n + (line[n] == '\n');
        if (!(strncmp(line, "==", 2) == 0 || strncmp(line, "--", 2) == 0)) {
            memmove(w, line, next);
            w += next;
        }
        line += next;
    }
    *w = '\0';
}

Test(metrics, promtool_check_metrics, .timeout = 60)
{
    cr_assert_eq(access(PROMTOOL, X_OK), 0,
                 PROMTOOL " is missing: install it (apt-get install prometheus); CI does");
    jm_metrics *m = jm_metrics_new();
    const char *qs[] = {"queue", "status", NULL};
    jm_metric_family *c =
        jm_metrics_family(m, "jobmill_jobs_finished_total", "Jobs that reached a terminal state.",
                          JM_METRIC_COUNTER, qs, NULL, 0);
    jm_metric_family *g = jm_metrics_family(
        m, "jobmill_worker_busy", "Busy slots;\nescaped \\ help.", JM_METRIC_GAUGE, NULL, NULL, 0);
    const char *q[] = {"queue", "type", NULL};
    jm_metric_family *h = jm_metrics_family(m, "jobmill_job_duration_seconds", "Run time.",
                                            JM_METRIC_HISTOGRAM, q, NULL, 0);
    cr_assert_not_null(jm_metrics_family(m, "jobmill_janitor_requeued_total", "Requeued.",
                                         JM_METRIC_COUNTER, qs, NULL, 0));
    cr_assert_not_null(jm_metrics_family(m, "jobmill_redis_errors_total", "Redis errors.",
                                         JM_METRIC_COUNTER, NULL, NULL, 0));
    cr_assert_not_null(c);
    cr_assert_not_null(g);
    cr_assert_not_null(h);
    const char *v1[] = {"default", "succeeded"}, *v2[] = {"q\"\\\n\xc3\xa9", "dead"};
    jm_metric_add(jm_metrics_series(c, v1), 12);
    jm_metric_inc(jm_metrics_series(c, v2));
    jm_metric_set(jm_metrics_series(g, NULL), -1.5);
    const char *hv[] = {"default", "email"}, *hv2[] = {"other", "sms"};
    jm_metric_observe(jm_metrics_series(h, hv), 0.2);
    jm_metric_observe(jm_metrics_series(h, hv), 7000);
    jm_metrics_series(h, hv2);
    size_t len = 0;
    char *out = jm_metrics_render(m, &len);
    cr_assert_not_null(out);

    char path[] = "/tmp/jm_metrics_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, out, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char msg[65536] = "";
    size_t n = fread(msg, 1, sizeof(msg) - 1, p);
    msg[n] = '\0';
    int st = pclose(p);
    unlink(path);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok && under_valgrind() && WIFEXITED(st)) {
        drop_valgrind_lines(msg);
        ok = msg[0] == '\0';
    }
    cr_assert(ok, "promtool rejected the render (status %d):\n%s\n---\n%s", st, msg, out);
    free(out);
    jm_metrics_free(m);
}
