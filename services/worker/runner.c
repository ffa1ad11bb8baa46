/* runner.c - one long-lived thread per slot: waits for a claim, runs the
 * job's handler and commits the outcome (see worker.h).
 *
 * Exec handlers are started from these threads under a supervisor each
 * (spawn.c), which ends everything a handler started when the handler
 * exits, the worker asks, or the worker dies.
 *
 * Handler choice: a configured exec handler for the job's type wins, then
 * the built-ins; any other type fails permanently with the error
 * `no handler for type "X"`. Timeout: the job's own timeout_s, else the
 * handler's (built-ins only have the job's).
 */
#include <stdlib.h>
#include <string.h>
#include "handler.h"
#include "jobmill/log.h"
#include "jobmill/clock.h"
#include "worker.h"

typedef struct runner_arg {
    wk_worker *w;
    int slot;
} runner_arg;

/* run_one runs slot's job and commits it; returns 1 when the commit brought
 * the slot its next job (complete and fetch next: run it at once), 0 when
 * the slot is free again. */
static int
run_one(wk_worker *w, int slot)
{
    wk_slots *s = &w->slots;
    const jm_claim *c = wk_slots_claim(s, slot);
    int64_t since = c->created_ms > c->run_at_ms ? c->created_ms : c->run_at_ms;
    if (c->started_ms > 0 && since > 0)
        wk_metrics_wait(&w->m, c->queue, (double)(c->started_ms - since) / 1000.0);

    const jm_cfg_handler *h = jm_config_handler(w->cfg, c->type);
    int64_t timeout_ms = c->timeout_s > 0 ? (int64_t)c->timeout_s * 1000
                         : h != NULL      ? (int64_t)h->timeout_s * 1000
                                          : 0;
    wk_job_ctx ctx = {.claim = c,
                      .cfg = w->cfg,
                      .slots = s,
                      .slot = slot,
                      .stop_fd = wk_slots_stop_fd(s, slot),
                      .timeout_ms = timeout_ms,
                      .metrics = &w->m,
                      .side = &w->side};
    wk_outcome o;
    memset(&o, 0, sizeof(o));
    int64_t t0 = jm_clock_ms();
    wk_stop early = wk_slots_stop_reason(s, slot);
    int ran = 0;
    if (early != WK_STOP_NONE) {
        wk_outcome_stopped(&o, early); /* stopped before it started */
    } else if (h != NULL) {
        wk_exec_run(h, &ctx, &o);
        ran = 1;
    } else if (wk_builtin_run(c->type, &ctx, &o)) {
        ran = 1;
    } else {
        wk_outcome_fail(&o, true, "no handler for type \"%s\"", c->type);
    }
    double run_s = (double)(jm_clock_ms() - t0) / 1000.0;
    if (ran)
        wk_metrics_duration(&w->m, c->queue, c->type, run_s);
    jm_claim next;
    int64_t deadline = 0;
    int got = wk_commit(w, slot, &o, run_s, &next, &deadline);
    wk_outcome_clear(&o);
    if (got) {
        wk_slots_reassign(s, slot, &next, deadline);
        return 1;
    }
    wk_slots_release(s, slot);
    return 0;
}

static void *
runner_main(void *p)
{
    runner_arg *a = p;
    while (wk_slots_take(&a->w->slots, a->slot))
        while (run_one(a->w, a->slot))
            ;
    return NULL;
}

int
wk_runners_start(wk_worker *w, jm_error *err)
{
    int n = w->slots.n;
    w->runners = calloc((size_t)n, sizeof(*w->runners));
    runner_arg *args = calloc((size_t)n, sizeof(*args));
    w->runner_args = args;
    if (w->runners == NULL || args == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        args[i].w = w;
        args[i].slot = i;
        if (pthread_create(&w->runners[i], NULL, runner_main, &args[i]) != 0)
            return jm_error_set(err, JM_ERR_IO, NULL, "cannot start runner thread %d", i);
        w->n_runners = i + 1;
    }
    return JM_OK;
}

void
wk_runners_join(wk_worker *w)
{
    wk_slots_close(&w->slots);
    for (int i = 0; i < w->n_runners; i++)
        pthread_join(w->runners[i], NULL);
    w->n_runners = 0;
    free(w->runners);
    free(w->runner_args);
    w->runners = NULL;
    w->runner_args = NULL;
}
