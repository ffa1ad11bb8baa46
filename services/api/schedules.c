/* schedules.c - cron schedules (docs/schedules.md): POST /v1/schedules
 * creates or replaces one, GET /v1/schedules lists them (with next_run,
 * last_run, last_job), DELETE /v1/schedules/{name} removes one, POST
 * /v1/schedules/{name}/pause and /resume. The janitor fires them (libshared
 * schedule.h); the api only stores definitions.
 *
 * POST answers 201 with the schedule when it is new, 200 when it replaced
 * one or was the same already; 409 invalid_state when the janitor's YAML
 * config defines that name (the YAML owns it).
 */
#include <string.h>
#include "api.h"
#include "jobmill/schedule.h"

/* Answers with schedule name as stored now (status on success). */
static int
send_one(api_req *req, int status, const char *name, const char *op)
{
    jm_error err;
    jm_error_clear(&err);
    jm_schedule *v = NULL;
    size_t n = 0;
    int rc = jm_schedule_list(req->redis, name, &v, &n, &err);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, op);
    json_t *o = jm_schedule_to_json(&v[0]);
    jm_schedule_free_all(v, n);
    return api_send_json(req, status, o, NULL);
}

int
api_schedules_put(api_req *req)
{
    int status;
    json_t *body = api_req_parse_json(req, &status);
    if (body == NULL)
        return status;
    jm_error err;
    jm_error_clear(&err);
    jm_schedule s;
    int result = 0;
    int rc = jm_schedule_from_json(body, &s, &err);
    json_decref(body);
    if (rc == JM_OK)
        rc = jm_schedule_put(req->redis, &s, "api", &result, &err);
    char name[sizeof(s.name)];
    memcpy(name, s.name, sizeof(name));
    jm_schedule_clear(&s);
    if (rc != JM_OK)
        return api_send_jm_error(req, &err, "schedules");
    return send_one(req, result == 1 ? 201 : 200, name, "schedules");
}

int
api_schedules_list(api_req *req)
{
    jm_error err;
    jm_error_clear(&err);
    jm_schedule *v = NULL;
    size_t n = 0;
    if (jm_schedule_list(req->redis, NULL, &v, &n, &err) != JM_OK)
        return api_send_jm_error(req, &err, "schedules");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, jm_schedule_to_json(&v[i]));
    jm_schedule_free_all(v, n);
    return api_send_json(req, 200, json_pack("{s:o}", "schedules", arr), NULL);
}

/* The {name} parameter: a schedule name, or 404 (no such schedule can exist). */
static bool
name_ok(api_req *req)
{
    if (jm_queue_name_valid(req->param))
        return true;
    api_send_error(req, 404, "not_found", NULL, "no schedule %s", req->param);
    return false;
}

int
api_schedules_delete(api_req *req)
{
    if (!name_ok(req))
        return 404;
    jm_error err;
    jm_error_clear(&err);
    if (jm_schedule_delete(req->redis, req->param, &err) != JM_OK)
        return api_send_jm_error(req, &err, "schedules");
    return api_send_json(req, 200, json_pack("{s:s, s:b}", "name", req->param, "deleted", 1), NULL);
}

static int
set_paused(api_req *req, bool paused)
{
    if (!name_ok(req))
        return 404;
    jm_error err;
    jm_error_clear(&err);
    if (jm_schedule_pause(req->redis, req->param, paused, &err) != JM_OK)
        return api_send_jm_error(req, &err, "schedules");
    return send_one(req, 200, req->param, "schedules");
}

int
api_schedules_pause(api_req *req)
{
    return set_paused(req, true);
}

int
api_schedules_resume(api_req *req)
{
    return set_paused(req, false);
}
