#!/usr/bin/env bash
# SD latency and Consul CPU. Runs the real lookout binary:
#  1. Consul: time from an index change at the fake agent (one instance added) to the new target showing
#     in /api/v1/targets (includes the discovery manager's 1 s coalescing and target building; the
#     provider's own part is the blocking query returning at once).
#  2. DNS: time from a dnsmasq record change (SIGHUP) to the target showing, with refresh_interval 1s
#     (DNS is polled: expect up to one interval plus coalescing).
#  3. CPU of lookout watching 1,000 Consul services x 10 instances while 1 % of the instances change per
#     minute (a churn of 0.1 % every 6 s), from /proc/PID/stat over SD_BENCH_SECONDS (default 60).
# Env: LOOKOUT_BIN, SD_BENCH_SECONDS, SD_BENCH_SERVICES (1000), SD_BENCH_INSTANCES (10).
. "$(dirname "$0")/../tests/lib/common.sh"
SECS=${SD_BENCH_SECONDS:-60}
NSVC=${SD_BENCH_SERVICES:-1000}
NINST=${SD_BENCH_INSTANCES:-10}
now_ms() { date +%s%3N; }
# until_target POOL INSTANCE: polls /api/v1/targets every 20 ms until INSTANCE is active in POOL.
until_target() {
  local i
  for ((i = 0; i < 1000; i++)); do
    curl -sS "$LOOKOUT_URL/api/v1/targets?scrapePool=$1" | grep -q "\"instance\":\"$2\"" && return 0
    sleep 0.02
  done
  return 1
}

CPORT=$(free_port)
bg python3 "$ROOT/tests/fakes/consul.py" --port "$CPORT" --fixture "$ROOT/tests/fixtures/consul/basic.json" >/dev/null
wait_http "http://127.0.0.1:$CPORT/v1/agent/self" 10 || { echo "FAILED: fake consul"; exit 1; }
command -v dnsmasq >/dev/null || "$ROOT/scripts/deps.sh" dnsmasq >&2
DPORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "10.6.0.1 b.lookout.test" >"$TMP/hosts"
bg dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 --port="$DPORT" \
  --bind-interfaces --user=root --group=root --local=/test/ --addn-hosts="$TMP/hosts" >/dev/null 2>&1
DNSMASQ_PID=$BG_PID
cat >"$TMP/lat.yml" <<EOF
scrape_configs:
  - job_name: consul
    scrape_interval: 1h
    consul_sd_configs: [{server: '127.0.0.1:$CPORT', services: [web], refresh_interval: 10ms}]
  - job_name: dns
    scrape_interval: 1h
    dns_sd_configs: [{names: [b.lookout.test.], type: A, port: 80, refresh_interval: 1s}]
EOF
LOOKOUT_DNS_SERVERS=127.0.0.1:$DPORT start_lookout lat --config.file="$TMP/lat.yml" || { echo "FAILED: lookout"; exit 1; }
until_target consul 192.168.1.2:8081 || { echo "FAILED: consul targets"; exit 1; }
until_target dns 10.6.0.1:80 || { echo "FAILED: dns targets"; exit 1; }
clat=(); dlat=()
for i in 1 2 3 4 5; do
  t0=$(now_ms)
  curl -fsS -o /dev/null -X POST -d "{\"services\": {\"web\": [$(python3 -c "
import json,sys; sys.path.insert(0,'$ROOT/tests/fakes'); import consul as C
print(json.dumps(C.entry('n$i','10.5.0.$i','web',7000+$i)))")]}}" "http://127.0.0.1:$CPORT/_test/state"
  until_target consul "10.5.0.$i:$((7000 + i))" && clat+=($(($(now_ms) - t0)))
  t0=$(now_ms)
  echo "10.6.0.$((i + 1)) b.lookout.test" >"$TMP/hosts"; kill -HUP "$DNSMASQ_PID"
  until_target dns "10.6.0.$((i + 1)):80" && dlat+=($(($(now_ms) - t0)))
done
echo "consul change -> /api/v1/targets (ms, 5 runs): ${clat[*]}"
echo "dns change (refresh 1s) -> /api/v1/targets (ms, 5 runs): ${dlat[*]}"
stop_pid "$LOOKOUT_PID"

curl -fsS -o /dev/null -X POST -d "{\"services\": $NSVC, \"instances\": $NINST}" "http://127.0.0.1:$CPORT/_test/generate"
cat >"$TMP/cpu.yml" <<EOF
scrape_configs:
  - job_name: consul
    scrape_interval: 1h
    consul_sd_configs: [{server: '127.0.0.1:$CPORT'}]
EOF
start_lookout cpu --config.file="$TMP/cpu.yml" || { echo "FAILED: lookout"; exit 1; }
want=$((NSVC * NINST))
for ((i = 0; i < 600; i++)); do
  n=$(curl -sS "$LOOKOUT_URL/api/v1/targets?state=active&scrapePool=consul" | grep -o '"scrapePool"' | wc -l)
  [ "$n" -ge "$want" ] && break
  sleep 0.2
done
echo "initial discovery of $n/$want targets: $((i * 200)) ms (poll granularity 200 ms)"
c0=$(proc_cpu_seconds "$LOOKOUT_PID"); t0=$(now_ms)
end=$((SECONDS + SECS))
while [ $SECONDS -lt $end ]; do
  curl -fsS -o /dev/null -X POST -d '{"fraction": 0.001}' "http://127.0.0.1:$CPORT/_test/churn"
  sleep 6
done
c1=$(proc_cpu_seconds "$LOOKOUT_PID"); t1=$(now_ms)
awk -v c="$(echo "$c1 - $c0" | bc)" -v t="$((t1 - t0))" -v s="$NSVC" -v n="$NINST" \
  'BEGIN { printf "consul %dx%d, 1%%/min churn: %.2f CPU s over %.0f s = %.2f%% of a core; RSS peak ", s, n, c, t/1000, 100*c/(t/1000) }'
echo "$(proc_hwm_mib "$LOOKOUT_PID") MiB"
