/* The store suite (store_suite.h) against PostgreSQL. DSN from LOOKOUT_TEST_PG_DSN, set by
 * tests/integration/store_backends.sh; without it every test fails (never a silent pass). */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

static const char *dsn(void)
{
    const char *d = getenv("LOOKOUT_TEST_PG_DSN");
    if (!d || !d[0]) {
        fprintf(stderr, "LOOKOUT_TEST_PG_DSN is not set: run tests/integration/store_backends.sh\n");
        abort();
    }
    return d;
}

static void wipe(void)
{
    PGconn *c = PQconnectdb(dsn());
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        abort();
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PQclear(PQexec(c, "DROP TABLE IF EXISTS lookout_meta, aggregates, samples, sample_causes, sample_headers, labels,"
                      " series, instances, counts, sources, search, tombstones CASCADE"));
    PQfinish(c);
}

static store *suite_open(const store_options *o, bool fresh)
{
    if (fresh)
        wipe();
    char e[512];
    store *s = store_postgres_new(dsn(), o, e, sizeof(e));
    if (!s) {
        fprintf(stderr, "%s\n", e);
        abort();
    }
    return s;
}

#define SUITE postgres
#define SUITE_PERSISTENT 1
#define SUITE_SQLDB_OPEN(e, n) sqldb_pg_open(dsn(), e, n)
/* statements that make a search wait (query_budget_timeout_on_server), and the one that ends it */
#define SUITE_LOCK_SQL "BEGIN", "LOCK TABLE aggregates IN ACCESS EXCLUSIVE MODE"
#define SUITE_UNLOCK_SQL "ROLLBACK"
#include "store_suite.h"

Test(pg_only, down_server_fails_fast)
{
    char e[512];
    /* a closed port: refused at once; lookout reports and the writer retries later */
    store *s = store_postgres_new("host=127.0.0.1 port=1 dbname=x connect_timeout=2", NULL, e, sizeof(e));
    cr_assert_null(s);
    cr_assert(strstr(e, "cannot connect"), "%s", e);
}
