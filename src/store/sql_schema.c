/* sql_schema: lookout's relational schema and its forward migrations, one text for the three databases
 * with per-dialect type tokens. Versioned in lookout_meta(name='schema_version'); at start the store
 * runs every missing migration in order (each in its own transaction where the database allows DDL in
 * one) and refuses a database whose version is newer than this binary knows.
 *
 * Schema (v1; v2 to v7 below). Ids are 63-bit FNV hashes computed by lookout (sql_store.c: sql_id), the same in every
 * process, so a writer never reads an id back and shards agree on them without coordination.
 *   aggregates(id, job, akey, total, severity, created_at, last_seen, status, resolved_count, resolved_at)
 *       one row per (job, key); indexes per sort order (value DESC, job, akey) for keyset paging;
 *       v7: agg_state (status, severity, job) for the search language's is:/severity: filters
 *   samples(agg_id, hash, ts, uuid, severity, class, message, stack, has_http, method, url, body)
 *   sample_causes(agg_id, hash, depth, class, message, stack)      cause chain (depth >= 1)
 *   sample_headers(agg_id, hash, pos, name, value)                  HTTP request headers in order
 *   labels(agg_id, lhash, seq, name, value)     one row per label of each label set seen, plus a
 *       sentinel row name='' per set (anchors "one set matches all matchers" queries, keeps empty sets)
 *   series(agg_id, minute, delta)               per-minute count increases
 *   instances(id, job, instance_id, last_seen) + counts(inst_id, agg_id, count)   merge engine state
 *   sources(id, job, url, body_hash, last_scrape, instance_id)                     merge engine state
 *   tombstones(agg_id, job, akey, last_seen)    v4: errors deleted by retention that instances still
 *       report (their counts rows stay), see merge_expire
 *   search: full-text rows, lower-cased text. v1: one per sample and one for the key; v2 (below): one
 *       per aggregate (id = aggregate id) holding its key and the distinct lines of its samples' stext
 *       (each line once; the writer's rebuilds since 2026-12, older rows held each distinct stext).
 *       SQLite FTS5 trigram (substring MATCH), PostgreSQL pg_trgm GIN (LIKE '%q%'), MySQL plain table.
 * Timestamps are Unix ms; "unknown" is INT64_MIN as in the structs (never NULL), so the keyset
 * comparisons need no NULL cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/scrub.h"
#include "store/sql_store.h"
#include "util/log.h"
#include "util/strbuf.h"

/* Tokens: $J job/short text, $K key, $T long text, $X search text, $W table suffix. */
static const char *const v1[] = {
    "CREATE TABLE aggregates (id BIGINT NOT NULL PRIMARY KEY, job $J NOT NULL, akey $K NOT NULL,"
    " total BIGINT NOT NULL, severity INT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL,"
    " status INT NOT NULL DEFAULT 0, resolved_count BIGINT NOT NULL DEFAULT 0,"
    " resolved_at BIGINT NOT NULL DEFAULT 0)$W",
    "CREATE INDEX agg_last_seen ON aggregates (last_seen DESC, job, akey)",
    "CREATE INDEX agg_total ON aggregates (total DESC, job, akey)",
    "CREATE INDEX agg_created ON aggregates (created_at DESC, job, akey)",
    "CREATE INDEX agg_job ON aggregates (job, last_seen DESC, akey)",
    "CREATE TABLE samples (agg_id BIGINT NOT NULL, hash BIGINT NOT NULL, ts BIGINT NOT NULL, uuid $T NOT NULL,"
    " severity INT NOT NULL, class $T NOT NULL, message $T NOT NULL, stack $T NOT NULL, has_http INT NOT NULL,"
    " method $T NOT NULL, url $T NOT NULL, body $T NOT NULL, PRIMARY KEY (agg_id, hash))$R",
    "CREATE INDEX samples_ts ON samples (ts)",
    "CREATE TABLE sample_causes (agg_id BIGINT NOT NULL, hash BIGINT NOT NULL, depth INT NOT NULL,"
    " class $T NOT NULL, message $T NOT NULL, stack $T NOT NULL, PRIMARY KEY (agg_id, hash, depth))$R",
    "CREATE TABLE sample_headers (agg_id BIGINT NOT NULL, hash BIGINT NOT NULL, pos INT NOT NULL,"
    " name $T NOT NULL, value $T NOT NULL, PRIMARY KEY (agg_id, hash, pos))$R",
    "CREATE TABLE labels (agg_id BIGINT NOT NULL, lhash BIGINT NOT NULL, seq BIGINT NOT NULL, name $J NOT NULL,"
    " value $J NOT NULL, PRIMARY KEY (agg_id, lhash, name))$R",
    "CREATE TABLE series (agg_id BIGINT NOT NULL, minute BIGINT NOT NULL, delta BIGINT NOT NULL,"
    " PRIMARY KEY (agg_id, minute))$R",
    "CREATE INDEX series_minute ON series (minute)",
    "CREATE TABLE instances (id BIGINT NOT NULL PRIMARY KEY, job $J NOT NULL, instance_id $T NOT NULL,"
    " last_seen BIGINT NOT NULL)$W",
    "CREATE INDEX instances_seen ON instances (last_seen)",
    "CREATE TABLE counts (inst_id BIGINT NOT NULL, agg_id BIGINT NOT NULL, count BIGINT NOT NULL,"
    " PRIMARY KEY (inst_id, agg_id))$R",
    "CREATE TABLE sources (id BIGINT NOT NULL PRIMARY KEY, job $J NOT NULL, url $T NOT NULL,"
    " body_hash BIGINT NOT NULL, last_scrape BIGINT NOT NULL, instance_id $T NOT NULL)$W",
    "$SEARCH",
};

static const char *const v1_search_sqlite[] = {
    "CREATE VIRTUAL TABLE search USING fts5(body, agg_id UNINDEXED, tokenize='trigram')",
};
static const char *const v1_search_pg[] = {
    "CREATE TABLE search (id BIGINT NOT NULL PRIMARY KEY, agg_id BIGINT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX search_agg ON search (agg_id)",
    /* pg_trgm is a trusted extension (PostgreSQL >= 13): a database owner may create it. Without it the
     * LIKE falls back to a scan of the search table (still correct). */
    "?CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "?CREATE INDEX search_trgm ON search USING gin (body gin_trgm_ops)",
};
static const char *const v1_search_mysql[] = {
    "CREATE TABLE search (id BIGINT NOT NULL PRIMARY KEY, agg_id BIGINT NOT NULL, body LONGBLOB NOT NULL,"
    " INDEX search_agg (agg_id)) ENGINE=InnoDB",
};

/* v2: one full-text row per aggregate instead of one per sample. A search row's id is the aggregate's
 * id (SQLite: the FTS rowid, so a MATCH yields aggregate ids without reading any content), its body the
 * lower-cased key and the distinct search texts of the aggregate's current samples (samples.stext,
 * computed by the writer; occurrence uuids are not indexed, as docs/api.md lists). Samples of one error
 * mostly share their text, so the index holds each text once per error instead of once per sample,
 * and the writer rewrites a row only when the set of texts changed.
 * Backfill of a v1 database: stext from the sample's own fields (its causes and headers become
 * searchable again as new samples replace the old ones). */
static const char *const v2_sqlite[] = {
    "ALTER TABLE samples ADD COLUMN stext TEXT NOT NULL DEFAULT ''",
    "DROP TABLE search",
    "CREATE VIRTUAL TABLE search USING fts5(body, tokenize='trigram', columnsize=0)",
    "UPDATE samples SET stext = lower(class || char(10) || message || char(10) || stack || char(10) ||"
    " CASE WHEN has_http <> 0 THEN method || char(10) || url || char(10) || body || char(10) ELSE '' END)",
    "INSERT INTO search (rowid, body) SELECT a.id, lower(a.akey) || char(10) ||"
    " coalesce((SELECT group_concat(t, '') FROM (SELECT DISTINCT stext AS t FROM samples s WHERE s.agg_id = a.id)),"
    " '') FROM aggregates a",
};
static const char *const v2_pg[] = {
    "ALTER TABLE samples ADD COLUMN stext TEXT NOT NULL DEFAULT ''",
    "DROP TABLE search",
    "CREATE TABLE search (id BIGINT NOT NULL PRIMARY KEY, body TEXT NOT NULL)",
    "?CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "?CREATE INDEX search_trgm ON search USING gin (body gin_trgm_ops)",
    "UPDATE samples SET stext = lower(class || chr(10) || message || chr(10) || stack || chr(10) ||"
    " CASE WHEN has_http <> 0 THEN method || chr(10) || url || chr(10) || body || chr(10) ELSE '' END)",
    "INSERT INTO search (id, body) SELECT a.id, lower(a.akey) || chr(10) ||"
    " coalesce((SELECT string_agg(DISTINCT stext, '') FROM samples s WHERE s.agg_id = a.id), '') FROM aggregates a",
};
static const char *const v2_mysql[] = {
    "ALTER TABLE samples ADD COLUMN stext MEDIUMBLOB NOT NULL DEFAULT ''",
    "DROP TABLE search",
    "CREATE TABLE search (id BIGINT NOT NULL PRIMARY KEY, body LONGBLOB NOT NULL) ENGINE=InnoDB",
    "UPDATE samples SET stext = CONVERT(LOWER(CONVERT(CONCAT(class, CHAR(10), message, CHAR(10), stack, CHAR(10),"
    " IF(has_http <> 0, CONCAT(method, CHAR(10), url, CHAR(10), body, CHAR(10)), '')) USING utf8mb4)) USING binary)",
    "INSERT INTO search (id, body) SELECT a.id, CONCAT(CONVERT(LOWER(CONVERT(a.akey USING utf8mb4)) USING binary),"
    " CHAR(10), COALESCE((SELECT GROUP_CONCAT(DISTINCT s.stext SEPARATOR '') FROM samples s WHERE s.agg_id = a.id),"
    " '')) FROM aggregates a",
};

/* v3 (SQLite only): aggregates.id becomes the table's rowid (INTEGER PRIMARY KEY). A lookup by id is then
 * one B-tree search instead of a search in the primary-key index and a second one in the table, every
 * index of aggregates holds the id itself (a search that walks agg_job or a sort index probes the
 * full-text matches without reading the table), and joining the FTS rowids to aggregates is direct.
 * Ids are positive 63-bit values, valid rowids. PostgreSQL and MySQL keep their clustered/primary-key
 * tables: the step is a no-op there (it only records the version). */
static const char *const v3_sqlite[] = {
    "CREATE TABLE aggregates_v3 (id INTEGER PRIMARY KEY, job TEXT NOT NULL, akey TEXT NOT NULL,"
    " total BIGINT NOT NULL, severity INT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL,"
    " status INT NOT NULL DEFAULT 0, resolved_count BIGINT NOT NULL DEFAULT 0,"
    " resolved_at BIGINT NOT NULL DEFAULT 0)",
    "INSERT INTO aggregates_v3 (id, job, akey, total, severity, created_at, last_seen, status, resolved_count,"
    " resolved_at) SELECT id, job, akey, total, severity, created_at, last_seen, status, resolved_count,"
    " resolved_at FROM aggregates ORDER BY id",
    "DROP TABLE aggregates",
    "ALTER TABLE aggregates_v3 RENAME TO aggregates",
    "CREATE INDEX agg_last_seen ON aggregates (last_seen DESC, job, akey)",
    "CREATE INDEX agg_total ON aggregates (total DESC, job, akey)",
    "CREATE INDEX agg_created ON aggregates (created_at DESC, job, akey)",
    "CREATE INDEX agg_job ON aggregates (job, last_seen DESC, akey)",
};

/* v4: secrets scrubbed (periskop/scrub.h) from what earlier versions stored verbatim: sample URLs, bodies
 * and header values, their search texts (sql_scrub.c), then every search row rebuilt from the scrubbed
 * texts. On SQLite the file is then vacuumed and the WAL truncated (sql_schema_migrate), so no freed page
 * keeps an old value. */
static const char *const v4_search_sqlite[] = {"DELETE FROM search", NULL};
static const char *const v4_search_pg[] = {"DELETE FROM search", NULL};
static const char *const v4_search_mysql[] = {"DELETE FROM search", NULL};

/* Expands the tokens of one statement for a dialect. */
static char *expand(sqldb_dialect d, const char *s)
{
    strbuf sb;
    strbuf_init(&sb);
    for (; *s; s++) {
        if (*s != '$') {
            strbuf_putc(&sb, *s);
            continue;
        }
        char t = *++s;
        const char *rep = "";
        switch (t) {
        case 'J': rep = d == SQLDB_MYSQL ? "VARBINARY(255)" : d == SQLDB_POSTGRES ? "TEXT COLLATE \"C\"" : "TEXT"; break;
        case 'K': rep = d == SQLDB_MYSQL ? "VARBINARY(1024)" : d == SQLDB_POSTGRES ? "TEXT COLLATE \"C\"" : "TEXT"; break;
        case 'T': rep = d == SQLDB_MYSQL ? "MEDIUMBLOB" : "TEXT"; break;
        case 'W': rep = d == SQLDB_MYSQL ? " ENGINE=InnoDB" : ""; break;
        case 'R': rep = d == SQLDB_MYSQL ? " ENGINE=InnoDB" : d == SQLDB_SQLITE ? " WITHOUT ROWID" : ""; break;
        default: strbuf_putc(&sb, '$'); strbuf_putc(&sb, t); continue;
        }
        strbuf_puts(&sb, rep);
    }
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

static int run_list(sqldb *db, const char *const *stmts, size_t n, char *err, size_t errlen);

/* Scrubs the stored samples with rules (NULL: defaults) and, when that changed any, rebuilds the search
 * rows from the scrubbed texts. */
static int scrub_and_reindex(sqldb *db, const scrub_rules *rules, bool *changed, char *err, size_t errlen)
{
    if (sql_scrub_existing(db, rules, changed, err, errlen) != 0)
        return -1;
    if (!*changed)
        return 0;
    /* The v2 backfill statement (the last of each list) rebuilds the search rows. */
    const char *rebuild[2];
    const char *const *del = db->dialect == SQLDB_SQLITE ? v4_search_sqlite
                             : db->dialect == SQLDB_POSTGRES ? v4_search_pg : v4_search_mysql;
    rebuild[0] = del[0];
    rebuild[1] = db->dialect == SQLDB_SQLITE ? v2_sqlite[sizeof(v2_sqlite) / sizeof(*v2_sqlite) - 1]
                 : db->dialect == SQLDB_POSTGRES ? v2_pg[sizeof(v2_pg) / sizeof(*v2_pg) - 1]
                                                 : v2_mysql[sizeof(v2_mysql) / sizeof(*v2_mysql) - 1];
    return run_list(db, rebuild, 2, err, errlen);
}

/* Deleted rows leave their bytes in free pages, the FTS index's old segments and the WAL until they are
 * reused: rewrite the SQLite file and empty the WAL so scrubbed values are gone. */
static void sqlite_compact(sqldb *db)
{
    char e3[256];
    if (sqldb_exec(db, "INSERT INTO search(search) VALUES('optimize')", NULL, 0, e3, sizeof e3) != 0 ||
        sqldb_exec(db, "VACUUM", NULL, 0, e3, sizeof e3) != 0 ||
        sqldb_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, e3, sizeof e3) != 0)
        log_warn("store", "cannot compact the database after scrubbing", "err", e3);
}

static int run_list(sqldb *db, const char *const *stmts, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = stmts[i];
        bool optional = s[0] == '?';
        if (optional)
            s++;
        if (strcmp(s, "$SEARCH") == 0) {
            const char *const *ss = db->dialect == SQLDB_SQLITE ? v1_search_sqlite
                                    : db->dialect == SQLDB_POSTGRES ? v1_search_pg : v1_search_mysql;
            size_t nn = db->dialect == SQLDB_SQLITE ? 1 : db->dialect == SQLDB_POSTGRES ? 4 : 1;
            if (run_list(db, ss, nn, err, errlen) != 0)
                return -1;
            continue;
        }
        if (strcmp(s, "$V2") == 0) {
            const char *const *ss = db->dialect == SQLDB_SQLITE ? v2_sqlite
                                    : db->dialect == SQLDB_POSTGRES ? v2_pg : v2_mysql;
            size_t nn = db->dialect == SQLDB_SQLITE ? sizeof(v2_sqlite) / sizeof(*v2_sqlite)
                        : db->dialect == SQLDB_POSTGRES ? sizeof(v2_pg) / sizeof(*v2_pg)
                                                        : sizeof(v2_mysql) / sizeof(*v2_mysql);
            if (run_list(db, ss, nn, err, errlen) != 0)
                return -1;
            continue;
        }
        if (strcmp(s, "$V4") == 0) {
            bool changed = false;
            if (scrub_and_reindex(db, NULL, &changed, err, errlen) != 0)
                return -1;
            continue;
        }
        if (strcmp(s, "$V3") == 0) {
            if (db->dialect == SQLDB_SQLITE &&
                run_list(db, v3_sqlite, sizeof(v3_sqlite) / sizeof(*v3_sqlite), err, errlen) != 0)
                return -1;
            continue;
        }
        char *sql = expand(db->dialect, s);
        char e2[256];
        /* A failed statement aborts a PostgreSQL transaction: optional ones run under a savepoint. */
        bool sp = optional && db->dialect == SQLDB_POSTGRES;
        if (sp)
            sqldb_exec(db, "SAVEPOINT lookout_opt", NULL, 0, e2, sizeof(e2));
        int rc = sqldb_exec(db, sql, NULL, 0, e2, sizeof(e2));
        free(sql);
        if (sp)
            sqldb_exec(db, rc ? "ROLLBACK TO SAVEPOINT lookout_opt" : "RELEASE SAVEPOINT lookout_opt", NULL, 0,
                       e2 + 128, 128);
        if (rc != 0 && !optional) {
            snprintf(err, errlen, "%s", e2);
            return -1;
        }
    }
    return 0;
}

typedef struct migration {
    const char *const *stmts;
    size_t n;
} migration;

static const char *const v2[] = {"$V2"};
static const char *const v3[] = {"$V3"};
static const char *const v4[] = {"$V4"};
/* v5: the search language's label terms (namespace:prod) find their errors through this index instead
 * of probing every listed error's label sets. Optional ('?'): a database that already has it (a test that
 * replays migrations from v3) keeps it; without it searches are slower, never wrong. */
static const char *const v5[] = {"?CREATE INDEX labels_nv ON labels (name, value, agg_id)"};
/* v6: retention of errors. An error deleted by retention leaves a tombstone (its id, key and last
 * occurrence) and keeps its per-instance counts, so that after a restart an instance that still reports
 * it with nothing new does not bring it back; a tombstone goes with its last counts row (maintain). */
static const char *const v6[] = {
    /* Idempotent (optional index, IF NOT EXISTS table): a database replaying migrations from v3 (the
     * scrub migration's test) already has both. */
    "?CREATE INDEX counts_agg ON counts (agg_id)",
    "CREATE TABLE IF NOT EXISTS tombstones (agg_id BIGINT NOT NULL PRIMARY KEY, job $J NOT NULL, akey $K NOT NULL,"
    " last_seen BIGINT NOT NULL)$W",
};

/* v7: the search language's field filters (is:, severity:, and their combination with job:) find their
 * errors through this index instead of walking a sort index: sql_read.c states every status/severity filter
 * as IN lists on both columns (the complement for a negation), so any combination is a few index ranges
 * and a count is answered from the index alone. No sort column in it: last_seen, total and created_at
 * change on every write, status and severity almost never, so an upsert that leaves them alone leaves the
 * index alone (docs/benchmarks.md §5 has the measurement). Optional and idempotent like v5. */
static const char *const v7[] = {"?CREATE INDEX agg_state ON aggregates (status, severity, job)"};

static const migration migrations[] = {
    {v1, sizeof(v1) / sizeof(*v1)},
    {v2, 1},
    {v3, 1},
    {v4, 1},
    {v5, 1},
    {v6, sizeof(v6) / sizeof(*v6)},
    {v7, 1},
};
#define LATEST ((int)(sizeof(migrations) / sizeof(*migrations)))

int sql_schema_latest(void)
{
    return LATEST;
}

typedef struct vctx {
    sqldb *db;
    int v;
} vctx;
static int read_version(void *ctx, sqlrow *r)
{
    vctx *c = ctx;
    c->v = atoi(sqlrow_text(r, 0));
    return 0;
}

int sql_schema_migrate(sqldb *db, const char *where, char *err, size_t errlen)
{
    char e2[512];
    const char *meta = db->dialect == SQLDB_MYSQL
                           ? "CREATE TABLE IF NOT EXISTS lookout_meta (name VARCHAR(64) NOT NULL PRIMARY KEY,"
                             " value VARCHAR(255) NOT NULL) ENGINE=InnoDB"
                           : "CREATE TABLE IF NOT EXISTS lookout_meta (name VARCHAR(64) NOT NULL PRIMARY KEY,"
                             " value VARCHAR(255) NOT NULL)";
    if (sqldb_exec(db, meta, NULL, 0, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "%s: cannot create the schema: %s", where, e2);
        return -1;
    }
    vctx vc = {db, 0};
    if (sqldb_query(db, "SELECT value FROM lookout_meta WHERE name = 'schema_version'", NULL, 0, read_version,
                    &vc, e2, sizeof(e2)) < 0) {
        snprintf(err, errlen, "%s: cannot read the schema version: %s", where, e2);
        return -1;
    }
    if (vc.v > LATEST) {
        snprintf(err, errlen,
                 "%s: the database has schema version %d, written by a newer lookout; this lookout knows "
                 "versions up to %d: upgrade lookout (or point it at another database)",
                 where, vc.v, LATEST);
        return -1;
    }
    /* MySQL commits DDL implicitly, so its migrations are not atomic; every statement of a migration is
     * idempotent-by-failure only on SQLite and PostgreSQL. */
    const char *begin = db->dialect == SQLDB_SQLITE ? "BEGIN IMMEDIATE" : db->dialect == SQLDB_MYSQL
                                                                            ? "START TRANSACTION" : "BEGIN";
    for (int v = vc.v + 1; v <= LATEST; v++) {
        if (sqldb_exec(db, begin, NULL, 0, e2, sizeof(e2)) != 0)
            goto fail;
        if (run_list(db, migrations[v - 1].stmts, migrations[v - 1].n, e2, sizeof(e2)) != 0) {
            char e3[128];
            sqldb_exec(db, "ROLLBACK", NULL, 0, e3, sizeof(e3));
            goto fail;
        }
        char vs[16];
        snprintf(vs, sizeof(vs), "%d", v);
        sqlv p[] = {sqlv_text(vs)};
        int rc = sqldb_exec(db, "DELETE FROM lookout_meta WHERE name = 'schema_version'", NULL, 0, e2, sizeof(e2));
        if (rc == 0)
            rc = sqldb_exec(db, "INSERT INTO lookout_meta (name, value) VALUES ('schema_version', ?)", p, 1, e2,
                            sizeof(e2));
        if (rc == 0)
            rc = sqldb_exec(db, "COMMIT", NULL, 0, e2, sizeof(e2));
        if (rc != 0) {
            char e3[128];
            sqldb_exec(db, "ROLLBACK", NULL, 0, e3, sizeof(e3));
            goto fail;
        }
        if (v == 4 && vc.v > 0 && db->dialect == SQLDB_SQLITE)
            sqlite_compact(db);
        continue;
    fail:
        snprintf(err, errlen, "%s: schema migration to version %d failed: %s", where, v, e2);
        return -1;
    }
    return 0;
}

typedef struct meta_ctx {
    char value[80];
    bool found;
} meta_ctx;
static int read_meta(void *ctx, sqlrow *r)
{
    meta_ctx *c = ctx;
    snprintf(c->value, sizeof c->value, "%s", sqlrow_text(r, 0));
    c->found = true;
    return 0;
}

int sql_schema_scrub(sqldb *db, const scrub_rules *rules, const char *where, char *err, size_t errlen)
{
    char want[65], e2[512];
    scrub_rules_fingerprint(rules, want);
    meta_ctx have = {{0}, false};
    if (sqldb_query(db, "SELECT value FROM lookout_meta WHERE name = 'scrub_rules'", NULL, 0, read_meta, &have, e2,
                    sizeof e2) < 0) {
        snprintf(err, errlen, "%s: cannot read the scrubbing state: %s", where, e2);
        return -1;
    }
    if (have.found && strcmp(have.value, want) == 0)
        return 0;
    const char *begin = db->dialect == SQLDB_SQLITE ? "BEGIN IMMEDIATE" : db->dialect == SQLDB_MYSQL
                                                                            ? "START TRANSACTION" : "BEGIN";
    bool changed = false, on = !rules || scrub_rules_enabled(rules);
    sqlv p[] = {sqlv_text(want)};
    int rc = sqldb_exec(db, begin, NULL, 0, e2, sizeof e2);
    if (rc == 0 && on)
        rc = scrub_and_reindex(db, rules, &changed, e2, sizeof e2);
    if (rc == 0)
        rc = sqldb_exec(db, "DELETE FROM lookout_meta WHERE name = 'scrub_rules'", NULL, 0, e2, sizeof e2);
    if (rc == 0)
        rc = sqldb_exec(db, "INSERT INTO lookout_meta (name, value) VALUES ('scrub_rules', ?)", p, 1, e2, sizeof e2);
    if (rc == 0)
        rc = sqldb_exec(db, "COMMIT", NULL, 0, e2, sizeof e2);
    if (rc != 0) {
        char e3[128];
        sqldb_exec(db, "ROLLBACK", NULL, 0, e3, sizeof e3);
        snprintf(err, errlen, "%s: scrubbing the stored samples failed: %s", where, e2);
        return -1;
    }
    if (changed && db->dialect == SQLDB_SQLITE)
        sqlite_compact(db);
    if (changed || (have.found && on))
        log_info("store", changed ? "stored samples scrubbed with the current scrubbing rules"
                                  : "stored samples checked against the current scrubbing rules: nothing to mask",
                 "where", where);
    return 0;
}
