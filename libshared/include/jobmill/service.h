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
#include "jobmill/config.h"
#include "jobmill/metrics.h"

typedef struct jm_service {
    const char *name;          /* "api", "worker", "janitor" (borrowed literal) */
    jm_config cfg;             /* owned; read-only after start */
    jm_metrics *metrics;       /* owned registry */
    jm_metric_family *redis_errors; /* jobmill_redis_errors_total{op} */
} jm_service;

/* SIGTERM/SIGINT count: 0 = run, 1 = drain, >= 2 = exit now. Set only by the
 * signal handler; read by the loops. */
extern volatile sig_atomic_t jm_signals;

/* jm_service_start loads the config, initialises logging and signals, logs
 * the effective config and creates the registry with jobmill_build_info and
 * jobmill_redis_errors_total. Returns -1 to go on, or an exit code for main
 * to return at once (0 after --help/--version, 2 after a bad flag or config,
 * 1 on no memory). */
int jm_service_start(jm_service *svc, const char *name, int argc, char **argv);

/* jm_service_redis_error counts one Redis failure of operation op. */
void jm_service_redis_error(jm_service *svc, const char *op);

/* jm_service_sleep_ms sleeps up to ms, returning early when a signal arrives
 * (for retry backoff in loops, never for synchronisation). */
void jm_service_sleep_ms(int ms);

/* jm_service_finish frees what svc owns. */
void jm_service_finish(jm_service *svc);

#endif
