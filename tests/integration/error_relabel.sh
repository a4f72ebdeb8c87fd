#!/usr/bin/env bash
# error_relabel_configs end to end: a real lookout scraping a target whose Go client hashes messages into
# keys, and a pushing client: regrouping with exact counts across a per-key reset and a lookout restart
# (SQLite), noise dropped and counted per job and reason, severity by class, the error's own labels
# searchable, push rules, and GET /api/v1/errors/relabel_steps.
. "$(dirname "$0")/../lib/common.sh"
mkdir -p "$TMP/www/-"
payload() { # A_COUNT B_COUNT
  cat >"$TMP/www/-/exceptions.tmp" <<JSON
{"target_uuid":"go-1","aggregated_errors":[
 {"aggregation_key":"*url.Error@9f3c1a07","total_count":$1,"severity":"error","latest_errors":[{"error":{"class":"*url.Error","message":"Get http://billing: EOF","stacktrace":[]},"uuid":"a-$1","timestamp":"2024-03-02T10:00:0$(( $1 % 10 ))Z"}]},
 {"aggregation_key":"*url.Error@0b7e22d1","total_count":$2,"severity":"error","latest_errors":[{"error":{"class":"*url.Error","message":"Get http://users: EOF","stacktrace":[]},"uuid":"b-$2","timestamp":"2024-03-02T10:01:0$(( $2 % 10 ))Z"}]},
 {"aggregation_key":"canceled@11111111","total_count":9,"severity":"error","latest_errors":[{"error":{"class":"*errors.errorString","message":"context canceled","stacktrace":[]},"uuid":"c-1","timestamp":"2024-03-02T10:02:00Z"}]},
 {"aggregation_key":"billing/invoice-timeout","total_count":4,"severity":"error","latest_errors":[{"error":{"class":"TimeoutError","message":"invoice slow","stacktrace":[]},"uuid":"d-1","timestamp":"2024-03-02T10:03:00Z"}]}
]}
JSON
  mv "$TMP/www/-/exceptions.tmp" "$TMP/www/-/exceptions"
}
payload 10 5
TPORT=$(free_port)
bg python3 -m http.server "$TPORT" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1
wait_http "http://127.0.0.1:$TPORT/-/exceptions" 10 || { not_ok "fake target starts"; exit 1; }
sed "s/api.example.internal:8080/127.0.0.1:$TPORT/; s/scrape_interval: 15s/scrape_interval: 1s/; s/alertmanager.example.internal:9093/127.0.0.1:9/" \
  "$ROOT/config/examples/triage.yml" >"$TMP/lookout.yml"
start_lookout er --config.file="$TMP/lookout.yml" || { not_ok "lookout starts"; exit 1; }

total() { # KEY -> total_count of job api (0 when absent)
  get "/api/v1/errors?job=api&limit=100" | python3 -c '
import json,sys
print(sum(e["total_count"] for e in json.load(sys.stdin)["data"]["errors"] if e["aggregation_key"]==sys.argv[1]))' "$1"
}
is_total() { [ "$(total "$1")" == "$2" ]; }
eventually 15 is_total '*url.Error' 15
check_eq "two hashed keys regrouped into one: 10 + 5" 15 "$(total '*url.Error')"
check_eq "the hashed keys themselves are not stored" 0 "$(total '*url.Error@9f3c1a07')"
check_eq "noise dropped, never stored (neither key)" 00 "$(total 'canceled')$(total 'canceled@11111111')"
check_contains "dropped counted per job and reason" "$(get /metrics)" 'lookout_errors_dropped_total{job="api",reason="relabel_drop"}'
sev=$(get "/api/v1/errors?job=api&q=key:invoice" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["errors"][0]["severity"])')
check_eq "severity rewritten by class (TimeoutError -> warning)" warning "$sev"
check_contains "the error's own label is searchable (q=team:billing)" \
  "$(get '/api/v1/errors?q=team:billing')" '"aggregation_key":"billing/invoice-timeout"'
check_contains "and filterable with label=" "$(get '/api/v1/errors?label=team%3Dbilling')" '"total":1}'
nsamp=$(get '/api/v1/errors/api/%2Aurl.Error' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["samples"]))')
check_eq "samples of both original keys merged" 2 "$nsamp"

# one original key restarts (10 -> 1) while the other grows (5 -> 7): +1 +2, not a reset of the sum
payload 1 7
eventually 15 is_total '*url.Error' 18
check_eq "per-original-key reset accounting: 15 + 1 + 2" 18 "$(total '*url.Error')"

steps=$(get '/api/v1/errors/relabel_steps?job=api&key=%2Aurl.Error@9f3c1a07&instance=127.0.0.1:'"$TPORT")
check_contains "relabel_steps: input has the target and error labels" "$steps" '"__aggregation_key__":"*url.Error@9f3c1a07"'
check_contains "relabel_steps: the first rule rewrites the key" "$steps" '"keep":true'
check_contains "relabel_steps: result" "$steps" '"result":{"dropped":false,"aggregation_key":"*url.Error","severity":"error","labels":{'
steps=$(get '/api/v1/errors/relabel_steps?job=api&key=x&message=context%20canceled')
check_contains "relabel_steps: a dropped error says by which action" "$steps" '"result":{"dropped":true,"reason":"relabel_drop"}'
check_eq "relabel_steps without key -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/api/v1/errors/relabel_steps?job=api")"

# restart (SQLite): the per-original-key counts survive
stop_pid "$LOOKOUT_PID"
start_lookout er --config.file="$TMP/lookout.yml" || { not_ok "lookout restarts"; exit 1; }
sleep 2.5 # a few scrapes of the unchanged payload
check_eq "after a restart the same payload adds nothing" 18 "$(total '*url.Error')"
payload 3 7
eventually 15 is_total '*url.Error' 20
check_eq "after a restart only the new increase is added: 18 + 2" 20 "$(total '*url.Error')"

# push rules: DebugTrace dropped for pushed jobs
curl -s -o /dev/null -X POST --data-binary '{"target_uuid":"p1","aggregated_errors":[
 {"aggregation_key":"dbg","total_count":3,"severity":"info","latest_errors":[{"error":{"class":"DebugTrace","message":"tick","stacktrace":[]},"uuid":"p-1","timestamp":"2024-03-02T10:00:00Z"}]},
 {"aggregation_key":"real","total_count":2,"severity":"error","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":[]},"uuid":"p-2","timestamp":"2024-03-02T10:00:00Z"}]}]}' \
  "$LOOKOUT_URL/api/v1/push/pj"
check_contains "push: kept error stored" "$(get '/api/v1/errors?job=pj')" '"aggregation_key":"real"'
check_contains "push: DebugTrace dropped" "$(get '/api/v1/errors?job=pj')" '"total":1}'
check_contains "push drop counted" "$(get /metrics)" 'lookout_errors_dropped_total{job="pj",reason="relabel_drop"} 1'

# a reload that removes the regrouping rule: the next body (unchanged bytes) is merged under the new
# rules, so the hashed keys appear under their own keys, counted afresh
python3 - "$TMP/lookout.yml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
start = s.index("      - source_labels: [__aggregation_key__]\n        regex: '(.+)@")
end = s.index("      # Noise")
open(p, "w").write(s[:start] + s[end:])
PY
kill -HUP "$LOOKOUT_PID"
eventually 15 is_total '*url.Error@9f3c1a07' 3
check_eq "after a reload without the regrouping rule, unchanged bodies are merged under the new rules" \
  "3 7 20" "$(total '*url.Error@9f3c1a07') $(total '*url.Error@0b7e22d1') $(total '*url.Error')"
