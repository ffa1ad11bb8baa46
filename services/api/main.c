/* main.c - jobmill-api: start-up, the wait for a signal, the drain, the stop.
 *
 * Start: load the config (jm_service_start: --help/--version exit 0, a bad
 * flag or config file exits 2), load the tokens files (unreadable: exit 2),
 * start the long-poll subscriber, check the Redis layout version (newer than
 * this build: exit 1; Redis down: serve anyway, answer 503 and retry the check
 * until it passes), then listen (port in use: exit 1).
 *
 * Stop: the first SIGTERM/SIGINT makes /readyz answer 503 at once; the api
 * keeps serving for api.drain_delay_ms (so load balancers stop sending), then
 * answers new /v1 requests 503, wakes every long-poll (they answer the job as
 * it is), waits for the requests in flight to be answered (civetweb drops
 * writes once mg_stop begins), stops civetweb (joining its threads), frees
 * everything and exits 0. A second signal exits at once with status 1.
 *
 * SIGHUP reloads the tokens files (a bad file keeps the old tokens, logged).
 *
 * Signals are blocked in every thread but this one (the mask is inherited by
 * the threads started below), so they interrupt this thread's sleeps at once.
 *
 * Exit codes: 0 clean stop or --help/--version; 1 cannot start (newer Redis
 * layout, cannot listen, no memory) or a second signal; 2 bad flag, config or
 * tokens file. Hidden flag: --print-routes prints the route table and exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "api.h"
#include "api_metrics.h"
#include "jobmill/clock.h"
#include "jobmill/log.h"
#include "waiters.h"

#define API_TICK_MS 100
#define API_QUIESCE_EXTRA_MS 1000 /* past the Redis timeout of a last call */

static void
block_stop_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(how, &set, NULL);
}

/* effective_waiters caps long-polls below the thread count, so that waiting
 * requests can never hold every HTTP thread (health probes must get
 * through). */
static int
effective_waiters(const jm_config *cfg)
{
    int reserve = cfg->api_threads / 4 > 2 ? cfg->api_threads / 4 : 2;
    int cap = cfg->api_threads - reserve;
    if (cap < 0)
        cap = 0;
    return cfg->api_max_waiters < cap ? cfg->api_max_waiters : cap;
}

/* check_version records a passed layout check for the routes; JM_OK,
 * JM_ERR_VERSION (stop), or a Redis error (serve 503, retry later). */
static int
check_version(api_app *app, jm_redis *r, bool *warned)
{
    int rc = jm_service_check_version(app->svc, r, warned);
    if (rc == JM_OK)
        atomic_store(&app->version_ok, 1);
    return rc;
}

/* serve waits for the first signal, retrying the version check meanwhile.
 * Returns 0 on a signal, 1 when the layout turned out newer. */
static int
serve(api_app *app, jm_redis *r, bool warned)
{
    sig_atomic_t reloads = jm_reloads;
    while (jm_signals == 0) {
        if (!atomic_load(&app->version_ok) && check_version(app, r, &warned) == JM_ERR_VERSION)
            return 1;
        if (jm_reloads != reloads) {
            reloads = jm_reloads;
            api_auth_reload(app);
        }
        jm_service_sleep_ms(API_TICK_MS);
    }
    return 0;
}

/* drain keeps serving with /readyz failing for the drain delay. */
static void
drain(api_app *app)
{
    atomic_store(&app->draining, 1);
    jm_log_info("draining: /readyz fails; still serving",
                JM_LOG_INT("drain_delay_ms", app->cfg->api_drain_delay_ms), NULL);
    long long until = jm_clock_ms() + app->cfg->api_drain_delay_ms;
    for (long long now = jm_clock_ms(); now < until; now = jm_clock_ms()) {
        if (jm_signals >= 2) {
            jm_log_warn("second signal: exiting now", NULL);
            _exit(1);
        }
        long long left = until - now;
        jm_service_sleep_ms(left < API_TICK_MS ? (int)left : API_TICK_MS);
    }
}

static int
run(jm_service *svc)
{
    api_app app;
    memset(&app, 0, sizeof(app));
    app.svc = svc;
    app.cfg = &svc->cfg;
    app.retention.result_ttl_s = svc->cfg.result_ttl_s;
    app.retention.failed_ttl_s = svc->cfg.failed_ttl_s;
    atomic_init(&app.draining, 0);
    atomic_init(&app.version_ok, 0);
    atomic_init(&app.stopping, 0);
    atomic_init(&app.followers, 0);
    pthread_rwlock_init(&app.auth_lock, NULL);
    jm_service_catch_reload(); /* SIGHUP reloads the tokens files */
    int code = 1;
    jm_redis *r = NULL;
    api_server *srv = NULL;
    jm_error err;
    jm_error_clear(&err);

    if (api_auth_init(&app, &err) != JM_OK) {
        fprintf(stderr, "jobmill-api: %s%s%s\n", err.field, err.field[0] != '\0' ? ": " : "",
                err.msg);
        code = err.code == JM_ERR_NOMEM ? 1 : 2;
        goto done;
    }
    if ((app.metrics = api_metrics_new(svc)) == NULL) {
        jm_log_error("cannot register metrics", NULL);
        goto done;
    }
    block_stop_signals(SIG_BLOCK); /* threads started from here inherit the mask */
    if ((app.readwatch = api_readwatch_new(&err)) == NULL) {
        jm_log_error("cannot start the body-read watchdog", "error", err.msg, NULL);
        goto done;
    }
    int max_waiters = effective_waiters(app.cfg);
    if ((app.waiters = api_waiters_new(svc, max_waiters, &err)) == NULL) {
        jm_log_error("cannot start the long-poll subscriber", "error", err.msg, NULL);
        goto done;
    }
    r = jm_redis_new(app.cfg->redis_url, app.cfg->prefix, app.cfg->redis_timeout_ms, &err);
    if (r == NULL) {
        jm_log_error("cannot create a redis handle", "error", err.msg, NULL);
        goto done;
    }
    bool warned = false;
    if (check_version(&app, r, &warned) == JM_ERR_VERSION)
        goto done;
    if ((srv = api_server_start(&app, &err)) == NULL) {
        jm_log_error("cannot start the http server", "error", err.msg, NULL);
        goto done;
    }
    block_stop_signals(SIG_UNBLOCK);
    jm_log_info("api listening", "listen", app.cfg->api_listen,
                JM_LOG_INT("threads", app.cfg->api_threads), JM_LOG_INT("max_waiters", max_waiters),
                "version", JM_VERSION, NULL);

    code = serve(&app, r, warned);
    if (code == 0)
        drain(&app);
    jm_log_info("stopping: waking long-polls, finishing in-flight requests", NULL);
    atomic_store(&app.stopping, 1);
    api_waiters_shutdown(app.waiters);
    if (!api_server_quiesce(srv, app.cfg->redis_timeout_ms + API_QUIESCE_EXTRA_MS))
        jm_log_warn("requests still in flight at stop; their answers are lost", NULL);

done:
    if (app.waiters != NULL)
        api_waiters_shutdown(app.waiters);
    api_server_stop(srv);
    api_readwatch_free(app.readwatch);
    api_waiters_free(app.waiters);
    jm_redis_free(r);
    api_metrics_free(app.metrics);
    api_auth_free(app.auth);
    api_auth_free(app.admin_auth);
    pthread_rwlock_destroy(&app.auth_lock);
    if (code == 0)
        jm_log_info("stopped", NULL);
    return code;
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-routes") == 0) {
        api_routes_print(stdout);
        return 0;
    }
    jm_service svc;
    int rc = jm_service_start(&svc, "api", argc, argv);
    if (rc != JM_OK)
        return jm_service_exit_code(rc);
    rc = run(&svc);
    jm_service_finish(&svc);
    return rc;
}
