/* keys.h - every Redis key name the C side of libshared spells, in one
 * place, mirroring the helpers of lua/_lib.lua (GP, SP, jkey, qkey). Private
 * to libshared: no service ever sees a key name.
 *
 * Layout (see docs/design.md, "Keys"): P is the prefix (redis.prefix), t a
 * queue's slot tag (jm_slot_tag; every job id starts with its queue's tag).
 *   P:                 global prefix  (ARGV[1] of every script: GP)
 *   P:{t}:             slot prefix    (KEYS[1] of every script: SP)
 *   P:{t}:job:<id>     a job record   (jkey)
 *   P:{t}:q:<q>:<what> a queue's structure: pending, active, wake, ... (qkey)
 *   P:{registry}:      the registry's slot prefix (KEYS[1] of the worker
 *                      registry scripts): P:{registry}:queues (the queue
 *                      set), P:{registry}:workers, P:{registry}:worker:<id>
 *   P:version  P:done  (a string read outside scripts; a pub/sub channel)
 *   P:{schedules}:     the schedules' slot (sched:<name>, sched_due, sched_all)
 *
 * Each function writes the key into caller storage (a jm_keybuf) and
 * returns it; a key that would not fit is cut (callers only pass validated
 * ids, tags and queue names, which always fit).
 */
#ifndef JM_KEYS_H
#define JM_KEYS_H

#include "jobmill/redis.h"

#define JM_KEY_MAX 384
typedef char jm_keybuf[JM_KEY_MAX];

/* The fixed hash tag of the registry keys (layout 2). */
#define JM_REGISTRY_TAG "{registry}"

const char *jm_key_global(jm_keybuf buf, const jm_redis *r);
const char *jm_key_registry(jm_keybuf buf, const jm_redis *r);
const char *jm_key_slot(jm_keybuf buf, const jm_redis *r, const char *tag);
/* The slot prefix of a queue (its tag computed from the name). */
const char *jm_key_queue_slot(jm_keybuf buf, const jm_redis *r, const char *queue);
const char *jm_key_job(jm_keybuf buf, const jm_redis *r, const char *id);
const char *jm_key_queue(jm_keybuf buf, const jm_redis *r, const char *queue, const char *what);
const char *jm_key_queues(jm_keybuf buf, const jm_redis *r);
const char *jm_key_workers(jm_keybuf buf, const jm_redis *r);
const char *jm_key_worker(jm_keybuf buf, const jm_redis *r, const char *id);
const char *jm_key_version(jm_keybuf buf, const jm_redis *r);
/* The slot prefix of every schedule key, "P:{schedules}:" (lua/schedule_*.lua). */
const char *jm_key_schedules(jm_keybuf buf, const jm_redis *r);
const char *jm_key_done(jm_keybuf buf, const jm_redis *r);

/* jm_key_job_pattern writes the SCAN MATCH pattern of every job record
 * ("P:{*}:job:*", the prefix's glob characters escaped). It also matches a
 * job's log list ("P:{t}:job:<id>:logs", lua/log_append.lua), which
 * jm_key_parse_job refuses. */
const char *jm_key_job_pattern(jm_keybuf buf, const jm_redis *r);
/* jm_key_parse_job: if key is a job record's key ("P:{t}:job:<id>", a valid
 * id of that tag), writes its slot prefix into slot and returns the id
 * (pointing into key); else NULL. */
const char *jm_key_parse_job(jm_keybuf slot, const jm_redis *r, const char *key);

#endif
