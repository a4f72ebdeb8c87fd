/* ingest/ingest_internal: the ingest's structures and the helpers ingest.c (queue, lifecycle, push) and
 * ingest_writer.c (the writer thread) share. Private to src/ingest/ingest*.c; see ingest.c for the design. */
#ifndef LOOKOUT_INGEST_INGEST_INTERNAL_H
#define LOOKOUT_INGEST_INGEST_INTERNAL_H

#include "ingest/ingest.h"
#include "ingest/agg_cache.h"
#include "ingest/error_relabel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "periskop/scrub.h"
#include "util/keymap.h"
#include "util/metrics.h"

#define BATCH_MS 50          /* how long the writer lets a batch of bodies gather after the first one */
#define SEEN_WAKE 65536      /* pending sightings that wake the writer (bounds their memory) */

typedef struct tlabels {
    atomic_int refs;
    char *key; /* "job\0" + 8 hash bytes (the map's key) */
    size_t klen;
    labelset ls; /* public labels */
    bool honor_labels; /* the job's honor_labels: how federated bodies are merged */
    char *url;         /* the target's scrape URL (the merge engine's source) */
    _Atomic uint64_t merged_hash; /* merge_source_body_hash after the writer's last body of it; 0 none */
    _Atomic uint64_t merged_gen;  /* the error relabel generation that body was merged under */
    atomic_int pending;           /* its bodies queued or being processed */
    uint64_t sample_limit; /* the job's sample_limit (0 = none) */
} tlabels;

typedef struct sighting {
    tlabels *tl; /* reference */
    uint64_t hash;
} sighting;

typedef enum item_kind { ITEM_BODY, ITEM_FORGET, ITEM_PUSH } item_kind;

typedef struct item {
    item_kind kind;
    char *job, *url;
    uint64_t target_hash;
    tlabels *labels; /* reference or NULL */
    char *body;
    size_t len, cost;
    uint64_t body_hash, seq;
    int64_t start_ms;
    double duration_s;
    payload_doc *doc;     /* ITEM_PUSH: parsed by the pusher's thread */
    labelset push_labels; /* ITEM_PUSH: {job, instance} */
    struct item *prev, *next;
} item;

struct ingest {
    store *st;
    target_manager *tm;
    selfexc *sx;
    ingest_options o;
    merge_engine *eng; /* writer thread only (after start) */
    agg_cache *aggs;   /* writer thread only: each source's last merged aggregates, for payload_parse_reuse */
    merge_changeset cs;

    pthread_mutex_t mu;
    pthread_cond_t cond, done_cond;
    item *head, *tail;
    size_t n_items, bytes;
    uint64_t enq_seq, done_seq;
    uint64_t stored_seq; /* every item up to it is merged and written (not merely retrying) */
    bool stopping, force_flush, started;
    pthread_t thread;
    ingest_status status; /* guarded by mu */

    pthread_mutex_t labels_mu;
    error_relabel_set *erl; /* error_relabel_configs of the running configuration; guarded by mu */
    bool erl_changed;       /* a reload replaced them: unchanged bodies must be merged again; guarded by mu */
    _Atomic uint64_t erl_gen; /* counts those replacements: the fast path skips only bodies merged under the
                               * current rules */
    keymap labels;
    pthread_mutex_t scrub_mu; /* scrub, rescrub: replaced by reloads, used by the writer */
    scrub_rules *scrub;
    bool rescrub; /* the store's samples are to be scrubbed with scrub once nothing is pending */

    sighting *seen; /* unchanged bodies decided by ingest_submit (guarded by mu) */
    size_t n_seen, cap_seen;
    int64_t first_enq_ms; /* when the queue last went from empty to non-empty (guarded by mu) */
    /* lookout_ingest_bodies_total{job, result="unchanged"} of the last job with an unchanged body: the
     * series handle, so that the fast path does no lookup (ingest_submit's thread only) */
    char *unchanged_job;
    metric_series *unchanged_series;
};
extern const char *ingest_job_label[];
int64_t ingest_now_ms(void);
metric_family *ingest_m_backlog(void);
metric_family *ingest_m_write_failures(void);
metric_family *ingest_m_queue_bytes(void);
metric_family *ingest_m_bodies(void);
void ingest_report_health(ingest *in, const char *job, uint64_t hash, const char *error, int64_t start_ms,
                          double duration_s);
void ingest_tlabels_unref(tlabels *t);
void ingest_item_free(item *it);
void ingest_scrub(ingest *in, const char *job, payload_doc *doc);
bool ingest_pending(const ingest *in);
void ingest_abs_deadline(struct timespec *ts, int64_t ms);
void *ingest_writer_main(void *arg);

#endif
