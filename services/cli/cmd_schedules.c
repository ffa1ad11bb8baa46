/* cmd_schedules.c - jobmill schedules [NAME] [--pause|--resume|--delete]:
 * the cron schedules (GET /v1/schedules; docs/schedules.md) as a table, one
 * of them, or pause, resume or delete one. Schedules are created with
 * POST /v1/schedules or in the janitor's YAML config. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_opt sched_opts[] = {
    {"pause", false},
    {"resume", false},
    {"delete", false},
};
#define N_SCHED (sizeof(sched_opts) / sizeof(sched_opts[0]))

static void
print_table(const json_t *list)
{
    static const char *const headers[] = {"NAME",     "CRON",     "TZ",       "QUEUE/TYPE",
                                          "NEXT RUN", "LAST RUN", "LAST JOB", "STATE"};
    cli_table *t = cli_table_new(8, headers);
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const json_t *job = json_object_get(s, "job");
        const char *q = json_string_value(json_object_get(job, "queue"));
        char qt[320], next[40], last[40], state[32];
        snprintf(qt, sizeof(qt), "%s/%s", q != NULL ? q : "default", cli_str(job, "type"));
        snprintf(state, sizeof(state), "%s%s",
                 json_is_true(json_object_get(s, "paused")) ? "paused" : "active",
                 strcmp(cli_str(s, "source"), "yaml") == 0 ? " (yaml)" : "");
        const char *lj = json_string_value(json_object_get(s, "last_job"));
        const char *cells[] = {cli_str(s, "name"),
                               cli_str(s, "cron"),
                               cli_str(s, "tz"),
                               qt,
                               cli_fmt_time(json_object_get(s, "next_run"), next, sizeof(next)),
                               cli_fmt_time(json_object_get(s, "last_run"), last, sizeof(last)),
                               lj != NULL ? lj : "-",
                               state};
        if (t != NULL)
            cli_table_add(t, cells);
    }
    if (t != NULL)
        cli_table_print(t, stdout);
    cli_table_free(t);
}

/* list prints every schedule, or only name's (exit 3 when it is absent). */
static int
list(cli_ctx *ctx, const char *name)
{
    json_t *resp = NULL;
    int rc = cli_api_call(ctx, "GET", "/v1/schedules", NULL, CLI_CALL_TIMEOUT_MS, &resp);
    if (rc != CLI_EXIT_OK)
        return rc;
    json_t *all = json_object_get(resp, "schedules"), *shown = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s)
    {
        if (name == NULL || strcmp(cli_str(s, "name"), name) == 0)
            json_array_append(shown, s);
    }
    rc = CLI_EXIT_OK;
    if (name != NULL && json_array_size(shown) == 0) {
        fprintf(stderr, "jobmill: not_found: no schedule %s\n", name);
        rc = CLI_EXIT_NOT_FOUND;
    } else if (ctx->json) {
        json_t *out =
            name != NULL ? json_array_get(shown, 0) : json_pack("{s:O}", "schedules", shown);
        cli_print_json(stdout, out);
        if (name == NULL)
            json_decref(out);
    } else {
        print_table(shown);
    }
    json_decref(shown);
    json_decref(resp);
    return rc;
}

int
cli_cmd_schedules(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, sched_opts, N_SCHED, &a, &err) != JM_OK)
        return cli_usage_error("schedules", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "schedules");
        return CLI_EXIT_OK;
    }
    const char *op = NULL;
    int ops = 0;
    for (size_t i = 0; i < N_SCHED; i++)
        if (a.val[i] != NULL)
            op = sched_opts[i].name, ops++;
    if (a.n_pos > 1 || ops > 1 || (ops == 1 && a.n_pos != 1))
        return cli_usage_error("schedules", "expected [NAME] and at most one of --pause, "
                                            "--resume, --delete with a NAME");
    if (op == NULL)
        return list(ctx, a.n_pos == 1 ? a.pos[0] : NULL);
    char en[256 * 3 + 1], path[1024];
    cli_path_escape(a.pos[0], en, sizeof(en));
    bool del = strcmp(op, "delete") == 0;
    if (del)
        snprintf(path, sizeof(path), "/v1/schedules/%s", en);
    else
        snprintf(path, sizeof(path), "/v1/schedules/%s/%s", en, op);
    json_t *s = NULL;
    int rc = cli_api_call(ctx, del ? "DELETE" : "POST", path, NULL, CLI_CALL_TIMEOUT_MS, &s);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(stdout, s);
    else
        printf("schedule %s %s\n", a.pos[0],
               del                        ? "deleted"
               : strcmp(op, "pause") == 0 ? "paused"
                                          : "resumed");
    json_decref(s);
    return CLI_EXIT_OK;
}
