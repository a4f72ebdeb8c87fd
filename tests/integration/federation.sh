#!/usr/bin/env bash
# Federation: two lower lookouts scrape test targets; an upper lookout scrapes both lowers'
# GET /federate/exceptions. With honor_labels the upper keeps each error's job of origin and its counts
# equal the sum of the lowers' (and follow them when they grow); without honor_labels everything lands in
# the scrape job with exported_job labels. Stable target_uuid across restarts of a lower.
. "$(dirname "$0")/../lib/common.sh"
W=$TMP/www; mkdir -p "$W"
# payload FILE UUID KEY COUNT OCCURRENCE-UUID
payload() {
  cat >"$W/$1" <<JSON
{"target_uuid":"$2","aggregated_errors":[{"aggregation_key":"$3","total_count":$4,"severity":"error","created_at":"2024-03-02T09:00:00Z","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":["a:1"],"cause":null},"uuid":"$5","timestamp":"2024-03-02T10:00:00Z","severity":"error","http_context":null}]}]}
JSON
}
payload t1.json uuid-1 k 3 o1
payload t2.json uuid-2 k 4 o2
payload t3.json uuid-3 k 2 o3
payload t4.json uuid-4 k 5 o4
payload t5.json uuid-5 k 1 o5
HPORT=$(free_port)
(cd "$W" && exec python3 -m http.server "$HPORT" --bind 127.0.0.1) >/dev/null 2>&1 &
_pids+=($!)
wait_http "http://127.0.0.1:$HPORT/t1.json" 10 || { not_ok "test targets start"; exit 1; }
T=127.0.0.1:$HPORT
# lower NAME API-FILES... -- WEB-FILES...
lower_cfg() {
  local out=$1; shift
  {
    echo "global: {scrape_interval: 1s, scrape_timeout: 1s}"
    echo "storage: {type: memory}"
    echo "scrape_configs:"
    for job in api web; do
      echo "  - job_name: $job"
      echo "    static_configs:"
      while [ $# -gt 0 ] && [ "$1" != -- ]; do
        echo "      - {targets: ['$T'], labels: {__metrics_path__: /$1, file: $1}}"; shift
      done
      [ $# -gt 0 ] && shift
    done
  } >"$out"
}
lower_cfg "$TMP/l1.yml" t1.json t2.json -- t3.json
lower_cfg "$TMP/l2.yml" t4.json -- t5.json
start_lookout lower1 --config.file="$TMP/l1.yml" || { not_ok "lower1 starts"; exit 1; }
L1=$LOOKOUT_URL; L1PORT=$LOOKOUT_PORT; L1PID=$LOOKOUT_PID
start_lookout lower2 --config.file="$TMP/l2.yml" || { not_ok "lower2 starts"; exit 1; }
L2=$LOOKOUT_URL
cat >"$TMP/u.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate/exceptions
    static_configs: [{targets: ['127.0.0.1:$L1PORT', '${L2#http://}']}]
  - job_name: flat
    metrics_path: /federate/exceptions
    params: {job: [api]}
    static_configs: [{targets: ['127.0.0.1:$L1PORT', '${L2#http://}']}]
YML
start_lookout upper --config.file="$TMP/u.yml" || { not_ok "upper starts"; exit 1; }
U=$LOOKOUT_URL

# total URL JOB KEY
total() { curl -s "$1/services/$2/errors/" | python3 -c '
import json,sys
try: print(sum(a["total_count"] for a in json.load(sys.stdin) if a["aggregation_key"]==sys.argv[1]))
except Exception: print(-1)' "$3"; }
expect() { [ "$(total "$1" "$2" "$3")" = "$4" ]; }
eventually 15 expect "$L1" api k 7
eventually 15 expect "$L2" api k 5
check_eq "lower1 api total" 7 "$(total "$L1" api k)"
check_eq "lower2 api total" 5 "$(total "$L2" api k)"
exp=$(curl -s "$L1/federate/exceptions?job=api" | python3 -c '
import json,sys
d=json.load(sys.stdin); a=d["aggregated_errors"]
print(len(a), a[0]["__lookout_job__"], a[0]["total_count"], sorted(o["uuid"] for o in a[0]["latest_errors"]), d["__lookout_instance__"]!="")')
check_eq "lower1 /federate/exceptions?job=api: one aggregate, merged count, samples" "1 api 7 ['o1', 'o2'] True" "$exp"

eventually 15 expect "$U" api k 12
eventually 5 expect "$U" web k 3
check_eq "upper api == lower1 + lower2 (7 + 5)" 12 "$(total "$U" api k)"
check_eq "upper web == lower1 + lower2 (2 + 1)" 3 "$(total "$U" web k)"
check_eq "upper keeps the origin jobs" '["api","federate","flat","web"]' "$(curl -s "$U/services/")"
check_eq "honor_labels: nothing under the scrape job" "[]" "$(curl -s "$U/services/federate/errors/")"
samples=$(curl -s "$U/services/api/errors/" | python3 -c '
import json,sys
print(sorted(o["uuid"] for a in json.load(sys.stdin) for o in a["latest_errors"]))')
check_eq "upper has every lower sample once" "['o1', 'o2', 'o4']" "$samples"
eventually 5 expect "$U" flat k 12
check_eq "without honor_labels: the scrape job sums the selected origin job" 12 "$(total "$U" flat k)"
labels=$(curl -s "$U/api/v1/errors/flat/k" | python3 -c '
import json,sys
d=json.load(sys.stdin)["data"]
print(sorted({l.get("exported_job","-") for l in d["labels_seen"]}))' 2>/dev/null)
check_eq "without honor_labels: exported_job label" "['api']" "$labels"

# Counts follow the lowers: a target's count grows; scrapes of unchanged state add nothing.
payload t1.json uuid-1 k 10 o6
eventually 15 expect "$U" api k 19
check_eq "upper follows a lower's increase (14 + 5)" 19 "$(total "$U" api k)"
# Liveness first: the upper scrapes the lowers at least twice more, then the count must be unchanged.
scrapes_u() { curl -s "$U/metrics" | awk '$1 == "lookout_scrapes_total" || index($1, "lookout_scrapes_total{") == 1 { s += $NF } END { printf "%d\n", s }'; }
scraped_to() { [ "$(scrapes_u)" -ge "$1" ]; }
s0=$(scrapes_u)
check "the upper keeps scraping (lookout_scrapes_total from $s0 up by 4)" eventually 15 scraped_to $((s0 + 4))
check_eq "repeated scrapes of the same state add nothing" 19 "$(total "$U" api k)"

# The target_uuid a lower exports is stable across its restart (instance id under storage.path).
u1=$(curl -s "$L1/federate/exceptions?job=api" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_uuid"])')
stop_pid "$L1PID"
LOOKOUT_PORT=$L1PORT
bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$L1PORT --storage.path="$TMP/lower1-data" --config.file="$TMP/l1.yml" >>"$TMP/lower1.log" 2>&1
check "restarted lower is ready" wait_http "$L1/-/ready" 15
u2=$(curl -s "$L1/federate/exceptions?job=api" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_uuid"])')
check_eq "lower target_uuid stable across restarts" "$u1" "$u2"
u3=$(curl -s "$L1/federate/exceptions?job=web" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_uuid"])')
[ "$u1" != "$u3" ] && ok "target_uuid differs per job" || not_ok "target_uuid differs per job"
