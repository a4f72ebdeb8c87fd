#!/usr/bin/env bash
# Command line: --help, --version/version, unknown flags (exit 2), flag spellings, and the embedded
# default configuration used when no --config.file is given (lookout scrapes itself as job "lookout").
. "$(dirname "$0")/../lib/common.sh"
cd "$TMP" || exit 1

out=$("$LOOKOUT_BIN" --help 2>&1); rc=$?
check_eq "--help: exit 0" 0 "$rc"
check_contains "--help: usage line" "$out" "usage: lookout"
for f in --config.file --web.listen-address --storage.path --log.level --web.enable-lifecycle; do
  check_contains "--help lists $f" "$out" "$f"
done
for f in --web.max-connections= --web.max-connections-per-client= --web.read-header-timeout= --web.read-timeout= \
  --web.slow-handler-threads= --web.slow-handler-queue= --web.push.max-bytes-in-flight=; do
  check_contains "--help lists ${f%=}" "$out" "$f"
done
out=$("$LOOKOUT_BIN" -h 2>&1); rc=$?
check_eq "-h: exit 0" 0 "$rc"

# The HTTP server's bounds: a bad value is refused at start with the flag named (exit 2).
while read -r flag bad want; do
  out=$("$LOOKOUT_BIN" "$flag=$bad" 2>&1); rc=$?
  check_eq "$flag=$bad: exit 2" 2 "$rc"
  check_contains "$flag=$bad: explained" "$out" "invalid $flag $bad ($want"
done <<'EOF2'
--web.max-connections 0 expected an integer from 1 to 1000000
--web.max-connections-per-client x expected an integer from 1 to 1000000
--web.slow-handler-threads 300 expected an integer from 1 to 256
--web.slow-handler-queue -1 expected an integer from 1 to 1000000
--web.read-header-timeout 1500ms expected whole seconds from 1s, such as 10s
--web.read-header-timeout 0s expected whole seconds from 1s, such as 10s
--web.read-timeout 0s expected whole seconds from 1s, such as 5m
--web.read-timeout 2.5s expected whole seconds from 1s, such as 5m
--web.read-timeout x expected whole seconds from 1s, such as 5m
--web.push.max-bytes-in-flight 0 expected a positive size such as 32MiB
EOF2

want="lookout, version $(cat "$ROOT/VERSION")"
out=$("$LOOKOUT_BIN" --version 2>&1); rc=$?
check_eq "--version: exit 0" 0 "$rc"
check_contains "--version prints 'lookout, version X'" "$out" "$want"
out=$("$LOOKOUT_BIN" version 2>&1); rc=$?
check_contains "version subcommand" "$out" "$want"

out=$("$LOOKOUT_BIN" --no-such-flag 2>&1); rc=$?
check_eq "unknown flag: exit 2" 2 "$rc"
check_contains "unknown flag: named in the error" "$out" "--no-such-flag"
out=$("$LOOKOUT_BIN" run --no-such-flag 2>&1); rc=$?
check_eq "run with unknown flag: exit 2" 2 "$rc"
out=$("$LOOKOUT_BIN" --log.level=loud 2>&1); rc=$?
check_eq "bad --log.level: exit 2" 2 "$rc"
out=$("$LOOKOUT_BIN" --config.file 2>&1); rc=$?
check_eq "--config.file without a value: exit 2" 2 "$rc"

out=$(timeout 10 "$LOOKOUT_BIN" --config.file="$TMP/nope.yml" --web.listen-address=127.0.0.1:$(free_port) \
  --storage.path="$TMP/d0" 2>&1); rc=$?
check_eq "missing config file: exit 1" 1 "$rc"
check_contains "missing config file: named" "$out" "nope.yml"

# Listen address already in use: a clear error, not a hang.
# The holder binds a port of its own choosing (a free_port could be taken by another process before it
# binds) and says which once it listens.
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); open(sys.argv[1]+".tmp","w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1]+".tmp",sys.argv[1]); time.sleep(15)' "$TMP/held-port" &
holder=$!
for _ in $(seq 100); do [ -s "$TMP/held-port" ] && break; sleep 0.05; done
port=$(cat "$TMP/held-port")
out=$(timeout 10 "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$port --storage.path="$TMP/d1" 2>&1); rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "port in use: exits non-zero without hanging" test "$rc" -ne 0 -a "$rc" -ne 124
check_contains "port in use: names the address" "$out" "$port"

# No --config.file: the embedded configuration scrapes lookout itself as job "lookout".
start_lookout default || { not_ok "lookout starts without --config.file"; exit 1; }
ok "lookout starts without --config.file"
self_target() { [[ "$(active_targets)" =~ ^lookout/(127\.0\.0\.1|localhost):$LOOKOUT_PORT$ ]]; }
check "default config: one target, job lookout, this lookout's port" eventually 10 self_target
check "GET /-/healthy answers 200" curl -fsS -o /dev/null "$LOOKOUT_URL/-/healthy"
stop_pid "$LOOKOUT_PID"

# Flag spellings: "--flag value" and single-dash "-flag=value" (Go's flag package accepts both).
port=$(free_port)
bg "$LOOKOUT_BIN" -web.listen-address 127.0.0.1:$port -storage.path="$TMP/d2" >>"$TMP/spell.log" 2>&1
check "'-flag value' and '-flag=value' spellings accepted" wait_http_pid "$BG_PID" "http://127.0.0.1:$port/-/ready" 15
stop_pid "$BG_PID"

# SIGTERM stops lookout cleanly (exit 0).
start_lookout term || { not_ok "lookout starts"; exit 1; }
kill -TERM "$LOOKOUT_PID"; wait "$LOOKOUT_PID"; rc=$?
check_eq "SIGTERM: exit 0" 0 "$rc"
