/* workers.c - GET /v1/workers: the live workers of the registry.
 *
 * A worker object is {"id", "host", "pid", "queues" (array, in the worker's
 * order), "concurrency", "busy", "started_at" (epoch seconds), and
 * "heartbeat_age_ms" (Redis time since its last beat)}.
 */
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "jobmill/workers.h"

/* queues_array splits the registry's comma list into a JSON array. */
static json_t *
queues_array(const char *list)
{
    json_t *a = json_array();
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            json_t *s = json_stringn(p, n);
            if (s != NULL)
                json_array_append_new(a, s);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

static json_t *
worker_to_json(const jm_worker_info *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->id));
    json_object_set_new(o, "host", json_string(w->host));
    json_object_set_new(o, "pid", json_integer(w->pid));
    json_object_set_new(o, "queues", queues_array(w->queues));
    json_object_set_new(o, "concurrency", json_integer(w->concurrency));
    json_object_set_new(o, "busy", json_integer(w->busy));
    json_object_set_new(o, "started_at", jm_ms_to_json(w->started_ms));
    json_object_set_new(o, "heartbeat_age_ms",
                        json_integer(w->heartbeat_age_ms > 0 ? w->heartbeat_age_ms : 0));
    return o;
}

int
api_workers_list(api_req *req)
{
    jm_worker_info *v = NULL;
    size_t n = 0;
    jm_error err;
    jm_error_clear(&err);
    if (jm_workers_list(req->redis, &v, &n, &err) != JM_OK)
        return api_send_jm_error(req, &err, "workers");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, worker_to_json(&v[i]));
    jm_workers_list_free(v, n);
    json_t *o = json_object();
    json_object_set_new(o, "workers", arr);
    return api_send_json(req, 200, o, NULL);
}
