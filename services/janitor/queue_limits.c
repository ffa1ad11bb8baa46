/* queue_limits.c - the queue limits of the YAML config (janitor.queue_limits;
 * docs/limits.md), set once per janitor start, on its first tick with Redis
 * reachable: each queue's entry is a PUT /v1/queues/{queue}/limits body
 * (libshared qlimits.h), validated when the config was loaded. */
#include "janitor.h"
#include "jobmill/log.h"
#include "jobmill/qlimits.h"

int
janitor_queue_limits_apply(janitor *j)
{
    const char *text = j->svc.cfg.janitor_queue_limits;
    json_t *obj = text != NULL ? jm_json_parse_text(text) : NULL;
    int rc = JM_OK;
    const char *queue;
    json_t *body;
    json_object_foreach(obj, queue, body)
    {
        jm_error err;
        jm_error_clear(&err);
        jm_qlimits_change c;
        rc = jm_qlimits_from_json(body, &c, &err);
        if (rc == JM_OK)
            rc = jm_qlimits_apply(j->redis, queue, &c, NULL, &err);
        if (rc == JM_OK) {
            janitor_metrics_queue(&j->m, queue);
            jm_log_info("queue limits set from the config", "queue", queue, NULL);
        } else if (janitor_redis_failed(j, "limits", queue, &err) == JM_ERR_REDIS) {
            break; /* the next tick tries again */
        }
        rc = JM_OK; /* anything else is logged; the others still apply */
    }
    json_decref(obj);
    if (rc == JM_OK)
        j->limits_synced = true;
    return rc;
}
