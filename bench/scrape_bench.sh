#!/usr/bin/env bash
# Scrape benchmark: lookout scraping N exception targets (~20 KB Periskop payloads, /t/<i>) at 15 s, then
# Prometheus 2.42 scraping the same number of targets serving an equally sized /metrics body (/m/<i>),
# both against one exception_server on loopback, in the same run. Measures CPU share (utime+stime over
# the measuring window, from /proc), RSS at the end, and lookout's scrape delay p50/p99 (from the
# lookout_scrape_delay_seconds histogram, buckets' upper bounds). Prints a table.
# Env: TARGETS (10000), INTERVAL (15s), DURATION (120, seconds measured after one interval of warm-up),
#      LOOKOUT_BIN, BUILD, SKIP_PROMETHEUS=1.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
N=${TARGETS:-10000}; INTERVAL=${INTERVAL:-15s}; DUR=${DURATION:-120}
IV=${INTERVAL%s}
TO=$(( IV < 10 ? IV : 10 ))s
SRV=$ROOT/$BUILD/helpers/exception_server
[ -x "$SRV" ] || make -C "$ROOT" -s "$BUILD/helpers/exception_server" >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-bench.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
SPORT=$(port)
"$SRV" --port "$SPORT" --threads 4 --payload-size 20000 --max-connections 30000 >/dev/null 2>&1 &
pids+=($!)
for i in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$SPORT/t/1" && break; sleep 0.1; done

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
# measure PID -> "cpu_percent rss_mib" over DUR seconds after one interval of warm-up
measure() {
  sleep "$IV"; sleep 2
  local t0 t1; t0=$(ticks "$1"); sleep "$DUR"; t1=$(ticks "$1")
  echo "$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v d="$DUR" 'BEGIN {printf "%.1f", (b-a)/hz/d*100}') $(rss_mib "$1")"
}

# targets file shared by both (file_sd): one group per target path
python3 - "$N" "$SPORT" "$TMP" <<'PY'
import json,sys
n,port,d=int(sys.argv[1]),sys.argv[2],sys.argv[3]
for kind in ("t","m"):
    json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":"/%s/%d"%(kind,i),"idx":str(i)}} for i in range(n)],
              open("%s/%s.json"%(d,kind),"w"))
PY

# ---- lookout ----
LPORT=$(port)
cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: $TO}
storage: {type: memory}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/t.json']}]
YML
"$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT --storage.path="$TMP/ld" \
  >"$TMP/lookout.log" 2>&1 &
LPID=$!; pids+=($LPID)
sleep 1
hist0=$(curl -s "http://127.0.0.1:$LPORT/metrics" | grep '^lookout_scrape_delay_seconds_bucket')
read -r l_cpu l_rss < <(measure "$LPID")
hist1=$(curl -s "http://127.0.0.1:$LPORT/metrics" | grep '^lookout_scrape_delay_seconds_bucket')
up=$(curl -s "http://127.0.0.1:$LPORT/api/v1/jobs" | python3 -c 'import json,sys; j=[x for x in json.load(sys.stdin)["data"] if x["job"]=="bench"][0]; print(j["targets_up"])')
scrapes=$(curl -s "http://127.0.0.1:$LPORT/metrics" | awk '/^lookout_scrapes_total\{job="bench"\}/ {print $2}')
kill "$LPID"; wait "$LPID" 2>/dev/null
quant() { # quant Q: upper bound of the bucket holding quantile Q of the observations in the window
  python3 - "$1" <<PY
import sys,re
q=float(sys.argv[1])
def parse(t):
    d={}
    for line in t.splitlines():
        m=re.search(r'le="([^"]+)"\} ([0-9.e+]+)',line)
        if m: d[m.group(1)]=float(m.group(2))
    return d
a,b=parse("""$hist0"""),parse("""$hist1""")
les=sorted(b,key=lambda x: float("inf") if x=="+Inf" else float(x))
tot=b.get("+Inf",0)-a.get("+Inf",0)
for le in les:
    if tot>0 and b[le]-a.get(le,0)>=q*tot:
        print("<= %s s"%le if le!="+Inf" else "> last bucket"); break
else: print("n/a")
PY
}
p50=$(quant 0.5); p99=$(quant 0.99)

# ---- Prometheus ----
p_cpu=n/a; p_rss=n/a
if [ "${SKIP_PROMETHEUS:-0}" != 1 ] && command -v prometheus >/dev/null; then
  PPORT=$(port)
  cat >"$TMP/prom.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: $TO}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/m.json']}]
YML
  prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/pd" --web.listen-address=127.0.0.1:$PPORT \
    >"$TMP/prom.log" 2>&1 &
  PPID_=$!; pids+=($PPID_)
  read -r p_cpu p_rss < <(measure "$PPID_")
  kill "$PPID_"; wait "$PPID_" 2>/dev/null
fi

printf '\nscrape benchmark: %s targets, ~20 KB bodies, interval %s, %ss measured (after %ss warm-up)\n' "$N" "$INTERVAL" "$DUR" "$IV"
printf '%-22s %10s %10s %14s %14s\n' "" "CPU %" "RSS MiB" "delay p50" "delay p99"
printf '%-22s %10s %10s %14s %14s\n' "lookout" "$l_cpu" "$l_rss" "$p50" "$p99"
printf '%-22s %10s %10s %14s %14s\n' "Prometheus 2.42" "$p_cpu" "$p_rss" "-" "-"
printf 'lookout: %s targets up at the end, %s scrapes in total\n' "$up" "$scrapes"
