#!/usr/bin/env bash
# The Periskop-compatible API against a real scrape: shapes byte-compared (timestamps normalised), the
# alert rules example validated with promtool, reload keeping scrape phases.
. "$(dirname "$0")/../lib/common.sh"
W=$TMP/www; mkdir -p "$W"
cat >"$W/p.json" <<'JSON'
{"target_uuid":"t1","aggregated_errors":[{"aggregation_key":"key/with slash","total_count":2,"severity":"warning","created_at":"2024-03-02T09:14:07.512Z","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":["a:1"],"cause":null},"uuid":"u1","timestamp":"2024-03-02T11:02:44.901Z","severity":"warning","http_context":{"request_method":"GET","request_url":"http://x/","request_headers":{"Accept":"*/*"},"request_body":null}}]}]}
JSON
HPORT=$(free_port)
(cd "$W" && exec python3 -m http.server "$HPORT" --bind 127.0.0.1) >/dev/null 2>&1 &
_pids+=($!)
wait_http "http://127.0.0.1:$HPORT/p.json" 10
cat >"$TMP/l.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: svc
    metrics_path: /p.json
    static_configs: [{targets: ['127.0.0.1:$HPORT']}]
  - job_name: idle
    static_configs: [{targets: []}]
YML
start_lookout papi --config.file="$TMP/l.yml" --web.enable-lifecycle || { not_ok "lookout starts"; exit 1; }
has_errors() { [ "$(get /services/svc/errors/)" != "[]" ]; }
eventually 10 has_errors
check_eq "GET /services/ lists configured jobs" '["idle","svc"]' "$(get /services/)"
exp='[{"aggregation_key":"key/with slash","total_count":2,"severity":"warning","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":["a:1"],"cause":null},"uuid":"u1","timestamp":1709377364,"severity":"warning","http_context":{"request_method":"GET","request_url":"http://x/","request_headers":{"Accept":"*/*"},"request_body":""}}],"created_at":1709370847}]'
check_eq "GET /services/svc/errors/ shape" "$exp" "$(get /services/svc/errors/)"
check_eq "GET /services/idle/errors/ empty" "[]" "$(get /services/idle/errors/)"
check_eq "unknown service 404" "404 service nope not found" "$(curl -s -w '%{http_code}' -o "$TMP/b" "$LOOKOUT_URL/services/nope/errors/"; echo " $(cat "$TMP/b")")"
check_eq "GET /targets/" "{\"idle\":[],\"svc\":[{\"endpoint\":\"127.0.0.1:$HPORT/p.json\"}]}" "$(get /targets/)"
check_eq "GET /-/health" "OK" "$(get /-/health)"
check_eq "DELETE raw key with slash" "204" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOOKOUT_URL/services/svc/errors/key/with%20slash/")"
check_eq "resolved error hidden" "[]" "$(get /services/svc/errors/)"

# Reload keeping phases: lastScrape keeps its sub-second offset across a reload of another job.
phase() { get /api/v1/targets | python3 -c '
import json,sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["scrapePool"]=="svc": print(t["lastScrape"])'; }
# same_phase A B: the sub-second parts of two RFC 3339 times differ by at most 30 ms (start jitter).
same_phase() { python3 -c '
import sys
def frac(t): return int((t.split(".")[1].rstrip("Z") + "000")[:3]) if "." in t else 0
d = abs(frac(sys.argv[1]) - frac(sys.argv[2])); d = min(d, 1000 - d)
sys.exit(0 if d <= 30 else 1)' "$1" "$2"; }
p1=$(phase)
sed -i 's/targets: \[\]/targets: ["127.0.0.1:1"]/' "$TMP/l.yml"
curl -s -o /dev/null -X POST "$LOOKOUT_URL/-/reload"
sleep 2.2
p2=$(phase)
check "reload keeps the scrape phase ($p1 / $p2)" same_phase "$p1" "$p2"
check_contains "scraped again after the reload" "$p2" "Z"
[ "$p1" != "$p2" ] && ok "lastScrape advanced" || not_ok "lastScrape advanced"

# The same with the default store (SQLite) and across a restart: a resolved error stays out of the
# Periskop list (and out of the API's status=open) until it occurs again.
stop_pid "$LOOKOUT_PID"
cat >"$TMP/s.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: svc
    metrics_path: /p.json
    static_configs: [{targets: ['127.0.0.1:$HPORT']}]
YML
start_lookout sqlite --config.file="$TMP/s.yml" || { not_ok "lookout (sqlite) starts"; exit 1; }
eventually 10 has_errors
check_eq "sqlite: DELETE" "204" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOOKOUT_URL/services/svc/errors/key/with%20slash/")"
check_eq "sqlite: resolved error hidden" "[]" "$(get /services/svc/errors/)"
check_contains "sqlite: status=open empty" "$(get '/api/v1/errors?status=open')" '"total":0}'
check_contains "sqlite: status=resolved lists it" "$(get '/api/v1/errors?status=resolved')" '"total":1}'
stop_pid "$LOOKOUT_PID"
start_lookout sqlite --config.file="$TMP/s.yml" || { not_ok "lookout (sqlite) restarts"; exit 1; }
scraped() { get /api/v1/targets | grep -q '"health":"up"'; }
eventually 10 scraped
sleep 1.2 # one more scrape interval after the first successful scrape
check_eq "sqlite: still hidden after a restart and a scrape" "[]" "$(get /services/svc/errors/)"
# it occurs again: listed again
sed -i 's/"total_count":2/"total_count":3/' "$W/p.json"
count3() { get /services/svc/errors/ | grep -q '"total_count":3'; }
check "sqlite: listed again when it occurs again" eventually 10 count3

if command -v promtool >/dev/null; then
  check "alerts.yml passes promtool check rules" promtool check rules "$ROOT/config/examples/alerts.yml"
else
  echo "ok - alerts.yml promtool check # SKIP promtool not installed"
fi
