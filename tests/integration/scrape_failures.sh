#!/usr/bin/env bash
# Failing targets: hung (timeout), refusing, 50 MiB body (limit), invalid JSON, HTTP 500. Each goes down
# with a precise lastError and an entry in /-/exceptions; a good target in the same job stays up.
. "$(dirname "$0")/../lib/common.sh"
BUILD=${BUILD:-build}
SRV=$ROOT/$BUILD/helpers/exception_server
[ -x "$SRV" ] || make -C "$ROOT" -s "$BUILD/helpers/exception_server" >/dev/null
SPORT=$(free_port); DEAD=$(free_port); HPORT=$(free_port)
bg "$SRV" --port "$SPORT" --threads 8 >/dev/null 2>&1
# /hang holds one of a pool server's threads, and every connection that thread owns with it: the hung
# target gets a server of its own, so that no other target's (kept-alive, per-target) connection waits.
bg "$SRV" --port "$HPORT" >/dev/null 2>&1
wait_http "http://127.0.0.1:$SPORT/ok" 10 || { not_ok "exception_server starts"; exit 1; }
wait_http "http://127.0.0.1:$HPORT/ok" 10 || { not_ok "exception_server starts"; exit 1; }
cat >"$TMP/l.yml" <<YML
global: {scrape_interval: 2s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: fail
    static_configs:
      - targets: ['127.0.0.1:$SPORT']
        labels: {__metrics_path__: /ok, case: good}
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /hang, case: hang}
      - targets: ['127.0.0.1:$DEAD']
        labels: {case: refused}
      - targets: ['127.0.0.1:$SPORT']
        labels: {__metrics_path__: /huge, case: huge}
      - targets: ['127.0.0.1:$SPORT']
        labels: {__metrics_path__: /garbage, case: garbage}
      - targets: ['127.0.0.1:$SPORT']
        labels: {__metrics_path__: /status/500, case: http500}
YML
start_lookout fail --config.file="$TMP/l.yml" || { not_ok "lookout starts"; exit 1; }

state() { # state CASE -> "health|lastError"
  get /api/v1/targets | python3 -c '
import json,sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["labels"].get("case")==sys.argv[1]: print(t["health"]+"|"+t["lastError"])' "$1"
}
all_scraped() { [ "$(get /api/v1/targets | grep -o '"health":"unknown"' | wc -l)" = 0 ]; }
eventually 10 all_scraped
sleep 2.5
check_eq "good target up" "up|" "$(state good)"
check_contains "hung target times out" "$(state hang)" "down|Get \"http://127.0.0.1:$HPORT/hang\": context deadline exceeded"
check_contains "refusing target" "$(state refused)" "connection refused"
check_contains "50 MiB body hits the limit" "$(state huge)" "body size limit exceeded (10485760 bytes)"
check_contains "garbage is an invalid payload" "$(state garbage)" "down|invalid JSON"
check_eq "HTTP 500" "down|server returned HTTP status 500 Internal Server Error" "$(state http500)"
ex=$(get /-/exceptions)
check_contains "scrape errors in /-/exceptions" "$ex" '"aggregation_key":"scrape-error"'
check_contains "parse errors in /-/exceptions" "$ex" '"aggregation_key":"scrape-parse-error"'
check_contains "scrape error has the URL as HTTP context" "$ex" "\"request_url\":\"http://127.0.0.1:$SPORT/status/500\""
check_contains "good target's errors are stored" "$(get /services/fail/errors/)" '"aggregation_key"'
m=$(get /metrics)
check_contains "parse failures counted" "$m" 'lookout_payload_parse_failures_total{job="fail"}'
check_contains "target_up metric" "$m" 'lookout_target_up{job="fail",instance="127.0.0.1:'"$DEAD"'"} 0'
