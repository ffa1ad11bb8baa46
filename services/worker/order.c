/* order.c - strict priority or smooth weighted round robin (see order.h).
 */
#include <string.h>
#include "order.h"

void
wk_order_init(wk_order *o, const jm_cfg_queue *queues, int n)
{
    memset(o, 0, sizeof(*o));
    o->n = n < JM_CFG_MAX_QUEUES ? n : JM_CFG_MAX_QUEUES;
    for (int i = 0; i < o->n; i++) {
        o->weight[i] = queues[i].weight > 0 ? queues[i].weight : 1;
        if (o->weight[i] != 1)
            o->weighted = 1;
        o->total += o->weight[i];
    }
}

void
wk_order_next(wk_order *o, int *out)
{
    int first = 0;
    if (o->weighted) {
        for (int i = 0; i < o->n; i++) {
            o->current[i] += o->weight[i];
            if (o->current[i] > o->current[first])
                first = i;
        }
        o->current[first] -= o->total;
    }
    int k = 0;
    out[k++] = first;
    for (int i = 0; i < o->n; i++)
        if (i != first)
            out[k++] = i;
}
