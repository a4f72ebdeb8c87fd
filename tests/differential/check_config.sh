#!/usr/bin/env bash
# Differential test of `lookout check-config` against `promtool check config` of Prometheus 2.42 (the
# oracle): for each case both must accept (exit 0) or both reject. Covers the scheme rules: Prometheus
# loads any scheme string (the targets fail at scrape time), but a static target it cannot create, such
# as one without a port under a scheme other than http/https ("invalid scheme"), fails the check.
. "$(dirname "$0")/../lib/common.sh"
ensure_prometheus || { not_ok "prometheus 2.42 available"; exit 1; }
PROMTOOL=$(command -v promtool) || { not_ok "promtool available"; exit 1; }
cd "$TMP" || exit 1

# case NAME EXPECTED_PROMTOOL_RC YAML: writes NAME.yml. EXPECTED pins the oracle too, so a case cannot
# pass because both tools changed their mind in the same way.
cases=()
case_() { printf '%s\n' "$3" >"$1.yml"; cases+=("$1:$2"); }

case_ scheme_ftp_with_port 0 "scrape_configs:
  - job_name: a
    scheme: ftp
    static_configs: [{targets: ['127.0.0.1:21']}]"
case_ scheme_ftp_without_port 1 "scrape_configs:
  - job_name: a
    scheme: ftp
    static_configs: [{targets: ['127.0.0.1:21']}, {targets: ['ftp.invalid']}]"
case_ scheme_odd_string 0 "scrape_configs:
  - job_name: a
    scheme: 'Weird Scheme!'
    static_configs: [{targets: ['127.0.0.1:21']}]"
case_ scheme_empty_without_port 0 "scrape_configs:
  - job_name: a
    scheme: ''
    static_configs: [{targets: ['h.invalid']}]"
case_ scheme_upper_without_port 1 "scrape_configs:
  - job_name: a
    scheme: HTTP
    static_configs: [{targets: ['h.invalid']}]"
case_ scheme_upper_with_port 0 "scrape_configs:
  - job_name: a
    scheme: HTTPS
    static_configs: [{targets: ['h.invalid:443']}]"
case_ scheme_https_without_port 0 "scrape_configs:
  - job_name: a
    scheme: https
    static_configs: [{targets: ['h.invalid']}]"
case_ scheme_relabeled_without_port 1 "scrape_configs:
  - job_name: a
    static_configs: [{targets: ['h.invalid']}]
    relabel_configs:
      - {target_label: __scheme__, replacement: gopher}"
case_ scheme_relabeled_with_port 0 "scrape_configs:
  - job_name: a
    static_configs: [{targets: ['h.invalid:70']}]
    relabel_configs:
      - {target_label: __scheme__, replacement: gopher}"
case_ scheme_ftp_file_sd_only 0 "scrape_configs:
  - job_name: a
    scheme: ftp
    file_sd_configs: [{files: [none.json]}]"

for c in "${cases[@]}"; do
  name=${c%%:*} want=${c##*:}
  "$PROMTOOL" check config "$name.yml" >"$name.promtool" 2>&1; prc=$?
  "$LOOKOUT_BIN" check-config "$name.yml" >"$name.lookout" 2>&1; lrc=$?
  [ "$prc" -ne 0 ] && prc=1
  [ "$lrc" -ne 0 ] && lrc=1
  if [ "$prc" = "$want" ] && [ "$lrc" = "$prc" ]; then
    ok "$name (both exit $prc)"
  else
    not_ok "$name: promtool exit $prc (expected $want), lookout exit $lrc"
    sed 's/^/#   promtool: /' "$name.promtool"; sed 's/^/#   lookout:  /' "$name.lookout"
  fi
done

# The rejection names the same failure as promtool: 'instance 0 in group 1: invalid scheme: "ftp"'.
check_contains "promtool: invalid scheme text" "$(cat scheme_ftp_without_port.promtool)" 'instance 0 in group 1: invalid scheme: "ftp"'
check_contains "lookout: same text, with file:line:column and job" "$(cat scheme_ftp_without_port.lookout)" \
  'scheme_ftp_without_port.yml:4:51: job a: instance 0 in group 1: invalid scheme: "ftp"'
check_contains "lookout: accepted odd scheme is warned about" "$(cat scheme_odd_string.lookout)" \
  'job a: scheme "Weird Scheme!" is not http or https'
