#!/usr/bin/env bash
# Store benchmark per backend (bench/store_bench.c): write cycle with 1% / 0.1% of keys changing, API list
# p50/p99 with and without a search term, start-up load. SQLite at full scale (10,000 targets x 100 keys:
# 1,000,000 samples and counts, 100,000 errors); PostgreSQL and MariaDB on private servers at
# STORE_BENCH_SERVER_TARGETS (default 1,000) since their fill is round-trip bound.
. "$(dirname "$0")/../tests/lib/common.sh"
. "$(dirname "$0")/../tests/lib/dbservers.sh"
BUILD=${BUILD:-build}
cd "$ROOT"
make -s "$BUILD/bench/store_bench" >/dev/null
B=$BUILD/bench/store_bench
"$B" sqlite "$TMP/bench.db" "${STORE_BENCH_SQLITE_TARGETS:-10000}"
n=${STORE_BENCH_SERVER_TARGETS:-1000}
pg_start && "$B" postgres "$PG_DSN" "$n"
mysql_start && "$B" mysql "$MYSQL_DSN" "$n"
