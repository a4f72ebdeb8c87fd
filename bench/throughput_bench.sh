#!/usr/bin/env bash
# Throughput benchmark (docs/benchmarks.md §3, issue 14): the highest scrape rate ONE lookout core sustains
# on loopback, next to wrk's request rate against the same nginx with the same bodies (the physical limit).
#   nginx    one worker, pinned to CPU 0 (taskset), keep-alive, serving bench/fleet_payloads.py payloads
#            (~25 KB: 5 keys x 10 occurrences with stack traces and HTTP context). It serves both clients in
#            turn, never both at once.
#   wrk      pinned to CPU 1: -t1 -c64 for WRK_SECONDS on one static payload URL.
#   lookout  pinned to CPU 1, ALL its threads (scrape loop, ingest writer, HTTP server, SD: `taskset -c 1`
#            on the process), default storage (SQLite), every target scraped every INTERVAL_MS (timeout the
#            same). The offered load is raised step by step through file_sd until lookout's core is past
#            its knee: first N0 targets (well below one core); from that step's CPU per body, an estimate
#            C of one core's rate; then targets for 0.8 C, and + 5 % of C per step until the rate stops
#            growing or scrapes fail; after a failed step, the gap to the last sustained one is halved
#            until it is 5 % of C wide (at most MAX_STEPS steps, at most NMAX targets). Per step: wait
#            until the new targets were scraped and their first fill written, WARM more seconds, then
#            WINDOW seconds measured: bodies handled per second from lookout's own counter
#            lookout_ingest_bodies_total (result unchanged / merged), scrape failures, lookout's CPU
#            (utime+stime of all threads, from /proc) and nginx's. Sustained = the best step with at most
#            1 % of the scrapes failed. An offered load beyond one core cannot be the measurement itself:
#            a loop that cannot keep up has every target's scrape in flight, answers are read later than
#            the timeout (<= the interval) and the work is wasted; a timed-out request also closes its
#            connection, so the next scrape connects afresh (dearer), and the goodput collapses.
# Churn without a mutator process competing for CPU: CHURN % of the targets scrape /c/<g>/<i>.json, which
# nginx answers with file v/<g>/<k>.json where k is $connection_requests, the k-th request on that
# keep-alive connection (lookout keeps one connection per target): payload of instance g after k changes
# (one key's total_count +1 and a new occurrence, as fleet_payloads.py's mutator does), so every scrape of a
# churning target differs from its last one and its counts never go down. The CHURN_GROUPS variant
# sequences are shared by the churning targets (target i uses group i mod CHURN_GROUPS); each target is
# still its own instance (lookout keys an instance by the URL it came from plus its target_uuid), but a new
# occurrence is stored once per group and step, later copies deduplicate. The other targets scrape
# /s/<f>/<i>.json, answered with the fixed file t/<f>.json (f = i mod NSTATIC).
# Runs: 0 % churn (all static), then CHURN % (default 10), each a fresh lookout and an empty store.
# Env: INTERVAL_MS (150), N0 (1500), NMAX (9900), MAX_STEPS (8), WINDOW (5), WARM (2), CHURN (10),
#      CHURN_GROUPS (4), NSTATIC (64), WRK_SECONDS (10), LOOKOUT_BIN,
#      THROUGHPUT_QUICK=1 (dry run with small numbers, for correctness on a loaded machine).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
if [ "${THROUGHPUT_QUICK:-0}" = 1 ]; then
  IV=${INTERVAL_MS:-250}; N0=${N0:-100}; NMAX=${NMAX:-300}; MAX_STEPS=${MAX_STEPS:-3}; WINDOW=${WINDOW:-3}; WARM=${WARM:-1}
  WRK_S=${WRK_SECONDS:-2}; GROUPS_=${CHURN_GROUPS:-2}
else
  IV=${INTERVAL_MS:-150}; N0=${N0:-1500}; NMAX=${NMAX:-9900}; MAX_STEPS=${MAX_STEPS:-8}; WINDOW=${WINDOW:-5}; WARM=${WARM:-2}
  WRK_S=${WRK_SECONDS:-10}; GROUPS_=${CHURN_GROUPS:-4}
fi
CHURN=${CHURN:-10}
[ "$NMAX" -lt "$N0" ] && NMAX=$N0
NSTATIC=${NSTATIC:-64}
SETTLE_MAX=15 # bound of the wait for a step's new targets, seconds
# variant files per group: one per scrape of a churning target over a run whose steps settle in ~5 s
# (a longer run runs out of them: its churning scrapes get 404 and show as failures)
STEPS=$(( MAX_STEPS * (5 + WARM + WINDOW) * 1000 / IV + 100 ))
command -v nginx >/dev/null || "$ROOT/scripts/deps.sh" nginx >&2
command -v wrk >/dev/null || "$ROOT/scripts/deps.sh" wrk >&2
command -v taskset >/dev/null || "$ROOT/scripts/deps.sh" util-linux >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -lt 2 ]; then echo "FAILED: needs 2 CPUs (nginx on one, the client on the other)"; exit 1; fi
nofile=$(ulimit -n)
# lookout keeps at most RLIMIT_NOFILE / 2 idle keep-alive connections (src/scrape/scheduler.c): beyond
# that, targets connect afresh on every scrape, which is another workload; nginx's worker holds one per target
if [ "$NMAX" -gt $((nofile / 2 - 100)) ]; then
  echo "note: NMAX lowered from $NMAX to $((nofile / 2 - 100)) targets: lookout keeps at most half of ulimit -n ($nofile) connections"
  NMAX=$((nofile / 2 - 100))
  [ "$NMAX" -ge "$N0" ] || { echo "FAILED: N0=$N0 targets need ulimit -n >= $((2 * N0 + 200)), it is $nofile"; exit 1; }
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

echo "# generating $NSTATIC static payloads and $GROUPS_ churning sequences of $STEPS steps"
python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$NSTATIC" || exit 1
python3 "$ROOT/bench/fleet_payloads.py" churn "$TMP/www" "$GROUPS_" "$STEPS" || exit 1

SPORT=$(port)
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
daemon on;
events { worker_connections $((NMAX + 1000)); }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  # the static files stay cached (wrk's one URL as well as lookout's), the churning files rotate through
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  default_type application/json;
  server {
    listen 127.0.0.1:$SPORT;
    root $TMP/www;
    location ~ ^/s/(?<f>[0-9]+)/ { try_files /t/\$f.json =404; }
    location ~ ^/c/(?<grp>[0-9]+)/ { try_files /v/\$grp/\$connection_requests.json =404; }
  }
}
CONF
taskset -c 0 "$NGINX" -c "$TMP/nginx.conf" -p "$TMP" || { echo "FAILED: nginx did not start"; exit 1; }
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$SPORT/s/0/0.json" && break; sleep 0.1; done
NWPID=$(ps -o pid= --ppid "$(cat "$TMP/nginx.pid")" | head -1 | tr -d ' ')

# self-check: two fetches on one connection of a churning URL differ (counts up), of a static URL are equal
U=http://127.0.0.1:$SPORT
curl -fs -o "$TMP/c1" "$U/c/0/0.json" -o "$TMP/c2" "$U/c/0/0.json" || { echo "FAILED: churning URL not served"; exit 1; }
curl -fs -o "$TMP/s1" "$U/s/0/0.json" -o "$TMP/s2" "$U/s/0/0.json" || { echo "FAILED: static URL not served"; exit 1; }
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
wrk_out=$(taskset -c 1 wrk -t1 -c64 -d"${WRK_S}s" "$U/s/0/0.json" 2>&1)
nw1=$(ticks "$NWPID")
wrk_rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$wrk_out")
wrk_ng=$(awk -v a="$nw0" -v b="$nw1" -v hz="$hz" -v d="$WRK_S" 'BEGIN {printf "%.0f", (b-a)/hz/d*100}')
[ -n "$wrk_rate" ] || { echo "FAILED: wrk gave no rate: $wrk_out"; exit 1; }

targets_file() { # targets_file N CH OUT: the first N targets of the CH % run, written atomically (file_sd)
  python3 - "$1" "$2" "$SPORT" "$GROUPS_" "$NSTATIC" "$3" <<'PY'
import json,os,sys
n,ch,port,groups,nstatic,out=int(sys.argv[1]),int(sys.argv[2]),sys.argv[3],int(sys.argv[4]),int(sys.argv[5]),sys.argv[6]
def path(i):  # every (100/ch)-th target churns, spread over the list; each target its own URL
    return "/c/%d/%d.json"%(i%groups,i) if ch and (i*ch)%100<ch else "/s/%d/%d.json"%(i%nstatic,i)
json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":path(i),"idx":str(i)}} for i in range(n)],
          open(out+".tmp","w"))
os.rename(out+".tmp",out)
PY
}
snap() { # bodies unchanged, merged, invalid, scrapes, failures, fast-path requests, dropped, queue bytes
  curl -s "$LURL/metrics" | awk '
    /^lookout_ingest_bodies_total.*result="unchanged"/ {u += $NF}
    /^lookout_ingest_bodies_total.*result="merged"/ {m += $NF}
    /^lookout_ingest_bodies_total.*result="invalid"/ {i += $NF}
    /^lookout_scrapes_total/ {s += $NF}
    /^lookout_scrape_failures_total/ {f += $NF}
    /^lookout_scrape_fast_path_requests_total/ {p += $NF}
    /^lookout_ingest_dropped_bodies_total/ {d += $NF}
    /^lookout_ingest_queue_bytes/ {q += $NF}
    END {printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f", u, m, i, s, f, p, d, q}'
}
settle() { # until every target was scraped, the first fills merged (a target's first body is merged,
  # so at least as many merged bodies as targets) and the queue drained; bounded by SETTLE_MAX; then WARM s
  local want=$1 n m q ok=0
  for _ in $(seq "$SETTLE_MAX"); do
    sleep 1
    kill -0 "$LPID" 2>/dev/null || { echo "FAILED: lookout exited: $(tail -3 "$TMP/lookout-$ch.log")"; exit 1; }
    n=$(curl -s "$LURL/api/v1/targets?state=active" | python3 -c 'import json,sys; print(sum(t["health"]!="unknown" for t in json.load(sys.stdin)["data"]["activeTargets"]))')
    read -r _ m _ _ _ _ _ q <<<"$(snap)"
    [ "${n:-0}" -ge "$want" ] && [ "${m:-0}" -ge "$want" ] && [ "${q:-1}" -lt 1000000 ] && { ok=1; break; }
  done
  [ "$ok" = 1 ] || echo "          (not settled after ${SETTLE_MAX}s: $n of $want targets scraped, $m bodies merged, queue $q bytes)"
  sleep "$WARM"
}

summary=()
for ch in 0 "$CHURN"; do
  echo "# run: $ch % churn, ${IV}ms interval and timeout, first $N0 targets (offered $((N0 * 1000 / IV)) scrapes/s), at most $NMAX"
  printf '  %-7s %7s | %11s %9s %9s | %6s %8s | %7s %7s %8s | %8s\n' targets offered unchanged/s changed/s total/s "l CPU%" "ngx CPU%" fail/s dropped "queue MB" "l / wrk"
  LPORT=$(port); LURL=http://127.0.0.1:$LPORT
  rm -rf "$TMP/ld"; mkdir -p "$TMP/ld"
  targets_file "$N0" "$ch" "$TMP/targets.json"
  cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: ${IV}ms, scrape_timeout: ${IV}ms}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/targets.json']}]
YML
  taskset -c 1 "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT \
    --storage.path="$TMP/ld" >"$TMP/lookout-$ch.log" 2>&1 &
  LPID=$!
  best=; n=$N0; prev=0; step=0; dn=0; good=0; bad=0
  while [ "$step" -lt "$MAX_STEPS" ]; do
    step=$((step + 1))
    [ "$n" != "$N0" ] && targets_file "$n" "$ch" "$TMP/targets.json"
    settle "$n"
    read -r u0 m0 i0 s0 f0 p0 d0 q0 <<<"$(snap)"
    lt0=$(ticks "$LPID"); nt0=$(ticks "$NWPID"); t0=$(date +%s.%N)
    sleep "$WINDOW"
    lt1=$(ticks "$LPID"); nt1=$(ticks "$NWPID"); t1=$(date +%s.%N)
    read -r u1 m1 i1 s1 f1 p1 d1 q1 <<<"$(snap)"
    # fields: total/s cpu% fail-share% writer-behind unchanged/s changed/s | printed row
    row=$(awk -v n="$n" -v iv="$IV" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v u=$((u1 - u0)) -v m=$((m1 - m0)) \
      -v s=$((s1 - s0)) -v f=$((f1 - f0)) -v d=$((d1 - d0)) -v q=$((q1 - q0)) -v lt=$((lt1 - lt0)) -v nt=$((nt1 - nt0)) -v w="$wrk_rate" 'BEGIN {
        dt = t1 - t0
        printf "%.0f %.1f %.2f %d %.0f %.0f|  %-7d %7.0f | %11.0f %9.0f %9.0f | %6.1f %8.1f | %7.0f %7d %+8.1f | %7.0f %%",
          (u+m)/dt, lt/hz/dt*100, s ? 100*f/s : 0, (d > 0 || q > 5e6), u/dt, m/dt,
          n, n*1000/iv, u/dt, m/dt, (u+m)/dt, lt/hz/dt*100, nt/hz/dt*100, f/dt, d, q/1e6, w ? 100*(u+m)/dt/w : 0 }')
    IFS='|' read -r nums line <<<"$row"
    read -r tot cpu fshare behind ups mps <<<"$nums"
    echo "$line"
    [ $((i1 - i0)) -gt 0 ] && echo "FAILED: $((i1 - i0)) invalid bodies"
    [ $((f1 - f0)) -gt 0 ] && curl -s "$LURL/api/v1/targets?state=active" | python3 -c '
import collections,json,sys
c=collections.Counter(x.get("lastError","") for x in json.load(sys.stdin)["data"]["activeTargets"] if x["health"]=="down")
if c: e,k=c.most_common(1)[0]; print("          %d targets down at the end of the window, most often: %s"%(sum(c.values()),e))'
    # sustained: at most 1 % of the scrapes failed (a saturated loop answers too late and times out), and
    # the writer kept up (nothing dropped, its queue grew by at most 5 MB in the window)
    [ "$behind" = 1 ] && echo "          the ingest writer fell behind (bodies dropped or its queue grew): not sustained"
    if [ "$behind" = 0 ] && awk -v f="$fshare" 'BEGIN {exit !(f <= 1)}'; then
      good=$n
      if [ -z "$best" ] || awk -v a="$tot" -v b="$best" 'BEGIN {exit !(a > b)}'; then best=$tot; best_cpu=$cpu; best_split="$ups unchanged + $mps changed"; best_n=$n; fi
      if [ "$step" = 1 ]; then # estimate one core's rate C from this step's CPU per body
        read -r nn dn <<<"$(awk -v t="$tot" -v c="$cpu" -v iv="$IV" -v n="$n" 'BEGIN {
          C = c > 0 ? t / (c / 100) : 2 * t; a = int(0.8 * C * iv / 1000 / 100) * 100; d = int(0.05 * C * iv / 1000 / 10) * 10
          if (d < 10) d = 10; if (a <= n) a = n + d; print a, d }')"
        echo "  (one core estimated at ~$((nn * 1250 / IV)) bodies/s from this step's CPU: next at 80 % of that, then + 5 % per step)"
      elif [ "$bad" = 0 ] && awk -v a="$tot" -v p="$prev" 'BEGIN {exit !(a < p * 1.02)}'; then
        break # the rate no longer grows with the offered load: past the knee
      elif [ "$bad" = 0 ]; then
        nn=$((n + dn))
      else
        nn=$(( (good + bad) / 20 * 10 ))
      fi
      prev=$tot
    else
      bad=$n
      nn=$(( (good + bad) / 20 * 10 ))
    fi
    # between a sustained and a failed step: halve the gap until it is one step (dn) wide
    [ "$bad" != 0 ] && [ $((bad - good)) -le "$dn" ] && break
    [ "$nn" -gt "$NMAX" ] && nn=$NMAX
    [ "$nn" -le "$n" ] && [ "$bad" = 0 ] && break # at NMAX already
    n=$nn
  done
  aff=$(taskset -pc "$LPID" | awk '{print $NF}'); threads=$(ls "/proc/$LPID/task" | wc -l)
  kill "$LPID"; wait "$LPID" 2>/dev/null; LPID=
  [ "$aff" = 1 ] || echo "FAILED: lookout was not pinned to CPU 1 (affinity $aff)"
  echo "  lookout: $threads threads, all on CPU $aff; scrapes over the fast path in the last window: $((p1 - p0)) of $((s1 - s0))"
  if [ -z "$best" ]; then
    summary+=("$ch % churn: FAILED: no step sustained (each had over 1 % of its scrapes failed, or the writer behind)")
  else
    note=; awk -v c="$best_cpu" 'BEGIN {exit !(c < 90)}' && note=" NOT SATURATED: lookout used under 90 % of its core there, so this is not its limit (raise NMAX or MAX_STEPS, or lower INTERVAL_MS)"
    summary+=("$ch % churn: $(awk -v b="$best" -v w="$wrk_rate" 'BEGIN {printf "%.0f bodies/s sustained, %.0f %% of wrk", b, w ? 100*b/w : 0}') ($best_split per s; $best_n targets every ${IV}ms; lookout CPU ${best_cpu} %)$note")
  fi
done

echo
echo "throughput on one core each (nginx: 1 worker on CPU 0; wrk, then all of lookout's threads, on CPU 1):"
echo "  wrk -t1 -c64, one static ~25 KB payload URL, ${WRK_S}s: $wrk_rate requests/s (nginx ${wrk_ng} % of CPU 0 meanwhile)"
for l in "${summary[@]}"; do echo "  lookout, $l"; done
echo "  (sustained = the highest bodies/s over a ${WINDOW}s window with at most 1 % of scrapes failed and the ingest writer keeping up, from lookout_ingest_bodies_total)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the figures need a quiet machine)"
ne=$(grep -c . "$TMP/nginx-error.log" 2>/dev/null || true)
if [ "${ne:-0}" -gt 0 ]; then
  echo "FAILED: nginx logged ${ne} errors (first: $(head -1 "$TMP/nginx-error.log"))"
fi
exit 0
