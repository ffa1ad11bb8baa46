/* spawn.c - the supervisor and the handler's fork + exec (see spawn.h).
 * Owned by the worker.
 *
 * The worker prepares argv, envp and the resolved path beforehand. From the
 * fork on, the supervisor and the handler (until its exec) run only system
 * calls: they are copies of a multi-threaded process, where another thread
 * may have held the allocator's lock at the instant of the fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "spawn.h"

/* The supervisor's fds once it is set up: the handler's stdin, stdout and
 * stderr as 0-2 (until it has forked the handler), then: */
#define SV_ERR_FD 3    /* exec errno to the worker; the handler's fd 3 until exec */
#define SV_STATUS_FD 4 /* to the worker: the handler's pid, later its wait status */
#define SV_CTL_FD                                                                                  \
    5 /* from the worker: 'T' = SIGTERM the group, 'K' = end it all;
                          * EOF = the worker is gone: end it all */
#define SV_PROGRESS_FD                                                                             \
    6 /* the handler's progress pipe until it has forked it (then
                          * the handler's WK_SPAWN_PROGRESS_FD) */
#define SV_FIRST_FREE 7
#define SV_POLL_MS 20 /* without signalfd: how often the handler is checked */

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
static int private(const char *entry)
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

static void
write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* read_full reads up to n bytes, stopping early only at end of file or on
 * an error; returns the count. */
static size_t
read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static void
default_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* KILL, STOP and libc's own refuse: fine */
}

/*----------------------------------------------------------------------------
 * The handler: the supervisor's child, exec'd at once
 *--------------------------------------------------------------------------*/

/* handler_exec never returns: its fds 0-2 and 3 (errors, close-on-exec) are
 * in place and every other fd is close-on-exec. It reports errno on fd 3
 * and exits 127 when the exec fails. */
static void __attribute__((noreturn)) handler_exec(const wk_spawn_req *req, pid_t supervisor)
{
    int errfd = SV_ERR_FD;
    if (req->progress_fd >= 0) {
        /* the progress pipe becomes fd 3 (JOBMILL_PROGRESS_FD), not
         * close-on-exec; the exec error pipe moves out of its way */
        errfd = fcntl(SV_ERR_FD, F_DUPFD_CLOEXEC, SV_FIRST_FREE);
        if (errfd < 0 || dup2(SV_PROGRESS_FD, WK_SPAWN_PROGRESS_FD) < 0) {
            int e = errno;
            write_all(errfd >= 0 ? errfd : SV_ERR_FD, &e, sizeof(e));
            _exit(127);
        }
        close(SV_PROGRESS_FD);
    }
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)
        _exit(127); /* the supervisor died before the death signal was armed */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* dispositions are already default */
    execve(req->path, req->argv, req->envp);
    int e = errno;
    write_all(errfd, &e, sizeof(e));
    _exit(127);
}

/*----------------------------------------------------------------------------
 * The supervisor
 *--------------------------------------------------------------------------*/

/* kill_pid_list SIGKILLs every pid in the text that fd reads ("12 345 ");
 * returns how many it found. */
static int
kill_pid_list(int fd)
{
    char buf[512];
    long cur = 0;
    int digits = 0, n = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) { /* a number may span two reads */
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = cur * 10 + (buf[i] - '0');
                digits = 1;
                continue;
            }
            if (digits && cur > 0) {
                kill((pid_t)cur, SIGKILL);
                n++;
            }
            cur = 0;
            digits = 0;
        }
    }
    if (digits && cur > 0) {
        kill((pid_t)cur, SIGKILL);
        n++;
    }
    return n;
}

/* One entry of getdents64(2). */
struct sv_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* stat_ppid returns the parent pid from a /proc/<pid>/stat text (after the
 * last ')': the command may hold anything), or -1. */
static long
stat_ppid(const char *st, size_t n)
{
    size_t i = n;
    while (i > 0 && st[i - 1] != ')')
        i--;
    if (i == 0)
        return -1;
    while (i < n && st[i] == ' ')
        i++;
    while (i < n && st[i] != ' ')
        i++; /* the state letter */
    while (i < n && st[i] == ' ')
        i++;
    long v = 0;
    int digits = 0;
    for (; i < n && st[i] >= '0' && st[i] <= '9'; i++, digits++)
        v = v * 10 + (st[i] - '0');
    return digits > 0 ? v : -1;
}

/* kill_children_scan is the fallback for kernels without
 * /proc/<pid>/task/<tid>/children: it reads every /proc/<pid>/stat and
 * SIGKILLs the processes whose parent is me. Returns how many, or -1
 * without /proc. */
static int
kill_children_scan(pid_t me)
{
    int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    _Alignas(8) char buf[2048];
    int n = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            const struct sv_dirent *d = (const struct sv_dirent *)(void *)(buf + off);
            off += d->reclen;
            char path[32];
            size_t k = 0;
            long pid = 0;
            for (const char *c = d->name; *c != '\0' && k < 16; c++, k++) {
                if (*c < '0' || *c > '9') {
                    pid = -1;
                    break;
                }
                pid = pid * 10 + (*c - '0');
                path[k] = *c;
            }
            if (pid <= 0 || k == 0 || k >= 16)
                continue;
            memcpy(path + k, "/stat", 6);
            int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            char st[512];
            size_t len = read_full(fd, st, sizeof(st));
            close(fd);
            if (stat_ppid(st, len) == (long)me) {
                kill((pid_t)pid, SIGKILL);
                n++;
            }
        }
    }
    close(dfd);
    return n;
}

/* kill_children SIGKILLs every child of this (single-threaded) process;
 * returns how many it found, or -1 when it cannot tell. */
static int
kill_children(pid_t me)
{
    int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kill_children_scan(me);
    int n = kill_pid_list(fd);
    close(fd);
    return n;
}

/* handler_exited tells (without reaping) whether the handler has exited. */
static int
handler_exited(pid_t h)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)h, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == h;
}

/* reap_orphans reaps exited children (orphans re-parented here); returns 1
 * when one of them was the handler (its status stored), else 0. */
static int
reap_orphans(pid_t h, int *status, int *have)
{
    for (;;) {
        int st = 0;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (r == h) {
            *status = st;
            *have = 1;
            return 1;
        }
    }
}

/* end_all SIGKILLs the handler's group (while the handler is unreaped, the
 * group id cannot have been reused), then every child, round after round,
 * until none is left: whoever a killed process leaves behind is re-parented
 * here before the killed one can be reaped, so an empty child list means an
 * empty tree. */
static void
end_all(pid_t me, pid_t h, int *status, int *have)
{
    if (!*have)
        kill(-h, SIGKILL);
    for (;;) {
        int found = kill_children(me);
        int st = 0;
        pid_t r;
        if (found < 0) { /* no /proc: the handler's group is all we can end */
            r = *have ? -1 : waitpid(h, &st, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == h) {
                *status = st;
                *have = 1;
            }
            reap_orphans(h, status, have);
            return;
        }
        r = waitpid(-1, &st, 0);
        if (r == h) {
            *status = st;
            *have = 1;
        } else if (r < 0 && errno != EINTR) {
            return; /* ECHILD: nothing left */
        }
    }
}

/* await_end waits to be SIGKILLed by the worker, which does so once it has
 * the status; it exits by itself only when the worker is gone (EOF on the
 * control pipe). An exit of its own would let a tool that follows forks
 * (valgrind) report on this copy of the worker's heap, where the blocks of
 * the other threads look lost. */
static void __attribute__((noreturn)) await_end(void)
{
    for (;;) {
        struct pollfd pf = {.fd = SV_CTL_FD, .events = POLLIN};
        if (poll(&pf, 1, -1) < 0 && errno != EINTR)
            _exit(0);
        char cmd[64];
        ssize_t n = read(SV_CTL_FD, cmd, sizeof(cmd));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            _exit(0);
    }
}

/* start_handler forks the handler with vfork: this process is single-
 * threaded and the child only makes system calls until it execs, so
 * sharing the memory is safe, and it spares a second copy of the worker's
 * page tables per job. Returns the handler's pid or -1. */
static pid_t __attribute__((noinline)) start_handler(const wk_spawn_req *req, pid_t me)
{
    pid_t h = vfork();
    if (h == 0)
        handler_exec(req, me);
    return h;
}

/* supervise never returns (see spawn.h): sets itself up, forks the handler,
 * reports its pid, waits for its exit or the worker's word, ends every
 * process left and reports the handler's wait status. */
static void __attribute__((noreturn))
supervise(const wk_spawn_req *req, int errfd, int status_fd, int ctl_fd, int max_fd)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* only SIGKILL and SIGSTOP reach us */
    default_signals();
    setpgid(0, 0); /* out of the worker's group: a Ctrl-C is not for us */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    /* Every fd the worker has (Redis, listeners, other slots' pipes) goes;
     * the six we keep move to 0-5, by way of numbers above them all. */
    int err_out = errfd; /* where a failure is reported, as the fds move */
    int keep[SV_FIRST_FREE] = {req->stdin_fd, req->stdout_fd, req->stderr_fd,  errfd,
                               status_fd,     ctl_fd,         req->progress_fd};
    int n_keep = req->progress_fd >= 0 ? SV_FIRST_FREE : SV_PROGRESS_FD;
    for (int i = 0; i < n_keep; i++) {
        if ((keep[i] = fcntl(keep[i], F_DUPFD, SV_FIRST_FREE + 10)) < 0)
            goto failed;
        if (i == SV_ERR_FD)
            err_out = keep[i];
    }
    for (int i = 0; i < n_keep; i++)
        if (dup2(keep[i], i) < 0)
            goto failed;
    err_out = SV_ERR_FD;
    close_from(n_keep, max_fd);
    for (int fd = SV_ERR_FD; fd < SV_FIRST_FREE; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(SV_CTL_FD, F_SETFL, O_NONBLOCK);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);

    pid_t me = getpid();
    pid_t h = start_handler(req, me);
    if (h < 0) {
        int e = errno;
        write_all(SV_ERR_FD, &e, sizeof(e));
        close(SV_ERR_FD), close(SV_STATUS_FD); /* no handler to report on */
        await_end();
    }
    /* vfork returned: the handler has exec'd (or failed), in its own group */
    write_all(SV_STATUS_FD, &h, sizeof(h));
    close(0), close(1), close(2);
    if (req->progress_fd >= 0)
        close(SV_PROGRESS_FD); /* the worker sees EOF once the handler's copies close */
    close(SV_ERR_FD);          /* the worker sees EOF once the handler has exec'd */

    int status = 0, have = 0;
    for (;;) {
        struct pollfd pf[2] = {{.fd = SV_CTL_FD, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int rc = poll(pf, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : SV_POLL_MS);
        if (rc < 0 && errno != EINTR)
            break;
        if (sfd >= 0 && rc > 0 && pf[1].revents != 0) {
            struct signalfd_siginfo si[8];
            while (read(sfd, si, sizeof(si)) > 0)
                ;
        }
        if (handler_exited(h) || reap_orphans(h, &status, &have))
            break;
        if (rc > 0 && pf[0].revents != 0) {
            char cmd[64];
            ssize_t n = read(SV_CTL_FD, cmd, sizeof(cmd));
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                break; /* the worker is gone */
            if (n > 0 && memchr(cmd, 'K', (size_t)n) != NULL)
                break; /* the worker wants everything ended */
            if (n > 0 && memchr(cmd, 'T', (size_t)n) != NULL)
                kill(-h, SIGTERM); /* h is unreaped: the group is still its */
        }
    }
    end_all(me, h, &status, &have);
    write_all(SV_STATUS_FD, &status, sizeof(status));
    close(SV_STATUS_FD);
    await_end();

failed:;
    /* The fds may be half moved: report and go, touching nothing else. */
    int e = errno;
    write_all(err_out, &e, sizeof(e));
    _exit(127);
}

/*----------------------------------------------------------------------------
 * The worker's side
 *--------------------------------------------------------------------------*/

static int
cloexec_pipe(int p[2])
{
    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* finish waits until the supervisor has nothing more to say (EOF on the
 * status pipe: everything it started is gone, or it failed), then ends and
 * reaps it. */
static void
finish(pid_t pid, int status_fd)
{
    char buf[64];
    while (status_fd >= 0 && read_full(status_fd, buf, sizeof(buf)) == sizeof(buf))
        ;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int
wk_spawn(const wk_spawn_req *req, wk_child *child, jm_error *err)
{
    int rc = JM_OK;
    int ep[2] = {-1, -1}, sp[2] = {-1, -1}, cp[2] = {-1, -1};
    child->pid = child->handler = -1;
    child->ctl_fd = child->status_fd = -1;
    struct rlimit rl;
    int max_fd =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536
            ? (int)rl.rlim_cur
            : 65536;
    if (cloexec_pipe(ep) != 0 || cloexec_pipe(sp) != 0 || cloexec_pipe(cp) != 0) {
        rc = jm_error_set(err, JM_ERR_IO, NULL, "pipe: %s", strerror(errno));
        goto done;
    }
    pid_t pid = fork();
    if (pid == 0)
        supervise(req, ep[1], sp[1], cp[0], max_fd);
    if (pid < 0) {
        rc = jm_error_set(err, JM_ERR_IO, NULL, "fork: %s", strerror(errno));
        goto done;
    }
    setpgid(pid, pid);
    close_fd(&ep[1]);
    close_fd(&sp[1]);
    close_fd(&cp[0]);
    int child_errno = 0;
    size_t got = read_full(ep[0], &child_errno, sizeof(child_errno));
    pid_t h = -1;
    if (got == 0 && read_full(sp[0], &h, sizeof(h)) != sizeof(h))
        h = -1;
    if (got > 0 || h <= 0) {
        finish(pid, sp[0]);
        rc = jm_error_set(err, JM_ERR_IO, NULL, "exec %s: %s", req->path,
                          got == sizeof(child_errno) ? strerror(child_errno)
                                                     : "the supervisor failed");
        goto done;
    }
    int fl = fcntl(cp[1], F_GETFL);
    if (fl >= 0)
        fcntl(cp[1], F_SETFL, fl | O_NONBLOCK);
    child->pid = pid;
    child->handler = h;
    child->ctl_fd = cp[1];
    child->status_fd = sp[0];
    cp[1] = sp[0] = -1;

done:
    close_fd(&ep[0]), close_fd(&ep[1]), close_fd(&sp[0]), close_fd(&sp[1]);
    close_fd(&cp[0]), close_fd(&cp[1]);
    close(req->stdin_fd);
    close(req->stdout_fd);
    close(req->stderr_fd);
    if (req->progress_fd >= 0)
        close(req->progress_fd);
    return rc;
}

void
wk_spawn_signal(wk_child *child, int sig)
{
    if (child->ctl_fd < 0 || (sig != SIGTERM && sig != SIGKILL))
        return;
    ssize_t w = write(child->ctl_fd, sig == SIGKILL ? "K" : "T", 1);
    if (w != 1 && sig == SIGKILL)
        close_fd(&child->ctl_fd); /* EOF says the same */
}

int
wk_spawn_reap(wk_child *child)
{
    int hs = 0, st = 0;
    size_t got = child->status_fd >= 0 ? read_full(child->status_fd, &hs, sizeof(hs)) : 0;
    if (child->pid > 0) {
        if (got != sizeof(hs)) { /* it died without a word: its own status says how */
            while (waitpid(child->pid, &st, 0) < 0 && errno == EINTR)
                ;
        } else {
            finish(child->pid, child->status_fd);
        }
    }
    close_fd(&child->ctl_fd);
    close_fd(&child->status_fd);
    child->pid = child->handler = -1;
    return got == sizeof(hs) ? hs : st;
}
