/* config_internal.h - what config.c shares with config_yaml.c (not public).
 *
 * config.c owns the settings table and the setters; config_yaml.c walks a
 * YAML document and feeds the table through them. Names with a double
 * underscore (jm_cfg__) are internal to libshared.
 */
#ifndef JOBMILL_CONFIG_INTERNAL_H
#define JOBMILL_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include "jobmill/config.h"

#define JM_CFG_NAME_MAX 64  /* queue names: 1-64 of [A-Za-z0-9_.-] */
#define JM_CFG_TYPE_MAX 128 /* handler job types (JM_TYPE_MAX in job.h) */
#define JM_CFG_WEIGHT_MAX 1000
#define JM_CFG_HANDLER_TIMEOUT_MAX 604800L /* one week */

typedef enum jm_cfg_type {
    JM_CFG_STR,          /* char *; default def_str (NULL = unset allowed) */
    JM_CFG_INT,          /* int in [min, max] */
    JM_CFG_LONG,         /* long in [min, max] */
    JM_CFG_QUEUES,       /* queues[] + n_queues: comma list, or a YAML sequence */
    JM_CFG_HANDLERS,     /* handlers[] + n_handlers: YAML only */
    JM_CFG_SCHEDULES,    /* char *, a JSON array of schedules: YAML only (janitor.schedules) */
    JM_CFG_QUEUE_LIMITS, /* char *, a JSON object queue -> limits: YAML only */
} jm_cfg_type;

/* One setting. off is offsetof(jm_config, field); twin, when not 0, is a
 * second string field that the env var and flag also set (metrics_listen
 * serves worker and janitor; offset 0 is redis_url, never a twin). check, for
 * strings, returns NULL when the value is acceptable or a static problem. */
typedef struct jm_cfg_field {
    const char *key;  /* YAML "section.key" */
    const char *env;  /* environment variable, or NULL (YAML only) */
    const char *flag; /* flag without "--", or NULL (YAML only) */
    const char *arg;  /* the value's name in --help */
    jm_cfg_type type;
    size_t off;
    size_t twin;
    const char *def_str;
    long def_num;
    long min, max;
    const char *(*check)(const char *value);
    unsigned services; /* JM_CFG_SVC_* bits: whose --help lists it */
    const char *help;
} jm_cfg_field;

/* jm_cfg__find returns the table entry for the YAML key section.name (as in
 * "worker" + "lease_ms"), or NULL. */
const jm_cfg_field *jm_cfg__find(const char *section, const char *name);

/* jm_cfg__has_section tells whether any setting lives under section (len
 * bytes, not NUL-terminated). */
bool jm_cfg__has_section(const char *section, size_t len);

/* jm_cfg__set parses value (a string, comma list or integer, per f->type)
 * and stores it in cfg, replacing (and freeing) the old value; with_twin also
 * sets f->twin. src prefixes every message: "JOBMILL_LEASE_MS", "--lease-ms"
 * or "jobmill.yaml:7: worker.lease_ms". An empty string unsets a string whose
 * default is unset. value is borrowed. JM_OK, JM_ERR_INVALID or
 * JM_ERR_NOMEM; on error cfg is unchanged. */
int jm_cfg__set(jm_config *cfg, const jm_cfg_field *f, const char *value, bool with_twin,
                const char *src, jm_error *err);

/* jm_cfg__parse_int parses a whole decimal integer (optional '-', digits,
 * nothing else) within [min, max] into *out. JM_OK or JM_ERR_INVALID. */
int jm_cfg__parse_int(const char *s, long min, long max, long *out);

/* jm_cfg__add_queue validates name (1-64 of [A-Za-z0-9_.-], no duplicate in
 * q[0..*n)) and weight, and appends a copy. JM_OK, JM_ERR_INVALID (message
 * prefixed by src) or JM_ERR_NOMEM. */
int jm_cfg__add_queue(jm_cfg_queue *q, int *n, const char *name, int weight, const char *src,
                      jm_error *err);

/* jm_cfg__replace_queues frees cfg's queues and takes ownership of q[0..n). */
void jm_cfg__replace_queues(jm_config *cfg, jm_cfg_queue *q, int n);

/* jm_cfg__replace_handlers frees cfg's handlers and takes ownership of
 * h[0..n). */
void jm_cfg__replace_handlers(jm_config *cfg, jm_cfg_handler *h, int n);

/* jm_cfg__printable copies at most cap-1 bytes of s into dst for an error
 * message, control bytes replaced by '?', so a message stays one line. */
void jm_cfg__printable(char *dst, size_t cap, const char *s);

/* jm_cfg__free_queues and jm_cfg__free_handler release what the entries own
 * (not the array itself). */
void jm_cfg__free_queues(jm_cfg_queue *q, int n);
void jm_cfg__free_handler(jm_cfg_handler *h);

#endif
