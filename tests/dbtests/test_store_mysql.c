/* The store suite (store_suite.h) against MySQL/MariaDB. DSN (mysql://user:pass@host:port/db) from
 * LOOKOUT_TEST_MYSQL_DSN, set by tests/integration/store_backends.sh; without it every test fails. */
#include <mysql.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

static const char *dsn(void)
{
    const char *d = getenv("LOOKOUT_TEST_MYSQL_DSN");
    if (!d || !d[0]) {
        fprintf(stderr, "LOOKOUT_TEST_MYSQL_DSN is not set: run tests/integration/store_backends.sh\n");
        abort();
    }
    return d;
}

static store *suite_open(const store_options *o, bool fresh)
{
    char e[512];
    if (fresh) {
        store *s = store_mysql_new(dsn(), o, e, sizeof(e));
        if (!s) {
            fprintf(stderr, "%s\n", e);
            abort();
        }
        store_close(s);
        /* wipe through a plain connection parsed the same simple way as the driver */
        const char *host = getenv("LOOKOUT_TEST_MYSQL_HOST"), *port = getenv("LOOKOUT_TEST_MYSQL_PORT"),
                   *db = getenv("LOOKOUT_TEST_MYSQL_DB"), *user = getenv("LOOKOUT_TEST_MYSQL_USER");
        MYSQL *c = mysql_init(NULL);
        if (!mysql_real_connect(c, host, user, NULL, db, (unsigned)atoi(port ? port : "0"), NULL, 0)) {
            fprintf(stderr, "wipe: %s\n", mysql_error(c));
            abort();
        }
        mysql_query(c, "DROP TABLE IF EXISTS lookout_meta, aggregates, samples, sample_causes, sample_headers,"
                       " labels, series, instances, counts, sources, search, tombstones");
        mysql_close(c);
    }
    store *s = store_mysql_new(dsn(), o, e, sizeof(e));
    if (!s) {
        fprintf(stderr, "%s\n", e);
        abort();
    }
    return s;
}

#define SUITE mysql
#define SUITE_PERSISTENT 1
#define SUITE_SQLDB_OPEN(e, n) sqldb_mysql_open(dsn(), e, n)
/* statements that make a search wait (query_budget_timeout_on_server), and the one that ends it */
#define SUITE_LOCK_SQL "LOCK TABLES aggregates WRITE"
#define SUITE_UNLOCK_SQL "UNLOCK TABLES"
#include "store_suite.h"
