#!/usr/bin/env bash
# consul_sd end to end: lookout against the fake Consul agent (tests/fakes/consul.py): discovery with the
# agent's datacenter, a service added, a service removed, a tag-filtered job, a health change visible in
# the discovered labels, an agent outage (targets kept, failures counted) and a restart with lower indexes.
. "$(dirname "$0")/../lib/common.sh"
FX=$ROOT/tests/fixtures/consul
CPORT=$(free_port)
bg python3 "$ROOT/tests/fakes/consul.py" --port "$CPORT" --fixture "$FX/basic.json" >/dev/null
CONSUL_PID=$BG_PID
wait_http "http://127.0.0.1:$CPORT/v1/agent/self" 10 || { not_ok "fake consul starts"; exit 1; }
state() { curl -fsS -o /dev/null -X POST -d "{\"fixture\": \"$FX/$1.json\"}" "http://127.0.0.1:$CPORT/_test/state"; }

cat >"$TMP/lookout.yml" <<EOF
scrape_configs:
  - job_name: all
    scrape_interval: 1h
    consul_sd_configs:
      - server: 127.0.0.1:$CPORT
        refresh_interval: 100ms
  - job_name: prod_v1
    scrape_interval: 1h
    consul_sd_configs:
      - server: 127.0.0.1:$CPORT
        tags: [prod, v1]
        refresh_interval: 100ms
  - job_name: db_only
    scrape_interval: 1h
    consul_sd_configs:
      - server: 127.0.0.1:$CPORT
        services: [db]
        datacenter: dc1
        refresh_interval: 100ms
    relabel_configs:
      - source_labels: [__meta_consul_health]
        target_label: health
EOF
start_lookout consul --config.file="$TMP/lookout.yml" || { not_ok "lookout starts with consul_sd_configs"; exit 1; }
ok "lookout starts with consul_sd_configs"
check "all services discovered" eventually 10 \
  targets_are "all/10.0.0.1:6379,all/10.0.0.1:8080,all/192.168.1.2:8081,all/[2001:db8::3]:5432" all
check "tags filter: all listed tags required" eventually 10 targets_are "prod_v1/10.0.0.1:8080" prod_v1
check "services list without tags watches the service directly" eventually 10 \
  targets_are "db_only/[2001:db8::3]:5432" db_only
labels=$(get "/api/v1/targets?state=active&scrapePool=all" | python3 -c '
import json,sys
t=[t for t in json.load(sys.stdin)["data"]["activeTargets"] if t["labels"]["instance"]=="192.168.1.2:8081"][0]["discoveredLabels"]
print(" ".join("%s=%s" % (k, t.get(k)) for k in ("__meta_consul_dc","__meta_consul_service","__meta_consul_tags","__meta_consul_health","__meta_consul_address","__meta_consul_tagged_address_wan")))')
check_eq "meta labels" "__meta_consul_dc=dc1 __meta_consul_service=web __meta_consul_tags=,prod,Canary, __meta_consul_health=warning __meta_consul_address=10.0.0.2 __meta_consul_tagged_address_wan=203.0.113.2" "$labels"

state web_added
check "instance added" eventually 5 \
  targets_are "all/10.0.0.1:6379,all/10.0.0.1:8080,all/10.0.0.4:8082,all/192.168.1.2:8081,all/[2001:db8::3]:5432" all
state db_removed
check "service removed from the catalog: its targets go" eventually 5 \
  targets_are "all/10.0.0.1:6379,all/10.0.0.1:8080,all/192.168.1.2:8081" all
check "db_only: the service has no instances left" eventually 5 targets_are "" db_only
state basic
check "db back" eventually 5 targets_are "db_only/[2001:db8::3]:5432" db_only
check "health label follows" eventually 5 sh -c "curl -sS '$LOOKOUT_URL/api/v1/targets?scrapePool=db_only' | grep -q '\"health\":\"critical\"'"
# Job "all" watches the same services through its own queries: wait until it has the db back too, so that
# "targets kept" below compares against a settled state.
check "db back in job all" eventually 10 \
  targets_are "all/10.0.0.1:6379,all/10.0.0.1:8080,all/192.168.1.2:8081,all/[2001:db8::3]:5432" all

fails=$(metric_sum lookout_sd_consul_rpc_failures_total)
stop_pid "$CONSUL_PID"
check "agent down: failures counted" eventually 10 metric_at_least lookout_sd_consul_rpc_failures_total $((${fails%.*} + 1))
check_eq "agent down: targets kept" \
  "all/10.0.0.1:6379,all/10.0.0.1:8080,all/192.168.1.2:8081,all/[2001:db8::3]:5432" "$(active_targets all)"
bg python3 "$ROOT/tests/fakes/consul.py" --port "$CPORT" --fixture "$FX/db_removed.json" >/dev/null
wait_http "http://127.0.0.1:$CPORT/v1/agent/self" 10
check "agent restarted (indexes lower): new state picked up" eventually 25 \
  targets_are "all/10.0.0.1:6379,all/10.0.0.1:8080,all/192.168.1.2:8081" all
check "lookout_sd_last_success_timestamp_seconds is exported" metric_at_least lookout_sd_last_success_timestamp_seconds 1
