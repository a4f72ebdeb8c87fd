/* sql_store: the SQL store backends (SQLite, PostgreSQL, MySQL/MariaDB): opening, writes and
 * retention. Design and concurrency rules: sql_store.h. Reads: sql_read.c. Schema: sql_schema.c.
 *
 * A write cycle (apply) is one transaction whose statements touch only the rows of the change set:
 * upserts computed by the database (no read-before-write). Cost: per changed key one aggregate upsert,
 * one series upsert, one row per sample added and per label set added; per evicted sample three deletes
 * (samples, causes, headers), on PostgreSQL and MariaDB shared by up to 16 evicted samples of one error
 * (delete_samples); per changed instance count one counts upsert, and per scrape with changed counts one
 * instance upsert unless this writer wrote that instance's row less than a minute before (inst_fresh); on
 * SQLite one statement per 32 changed keys for the rarely changing columns (sqlite_state_update). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "store/sql_store.h"
#include "util/keymap.h"
#include "util/strbuf.h"

#define DEFAULT_RETENTION_MS (14LL * 24 * 3600 * 1000)
#define MAINTAIN_EVERY_MS 60000
#define MAINTAIN_BATCH 2000
#define MAINTAIN_ROUNDS 10

int64_t sql_id2(const char *a, const char *b)
{
    uint64_t h = fnv1a64(FNV64_OFFSET, a, strlen(a) + 1);
    h = fnv1a64(h, b, strlen(b));
    return (int64_t)(h & 0x7fffffffffffffffULL);
}

const char *sql_begin(sqldb_dialect d)
{
    /* IMMEDIATE: take SQLite's write lock up front rather than fail to upgrade a read lock later. */
    return d == SQLDB_SQLITE ? "BEGIN IMMEDIATE" : d == SQLDB_MYSQL ? "START TRANSACTION" : "BEGIN";
}

/* ---- statements ---- */

typedef struct sql_text {
    const char *agg_upsert, *sample_insert, *cause_insert, *header_insert, *label_insert,
        *series_upsert, *instance_upsert, *count_upsert, *source_upsert, *series_expire, *instance_expire_counts,
        *instance_expire, *source_expire;
} sql_text;

/* Counts saturate here as in the merge engine (MERGE_COUNT_MAX): BIGINT is signed, and an overflowing
 * addition would be an error (PostgreSQL, MariaDB) or a float (SQLite). Both operands are never negative,
 * so MAX - b cannot overflow. */
#define SQL_COUNT_MAX "9223372036854775807"

#define AGG_COLS "INSERT INTO aggregates (id, job, akey, total, severity, created_at, last_seen) VALUES (?,?,?,?,?,?,?)"
#define SAMPLE_SQL                                                                                             \
    "INTO samples (agg_id, hash, ts, uuid, severity, class, message, stack, has_http, method, url, body, stext) " \
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define CAUSE_SQL "INTO sample_causes (agg_id, hash, depth, class, message, stack) VALUES (?,?,?,?,?,?)"
#define HEADER_SQL "INTO sample_headers (agg_id, hash, pos, name, value) VALUES (?,?,?,?,?)"
#define LABEL_SQL "INTO labels (agg_id, lhash, seq, name, value) VALUES (?,?,?,?,?)"

/* SQLite and PostgreSQL share ON CONFLICT; in both, unqualified names in DO UPDATE are the old row. */
static const sql_text text_std = {
    .agg_upsert = AGG_COLS
    " ON CONFLICT (id) DO UPDATE SET"
    " status = CASE WHEN aggregates.status = 1 AND excluded.total > aggregates.resolved_count - aggregates.total"
    " AND aggregates.total < " SQL_COUNT_MAX " THEN 2 ELSE aggregates.status END,"
    " total = CASE WHEN aggregates.total > " SQL_COUNT_MAX " - excluded.total THEN " SQL_COUNT_MAX
    " ELSE aggregates.total + excluded.total END,"
    " severity = excluded.severity,"
    " created_at = CASE WHEN aggregates.created_at = " SQL_TS_NONE " OR (excluded.created_at <> " SQL_TS_NONE
    " AND excluded.created_at < aggregates.created_at) THEN excluded.created_at ELSE aggregates.created_at END,"
    " last_seen = CASE WHEN excluded.last_seen > aggregates.last_seen THEN excluded.last_seen"
    " ELSE aggregates.last_seen END",
    .sample_insert = "INSERT " SAMPLE_SQL " ON CONFLICT DO NOTHING",
    .cause_insert = "INSERT " CAUSE_SQL " ON CONFLICT DO NOTHING",
    .header_insert = "INSERT " HEADER_SQL " ON CONFLICT DO NOTHING",
    .label_insert = "INSERT " LABEL_SQL " ON CONFLICT DO NOTHING",
    .series_upsert = "INSERT INTO series (agg_id, minute, delta) VALUES (?,?,?)"
                     " ON CONFLICT (agg_id, minute) DO UPDATE SET delta = CASE WHEN series.delta > " SQL_COUNT_MAX
                     " - excluded.delta THEN " SQL_COUNT_MAX " ELSE series.delta + excluded.delta END",
    .instance_upsert = "INSERT INTO instances (id, job, instance_id, last_seen) VALUES (?,?,?,?)"
                       " ON CONFLICT (id) DO UPDATE SET last_seen = CASE WHEN excluded.last_seen > instances.last_seen"
                       " THEN excluded.last_seen ELSE instances.last_seen END",
    .count_upsert = "INSERT INTO counts (inst_id, agg_id, count) VALUES (?,?,?)"
                    " ON CONFLICT (inst_id, agg_id) DO UPDATE SET count = excluded.count",
    .source_upsert = "INSERT INTO sources (id, job, url, body_hash, last_scrape, instance_id) VALUES (?,?,?,?,?,?)"
                     " ON CONFLICT (id) DO UPDATE SET body_hash = excluded.body_hash,"
                     " last_scrape = excluded.last_scrape, instance_id = excluded.instance_id",
    .series_expire = "DELETE FROM series WHERE (agg_id, minute) IN"
                     " (SELECT agg_id, minute FROM series WHERE minute < ? LIMIT 2000)",
    .instance_expire_counts = "DELETE FROM counts WHERE inst_id IN (SELECT id FROM instances WHERE last_seen < ?)",
    .instance_expire = "DELETE FROM instances WHERE last_seen < ?",
    .source_expire = "DELETE FROM sources WHERE last_scrape < ?",
};

/* MySQL evaluates ON DUPLICATE KEY assignments left to right with updated values: status before total. */
static const sql_text text_mysql = {
    .agg_upsert = AGG_COLS
    " ON DUPLICATE KEY UPDATE"
    " status = IF(status = 1 AND VALUES(total) > resolved_count - total AND total < " SQL_COUNT_MAX ", 2, status),"
    " total = IF(total > " SQL_COUNT_MAX " - VALUES(total), " SQL_COUNT_MAX ", total + VALUES(total)),"
    " severity = VALUES(severity),"
    " created_at = IF(created_at = " SQL_TS_NONE " OR (VALUES(created_at) <> " SQL_TS_NONE
    " AND VALUES(created_at) < created_at), VALUES(created_at), created_at),"
    " last_seen = GREATEST(last_seen, VALUES(last_seen))",
    .sample_insert = "INSERT IGNORE " SAMPLE_SQL,
    .cause_insert = "INSERT IGNORE " CAUSE_SQL,
    .header_insert = "INSERT IGNORE " HEADER_SQL,
    .label_insert = "INSERT IGNORE " LABEL_SQL,
    .series_upsert = "INSERT INTO series (agg_id, minute, delta) VALUES (?,?,?)"
                     " ON DUPLICATE KEY UPDATE delta = IF(delta > " SQL_COUNT_MAX " - VALUES(delta), " SQL_COUNT_MAX
                     ", delta + VALUES(delta))",
    .instance_upsert = "INSERT INTO instances (id, job, instance_id, last_seen) VALUES (?,?,?,?)"
                       " ON DUPLICATE KEY UPDATE last_seen = GREATEST(last_seen, VALUES(last_seen))",
    .count_upsert = "INSERT INTO counts (inst_id, agg_id, count) VALUES (?,?,?)"
                    " ON DUPLICATE KEY UPDATE count = VALUES(count)",
    .source_upsert = "INSERT INTO sources (id, job, url, body_hash, last_scrape, instance_id) VALUES (?,?,?,?,?,?)"
                     " ON DUPLICATE KEY UPDATE body_hash = VALUES(body_hash), last_scrape = VALUES(last_scrape),"
                     " instance_id = VALUES(instance_id)",
    .series_expire = "DELETE FROM series WHERE minute < ? LIMIT 2000",
    .instance_expire_counts = "DELETE counts FROM counts JOIN instances ON instances.id = counts.inst_id"
                              " WHERE instances.last_seen < ?",
    .instance_expire = "DELETE FROM instances WHERE last_seen < ?",
    .source_expire = "DELETE FROM sources WHERE last_scrape < ?",
};

/* SQLite rewrites the entries of every index that has a column named in an UPDATE's SET, changed or not.
 * Its upsert therefore names only total and last_seen, which change on every write; severity, status
 * (index agg_state, schema v7) and created_at (index agg_created), which almost never change, are set by
 * sqlite_state_update, whose rows match (and write) only an error where one of them really changes: a new
 * severity, a resolved error counted again (text_std's regression rule, on the counts before the upsert
 * adds), an earlier first occurrence. Measured in docs/benchmarks.md §5: fewer instructions per changed
 * error than before agg_state existed. PostgreSQL gives every index a new entry on any update that changes
 * an indexed column (last_seen always does) and InnoDB compares values before touching a secondary index,
 * so neither would gain from the second statement: they keep the single upsert. */
static const char *const sqlite_agg_upsert =
    AGG_COLS " ON CONFLICT (id) DO UPDATE SET"
    " total = CASE WHEN aggregates.total > " SQL_COUNT_MAX " - excluded.total THEN " SQL_COUNT_MAX
    " ELSE aggregates.total + excluded.total END,"
    " last_seen = CASE WHEN excluded.last_seen > aggregates.last_seen THEN excluded.last_seen"
    " ELSE aggregates.last_seen END";
/* Up to STATE_CHUNK changed errors per statement (a statement's fixed cost is most of a one-row
 * statement's): rows (id, severity, count increase, created_at). Runs before the upserts. A short last
 * chunk repeats its last row (UPDATE ... FROM updates a row once), so there is one statement text.
 * UPDATE ... FROM needs SQLite 3.33 or later (bookworm has 3.40; the upserts already need 3.24). */
#define STATE_CHUNK 32
#define SQLITE_REGRESSES "status = 1 AND v.column3 > resolved_count - total AND total < " SQL_COUNT_MAX
#define SQLITE_EARLIER "v.column4 <> " SQL_TS_NONE " AND (created_at = " SQL_TS_NONE " OR v.column4 < created_at)"
static char sqlite_state_sql[200 + STATE_CHUNK * 12 + 2 * sizeof(SQLITE_REGRESSES) + 2 * sizeof(SQLITE_EARLIER)];
static pthread_once_t sqlite_state_once = PTHREAD_ONCE_INIT;

static void sqlite_state_init(void)
{
    size_t off = (size_t)snprintf(sqlite_state_sql, sizeof sqlite_state_sql,
                                  "UPDATE aggregates SET severity = v.column2, status = CASE WHEN " SQLITE_REGRESSES
                                  " THEN 2 ELSE status END,"
                                  " created_at = CASE WHEN " SQLITE_EARLIER " THEN v.column4 ELSE created_at END"
                                  " FROM (VALUES ");
    for (int i = 0; i < STATE_CHUNK; i++)
        off += (size_t)snprintf(sqlite_state_sql + off, sizeof sqlite_state_sql - off, "%s(?,?,?,?)", i ? "," : "");
    snprintf(sqlite_state_sql + off, sizeof sqlite_state_sql - off,
             ") AS v WHERE aggregates.id = v.column1 AND (severity <> v.column2 OR (" SQLITE_REGRESSES ") OR ("
             SQLITE_EARLIER "))");
}

static uint64_t change_delta(const merge_change *c)
{
    uint64_t delta = 0;
    for (size_t i = 0; i < c->n_series; i++)
        delta = delta > MERGE_COUNT_MAX - c->series[i].delta ? MERGE_COUNT_MAX : delta + c->series[i].delta;
    return delta;
}

static int sqlite_state_update(sql_store *m, const merge_changeset *cs, char *err, size_t errlen)
{
    pthread_once(&sqlite_state_once, sqlite_state_init);
    sqlv p[STATE_CHUNK * 4];
    for (size_t i = 0; i < cs->n; i += STATE_CHUNK) {
        for (size_t k = 0; k < STATE_CHUNK; k++) {
            const merge_change *c = &cs->v[i + k < cs->n ? i + k : cs->n - 1];
            p[k * 4] = sqlv_int(sql_id2(c->job, c->key));
            p[k * 4 + 1] = sqlv_int(c->severity);
            p[k * 4 + 2] = sqlv_int((int64_t)change_delta(c));
            p[k * 4 + 3] = sqlv_int(c->created_at_ms);
        }
        if (sqldb_exec(m->w, sqlite_state_sql, p, STATE_CHUNK * 4, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static const sql_text *texts(sqldb_dialect d)
{
    return d == SQLDB_MYSQL ? &text_mysql : &text_std;
}

/* The search row of an aggregate (schema v2): id = aggregate id. */
static const char *search_upsert(sqldb_dialect d)
{
    switch (d) {
    case SQLDB_SQLITE: return "INSERT OR REPLACE INTO search (rowid, body) VALUES (?,?)";
    case SQLDB_POSTGRES: return "INSERT INTO search (id, body) VALUES (?,?) ON CONFLICT (id) DO UPDATE SET body = excluded.body";
    default: return "INSERT INTO search (id, body) VALUES (?,?) ON DUPLICATE KEY UPDATE body = VALUES(body)";
    }
}

static const char *search_body(sqldb_dialect d)
{
    return d == SQLDB_SQLITE ? "SELECT body FROM search WHERE rowid = ?" : "SELECT body FROM search WHERE id = ?";
}

/* ---- helpers ---- */

/* s lower-cased (ASCII, as tolower() in the C locale lookout runs in) and a line break: one append and an
 * in-place pass rather than a strbuf_putc per byte (every field of every new sample goes through here). */
static void put_lower(strbuf *sb, const char *s)
{
    size_t n = s ? strlen(s) : 0, at = sb->len;
    strbuf_append(sb, s ? s : "", n);
    for (char *p = sb->buf + at, *e = p + n; p < e; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + ('a' - 'A'));
    strbuf_putc(sb, '\n');
}

/* The searchable text of an occurrence (samples.stext), lower-cased (the database matches it
 * case-sensitively against a lower-cased pattern, which makes every dialect's LIKE/trigram match
 * case-insensitive alike). Not the uuid: unique per occurrence, it would defeat the per-error
 * deduplication of texts (and docs/api.md does not list it as searched). */
static char *search_text(const payload_occurrence *o)
{
    strbuf sb;
    strbuf_init(&sb);
    for (const payload_error *e = &o->error; e; e = e->cause) {
        put_lower(&sb, e->class_name);
        put_lower(&sb, e->message);
        for (size_t i = 0; i < e->n_stacktrace; i++)
            put_lower(&sb, e->stacktrace[i]);
    }
    if (o->http) {
        put_lower(&sb, o->http->method);
        put_lower(&sb, o->http->url);
        for (size_t i = 0; i < o->http->n_headers; i++) {
            put_lower(&sb, o->http->headers[i].name);
            put_lower(&sb, o->http->headers[i].value);
        }
        put_lower(&sb, o->http->body);
    }
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

static char *join_lines(char *const *v, size_t n)
{
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(&sb, '\n');
        strbuf_puts(&sb, v[i]);
    }
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    if (!r) {
        r = strdup("");
        if (!r)
            abort();
    }
    return r;
}

#define X(stmt, ...)                                                                                           \
    do {                                                                                                       \
        sqlv p_[] = {__VA_ARGS__};                                                                             \
        if (sqldb_exec(db, (stmt), p_, sizeof(p_) / sizeof(*p_), err, errlen) != 0)                            \
            return -1;                                                                                         \
    } while (0)

static int write_sample(sql_store *m, int64_t agg, const payload_occurrence *o, char *err, size_t errlen)
{
    sqldb *db = m->w;
    const sql_text *t = texts(m->dialect);
    int64_t h = sql_hash_to_db(o->dedup_hash);
    char *stack = join_lines(o->error.stacktrace, o->error.n_stacktrace);
    const payload_http *hp = o->http;
    char *stext = search_text(o);
    sqlv p[] = {sqlv_int(agg), sqlv_int(h), sqlv_int(o->timestamp_ms), sqlv_text(o->uuid ? o->uuid : ""),
                sqlv_int(o->severity), sqlv_text(o->error.class_name ? o->error.class_name : ""),
                sqlv_text(o->error.message ? o->error.message : ""), sqlv_text(stack), sqlv_int(hp != NULL),
                sqlv_text(hp && hp->method ? hp->method : ""), sqlv_text(hp && hp->url ? hp->url : ""),
                sqlv_text(hp && hp->body ? hp->body : ""), sqlv_text(stext)};
    int rc = sqldb_exec(db, t->sample_insert, p, 13, err, errlen);
    free(stack);
    free(stext);
    if (rc != 0)
        return -1;
    if (db->ops->changes(db) == 0)
        return 0; /* already there (another shard stored the same occurrence) */
    int depth = 1;
    for (const payload_error *e = o->error.cause; e; e = e->cause, depth++) {
        char *st = join_lines(e->stacktrace, e->n_stacktrace);
        sqlv pc[] = {sqlv_int(agg), sqlv_int(h), sqlv_int(depth), sqlv_text(e->class_name ? e->class_name : ""),
                     sqlv_text(e->message ? e->message : ""), sqlv_text(st)};
        rc = sqldb_exec(db, t->cause_insert, pc, 6, err, errlen);
        free(st);
        if (rc != 0)
            return -1;
    }
    for (size_t i = 0; hp && i < hp->n_headers; i++)
        X(t->header_insert, sqlv_int(agg), sqlv_int(h), sqlv_int((int64_t)i), sqlv_text(hp->headers[i].name),
          sqlv_text(hp->headers[i].value));
    return 0;
}

/* ---- the search row of an aggregate ---- */

/* The distinct lines of an aggregate's sample texts. Samples of one error share most of their lines (class,
 * message, stack frames, header names), so the row holds each line once instead of once per distinct
 * sample text: the full-text index costs in proportion to the row (FTS5 re-tokenizes all of it on every
 * rewrite), and with 100 samples per error that is the writer's biggest cost. Matching is unchanged: a
 * search term never spans a line break (every field ends with one, see put_lower). */
typedef struct text_set {
    strbuf *sb;
    keymap64 seen; /* FNV-1a 64 of each line kept */
} text_set;

static int text_row(void *ctx, sqlrow *r)
{
    text_set *ts = ctx;
    const char *t = sqlrow_text(r, 0);
    while (*t) {
        const char *nl = strchr(t, '\n');
        size_t len = nl ? (size_t)(nl - t) : strlen(t);
        uint64_t h = fnv1a64(FNV64_OFFSET, t, len);
        if (!keymap64_get(&ts->seen, h)) {
            keymap64_put(&ts->seen, h, (void *)1);
            strbuf_append(ts->sb, t, len);
            strbuf_putc(ts->sb, '\n');
        }
        t += len + (nl != NULL);
    }
    return 0;
}

static int same_body(void *ctx, sqlrow *r)
{
    const char *want = ((const char **)ctx)[0];
    if (strcmp(sqlrow_text(r, 0), want) == 0)
        ((const char **)ctx)[1] = "same";
    return 0;
}

/* Recomputes the search row of an aggregate from its current samples; writes it only when it changed
 * (the usual case in a steady state: a new occurrence of the same error has the same text). */
static int rebuild_search(sql_store *m, int64_t agg, const char *key, char *err, size_t errlen)
{
    sqldb *db = m->w;
    strbuf sb;
    strbuf_init(&sb);
    put_lower(&sb, key);
    text_set ts = {&sb, KEYMAP64_INIT};
    sqlv p[] = {sqlv_int(agg), sqlv_text(NULL)};
    int rc = sqldb_query(db, "SELECT stext FROM samples WHERE agg_id = ?", p, 1, text_row, &ts, err, errlen);
    keymap64_free(&ts.seen);
    const char *cmp[2] = {sb.buf ? sb.buf : "", NULL};
    if (rc == 0)
        rc = sqldb_query(db, search_body(m->dialect), p, 1, same_body, cmp, err, errlen);
    if (rc == 0 && !cmp[1]) {
        p[1] = sqlv_text(cmp[0]);
        rc = sqldb_exec(db, search_upsert(m->dialect), p, 2, err, errlen);
    }
    strbuf_free(&sb);
    return rc == 0 ? 0 : -1;
}

/* Evicted samples leave three tables (samples, their causes, their headers). On PostgreSQL and MariaDB
 * every statement is a round trip to the server, so the samples of one error go up to EVICT_CHUNK per
 * statement, "agg_id = ? AND hash IN (?,...)": a primary-key prefix and its next column, answered with
 * key lookups (PostgreSQL's index condition hash = ANY, InnoDB's range access on the primary key).
 * Chunks are 16, 4 and 1 hashes (the largest that fits what is left), so a short tail is never padded:
 * n evictions of one error take 3 * (n / 16 + at most 6) statements instead of 3 * n. SQLite keeps one
 * sample per statement: there a statement is a function call, not a round trip, and the IN list costs
 * more than it saves (it builds and sorts an ephemeral index of the list; measured with
 * bench/scrape_path_bench.sh, FLUSH_MS=600000, 303 evictions of 5 errors in one cycle: 6.9 M instructions
 * one per statement, 8.9 M in chunks of 16, 9.9 M as one "(agg_id = ? AND hash = ?) OR ..." list of
 * pairs across errors, which SQLite runs as a multi-index OR and a second pass over the rows found). */
#define EVICT_CHUNK 16
static const char *const evict_tables[3] = {"samples", "sample_causes", "sample_headers"};
static char evict_sql[3][EVICT_CHUNK + 1][80 + EVICT_CHUNK * 2];
static pthread_once_t evict_once = PTHREAD_ONCE_INIT;

static void evict_init(void)
{
    for (int t = 0; t < 3; t++)
        for (size_t k = 1; k <= EVICT_CHUNK; k++) {
            char *b = evict_sql[t][k];
            size_t cap = sizeof evict_sql[t][k];
            if (k == 1) {
                snprintf(b, cap, "DELETE FROM %s WHERE agg_id = ? AND hash = ?", evict_tables[t]);
                continue;
            }
            size_t off = (size_t)snprintf(b, cap, "DELETE FROM %s WHERE agg_id = ? AND hash IN (", evict_tables[t]);
            for (size_t i = 0; i < k; i++)
                off += (size_t)snprintf(b + off, cap - off, "%s?", i ? "," : "");
            snprintf(b + off, cap - off, ")");
        }
}

const char *sql_evict_sql(int table, size_t n)
{
    pthread_once(&evict_once, evict_init);
    return table >= 0 && table < 3 && n >= 1 && n <= EVICT_CHUNK ? evict_sql[table][n] : NULL;
}

size_t sql_evict_chunk(sqldb_dialect d, size_t left)
{
    return d == SQLDB_SQLITE || left < 4 ? 1 : left < EVICT_CHUNK ? 4 : EVICT_CHUNK;
}

/* The samples of one error with these hashes (as stored), with their causes and headers. */
static int delete_samples(sql_store *m, int64_t agg, const int64_t *hashes, size_t n, char *err, size_t errlen)
{
    sqlv p[1 + EVICT_CHUNK];
    p[0] = sqlv_int(agg);
    for (size_t i = 0; i < n;) {
        size_t len = sql_evict_chunk(m->dialect, n - i);
        for (size_t j = 0; j < len; j++)
            p[1 + j] = sqlv_int(hashes[i + j]);
        for (int t = 0; t < 3; t++)
            if (sqldb_exec(m->w, sql_evict_sql(t, len), p, 1 + len, err, errlen) != 0)
                return -1;
        i += len;
    }
    return 0;
}

static int delete_evicted(sql_store *m, int64_t agg, const merge_change *c, char *err, size_t errlen)
{
    if (!c->n_evicted)
        return 0;
    int64_t stack[EVICT_CHUNK], *h = c->n_evicted <= EVICT_CHUNK ? stack : malloc(c->n_evicted * sizeof *h);
    if (!h)
        abort();
    for (size_t i = 0; i < c->n_evicted; i++)
        h[i] = sql_hash_to_db(c->evicted[i]);
    int rc = delete_samples(m, agg, h, c->n_evicted, err, errlen);
    if (h != stack)
        free(h);
    return rc;
}

/* Retention of an error: the aggregate and everything it owns, except the per-instance counts, which stay
 * with a tombstone (schema v6) so that a restart does not bring back an error its instances still report
 * with nothing new. */
static int delete_aggregate(sql_store *m, const merge_deleted *d, char *err, size_t errlen)
{
    sqldb *db = m->w;
    int64_t agg = sql_id2(d->job, d->key);
    X("DELETE FROM samples WHERE agg_id = ?", sqlv_int(agg));
    X("DELETE FROM sample_causes WHERE agg_id = ?", sqlv_int(agg));
    X("DELETE FROM sample_headers WHERE agg_id = ?", sqlv_int(agg));
    X("DELETE FROM labels WHERE agg_id = ?", sqlv_int(agg));
    X("DELETE FROM series WHERE agg_id = ?", sqlv_int(agg));
    X(m->dialect == SQLDB_SQLITE ? "DELETE FROM search WHERE rowid = ?" : "DELETE FROM search WHERE id = ?",
      sqlv_int(agg));
    X("DELETE FROM aggregates WHERE id = ?", sqlv_int(agg));
    X(m->dialect == SQLDB_MYSQL ? "INSERT INTO tombstones (agg_id, job, akey, last_seen) VALUES (?,?,?,?)"
                                  " ON DUPLICATE KEY UPDATE last_seen = VALUES(last_seen)"
                                : "INSERT INTO tombstones (agg_id, job, akey, last_seen) VALUES (?,?,?,?)"
                                  " ON CONFLICT (agg_id) DO UPDATE SET last_seen = excluded.last_seen",
      sqlv_int(agg), sqlv_text(d->job), sqlv_text(d->key), sqlv_int(d->last_seen_ms));
    return 0;
}

static int write_change(sql_store *m, const merge_change *c, int64_t now_ms, char *err, size_t errlen)
{
    sqldb *db = m->w;
    const sql_text *t = texts(m->dialect);
    int64_t agg = sql_id2(c->job, c->key);
    uint64_t delta = change_delta(c);
    if (c->is_new) /* a new error, or one back from retention: no tombstone any more */
        X("DELETE FROM tombstones WHERE agg_id = ?", sqlv_int(agg));
    X(m->dialect == SQLDB_SQLITE ? sqlite_agg_upsert : t->agg_upsert, sqlv_int(agg), sqlv_text(c->job),
      sqlv_text(c->key), sqlv_int((int64_t)delta), sqlv_int(c->severity), sqlv_int(c->created_at_ms),
      sqlv_int(c->last_seen_ms));
    if (delete_evicted(m, agg, c, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < c->n_added; i++)
        if (write_sample(m, agg, c->added[i], err, errlen) != 0)
            return -1;
    /* the key itself is searchable, so a new aggregate gets its row even without samples */
    if ((c->is_new || c->n_added || c->n_evicted) && rebuild_search(m, agg, c->key, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < c->n_labels_added; i++) {
        const labelset *ls = &c->labels_added[i];
        int64_t lh = (int64_t)(labelset_hash(ls) & 0x7fffffffffffffffULL);
        int64_t seq = now_ms * 1000 + (int64_t)i; /* keeps the order sets were seen in */
        X(t->label_insert, sqlv_int(agg), sqlv_int(lh), sqlv_int(seq), sqlv_text(""), sqlv_text(""));
        for (size_t k = 0; k < ls->n; k++)
            X(t->label_insert, sqlv_int(agg), sqlv_int(lh), sqlv_int(seq), sqlv_text(ls->v[k].name),
              sqlv_text(ls->v[k].value));
    }
    for (size_t i = 0; i < c->n_series; i++)
        X(t->series_upsert, sqlv_int(agg), sqlv_int(c->series[i].minute), sqlv_int((int64_t)c->series[i].delta));
    return 0;
}

/* How far behind the truth an instance's stored last_seen may fall while its counts keep changing. The
 * instance upsert of a scrape with changed counts exists for two things: the row must exist (the counts
 * restore through it) and last_seen must move (retention expires an instance, with its counts, by it).
 * A scrape of an instance whose row this writer committed less than INST_SEEN_SLACK_MS (capped at a tenth
 * of the retention) before skips it: most scrapes with changed counts come from instances written moments
 * ago. save_state writes every instance's last_seen when the writer is idle; this bounds the lag when it is
 * not. A retention run that deletes instances forgets every row written (sql_maintain). */
#define INST_SEEN_SLACK_MS 60000

static bool inst_fresh(sql_store *m, int64_t inst, int64_t seen_ms)
{
    int64_t slack = m->o.retention_ms / 10 < INST_SEEN_SLACK_MS ? m->o.retention_ms / 10 : INST_SEEN_SLACK_MS;
    void *v = keymap64_get(&m->inst_seen, (uint64_t)inst);
    return v && seen_ms - (int64_t)(uintptr_t)v < slack;
}

static void inst_written(sql_store *m, int64_t inst, int64_t seen_ms)
{
    if (seen_ms <= 0) /* never remembered: the map's values are non-NULL pointers */
        return;
    if (m->n_inst_pending == m->cap_inst_pending) {
        m->cap_inst_pending = m->cap_inst_pending ? m->cap_inst_pending * 2 : 64;
        m->inst_pending = realloc(m->inst_pending, m->cap_inst_pending * sizeof *m->inst_pending);
        if (!m->inst_pending)
            abort();
    }
    m->inst_pending[m->n_inst_pending].id = inst;
    m->inst_pending[m->n_inst_pending++].seen = seen_ms;
}

static int write_counts(sql_store *m, const merge_changeset *cs, char *err, size_t errlen)
{
    sqldb *db = m->w;
    const sql_text *t = texts(m->dialect);
    int64_t prev_inst = -1, prev_seen = 0;
    for (size_t i = 0; i < cs->n_counts; i++) {
        const merge_count_change *cc = &cs->counts[i];
        if (!cc->key) /* cancelled: its aggregate expired */
            continue;
        int64_t inst = sql_id2(cc->job, cc->instance_id);
        /* one per scrape, not per key; none for an instance written moments ago */
        if ((inst != prev_inst || cc->seen_ms != prev_seen) && !inst_fresh(m, inst, cc->seen_ms)) {
            X(t->instance_upsert, sqlv_int(inst), sqlv_text(cc->job), sqlv_text(cc->instance_id),
              sqlv_int(cc->seen_ms));
            inst_written(m, inst, cc->seen_ms);
        }
        prev_inst = inst;
        prev_seen = cc->seen_ms;
        X(t->count_upsert, sqlv_int(inst), sqlv_int(sql_id2(cc->job, cc->key)), sqlv_int((int64_t)cc->count));
    }
    return 0;
}

static void rollback(sqldb *db)
{
    char e[128];
    sqldb_exec(db, "ROLLBACK", NULL, 0, e, sizeof(e));
}

static int sql_apply(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    if (!cs->n && !cs->n_counts && !cs->n_deleted)
        return 0;
    pthread_mutex_lock(&m->wmu);
    sqldb *db = m->w;
    int rc = sqldb_exec(db, sql_begin(m->dialect), NULL, 0, err, errlen);
    for (size_t i = 0; rc == 0 && i < cs->n_deleted; i++) /* deletions first: see merge_deleted */
        rc = delete_aggregate(m, &cs->deleted[i], err, errlen);
    if (rc == 0 && cs->n && m->dialect == SQLDB_SQLITE)
        rc = sqlite_state_update(m, cs, err, errlen);
    for (size_t i = 0; rc == 0 && i < cs->n; i++)
        rc = write_change(m, &cs->v[i], now_ms, err, errlen);
    if (rc == 0)
        rc = write_counts(m, cs, err, errlen);
    if (rc == 0)
        rc = sqldb_exec(db, "COMMIT", NULL, 0, err, errlen);
    bool rejected = rc != 0 && db->last_rejected;
    if (rc != 0)
        rollback(db);
    for (size_t i = 0; rc == 0 && i < m->n_inst_pending; i++) /* rolled back: never written */
        keymap64_put(&m->inst_seen, (uint64_t)m->inst_pending[i].id, (void *)(uintptr_t)m->inst_pending[i].seen);
    m->n_inst_pending = 0;
    pthread_mutex_unlock(&m->wmu);
    return rc == 0 ? 0 : rejected ? STORE_REJECTED : -1;
}

static int flag_row(void *ctx, sqlrow *r)
{
    (void)r;
    *(int *)ctx = 1;
    return 0;
}

static int sql_set_status(store *s, const char *job, const char *key, bool resolve, int64_t now_ms, char *err,
                          size_t errlen)
{
    sql_store *m = (sql_store *)s;
    pthread_mutex_lock(&m->wmu);
    sqlv p[] = {sqlv_int(now_ms), sqlv_int(sql_id2(job, key)), sqlv_text(job), sqlv_text(key)};
    int found = 0;
    int rc = sqldb_query(m->w, "SELECT 1 FROM aggregates WHERE id = ? AND job = ? AND akey = ?", p + 1, 3, flag_row,
                         &found, err, errlen);
    if (rc == 0 && !found) {
        snprintf(err, errlen, "error \"%.100s\" not found in job \"%.100s\"", key, job);
        rc = STORE_NOT_FOUND;
    } else if (rc == 0) {
        rc = resolve ? sqldb_exec(m->w, "UPDATE aggregates SET status = 1, resolved_count = total, resolved_at = ?"
                                        " WHERE id = ?", p, 2, err, errlen)
                     : sqldb_exec(m->w, "UPDATE aggregates SET status = 0 WHERE id = ?", p + 1, 1, err, errlen);
    }
    pthread_mutex_unlock(&m->wmu);
    return rc;
}

static int sql_save_state(store *s, const merge_state *st, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    const sql_text *t = texts(m->dialect);
    pthread_mutex_lock(&m->wmu);
    sqldb *db = m->w;
    int rc = sqldb_exec(db, sql_begin(m->dialect), NULL, 0, err, errlen);
    /* Counts travel with change sets (apply); here only liveness and body hashes, which may lag. */
    for (size_t i = 0; rc == 0 && i < st->n_instances; i++) {
        const merge_instance_state *is = &st->instances[i];
        sqlv p[] = {sqlv_int(sql_id2(is->job, is->instance_id)), sqlv_text(is->job), sqlv_text(is->instance_id),
                    sqlv_int(is->last_seen_ms)};
        rc = sqldb_exec(db, t->instance_upsert, p, 4, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < st->n_sources; i++) {
        const merge_source_state *ss = &st->sources[i];
        sqlv p[] = {sqlv_int(sql_id2(ss->job, ss->url)), sqlv_text(ss->job), sqlv_text(ss->url),
                    sqlv_int((int64_t)ss->body_hash), sqlv_int(ss->last_scrape_ms),
                    sqlv_text(ss->instance_id ? ss->instance_id : "")};
        rc = sqldb_exec(db, t->source_upsert, p, 6, err, errlen);
    }
    if (rc == 0)
        rc = sqldb_exec(db, "COMMIT", NULL, 0, err, errlen);
    if (rc != 0)
        rollback(db);
    pthread_mutex_unlock(&m->wmu);
    return rc == 0 ? 0 : -1;
}

/* ---- retention ---- */

typedef struct victims {
    int64_t v[MAINTAIN_BATCH][2];
    size_t n;
} victims;

static int collect_victim(void *ctx, sqlrow *r)
{
    victims *vs = ctx;
    vs->v[vs->n][0] = sqlrow_int(r, 0);
    vs->v[vs->n][1] = sqlrow_int(r, 1);
    vs->n++;
    return 0;
}

static int key_row(void *ctx, sqlrow *r)
{
    char **k = ctx;
    free(*k);
    *k = strdup(sqlrow_text(r, 0));
    if (!*k)
        abort();
    return 0;
}

static int cmp_victim(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* One bounded batch in its own transaction, so API writes (resolve) and the next cycle never wait long.
 * Returns rows handled, or -1. */
static int expire_samples(sql_store *m, int64_t cutoff, victims *vs, char *err, size_t errlen)
{
    vs->n = 0;
    sqlv p[] = {sqlv_int(cutoff)};
    if (sqldb_query(m->w, "SELECT agg_id, hash FROM samples WHERE ts > " SQL_TS_NONE " AND ts < ? LIMIT 2000", p, 1,
                    collect_victim, vs, err, errlen) < 0)
        return -1;
    if (!vs->n)
        return 0;
    qsort(vs->v, vs->n, sizeof(vs->v[0]), cmp_victim);
    int rc = sqldb_exec(m->w, sql_begin(m->dialect), NULL, 0, err, errlen);
    for (size_t i = 0, j; rc == 0 && i < vs->n; i = j) { /* one run per error (victims sorted by agg_id) */
        int64_t h[EVICT_CHUNK];
        size_t n = 0;
        for (j = i; j < vs->n && vs->v[j][0] == vs->v[i][0] && n < EVICT_CHUNK; j++)
            h[n++] = vs->v[j][1];
        rc = delete_samples(m, vs->v[i][0], h, n, err, errlen);
    }
    /* the search rows of the errors that lost samples (victims sorted by agg_id) */
    for (size_t i = 0; rc == 0 && i < vs->n; i++) {
        if (i && vs->v[i][0] == vs->v[i - 1][0])
            continue;
        char *key = NULL;
        sqlv p2[] = {sqlv_int(vs->v[i][0])};
        rc = sqldb_query(m->w, "SELECT akey FROM aggregates WHERE id = ?", p2, 1, key_row, &key, err, errlen);
        if (rc == 0 && key)
            rc = rebuild_search(m, vs->v[i][0], key, err, errlen);
        free(key);
    }
    if (rc == 0)
        rc = sqldb_exec(m->w, "COMMIT", NULL, 0, err, errlen);
    if (rc != 0) {
        rollback(m->w);
        return -1;
    }
    return (int)vs->n;
}

static int sql_maintain(store *s, int64_t now_ms, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    if (m->last_maintain_ms && now_ms - m->last_maintain_ms < MAINTAIN_EVERY_MS)
        return 0;
    m->last_maintain_ms = now_ms;
    const sql_text *t = texts(m->dialect);
    int64_t cutoff = now_ms - m->o.retention_ms;
    int64_t minute = cutoff >= 0 ? cutoff / 60000 : (cutoff - 59999) / 60000;
    victims *vs = malloc(sizeof(*vs));
    if (!vs)
        abort();
    int rc = 0;
    pthread_mutex_lock(&m->wmu);
    for (int round = 0; rc == 0 && round < MAINTAIN_ROUNDS; round++) {
        int n = expire_samples(m, cutoff, vs, err, errlen);
        if (n < 0)
            rc = -1;
        if (n < MAINTAIN_BATCH)
            break;
    }
    for (int round = 0; rc == 0 && round < MAINTAIN_ROUNDS; round++) {
        sqlv p[] = {sqlv_int(minute)};
        rc = sqldb_exec(m->w, t->series_expire, p, 1, err, errlen);
        if (rc != 0 || m->w->ops->changes(m->w) < MAINTAIN_BATCH)
            break;
    }
    if (rc == 0) {
        sqlv p[] = {sqlv_int(cutoff)};
        rc = sqldb_exec(m->w, sql_begin(m->dialect), NULL, 0, err, errlen);
        if (rc == 0)
            rc = sqldb_exec(m->w, t->instance_expire_counts, p, 1, err, errlen);
        if (rc == 0)
            rc = sqldb_exec(m->w, t->instance_expire, p, 1, err, errlen);
        if (rc == 0 && m->w->ops->changes(m->w) > 0) /* rows written may be gone: write them again */
        {
            keymap64_free(&m->inst_seen);
            m->inst_seen = (keymap64)KEYMAP64_INIT;
        }
        if (rc == 0)
            rc = sqldb_exec(m->w, t->source_expire, p, 1, err, errlen);
        if (rc == 0) /* a tombstone goes with the last instance that reported its error */
            rc = sqldb_exec(m->w, "DELETE FROM tombstones WHERE agg_id NOT IN (SELECT agg_id FROM counts)", NULL, 0,
                            err, errlen);
        if (rc == 0)
            rc = sqldb_exec(m->w, "COMMIT", NULL, 0, err, errlen);
        else
            rollback(m->w);
    }
    pthread_mutex_unlock(&m->wmu);
    free(vs);
    return rc == 0 ? 0 : -1;
}

/* ---- open / close ---- */

static void sql_close(store *s)
{
    sql_store *m = (sql_store *)s;
    if (!m)
        return;
    if (m->w)
        m->w->ops->close(m->w);
    if (m->r)
        m->r->ops->close(m->r);
    pthread_mutex_destroy(&m->wmu);
    pthread_mutex_destroy(&m->rmu);
    keymap64_free(&m->inst_seen);
    free(m->inst_pending);
    free(m->where);
    free(m->open_arg);
    free(m);
}

static int sql_rescrub(store *s, const struct scrub_rules *r, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    pthread_mutex_lock(&m->wmu);
    int rc = sql_schema_scrub(m->w, r, m->where, err, errlen);
    pthread_mutex_unlock(&m->wmu);
    return rc;
}

static const store_ops sql_ops = {
    .name = "sql",
    .apply = sql_apply,
    .list = sql_list,
    .get = sql_get,
    .set_status = sql_set_status,
    .jobs = sql_jobs,
    .save_state = sql_save_state,
    .load = sql_load,
    .maintain = sql_maintain,
    .close = sql_close,
    .buckets = sql_buckets,
    .rescrub = sql_rescrub,
    .keys = sql_keys,
};

typedef sqldb *(*opener)(const char *arg, char *err, size_t errlen);

static store *sql_open(sqldb_dialect d, opener open, const char *arg, const char *where, const store_options *opts,
                       char *err, size_t errlen)
{
    sql_store *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->base.ops = &sql_ops;
    m->dialect = d;
    m->where = strdup(where);
    m->open_arg = strdup(arg);
    if (opts)
        m->o = *opts;
    if (m->o.retention_ms <= 0)
        m->o.retention_ms = DEFAULT_RETENTION_MS;
    pthread_mutex_init(&m->wmu, NULL);
    pthread_mutex_init(&m->rmu, NULL);
    char e2[512];
    m->w = open(arg, e2, sizeof(e2));
    if (!m->w) {
        snprintf(err, errlen, "%s", e2);
        sql_close(&m->base);
        return NULL;
    }
    if (sql_schema_migrate(m->w, where, err, errlen) != 0 ||
        sql_schema_scrub(m->w, opts ? opts->scrub : NULL, where, err, errlen) != 0) {
        sql_close(&m->base);
        return NULL;
    }
    /* SQLite's page cache is per connection and grows up to cache_size (64 MiB, sqldb_sqlite.c) with the
     * pages a connection touches. The reader keeps it: the API's list and search queries on a large store
     * are what it is for. The writer touches a few pages per changed error and rewrites them: a cache of
     * SQLite's default size (2 MiB) holds the b-trees' upper levels, and the pages it misses come from the
     * OS page cache. At 10,000 targets (a 6 MB store) its cache was ~5 MiB of lookout's RSS
     * (bench/fleet_memory.sh: 75.3 -> 70.1 MiB at 10 % churn with both connections at 2 MiB). */
    if (d == SQLDB_SQLITE && sqldb_exec(m->w, "PRAGMA cache_size=-2048", NULL, 0, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s", e2);
        sql_close(&m->base);
        return NULL;
    }
    m->o.scrub = NULL; /* the caller's, valid only while opening */
    m->r = open(arg, e2, sizeof(e2));
    if (!m->r) {
        snprintf(err, errlen, "%s", e2);
        sql_close(&m->base);
        return NULL;
    }
    return &m->base;
}

store *store_sqlite_new(const char *path, const store_options *opts, char *err, size_t errlen)
{
    char where[300];
    snprintf(where, sizeof(where), "sqlite %.280s", path);
    return sql_open(SQLDB_SQLITE, sqldb_sqlite_open, path, where, opts, err, errlen);
}

store *store_postgres_new(const char *dsn, const store_options *opts, char *err, size_t errlen)
{
    return sql_open(SQLDB_POSTGRES, sqldb_pg_open, dsn, "postgres", opts, err, errlen);
}

store *store_mysql_new(const char *dsn, const store_options *opts, char *err, size_t errlen)
{
    return sql_open(SQLDB_MYSQL, sqldb_mysql_open, dsn, "mysql", opts, err, errlen);
}
