# Shared helpers for integration and differential test scripts (bash). Source it:
#   . "$(dirname "$0")/../lib/common.sh"
# Prints TAP-style lines that tests/run.sh counts. Everything started here is stopped on exit.
set -u
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$TESTS_DIR/.." && pwd)
LOOKOUT_BIN=${LOOKOUT_BIN:-$ROOT/lookout}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lookout-test.XXXXXX")
_pids=()
_cleanup() {
  local p
  for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${_pids[@]}"; do wait "$p" 2>/dev/null; done
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap _cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
# check NAME COMMAND...: ok when the command succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   expected: $2"; echo "#   actual:   $3"; fi
}
# check_contains NAME HAYSTACK NEEDLE
check_contains() {
  if [[ "$2" == *"$3"* ]]; then ok "$1"; else not_ok "$1"; echo "#   '$3' not found in:"; echo "$2" | head -20 | sed 's/^/#   /'; fi
}

# free_port: prints a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# bg CMD...: start a background process that is killed on exit; sets BG_PID.
bg() { "$@" & BG_PID=$!; _pids+=("$BG_PID"); }

# wait_http URL [SECONDS]: wait until URL answers 2xx.
wait_http() {
  local url=$1 t=${2:-10} i
  for ((i = 0; i < t * 20; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_lookout NAME [ARGS...]: starts lookout on a free port with its own storage dir and log file
# ($TMP/NAME.log). Sets LOOKOUT_PID, LOOKOUT_PORT, LOOKOUT_URL. LOOKOUT_PREFIX=/p: readiness is asked at
# /p/-/ready (a lookout run with --web.route-prefix=/p).
start_lookout() {
  local name=$1; shift
  LOOKOUT_PORT=$(free_port)
  LOOKOUT_URL=http://127.0.0.1:$LOOKOUT_PORT
  mkdir -p "$TMP/$name-data"
  bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$LOOKOUT_PORT --storage.path="$TMP/$name-data" "$@" \
    >>"$TMP/$name.log" 2>&1
  LOOKOUT_PID=$BG_PID
  if ! wait_http "$LOOKOUT_URL${LOOKOUT_PREFIX:-}/-/ready" 15; then
    echo "# lookout did not become ready; log:"; sed 's/^/#   /' "$TMP/$name.log" | tail -30
    return 1
  fi
}

# start_nginx_proxy UPSTREAM_PORT [PORT]: Debian's nginx on PORT (default a free one) of loopback as a reverse proxy passing every
# path unchanged to 127.0.0.1:UPSTREAM_PORT (the Host header becomes the upstream's, as proxy_pass does by
# default). Sets NGINX_PORT; stopped on exit.
start_nginx_proxy() {
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || "$ROOT/scripts/deps.sh" nginx >&2 || return 1
  NGINX_PORT=${2:-$(free_port)}
  chmod 755 "$TMP" # nginx workers run as an unprivileged user
  mkdir -p "$TMP/nginx"
  cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
daemon off;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://127.0.0.1:$1; proxy_buffering off; }
  }
}
CONF
  bg "$(command -v nginx || echo /usr/sbin/nginx)" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>>"$TMP/nginx/error.log"
  local i
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && return 0
    sleep 0.05
  done
  echo "# nginx did not start:"; sed 's/^/#   /' "$TMP/nginx/error.log" | tail -5
  return 1
}

# stop_pid PID: SIGTERM and wait.
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 0; }

# get PATH: GET from the running lookout, body on stdout.
get() { curl -sS --max-time 10 "$LOOKOUT_URL$1"; }

# eventually SECONDS COMMAND...: retries COMMAND every 100 ms until it succeeds or time is up.
eventually() {
  local t=$1 i; shift
  for ((i = 0; i < t * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  "$@"
}

# ---- Prometheus oracle and process measurement (differential tests, bench) ----

# ensure_prometheus: installs Debian's prometheus (2.42 on bookworm) when it is missing. Sets PROMETHEUS_BIN.
ensure_prometheus() {
  PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
  if [ -z "$PROMETHEUS_BIN" ]; then
    "$ROOT/scripts/deps.sh" prometheus >&2 || return 1
    PROMETHEUS_BIN=$(command -v prometheus) || return 1
  fi
}

# wait_http_pid PID URL [SECONDS]: like wait_http, but gives up as soon as process PID has exited.
wait_http_pid() {
  local pid=$1 url=$2 t=${3:-10} i
  for ((i = 0; i < t * 20; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# start_prometheus NAME CONFIG [ARGS...]: starts Prometheus on a free port with its own TSDB dir and log
# ($TMP/NAME.log), in the current working directory. Sets PROM_PID, PROM_PORT, PROM_URL.
start_prometheus() {
  local name=$1 cfg=$2; shift 2
  ensure_prometheus || { echo "# prometheus is not installed and could not be installed"; return 1; }
  PROM_PORT=$(free_port)
  PROM_URL=http://127.0.0.1:$PROM_PORT
  mkdir -p "$TMP/$name-tsdb"
  bg "$PROMETHEUS_BIN" --config.file="$cfg" --storage.tsdb.path="$TMP/$name-tsdb" \
    --web.listen-address=127.0.0.1:$PROM_PORT --log.level=warn "$@" >>"$TMP/$name.log" 2>&1
  PROM_PID=$BG_PID
  if ! wait_http_pid "$PROM_PID" "$PROM_URL/-/ready" 30; then
    echo "# prometheus did not become ready; log:"; sed 's/^/#   /' "$TMP/$name.log" | tail -30
    return 1
  fi
}

# start_lookout_bg NAME [ARGS...]: like start_lookout but does not wait; sets LOOKOUT_PID/PORT/URL.
start_lookout_bg() {
  local name=$1; shift
  LOOKOUT_PORT=$(free_port)
  LOOKOUT_URL=http://127.0.0.1:$LOOKOUT_PORT
  mkdir -p "$TMP/$name-data"
  bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$LOOKOUT_PORT --storage.path="$TMP/$name-data" "$@" \
    >>"$TMP/$name.log" 2>&1
  LOOKOUT_PID=$BG_PID
}

# proc_cpu_seconds PID: user+system CPU seconds the process has used so far (from /proc/PID/stat).
proc_cpu_seconds() {
  local hz; hz=$(getconf CLK_TCK)
  # Field 2 (comm) may contain spaces: cut everything up to the last ')'.
  awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# proc_hwm_mib PID: peak resident set size (VmHWM) in MiB.
proc_hwm_mib() { awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

# metric_value URL NAME [LABEL_SUBSTRING]: first sample value of metric NAME at URL/metrics (empty if none).
metric_value() {
  curl -sS --max-time 10 "$1/metrics" 2>/dev/null |
    awk -v n="$2" -v l="${3:-}" '$1 == n || (index($1, n "{") == 1 && index($1, l) > 0) { print $2; exit }'
}

# active_targets [SCRAPEPOOL]: the running lookout's active targets as sorted "job/instance" words,
# comma-separated (empty when none, "ERROR" when the API does not answer with JSON).
active_targets() {
  local q="state=active"; [ -n "${1:-}" ] && q="$q&scrapePool=$1"
  curl -sS --max-time 10 "$LOOKOUT_URL/api/v1/targets?$q" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)["data"]
except Exception:
    print("ERROR"); sys.exit(0)
print(",".join(sorted("%s/%s" % (t["labels"].get("job", ""), t["labels"].get("instance", ""))
                      for t in d.get("activeTargets") or [])))'
}

# targets_are EXPECTED [SCRAPEPOOL]: succeeds when active_targets prints EXPECTED (for `eventually`).
targets_are() { [ "$(active_targets "${2:-}")" == "$1" ]; }

# metric_sum NAME: sum of every sample of metric NAME (any labels) at the running lookout's /metrics;
# prints 0 when absent.
metric_sum() {
  curl -sS --max-time 10 "$LOOKOUT_URL/metrics" 2>/dev/null |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%g\n", s + 0 }'
}

# metric_at_least NAME MIN: succeeds when metric_sum NAME >= MIN.
metric_at_least() { awk -v a="$(metric_sum "$1")" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# Memory bounds (hostile*.sh): MIB, hwm_kib PID (peak RSS in KiB from /proc), and check_mem NAME COMMAND...,
# a check that is a TAP skip under AddressSanitizer (make sanitize), whose redzones and quarantine multiply
# every allocation so that the bound says nothing there.
MIB=1048576
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
check_mem() {
  if [ -n "${ASAN_OPTIONS:-}" ] || [[ "$LOOKOUT_BIN" == *-san ]]; then
    echo "ok - $1 # SKIP memory bounds are not measured under AddressSanitizer"
  else
    check "$@"
  fi
}
