#!/usr/bin/env bash
# Throughput benchmark (docs/benchmarks.md §3, issue 14): the highest scrape rate ONE lookout core sustains
# on loopback, next to wrk's request rate against the same nginx with the same bodies (the physical limit).
#   nginx    one worker, pinned to CPU 0 (taskset), keep-alive, serving bench/fleet_payloads.py payloads
#            (~25 KB: 5 keys x 10 occurrences with stack traces and HTTP context). It serves both clients in
#            turn, never both at once.
#   wrk      pinned to CPU 1: -t1 -c64 for WRK_SECONDS on one static payload URL.
#   lookout  pinned to CPU 1, ALL its threads (scrape loop, ingest writer, HTTP server: `taskset -c 1` on
#            the process), default storage (SQLite), scraping TARGETS targets every INTERVAL: an offered
#            load above what one core does, so the core is saturated and what it handles is its limit.
#            Per run: warm-up until every target was scraped and the first fill is written, WARM more
#            seconds, then WINDOW seconds measured: bodies handled per second from lookout's own counter
#            lookout_ingest_bodies_total (result unchanged / merged), its CPU over the window (utime+stime
#            of all threads from /proc: ~100 % means the core was saturated; a lower figure says the
#            offered load or something else limited it), and nginx's CPU (near 100 % would mean nginx,
#            not lookout, was the limit).
# Churn without a mutator process competing for CPU: CHURN % of the targets scrape /c/<g>/<i>.json, which
# nginx answers with file v/<g>/<k>.json where k is $connection_requests, the k-th request on that
# keep-alive connection (lookout keeps one connection per target): payload of instance g after k changes
# (one key's total_count +1 and a new occurrence, as fleet_payloads.py's mutator does), so every scrape of a
# churning target differs from its last one and its counts never go down. The CHURN_GROUPS variant sequences are
# shared by the churning targets (target i uses group i mod CHURN_GROUPS); each target is still its own instance
# (lookout keys an instance by the URL it came from plus its target_uuid), but a new occurrence is stored
# once per group and step, later copies deduplicate. The other targets serve fixed files /t/<i>.json.
# Runs: 0 % churn (all static), then CHURN % (default 10), each a fresh lookout and an empty store.
# Env: TARGETS (6000), INTERVAL_MS (100), WINDOW (20), WARM (3), CHURN (10), CHURN_GROUPS (4), WRK_SECONDS (10),
#      THROUGHPUT_QUICK=1 (dry run with small numbers, for correctness on a loaded machine), LOOKOUT_BIN.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
if [ "${THROUGHPUT_QUICK:-0}" = 1 ]; then
  N=${TARGETS:-200}; IV=${INTERVAL_MS:-200}; WINDOW=${WINDOW:-5}; WARM=${WARM:-1}; WRK_S=${WRK_SECONDS:-2}
  GROUPS_=${CHURN_GROUPS:-2}
else
  N=${TARGETS:-6000}; IV=${INTERVAL_MS:-100}; WINDOW=${WINDOW:-20}; WARM=${WARM:-3}; WRK_S=${WRK_SECONDS:-10}
  GROUPS_=${CHURN_GROUPS:-4}
fi
CHURN=${CHURN:-10}
WARM_MAX=30 # bound of the first-fill wait, seconds
# variant files per group: one per scrape of a churning target, for the longest possible run and a margin
STEPS=$(( (WARM_MAX + WARM + WINDOW + 10) * 1000 / IV ))
command -v nginx >/dev/null || "$ROOT/scripts/deps.sh" nginx >&2
command -v wrk >/dev/null || "$ROOT/scripts/deps.sh" wrk >&2
command -v taskset >/dev/null || "$ROOT/scripts/deps.sh" util-linux >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -lt 2 ]; then echo "FAILED: needs 2 CPUs (nginx on one, the client on the other)"; exit 1; fi
nofile=$(ulimit -n)
# nginx's worker holds a connection per target plus its open_file_cache; lookout a connection per target
if [ $((2 * N + 1200)) -gt "$nofile" ]; then
  echo "FAILED: TARGETS=$N needs ~$((2 * N + 1200)) file descriptors in nginx's worker, the limit is $nofile"; exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-tput.XXXXXX")
chmod 755 "$TMP" # nginx's worker runs as an unprivileged user
LPID=
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
metric() { # metric URL REGEX: sum of the matching series' values
  curl -s "$1/metrics" | awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%.0f", s}'
}

echo "# generating $N static payloads and $GROUPS_ churning sequences of $STEPS steps"
python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N" || exit 1
python3 "$ROOT/bench/fleet_payloads.py" churn "$TMP/www" "$GROUPS_" "$STEPS" || exit 1

SPORT=$(port)
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
daemon on;
events { worker_connections $((N + 1000)); }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  # every static file stays cached (wrk's one URL as well as lookout's N); the churning files rotate
  open_file_cache max=$((N + 100)) inactive=60s;
  open_file_cache_valid 60s;
  default_type application/json;
  server {
    listen 127.0.0.1:$SPORT;
    root $TMP/www;
    location ~ ^/c/(?<grp>[0-9]+)/ { try_files /v/\$grp/\$connection_requests.json =404; }
  }
}
CONF
taskset -c 0 "$NGINX" -c "$TMP/nginx.conf" -p "$TMP" || { echo "FAILED: nginx did not start"; exit 1; }
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$SPORT/t/0.json" && break; sleep 0.1; done
NWPID=$(ps -o pid= --ppid "$(cat "$TMP/nginx.pid")" | head -1 | tr -d ' ')

# self-check: two fetches on one connection of a churning URL differ (counts up), of a static URL are equal
U=http://127.0.0.1:$SPORT
curl -fs -o "$TMP/c1" "$U/c/0/0.json" -o "$TMP/c2" "$U/c/0/0.json" || { echo "FAILED: churning URL not served"; exit 1; }
curl -fs -o "$TMP/s1" "$U/t/0.json" -o "$TMP/s2" "$U/t/0.json" || { echo "FAILED: static URL not served"; exit 1; }
if cmp -s "$TMP/c1" "$TMP/c2"; then echo "FAILED: consecutive fetches of a churning URL are identical"; exit 1; fi
if ! cmp -s "$TMP/s1" "$TMP/s2"; then echo "FAILED: consecutive fetches of a static URL differ"; exit 1; fi
python3 - "$TMP/c1" "$TMP/c2" <<'PY' || { echo "FAILED: churning step is not a count bump"; exit 1; }
import json,sys
a,b=(sum(e["total_count"] for e in json.load(open(f))["aggregated_errors"]) for f in sys.argv[1:])
sys.exit(0 if b==a+1 else 1)
PY
echo "self-check: a churning URL answers a different body (total count +1) on each request of a connection, a static URL the same body"

# wrk: one core of client against the same nginx, one static payload URL
echo "# wrk -t1 -c64 -d${WRK_S}s on CPU 1, nginx on CPU 0"
nw0=$(ticks "$NWPID")
wrk_out=$(taskset -c 1 wrk -t1 -c64 -d"${WRK_S}s" "$U/t/0.json" 2>&1)
nw1=$(ticks "$NWPID")
wrk_rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$wrk_out")
wrk_ng=$(awk -v a="$nw0" -v b="$nw1" -v hz="$hz" -v d="$WRK_S" 'BEGIN {printf "%.0f", (b-a)/hz/d*100}')
[ -n "$wrk_rate" ] || { echo "FAILED: wrk gave no rate: $wrk_out"; exit 1; }

python3 - "$N" "$SPORT" "$TMP" "$CHURN" "$GROUPS_" <<'PY'
import json,sys
n,port,d,churn,groups=int(sys.argv[1]),sys.argv[2],sys.argv[3],int(sys.argv[4]),int(sys.argv[5])
def path(i,ch):  # every (100/ch)-th target churns: spread over the target list
    return "/c/%d/%d.json"%(i%groups,i) if ch and (i*ch)%100<ch else "/t/%d.json"%i
for ch in (0,churn):
    json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":path(i,ch),"idx":str(i)}} for i in range(n)],
              open("%s/t%d.json"%(d,ch),"w"))
PY

results=()
for ch in 0 "$CHURN"; do
  nch=$(grep -o '"/c/' "$TMP/t$ch.json" | wc -l)
  echo "# run: $ch % churn ($nch of $N targets changing on every scrape), $N targets every ${IV}ms offered = $((N * 1000 / IV)) scrapes/s"
  LPORT=$(port); LURL=http://127.0.0.1:$LPORT
  rm -rf "$TMP/ld"; mkdir -p "$TMP/ld"
  cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: ${IV}ms, scrape_timeout: ${IV}ms}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/t$ch.json']}]
YML
  taskset -c 1 "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT \
    --storage.path="$TMP/ld" >"$TMP/lookout-$ch.log" 2>&1 &
  LPID=$!
  filled=0
  for _ in $(seq "$WARM_MAX"); do
    sleep 1
    kill -0 "$LPID" 2>/dev/null || break
    b=$(metric "$LURL" '^lookout_ingest_bodies_total')
    q=$(metric "$LURL" '^lookout_ingest_queue_bytes')
    [ "${b:-0}" -ge $((2 * N)) ] && [ "${q:-1}" -lt 1000000 ] && { filled=1; break; }
  done
  kill -0 "$LPID" 2>/dev/null || { echo "FAILED: lookout exited: $(tail -3 "$TMP/lookout-$ch.log")"; exit 1; }
  [ "$filled" = 1 ] || echo "warning: first fill not done within ${WARM_MAX}s (bodies $b, queue $q bytes)"
  sleep "$WARM"
  snap() { # bodies unchanged, merged, invalid, scrapes, failures, fast-path requests, dropped
    curl -s "$LURL/metrics" | awk '
      /^lookout_ingest_bodies_total.*result="unchanged"/ {u += $NF}
      /^lookout_ingest_bodies_total.*result="merged"/ {m += $NF}
      /^lookout_ingest_bodies_total.*result="invalid"/ {i += $NF}
      /^lookout_scrapes_total/ {s += $NF}
      /^lookout_scrape_failures_total/ {f += $NF}
      /^lookout_scrape_fast_path_requests_total/ {p += $NF}
      /^lookout_ingest_dropped_bodies_total/ {d += $NF}
      END {printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f", u, m, i, s, f, p, d}'
  }
  read -r u0 m0 i0 s0 f0 p0 d0 <<<"$(snap)"
  lt0=$(ticks "$LPID"); nt0=$(ticks "$NWPID"); t0=$(date +%s.%N)
  sleep "$WINDOW"
  lt1=$(ticks "$LPID"); nt1=$(ticks "$NWPID"); t1=$(date +%s.%N)
  read -r u1 m1 i1 s1 f1 p1 d1 <<<"$(snap)"
  q1=$(metric "$LURL" '^lookout_ingest_queue_bytes')
  threads=$(ls "/proc/$LPID/task" | wc -l)
  aff=$(taskset -pc "$LPID" | awk '{print $NF}')
  kill "$LPID"; wait "$LPID" 2>/dev/null; LPID=
  results+=("$ch|$nch|$u0 $m0 $i0 $s0 $f0 $p0 $d0|$u1 $m1 $i1 $s1 $f1 $p1 $d1|$lt0|$lt1|$nt0|$nt1|$t0|$t1|$q1|$threads|$aff")
done

echo
echo "throughput on one core each: $N targets every ${IV}ms offered ($((N * 1000 / IV)) scrapes/s), ${WINDOW}s measured per run"
echo "  nginx: 1 worker on CPU 0; wrk: -t1 -c64 on CPU 1, one static ~25 KB payload URL, ${WRK_S}s;"
echo "  lookout: all threads on CPU 1, SQLite store, a connection per target; bodies/s from lookout_ingest_bodies_total"
printf '%-7s | %11s %9s %9s | %8s %8s | %6s %7s %7s | %9s\n' "churn" "unchanged/s" "changed/s" "total/s" "l CPU%" "ngx CPU%" \
  "fail/s" "dropped" "queueKB" "l / wrk"
for r in "${results[@]}"; do
  IFS='|' read -r ch nch a b lt0 lt1 nt0 nt1 t0 t1 q1 th aff <<<"$r"
  read -r u0 m0 i0 s0 f0 p0 d0 <<<"$a"; read -r u1 m1 i1 s1 f1 p1 d1 <<<"$b"
  dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
  row=$(awk -v dt="$dt" -v hz="$hz" -v u=$((u1 - u0)) -v m=$((m1 - m0)) -v f=$((f1 - f0)) -v d=$((d1 - d0)) \
    -v lt=$((lt1 - lt0)) -v nt=$((nt1 - nt0)) -v w="$wrk_rate" -v q="${q1:-0}" -v ch="$ch" 'BEGIN {
      printf "%-7s | %11.0f %9.0f %9.0f | %8.1f %8.1f | %6.0f %7d %7.0f | %8.0f %%",
        ch " %", u/dt, m/dt, (u+m)/dt, lt/hz/dt*100, nt/hz/dt*100, f/dt, d, q/1024, w ? 100*(u+m)/dt/w : 0 }')
  echo "$row"
  invalid=$((i1 - i0)); fast=$((p1 - p0)); scr=$((s1 - s0))
  echo "          lookout: $th threads, affinity CPU $aff; $scr scrapes attempted, $fast over the fast path, $invalid invalid bodies, changed share $(awk -v u=$((u1 - u0)) -v m=$((m1 - m0)) 'BEGIN {printf "%.1f", u+m ? 100*m/(u+m) : 0}') % ($nch churning targets)"
  [ "$invalid" -gt 0 ] && echo "FAILED: $invalid invalid bodies in the $ch % run"
  [ "$aff" = 1 ] || echo "FAILED: lookout was not pinned to CPU 1 (affinity $aff)"
  awk -v lt=$((lt1 - lt0)) -v hz="$hz" -v dt="$dt" 'BEGIN {exit !(lt/hz/dt < 0.9)}' &&
    echo "          NOT SATURATED: lookout used under 90 % of its core, so this rate is the offered load (or nginx), not lookout's limit"
done
echo "wrk: $wrk_rate requests/s (nginx worker ${wrk_ng} % of CPU 0 meanwhile)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the figures need a quiet machine)"
ne=$(grep -c . "$TMP/nginx-error.log" 2>/dev/null || true)
if [ "${ne:-0}" -gt 0 ]; then
  echo "FAILED: nginx logged ${ne} errors (first: $(head -1 "$TMP/nginx-error.log"))"
fi
exit 0
