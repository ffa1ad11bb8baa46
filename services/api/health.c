/* health.c - GET /healthz, /readyz and /metrics, served on the api's own
 * listener (no auth, no Redis gate).
 *
 * /healthz is 200 while the process serves. /readyz is 503 with the reason
 * while draining (after SIGTERM), before the Redis layout version has been
 * checked, while Redis is unreachable, and while Redis's maxmemory-policy is
 * not noeviction (jm_redis_ready); 200 otherwise. /metrics renders the
 * registry after refreshing the (cached) queue gauges.
 */
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "api_metrics.h"
#include "waiters.h"

#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static int
status_json(api_req *req, int code, const char *status, const char *reason)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    if (reason != NULL)
        json_object_set_new(o, "reason", json_string(reason));
    return api_send_json(req, code, o, NULL);
}

int
api_health_live(api_req *req)
{
    return status_json(req, 200, "ok", NULL);
}

int
api_health_ready(api_req *req)
{
    api_app *app = req->app;
    if (atomic_load(&app->draining))
        return status_json(req, 503, "not_ready", "draining: the api is shutting down");
    if (!atomic_load(&app->version_ok))
        return status_json(req, 503, "not_ready",
                           "the redis layout version is not checked yet (redis unreachable)");
    if (req->redis == NULL)
        return status_json(req, 503, "not_ready", "no redis handle on this thread");
    jm_error err;
    jm_error_clear(&err);
    int rc = jm_redis_ready(req->redis, &err);
    if (rc != JM_OK) {
        if (rc == JM_ERR_REDIS || rc == JM_ERR_REPLY)
            jm_service_redis_error(app->svc, "ready");
        return status_json(req, 503, "not_ready", err.msg);
    }
    return status_json(req, 200, "ready", NULL);
}

int
api_health_metrics(api_req *req)
{
    api_app *app = req->app;
    api_metrics_refresh(app->metrics, req->redis, api_waiters_count(app->waiters));
    size_t len = 0;
    char *text = jm_metrics_render(app->svc->metrics, &len);
    if (text == NULL)
        return api_send_error(req, 500, "internal", NULL, "cannot render metrics");
    int status = api_send_text(req, 200, API_METRICS_TYPE, text, len);
    free(text);
    return status;
}
