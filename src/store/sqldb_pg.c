/* sqldb_pg: the PostgreSQL driver (libpq). Fails fast: connect_timeout=5 s and statement_timeout /
 * lock_timeout of 10 s are set at connect (a DSN may override them); a call on a connection that went
 * bad reconnects first (bounded by connect_timeout). Rows are streamed in single-row mode so the
 * start-up load of a large database does not hold the whole result in memory. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqldb.h"
#include "util/strbuf.h"

typedef struct pg_db {
    sqldb base;
    PGconn *c;
    char *dsn;
    int64_t changes;
    /* query budget: statement_timeout wanted / in force on this connection (the connect options set
     * 10 s; 0 = that default) */
    int64_t budget_ms, applied_ms;
} pg_db;

static const sqldb_ops pg_ops;

/* First line of a libpq message, without credentials (libpq never prints the password). */
static void pg_msg(const char *what, const char *m, char *err, size_t errlen)
{
    size_t n = strcspn(m, "\n");
    snprintf(err, errlen, "postgres: %s: %.*s", what, (int)n, m);
}

static PGconn *pg_connect(const char *dsn, char *err, size_t errlen)
{
    /* Earlier keywords lose to later ones, so values in the DSN (expanded from dbname) win. */
    const char *keys[] = {"connect_timeout", "options", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "-c statement_timeout=10000 -c lock_timeout=10000", "lookout", dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        pg_msg("cannot connect", c ? PQerrorMessage(c) : "out of memory", err, errlen);
        PQfinish(c);
        return NULL;
    }
    /* Quiet NOTICEs (e.g. "extension already exists") would go to stderr otherwise. */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static int pg_ensure(pg_db *d, char *err, size_t errlen)
{
    if (d->c && PQstatus(d->c) == CONNECTION_OK)
        return 0;
    if (d->c)
        PQfinish(d->c);
    d->c = pg_connect(d->dsn, err, errlen);
    d->applied_ms = 0; /* a new session: the connect options' statement_timeout */
    return d->c ? 0 : -1;
}

/* '?' -> $n outside quoted literals. */
static char *pg_sql(const char *sql)
{
    strbuf sb;
    strbuf_init(&sb);
    int n = 0;
    bool quoted = false;
    for (const char *p = sql; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (*p == '?' && !quoted)
            strbuf_printf(&sb, "$%d", ++n);
        else
            strbuf_putc(&sb, *p);
    }
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

static const char *pg_col_text(sqlrow *r, int col)
{
    return PQgetvalue(r->impl, 0, col);
}

static int64_t pg_col_int(sqlrow *r, int col)
{
    return strtoll(PQgetvalue(r->impl, 0, col), NULL, 10);
}

static bool pg_col_null(sqlrow *r, int col)
{
    return PQgetisnull(r->impl, 0, col);
}

static int pg_query_once(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx,
                         char *err, size_t errlen);

/* A statement outside a transaction that failed because the server went away (restart, failover) is
 * retried once on a fresh connection: after an outage the first read then succeeds. Inside a
 * transaction it is not: the transaction is gone and the caller must redo all of it. */
static int pg_query(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    pg_db *d = (pg_db *)db;
    bool idle = d->c && PQstatus(d->c) == CONNECTION_OK && PQtransactionStatus(d->c) == PQTRANS_IDLE;
    int rc = pg_query_once(db, sql, p, n, fn, ctx, err, errlen);
    if (rc < 0 && idle && d->c && PQstatus(d->c) != CONNECTION_OK && strncmp(sql, "BEGIN", 5) != 0 &&
        strcmp(sql, "COMMIT") != 0 && strcmp(sql, "ROLLBACK") != 0)
        rc = pg_query_once(db, sql, p, n, fn, ctx, err, errlen);
    return rc;
}

static int pg_query_once(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx,
                         char *err, size_t errlen)
{
    pg_db *d = (pg_db *)db;
    d->base.last_rejected = false;
    if (pg_ensure(d, err, errlen) != 0)
        return -1;
    if (d->budget_ms && d->budget_ms != d->applied_ms &&
        PQtransactionStatus(d->c) == PQTRANS_IDLE) { /* applied lazily, once per value and session */
        char set[64];
        snprintf(set, sizeof set, "SET statement_timeout = %lld", (long long)d->budget_ms);
        PGresult *r = PQexec(d->c, set);
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            d->applied_ms = d->budget_ms;
        PQclear(r);
    }
    char *q = pg_sql(sql);
    char nums[64][24];
    const char *vals[64];
    if (n > 64) {
        free(q);
        snprintf(err, errlen, "postgres: too many parameters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i].t == SQLV_INT) {
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p[i].i);
            vals[i] = nums[i];
        } else {
            vals[i] = p[i].t == SQLV_TEXT ? p[i].s : NULL;
        }
    }
    int ok = PQsendQueryParams(d->c, q, (int)n, NULL, vals, NULL, NULL, 0);
    free(q);
    if (!ok) {
        pg_msg("send", PQerrorMessage(d->c), err, errlen);
        d->base.last_rejected = false;
        return -1;
    }
    if (fn)
        PQsetSingleRowMode(d->c);
    int ret = 0;
    bool failed = false, timed_out = false;
    d->changes = 0;
    PGresult *res;
    while ((res = PQgetResult(d->c)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE) {
            if (ret == 0 && fn) {
                sqlrow row = {&pg_ops, res};
                ret = fn(ctx, &row);
            }
        } else if (st == PGRES_COMMAND_OK) {
            const char *t = PQcmdTuples(res);
            d->changes = t && *t ? strtoll(t, NULL, 10) : 0;
        } else if (st != PGRES_TUPLES_OK && !failed) {
            failed = true;
            /* Classes 22 (data exception), 23 (integrity) and 42 (syntax or access rule) fail the same way
             * every time; the rest (connection, serialization, resources, 57014 statement_timeout) may pass
             * on a retry. */
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            timed_out = state && strcmp(state, "57014") == 0; /* query_canceled: statement_timeout */
            d->base.last_rejected = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
                                              strncmp(state, "42", 2) == 0);
            pg_msg("query", PQresultErrorMessage(res), err, errlen);
        }
        PQclear(res);
    }
    if (failed)
        return timed_out ? SQLDB_TIMEOUT : -1;
    return ret;
}

static int pg_exec(sqldb *db, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen)
{
    return pg_query(db, sql, p, n, NULL, NULL, err, errlen);
}

static int64_t pg_changes(sqldb *db)
{
    return ((pg_db *)db)->changes;
}

static void pg_close(sqldb *db)
{
    pg_db *d = (pg_db *)db;
    if (d->c)
        PQfinish(d->c);
    free(d->dsn);
    free(d);
}

/* A budget of 0 keeps the one in force (the readers' connection then stays at the list budget, which
 * spares a round trip per query). */
static void pg_set_budget(sqldb *db, int64_t ms, int64_t steps)
{
    (void)steps;
    if (ms > 0)
        ((pg_db *)db)->budget_ms = ms;
}

static const sqldb_ops pg_ops = {
    .exec = pg_exec,
    .query = pg_query,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_null = pg_col_null,
    .changes = pg_changes,
    .close = pg_close,
    .set_budget = pg_set_budget,
};

sqldb *sqldb_pg_open(const char *dsn, char *err, size_t errlen)
{
    PGconn *c = pg_connect(dsn, err, errlen);
    if (!c)
        return NULL;
    pg_db *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->base.ops = &pg_ops;
    d->base.dialect = SQLDB_POSTGRES;
    d->c = c;
    d->dsn = strdup(dsn);
    return &d->base;
}
