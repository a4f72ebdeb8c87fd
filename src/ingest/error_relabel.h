/* ingest/error_relabel: error_relabel_configs, the Prometheus relabel idiom applied to each aggregated
 * error of a payload before it is merged (README "error_relabel_configs").
 *
 * Input labels of one error: the target's public labels (job, instance and whatever relabel_configs
 * kept) plus
 *   __aggregation_key__  the key the client sent
 *   __class__, __message__  class and message of the error's newest occurrence
 *   __severity__         info, warning or error
 * Output:
 *   dropped (drop, keep, dropequal, keepequal, or a rule that empties the set): the error is removed from
 *     the payload, never stored, and counted in lookout_errors_dropped_total{job,reason="relabel_<action>"}
 *   __aggregation_key__  the error's key; a different key regroups it: several keys of one instance that map
 *     to one key are summed, each original key keeping its own delta and reset accounting
 *     (payload_aggregate.count_id, see store/merge.c), and their samples are merged
 *   __severity__         the error's severity; anything but info, warning or error is a logged no-op (a
 *     static invalid value is refused by the config parser)
 *   labels without the "__" prefix: the error's label set for this target (filterable like SD labels)
 *
 * An error_relabel_set holds the rules of every job of one configuration (copied: the configuration may
 * be freed), immutable and reference-counted, so the writer thread uses one while a reload installs the
 * next. */
#ifndef LOOKOUT_INGEST_ERROR_RELABEL_H
#define LOOKOUT_INGEST_ERROR_RELABEL_H
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "labels/labels.h"
#include "labels/relabel.h"
#include "periskop/payload.h"

typedef struct error_relabel_set error_relabel_set;

/* The rules of cfg: every scrape_config's (by job name) and the push section's (for every pushed job).
 * NULL when there are none at all. */
error_relabel_set *error_relabel_set_new(const lookout_config *cfg);
error_relabel_set *error_relabel_set_ref(error_relabel_set *s); /* NULL ok */
void error_relabel_set_unref(error_relabel_set *s);             /* NULL ok */
/* The rules of a job (pushed: the push section's); *n = 0 when none. Valid while s is referenced. */
const relabel_rule *error_relabel_set_rules(const error_relabel_set *s, const char *job, bool pushed, size_t *n);

/* Counts of one application. */
typedef struct error_relabel_result {
    size_t dropped[RELABEL_UPPERCASE + 1]; /* by the action of the dropping rule */
    size_t regrouped;                      /* errors whose key changed */
    size_t invalid_severity;               /* __severity__ results that were not a severity (no-op) */
} error_relabel_result;

/* Applies rules to every aggregate of doc in place (see above). target: the target's public labels
 * (may be NULL). Dropped aggregates are freed and removed. */
void error_relabel_doc(const relabel_rule *rules, size_t n, const labelset *target, payload_doc *doc,
                       error_relabel_result *res);

/* The input label set of one error (target labels plus the "__" labels above); ls is initialised. */
void error_relabel_input(const labelset *target, const char *key, const char *class_name, const char *message,
                         payload_severity sev, labelset *ls);

/* Counts res into lookout_errors_dropped_total{job,reason} and lookout_error_relabel_regrouped_total{job}
 * and logs invalid severities (at most once a minute). */
void error_relabel_account(const char *job, const error_relabel_result *res);

#endif
