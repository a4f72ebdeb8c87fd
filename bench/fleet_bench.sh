#!/usr/bin/env bash
# Fleet benchmark (docs/benchmarks.md §3): lookout and Prometheus 2.42 side by side, at the same time,
# scraping TARGETS targets each at INTERVAL from one nginx on loopback.
#   lookout    scrapes /t/<i>.json: ~25 KB Periskop payloads (5 keys x 10 occurrences with stack traces
#              and HTTP context, one target_uuid per target), of which CHANGE % are rewritten per interval
#              by bench/fleet_payloads.py (one key's count +1 and a new occurrence), default storage
#              (SQLite) unless STORAGE=memory.
#   Prometheus scrapes /m/<i>: the same number of bytes, comment lines + one sample, so its TSDB costs
#              almost nothing and what is measured is discovery + scheduling + HTTP + parse. This is the
#              setup that makes Prometheus look best next to lookout.
# Both get the same file_sd target list shape, interval and timeout. Each CHANGE value is a fresh pair of
# processes: warm-up until lookout has scraped every target once and its store backlog is empty (the first
# fill of an empty store is not what a running fleet costs), then DURATION seconds measured: CPU share
# (utime+stime from /proc over the window), RSS at the end, lookout's scrape start delay p50/p99 (histogram
# bucket upper bounds), targets up in both, and lookout's bodies by result (unchanged / merged) from which
# the CPU cost of an unchanged scrape and of a changed payload are derived.
# Env: TARGETS (10000), INTERVAL (15s), DURATION (120), CHANGE ("0 10 100"), STORAGE (sqlite|memory),
#      LOOKOUT_BIN, BUILD, SKIP_PROMETHEUS=1, SKIP_WRK=1.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
N=${TARGETS:-10000}; INTERVAL=${INTERVAL:-15s}; DUR=${DURATION:-120}; CHANGES=${CHANGE:-0 10 100}
STORAGE=${STORAGE:-sqlite}
IV=${INTERVAL%s}
TO=$(( IV < 10 ? IV : 10 ))s
command -v nginx >/dev/null || "$ROOT/scripts/deps.sh" nginx >&2
command -v wrk >/dev/null || [ "${SKIP_WRK:-0}" = 1 ] || "$ROOT/scripts/deps.sh" wrk >&2
[ "${SKIP_PROMETHEUS:-0}" = 1 ] || command -v prometheus >/dev/null || "$ROOT/scripts/deps.sh" prometheus >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-fleet.XXXXXX")
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
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
sticks() { awk '{print $15}' "/proc/$1/stat"; } # kernel time alone
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
metric() { # metric URL REGEX: sum of the matching series' values
  curl -s "$1/metrics" | awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%.0f", s}'
}

echo "# generating $N payloads"
python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N"

SPORT=$(port)
cat >"$TMP/nginx.conf" <<CONF
worker_processes 2;
# Prometheus keeps one connection per target (10,000: ~5,000 per worker) and open_file_cache one
# descriptor per cached file: with max=40000 a worker ran out of descriptors (RLIMIT_NOFILE 20,000 here,
# not raisable in a container) and Prometheus' scrapes failed with "Too many open files", so it did less
# work than in production. The cache is now bounded below the limit; the script fails on any nginx error.
# lookout's fast path (src/http/h1client.c) also keeps one connection per target since session 4: 20,000
# connections over the two workers, so the cache is bounded at 4,000 to leave each worker room for an
# uneven share.
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
json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":"/m/%d"%i,"idx":str(i)}} for i in range(n)],
          open("%s/m.json"%d,"w"))
PY

# wrk against the same nginx: the physical request rate of a payload body on loopback (1 thread, 64
# connections), next to which lookout's per-core scrape rate is put.
wrk_rate=n/a
if [ "${SKIP_WRK:-0}" != 1 ] && command -v wrk >/dev/null; then
  wrk_rate=$(wrk -t1 -c64 -d10s "http://127.0.0.1:$SPORT/t/0.json" 2>/dev/null | awk '/Requests\/sec/ {printf "%.0f", $2}')
fi

quant() { # quant Q HIST0 HIST1: upper bound of the bucket holding quantile Q within the window
  python3 - "$1" "$2" "$3" <<'PY'
import sys,re
q=float(sys.argv[1])
def parse(t):
    d={}
    for line in t.splitlines():
        m=re.search(r'le="([^"]+)"\} ([0-9.e+]+)',line)
        if m: d[m.group(1)]=d.get(m.group(1),0)+float(m.group(2))
    return d
a,b=parse(sys.argv[2]),parse(sys.argv[3])
les=sorted(b,key=lambda x: float("inf") if x=="+Inf" else float(x))
tot=b.get("+Inf",0)-a.get("+Inf",0)
for le in les:
    if tot>0 and b[le]-a.get(le,0)>=q*tot:
        print("<=%sms"%("%g"%(float(le)*1000)) if le!="+Inf" else ">last"); break
else: print("n/a")
PY
}

results=()
for ch in $CHANGES; do
  echo "# run: $ch % of payloads changing per interval"
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
  "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT --storage.path="$TMP/ld" \
    >"$TMP/lookout-$ch.log" 2>&1 &
  LPID=$!; pids+=($LPID)
  PPID_=
  if [ "${SKIP_PROMETHEUS:-0}" != 1 ]; then
    PPORT=$(port); PURL=http://127.0.0.1:$PPORT
    rm -rf "$TMP/pd"
    cat >"$TMP/prom.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: $TO}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/m.json']}]
YML
    prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/pd" --web.listen-address=127.0.0.1:$PPORT \
      >"$TMP/prom-$ch.log" 2>&1 &
    PPID_=$!; pids+=($PPID_)
  fi
  # warm-up: every target scraped once and the first fill written (bounded: 30 intervals)
  for _ in $(seq $((IV * 30))); do
    sleep 1
    s=$(metric "$LURL" '^lookout_ingest_bodies_total')
    b=$(metric "$LURL" '^lookout_store_backlog_changes')
    [ "${s:-0}" -ge "$N" ] && [ "${b:-1}" -eq 0 ] && break
  done
  sleep "$IV" # one more interval: every target past its first (filling) scrape
  python3 "$ROOT/bench/fleet_payloads.py" mutate "$TMP/www" "$N" "$ch" "$IV" "$DUR" >"$TMP/mutate-$ch.out" &
  MPID=$!; pids+=($MPID)
  h0=$(curl -s "$LURL/metrics" | grep '^lookout_scrape_delay_seconds_bucket')
  un0=$(metric "$LURL" 'lookout_ingest_bodies_total.*result="unchanged"')
  mg0=$(metric "$LURL" 'lookout_ingest_bodies_total.*result="merged"')
  lt0=$(ticks "$LPID"); ls0=$(sticks "$LPID"); [ -n "$PPID_" ] && pt0=$(ticks "$PPID_") && ps0=$(sticks "$PPID_")
  sleep "$DUR"
  lt1=$(ticks "$LPID"); ls1=$(sticks "$LPID"); [ -n "$PPID_" ] && pt1=$(ticks "$PPID_") && ps1=$(sticks "$PPID_")
  l_sys=$(awk -v a="$ls0" -v b="$ls1" -v t="$((lt1 - lt0))" 'BEGIN {printf "%.0f", (t > 0 ? (b-a)*100/t : 0)}')
  p_sys=n/a; [ -n "$PPID_" ] && p_sys=$(awk -v a="$ps0" -v b="$ps1" -v t="$((pt1 - pt0))" 'BEGIN {printf "%.0f", (t > 0 ? (b-a)*100/t : 0)}')
  h1=$(curl -s "$LURL/metrics" | grep '^lookout_scrape_delay_seconds_bucket')
  un1=$(metric "$LURL" 'lookout_ingest_bodies_total.*result="unchanged"')
  mg1=$(metric "$LURL" 'lookout_ingest_bodies_total.*result="merged"')
  l_up=$(curl -s "$LURL/api/v1/targets?state=active" | python3 -c 'import json,sys; print(sum(t["health"]=="up" for t in json.load(sys.stdin)["data"]["activeTargets"]))')
  l_rss=$(rss_mib "$LPID")
  l_cpu=$(awk -v a="$lt0" -v b="$lt1" -v hz="$hz" -v d="$DUR" 'BEGIN {printf "%.1f", (b-a)/hz/d*100}')
  p_cpu=n/a; p_rss=n/a; p_up=n/a
  if [ -n "$PPID_" ]; then
    p_cpu=$(awk -v a="$pt0" -v b="$pt1" -v hz="$hz" -v d="$DUR" 'BEGIN {printf "%.1f", (b-a)/hz/d*100}')
    p_rss=$(rss_mib "$PPID_")
    p_up=$(curl -s "$PURL/api/v1/query" --data-urlencode 'query=count(up == 1)' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    kill "$PPID_"; wait "$PPID_" 2>/dev/null
  fi
  kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null
  kill "$LPID"; wait "$LPID" 2>/dev/null
  un=$((un1 - un0)); mg=$((mg1 - mg0))
  results+=("$ch|$l_cpu|$l_rss|$(quant 0.5 "$h0" "$h1")|$(quant 0.99 "$h0" "$h1")|$l_up|$p_cpu|$p_rss|$p_up|$un|$mg|$((lt1 - lt0))|$l_sys|$p_sys")
done

printf '\nfleet benchmark: %s targets, interval %s, %ss measured per run, lookout storage %s, both side by side\n' \
  "$N" "$INTERVAL" "$DUR" "$STORAGE"
printf '%-8s | %9s %8s %9s %9s %7s | %9s %8s %7s | %7s %7s\n' "change" "l CPU%" "l MiB" "l p50" "l p99" "l up" \
  "P CPU%" "P MiB" "P up" "CPU l/P" "RSS l/P"
unchanged_us=
sysline=
for r in "${results[@]}"; do
  IFS='|' read -r ch lc lr p50 p99 lu pc pr pu un mg lt ls ps <<<"$r"
  rc=n/a; rr=n/a
  [ "$pc" != n/a ] && rc=$(awk -v a="$lc" -v b="$pc" 'BEGIN {printf (b > 0 ? "1/%.1f" : "n/a"), b / (a > 0 ? a : 0.001)}')
  [ "$pr" != n/a ] && rr=$(awk -v a="$lr" -v b="$pr" 'BEGIN {printf (b > 0 ? "1/%.1f" : "n/a"), b / (a > 0 ? a : 1)}')
  printf '%-8s | %9s %8s %9s %9s %7s | %9s %8s %7s | %7s %7s\n' "$ch %" "$lc" "$lr" "$p50" "$p99" "$lu" "$pc" "$pr" "$pu" "$rc" "$rr"
  sysline="$sysline  $ch %: lookout ${ls}% of its CPU in the kernel, Prometheus ${ps}%\n"
done
printf '%b' "${sysline:-}"
echo
echo "lookout CPU per scrape (from the bodies handled in each window; CPU of the whole process):"
for r in "${results[@]}"; do
  IFS='|' read -r ch lc lr p50 p99 lu pc pr pu un mg lt _ _ <<<"$r"
  us_all=$(awk -v t="$lt" -v hz="$hz" -v n="$((un + mg))" 'BEGIN {printf "%.0f", n ? t / hz * 1e6 / n : 0}')
  rate=$(awk -v u="$us_all" 'BEGIN {printf "%.0f", u ? 1e6 / u : 0}')
  line="  $ch %: $un unchanged + $mg changed bodies, ${us_all} µs CPU per scrape at the fleet's rate: derived 1e6/µs ~$rate scrapes/s"
  [ "$wrk_rate" != n/a ] && line="$line ($(awk -v r="$rate" -v w="$wrk_rate" 'BEGIN {printf "%.0f", w ? 100 * r / w : 0}') % of wrk's rate)"
  if [ "$ch" = 0 ] && [ "$mg" -eq 0 ]; then
    unchanged_us=$us_all
    line="$line; = the cost of an unchanged scrape (fetch + hash)"
  elif [ -n "$unchanged_us" ] && [ "$mg" -gt 0 ]; then
    line="$line; a changed payload (parse + merge + store) ~$(awk -v t="$lt" -v hz="$hz" -v un="$un" -v u="$unchanged_us" -v mg="$mg" 'BEGIN {printf "%.0f", (t / hz * 1e6 - un * u) / mg}') µs"
  fi
  echo "$line"
done
echo "wrk on the same nginx, one payload URL, 1 thread 64 connections: $wrk_rate requests/s"
echo "(the derived rates charge per-batch and idle costs to each scrape; the measured one-core rate is bench/throughput_bench.sh)"
ne=$(grep -c . "$TMP/nginx-error.log" 2>/dev/null || true)
if [ "${ne:-0}" -gt 0 ]; then
  echo "FAILED: nginx logged ${ne} errors (first: $(head -1 "$TMP/nginx-error.log")): a side may have been refused"
fi
