/* spawn.h - starting an exec handler's child process safely from a
 * multi-threaded worker.
 *
 * The child gets its own process group (so the whole tree can be signalled),
 * PR_SET_PDEATHSIG(SIGKILL) with a getppid() re-check (it dies with the
 * worker thread that forked it: call only from long-lived threads), the
 * given pipes as stdin/stdout/stderr, no other inherited fd, default signal
 * dispositions and an empty signal mask. argv is used as written: no shell.
 * Exec failures come back to the parent through a close-on-exec pipe.
 */
#ifndef WK_SPAWN_H
#define WK_SPAWN_H

#include <sys/types.h>
#include "jobmill/err.h"

typedef struct wk_spawn_req {
    const char *path;          /* resolved program path */
    char *const *argv;         /* NULL-terminated, borrowed */
    char *const *envp;         /* NULL-terminated, borrowed */
    int stdin_fd, stdout_fd, stderr_fd; /* child ends, closed by wk_spawn */
} wk_spawn_req;

/* wk_spawn_resolve finds argv0 on PATH unless it contains a '/'. Writes the
 * path into out (len bytes). Returns JM_OK or JM_ERR_NOT_FOUND. */
int wk_spawn_resolve(const char *argv0, char *out, size_t len, jm_error *err);

/* wk_spawn_env returns a new environment: this process's minus REDIS_* and
 * JOBMILL_* (the worker's own configuration) and minus any earlier
 * value of the names in extra, plus extra ("NAME=value" strings, copied).
 * NULL on no memory. Free with wk_spawn_env_free. */
char **wk_spawn_env(const char *const *extra, size_t n_extra);
void wk_spawn_env_free(char **envp);

/* wk_spawn forks and execs req; always closes the three child-end fds.
 * Returns the child's pid (also its process group id), or -1 with err set
 * (fork or exec failed; a child that failed to exec has been reaped). */
pid_t wk_spawn(const wk_spawn_req *req, jm_error *err);

#endif
