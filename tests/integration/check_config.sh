#!/usr/bin/env bash
# `lookout check-config FILE...`: exit 0 and "FILE: SUCCESS" for good files; exit 1 and
# "FILE:LINE:COLUMN: ..." for bad ones; every file is checked even after a failure.
. "$(dirname "$0")/../lib/common.sh"
cd "$TMP" || exit 1

cat >good.yml <<'EOF'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: api
    metrics_path: /-/exceptions
    static_configs:
      - targets: [api.invalid:8080]
    relabel_configs:
      - {source_labels: [__address__], target_label: host, regex: '(.*):.*'}
EOF
# A prometheus.yml with sections lookout does not act on: accepted, with warnings.
cat >prometheus.yml <<'EOF'
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files: [rules/*.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [alertmanager.invalid:9093]
remote_write:
  - url: http://remote.invalid/write
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [localhost:9090]
EOF
cat >bad.yml <<'EOF'
scrape_configs:
  - job_name: api
    scrape_interval: 15s
    scrape_timeout: 10x
EOF

out=$("$LOOKOUT_BIN" check-config good.yml 2>&1); rc=$?
check_eq "good file: exit 0" 0 "$rc"
check_contains "good file: 'FILE: SUCCESS'" "$out" "good.yml: SUCCESS"

out=$("$LOOKOUT_BIN" check-config prometheus.yml 2>&1); rc=$?
check_eq "prometheus.yml with rule_files/alerting/remote_write: exit 0" 0 "$rc"
check_contains "prometheus.yml: SUCCESS" "$out" "prometheus.yml: SUCCESS"
check "prometheus.yml: unused sections are warned about" grep -qiE "rule_files|alerting|remote_write" <<<"$out"

out=$("$LOOKOUT_BIN" check-config bad.yml 2>&1); rc=$?
check_eq "bad file: exit 1" 1 "$rc"
check "bad file: 'FILE:LINE:COLUMN:' pointing at line 4" grep -qE "^bad\.yml:4:[0-9]+: " <<<"$out"
check "bad file: names the bad value or key" grep -qE "10x|scrape_timeout" <<<"$out"
check "bad file: no SUCCESS line" test -z "$(grep 'SUCCESS' <<<"$out")"

out=$("$LOOKOUT_BIN" check-config bad.yml good.yml 2>&1); rc=$?
check_eq "bad then good: exit 1" 1 "$rc"
check_contains "bad then good: the good file is still checked" "$out" "good.yml: SUCCESS"

out=$("$LOOKOUT_BIN" check-config missing.yml 2>&1); rc=$?
check_eq "missing file: exit 1" 1 "$rc"
check_contains "missing file: named in the error" "$out" "missing.yml"

"$LOOKOUT_BIN" check-config >/dev/null 2>&1; rc=$?
check_eq "no file argument: exit 2 (usage error)" 2 "$rc"

out=$("$LOOKOUT_BIN" check-config "$TMP/good.yml" 2>&1); rc=$?
check_contains "absolute path: reported as given" "$out" "$TMP/good.yml: SUCCESS"

# Any scheme loads, as in Prometheus 2.42 (warned about); a static target it could not create fails the
# check as in promtool (tests/differential/check_config.sh compares with promtool itself).
printf 'scrape_configs:\n  - job_name: f\n    scheme: ftp\n    static_configs: [{targets: [h.invalid:21]}]\n' >ftp.yml
out=$("$LOOKOUT_BIN" check-config ftp.yml 2>&1); rc=$?
check_eq "scheme ftp: exit 0" 0 "$rc"
check_contains "scheme ftp: warned" "$out" 'ftp.yml: warning: line 3, column 13: job f: scheme "ftp" is not http or https'
sed -i 's/h.invalid:21/h.invalid/' ftp.yml
out=$("$LOOKOUT_BIN" check-config ftp.yml 2>&1); rc=$?
check_eq "scheme ftp, target without port: exit 1" 1 "$rc"
check_contains "scheme ftp, target without port: promtool's words" "$out" \
  'ftp.yml:4:22: job f: instance 0 in group 0: invalid scheme: "ftp"'

# The example configurations shipped with lookout must all pass.
# alerts.yml is a Prometheus rules file (checked with promtool by periskop_api.sh), not a lookout config.
for f in "$ROOT"/config/examples/*.yml; do
  [ -f "$f" ] || continue
  [ "$(basename "$f")" = alerts.yml ] && continue
  out=$("$LOOKOUT_BIN" check-config "$f" 2>&1); rc=$?
  check_eq "example $(basename "$f") passes check-config" 0 "$rc"
done
