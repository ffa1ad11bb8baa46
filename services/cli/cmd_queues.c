/* cmd_queues.c - the commands on queues: queues (a table of counts per
 * state; --watch refreshes it in place with rates per second), pause,
 * resume, ls (a queue's jobs in one state, following the cursors) and
 * retry-failed (every failed job of a queue, behind --yes). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "jobmill/clock.h"

#define CLI_PAGE_MAX 1000 /* the api's largest page */

static const char *const states[] = {"queued", "scheduled", "running", "succeeded",
                                     "failed", "canceled",  "expired"};
#define N_STATES (sizeof(states) / sizeof(states[0]))

static bool
known_state(const char *s)
{
    for (size_t i = 0; i < N_STATES; i++)
        if (strcmp(states[i], s) == 0)
            return true;
    return false;
}

/* ---- queues, queues --watch ---- */

static volatile sig_atomic_t watch_stop;

static void
on_interrupt(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* rate returns the per-second change of state s of queue name between
 * prev and cur (dt seconds apart); a count that fell (records purged)
 * counts as 0. */
static double
rate(const json_t *prev, const json_t *cur, const char *name, const char *s, double dt)
{
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(prev, "queues"), i, q)
    {
        if (strcmp(cli_str(q, "name"), name) == 0) {
            long long d = cli_int(cur, s) - cli_int(q, s);
            return d > 0 && dt > 0 ? (double)d / dt : 0.0;
        }
    }
    return 0.0;
}

/* print_queues writes the table (with rate columns when prev is given). */
static void
print_queues(FILE *out, const json_t *list, const json_t *prev, double dt)
{
    static const char *const headers[] = {"QUEUE",     "QUEUED",      "SCHEDULED", "RUNNING",
                                          "SUCCEEDED", "FAILED",      "CANCELED",  "EXPIRED",
                                          "PAUSED",    "SUCCEEDED/S", "FAILED/S"};
    size_t cols = prev != NULL ? 11 : 9;
    cli_table *t = cli_table_new(cols, headers);
    if (t == NULL)
        return;
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(list, "queues"), i, q)
    {
        char num[N_STATES][24], r[2][24];
        const char *cells[11];
        cells[0] = cli_str(q, "name");
        for (size_t s = 0; s < N_STATES; s++) {
            snprintf(num[s], sizeof(num[s]), "%lld", cli_int(q, states[s]));
            cells[1 + s] = num[s];
        }
        cells[8] = json_is_true(json_object_get(q, "paused")) ? "yes" : "no";
        if (prev != NULL) {
            snprintf(r[0], sizeof(r[0]), "%.1f", rate(prev, q, cells[0], "succeeded", dt));
            snprintf(r[1], sizeof(r[1]), "%.1f", rate(prev, q, cells[0], "failed", dt));
            cells[9] = r[0];
            cells[10] = r[1];
        }
        cli_table_add(t, cells);
    }
    cli_table_print(t, out);
    cli_table_free(t);
}

/* watch_json writes one line: {"ts", "queues":[... + "rates"]}. */
static void
watch_json(json_t *list, const json_t *prev, double dt)
{
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(list, "queues"), i, q)
    {
        json_t *rates = json_object();
        for (size_t s = 0; s < N_STATES; s++)
            json_object_set_new(
                rates, states[s],
                json_real(prev != NULL ? rate(prev, q, cli_str(q, "name"), states[s], dt) : 0.0));
        json_object_set_new(q, "rates", rates);
    }
    json_t *line =
        json_pack("{s:f,s:O}", "ts", jm_clock_wall_s(), "queues", json_object_get(list, "queues"));
    json_dumpf(line, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(line);
}

/* sleep_until waits until deadline_ms or an interrupt. */
static void
sleep_until(int64_t deadline_ms)
{
    while (!watch_stop) {
        int64_t left = deadline_ms - jm_clock_ms();
        if (left <= 0)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (left > 100 ? 100 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static const cli_opt queues_opts[] = {{"watch", false}, {"interval", true}, {"count", true}};
#define N_QUEUES_OPTS (sizeof(queues_opts) / sizeof(queues_opts[0]))

int
cli_cmd_queues(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, queues_opts, N_QUEUES_OPTS, &a, &err) != JM_OK)
        return cli_usage_error("queues", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "queues");
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 0)
        return cli_usage_error("queues", "takes no arguments");
    bool watch = cli_args_get(&a, queues_opts, N_QUEUES_OPTS, "watch") != NULL;
    const char *iv = cli_args_get(&a, queues_opts, N_QUEUES_OPTS, "interval");
    const char *cv = cli_args_get(&a, queues_opts, N_QUEUES_OPTS, "count");
    double interval = 2, count = 0;
    if (iv != NULL && cli_parse_number(iv, 0.1, 86400, &interval) != JM_OK)
        return cli_usage_error("queues", "--interval wants seconds in [0.1, 86400], not \"%s\"",
                               iv);
    if (cv != NULL && cli_parse_number(cv, 1, 1e9, &count) != JM_OK)
        return cli_usage_error("queues", "--count wants a number >= 1, not \"%s\"", cv);
    if (!watch && (iv != NULL || cv != NULL))
        return cli_usage_error("queues", "--interval and --count go with --watch");
    if (!watch) {
        json_t *list = NULL;
        int rc = cli_api_call(ctx, "GET", "/v1/queues", NULL, CLI_CALL_TIMEOUT_MS, &list);
        if (rc != CLI_EXIT_OK)
            return rc;
        if (ctx->json)
            cli_print_json(stdout, list);
        else
            print_queues(stdout, list, NULL, 0);
        json_decref(list);
        return CLI_EXIT_OK;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    json_t *prev = NULL;
    int64_t prev_ms = 0;
    int rc = CLI_EXIT_OK;
    for (long n = 0; !watch_stop && (count == 0 || n < (long)count); n++) {
        int64_t t0 = jm_clock_ms();
        json_t *list = NULL;
        rc = cli_api_call(ctx, "GET", "/v1/queues", NULL, CLI_CALL_TIMEOUT_MS, &list);
        if (rc != CLI_EXIT_OK)
            break;
        double dt = prev != NULL ? (double)(t0 - prev_ms) / 1000.0 : 0;
        if (ctx->json) {
            watch_json(list, prev, dt);
        } else {
            if (tty)
                fputs("\033[H\033[2J", stdout);
            char when[32];
            json_t *now = json_real(jm_clock_wall_s());
            printf("jobmill queues at %s, every %gs (Ctrl-C stops)\n\n",
                   cli_fmt_time(now, when, sizeof(when)), interval);
            json_decref(now);
            print_queues(stdout, list, prev != NULL ? prev : list, dt);
            fflush(stdout);
        }
        json_decref(prev);
        prev = list;
        prev_ms = t0;
        if (count == 0 || n + 1 < (long)count)
            sleep_until(t0 + (int64_t)(interval * 1000));
    }
    json_decref(prev);
    return rc;
}

/* ---- pause, resume ---- */

static int
pause_resume(cli_ctx *ctx, int argc, char **argv, const char *op)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, NULL, 0, &a, &err) != JM_OK)
        return cli_usage_error(argv[0], "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, argv[0]);
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 1)
        return cli_usage_error(argv[0], "expected one QUEUE");
    char eq[256 * 3 + 1], path[1024];
    snprintf(path, sizeof(path), "/v1/queues/%s/%s", cli_path_escape(a.pos[0], eq, sizeof(eq)), op);
    json_t *q = NULL;
    int rc = cli_api_call(ctx, "POST", path, NULL, CLI_CALL_TIMEOUT_MS, &q);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(stdout, q);
    else
        printf("queue %s %s\n", cli_str(q, "name"),
               json_is_true(json_object_get(q, "paused")) ? "paused" : "resumed");
    json_decref(q);
    return CLI_EXIT_OK;
}

int
cli_cmd_pause(cli_ctx *ctx, int argc, char **argv)
{
    return pause_resume(ctx, argc, argv, "pause");
}

int
cli_cmd_resume(cli_ctx *ctx, int argc, char **argv)
{
    return pause_resume(ctx, argc, argv, "resume");
}

/* ---- ls, retry-failed ---- */

/* list_jobs reads the jobs of queue in state, following next_cursor, until
 * the end or limit jobs (0: no limit). CLI_EXIT_OK with *out a new array. */
static int
list_jobs(const cli_ctx *ctx, const char *queue, const char *state, long limit, json_t **out)
{
    *out = json_array();
    char eq[256 * 3 + 1], cursor[64] = "", path[1200];
    cli_path_escape(queue, eq, sizeof(eq));
    for (;;) {
        long want = CLI_PAGE_MAX;
        if (limit > 0 && limit - (long)json_array_size(*out) < want)
            want = limit - (long)json_array_size(*out);
        if (want <= 0)
            return CLI_EXIT_OK;
        snprintf(path, sizeof(path), "/v1/queues/%s/jobs?state=%s&limit=%ld%s%s", eq, state, want,
                 cursor[0] != '\0' ? "&cursor=" : "", cursor);
        json_t *page = NULL;
        int rc = cli_api_call(ctx, "GET", path, NULL, CLI_CALL_TIMEOUT_MS, &page);
        if (rc != CLI_EXIT_OK) {
            json_decref(*out);
            *out = NULL;
            return rc;
        }
        json_array_extend(*out, json_object_get(page, "jobs"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        bool more = next != NULL && strlen(next) < sizeof(cursor);
        if (more)
            cli_path_escape(next, cursor, sizeof(cursor));
        json_decref(page);
        if (!more)
            return CLI_EXIT_OK;
    }
}

static void
print_jobs(FILE *out, const json_t *jobs)
{
    static const char *const headers[] = {"ID",      "STATUS",   "TYPE", "ATTEMPTS",
                                          "CREATED", "FINISHED", "ERROR"};
    cli_table *t = cli_table_new(7, headers);
    if (t == NULL)
        return;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char att[48], created[40], finished[40], error[256];
        snprintf(att, sizeof(att), "%lld/%lld", cli_int(j, "attempts"), cli_int(j, "max_attempts"));
        const char *cells[] = {
            cli_str(j, "id"),
            cli_str(j, "status"),
            cli_str(j, "type"),
            att,
            cli_fmt_time(json_object_get(j, "created_at"), created, sizeof(created)),
            cli_fmt_time(json_object_get(j, "finished_at"), finished, sizeof(finished)),
            cli_fmt_value(json_object_get(j, "error"), 60, error, sizeof(error))};
        cli_table_add(t, cells);
    }
    cli_table_print(t, out);
    cli_table_free(t);
}

static const cli_opt ls_opts[] = {{"state", true}, {"limit", true}};

int
cli_cmd_ls(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, ls_opts, 2, &a, &err) != JM_OK)
        return cli_usage_error("ls", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "ls");
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 1)
        return cli_usage_error("ls", "expected one QUEUE");
    const char *state = cli_args_get(&a, ls_opts, 2, "state");
    const char *lv = cli_args_get(&a, ls_opts, 2, "limit");
    if (state == NULL)
        return cli_usage_error("ls", "--state is required (queued, scheduled, running, "
                                     "succeeded, failed, canceled, expired)");
    if (!known_state(state))
        return cli_usage_error("ls", "unknown state \"%s\"", state);
    double limit = 0;
    if (lv != NULL && (cli_parse_number(lv, 1, 1e9, &limit) != JM_OK || (long)limit != limit))
        return cli_usage_error("ls", "--limit wants a whole number >= 1, not \"%s\"", lv);
    json_t *jobs = NULL;
    int rc = list_jobs(ctx, a.pos[0], state, (long)limit, &jobs);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        json_t *o = json_pack("{s:O}", "jobs", jobs);
        cli_print_json(stdout, o);
        json_decref(o);
    } else {
        print_jobs(stdout, jobs);
    }
    json_decref(jobs);
    return CLI_EXIT_OK;
}

static const cli_opt retry_failed_opts[] = {{"yes", false}};

int
cli_cmd_retry_failed(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, retry_failed_opts, 1, &a, &err) != JM_OK)
        return cli_usage_error("retry-failed", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "retry-failed");
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 1)
        return cli_usage_error("retry-failed", "expected one QUEUE");
    const char *queue = a.pos[0];
    bool yes = cli_args_get(&a, retry_failed_opts, 1, "yes") != NULL;
    /* the ids first: retrying shifts the failed index under a cursor */
    json_t *jobs = NULL;
    int rc = list_jobs(ctx, queue, "failed", 0, &jobs);
    if (rc != CLI_EXIT_OK)
        return rc;
    size_t n = json_array_size(jobs);
    if (n > 0 && !yes) {
        fprintf(stderr,
                "jobmill retry-failed: queue %s has %zu failed job%s; nothing was changed. "
                "Run again with --yes to retry %s.\n",
                queue, n, n == 1 ? "" : "s", n == 1 ? "it" : "them all");
        json_decref(jobs);
        return CLI_EXIT_USAGE;
    }
    size_t retried = 0, skipped = 0, i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char eid[1024], path[1100], code[64], msg[600];
        int status;
        json_t *job = NULL;
        snprintf(path, sizeof(path), "/v1/jobs/%s/retry",
                 cli_path_escape(cli_str(j, "id"), eid, sizeof(eid)));
        rc = cli_api_quiet_call(ctx, "POST", path, NULL, CLI_CALL_TIMEOUT_MS, &job, &status, code,
                                sizeof(code), msg, sizeof(msg));
        json_decref(job);
        if (rc == CLI_EXIT_OK) {
            retried++;
        } else if (status == 404 || status == 409) {
            skipped++; /* retried, purged or changed meanwhile */
        } else {
            fprintf(stderr, "jobmill: %s: %s (after retrying %zu of %zu)\n", code, msg, retried, n);
            json_decref(jobs);
            return rc;
        }
    }
    json_decref(jobs);
    if (ctx->json) {
        json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "queue", queue, "failed", (json_int_t)n,
                              "retried", (json_int_t)retried, "skipped", (json_int_t)skipped);
        cli_print_json(stdout, o);
        json_decref(o);
    } else if (n == 0) {
        printf("queue %s has no failed jobs\n", queue);
    } else {
        printf("retried %zu of %zu failed jobs in queue %s", retried, n, queue);
        if (skipped > 0)
            printf(" (%zu no longer failed)", skipped);
        printf("\n");
    }
    return CLI_EXIT_OK;
}
