#!/usr/bin/env bash
# lookout's resident memory on the fleet of bench/fleet_bench.sh, lookout alone (no Prometheus): TARGETS
# targets @INTERVAL from one nginx on loopback serving bench/fleet_payloads.py's ~25.8 KB Periskop
# payloads, CHANGE % of them rewritten per interval, default storage (SQLite) unless STORAGE=memory.
# Each CHANGE value is a fresh lookout and an empty store. Per run it prints:
#   peak   the highest VmRSS sampled (every second) from the start through the warm-up (every target
#          scraped once, the first fill written, one more interval): the first interval parses and merges
#          every body;
#   end    VmRSS at the end of DURATION seconds measured (what fleet_bench.sh reports), and the highest
#          sample in that window;
#   kinds  the end RSS by kind from /proc/PID/smaps (bench/smaps_breakdown.py: main heap, other malloc
#          arenas, thread stacks, other anonymous, store files, binary, libraries), in MiB;
#   malloc with MALLOC_STATS=1, glibc's malloc_stats() at the end (gdb attaches for a moment): system
#          bytes (obtained from the kernel) and in-use bytes over all arenas, and the number of arenas.
# Env: TARGETS (10000), INTERVAL (15s), DURATION (120), CHANGE ("0 10 100"), STORAGE, LOOKOUT_BIN,
#      MALLOC_STATS=1, KEEP_TMP=1, LOOKOUT_ARGS (extra flags). Light: a few % of one core at 10,000
#      targets. Stops everything it starts.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
N=${TARGETS:-10000}; INTERVAL=${INTERVAL:-15s}; DUR=${DURATION:-120}; CHANGES=${CHANGE:-0 10 100}
STORAGE=${STORAGE:-sqlite}
IV=${INTERVAL%s}
TO=$(( IV < 10 ? IV : 10 ))s
command -v nginx >/dev/null || "$ROOT/scripts/deps.sh" nginx >&2
if [ "${MALLOC_STATS:-0}" = 1 ]; then command -v gdb >/dev/null || "$ROOT/scripts/deps.sh" gdb >&2; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-fleetmem.XXXXXX")
chmod 755 "$TMP" # nginx workers run as an unprivileged user
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
metric() { curl -s "$1/metrics" | awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%.0f", s}'; }

echo "# generating $N payloads"
python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N"
SPORT=$(port)
# As in fleet_bench.sh: lookout keeps one connection per target, spread over two workers.
cat >"$TMP/nginx.conf" <<CONF
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
daemon on;
events { worker_connections 16000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  open_file_cache max=4000 inactive=60s;
  open_file_cache_valid 1s;
  default_type application/json;
  server { listen 127.0.0.1:$SPORT; root $TMP/www; }
}
CONF
"$NGINX" -c "$TMP/nginx.conf" -p "$TMP" || { echo "FAILED: nginx did not start"; exit 1; }
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$SPORT/t/0.json" && break; sleep 0.1; done
python3 - "$N" "$SPORT" "$TMP" <<'PY'
import json,sys
n,port,d=int(sys.argv[1]),sys.argv[2],sys.argv[3]
json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":"/t/%d.json"%i,"idx":str(i)}} for i in range(n)],
          open("%s/t.json"%d,"w"))
PY

results=()
for ch in $CHANGES; do
  python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N" >/dev/null # same start for every run
  LPORT=$(port); LURL=http://127.0.0.1:$LPORT
  rm -rf "$TMP/ld"; mkdir -p "$TMP/ld"
  cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: $TO}
storage: {type: $STORAGE}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/t.json']}]
YML
  # shellcheck disable=SC2086
  "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT --storage.path="$TMP/ld" \
    ${LOOKOUT_ARGS:-} >"$TMP/lookout-$ch.log" 2>&1 &
  LPID=$!; pids+=($LPID)
  peak=0; t0=$(date +%s)
  for _ in $(seq $((IV * 30))); do
    sleep 1
    r=$(rss_kib "$LPID"); [ "$r" -gt "$peak" ] && peak=$r
    s=$(metric "$LURL" '^lookout_ingest_bodies_total')
    b=$(metric "$LURL" '^lookout_store_backlog_changes')
    [ "${s:-0}" -ge "$N" ] && [ "${b:-1}" -eq 0 ] && break
  done
  for _ in $(seq "$IV"); do sleep 1; r=$(rss_kib "$LPID"); [ "$r" -gt "$peak" ] && peak=$r; done
  warm=$(( $(date +%s) - t0 ))
  python3 "$ROOT/bench/fleet_payloads.py" mutate "$TMP/www" "$N" "$ch" "$IV" "$DUR" >"$TMP/mutate-$ch.out" &
  MPID=$!; pids+=($MPID)
  wmax=0
  for _ in $(seq $((DUR / 5))); do sleep 5; r=$(rss_kib "$LPID"); [ "$r" -gt "$wmax" ] && wmax=$r; done
  end=$(rss_kib "$LPID")
  kinds=$(python3 "$ROOT/bench/smaps_breakdown.py" "$LPID" "$TMP/ld")
  thr=$(awk '/^Threads:/ {print $2}' "/proc/$LPID/status")
  bodies=$(metric "$LURL" '^lookout_ingest_bodies_total')
  mstat=
  if [ "${MALLOC_STATS:-0}" = 1 ]; then
    : >"$TMP/gdb.out"
    gdb -q -batch -p "$LPID" -ex 'call (void)malloc_stats()' >"$TMP/gdb.out" 2>&1
    sleep 0.5
    mstat=$(awk '/^Arena/ {n++} /^Total \(incl. mmap\):/ {t=1} t && /system bytes/ {sys=$NF} t && /in use bytes/ {use=$NF}
                 END {printf "malloc: %d arenas, system %.1f MiB, in use %.1f MiB", n, sys/1048576, use/1048576}' \
            "$TMP/lookout-$ch.log")
  fi
  kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null
  kill "$LPID"; wait "$LPID" 2>/dev/null
  k=$(echo "$kinds" | awk '{for (i = 1; i <= NF; i++) {split($i, a, "="); if (a[1] ~ /^n_/) printf "%s=%s ", a[1], a[2]; else printf "%s=%.1f ", a[1], a[2] / 1024}}')
  results+=("$ch % | warm-up ${warm}s peak $(mib "$peak") MiB | end $(mib "$end") MiB (window max $(mib "$wmax")) | $bodies bodies, $thr threads | kinds MiB: $k| $mstat")
done
printf '\nfleet memory: %s targets, interval %s, %ss measured per run, storage %s, lookout alone\n' "$N" "$INTERVAL" "$DUR" "$STORAGE"
for r in "${results[@]}"; do echo "$r"; done
ne=$(grep -c . "$TMP/nginx-error.log" 2>/dev/null || true)
[ "${ne:-0}" -gt 0 ] && echo "FAILED: nginx logged ${ne} errors (first: $(head -1 "$TMP/nginx-error.log"))"
exit 0
