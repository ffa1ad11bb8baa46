/* exec.c - the exec handler: one child process per attempt (see handler.h).
 * Owned by the worker.
 *
 * The handler runs under its own supervisor process (spawn.h), which ends
 * every process the handler started, in its process group or not, when the
 * handler exits, when the worker asks, and when the worker dies.
 *
 * The payload goes to the handler's stdin, stdout is collected as the result
 * (at most max_result_bytes, nested at most JM_JSON_MAX_DEPTH deep), the
 * last STDERR_TAIL bytes of stderr become the error text. stderr's lines
 * also go to the job's log, and the lines the handler writes on fd 3
 * (JOBMILL_PROGRESS_FD) set its progress (logship.h), both flushed at most
 * every WK_SHIP_FLUSH_MS and once more before the outcome is committed.
 * One poll() loop pumps the four pipes and also watches the slot's stop fd (cancel, lost
 * lease, drain), the supervisor's status pipe (readable once the handler
 * and everything it started are gone), and the deadlines: the
 * job timeout sends SIGTERM to the handler's process group, and
 * KILL_GRACE_MS later every process the handler started is SIGKILLed. A
 * lost lease skips the grace (SIGKILL at once): another worker may already
 * run the job.
 *
 * The supervisor exits once the handler has exited and nothing it started
 * is left; output still buffered in the pipes is then read for at most
 * AFTER_EXIT_MS more. Every child is reaped and every fd closed on every
 * path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <jansson.h>
#include "handler.h"
#include "logship.h"
#include "jobmill/json.h"
#include "jobmill/log.h"
#include "spawn.h"
#include "jobmill/clock.h"

#define KILL_GRACE_MS 2000
#define AFTER_EXIT_MS 1000
#define STDERR_TAIL 2048
#define READ_CHUNK 65536

typedef struct pump {
    wk_child child; /* the supervisor and the handler (spawn.h) */
    int in_fd, out_fd, err_fd, prog_fd;
    wk_ship ship; /* stderr lines and progress to the job's log */
    const char *in_buf;
    size_t in_len, in_off;
    char *out;
    size_t out_len, out_cap;
    size_t max_out;
    char tail[STDERR_TAIL];
    size_t tail_len;
    int exited, status;
    int too_large, timed_out, term_sent, kill_sent;
    wk_stop stopped;
    int64_t timeout_at, kill_at, after_exit_at;
} pump;

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int
parent_end(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* signal_group: SIGTERM to the handler's group, SIGKILL to everything it
 * started (spawn.h). */
static void
signal_group(pump *p, int sig)
{
    if (p->exited)
        return;
    wk_spawn_signal(&p->child, sig);
    if (sig == SIGKILL)
        p->kill_sent = 1;
}

static void
send_term(pump *p, int64_t now)
{
    if (p->term_sent)
        return;
    p->term_sent = 1;
    p->kill_at = now + KILL_GRACE_MS;
    signal_group(p, SIGTERM);
}

static void
on_stop(pump *p, const wk_job_ctx *ctx, int64_t now)
{
    wk_stop why = wk_slots_stop_reason(ctx->slots, ctx->slot);
    if (why == WK_STOP_NONE || p->exited)
        return;
    if (why > p->stopped)
        p->stopped = why;
    if (why >= WK_STOP_LEASE_EXPIRED)
        signal_group(p, SIGKILL);
    else
        send_term(p, now);
}

static void
read_out(pump *p)
{
    for (;;) {
        if (p->out_len + READ_CHUNK + 1 > p->out_cap) {
            size_t cap = p->out_cap == 0 ? READ_CHUNK + 1 : p->out_cap * 2;
            if (cap > p->max_out + READ_CHUNK + 1)
                cap = p->max_out + READ_CHUNK + 1;
            char *n = realloc(p->out, cap);
            if (n == NULL) {
                p->too_large = 1; /* cannot hold it: treat as over the limit */
                signal_group(p, SIGKILL);
                close_fd(&p->out_fd);
                return;
            }
            p->out = n;
            p->out_cap = cap;
        }
        ssize_t r = read(p->out_fd, p->out + p->out_len, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            close_fd(&p->out_fd);
            return;
        }
        p->out_len += (size_t)r;
        if (p->out_len > p->max_out) {
            p->too_large = 1;
            signal_group(p, SIGKILL);
            close_fd(&p->out_fd);
            return;
        }
    }
}

static void
read_err(pump *p)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(p->err_fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            close_fd(&p->err_fd);
            return;
        }
        size_t n = (size_t)r;
        wk_ship_stderr(&p->ship, buf, n);
        if (n >= STDERR_TAIL) {
            memcpy(p->tail, buf + n - STDERR_TAIL, STDERR_TAIL);
            p->tail_len = STDERR_TAIL;
        } else {
            size_t keep = p->tail_len + n > STDERR_TAIL ? STDERR_TAIL - n : p->tail_len;
            memmove(p->tail, p->tail + p->tail_len - keep, keep);
            memcpy(p->tail + keep, buf, n);
            p->tail_len = keep + n;
        }
    }
}

static void
read_prog(pump *p)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(p->prog_fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            close_fd(&p->prog_fd);
            return;
        }
        wk_ship_progress(&p->ship, buf, (size_t)r);
    }
}

static void
write_in(pump *p)
{
    while (p->in_off < p->in_len) {
        ssize_t w = write(p->in_fd, p->in_buf + p->in_off, p->in_len - p->in_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) { /* EPIPE: the child does not read its stdin */
            close_fd(&p->in_fd);
            return;
        }
        p->in_off += (size_t)w;
    }
    close_fd(&p->in_fd);
}

/* reap reaps the supervisor, which has ended everything the handler
 * started, and takes the handler's wait status. */
static void
reap(pump *p, const wk_job_ctx *ctx, int64_t now)
{
    wk_slots_set_child(ctx->slots, ctx->slot, 0);
    p->status = wk_spawn_reap(&p->child);
    p->exited = 1;
    p->after_exit_at = now + AFTER_EXIT_MS;
    close_fd(&p->in_fd);
}

static int
min_timeout(int64_t now, int64_t at, int cur)
{
    if (at <= 0)
        return cur;
    int64_t d = at - now;
    if (d < 0)
        d = 0;
    if (d > 60000)
        d = 60000;
    return cur < 0 || d < cur ? (int)d : cur;
}

static void
pump_loop(pump *p, const wk_job_ctx *ctx)
{
    for (;;) {
        int64_t now = jm_clock_ms();
        if (!p->exited) {
            if (p->timeout_at > 0 && now >= p->timeout_at && !p->term_sent) {
                p->timed_out = 1;
                send_term(p, now);
            }
            if (p->term_sent && !p->kill_sent && now >= p->kill_at)
                signal_group(p, SIGKILL);
        } else if ((p->out_fd < 0 && p->err_fd < 0 && p->prog_fd < 0) || now >= p->after_exit_at) {
            return;
        }
        wk_ship_flush(&p->ship, now, false);
        struct pollfd fds[6];
        int nf = 0, i_stop = -1, i_in = -1, i_out = -1, i_err = -1, i_prog = -1, i_done = -1;
        if (!p->exited) {
            fds[i_stop = nf++] = (struct pollfd){.fd = ctx->stop_fd, .events = POLLIN};
            fds[i_done = nf++] = (struct pollfd){.fd = p->child.status_fd, .events = POLLIN};
        }
        if (p->in_fd >= 0)
            fds[i_in = nf++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
        if (p->out_fd >= 0)
            fds[i_out = nf++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
        if (p->err_fd >= 0)
            fds[i_err = nf++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
        if (p->prog_fd >= 0)
            fds[i_prog = nf++] = (struct pollfd){.fd = p->prog_fd, .events = POLLIN};
        int tmo = min_timeout(now, wk_ship_due(&p->ship), -1);
        if (!p->exited) {
            if (!p->term_sent)
                tmo = min_timeout(now, p->timeout_at, tmo);
            else if (!p->kill_sent)
                tmo = min_timeout(now, p->kill_at, tmo);
        } else {
            tmo = min_timeout(now, p->after_exit_at, tmo);
        }
        int rc = poll(fds, (nfds_t)nf, tmo);
        if (rc < 0 && errno != EINTR)
            jm_log_error("exec: poll failed", "error", strerror(errno), NULL);
        now = jm_clock_ms();
        const short ready = POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL;
        if (rc > 0 && i_in >= 0 && (fds[i_in].revents & ready))
            write_in(p);
        if (rc > 0 && i_out >= 0 && (fds[i_out].revents & ready))
            read_out(p);
        if (rc > 0 && i_err >= 0 && (fds[i_err].revents & ready))
            read_err(p);
        if (rc > 0 && i_prog >= 0 && (fds[i_prog].revents & ready))
            read_prog(p);
        /* Reap before looking at a stop request: a child that exited in the
         * same instant finished its work, and its outcome is committed (the
         * fence still decides whether it counts). */
        if (!p->exited && i_done >= 0 && rc > 0 && (fds[i_done].revents & ready))
            reap(p, ctx, now);
        if (rc > 0 && i_stop >= 0 && (fds[i_stop].revents & ready))
            on_stop(p, ctx, now);
        if (rc < 0 && errno == EINTR)
            continue;
    }
}

/* tail_text returns the stderr tail as valid UTF-8 without trailing
 * whitespace, in a new string ("" when empty). */
static char *
tail_text(const pump *p)
{
    char *s = malloc(p->tail_len + 1);
    if (s == NULL)
        return NULL;
    size_t k = 0;
    const unsigned char *t = (const unsigned char *)p->tail;
    for (size_t i = 0; i < p->tail_len;) {
        unsigned c = t[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = n > 0 && i + n <= p->tail_len;
        for (size_t j = 1; ok && j < n; j++)
            ok = (t[i + j] & 0xC0) == 0x80;
        if (ok && n == 1 && c == 0)
            ok = 0;
        if (!ok) {
            if (i >= 3 || (c & 0xC0) != 0x80) /* leading cut-off continuation bytes vanish */
                s[k++] = '?';
            i++;
            continue;
        }
        memcpy(s + k, t + i, n);
        k += n;
        i += n;
    }
    while (k > 0 && (s[k - 1] == '\n' || s[k - 1] == '\r' || s[k - 1] == ' ' || s[k - 1] == '\t'))
        k--;
    s[k] = '\0';
    return s;
}

static int
permanent_code(const jm_cfg_handler *h, int code)
{
    for (int i = 0; i < h->n_permanent_exit_codes; i++)
        if (h->permanent_exit_codes[i] == code)
            return 1;
    return 0;
}

/* result_json parses stdout: empty (or blank) is null; else a JSON value
 * nested at most JM_JSON_MAX_DEPTH deep (deeper fails the job for good). */
static void
result_json(pump *p, wk_outcome *out, const char *tail)
{
    size_t i = 0;
    while (i < p->out_len && strchr(" \t\r\n", p->out[i]) != NULL)
        i++;
    if (i == p->out_len) {
        wk_outcome_ok(out, "null");
        return;
    }
    json_error_t je;
    json_t *v = jm_json_loadb(p->out, p->out_len, JSON_DECODE_ANY, &je);
    if (v == NULL && jm_json_error_is_depth(&je)) {
        /* Like an oversize result: the same output would be refused again. */
        wk_outcome_fail(out, true, "stdout is JSON %s (line %d, column %d)%s%s", je.text, je.line,
                        je.column, tail[0] ? ": " : "", tail);
        return;
    }
    if (v == NULL) {
        wk_outcome_fail(out, false, "stdout is not valid JSON (%s)%s%s", je.text,
                        tail[0] ? ": " : "", tail);
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (text == NULL) {
        wk_outcome_fail(out, false, "out of memory encoding the result");
        return;
    }
    wk_outcome_ok(out, text);
    free(text);
}

static void
judge(pump *p, const jm_cfg_handler *h, const wk_job_ctx *ctx, wk_outcome *out)
{
    char *tail = tail_text(p);
    const char *t = tail != NULL ? tail : "";
    const char *sep = t[0] ? ": " : "";
    if (p->stopped != WK_STOP_NONE) {
        wk_outcome_stopped(out, p->stopped);
    } else if (p->too_large) {
        wk_outcome_fail(out, true, "result too large: stdout exceeds max_result_bytes (%zu)",
                        p->max_out);
    } else if (p->timed_out) {
        wk_outcome_fail(out, false, "timeout after %" PRId64 " ms%s%s", ctx->timeout_ms, sep, t);
    } else if (WIFSIGNALED(p->status)) {
        wk_outcome_fail(out, false, "killed by signal %d%s%s", WTERMSIG(p->status), sep, t);
    } else if (WIFEXITED(p->status) && WEXITSTATUS(p->status) != 0) {
        int code = WEXITSTATUS(p->status);
        wk_outcome_fail(out, permanent_code(h, code) != 0, "exit code %d%s%s", code, sep, t);
    } else {
        result_json(p, out, t);
    }
    free(tail);
}

void
wk_exec_run(const jm_cfg_handler *h, const wk_job_ctx *ctx, wk_outcome *out)
{
    const jm_claim *c = ctx->claim;
    jm_error err;
    jm_error_clear(&err);
    char path[4096];
    if (wk_spawn_resolve(h->argv[0], path, sizeof(path), &err) != JM_OK) {
        wk_metric_bump(ctx->metrics->spawn_failures);
        wk_outcome_fail(out, false, "spawn: %s", err.msg);
        return;
    }
    char e_id[64], e_q[96], e_att[48], e_fence[64], e_prog[48];
    snprintf(e_id, sizeof(e_id), "JOBMILL_JOB_ID=%s", c->id);
    snprintf(e_q, sizeof(e_q), "JOBMILL_QUEUE=%s", c->queue);
    snprintf(e_att, sizeof(e_att), "JOBMILL_ATTEMPT=%d", c->attempt);
    snprintf(e_fence, sizeof(e_fence), "JOBMILL_FENCE=%" PRId64, c->fence);
    snprintf(e_prog, sizeof(e_prog), "JOBMILL_PROGRESS_FD=%d", WK_SPAWN_PROGRESS_FD);
    const char *extra[] = {e_id, e_q, e_att, e_fence, e_prog};
    char **envp = wk_spawn_env(extra, 5);
    pump p;
    memset(&p, 0, sizeof(p));
    p.in_fd = p.out_fd = p.err_fd = p.prog_fd = -1;
    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1}, g[2] = {-1, -1};
    if (envp == NULL || pipe(in) != 0 || pipe(o) != 0 || pipe(e) != 0 || pipe(g) != 0) {
        wk_metric_bump(ctx->metrics->spawn_failures);
        wk_outcome_fail(out, false, "spawn: %s", envp == NULL ? "out of memory" : strerror(errno));
        close_fd(&in[0]), close_fd(&in[1]), close_fd(&o[0]), close_fd(&o[1]);
        close_fd(&e[0]), close_fd(&e[1]), close_fd(&g[0]), close_fd(&g[1]);
        wk_spawn_env_free(envp);
        return;
    }
    parent_end(in[1]);
    parent_end(o[0]);
    parent_end(e[0]);
    parent_end(g[0]);
    wk_spawn_req req = {.path = path,
                        .argv = h->argv,
                        .envp = envp,
                        .stdin_fd = in[0],
                        .stdout_fd = o[1],
                        .stderr_fd = e[1],
                        .progress_fd = g[1]};
    int spawned = wk_spawn(&req, &p.child, &err);
    wk_spawn_env_free(envp);
    p.in_fd = in[1];
    p.out_fd = o[0];
    p.err_fd = e[0];
    p.prog_fd = g[0];
    if (spawned != JM_OK) {
        wk_metric_bump(ctx->metrics->spawn_failures);
        wk_outcome_fail(out, false, "spawn: %s", err.msg);
        close_fd(&p.in_fd), close_fd(&p.out_fd), close_fd(&p.err_fd), close_fd(&p.prog_fd);
        return;
    }
    wk_ship_init(&p.ship, ctx->side, c, ctx->cfg);
    wk_slots_set_child(ctx->slots, ctx->slot, p.child.handler);
    p.in_buf = c->payload != NULL ? c->payload : "null";
    p.in_len = strlen(p.in_buf);
    p.max_out = ctx->cfg->max_result_bytes > 0 ? (size_t)ctx->cfg->max_result_bytes : 1048576;
    int64_t start = jm_clock_ms();
    p.timeout_at = ctx->timeout_ms > 0 ? start + ctx->timeout_ms : 0;
    if (p.in_len == 0)
        close_fd(&p.in_fd);
    /* A stop that arrived before the spawn is acted on at once. */
    on_stop(&p, ctx, start);
    pump_loop(&p, ctx);
    /* the last lines and progress land before the outcome is committed */
    wk_ship_flush(&p.ship, jm_clock_ms(), true);
    wk_ship_free(&p.ship);
    judge(&p, h, ctx, out);
    free(p.out);
    close_fd(&p.in_fd), close_fd(&p.out_fd), close_fd(&p.err_fd), close_fd(&p.prog_fd);
}
