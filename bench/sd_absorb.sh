#!/usr/bin/env bash
# SD absorption benchmark: CPU seconds and peak RSS that Prometheus 2.42 and lookout spend taking in one
# file_sd file of N targets (default 100,000) through a 10-rule relabel chain.
# Method (same for both, one after the other so they do not compete for the 2 cores):
#   1. start the process with the file_sd glob matching nothing; wait until ready and 3 s more;
#      read utime+stime from /proc/PID/stat (baseline);
#   2. rename the generated file into the watched directory (one inotify event);
#   3. poll the process' own /metrics every 0.5 s until its active-target gauge for the job equals the
#      expected count (prometheus_target_scrape_pool_targets / lookout_target_pool_targets);
#   4. CPU delta = absorption cost; VmHWM = peak RSS; then 10 s idle to measure the cost of holding the
#      targets. scrape_interval is 1w so that almost no scrape happens during the measurement.
# Env: BENCH_TARGETS (default 100000), LOOKOUT_BIN, BENCH_SKIP_PROMETHEUS=1, BENCH_SKIP_LOOKOUT=1.
. "$(dirname "$0")/../tests/lib/common.sh"
N=${BENCH_TARGETS:-100000}
BENCH_DIR=$ROOT/bench

gen=$TMP/targets.json
expected=$(python3 "$BENCH_DIR/gen_targets.py" "$gen" "$N") || exit 1
echo "# $N targets in $(du -h "$gen" | cut -f1) of JSON; $expected survive relabeling"

write_config() { # write_config FILE SD_DIR
  cat >"$1" <<CONFIG
global:
  scrape_interval: 1w
  scrape_timeout: 10s
scrape_configs:
  - job_name: bench
    metrics_path: /metrics
    scrape_interval: 1w
    file_sd_configs:
      - files: ['$2/*.json']
        refresh_interval: 1h
    relabel_configs:
      - {source_labels: [__meta_env], regex: 'prod|staging', action: keep}
      - {source_labels: [__meta_team], target_label: team}
      - {source_labels: [__meta_zone], regex: '(.+)-(.+)-.*', target_label: region, replacement: '\$1-\$2'}
      - {regex: '__meta_label_(.+)', action: labelmap}
      - {source_labels: [__address__], regex: '([^:]+):\d+', target_label: __address__, replacement: '\${1}:9'}
      - {source_labels: [__address__], modulus: 4, target_label: __tmp_shard, action: hashmod}
      - {source_labels: [__tmp_shard], target_label: shard}
      - {source_labels: [team], target_label: team, action: lowercase}
      - {regex: 'version', action: labeldrop}
      - {target_label: exporter, replacement: lookout_bench}
CONFIG
}

# count_targets URL METRIC: value of METRIC{...job="bench"} (label scrape_job or job), 0 if absent.
count_targets() {
  curl -sS --max-time 5 "$1/metrics" 2>/dev/null |
    awk -v m="$2" 'index($1, m "{") == 1 && $1 ~ /job="bench"/ { v = $2 } END { print v + 0 }'
}

# measure NAME PID URL METRIC SD_DIR: prints one result line "NAME cpu wall hwm idle rss_before".
measure() {
  local name=$1 pid=$2 url=$3 metric=$4 sd=$5 c0 c1 c2 t0 t1 got i hwm rss0
  sleep 3
  c0=$(proc_cpu_seconds "$pid")
  rss0=$(awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$pid/status")
  t0=$(date +%s.%N)
  cp "$gen" "$TMP/$name.json.tmp" && mv "$TMP/$name.json.tmp" "$sd/targets.json"
  got=0
  for ((i = 0; i < 600; i++)); do
    got=$(count_targets "$url" "$metric")
    [ "$got" = "$expected" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  t1=$(date +%s.%N)
  if [ "$got" != "$expected" ]; then
    echo "# $name: saw $got of $expected targets; giving up" >&2
    echo "$name FAILED"
    return 1
  fi
  c1=$(proc_cpu_seconds "$pid")
  hwm=$(proc_hwm_mib "$pid")
  sleep 10
  c2=$(proc_cpu_seconds "$pid")
  awk -v n="$name" -v c0="$c0" -v c1="$c1" -v c2="$c2" -v t0="$t0" -v t1="$t1" -v h="$hwm" \
    -v r="$rss0" 'BEGIN { printf "%s %.2f %.1f %s %.2f %s\n", n, c1 - c0, t1 - t0, h, c2 - c1, r }'
}

results=()
if [ "${BENCH_SKIP_PROMETHEUS:-0}" != 1 ]; then
  mkdir -p "$TMP/prom-sd"
  write_config "$TMP/prom.yml" "$TMP/prom-sd"
  if start_prometheus prom "$TMP/prom.yml"; then
    results+=("$(measure prometheus-2.42 "$PROM_PID" "$PROM_URL" prometheus_target_scrape_pool_targets "$TMP/prom-sd")")
    stop_pid "$PROM_PID"
  else
    results+=("prometheus-2.42 FAILED")
  fi
fi
if [ "${BENCH_SKIP_LOOKOUT:-0}" != 1 ]; then
  mkdir -p "$TMP/lookout-sd"
  write_config "$TMP/lookout.yml" "$TMP/lookout-sd"
  if [ -x "$LOOKOUT_BIN" ] && start_lookout lookout --config.file="$TMP/lookout.yml"; then
    results+=("$(measure lookout "$LOOKOUT_PID" "$LOOKOUT_URL" lookout_target_pool_targets "$TMP/lookout-sd")")
    stop_pid "$LOOKOUT_PID"
  else
    results+=("lookout FAILED")
  fi
fi

echo
echo "SD absorption: $N targets in one file_sd file, 10 relabel rules, $expected active"
printf '%-16s %14s %16s %14s %18s %16s\n' process "CPU s (absorb)" "wall s (to all)" "peak RSS MiB" \
  "CPU s (10 s idle)" "RSS before MiB"
for r in "${results[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  if [ "${2:-}" = FAILED ]; then printf '%-16s %14s\n' "$1" FAILED; continue; fi
  printf '%-16s %14s %16s %14s %18s %16s\n' "$1" "$2" "$3" "$4" "$5" "$6"
done
if [ ${#results[@]} -eq 2 ]; then
  read -r _ pc _ pm _ <<<"${results[0]}"
  read -r _ lc _ lm _ <<<"${results[1]}"
  if [ "$pc" != FAILED ] && [ "$lc" != FAILED ]; then
    awk -v pc="$pc" -v lc="$lc" -v pm="$pm" -v lm="$lm" 'BEGIN {
      printf "ratio prometheus/lookout: CPU %.1fx, peak RSS %.1fx\n", pc / (lc > 0.005 ? lc : 0.005), pm / lm }'
  fi
fi
