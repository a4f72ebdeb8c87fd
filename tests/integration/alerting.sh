#!/usr/bin/env bash
# Alerts through a real Alertmanager (Debian's prometheus-alertmanager, on loopback): a new error fires
# NewException with the labels and annotations README lists (external labels, common labels, the UI link
# from --web.external-url as annotation and generatorURL); min_severity and resolve_after keep info and
# old errors quiet; resolving in lookout resolves the alert (endsAt); a new occurrence fires
# RegressedException; notifier metrics; an unreachable Alertmanager neither blocks scraping nor the API.
# Discovery and relabeling: Alertmanagers found through file_sd (rewriting the file moves the alerts) and
# http_sd, each alertmanager config its own set; its relabel_configs drop one of two discovered
# Alertmanagers (a reload re-discovers with new rules); alert_relabel_configs drop warnings and add a label.
. "$(dirname "$0")/../lib/common.sh"
command -v prometheus-alertmanager >/dev/null || "$ROOT/scripts/deps.sh" prometheus-alertmanager >&2 ||
  { not_ok "install prometheus-alertmanager"; exit 1; }

cat >"$TMP/am.yml" <<'YML'
route:
  receiver: blackhole
  group_wait: 0s
  routes:
    - matchers: ['alertname="NewException"', 'severity="error"']
      receiver: errors
receivers:
  - name: blackhole
  - name: errors
YML
# start_am NAME: a real Alertmanager on a free port; sets AM_PORT.
start_am() {
  AM_PORT=$(free_port)
  bg prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/$1-data" \
    --web.listen-address=127.0.0.1:$AM_PORT --cluster.listen-address= >"$TMP/$1.log" 2>&1
  wait_http "http://127.0.0.1:$AM_PORT/-/ready" 20 || { not_ok "alertmanager $1 starts"; sed 's/^/#   /' "$TMP/$1.log" | tail; exit 1; }
}
start_am am
AMPORT=$AM_PORT

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
OLD=$(date -u -d '-3 hours' +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$TMP/www/-"
payload() { # BOOM_COUNT
  cat >"$TMP/www/-/exceptions.tmp" <<JSON
{"target_uuid":"t-1","aggregated_errors":[
 {"aggregation_key":"boom/1","total_count":$1,"severity":"error","latest_errors":[{"error":{"class":"IOError","message":"disk full","stacktrace":[]},"uuid":"b-$1","timestamp":"$NOW"}]},
 {"aggregation_key":"slow","total_count":2,"severity":"warning","latest_errors":[{"error":{"class":"Timeout","message":"slow upstream","stacktrace":[]},"uuid":"s-1","timestamp":"$NOW"}]},
 {"aggregation_key":"fyi","total_count":1,"severity":"info","latest_errors":[{"error":{"class":"Note","message":"fyi","stacktrace":[]},"uuid":"i-1","timestamp":"$NOW"}]},
 {"aggregation_key":"ancient","total_count":1,"severity":"error","latest_errors":[{"error":{"class":"Old","message":"long ago","stacktrace":[]},"uuid":"o-1","timestamp":"$OLD"}]}
]}
JSON
  mv "$TMP/www/-/exceptions.tmp" "$TMP/www/-/exceptions"
}
payload 3
TPORT=$(free_port)
bg python3 -m http.server "$TPORT" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1
wait_http "http://127.0.0.1:$TPORT/-/exceptions" 10 || { not_ok "fake target starts"; exit 1; }
cat >"$TMP/lookout.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {dc: test-dc}
alerting:
  resolve_after: 1h
  min_severity: warning
  alertmanagers:
    - api_version: v2
      timeout: 5s
      static_configs: [{targets: ['127.0.0.1:$AMPORT']}]
scrape_configs:
  - job_name: api
    static_configs: [{targets: ['127.0.0.1:$TPORT'], labels: {namespace: prod}}]
YML
start_lookout al --config.file="$TMP/lookout.yml" --rules.alert.resend-delay=1s --web.enable-lifecycle \
  --web.external-url=http://lookout.example:7777/ || { not_ok "lookout starts"; exit 1; }

# am_alerts [PORT]: "alertname key" lines of the active alerts in an Alertmanager (default the first), sorted
am_alerts() { curl -sS "http://127.0.0.1:${1:-$AMPORT}/api/v2/alerts" | python3 -c '
import json,sys
print("\n".join(sorted("%s %s" % (a["labels"]["alertname"], a["labels"]["aggregation_key"]) for a in json.load(sys.stdin))))'; }
am_has() { [ "$(am_alerts "${2:-}")" == "$1" ]; }
eventually 20 am_has $'NewException boom/1\nNewException slow'
check_eq "new error and warning alert; info (below min_severity) and 3 h old (resolve_after 1h) do not" \
  $'NewException boom/1\nNewException slow' "$(am_alerts)"
boom=$(curl -sS "http://127.0.0.1:$AMPORT/api/v2/alerts?filter=aggregation_key%3D%22boom%2F1%22" | python3 -c '
import json,sys
a=json.load(sys.stdin)[0]
l=a["labels"]; n=a["annotations"]
print(json.dumps([l, n, a["generatorURL"], sorted(r["name"] for r in a["receivers"])], sort_keys=True))')
check_eq "labels, annotations, generatorURL and the route" \
  '[{"aggregation_key": "boom/1", "alertname": "NewException", "dc": "test-dc", "instance": "127.0.0.1:'"$TPORT"'", "job": "api", "namespace": "prod", "severity": "error"}, {"class": "IOError", "link": "http://lookout.example:7777/#/api/errors/boom%2F1", "message": "disk full", "total_count": "3"}, "http://lookout.example:7777/#/api/errors/boom%2F1", ["errors"]]' \
  "$boom"

m=$(get /metrics)
check_contains "sent counted per alertmanager" "$m" "lookout_notifications_sent_total{alertmanager=\"http://127.0.0.1:$AMPORT/api/v2/alerts\"}"
check_contains "alertmanagers discovered" "$m" "lookout_notifications_alertmanagers_discovered 1"
check_contains "queue capacity" "$m" "lookout_notifications_queue_capacity 10000"
check_contains "nothing dropped" "$m" "lookout_notifications_dropped_total 0"

# resolved in lookout -> the alert resolves (endsAt = now)
check_contains "resolve in lookout" "$(curl -sS -X POST "$LOOKOUT_URL/api/v1/errors/api/boom%2F1/resolve")" '"status":"resolved"'
check_eq "lookout lists it resolved" 1 "$(get '/api/v1/errors?q=is:resolved' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])')"
eventually 20 am_has 'NewException slow'
check_eq "resolving the error in lookout resolves its alert" 'NewException slow' "$(am_alerts)"
# a new occurrence after the resolve -> RegressedException
payload 5
eventually 20 am_has $'NewException slow\nRegressedException boom/1'
check_eq "the error occurring again fires RegressedException" $'NewException slow\nRegressedException boom/1' "$(am_alerts)"
# a reload to resolve_after 2s: both errors' last occurrences are older than that -> both alerts resolve
sed -i 's/resolve_after: 1h/resolve_after: 2s/' "$TMP/lookout.yml"
check_eq "reload accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")"
eventually 20 am_has ''
check_eq "alerting.resolve_after without a new occurrence resolves the alerts (after a reload)" '' "$(am_alerts)"
stop_pid "$LOOKOUT_PID"

# An Alertmanager that does not answer: scraping, ingestion and the API are unaffected
DEAD=$(free_port)
sed "s/127.0.0.1:$AMPORT/127.0.0.1:$DEAD/; s/resolve_after: 2s/resolve_after: 1h/" "$TMP/lookout.yml" >"$TMP/dead.yml"
start_lookout dead --config.file="$TMP/dead.yml" --rules.alert.resend-delay=1s || { not_ok "lookout starts (dead AM)"; exit 1; }
errors_total() { metric_sum 'lookout_notifications_errors_total' 2>/dev/null; }
has_errors() { metric_at_least lookout_notifications_errors_total 1; }
eventually 20 has_errors
check "errors counted against the unreachable alertmanager" has_errors
payload 7
new_count() { [ "$(get '/api/v1/errors?job=api&q=key:boom' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["errors"][0]["total_count"])')" == 7 ]; }
eventually 10 new_count
check "scraping and the API keep working while alerts fail" new_count
check_eq "/-/healthy answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$LOOKOUT_URL/-/healthy")"
has_dropped() { metric_at_least lookout_notifications_dropped_total 1; }
eventually 20 has_dropped
check "alerts no Alertmanager took are counted as dropped" has_dropped
stop_pid "$LOOKOUT_PID"

# ---- Discovery and relabeling ----
# Three more Alertmanagers. Set config-0 (file_sd) points at AM1, later at AM3; set config-1 (http_sd,
# served by the fake target's web server) finds AM2 and AM3 (role=standby) and its relabel_configs drop
# the standby; alert_relabel_configs drop warnings and label the rest team=payments.
start_am am1; AM1=$AM_PORT
start_am am2; AM2=$AM_PORT
start_am am3; AM3=$AM_PORT
payload 8
echo '[{"targets": ["127.0.0.1:'"$AM1"'"], "labels": {"site": "a"}}]' >"$TMP/am_sd.json"
echo '[{"targets": ["127.0.0.1:'"$AM2"'"]}, {"targets": ["127.0.0.1:'"$AM3"'"], "labels": {"role": "standby"}}]' \
  >"$TMP/www/am_http_sd.json"
cat >"$TMP/sd.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
alerting:
  alert_relabel_configs:
    - {source_labels: [severity], regex: warning, action: drop}
    - {target_label: team, replacement: payments}
  alertmanagers:
    - file_sd_configs: [{files: ['$TMP/am_sd.json'], refresh_interval: 1s}]
    - http_sd_configs: [{url: 'http://127.0.0.1:$TPORT/am_http_sd.json', refresh_interval: 1s}]
      relabel_configs:
        - {source_labels: [role], regex: standby, action: drop}
scrape_configs:
  - job_name: api
    static_configs: [{targets: ['127.0.0.1:$TPORT'], labels: {namespace: prod}}]
YML
start_lookout sd --config.file="$TMP/sd.yml" --rules.alert.resend-delay=1s --web.enable-lifecycle ||
  { not_ok "lookout starts (discovered alertmanagers)"; exit 1; }
eventually 20 am_has 'NewException boom/1' "$AM1"
check_eq "file_sd: the Alertmanager in the file gets the alerts; alert_relabel_configs dropped the warning" \
  'NewException boom/1' "$(am_alerts "$AM1")"
eventually 20 am_has 'NewException boom/1' "$AM2"
check_eq "http_sd: the second set's kept Alertmanager gets them too" 'NewException boom/1' "$(am_alerts "$AM2")"
team=$(curl -sS "http://127.0.0.1:$AM2/api/v2/alerts" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["labels"].get("team"))')
check_eq "alert_relabel_configs: a label added to every alert" payments "$team"
check_eq "relabel_configs: the standby Alertmanager was dropped and got nothing" '' "$(am_alerts "$AM3")"
m=$(get /metrics)
check_contains "two Alertmanagers discovered" "$m" "lookout_notifications_alertmanagers_discovered 2"
check_eq "no sends to the dropped Alertmanager" 0 "$(grep -c "alertmanager=\"http://127.0.0.1:$AM3/" <<<"$m")"
check_contains "each set is its own discovery job (config-0, config-1)" "$m" \
  'lookout_sd_discovered_targets{job="config-1",config="http_sd_configs/0"} 2'

# rewriting the file moves set config-0 to AM3; AM1's alerts run out (endsAt 4 s ahead), AM3 gets them
echo '[{"targets": ["127.0.0.1:'"$AM3"'"]}]' >"$TMP/am_sd.json.tmp" && mv "$TMP/am_sd.json.tmp" "$TMP/am_sd.json"
eventually 20 am_has 'NewException boom/1' "$AM3"
check_eq "file rewritten: the new Alertmanager gets the alerts" 'NewException boom/1' "$(am_alerts "$AM3")"
eventually 20 am_has '' "$AM1"
check_eq "file rewritten: the old Alertmanager gets no more" '' "$(am_alerts "$AM1")"

# a reload with the opposite rules: config-1 now keeps only the standby, warnings alert again
sed -i 's/regex: standby, action: drop/regex: standby, action: keep/; s/regex: warning, action: drop/regex: none, action: drop/' "$TMP/sd.yml"
check_eq "reload accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$LOOKOUT_URL/-/reload")"
eventually 20 am_has '' "$AM2"
check_eq "reload re-discovers: the Alertmanager the new relabel_configs drop gets no more" '' "$(am_alerts "$AM2")"
eventually 20 am_has $'NewException boom/1\nNewException slow' "$AM3"
check_eq "reload: new alert_relabel_configs let the warning through" $'NewException boom/1\nNewException slow' \
  "$(am_alerts "$AM3")"
