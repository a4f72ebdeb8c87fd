/* store: the backend-neutral storage interface. A backend (memory.c; the SQL store over SQLite, PostgreSQL or
 * MySQL/MariaDB: sql_store.c) implements store_ops; callers use the store_* wrappers.
 *
 * Data model (plain structs, no JSON blobs, so SQL backends map it to tables):
 *   aggregate (job, key) -> counts, severity, first/last seen, status (open|resolved|regressed)
 *   sample    (job, key, dedup_hash) -> occurrence, newest first, capped by the merge engine
 *   labels    (job, key, label set) -> the target label sets that reported the key
 *   series    (job, key, minute) -> count increase in that minute, kept for `retention`
 *   state     the merge engine's per-target state (merge_state), saved/loaded as a whole
 *
 * Writes come as merge change sets (merge.h), applied atomically (one transaction); a change set's
 * deletions (errors expired by retention, merge_deleted) go first and take everything the error owns. Resolve status is
 * user state kept here: resolving remembers the count; a later change that raises the count re-opens
 * the aggregate as "regressed" (store_status_after, shared by every backend).
 *
 * Threading: every backend is safe for one writer thread and many reader threads. Results handed to
 * readers are copies (occurrences are shared by reference), valid after the call returns. */
#ifndef LOOKOUT_STORE_STORE_H
#define LOOKOUT_STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "periskop/payload.h"
#include "store/merge.h"
#include "store/query.h"

typedef enum store_status { STORE_OPEN = 0, STORE_RESOLVED, STORE_REGRESSED } store_status;
typedef enum store_sort { STORE_SORT_LAST_SEEN = 0, STORE_SORT_COUNT, STORE_SORT_FIRST_SEEN } store_sort;

/* Return codes besides 0 (ok) and -1 (error, message in err). */
#define STORE_NOT_FOUND 1
/* list: the query ran out of its time/step budget (store_options.query_budget_*); err says so. Not a
 * fault of lookout: the API answers 503 (Prometheus' errorType "timeout"). */
#define STORE_TIMEOUT 2
/* apply: the database refused the change set's data (a constraint, a value out of range...): retrying the
 * same change set fails the same way. Nothing of it was applied. -1 stays "transient, retry". */
#define STORE_REJECTED 3

const char *store_status_name(store_status s); /* "open", "resolved", "regressed" */
int store_status_parse(const char *s, store_status *out);
const char *store_sort_name(store_sort s); /* "last_seen", "count", "first_seen" */
int store_sort_parse(const char *s, store_sort *out);

typedef struct store_label_matcher {
    const char *name;
    const char *value;
} store_label_matcher;

/* store_query.status: open or regressed (the API's status=open, Periskop's list). */
#define STORE_QUERY_UNRESOLVED (-2)

#define STORE_DEFAULT_LIMIT 100
#define STORE_MAX_LIMIT 1000

typedef struct store_query {
    const char *job; /* NULL: every job */
    /* Case-insensitive substring over the key and, in every sample, class, message, stacktrace lines (of
     * the whole cause chain), HTTP method, URL, header names and values, body. NULL/"": no filter. */
    const char *q;
    int severity; /* -1 any, else a payload_severity */
    int status;   /* -1 any, STORE_QUERY_UNRESOLVED (open or regressed), else a store_status */
    /* Label matchers NAME=VALUE: one label set seen for the aggregate must match all of them. */
    const store_label_matcher *labels;
    size_t n_labels;
    store_sort sort; /* descending (newest, largest first); ties by job, key ascending */
    size_t limit;    /* 0 -> STORE_DEFAULT_LIMIT; capped at STORE_MAX_LIMIT */
    const char *cursor; /* from a previous page (same filters and sort), NULL for the first page */
    /* Added for the UI's search (zero keeps the meaning above): when true, q is split at whitespace and an
     * aggregate matches when every word matches, each as above (case-insensitive substring of the key or of
     * any field of any sample; different words may match different fields or samples). */
    bool q_all_words;
    /* The search language (query.h), ANDed with everything above; NULL or no terms: no filter. */
    const store_search *search;
} store_query;

/* One aggregate without its samples (list rows). */
typedef struct store_summary {
    char *job;
    char *key;
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms; /* PAYLOAD_TS_NONE when unknown */
    int64_t last_seen_ms;  /* PAYLOAD_TS_NONE when no occurrence */
    store_status status;
    uint64_t resolved_count; /* count when last resolved (0 if never) */
    int64_t resolved_at_ms;  /* 0 if never */
    payload_occurrence *latest; /* newest sample (one reference) or NULL: class/message for list rows */
    size_t n_samples;
    size_t n_labels;
} store_summary;

typedef struct store_page {
    store_summary *v;
    size_t n;
    uint64_t total;    /* aggregates matching the filters (all pages) */
    char *next_cursor; /* NULL on the last page */
} store_page;

typedef struct store_detail {
    store_summary s;
    payload_occurrence **samples; /* newest first, one reference each */
    size_t n_samples;
    labelset *labels; /* deep copies */
    size_t n_labels;
    merge_series_point *series; /* ascending minutes, increases only, within retention */
    size_t n_series;
} store_detail;

typedef struct store_job {
    char *job;
    uint64_t aggregates; /* number of keys */
    uint64_t open;       /* keys open or regressed */
    uint64_t total_count;
} store_job;

typedef struct store store;
struct scrub_rules; /* periskop/scrub.h */

typedef struct store_ops {
    const char *name;
    int (*apply)(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen);
    int (*list)(store *s, const store_query *q, store_page *out, char *err, size_t errlen);
    int (*get)(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen);
    int (*set_status)(store *s, const char *job, const char *key, bool resolve, int64_t now_ms, char *err,
                      size_t errlen);
    int (*jobs)(store *s, store_job **out, size_t *n, char *err, size_t errlen);
    int (*save_state)(store *s, const merge_state *st, char *err, size_t errlen);
    /* Restores every aggregate (merge_restore_aggregate) and then the per-target state into e. */
    int (*load)(store *s, merge_engine *e, char *err, size_t errlen);
    /* Background upkeep (retention); NULL when the backend needs none. See store_maintain. */
    int (*maintain)(store *s, int64_t now_ms, char *err, size_t errlen);
    void (*close)(store *s);
    /* Optional (NULL: the wrapper returns zeros). Adds the per-minute increases of (job, key) into n
     * buckets of step_ms: out[i] covers [since_ms + i*step_ms, since_ms + (i+1)*step_ms). key NULL: every
     * key of the job. For sparklines and "errors in the last hour". */
    int (*buckets)(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                   size_t n, char *err, size_t errlen);
    /* Optional (NULL: nothing stored outlives the process). Makes the stored samples scrubbed with r, as
     * at open (store_options.scrub); a no-op when they already are. */
    int (*rescrub)(store *s, const struct scrub_rules *r, char *err, size_t errlen);
    /* See store_keys. */
    int (*keys)(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
                size_t errlen);
} store_ops;

struct store {
    const store_ops *ops;
};

typedef struct store_options {
    int64_t retention_ms; /* series kept this long; 0 -> 14d */
    /* SQL backends: a reader query (list) is interrupted after this long (0 -> STORE_QUERY_BUDGET_MS):
     * SQLite's progress handler, PostgreSQL's statement_timeout and MariaDB's max_statement_time on the
     * readers' connection; on SQLite also after query_budget_steps virtual-machine steps (0: no step
     * bound; for tests). */
    int64_t query_budget_ms;
    int64_t query_budget_steps;
    /* SQL backends, while opening: the scrubbing rules the stored samples must satisfy (NULL: the
     * defaults); a database scrubbed with other rules is scrubbed again (sql_schema_scrub). */
    const struct scrub_rules *scrub;
} store_options;

#define STORE_QUERY_BUDGET_MS 5000

/* The memory backend (nothing survives a restart; save_state/load work within the process). */
store *store_memory_new(const store_options *opts);

/* SQL backends (store/sql_store.c). Each returns NULL with a message in err when the database cannot be
 * opened, its schema cannot be migrated, or it was written by a newer lookout.
 * sqlite: path is the database file (created when missing; WAL mode). postgres/mysql: dsn is a libpq
 * conninfo / a mysql://user:pass@host:port/db URL. */
store *store_sqlite_new(const char *path, const store_options *opts, char *err, size_t errlen);
store *store_postgres_new(const char *dsn, const store_options *opts, char *err, size_t errlen);
store *store_mysql_new(const char *dsn, const store_options *opts, char *err, size_t errlen);

/* Wrappers. All return 0, STORE_NOT_FOUND (get, set_status), STORE_REJECTED (apply) or -1 with err
 * filled. */
int store_apply(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen);
int store_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen);
int store_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen);
int store_resolve(store *s, const char *job, const char *key, int64_t now_ms, char *err, size_t errlen);
int store_reopen(store *s, const char *job, const char *key, char *err, size_t errlen);
int store_jobs(store *s, store_job **out, size_t *n, char *err, size_t errlen);
int store_save_state(store *s, const merge_state *st, char *err, size_t errlen);
int store_load(store *s, merge_engine *e, char *err, size_t errlen);
/* Retention: deletes samples and series older than retention and instances/sources not seen for it,
 * in bounded batches (never a long write lock). Called by the store writer between cycles; cheap when
 * called often (does work at most once a minute). 0 or -1 with err. */
int store_maintain(store *s, int64_t now_ms, char *err, size_t errlen);
void store_close(store *s); /* NULL ok */
/* store_ops.rescrub; 0 for backends without it. */
int store_rescrub(store *s, const struct scrub_rules *r, char *err, size_t errlen);
/* Full dumps (federation, Periskop's list of a service): the keys of every error of job whose status
 * passes `status` (as store_query.status: -1 any, STORE_QUERY_UNRESOLVED, or a store_status), in
 * store_list's order under sort, read at one instant (one statement, or under the store's lock). A dump
 * that then reads the errors one by one with store_get (skipping STORE_NOT_FOUND: deleted meanwhile) lists
 * every error that existed throughout exactly once, whatever the writer changes meanwhile (paging
 * store_list by a cursor on last_seen could skip an error whose last_seen moved to an earlier page, or
 * list it twice), and holds keys only, never every error. *out (n keys): free with store_keys_free. */
int store_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
               size_t errlen);
void store_keys_free(char **keys, size_t n);
/* out[0..n) is zeroed first; see store_ops.buckets. */
int store_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                  size_t n, char *err, size_t errlen);

void store_summary_free(store_summary *s);
void store_page_free(store_page *p);
void store_detail_free(store_detail *d);
void store_jobs_free(store_job *jobs, size_t n);

/* ---- shared by backends ---- */

/* Status after a change raised the count to new_count: resolved -> regressed when new_count exceeds
 * the count at resolve time. */
store_status store_status_after(store_status st, uint64_t resolved_count, uint64_t new_count);

/* Cursor: the position of the last row of a page under a sort. Encoded as an opaque URL-safe string. */
typedef struct store_cursor {
    store_sort sort;
    int64_t value; /* the sort value of the last row (count as int64) */
    char *job, *key;
} store_cursor;
char *store_cursor_encode(const store_cursor *c); /* caller frees */
/* Returns 0 and fills c (free job/key with store_cursor_clear) or -1 for a malformed cursor. */
int store_cursor_decode(const char *s, store_cursor *c);
void store_cursor_clear(store_cursor *c);
/* For backends' list(): decodes q->cursor into cur (zeroed when absent) and returns the page size
 * (q->limit, defaulted and capped), or 0 with a message in err for a malformed cursor or one from
 * another sort. */
size_t store_list_begin(const store_query *q, store_cursor *cur, char *err, size_t errlen);
/* The sort value of a row. */
int64_t store_sort_value(store_sort sort, const store_summary *s);
/* Order of rows: < 0 when a comes first. Descending value, then job, then key ascending. */
int store_row_cmp(store_sort sort, int64_t va, const char *joba, const char *keya, int64_t vb, const char *jobb,
                  const char *keyb);
/* True when occurrence o matches the full-text query (case-insensitive substring). */
bool store_occurrence_matches(const payload_occurrence *o, const char *q);

#endif
