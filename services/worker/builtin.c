/* builtin.c - the built-in handlers for tests and demos (docs/worker.md):
 *   echo   result = payload
 *   sleep  payload {"ms": N}: waits N ms, stopping at once on a stop request
 *   fail   payload {"message": "...", "permanent": bool}: fails the attempt
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <jansson.h>
#include "handler.h"
#include "jobmill/json.h"
#include "jobmill/clock.h"

static void
run_echo(const wk_job_ctx *ctx, wk_outcome *out)
{
    wk_outcome_ok(out, ctx->claim->payload);
}

/* wait_stop waits up to ms on the stop fd; returns the stop reason, or
 * WK_STOP_NONE when the time passed. */
static wk_stop
wait_stop(const wk_job_ctx *ctx, int64_t ms)
{
    int64_t deadline = jm_clock_ms() + ms;
    for (;;) {
        int64_t left = deadline - jm_clock_ms();
        if (left <= 0)
            return WK_STOP_NONE;
        struct pollfd p = {.fd = ctx->stop_fd, .events = POLLIN};
        int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc < 0 && errno != EINTR)
            return WK_STOP_NONE;
        if (rc > 0) {
            wk_stop why = wk_slots_stop_reason(ctx->slots, ctx->slot);
            if (why != WK_STOP_NONE)
                return why;
        }
    }
}

static void
run_sleep(const wk_job_ctx *ctx, wk_outcome *out)
{
    json_t *p = jm_json_loads(ctx->claim->payload, JSON_DECODE_ANY, NULL);
    json_t *ms = json_is_object(p) ? json_object_get(p, "ms") : NULL;
    double v = json_is_number(ms) ? json_number_value(ms) : -1;
    json_decref(p);
    if (v < 0 || v > 7.0 * 86400 * 1000) {
        wk_outcome_fail(out, true, "sleep: payload must be {\"ms\": N} with 0 <= N <= 604800000");
        return;
    }
    int64_t want = (int64_t)v;
    int timed_out = ctx->timeout_ms > 0 && want > ctx->timeout_ms;
    wk_stop why = wait_stop(ctx, timed_out ? ctx->timeout_ms : want);
    if (why != WK_STOP_NONE)
        wk_outcome_stopped(out, why);
    else if (timed_out)
        wk_outcome_fail(out, false, "timeout after %lld ms", (long long)ctx->timeout_ms);
    else
        wk_outcome_ok(out, "null");
}

static void
run_fail(const wk_job_ctx *ctx, wk_outcome *out)
{
    json_t *p = jm_json_loads(ctx->claim->payload, JSON_DECODE_ANY, NULL);
    json_t *msg = json_is_object(p) ? json_object_get(p, "message") : NULL;
    json_t *perm = json_is_object(p) ? json_object_get(p, "permanent") : NULL;
    wk_outcome_fail(out, json_is_true(perm), "%s",
                    json_is_string(msg) ? json_string_value(msg) : "fail: requested failure");
    json_decref(p);
}

int
wk_builtin_run(const char *type, const wk_job_ctx *ctx, wk_outcome *out)
{
    if (strcmp(type, "echo") == 0)
        run_echo(ctx, out);
    else if (strcmp(type, "sleep") == 0)
        run_sleep(ctx, out);
    else if (strcmp(type, "fail") == 0)
        run_fail(ctx, out);
    else
        return 0;
    return 1;
}
