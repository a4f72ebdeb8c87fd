#!/usr/bin/env bash
# file_sd end to end: lookout follows files as they are added, modified, broken, fixed, replaced
# atomically and deleted; /api/v1/targets is the observable. refresh_interval is 1h, so every change
# below must be noticed by the file watch, not by the periodic refresh.
. "$(dirname "$0")/../lib/common.sh"

SD=$TMP/sd
mkdir -p "$SD"
cat >"$TMP/lookout.yml" <<EOF
scrape_configs:
  - job_name: files
    metrics_path: /metrics
    scrape_interval: 1h
    file_sd_configs:
      - files: ['$SD/*.json', '$SD/*.yml']
        refresh_interval: 1h
EOF

start_lookout fsd --config.file="$TMP/lookout.yml" || { not_ok "lookout starts with a file_sd config"; exit 1; }
ok "lookout starts with a file_sd config and no files"
check_eq "no files, no targets" "" "$(active_targets)"

cat >"$SD/a.json" <<'EOF'
[{"targets": ["a.invalid:1", "a.invalid:2"], "labels": {"team": "x"}}]
EOF
check "new JSON file: its targets appear" eventually 10 targets_are "files/a.invalid:1,files/a.invalid:2"
labels=$(get "/api/v1/targets?state=active" | python3 -c '
import json,sys
t=[t for t in json.load(sys.stdin)["data"]["activeTargets"] if t["labels"]["instance"]=="a.invalid:1"][0]
print(t["labels"].get("team"), t["discoveredLabels"].get("__meta_filepath"))')
check_eq "group labels and __meta_filepath" "x $SD/a.json" "$labels"

cat >"$SD/a.json" <<'EOF'
[{"targets": ["a.invalid:1", "a.invalid:3"]}, {"targets": ["a.invalid:4"], "labels": {"instance": "four"}}]
EOF
check "modified file: target set follows" eventually 10 targets_are "files/a.invalid:1,files/a.invalid:3,files/four"

cat >"$SD/b.yml" <<'EOF'
- targets: [b.invalid:1]
  labels: {from: yaml}
EOF
check "second (YAML) file: union of both" eventually 10 \
  targets_are "files/a.invalid:1,files/a.invalid:3,files/b.invalid:1,files/four"

errs_before=$(metric_sum lookout_sd_file_read_errors_total)
echo '[{"targets": ["a.invalid:9"' >"$SD/a.json"
check "broken file: read error counted in lookout_sd_file_read_errors_total" \
  eventually 10 metric_at_least lookout_sd_file_read_errors_total $((${errs_before%.*} + 1))
sleep 1.5 # one coalescing period: a wrong removal would show up by now
check_eq "broken file: its previous targets are kept" \
  "files/a.invalid:1,files/a.invalid:3,files/b.invalid:1,files/four" "$(active_targets)"
check "broken file: the error is logged with the file name" grep -q "a.json" "$TMP/fsd.log"

cat >"$SD/a.json" <<'EOF'
[{"targets": ["a.invalid:5"]}]
EOF
check "fixed file: its new targets replace the kept ones" eventually 10 \
  targets_are "files/a.invalid:5,files/b.invalid:1"

# Configuration management tools write a temporary file and rename it over the old one.
cat >"$TMP/c.tmp" <<'EOF'
[{"targets": ["c.invalid:1"]}]
EOF
mv "$TMP/c.tmp" "$SD/c.json"
check "file renamed into the watched directory is read" eventually 10 \
  targets_are "files/a.invalid:5,files/b.invalid:1,files/c.invalid:1"
cat >"$TMP/c.tmp" <<'EOF'
[{"targets": ["c.invalid:2"]}]
EOF
mv "$TMP/c.tmp" "$SD/c.json"
check "file replaced by rename is re-read" eventually 10 \
  targets_are "files/a.invalid:5,files/b.invalid:1,files/c.invalid:2"

echo '[]' >"$SD/ignored.txt"
rm "$SD/a.json"
check "deleted file: its targets are removed" eventually 10 targets_are "files/b.invalid:1,files/c.invalid:2"

: >"$SD/b.yml"
check "emptied file: no targets from it" eventually 10 targets_are "files/c.invalid:2"

rm "$SD/c.json" "$SD/b.yml"
check "all files deleted: no targets" eventually 10 targets_are ""
check "lookout still running" kill -0 "$LOOKOUT_PID"
