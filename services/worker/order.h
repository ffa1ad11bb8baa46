/* order.h - the order in which one claim round visits the worker's queues.
 *
 * Unweighted (every weight 1): strict priority, the configured order every
 * round. Weighted: smooth weighted round robin (nginx's upstream algorithm)
 * picks the queue visited first; the others follow in configured order, so
 * over many rounds each queue leads in proportion to its weight and no slot
 * stays idle while any queue has work.
 *
 * Used by the claimer thread only (no locks).
 */
#ifndef WK_ORDER_H
#define WK_ORDER_H

#include "jobmill/config.h"

typedef struct wk_order {
    int n;
    int weighted; /* 0: strict priority */
    int weight[JM_CFG_MAX_QUEUES];
    long current[JM_CFG_MAX_QUEUES]; /* SWRR state */
    long total;
} wk_order;

/* wk_order_init prepares the order for the cfg's queues. */
void wk_order_init(wk_order *o, const jm_cfg_queue *queues, int n);

/* wk_order_next writes this round's visiting order (queue indexes, a
 * permutation of 0..n-1) into out[n]. */
void wk_order_next(wk_order *o, int *out);

#endif
