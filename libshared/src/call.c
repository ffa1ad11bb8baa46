/* call.c - building and running one script call (see call.h), and the
 * process's retention defaults every call carries. */
#include <stdio.h>
#include <string.h>
#include "call.h"
#include "reply.h"

/* The process's retention defaults, for calls that pass no jm_retention
 * (claim expiring a stale job, for one). Set once at start-up. */
static jm_retention default_ret = {JM_RESULT_TTL_DEFAULT_S, JM_FAILED_TTL_DEFAULT_S};

void
jm_queue_set_retention(const jm_retention *ret)
{
    if (ret->result_ttl_s > 0)
        default_ret.result_ttl_s = ret->result_ttl_s;
    if (ret->failed_ttl_s > 0)
        default_ret.failed_ttl_s = ret->failed_ttl_s;
}

void
jm_call_init(jm_call *c, const jm_redis *r, const char *tag, const jm_retention *ret)
{
    if (ret == NULL)
        ret = &default_ret;
    if (tag != NULL)
        jm_key_slot(c->slot, r, tag);
    else
        jm_key_registry(c->slot, r);
    jm_key_global(c->global, r);
    snprintf(c->rttl, sizeof(c->rttl), "%d",
             ret->result_ttl_s > 0 ? ret->result_ttl_s : default_ret.result_ttl_s);
    snprintf(c->fttl, sizeof(c->fttl), "%d",
             ret->failed_ttl_s > 0 ? ret->failed_ttl_s : default_ret.failed_ttl_s);
    c->nargs = 0;
    jm_call_arg(c, c->global);
    jm_call_arg(c, c->rttl);
    jm_call_arg(c, c->fttl);
}

void
jm_call_init_queue(jm_call *c, const jm_redis *r, const char *queue, const jm_retention *ret)
{
    char tag[JM_TAG_LEN + 1];
    jm_slot_tag(queue, tag);
    jm_call_init(c, r, tag, ret);
}

void
jm_call_arg(jm_call *c, const char *s)
{
    JM_ASSERT(c->nargs < JM_CALL_ARGS); /* every script takes a fixed, small number */
    c->args[c->nargs] = s;
    c->lens[c->nargs++] = strlen(s);
}

redisReply *
jm_call_run(jm_redis *r, jm_call *c, const char *script, jm_error *err)
{
    const char *keys[1] = {c->slot};
    return jm_redis_eval(r, err, script, 1, keys, c->nargs, c->args, c->lens);
}

int
jm_call_pipe(jm_redis *r, jm_call *c, const char *script, jm_error *err)
{
    const char *keys[1] = {c->slot};
    return jm_redis_pipe_eval(r, err, script, 1, keys, c->nargs, c->args, c->lens);
}

int
jm_call_int(jm_redis *r, jm_call *c, const char *script, long long *out, jm_error *err)
{
    redisReply *rep = jm_call_run(r, c, script, err);
    if (rep == NULL)
        return jm__err_code(err);
    if (rep->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(rep);
        return jm_error_set(err, JM_ERR_REPLY, NULL, "%s: unexpected reply type", script);
    }
    *out = rep->integer;
    freeReplyObject(rep);
    return JM_OK;
}
