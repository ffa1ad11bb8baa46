/* args.c - one option parser for every command: the command's own options
 * (a small table) mixed freely with the global ones (--url, --token,
 * --json, --help), in "--name value" or "--name=value" form. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* global_opt handles the global options; returns 1 when name was one (and
 * *used_next tells whether it consumed next), 0 when not, or JM_ERR_INVALID
 * when its value is missing. */
static int
global_opt(cli_ctx *ctx, const char *name, const char *inline_val, const char *next,
           bool *used_next, cli_args *out, jm_error *err)
{
    *used_next = false;
    if (strcmp(name, "json") == 0) {
        ctx->json = true;
        return 1;
    }
    if (strcmp(name, "help") == 0) {
        out->help = true;
        return 1;
    }
    const char **dst = strcmp(name, "url") == 0     ? &ctx->url
                       : strcmp(name, "token") == 0 ? &ctx->token
                                                    : NULL;
    if (dst == NULL)
        return 0;
    if (inline_val == NULL) {
        if (next == NULL)
            return jm_error_set(err, JM_ERR_INVALID, name, "--%s needs a value", name);
        inline_val = next;
        *used_next = true;
    }
    *dst = inline_val;
    return 1;
}

int
cli_args_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, size_t n_opts,
               cli_args *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    JM_ASSERT(n_opts <= CLI_MAX_ARGS);
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (out->n_pos >= CLI_MAX_ARGS)
                return jm_error_set(err, JM_ERR_INVALID, NULL, "too many arguments");
            out->pos[out->n_pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0) {
            out->help = true;
            continue;
        }
        if (a[1] != '-')
            return jm_error_set(err, JM_ERR_INVALID, a, "unknown option %s", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (nl == 0 || nl >= sizeof(name))
            return jm_error_set(err, JM_ERR_INVALID, a, "unknown option %s", a);
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        const char *inline_val = eq != NULL ? eq + 1 : NULL;
        bool used_next;
        int g = global_opt(ctx, name, inline_val, next, &used_next, out, err);
        if (g < 0)
            return g;
        if (g == 1) {
            if (used_next)
                i++;
            continue;
        }
        size_t k = 0;
        while (k < n_opts && strcmp(opts[k].name, name) != 0)
            k++;
        if (k == n_opts)
            return jm_error_set(err, JM_ERR_INVALID, name, "unknown option --%s", name);
        if (!opts[k].takes_value) {
            if (inline_val != NULL)
                return jm_error_set(err, JM_ERR_INVALID, name, "--%s takes no value", name);
            out->val[k] = "";
            continue;
        }
        if (inline_val == NULL) {
            if (next == NULL)
                return jm_error_set(err, JM_ERR_INVALID, name, "--%s needs a value", name);
            inline_val = next;
            i++;
        }
        out->val[k] = inline_val;
    }
    return JM_OK;
}

const char *
cli_args_get(const cli_args *a, const cli_opt *opts, size_t n_opts, const char *name)
{
    for (size_t k = 0; k < n_opts; k++)
        if (strcmp(opts[k].name, name) == 0)
            return a->val[k];
    JM_ASSERT(!"cli_args_get: option not in the table");
    return NULL;
}

int
cli_parse_number(const char *s, double min, double max, double *out)
{
    if (s == NULL || *s == '\0')
        return JM_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return JM_ERR_INVALID;
    *out = v;
    return JM_OK;
}
