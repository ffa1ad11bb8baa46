/* config.h - every setting of every service, from one table.
 *
 * Precedence: built-in defaults < YAML file (--config FILE) < environment <
 * flags. Every setting has the three forms of docs/configuration.md: env
 * JOBMILL_FOO_BAR (REDIS_URL for redis.url), YAML section.foo_bar, flag
 * --foo-bar. The table in config.c is the single source of names, types,
 * defaults and bounds; --help is printed from it.
 *
 * Ownership: a jm_config is filled by jm_config_load and owns every string
 * and array in it; release with jm_config_free. After loading, treat it as
 * read-only (services share it across threads without locks).
 */
#ifndef JOBMILL_CONFIG_H
#define JOBMILL_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include "jobmill/err.h"

#define JM_CFG_MAX_QUEUES 64
#define JM_CFG_MAX_HANDLERS 64
#define JM_CFG_MAX_EXIT_CODES 16

typedef struct jm_cfg_queue {
    char *name; /* owned */
    int weight; /* >= 1; 1 when given as a plain list */
} jm_cfg_queue;

typedef struct jm_cfg_handler {
    char *type;    /* owned: the job type this handler serves */
    char **argv;   /* owned, NULL-terminated; argv[0] is the program */
    int timeout_s; /* default timeout for jobs of this type; 0 = none */
    int permanent_exit_codes[JM_CFG_MAX_EXIT_CODES];
    int n_permanent_exit_codes;
} jm_cfg_handler;

typedef struct jm_config {
    /* redis */
    char *redis_url;             /* redis://[[user]:password@]host:port/db */
    char *prefix;                /* key prefix, default "jm" */
    int redis_timeout_ms;        /* connect/command timeout, default 5000 */
    char *redis_sentinels;       /* "host:port,..." (Sentinel discovery) or NULL */
    char *redis_sentinel_master; /* the master name the sentinels monitor */
    char *redis_cluster;         /* "host:port,..." (Redis Cluster seed nodes) or NULL */
    /* api */
    char *api_listen;            /* "0.0.0.0:8080" */
    char *api_tokens_file;       /* NULL = no auth */
    char *api_admin_tokens_file; /* NULL = the admin routes take api_tokens_file */
    long api_max_body_bytes;
    int api_max_waiters;
    int api_max_queues;
    int api_drain_delay_ms;
    int api_threads;            /* civetweb worker threads, default 64 */
    int api_submit_replicas;    /* a submit answers after WAIT confirms this many replicas */
    int api_request_timeout_ms; /* civetweb request_timeout_ms, default 5000 */
    /* worker */
    char *worker_metrics_listen;
    char *worker_id; /* NULL = generated host-pid-random */
    jm_cfg_queue queues[JM_CFG_MAX_QUEUES];
    int n_queues;
    int concurrency;
    int lease_ms;
    int heartbeat_ms;
    int shutdown_grace_ms;
    long max_result_bytes;
    int backoff_base_ms;
    int backoff_max_ms;
    jm_cfg_handler handlers[JM_CFG_MAX_HANDLERS];
    int n_handlers;
    /* janitor */
    char *janitor_metrics_listen;
    int janitor_interval_ms;
    int janitor_batch;           /* ids per script call, default 500 */
    int janitor_reconcile_every; /* ticks between reconciler passes, default 10 */
    char *janitor_schedules;     /* YAML janitor.schedules: a JSON array of schedule
                                    objects, each valid (jobmill/schedule.h); NULL = none */
    char *janitor_queue_limits;  /* YAML janitor.queue_limits: a JSON object of queue
                                    name -> limits change (jobmill/qlimits.h); NULL = none */
    /* jobs */
    int result_ttl_s;
    int failed_ttl_s;
    /* logs (a job's log lines, joblog.h) */
    int logs_max_lines;      /* newest lines kept per job, default 1000 */
    int logs_max_line_bytes; /* a line is cut to this, default 4096 */
    int logs_follow_max;     /* concurrent ?follow=1 streams per api, default 16 */
    int logs_follow_max_s;   /* a stream's longest life, default 3600 */
    /* log */
    char *log_level; /* "debug" | "info" | "warn" | "error" */
    /* where it came from */
    char *config_file; /* NULL when no --config was given */
} jm_config;

/* jm_config_defaults fills cfg with the built-in defaults. Returns JM_OK or
 * JM_ERR_NOMEM. */
int jm_config_defaults(jm_config *cfg);

/* jm_config_load builds cfg from defaults, then the YAML file named by
 * --config in argv (if any), then the environment (getenv), then the flags in
 * argv, then validates the whole. argv[0] is the program name; service names
 * the binary for --help ("api", "worker", "janitor").
 * Returns JM_OK; JM_ERR_USAGE when --help or --version was given (the text is
 * already printed to stdout and cfg holds defaults: exit 0); otherwise
 * JM_ERR_INVALID with err->msg one line naming the source (file:line, env var
 * or flag) and the problem (exit 2). cfg must be freed in every case. */
int jm_config_load(jm_config *cfg, const char *service, int argc, char **argv, jm_error *err);

/* jm_config_load_yaml applies one YAML document held in buf (len bytes) on
 * top of cfg; name is used in messages ("jobmill.yaml"). For tests and
 * fuzzing; jm_config_load uses it for the file. */
int jm_config_load_yaml(jm_config *cfg, const char *name, const char *buf, size_t len,
                        jm_error *err);

/* jm_config_validate checks every bound and cross-field rule
 * (heartbeat_ms < lease_ms, backoff_base_ms <= backoff_max_ms, ...). */
int jm_config_validate(const jm_config *cfg, jm_error *err);

/* jm_config_log writes the effective configuration as one JSON log line at
 * info, with passwords in redis_url masked as "***". */
void jm_config_log(const jm_config *cfg);

/* jm_config_handler finds the exec handler for a job type; borrowed pointer or
 * NULL. */
const jm_cfg_handler *jm_config_handler(const jm_config *cfg, const char *type);

/* jm_config_usage prints the flag list for service to out. */
void jm_config_usage(const char *service, FILE *out);

/* jm_config_free releases everything cfg owns and zeroes it. */
void jm_config_free(jm_config *cfg);

#endif
