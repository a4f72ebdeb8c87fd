/* sqldb_mysql: the MySQL/MariaDB driver (libmariadb). Fails fast: 5 s connect timeout, 10 s read and
 * write timeouts; after a connection-level error the next call reconnects. Parameters are substituted
 * client-side as escaped literals (mysql_real_escape_string on the live connection, so the charset is
 * right); results are streamed with mysql_use_result.
 *
 * DSN: mysql://user:password@host:port/database[?socket=/path/to/socket] */
#include <errmsg.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqldb.h"
#include "util/strbuf.h"

typedef struct my_db {
    sqldb base;
    MYSQL *c;
    char *user, *pass, *host, *db, *socket;
    unsigned port;
    bool broken;
    int64_t changes;
    int64_t budget_ms, applied_ms; /* MariaDB max_statement_time wanted / in force (0: none) */
    bool no_budget;                /* the server refused it (not MariaDB): the read timeout bounds queries */
} my_db;

static const sqldb_ops my_ops;

static char *dup_n(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (!r)
        abort();
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* Decodes %XX in place (passwords with special characters). */
static void pct_decode(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = 0;
}

static int parse_dsn(my_db *d, const char *dsn, char *err, size_t errlen)
{
    const char *p = dsn;
    if (strncmp(p, "mysql://", 8) == 0)
        p += 8;
    else if (strncmp(p, "mariadb://", 10) == 0)
        p += 10;
    else {
        snprintf(err, errlen, "mysql: dsn must look like mysql://user:password@host:port/database");
        return -1;
    }
    const char *at = strrchr(p, '@');
    const char *slash = strchr(at ? at : p, '/');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        d->user = dup_n(p, (size_t)((colon ? colon : at) - p));
        d->pass = colon ? dup_n(colon + 1, (size_t)(at - colon - 1)) : NULL;
        p = at + 1;
    }
    const char *hend = slash ? slash : p + strlen(p);
    const char *pc = memchr(p, ':', (size_t)(hend - p));
    d->host = dup_n(p, (size_t)((pc ? pc : hend) - p));
    if (pc)
        d->port = (unsigned)atoi(pc + 1);
    if (slash) {
        const char *q = strchr(slash + 1, '?');
        d->db = dup_n(slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1));
        if (q && strncmp(q + 1, "socket=", 7) == 0)
            d->socket = strdup(q + 8);
    }
    if (!d->db || !d->db[0]) {
        snprintf(err, errlen, "mysql: dsn has no database name (mysql://user:password@host:port/database)");
        return -1;
    }
    if (d->user)
        pct_decode(d->user);
    if (d->pass)
        pct_decode(d->pass);
    return 0;
}

static int my_connect(my_db *d, char *err, size_t errlen)
{
    if (d->c)
        mysql_close(d->c);
    d->applied_ms = 0; /* a new session */
    d->c = mysql_init(NULL);
    if (!d->c)
        abort();
    unsigned int ct = 5, rt = 10, wt = 10;
    mysql_optionsv(d->c, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(d->c, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_optionsv(d->c, MYSQL_OPT_WRITE_TIMEOUT, &wt);
    mysql_optionsv(d->c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(d->c, d->host && d->host[0] ? d->host : NULL, d->user, d->pass, d->db, d->port,
                            d->socket, 0)) {
        snprintf(err, errlen, "mysql: cannot connect: %s", mysql_error(d->c));
        mysql_close(d->c);
        d->c = NULL;
        return -1;
    }
    mysql_query(d->c, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES'");
    mysql_query(d->c, "SET SESSION innodb_lock_wait_timeout = 10");
    d->broken = false;
    return 0;
}

static bool conn_error(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
           e == CR_SERVER_LOST_EXTENDED || (e >= 2000 && e < 2100);
}

/* Builds the statement with literals. NO_BACKSLASH_ESCAPES is set, so only quotes need doubling, and
 * mysql_real_escape_string honours the mode. */
static char *my_sql(my_db *d, const char *sql, const sqlv *p, size_t n)
{
    strbuf sb;
    strbuf_init(&sb);
    size_t k = 0;
    bool quoted = false;
    for (const char *s = sql; *s; s++) {
        if (*s == '\'')
            quoted = !quoted;
        if (*s != '?' || quoted || k >= n) {
            strbuf_putc(&sb, *s);
            continue;
        }
        const sqlv *v = &p[k++];
        if (v->t == SQLV_INT) {
            strbuf_printf(&sb, "%lld", (long long)v->i);
        } else if (v->t == SQLV_TEXT) {
            size_t len = strlen(v->s);
            char *esc = malloc(2 * len + 1);
            if (!esc)
                abort();
            unsigned long m = mysql_real_escape_string(d->c, esc, v->s, (unsigned long)len);
            strbuf_putc(&sb, '\'');
            strbuf_append(&sb, esc, m);
            strbuf_putc(&sb, '\'');
            free(esc);
        } else {
            strbuf_puts(&sb, "NULL");
        }
    }
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

static const char *my_col_text(sqlrow *r, int col)
{
    MYSQL_ROW row = r->impl;
    return row[col] ? row[col] : "";
}

static int64_t my_col_int(sqlrow *r, int col)
{
    MYSQL_ROW row = r->impl;
    return row[col] ? strtoll(row[col], NULL, 10) : 0;
}

static bool my_col_null(sqlrow *r, int col)
{
    MYSQL_ROW row = r->impl;
    return row[col] == NULL;
}

static int my_query(sqldb *db, const char *sql, const sqlv *p, size_t n, sqldb_row_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    my_db *d = (my_db *)db;
    d->base.last_rejected = false;
    if ((!d->c || d->broken) && my_connect(d, err, errlen) != 0)
        return -1;
    if (d->budget_ms && d->budget_ms != d->applied_ms) { /* once per value and session; MariaDB only */
        char set[80];
        snprintf(set, sizeof set, "SET SESSION max_statement_time = %.3f", (double)d->budget_ms / 1000.0);
        if (mysql_query(d->c, set) == 0) {
            d->applied_ms = d->budget_ms;
        } else {
            d->no_budget = true;
            d->budget_ms = 0;
        }
    }
    char *q = my_sql(d, sql, p, n);
    int rc = mysql_real_query(d->c, q, (unsigned long)strlen(q));
    free(q);
    if (rc != 0) {
        unsigned e = mysql_errno(d->c);
        snprintf(err, errlen, "mysql: %s", mysql_error(d->c));
        if (conn_error(e))
            d->broken = true;
        /* Lock wait timeout, deadlock, too many connections, shutdown, killed, statement timeout (a read's
         * budget): may pass on a retry. */
        d->base.last_rejected = !conn_error(e) && e != 1205 && e != 1213 && e != 1040 && e != 1053 && e != 1927 &&
                                e != 1969;
        return e == 1969 /* ER_STATEMENT_TIMEOUT */ ? SQLDB_TIMEOUT : -1;
    }
    d->changes = (int64_t)mysql_affected_rows(d->c);
    MYSQL_RES *res = mysql_use_result(d->c);
    if (!res) {
        if (mysql_field_count(d->c) == 0)
            return 0;
        snprintf(err, errlen, "mysql: %s", mysql_error(d->c));
        d->broken = conn_error(mysql_errno(d->c));
        return -1;
    }
    int ret = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (ret == 0 && fn) {
            sqlrow r = {&my_ops, row};
            ret = fn(ctx, &r);
        }
    }
    if (mysql_errno(d->c)) {
        unsigned e = mysql_errno(d->c);
        snprintf(err, errlen, "mysql: %s", mysql_error(d->c));
        d->broken = conn_error(e);
        ret = e == 1969 /* ER_STATEMENT_TIMEOUT */ ? SQLDB_TIMEOUT : -1;
    }
    mysql_free_result(res);
    return ret;
}

static int my_exec(sqldb *db, const char *sql, const sqlv *p, size_t n, char *err, size_t errlen)
{
    return my_query(db, sql, p, n, NULL, NULL, err, errlen);
}

static int64_t my_changes(sqldb *db)
{
    return ((my_db *)db)->changes;
}

static void my_close(sqldb *db)
{
    my_db *d = (my_db *)db;
    if (d->c)
        mysql_close(d->c);
    free(d->user);
    free(d->pass);
    free(d->host);
    free(d->db);
    free(d->socket);
    free(d);
}

/* As PostgreSQL's: 0 keeps the budget in force. */
static void my_set_budget(sqldb *db, int64_t ms, int64_t steps)
{
    (void)steps;
    my_db *d = (my_db *)db;
    if (ms > 0 && !d->no_budget)
        d->budget_ms = ms;
}

static const sqldb_ops my_ops = {
    .exec = my_exec,
    .query = my_query,
    .col_int = my_col_int,
    .col_text = my_col_text,
    .col_null = my_col_null,
    .changes = my_changes,
    .close = my_close,
    .set_budget = my_set_budget,
};

sqldb *sqldb_mysql_open(const char *dsn, char *err, size_t errlen)
{
    my_db *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->base.ops = &my_ops;
    d->base.dialect = SQLDB_MYSQL;
    if (parse_dsn(d, dsn, err, errlen) != 0 || my_connect(d, err, errlen) != 0) {
        my_close(&d->base);
        return NULL;
    }
    return &d->base;
}
