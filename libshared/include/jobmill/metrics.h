/* metrics.h - Prometheus counters, gauges and histograms with labels.
 *
 * A jm_metrics registry holds families; a family holds series, one per
 * distinct label-value tuple. Looking a series up (jm_metrics_series) takes a
 * lock and may allocate once; updating a series is lock-free (C11 atomics),
 * so hot paths look their series up once and keep the pointer. Series are
 * never freed before the registry, so such pointers stay valid.
 *
 * Ownership: jm_metrics_new returns a registry the caller frees with
 * jm_metrics_free; families and series are owned by the registry and handed
 * out as borrowed pointers. Names, help texts and label names passed in are
 * copied.
 */
#ifndef JOBMILL_METRICS_H
#define JOBMILL_METRICS_H

#include <stddef.h>

typedef struct jm_metrics jm_metrics;
typedef struct jm_metric_family jm_metric_family;
typedef struct jm_metric_series jm_metric_series;

typedef enum jm_metric_type {
    JM_METRIC_COUNTER,
    JM_METRIC_GAUGE,
    JM_METRIC_HISTOGRAM,
} jm_metric_type;

/* jm_metrics_new returns a new empty registry, or NULL. */
jm_metrics *jm_metrics_new(void);
void jm_metrics_free(jm_metrics *m);

/* jm_metrics_family registers a family (or returns the existing one with the
 * same name). label_names is a NULL-terminated array (may be NULL for no
 * labels). For histograms, buckets are the upper bounds in ascending order
 * (n_buckets of them, +Inf implied); NULL selects jm_metrics_default_buckets.
 * Returns a borrowed pointer or NULL on bad arguments / no memory. */
jm_metric_family *jm_metrics_family(jm_metrics *m, const char *name, const char *help,
                                    jm_metric_type type, const char *const *label_names,
                                    const double *buckets, size_t n_buckets);

/* jm_metrics_series returns the series of fam for the label values (one per
 * label name, in order; NULL when the family has no labels), creating it at
 * zero when new. Borrowed; valid until jm_metrics_free. NULL on no memory. */
jm_metric_series *jm_metrics_series(jm_metric_family *fam, const char *const *label_values);

/* One family to register (default buckets for histograms). */
typedef struct jm_metric_def {
    jm_metric_family **family; /* gets the family, or NULL */
    jm_metric_series **series; /* unlabelled families: gets the one series, or NULL */
    const char *name;
    jm_metric_type type;
    const char *const *labels; /* NULL-terminated, NULL = unlabelled */
    const char *help;
} jm_metric_def;

/* jm_metrics_register registers the n families of defs, in order, and
 * stores what each asks for. JM_OK, or JM_ERR_NOMEM (or JM_ERR_INVALID for a
 * bad name) when any registration failed; what was stored stays valid. */
int jm_metrics_register(jm_metrics *m, const jm_metric_def *defs, size_t n);

/* Updates. All are safe from any thread, lock-free, allocation-free. */
void jm_metric_inc(jm_metric_series *s);               /* counter/gauge += 1 */
void jm_metric_add(jm_metric_series *s, double v);     /* counter/gauge += v */
void jm_metric_set(jm_metric_series *s, double v);     /* gauge = v */
void jm_metric_observe(jm_metric_series *s, double v); /* histogram */
double jm_metric_value(const jm_metric_series *s);     /* counter/gauge, for tests */

/* jm_metrics_render writes the whole registry in the Prometheus text format
 * 0.0.4 (HELP and TYPE lines, every series, histograms with _bucket/_sum/
 * _count) into a new malloc'd NUL-terminated string; *len gets its length.
 * Caller frees. NULL on no memory. */
char *jm_metrics_render(jm_metrics *m, size_t *len);

/* Buckets from 0.5 ms to 30 min, roughly x2.5 apart; sub-ms to minutes. */
extern const double jm_metrics_default_buckets[];
extern const size_t jm_metrics_n_default_buckets;

#endif
