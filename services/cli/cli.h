/* cli.h - the jobmill command line: shared types and the prototypes of its
 * files. The CLI talks to jobmill-api over HTTP only (so it works through a
 * port-forward); it links libshared for jansson's nesting-safe loaders and
 * the error convention, never for Redis.
 *
 * Files, in reading order: main.c (global options, the command table,
 * help) → args.c (one option parser for every command) → http.c (a minimal
 * HTTP/1.1 client over a plain socket) → api.c (one API call: URL, token,
 * JSON, the contract's error object mapped onto exit codes) → table.c
 * (aligned human tables) → format.c (times, JSON values as one line) →
 * cmd_jobs.c (submit, get, wait, cancel, retry) → cmd_logs.c (a job's log
 * lines, --follow) → cmd_queues.c (queues, --watch, pause, resume, ls,
 * retry-failed) → cmd_workers.c (workers).
 *
 * Error convention: every command returns a process exit code (CLI_EXIT_*)
 * after printing what went wrong on stderr; library-style helpers return
 * JM_OK or a jm_err with a jm_error (see jobmill/err.h).
 */
#ifndef JOBMILL_CLI_H
#define JOBMILL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include "jobmill/err.h"

/* Exit codes (docs/cli.md; 0-5 are the contract's). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_JOB = 1,          /* the job ended failed/canceled/expired, or the api refused */
    CLI_EXIT_USAGE = 2,        /* bad command line or input (also a 400 from the api) */
    CLI_EXIT_NOT_FOUND = 3,    /* no such job or queue */
    CLI_EXIT_UNREACHABLE = 4,  /* the api cannot be reached or is unavailable (503) */
    CLI_EXIT_UNAUTHORIZED = 5, /* the api answered 401 */
    CLI_EXIT_TIMEOUT = 6,      /* wait --timeout passed before the job ended */
};

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* The global options, filled by main.c; strings borrowed from argv/environ. */
typedef struct cli_ctx {
    const char *url;   /* base URL, "http://host:port[/prefix]" */
    const char *token; /* bearer token or NULL */
    bool json;         /* --json: machine output */
} cli_ctx;

/* ---- args.c: option parsing ---- */

/* One option a command takes: "--name VALUE" or "--name=VALUE" when
 * takes_value, else a flag. */
typedef struct cli_opt {
    const char *name; /* without the dashes */
    bool takes_value;
} cli_opt;

#define CLI_MAX_ARGS 16

/* What cli_args_parse found. Values are borrowed from argv. */
typedef struct cli_args {
    const char *pos[CLI_MAX_ARGS]; /* positional arguments in order */
    int n_pos;
    const char *val[CLI_MAX_ARGS]; /* per opts[i]: the value, "" for a set flag, NULL absent */
    bool help;                     /* --help / -h was given */
} cli_args;

/* cli_args_parse reads argv[0..argc) against opts (n_opts <= CLI_MAX_ARGS)
 * plus the global options (--url, --token, --json, --help), which it
 * stores into ctx. Options and positionals may mix; "--" ends options; "-"
 * is a positional. JM_OK, or JM_ERR_INVALID with err naming the problem. */
int cli_args_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts, size_t n_opts,
                   cli_args *out, jm_error *err);
/* cli_args_get returns the value of option name (NULL when absent). */
const char *cli_args_get(const cli_args *a, const cli_opt *opts, size_t n_opts, const char *name);
/* cli_parse_number parses a finite decimal number in [min, max]. */
int cli_parse_number(const char *s, double min, double max, double *out);

/* ---- http.c: a minimal HTTP/1.1 client ---- */

/* A parsed "http://host[:port][/prefix]" URL. */
typedef struct cli_url {
    char host[256];
    char port[8];
    char prefix[256]; /* "" or "/something" without a trailing slash */
} cli_url;

/* A response: status and the body (owned, NUL-terminated). */
typedef struct cli_http_resp {
    int status;
    char *body;
    size_t len;
} cli_http_resp;

/* cli_url_parse parses url. JM_OK or JM_ERR_INVALID (https is refused:
 * put a TLS-terminating proxy or a port-forward in front). */
int cli_url_parse(const char *url, cli_url *out, jm_error *err);
/* cli_http_request sends one request (Connection: close) and reads the
 * whole answer within timeout_ms. hdrs is NULL or a NULL-terminated list of
 * "Name: value" lines. JM_OK with *resp filled (free with
 * cli_http_resp_free), JM_ERR_IO when the api cannot be reached or the
 * exchange failed, JM_ERR_REPLY when the answer is not HTTP. */
int cli_http_request(const cli_url *u, const char *method, const char *path, const char *body,
                     size_t body_len, const char *const *hdrs, int timeout_ms, cli_http_resp *resp,
                     jm_error *err);
void cli_http_resp_free(cli_http_resp *resp);
/* cli_http_stream sends GET path (Accept: text/event-stream) and, on a 200
 * answer, hands each piece of the body to on_data as it arrives, until the
 * api closes the connection or on_data returns false; idle_ms bounds every
 * wait (connect, send, each piece). Any other status is read whole into
 * *resp (free it with cli_http_resp_free) and on_data is not called. JM_OK
 * (resp->status says which), JM_ERR_IO or JM_ERR_REPLY as for
 * cli_http_request. */
int cli_http_stream(const cli_url *u, const char *path, const char *const *hdrs, int idle_ms,
                    bool (*on_data)(void *user, const char *buf, size_t len), void *user,
                    cli_http_resp *resp, jm_error *err);

/* ---- api.c: one API call ---- */

/* cli_api_call sends method path (path starts with "/", query included)
 * with body (borrowed; NULL sends no body) to ctx's api. On a 2xx answer it
 * stores the parsed JSON (a new reference) in *out and returns
 * CLI_EXIT_OK. Otherwise it prints the problem on stderr ("jobmill: CODE:
 * message") and returns the exit code: 400 → USAGE, 401 → UNAUTHORIZED,
 * 404 → NOT_FOUND, 503 or no answer → UNREACHABLE, anything else → JOB.
 * timeout_ms bounds the whole exchange. */
int cli_api_call(const cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 int timeout_ms, json_t **out);
/* cli_api_quiet_call is cli_api_call that prints nothing and also hands back
 * the status (0 when no answer) and the error code string ("" if none) for
 * callers that handle some failures themselves (retry-failed). */
int cli_api_quiet_call(const cli_ctx *ctx, const char *method, const char *path, json_t *body,
                       int timeout_ms, json_t **out, int *status, char *code, size_t code_len,
                       char *msg, size_t msg_len);
/* cli_path_escape percent-encodes one path segment or query value into buf
 * (unreserved characters kept). Returns buf. */
char *cli_path_escape(const char *s, char *buf, size_t len);

/* The default timeout of one call that does not long-poll. */
#define CLI_CALL_TIMEOUT_MS 30000

/* ---- table.c: aligned human tables ---- */

typedef struct cli_table cli_table;
/* cli_table_new makes a table with n_cols columns named by headers
 * (borrowed). NULL on out of memory. */
cli_table *cli_table_new(size_t n_cols, const char *const *headers);
/* cli_table_add appends a row of n_cols cells (copied; NULL prints "-").
 * JM_OK or JM_ERR_NOMEM. */
int cli_table_add(cli_table *t, const char *const *cells);
/* cli_table_print writes the header and the rows, columns padded to their
 * widest cell (counted in UTF-8 characters), two spaces apart. */
void cli_table_print(const cli_table *t, FILE *out);
void cli_table_free(cli_table *t);

/* ---- format.c: values for humans ---- */

/* cli_fmt_time writes epoch seconds v (a JSON number or null) as
 * "2026-11-30T16:01:44Z", or "-" for null. Returns buf. */
char *cli_fmt_time(const json_t *v, char *buf, size_t len);
/* cli_fmt_value writes any JSON value on one line: strings bare, null as
 * "-", others compact JSON; cut to len-1 bytes (on a UTF-8 boundary) with
 * "..." when longer than max_chars (0 = no cut). Returns buf. */
char *cli_fmt_value(const json_t *v, size_t max_chars, char *buf, size_t len);
/* cli_print_json writes v as indented JSON plus a newline to out. */
void cli_print_json(FILE *out, const json_t *v);
/* cli_str returns the string member key of o, or "" when absent. */
const char *cli_str(const json_t *o, const char *key);
/* cli_int returns the integer member key of o, or 0. */
long long cli_int(const json_t *o, const char *key);

/* ---- commands (cmd_jobs.c, cmd_queues.c, cmd_workers.c) ---- */

/* A command: argv[0] is its name; returns the exit code. */
typedef int (*cli_cmd_fn)(cli_ctx *ctx, int argc, char **argv);

int cli_cmd_submit(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_get(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_wait(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cancel(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_retry(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ls(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_queues(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pause(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_resume(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_retry_failed(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_workers(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_schedules(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_limits(cli_ctx *ctx, int argc, char **argv); /* cmd_limits.c */
int cli_cmd_logs(cli_ctx *ctx, int argc, char **argv);   /* cmd_logs.c */

/* main.c: cli_usage prints the help of command name (NULL: the overview)
 * to out. cli_usage_error prints "jobmill CMD: message" and a hint and
 * returns CLI_EXIT_USAGE. */
void cli_usage(FILE *out, const char *name);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_job_exit maps a job's status to the exit code: succeeded (or not yet
 * terminal) → OK, failed/canceled/expired → JOB. */
int cli_job_exit(const json_t *job);
/* cli_wait_job long-polls job id until it is terminal or timeout_s passes
 * (< 0: no limit). CLI_EXIT_OK with *out the last job read (new reference),
 * CLI_EXIT_TIMEOUT with *out the job as it is, or an api exit code. */
int cli_wait_job(const cli_ctx *ctx, const char *id, double timeout_s, json_t **out);

#endif
