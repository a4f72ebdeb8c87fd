#!/usr/bin/env bash
# Instructions per scrape on lookout's scrape path (docs/benchmarks.md §3, "instructions per scrape"):
# bench/scrape_path_bench.c under callgrind, against nginx serving bench/fleet_payloads.py's ~25 KB
# Periskop payloads, with every body unchanged and with every body changed (a new variant swapped in after
# each scrape). Only the window after every target's first scrape is instrumented (see the .c file). Instruction counts are deterministic enough on a loaded machine, unlike
# CPU time; they count user-space instructions of the whole process (scrape loop, curl, ingest writer,
# merge, SQLite), not the kernel's.
# Env: TARGETS (100), SCRAPES (scrapes per target in the measured window, 3), MODES ("unchanged changed"),
#      JOBS (the targets spread over this many jobs, 1),
#      VALGRIND_OPTS (extra callgrind options), KEEP_PROFILE (a path prefix: keep the callgrind files), BUILD,
#      CURL_ONLY=1 (every scrape through curl, as --scrape.curl-only; default: the fast path, http/h1client.c),
#      FLUSH_MS (the ingest writer's flush interval; default 1 s of wall time, which under callgrind is a few
#      dozen bodies: FLUSH_MS=600000 writes the window's changes in one flush, as a saturated writer does).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
N=${TARGETS:-100}; R=${SCRAPES:-3}
. "$ROOT/bench/lib/nginx.sh"
command -v valgrind >/dev/null || "$ROOT/scripts/deps.sh" valgrind >&2
make -C "$ROOT" -s "$BUILD/bench/scrape_path_bench" >&2 || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-spb.XXXXXX")
chmod 755 "$TMP"
trap '[ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
bench_nginx "$TMP" "$PORT" || exit 1
for mode in ${MODES:-unchanged changed}; do
  rm -rf "$TMP/www" "$TMP/store" "$TMP"/cg.*; mkdir -p "$TMP/store"
  python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N" >/dev/null
  [ "$mode" = changed ] && python3 "$ROOT/bench/fleet_payloads.py" variants "$TMP/www" "$N" $((R + 6))
  out=$(cd "$TMP" && nice valgrind --tool=callgrind --instr-atstart=no ${VALGRIND_OPTS:-} \
    --callgrind-out-file="$TMP/cg.out" \
    "$ROOT/$BUILD/bench/scrape_path_bench" "http://127.0.0.1:$PORT/t/" "$TMP/www" "$TMP/store" "$N" "$R" "$mode" 2>/dev/null)
  [ "${KEEP_PROFILE:-}" ] && cp "$TMP/cg.out" "${KEEP_PROFILE}.$mode"
  ir=$(awk '/^totals:/ {print $2; exit}' "$TMP/cg.out")
  sc=$(sed -n 's/^window: \([0-9]*\) scrapes.*/\1/p' <<<"$out")
  echo "$mode: $out: $ir instructions, $(( ir / (sc ? sc : 1) )) per scrape"
done
