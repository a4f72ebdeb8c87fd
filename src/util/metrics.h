/* metrics: lookout's own Prometheus metrics registry, rendered at GET /metrics in the text format.
 * Families are created on first use (idempotent by name) and live for the process. Series are keyed by
 * label values. All functions are thread-safe. Collectors add families computed at render time. */
#ifndef LOOKOUT_UTIL_METRICS_H
#define LOOKOUT_UTIL_METRICS_H
#include <stddef.h>

#include "util/strbuf.h"

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct metric_family metric_family;

/* Returns the family `name`, creating it. label_names: n_labels names (copied). For histograms, buckets
 * are the upper bounds (copied; +Inf is implicit); NULL buckets selects Prometheus' defaults. */
metric_family *metric_family_get(const char *name, metric_type type, const char *help, size_t n_labels,
                                 const char *const *label_names);
metric_family *metric_histogram_get(const char *name, const char *help, size_t n_labels,
                                    const char *const *label_names, const double *buckets, size_t n_buckets);
/* label_values: n_labels values (NULL allowed when n_labels == 0). */
void metric_add(metric_family *f, const char *const *label_values, double delta);
void metric_set(metric_family *f, const char *const *label_values, double value);
void metric_observe(metric_family *f, const char *const *label_values, double value);
/* Removes one series (e.g. a job that is gone). */
void metric_remove(metric_family *f, const char *const *label_values);
/* Removes every series whose first label equals value (e.g. every series of a job). */
void metric_remove_by_first_label(metric_family *f, const char *value);
double metric_value(metric_family *f, const char *const *label_values); /* 0 when absent (tests) */

/* A series handle for a hot path that updates the same series on every event (a scrape): the lookup by
 * label values (string compares under the lock) is done once. metric_series_get creates the series like
 * the first metric_add would; the handle stays valid until metric_remove or metric_remove_by_first_label
 * removes that series, so only take handles of series nobody removes. */
typedef struct metric_series metric_series;
metric_series *metric_series_get(metric_family *f, const char *const *label_values);
/* Applies n updates under one lock acquisition: add[i] is added to a counter/gauge series, or observed
 * into a histogram series (metric_observe). NULL handles are skipped. */
void metric_series_update(metric_series *const *s, const double *v, size_t n);

/* Collectors append complete families (with # HELP/# TYPE) to out at render time. */
typedef void (*metrics_collector_fn)(void *ctx, strbuf *out);
void metrics_register_collector(metrics_collector_fn fn, void *ctx);
void metrics_unregister_collector(metrics_collector_fn fn, void *ctx);
/* A collector that writes its part a page at a time (its output may be large): fn is called with *state
 * NULL first, then with whatever it left there, and returns 1 while more follows, 0 after its last page
 * (its state freed and *state NULL by then). free_state(state) frees a state left midway (a rendering
 * dropped before the end). */
typedef int (*metrics_pager_fn)(void *ctx, void **state, strbuf *out);
void metrics_register_pager(metrics_pager_fn fn, void (*free_state)(void *state), void *ctx);
void metrics_unregister_pager(metrics_pager_fn fn, void *ctx);

/* Renders every family (sorted by name) and then the collectors. */
void metrics_render(strbuf *out);
/* The same in steps, for a streamed answer: the first step renders every family, each later step one
 * collector or one page of a pager. Start with a zeroed metrics_render_state; returns 1 while steps may
 * remain (call again with the same state), 0 after the last. The steps' outputs concatenated are
 * metrics_render's. metrics_render_state_free frees what a rendering stopped midway holds. */
typedef struct metrics_render_state {
    size_t step;                  /* 0: the families; k: the k-th collector */
    void *state;                  /* a pager's state between its pages */
    const void *state_owner;      /* the collector it belongs to */
    void (*free_state)(void *);
} metrics_render_state;
int metrics_render_step(metrics_render_state *st, strbuf *out);
void metrics_render_state_free(metrics_render_state *st);
/* Appends a sample line with escaped label values: name{l1="v1",...} value\n */
void metrics_write_sample(strbuf *out, const char *name, size_t n_labels, const char *const *label_names,
                          const char *const *label_values, double value);

#endif
