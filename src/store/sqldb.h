/* sqldb: the small driver layer under the SQL store (sql_store.c). One connection per sqldb; the SQL
 * store keeps two (writer, readers) behind mutexes. Statements use '?' placeholders whatever the
 * database; drivers translate ($1 for libpq, escaped literals for MariaDB). Every call fails fast:
 * drivers set connect and statement timeouts, and a call on a broken connection reconnects first, so a
 * database that is down costs one failed call, never a hang.
 *
 * Dialect differences the store must know about are described by sqldb_dialect. */
#ifndef LOOKOUT_STORE_SQLDB_H
#define LOOKOUT_STORE_SQLDB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sqldb_dialect { SQLDB_SQLITE, SQLDB_POSTGRES, SQLDB_MYSQL } sqldb_dialect;

typedef enum sqlv_type { SQLV_NULL = 0, SQLV_INT, SQLV_TEXT } sqlv_type;

/* A bound parameter. Text is not copied: valid for the duration of the call. */
typedef struct sqlv {
    sqlv_type t;
    int64_t i;
    const char *s; /* NUL-terminated */
} sqlv;

static inline sqlv sqlv_int(int64_t i)
{
    sqlv v = {SQLV_INT, i, NULL};
    return v;
}
static inline sqlv sqlv_text(const char *s)
{
    sqlv v = {s ? SQLV_TEXT : SQLV_NULL, 0, s};
    return v;
}

typedef struct sqldb sqldb;
struct sqldb_ops;
/* A result row as handed to a row callback: read it with sqlrow_int/sqlrow_text/sqlrow_null. */
typedef struct sqlrow {
    const struct sqldb_ops *ops;
    void *impl;
} sqlrow;

/* Called per result row; return non-zero to stop (the query then returns that value). */
typedef int (*sqldb_row_fn)(void *ctx, sqlrow *r);

typedef struct sqldb_ops {
    int (*exec)(sqldb *db, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen);
    int (*query)(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx, char *err,
                 size_t errlen);
    /* Row accessors (valid inside the callback). Text is "" for NULL; ints 0 for NULL. */
    int64_t (*col_int)(sqlrow *r, int col);
    const char *(*col_text)(sqlrow *r, int col);
    bool (*col_null)(sqlrow *r, int col);
    /* Rows changed by the last exec. */
    int64_t (*changes)(sqldb *db);
    void (*close)(sqldb *db);
    /* Optional: bounds every later query of this connection to ms milliseconds and (SQLite) steps
     * virtual-machine steps (0: no bound); a query over budget returns SQLDB_TIMEOUT. */
    void (*set_budget)(sqldb *db, int64_t ms, int64_t steps);
} sqldb_ops;

/* query/exec: the statement was interrupted by its budget (sqldb_set_budget) or the server's
 * statement timeout; err says so. */
#define SQLDB_TIMEOUT (-2)

struct sqldb {
    const sqldb_ops *ops;
    sqldb_dialect dialect;
    /* Set by the driver on every failed call: true when the database refused the statement or its data
     * (a constraint, a value out of range, a malformed string: failing again the same way if retried),
     * false when the failure is transient (connection, lock, timeout, disk full). */
    bool last_rejected;
};

/* Opens a connection; NULL with err on failure. */
sqldb *sqldb_sqlite_open(const char *path, char *err, size_t errlen);
sqldb *sqldb_pg_open(const char *dsn, char *err, size_t errlen);
sqldb *sqldb_mysql_open(const char *dsn, char *err, size_t errlen);

static inline void sqldb_set_budget(sqldb *db, int64_t ms, int64_t steps)
{
    if (db->ops->set_budget)
        db->ops->set_budget(db, ms, steps);
}

static inline int64_t sqlrow_int(sqlrow *r, int col)
{
    return r->ops->col_int(r, col);
}
static inline const char *sqlrow_text(sqlrow *r, int col)
{
    return r->ops->col_text(r, col);
}
static inline bool sqlrow_null(sqlrow *r, int col)
{
    return r->ops->col_null(r, col);
}

/* Fault injection, a test hook (tests/unit/test_store_faults.c; sqldb_fault.c): while after > 0, every
 * sqldb_exec/sqldb_query of this thread whose statement contains match (NULL: any statement) counts it
 * down, and the call that brings it to 0 fails without reaching the database: it returns -1 with err
 * "injected fault" and sets last_rejected to rejected. calls counts the matching calls seen, failed the
 * faults fired. Thread-local, so a test's plan never hits another thread's calls. Never set by lookout. */
typedef struct sqldb_fault_plan {
    long after;
    const char *match;
    bool rejected;
    long calls, failed;
} sqldb_fault_plan;
extern _Thread_local sqldb_fault_plan sqldb_fault;
/* true when this call is the one to fail (err and last_rejected set) */
bool sqldb_fault_fires(sqldb *db, const char *sql, char *err, size_t errlen);

/* Statement tracing, a test hook (the store suite's plan tests; sqldb_fault.c): when set, every
 * sqldb_query of this thread calls it first with the statement and its parameters; the hook may run its
 * own statements on db through db->ops (EXPLAIN of the same text). Never set by lookout. */
typedef void (*sqldb_trace_fn)(void *ctx, sqldb *db, const char *sql, const sqlv *p, size_t n);
extern _Thread_local sqldb_trace_fn sqldb_trace;
extern _Thread_local void *sqldb_trace_ctx;

static inline int sqldb_exec(sqldb *db, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen)
{
    if (sqldb_fault.after > 0 && sqldb_fault_fires(db, sql, err, errlen))
        return -1;
    return db->ops->exec(db, sql, p, n, err, errlen);
}
static inline int sqldb_query(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx,
                              char *err, size_t errlen)
{
    if (sqldb_fault.after > 0 && sqldb_fault_fires(db, sql, err, errlen))
        return -1;
    if (sqldb_trace)
        sqldb_trace(sqldb_trace_ctx, db, sql, p, n);
    return db->ops->query(db, sql, p, n, fn, ctx, err, errlen);
}

#endif
