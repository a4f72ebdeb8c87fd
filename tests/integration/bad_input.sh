#!/usr/bin/env bash
# Bad input never crashes lookout and always gets a clear error.
# Part 1: bad configuration files. Each case is checked with `check-config` (exit 1, "FILE:LINE:COL: "
#   at the expected line, a key word) and with `lookout run` (exits 1 at once, names the file; no crash).
#   Wording is the config module's choice: only FILE:LINE: and a key word are matched.
# Part 2: garbage file_sd files next to a good one: lookout keeps running, the good targets are served,
#   the bad files' errors are counted and logged, bad targets (address with '/') are reported.
. "$(dirname "$0")/../lib/common.sh"
cd "$TMP" || exit 1

# bad_config NAME LINE_REGEX KEYWORD_REGEX < YAML
bad_config() {
  local name=$1 line=$2 kw=$3 f="$1.yml" out rc
  cat >"$f"
  out=$(timeout 10 "$LOOKOUT_BIN" check-config "$f" 2>&1); rc=$?
  if [ "$rc" -eq 1 ] && grep -qE "^$name\.yml:($line):[0-9]+: " <<<"$out" &&
    grep -qiE "$kw" <<<"${out//$f/}"; then
    ok "check-config rejects $name"
  else
    not_ok "check-config rejects $name (want exit 1, '$f:$line:COL: ' and /$kw/)"
    echo "#   exit $rc, output:"; head -5 <<<"$out" | sed 's/^/#     /'
  fi
  out=$(timeout 10 "$LOOKOUT_BIN" --config.file="$f" --web.listen-address=127.0.0.1:$(free_port) \
    --storage.path="$TMP/run-data" 2>&1); rc=$?
  if [ "$rc" -eq 1 ] && grep -q "$f" <<<"$out"; then
    ok "lookout run refuses $name"
  else
    not_ok "lookout run refuses $name (want exit 1 and the file named; 124 = still running, >128 = crash)"
    echo "#   exit $rc, output:"; head -5 <<<"$out" | sed 's/^/#     /'
  fi
}

bad_config invalid_yaml '3|4' 'yaml|mapping|expected|found' <<'EOF'
scrape_configs:
  - job_name: a
    static_configs: [{targets: [a:1]
  - job_name: b
EOF

bad_config tab_indent '2|3' 'yaml|tab|found' <<'EOF'
scrape_configs:
	- job_name: a
EOF

bad_config wrong_type_list '1' 'scrape_configs|list|sequence|expected' <<'EOF'
scrape_configs: not-a-list
EOF

bad_config wrong_type_interval '4' 'scrape_interval|duration' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    scrape_interval: [15s]
EOF

bad_config wrong_type_bool '4' 'honor_labels|bool' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    honor_labels: maybe
EOF

bad_config unknown_key '4' 'scrape_intervall' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    scrape_intervall: 15s
EOF

bad_config unknown_top_key '3' 'scrape_config' <<'EOF'
global:
  scrape_interval: 15s
scrape_config:
  - job_name: a
EOF

bad_config bad_regex '6|7' 'regex|parse|missing|paren' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    static_configs: [{targets: [a.invalid:1]}]
    relabel_configs:
      - source_labels: [a]
        regex: '(('
        target_label: b
EOF

bad_config regex_lookahead '5|6' 'regex|syntax|perl|invalid' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        regex: 'foo(?=bar)'
        target_label: b
EOF

bad_config regex_backreference '5|6' 'regex|escape|invalid' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        regex: '(a)\1'
        target_label: b
EOF

bad_config unknown_action '6' 'action|frobnicate' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        action: frobnicate
EOF

bad_config replace_without_target '5' 'target_label|replace' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        action: replace
EOF

bad_config hashmod_without_modulus '5' 'modulus' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        target_label: b
        action: hashmod
EOF

bad_config labeldrop_with_source '5' 'labeldrop|source_labels|only' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        regex: x
        action: labeldrop
EOF

bad_config lowercase_bad_target '5' 'target_label|lowercase|invalid|1abc' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    relabel_configs:
      - source_labels: [a]
        target_label: '1abc'
        action: lowercase
EOF

bad_config duration_fraction '4' 'duration|1\.5s' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    scrape_interval: 1.5s
EOF

bad_config duration_no_unit '2' 'duration|scrape_interval' <<'EOF'
global:
  scrape_interval: 10
scrape_configs: []
EOF

bad_config duration_bad_unit '4' 'duration|5x' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    scrape_timeout: 5x
EOF

bad_config timeout_above_interval '2|3|4|5' 'timeout' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    scrape_interval: 10s
    scrape_timeout: 20s
EOF

bad_config global_timeout_above_interval '1|2|3' 'timeout' <<'EOF'
global:
  scrape_interval: 10s
  scrape_timeout: 20s
scrape_configs: []
EOF

bad_config duplicate_job '5|6' 'duplicate|multiple|already|"a"' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    static_configs: [{targets: [a.invalid:1]}]
  - job_name: a
    metrics_path: /metrics
EOF

bad_config missing_job_name '2|3' 'job_name' <<'EOF'
scrape_configs:
  - metrics_path: /metrics
    static_configs: [{targets: [a.invalid:1]}]
EOF

bad_config static_address_with_path '5' 'a\.invalid/x|hostname' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    static_configs:
      - targets: [a.invalid/x]
EOF

bad_config static_bad_label_name '6' 'label|1bad' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    static_configs:
      - targets: [a.invalid:1]
        labels: {1bad: x}
EOF

bad_config params_not_list '5' 'params|list' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    params:
      module: http_2xx
EOF

bad_config duplicate_key '4' 'already|duplicate|metrics_path' <<'EOF'
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    metrics_path: /other
EOF

# A YAML alias bomb (billion laughs) must be refused or parsed in bounded time and memory.
cat >bomb.yml <<'EOF'
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
scrape_configs: []
EOF
out=$(timeout 10 "$LOOKOUT_BIN" check-config bomb.yml 2>&1); rc=$?
check_eq "YAML alias bomb: rejected quickly with exit 1 (124 = hang, >128 = crash)" 1 "$rc"

printf 'scrape_configs:\n  - job_name: "a\xff\xfe"\n    metrics_path: /metrics\n' >notutf8.yml
out=$(timeout 10 "$LOOKOUT_BIN" check-config notutf8.yml 2>&1); rc=$?
check_eq "invalid UTF-8 in the config: exit 1" 1 "$rc"
check_contains "invalid UTF-8: names the file" "$out" "notutf8.yml"

head -c 3000 /dev/urandom >random.yml
out=$(timeout 10 "$LOOKOUT_BIN" check-config random.yml 2>&1); rc=$?
check_eq "random bytes as config: exit 1" 1 "$rc"

# ---- Part 2: garbage file_sd files.
SD=$TMP/sd
mkdir -p "$SD"
cat >"$SD/good.json" <<'EOF'
[{"targets": ["good.invalid:1"]}]
EOF
cat >"$TMP/fsd.yml" <<EOF
scrape_configs:
  - job_name: files
    metrics_path: /metrics
    scrape_interval: 1h
    file_sd_configs:
      - files: ['$SD/*.json', '$SD/*.yml']
        refresh_interval: 1h
EOF
start_lookout fsd --config.file="$TMP/fsd.yml" || { not_ok "lookout starts with file_sd"; exit 1; }
check "good file_sd file served" eventually 10 targets_are "files/good.invalid:1"

n=0
garbage() { # garbage NAME CONTENT (printf format)
  # shellcheck disable=SC2059
  printf "$2" >"$SD/$1"
  n=$((n + 1))
  if eventually 10 metric_at_least lookout_sd_file_read_errors_total "$n"; then
    ok "garbage file_sd $1: read error counted"
  else
    not_ok "garbage file_sd $1: read error counted (lookout_sd_file_read_errors_total=$(metric_sum lookout_sd_file_read_errors_total), want >= $n)"
  fi
  check "garbage file_sd $1: error logged with the file name" grep -q "$1" "$TMP/fsd.log"
  check_eq "garbage file_sd $1: good targets unaffected" "files/good.invalid:1" "$(active_targets)"
  rm -f "$SD/$1"
  n=$(metric_sum lookout_sd_file_read_errors_total); n=${n%.*}
}
garbage truncated.json '[{"targets": ["x.invalid:1"'
garbage object.json '{"targets": ["x.invalid:1"]}'
garbage targets_not_list.json '[{"targets": "x.invalid:1"}]'
garbage bad_label_name.json '[{"targets": ["x.invalid:1"], "labels": {"1bad": "v"}}]'
garbage label_not_string.json '[{"targets": ["x.invalid:1"], "labels": {"a": 1}}]'
garbage binary.json '\x00\x01\x02\xff\xfe[]'
garbage bad.yml 'targets: [x.invalid:1]\n  - : :\n'
garbage yaml_map.yml 'targets: [x.invalid:1]\n'

# An address with '/' fails target building: neither active nor dropped, and logged.
cat >"$SD/path.json" <<'EOF'
[{"targets": ["slash.invalid/x", "fine.invalid:1"]}]
EOF
check "file_sd address with '/': the valid neighbour appears" eventually 10 \
  targets_are "files/fine.invalid:1,files/good.invalid:1"
dropped=$(get "/api/v1/targets?state=dropped" | grep -c "slash.invalid")
check_eq "file_sd address with '/': not listed as dropped" 0 "$dropped"
check "file_sd address with '/': logged" grep -q "slash.invalid/x" "$TMP/fsd.log"
check "lookout survived all garbage" kill -0 "$LOOKOUT_PID"
