/* service.c - common start-up and shutdown plumbing (see service.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobmill/log.h"
#include "jobmill/queue.h"
#include "jobmill/redis.h"
#include "jobmill/service.h"

volatile sig_atomic_t jm_signals = 0;
volatile sig_atomic_t jm_reloads = 0;

static void
on_reload_signal(int sig)
{
    (void)sig;
    if (jm_reloads < 1000000)
        jm_reloads++;
}

void
jm_service_catch_reload(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_reload_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
}

static void
on_stop_signal(int sig)
{
    (void)sig;
    if (jm_signals < 100)
        jm_signals++;
}

static void
install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

static void
record_latency(void *user, double seconds)
{
    jm_metric_observe(user, seconds);
}

int
jm_service_start(jm_service *svc, const char *name, int argc, char **argv)
{
    memset(svc, 0, sizeof(*svc));
    svc->name = name;
    jm_log_init(name, JM_LOG_INFO);
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_config_load(&svc->cfg, name, argc, argv, &err);
    if (rc == JM_ERR_USAGE) {
        jm_config_free(&svc->cfg);
        return JM_ERR_USAGE;
    }
    if (rc != JM_OK) {
        fprintf(stderr, "jobmill-%s: %s\n", name, err.msg);
        jm_config_free(&svc->cfg);
        return JM_ERR_INVALID;
    }
    jm_log_level level = JM_LOG_INFO;
    jm_log_level_parse(svc->cfg.log_level, &level);
    jm_log_init(name, level);
    install_signals();
    jm_config_log(&svc->cfg);
    jm_queue_set_retention(&(jm_retention){.result_ttl_s = svc->cfg.result_ttl_s,
                                           .failed_ttl_s = svc->cfg.failed_ttl_s});
    if (jm_redis_set_sentinel_password(getenv("REDIS_SENTINEL_PASSWORD"), &err) != JM_OK ||
        jm_redis_set_sentinels(svc->cfg.redis_sentinels, svc->cfg.redis_sentinel_master, &err) !=
            JM_OK) {
        fprintf(stderr, "jobmill-%s: %s\n", name, err.msg);
        jm_config_free(&svc->cfg);
        return JM_ERR_INVALID;
    }

    if (jm_redis_set_cluster(svc->cfg.redis_cluster, &err) != JM_OK) {
        fprintf(stderr, "jobmill-%s: %s\n", name, err.msg);
        jm_config_free(&svc->cfg);
        return JM_ERR_INVALID;
    }

    svc->metrics = jm_metrics_new();
    if (svc->metrics == NULL) {
        jm_config_free(&svc->cfg);
        return JM_ERR_NOMEM;
    }
    const char *vlabel[] = {"version", NULL};
    jm_metric_family *info = jm_metrics_family(svc->metrics, "jobmill_build_info",
                                               "Build information; the value is always 1.",
                                               JM_METRIC_GAUGE, vlabel, NULL, 0);
    const char *vval[] = {JM_VERSION, NULL};
    if (info != NULL)
        jm_metric_set(jm_metrics_series(info, vval), 1);
    const char *oplabel[] = {"op", NULL};
    svc->redis_errors = jm_metrics_family(svc->metrics, "jobmill_redis_errors_total",
                                          "Redis calls that failed, by operation.",
                                          JM_METRIC_COUNTER, oplabel, NULL, 0);
    jm_metric_family *lat =
        jm_metrics_family(svc->metrics, "jobmill_redis_request_duration_seconds",
                          "Round-trip time of synchronous Redis commands and scripts.",
                          JM_METRIC_HISTOGRAM, NULL, NULL, 0);
    jm_metric_series *lat_series = lat != NULL ? jm_metrics_series(lat, NULL) : NULL;
    if (lat_series != NULL)
        jm_redis_set_latency_hook(record_latency, lat_series);
    return JM_OK;
}

int
jm_service_exit_code(int rc)
{
    if (rc == JM_OK || rc == JM_ERR_USAGE)
        return 0;
    return rc == JM_ERR_INVALID ? 2 : 1;
}

int
jm_service_check_version(jm_service *svc, jm_redis *r, bool *warned)
{
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_redis_check_version(r, &err);
    if (rc == JM_OK) {
        if (*warned)
            jm_log_info("redis reachable; layout version checked", NULL);
        *warned = false;
        return JM_OK;
    }
    if (rc == JM_ERR_VERSION) {
        jm_log_error("refusing to run against a newer redis layout", "error", err.msg, NULL);
        return rc;
    }
    jm_service_redis_error(svc, "check_version");
    if (!*warned)
        jm_log_warn("redis unreachable: layout version not checked yet; retrying", "error", err.msg,
                    NULL);
    *warned = true;
    return rc;
}

void
jm_service_redis_error(jm_service *svc, const char *op)
{
    if (svc->redis_errors == NULL)
        return;
    const char *v[] = {op, NULL};
    jm_metric_series *s = jm_metrics_series(svc->redis_errors, v);
    if (s != NULL)
        jm_metric_inc(s);
}

void
jm_service_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    /* nanosleep returns early with EINTR on a signal: exactly what we want. */
    nanosleep(&ts, NULL);
}

void
jm_service_finish(jm_service *svc)
{
    jm_redis_set_sentinels(NULL, NULL, NULL); /* stops the +switch-master watcher */
    jm_redis_set_latency_hook(NULL, NULL);
    jm_metrics_free(svc->metrics);
    svc->metrics = NULL;
    jm_config_free(&svc->cfg);
}
