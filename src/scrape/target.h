/* target: Prometheus' populateLabels (scrape/target.go): from a discovered target (group labels + the
 * target's own labels) and its scrape config to the final label set and scrape URL, or a drop, or an
 * error. Pure functions, no threads. */
#ifndef LOOKOUT_SCRAPE_TARGET_H
#define LOOKOUT_SCRAPE_TARGET_H
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"

typedef enum target_build_status {
    TARGET_ACTIVE = 0, /* labels + url valid */
    TARGET_DROPPED,    /* a relabel rule dropped it: dropped_by says which */
    TARGET_FAILED,     /* target building error (no address, '/' in address, bad interval...): error says why */
} target_build_status;

typedef struct built_target {
    target_build_status status;
    labelset discovered; /* before relabeling, with job/__scrape_*__/__metrics_path__/__scheme__/__param_* */
    labelset labels;     /* after relabeling, __meta_* removed, instance set; internal __ labels included */
    char *url;           /* scheme://address/path?params (ACTIVE only) */
    int dropped_by;      /* relabel rule index (DROPPED), else -1 */
    char error[256];     /* FAILED: reason. ACTIVE, in target manager hooks only: the pool's forced scrape
                            error ("target_limit exceeded ..."), "" when none */
    uint64_t hash;       /* FNV-1a 64 over labels and url: the target's identity and scheduling hash */
} built_target;

/* Builds one target. group_labels may be NULL. out is initialised by the call; free with
 * built_target_free. */
void target_build(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                  built_target *out);
/* target_build without out->discovered (left empty) and without copying the discovered labels relabeling
 * cannot read (a __meta_* label no rule names, and no labelmap regex matches): the same status, labels, url,
 * error, dropped_by and hash as target_build. What the target manager runs for every discovered target, so
 * that a group with a million __meta_* labels (a Kubernetes object's labels map) is not copied per target.
 * The rules run first on a view of the discovered labels (relabel_view: read by name, nothing copied) until
 * one drops the target or reads every name (labelmap, labeldrop, labelkeep): a dropped target costs no copy
 * of its group's labels, whatever they are. */
void target_build_final(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                        built_target *out);
/* target_build_final, target_discovered_labels, target_discovered_each and target_discovered_hash of a
 * group read through its label view (labels.h: maps kept packed, expanded name by name): what the target
 * manager runs on the groups discovery hands it. */
void target_build_final_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                             built_target *out);
void built_target_free(built_target *t);
/* Only the discovered labels target_build would compute (no relabeling): group labels overlaid by the
 * target's, with the scrape config's job/__scrape_*__/__metrics_path__/__scheme__/__param_* defaults.
 * out is initialised by the call. */
void target_discovered_labels(const scrape_config *sc, const labelset *group_labels,
                              const labelset *target_labels, labelset *out);
/* The same labels one by one, in target_discovered_labels' order, without building the set:
 * fn(ctx, name, value) per label (strings valid during the call). For readers that only write them out
 * (the targets API: a group of a million labels is not copied per request). */
typedef void (*target_label_fn)(void *ctx, const char *name, const char *value);
void target_discovered_each(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                            target_label_fn fn, void *ctx);
void target_discovered_labels_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                   labelset *out);
void target_discovered_each_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                 target_label_fn fn, void *ctx);
/* labelset_hash of those labels, without building them; *address (may be NULL): their __address__ (a string
 * of group_labels or target_labels) or NULL. */
uint64_t target_discovered_hash(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                                const char **address);
uint64_t target_discovered_hash_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                     const char **address);

/* promtool check config (checkTargetGroupsForScrapeConfig): builds every static target of sc and
 * reports the first that cannot be created, as Prometheus words it: "instance 0 in group 1: invalid
 * scheme: \"ftp\"". *pos gets the static block's position. Returns 0 when every target builds (active or
 * dropped), else -1 with err. */
int target_check_static(const scrape_config *sc, config_pos *pos, char *err, size_t errlen);

/* Public labels (names not starting with "__"), in a new set (initialised by the call). */
void target_public_labels(const labelset *labels, labelset *out);

/* The scrape URL from final labels (__scheme__, __address__, __metrics_path__, __param_*), with the
 * configured params whose first value __param_* may replace. Caller frees. */
char *target_url(const scrape_config *sc, const labelset *labels);

#endif
