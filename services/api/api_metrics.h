/* api_metrics.h - the api's metric families (docs/metrics.md).
 *
 * jobmill_http_requests_total{route,code}, jobmill_http_request_duration_seconds
 * {route}, jobmill_jobs_submitted_total{queue}, jobmill_queue_jobs{queue,state},
 * jobmill_queue_oldest_age_seconds{queue}, jobmill_queue_paused{queue} and
 * jobmill_api_long_polls, in the
 * service registry (svc->metrics) next to jobmill_build_info and
 * jobmill_redis_errors_total. Route labels are the route table's templates
 * ("/v1/jobs/{id}"), or "unmatched" for a 404 on an unknown path.
 *
 * The queue gauges are read from Redis at scrape time (jm_queue_names and
 * jm_queue_stats) at most once a second, whatever the scrape rate: a refresh
 * within a second of the last one changes nothing.
 *
 * Ownership: api_metrics_new returns an object freed with api_metrics_free;
 * the families themselves belong to the registry.
 */
#ifndef JOBMILL_API_METRICS_H
#define JOBMILL_API_METRICS_H

#include "jobmill/redis.h"
#include "jobmill/service.h"

typedef struct api_metrics api_metrics;

#define API_ROUTE_UNMATCHED "unmatched"

/* api_metrics_new registers the families and pre-creates a series for every
 * route (and its success code) and for the queue "default". NULL on no
 * memory. */
api_metrics *api_metrics_new(jm_service *svc);
void api_metrics_free(api_metrics *m);

/* api_metrics_request counts one answered request. route is a template. */
void api_metrics_request(api_metrics *m, const char *route, int code, double seconds);

/* api_metrics_submitted counts n jobs created in queue. */
void api_metrics_submitted(api_metrics *m, const char *queue, int n);

/* api_metrics_refresh updates the queue gauges from Redis through r (the
 * calling thread's handle) unless they are under a second old, and sets the
 * long-poll gauge to waiters. */
void api_metrics_refresh(api_metrics *m, jm_redis *r, int waiters);

#endif
