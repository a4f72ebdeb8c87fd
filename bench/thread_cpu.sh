#!/usr/bin/env bash
# CPU of a lookout-only fleet, per thread (issue 14, docs/benchmarks.md §3): nginx (one worker, keep-alive)
# serves bench/fleet_payloads.py's ~25 KB Periskop payloads, every body unchanged; lookout scrapes TARGETS
# file_sd targets every INTERVAL (2,000 @3s starts as many scrapes per second as the fleet's 10,000 @15s).
# After WARMUP seconds (every target scraped, its first fill written), DURATION seconds are measured: per
# thread (named by its start function, from gdb) the CPU ticks (user + kernel) and the wake-ups (voluntary
# context switches), and for the process the CPU seconds per 1,000 scrapes. TARGETS=0 measures an idle
# lookout. PERF=1 also records `perf record -e cpu-clock -g` over the window (report in $TMP, KEEP_TMP=1).
# Env: TARGETS (2000), INTERVAL (3s), DURATION (60), WARMUP (auto), LOOKOUT_BIN, PERF, KEEP_TMP.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
N=${TARGETS:-2000}; INTERVAL=${INTERVAL:-3s}; DUR=${DURATION:-60}
IV=${INTERVAL%s}
WARM=${WARMUP:-$((IV * 2 + 3))}
. "$ROOT/bench/lib/nginx.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-tcpu.XXXXXX")
chmod 755 "$TMP"
LPID=
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
SPORT=$(port)
mkdir -p "$TMP/sd" "$TMP/ld" "$TMP/www"
if [ "$N" -gt 0 ]; then
  python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N" >/dev/null
  bench_nginx "$TMP" "$SPORT" || exit 1
fi
python3 - "$N" "$SPORT" "$TMP" <<'PY'
import json,sys
n,port,d=int(sys.argv[1]),sys.argv[2],sys.argv[3]
json.dump([{"targets":["127.0.0.1:%s"%port],"labels":{"__metrics_path__":"/t/%d.json"%i}} for i in range(n)],
          open("%s/sd/t.json"%d,"w"))
PY
LPORT=$(port)
cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: $INTERVAL}
scrape_configs:
  - job_name: bench
    file_sd_configs: [{files: ['$TMP/sd/t.json']}]
YML
"$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT --storage.path="$TMP/ld" \
  >"$TMP/lookout.log" 2>&1 &
LPID=$!
scrapes() { curl -s "http://127.0.0.1:$LPORT/metrics" | awk '/^lookout_scrapes_total/ {s += $NF} END {printf "%.0f", s}'; }
sleep "$WARM"
# Thread names: the innermost lookout function on each thread's stack (gdb, once, before the window).
gdb -p "$LPID" -batch -ex 'thread apply all bt' 2>/dev/null | python3 -c '
import re,sys
cur=None; best={}
for l in sys.stdin:
    m=re.match(r"Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)",l)
    if m: cur=m.group(1); continue
    m=re.match(r"#\d+ +(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at (src/\S+)",l)
    if cur and m and cur not in best: best[cur]=m.group(1)
for t,f in best.items(): print(t,f)' >"$TMP/names"
snap() { for t in /proc/$LPID/task/*; do
    echo "${t##*/} $(awk '{print $14, $15}' "$t/stat") $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"; done; }
a=$(snap); s0=$(scrapes); p0=$(awk '{print $14+$15}' /proc/$LPID/stat)
if [ "${PERF:-0}" = 1 ]; then
  perf record -q -e cpu-clock -g -o "$TMP/perf.data" -p "$LPID" -- sleep "$DUR" >/dev/null 2>&1
else
  sleep "$DUR"
fi
b=$(snap); s1=$(scrapes); p1=$(awk '{print $14+$15}' /proc/$LPID/stat)
echo "lookout-only fleet: $N targets @$INTERVAL, ${DUR}s measured, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$a" "$b" "$((s1 - s0))" "$((p1 - p0))" "$(getconf CLK_TCK)" "$DUR" "$TMP/names" <<'PY'
import sys
def parse(t): return {l.split()[0]: list(map(int, l.split()[1:])) for l in t.splitlines()}
a, b = parse(sys.argv[1]), parse(sys.argv[2])
sc, pt, hz, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
names = dict(l.split() for l in open(sys.argv[7]) if len(l.split()) == 2)
print("%-8s %-26s %8s %8s %10s %12s" % ("tid", "thread", "user s", "sys s", "wake-ups", "wake-ups/s"))
for t in sorted(b, key=lambda t: -(sum(b[t][:2]) - sum(a.get(t, [0, 0, 0])[:2]))):
    o = a.get(t, [0, 0, 0])
    u, s, w = (b[t][0] - o[0]) / hz, (b[t][1] - o[1]) / hz, b[t][2] - o[2]
    print("%-8s %-26s %8.2f %8.2f %10d %12.1f" % (t, names.get(t, "?"), u, s, w, w / dur))
print("process: %.2f CPU s (%.2f %% of a core), %d scrapes (%.0f/s): %.3f CPU s per 1,000 scrapes" %
      (pt / hz, pt / hz / dur * 100, sc, sc / dur, pt / hz * 1000 / sc if sc else 0))
PY
if [ "${PERF:-0}" = 1 ]; then
  perf report -i "$TMP/perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null | grep -v '^$' >"$TMP/perf.txt"
  perf report -i "$TMP/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep '%' | head -40
  echo "(call graphs: $TMP/perf.txt)"
fi
