/* outcome.c - building and freeing handler outcomes (see handler.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "handler.h"

#define ERROR_MAX 4096

void
wk_outcome_ok(wk_outcome *o, const char *json)
{
    wk_outcome_clear(o);
    o->kind = WK_OUT_OK;
    o->result = strdup(json != NULL ? json : "null");
    if (o->result == NULL)
        wk_outcome_fail(o, false, "out of memory storing the result");
}

void
wk_outcome_fail(wk_outcome *o, bool permanent, const char *fmt, ...)
{
    wk_outcome_clear(o);
    o->kind = WK_OUT_FAIL;
    o->permanent = permanent;
    char buf[ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    o->error = strdup(buf);
}

void
wk_outcome_stopped(wk_outcome *o, wk_stop why)
{
    wk_outcome_clear(o);
    o->kind = WK_OUT_STOPPED;
    char buf[64];
    snprintf(buf, sizeof(buf), "stopped: %s", wk_stop_name(why));
    o->error = strdup(buf);
}

void
wk_outcome_clear(wk_outcome *o)
{
    free(o->result);
    free(o->error);
    memset(o, 0, sizeof(*o));
}
