/* routes.c - the api's one route table and the path matcher.
 *
 * This table is the single source of the HTTP surface: dispatch, the 405
 * Allow header, the metric route labels (the templates, never raw ids) and
 * --print-routes all read it, and tests/system/test_openapi.py extracts the
 * ROUTE(...) lines with a regex and compares them with docs/openapi.yaml.
 * Keep one ROUTE per line, method and path as string literals.
 *
 * A template segment "{name}" matches one non-empty path segment; a route has
 * at most one parameter. Literal routes come before parameter routes that
 * could shadow them ("/v1/jobs/batch" before "/v1/jobs/{id}").
 */
#include <stdio.h>
#include <string.h>
#include "api.h"

#define ROUTE(method, path, fn, flags)                                                             \
    {                                                                                              \
        method, path, fn, flags                                                                    \
    }

static const api_route routes[] = {
    ROUTE("POST", "/v1/jobs", api_jobs_submit, API_ROUTE_BODY),
    ROUTE("POST", "/v1/jobs/batch", api_jobs_batch, API_ROUTE_BODY),
    ROUTE("GET", "/v1/jobs/{id}", api_jobs_get, 0),
    ROUTE("POST", "/v1/jobs/{id}/cancel", api_jobs_cancel, API_ROUTE_ADMIN),
    ROUTE("POST", "/v1/jobs/{id}/retry", api_jobs_retry, API_ROUTE_ADMIN),
    ROUTE("POST", "/v1/jobs/{id}/heartbeat", api_lease_heartbeat, 0),
    ROUTE("POST", "/v1/jobs/{id}/complete", api_lease_complete, 0),
    ROUTE("POST", "/v1/jobs/{id}/fail", api_lease_fail, 0),
    ROUTE("POST", "/v1/jobs/{id}/progress", api_lease_progress, 0),
    ROUTE("POST", "/v1/batches", api_batches_submit, API_ROUTE_BODY),
    ROUTE("GET", "/v1/batches/{id}", api_batches_get, 0),
    ROUTE("POST", "/v1/jobs/{id}/logs", api_lease_logs, 0),
    ROUTE("GET", "/v1/jobs/{id}/logs", api_jobs_logs, 0),
    ROUTE("GET", "/v1/queues", api_queues_list, 0),
    ROUTE("POST", "/v1/queues/{queue}/pause", api_queues_pause, API_ROUTE_ADMIN),
    ROUTE("POST", "/v1/queues/{queue}/resume", api_queues_resume, API_ROUTE_ADMIN),
    ROUTE("PUT", "/v1/queues/{queue}/limits", api_queues_limits, API_ROUTE_BODY | API_ROUTE_ADMIN),
    ROUTE("GET", "/v1/queues/{queue}/jobs", api_queues_jobs, 0),
    ROUTE("POST", "/v1/queues/{queue}/claim", api_claim, 0),
    ROUTE("GET", "/v1/workers", api_workers_list, 0),
    ROUTE("POST", "/v1/schedules", api_schedules_put, API_ROUTE_BODY | API_ROUTE_ADMIN),
    ROUTE("GET", "/v1/schedules", api_schedules_list, 0),
    ROUTE("DELETE", "/v1/schedules/{name}", api_schedules_delete, API_ROUTE_ADMIN),
    ROUTE("POST", "/v1/schedules/{name}/pause", api_schedules_pause, API_ROUTE_ADMIN),
    ROUTE("POST", "/v1/schedules/{name}/resume", api_schedules_resume, API_ROUTE_ADMIN),
    ROUTE("GET", "/healthz", api_health_live, API_ROUTE_OPEN),
    ROUTE("GET", "/readyz", api_health_ready, API_ROUTE_OPEN),
    ROUTE("GET", "/metrics", api_health_metrics, API_ROUTE_OPEN),
    ROUTE("GET", "/ui", api_ui_redirect, API_ROUTE_OPEN),
    ROUTE("GET", "/ui/", api_ui_index, API_ROUTE_OPEN),
    ROUTE("GET", "/ui/{asset}", api_ui_asset, API_ROUTE_OPEN),
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

const api_route *
api_routes(size_t *n)
{
    *n = N_ROUTES;
    return routes;
}

/* match_path compares path with template tpl segment by segment; on a match
 * the parameter segment (if any) is copied into param. */
static bool
match_path(const char *tpl, const char *path, char param[API_PARAM_MAX])
{
    const char *t = tpl, *p = path;
    while (*t != '\0' && *p != '\0') {
        if (*t != '/' || *p != '/')
            return false;
        t++, p++;
        size_t tl = strcspn(t, "/"), pl = strcspn(p, "/");
        if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
            if (pl == 0 || pl >= API_PARAM_MAX)
                return false;
            memcpy(param, p, pl);
            param[pl] = '\0';
        } else if (tl != pl || memcmp(t, p, tl) != 0) {
            return false;
        }
        t += tl, p += pl;
    }
    return *t == '\0' && *p == '\0';
}

int
api_route_match(const char *method, const char *path, api_route_hit *hit)
{
    char scratch[API_PARAM_MAX];
    hit->index = -1;
    hit->path_route = -1;
    hit->param[0] = '\0';
    hit->allow[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        scratch[0] = '\0';
        if (!match_path(routes[i].path, path, scratch))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            memcpy(hit->param, scratch, sizeof(scratch));
            hit->index = (int)i;
            return JM_OK;
        }
        if (hit->path_route < 0)
            hit->path_route = (int)i;
        if (strstr(hit->allow, routes[i].method) == NULL) {
            size_t used = strlen(hit->allow);
            snprintf(hit->allow + used, sizeof(hit->allow) - used, "%s%s", used > 0 ? ", " : "",
                     routes[i].method);
        }
    }
    return JM_ERR_NOT_FOUND;
}

void
api_routes_print(FILE *out)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        fprintf(out, "%s %s\n", routes[i].method, routes[i].path);
}
