/* batch.h - batches of jobs with fan-out and fan-in (docs/batches.md).
 *
 * A batch lives in one queue's slot: its id starts with the queue's slot tag
 * like a job id and its members all run on that queue. Its optional
 * callback job is created in the same script as the last member's end
 * (exactly once, whoever ends it) when the callback's queue is in the same
 * slot; otherwise the janitor submits it (jm_batch_callbacks).
 *
 * A submit is all or nothing from the client's view: jm_batch_open starts
 * an open batch, jm_batch_stage adds chunks of held jobs that no worker can
 * see, jm_batch_seal makes it final (the point of no return) and
 * jm_batch_release turns held jobs into queued ones in chunks. An open batch
 * that is never sealed expires with everything staged in it; a sealed one
 * whose releasing stopped is finished by the janitor (jm_batch_release with
 * no id). jm_batch_submit does all four steps.
 *
 * Functions return JM_OK or a negative jm_err (err filled); strings passed
 * in are borrowed for the call.
 */
#ifndef JOBMILL_BATCH_H
#define JOBMILL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/job.h"
#include "jobmill/redis.h"

#define JM_BATCH_MAX 100000     /* jobs in one batch */
#define JM_BATCH_CHUNK 500      /* jobs per staging call */
#define JM_BATCH_RELEASE 1000   /* jobs per release call */
#define JM_BATCH_OPEN_MS 300000 /* an open batch expires this long after its last chunk */
#define JM_BATCH_PAGE_MAX 1000  /* member ids per read */

/* What a client submits. Every job runs on queue (each spec's own queue,
 * idem_key and unique_key are not used); callback, when not NULL, is the
 * job created when the last member ends, on its own queue ("" = queue),
 * its payload wrapped as {"batch_id": ID, "payload": callback payload}. */
typedef struct jm_batch_spec {
    const char *queue;
    const jm_job_spec *jobs; /* borrowed, n of them */
    size_t n;
    const jm_job_spec *callback; /* borrowed or NULL */
    const char *idem_key;        /* NULL = none */
    int result_ttl_s;            /* how long a done batch is kept; 0 = jobs.result_ttl_s */
} jm_batch_spec;

/* jm_batch_open starts an open batch for b (nothing staged yet) under a new
 * id written into id. *created is false when b->idem_key names a batch
 * submitted before: id is that batch, and nothing else is to be done.
 * max_queues > 0 refuses (JM_ERR_LIMIT, field "queue") a queue that would
 * be one more than max_queues. */
int jm_batch_open(jm_redis *r, const jm_batch_spec *b, int max_queues, char id[JM_ID_LEN + 1],
                  bool *created, jm_error *err);

/* jm_batch_stage stages b->jobs[from..from+n) into the open batch id under
 * new job ids. JM_ERR_STATE when the batch is no longer open (it expired). */
int jm_batch_stage(jm_redis *r, const char *id, const jm_batch_spec *b, size_t from, size_t n,
                   jm_error *err);

/* jm_batch_seal makes the open batch id final once all b->n jobs are staged
 * (JM_ERR_STATE when it is not open or holds another number). *created is
 * false when another batch sealed b->idem_key first: id then becomes that
 * batch and this one is dropped. */
int jm_batch_seal(jm_redis *r, char id[JM_ID_LEN + 1], const jm_batch_spec *b, bool *created,
                  jm_error *err);

/* jm_batch_release releases up to max staged jobs of sealed batches of
 * queue: batch id, or (id NULL) those of the queue's release index. *n gets
 * how many were released, *more whether staged jobs remain. */
int jm_batch_release(jm_redis *r, const char *queue, const char *id, int max, int *n, bool *more,
                     jm_error *err);

/* jm_batch_callbacks submits the callbacks of up to max done batches of
 * queue whose callback queue is in another slot (the janitor's duty; the
 * fan-in cannot write there): each under the idempotency key
 * "batch:<id>:callback", so racing janitors make one job. *n gets how many
 * were submitted. */
int jm_batch_callbacks(jm_redis *r, const char *queue, int max, int *n, jm_error *err);

/* jm_batch_submit: open, stage in chunks, seal, release. JM_OK once sealed
 * (a release cut short by Redis trouble is finished by the janitor). */
int jm_batch_submit(jm_redis *r, const jm_batch_spec *b, int max_queues, char id[JM_ID_LEN + 1],
                    bool *created, jm_error *err);

/* A batch as read. Owns ids (a page of member ids, submission order). */
typedef struct jm_batch {
    char id[JM_ID_LEN + 1];
    char queue[JM_QUEUE_MAX + 1];
    bool done;
    int64_t total, released, left;
    int64_t counts[JM_STATE_COUNT]; /* the terminal states' members */
    char callback[JM_ID_LEN + 1];   /* the callback job once created, else "" */
    bool has_callback;
    int64_t created_ms, finished_ms;
    char **ids;
    size_t nids;
} jm_batch;

/* jm_batch_get reads batch id and up to limit member ids from offset (limit
 * 0 = none). watch marks it waited on: its finish is then published on the
 * done channel (pubsub.h) under the batch id. JM_ERR_NOT_FOUND when there is
 * no accepted batch of that id. out is cleared first; clear it with
 * jm_batch_clear in every case. */
int jm_batch_get(jm_redis *r, const char *id, bool watch, int64_t offset, int limit, jm_batch *out,
                 jm_error *err);
void jm_batch_clear(jm_batch *b);

/* jm_batch_states counts batch id's members in the non-terminal states
 * (out[JM_STATE_QUEUED], [JM_STATE_SCHEDULED], [JM_STATE_RUNNING]; the rest
 * of out is zeroed) from their records, JM_BATCH_STATES_SLICE members per
 * Redis call, so no call holds Redis long: the sum is not one instant's (a
 * member may move between calls). A member still staged counts as queued. */
#define JM_BATCH_STATES_SLICE 2000
int jm_batch_states(jm_redis *r, const char *id, int64_t out[JM_STATE_COUNT], jm_error *err);

#endif
