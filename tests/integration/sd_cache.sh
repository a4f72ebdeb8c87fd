#!/usr/bin/env bash
# Persisted discovery (<storage.path>/sd): lookout discovers a pod through the fake Kubernetes API server and
# a target through file_sd, is stopped, the API server goes away and the file breaks, and lookout is
# restarted: the targets come from the cache and are scraped; lookout_sd_groups_from_cache says so. When the
# API server is back (without that pod) the fresh, empty set replaces the cached one.
# Also: two jobs with an identical kubernetes_sd_config share one LIST+WATCH.
. "$(dirname "$0")/../lib/common.sh"
FAKE=$ROOT/tests/fakes/kube_apiserver.py
HELPER=$ROOT/build/helpers/exception_server
[ -x "$HELPER" ] || make -C "$ROOT" -s build/helpers/exception_server >/dev/null || { not_ok "build exception_server"; exit 0; }

# An exception target (the pod's address) and the file_sd target, both on one helper.
bg "$HELPER" --port 0 >"$TMP/helper.out"
for _ in $(seq 50); do grep -q port= "$TMP/helper.out" 2>/dev/null && break; sleep 0.1; done
XP=$(sed -n 's/^port=//p' "$TMP/helper.out")

KP=$(free_port)
start_fake() {
  rm -f "$TMP/kport"
  bg python3 "$FAKE" --port "$KP" --port-file "$TMP/kport" --bookmark-interval 1
  FAKE_PID=$BG_PID
  for _ in $(seq 50); do [ -s "$TMP/kport" ] && break; sleep 0.1; done
}
ctl() { curl -fsS -o /dev/null -X POST --data "$1" "http://127.0.0.1:$KP/_control"; }
start_fake
ctl '{"op":"add","object":{"kind":"Pod","metadata":{"name":"app-1","namespace":"cache"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":'"$XP"'}]}]},"status":{"podIP":"127.0.0.1","phase":"Running"}}}'

mkdir -p "$TMP/fsd"
echo '[{"targets": ["localhost:'"$XP"'"]}]' >"$TMP/fsd/a.json"
cat >"$TMP/lookout.yml" <<CFG
global: {scrape_interval: 1s}
scrape_configs:
- job_name: k8s
  kubernetes_sd_configs:
  - {role: pod, api_server: "http://127.0.0.1:$KP", namespaces: {names: [cache]}}
- job_name: k8s-twin
  kubernetes_sd_configs:
  - {role: pod, api_server: "http://127.0.0.1:$KP", namespaces: {names: [cache]}}
- job_name: files
  file_sd_configs:
  - files: ["$TMP/fsd/*.json"]
CFG

# up JOB: the job's only target was scraped successfully.
up() {
  get "/api/v1/targets?state=active&scrapePool=$1" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
sys.exit(0 if len(t) == 1 and t[0]["health"] == "up" else 1)'
}

start_lookout sdc --config.file="$TMP/lookout.yml" || { not_ok "lookout starts"; exit 0; }
check "k8s target discovered" eventually 10 targets_are "k8s/127.0.0.1:$XP" k8s
check "identical twin job gets the same target" eventually 10 targets_are "k8s-twin/127.0.0.1:$XP" k8s-twin
check "k8s target scraped" eventually 10 up k8s
check "file_sd target scraped" eventually 10 up files
stats=$(curl -fsS "http://127.0.0.1:$KP/_control/stats")
shared=$(echo "$stats" | python3 -c '
import json, sys
r = json.load(sys.stdin)["requests"]
p = [x for x in r if x["path"] == "/api/v1/namespaces/cache/pods"]
print(sum(1 for x in p if "watch" not in x["query"]), sum(1 for x in p if "watch" in x["query"]))')
check_eq "two jobs, identical kubernetes_sd_config: one LIST and one WATCH" "1 1" "$shared"
check_eq "fresh providers are not served from the cache" "0" "$(metric_value "$LOOKOUT_URL" lookout_sd_groups_from_cache 'job="k8s"')"
last=$(metric_value "$LOOKOUT_URL" lookout_sd_last_success_timestamp_seconds 'job="k8s"')
check "lookout_sd_last_success_timestamp_seconds per provider" awk -v t="$last" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 60 && t <= now + 1) }'
stop_pid "$LOOKOUT_PID"
n=$(ls "$TMP/sdc-data/sd/" 2>/dev/null | grep -c '^[0-9a-f]\{64\}\.json$')
check_eq "one cache file per provider under <storage.path>/sd" "3" "$n"

# The outage: API server down, file broken (a syntax error, not a deletion: a deleted file removes targets).
stop_pid "$FAKE_PID"
echo '[{"targets": ' >"$TMP/fsd/a.json"
start_lookout sdc --config.file="$TMP/lookout.yml" || { not_ok "lookout restarts during the outage"; exit 0; }
check "restart during the outage: k8s target from the cache" eventually 10 targets_are "k8s/127.0.0.1:$XP" k8s
check "... and it is scraped" eventually 10 up k8s
check "restart during the outage: file_sd target from the cache" eventually 10 targets_are "files/localhost:$XP" files
check "... and it is scraped" eventually 10 up files
check_eq "lookout_sd_groups_from_cache marks the stale provider" "1" \
  "$(metric_value "$LOOKOUT_URL" lookout_sd_groups_from_cache 'job="k8s"')"
check "the log says the targets are stale" grep -q 'serving persisted (stale) targets.*job=k8s' "$TMP/sdc.log"

# The API server comes back without the pod: the fresh (empty) set wins.
start_fake
check "fresh groups replace the cached ones" eventually 15 targets_are "" k8s
check_eq "no longer served from the cache" "0" "$(metric_value "$LOOKOUT_URL" lookout_sd_groups_from_cache 'job="k8s"')"
echo '[{"targets": ["localhost:'"$XP"'", "127.0.0.1:'"$XP"'"]}]' >"$TMP/fsd/a.json"
check "fixed file replaces the cached file_sd groups" eventually 10 \
  targets_are "files/127.0.0.1:$XP,files/localhost:$XP" files
stop_pid "$LOOKOUT_PID"
