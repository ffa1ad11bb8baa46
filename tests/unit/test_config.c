/* test_config.c - unit tests of libshared/src/config.c and config_yaml.c:
 * defaults, precedence (defaults < YAML < env < flags), the Redis URL from
 * REDIS_HOST/PORT/DB/PASSWORD, queue lists, exec handlers, every error path
 * with its one-line message, --help/--version, and the masked config log.
 *
 * Each test runs in its own process; .init/.fini clear every variable the
 * loader reads and remove the temporary YAML files a test wrote. Every
 * jm_config a test loads is freed before it returns.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jobmill/config.h"

static const char *const env_names[] = {
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_PASSWORD",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_CLUSTER",
    "JOBMILL_SUBMIT_REPLICAS",
    "JOBMILL_PREFIX",
    "JOBMILL_REDIS_TIMEOUT_MS",
    "JOBMILL_LISTEN",
    "JOBMILL_API_TOKENS_FILE",
    "JOBMILL_API_ADMIN_TOKENS_FILE",
    "JOBMILL_MAX_BODY_BYTES",
    "JOBMILL_MAX_WAITERS",
    "JOBMILL_MAX_QUEUES",
    "JOBMILL_API_DRAIN_DELAY_MS",
    "JOBMILL_API_THREADS",
    "JOBMILL_API_REQUEST_TIMEOUT_MS",
    "JOBMILL_METRICS_LISTEN",
    "JOBMILL_WORKER_ID",
    "JOBMILL_QUEUES",
    "JOBMILL_CONCURRENCY",
    "JOBMILL_LEASE_MS",
    "JOBMILL_HEARTBEAT_MS",
    "JOBMILL_SHUTDOWN_GRACE_MS",
    "JOBMILL_MAX_RESULT_BYTES",
    "JOBMILL_BACKOFF_BASE_MS",
    "JOBMILL_BACKOFF_MAX_MS",
    "JOBMILL_JANITOR_INTERVAL_MS",
    "JOBMILL_JANITOR_BATCH",
    "JOBMILL_JANITOR_RECONCILE_EVERY",
    "JOBMILL_RESULT_TTL_S",
    "JOBMILL_LOGS_MAX_LINES",
    "JOBMILL_LOGS_MAX_LINE_BYTES",
    "JOBMILL_LOGS_FOLLOW_MAX",
    "JOBMILL_LOGS_FOLLOW_MAX_S",
    "JOBMILL_FAILED_TTL_S",
    "JOBMILL_LOG_LEVEL",
};

static char tmp_paths[64][64];
static int n_tmp;

static void
clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

static void
cleanup(void)
{
    clear_env();
    for (int i = 0; i < n_tmp; i++)
        unlink(tmp_paths[i]);
    n_tmp = 0;
}

TestSuite(config, .init = clear_env, .fini = cleanup);

/* Writes text to a new file under /tmp and returns its path (static storage,
 * removed by cleanup). */
static const char *
yaml_file(const char *text)
{
    cr_assert_lt(n_tmp, 64);
    char *path = tmp_paths[n_tmp++];
    snprintf(path, 64, "/tmp/jm_config_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Runs jm_config_load for "worker" with argv = {"jobmill-worker", args...}. */
static int
load_args(jm_config *cfg, jm_error *err, const char *service, char **args)
{
    char *argv[32] = {"jobmill-test"};
    int argc = 1;
    for (; args != NULL && args[argc - 1] != NULL; argc++)
        argv[argc] = args[argc - 1];
    return jm_config_load(cfg, service, argc, argv, err);
}

#define LOAD(cfg, err, ...) load_args(cfg, err, "worker", (char *[]){__VA_ARGS__, NULL})
#define LOAD0(cfg, err) load_args(cfg, err, "worker", NULL)

/* Loads text as YAML through --config; returns the code. */
static int
load_yaml_text(jm_config *cfg, jm_error *err, const char *text)
{
    return LOAD(cfg, err, "--config", (char *)yaml_file(text));
}

/* Asserts the message is "<config path>:<rest>" exactly. */
static void
assert_file_msg(const jm_error *err, const char *rest)
{
    char want[512];
    snprintf(want, sizeof(want), "%s:%s", tmp_paths[n_tmp - 1], rest);
    cr_assert_str_eq(err->msg, want);
}

/* Loads text as YAML and expects JM_ERR_INVALID with "<path>:<rest>". */
static void
expect_yaml_error(const char *text, const char *rest)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(load_yaml_text(&cfg, &err, text), JM_ERR_INVALID, "loaded: %s", text);
    assert_file_msg(&err, rest);
    jm_config_free(&cfg);
}

/* Sets name=value, loads with no flags and expects the exact message. */
static void
expect_env_error(const char *name, const char *value, const char *msg)
{
    jm_config cfg;
    jm_error err;
    setenv(name, value, 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_ERR_INVALID, "%s=%s loaded", name, value);
    cr_assert_str_eq(err.msg, msg);
    jm_config_free(&cfg);
    unsetenv(name);
}

/*----------------------------------------------------------------------------
 * Defaults and precedence
 *--------------------------------------------------------------------------*/

Test(config, defaults)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379/0");
    cr_assert_str_eq(cfg.prefix, "jm");
    cr_assert_eq(cfg.redis_timeout_ms, 5000);
    cr_assert_str_eq(cfg.api_listen, "0.0.0.0:8080");
    cr_assert_null(cfg.api_tokens_file);
    cr_assert_eq(cfg.api_max_body_bytes, 1048576L);
    cr_assert_eq(cfg.api_max_waiters, 256);
    cr_assert_eq(cfg.api_max_queues, 1000);
    cr_assert_eq(cfg.api_drain_delay_ms, 5000);
    cr_assert_eq(cfg.api_threads, 64);
    cr_assert_str_eq(cfg.worker_metrics_listen, "0.0.0.0:9090");
    cr_assert_null(cfg.worker_id);
    cr_assert_eq(cfg.n_queues, 1);
    cr_assert_str_eq(cfg.queues[0].name, "default");
    cr_assert_eq(cfg.queues[0].weight, 1);
    cr_assert_eq(cfg.concurrency, 4);
    cr_assert_eq(cfg.lease_ms, 15000);
    cr_assert_eq(cfg.heartbeat_ms, 5000);
    cr_assert_eq(cfg.shutdown_grace_ms, 25000);
    cr_assert_eq(cfg.max_result_bytes, 1048576L);
    cr_assert_eq(cfg.backoff_base_ms, 1000);
    cr_assert_eq(cfg.backoff_max_ms, 300000);
    cr_assert_eq(cfg.n_handlers, 0);
    cr_assert_str_eq(cfg.janitor_metrics_listen, "0.0.0.0:9090");
    cr_assert_eq(cfg.janitor_interval_ms, 1000);
    cr_assert_eq(cfg.janitor_batch, 500);
    cr_assert_eq(cfg.janitor_reconcile_every, 10);
    cr_assert_eq(cfg.result_ttl_s, 3600);
    cr_assert_eq(cfg.failed_ttl_s, 604800);
    cr_assert_str_eq(cfg.log_level, "info");
    cr_assert_null(cfg.config_file);
    jm_config_free(&cfg);
}

Test(config, defaults_alone_validate)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(jm_config_defaults(&cfg), JM_OK);
    cr_assert_eq(jm_config_validate(&cfg, &err), JM_OK, "%s", err.msg);
    jm_config_free(&cfg);
    cr_assert_null(cfg.redis_url);
    cr_assert_eq(cfg.n_queues, 0);
    jm_config_free(&cfg); /* a freed (zeroed) config frees again safely */
}

Test(config, precedence_defaults_yaml_env_flags)
{
    const char *yaml = "worker:\n  lease_ms: 20000\n  concurrency: 8\n"
                       "redis:\n  prefix: fromyaml\n";
    jm_config cfg;
    jm_error err;

    cr_assert_eq(load_yaml_text(&cfg, &err, yaml), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 20000);
    cr_assert_eq(cfg.concurrency, 8);
    cr_assert_str_eq(cfg.prefix, "fromyaml");
    cr_assert_eq(cfg.heartbeat_ms, 5000); /* untouched: default */
    cr_assert_str_eq(cfg.config_file, tmp_paths[n_tmp - 1]);
    jm_config_free(&cfg);

    setenv("JOBMILL_LEASE_MS", "30000", 1);
    setenv("JOBMILL_PREFIX", "fromenv", 1);
    cr_assert_eq(LOAD(&cfg, &err, "--config", tmp_paths[n_tmp - 1]), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 30000);
    cr_assert_eq(cfg.concurrency, 8);
    cr_assert_str_eq(cfg.prefix, "fromenv");
    jm_config_free(&cfg);

    cr_assert_eq(LOAD(&cfg, &err, "--config", tmp_paths[n_tmp - 1], "--lease-ms", "40000",
                      "--prefix=fromflag", "--concurrency=16"),
                 JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 40000);
    cr_assert_eq(cfg.concurrency, 16);
    cr_assert_str_eq(cfg.prefix, "fromflag");
    jm_config_free(&cfg);
}

Test(config, flag_before_config_still_wins)
{
    jm_config cfg;
    jm_error err;
    const char *path = yaml_file("jobs:\n  result_ttl_s: 10\n");
    cr_assert_eq(LOAD(&cfg, &err, "--result-ttl-s=20", "--config", (char *)path), JM_OK, "%s",
                 err.msg);
    cr_assert_eq(cfg.result_ttl_s, 20);
    jm_config_free(&cfg);
}

Test(config, every_env_var_and_flag_is_read)
{
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_API_TOKENS_FILE", "/etc/tokens", 1);
    setenv("JOBMILL_API_ADMIN_TOKENS_FILE", "/etc/admin-tokens", 1);
    setenv("JOBMILL_MAX_BODY_BYTES", "2048", 1);
    setenv("JOBMILL_API_THREADS", "4", 1);
    setenv("JOBMILL_API_REQUEST_TIMEOUT_MS", "1500", 1);
    setenv("JOBMILL_WORKER_ID", "w-1", 1);
    setenv("JOBMILL_JANITOR_BATCH", "7", 1);
    setenv("JOBMILL_JANITOR_RECONCILE_EVERY", "3", 1);
    setenv("JOBMILL_REDIS_TIMEOUT_MS", "250", 1);
    setenv("JOBMILL_LOG_LEVEL", "debug", 1);
    cr_assert_eq(LOAD(&cfg, &err, "--listen", "127.0.0.1:1234", "--max-waiters=0", "--max-queues",
                      "5", "--api-drain-delay-ms", "0", "--shutdown-grace-ms", "1",
                      "--max-result-bytes", "4096", "--backoff-base-ms", "10", "--backoff-max-ms",
                      "20", "--janitor-interval-ms", "100", "--failed-ttl-s", "60",
                      "--heartbeat-ms", "10"),
                 JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.api_tokens_file, "/etc/tokens");
    cr_assert_str_eq(cfg.api_admin_tokens_file, "/etc/admin-tokens");
    cr_assert_eq(cfg.api_max_body_bytes, 2048L);
    cr_assert_eq(cfg.api_threads, 4);
    cr_assert_eq(cfg.api_request_timeout_ms, 1500);
    cr_assert_str_eq(cfg.worker_id, "w-1");
    cr_assert_eq(cfg.janitor_batch, 7);
    cr_assert_eq(cfg.janitor_reconcile_every, 3);
    cr_assert_eq(cfg.redis_timeout_ms, 250);
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_str_eq(cfg.api_listen, "127.0.0.1:1234");
    cr_assert_eq(cfg.api_max_waiters, 0);
    cr_assert_eq(cfg.api_max_queues, 5);
    cr_assert_eq(cfg.api_drain_delay_ms, 0);
    cr_assert_eq(cfg.shutdown_grace_ms, 1);
    cr_assert_eq(cfg.max_result_bytes, 4096L);
    cr_assert_eq(cfg.backoff_base_ms, 10);
    cr_assert_eq(cfg.backoff_max_ms, 20);
    cr_assert_eq(cfg.janitor_interval_ms, 100);
    cr_assert_eq(cfg.failed_ttl_s, 60);
    cr_assert_eq(cfg.heartbeat_ms, 10);
    jm_config_free(&cfg);
}

Test(config, metrics_listen_sets_worker_and_janitor)
{
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_METRICS_LISTEN", "127.0.0.1:9100", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.worker_metrics_listen, "127.0.0.1:9100");
    cr_assert_str_eq(cfg.janitor_metrics_listen, "127.0.0.1:9100");
    jm_config_free(&cfg);

    cr_assert_eq(LOAD(&cfg, &err, "--metrics-listen=[::1]:9200"), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.worker_metrics_listen, "[::1]:9200");
    cr_assert_str_eq(cfg.janitor_metrics_listen, "[::1]:9200");
    jm_config_free(&cfg);

    unsetenv("JOBMILL_METRICS_LISTEN");
    cr_assert_eq(load_yaml_text(&cfg, &err, "janitor:\n  metrics_listen: 10.0.0.1:9300\n"), JM_OK,
                 "%s", err.msg);
    cr_assert_str_eq(cfg.worker_metrics_listen, "0.0.0.0:9090");
    cr_assert_str_eq(cfg.janitor_metrics_listen, "10.0.0.1:9300");
    jm_config_free(&cfg);
}

Test(config, empty_env_counts_as_unset)
{
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_LEASE_MS", "", 1);
    setenv("JOBMILL_API_TOKENS_FILE", "", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 15000);
    cr_assert_null(cfg.api_tokens_file);
    jm_config_free(&cfg);
}

Test(config, empty_flag_unsets_optional_string)
{
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_API_TOKENS_FILE", "/t", 1);
    cr_assert_eq(LOAD(&cfg, &err, "--api-tokens-file="), JM_OK, "%s", err.msg);
    cr_assert_null(cfg.api_tokens_file);
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--api-admin-tokens-file", "/a"), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.api_admin_tokens_file, "/a");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--prefix="), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--prefix: must not be empty");
    jm_config_free(&cfg);
}

/*----------------------------------------------------------------------------
 * Redis URL
 *--------------------------------------------------------------------------*/

Test(config, redis_url_beats_host_and_port)
{
    jm_config cfg;
    jm_error err;
    setenv("REDIS_URL", "redis://cache:6390/3", 1);
    setenv("REDIS_HOST", "other", 1);
    setenv("REDIS_PORT", "1", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://cache:6390/3");
    jm_config_free(&cfg);
}

Test(config, redis_url_composed_from_parts)
{
    jm_config cfg;
    jm_error err;
    setenv("REDIS_HOST", "redis.local", 1);
    setenv("REDIS_PORT", "6380", 1);
    setenv("REDIS_DB", "2", 1);
    setenv("REDIS_PASSWORD", "s3cret", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://:s3cret@redis.local:6380/2");
    jm_config_free(&cfg);

    unsetenv("REDIS_HOST");
    unsetenv("REDIS_DB");
    unsetenv("REDIS_PASSWORD");
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6380/0");
    jm_config_free(&cfg);
}

Test(config, redis_parts_beat_yaml_url_and_lose_to_flag)
{
    jm_config cfg;
    jm_error err;
    setenv("REDIS_HOST", "envhost", 1);
    cr_assert_eq(load_yaml_text(&cfg, &err, "redis:\n  url: redis://yamlhost:1/1\n"), JM_OK, "%s",
                 err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://envhost:6379/0");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--redis-url", "redis://flaghost:2/0"), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://flaghost:2/0");
    jm_config_free(&cfg);
}

Test(config, redis_part_errors)
{
    expect_env_error("REDIS_PORT", "0", "REDIS_PORT: must be an integer between 1 and 65535");
    expect_env_error("REDIS_PORT", "63x", "REDIS_PORT: must be an integer between 1 and 65535");
    expect_env_error("REDIS_DB", "-1", "REDIS_DB: must be an integer between 0 and 1000");
    expect_env_error("REDIS_HOST", "a/b", "REDIS_HOST: must be a host name or address");
    expect_env_error("REDIS_URL", "http://x",
                     "REDIS_URL: must be a URL "
                     "redis://[[user]:password@]host:port/db");
}

/*----------------------------------------------------------------------------
 * Integers
 *--------------------------------------------------------------------------*/

Test(config, int_errors_name_the_source)
{
    const char *msg = "JOBMILL_LEASE_MS: must be an integer between 100 and 3600000";
    expect_env_error("JOBMILL_LEASE_MS", "abc", msg);
    expect_env_error("JOBMILL_LEASE_MS", "99", msg);
    expect_env_error("JOBMILL_LEASE_MS", "3600001", msg);
    expect_env_error("JOBMILL_LEASE_MS", "6000ms", msg);
    expect_env_error("JOBMILL_LEASE_MS", " 6000", msg);
    expect_env_error("JOBMILL_LEASE_MS", "+6000", msg);
    expect_env_error("JOBMILL_LEASE_MS", "6000 ", msg);
    expect_env_error("JOBMILL_LEASE_MS", "0x1000", msg);
    expect_env_error("JOBMILL_LEASE_MS", "-", msg);
    expect_env_error("JOBMILL_LEASE_MS", "99999999999999999999999", msg);
    expect_env_error("JOBMILL_MAX_BODY_BYTES", "1073741825",
                     "JOBMILL_MAX_BODY_BYTES: must be an integer between 1024 and 268435456");
    expect_env_error("JOBMILL_CONCURRENCY", "0",
                     "JOBMILL_CONCURRENCY: must be an integer between 1 and 1024");
    expect_env_error("JOBMILL_API_THREADS", "1025",
                     "JOBMILL_API_THREADS: must be an integer between 2 and 1024");
    expect_env_error("JOBMILL_RESULT_TTL_S", "31536001",
                     "JOBMILL_RESULT_TTL_S: must be an integer between 1 and 31536000");
}

Test(config, int_bounds_inclusive)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--lease-ms", "3600000", "--concurrency", "1024",
                      "--max-body-bytes", "268435456", "--max-waiters", "100000"),
                 JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 3600000);
    cr_assert_eq(cfg.concurrency, 1024);
    cr_assert_eq(cfg.api_max_body_bytes, 268435456L);
    cr_assert_eq(cfg.api_max_waiters, 100000);
    jm_config_free(&cfg);
}

Test(config, flag_int_error)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--lease-ms", "50"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--lease-ms: must be an integer between 100 and 3600000");
    cr_assert_str_eq(err.field, "worker.lease_ms");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--concurrency=4x"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--concurrency: must be an integer between 1 and 1024");
    jm_config_free(&cfg);
}

/*----------------------------------------------------------------------------
 * Flags
 *--------------------------------------------------------------------------*/

Test(config, unknown_flag)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--foo"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "unknown flag --foo");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--foo=1"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "unknown flag --foo");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "-x"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "unknown flag -x");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--lease"), JM_ERR_INVALID); /* no prefix matching */
    cr_assert_str_eq(err.msg, "unknown flag --lease");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "stray"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "unexpected argument \"stray\"");
    jm_config_free(&cfg);
}

Test(config, missing_flag_value)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--lease-ms"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--lease-ms: missing value");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--lease-ms", "--prefix", "x"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--lease-ms: missing value");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--config"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--config: missing value");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--config="), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--config: missing value");
    jm_config_free(&cfg);
}

Test(config, help_prints_usage)
{
    jm_config cfg;
    jm_error err;
    cr_redirect_stdout();
    cr_assert_eq(LOAD(&cfg, &err, "--lease-ms", "500", "--help"), JM_ERR_USAGE);
    cr_assert_eq(cfg.lease_ms, 15000); /* defaults only */
    jm_config_free(&cfg);
    fflush(stdout);
    FILE *out = cr_get_redirected_stdout();
    char line[256];
    int saw_usage = 0, saw_lease = 0, saw_listen = 0;
    while (fgets(line, sizeof(line), out) != NULL) {
        saw_usage |= strncmp(line, "Usage: jobmill-worker ", 22) == 0;
        saw_lease |= strstr(line, "--lease-ms MS") != NULL;
        saw_listen |= strstr(line, "--listen ") != NULL;
        if (strstr(line, "worker.handlers") != NULL)
            break; /* the last line for a worker */
    }
    cr_assert(saw_usage);
    cr_assert(saw_lease);
    cr_assert_not(saw_listen, "api-only flag in worker help");
}

Test(config, help_short_flag)
{
    jm_config cfg;
    jm_error err;
    cr_redirect_stdout();
    cr_assert_eq(load_args(&cfg, &err, "api", (char *[]){"-h", NULL}), JM_ERR_USAGE);
    jm_config_free(&cfg);
}

Test(config, version)
{
    jm_config cfg;
    jm_error err;
    cr_redirect_stdout();
    cr_assert_eq(load_args(&cfg, &err, "janitor", (char *[]){"--version", NULL}), JM_ERR_USAGE);
    cr_assert_eq(err.code, JM_ERR_USAGE);
    jm_config_free(&cfg);
    fflush(stdout);
    cr_assert_stdout_eq_str("jobmill-janitor " JM_VERSION "\n");
}

Test(config, help_takes_no_value)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--help=yes"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--help: takes no value");
    jm_config_free(&cfg);
}

Test(config, usage_lists_every_service)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cr_assert_not_null(mem);
    jm_config_usage("api", mem);
    fclose(mem);
    cr_assert_not_null(strstr(buf, "--listen HOST:PORT"));
    cr_assert_not_null(strstr(buf, "env JOBMILL_MAX_BODY_BYTES, yaml api.max_body_bytes"));
    cr_assert_not_null(strstr(buf, "--redis-url URL"));
    cr_assert_null(strstr(buf, "--lease-ms"));
    free(buf);

    mem = open_memstream(&buf, &len);
    jm_config_usage("janitor", mem);
    fclose(mem);
    cr_assert_not_null(strstr(buf, "yaml worker.metrics_listen and janitor.metrics_listen"));
    cr_assert_not_null(strstr(buf, "--janitor-reconcile-every N"));
    free(buf);
}

/* Every flag in --help follows the naming rule (env name lower-cased without
 * JOBMILL_, underscores as dashes), and every env var is one .init clears. */
Test(config, flag_and_env_names_follow_the_rule)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cr_assert_not_null(mem);
    jm_config_usage(NULL, mem);
    fclose(mem);
    int rows = 0;
    char flag[64] = "";
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char env[64];
        if (sscanf(line, "  --%63[a-z0-9-]", flag) == 1)
            continue;
        if (sscanf(line, "        env %63[A-Z_],", env) != 1)
            continue;
        char want[64];
        const char *e = strncmp(env, "JOBMILL_", 8) == 0 ? env + 8 : env;
        size_t i = 0;
        for (; e[i] != '\0'; i++)
            want[i] = e[i] == '_' ? '-' : (char)tolower((unsigned char)e[i]);
        want[i] = '\0';
        cr_assert_str_eq(flag, want, "env %s", env);
        bool known = false;
        for (size_t k = 0; k < sizeof(env_names) / sizeof(env_names[0]); k++)
            known = known || strcmp(env_names[k], env) == 0;
        cr_assert(known, "%s is not cleared by the test fixture", env);
        rows++;
    }
    cr_assert_eq(rows, 36); /* every setting with an env var and a flag */
    free(buf);
}

/*----------------------------------------------------------------------------
 * YAML: files and structure
 *--------------------------------------------------------------------------*/

Test(config, empty_and_comment_only_files)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(load_yaml_text(&cfg, &err, ""), JM_OK, "%s", err.msg);
    jm_config_free(&cfg);
    cr_assert_eq(load_yaml_text(&cfg, &err, "# nothing here\n"), JM_OK, "%s", err.msg);
    jm_config_free(&cfg);
    cr_assert_eq(load_yaml_text(&cfg, &err, "---\n"), JM_OK, "%s", err.msg);
    jm_config_free(&cfg);
    cr_assert_eq(load_yaml_text(&cfg, &err, "worker:\napi: ~\n"), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 15000);
    jm_config_free(&cfg);
}

Test(config, unreadable_file)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--config", "/nonexistent/jobmill.yaml"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "/nonexistent/jobmill.yaml: cannot read: No such file or directory");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--config=/tmp"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "/tmp: cannot read: Is a directory");
    jm_config_free(&cfg);
}

Test(config, yaml_bad_int_with_line)
{
    expect_yaml_error("# jobmill\nworker:\n  concurrency: 4\n\n  lease_ms: 50\n",
                      "5: worker.lease_ms: must be an integer between 100 and 3600000");
    expect_yaml_error("worker:\n  lease_ms: 6000x\n",
                      "2: worker.lease_ms: must be an integer between 100 and 3600000");
    expect_yaml_error("worker:\n  lease_ms: [1]\n",
                      "2: worker.lease_ms: must be an integer between 100 and 3600000");
    expect_yaml_error("worker:\n  lease_ms:\n",
                      "2: worker.lease_ms: must be an integer between 100 and 3600000");
    expect_yaml_error("api:\n  max_body_bytes: 99999999999999999999\n",
                      "2: api.max_body_bytes: must be an integer between 1024 and 268435456");
}

Test(config, yaml_quoted_int_and_string_values)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(load_yaml_text(&cfg, &err,
                                "worker:\n  lease_ms: '6000'\n  id: 42\n"
                                "api:\n  tokens_file: ~\n  admin_tokens_file: /run/admin\n"),
                 JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.lease_ms, 6000);
    cr_assert_str_eq(cfg.worker_id, "42");
    cr_assert_null(cfg.api_tokens_file);
    cr_assert_str_eq(cfg.api_admin_tokens_file, "/run/admin");
    jm_config_free(&cfg);
}

Test(config, yaml_unknown_key_and_section)
{
    expect_yaml_error("worker:\n  lease_ms: 20000\n  lease: 5\n", "3: worker.lease: unknown key");
    expect_yaml_error("redis:\n  prefix: x\nfoo:\n  a: 1\n", "3: foo: unknown key");
    expect_yaml_error("worker:\n  handler: {}\n", "2: worker.handler: unknown key");
    expect_yaml_error("metrics_listen: x\n", "1: metrics_listen: unknown key");
}

Test(config, yaml_structure_errors)
{
    expect_yaml_error("- a\n- b\n", "1: (top level): must be a mapping of sections "
                                    "(redis, api, worker, janitor, jobs, logs, log)");
    expect_yaml_error("just a string\n", "1: (top level): must be a mapping of sections "
                                         "(redis, api, worker, janitor, jobs, logs, log)");
    expect_yaml_error("worker: 5\n", "1: worker: must be a mapping");
    expect_yaml_error("worker:\n  lease_ms: 200\nworker:\n  concurrency: 2\n",
                      "3: worker: duplicate key");
    expect_yaml_error("worker:\n  lease_ms: 200\n  lease_ms: 300\n",
                      "3: worker.lease_ms: duplicate key");
    expect_yaml_error("? [a]\n: 1\n", "1: (top level): keys must be strings");
    expect_yaml_error("redis:\n  prefix: [a]\n", "2: redis.prefix: must be a string");
    expect_yaml_error("redis:\n  prefix: ''\n", "2: redis.prefix: must not be empty");
    expect_yaml_error("log:\n  level: verbose\n",
                      "2: log.level: must be one of debug, info, warn, error");
    expect_yaml_error("api:\n  listen: 8080\n",
                      "2: api.listen: must be host:port with a port between 1 and 65535");
}

Test(config, yaml_syntax_error_has_line)
{
    expect_yaml_error("worker:\n  lease_ms: 20000\n  queues: [a, b\n",
                      "4: invalid YAML: did not find expected ',' or ']' "
                      "(while parsing a flow sequence)");
    expect_yaml_error("worker:\n  lease_ms: 1\n bad: x\n",
                      "3: invalid YAML: did not find expected key (while parsing a block "
                      "mapping)");
    expect_yaml_error("worker:\n\tlease_ms: 1\n",
                      "2: invalid YAML: found character that cannot start any token (while "
                      "scanning for the next token)");
}

Test(config, yaml_bad_utf8_has_line)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(load_yaml_text(&cfg, &err, "worker:\n  id: \xff\xfe\n"), JM_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: invalid YAML: ", tmp_paths[n_tmp - 1]);
    cr_assert_eq(strncmp(err.msg, want, strlen(want)), 0, "%s", err.msg);
    jm_config_free(&cfg);
}

Test(config, yaml_nesting_too_deep)
{
    expect_yaml_error("worker:\n  queues: [[[[[[[[a]]]]]]]]\n", "2: nested deeper than 8 levels");
    /* 8 levels parse (and then fail on the schema, not the depth) */
    expect_yaml_error("worker:\n  queues: [[[[[[a]]]]]]\n",
                      "2: worker.queues[0]: must be a queue name or {name: q, weight: n}");
}

Test(config, yaml_aliases_and_documents_refused)
{
    expect_yaml_error("worker:\n  id: &x a\n  queues: *x\n", "3: aliases are not supported");
    expect_yaml_error("worker:\n  id: a\n---\nworker:\n  id: b\n",
                      "3: only one YAML document is allowed");
}

Test(config, load_yaml_buffer_directly)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(jm_config_defaults(&cfg), JM_OK);
    const char *doc = "jobs:\n  result_ttl_s: 60\n  failed_ttl_s: oops\n";
    cr_assert_eq(jm_config_load_yaml(&cfg, "jobmill.yaml", doc, strlen(doc), &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "jobmill.yaml:3: jobs.failed_ttl_s: must be an integer "
                              "between 1 and 31536000");
    cr_assert_str_eq(err.field, "jobs.failed_ttl_s");
    cr_assert_eq(cfg.result_ttl_s, 60); /* applied before the error */
    jm_config_free(&cfg);
}

/*----------------------------------------------------------------------------
 * Queues
 *--------------------------------------------------------------------------*/

Test(config, queue_list_from_env)
{
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_QUEUES", " high ,default,low.x-1_2 ", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_queues, 3);
    cr_assert_str_eq(cfg.queues[0].name, "high");
    cr_assert_str_eq(cfg.queues[1].name, "default");
    cr_assert_str_eq(cfg.queues[2].name, "low.x-1_2");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cfg.queues[i].weight, 1);
    jm_config_free(&cfg);

    cr_assert_eq(LOAD(&cfg, &err, "--queues", "only"), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_queues, 1);
    cr_assert_str_eq(cfg.queues[0].name, "only");
    jm_config_free(&cfg);
}

Test(config, queue_list_errors)
{
    expect_env_error("JOBMILL_QUEUES", "a,,b", "JOBMILL_QUEUES: empty queue name");
    expect_env_error("JOBMILL_QUEUES", "a,", "JOBMILL_QUEUES: empty queue name");
    expect_env_error("JOBMILL_QUEUES", "a, b c",
                     "JOBMILL_QUEUES: queue name \"b c\" must be 1-64 of [A-Za-z0-9_.-]");
    expect_env_error("JOBMILL_QUEUES", "a/b",
                     "JOBMILL_QUEUES: queue name \"a/b\" must be 1-64 of [A-Za-z0-9_.-]");
    expect_env_error("JOBMILL_QUEUES", "a,b, a", "JOBMILL_QUEUES: duplicate queue \"a\"");

    char name[80];
    memset(name, 'q', 65);
    name[65] = '\0';
    char want[160];
    snprintf(want, sizeof(want),
             "JOBMILL_QUEUES: queue name \"%.64s\" must be 1-64 of [A-Za-z0-9_.-]", name);
    expect_env_error("JOBMILL_QUEUES", name, want);
    name[64] = '\0'; /* 64 is fine */
    jm_config cfg;
    jm_error err;
    setenv("JOBMILL_QUEUES", name, 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    jm_config_free(&cfg);

    char list[65 * 4 + 1] = "";
    for (int i = 0; i < 65; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%sq%d", i ? "," : "", i);
    expect_env_error("JOBMILL_QUEUES", list, "JOBMILL_QUEUES: more than 64 queues");

    cr_assert_eq(LOAD(&cfg, &err, "--queues", "x,x"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "--queues: duplicate queue \"x\"");
    jm_config_free(&cfg);
}

Test(config, yaml_queue_forms)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(load_yaml_text(&cfg, &err, "worker:\n  queues: a, b\n"), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_queues, 2);
    cr_assert_str_eq(cfg.queues[1].name, "b");
    jm_config_free(&cfg);

    cr_assert_eq(load_yaml_text(&cfg, &err, "worker:\n  queues:\n    - x\n    - y\n"), JM_OK, "%s",
                 err.msg);
    cr_assert_eq(cfg.n_queues, 2);
    cr_assert_str_eq(cfg.queues[0].name, "x");
    cr_assert_eq(cfg.queues[0].weight, 1);
    jm_config_free(&cfg);

    cr_assert_eq(load_yaml_text(&cfg, &err,
                                "worker:\n  queues:\n    - {name: hi, weight: 3}\n"
                                "    - name: lo\n    - plain\n    - {name: max, weight: 1000}\n"),
                 JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_queues, 4);
    cr_assert_str_eq(cfg.queues[0].name, "hi");
    cr_assert_eq(cfg.queues[0].weight, 3);
    cr_assert_str_eq(cfg.queues[1].name, "lo");
    cr_assert_eq(cfg.queues[1].weight, 1);
    cr_assert_str_eq(cfg.queues[2].name, "plain");
    cr_assert_eq(cfg.queues[3].weight, 1000);
    jm_config_free(&cfg);

    /* env replaces the YAML list */
    setenv("JOBMILL_QUEUES", "e1", 1);
    cr_assert_eq(LOAD(&cfg, &err, "--config", tmp_paths[n_tmp - 1]), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_queues, 1);
    cr_assert_str_eq(cfg.queues[0].name, "e1");
    jm_config_free(&cfg);
}

Test(config, yaml_queue_errors)
{
    expect_yaml_error("worker:\n  queues:\n    - {name: a, weight: 0}\n",
                      "3: worker.queues[0].weight: must be an integer between 1 and 1000");
    expect_yaml_error("worker:\n  queues:\n    - a\n    - {name: b, weight: 1001}\n",
                      "4: worker.queues[1].weight: must be an integer between 1 and 1000");
    expect_yaml_error("worker:\n  queues:\n    - {name: a, prio: 2}\n",
                      "3: worker.queues[0].prio: unknown key");
    expect_yaml_error("worker:\n  queues:\n    - {weight: 2}\n",
                      "3: worker.queues[0]: needs a name");
    expect_yaml_error("worker:\n  queues:\n    - {name: [a]}\n",
                      "3: worker.queues[0].name: must be a string");
    expect_yaml_error("worker:\n  queues:\n    - a\n    - {name: a, weight: 2}\n",
                      "4: worker.queues[1]: duplicate queue \"a\"");
    expect_yaml_error("worker:\n  queues:\n    - 'a b'\n",
                      "3: worker.queues[0]: queue name \"a b\" must be 1-64 of [A-Za-z0-9_.-]");
    expect_yaml_error("worker:\n  queues: []\n", "2: worker.queues: must name at least one queue");
    expect_yaml_error("worker:\n  queues: {a: 1}\n",
                      "2: worker.queues: must be a comma list or a sequence of queues");
    expect_yaml_error("worker:\n  queues: a,,b\n", "2: worker.queues: empty queue name");
    expect_yaml_error("worker:\n  queues:\n", "2: worker.queues: empty queue name");
}

/*----------------------------------------------------------------------------
 * Handlers
 *--------------------------------------------------------------------------*/

Test(config, yaml_handlers)
{
    jm_config cfg;
    jm_error err;
    const char *yaml = "worker:\n"
                       "  handlers:\n"
                       "    resize:                      # the job type\n"
                       "      exec: [\"/usr/bin/python3\", \"/app/resize.py\", \"\"]\n"
                       "      timeout_s: 600\n"
                       "      permanent_exit_codes: [65, 1, 255]\n"
                       "    ping:\n"
                       "      exec:\n"
                       "        - /bin/true\n";
    cr_assert_eq(load_yaml_text(&cfg, &err, yaml), JM_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_handlers, 2);
    const jm_cfg_handler *h = jm_config_handler(&cfg, "resize");
    cr_assert_not_null(h);
    cr_assert_str_eq(h->type, "resize");
    cr_assert_str_eq(h->argv[0], "/usr/bin/python3");
    cr_assert_str_eq(h->argv[1], "/app/resize.py");
    cr_assert_str_eq(h->argv[2], "");
    cr_assert_null(h->argv[3]);
    cr_assert_eq(h->timeout_s, 600);
    cr_assert_eq(h->n_permanent_exit_codes, 3);
    cr_assert_eq(h->permanent_exit_codes[0], 65);
    cr_assert_eq(h->permanent_exit_codes[2], 255);
    h = jm_config_handler(&cfg, "ping");
    cr_assert_not_null(h);
    cr_assert_str_eq(h->argv[0], "/bin/true");
    cr_assert_null(h->argv[1]);
    cr_assert_eq(h->timeout_s, 0);
    cr_assert_eq(h->n_permanent_exit_codes, 0);
    cr_assert_null(jm_config_handler(&cfg, "nope"));
    cr_assert_null(jm_config_handler(&cfg, NULL));
    jm_config_free(&cfg);
}

Test(config, yaml_handler_errors)
{
    expect_yaml_error("worker:\n  handlers:\n    resize:\n      timeout_s: 5\n",
                      "3: worker.handlers.resize.exec: is required");
    expect_yaml_error("worker:\n  handlers:\n    resize:\n      exec: []\n",
                      "4: worker.handlers.resize.exec: must be a non-empty sequence of strings");
    expect_yaml_error("worker:\n  handlers:\n    resize:\n      exec: /bin/true\n",
                      "4: worker.handlers.resize.exec: must be a non-empty sequence of strings");
    expect_yaml_error("worker:\n  handlers:\n    resize:\n      exec: [/bin/x, [a]]\n",
                      "4: worker.handlers.resize.exec: must be a non-empty sequence of strings");
    expect_yaml_error("worker:\n  handlers:\n    resize:\n      exec: ['']\n",
                      "4: worker.handlers.resize.exec: must be a non-empty sequence of strings");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n      timeout_s: 604801\n",
                      "5: worker.handlers.r.timeout_s: must be an integer between 0 and 604800");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n      timeout_s: -1\n",
                      "5: worker.handlers.r.timeout_s: must be an integer between 0 and 604800");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n"
                      "      permanent_exit_codes: [1, 0]\n",
                      "5: worker.handlers.r.permanent_exit_codes[1]: must be an integer "
                      "between 1 and 255");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n"
                      "      permanent_exit_codes: [256]\n",
                      "5: worker.handlers.r.permanent_exit_codes[0]: must be an integer "
                      "between 1 and 255");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n"
                      "      permanent_exit_codes: 3\n",
                      "5: worker.handlers.r.permanent_exit_codes: must be a sequence of exit "
                      "codes (1 to 255)");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n"
                      "      permanent_exit_codes: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n",
                      "5: worker.handlers.r.permanent_exit_codes: more than 16 exit codes");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n      shell: true\n",
                      "5: worker.handlers.r.shell: unknown key");
    expect_yaml_error("worker:\n  handlers:\n    r:\n      exec: [x]\n      exec: [y]\n",
                      "5: worker.handlers.r.exec: duplicate key");
    expect_yaml_error("worker:\n  handlers:\n    r: [x]\n",
                      "3: worker.handlers.r: must be a mapping with exec, timeout_s, "
                      "permanent_exit_codes");
    expect_yaml_error("worker:\n  handlers: [x]\n",
                      "2: worker.handlers: must be a mapping of job type to handler");
    expect_yaml_error("worker:\n  handlers:\n    r: {exec: [x]}\n    r: {exec: [y]}\n",
                      "4: worker.handlers.r: duplicate key");
    expect_yaml_error("worker:\n  handlers:\n    '': {exec: [x]}\n",
                      "3: worker.handlers: job type must not be empty");
}

Test(config, too_many_handlers)
{
    char yaml[8192] = "worker:\n  handlers:\n";
    for (int i = 0; i < 65; i++)
        snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml), "    t%d: {exec: [x]}\n", i);
    expect_yaml_error(yaml, "3: worker.handlers: more than 64 handlers");
}

/*----------------------------------------------------------------------------
 * Validation
 *--------------------------------------------------------------------------*/

Test(config, heartbeat_must_be_below_lease)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--heartbeat-ms", "5000", "--lease-ms", "5000"), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "worker.heartbeat_ms: must be less than worker.lease_ms "
                              "(5000 >= 5000)");
    jm_config_free(&cfg);
    cr_assert_eq(LOAD(&cfg, &err, "--heartbeat-ms", "4999", "--lease-ms", "5000"), JM_OK, "%s",
                 err.msg);
    jm_config_free(&cfg);
}

Test(config, backoff_base_within_max)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(LOAD(&cfg, &err, "--backoff-base-ms", "2000", "--backoff-max-ms", "1000"),
                 JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "worker.backoff_base_ms: must not exceed worker.backoff_max_ms "
                              "(2000 > 1000)");
    jm_config_free(&cfg);
}

Test(config, string_checks)
{
    expect_env_error("JOBMILL_LOG_LEVEL", "verbose",
                     "JOBMILL_LOG_LEVEL: must be one of debug, info, warn, error");
    expect_env_error("JOBMILL_LISTEN", "0.0.0.0",
                     "JOBMILL_LISTEN: must be host:port with a port between 1 and 65535");
    expect_env_error("JOBMILL_LISTEN", ":8080",
                     "JOBMILL_LISTEN: must be host:port with a port between 1 and 65535");
    expect_env_error("JOBMILL_METRICS_LISTEN", "host:99999",
                     "JOBMILL_METRICS_LISTEN: must be host:port with a port between 1 and "
                     "65535");
    expect_env_error("JOBMILL_PREFIX", "a b", "JOBMILL_PREFIX: must be 1-64 of [A-Za-z0-9_.:-]");
    expect_env_error("JOBMILL_WORKER_ID", "w/1",
                     "JOBMILL_WORKER_ID: must be 1-128 of [A-Za-z0-9_.:-]");
}

Test(config, validate_catches_hand_edits)
{
    jm_config cfg;
    jm_error err;
    cr_assert_eq(jm_config_defaults(&cfg), JM_OK);
    cfg.concurrency = 0;
    cr_assert_eq(jm_config_validate(&cfg, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "worker.concurrency: must be an integer between 1 and 1024");
    cfg.concurrency = 4;
    free(cfg.log_level);
    cfg.log_level = strdup("loud");
    cr_assert_eq(jm_config_validate(&cfg, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "log.level: must be one of debug, info, warn, error");
    free(cfg.log_level);
    cfg.log_level = NULL;
    cr_assert_eq(jm_config_validate(&cfg, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "log.level: must be set");
    cfg.log_level = strdup("warn");
    free(cfg.queues[0].name);
    cfg.queues[0].name = NULL;
    cfg.n_queues = 0;
    cr_assert_eq(jm_config_validate(&cfg, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "worker.queues: must name 1 to 64 queues");
    jm_config_free(&cfg);
}

/*----------------------------------------------------------------------------
 * Logging
 *--------------------------------------------------------------------------*/

Test(config, log_masks_password)
{
    jm_config cfg;
    jm_error err;
    setenv("REDIS_URL", "redis://alice:s3cret-p@ss@redis.local:6379/1", 1);
    cr_assert_eq(load_yaml_text(&cfg, &err, "worker:\n  handlers:\n    r: {exec: [a, b]}\n"), JM_OK,
                 "%s", err.msg);
    cr_redirect_stderr();
    jm_config_log(&cfg);
    fflush(stderr);
    char line[8192];
    cr_assert_not_null(fgets(line, sizeof(line), cr_get_redirected_stderr()));
    cr_assert_null(strstr(line, "s3cret"), "%s", line);
    cr_assert_not_null(strstr(line, "redis://alice:***@redis.local:6379/1"), "%s", line);
    cr_assert_not_null(strstr(line, "\\\"lease_ms\\\":15000"), "%s", line);
    cr_assert_not_null(strstr(line, "\\\"exec\\\":[\\\"a\\\",\\\"b\\\"]"), "%s", line);
    cr_assert_not_null(strstr(line, "\"msg\":\"effective configuration\""), "%s", line);
    jm_config_free(&cfg);
}

Test(config, log_masks_composed_password)
{
    jm_config cfg;
    jm_error err;
    setenv("REDIS_PASSWORD", "pw/with@odd:chars", 1);
    cr_assert_eq(LOAD0(&cfg, &err), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.redis_url, "redis://:pw/with@odd:chars@127.0.0.1:6379/0");
    cr_redirect_stderr();
    jm_config_log(&cfg);
    fflush(stderr);
    char line[8192];
    cr_assert_not_null(fgets(line, sizeof(line), cr_get_redirected_stderr()));
    cr_assert_null(strstr(line, "pw/with"), "%s", line);
    cr_assert_null(strstr(line, "odd:chars"), "%s", line);
    cr_assert_not_null(strstr(line, "redis://:***@127.0.0.1:6379/0"), "%s", line);
    jm_config_free(&cfg);
}

/*----------------------------------------------------------------------------
 * janitor.schedules (YAML only)
 *--------------------------------------------------------------------------*/

Test(config, janitor_schedules_from_yaml)
{
    jm_config cfg;
    jm_error err;
    const char *yaml = "janitor:\n"
                       "  schedules:\n"
                       "    - name: nightly\n"
                       "      cron: \"30 2 * * *\"\n"
                       "      tz: Europe/Berlin\n"
                       "      missed: catch_up\n"
                       "      catch_up_max: 3\n"
                       "      job: {type: report, queue: r, payload: {n: 5, f: 1.5, s: '7', b: "
                       "true, z: ~}}\n";
    cr_assert_eq(load_yaml_text(&cfg, &err, yaml), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.janitor_schedules,
                     "[{\"name\":\"nightly\",\"cron\":\"30 2 * * *\",\"tz\":\"Europe/Berlin\","
                     "\"missed\":\"catch_up\",\"catch_up_max\":3,\"job\":{\"type\":\"report\","
                     "\"queue\":\"r\",\"payload\":{\"n\":5,\"f\":1.5,\"s\":\"7\",\"b\":true,"
                     "\"z\":null}}}]");
    jm_config_free(&cfg);
    cr_assert_eq(load_yaml_text(&cfg, &err, "janitor:\n  schedules:\n"), JM_OK, "%s", err.msg);
    cr_assert_null(cfg.janitor_schedules);
    jm_config_free(&cfg);
}

Test(config, janitor_schedules_errors_name_line_and_field)
{
    expect_yaml_error("janitor:\n  schedules: {a: 1}\n",
                      "2: janitor.schedules: must be a sequence of schedules (name, cron, tz, "
                      "job, ...)");
    expect_yaml_error("janitor:\n  schedules:\n    - name: a\n      cron: '61 * * * *'\n"
                      "      job: {type: t}\n",
                      "4: janitor.schedules[0].cron: cron minute field \"61\": not a valid value");
    expect_yaml_error("janitor:\n  schedules:\n    - name: a\n      cron: '* * * * *'\n"
                      "      tz: Nowhere/X\n      job: {type: t}\n",
                      "5: janitor.schedules[0].tz: unknown time zone \"Nowhere/X\"");
    expect_yaml_error("janitor:\n  schedules:\n    - name: a\n      cron: '* * * * *'\n"
                      "      job: {queue: q}\n",
                      "5: janitor.schedules[0].job.type: job.type is required");
    expect_yaml_error("janitor:\n  schedules:\n    - {name: a, cron: '* * * * *', job: {type: t}}\n"
                      "    - {name: a, cron: '0 * * * *', job: {type: t}}\n",
                      "4: janitor.schedules[1]: a second schedule named a");
}

/*----------------------------------------------------------------------------
 * janitor.queue_limits (YAML only)
 *--------------------------------------------------------------------------*/

Test(config, janitor_queue_limits_from_yaml)
{
    jm_config cfg;
    jm_error err;
    const char *yaml = "janitor:\n"
                       "  queue_limits:\n"
                       "    scrape: {rate: {n: 60, per_s: 60}}\n"
                       "    solver:\n"
                       "      concurrency: 4\n"
                       "      types: {big: {concurrency: 1}, small: ~}\n";
    cr_assert_eq(load_yaml_text(&cfg, &err, yaml), JM_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.janitor_queue_limits,
                     "{\"scrape\":{\"rate\":{\"n\":60,\"per_s\":60}},\"solver\":{\"concurrency\":4,"
                     "\"types\":{\"big\":{\"concurrency\":1},\"small\":null}}}");
    jm_config_free(&cfg);
}

Test(config, janitor_queue_limits_errors_name_line_and_field)
{
    expect_yaml_error("janitor:\n  queue_limits: [a]\n",
                      "2: janitor.queue_limits: must be a mapping of queue name to limits");
    expect_yaml_error("janitor:\n  queue_limits:\n    'a b': {concurrency: 1}\n",
                      "3: janitor.queue_limits.a b: a queue name is 1-64 of [A-Za-z0-9_.-]");
    expect_yaml_error("janitor:\n  queue_limits:\n    q:\n      concurrency: 0\n",
                      "4: janitor.queue_limits.q.concurrency: concurrency must be an integer "
                      "from 1 to 1000000, or null");
    expect_yaml_error("janitor:\n  queue_limits:\n    q:\n      rate: {n: 5}\n",
                      "4: janitor.queue_limits.q.rate.per_s: rate.per_s must be a number of "
                      "seconds from 0.001 to 86400");
}
