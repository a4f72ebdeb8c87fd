#!/usr/bin/env bash
# file_sd YAML files of ~20 MB against a real lookout (issue 12): reading one grows lookout's VmHWM by at most
# 5 x the file + 48 MiB, like the JSON answers in hostile_sd.sh. Three shapes, every target kept by discovery
# and dropped by the job's relabeling (keep_dropped_targets: 1, as hostile_sd.sh's realistic answers), so what
# is measured is the file, its parse and the groups the discovery manager stores (measured once the scrape
# layer has dropped them all):
#   tiny_targets: one group listing 1.1 million short targets (block list, `  - 10.1.2.3:9100`);
#   big_labels:   a group without targets whose labels mapping has 740,000 short labels
#                 (`    l0000001: v0000001`), then a group with one target: the parse is measured, as in
#                 hostile_sd.sh's shapes that keep nothing (a target carrying 740,000 labels is copied by
#                 the scrape layer's target building, which is not the parse: 9-10 x there);
#   realistic:    236,000 groups of one target with four labels (the JSON realistic groups written as YAML).
# Read as a libyaml document tree and then copied into groups (before the streaming reader) these grew VmHWM
# by 15.0 x, 20.5 x and 31.3 x the file (all three checks fail on 08eb954), read as events 4.7 x, 3.2 x and
# 4.9 x; the script prints the measured numbers as comments.
. "$(dirname "$0")/../lib/common.sh"

mkdir -p "$TMP/gen" "$TMP/filesd"
python3 - "$TMP/gen" <<'PY'
import sys
d = sys.argv[1]
N = 20 * 1000 * 1000
def fill(name, head, itemf):
    with open(f"{d}/{name}", "w") as f:
        f.write(head); n = len(head); i = 0
        while n < N:
            u = itemf(i)
            f.write(u); n += len(u); i += 1
    with open(f"{d}/{name}.count", "w") as f:
        f.write(str(i))
fill("tiny_targets.yml", "- targets:\n",
     lambda i: "  - 10.%d.%d.%d:9100\n" % (i >> 16 & 255, i >> 8 & 255, i & 255))
fill("big_labels.yml", "- labels:\n", lambda i: "    l%07d: v%07d\n" % (i, i))
with open(f"{d}/big_labels.yml", "a") as f:
    f.write("- targets: ['10.0.0.1:9100']\n")
teams = ["payments", "search", "checkout", "identity", "platform", "data"]
fill("realistic.yml", "",
     lambda i: "- targets: ['10.%d.%d.%d:9100']\n  labels: {env: prod, team: %s, dc: eu-west-%d, service: svc-%d}\n"
     % (i >> 16 & 255, i >> 8 & 255, i & 255, teams[i % 6], i % 3, i % 5000))
PY

cat >"$TMP/file.yml" <<YML
storage: {type: memory}
scrape_configs:
  - job_name: sd
    scrape_interval: 1h
    keep_dropped_targets: 1
    relabel_configs: [{action: drop, source_labels: [__address__], regex: '.*'}]
    file_sd_configs: [{files: ['$TMP/filesd/*.yml']}]
YML

# measure SHAPE TARGETS: the file arrives after start-up (the directory is watched); done when its targets
# are discovered and dropped by the scrape layer.
measure() {
  local shape=$1 n=$2
  rm -f "$TMP/filesd/"*.yml
  start_lookout "yaml-$shape" --config.file="$TMP/file.yml" || { not_ok "lookout starts ($shape)"; return; }
  local base peak size growth
  base=$(hwm_kib "$LOOKOUT_PID")
  cp "$TMP/gen/$shape.yml" "$TMP/filesd/.t" && mv "$TMP/filesd/.t" "$TMP/filesd/t.yml"
  # a check of its own, so that under AddressSanitizer (where check_mem skips) the script still tests the reader
  check "file_sd_yaml_$shape: the file read, its $n targets discovered and dropped" \
    eventually 120 bash -c "curl -s '$LOOKOUT_URL/metrics' | grep -Eq 'lookout_target_pool_dropped_targets\{[^}]*job=\"sd\"[^}]*\} $n\$'"
  peak=$(hwm_kib "$LOOKOUT_PID")
  size=$(stat -c %s "$TMP/filesd/t.yml")
  growth=$(((peak - base) * 1024))
  echo "# VmHWM file_sd_yaml_$shape: file $((size / MIB)) MiB, base $((base / 1024)) MiB, peak $((peak / 1024)) MiB," \
    "growth $((growth / MIB)) MiB ($(awk -v g="$growth" -v s="$size" 'BEGIN { printf "%.2f", g / s }') x)"
  check_mem "file_sd_yaml_$shape: VmHWM growth $((growth / MIB)) MiB <= 5 x file + 48 MiB" \
    [ "$growth" -le $((5 * size + 48 * MIB)) ]
  stop_pid "$LOOKOUT_PID"
}

measure tiny_targets "$(cat "$TMP/gen/tiny_targets.yml.count")"
measure big_labels 1
measure realistic "$(cat "$TMP/gen/realistic.yml.count")"
