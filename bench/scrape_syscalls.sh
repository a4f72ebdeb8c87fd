#!/usr/bin/env bash
# System calls per scrape on lookout's scrape path (docs/benchmarks.md §3): a real lookout scrapes TARGETS
# loopback targets every INTERVAL from nginx (bench/fleet_payloads.py's ~25 KB Periskop payloads, every
# body unchanged); after a warm-up, strace follows every thread for SECONDS and the script prints the
# system calls per scrape of the scrape loop's thread (the one calling epoll_wait most), by name, and of
# the whole process. Scrapes are counted from lookout_scrapes_total. strace slows the process down, so
# only the counts mean something here, not the time; and its slowdown batches the loop's work, so the
# wake-ups are first counted without it, over an equal window, as voluntary context switches per thread.
# Env: TARGETS (200), INTERVAL (1s), SECONDS_ (10), WARMUP (4), LOOKOUT_BIN, CURL_ONLY=1 (--scrape.curl-only).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
N=${TARGETS:-200}; INTERVAL=${INTERVAL:-1s}; DUR=${SECONDS_:-10}; WARM=${WARMUP:-4}
. "$ROOT/bench/lib/nginx.sh"
command -v strace >/dev/null || "$ROOT/scripts/deps.sh" strace >&2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-sysc.XXXXXX")
chmod 755 "$TMP"
LPID=
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
python3 "$ROOT/bench/fleet_payloads.py" init "$TMP/www" "$N" >/dev/null
SPORT=$(port)
bench_nginx "$TMP" "$SPORT" || exit 1
mkdir -p "$TMP/sd" # file_sd watches its directory: the trace written beside it would wake it per line
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
mkdir -p "$TMP/ld"
flags=()
[ "${CURL_ONLY:-0}" = 1 ] && flags+=(--scrape.curl-only)
"$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LPORT --storage.path="$TMP/ld" \
  "${flags[@]}" >"$TMP/lookout.log" 2>&1 &
LPID=$!
scrapes() { curl -s "http://127.0.0.1:$LPORT/metrics" | awk '/^lookout_scrapes_total/ {s += $NF} END {printf "%.0f", s}'; }
sleep "$WARM"
# Wake-ups without strace's slowdown (which itself batches the loop's work): voluntary context switches
# of each thread over the same window length; the scrape loop is the thread with the most.
csw() { for t in /proc/$LPID/task/*; do echo "${t##*/} $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"; done; }
c0=$(csw); w0=$(scrapes)
sleep "$DUR"
c1=$(csw); w1=$(scrapes)
python3 - "$c0" "$c1" $(( w1 - w0 )) <<'PY'
import sys
a = dict(l.split() for l in sys.argv[1].splitlines()); b = dict(l.split() for l in sys.argv[2].splitlines())
sc = int(sys.argv[3]); d = {t: int(b[t]) - int(a.get(t, 0)) for t in b}
top = max(d, key=d.get)
print("without strace: %d scrapes; scrape loop thread %.2f wake-ups (voluntary context switches) per scrape, "
      "whole process %.2f" % (sc, d[top] / max(sc, 1), sum(d.values()) / max(sc, 1)))
PY
s0=$(scrapes)
timeout -s INT "$DUR" strace -f -qq -o "$TMP/trace" -p "$LPID" >/dev/null 2>&1
s1=$(scrapes)
if [ ! -s "$TMP/trace" ]; then # ptrace not allowed here (a container without CAP_SYS_PTRACE)
  echo "system calls: not counted (strace could not attach)"
  exit 0
fi
sc=$(( s1 - s0 ))
[ "$sc" -gt 0 ] || { echo "FAILED: no scrapes"; cat "$TMP/lookout.log"; exit 1; }
# Lines: "TID name(args) = ret"; "<... name resumed>" lines are the ends of calls already counted.
awk -v sc="$sc" '
  $2 ~ /^<\.\.\./ { next }
  { tid = $1; name = $2; sub(/\(.*/, "", name); if (name == "" || name ~ /^[+-]/) next;
    n[tid, name]++; tot[tid]++; all[name]++; total++; if (name == "epoll_wait") ew[tid]++ }
  END {
    best = ""; for (t in ew) if (best == "" || ew[t] > ew[best]) best = t
    printf "scrapes (lookout_scrapes_total, includes strace start/stop skew): %d\n", sc
    printf "scrape loop thread: %.2f system calls per scrape:", tot[best] / sc
    for (k in n) { split(k, p, SUBSEP); if (p[1] == best) printf " %s=%.2f", p[2], n[k] / sc }
    printf "\nwhole process: %.2f system calls per scrape:", total / sc
    for (k in all) if (all[k] / sc >= 0.01) printf " %s=%.2f", k, all[k] / sc
    printf "\n"
  }' "$TMP/trace"
