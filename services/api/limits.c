/* limits.c - PUT /v1/queues/{queue}/limits: a queue's operator limits.
 *
 * Body {"rate": {"n": N, "per_s": S} | null, "concurrency": C | null,
 * "types": {"<type>": {"concurrency": C} | null, ...}}: a key left out keeps
 * that limit, null clears it. At most n jobs of the queue start per per_s
 * seconds (a token bucket in Redis time, bursts up to n), at most C run at
 * once across every worker, and at most a type's C of that type. The claim
 * script enforces them (libshared/lua/_lib.lua limit(), type_gate()); see
 * docs/limits.md. The whole body is validated before anything changes
 * (libshared qlimits.h, shared with the YAML janitor.queue_limits).
 * Answers 200 with the queue object, which carries "limits".
 */
#include "api.h"
#include "jobmill/qlimits.h"

int
api_queues_limits(api_req *req)
{
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    jm_error err;
    jm_error_clear(&err);
    jm_qlimits_change change;
    int rc = jm_qlimits_from_json(body, &change, &err);
    json_decref(body);
    if (rc == JM_OK)
        rc = api_queue_known(req, &err);
    if (rc == JM_OK)
        rc = jm_qlimits_apply(req->redis, req->param, &change, NULL, &err);
    jm_queue_info info;
    if (rc == JM_OK)
        rc = jm_queue_stats(req->redis, req->param, &info, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "limits");
    return api_send_json(req, 200, api_queue_to_json(&info), NULL);
}
