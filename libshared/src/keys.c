/* keys.c - the key names (see keys.h). */
#include <stdio.h>
#include <string.h>
#include "jobmill/job.h"
#include "keys.h"

const char *
jm_key_global(jm_keybuf buf, const jm_redis *r)
{
    snprintf(buf, JM_KEY_MAX, "%s:", jm_redis_prefix(r));
    return buf;
}

const char *
jm_key_slot(jm_keybuf buf, const jm_redis *r, const char *tag)
{
    snprintf(buf, JM_KEY_MAX, "%s:{%.4s}:", jm_redis_prefix(r), tag);
    return buf;
}

const char *
jm_key_queue_slot(jm_keybuf buf, const jm_redis *r, const char *queue)
{
    char tag[JM_TAG_LEN + 1];
    jm_slot_tag(queue, tag);
    return jm_key_slot(buf, r, tag);
}

const char *
jm_key_job(jm_keybuf buf, const jm_redis *r, const char *id)
{
    snprintf(buf, JM_KEY_MAX, "%s:{%.4s}:job:%s", jm_redis_prefix(r), id, id);
    return buf;
}

const char *
jm_key_queue(jm_keybuf buf, const jm_redis *r, const char *queue, const char *what)
{
    char tag[JM_TAG_LEN + 1];
    jm_slot_tag(queue, tag);
    snprintf(buf, JM_KEY_MAX, "%s:{%s}:q:%s:%s", jm_redis_prefix(r), tag, queue, what);
    return buf;
}

const char *
jm_key_registry(jm_keybuf buf, const jm_redis *r)
{
    snprintf(buf, JM_KEY_MAX, "%s:" JM_REGISTRY_TAG ":", jm_redis_prefix(r));
    return buf;
}

/* registry writes "P:{registry}:<name>[:<id>]": the queue set and the worker
 * registry, in one slot of their own (no transition script touches them). */
static const char *
registry(jm_keybuf buf, const jm_redis *r, const char *name, const char *id)
{
    snprintf(buf, JM_KEY_MAX, "%s:" JM_REGISTRY_TAG ":%s%s%s", jm_redis_prefix(r), name,
             id != NULL ? ":" : "", id != NULL ? id : "");
    return buf;
}

/* global writes "P:<name>[:<id>]": the keys outside every slot tag. */
static const char *
global(jm_keybuf buf, const jm_redis *r, const char *name, const char *id)
{
    snprintf(buf, JM_KEY_MAX, "%s:%s%s%s", jm_redis_prefix(r), name, id != NULL ? ":" : "",
             id != NULL ? id : "");
    return buf;
}

const char *
jm_key_queues(jm_keybuf buf, const jm_redis *r)
{
    return registry(buf, r, "queues", NULL);
}

const char *
jm_key_workers(jm_keybuf buf, const jm_redis *r)
{
    return registry(buf, r, "workers", NULL);
}

const char *
jm_key_worker(jm_keybuf buf, const jm_redis *r, const char *id)
{
    return registry(buf, r, "worker", id);
}

const char *
jm_key_schedules(jm_keybuf buf, const jm_redis *r)
{
    snprintf(buf, JM_KEY_MAX, "%s:{schedules}:", jm_redis_prefix(r));
    return buf;
}

const char *
jm_key_version(jm_keybuf buf, const jm_redis *r)
{
    return global(buf, r, "version", NULL);
}

const char *
jm_key_done(jm_keybuf buf, const jm_redis *r)
{
    return global(buf, r, "done", NULL);
}

const char *
jm_key_job_pattern(jm_keybuf buf, const jm_redis *r)
{
    size_t o = 0;
    for (const char *p = jm_redis_prefix(r); *p != '\0' && o + 2 < JM_KEY_MAX - 16; p++) {
        if (strchr("*?[]\\", *p) != NULL)
            buf[o++] = '\\';
        buf[o++] = *p;
    }
    snprintf(buf + o, JM_KEY_MAX - o, ":{*}:job:*");
    return buf;
}

const char *
jm_key_parse_job(jm_keybuf slot, const jm_redis *r, const char *key)
{
    const char *prefix = jm_redis_prefix(r);
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl) != 0 || strncmp(key + pl, ":{", 2) != 0)
        return NULL;
    const char *tag = key + pl + 2;
    if (strlen(tag) < JM_TAG_LEN + 6 + JM_ID_LEN || strncmp(tag + JM_TAG_LEN, "}:job:", 6) != 0)
        return NULL;
    const char *id = tag + JM_TAG_LEN + 6;
    if (!jm_id_valid(id) || strncmp(id, tag, JM_TAG_LEN) != 0)
        return NULL;
    snprintf(slot, JM_KEY_MAX, "%.*s", (int)(pl + 2 + JM_TAG_LEN + 2), key);
    return id;
}
