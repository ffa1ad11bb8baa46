/* main.c - jobmill, the command line of jobmill: the global options
 * (--url / JOBMILL_URL, --token / JOBMILL_TOKEN, --json), the command
 * table, and every help text (docs/cli.md is the manual page). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

typedef struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *synopsis; /* after "jobmill NAME" */
    const char *summary;  /* one line for the overview */
    const char *help;     /* the options and details */
} cli_command;

static const cli_command commands[] = {
    {"submit", cli_cmd_submit, "TYPE [PAYLOAD] [options]", "submit a job (prints its id)",
     "PAYLOAD is JSON text, @FILE (JSON read from FILE) or - (JSON read from stdin);\n"
     "absent means null.\n"
     "  --queue Q              the queue (default: default)\n"
     "  --delay S              run no earlier than S seconds from now\n"
     "  --max-attempts N       attempts before the job fails for good (default 3)\n"
     "  --idempotency-key K    a repeated key returns the first job, stores nothing\n"
     "  --wait                 wait for the job to end: print its result and exit with\n"
     "                         its outcome (0 succeeded; 1 failed, canceled, expired)\n"},
    {"get", cli_cmd_get, "ID", "show a job",
     "Prints every field of the job (--json: the job object).\n"},
    {"wait", cli_cmd_wait, "ID [--timeout S]", "wait until a job ends; print its result",
     "Exits 0 when the job succeeded, 1 when it failed, was canceled or expired,\n"
     "6 when --timeout S seconds passed first (no --timeout: wait as long as it takes).\n"},
    {"logs", cli_cmd_logs, "ID [--since N] [--follow]", "print a job's log lines",
     "The lines of the job's log (an exec handler's stderr, an HTTP worker's\n"
     "POST /logs), one a line (--json: {\"n\",\"ts\",\"line\"} a line).\n"
     "  --since N   start at line number N (default 0)\n"
     "  --follow    stream new lines until the job ends; exit 0 when it succeeded,\n"
     "              1 when it failed, was canceled or expired\n"},
    {"cancel", cli_cmd_cancel, "ID", "cancel a job",
     "A queued or scheduled job is canceled at once; a running one is asked to stop\n"
     "(cancel requested) and stops within a heartbeat.\n"},
    {"retry", cli_cmd_retry, "ID", "retry a failed, canceled or expired job",
     "The job is queued again with its attempts reset.\n"},
    {"ls", cli_cmd_ls, "QUEUE --state S [--limit N]", "list a queue's jobs in one state",
     "  --state S   queued, scheduled, running, succeeded, failed, canceled or expired\n"
     "  --limit N   at most N jobs (default: all; pages are followed)\n"},
    {"queues", cli_cmd_queues, "[--watch [--interval S] [--count N]]",
     "a table of every queue's jobs per state",
     "  --watch        refresh in place, with succeeded and failed jobs per second\n"
     "                 (--json: one line of JSON per refresh, with \"rates\")\n"
     "  --interval S   seconds between refreshes (default 2)\n"
     "  --count N      stop after N refreshes (default: until Ctrl-C)\n"},
    {"workers", cli_cmd_workers, "", "the live workers: queues, busy slots, heartbeat age", ""},
    {"pause", cli_cmd_pause, "QUEUE", "stop workers claiming from a queue",
     "A paused queue still accepts jobs.\n"},
    {"resume", cli_cmd_resume, "QUEUE", "let workers claim from a queue again", ""},
    {"limits", cli_cmd_limits,
     "QUEUE [--rate N/S] [--concurrency C] [--type-concurrency TYPE=C] [--no-rate]\n"
     "       [--no-concurrency] [--no-type-concurrency TYPE]",
     "show or set a queue's rate limit and concurrency cap",
     "Without options it shows the limits and how close the queue is to them.\n"
     "  --rate N/S          at most N jobs start per S seconds (a token bucket: bursts\n"
     "                      up to N)\n"
     "  --concurrency C     at most C jobs run at once across every worker\n"
     "  --type-concurrency TYPE=C   at most C jobs of job type TYPE run at once\n"
     "  --no-rate, --no-concurrency, --no-type-concurrency TYPE   clear that limit\n"},
    {"schedules", cli_cmd_schedules, "[NAME] [--pause | --resume | --delete]",
     "list the cron schedules; pause, resume or delete one",
     "Without options: every schedule (or NAME's) with its next and last run and last\n"
     "job. Create schedules with POST /v1/schedules or the janitor's YAML config\n"
     "(docs/schedules.md).\n"
     "  --pause, --resume   stop or restart NAME's ticks (paused ticks never fire)\n"
     "  --delete            remove NAME (the jobs it enqueued stay)\n"},
    {"retry-failed", cli_cmd_retry_failed, "QUEUE [--yes]", "retry every failed job of a queue",
     "Without --yes it only counts the failed jobs, changes nothing and exits 2.\n"
     "  --yes   retry them all (jobs that changed meanwhile are skipped)\n"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
    "Global options (anywhere on the line):\n"
    "  --url URL       the api (env JOBMILL_URL; default " CLI_DEFAULT_URL ")\n"
    "  --token TOKEN   bearer token (env JOBMILL_TOKEN)\n"
    "  --json          machine-readable JSON output\n"
    "  --help, -h      help (jobmill CMD --help: one command's)\n"
    "  --version       print the version\n"
    "\n"
    "Exit codes: 0 ok, 1 the job ended failed/canceled/expired (or the api refused\n"
    "the operation, e.g. 409 invalid_state), 2 usage or invalid input, 3 not found,\n"
    "4 api unreachable or unavailable, 5 unauthorized, 6 wait timed out.\n";

static const cli_command *
find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void
cli_usage(FILE *out, const char *name)
{
    const cli_command *c = name != NULL ? find_command(name) : NULL;
    if (c != NULL) {
        fprintf(out, "usage: jobmill %s %s\n\n%s.\n", c->name, c->synopsis, c->summary);
        if (c->help[0] != '\0')
            fprintf(out, "\n%s", c->help);
        fprintf(out, "\n%s", global_help);
        return;
    }
    fprintf(out, "usage: jobmill [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]\n\n"
                 "The command line of jobmill: talks to jobmill-api over HTTP.\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n%s", global_help);
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "jobmill%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'jobmill %s%s--help'.\n", cmd != NULL ? cmd : "",
            cmd != NULL ? " " : "");
    return CLI_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    cli_ctx ctx = {.url = getenv("JOBMILL_URL"), .token = getenv("JOBMILL_TOKEN")};
    if (ctx.url == NULL || ctx.url[0] == '\0')
        ctx.url = CLI_DEFAULT_URL;
    /* global options before the command */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(stdout, NULL);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("jobmill %s\n", JM_VERSION);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            ctx.json = true;
        } else if (strcmp(a, "--url") == 0 || strcmp(a, "--token") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(NULL, "%s needs a value", a);
            *(strcmp(a, "--url") == 0 ? &ctx.url : &ctx.token) = argv[++i];
        } else if (strncmp(a, "--url=", 6) == 0) {
            ctx.url = a + 6;
        } else if (strncmp(a, "--token=", 8) == 0) {
            ctx.token = a + 8;
        } else {
            return cli_usage_error(NULL, "unknown option %s", a);
        }
    }
    if (i >= argc) {
        cli_usage(stderr, NULL);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc && find_command(argv[i + 1]) == NULL)
            return cli_usage_error(NULL, "unknown command \"%s\"", argv[i + 1]);
        cli_usage(stdout, i + 1 < argc ? argv[i + 1] : NULL);
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(argv[i]);
    if (c == NULL)
        return cli_usage_error(NULL, "unknown command \"%s\"", argv[i]);
    int rc = c->fn(&ctx, argc - i, argv + i);
    fflush(stdout);
    return rc;
}
