/* spawn.c - fork + exec of exec handlers (see spawn.h).
 *
 * Between fork and exec the child runs only async-signal-safe calls: the
 * parent prepares argv, envp and the resolved path beforehand.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "spawn.h"

extern char **environ;

int
wk_spawn_resolve(const char *argv0, char *out, size_t len, jm_error *err)
{
    if (argv0 == NULL || argv0[0] == '\0')
        return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "empty program name");
    if (strchr(argv0, '/') != NULL) {
        snprintf(out, len, "%s", argv0);
        return JM_OK;
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path != '\0') {
        size_t dl = strcspn(path, ":");
        int n = dl == 0 ? snprintf(out, len, "./%s", argv0)
                        : snprintf(out, len, "%.*s/%s", (int)dl, path, argv0);
        if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
            return JM_OK;
        path += dl;
        if (*path == ':')
            path++;
    }
    return jm_error_set(err, JM_ERR_NOT_FOUND, NULL, "%s: not found on PATH", argv0);
}

static int
overridden(const char *entry, const char *const *extra, size_t n_extra)
{
    for (size_t i = 0; i < n_extra; i++) {
        size_t nl = strcspn(extra[i], "=");
        if (strncmp(entry, extra[i], nl) == 0 && entry[nl] == '=')
            return 1;
    }
    return 0;
}

/* private tells whether an inherited variable is the worker's own
 * configuration: REDIS_* (the URL may carry a password) and JOBMILL_*. A
 * handler never gets them, so it cannot reach Redis past the fencing. */
static int
private(const char *entry)
{
    return strncmp(entry, "REDIS_", 6) == 0 || strncmp(entry, "JOBMILL_", 8) == 0;
}

char **
wk_spawn_env(const char *const *extra, size_t n_extra)
{
    size_t n = 0;
    while (environ != NULL && environ[n] != NULL)
        n++;
    char **env = calloc(n + n_extra + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (overridden(environ[i], extra, n_extra) || private(environ[i]))
            continue;
        if ((env[k++] = strdup(environ[i])) == NULL)
            goto failed;
    }
    for (size_t i = 0; i < n_extra; i++)
        if ((env[k++] = strdup(extra[i])) == NULL)
            goto failed;
    return env;

failed:
    wk_spawn_env_free(env);
    return NULL;
}

void
wk_spawn_env_free(char **envp)
{
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        free(envp[i]);
    free(envp);
}

/* close_from closes every fd >= lo (close_range when the kernel has it). */
static void
close_from(int lo, int max_fd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0) == 0)
        return;
#endif
    for (int fd = lo; fd < max_fd; fd++)
        close(fd);
}

/* child_exec never returns: it sets the child up and execs, or reports
 * errno on fd 3 and exits 127. Async-signal-safe calls only. */
static void __attribute__((noreturn))
child_exec(const wk_spawn_req *req, pid_t parent, int errfd, int max_fd)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127); /* the worker died before PDEATHSIG was armed */
    if (dup2(req->stdin_fd, 0) < 0 || dup2(req->stdout_fd, 1) < 0 ||
        dup2(req->stderr_fd, 2) < 0 || dup2(errfd, 3) < 0)
        goto failed;
    close_from(4, max_fd);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* KILL, STOP and libc's own refuse: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(req->path, req->argv, req->envp);
failed:;
    int e = errno;
    ssize_t w = write(3, &e, sizeof(e));
    (void)w;
    _exit(127);
}

static int
cloexec_pipe(int p[2])
{
    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

pid_t
wk_spawn(const wk_spawn_req *req, jm_error *err)
{
    pid_t pid = -1;
    int ep[2] = {-1, -1};
    struct rlimit rl;
    int max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                         rl.rlim_cur < 65536
                     ? (int)rl.rlim_cur
                     : 65536;
    if (cloexec_pipe(ep) != 0) {
        jm_error_set(err, JM_ERR_IO, NULL, "pipe: %s", strerror(errno));
        goto done;
    }
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0)
        child_exec(req, parent, ep[1], max_fd);
    if (pid < 0) {
        jm_error_set(err, JM_ERR_IO, NULL, "fork: %s", strerror(errno));
        goto done;
    }
    setpgid(pid, pid); /* also from here, so no kill(-pid) can race the child's */
    close(ep[1]);
    ep[1] = -1;
    int child_errno = 0;
    size_t got = 0;
    while (got < sizeof(child_errno)) {
        ssize_t r = read(ep[0], (char *)&child_errno + got, sizeof(child_errno) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        jm_error_set(err, JM_ERR_IO, NULL, "exec %s: %s", req->path,
                     got == sizeof(child_errno) ? strerror(child_errno) : "failed");
        pid = -1;
    }

done:
    if (ep[0] >= 0)
        close(ep[0]);
    if (ep[1] >= 0)
        close(ep[1]);
    close(req->stdin_fd);
    close(req->stdout_fd);
    close(req->stderr_fd);
    return pid;
}
