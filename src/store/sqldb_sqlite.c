/* sqldb_sqlite: the SQLite driver. Prepared statements are cached by SQL text (direct-mapped), so the
 * per-change statements of a write cycle are compiled once. WAL mode with synchronous=NORMAL: a commit
 * survives a process crash (kill -9); a power loss may drop the last commits but never corrupts.
 * busy_timeout bounds the wait for another connection's lock (the reader and writer connections). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/sqldb.h"

#define CACHE 256
#define CACHE_WAYS 4

typedef struct sl_db {
    sqldb base;
    sqlite3 *h;
    char *path;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } cache[CACHE];
    /* query budget (sl_set_budget): checked by the progress handler every PROGRESS_OPS VM steps */
    int64_t budget_ms, budget_steps;
    int64_t deadline_ms, steps;
} sl_db;

#define PROGRESS_OPS 1000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-zero interrupts the running statement (SQLITE_INTERRUPT). */
static int sl_progress(void *ctx)
{
    sl_db *d = ctx;
    d->steps += PROGRESS_OPS;
    if (d->budget_steps && d->steps > d->budget_steps)
        return 1;
    return d->budget_ms && mono_ms() > d->deadline_ms;
}


/* Turns a SQLite failure into a message an operator can act on. */
static void sl_error(sl_db *d, int rc, const char *what, char *err, size_t errlen)
{
    int base = rc & 0xff;
    d->base.last_rejected = base == SQLITE_CONSTRAINT || base == SQLITE_TOOBIG || base == SQLITE_MISMATCH ||
                            base == SQLITE_RANGE || base == SQLITE_ERROR;
    if (base == SQLITE_FULL)
        snprintf(err, errlen, "sqlite %s: %s: disk full (free space on the volume of %s)", d->path, what,
                 d->path);
    else if (base == SQLITE_READONLY)
        snprintf(err, errlen, "sqlite %s: %s: database is read-only (check the permissions of the file and its "
                 "directory)", d->path, what);
    else if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
        snprintf(err, errlen, "sqlite %s: %s: database is locked by another process (timed out)", d->path, what);
    else if (base == SQLITE_CORRUPT || base == SQLITE_NOTADB)
        snprintf(err, errlen, "sqlite %s: %s: file is not a valid lookout database (%s)", d->path, what,
                 sqlite3_errmsg(d->h));
    else if (base == SQLITE_CANTOPEN)
        snprintf(err, errlen, "sqlite %s: %s: cannot open the database file (does the directory exist and is it "
                 "writable?)", d->path, what);
    else
        snprintf(err, errlen, "sqlite %s: %s: %s", d->path, what, sqlite3_errmsg(d->h));
}

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static const sqldb_ops sl_ops;

static sqlite3_stmt *sl_prepare(sl_db *d, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen)
{
    /* Up to CACHE_WAYS slots per statement: two statements of one write cycle that hash to the same
     * slot would otherwise evict each other and be re-prepared on every use. */
    uint32_t h = str_hash(sql), slot = h % CACHE;
    for (uint32_t w = 0; w < CACHE_WAYS; w++) {
        uint32_t k = (h + w) % CACHE;
        if (d->cache[k].sql && strcmp(d->cache[k].sql, sql) == 0) {
            slot = k;
            break;
        }
        if (!d->cache[k].sql && d->cache[slot].sql)
            slot = k; /* a free slot to fill on a miss */
    }
    sqlite3_stmt *st = NULL;
    if (d->cache[slot].sql && strcmp(d->cache[slot].sql, sql) == 0) {
        st = d->cache[slot].st;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        int rc = sqlite3_prepare_v2(d->h, sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
            sl_error(d, rc, "prepare", err, errlen);
            return NULL;
        }
        if (d->cache[slot].sql) {
            sqlite3_finalize(d->cache[slot].st);
            free(d->cache[slot].sql);
        }
        d->cache[slot].sql = strdup(sql);
        d->cache[slot].st = st;
        if (!d->cache[slot].sql)
            abort();
    }
    for (size_t i = 0; i < n; i++) {
        int rc = SQLITE_OK, k = (int)i + 1;
        switch (p[i].t) {
        case SQLV_INT: rc = sqlite3_bind_int64(st, k, p[i].i); break;
        case SQLV_TEXT: rc = sqlite3_bind_text(st, k, p[i].s, -1, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, k); break;
        }
        if (rc != SQLITE_OK) {
            sl_error(d, rc, "bind", err, errlen);
            return NULL;
        }
    }
    return st;
}

static int sl_query(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    sl_db *d = (sl_db *)db;
    sqlite3_stmt *st = sl_prepare(d, sql, p, n, err, errlen);
    if (!st)
        return -1;
    sqlrow row = {&sl_ops, st};
    int rc, ret = 0;
    d->steps = 0;
    if (d->budget_ms)
        d->deadline_ms = mono_ms() + d->budget_ms;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn && (ret = fn(ctx, &row)) != 0)
            break;
    }
    if (ret == 0 && (rc & 0xff) == SQLITE_INTERRUPT && (d->budget_ms || d->budget_steps)) {
        snprintf(err, errlen, "query timed out (over its budget of %lld ms%s)", (long long)d->budget_ms,
                 d->budget_steps ? " or its step bound" : "");
        ret = SQLDB_TIMEOUT;
    } else if (ret == 0 && rc != SQLITE_DONE) {
        sl_error(d, rc, "query", err, errlen);
        ret = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* bound text belongs to the caller */
    return ret;
}

static int sl_exec(sqldb *db, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen)
{
    sl_db *d = (sl_db *)db;
    if (!n && (strncmp(sql, "CREATE", 6) == 0 || strchr(sql, ';'))) { /* DDL: run unprepared */
        char *msg = NULL;
        int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            sl_error(d, rc, msg ? msg : "exec", err, errlen);
            sqlite3_free(msg);
            return -1;
        }
        return 0;
    }
    return sl_query(db, sql, p, n, NULL, NULL, err, errlen);
}

static int64_t sl_col_int(sqlrow *r, int col)
{
    return sqlite3_column_int64(r->impl, col);
}

static const char *sl_col_text(sqlrow *r, int col)
{
    const unsigned char *t = sqlite3_column_text(r->impl, col);
    return t ? (const char *)t : "";
}

static bool sl_col_null(sqlrow *r, int col)
{
    return sqlite3_column_type(r->impl, col) == SQLITE_NULL;
}

static int64_t sl_changes(sqldb *db)
{
    return sqlite3_changes(((sl_db *)db)->h);
}

static void sl_close(sqldb *db)
{
    sl_db *d = (sl_db *)db;
    for (int i = 0; i < CACHE; i++) {
        if (d->cache[i].sql) {
            sqlite3_finalize(d->cache[i].st);
            free(d->cache[i].sql);
        }
    }
    sqlite3_close(d->h);
    free(d->path);
    free(d);
}

static void sl_set_budget(sqldb *db, int64_t ms, int64_t steps)
{
    sl_db *d = (sl_db *)db;
    d->budget_ms = ms > 0 ? ms : 0;
    d->budget_steps = steps > 0 ? steps : 0;
    sqlite3_progress_handler(d->h, d->budget_ms || d->budget_steps ? PROGRESS_OPS : 0,
                             d->budget_ms || d->budget_steps ? sl_progress : NULL, d);
}

static const sqldb_ops sl_ops = {
    .exec = sl_exec,
    .query = sl_query,
    .col_int = sl_col_int,
    .col_text = sl_col_text,
    .col_null = sl_col_null,
    .changes = sl_changes,
    .close = sl_close,
    .set_budget = sl_set_budget,
};

sqldb *sqldb_sqlite_open(const char *path, char *err, size_t errlen)
{
    sl_db *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->base.ops = &sl_ops;
    d->base.dialect = SQLDB_SQLITE;
    d->path = strdup(path);
    int rc = sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sl_error(d, rc, "open", err, errlen);
        sl_close(&d->base);
        return NULL;
    }
    sqlite3_extended_result_codes(d->h, 1);
    sqlite3_busy_timeout(d->h, 5000);
    /* SQLite silently opens a write-protected file read-only, and a file already in WAL mode needs no
     * write for the pragmas below: without this check lookout would start and fail every write later. */
    if (sqlite3_db_readonly(d->h, "main") == 1) {
        sl_error(d, SQLITE_READONLY, "open", err, errlen);
        sl_close(&d->base);
        return NULL;
    }
    /* journal_mode=WAL needs a write: a read-only file fails here with a clear message. */
    static const char *const pragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                                          "PRAGMA foreign_keys=OFF", "PRAGMA temp_store=MEMORY",
                                          "PRAGMA cache_size=-65536"};
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(*pragmas); i++) {
        char *msg = NULL;
        rc = sqlite3_exec(d->h, pragmas[i], NULL, NULL, &msg);
        sqlite3_free(msg);
        if (rc != SQLITE_OK) {
            sl_error(d, rc, pragmas[i], err, errlen);
            sl_close(&d->base);
            return NULL;
        }
    }
    return &d->base;
}
