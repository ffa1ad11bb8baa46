/* spawn.h - starting an exec handler from the multi-threaded worker so that
 * nothing it starts can outlive it. Owned by the worker (exec.c uses it).
 *
 * Each handler runs under its own tiny supervisor process, forked from the
 * runner thread:
 *
 *   jobmill-worker ── supervisor ── handler ── (anything the handler starts)
 *
 * The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER), so every
 * process the handler starts that loses its parent (a background job, a
 * double fork, a setsid() daemon) is re-parented to it rather than to init.
 * It holds the read end of a control pipe whose only write end is the
 * worker's: when the worker dies, by any signal, the kernel closes that end,
 * and the supervisor SIGKILLs the handler's process group and then every
 * child it has, round after round (children of the dead are re-parented to
 * it), until it has none; it does the same when the handler exits, or when
 * the worker closes the pipe (a hard stop). A pipe, unlike PR_SET_PDEATHSIG,
 * fires on the death of the worker *process*, whatever thread forked, and
 * cannot be missed: it exists before the fork. The supervisor sits in its
 * own process group with every signal blocked, so a Ctrl-C, a SIGHUP or a
 * pkill aimed at the worker does not reach it; only SIGKILL does.
 *
 * The handler gets its own process group (so its whole group can be
 * signalled), PR_SET_PDEATHSIG(SIGKILL) against the supervisor with a
 * getppid() re-check, the given pipes as stdin/stdout/stderr (and the
 * progress pipe, when given, as fd WK_SPAWN_PROGRESS_FD), no other fd,
 * default signal dispositions and an empty signal mask. argv is used as
 * written: no shell. Exec failures come back through a close-on-exec pipe.
 * The handler's wait status (exit code or death by signal) comes back to the
 * worker through a status pipe, exactly as waitpid reported it.
 *
 * Between fork and exec (and for the supervisor's whole life) the forked
 * code makes system calls only: no allocation, no locks, no stdio. Finding
 * the supervisor's children needs /proc (/proc/thread-self/children, or a
 * scan of /proc/<pid>/stat where the kernel lacks that file).
 */
#ifndef WK_SPAWN_H
#define WK_SPAWN_H

#include <sys/types.h>
#include "jobmill/err.h"

/* The handler's fd number of the progress pipe (JOBMILL_PROGRESS_FD). */
#define WK_SPAWN_PROGRESS_FD 3

typedef struct wk_spawn_req {
    const char *path;                   /* resolved program path */
    char *const *argv;                  /* NULL-terminated, borrowed */
    char *const *envp;                  /* NULL-terminated, borrowed */
    int stdin_fd, stdout_fd, stderr_fd; /* child ends, closed by wk_spawn */
    int progress_fd; /* child end given to the handler as WK_SPAWN_PROGRESS_FD (closed by
                        wk_spawn), or -1 for none */
} wk_spawn_req;

/* A running handler, as the worker holds it. */
typedef struct wk_child {
    pid_t pid;     /* the supervisor: the worker's child, to poll and reap */
    pid_t handler; /* the handler's pid, also its process group id */
    int ctl_fd;    /* control pipe (write end), -1 once closed */
    int status_fd; /* the handler's wait status arrives here */
} wk_child;

/* wk_spawn_resolve finds argv0 on PATH unless it contains a '/'. Writes the
 * path into out (len bytes). Returns JM_OK or JM_ERR_NOT_FOUND. */
int wk_spawn_resolve(const char *argv0, char *out, size_t len, jm_error *err);

/* wk_spawn_env returns a new environment: this process's minus REDIS_* and
 * JOBMILL_* (the worker's own configuration) and minus any earlier
 * value of the names in extra, plus extra ("NAME=value" strings, copied).
 * NULL on no memory. Free with wk_spawn_env_free. */
char **wk_spawn_env(const char *const *extra, size_t n_extra);
void wk_spawn_env_free(char **envp);

/* wk_spawn starts the supervisor and the handler and returns once the
 * handler has exec'd; always closes the three child-end fds. Returns JM_OK
 * with *child filled, or JM_ERR_IO with err set (fork or exec failed; the
 * supervisor has then been reaped and *child holds no process). */
int wk_spawn(const wk_spawn_req *req, wk_child *child, jm_error *err);

/* wk_spawn_signal: SIGTERM goes to the handler's process group (through the
 * supervisor, which never signals a group it has reaped); SIGKILL ends every
 * process the handler started, inside its group or not. Other signals are
 * ignored. Safe to call after the handler exited. */
void wk_spawn_signal(wk_child *child, int sig);

/* wk_spawn_reap waits for the supervisor, which exits once the handler and
 * everything it started are gone, closes child's fds and returns the
 * handler's wait status (the supervisor's own status if it died before
 * reporting one). */
int wk_spawn_reap(wk_child *child);

#endif
