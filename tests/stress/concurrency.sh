#!/usr/bin/env bash
# Concurrency stress for race detectors (run against lookout-tsan by `make tsan`; works with any build):
# many targets (exception_server /t/<i>, file_sd + static), config reloads by SIGHUP and POST /-/reload
# alternating between two configs, the file_sd file rewritten, while curl readers hit the API, UI, metrics
# and push endpoints in parallel; one config variant adds error_relabel_configs to the file_sd job.
# Asserts lookout stays up and answers; races show up in the TSan log.
# Env: STRESS_SECONDS (default 20), STRESS_TARGETS (default 150).
. "$(dirname "$0")/../lib/common.sh"
BUILD=${BUILD:-build}
SRV=$ROOT/$BUILD/helpers/exception_server
[ -x "$SRV" ] || make -C "$ROOT" -s "$BUILD/helpers/exception_server" >/dev/null
SECS=${STRESS_SECONDS:-20}
N=${STRESS_TARGETS:-150}
SPORT=$(free_port)
bg "$SRV" --port "$SPORT" --threads 4 --payload-size 3000 >/dev/null 2>&1
wait_http "http://127.0.0.1:$SPORT/ok" 10 || { not_ok "exception_server starts"; exit 1; }

CPORT=$(free_port) HPORT=$(free_port)
bg python3 "$ROOT/tests/fakes/consul.py" --port "$CPORT" --fixture "$ROOT/tests/fixtures/consul/basic.json" >/dev/null 2>&1
bg python3 "$ROOT/tests/fakes/http_sd.py" --port "$HPORT" >/dev/null 2>&1
wait_http "http://127.0.0.1:$CPORT/v1/agent/self" 10 || { not_ok "fake consul starts"; exit 1; }
wait_http "http://127.0.0.1:$HPORT/targets" 10 || { not_ok "fake http_sd starts"; exit 1; }
curl -fsS -o /dev/null -X POST --data-binary \
  "{\"body\": \"[{\\\"targets\\\": [\\\"127.0.0.1:$SPORT\\\"], \\\"labels\\\": {\\\"idx\\\": \\\"77\\\"}}]\"}" \
  "http://127.0.0.1:$HPORT/_test/set"

# file_sd groups: target 127.0.0.1:SPORT with label idx=i, path /t/<i> by relabeling.
write_sd() { # write_sd FIRST LAST
  local i sep="" out="["
  for ((i = $1; i < $2; i++)); do
    out+="$sep{\"targets\":[\"127.0.0.1:$SPORT\"],\"labels\":{\"idx\":\"$i\"}}"; sep=","
  done
  echo "$out]" >"$TMP/sd.json.new" && mv "$TMP/sd.json.new" "$TMP/sd.json"
}
write_config() { # write_config VARIANT(0|1)
  {
    echo "global: {scrape_interval: 1s, scrape_timeout: 900ms}"
    echo "storage: {type: ${STRESS_STORAGE:-sqlite}}"
    echo "scrape_configs:"
    echo "  - job_name: filesd"
    echo "    file_sd_configs: [{files: ['$TMP/sd.json'], refresh_interval: 1s}]"
    echo "    relabel_configs:"
    echo "      - {source_labels: [idx], target_label: __metrics_path__, replacement: /t/\$1}"
    # One variant regroups errors: a reload switches the job between payload reuse (no rules) and
    # relabeling every aggregate, while the scrape loop is delivering bodies.
    if (($1)); then
      echo "    error_relabel_configs:"
      echo "      - {source_labels: [__aggregation_key__], regex: '(.+)@[0-9a-f]{8}', target_label: __aggregation_key__, replacement: '\$1'}"
    fi
    echo "  - job_name: static$1"
    echo "    relabel_configs:"
    echo "      - {source_labels: [idx], target_label: __metrics_path__, replacement: /t/\$1}"
    echo "    static_configs:"
    local i
    for ((i = 0; i < N / 3; i++)); do
      echo "      - {targets: ['127.0.0.1:$SPORT'], labels: {idx: '$((i + 1000 * $1 + 5000))'}}"
    done
    echo "  - job_name: consul$1"
    echo "    scrape_interval: 1h"
    echo "    consul_sd_configs: [{server: '127.0.0.1:$CPORT', refresh_interval: 100ms}]"
    echo "  - job_name: httpsd"
    echo "    http_sd_configs: [{url: 'http://127.0.0.1:$HPORT/targets', refresh_interval: $((1 + $1))00ms}]"
    echo "    relabel_configs:"
    echo "      - {source_labels: [idx], target_label: __metrics_path__, replacement: /t/\$1}"
    echo "  - job_name: failing"
    echo "    static_configs: [{targets: ['127.0.0.1:$SPORT'], labels: {x: a}}]"
    echo "    metrics_path: /status/500"
  } >"$TMP/lookout.yml.new"
  mv "$TMP/lookout.yml.new" "$TMP/lookout.yml"
}
write_sd 0 "$N"
for v in 1 0; do # both variants must load, or the reloads below would only ever fail
  write_config $v
  check "config variant $v is valid" "$LOOKOUT_BIN" check-config "$TMP/lookout.yml"
done
start_lookout stress --config.file="$TMP/lookout.yml" --web.enable-lifecycle --web.enable-push ||
  { not_ok "lookout starts"; exit 1; }
pid=$LOOKOUT_PID
end=$((SECONDS + SECS))

reader() { # reader PATH...: GETs the paths in a loop until the end
  while ((SECONDS < end)); do
    for p in "$@"; do curl -s -o /dev/null --max-time 10 "$LOOKOUT_URL$p"; done
  done
}
reader /api/v1/targets /targets /metrics & r1=$!
reader /api/v1/errors "/api/v1/targets?state=active" /service-discovery /api/v1/scrape_pools & r2=$!
reader /services/filesd/errors/ /-/exceptions /api/v1/jobs /federate/exceptions "/api/v1/targets/relabel_steps?job=filesd" / & r3=$!
( while ((SECONDS < end)); do
    curl -s -o /dev/null --max-time 10 --data-binary @"$ROOT/tests/fixtures/payloads/go.json" \
      "$LOOKOUT_URL/api/v1/push/pushjob"
    curl -s -o /dev/null --max-time 10 "$LOOKOUT_URL/-/errors"
    curl -s -o /dev/null --max-time 10 -X POST "$LOOKOUT_URL/api/v1/errors/pushjob/%2Aurl.Error%409f3c1a07/resolve"
    curl -s -o /dev/null --max-time 10 -X DELETE "$LOOKOUT_URL/services/pushjob/errors/%2Aurl.Error%409f3c1a07/"
  done ) & r4=$!
# Reloads: SIGHUP and POST /-/reload alternating between the two configs; file_sd shrinks and grows.
v=0 reloads=0
while ((SECONDS < end)); do
  v=$((1 - v)); write_config $v
  if ((reloads % 2)); then kill -HUP "$pid"; else curl -s -o /dev/null -X POST --max-time 20 "$LOOKOUT_URL/-/reload"; fi
  if ((v)); then write_sd 0 $((N / 2)); else write_sd $((N / 4)) "$N"; fi
  reloads=$((reloads + 1))
  sleep 0.3
done
wait $r1 $r2 $r3 $r4
check "lookout still running after $reloads reloads" kill -0 "$pid"
check_contains "metrics answer after the stress" "$(get /metrics)" lookout_config_last_reload_successful
check_contains "targets were scraped (health up)" "$(get /api/v1/targets)" '"health":"up"'
has_target_of() { get /api/v1/targets | grep -q "\"scrapePool\":\"$1\""; }
check "consul_sd targets present" eventually 15 has_target_of "consul$v"
check "http_sd targets present" eventually 5 has_target_of httpsd
check_contains "scraped errors stored" "$(get /api/v1/errors)" filesd
kill "$pid"; wait "$pid"; rc=$?
check_eq "lookout exits cleanly on SIGTERM" 0 "$rc"

# Shutdown under load: SIGTERM, then POST /-/quit, each while readers, pushes and a reload are in flight
# (and scrapes: the /slow targets keep requests open), so stop order races show up.
echo "  - job_name: slow" >>"$TMP/lookout.yml"
echo "    metrics_path: /slow" >>"$TMP/lookout.yml"
echo "    static_configs: [{targets: ['127.0.0.1:$SPORT']}]" >>"$TMP/lookout.yml"
for how in SIGTERM quit; do
  start_lookout "stop-$how" --config.file="$TMP/lookout.yml" --web.enable-lifecycle --web.enable-push ||
    { not_ok "lookout starts ($how)"; continue; }
  pid=$LOOKOUT_PID
  end=$((SECONDS + 3))
  reader /api/v1/targets /metrics /api/v1/errors & r1=$!
  reader /targets /federate/exceptions & r2=$!
  sleep 2.5
  curl -s -o /dev/null --max-time 5 -X POST "$LOOKOUT_URL/-/reload" & c1=$!
  curl -s -o /dev/null --max-time 5 --data-binary @"$ROOT/tests/fixtures/payloads/go.json" \
    "$LOOKOUT_URL/api/v1/push/pushjob" & c2=$!
  if [ $how = SIGTERM ]; then kill "$pid"; else curl -s -o /dev/null --max-time 5 -X POST "$LOOKOUT_URL/-/quit"; fi
  wait "$pid"; rc=$?
  wait $r1 $r2 $c1 $c2 2>/dev/null
  check_eq "exit 0 when stopped by $how under load" 0 "$rc"
done
