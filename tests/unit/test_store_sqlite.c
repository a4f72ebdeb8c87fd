/* The store suite (store_suite.h) against the SQLite backend, plus SQLite-specific checks (schema
 * version guard, read-only file). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static char dbpath[256];

static store *suite_open(const store_options *o, bool fresh)
{
    char e[512];
    if (fresh || !dbpath[0]) {
        char dir[] = "/tmp/lookout-sqlite-XXXXXX";
        if (!mkdtemp(dir))
            abort();
        snprintf(dbpath, sizeof(dbpath), "%s/lookout.db", dir);
    }
    store *s = store_sqlite_new(dbpath, o, e, sizeof(e));
    if (!s) {
        fprintf(stderr, "open %s: %s\n", dbpath, e);
        abort();
    }
    return s;
}

#define SUITE sqlite
#define SUITE_PERSISTENT 1
#define SUITE_SQLDB_OPEN(e, n) sqldb_sqlite_open(dbpath, e, n)
#include "store_suite.h"

#include <sqlite3.h>

Test(sqlite_only, newer_schema_refused)
{
    store *s = suite_open(NULL, true);
    store_close(s);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "UPDATE lookout_meta SET value = '99' WHERE name = 'schema_version'", 0, 0, 0),
                 SQLITE_OK);
    sqlite3_close(h);
    char e[512];
    cr_assert_null(store_sqlite_new(dbpath, NULL, e, sizeof(e)));
    cr_assert(strstr(e, "schema version 99") && strstr(e, "newer lookout"), "%s", e);
}

Test(sqlite_only, read_only_file_is_a_clear_error)
{
    if (geteuid() == 0) /* root ignores file permissions: use a read-only open instead */
        cr_skip_test("running as root");
    store *s = suite_open(NULL, true);
    store_close(s);
    chmod(dbpath, 0444);
    char e[512];
    s = store_sqlite_new(dbpath, NULL, e, sizeof(e));
    cr_assert_null(s);
    cr_assert(strstr(e, "read-only"), "%s", e);
}

Test(sqlite_only, not_a_database)
{
    char dir[] = "/tmp/lookout-sqlite-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof(dbpath), "%s/lookout.db", dir);
    FILE *f = fopen(dbpath, "w");
    fputs("this is not a database, just some text long enough to fill a header of one hundred bytes.....", f);
    fclose(f);
    char e[512];
    cr_assert_null(store_sqlite_new(dbpath, NULL, e, sizeof(e)));
    cr_assert(strstr(e, "not a valid lookout database"), "%s", e);
}
