/* config.c - the settings table, and defaults < YAML < env < flags.
 *
 * Every setting is one row of `fields` below: its YAML key, env var, flag,
 * type, bounds, default and place in jm_config. Defaults, env, flags,
 * validation, --help and the logged JSON all walk that table; only the Redis
 * URL composed from REDIS_HOST/PORT/DB/PASSWORD and the YAML-only handlers are
 * special. The YAML reader is in config_yaml.c.
 *
 * Every string and array in a jm_config is owned by it (see config.h); the
 * setters replace a value only once the new one is fully built, so a failed
 * set leaves cfg as it was and jm_config_free is always safe.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_internal.h"
#include "jobmill/log.h"
#include "jobmill/queue.h"

#ifndef JM_VERSION
#define JM_VERSION "0.0.0-dev"
#endif

#define CONFIG_FILE_MAX (1024L * 1024L) /* a config file over 1 MiB is a mistake */

enum {
    SVC_API = 1,
    SVC_WORKER = 2,
    SVC_JANITOR = 4,
    SVC_ALL = SVC_API | SVC_WORKER | SVC_JANITOR,
};

/* Value checks for string settings: NULL when fine, else the problem. */
static const char *check_url(const char *v);
static const char *check_listen(const char *v);
static const char *check_prefix(const char *v);
static const char *check_worker_id(const char *v);
static const char *check_level(const char *v);

/* clang-format off: the table is aligned by hand, one setting a row */
#define OFF(field) offsetof(jm_config, field)
#define FSTR(k, e, fl, a, field, def, chk, svc, h)                                                 \
    {                                                                                              \
        .key = k, .env = e, .flag = fl, .arg = a, .type = JM_CFG_STR, .off = OFF(field),           \
        .def_str = def, .check = chk, .services = svc, .help = h                                   \
    }
#define FINT(k, e, fl, a, field, def, lo, hi, svc, h)                                              \
    {                                                                                              \
        .key = k, .env = e, .flag = fl, .arg = a, .type = JM_CFG_INT, .off = OFF(field),           \
        .def_num = def, .min = lo, .max = hi, .services = svc, .help = h                           \
    }
#define FLONG(k, e, fl, a, field, def, lo, hi, svc, h)                                             \
    {                                                                                              \
        .key = k, .env = e, .flag = fl, .arg = a, .type = JM_CFG_LONG, .off = OFF(field),          \
        .def_num = def, .min = lo, .max = hi, .services = svc, .help = h                           \
    }

/* The table: the one place a setting is named. Flags are the env name
 * lower-cased without JOBMILL_, underscores as dashes (docs/configuration.md). */
static const jm_cfg_field fields[] = {
    FSTR("redis.url", "REDIS_URL", "redis-url", "URL", redis_url, "redis://127.0.0.1:6379/0",
         check_url, SVC_ALL, "Redis server, redis://[[user]:password@]host:port/db"),
    FSTR("redis.prefix", "JOBMILL_PREFIX", "prefix", "PREFIX", prefix, "jm", check_prefix, SVC_ALL,
         "key prefix of every Redis key"),
    FINT("redis.timeout_ms", "JOBMILL_REDIS_TIMEOUT_MS", "redis-timeout-ms", "MS", redis_timeout_ms,
         5000, 100, 60000, SVC_ALL, "Redis connect and command timeout"),
    FSTR("redis.sentinels", "REDIS_SENTINELS", "redis-sentinels", "HOST:PORT,...", redis_sentinels,
         NULL, NULL, SVC_ALL,
         "find the primary through these Redis Sentinels (beats REDIS_URL's host and port)"),
    FSTR("redis.sentinel_master", "REDIS_SENTINEL_MASTER", "redis-sentinel-master", "NAME",
         redis_sentinel_master, NULL, NULL, SVC_ALL, "the master name the sentinels monitor"),
    FSTR("redis.cluster", "REDIS_CLUSTER", "redis-cluster", "HOST:PORT,...", redis_cluster, NULL,
         NULL, SVC_ALL,
         "Redis Cluster seed nodes (beats REDIS_URL's host, port and db; credentials stay)"),
    FSTR("api.listen", "JOBMILL_LISTEN", "listen", "HOST:PORT", api_listen, "0.0.0.0:8080",
         check_listen, SVC_API, "HTTP API address"),
    FSTR("api.tokens_file", "JOBMILL_API_TOKENS_FILE", "api-tokens-file", "FILE", api_tokens_file,
         NULL, NULL, SVC_API, "bearer tokens, one a line; unset = no auth"),
    FSTR("api.admin_tokens_file", "JOBMILL_API_ADMIN_TOKENS_FILE", "api-admin-tokens-file", "FILE",
         api_admin_tokens_file, NULL, NULL, SVC_API,
         "admin bearer tokens; when set, only these may cancel, retry, pause, resume, set limits"),
    FLONG("api.max_body_bytes", "JOBMILL_MAX_BODY_BYTES", "max-body-bytes", "BYTES",
          api_max_body_bytes, 1048576, 1024, 268435456, SVC_API, "request body limit"),
    FINT("api.max_waiters", "JOBMILL_MAX_WAITERS", "max-waiters", "N", api_max_waiters, 256, 0,
         100000, SVC_API, "concurrent ?wait long-polls"),
    FINT("api.max_queues", "JOBMILL_MAX_QUEUES", "max-queues", "N", api_max_queues, 1000, 1,
         1000000, SVC_API, "distinct queues a submit may create"),
    FINT("api.submit_replicas", "JOBMILL_SUBMIT_REPLICAS", "submit-replicas", "N",
         api_submit_replicas, 0, 0, 16, SVC_API,
         "a submit answers only after WAIT confirms this many replicas (0 = do not wait)"),
    FINT("api.drain_delay_ms", "JOBMILL_API_DRAIN_DELAY_MS", "api-drain-delay-ms", "MS",
         api_drain_delay_ms, 5000, 0, 600000, SVC_API,
         "after SIGTERM, /readyz fails this long before the listener closes"),
    FINT("api.threads", "JOBMILL_API_THREADS", "api-threads", "N", api_threads, 64, 2, 1024,
         SVC_API, "HTTP worker threads"),
    FINT("api.request_timeout_ms", "JOBMILL_API_REQUEST_TIMEOUT_MS", "api-request-timeout-ms", "MS",
         api_request_timeout_ms, 5000, 100, 600000, SVC_API,
         "a request's headers must arrive within this, each 64 KiB of its body and each write "
         "stall too: how long a slow client may hold an HTTP thread"),
    {.key = "worker.metrics_listen",
     .env = "JOBMILL_METRICS_LISTEN",
     .flag = "metrics-listen",
     .arg = "HOST:PORT",
     .type = JM_CFG_STR,
     .off = OFF(worker_metrics_listen),
     .twin = OFF(janitor_metrics_listen),
     .def_str = "0.0.0.0:9090",
     .check = check_listen,
     .services = SVC_WORKER | SVC_JANITOR,
     .help = "health and metrics HTTP address"},
    FSTR("worker.id", "JOBMILL_WORKER_ID", "worker-id", "ID", worker_id, NULL, check_worker_id,
         SVC_WORKER, "worker id; unset = host-pid-random"),
    {.key = "worker.queues",
     .env = "JOBMILL_QUEUES",
     .flag = "queues",
     .arg = "Q1,Q2",
     .type = JM_CFG_QUEUES,
     .off = OFF(queues),
     .def_str = "default",
     .services = SVC_WORKER,
     .help = "queues in priority order"},
    FINT("worker.concurrency", "JOBMILL_CONCURRENCY", "concurrency", "N", concurrency, 4, 1, 1024,
         SVC_WORKER, "jobs in flight per process"),
    FINT("worker.lease_ms", "JOBMILL_LEASE_MS", "lease-ms", "MS", lease_ms, 15000, 100, 3600000,
         SVC_WORKER, "lease length"),
    FINT("worker.heartbeat_ms", "JOBMILL_HEARTBEAT_MS", "heartbeat-ms", "MS", heartbeat_ms, 5000,
         10, 3600000, SVC_WORKER | SVC_JANITOR,
         "lease renewal period (less than the lease); the janitor prunes workers silent 3x this"),
    FINT("worker.shutdown_grace_ms", "JOBMILL_SHUTDOWN_GRACE_MS", "shutdown-grace-ms", "MS",
         shutdown_grace_ms, 25000, 0, 3600000, SVC_WORKER, "drain budget after SIGTERM"),
    FLONG("worker.max_result_bytes", "JOBMILL_MAX_RESULT_BYTES", "max-result-bytes", "BYTES",
          max_result_bytes, 1048576, 1024, 268435456, SVC_WORKER, "result (handler stdout) limit"),
    FINT("worker.backoff_base_ms", "JOBMILL_BACKOFF_BASE_MS", "backoff-base-ms", "MS",
         backoff_base_ms, 1000, 1, 86400000, SVC_WORKER, "retry backoff base"),
    FINT("worker.backoff_max_ms", "JOBMILL_BACKOFF_MAX_MS", "backoff-max-ms", "MS", backoff_max_ms,
         300000, 1, 86400000, SVC_WORKER, "retry backoff cap"),
    {.key = "worker.handlers",
     .type = JM_CFG_HANDLERS,
     .off = OFF(handlers),
     .services = SVC_WORKER,
     .help = "exec handlers by job type (YAML only)"},
    FSTR("janitor.metrics_listen", NULL, NULL, "HOST:PORT", janitor_metrics_listen, "0.0.0.0:9090",
         check_listen, SVC_JANITOR, "health and metrics HTTP address"),
    FINT("janitor.interval_ms", "JOBMILL_JANITOR_INTERVAL_MS", "janitor-interval-ms", "MS",
         janitor_interval_ms, 1000, 10, 3600000, SVC_JANITOR, "janitor tick"),
    FINT("janitor.batch", "JOBMILL_JANITOR_BATCH", "janitor-batch", "N", janitor_batch, 500, 1,
         10000, SVC_JANITOR, "job ids per script call"),
    FINT("janitor.reconcile_every", "JOBMILL_JANITOR_RECONCILE_EVERY", "janitor-reconcile-every",
         "N", janitor_reconcile_every, 10, 1, 100000, SVC_JANITOR,
         "ticks between reconciler passes"),
    {.key = "janitor.schedules",
     .type = JM_CFG_SCHEDULES,
     .off = OFF(janitor_schedules),
     .services = SVC_JANITOR,
     .help = "cron schedules the janitor defines at start (YAML only; docs/schedules.md)"},
    {.key = "janitor.queue_limits",
     .type = JM_CFG_QUEUE_LIMITS,
     .off = OFF(janitor_queue_limits),
     .services = SVC_JANITOR,
     .help = "queue limits the janitor sets at start (YAML only; docs/limits.md)"},
    FINT("jobs.result_ttl_s", "JOBMILL_RESULT_TTL_S", "result-ttl-s", "SECONDS", result_ttl_s,
         JM_RESULT_TTL_DEFAULT_S, 1, JM_TTL_MAX_S, SVC_ALL,
         "retention of succeeded/canceled/expired jobs"),
    FINT("jobs.failed_ttl_s", "JOBMILL_FAILED_TTL_S", "failed-ttl-s", "SECONDS", failed_ttl_s,
         JM_FAILED_TTL_DEFAULT_S, 1, JM_TTL_MAX_S, SVC_ALL,
         "retention of failed (dead-letter) jobs"),
    FINT("logs.max_lines", "JOBMILL_LOGS_MAX_LINES", "logs-max-lines", "N", logs_max_lines, 1000, 1,
         100000, SVC_API | SVC_WORKER, "a job's log keeps its newest N lines"),
    FINT("logs.max_line_bytes", "JOBMILL_LOGS_MAX_LINE_BYTES", "logs-max-line-bytes", "BYTES",
         logs_max_line_bytes, 4096, 64, 1048576, SVC_API | SVC_WORKER,
         "a log line is cut to this many bytes (marked ...[truncated])"),
    FINT("logs.follow_max", "JOBMILL_LOGS_FOLLOW_MAX", "logs-follow-max", "N", logs_follow_max, 16,
         0, 10000, SVC_API, "concurrent GET /v1/jobs/{id}/logs?follow=1 streams per api process"),
    FINT("logs.follow_max_s", "JOBMILL_LOGS_FOLLOW_MAX_S", "logs-follow-max-s", "SECONDS",
         logs_follow_max_s, 3600, 1, 86400, SVC_API,
         "a ?follow=1 stream ends after this long even if the job has not"),
    FSTR("log.level", "JOBMILL_LOG_LEVEL", "log-level", "LEVEL", log_level, "info", check_level,
         SVC_ALL, "debug, info, warn or error"),
};
/* clang-format on */
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

_Static_assert(offsetof(jm_config, redis_url) == 0, "twin == 0 means no twin");

/*----------------------------------------------------------------------------
 * Field access and small checks
 *--------------------------------------------------------------------------*/

static char **
str_at(jm_config *cfg, size_t off)
{
    return (char **)(void *)((char *)cfg + off);
}

static const char *
cstr_at(const jm_config *cfg, size_t off)
{
    return *(char *const *)(const void *)((const char *)cfg + off);
}

static long
num_at(const jm_config *cfg, const jm_cfg_field *f)
{
    const void *p = (const char *)cfg + f->off;
    return f->type == JM_CFG_INT ? (long)*(const int *)p : *(const long *)p;
}

static void
store_num(jm_config *cfg, const jm_cfg_field *f, long v)
{
    void *p = (char *)cfg + f->off;
    if (f->type == JM_CFG_INT)
        *(int *)p = (int)v;
    else
        *(long *)p = v;
}

static void
replace_str(char **slot, char *value)
{
    free(*slot);
    *slot = value;
}

static bool
name_char(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || (colon && c == ':');
}

/* 1..max bytes of [A-Za-z0-9_.-], plus ':' when colon. */
static bool
name_ok(const char *s, size_t max, bool colon)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || !name_char(s[n], colon))
            return false;
    }
    return n > 0;
}

static const char *
check_url(const char *v)
{
    if (strncmp(v, "redis://", 8) != 0 || v[8] == '\0')
        return "must be a URL redis://[[user]:password@]host:port/db";
    return NULL;
}

static const char *
check_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    long port;
    if (colon == NULL || colon == v || strpbrk(v, " \t\r\n/") != NULL ||
        jm_cfg__parse_int(colon + 1, 1, 65535, &port) != JM_OK)
        return "must be host:port with a port between 1 and 65535";
    return NULL;
}

static const char *
check_prefix(const char *v)
{
    return name_ok(v, 64, true) ? NULL : "must be 1-64 of [A-Za-z0-9_.:-]";
}

static const char *
check_worker_id(const char *v)
{
    return name_ok(v, 128, true) ? NULL : "must be 1-128 of [A-Za-z0-9_.:-]";
}

static const char *
check_level(const char *v)
{
    jm_log_level level;
    return jm_log_level_parse(v, &level) == 0 ? NULL : "must be one of debug, info, warn, error";
}

static const jm_cfg_field *
find_off(jm_cfg_type type, size_t off)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (fields[i].type == type && fields[i].off == off)
            return &fields[i];
    }
    return NULL;
}

const jm_cfg_field *
jm_cfg__find(const char *section, const char *name)
{
    size_t len = strlen(section);
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *k = fields[i].key;
        if (strncmp(k, section, len) == 0 && k[len] == '.' && strcmp(k + len + 1, name) == 0)
            return &fields[i];
    }
    return NULL;
}

bool
jm_cfg__has_section(const char *section, size_t len)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (strncmp(fields[i].key, section, len) == 0 && fields[i].key[len] == '.')
            return true;
    }
    return false;
}

void
jm_cfg__printable(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; cap > 0 && n + 1 < cap && s[n] != '\0'; n++)
        dst[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (cap > 0)
        dst[n] = '\0';
}

int
jm_cfg__parse_int(const char *s, long min, long max, long *out)
{
    const char *p = s + (s[0] == '-');
    if (*p == '\0')
        return JM_ERR_INVALID;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return JM_ERR_INVALID;
    }
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || *end != '\0' || v < min || v > max)
        return JM_ERR_INVALID;
    *out = v;
    return JM_OK;
}

/*----------------------------------------------------------------------------
 * Queues and handlers
 *--------------------------------------------------------------------------*/

void
jm_cfg__free_queues(jm_cfg_queue *q, int n)
{
    for (int i = 0; i < n; i++) {
        free(q[i].name);
        q[i].name = NULL;
    }
}

void
jm_cfg__free_handler(jm_cfg_handler *h)
{
    free(h->type);
    for (size_t i = 0; h->argv != NULL && h->argv[i] != NULL; i++)
        free(h->argv[i]);
    free(h->argv);
    memset(h, 0, sizeof(*h));
}

void
jm_cfg__replace_queues(jm_config *cfg, jm_cfg_queue *q, int n)
{
    jm_cfg__free_queues(cfg->queues, cfg->n_queues);
    if (n > 0)
        memcpy(cfg->queues, q, (size_t)n * sizeof(*q));
    cfg->n_queues = n;
}

void
jm_cfg__replace_handlers(jm_config *cfg, jm_cfg_handler *h, int n)
{
    for (int i = 0; i < cfg->n_handlers; i++)
        jm_cfg__free_handler(&cfg->handlers[i]);
    if (n > 0)
        memcpy(cfg->handlers, h, (size_t)n * sizeof(*h));
    cfg->n_handlers = n;
}

int
jm_cfg__add_queue(jm_cfg_queue *q, int *n, const char *name, int weight, const char *src,
                  jm_error *err)
{
    char shown[JM_CFG_NAME_MAX + 1];
    jm_cfg__printable(shown, sizeof(shown), name);
    if (name[0] == '\0')
        return jm_error_set(err, JM_ERR_INVALID, "worker.queues", "%s: empty queue name", src);
    if (!name_ok(name, JM_CFG_NAME_MAX, false))
        return jm_error_set(err, JM_ERR_INVALID, "worker.queues",
                            "%s: queue name \"%s\" must be 1-64 of [A-Za-z0-9_.-]", src, shown);
    for (int i = 0; i < *n; i++) {
        if (strcmp(q[i].name, name) == 0)
            return jm_error_set(err, JM_ERR_INVALID, "worker.queues", "%s: duplicate queue \"%s\"",
                                src, shown);
    }
    if (*n >= JM_CFG_MAX_QUEUES)
        return jm_error_set(err, JM_ERR_INVALID, "worker.queues", "%s: more than %d queues", src,
                            JM_CFG_MAX_QUEUES);
    if (weight < 1 || weight > JM_CFG_WEIGHT_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "worker.queues",
                            "%s: weight must be an integer between 1 and %d", src,
                            JM_CFG_WEIGHT_MAX);
    q[*n].name = strdup(name);
    if (q[*n].name == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    q[*n].weight = weight;
    (*n)++;
    return JM_OK;
}

/* Parses a comma list "a, b,c" (weight 1 each) and replaces cfg's queues. */
static int
set_queue_list(jm_config *cfg, const char *list, const char *src, jm_error *err)
{
    jm_cfg_queue q[JM_CFG_MAX_QUEUES];
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *e = end;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char *name = strndup(p, (size_t)(e - p));
        int rc = name != NULL ? jm_cfg__add_queue(q, &n, name, 1, src, err)
                              : jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        free(name);
        if (rc != JM_OK) {
            jm_cfg__free_queues(q, n);
            return rc;
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    jm_cfg__replace_queues(cfg, q, n);
    return JM_OK;
}

/*----------------------------------------------------------------------------
 * Setting one value
 *--------------------------------------------------------------------------*/

static int
set_str(jm_config *cfg, const jm_cfg_field *f, const char *value, bool with_twin, const char *src,
        jm_error *err)
{
    const char *problem = NULL;
    if (value[0] == '\0')
        problem = f->def_str != NULL ? "must not be empty" : NULL;
    else if (f->check != NULL)
        problem = f->check(value);
    if (problem != NULL)
        return jm_error_set(err, JM_ERR_INVALID, f->key, "%s: %s", src, problem);

    bool twin = with_twin && f->twin != 0;
    char *copy = value[0] != '\0' ? strdup(value) : NULL;
    char *copy2 = twin && copy != NULL ? strdup(value) : NULL;
    if ((value[0] != '\0' && copy == NULL) || (twin && copy != NULL && copy2 == NULL)) {
        free(copy);
        free(copy2);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    replace_str(str_at(cfg, f->off), copy);
    if (twin)
        replace_str(str_at(cfg, f->twin), copy2);
    return JM_OK;
}

int
jm_cfg__set(jm_config *cfg, const jm_cfg_field *f, const char *value, bool with_twin,
            const char *src, jm_error *err)
{
    long n;
    switch (f->type) {
    case JM_CFG_STR: return set_str(cfg, f, value, with_twin, src, err);
    case JM_CFG_INT:
    case JM_CFG_LONG:
        if (jm_cfg__parse_int(value, f->min, f->max, &n) != JM_OK)
            return jm_error_set(err, JM_ERR_INVALID, f->key,
                                "%s: must be an integer between %ld and %ld", src, f->min, f->max);
        store_num(cfg, f, n);
        return JM_OK;
    case JM_CFG_QUEUES: return set_queue_list(cfg, value, src, err);
    case JM_CFG_HANDLERS: break;
    case JM_CFG_SCHEDULES:
    case JM_CFG_QUEUE_LIMITS:
        return jm_error_set(err, JM_ERR_INVALID, f->key, "%s: is set in the YAML file only", src);
    }
    return jm_error_set(err, JM_ERR_INVALID, f->key, "%s: must be a mapping of job type to handler",
                        src);
}

/*----------------------------------------------------------------------------
 * Defaults, file, environment, flags
 *--------------------------------------------------------------------------*/

int
jm_config_defaults(jm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_FIELDS; i++) {
        const jm_cfg_field *f = &fields[i];
        if (f->type == JM_CFG_INT || f->type == JM_CFG_LONG)
            store_num(cfg, f, f->def_num);
        else if (f->def_str != NULL &&
                 jm_cfg__set(cfg, f, f->def_str, false, f->key, NULL) != JM_OK)
            return JM_ERR_NOMEM; /* the defaults are valid: only memory can fail */
    }
    return JM_OK;
}

/* Reads path (at most CONFIG_FILE_MAX bytes) and applies it as YAML. */
static int
load_file(jm_config *cfg, const char *path, jm_error *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    replace_str(&cfg->config_file, copy);

    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return jm_error_set(err, JM_ERR_INVALID, "config", "%s: cannot read: %s", path,
                            strerror(errno));
    char *buf = malloc((size_t)CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(fp);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    size_t len = fread(buf, 1, (size_t)CONFIG_FILE_MAX + 1, fp);
    int rc = JM_OK;
    if (ferror(fp))
        rc = jm_error_set(err, JM_ERR_INVALID, "config", "%s: cannot read: %s", path,
                          strerror(errno));
    else if (len > (size_t)CONFIG_FILE_MAX)
        rc = jm_error_set(err, JM_ERR_INVALID, "config", "%s: larger than %ld bytes", path,
                          CONFIG_FILE_MAX);
    fclose(fp);
    if (rc == JM_OK)
        rc = jm_config_load_yaml(cfg, path, buf, len, err);
    free(buf);
    return rc;
}

static const char *
env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL; /* empty = unset */
}

/* Without REDIS_URL, composes redis://[:password@]host:port/db from
 * REDIS_HOST/PORT/DB/PASSWORD when any of them is set. The password is used
 * as written: the URL's userinfo ends at its last '@' (as in redis.c). */
static int
compose_redis_url(jm_config *cfg, jm_error *err)
{
    const char *host = env_value("REDIS_HOST"), *port = env_value("REDIS_PORT");
    const char *db = env_value("REDIS_DB"), *pass = env_value("REDIS_PASSWORD");
    long port_n = 6379, db_n = 0;
    if (env_value("REDIS_URL") != NULL ||
        (host == NULL && port == NULL && db == NULL && pass == NULL))
        return JM_OK;
    if (host != NULL && strpbrk(host, "@/ \t\r\n") != NULL)
        return jm_error_set(err, JM_ERR_INVALID, "redis.url",
                            "REDIS_HOST: must be a host name or address");
    if (port != NULL && jm_cfg__parse_int(port, 1, 65535, &port_n) != JM_OK)
        return jm_error_set(err, JM_ERR_INVALID, "redis.url",
                            "REDIS_PORT: must be an integer between 1 and 65535");
    if (db != NULL && jm_cfg__parse_int(db, 0, 1000, &db_n) != JM_OK)
        return jm_error_set(err, JM_ERR_INVALID, "redis.url",
                            "REDIS_DB: must be an integer between 0 and 1000");
    if (host == NULL)
        host = "127.0.0.1";
    size_t cap = strlen(host) + (pass != NULL ? strlen(pass) : 0) + 48;
    char *url = malloc(cap);
    if (url == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    snprintf(url, cap, "redis://%s%s%s%s:%ld/%ld", pass != NULL ? ":" : "",
             pass != NULL ? pass : "", pass != NULL ? "@" : "", host, port_n, db_n);
    replace_str(&cfg->redis_url, url);
    return JM_OK;
}

static int
apply_env(jm_config *cfg, jm_error *err)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        const jm_cfg_field *f = &fields[i];
        const char *v = f->env != NULL ? env_value(f->env) : NULL;
        int rc = v != NULL ? jm_cfg__set(cfg, f, v, true, f->env, err) : JM_OK;
        if (rc != JM_OK)
            return rc;
    }
    return compose_redis_url(cfg, err);
}

static const jm_cfg_field *
find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *fl = fields[i].flag;
        if (fl != NULL && strncmp(fl, name, len) == 0 && fl[len] == '\0')
            return &fields[i];
    }
    return NULL;
}

static bool
is_flag(const char *name, size_t len, const char *want)
{
    return strncmp(name, want, len) == 0 && want[len] == '\0';
}

/* Walks argv[1..]. The first pass (apply false) checks flag names and that
 * each has a value, prints and returns JM_ERR_USAGE on --help/--version, and
 * points *config_file at the --config value (borrowed from argv). The second
 * pass (apply true) stores the values. */
static int
walk_flags(jm_config *cfg, const char *service, int argc, char **argv, bool apply,
           const char **config_file, jm_error *err)
{
    for (int i = 1; i < argc; i++) {
        char shown[80];
        const char *arg = strcmp(argv[i], "-h") == 0 ? "--help" : argv[i];
        jm_cfg__printable(shown, sizeof(shown), arg);
        if (arg[0] != '-')
            return jm_error_set(err, JM_ERR_INVALID, NULL, "unexpected argument \"%s\"", shown);
        if (arg[1] != '-' || arg[2] == '\0')
            return jm_error_set(err, JM_ERR_INVALID, NULL, "unknown flag %s", shown);

        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        int nlen = len < sizeof(shown) - 3 ? (int)len : (int)sizeof(shown) - 3;
        if (is_flag(name, len, "help") || is_flag(name, len, "version")) {
            if (eq != NULL)
                return jm_error_set(err, JM_ERR_INVALID, NULL, "--%.*s: takes no value", nlen,
                                    shown + 2);
            if (apply)
                continue;
            if (name[0] == 'h')
                jm_config_usage(service, stdout);
            else
                printf("jobmill-%s %s\n", service != NULL ? service : "jobmill", JM_VERSION);
            fflush(stdout);
            return jm_error_set(err, JM_ERR_USAGE, NULL, "--%s was given", name);
        }
        bool is_config = is_flag(name, len, "config");
        const jm_cfg_field *f = is_config ? NULL : find_flag(name, len);
        if (!is_config && f == NULL)
            return jm_error_set(err, JM_ERR_INVALID, NULL, "unknown flag --%.*s", nlen, shown + 2);
        const char *value = NULL;
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            value = argv[++i];
        if (value == NULL || (is_config && value[0] == '\0'))
            return jm_error_set(err, JM_ERR_INVALID, f != NULL ? f->key : "config",
                                "--%.*s: missing value", nlen, shown + 2);
        if (is_config) {
            if (!apply)
                *config_file = value;
        } else if (apply) {
            char src[80];
            snprintf(src, sizeof(src), "--%s", f->flag);
            int rc = jm_cfg__set(cfg, f, value, true, src, err);
            if (rc != JM_OK)
                return rc;
        }
    }
    return JM_OK;
}

int
jm_config_load(jm_config *cfg, const char *service, int argc, char **argv, jm_error *err)
{
    jm_error_clear(err);
    int rc = jm_config_defaults(cfg);
    if (rc != JM_OK)
        return jm_error_set(err, rc, NULL, "out of memory");
    const char *file = NULL;
    rc = walk_flags(cfg, service, argc, argv, false, &file, err);
    if (rc == JM_OK && file != NULL)
        rc = load_file(cfg, file, err);
    if (rc == JM_OK)
        rc = apply_env(cfg, err);
    if (rc == JM_OK)
        rc = walk_flags(cfg, service, argc, argv, true, NULL, err);
    if (rc == JM_OK)
        rc = jm_config_validate(cfg, err);
    return rc;
}

/*----------------------------------------------------------------------------
 * Validation, lookup, usage, logging, free
 *--------------------------------------------------------------------------*/

int
jm_config_validate(const jm_config *cfg, jm_error *err)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        const jm_cfg_field *f = &fields[i];
        const char *s = f->type == JM_CFG_STR ? cstr_at(cfg, f->off) : NULL;
        const char *problem = NULL;
        if (f->type == JM_CFG_STR && s == NULL && f->def_str != NULL)
            problem = "must be set";
        else if (s != NULL && s[0] == '\0')
            problem = "must not be empty";
        else if (s != NULL && f->check != NULL)
            problem = f->check(s);
        if (problem != NULL)
            return jm_error_set(err, JM_ERR_INVALID, f->key, "%s: %s", f->key, problem);
        if ((f->type == JM_CFG_INT || f->type == JM_CFG_LONG) &&
            (num_at(cfg, f) < f->min || num_at(cfg, f) > f->max))
            return jm_error_set(err, JM_ERR_INVALID, f->key,
                                "%s: must be an integer between %ld and %ld", f->key, f->min,
                                f->max);
    }
    if (cfg->n_queues < 1 || cfg->n_queues > JM_CFG_MAX_QUEUES)
        return jm_error_set(err, JM_ERR_INVALID, "worker.queues",
                            "worker.queues: must name 1 to %d queues", JM_CFG_MAX_QUEUES);
    for (int i = 0; i < cfg->n_queues; i++) {
        const jm_cfg_queue *q = &cfg->queues[i];
        if (q->name == NULL || !name_ok(q->name, JM_CFG_NAME_MAX, false) || q->weight < 1 ||
            q->weight > JM_CFG_WEIGHT_MAX)
            return jm_error_set(err, JM_ERR_INVALID, "worker.queues",
                                "worker.queues: entry %d has a bad name or weight", i + 1);
    }
    if (cfg->n_handlers < 0 || cfg->n_handlers > JM_CFG_MAX_HANDLERS)
        return jm_error_set(err, JM_ERR_INVALID, "worker.handlers",
                            "worker.handlers: more than %d handlers", JM_CFG_MAX_HANDLERS);
    if (cfg->heartbeat_ms >= cfg->lease_ms)
        return jm_error_set(err, JM_ERR_INVALID, "worker.heartbeat_ms",
                            "worker.heartbeat_ms: must be less than worker.lease_ms (%d >= %d)",
                            cfg->heartbeat_ms, cfg->lease_ms);
    if (cfg->backoff_base_ms > cfg->backoff_max_ms)
        return jm_error_set(err, JM_ERR_INVALID, "worker.backoff_base_ms",
                            "worker.backoff_base_ms: must not exceed worker.backoff_max_ms "
                            "(%d > %d)",
                            cfg->backoff_base_ms, cfg->backoff_max_ms);
    jm_error_clear(err);
    return JM_OK;
}

const jm_cfg_handler *
jm_config_handler(const jm_config *cfg, const char *type)
{
    for (int i = 0; type != NULL && i < cfg->n_handlers; i++) {
        if (strcmp(cfg->handlers[i].type, type) == 0)
            return &cfg->handlers[i];
    }
    return NULL;
}

static unsigned
service_bits(const char *service)
{
    if (service != NULL && strcmp(service, "api") == 0)
        return SVC_API;
    if (service != NULL && strcmp(service, "worker") == 0)
        return SVC_WORKER;
    if (service != NULL && strcmp(service, "janitor") == 0)
        return SVC_JANITOR;
    return SVC_ALL;
}

void
jm_config_usage(const char *service, FILE *out)
{
    unsigned svc = service_bits(service);
    fprintf(out,
            "Usage: jobmill-%s [--config FILE] [--FLAG VALUE | --FLAG=VALUE]...\n\n"
            "Each setting comes from, last one winning: its default, the YAML file,\n"
            "the environment, the flag.\n\n"
            "  --config FILE\n        YAML file: sections redis, api, worker, janitor, jobs, logs, "
            "log\n"
            "  --help\n        print this help and exit\n"
            "  --version\n        print the version and exit\n",
            service != NULL ? service : "jobmill");
    for (size_t i = 0; i < N_FIELDS; i++) {
        const jm_cfg_field *f = &fields[i];
        if (f->flag == NULL || (f->services & svc) == 0)
            continue;
        fprintf(out, "  --%s %s\n        %s\n        env %s, yaml %s", f->flag, f->arg, f->help,
                f->env, f->key);
        const jm_cfg_field *twin = f->twin != 0 ? find_off(JM_CFG_STR, f->twin) : NULL;
        if (twin != NULL)
            fprintf(out, " and %s", twin->key);
        if (f->type == JM_CFG_INT || f->type == JM_CFG_LONG)
            fprintf(out, "\n        default: %ld (%ld..%ld)\n", f->def_num, f->min, f->max);
        else
            fprintf(out, "\n        default: %s\n", f->def_str != NULL ? f->def_str : "unset");
    }
    fputs("  REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD\n"
          "        env only: without REDIS_URL, compose redis://[:password@]host:port/db\n"
          "  REDIS_SENTINEL_PASSWORD\n"
          "        env only: the password the sentinels themselves require\n",
          out);
    if (svc & SVC_WORKER)
        fputs("  worker.handlers\n"
              "        YAML only: job type -> {exec: [argv...], timeout_s, "
              "permanent_exit_codes}\n",
              out);
}

/* Returns a new copy of url with the password (or a colon-less userinfo)
 * replaced by "***"; NULL on no memory. */
static char *
mask_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *start = scheme != NULL ? scheme + 3 : url;
    const char *at = strrchr(start, '@');
    if (at == NULL)
        return strdup(url);
    const char *colon = memchr(start, ':', (size_t)(at - start));
    size_t keep = (size_t)((colon != NULL ? colon + 1 : start) - url);
    size_t cap = keep + 3 + strlen(at) + 1;
    char *out = malloc(cap);
    if (out != NULL)
        snprintf(out, cap, "%.*s***%s", (int)keep, url, at);
    return out;
}

static json_t *
json_str(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    return j != NULL ? j : json_string("(not UTF-8)");
}

static json_t *
handlers_json(const jm_config *cfg)
{
    json_t *all = json_object();
    for (int i = 0; all != NULL && i < cfg->n_handlers; i++) {
        const jm_cfg_handler *h = &cfg->handlers[i];
        json_t *argv = json_array(), *codes = json_array();
        for (size_t a = 0; h->argv != NULL && h->argv[a] != NULL; a++)
            json_array_append_new(argv, json_str(h->argv[a]));
        for (int c = 0; c < h->n_permanent_exit_codes; c++)
            json_array_append_new(codes, json_integer(h->permanent_exit_codes[c]));
        json_object_set_new(all, h->type,
                            json_pack("{s:o, s:i, s:o}", "exec", argv, "timeout_s", h->timeout_s,
                                      "permanent_exit_codes", codes));
    }
    return all;
}

/* Returns a new JSON object {section: {key: value}} of the effective
 * configuration, the Redis password masked; NULL on no memory. */
static json_t *
config_json(const jm_config *cfg)
{
    json_t *root = json_object();
    for (size_t i = 0; root != NULL && i < N_FIELDS; i++) {
        const jm_cfg_field *f = &fields[i];
        char section[32];
        const char *dot = strchr(f->key, '.');
        snprintf(section, sizeof(section), "%.*s", (int)(dot - f->key), f->key);
        json_t *sec = json_object_get(root, section);
        if (sec == NULL) {
            sec = json_object();
            if (json_object_set_new(root, section, sec) != 0)
                break;
        }
        json_t *v = NULL;
        char *masked;
        switch (f->type) {
        case JM_CFG_STR:
            if (f->off == OFF(redis_url) && cfg->redis_url != NULL) {
                masked = mask_url(cfg->redis_url);
                v = masked != NULL ? json_str(masked) : json_string("***");
                free(masked);
            } else {
                v = json_str(cstr_at(cfg, f->off));
            }
            break;
        case JM_CFG_INT:
        case JM_CFG_LONG: v = json_integer(num_at(cfg, f)); break;
        case JM_CFG_QUEUES:
            v = json_array();
            for (int q = 0; q < cfg->n_queues; q++)
                json_array_append_new(v, json_pack("{s:s?, s:i}", "name", cfg->queues[q].name,
                                                   "weight", cfg->queues[q].weight));
            break;
        case JM_CFG_HANDLERS: v = handlers_json(cfg); break;
        case JM_CFG_SCHEDULES:
            v = cfg->janitor_schedules != NULL ? jm_json_parse_text(cfg->janitor_schedules)
                                               : json_array();
            break;
        case JM_CFG_QUEUE_LIMITS:
            v = cfg->janitor_queue_limits != NULL ? jm_json_parse_text(cfg->janitor_queue_limits)
                                                  : json_object();
            break;
        }
        json_object_set_new(sec, dot + 1, v);
    }
    if (root != NULL)
        json_object_set_new(root, "config_file", json_str(cfg->config_file));
    return root;
}

void
jm_config_log(const jm_config *cfg)
{
    json_t *j = config_json(cfg);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    jm_log_info("effective configuration", "config", text, NULL);
    free(text);
    json_decref(j);
}

void
jm_config_free(jm_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (fields[i].type == JM_CFG_STR)
            replace_str(str_at(cfg, fields[i].off), NULL);
    }
    jm_cfg__free_queues(cfg->queues, cfg->n_queues);
    for (int i = 0; i < cfg->n_handlers; i++)
        jm_cfg__free_handler(&cfg->handlers[i]);
    free(cfg->config_file);
    free(cfg->janitor_schedules);
    free(cfg->janitor_queue_limits);
    memset(cfg, 0, sizeof(*cfg));
}
