#!/usr/bin/env bash
# Configuration reload: SIGHUP and POST /-/reload (with --web.enable-lifecycle). A good config is
# applied (kept jobs keep their targets, new jobs appear, removed jobs go); a broken one is rejected and
# the running config stays, with lookout_config_last_reload_successful 0 and /-/reload answering 500.
. "$(dirname "$0")/../lib/common.sh"

CFG=$TMP/lookout.yml
write_config() { # write_config JOB:TARGET...
  echo "scrape_configs:" >"$CFG.new"
  local spec
  for spec in "$@"; do
    cat >>"$CFG.new" <<EOF
  - job_name: ${spec%%:*}
    metrics_path: /metrics
    scrape_interval: 1h
    static_configs:
      - targets: ['${spec#*:}']
EOF
  done
  mv "$CFG.new" "$CFG"
}
reload_ok() { [ "$(metric_sum lookout_config_last_reload_successful)" = "$1" ]; }

write_config "a:a.invalid:1" "b:b.invalid:1"
start_lookout reload --config.file="$CFG" --web.enable-lifecycle ||
  { not_ok "lookout starts"; exit 1; }
check "initial config: jobs a and b" eventually 10 targets_are "a/a.invalid:1,b/b.invalid:1"
check_eq "lookout_config_last_reload_successful is 1 after start" 1 "$(metric_sum lookout_config_last_reload_successful)"

# --- SIGHUP with a good config: a kept, b removed, c added.
write_config "a:a.invalid:1" "c:c.invalid:1"
kill -HUP "$LOOKOUT_PID"
check "SIGHUP: new job appears, removed job goes, kept job stays" eventually 10 \
  targets_are "a/a.invalid:1,c/c.invalid:1"
check "SIGHUP: reload reported successful" eventually 5 reload_ok 1

# --- SIGHUP with a broken config: nothing changes.
printf 'scrape_configs:\n  - job_name: a\n    scrape_interval: bogus\n' >"$CFG"
kill -HUP "$LOOKOUT_PID"
check "SIGHUP broken config: lookout_config_last_reload_successful becomes 0" eventually 10 reload_ok 0
check_eq "SIGHUP broken config: old targets keep running" "a/a.invalid:1,c/c.invalid:1" "$(active_targets)"
check "SIGHUP broken config: error logged with file and line" grep -qE "lookout\.yml:3:" "$TMP/reload.log"
check "SIGHUP broken config: lookout still running" kill -0 "$LOOKOUT_PID"

# --- POST /-/reload with the broken config: 500 and the error in the body.
code=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")
check_eq "POST /-/reload broken config: HTTP 500" 500 "$code"
check_contains "POST /-/reload broken config: body names file:line" "$(cat "$TMP/body")" "lookout.yml:3:"
check_eq "POST /-/reload broken config: old targets keep running" "a/a.invalid:1,c/c.invalid:1" "$(active_targets)"

# --- POST /-/reload with a good config.
write_config "a:a.invalid:1" "c:c.invalid:2" "d:d.invalid:1"
code=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")
check_eq "POST /-/reload good config: HTTP 200" 200 "$code"
check "POST /-/reload good config: targets follow" eventually 10 \
  targets_are "a/a.invalid:1,c/c.invalid:2,d/d.invalid:1"
check "POST /-/reload good config: lookout_config_last_reload_successful back to 1" eventually 5 reload_ok 1
code=$(curl -sS -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/-/reload")
check_eq "GET /-/reload is refused (only POST reloads): HTTP 405" 405 "$code"
check_eq "lookout still ready after the refused GET" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/-/ready")"

# --- Reload with the file gone: rejected like a broken config.
mv "$CFG" "$CFG.away"
code=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")
check_eq "POST /-/reload missing file: HTTP 500" 500 "$code"
check_eq "POST /-/reload missing file: targets unchanged" "a/a.invalid:1,c/c.invalid:2,d/d.invalid:1" "$(active_targets)"
mv "$CFG.away" "$CFG"
stop_pid "$LOOKOUT_PID"

# --- Without --web.enable-lifecycle the endpoint is disabled, SIGHUP still works.
write_config "a:a.invalid:1"
start_lookout nolife --config.file="$CFG" || { not_ok "lookout starts without lifecycle"; exit 1; }
check "started without lifecycle" eventually 10 targets_are "a/a.invalid:1"
write_config "a:a.invalid:1" "e:e.invalid:1"
code=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")
check_eq "POST /-/reload without --web.enable-lifecycle is refused: HTTP 403" 403 "$code"
check_contains "refused /-/reload says why (Prometheus' text)" "$(cat "$TMP/body")" "Lifecycle API is not enabled."
# A reload (POST or SIGHUP) is applied before the reply / within the wait below: the SIGHUP after this
# proves the same running lookout does pick the new file up, so "unchanged" here is not a dead process.
check_eq "lookout still ready after the refused POST" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/-/ready")"
check_eq "refused /-/reload does not reload" "a/a.invalid:1" "$(active_targets)"
kill -HUP "$LOOKOUT_PID"
check "SIGHUP works without --web.enable-lifecycle" eventually 10 targets_are "a/a.invalid:1,e/e.invalid:1"
