/* store/merge_internal: the merge engine's structures and the helpers its files share (merge.c: change
 * sets and merging; merge_persist.c: snapshot/restore; merge_retention.c: pruning, retention, overflow).
 * Private to src/store/merge*.c.
 *
 * Invariants:
 * - Every aggregate (magg) lives until merge_free; instances point at aggregates, never the reverse, so
 *   pruning an instance never touches aggregate totals.
 * - magg.samples is sorted newest first (timestamp desc, then dedup hash desc) and holds at most
 *   samples_per_error entries with distinct dedup hashes; magg.hashes and magg.ts mirror it for
 *   cache-friendly duplicate checks and ordering. A sample restored by identity only (a store's
 *   start-up: the store serves the content itself) has samples[i] == NULL: the engine needs only its
 *   hash (dedup, eviction notice) and timestamp (order) until it is evicted.
 * - magg.label_hashes[0 .. n_label_ids) are label sets restored by identity only (labelset_hash masked
 *   to 63 bits, as SQL stores it); magg.labels[i] is label_hashes[n_label_ids + i].
 * - A magg is in change set cs iff magg.cs_gen == cs->gen; then cs->v[magg.cs_idx] is its entry. */
#ifndef LOOKOUT_STORE_MERGE_INTERNAL_H
#define LOOKOUT_STORE_MERGE_INTERNAL_H

#include "store/merge.h"

#include "util/keymap.h"

#define LABEL_ID_MASK 0x7fffffffffffffffULL

typedef struct magg {
    char *id; /* "job\0key" */
    size_t idlen, joblen;
    uint64_t total;
    payload_severity sev;
    int64_t created, last_seen;
    payload_occurrence **samples; /* NULL entries: known by identity only */
    uint64_t *hashes;
    int64_t *ts;
    size_t n, cap;
    labelset *labels;
    uint64_t *label_hashes;
    size_t n_labels, n_label_ids; /* n_labels counts both kinds */
    uint64_t cs_gen;
    size_t cs_idx;
    int64_t touched; /* merge time of the last new occurrence or count increase (retention) */
    /* Deleted by retention (merge_expire): a tombstone that keeps only its id, last_seen and the
     * instances' counts, so that instances still reporting the key with no increase do not bring it back;
     * freed once no instance refers to it. Invisible to every reader. */
    bool expired;
    bool referenced; /* scratch of merge_expire */
} magg;

typedef struct icount {
    magg *a; /* NULL = empty slot */
    uint64_t count;
    uint64_t cs_gen; /* this count is cs->counts[cs_idx] iff cs_gen == cs->gen (coalescing) */
    size_t cs_idx;
} icount;

typedef struct minst {
    char *id; /* "job\0instance_id" */
    size_t idlen, joblen;
    int64_t last_seen;
    icount *slots;
    size_t cap, n;
} minst;

typedef struct msrc {
    char *id; /* "job\0url" */
    size_t idlen, joblen;
    uint64_t body_hash;
    int64_t last_scrape;
    minst *inst; /* NULL when none or pruned */
} msrc;

/* Per job: how many aggregates it holds (max_errors_per_job) and when its overflow was last logged. */
typedef struct mjob {
    char *job;
    size_t n_aggs;
    int64_t last_log_ms;
    uint64_t logged_keys, overflowed_keys; /* keys redirected into the overflow (since the last log line) */
} mjob;

struct merge_engine {
    merge_options o;
    keymap aggs, insts, srcs, jobs;
};

static inline uint64_t count_clamp(uint64_t v)
{
    return v > MERGE_COUNT_MAX ? MERGE_COUNT_MAX : v;
}

/* a + b saturated at MERGE_COUNT_MAX (both already at most that). */
static inline uint64_t count_add(uint64_t a, uint64_t b)
{
    return a > MERGE_COUNT_MAX - b ? MERGE_COUNT_MAX : a + b;
}
void *merge_grow(void *arr, size_t *cap, size_t n, size_t elem);
char *merge_mkid(const char *job, const char *rest, size_t *len, size_t *joblen);
void *merge_lookup(const keymap *m, const char *job, const char *rest);
void merge_change_free(merge_change *c);
void merge_magg_free(magg *a);
void merge_minst_free(minst *m);
mjob *merge_job_get(merge_engine *e, const char *job);
magg *merge_magg_get(merge_engine *e, const char *job, const char *key, bool *created);
minst *merge_minst_get(merge_engine *e, const char *job, const char *id);
icount *merge_icount_find(minst *m, const magg *a, bool create);
bool merge_sample_insert(merge_engine *e, magg *a, int64_t ts, uint64_t h, payload_occurrence *o,
                         merge_changeset *cs, bool is_new, merge_change **c);
bool merge_labels_add(merge_engine *e, magg *a, const labelset *ls, uint64_t h, merge_change *c);
void merge_magg_bury(magg *a);
void merge_overflow_note(merge_engine *e, const char *job, size_t keys, uint64_t delta, int64_t now_ms);

#endif
