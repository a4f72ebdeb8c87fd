#!/usr/bin/env bash
# The store suite (tests/unit/store_suite.h) against real PostgreSQL and MariaDB servers, started
# privately for this run (tests/lib/dbservers.sh). The memory and SQLite runs of the same suite are
# ordinary unit tests (build/unit/test_store_memory, test_store_sqlite).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/dbservers.sh"
BUILD=${BUILD:-build}
cd "$ROOT"
make -s "$BUILD/dbtests/test_store_pg" "$BUILD/dbtests/test_store_mysql" >/dev/null || { not_ok "build dbtests"; exit 0; }

run_suite() { # NAME BINARY: one TAP line per criterion test
  local name=$1 bin=$2 out
  out=$("$bin" --jobs=1 --verbose 2>&1)
  grep -a -E '^\[(RUN|PASS|FAIL)\]|Synthesis' <<<"$out" | sed -n 's/^\[PASS\] \([^:]*::[^:]*\).*/ok - \1/p; s/^\[FAIL\] \([^:]*::[^:]*\).*/not ok - \1/p'
  grep -a -q 'Failing: 0 | Crashing: 0' <<<"$out" || { not_ok "$name suite clean"; grep -a -E '\[----\]|CRASH|FAIL' <<<"$out" | head -20 | sed 's/^/#   /'; }
}

if pg_start; then
  LOOKOUT_TEST_PG_DSN=$PG_DSN run_suite postgres "$BUILD/dbtests/test_store_pg"
else
  not_ok "postgres server started"
fi
if mysql_start; then
  LOOKOUT_TEST_MYSQL_DSN=$MYSQL_DSN LOOKOUT_TEST_MYSQL_HOST=$MYSQL_HOST LOOKOUT_TEST_MYSQL_PORT=$MYSQL_PORT \
    LOOKOUT_TEST_MYSQL_DB=$MYSQL_DB LOOKOUT_TEST_MYSQL_USER=$MYSQL_USER run_suite mysql "$BUILD/dbtests/test_store_mysql"
else
  not_ok "mariadb server started"
fi
