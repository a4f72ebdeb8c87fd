/* merge: the merge engine. Folds parsed Periskop payloads (one per scrape) into aggregates keyed by
 * (job, aggregation_key), with Periskop's semantics (the Periskop server's scraper/scraper.go and
 * processor.go) and its bugs fixed:
 *
 * - total_count = sum over every instance incarnation ever seen of its latest total_count. An instance
 *   is (job, source, target_uuid), or (job, source, scrape URL) when the payload has no target_uuid;
 *   source is where the data came from (the scrape URL, or "push"), so a pusher or another target that
 *   copies a scraped target's target_uuid is an instance of its own and cannot re-add that target's count.
 *   Each scrape adds the per-(instance, key) delta; a count lower than the last one for the same instance
 *   is a counter reset (the process restarted under the same id): the new value is added, nothing freezes.
 * - Counts saturate at MERGE_COUNT_MAX (INT64_MAX: what every SQL backend's BIGINT holds) instead of
 *   wrapping: per-instance counts are clamped, totals and per-minute increases add with saturation.
 * - Occurrence timestamps later than now + MERGE_FUTURE_SKEW_MS are stored as now (likewise created_at),
 *   so a client clock set to 9999 cannot evict the present samples.
 * - A job holds at most max_errors_per_job aggregates plus one overflow aggregate, key MERGE_OVERFLOW_KEY:
 *   a new key beyond the cap (and any key while the overflow exists: it is sticky, so no key is ever
 *   counted both there and on its own) is counted into the overflow, which keeps the newest samples of
 *   all such keys. Per instance the overflow's count is the sum of that instance's overflowed counts, so
 *   the sum of counts stays exact. lookout_errors_overflowed_total{job} and a log line (at most one a
 *   minute per job) say which job overflowed.
 * - Retention (merge_expire): an aggregate with no new occurrence and no count increase for `retention`
 *   is deleted, and the change set tells the store to delete everything it owns. In memory a tombstone
 *   (key, last_seen, the instances' counts) stays while an instance still refers to it, so an instance
 *   that keeps reporting the key with nothing new does not bring it back; an increase or a newer
 *   occurrence does, as a new error holding only what came after. The SQL stores persist tombstones
 *   (merge_deleted, merge_restore_tombstone); the memory store does not.
 * - created_at = earliest across instances (or the earliest occurrence when no client sent one);
 *   severity = the one of the latest report that changed the key; last_seen = newest occurrence.
 * - Samples: deduplicated by occurrence uuid (by content + timestamp when the uuid is empty), ordered
 *   newest first (ties by dedup hash), capped at samples_per_error.
 * - Labels seen: the distinct public target label sets that reported the key, at most labels_per_error.
 * - Instances not seen for `retention` are pruned (their past counts stay in the totals).
 *
 * Incremental: one merge_apply touches only keys whose count, samples or labels changed and records
 * them in a change set (merge_changeset) that a store backend persists in one transaction. Changes are
 * coalesced per key within a change set, and describe deltas (samples added/evicted, labels added,
 * per-minute count increases), so SQL backends need no read-modify-write.
 *
 * Unchanged bodies: merge_body_hash + merge_body_unchanged let the caller skip parsing a body that is
 * byte-identical to the last one of the same scrape target (the common case).
 *
 * Resolve status is not here: it is user state owned by the store (store.h), which re-opens a resolved
 * key as a regression when a change raises its count.
 *
 * Threading: not thread-safe; one owner thread (the store writer). Change sets own all their data
 * (strings copied, occurrences referenced), so they may be handed to another thread. */
#ifndef LOOKOUT_STORE_MERGE_H
#define LOOKOUT_STORE_MERGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "periskop/payload.h"

typedef struct merge_engine merge_engine;

typedef struct merge_options {
    uint32_t samples_per_error; /* 0 -> 100 */
    uint32_t labels_per_error;  /* 0 -> 100 */
    int64_t retention_ms;       /* 0 -> 14d */
    uint32_t max_errors_per_job; /* 0 -> 10,000 */
} merge_options;

#define MERGE_COUNT_MAX ((uint64_t)INT64_MAX)
#define MERGE_FUTURE_SKEW_MS (5 * 60 * 1000LL)
#define MERGE_OVERFLOW_KEY "lookout.overflow"
/* Separates the source from the claimed id in an instance id ("SOURCE\x1fID"). */
#define MERGE_SOURCE_SEP '\x1f'
/* Separates an instance id from an original key regrouped by error_relabel_configs, in the derived
 * instance that keeps that key's own count ("SOURCE\x1fID\x1eKEY"). */
#define MERGE_DERIVED_SEP '\x1e'

/* One scrape's input. */
typedef struct merge_input {
    const char *job;
    const char *url;        /* scrape URL: identifies the scrape target (body hash) */
    const char *source;     /* where the data came from, part of the instance identity: NULL = url;
                               "push" for pushed bodies */
    const labelset *labels; /* public target labels (job, instance, namespace, pod, ...); may be NULL */
    const payload_doc *doc; /* parsed with fallback_id = url */
    uint64_t body_hash;     /* merge_body_hash(body) to remember; 0 = none */
    int64_t now_ms;         /* scrape time: series bucket and instance liveness */
} merge_input;

/* A count increase credited to one minute (Unix minute = ms / 60000). */
typedef struct merge_series_point {
    int64_t minute;
    uint64_t delta;
} merge_series_point;

/* The new state of one aggregate and how it got there since the change set was last cleared. */
typedef struct merge_change {
    char *job;
    char *key;
    bool is_new; /* the aggregate did not exist before this change set */
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms; /* PAYLOAD_TS_NONE when unknown */
    int64_t last_seen_ms;  /* PAYLOAD_TS_NONE when no occurrence yet */
    /* Samples that entered the aggregate (one reference each) and dedup hashes of samples that left
     * it. A sample both added and evicted within the change set appears in neither. */
    payload_occurrence **added;
    size_t n_added, cap_added;
    uint64_t *evicted;
    size_t n_evicted, cap_evicted;
    labelset *labels_added; /* deep copies */
    size_t n_labels_added, cap_labels_added;
    merge_series_point *series; /* increases, ascending minutes, no duplicates */
    size_t n_series, cap_series;
} merge_change;

/* A per-instance count that changed: the merge engine's state, carried in the change set so that a
 * store persists it in the same transaction as the aggregates it fed (a crash between two separate
 * writes would count the delta twice or lose it). Coalesced: one entry per (job, instance, key) per
 * change set, holding the latest count. */
typedef struct merge_count_change {
    char *job;
    char *instance_id;
    char *key;
    uint64_t count;
    int64_t seen_ms; /* scrape time */
} merge_count_change;

/* An aggregate deleted by retention: the store deletes it with everything it owns (samples, label sets,
 * series, search rows, per-instance counts) BEFORE applying the change set's changes (a key deleted and
 * then reported again within one change set comes back as new). */
typedef struct merge_deleted {
    char *job;
    char *key;
    int64_t last_seen_ms; /* its newest occurrence (PAYLOAD_TS_NONE when none): a tombstone's threshold */
} merge_deleted;

typedef struct merge_changeset {
    merge_change *v;
    size_t n, cap;
    uint64_t gen; /* identifies this change set's content generation (internal) */
    merge_count_change *counts; /* entries with key NULL were cancelled (their aggregate expired) */
    size_t n_counts, cap_counts;
    merge_deleted *deleted;
    size_t n_deleted, cap_deleted;
} merge_changeset;

void merge_changeset_init(merge_changeset *cs);
/* Frees the entries, keeps the array for reuse. */
void merge_changeset_clear(merge_changeset *cs);
void merge_changeset_free(merge_changeset *cs);

merge_engine *merge_new(const merge_options *opts);
void merge_free(merge_engine *e);
const merge_options *merge_get_options(const merge_engine *e);

/* Fast 64-bit hash of a scrape body (xxhash-style word lanes; never 0). */
uint64_t merge_body_hash(const char *body, size_t len);
/* True when the last merged body of (job, url) had this hash: the caller may skip parsing and merging.
 * Also counts as a sighting of the target's instance (keeps it from being pruned). */
bool merge_body_unchanged(merge_engine *e, const char *job, const char *url, uint64_t body_hash, int64_t now_ms);

/* The body hash remembered for (job, url) and usable by merge_body_unchanged (0 when none, or when its
 * instance was pruned). */
uint64_t merge_source_body_hash(const merge_engine *e, const char *job, const char *url);
/* Whether every aggregate of in->doc that payload_parse_reuse reused (no occurrences), or of which it left
 * out occurrences the source's previous body held, merges exactly as its full parse would: the instance
 * already counts that key (at that count, when reused), so those occurrences were merged with the earlier
 * body. When false, parse the body in full. Read-only. */
bool merge_reuse_ok(const merge_engine *e, const merge_input *in);

/* Merges one scrape. Appends/updates the changed aggregates in cs. Returns the number of aggregates
 * of this payload that changed. */
size_t merge_apply(merge_engine *e, const merge_input *in, merge_changeset *cs);

/* Forgets every target's last body hash, so that each next body is merged even when unchanged (a reload
 * changed how bodies are turned into aggregates, e.g. error_relabel_configs). Counts stay exact: a
 * re-merged body adds only what changed. */
void merge_forget_body_hashes(merge_engine *e);
/* A scrape target is gone (removed from discovery): forget its body hash. Instance counts stay until
 * pruned, so a target that comes back with the same target_uuid is not double-counted. */
void merge_forget_source(merge_engine *e, const char *job, const char *url);
/* Drops instances and sources not seen since now_ms - retention. Returns how many instances went. */
size_t merge_prune(merge_engine *e, int64_t now_ms);
/* Retention of errors: deletes every aggregate with no new occurrence and no count increase since
 * now_ms - retention (the time of its last change as merged; restored aggregates count from their
 * last_seen, else created_at, else the restore), with its per-instance counts, and records each in
 * cs->deleted. Returns how many went. */
size_t merge_expire(merge_engine *e, int64_t now_ms, merge_changeset *cs);

/* Read-only view of an aggregate (tests, diagnostics). Pointers valid until the next engine call. */
typedef struct merge_aggregate_info {
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms, last_seen_ms;
    payload_occurrence *const *samples; /* newest first; NULL = restored by identity only */
    size_t n_samples;
    const labelset *labels; /* the label sets known in full (not those restored by identity) */
    size_t n_labels;
} merge_aggregate_info;
bool merge_get(const merge_engine *e, const char *job, const char *key, merge_aggregate_info *out);

typedef struct merge_stats {
    size_t aggregates, instances, sources, instance_keys;
    size_t tombstones; /* errors deleted by retention whose instances still report them (merge_expire) */
} merge_stats;
void merge_get_stats(const merge_engine *e, merge_stats *out);

/* ---- persistence: plain structs, no blobs ---- */

/* A sample known by identity only: all the engine needs to deduplicate, order and evict it. A store
 * that serves sample content from its own tables restores these at start-up instead of decoding every
 * occurrence (1,000,000 samples: the difference between seconds and a fraction of one). Such samples
 * are never in a change set's `added` (only in `evicted`, by hash). */
typedef struct merge_sample_id {
    int64_t timestamp_ms;
    uint64_t dedup_hash;
} merge_sample_id;

/* An aggregate as a store loads it at startup; the engine takes its own references and copies.
 * Samples and label sets may be given in full, by identity, or both. Label set identities are
 * labelset_hash(ls) & INT64_MAX (what the SQL store keeps); the engine then treats a set with that
 * hash as already seen (and counts it against labels_per_error) without knowing its labels. Restore
 * each aggregate once, before merging. */
typedef struct merge_aggregate_state {
    const char *job, *key;
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms, last_seen_ms;
    payload_occurrence *const *samples; /* any order */
    size_t n_samples;
    const labelset *labels;
    size_t n_labels;
    const merge_sample_id *sample_ids; /* any order */
    size_t n_sample_ids;
    const uint64_t *label_ids; /* in the order seen */
    size_t n_label_ids;
} merge_aggregate_state;
void merge_restore_aggregate(merge_engine *e, const merge_aggregate_state *a);

typedef struct merge_key_count {
    char *key;
    uint64_t count;
} merge_key_count;

/* Per-instance state: the last total_count per key. */
typedef struct merge_instance_state {
    char *job;
    char *instance_id;
    int64_t last_seen_ms;
    merge_key_count *counts;
    size_t n_counts;
} merge_instance_state;

/* Per scrape target: the last body hash and the instance it reported. */
typedef struct merge_source_state {
    char *job;
    char *url;
    uint64_t body_hash;
    int64_t last_scrape_ms;
    char *instance_id; /* "" (or NULL) when none yet */
} merge_source_state;

typedef struct merge_state {
    merge_instance_state *instances;
    size_t n_instances;
    merge_source_state *sources;
    size_t n_sources;
} merge_state;

/* A tombstone (see merge_expire) as a store persisted it: restore before merge_restore, so the instances'
 * counts of the key are restored onto it. Ignored when the key exists as a live aggregate. */
void merge_restore_tombstone(merge_engine *e, const char *job, const char *key, int64_t last_seen_ms);

/* Deep copy of the per-target state (out is initialised by the call). */
void merge_snapshot(const merge_engine *e, merge_state *out);
/* Loads per-target state; call after the aggregates were restored (counts of unknown keys are dropped,
 * so such a key is counted afresh when reported again). */
void merge_restore(merge_engine *e, const merge_state *st);
void merge_state_free(merge_state *st);

#endif
