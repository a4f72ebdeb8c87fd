#!/usr/bin/env bash
# dns_sd end to end: lookout against a private dnsmasq (installed with scripts/deps.sh dnsmasq when missing)
# through LOOKOUT_DNS_SERVERS: SRV and A records, a record change (SIGHUP re-reads addn-hosts), an SRV
# change (dnsmasq restarted: SRV records are command-line options), a name disappearing (NXDOMAIN empties
# it), the server going down (targets kept, failures counted).
. "$(dirname "$0")/../lib/common.sh"
command -v dnsmasq >/dev/null || "$ROOT/scripts/deps.sh" dnsmasq >&2 || { not_ok "dnsmasq available"; exit 1; }
udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DPORT=$(udp_port)
echo "10.7.0.1 app.lookout.test" >"$TMP/hosts"
# Starts dnsmasq on DPORT and waits until it says it started. It also listens on TCP DPORT, which another
# test running at the same time may hold (the port was only checked free for UDP): then it exits at once,
# and it is tried again (a new port only before lookout knows it: NEW_PORT=1).
start_dnsmasq() {
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    : >"$TMP/dnsmasq.log"
    bg dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 --port="$DPORT" \
      --bind-interfaces --user=root --group=root --local=/test/ --addn-hosts="$TMP/hosts" "$@" >>"$TMP/dnsmasq.log" 2>&1
    DNSMASQ_PID=$BG_PID
    for _ in $(seq 50); do
      grep -q "started" "$TMP/dnsmasq.log" && kill -0 "$DNSMASQ_PID" 2>/dev/null && return 0
      kill -0 "$DNSMASQ_PID" 2>/dev/null || break
      sleep 0.1
    done
    echo "# dnsmasq on port $DPORT did not start (attempt $attempt): $(head -c 300 "$TMP/dnsmasq.log")"
    stop_pid "$DNSMASQ_PID" 2>/dev/null
    [ "${NEW_PORT:-0}" = 1 ] && DPORT=$(udp_port)
    sleep 0.5
  done
  return 1
}
NEW_PORT=1 start_dnsmasq --srv-host=_app._tcp.lookout.test,web-1.lookout.test,8080 || { not_ok "dnsmasq starts"; exit 1; }
cat >"$TMP/lookout.yml" <<EOF
scrape_configs:
  - job_name: srv
    scrape_interval: 1h
    dns_sd_configs:
      - names: ['_app._tcp.lookout.test.']
        refresh_interval: 500ms
  - job_name: a
    scrape_interval: 1h
    dns_sd_configs:
      - names: ['app.lookout.test.']
        type: A
        port: 9100
        refresh_interval: 500ms
EOF
export LOOKOUT_DNS_SERVERS=127.0.0.1:$DPORT
start_lookout dns --config.file="$TMP/lookout.yml" || { not_ok "lookout starts with dns_sd_configs"; exit 1; }
check "SRV target" eventually 10 targets_are "srv/web-1.lookout.test:8080" srv
check "A target" eventually 10 targets_are "a/10.7.0.1:9100" a
labels=$(get "/api/v1/targets?scrapePool=srv" | python3 -c '
import json,sys
t=json.load(sys.stdin)["data"]["activeTargets"][0]["discoveredLabels"]
print(t.get("__meta_dns_name"), t.get("__meta_dns_srv_record_target"), t.get("__meta_dns_srv_record_port"))')
check_eq "SRV meta labels" "_app._tcp.lookout.test. web-1.lookout.test. 8080" "$labels"

printf '10.7.0.1 app.lookout.test\n10.7.0.2 app.lookout.test\n' >"$TMP/hosts"
kill -HUP "$DNSMASQ_PID"
check "A record added (SIGHUP)" eventually 10 targets_are "a/10.7.0.1:9100,a/10.7.0.2:9100" a
stop_pid "$DNSMASQ_PID"
start_dnsmasq --srv-host=_app._tcp.lookout.test,web-2.lookout.test,9090
check "SRV record changed (restart)" eventually 10 targets_are "srv/web-2.lookout.test:9090" srv
f=$(metric_sum lookout_sd_dns_lookup_failures_total)
stop_pid "$DNSMASQ_PID"
check "server down: failures counted" eventually 10 metric_at_least lookout_sd_dns_lookup_failures_total $((${f%.*} + 2))
check_eq "server down: targets kept" "a/10.7.0.1:9100,a/10.7.0.2:9100" "$(active_targets a)"
check "lookups counted" metric_at_least lookout_sd_dns_lookups_total 4
echo "10.7.0.9 other.lookout.test" >"$TMP/hosts"
start_dnsmasq
check "name gone (NXDOMAIN): its targets go" eventually 10 targets_are "" a
check "SRV name gone too" eventually 10 targets_are "" srv
