/* fuzz_config.c - libFuzzer target: the configuration loader, YAML file +
 * environment + flags, as every service runs it at start.
 *
 * Input: YAML, then optionally a line "%%" followed by NAME=VALUE lines
 * (environment; only names starting with JOBMILL_ or REDIS_ are set), then
 * optionally another "%%" line followed by one flag per line (--config
 * excepted: the fuzzer must not read whatever path it invents). The YAML is
 * written to a file passed as --config, so the file path of jm_config_load
 * is the one exercised; the YAML alone also goes through
 * jm_config_load_yaml on top of the defaults.
 *
 * Invariants: a configuration that loads passes jm_config_validate again,
 * keeps heartbeat_ms < lease_ms and backoff_base_ms <= backoff_max_ms, has
 * 1-64 queues and well-formed handlers (argv[0] present, NULL-terminated),
 * and can be logged (the password-masking path) and freed; a refusal has a
 * one-line message.
 */
#include <fcntl.h>
#include <unistd.h>
#include "fuzz_common.h"
#include "jobmill/config.h"
#include "jobmill/log.h"

static char yaml_path[64];
static int yaml_fd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(yaml_path, sizeof(yaml_path), "/tmp/jm-fuzz-config-%d.yaml", (int)getpid());
    yaml_fd = open(yaml_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (yaml_fd < 0)
        abort();
    /* --help and --version print to stdout; the effective configuration is
     * logged at info: keep the fuzzer's output readable */
    if (freopen("/dev/null", "w", stdout) == NULL)
        abort();
    jm_log_init("fuzz", JM_LOG_ERROR);
    return 0;
}

static void
check_config(const jm_config *cfg)
{
    jm_error err;
    jm_error_clear(&err);
    FUZZ_CHECK(jm_config_validate(cfg, &err) == JM_OK, "loaded but invalid: %s", err.msg);
    FUZZ_CHECK(cfg->heartbeat_ms < cfg->lease_ms, "%d >= %d", cfg->heartbeat_ms, cfg->lease_ms);
    FUZZ_CHECK(cfg->backoff_base_ms <= cfg->backoff_max_ms, "backoff");
    FUZZ_CHECK(cfg->n_queues >= 1 && cfg->n_queues <= JM_CFG_MAX_QUEUES, "%d queues",
               cfg->n_queues);
    for (int i = 0; i < cfg->n_queues; i++)
        FUZZ_CHECK(cfg->queues[i].name != NULL && cfg->queues[i].weight >= 1, "queue %d", i);
    FUZZ_CHECK(cfg->n_handlers >= 0 && cfg->n_handlers <= JM_CFG_MAX_HANDLERS, "%d handlers",
               cfg->n_handlers);
    for (int i = 0; i < cfg->n_handlers; i++) {
        const jm_cfg_handler *h = &cfg->handlers[i];
        FUZZ_CHECK(h->type != NULL && h->argv != NULL && h->argv[0] != NULL, "handler %d", i);
        FUZZ_CHECK(jm_config_handler(cfg, h->type) != NULL, "handler %s not found", h->type);
        FUZZ_CHECK(h->n_permanent_exit_codes >= 0 &&
                       h->n_permanent_exit_codes <= JM_CFG_MAX_EXIT_CODES,
                   "exit codes");
    }
    FUZZ_CHECK(cfg->redis_url != NULL && cfg->prefix != NULL, "unset strings");
    jm_config_log(cfg);
}

static void
check_refusal(int rc, const jm_error *err)
{
    FUZZ_CHECK(rc == JM_ERR_INVALID || rc == JM_ERR_USAGE || rc == JM_ERR_NOMEM, "rc %d", rc);
    if (rc == JM_ERR_INVALID) {
        FUZZ_CHECK(err->msg[0] != '\0', "refusal without a message");
        FUZZ_CHECK(strchr(err->msg, '\n') == NULL, "multi-line message: %s", err->msg);
    }
}

#define MAX_ENV 32
#define MAX_ARGS 32

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* split at "\n%%\n" markers */
    const uint8_t *parts[3] = {data, NULL, NULL};
    size_t lens[3] = {size, 0, 0};
    for (int k = 0; k < 2; k++) {
        const uint8_t *p = parts[k];
        size_t n = lens[k];
        const uint8_t *m = NULL;
        for (size_t i = 0; i + 4 <= n; i++)
            if (memcmp(p + i, "\n%%\n", 4) == 0) {
                m = p + i;
                break;
            }
        if (m == NULL)
            break;
        lens[k] = (size_t)(m - p);
        parts[k + 1] = m + 4;
        lens[k + 1] = n - lens[k] - 4;
    }

    /* 1: the YAML alone, over the defaults */
    jm_config cfg;
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_config_defaults(&cfg);
    FUZZ_CHECK(rc == JM_OK, "defaults");
    rc = jm_config_load_yaml(&cfg, "fuzz.yaml", (const char *)parts[0], lens[0], &err);
    if (rc == JM_OK && jm_config_validate(&cfg, &err) == JM_OK)
        check_config(&cfg);
    else if (rc != JM_OK)
        check_refusal(rc, &err);
    jm_config_free(&cfg);

    /* 2: file + environment + flags through jm_config_load */
    if (ftruncate(yaml_fd, 0) != 0 || pwrite(yaml_fd, parts[0], lens[0], 0) != (ssize_t)lens[0])
        abort();
    char *envs[MAX_ENV];
    int n_env = 0;
    if (parts[1] != NULL) {
        char *text = fuzz_strndup(parts[1], lens[1]);
        for (char *save = NULL, *line = strtok_r(text, "\n", &save);
             line != NULL && n_env < MAX_ENV; line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (eq == NULL ||
                (strncmp(line, "JOBMILL_", 8) != 0 && strncmp(line, "REDIS_", 6) != 0))
                continue;
            *eq = '\0';
            if (setenv(line, eq + 1, 1) == 0)
                envs[n_env++] = strdup(line);
        }
        free(text);
    }
    char *argv[MAX_ARGS + 3];
    int argc = 0;
    argv[argc++] = "jobmill-fuzz";
    char config_flag[96];
    snprintf(config_flag, sizeof(config_flag), "--config=%s", yaml_path);
    argv[argc++] = config_flag;
    char *flags = parts[2] != NULL ? fuzz_strndup(parts[2], lens[2]) : NULL;
    if (flags != NULL)
        for (char *save = NULL, *line = strtok_r(flags, "\n", &save);
             line != NULL && argc < MAX_ARGS + 2; line = strtok_r(NULL, "\n", &save))
            if (strncmp(line, "--config", 8) != 0) /* the file is ours (no /dev/stdin) */
                argv[argc++] = line;
    argv[argc] = NULL;
    static const char *const services[] = {"api", "worker", "janitor"};
    jm_error_clear(&err);
    rc = jm_config_load(&cfg, services[size % 3], argc, argv, &err);
    if (rc == JM_OK)
        check_config(&cfg);
    else
        check_refusal(rc, &err);
    jm_config_free(&cfg);
    free(flags);
    for (int i = 0; i < n_env; i++) {
        unsetenv(envs[i]);
        free(envs[i]);
    }
    return 0;
}
