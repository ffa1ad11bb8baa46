/* metrics.c - Prometheus counters, gauges and histograms (see metrics.h).
 *
 * Ownership: the registry owns every family and every series; both live until
 * jm_metrics_free. Families sit in an array in registration order; each family
 * keeps its series in a creation-ordered list plus a chained hash table keyed
 * by the label values. One registry mutex guards registration, series lookup
 * and rendering (the structure, never the values). Values are C11 atomics:
 * a double is stored bit-cast in an _Atomic uint64_t and updated with a
 * compare-exchange loop, so updates take no lock and allocate nothing.
 *
 * A histogram series keeps one non-cumulative count per bucket plus one for
 * the implicit +Inf bucket, and its sum; the rendered _count is the sum of the
 * bucket counts read for that render, so _count always equals the +Inf bucket.
 *
 * Registration also rejects names that `promtool check metrics` would flag
 * for the chosen type (see family_name_ok), so a registry that registered
 * cleanly always renders a lint-clean exposition.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/err.h"
#include "jobmill/metrics.h"
#include "jobmill/text.h"

const double jm_metrics_default_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1,      2.5,   5,      10,    30,   60,    120,  300, 600,  1800,
};
const size_t jm_metrics_n_default_buckets =
    sizeof(jm_metrics_default_buckets) / sizeof(jm_metrics_default_buckets[0]);

#define JM_METRICS_MAX_LABELS 16
#define JM_METRICS_MAX_BUCKETS 256
#define JM_METRICS_HASH_INIT 16

struct jm_metric_series {
    _Atomic uint64_t value;    /* counter/gauge value, histogram sum: double bits */
    jm_metric_family *fam;     /* owner */
    jm_metric_series *next;    /* creation order, for rendering */
    jm_metric_series *chain;   /* hash bucket chain */
    uint64_t hash;             /* of the label values */
    char **label_values;       /* fam->n_labels copies */
    _Atomic uint64_t counts[]; /* histogram: n_buckets + 1 (+Inf last) */
};

struct jm_metric_family {
    jm_metrics *reg; /* owner */
    char *name;
    char *help;
    jm_metric_type type;
    size_t n_labels;
    char **label_names;
    size_t n_buckets; /* finite upper bounds; +Inf implied */
    double *buckets;
    jm_metric_series *first; /* creation order */
    jm_metric_series *last;
    jm_metric_series **table; /* hash table, n_slots (power of two) */
    size_t n_slots;
    size_t n_series;
};

struct jm_metrics {
    pthread_mutex_t lock;        /* structure only; values are atomics */
    jm_metric_family **families; /* registration order */
    size_t n_families;
    size_t cap_families;
};

/* ---------------------------------------------------------------------------
 * Atomic doubles
 * ------------------------------------------------------------------------- */

static uint64_t
dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double
bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static double
atomic_dbl_load(const _Atomic uint64_t *p)
{
    return bits_dbl(atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed));
}

static void
atomic_dbl_add(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
        /* old was refreshed by the failed exchange; retry */
    }
}

/* ---------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------- */

static int
is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int
metric_name_ok(const char *s)
{
    if (s == NULL || (!is_alpha_(*s) && *s != ':'))
        return 0;
    for (s++; *s != '\0'; s++)
        if (!is_alpha_(*s) && !is_digit(*s) && *s != ':')
            return 0;
    return 1;
}

/* camel_case tells whether s has a lower-case letter followed by an upper-case
 * one, which promtool flags in metric and label names. */
static int
camel_case(const char *s)
{
    for (; s[0] != '\0' && s[1] != '\0'; s++)
        if (s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'A' && s[1] <= 'Z')
            return 1;
    return 0;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, not reserved ("__" prefix), not camelCase. */
static int
label_name_ok(const char *s)
{
    if (s == NULL || !is_alpha_(*s) || strncmp(s, "__", 2) == 0 || camel_case(s))
        return 0;
    for (s++; *s != '\0'; s++)
        if (!is_alpha_(*s) && !is_digit(*s))
            return 0;
    return 1;
}

static int
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const char *type_name(jm_metric_type t);

/* family_name_ok checks the name syntax, then the rules `promtool check
 * metrics` lints, so that a registry that registered cleanly renders a clean
 * exposition: counters end in _total and nothing else does; _count, _sum and
 * _bucket belong to histograms' generated series; no ':' (reserved for
 * recording rules); snake_case; the type is not part of the name. Unit
 * spelling (seconds, not ms) is left to promtool in the tests. */
static int
family_name_ok(const char *name, jm_metric_type type)
{
    if (!metric_name_ok(name) || strchr(name, ':') != NULL || camel_case(name))
        return 0;
    if ((type == JM_METRIC_COUNTER) != has_suffix(name, "_total"))
        return 0;
    if (has_suffix(name, "_count") || has_suffix(name, "_sum") || has_suffix(name, "_bucket"))
        return 0;
    char typed[16];
    snprintf(typed, sizeof(typed), "_%s", type_name(type));
    size_t k = strlen(typed);
    for (const char *hit = strstr(name, typed); hit != NULL; hit = strstr(hit + 1, typed))
        if (hit[k] == '\0' || hit[k] == '_')
            return 0;
    return 1;
}

/* ---------------------------------------------------------------------------
 * Registry and families
 * ------------------------------------------------------------------------- */

jm_metrics *
jm_metrics_new(void)
{
    jm_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void
free_strv(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
series_free(jm_metric_series *s, size_t n_labels)
{
    free_strv(s->label_values, n_labels);
    free(s);
}

static void
family_free(jm_metric_family *f)
{
    if (f == NULL)
        return;
    jm_metric_series *s = f->first;
    while (s != NULL) {
        jm_metric_series *next = s->next;
        series_free(s, f->n_labels);
        s = next;
    }
    free(f->table);
    free_strv(f->label_names, f->n_labels);
    free(f->buckets);
    free(f->help);
    free(f->name);
    free(f);
}

void
jm_metrics_free(jm_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_families; i++)
        family_free(m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static char *
dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static size_t
count_labels(const char *const *names)
{
    size_t n = 0;
    if (names != NULL)
        while (names[n] != NULL)
            n++;
    return n;
}

/* labels_match tells whether an existing family was registered with the same
 * label names as a new request for it. */
static int
labels_match(const jm_metric_family *f, const char *const *names, size_t n)
{
    if (f->n_labels != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->label_names[i], names[i]) != 0)
            return 0;
    return 1;
}

static int
labels_valid(const char *const *names, size_t n, jm_metric_type type)
{
    if (n > JM_METRICS_MAX_LABELS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!label_name_ok(names[i]))
            return 0;
        if (type == JM_METRIC_HISTOGRAM && strcmp(names[i], "le") == 0)
            return 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return 0;
    }
    return 1;
}

/* buckets_valid accepts finite, strictly ascending bounds; a trailing +Inf is
 * allowed (and dropped by the caller) since it is implied. */
static int
buckets_valid(const double *b, size_t n)
{
    if (n > JM_METRICS_MAX_BUCKETS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(b[i]) || (isinf(b[i]) && !(i == n - 1 && b[i] > 0)))
            return 0;
        if (i > 0 && !(b[i] > b[i - 1]))
            return 0;
    }
    return 1;
}

static jm_metric_series *series_get_locked(jm_metric_family *f, const char *const *values);

jm_metric_family *
jm_metrics_family(jm_metrics *m, const char *name, const char *help, jm_metric_type type,
                  const char *const *label_names, const double *buckets, size_t n_buckets)
{
    if (m == NULL || help == NULL || help[0] == '\0' || !family_name_ok(name, type))
        return NULL;
    if (type != JM_METRIC_COUNTER && type != JM_METRIC_GAUGE && type != JM_METRIC_HISTOGRAM)
        return NULL;
    size_t n_labels = count_labels(label_names);
    if (!labels_valid(label_names, n_labels, type))
        return NULL;
    if (type == JM_METRIC_HISTOGRAM) {
        if (buckets == NULL) {
            buckets = jm_metrics_default_buckets;
            n_buckets = jm_metrics_n_default_buckets;
        }
        if (!buckets_valid(buckets, n_buckets))
            return NULL;
        if (n_buckets > 0 && isinf(buckets[n_buckets - 1]))
            n_buckets--;
    } else {
        buckets = NULL;
        n_buckets = 0;
    }

    jm_metric_family *f = NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_families; i++) {
        jm_metric_family *e = m->families[i];
        if (strcmp(e->name, name) == 0) {
            f = (e->type == type && labels_match(e, label_names, n_labels)) ? e : NULL;
            pthread_mutex_unlock(&m->lock);
            return f;
        }
    }
    if (m->n_families == m->cap_families) {
        size_t cap = m->cap_families ? m->cap_families * 2 : 8;
        jm_metric_family **nf = realloc(m->families, cap * sizeof(*nf));
        if (nf == NULL)
            goto failed;
        m->families = nf;
        m->cap_families = cap;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto failed;
    f->reg = m;
    f->type = type;
    f->name = dup_str(name);
    f->help = dup_str(help);
    f->n_slots = JM_METRICS_HASH_INIT;
    f->table = calloc(f->n_slots, sizeof(*f->table));
    if (f->name == NULL || f->help == NULL || f->table == NULL)
        goto failed;
    if (n_labels > 0) {
        f->label_names = calloc(n_labels, sizeof(char *));
        if (f->label_names == NULL)
            goto failed;
        f->n_labels = n_labels;
        for (size_t i = 0; i < n_labels; i++)
            if ((f->label_names[i] = dup_str(label_names[i])) == NULL)
                goto failed;
    }
    if (n_buckets > 0) {
        f->buckets = malloc(n_buckets * sizeof(double));
        if (f->buckets == NULL)
            goto failed;
        memcpy(f->buckets, buckets, n_buckets * sizeof(double));
        f->n_buckets = n_buckets;
    }
    /* An unlabelled family has exactly one series: expose it from the start. */
    if (n_labels == 0 && series_get_locked(f, NULL) == NULL)
        goto failed;
    m->families[m->n_families++] = f;
    pthread_mutex_unlock(&m->lock);
    return f;

failed:
    pthread_mutex_unlock(&m->lock);
    family_free(f);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Series lookup
 * ------------------------------------------------------------------------- */

/* FNV-1a over the label values, each terminated by its NUL. */
static uint64_t
hash_values(const char *const *values, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)values[i];
        do {
            h ^= *p;
            h *= 1099511628211ULL;
        } while (*p++ != '\0');
    }
    return h;
}

static int
values_equal(char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

/* grow_table doubles the hash table; on no memory it keeps the old one
 * (lookups stay correct, only longer). */
static void
grow_table(jm_metric_family *f)
{
    size_t n = f->n_slots * 2;
    jm_metric_series **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return;
    for (jm_metric_series *s = f->first; s != NULL; s = s->next) {
        size_t i = (size_t)(s->hash & (n - 1));
        s->chain = t[i];
        t[i] = s;
    }
    free(f->table);
    f->table = t;
    f->n_slots = n;
}

static jm_metric_series *
series_get_locked(jm_metric_family *f, const char *const *values)
{
    uint64_t h = hash_values(values, f->n_labels);
    size_t slot = (size_t)(h & (f->n_slots - 1));
    for (jm_metric_series *s = f->table[slot]; s != NULL; s = s->chain)
        if (s->hash == h && values_equal(s->label_values, values, f->n_labels))
            return s;

    size_t n_counts = f->type == JM_METRIC_HISTOGRAM ? f->n_buckets + 1 : 0;
    jm_metric_series *s = calloc(1, sizeof(*s) + n_counts * sizeof(s->counts[0]));
    if (s == NULL)
        return NULL;
    if (f->n_labels > 0) {
        s->label_values = calloc(f->n_labels, sizeof(char *));
        if (s->label_values == NULL) {
            free(s);
            return NULL;
        }
        for (size_t i = 0; i < f->n_labels; i++) {
            if ((s->label_values[i] = dup_str(values[i])) == NULL) {
                series_free(s, f->n_labels);
                return NULL;
            }
        }
    }
    atomic_init(&s->value, dbl_bits(0.0));
    for (size_t i = 0; i < n_counts; i++)
        atomic_init(&s->counts[i], 0);
    s->fam = f;
    s->hash = h;
    s->chain = f->table[slot];
    f->table[slot] = s;
    if (f->last != NULL)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    if (++f->n_series > f->n_slots)
        grow_table(f);
    return s;
}

jm_metric_series *
jm_metrics_series(jm_metric_family *fam, const char *const *label_values)
{
    if (fam == NULL)
        return NULL;
    if (fam->n_labels > 0) {
        if (label_values == NULL)
            return NULL;
        for (size_t i = 0; i < fam->n_labels; i++)
            if (label_values[i] == NULL)
                return NULL;
    }
    pthread_mutex_lock(&fam->reg->lock);
    jm_metric_series *s = series_get_locked(fam, label_values);
    pthread_mutex_unlock(&fam->reg->lock);
    return s;
}

/* ---------------------------------------------------------------------------
 * Updates: lock-free, allocation-free. A NULL series (a failed lookup) is a
 * no-op so callers need not guard every update. Counters ignore negative and
 * NaN increments; jm_metric_set also works on a counter that mirrors a total
 * kept elsewhere. Calls that do not fit the series' type do nothing.
 * ------------------------------------------------------------------------- */

void
jm_metric_inc(jm_metric_series *s)
{
    jm_metric_add(s, 1.0);
}

void
jm_metric_add(jm_metric_series *s, double v)
{
    if (s == NULL || s->fam->type == JM_METRIC_HISTOGRAM)
        return;
    if (s->fam->type == JM_METRIC_COUNTER && !(v >= 0))
        return;
    atomic_dbl_add(&s->value, v);
}

void
jm_metric_set(jm_metric_series *s, double v)
{
    if (s == NULL || s->fam->type == JM_METRIC_HISTOGRAM)
        return;
    atomic_store_explicit(&s->value, dbl_bits(v), memory_order_relaxed);
}

void
jm_metric_observe(jm_metric_series *s, double v)
{
    if (s == NULL || s->fam->type != JM_METRIC_HISTOGRAM)
        return;
    const jm_metric_family *f = s->fam;
    /* First bucket whose bound is >= v; NaN and values above every bound
     * land in the +Inf slot (index n_buckets). */
    size_t lo = 0, hi = f->n_buckets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= f->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (isnan(v))
        lo = f->n_buckets;
    atomic_fetch_add_explicit(&s->counts[lo], 1, memory_order_relaxed);
    atomic_dbl_add(&s->value, v);
}

/* jm_metric_value returns a counter's or gauge's value; for a histogram, its
 * observation count. 0 for NULL. */
double
jm_metric_value(const jm_metric_series *s)
{
    if (s == NULL)
        return 0;
    if (s->fam->type != JM_METRIC_HISTOGRAM)
        return atomic_dbl_load(&s->value);
    uint64_t n = 0;
    for (size_t i = 0; i <= s->fam->n_buckets; i++)
        n += atomic_load_explicit((_Atomic uint64_t *)&s->counts[i], memory_order_relaxed);
    return (double)n;
}

/* ---------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------- */

/* sb_escaped appends s escaping backslash and newline, and double quote when
 * quote is set (label values; HELP text leaves quotes alone). */
static void
sb_escaped(jm_text *sb, const char *s, int quote)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && quote)
            rep = "\\\"";
        if (rep != NULL) {
            jm_text_add(sb, run, (size_t)(s - run));
            jm_text_puts(sb, rep);
            run = s + 1;
        }
    }
    jm_text_add(sb, run, (size_t)(s - run));
}

/* format_double writes v the way Prometheus parses it: NaN, +Inf, -Inf, or
 * the shortest %g form that reads back exactly (integers print without an
 * exponent up to 1e15, and 0.1 prints as 0.1). */
static void
format_double(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void
sb_double(jm_text *sb, double v)
{
    char tmp[40];
    format_double(tmp, sizeof(tmp), v);
    jm_text_puts(sb, tmp);
}

static void
sb_u64(jm_text *sb, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    jm_text_puts(sb, tmp);
}

/* sb_sample_name writes `name<suffix>{labels[,le="..."]} ` ready for a value. */
static void
sb_sample_name(jm_text *sb, const jm_metric_family *f, const jm_metric_series *s,
               const char *suffix, const char *le)
{
    jm_text_puts(sb, f->name);
    jm_text_puts(sb, suffix);
    if (f->n_labels > 0 || le != NULL) {
        jm_text_puts(sb, "{");
        for (size_t i = 0; i < f->n_labels; i++) {
            if (i > 0)
                jm_text_puts(sb, ",");
            jm_text_puts(sb, f->label_names[i]);
            jm_text_puts(sb, "=\"");
            sb_escaped(sb, s->label_values[i], 1);
            jm_text_puts(sb, "\"");
        }
        if (le != NULL) {
            if (f->n_labels > 0)
                jm_text_puts(sb, ",");
            jm_text_puts(sb, "le=\"");
            jm_text_puts(sb, le);
            jm_text_puts(sb, "\"");
        }
        jm_text_puts(sb, "}");
    }
    jm_text_puts(sb, " ");
}

static void
render_series(jm_text *sb, const jm_metric_family *f, const jm_metric_series *s)
{
    if (f->type != JM_METRIC_HISTOGRAM) {
        sb_sample_name(sb, f, s, "", NULL);
        sb_double(sb, atomic_dbl_load(&s->value));
        jm_text_puts(sb, "\n");
        return;
    }
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i <= f->n_buckets; i++) {
        cum += atomic_load_explicit((_Atomic uint64_t *)&s->counts[i], memory_order_relaxed);
        if (i < f->n_buckets)
            format_double(le, sizeof(le), f->buckets[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        sb_sample_name(sb, f, s, "_bucket", le);
        sb_u64(sb, cum);
        jm_text_puts(sb, "\n");
    }
    sb_sample_name(sb, f, s, "_sum", NULL);
    sb_double(sb, atomic_dbl_load(&s->value));
    jm_text_puts(sb, "\n");
    sb_sample_name(sb, f, s, "_count", NULL);
    sb_u64(sb, cum);
    jm_text_puts(sb, "\n");
}

static const char *
type_name(jm_metric_type t)
{
    switch (t) {
    case JM_METRIC_COUNTER: return "counter";
    case JM_METRIC_GAUGE: return "gauge";
    case JM_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

char *
jm_metrics_render(jm_metrics *m, size_t *len)
{
    jm_text sb = JM_TEXT_INIT;
    if (m != NULL) {
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n_families; i++) {
            const jm_metric_family *f = m->families[i];
            jm_text_puts(&sb, "# HELP ");
            jm_text_puts(&sb, f->name);
            jm_text_puts(&sb, " ");
            sb_escaped(&sb, f->help, 0);
            jm_text_puts(&sb, "\n# TYPE ");
            jm_text_puts(&sb, f->name);
            jm_text_puts(&sb, " ");
            jm_text_puts(&sb, type_name(f->type));
            jm_text_puts(&sb, "\n");
            for (const jm_metric_series *s = f->first; s != NULL; s = s->next)
                render_series(&sb, f, s);
        }
        pthread_mutex_unlock(&m->lock);
    }
    return jm_text_take(&sb, len); /* an empty registry renders "" (not NULL) */
}

int
jm_metrics_register(jm_metrics *m, const jm_metric_def *defs, size_t n)
{
    int rc = JM_OK;
    for (size_t i = 0; i < n; i++) {
        const jm_metric_def *d = &defs[i];
        jm_metric_family *f = jm_metrics_family(m, d->name, d->help, d->type, d->labels, NULL, 0);
        jm_metric_series *s = f != NULL && d->labels == NULL ? jm_metrics_series(f, NULL) : NULL;
        if (d->family != NULL)
            *d->family = f;
        if (d->series != NULL)
            *d->series = s;
        if (f == NULL || (d->series != NULL && s == NULL))
            rc = JM_ERR_NOMEM;
    }
    return rc;
}
