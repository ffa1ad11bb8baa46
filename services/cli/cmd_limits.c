/* cmd_limits.c - jobmill limits QUEUE: show or change a queue's operator
 * limits (PUT /v1/queues/{queue}/limits; docs/limits.md).
 *
 *   --rate N/S          at most N jobs start per S seconds
 *   --concurrency C     at most C running at once across every worker
 *   --no-rate, --no-concurrency   clear one
 *   --type-concurrency TYPE=C     at most C of job type TYPE running at once
 *   --no-type-concurrency TYPE    clear that type's cap
 * Without any of them it shows the limits (from GET /v1/queues).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_opt limits_opts[] = {
    {"rate", true},
    {"concurrency", true},
    {"no-rate", false},
    {"no-concurrency", false},
    {"type-concurrency", true},
    {"no-type-concurrency", true},
};
#define N_LIMITS (sizeof(limits_opts) / sizeof(limits_opts[0]))

/* rate_body parses "N/S" into {"n": N, "per_s": S}; NULL when malformed. */
static json_t *
rate_body(const char *spec)
{
    const char *slash = strchr(spec, '/');
    char n_text[32];
    if (slash == NULL || (size_t)(slash - spec) >= sizeof(n_text))
        return NULL;
    memcpy(n_text, spec, (size_t)(slash - spec));
    n_text[slash - spec] = '\0';
    double n, s;
    if (cli_parse_number(n_text, 1, 1000000, &n) != JM_OK || n != (double)(long)n ||
        cli_parse_number(slash + 1, 0.001, 86400, &s) != JM_OK)
        return NULL;
    return json_pack("{s:I, s:f}", "n", (json_int_t)n, "per_s", s);
}

/* print_limits shows a queue object's limits. */
static void
print_limits(const json_t *q)
{
    const json_t *l = json_object_get(q, "limits");
    const json_t *rate = json_object_get(l, "rate"), *conc = json_object_get(l, "concurrency");
    printf("queue %s\n", cli_str(q, "name"));
    if (json_is_object(rate))
        printf("  rate         %lld per %g s (%lld tokens now)\n",
               (long long)json_integer_value(json_object_get(rate, "n")),
               json_number_value(json_object_get(rate, "per_s")),
               (long long)json_integer_value(json_object_get(rate, "tokens")));
    else
        printf("  rate         none\n");
    if (json_is_integer(conc))
        printf("  concurrency  %lld (running %lld)\n", (long long)json_integer_value(conc),
               (long long)json_integer_value(json_object_get(q, "running")));
    else
        printf("  concurrency  none\n");
    const char *type;
    const json_t *t;
    json_object_foreach((json_t *)json_object_get(l, "types"), type, t)
    {
        printf("  type %s  %lld (running %lld)\n", type,
               (long long)json_integer_value(json_object_get(t, "concurrency")),
               (long long)json_integer_value(json_object_get(t, "running")));
    }
}

/* type_body adds "types": {TYPE: {"concurrency": C}} (set "TYPE=C") or
 * {TYPE: null} (clear "TYPE") to body; JM_ERR_INVALID when malformed. */
static int
type_body(json_t *body, const char *set, const char *clear)
{
    json_t *types = json_object();
    json_object_set_new(body, "types", types);
    if (clear != NULL)
        json_object_set_new(types, clear, json_null());
    if (set == NULL)
        return JM_OK;
    const char *eq = strrchr(set, '=');
    double c;
    char type[256];
    if (eq == NULL || eq == set || (size_t)(eq - set) >= sizeof(type) ||
        cli_parse_number(eq + 1, 1, 1000000, &c) != JM_OK || c != (double)(long)c)
        return JM_ERR_INVALID;
    memcpy(type, set, (size_t)(eq - set));
    type[eq - set] = '\0';
    json_object_set_new(types, type, json_pack("{s:I}", "concurrency", (json_int_t)c));
    return JM_OK;
}

/* show finds queue in GET /v1/queues. */
static int
show(cli_ctx *ctx, const char *queue)
{
    json_t *all = NULL;
    int rc = cli_api_call(ctx, "GET", "/v1/queues", NULL, CLI_CALL_TIMEOUT_MS, &all);
    if (rc != CLI_EXIT_OK)
        return rc;
    const json_t *qs = json_object_get(all, "queues"), *q = NULL, *it;
    size_t i;
    json_array_foreach(qs, i, it)
    {
        if (strcmp(cli_str(it, "name"), queue) == 0)
            q = it;
    }
    if (q == NULL) {
        json_decref(all);
        fprintf(stderr, "jobmill: queue %s not found\n", queue);
        return CLI_EXIT_NOT_FOUND;
    }
    if (ctx->json)
        cli_print_json(stdout, q);
    else
        print_limits(q);
    json_decref(all);
    return CLI_EXIT_OK;
}

int
cli_cmd_limits(cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    jm_error err;
    if (cli_args_parse(ctx, argc - 1, argv + 1, limits_opts, N_LIMITS, &a, &err) != JM_OK)
        return cli_usage_error(argv[0], "%s", err.msg);
    if (a.help) {
        cli_usage(stdout, argv[0]);
        return CLI_EXIT_OK;
    }
    if (a.n_pos != 1)
        return cli_usage_error(argv[0], "expected one QUEUE");
    const char *rate = cli_args_get(&a, limits_opts, N_LIMITS, "rate");
    const char *conc = cli_args_get(&a, limits_opts, N_LIMITS, "concurrency");
    bool no_rate = cli_args_get(&a, limits_opts, N_LIMITS, "no-rate") != NULL;
    bool no_conc = cli_args_get(&a, limits_opts, N_LIMITS, "no-concurrency") != NULL;
    const char *tset = cli_args_get(&a, limits_opts, N_LIMITS, "type-concurrency");
    const char *tclear = cli_args_get(&a, limits_opts, N_LIMITS, "no-type-concurrency");
    if ((rate && no_rate) || (conc && no_conc))
        return cli_usage_error(argv[0], "a limit cannot be set and cleared at once");
    if (!rate && !conc && !no_rate && !no_conc && !tset && !tclear)
        return show(ctx, a.pos[0]);
    json_t *body = json_object();
    if ((tset || tclear) && type_body(body, tset, tclear) != JM_OK) {
        json_decref(body);
        return cli_usage_error(argv[0], "--type-concurrency takes TYPE=C, C from 1 to 1000000");
    }
    if (rate != NULL) {
        json_t *r = rate_body(rate);
        if (r == NULL) {
            json_decref(body);
            return cli_usage_error(argv[0], "--rate takes N/S: N jobs (1-1000000) per S seconds");
        }
        json_object_set_new(body, "rate", r);
    } else if (no_rate) {
        json_object_set_new(body, "rate", json_null());
    }
    if (conc != NULL) {
        double c;
        if (cli_parse_number(conc, 1, 1000000, &c) != JM_OK || c != (double)(long)c) {
            json_decref(body);
            return cli_usage_error(argv[0], "--concurrency takes a whole number from 1 to 1000000");
        }
        json_object_set_new(body, "concurrency", json_integer((json_int_t)c));
    } else if (no_conc) {
        json_object_set_new(body, "concurrency", json_null());
    }
    char eq[256 * 3 + 1], path[1024];
    snprintf(path, sizeof(path), "/v1/queues/%s/limits", cli_path_escape(a.pos[0], eq, sizeof(eq)));
    json_t *q = NULL;
    int rc = cli_api_call(ctx, "PUT", path, body, CLI_CALL_TIMEOUT_MS, &q);
    json_decref(body);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(stdout, q);
    else
        print_limits(q);
    json_decref(q);
    return CLI_EXIT_OK;
}
