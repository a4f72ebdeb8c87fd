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

/* Collectors append complete families (with # HELP/# TYPE) to out at render time. */
typedef void (*metrics_collector_fn)(void *ctx, strbuf *out);
void metrics_register_collector(metrics_collector_fn fn, void *ctx);
void metrics_unregister_collector(metrics_collector_fn fn, void *ctx);

/* Renders every family (sorted by name) and then the collectors. */
void metrics_render(strbuf *out);
/* The same in steps, for a streamed answer: step 0 (*step starts at 0) renders every family, each later
 * step one collector; returns 1 while steps may remain (call again with the same *step), 0 after the last.
 * The steps' outputs concatenated are metrics_render's. */
int metrics_render_step(size_t *step, strbuf *out);
/* Appends a sample line with escaped label values: name{l1="v1",...} value\n */
void metrics_write_sample(strbuf *out, const char *name, size_t n_labels, const char *const *label_names,
                          const char *const *label_values, double value);

#endif
