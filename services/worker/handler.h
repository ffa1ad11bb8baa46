/* handler.h - what every handler (built-in or exec) gets and gives back.
 *
 * A handler runs one attempt of one claimed job on its slot's runner
 * thread. It must return promptly once the slot's stop fd becomes readable
 * (cancel, lost lease, drain) and report WK_OUT_STOPPED when it was cut
 * short that way; the runner decides what to commit from the stop reason.
 *
 * Ownership: the outcome owns result and error (malloc'd, may be NULL);
 * release with wk_outcome_clear.
 */
#ifndef WK_HANDLER_H
#define WK_HANDLER_H

#include <stdbool.h>
#include <stdint.h>
#include "jobmill/config.h"
#include "jobmill/queue.h"
#include "logship.h"
#include "slots.h"
#include "wmetrics.h"

typedef enum wk_out_kind {
    WK_OUT_OK = 0,  /* result holds the JSON text */
    WK_OUT_FAIL,    /* error holds the message; permanent says no retry */
    WK_OUT_STOPPED, /* cut short by a stop request */
} wk_out_kind;

typedef struct wk_outcome {
    wk_out_kind kind;
    char *result;   /* JSON text, owned (WK_OUT_OK) */
    char *error;    /* owned (WK_OUT_FAIL, WK_OUT_STOPPED) */
    bool permanent; /* WK_OUT_FAIL: dead-letter at once */
} wk_outcome;

/* One attempt as seen by a handler. All pointers borrowed. */
typedef struct wk_job_ctx {
    const jm_claim *claim;
    const jm_config *cfg;
    wk_slots *slots;
    int slot;
    int stop_fd;        /* readable when the handler must stop */
    int64_t timeout_ms; /* 0 = none */
    wk_metrics *metrics;
    wk_side *side; /* progress and log appends (logship.h); NULL = none */
} wk_job_ctx;

/* wk_outcome_ok / wk_outcome_fail / wk_outcome_stopped fill o, which must be
 * zeroed or hold an earlier outcome (released first). Strings are copied;
 * an out-of-memory copy leaves error NULL, which the runner reports as a
 * generic failure. */
void wk_outcome_ok(wk_outcome *o, const char *json);
void wk_outcome_fail(wk_outcome *o, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wk_outcome_stopped(wk_outcome *o, wk_stop why);
void wk_outcome_clear(wk_outcome *o);

/* wk_builtin_run runs the built-in handler named type ("echo", "sleep",
 * "fail") and returns 1, or returns 0 when type is not a built-in. */
int wk_builtin_run(const char *type, const wk_job_ctx *ctx, wk_outcome *out);

/* wk_exec_run runs the exec handler h: spawns argv with the payload on
 * stdin, pumps stdout/stderr, enforces ctx->timeout_ms and the result size
 * limit, reaps the child and fills out. Never leaves a child or an fd
 * behind. */
void wk_exec_run(const jm_cfg_handler *h, const wk_job_ctx *ctx, wk_outcome *out);

#endif
