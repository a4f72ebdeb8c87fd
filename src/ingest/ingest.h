/* ingest: the path from a finished scrape to the store. The scrape loop's result callback calls
 * ingest_submit, which stays quick: a failed scrape marks the target down and is reported into lookout's
 * own exceptions; a body is hashed (merge_body_hash); when it is identical to the last body the writer
 * merged for that target and none of the target's bodies is queued, it is counted unchanged right there
 * (target up, no copy, no queueing: the writer only gets a small sighting record, see ingest.c);
 * otherwise it is copied and queued. ONE writer thread owns the merge engine: it skips bodies identical
 * to the target's last one, parses the others (payload_parse with the scrape URL as fallback instance
 * id), merges them into a change set and applies that change set to the store once per batch (every
 * flush_interval or batch_bodies merged bodies) in one store_apply call. The writer is woken once per
 * batch of bodies (it lets them gather for up to 50 ms), not once per body.
 *
 * Queue: bounded by bytes (queue_bytes). When a body does not fit, the oldest pending body of the same
 * target is dropped first (the newer body supersedes it: counts are cumulative), else the oldest pending
 * body of any target; drops are counted (lookout_ingest_dropped_bodies_total).
 *
 * Store failures: the change set is kept (later merges coalesce into it), the write is retried with
 * exponential backoff (1 s .. 60 s); lookout_store_backlog_changes / lookout_store_write_failures_total /
 * lookout_store_last_write_success_timestamp_seconds and ingest_status tell the operator. A change set
 * the database refuses (STORE_REJECTED: a constraint, a value out of range) is never retried as a whole:
 * it is applied piece by piece and only the refused pieces are skipped, each logged, counted in
 * lookout_store_rejected_changes_total{job} and reported into lookout's own exceptions.
 *
 * Retention of errors: merge_expire runs every minute, or every half retention window when that is
 * shorter; its deletions travel in the change set (lookout_errors_expired_total).
 *
 * Target health: HTTP-level failures are reported to the target manager at once (loop thread), and so
 * are unchanged bodies decided there; any other body is reported up, or down with the precise parse
 * error, by the writer after it looked at the body.
 *
 * Target labels ("labels seen"): ingest_target_event keeps a (job, target hash) -> public labels map from
 * the target manager's hook; removed targets also make the writer forget their body hash.
 *
 * Threading: ingest_submit on the scrape loop thread, ingest_target_event under the target manager's
 * write lock (it only enqueues / updates the map), ingest_status from any thread. */
#ifndef LOOKOUT_INGEST_INGEST_H
#define LOOKOUT_INGEST_INGEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scrape/target.h"
#include "scrape/scheduler.h"
#include "scrape/targets.h"
#include "store/merge.h"
#include "periskop/selfexc.h"
#include "store/store.h"
#include "ingest/error_relabel.h"

typedef struct ingest ingest;

typedef struct ingest_options {
    size_t queue_bytes;            /* 0 -> 256 MiB of pending bodies */
    int64_t flush_interval_ms;     /* 0 -> 1000 */
    size_t batch_bodies;           /* 0 -> 2000 merged bodies force a flush */
    int64_t snapshot_interval_ms;  /* 0 -> 60 s: merge_prune + merge_snapshot -> store_save_state */
    int64_t max_backoff_ms;        /* 0 -> 60 s */
    merge_options merge;
} ingest_options;

/* Borrowed: st, tm, sx (may be NULL: no self-reporting) must outlive the ingest. */
ingest *ingest_new(store *st, target_manager *tm, selfexc *sx, const ingest_options *opts);
/* Loads the store into the merge engine (store_load), then starts the writer. Returns 0, or -1 with err
 * (nothing started: the caller refuses to run rather than overwrite a store it could not read). */
int ingest_start(ingest *in, char *err, size_t errlen);
/* Stops the writer after it drained the queue and tried one last flush and state save; frees. */
void ingest_free(ingest *in);

/* scrape_result_fn-compatible: ctx is the ingest. */
void ingest_submit(void *ctx, const scrape_result *r);
/* Replaces the scrubbing rules (config `scrubbing:`; NULL: the defaults). Until called, the defaults apply.
 * Thread-safe; the writer uses the new rules from its next document, and once what it scrubbed with the
 * old ones is flushed, scrubs the stored samples with the new ones (store_rescrub: SQL backends, a
 * no-op when the rules did not change). */
void ingest_set_scrubbing(ingest *in, const scrubbing_config *sc);
/* Called from the target manager hook (see targets.h); t->labels are the target's final labels.
 * honor_labels: the job's scrape config setting; it decides how federated bodies (aggregates carrying
 * "__lookout_job__") are merged, see ingest_merge_doc below. sample_limit: the job's sample_limit (0 = none):
 * a body with more aggregated errors than that fails the scrape ("sample limit exceeded", Prometheus'
 * text), the target is down and nothing of the body is merged. */
void ingest_target_event(ingest *in, target_event ev, const char *job, const built_target *t, bool honor_labels,
                         uint64_t sample_limit);

/* ---- push (POST /errors, POST /api/v1/push/{job}) ----
 * A pushed body is parsed on the caller's (HTTP) thread, fully, before anything is queued: a body that is
 * not a valid payload, or in which any aggregate or occurrence is malformed, is refused whole (nothing
 * half-applied). The parsed document then goes through the same writer thread and merge engine as scraped
 * bodies, so a replayed cumulative state adds nothing and occurrences are deduplicated by uuid.
 *
 * Identity: the instance is (job, "push", target_uuid): never the instance of a scraped target that has the
 * same target_uuid (merge.h), so a push cannot re-add a scraped count. Every Periskop client sends a target_uuid; a body without
 * one is keyed on "push:" + instance (the pusher's stable name: the `instance` query parameter, else its
 * IP address), so repeated pushes of one uuid-less process still count once. Labels seen:
 * {job, instance}.
 *
 * The call waits (up to timeout_ms) until the writer merged the document and the store accepted the
 * change, so a client that pushes and then reads the API sees its data. */
typedef enum ingest_push_result {
    INGEST_PUSH_STORED = 0, /* merged and written to the store */
    INGEST_PUSH_QUEUED,     /* accepted; not confirmed written before the timeout (store slow/failing) */
    INGEST_PUSH_INVALID,    /* err: the parse error; nothing applied */
    INGEST_PUSH_BUSY,       /* the ingest queue is full; nothing applied */
} ingest_push_result;

typedef struct ingest_push_info {
    size_t aggregates;  /* aggregates in the body */
    char instance_id[256]; /* the instance the counts were keyed on (truncated for display) */
} ingest_push_info;

ingest_push_result ingest_push(ingest *in, const char *job, const char *instance, const char *body, size_t len,
                               int64_t timeout_ms, ingest_push_info *info, char *err, size_t errlen);

/* Federation: a parsed document whose aggregates carry an origin job (payload_aggregate.origin_job) is
 * split by origin job. honor_labels: each part is merged into its origin job (labels seen: the target's
 * labels with job = origin); otherwise into the scrape job, with exported_job = origin added to the labels
 * seen. The instance is (job, lookout_instance or target_uuid), plus "/origin" without honor_labels so
 * that two origin jobs never share an instance. Aggregates without an origin go to the scrape job.
 * Grouping is linear in the payload (a hash map per origin job). source: merge_input.source (NULL for a
 * scrape, "push" for pushes). Exposed for tests; returns the number of changed aggregates. */
size_t ingest_merge_doc(merge_engine *e, const char *job, const char *url, const char *source,
                        const labelset *labels, const payload_doc *doc, bool honor_labels, uint64_t body_hash,
                        int64_t now_ms, merge_changeset *cs);

/* Installs the error_relabel_configs of a (re)loaded configuration (takes the reference; NULL: none).
 * Bodies merged from now on use them. */
void ingest_set_error_relabel(ingest *in, error_relabel_set *s);
/* The rules in use (a new reference, NULL when none): the introspection API. */
error_relabel_set *ingest_error_relabel(ingest *in);

/* Blocks until every body queued so far has been merged and, if the store accepts it, written
 * (tests and benchmarks). Returns 0, or -1 when timeout_ms elapsed first. */
int ingest_sync(ingest *in, int64_t timeout_ms);

typedef struct ingest_status {
    size_t backlog_changes;       /* merged changes not yet in the store */
    uint64_t write_failures;      /* store_apply failures so far */
    int64_t last_write_ok_ms;     /* 0 = never */
    char last_error[256];         /* last store error, "" when the last write succeeded */
    size_t queued_bodies, queued_bytes;
    uint64_t dropped_bodies;
    uint64_t merged_bodies, unchanged_bodies, failed_bodies;
} ingest_status;
void ingest_get_status(ingest *in, ingest_status *out);

#endif
