/* slots.h - the in-flight table: one slot per unit of concurrency.
 *
 * A slot is free, or busy from the moment the claimer hands it a claim until
 * its runner has committed (or given up on) the outcome; busy slots are the
 * leases the heartbeat renews. Each busy slot has a generation (so a late
 * heartbeat answer never touches the next job of the same slot), a lease
 * deadline by this process's monotonic clock, a stop reason and a stop pipe
 * its handler polls, and the process group of its exec child, if any.
 *
 * Locking: one mutex guards the table. The claimer waits on `freed` for a
 * free slot (no polling); each runner waits on its slot's `assigned`.
 * Notifications to the main thread go through a pipe (main waits in pselect
 * so that it also wakes on signals).
 *
 * Ownership: the table owns the claims of busy slots. A runner may read its
 * slot's claim without the lock while the slot is busy (nobody writes it
 * then); the claim is cleared when the slot is released.
 */
#ifndef WK_SLOTS_H
#define WK_SLOTS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include "jobmill/err.h"
#include "jobmill/queue.h"

/* Why a handler is being stopped; a higher value overrides a lower one. */
typedef enum wk_stop {
    WK_STOP_NONE = 0,
    WK_STOP_DRAIN,         /* shutdown grace over: release the job */
    WK_STOP_CANCEL,        /* a cancel was requested: cancel_ack */
    WK_STOP_LEASE_EXPIRED, /* renewals failed past the lease: abandon (fenced) */
    WK_STOP_LEASE_LOST,    /* the lease is someone else's: commit nothing */
} wk_stop;

/* wk_stop_name returns a static name ("drain", "cancel", ...). */
const char *wk_stop_name(wk_stop s);

typedef struct wk_slot {
    int busy;               /* a claim is held */
    uint64_t gen;           /* bumped at each assignment */
    jm_claim claim;         /* owned while busy */
    int64_t lease_deadline; /* monotonic ms; our conservative estimate */
    wk_stop stop;
    pid_t child_pgid; /* exec child's process group, 0 = none */
    int stop_pipe[2]; /* [0] polled by handlers, [1] written on stop */
    pthread_cond_t assigned;
} wk_slot;

typedef struct wk_slots {
    pthread_mutex_t mu;
    pthread_cond_t freed; /* a slot became free, or draining began */
    wk_slot *v;
    int n;
    int busy;      /* busy slots */
    int draining;  /* no more assignments; wait_free returns 0 */
    int closing;   /* runners exit */
    int notify_fd; /* main thread's pipe, written on release */
} wk_slots;

/* A lease to renew, copied out of the table for the heartbeat. */
typedef struct wk_lease_ref {
    int slot;
    uint64_t gen;
    char id[JM_ID_LEN + 1];
    char queue[JM_QUEUE_MAX + 1];
    char lease[JM_LEASE_MAX + 1];
} wk_lease_ref;

/* wk_slots_init makes n free slots. notify_fd (borrowed, non-blocking) gets
 * a byte whenever a slot is released. JM_OK, JM_ERR_NOMEM or JM_ERR_IO. */
int wk_slots_init(wk_slots *s, int n, int notify_fd, jm_error *err);
/* wk_slots_destroy frees the table (no thread may use it any more). */
void wk_slots_destroy(wk_slots *s);

/* ---- claimer side ---- */

/* wk_slots_wait_free blocks until a slot is free or draining began; returns
 * the number of free slots, 0 when draining. */
int wk_slots_wait_free(wk_slots *s);
/* wk_slots_wait_drain waits up to ms for draining to begin (the claimer's
 * back-off after a Redis error); returns 1 when draining. */
int wk_slots_wait_drain(wk_slots *s, int ms);
/* wk_slots_is_draining tells whether draining began. */
int wk_slots_is_draining(wk_slots *s);
/* wk_slots_assign moves *c (its strings included; *c is zeroed) into a free
 * slot with the given lease deadline and wakes its runner. Returns the slot,
 * or -1 when no slot is free (a claimer bug: the caller logs and the lease
 * expiry recovers the job). */
int wk_slots_assign(wk_slots *s, jm_claim *c, int64_t lease_deadline);

/* ---- runner side ---- */

/* wk_slots_take waits until slot i is assigned (returns 1) or the table is
 * closing (returns 0). */
int wk_slots_take(wk_slots *s, int i);
/* wk_slots_claim returns slot i's claim (borrowed, valid while busy). */
const jm_claim *wk_slots_claim(wk_slots *s, int i);
/* wk_slots_stop_fd returns the fd a handler of slot i polls for a stop. */
int wk_slots_stop_fd(wk_slots *s, int i);
/* wk_slots_stop_reason reads slot i's stop reason and drains its stop pipe. */
wk_stop wk_slots_stop_reason(wk_slots *s, int i);
/* wk_slots_lease_deadline reads slot i's lease estimate (monotonic ms). */
int64_t wk_slots_lease_deadline(wk_slots *s, int i);
/* wk_slots_set_child records (pgid > 0) or clears (0) slot i's exec child. */
void wk_slots_set_child(wk_slots *s, int i, pid_t pgid);
/* wk_slots_reassign gives busy slot i its next job *c (moved in; *c is
 * zeroed) without freeing it: the old claim is cleared, the generation
 * bumped (a late heartbeat answer for the old job touches nothing) and the
 * stop reason reset, except that a slot of a draining table starts its new
 * job stopped for the drain (its runner releases it at once). */
void wk_slots_reassign(wk_slots *s, int i, jm_claim *c, int64_t lease_deadline);
/* wk_slots_release frees slot i, clears its claim, wakes the claimer and
 * notifies the main thread. */
void wk_slots_release(wk_slots *s, int i);

/* ---- heartbeat and main ---- */

/* wk_slots_leases copies the busy slots' leases into out (room for s->n);
 * returns how many. */
int wk_slots_leases(wk_slots *s, wk_lease_ref *out);
/* wk_slots_renewed moves the lease estimate of (slot, gen) to deadline. */
void wk_slots_renewed(wk_slots *s, int slot, uint64_t gen, int64_t deadline);
/* wk_slots_stop asks the handler of (slot, gen) to stop for reason; gen 0
 * matches any generation. A weaker reason never overrides a stronger one. */
void wk_slots_stop(wk_slots *s, int slot, uint64_t gen, wk_stop reason);
/* wk_slots_expire stops (LEASE_EXPIRED) every busy slot whose lease estimate
 * is at or before now; returns the earliest remaining estimate, or
 * INT64_MAX when none. */
int64_t wk_slots_expire(wk_slots *s, int64_t now);
/* wk_slots_busy returns the number of busy slots. */
int wk_slots_busy(wk_slots *s);
/* wk_slots_drain stops further assignments and wakes the claimer. */
void wk_slots_drain(wk_slots *s);
/* wk_slots_stop_all stops every busy slot for reason. */
void wk_slots_stop_all(wk_slots *s, wk_stop reason);
/* wk_slots_close makes every runner's wk_slots_take return 0. */
void wk_slots_close(wk_slots *s);
/* wk_slots_kill_children SIGKILLs every exec child's process group (the
 * immediate exit on a second signal). */
void wk_slots_kill_children(wk_slots *s);

#endif
