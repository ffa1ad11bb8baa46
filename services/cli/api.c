/* api.c - one call to jobmill-api: the base URL and bearer token of the
 * context, a JSON body out, a JSON answer back, and the contract's error
 * object ({"error":{"code","message","field"}}) turned into a message on
 * stderr and an exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "jobmill/json.h"

char *
cli_path_escape(const char *s, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 4 < len; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* exit_for maps an HTTP status onto the CLI's exit codes. */
static int
exit_for(int status)
{
    switch (status) {
    case 400: return CLI_EXIT_USAGE;
    case 401:                               /* fall through: no valid token */
    case 403: return CLI_EXIT_UNAUTHORIZED; /* not an admin token */
    case 404: return CLI_EXIT_NOT_FOUND;
    case 503: return CLI_EXIT_UNREACHABLE;
    default: return CLI_EXIT_JOB;
    }
}

int
cli_api_quiet_call(const cli_ctx *ctx, const char *method, const char *path, json_t *body,
                   int timeout_ms, json_t **out, int *status, char *code, size_t code_len,
                   char *msg, size_t msg_len)
{
    *out = NULL;
    *status = 0;
    snprintf(code, code_len, "%s", "");
    snprintf(msg, msg_len, "%s", "");
    jm_error err;
    jm_error_clear(&err);
    cli_url u;
    if (cli_url_parse(ctx->url, &u, &err) != JM_OK) {
        snprintf(code, code_len, "%s", "bad_url");
        snprintf(msg, msg_len, "%s", err.msg);
        return CLI_EXIT_USAGE;
    }
    char auth[1024];
    const char *hdrs[2] = {NULL, NULL};
    if (ctx->token != NULL && ctx->token[0] != '\0') {
        if (strcspn(ctx->token, "\r\n") != strlen(ctx->token) ||
            (size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctx->token) >=
                sizeof(auth)) {
            snprintf(code, code_len, "%s", "bad_token");
            snprintf(msg, msg_len, "%s", "the token is too long or holds a line break");
            return CLI_EXIT_USAGE;
        }
        hdrs[0] = auth;
    }
    char *text = NULL;
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
        snprintf(code, code_len, "%s", "internal");
        snprintf(msg, msg_len, "%s", "out of memory");
        return CLI_EXIT_JOB;
    }
    cli_http_resp resp;
    int rc = cli_http_request(&u, method, path, text, text != NULL ? strlen(text) : 0, hdrs,
                              timeout_ms, &resp, &err);
    free(text);
    if (rc != JM_OK) {
        snprintf(code, code_len, "%s", "unreachable");
        snprintf(msg, msg_len, "cannot reach the api at %s: %s", ctx->url, err.msg);
        return CLI_EXIT_UNREACHABLE;
    }
    *status = resp.status;
    json_error_t jerr;
    json_t *v = resp.len > 0 ? jm_json_loadb(resp.body, resp.len, 0, &jerr) : NULL;
    if (resp.status >= 200 && resp.status < 300) {
        if (v == NULL) {
            snprintf(code, code_len, "%s", "bad_answer");
            snprintf(msg, msg_len, "the api answered %d with a body that is not JSON", resp.status);
            cli_http_resp_free(&resp);
            return CLI_EXIT_JOB;
        }
        cli_http_resp_free(&resp);
        *out = v;
        return CLI_EXIT_OK;
    }
    json_t *e = json_object_get(v, "error");
    if (json_is_object(e)) {
        snprintf(code, code_len, "%s", cli_str(e, "code"));
        const char *field = cli_str(e, "field");
        if (field[0] != '\0')
            snprintf(msg, msg_len, "%s (field %s)", cli_str(e, "message"), field);
        else
            snprintf(msg, msg_len, "%s", cli_str(e, "message"));
    } else {
        snprintf(code, code_len, "http_%d", resp.status);
        snprintf(msg, msg_len, "the api answered %d: %.200s", resp.status, resp.body);
    }
    json_decref(v);
    cli_http_resp_free(&resp);
    return exit_for(*status);
}

int
cli_api_call(const cli_ctx *ctx, const char *method, const char *path, json_t *body, int timeout_ms,
             json_t **out)
{
    int status;
    char code[64], msg[600];
    int rc = cli_api_quiet_call(ctx, method, path, body, timeout_ms, out, &status, code,
                                sizeof(code), msg, sizeof(msg));
    if (rc != CLI_EXIT_OK) {
        fprintf(stderr, "jobmill: %s: %s\n", code, msg);
        if (rc == CLI_EXIT_UNAUTHORIZED)
            fprintf(stderr, "jobmill: give a token with --token or JOBMILL_TOKEN\n");
    }
    return rc;
}
