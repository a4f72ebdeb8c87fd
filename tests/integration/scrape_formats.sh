#!/usr/bin/env bash
# Targets in every client's format, then one target whose payload we rewrite between scrapes: counter
# reset, restart without target_uuid, duplicate samples, resolve then regression.
. "$(dirname "$0")/../lib/common.sh"
W=$TMP/www; mkdir -p "$W"
cp "$ROOT"/tests/fixtures/payloads/{go,python,ruby,scala}.json "$W/"
HPORT=$(free_port)
(cd "$W" && exec python3 -m http.server "$HPORT" --bind 127.0.0.1) >/dev/null 2>&1 &
_pids+=($!)
payload() { # payload FILE UUID COUNT OCC_UUID...   (UUID "" = no target_uuid)
  local f=$1 u=$2 c=$3; shift 3
  python3 - "$f" "$u" "$c" "$@" <<'PY'
import json,sys
f,u,c=sys.argv[1],sys.argv[2],int(sys.argv[3])
occ=[{"error":{"class":"E","message":"boom","stacktrace":["a.py:1"]},"uuid":o,"timestamp":"2024-03-02T11:02:44Z","severity":"error"} for o in sys.argv[4:]]
d={"aggregated_errors":[{"aggregation_key":"E@1","total_count":c,"severity":"error","latest_errors":occ}]}
if u: d["target_uuid"]=u
open(f+".tmp","w").write(json.dumps(d))
import os; os.rename(f+".tmp",f)
PY
}
payload "$W/app.json" A 5 o1 o2
wait_http "http://127.0.0.1:$HPORT/go.json" 10
cat >"$TMP/l.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: formats
    static_configs:
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /go.json, lang: go}
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /python.json, lang: python}
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /ruby.json, lang: ruby}
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /scala.json, lang: scala}
  - job_name: app
    static_configs:
      - targets: ['127.0.0.1:$HPORT']
        labels: {__metrics_path__: /app.json, pod: app-0}
YML
start_lookout formats --config.file="$TMP/l.yml" || { not_ok "lookout starts"; exit 1; }
count() { get "/api/v1/errors?job=$1" | python3 -c '
import json,sys
d=json.load(sys.stdin)["data"]
print(" ".join("%s=%s" % (e["aggregation_key"], e["total_count"]) for e in sorted(d["errors"], key=lambda e: e["aggregation_key"])))'; }
is() { [ "$(count "$1")" = "$2" ]; }
exp='*url.Error@9f3c1a07=137 NoMethodError@a1b2c3d4=3 ZeroDivisionError@4f2a9c1d=5 custom-key=2 feature-flag-fallback=12 java.lang.IllegalStateException@5e0d2c41=3'
eventually 10 is formats "$exp"
check_eq "every client's format merged" "$exp" "$(count formats)"
check_contains "labels seen include public target labels" "$(get '/api/v1/errors?job=formats&label=lang%3Dscala')" '"total":2}'
eventually 10 is app "E@1=5"
check_eq "first scrape" "E@1=5" "$(count app)"
payload "$W/app.json" A 5 o1 o2 o1
n_samples() { get "/api/v1/errors/app/E@1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["samples"]))' 2>/dev/null; }
samples_are() { [ "$(n_samples)" = "$1" ]; }
# o2 arriving proves the new body was scraped and merged; o1 twice must still count once
eventually 10 samples_are 2
d=$(get "/api/v1/errors/app/E@1")
check_eq "duplicate samples kept once" "2" "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["samples"]))' <<<"$d")"
check_contains "pod label seen" "$d" '"pod":"app-0"'
curl -s -o /dev/null -X DELETE "$LOOKOUT_URL/services/app/errors/E@1/"
check_eq "resolved hidden from Periskop list" "[]" "$(get /services/app/errors/)"
payload "$W/app.json" A 3 o3      # same instance, count went down: a counter reset
eventually 10 is app "E@1=8"
check_eq "counter reset adds the new count" "E@1=8" "$(count app)"
check_contains "resolve then regression" "$(get /api/v1/errors/app/E@1)" '"status":"regressed"'
payload "$W/app.json" B 2 o4      # restart with a new target_uuid
eventually 10 is app "E@1=10"
check_eq "restart with new target_uuid adds" "E@1=10" "$(count app)"
payload "$W/app.json" "" 4 o5     # restart without target_uuid: the URL is the instance
eventually 10 is app "E@1=14"
check_eq "restart without target_uuid adds" "E@1=14" "$(count app)"
payload "$W/app.json" "" 6 o5
eventually 10 is app "E@1=16"
check_eq "no-uuid instance counts deltas" "E@1=16" "$(count app)"
check_contains "error metric without instance label" "$(get /metrics)" 'lookout_error_occurrences_total{job="app",severity="error",aggregation_key="E@1"} 16'
