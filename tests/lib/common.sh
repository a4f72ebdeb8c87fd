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
# ($TMP/NAME.log). Sets LOOKOUT_PID, LOOKOUT_PORT, LOOKOUT_URL.
start_lookout() {
  local name=$1; shift
  LOOKOUT_PORT=$(free_port)
  LOOKOUT_URL=http://127.0.0.1:$LOOKOUT_PORT
  mkdir -p "$TMP/$name-data"
  bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$LOOKOUT_PORT --storage.path="$TMP/$name-data" "$@" \
    >>"$TMP/$name.log" 2>&1
  LOOKOUT_PID=$BG_PID
  if ! wait_http "$LOOKOUT_URL/-/ready" 15; then
    echo "# lookout did not become ready; log:"; sed 's/^/#   /' "$TMP/$name.log" | tail -30
    return 1
  fi
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
