/* err.h - the one error convention of libshared.
 *
 * Every libshared function that can fail returns an int: JM_OK (0) on success
 * or a negative jm_err code. When the caller passes a jm_error, it is filled
 * with the code, a human message and, for bad input, the field at fault.
 * Constructors return NULL on failure instead. A jm_error is plain storage
 * owned by the caller; nothing in it needs freeing.
 */
#ifndef JOBMILL_ERR_H
#define JOBMILL_ERR_H

typedef enum jm_err {
    JM_OK = 0,
    JM_ERR_INVALID = -1,    /* bad input: a field, a flag, a config value */
    JM_ERR_NOT_FOUND = -2,  /* no such job, queue or route */
    JM_ERR_STATE = -3,      /* the job's state forbids the transition */
    JM_ERR_FENCE = -4,      /* guard refused: the caller's claim is stale */
    JM_ERR_REDIS = -5,      /* Redis unreachable or I/O failed; retry later */
    JM_ERR_REPLY = -6,      /* Redis answered with an error or a bad shape */
    JM_ERR_NOMEM = -7,      /* allocation failed */
    JM_ERR_IO = -8,         /* a system call failed (errno in the message) */
    JM_ERR_TOO_LARGE = -9,  /* input over a configured limit */
    JM_ERR_LIMIT = -10,     /* a capacity limit was reached (max_queues, ...) */
    JM_ERR_VERSION = -11,   /* Redis layout is newer than this build */
    JM_ERR_USAGE = -12,     /* --help / --version was asked for (not an error) */
    JM_ERR_DUPLICATE = -13, /* a unique job of that key is still held */
} jm_err;

typedef struct jm_error {
    int code;       /* a jm_err value */
    char field[96]; /* the input field at fault, or "" */
    char msg[256];  /* one line, no trailing newline */
} jm_error;

/* jm_error_set fills err (when not NULL) and returns code, so callers write
 * `return jm_error_set(err, JM_ERR_INVALID, "queue", "must be ...");`.
 * field may be NULL. */
int jm_error_set(jm_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* jm_error_clear resets err to JM_OK with empty strings; err may be NULL. */
void jm_error_clear(jm_error *err);

/* jm_err_name returns a static name for a code ("invalid", "redis", ...). */
const char *jm_err_name(int code);

/* JM_ASSERT checks a condition that cannot be false unless the code itself
 * is wrong (never bad input, never Redis trouble: those are errors). It is
 * on in every build, NDEBUG or not, like Redis's serverAssert: a failure
 * writes the condition, file and line to stderr and aborts, so the process
 * dies loudly and its supervisor restarts it, instead of running on with
 * broken state. */
#define JM_ASSERT(cond) ((cond) ? (void)0 : jm__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void jm__assert_fail(const char *cond, const char *file, int line);

#endif
