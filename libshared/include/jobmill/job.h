/* job.h - the job: states, record, submit spec, ids and their JSON forms.
 *
 *             submit                claim              complete
 *   (new) ──────────▶ queued ───────────────▶ running ───────────▶ succeeded
 *            delay    ▲   │ expires_at passed    │ │ fail, attempts left
 *   (new) ──▶ scheduled   ▼                      │ └──────────────▶ scheduled (backoff)
 *               │      expired                   │ fail, none left / permanent
 *               └─ due ─▶ queued                 ├──────────────▶ failed (dead-letter)
 *                                                │ lease expired (janitor) ──▶ queued or failed
 *   cancel: queued/scheduled ─▶ canceled;  running ─▶ cancel requested ─▶ canceled
 *   retry (operator): failed/canceled/expired ─▶ queued (attempts reset)
 *
 * The transitions themselves live in Lua (libshared/lua/), one script each;
 * queue.h is their C face. This file is pure data: no Redis, no I/O.
 *
 * Ownership: jm_job and jm_job_spec own their strings (malloc'd, may be NULL);
 * release them with jm_job_clear / jm_job_spec_clear.
 */
#ifndef JOBMILL_JOB_H
#define JOBMILL_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "jobmill/err.h"

typedef enum jm_state {
    JM_STATE_QUEUED = 0,
    JM_STATE_SCHEDULED,
    JM_STATE_RUNNING,
    JM_STATE_SUCCEEDED,
    JM_STATE_FAILED,
    JM_STATE_CANCELED,
    JM_STATE_EXPIRED,
    JM_STATE_COUNT,
    JM_STATE_UNKNOWN = -1,
} jm_state;

/* jm_state_name returns "queued", ... (static); "unknown" out of range. */
const char *jm_state_name(jm_state s);
/* jm_state_parse returns the state named s, or JM_STATE_UNKNOWN. */
jm_state jm_state_parse(const char *s);
/* jm_state_terminal: succeeded, failed, canceled, expired. */
bool jm_state_terminal(jm_state s);

#define JM_QUEUE_MAX 64 /* queue name length limit */
#define JM_ID_LEN 26    /* 4 hex slot tag + 22 base64url chars (128 bits) */
#define JM_TAG_LEN 4
#define JM_TYPE_MAX 128
#define JM_IDEM_MAX 256
#define JM_MAX_ATTEMPTS_MAX 1000
#define JM_PRIORITY_MAX 9

/* jm_queue_name_valid: 1–64 of [A-Za-z0-9_.-]. */
bool jm_queue_name_valid(const char *name);

/* jm_type_name_valid: a job type, 1–128 of [A-Za-z0-9_.:/-]. */
bool jm_type_name_valid(const char *type);

/* jm_slot_tag writes the 4 lowercase hex digits of CRC16(queue) mod 16384
 * (Redis Cluster's CRC16) plus NUL into tag[5]. */
void jm_slot_tag(const char *queue, char tag[JM_TAG_LEN + 1]);

/* jm_id_new writes a fresh id for queue into id[JM_ID_LEN + 1]: the queue's
 * slot tag then 128 random bits in base64url. JM_OK or JM_ERR_IO. */
int jm_id_new(const char *queue, char id[JM_ID_LEN + 1], jm_error *err);

/* jm_id_valid: the shape of an id (so ids from URLs are checked before use). */
bool jm_id_valid(const char *id);

/* What a client asks for when submitting. */
typedef struct jm_job_spec {
    char queue[JM_QUEUE_MAX + 1];
    char *type;            /* required */
    char *payload;         /* compact JSON text; "null" by default */
    int max_attempts;      /* 1–1000, default 3 */
    int timeout_s;         /* 0 = the handler's default */
    int64_t delay_ms;      /* 0 = none */
    int64_t run_at_ms;     /* epoch ms, 0 = none (delay_s and run_at exclude each other) */
    int64_t expires_in_ms; /* 0 = never */
    int result_ttl_s;      /* 0 = the service default */
    char *idem_key;        /* NULL = none */
    char *unique_key;      /* NULL = none (docs/api.md, unique jobs) */
    int64_t unique_for_ms; /* 0 = held until the job ends, else a window */
    int priority;          /* 0-9, higher first; 0 by default (docs/priorities.md) */
} jm_job_spec;

#define JM_TIMEOUT_MAX_S 604800 /* one week */
#define JM_DELAY_MAX_S 31536000 /* one year */
#define JM_TTL_MAX_S 31536000

/* jm_job_spec_from_json validates a submit body (an object) and fills spec.
 * field_prefix ("" or "jobs[3].") is put before field names in errors.
 * Returns JM_OK or JM_ERR_INVALID with err->field naming the field. spec is
 * cleared first and must be cleared by the caller in every case. */
int jm_job_spec_from_json(const json_t *body, const char *field_prefix, jm_job_spec *spec,
                          jm_error *err);
void jm_job_spec_clear(jm_job_spec *spec);

/* A job record as stored in Redis. Times are epoch ms from Redis's clock;
 * 0 means unset. */
typedef struct jm_job {
    char id[JM_ID_LEN + 1];
    char queue[JM_QUEUE_MAX + 1];
    char *type;
    char *payload;  /* JSON text */
    char *result;   /* JSON text or NULL */
    char *error;    /* text or NULL */
    char *progress; /* JSON text or NULL */
    char *worker;   /* worker id or NULL */
    char *idem_key; /* or NULL */
    jm_state status;
    int attempts;
    int max_attempts;
    int priority; /* 0-9 */
    int timeout_s;
    int result_ttl_s;
    int64_t fence;
    bool cancel_requested;
    int64_t created_ms, run_at_ms, started_ms, finished_ms, expires_ms;
    char batch[JM_ID_LEN + 1]; /* the batch it is a member of, "" = none (docs/batches.md) */
} jm_job;

void jm_job_clear(jm_job *job);

/* jm_job_from_hash fills job from an HGETALL-style flat array of n strings
 * (field, value, ...). Unknown fields are ignored. JM_OK, JM_ERR_NOT_FOUND
 * (n == 0), JM_ERR_REPLY (a malformed record) or JM_ERR_NOMEM. */
int jm_job_from_hash(jm_job *job, const char *id, const char *const *fv, size_t n, jm_error *err);

/* jm_job_to_json returns a new reference: the job object of docs/api.md. */
json_t *jm_job_to_json(const jm_job *job);

/* jm_job_json_write appends the same object as JSON text to t (compact, in
 * the same field order; the values print as JM_JSON_DUMP_FLAGS prints them),
 * without building jansson values: the api's answers with many jobs. */
struct jm_text;
void jm_job_json_write(struct jm_text *t, const jm_job *job);

/* The jansson flags for the JSON jobmill answers with: compact, any value,
 * and 16 significant digits so 0.1 prints "0.1" and epoch seconds keep their
 * milliseconds. Stored payloads keep 17 (exact doubles); a response may
 * print the rare value that needs 17 digits with 16. */
#define JM_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16))

/* jm_json_parse_text parses JSON text (any value, "null" for NULL) into a new
 * reference, or JSON null when text is not valid JSON or nests deeper than
 * JM_JSON_MAX_DEPTH (jobmill/json.h). */
json_t *jm_json_parse_text(const char *text);

/* jm_ms_to_json: epoch ms -> seconds with a millisecond fraction, or null. */
json_t *jm_ms_to_json(int64_t ms);

#endif
