/* cmd_logs.c - jobmill logs ID [--since N] [--follow]: a job's log lines
 * (GET /v1/jobs/{id}/logs; docs/logs.md). Without --follow the pages are
 * read until the last line; with it the server-sent event stream is
 * printed as it arrives until the job ends, and the exit code is the job's
 * outcome (0 succeeded; 1 failed, canceled or expired). Human output is the
 * lines' text, one a line; --json one JSON object {"n","ts","line"} a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "jobmill/json.h"

#define LOGS_IDLE_MS 30000 /* the api sends a keepalive every 5 s */

static const cli_opt logs_opts[] = {{"since", true}, {"follow", false}};
#define N_LOGS_OPTS (sizeof(logs_opts) / sizeof(logs_opts[0]))

/* print_line prints one line object. */
static void
print_line(const cli_ctx *ctx, const json_t *l)
{
    if (ctx->json) {
        char *s = json_dumps(l, JSON_COMPACT);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else {
        const json_t *t = json_object_get(l, "line");
        fwrite(json_string_value(t) != NULL ? json_string_value(t) : "", 1, json_string_length(t),
               stdout);
        fputc('\n', stdout);
    }
}

/* pages prints every line from since on, page after page. */
static int
pages(const cli_ctx *ctx, const char *eid, long long since)
{
    for (;;) {
        char path[1200];
        snprintf(path, sizeof(path), "/v1/jobs/%s/logs?since=%lld", eid, since);
        json_t *page = NULL;
        int rc = cli_api_call(ctx, "GET", path, NULL, CLI_CALL_TIMEOUT_MS, &page);
        if (rc != CLI_EXIT_OK)
            return rc;
        const json_t *lines = json_object_get(page, "lines");
        size_t n = json_array_size(lines);
        for (size_t i = 0; i < n; i++)
            print_line(ctx, json_array_get(lines, i));
        since = json_integer_value(json_object_get(page, "next"));
        json_decref(page);
        if (n == 0)
            return CLI_EXIT_OK;
    }
}

/* The event stream as it is parsed. */
typedef struct sse {
    const cli_ctx *ctx;
    char line[1 << 20]; /* the line being read; longer ones are cut */
    size_t len;
    bool cut;
    char event[32];
    char *data; /* owned: the event's data lines */
    size_t data_len;
    int exit; /* -1 until the end event */
} sse;

/* dispatch handles one complete event. */
static void
dispatch(sse *s)
{
    json_error_t je;
    json_t *v = s->data_len > 0 ? jm_json_loadb(s->data, s->data_len, 0, &je) : NULL;
    if (v != NULL && strcmp(s->event, "line") == 0) {
        print_line(s->ctx, v);
        fflush(stdout);
    } else if (v != NULL && strcmp(s->event, "end") == 0) {
        const char *reason = cli_str(v, "reason"), *st = cli_str(v, "status");
        if (strcmp(reason, "finished") == 0) {
            s->exit = strcmp(st, "succeeded") == 0 ? CLI_EXIT_OK : CLI_EXIT_JOB;
        } else {
            fprintf(stderr, "jobmill: the stream ended before the job (%s)\n", reason);
            s->exit = strcmp(reason, "gone") == 0      ? CLI_EXIT_NOT_FOUND
                      : strcmp(reason, "timeout") == 0 ? CLI_EXIT_TIMEOUT
                                                       : CLI_EXIT_UNREACHABLE;
        }
    }
    json_decref(v);
    s->event[0] = '\0';
    s->data_len = 0;
}

/* take_line handles one line of the stream (field: value, or blank). */
static void
take_line(sse *s)
{
    const char *l = s->line;
    size_t n = s->len;
    if (n > 0 && l[n - 1] == '\r')
        n--;
    if (n == 0) {
        if (s->data_len > 0 || s->event[0] != '\0')
            dispatch(s);
        return;
    }
    if (strncmp(l, "event: ", 7) == 0 && n >= 7) {
        snprintf(s->event, sizeof(s->event), "%.*s", (int)(n - 7), l + 7);
    } else if (strncmp(l, "data: ", 6) == 0 && n >= 6 && !s->cut) {
        char *d = realloc(s->data, s->data_len + n - 6 + 1);
        if (d == NULL)
            return;
        s->data = d;
        memcpy(s->data + s->data_len, l + 6, n - 6);
        s->data_len += n - 6;
    }
}

static bool
on_data(void *user, const char *buf, size_t len)
{
    sse *s = user;
    for (size_t i = 0; i < len && s->exit < 0; i++) {
        if (buf[i] == '\n') {
            take_line(s);
            s->len = 0;
            s->cut = false;
        } else if (s->len < sizeof(s->line)) {
            s->line[s->len++] = buf[i];
        } else {
            s->cut = true;
        }
    }
    return s->exit < 0;
}

/* follow streams the lines from since on until the job ends. */
static int
follow(const cli_ctx *ctx, const char *eid, long long since)
{
    /* one plain read first: a missing job, a bad token or a down api is
     * reported the usual way */
    char path[1200];
    snprintf(path, sizeof(path), "/v1/jobs/%s/logs?since=%lld&limit=1", eid, since);
    json_t *page = NULL;
    int rc = cli_api_call(ctx, "GET", path, NULL, CLI_CALL_TIMEOUT_MS, &page);
    if (rc != CLI_EXIT_OK)
        return rc;
    json_decref(page);
    jm_error err;
    jm_error_clear(&err);
    cli_url u;
    if (cli_url_parse(ctx->url, &u, &err) != JM_OK)
        return cli_usage_error("logs", "%s", err.msg);
    char auth[1024];
    const char *hdrs[2] = {NULL, NULL};
    if (ctx->token != NULL && ctx->token[0] != '\0') {
        if (strcspn(ctx->token, "\r\n") != strlen(ctx->token) ||
            (size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctx->token) >=
                sizeof(auth))
            return cli_usage_error("logs", "the token is too long or holds a line break");
        hdrs[0] = auth;
    }
    sse *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "jobmill: out of memory\n");
        return CLI_EXIT_JOB;
    }
    s->ctx = ctx;
    s->exit = -1;
    snprintf(path, sizeof(path), "/v1/jobs/%s/logs?follow=1&since=%lld", eid, since);
    cli_http_resp resp;
    rc = cli_http_stream(&u, path, hdrs, LOGS_IDLE_MS, on_data, s, &resp, &err);
    int exit = s->exit;
    if (rc != JM_OK) {
        fprintf(stderr, "jobmill: unreachable: the stream from %s broke: %s\n", ctx->url, err.msg);
        exit = exit >= 0 ? exit : CLI_EXIT_UNREACHABLE;
    } else if (resp.status != 200) {
        fprintf(stderr, "jobmill: the api answered %d: %.300s\n", resp.status,
                resp.body != NULL ? resp.body : "");
        exit = resp.status == 503 ? CLI_EXIT_UNREACHABLE : CLI_EXIT_JOB;
    } else if (exit < 0) {
        fprintf(stderr, "jobmill: unreachable: the stream ended without an end event\n");
        exit = CLI_EXIT_UNREACHABLE;
    }
    cli_http_resp_free(&resp);
    free(s->data);
    free(s);
    return exit;
}

int
cli_cmd_logs(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, logs_opts, N_LOGS_OPTS, &a, &err) != JM_OK)
        return cli_usage_error("logs", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "logs");
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 1 || a.pos[0][0] == '\0')
        return cli_usage_error("logs", "expected one job ID");
    double since = 0;
    const char *sv = cli_args_get(&a, logs_opts, N_LOGS_OPTS, "since");
    if (sv != NULL && (cli_parse_number(sv, 0, 1e15, &since) != JM_OK || since != (long long)since))
        return cli_usage_error("logs",
                               "--since wants a line number (an integer from 0), not \"%s\"", sv);
    char eid[1024];
    cli_path_escape(a.pos[0], eid, sizeof(eid));
    if (cli_args_get(&a, logs_opts, N_LOGS_OPTS, "follow") != NULL)
        return follow(ctx, eid, (long long)since);
    return pages(ctx, eid, (long long)since);
}
