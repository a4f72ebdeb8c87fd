#!/usr/bin/env bash
# Retention's tombstones on the memory store (issue 12): the memory store has no persistence by design
# (nothing survives a restart, tombstones included), but a reload (SIGHUP) keeps the merge engine and so
# its tombstones: an error deleted by retention stays deleted after a reload while its instance keeps
# reporting the same count; an increase brings it back holding only the increase.
. "$(dirname "$0")/../lib/common.sh"

WWW=$TMP/www
mkdir -p "$WWW"
put() { printf '%s' "$2" >"$WWW/.$1.tmp" && mv "$WWW/.$1.tmp" "$WWW/$1.json"; }
agg() { printf '{"aggregation_key":"%s","total_count":%s,"severity":"error"}' "$1" "$2"; }
total() { curl -s "$LOOKOUT_URL/api/v1/errors/$1/$2" | python3 -c '
import json,sys
try: print(json.load(sys.stdin)["data"]["total_count"])
except Exception: print("absent")'; }
is() { [ "$("$1" "${@:2:$#-2}")" = "${!#}" ]; }

put ret '{"target_uuid":"r1","aggregated_errors":['"$(agg silent 3),$(agg live 1)"']}'
WPORT=$(free_port)
bg python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$WPORT" 2>"$TMP/www.log"
wait_http "http://127.0.0.1:$WPORT/ret.json" 10 || { not_ok "payload server starts"; exit 1; }
cat >"$TMP/ret.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory, retention: 4s}
scrape_configs:
  - job_name: ret
    metrics_path: /ret.json
    static_configs: [{targets: ['127.0.0.1:$WPORT']}]
YML
start_lookout mem --config.file="$TMP/ret.yml" || { not_ok "lookout starts"; exit 1; }
eventually 30 is total ret silent 3
check_eq "memory store: the error is stored" 3 "$(total ret silent)"
# "live" keeps occurring while "silent" has nothing new: retention deletes "silent", a tombstone stays
(
  for i in $(seq 2 200); do
    put ret '{"target_uuid":"r1","aggregated_errors":['"$(agg silent 3),$(agg live "$i")"']}'
    sleep 0.5
  done
) &
writer=$!
_pids+=("$writer")
eventually 40 is total ret silent absent
check_eq "memory store: retention deletes the silent error" absent "$(total ret silent)"
loaded() { grep -c 'msg="Completed loading of configuration file"' "$TMP/mem.log"; }
before=$(loaded)
kill -HUP "$LOOKOUT_PID"
eventually 20 bash -c "[ \$(grep -c 'msg=\"Completed loading of configuration file\"' '$TMP/mem.log') -gt $before ]"
check "memory store: SIGHUP reloads the configuration" [ "$(loaded)" -gt "$before" ]
# watch "silent" over 6 s of scrapes (one a second) after the reload: it must never come back (without its
# tombstone it would be a new error for up to the 4 s window before retention deleted it again)
seen=""
for i in $(seq 1 12); do
  seen="$seen$(total ret silent) "
  sleep 0.5
done
check_eq "memory store: after a reload, still reported with nothing new, it never comes back (the tombstone is kept)" \
  "$(printf 'absent %.0s' $(seq 1 12))" "$seen"
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
put ret '{"target_uuid":"r1","aggregated_errors":['"$(agg silent 5),$(agg live 500)"']}'
eventually 30 is total ret silent 2
check_eq "memory store: an increase after the reload brings it back holding only the increase" 2 "$(total ret silent)"
stop_pid "$LOOKOUT_PID"
