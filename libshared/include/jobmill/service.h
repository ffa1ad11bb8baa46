/* service.h - what every jobmill binary does the same way at start and stop:
 * load the config (printing --help/--version, or one error line and exit 2),
 * set up logging, install the signal handlers (which only count signals), and
 * register the metric families every service exposes.
 *
 * Ownership: jm_service is caller storage; jm_service_start fills it and
 * jm_service_finish releases what it owns (the config and the registry).
 */
#ifndef JOBMILL_SERVICE_H
#define JOBMILL_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include "jobmill/config.h"
#include "jobmill/metrics.h"
#include "jobmill/redis.h"

typedef struct jm_service {
    const char *name;               /* "api", "worker", "janitor" (borrowed literal) */
    jm_config cfg;                  /* owned; read-only after start */
    jm_metrics *metrics;            /* owned registry */
    jm_metric_family *redis_errors; /* jobmill_redis_errors_total{op} */
} jm_service;

/* SIGTERM/SIGINT count: 0 = run, 1 = drain, >= 2 = exit now. Set only by the
 * signal handler; read by the loops. */
extern volatile sig_atomic_t jm_signals;

/* SIGHUP count, for services that reload something on it (the api: its
 * tokens file). Set only by the handler jm_service_catch_reload installs. */
extern volatile sig_atomic_t jm_reloads;

/* jm_service_catch_reload makes SIGHUP count in jm_reloads instead of
 * ending the process (its default). */
void jm_service_catch_reload(void);

/* jm_service_start loads the config, initialises logging and signals, logs
 * the effective config and creates the registry with jobmill_build_info and
 * jobmill_redis_errors_total. Returns JM_OK to go on; otherwise main returns
 * jm_service_exit_code(rc) at once: JM_ERR_USAGE after --help/--version,
 * JM_ERR_INVALID after a bad flag or config (the line is printed), or
 * JM_ERR_NOMEM. */
int jm_service_start(jm_service *svc, const char *name, int argc, char **argv);

/* jm_service_exit_code maps a start-up result onto the process exit code:
 * 0 for JM_OK and JM_ERR_USAGE, 2 for JM_ERR_INVALID (usage or config), 1
 * for anything else. */
int jm_service_exit_code(int rc);

/* jm_service_check_version checks the Redis layout version on r, the same
 * way in every service: JM_OK when this build can use it; JM_ERR_VERSION
 * when it is newer (logged as an error: the service must not start);
 * JM_ERR_REDIS (or JM_ERR_REPLY) when Redis cannot answer now: counted in
 * jobmill_redis_errors_total{op="check_version"} and logged once per outage
 * (*warned remembers; a success after a warning logs the recovery). */
int jm_service_check_version(jm_service *svc, jm_redis *r, bool *warned);

/* jm_service_redis_error counts one Redis failure of operation op. */
void jm_service_redis_error(jm_service *svc, const char *op);

/* jm_service_sleep_ms sleeps up to ms, returning early when a signal arrives
 * (for retry backoff in loops, never for synchronisation). */
void jm_service_sleep_ms(int ms);

/* jm_service_finish frees what svc owns. */
void jm_service_finish(jm_service *svc);

#endif
