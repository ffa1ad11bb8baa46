/* config_yaml.c - one YAML document onto a jm_config (jm_config_load_yaml).
 *
 * Two passes over the text with libyaml 0.2.5. The first reads events only
 * (libyaml's parser is a state machine on heap stacks: no recursion, and
 * linear time): it reports syntax errors with their line, and refuses
 * nesting deeper than YAML_DEPTH_MAX (0.2.5 has no yaml_set_max_nest_level),
 * aliases (so no alias bomb can expand), anchors (useless without aliases,
 * and libyaml's loader compares each new anchor with every earlier one:
 * 80,000 anchors took 13 s) and a second document. The second loads the
 * document tree and walks it against the settings table of config.c: every
 * key must be known, and every message reads "FILE:LINE: KEY: problem".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "config_internal.h"
#include "jobmill/qlimits.h"
#include "jobmill/schedule.h"

#define YAML_DEPTH_MAX 8
#define PATH_MAX_LEN 192

typedef struct ydoc {
    jm_config *cfg;       /* borrowed: what the document is applied to */
    yaml_document_t *doc; /* borrowed */
    const char *name;     /* file name for messages */
    jm_error *err;
} ydoc;

static size_t
line_of(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

/* Fills y->err with "NAME:LINE: PATH: problem" and returns JM_ERR_INVALID. */
static int yfail(const ydoc *y, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
yfail(const ydoc *y, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    char problem[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    return jm_error_set(y->err, JM_ERR_INVALID, path, "%s:%zu: %s: %s", y->name, line_of(n), path,
                        problem);
}

static yaml_node_t *
node(const ydoc *y, int index)
{
    return yaml_document_get_node(y->doc, index);
}

/* A scalar usable as a C string (no NUL inside). */
static bool
is_string(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE &&
           memchr(n->data.scalar.value, '\0', n->data.scalar.length) == NULL;
}

static const char *
text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty value, ~ or null written plain. */
static bool
is_null(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = text(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* Checks the key of pair p in mapping map: a string, not seen before in map.
 * Writes "parent.key" (or "key" at the top) into path for messages and
 * returns the key in *key (borrowed from the document). */
static int
key_of(const ydoc *y, const yaml_node_t *map, const yaml_node_pair_t *p, const char *parent,
       char path[PATH_MAX_LEN], const char **key)
{
    const yaml_node_t *k = node(y, p->key);
    if (!is_string(k))
        return yfail(y, k != NULL ? k : map, parent[0] != '\0' ? parent : "(top level)",
                     "keys must be strings");
    char shown[96];
    jm_cfg__printable(shown, sizeof(shown), text(k));
    snprintf(path, PATH_MAX_LEN, "%s%s%s", parent, parent[0] != '\0' ? "." : "", shown);
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        if (strcmp(text(node(y, q->key)), text(k)) == 0)
            return yfail(y, k, path, "duplicate key");
    }
    *key = text(k);
    return JM_OK;
}

static int
int_value(const ydoc *y, const yaml_node_t *n, const char *path, long min, long max, long *out)
{
    if (!is_string(n) || jm_cfg__parse_int(text(n), min, max, out) != JM_OK)
        return yfail(y, n, path, "must be an integer between %ld and %ld", min, max);
    return JM_OK;
}

/* "NAME:LINE: PATH", the prefix jm_cfg__set puts before its problem. */
static void
source(const ydoc *y, const yaml_node_t *n, const char *path, char *src, size_t cap)
{
    snprintf(src, cap, "%s:%zu: %s", y->name, line_of(n), path);
}

/*----------------------------------------------------------------------------
 * worker.queues and worker.handlers
 *--------------------------------------------------------------------------*/

/* One item of a queue sequence: "name" or {name: q, weight: 3}. */
static int
queue_item(const ydoc *y, const yaml_node_t *it, const char *path, jm_cfg_queue *q, int *n)
{
    const char *name = NULL;
    long weight = 1;
    char sub[PATH_MAX_LEN], src[PATH_MAX_LEN + 64];
    if (is_string(it)) {
        name = text(it);
    } else if (it->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = it->data.mapping.pairs.start; p < it->data.mapping.pairs.top;
             p++) {
            const char *key;
            const yaml_node_t *v = node(y, p->value);
            int rc = key_of(y, it, p, path, sub, &key);
            if (rc != JM_OK)
                return rc;
            if (strcmp(key, "name") == 0) {
                if (!is_string(v))
                    return yfail(y, v, sub, "must be a string");
                name = text(v);
            } else if (strcmp(key, "weight") == 0) {
                rc = int_value(y, v, sub, 1, JM_CFG_WEIGHT_MAX, &weight);
                if (rc != JM_OK)
                    return rc;
            } else {
                return yfail(y, node(y, p->key), sub, "unknown key");
            }
        }
        if (name == NULL)
            return yfail(y, it, path, "needs a name");
    } else {
        return yfail(y, it, path, "must be a queue name or {name: q, weight: n}");
    }
    source(y, it, path, src, sizeof(src));
    return jm_cfg__add_queue(q, n, name, (int)weight, src, y->err);
}

static int
apply_queues(const ydoc *y, const jm_cfg_field *f, const yaml_node_t *v, const char *path)
{
    char src[PATH_MAX_LEN + 64], sub[PATH_MAX_LEN + 16];
    if (v->type == YAML_SCALAR_NODE) {
        if (!is_string(v))
            return yfail(y, v, path, "must be a string");
        source(y, v, path, src, sizeof(src));
        return jm_cfg__set(y->cfg, f, is_null(v) ? "" : text(v), false, src, y->err);
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return yfail(y, v, path, "must be a comma list or a sequence of queues");
    jm_cfg_queue q[JM_CFG_MAX_QUEUES];
    int n = 0, rc = JM_OK;
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        snprintf(sub, sizeof(sub), "%s[%d]", path, (int)(i - v->data.sequence.items.start));
        rc = queue_item(y, node(y, *i), sub, q, &n);
        if (rc != JM_OK) {
            jm_cfg__free_queues(q, n);
            return rc;
        }
    }
    if (n == 0)
        return yfail(y, v, path, "must name at least one queue");
    jm_cfg__replace_queues(y->cfg, q, n);
    return JM_OK;
}

static int
handler_exec(const ydoc *y, const yaml_node_t *v, const char *path, jm_cfg_handler *h)
{
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
        return yfail(y, v, path, "must be a non-empty sequence of strings");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    h->argv = calloc(n + 1, sizeof(char *));
    if (h->argv == NULL)
        return jm_error_set(y->err, JM_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *a = node(y, v->data.sequence.items.start[i]);
        if (!is_string(a) || (i == 0 && text(a)[0] == '\0'))
            return yfail(y, a != NULL ? a : v, path, "must be a non-empty sequence of strings");
        h->argv[i] = strdup(text(a));
        if (h->argv[i] == NULL)
            return jm_error_set(y->err, JM_ERR_NOMEM, NULL, "out of memory");
    }
    return JM_OK;
}

static int
handler_codes(const ydoc *y, const yaml_node_t *v, const char *path, jm_cfg_handler *h)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return yfail(y, v, path, "must be a sequence of exit codes (1 to 255)");
    char sub[PATH_MAX_LEN + 16];
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        long code;
        snprintf(sub, sizeof(sub), "%s[%d]", path, (int)(i - v->data.sequence.items.start));
        if (h->n_permanent_exit_codes >= JM_CFG_MAX_EXIT_CODES)
            return yfail(y, v, path, "more than %d exit codes", JM_CFG_MAX_EXIT_CODES);
        int rc = int_value(y, node(y, *i), sub, 1, 255, &code);
        if (rc != JM_OK)
            return rc;
        h->permanent_exit_codes[h->n_permanent_exit_codes++] = (int)code;
    }
    return JM_OK;
}

/* Fills h (zeroed, type already set) from v = {exec, timeout_s,
 * permanent_exit_codes}; key is the type's node (for the line of "exec is
 * required"). On error h may hold parts; the caller frees it. */
static int
handler(const ydoc *y, const yaml_node_t *key_node, const yaml_node_t *v, const char *path,
        jm_cfg_handler *h)
{
    char sub[PATH_MAX_LEN + 8];
    if (v->type != YAML_MAPPING_NODE)
        return yfail(y, v, path, "must be a mapping with exec, timeout_s, permanent_exit_codes");
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const char *key;
        const yaml_node_t *val = node(y, p->value);
        long timeout = 0;
        int rc = key_of(y, v, p, path, sub, &key);
        if (rc != JM_OK)
            return rc;
        if (strcmp(key, "exec") == 0) {
            rc = handler_exec(y, val, sub, h);
        } else if (strcmp(key, "timeout_s") == 0) {
            rc = int_value(y, val, sub, 0, JM_CFG_HANDLER_TIMEOUT_MAX, &timeout);
            h->timeout_s = rc == JM_OK ? (int)timeout : 0;
        } else if (strcmp(key, "permanent_exit_codes") == 0) {
            rc = handler_codes(y, val, sub, h);
        } else {
            rc = yfail(y, node(y, p->key), sub, "unknown key");
        }
        if (rc != JM_OK)
            return rc;
    }
    if (h->argv == NULL) {
        snprintf(sub, sizeof(sub), "%s.exec", path);
        return yfail(y, key_node, sub, "is required");
    }
    return JM_OK;
}

static int
apply_handlers(const ydoc *y, const yaml_node_t *v, const char *path)
{
    if (is_null(v)) {
        jm_cfg__replace_handlers(y->cfg, NULL, 0);
        return JM_OK;
    }
    if (v->type != YAML_MAPPING_NODE)
        return yfail(y, v, path, "must be a mapping of job type to handler");
    jm_cfg_handler h[JM_CFG_MAX_HANDLERS];
    memset(h, 0, sizeof(h));
    int n = 0, rc = JM_OK;
    char sub[PATH_MAX_LEN];
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const char *type;
        if (n >= JM_CFG_MAX_HANDLERS) {
            rc = yfail(y, v, path, "more than %d handlers", JM_CFG_MAX_HANDLERS);
            break;
        }
        rc = key_of(y, v, p, path, sub, &type);
        if (rc == JM_OK && strlen(type) > JM_CFG_TYPE_MAX)
            rc = yfail(y, node(y, p->key), sub, "job type longer than %d bytes", JM_CFG_TYPE_MAX);
        else if (rc == JM_OK && type[0] == '\0')
            rc = yfail(y, node(y, p->key), path, "job type must not be empty");
        if (rc != JM_OK)
            break;
        h[n].type = strdup(type);
        rc = h[n].type != NULL ? handler(y, node(y, p->key), node(y, p->value), sub, &h[n])
                               : jm_error_set(y->err, JM_ERR_NOMEM, NULL, "out of memory");
        n++;
        if (rc != JM_OK)
            break;
    }
    if (rc != JM_OK) {
        for (int i = 0; i < n; i++)
            jm_cfg__free_handler(&h[i]);
        return rc;
    }
    jm_cfg__replace_handlers(y->cfg, h, n);
    return JM_OK;
}

/*----------------------------------------------------------------------------
 * janitor.schedules: each item read as JSON and validated as POST
 * /v1/schedules validates its body
 *--------------------------------------------------------------------------*/

/* A plain scalar as JSON: null, true/false, an integer, a number, else a
 * string; quoted scalars are strings. */
static json_t *
scalar_json(const yaml_node_t *n)
{
    const char *s = text(n);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_string(s);
    if (is_null(n))
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && errno == 0)
        return json_integer(i);
    double d = strtod(s, &end);
    if (end != s && *end == '\0' && strpbrk(s, ".eE") != NULL && strpbrk(s, "iInN") == NULL)
        return json_real(d);
    return json_string(s);
}

/* A node as JSON (new), or NULL for a scalar holding a NUL byte. The depth
 * is bounded by the event pass (YAML_DEPTH_MAX). */
static json_t *
yaml_json(const ydoc *y, const yaml_node_t *n)
{
    if (n == NULL)
        return NULL;
    if (n->type == YAML_SCALAR_NODE)
        return is_string(n) ? scalar_json(n) : NULL;
    json_t *out = n->type == YAML_SEQUENCE_NODE ? json_array() : json_object();
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++) {
            json_t *v = yaml_json(y, node(y, *i));
            if (v == NULL || json_array_append_new(out, v) != 0)
                return json_decref(out), NULL;
        }
    } else if (n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *k = node(y, p->key);
            json_t *v = is_string(k) ? yaml_json(y, node(y, p->value)) : NULL;
            if (v == NULL || json_object_set_new(out, text(k), v) != 0)
                return json_decref(out), NULL;
        }
    }
    return out;
}

/* The node of key (up to a '.') in mapping item, for the line of a message;
 * item itself when absent. */
static const yaml_node_t *
field_node(const ydoc *y, const yaml_node_t *item, const char *field)
{
    size_t len = strcspn(field, ".");
    if (item->type != YAML_MAPPING_NODE || len == 0)
        return item;
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = node(y, p->key);
        if (is_string(k) && strlen(text(k)) == len && strncmp(text(k), field, len) == 0)
            return node(y, p->value);
    }
    return item;
}

static int
apply_schedules(const ydoc *y, const yaml_node_t *v, const char *path)
{
    if (is_null(v)) {
        free(y->cfg->janitor_schedules);
        y->cfg->janitor_schedules = NULL;
        return JM_OK;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return yfail(y, v, path, "must be a sequence of schedules (name, cron, tz, job, ...)");
    json_t *arr = json_array();
    char sub[PATH_MAX_LEN + 16], fpath[PATH_MAX_LEN + 128];
    int rc = JM_OK;
    for (yaml_node_item_t *i = v->data.sequence.items.start;
         rc == JM_OK && i < v->data.sequence.items.top; i++) {
        const yaml_node_t *it = node(y, *i);
        snprintf(sub, sizeof(sub), "%s[%d]", path, (int)(i - v->data.sequence.items.start));
        json_t *o = yaml_json(y, it);
        jm_schedule s;
        jm_error e;
        memset(&s, 0, sizeof(s));
        jm_error_clear(&e);
        if (o == NULL) {
            rc = yfail(y, it, sub, "must not hold a NUL byte");
        } else if (jm_schedule_from_json(o, &s, &e) != JM_OK) {
            snprintf(fpath, sizeof(fpath), "%s%s%s", sub, e.field[0] != '\0' ? "." : "", e.field);
            rc = e.code == JM_ERR_INVALID ? yfail(y, field_node(y, it, e.field), fpath, "%s", e.msg)
                                          : jm_error_set(y->err, e.code, NULL, "%s", e.msg);
        } else {
            for (size_t k = 0; rc == JM_OK && k < json_array_size(arr); k++) {
                const char *other =
                    json_string_value(json_object_get(json_array_get(arr, k), "name"));
                if (other != NULL && strcmp(other, s.name) == 0)
                    rc = yfail(y, field_node(y, it, "name"), sub, "a second schedule named %s",
                               s.name);
            }
        }
        jm_schedule_clear(&s);
        if (rc == JM_OK)
            json_array_append(arr, o);
        json_decref(o);
    }
    char *textv = rc == JM_OK ? json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(arr);
    if (rc == JM_OK && textv == NULL)
        rc = jm_error_set(y->err, JM_ERR_NOMEM, NULL, "out of memory");
    if (rc == JM_OK) {
        free(y->cfg->janitor_schedules);
        y->cfg->janitor_schedules = textv;
    }
    return rc;
}

/* janitor.queue_limits: queue name -> a PUT /v1/queues/{queue}/limits body,
 * validated as the api validates it. */
static int
apply_queue_limits(const ydoc *y, const yaml_node_t *v, const char *path)
{
    if (is_null(v)) {
        free(y->cfg->janitor_queue_limits);
        y->cfg->janitor_queue_limits = NULL;
        return JM_OK;
    }
    if (v->type != YAML_MAPPING_NODE)
        return yfail(y, v, path, "must be a mapping of queue name to limits");
    json_t *obj = json_object();
    char sub[PATH_MAX_LEN], fpath[PATH_MAX_LEN + 128];
    int rc = JM_OK;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         rc == JM_OK && p < v->data.mapping.pairs.top; p++) {
        const char *queue;
        rc = key_of(y, v, p, path, sub, &queue);
        if (rc != JM_OK)
            break;
        const yaml_node_t *val = node(y, p->value);
        if (!jm_queue_name_valid(queue)) {
            rc = yfail(y, node(y, p->key), sub, "a queue name is 1-64 of [A-Za-z0-9_.-]");
            break;
        }
        json_t *o = yaml_json(y, val);
        jm_qlimits_change c;
        jm_error e;
        jm_error_clear(&e);
        if (o == NULL) {
            rc = yfail(y, val, sub, "must not hold a NUL byte");
        } else if (jm_qlimits_from_json(o, &c, &e) != JM_OK) {
            snprintf(fpath, sizeof(fpath), "%s%s%s", sub, e.field[0] != '\0' ? "." : "", e.field);
            rc = yfail(y, field_node(y, val, e.field), fpath, "%s", e.msg);
        } else {
            json_object_set(obj, queue, o);
        }
        json_decref(o);
    }
    char *textv = rc == JM_OK ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(obj);
    if (rc == JM_OK && textv == NULL)
        rc = jm_error_set(y->err, JM_ERR_NOMEM, NULL, "out of memory");
    if (rc == JM_OK) {
        free(y->cfg->janitor_queue_limits);
        y->cfg->janitor_queue_limits = textv;
    }
    return rc;
}

/*----------------------------------------------------------------------------
 * The document
 *--------------------------------------------------------------------------*/

static int
apply_setting(const ydoc *y, const jm_cfg_field *f, const yaml_node_t *v, const char *path)
{
    char src[PATH_MAX_LEN + 64];
    switch (f->type) {
    case JM_CFG_QUEUES: return apply_queues(y, f, v, path);
    case JM_CFG_HANDLERS: return apply_handlers(y, v, path);
    case JM_CFG_SCHEDULES: return apply_schedules(y, v, path);
    case JM_CFG_QUEUE_LIMITS: return apply_queue_limits(y, v, path);
    case JM_CFG_STR:
        if (!is_string(v))
            return yfail(y, v, path, "must be a string");
        break;
    case JM_CFG_INT:
    case JM_CFG_LONG:
        if (!is_string(v))
            return yfail(y, v, path, "must be an integer between %ld and %ld", f->min, f->max);
        break;
    }
    source(y, v, path, src, sizeof(src));
    return jm_cfg__set(y->cfg, f, is_null(v) ? "" : text(v), false, src, y->err);
}

static int
apply_section(const ydoc *y, const char *section, const yaml_node_t *map, const char *path)
{
    if (is_null(map))
        return JM_OK;
    if (map->type != YAML_MAPPING_NODE)
        return yfail(y, map, path, "must be a mapping");
    char sub[PATH_MAX_LEN];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *key;
        int rc = key_of(y, map, p, path, sub, &key);
        if (rc != JM_OK)
            return rc;
        const jm_cfg_field *f = jm_cfg__find(section, key);
        rc = f != NULL ? apply_setting(y, f, node(y, p->value), sub)
                       : yfail(y, node(y, p->key), sub, "unknown key");
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

static int
apply_root(const ydoc *y, const yaml_node_t *root)
{
    if (root == NULL || is_null(root))
        return JM_OK; /* an empty file */
    if (root->type != YAML_MAPPING_NODE)
        return yfail(
            y, root, "(top level)",
            "must be a mapping of sections (redis, api, worker, janitor, jobs, logs, log)");
    char path[PATH_MAX_LEN];
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const char *section;
        int rc = key_of(y, root, p, "", path, &section);
        if (rc != JM_OK)
            return rc;
        rc = jm_cfg__has_section(section, strlen(section))
                 ? apply_section(y, section, node(y, p->value), path)
                 : yfail(y, node(y, p->key), path, "unknown key");
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

/* The message for a failed parse: libyaml's problem at its line. */
static int
parse_error(const yaml_parser_t *p, const char *name, const char *buf, size_t len, jm_error *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    size_t line = p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) { /* bad encoding: only a byte offset */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += buf[i] == '\n';
    }
    return jm_error_set(err, JM_ERR_INVALID, NULL, "%s:%zu: invalid YAML: %s%s%s%s", name, line,
                        p->problem != NULL ? p->problem : "syntax error",
                        p->context != NULL ? " (" : "", p->context != NULL ? p->context : "",
                        p->context != NULL ? ")" : "");
}

/* The event pass: syntax, depth, aliases, one document. */
static int
scan(const char *name, const char *buf, size_t len, jm_error *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int depth = 0, docs = 0, rc = JM_OK;
    size_t anchor_line = 0; /* of the first anchor, reported if no alias comes */
    bool done = false;
    while (rc == JM_OK && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_error(&p, name, buf, len, err);
            break;
        }
        size_t line = ev.start_mark.line + 1;
        const yaml_char_t *anchor =
            ev.type == YAML_SCALAR_EVENT           ? ev.data.scalar.anchor
            : ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
            : ev.type == YAML_MAPPING_START_EVENT  ? ev.data.mapping_start.anchor
                                                   : NULL;
        if (anchor != NULL && anchor_line == 0)
            anchor_line = line;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = jm_error_set(err, JM_ERR_INVALID, NULL,
                                  "%s:%zu: only one YAML document is allowed", name, line);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > YAML_DEPTH_MAX)
                rc = jm_error_set(err, JM_ERR_INVALID, NULL, "%s:%zu: nested deeper than %d levels",
                                  name, line, YAML_DEPTH_MAX);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        case YAML_ALIAS_EVENT:
            rc = jm_error_set(err, JM_ERR_INVALID, NULL, "%s:%zu: aliases are not supported", name,
                              line);
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc == JM_OK && anchor_line > 0)
        rc = jm_error_set(err, JM_ERR_INVALID, NULL, "%s:%zu: anchors are not supported", name,
                          anchor_line);
    return rc;
}

int
jm_config_load_yaml(jm_config *cfg, const char *name, const char *buf, size_t len, jm_error *err)
{
    if (name == NULL)
        name = "(yaml)";
    int rc = scan(name, buf, len, err);
    if (rc != JM_OK)
        return rc;
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = parse_error(&p, name, buf, len, err);
        yaml_parser_delete(&p);
        return rc;
    }
    ydoc y = {.cfg = cfg, .doc = &doc, .name = name, .err = err};
    rc = apply_root(&y, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}
