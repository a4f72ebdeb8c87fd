#!/usr/bin/env bash
# Limits and exact counts under hostile input (issue 12, part A), against a real lookout on SQLite:
#   target_limit        every target of the pool down with Prometheus' exact text, no request sent
#   sample_limit        the scrape fails whole ("sample limit exceeded"), nothing applied
#   max_errors_per_job  keys beyond the cap counted into lookout.overflow, sum of counts exact, metric
#   forged target_uuid  a push reusing a scraped target's uuid counts its own claim once (2000, not 4000)
#   future timestamps   an occurrence dated 9999 is stored at receive time
#   near-2^63 totals    saturate at 9223372036854775807 (SQLite, through separate writes)
#   retention           with a 4 s window an error that stops occurring is deleted and stays deleted
#                       while its instance reports nothing new; a live one stays; an increase brings it back
# Targets are files served by python3's http.server; waits are event-driven with generous deadlines.
. "$(dirname "$0")/../lib/common.sh"

WWW=$TMP/www
mkdir -p "$WWW"
# put NAME JSON: atomically replaces the payload served at /NAME.json
put() { printf '%s' "$2" >"$WWW/.$1.tmp" && mv "$WWW/.$1.tmp" "$WWW/$1.json"; }
agg() { printf '{"aggregation_key":"%s","total_count":%s,"severity":"error"}' "$1" "$2"; }

put sample '{"target_uuid":"s1","aggregated_errors":['"$(agg a 1),$(agg b 2),$(agg c 3)"']}'
put churn '{"target_uuid":"c1","aggregated_errors":['"$(agg k1 1),$(agg k2 2),$(agg k3 3),$(agg k4 4),$(agg k5 5),$(agg k6 6)"']}'
put victim '{"target_uuid":"victim","aggregated_errors":['"$(agg k 1000)"']}'
put future '{"target_uuid":"f1","aggregated_errors":[{"aggregation_key":"f","total_count":2,"latest_errors":[
  {"error":{"class":"E","message":"from the future"},"uuid":"fu1","timestamp":"9999-12-31T23:59:59Z"},
  {"error":{"class":"E","message":"present"},"uuid":"fu2","timestamp":"'"$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"'"}]}]}'
put big1 '{"target_uuid":"b1","aggregated_errors":['"$(agg k 9223372036854775800)"']}'
put big2 '{"target_uuid":"b2","aggregated_errors":['"$(agg k 1000)"']}'

WPORT=$(free_port)
bg python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$WPORT" 2>"$TMP/www.log"
wait_http "http://127.0.0.1:$WPORT/sample.json" 10 || { not_ok "payload server starts"; exit 1; }
T=127.0.0.1:$WPORT

cat >"$TMP/limits.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage:
  type: sqlite
  max_errors_per_job: 3
scrape_configs:
  - job_name: over_target_limit
    target_limit: 2
    static_configs: [{targets: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']}]
  - job_name: within_target_limit
    target_limit: 2
    metrics_path: /sample.json
    static_configs: [{targets: ['$T']}]
  - job_name: sample
    sample_limit: 2
    metrics_path: /sample.json
    static_configs: [{targets: ['$T']}]
  - job_name: sample_ok
    sample_limit: 3
    metrics_path: /sample.json
    static_configs: [{targets: ['$T']}]
  - job_name: churn
    metrics_path: /churn.json
    static_configs: [{targets: ['$T']}]
  - job_name: scraped
    metrics_path: /victim.json
    static_configs: [{targets: ['$T']}]
  - job_name: future
    metrics_path: /future.json
    static_configs: [{targets: ['$T']}]
  - job_name: big
    static_configs: [{targets: ['$T'], labels: {__metrics_path__: /big1.json}},
                     {targets: ['localhost:$WPORT'], labels: {__metrics_path__: /big2.json}}]
YML
start_lookout limits --config.file="$TMP/limits.yml" --web.enable-push || { not_ok "lookout starts"; exit 1; }

# targets JOB: "health|lastError" of each active target of JOB, sorted, one per line
targets() { get /api/v1/targets | python3 -c '
import json,sys
d=json.load(sys.stdin)["data"]["activeTargets"]
print("\n".join(sorted("%s|%s" % (t["health"], t["lastError"]) for t in d if t["scrapePool"]==sys.argv[1])))' "$1"; }
# total JOB KEY: total_count from GET /api/v1/errors/{job}/{key}, "absent" on 404
total() { curl -s "$LOOKOUT_URL/api/v1/errors/$1/$2" | python3 -c '
import json,sys
try: print(json.load(sys.stdin)["data"]["total_count"])
except Exception: print("absent")'; }
# keys JOB: the job's error keys with counts, sorted ("key=count,...")
keys() { get "/api/v1/errors?job=$1&limit=1000" | python3 -c '
import json,sys
print(",".join(sorted("%s=%d" % (e["aggregation_key"], e["total_count"]) for e in json.load(sys.stdin)["data"]["errors"])))'; }
# metric NAME{LABELS}: its value on /metrics (0 when absent)
metric() { get /metrics | awk -v m="$1" '$1==m {v=$2} END {print v+0}'; }
is() { [ "$("$1" "${@:2:$#-2}")" = "${!#}" ]; }

limit3='down|target_limit exceeded (number of targets: 3, limit: 2)'
eventually 30 is targets over_target_limit "$limit3"$'\n'"$limit3"$'\n'"$limit3"
check_eq "target_limit: every target of the pool down with Prometheus' text" \
  "$limit3"$'\n'"$limit3"$'\n'"$limit3" "$(targets over_target_limit)"
check "target_limit: counted in lookout_target_scrape_pool_exceeded_target_limit_total (Prometheus' name)" \
  metric_at_least lookout_target_scrape_pool_exceeded_target_limit_total 1
eventually 30 is targets within_target_limit "up|"
check_eq "target_limit: a pool within its limit scrapes" "up|" "$(targets within_target_limit)"

eventually 30 is targets sample "down|sample limit exceeded"
check_eq "sample_limit: the target is down with Prometheus' text" "down|sample limit exceeded" "$(targets sample)"
eventually 30 is keys sample_ok "a=1,b=2,c=3"
check_eq "sample_limit: the same payload within the limit is stored" "a=1,b=2,c=3" "$(keys sample_ok)"
check_eq "sample_limit: nothing of the refused scrapes applied" "" "$(keys sample)"
check "sample_limit: counted in lookout_target_scrapes_exceeded_sample_limit_total" \
  test "$(metric 'lookout_target_scrapes_exceeded_sample_limit_total{job="sample"}')" -ge 1

eventually 30 is keys churn "k1=1,k2=2,k3=3,lookout.overflow=15"
check_eq "max_errors_per_job 3: keys beyond counted into lookout.overflow (sum 21 exact)" \
  "k1=1,k2=2,k3=3,lookout.overflow=15" "$(keys churn)"
check_eq "max_errors_per_job: lookout_errors_overflowed_total{job=\"churn\"}" 15 \
  "$(metric 'lookout_errors_overflowed_total{job="churn"}')"
check_contains "max_errors_per_job: a log line names the job" "$(cat "$TMP/limits.log")" \
  'new keys are counted into lookout.overflow" job=churn max_errors_per_job=3'
check_eq "max_errors_per_job: /metrics per-error series of the job bounded (3 + overflow)" 4 \
  "$(get /metrics | grep -c '^lookout_error_occurrences_total{job="churn"')"
# a new key later still goes to the overflow (sticky), the count stays exact
put churn '{"target_uuid":"c1","aggregated_errors":['"$(agg k1 1),$(agg k2 2),$(agg k3 3),$(agg k4 4),$(agg k5 5),$(agg k6 6),$(agg k7 10)"']}'
eventually 30 is keys churn "k1=1,k2=2,k3=3,lookout.overflow=25"
check_eq "max_errors_per_job: a later new key counted into the overflow" "k1=1,k2=2,k3=3,lookout.overflow=25" "$(keys churn)"

eventually 30 is total scraped k 1000
for i in 1 2 3; do
  curl -s -o /dev/null --data-binary @"$WWW/victim.json" "$LOOKOUT_URL/api/v1/push/scraped"
  sleep 1.2 # let a scrape of the real target land between pushes (the forgery interleaves with it)
done
eventually 10 is total scraped k 2000
check_eq "forged target_uuid: three pushes as the scraped instance add their claim once (2000, not 4000)" \
  2000 "$(total scraped k)"
sleep 2
check_eq "forged target_uuid: later scrapes of the real target add nothing" 2000 "$(total scraped k)"

eventually 30 is total future f 2
ts=$(curl -s "$LOOKOUT_URL/api/v1/errors/future/f" | python3 -c '
import json,sys
d=json.load(sys.stdin)["data"]
print(" ".join(s["uuid"]+"@"+s["timestamp"][:4] for s in d["samples"]), d["last_seen"][:4])')
check_eq "future timestamps: the 9999 occurrence stored at receive time, last_seen not 9999" \
  "fu1@$(date -u +%Y) fu2@$(date -u -d '-1 hour' +%Y) $(date -u +%Y)" "$ts"

eventually 30 is total big k 9223372036854775807
check_eq "near-2^63 totals saturate at INT64_MAX (SQLite)" 9223372036854775807 "$(total big k)"
put big2 '{"target_uuid":"b2","aggregated_errors":['"$(agg k 5000)"']}'
eventually 10 grep -q 'b2' "$WWW/big2.json"
sleep 2.5
check_eq "near-2^63 totals stay saturated after another increase" 9223372036854775807 "$(total big k)"
check "lookout still healthy" curl -fsS -o /dev/null "$LOOKOUT_URL/-/healthy"
check_eq "no store write failure" 0 "$(metric lookout_store_write_failures_total)"
stop_pid "$LOOKOUT_PID"

# ---- retention with a 4 s window (a second lookout) ----
put ret '{"target_uuid":"r1","aggregated_errors":[{"aggregation_key":"silent","total_count":3,"latest_errors":[{"error":{"class":"E","message":"m"},"uuid":"r-1","timestamp":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'"}]}]}'
cat >"$TMP/retention.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: sqlite, retention: 4s}
scrape_configs:
  - job_name: ret
    metrics_path: /ret.json
    static_configs: [{targets: ['$T']}]
YML
start_lookout retention --config.file="$TMP/retention.yml" || { not_ok "lookout with retention 4s starts"; exit 1; }
eventually 30 is total ret silent 3
check_eq "retention: the error is stored" 3 "$(total ret silent)"
# a live error keeps occurring (its count grows each second) while "silent" has nothing new
(
  for i in $(seq 1 40); do
    put ret '{"target_uuid":"r1","aggregated_errors":[{"aggregation_key":"silent","total_count":3},'"$(agg live "$i")"']}'
    sleep 0.5
  done
) &
writer=$!
_pids+=("$writer")
eventually 40 is total ret silent absent
check_eq "retention 4s: an error with no new occurrence is deleted" absent "$(total ret silent)"
check_eq "retention: the live error stays" 1 "$(get '/api/v1/errors?job=ret' | python3 -c '
import json,sys
print(len([e for e in json.load(sys.stdin)["data"]["errors"] if e["aggregation_key"]=="live"]))')"
check "retention: lookout_errors_expired_total counts it" test "$(metric lookout_errors_expired_total)" -ge 1
check "retention: full-text search finds nothing of it" test "$(get '/api/v1/errors?q=silent' | python3 -c '
import json,sys
print(len(json.load(sys.stdin)["data"]["errors"]))')" = 0
sleep 3 # the body keeps changing (live grows) while "silent" stays at 3
check_eq "retention: still reported with nothing new, it stays deleted" absent "$(total ret silent)"
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
# a restart on the same database keeps the tombstone: the next body (live grew) leaves "silent" deleted
stop_pid "$LOOKOUT_PID"
start_lookout retention --config.file="$TMP/retention.yml" || { not_ok "lookout restarts on its database"; exit 1; }
put ret '{"target_uuid":"r1","aggregated_errors":[{"aggregation_key":"silent","total_count":3},'"$(agg live 100)"']}'
eventually 30 is total ret live 100
check_eq "retention: after a restart, still reported with nothing new, it stays deleted" absent "$(total ret silent)"
put ret '{"target_uuid":"r1","aggregated_errors":[{"aggregation_key":"silent","total_count":5},'"$(agg live 99)"']}'
eventually 30 is total ret silent 2
check_eq "retention: an increase brings it back holding only the increase" 2 "$(total ret silent)"
stop_pid "$LOOKOUT_PID"
