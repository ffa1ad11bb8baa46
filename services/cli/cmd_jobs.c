/* cmd_jobs.c - the commands on one job: submit (with --wait), get, wait,
 * cancel, retry; and the long-poll loop they share. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "jobmill/clock.h"
#include "jobmill/json.h"

#define CLI_PAYLOAD_MAX (64u << 20)
#define CLI_WAIT_SLICE_S 60.0 /* the api's longest ?wait */

int
cli_job_exit(const json_t *job)
{
    const char *s = cli_str(job, "status");
    return strcmp(s, "failed") == 0 || strcmp(s, "canceled") == 0 || strcmp(s, "expired") == 0
               ? CLI_EXIT_JOB
               : CLI_EXIT_OK;
}

static bool
terminal(const json_t *job)
{
    const char *s = cli_str(job, "status");
    return strcmp(s, "succeeded") == 0 || cli_job_exit(job) == CLI_EXIT_JOB;
}

int
cli_wait_job(const cli_ctx *ctx, const char *id, double timeout_s, json_t **out)
{
    *out = NULL;
    char eid[256 * 3 + 1], path[1024];
    cli_path_escape(id, eid, sizeof(eid));
    int64_t deadline = timeout_s >= 0 ? jm_clock_ms() + (int64_t)(timeout_s * 1000.0) : -1;
    for (;;) {
        double slice = CLI_WAIT_SLICE_S;
        if (deadline >= 0) {
            double left = (double)(deadline - jm_clock_ms()) / 1000.0;
            slice = left < slice ? (left > 0 ? left : 0) : slice;
        }
        snprintf(path, sizeof(path), "/v1/jobs/%s?wait=%.3f", eid, slice);
        json_t *job = NULL;
        int rc =
            cli_api_call(ctx, "GET", path, NULL, (int)(slice * 1000) + CLI_CALL_TIMEOUT_MS, &job);
        if (rc != CLI_EXIT_OK)
            return rc;
        json_decref(*out);
        *out = job;
        if (terminal(job))
            return CLI_EXIT_OK;
        if (deadline >= 0 && jm_clock_ms() >= deadline)
            return CLI_EXIT_TIMEOUT;
    }
}

/* read_all reads a whole stream (the payload file or stdin). New buffer or
 * NULL with errno. */
static char *
read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(b);
                return NULL;
            }
            break;
        }
        if (n + 1 == cap) {
            char *nb = cap >= CLI_PAYLOAD_MAX ? NULL : realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                errno = EFBIG;
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b != NULL) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

/* load_payload parses the PAYLOAD argument: JSON text, @file, or - for
 * stdin. New reference, or NULL after a usage message. */
static json_t *
load_payload(const char *arg)
{
    char *text = NULL;
    size_t len = 0;
    const char *what = "the payload";
    if (strcmp(arg, "-") == 0) {
        text = read_all(stdin, &len);
        what = "the payload on stdin";
        if (text == NULL) {
            cli_usage_error("submit", "cannot read the payload from stdin: %s", strerror(errno));
            return NULL;
        }
    } else if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        text = f != NULL ? read_all(f, &len) : NULL;
        int e = errno;
        if (f != NULL)
            fclose(f);
        if (text == NULL) {
            cli_usage_error("submit", "cannot read the payload file %s: %s", arg + 1, strerror(e));
            return NULL;
        }
        what = arg + 1;
    } else {
        len = strlen(arg);
    }
    json_error_t jerr;
    json_t *v = jm_json_loadb(text != NULL ? text : arg, len, JSON_DECODE_ANY, &jerr);
    free(text);
    if (v == NULL)
        cli_usage_error("submit", "%s is not JSON: %s (line %d, column %d)", what, jerr.text,
                        jerr.line, jerr.column);
    return v;
}

/* print_job writes a job for humans, one field a line. */
static void
print_job(FILE *out, const json_t *job)
{
    char buf[4096];
    static const char *const plain[] = {"id", "queue", "type", "status", "worker"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        fprintf(out, "%-12s%s\n", plain[i],
                cli_fmt_value(json_object_get(job, plain[i]), 0, buf, sizeof(buf)));
    fprintf(out, "%-12s%lld/%lld\n", "attempts", cli_int(job, "attempts"),
            cli_int(job, "max_attempts"));
    if (json_object_get(job, "fence") != NULL)
        fprintf(out, "%-12s%s\n", "fence",
                cli_fmt_value(json_object_get(job, "fence"), 0, buf, sizeof(buf)));
    if (json_is_true(json_object_get(job, "cancel_requested")))
        fprintf(out, "%-12s%s\n", "cancel", "requested");
    static const char *const times[] = {"created_at", "run_at", "started_at", "finished_at",
                                        "expires_at"};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
        fprintf(out, "%-12s%s\n", times[i],
                cli_fmt_time(json_object_get(job, times[i]), buf, sizeof(buf)));
    static const char *const data[] = {"progress", "error", "payload", "result"};
    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        fprintf(out, "%-12s%s\n", data[i],
                cli_fmt_value(json_object_get(job, data[i]), 0, buf, sizeof(buf)));
}

/* report_outcome prints a finished (or waited-for) job and returns its exit
 * code: the result on success, the error on stderr otherwise. */
static int
report_outcome(const cli_ctx *ctx, const json_t *job, int wait_rc)
{
    if (ctx->json)
        cli_print_json(stdout, job);
    if (wait_rc == CLI_EXIT_TIMEOUT) {
        fprintf(stderr, "jobmill: job %s is still %s (timed out waiting)\n", cli_str(job, "id"),
                cli_str(job, "status"));
        return CLI_EXIT_TIMEOUT;
    }
    int rc = cli_job_exit(job);
    if (rc == CLI_EXIT_OK && !ctx->json)
        cli_print_json(stdout, json_object_get(job, "result"));
    if (rc != CLI_EXIT_OK) {
        char buf[2048];
        fprintf(stderr, "jobmill: job %s %s: %s\n", cli_str(job, "id"), cli_str(job, "status"),
                cli_fmt_value(json_object_get(job, "error"), 0, buf, sizeof(buf)));
    }
    return rc;
}

static const cli_opt submit_opts[] = {
    {"queue", true},           {"delay", true}, {"max-attempts", true},
    {"idempotency-key", true}, {"wait", false},
};
#define N_SUBMIT (sizeof(submit_opts) / sizeof(submit_opts[0]))

int
cli_cmd_submit(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, submit_opts, N_SUBMIT, &a, &err) != JM_OK)
        return cli_usage_error("submit", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "submit");
        return CLI_EXIT_OK;
    }
    if (a.n_pos < 1 || a.n_pos > 2)
        return cli_usage_error("submit", "expected TYPE [PAYLOAD]");
    json_t *body = json_object();
    json_object_set_new(body, "type", json_string(a.pos[0]));
    if (a.n_pos == 2) {
        json_t *p = load_payload(a.pos[1]);
        if (p == NULL) {
            json_decref(body);
            return CLI_EXIT_USAGE;
        }
        json_object_set_new(body, "payload", p);
    }
    const char *q = cli_args_get(&a, submit_opts, N_SUBMIT, "queue");
    const char *delay = cli_args_get(&a, submit_opts, N_SUBMIT, "delay");
    const char *ma = cli_args_get(&a, submit_opts, N_SUBMIT, "max-attempts");
    const char *key = cli_args_get(&a, submit_opts, N_SUBMIT, "idempotency-key");
    bool wait = cli_args_get(&a, submit_opts, N_SUBMIT, "wait") != NULL;
    double d;
    if (q != NULL)
        json_object_set_new(body, "queue", json_string(q));
    if (delay != NULL) {
        if (cli_parse_number(delay, 0, 1e12, &d) != JM_OK) {
            json_decref(body);
            return cli_usage_error("submit", "--delay wants seconds >= 0, not \"%s\"", delay);
        }
        json_object_set_new(body, "delay_s",
                            d == floor(d) ? json_integer((json_int_t)d) : json_real(d));
    }
    if (ma != NULL) {
        if (cli_parse_number(ma, 1, 1e9, &d) != JM_OK || d != floor(d)) {
            json_decref(body);
            return cli_usage_error("submit", "--max-attempts wants a whole number >= 1, not \"%s\"",
                                   ma);
        }
        json_object_set_new(body, "max_attempts", json_integer((json_int_t)d));
    }
    if (key != NULL)
        json_object_set_new(body, "idempotency_key", json_string(key));
    json_t *job = NULL;
    int rc = cli_api_call(ctx, "POST", "/v1/jobs", body, CLI_CALL_TIMEOUT_MS, &job);
    json_decref(body);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!wait) {
        if (ctx->json)
            cli_print_json(stdout, job);
        else
            printf("%s\n", cli_str(job, "id"));
        json_decref(job);
        return CLI_EXIT_OK;
    }
    char id[256];
    snprintf(id, sizeof(id), "%s", cli_str(job, "id"));
    json_decref(job);
    json_t *done = NULL;
    rc = cli_wait_job(ctx, id, -1, &done);
    if (done != NULL && (rc == CLI_EXIT_OK || rc == CLI_EXIT_TIMEOUT))
        rc = report_outcome(ctx, done, rc);
    json_decref(done);
    return rc;
}

/* one_id parses "CMD ID" with no options of its own (opts may add some). */
static int
one_id(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, size_t n_opts, cli_args *a)
{
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, opts, n_opts, a, &err) != JM_OK)
        return cli_usage_error(argv[0], "%s", err.msg);
    if (a->help) {
        cli_usage(stdout, argv[0]);
        return -1;
    }
    if (a->n_pos != 1 || a->pos[0][0] == '\0')
        return cli_usage_error(argv[0], "expected one job ID");
    return CLI_EXIT_OK;
}

int
cli_cmd_get(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    int rc = one_id(ctx, argc, argv, NULL, 0, &a);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char eid[1024], path[1100];
    snprintf(path, sizeof(path), "/v1/jobs/%s", cli_path_escape(a.pos[0], eid, sizeof(eid)));
    json_t *job = NULL;
    rc = cli_api_call(ctx, "GET", path, NULL, CLI_CALL_TIMEOUT_MS, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(stdout, job);
    else
        print_job(stdout, job);
    json_decref(job);
    return CLI_EXIT_OK;
}

static const cli_opt wait_opts[] = {{"timeout", true}};

int
cli_cmd_wait(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    int rc = one_id(ctx, argc, argv, wait_opts, 1, &a);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    double timeout = -1;
    const char *t = cli_args_get(&a, wait_opts, 1, "timeout");
    if (t != NULL && cli_parse_number(t, 0, 1e9, &timeout) != JM_OK)
        return cli_usage_error("wait", "--timeout wants seconds >= 0, not \"%s\"", t);
    json_t *job = NULL;
    rc = cli_wait_job(ctx, a.pos[0], timeout, &job);
    if (job != NULL && (rc == CLI_EXIT_OK || rc == CLI_EXIT_TIMEOUT))
        rc = report_outcome(ctx, job, rc);
    json_decref(job);
    return rc;
}

/* transition posts /v1/jobs/ID/op (cancel, retry) and prints the job. */
static int
transition(cli_ctx *ctx, int argc, char **argv, const char *op)
{
    cli_args a;
    int rc = one_id(ctx, argc, argv, NULL, 0, &a);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char eid[1024], path[1100];
    snprintf(path, sizeof(path), "/v1/jobs/%s/%s", cli_path_escape(a.pos[0], eid, sizeof(eid)), op);
    json_t *job = NULL;
    rc = cli_api_call(ctx, "POST", path, NULL, CLI_CALL_TIMEOUT_MS, &job);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(stdout, job);
    else
        printf("%s %s%s\n", cli_str(job, "id"), cli_str(job, "status"),
               json_is_true(json_object_get(job, "cancel_requested")) ? " (cancel requested)" : "");
    json_decref(job);
    return CLI_EXIT_OK;
}

int
cli_cmd_cancel(cli_ctx *ctx, int argc, char **argv)
{
    return transition(ctx, argc, argv, "cancel");
}

int
cli_cmd_retry(cli_ctx *ctx, int argc, char **argv)
{
    return transition(ctx, argc, argv, "retry");
}
