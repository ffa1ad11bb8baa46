/* call.h - one script call, built the way every script expects it (see
 * lua/_lib.lua): KEYS[1] the slot prefix, ARGV[1] the global prefix,
 * ARGV[2..3] the retention defaults, then the script's own arguments.
 * Private to libshared; every C caller of a script goes through it.
 *
 * Ownership: a jm_call is caller storage (on the stack); the arguments
 * added are borrowed until the call has run.
 */
#ifndef JM_CALL_H
#define JM_CALL_H

#include "jobmill/queue.h"
#include "keys.h"
#include "redis_raw.h"

#define JM_CALL_ARGS 20

typedef struct jm_call {
    jm_keybuf slot;   /* KEYS[1] "<prefix>:{<tag>}:" (or "<prefix>:{registry}:") */
    jm_keybuf global; /* ARGV[1] "<prefix>:" */
    char rttl[24], fttl[24];
    const char *args[JM_CALL_ARGS];
    size_t lens[JM_CALL_ARGS];
    int nargs;
} jm_call;

/* jm_call_init starts a call in the slot of tag (a queue's tag or a job id,
 * whose first 4 characters are its tag; NULL = the registry's slot) with the
 * retention ret (NULL or zero fields: the process defaults). */
void jm_call_init(jm_call *c, const jm_redis *r, const char *tag, const jm_retention *ret);
/* jm_call_init_queue is jm_call_init in the slot of a queue's name. */
void jm_call_init_queue(jm_call *c, const jm_redis *r, const char *queue, const jm_retention *ret);
/* jm_call_arg appends a borrowed string argument (at most JM_CALL_ARGS in all). */
void jm_call_arg(jm_call *c, const char *s);

/* jm_call_run runs script; a new reply, or NULL with err set. */
redisReply *jm_call_run(jm_redis *r, jm_call *c, const char *script, jm_error *err);
/* jm_call_pipe appends the call to r's pipeline. JM_OK or JM_ERR_REDIS. */
int jm_call_pipe(jm_redis *r, jm_call *c, const char *script, jm_error *err);
/* jm_call_int runs a script that answers one integer; *out gets it. */
int jm_call_int(jm_redis *r, jm_call *c, const char *script, long long *out, jm_error *err);

#endif
