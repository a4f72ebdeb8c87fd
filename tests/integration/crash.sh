#!/usr/bin/env bash
# Crash and outage tests of the persistent stores, with build/dbtests/crash_writer standing in for the
# ingest writer (it scrapes 40 synthetic targets x 50 keys with growing counts, one transaction per cycle).
#  - crash: kill -9 the writer at random points 25 times; every restart checks that the stored totals
#    are exactly those of one whole cycle (no loss beyond the in-flight cycle, no double counting) and
#    that re-scraping adds 0; PRAGMA integrity_check is ok at the end.
#  - outage: PostgreSQL stopped for 30 s while the writer runs: scraping continues, the change set is
#    kept and retried with backoff, and the store catches up with every count.
# The same with the real lookout binary (kill -9 during ingestion, outage): crash_lookout.sh.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/dbservers.sh"
BUILD=${BUILD:-build}
cd "$ROOT"
make -s "$BUILD/dbtests/crash_writer" >/dev/null || { not_ok "build crash_writer"; exit 0; }
W=$BUILD/dbtests/crash_writer

db=$TMP/crash.db
bad=0 last=0
for i in $(seq 1 25); do
  out=$("$W" sqlite "$db" run 2>&1 & p=$!; sleep "0.$((RANDOM % 9 + 1))"; kill -9 $p 2>/dev/null; wait $p 2>/dev/null)
  v=$("$W" sqlite "$db" verify 2>&1) || { bad=1; echo "# kill $i: $v"; break; }
  c=${v#verified cycle }
  [ "$c" -ge "$last" ] || { bad=1; echo "# cycle went back from $last to $c"; }
  last=$c
done
check_eq "crash: 25 kill -9 restarts keep exact totals (no loss, no double count)" 0 "$bad"
check "crash: cycles progressed across restarts ($last)" test "$last" -gt 10
check_eq "crash: PRAGMA integrity_check" ok "$(sqlite3 "$db" 'PRAGMA integrity_check' 2>&1)"

if pg_start; then
  out=$TMP/outage.out
  "$W" postgres "$PG_DSN" run 45 >"$out" 2>&1 & wp=$!
  sleep 5
  pg_stop
  sleep 30
  kill -0 $wp 2>/dev/null && alive=yes || alive=no
  pg_restart
  wait $wp; rc=$?
  check_eq "outage: writer kept scraping while postgres was down" yes "$alive"
  check_eq "outage: store caught up with every count after postgres returned" 0 "$rc"
  grep -q "apply failed" "$out" && ok "outage: apply failed fast while down" || { not_ok "outage: apply failed fast while down"; sed 's/^/#   /' "$out" | tail; }
  sed "s/^/# /" "$out" | grep -E "cycles|MISMATCH|crash_writer:" | tail -5
else
  not_ok "outage: postgres server started"
fi
