/* sql_store: internals shared by the SQL store's files (sql_store.c writes, sql_read.c reads,
 * sql_schema.c DDL). Not a public interface: use store.h.
 *
 * Concurrency (one lookout): two connections, the writer's (apply, resolve, save_state, load,
 * maintain) and the readers' (list, get, jobs), each behind its own mutex; SQLite in WAL mode lets the
 * readers' connection read the last committed state while the writer writes.
 *
 * Concurrency (several lookouts sharing one PostgreSQL/MySQL database, one per shard): no process ever
 * writes a value it computed from its own view of a shared row.
 *   - aggregate totals are added to (total = total + delta, delta = this change's count increase, i.e.
 *     the sum of its per-minute series points), never overwritten with a process-local total;
 *     created_at takes the minimum, last_seen the maximum, severity the latest writer's; regression is
 *     decided in the same statement from the row's own resolved_count;
 *   - series add deltas per minute; samples and labels are insert-if-absent keyed by content hashes;
 *   - per-instance counts (counts, instances) and sources belong to the process that scrapes the
 *     instance (hashmod sharding gives each target to one process), so overwriting them is safe.
 *   - ids are hashes of natural keys, computed client-side: no id allocation, no read-back.
 * Every write of a cycle runs in one transaction, with the per-instance counts that produced it, so a
 * crash either keeps both or neither: no lost and no double counts after restart. */
#ifndef LOOKOUT_STORE_SQL_STORE_H
#define LOOKOUT_STORE_SQL_STORE_H
#include <pthread.h>

#include "store/sqldb.h"
#include "store/store.h"
#include "util/keymap.h"

typedef struct sql_store {
    store base;
    sqldb *w, *r; /* writer, readers */
    pthread_mutex_t wmu, rmu;
    sqldb_dialect dialect;
    char *where; /* "sqlite /path" or "postgres", for messages (no credentials) */
    char *open_arg; /* path or DSN, to reconnect */
    store_options o;
    int64_t last_maintain_ms;
    /* Instance rows this writer committed: instance id -> the last_seen it wrote (sql_store.c:
     * write_counts); pending: this cycle's, adopted at its commit. */
    keymap64 inst_seen;
    struct inst_written {
        int64_t id, seen;
    } *inst_pending;
    size_t n_inst_pending, cap_inst_pending;
} sql_store;

/* NONE as an SQL expression every dialect evaluates as a BIGINT. */
#define SQL_TS_NONE "(-9223372036854775807-1)"

/* Row ids: 63-bit FNV-1a of the parts separated by NUL. */
int64_t sql_id2(const char *a, const char *b);
/* The deletes of evicted samples (sql_store.c: delete_samples), exposed for tests: the statement that
 * deletes n (1..16) samples of one error from table 0 samples, 1 sample_causes, 2 sample_headers (NULL
 * outside those), and how many of `left` evicted samples the next statement takes (16, 4 or 1; SQLite 1). */
const char *sql_evict_sql(int table, size_t n);
size_t sql_evict_chunk(sqldb_dialect d, size_t left);
/* Sample hashes are stored as (int64)(h ^ 2^63) so that signed SQL order equals unsigned order. */
static inline int64_t sql_hash_to_db(uint64_t h)
{
    return (int64_t)(h ^ 0x8000000000000000ULL);
}
static inline uint64_t sql_hash_from_db(int64_t v)
{
    return (uint64_t)v ^ 0x8000000000000000ULL;
}

int sql_schema_latest(void);
int sql_schema_migrate(sqldb *db, const char *where, char *err, size_t errlen);
/* sql_scrub.c: masks secrets stored in samples and their headers with rules (NULL: the defaults);
 * *changed tells whether anything was (the caller then rebuilds the search rows). */
int sql_scrub_existing(sqldb *db, const struct scrub_rules *rules, bool *changed, char *err, size_t errlen);
/* Makes the stored samples scrubbed with rules (NULL: the defaults): unless lookout_meta's scrub_rules
 * already holds their fingerprint (scrub_rules_fingerprint), scrubs every stored sample, rebuilds the
 * search rows and records it, in one transaction; on SQLite the file is then compacted. So a database
 * written with other rules (an extra field added to `scrubbing:`, scrubbing off, an older scrubber) is
 * scrubbed with the current ones when the store opens. */
int sql_schema_scrub(sqldb *db, const struct scrub_rules *rules, const char *where, char *err, size_t errlen);

/* Reads (sql_read.c). */
/* The aggregate columns every read of aggregates selects, in this order (sql_read.c, sql_load.c). */
#define SQL_AGG_COLS "a.job, a.akey, a.total, a.severity, a.created_at, a.last_seen, a.status, " \
                     "a.resolved_count, a.resolved_at, a.id"

int sql_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen);
int sql_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
             size_t errlen);
int sql_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen);
int sql_jobs(store *s, store_job **out, size_t *n, char *err, size_t errlen);
int sql_load(store *s, merge_engine *e, char *err, size_t errlen);
int sql_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                size_t n, char *err, size_t errlen);

const char *sql_begin(sqldb_dialect d);

#endif
