/* joblog.h - a job's log lines and progress from its handler: the capped
 * per-job log list in Redis (lua/log_append.lua, lua/logs_read.lua).
 *
 * Appends are fenced like every other call a handler's worker makes: the job
 * must be running under exactly the given lease token, or nothing changes
 * (JM_ERR_FENCE), so a zombie's lines are refused. One append is one script
 * call, whatever the number of lines. Lines are numbered from 0 in the order
 * appended; the list keeps the newest max_lines and every line is cut to
 * max_line_bytes (marked "...[truncated]"). The list expires with the job's
 * record (terminal(), purge, retry in lua/_lib.lua and friends).
 *
 * Lines are bytes: anything but the caller's length is taken as is (NUL and
 * invalid UTF-8 included); a reader that writes JSON must make them valid
 * (jm_joblog_utf8).
 *
 * Ownership: a jm_joblog_page holds the reply its lines point into; release
 * it with jm_joblog_page_clear.
 */
#ifndef JOBMILL_JOBLOG_H
#define JOBMILL_JOBLOG_H

#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/job.h"
#include "jobmill/redis.h"

#define JM_JOBLOG_READ_MAX 1000 /* lines one read returns at most */

/* The caps every append applies (logs.max_lines, logs.max_line_bytes). */
typedef struct jm_joblog_limits {
    int max_lines;
    int max_line_bytes;
} jm_joblog_limits;

/* jm_joblog_append appends n lines (lines[i] of lens[i] bytes, borrowed) to
 * job id's log and, when progress is not NULL, stores progress (JSON text)
 * as the job's progress, in one call. n may be 0 (progress only). *total
 * (may be NULL) gets the number of lines ever appended. Returns JM_OK,
 * JM_ERR_FENCE (not running under lease: nothing changed), JM_ERR_NOT_FOUND
 * (not a job id), JM_ERR_NOMEM or a Redis error. */
int jm_joblog_append(jm_redis *r, const char *id, const char *lease, const char *const *lines,
                     const size_t *lens, size_t n, const char *progress,
                     const jm_joblog_limits *lim, long long *total, jm_error *err);

/* One line of a page: borrowed from the page's reply. */
typedef struct jm_joblog_line {
    long long n;      /* its number */
    int64_t ts_ms;    /* when it was appended (Redis time, ms since the epoch) */
    const char *text; /* not NUL-terminated where it holds NUL bytes: use len */
    size_t len;
} jm_joblog_line;

typedef struct jm_joblog_page {
    jm_state status;       /* the job's state at the read */
    long long next;        /* the number the next line will get (read since=next) */
    long long first;       /* the number of lines[0] (> since: lines were trimmed) */
    jm_joblog_line *lines; /* owned */
    size_t n;
    void *reply; /* owned: what lines point into */
} jm_joblog_page;

/* jm_joblog_read reads up to max (1..JM_JOBLOG_READ_MAX) lines of job id
 * numbered since or later, and the job's state, in one call. Returns JM_OK
 * (page filled: clear it), JM_ERR_NOT_FOUND (no such job; page empty) or a
 * Redis error. */
int jm_joblog_read(jm_redis *r, const char *id, long long since, int max, jm_joblog_page *page,
                   jm_error *err);
void jm_joblog_page_clear(jm_joblog_page *page);

/* jm_joblog_utf8 copies len bytes of s into a new NUL-free, valid UTF-8
 * string: each byte of an invalid sequence becomes U+FFFD, NUL becomes
 * U+FFFD too. *out_len gets its length. NULL on no memory. */
char *jm_joblog_utf8(const char *s, size_t len, size_t *out_len);

#endif
