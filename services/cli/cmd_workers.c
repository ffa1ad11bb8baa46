/* cmd_workers.c - workers: the live workers, their queues, busy slots and
 * heartbeat age. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

int
cli_cmd_workers(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, NULL, 0, &a, &err) != JM_OK)
        return cli_usage_error("workers", "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, "workers");
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 0)
        return cli_usage_error("workers", "takes no arguments");
    json_t *list = NULL;
    int rc = cli_api_call(ctx, "GET", "/v1/workers", NULL, CLI_CALL_TIMEOUT_MS, &list);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        cli_print_json(stdout, list);
        json_decref(list);
        return CLI_EXIT_OK;
    }
    static const char *const headers[] = {"ID",   "HOST",    "PID",      "QUEUES",
                                          "BUSY", "STARTED", "HEARTBEAT"};
    cli_table *t = cli_table_new(7, headers);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(list, "workers"), i, w)
    {
        char pid[24], busy[48], started[40], beat[32], queues[512];
        snprintf(pid, sizeof(pid), "%lld", cli_int(w, "pid"));
        snprintf(busy, sizeof(busy), "%lld/%lld", cli_int(w, "busy"), cli_int(w, "concurrency"));
        snprintf(beat, sizeof(beat), "%.1fs ago", (double)cli_int(w, "heartbeat_age_ms") / 1000.0);
        queues[0] = '\0';
        size_t k;
        json_t *q;
        json_array_foreach(json_object_get(w, "queues"), k, q)
        {
            size_t used = strlen(queues);
            snprintf(queues + used, sizeof(queues) - used, "%s%s", k > 0 ? "," : "",
                     json_string_value(q) != NULL ? json_string_value(q) : "?");
        }
        const char *cells[] = {
            cli_str(w, "id"),
            cli_str(w, "host"),
            pid,
            queues,
            busy,
            cli_fmt_time(json_object_get(w, "started_at"), started, sizeof(started)),
            beat};
        if (t != NULL)
            cli_table_add(t, cells);
    }
    if (t != NULL)
        cli_table_print(t, stdout);
    cli_table_free(t);
    json_decref(list);
    return CLI_EXIT_OK;
}
