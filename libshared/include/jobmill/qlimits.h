/* qlimits.h - a change of a queue's operator limits as PUT
 * /v1/queues/{queue}/limits and the YAML janitor.queue_limits give it
 * (docs/limits.md): validated from JSON in one place, applied with the
 * queue.h calls.
 *
 * Ownership: a jm_qlimits_change is plain caller storage; nothing needs
 * freeing. Functions return JM_OK or a negative jm_err (jobmill/err.h).
 */
#ifndef JOBMILL_QLIMITS_H
#define JOBMILL_QLIMITS_H

#include <jansson.h>
#include "jobmill/queue.h"

#define JM_QLIMITS_MAX 1000000 /* rate.n, concurrency, a type's concurrency */
#define JM_QLIMITS_PER_S_MAX 86400.0

typedef struct jm_qlimits_change {
    jm_limit_op rate, conc; /* keep (key left out), set, clear (null) */
    jm_queue_limits want;   /* rate_n, rate_ms, concurrency when set */
    int n_types;
    struct {
        char type[JM_TYPE_MAX + 1];
        int concurrency; /* 0 clears the type's cap */
    } types[JM_TYPE_CAPS_MAX];
} jm_qlimits_change;

/* jm_qlimits_from_json validates body {"rate": {"n", "per_s"} | null,
 * "concurrency": C | null, "types": {TYPE: {"concurrency": C} | null}} and
 * fills c. JM_ERR_INVALID with err->field naming the field ("rate.n",
 * "concurrency", "types", ...). */
int jm_qlimits_from_json(const json_t *body, jm_qlimits_change *c, jm_error *err);

/* jm_qlimits_apply makes change c to queue's limits (creating the queue
 * when it is new); *now (may be NULL) gets the limits after it. */
int jm_qlimits_apply(jm_redis *r, const char *queue, const jm_qlimits_change *c,
                     jm_queue_limits *now, jm_error *err);

#endif
