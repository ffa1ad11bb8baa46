/* err.c - the jm_error helpers (see err.h for the convention). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/err.h"

int
jm_error_set(jm_error *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void
jm_error_clear(jm_error *err)
{
    if (err == NULL)
        return;
    err->code = JM_OK;
    err->field[0] = '\0';
    err->msg[0] = '\0';
}

const char *
jm_err_name(int code)
{
    switch (code) {
    case JM_OK: return "ok";
    case JM_ERR_INVALID: return "invalid";
    case JM_ERR_NOT_FOUND: return "not_found";
    case JM_ERR_STATE: return "invalid_state";
    case JM_ERR_FENCE: return "stale_fence";
    case JM_ERR_REDIS: return "redis_unavailable";
    case JM_ERR_REPLY: return "redis_reply";
    case JM_ERR_NOMEM: return "no_memory";
    case JM_ERR_IO: return "io";
    case JM_ERR_TOO_LARGE: return "too_large";
    case JM_ERR_LIMIT: return "limit";
    case JM_ERR_VERSION: return "layout_version";
    case JM_ERR_USAGE: return "usage";
    case JM_ERR_DUPLICATE: return "duplicate";
    default: return "unknown";
    }
}

_Noreturn void
jm__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"msg\":\"assertion failed\",\"cond\":\"%s\","
            "\"file\":\"%s\",\"line\":%d}\n",
            cond, file, line);
    abort();
}
