/* logship.h - an exec handler's stderr lines and JOBMILL_PROGRESS_FD
 * progress, shipped to the job's log in Redis (libshared joblog.h). Owned by
 * the worker; exec.c feeds it from its pump loop.
 *
 * Lines are cut at '\n' (a trailing '\r' dropped); a line is kept to
 * logs.max_line_bytes + 1 bytes while it is read (the rest is discarded, and
 * the append script cuts and marks it), so a line of any length costs a
 * bounded buffer. Lines gather in a batch of at most WK_SHIP_BATCH_LINES
 * lines and WK_SHIP_BATCH_BYTES bytes, sent as ONE fenced script call at most
 * every WK_SHIP_FLUSH_MS (and once more when the handler is done): a flood
 * of stderr costs the worker a bounded batch per slot and Redis ten calls a
 * second per job; lines beyond a full batch are dropped and counted, and
 * the next flush says how many ("[jobmill: N lines dropped]").
 *
 * Progress lines are JSON objects {"progress":N,"message":"..."} (N a number
 * from 0 to 100, message optional, a string of at most 1024 bytes), at most
 * WK_SHIP_PROGRESS_LINE bytes each; the latest good one of a batch is sent
 * with it. Anything else is ignored and counted; the attempt's count of
 * ignored lines is logged once when it ends.
 *
 * The calls are fenced by the claim's lease token: once one is refused (the
 * job is no longer this attempt's) the rest of the attempt's lines are
 * dropped. A Redis failure drops that batch (logged once per attempt): a
 * log never holds up a job.
 *
 * Calls go through the worker's side connection (wk_side), which runners
 * share under its mutex (one connection whatever the concurrency); no call
 * is made for an attempt that writes nothing to stderr or the progress fd.
 */
#ifndef WK_LOGSHIP_H
#define WK_LOGSHIP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "jobmill/joblog.h"
#include "jobmill/queue.h"
#include "jobmill/service.h"
#include "wmetrics.h"

#define WK_SHIP_BATCH_LINES 256
#define WK_SHIP_BATCH_BYTES (512 * 1024)
#define WK_SHIP_FLUSH_MS 200
#define WK_SHIP_PROGRESS_LINE 4096

/* The worker's side connection: progress and log appends of every runner. */
typedef struct wk_side {
    jm_redis *r; /* owned by the worker; used under mu */
    pthread_mutex_t mu;
    jm_service *svc; /* borrowed: Redis error counter */
    wk_metrics *m;   /* borrowed: dropped and ignored line counters */
} wk_side;

/* One line being assembled from a pipe. */
typedef struct wk_ship_buf {
    char *buf; /* owned, cap bytes */
    size_t len, cap;
    bool cut; /* over cap: the rest of the line is discarded */
} wk_ship_buf;

/* One attempt's shipper: caller storage. */
typedef struct wk_ship {
    wk_side *side;         /* borrowed; NULL = ship nothing */
    const jm_claim *claim; /* borrowed */
    jm_joblog_limits lim;
    wk_ship_buf err, prog; /* the stderr line and the progress line being read */
    char **lines;          /* the batch: owned strings */
    size_t *lens;
    size_t n, bytes;
    long long dropped;  /* lines dropped since the last flush */
    char *progress;     /* owned: the latest good progress JSON, NULL = none */
    long long ignored;  /* bad progress lines this attempt */
    int64_t next_flush; /* jm_clock_ms before which no flush is sent */
    bool refused;       /* the fence refused a call: ship no more */
    bool warned;        /* a Redis failure was logged */
} wk_ship;

/* wk_ship_init readies s for one attempt of claim. side may be NULL. */
void wk_ship_init(wk_ship *s, wk_side *side, const jm_claim *claim, const jm_config *cfg);
/* wk_ship_stderr / wk_ship_progress feed n bytes read from the handler's
 * stderr / progress fd. */
void wk_ship_stderr(wk_ship *s, const char *buf, size_t n);
void wk_ship_progress(wk_ship *s, const char *buf, size_t n);
/* wk_ship_due returns when the pending batch should be flushed (jm_clock_ms
 * scale), or 0 when nothing is pending. */
int64_t wk_ship_due(const wk_ship *s);
/* wk_ship_flush sends the pending batch when it is due at now, or always
 * when final (which also takes an unterminated last line). */
void wk_ship_flush(wk_ship *s, int64_t now, bool final);
/* wk_ship_free logs the ignored-progress count and releases s. */
void wk_ship_free(wk_ship *s);

#endif
