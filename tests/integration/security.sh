#!/usr/bin/env bash
# Security review checks against the real binary: request limits (headers, URL, declared body), path
# traversal on /static/, lifecycle endpoints (GET refused, POST refused without the flag), HTML escaping of
# hostile file_sd labels and a javascript: scheme on /targets and /service-discovery, security headers,
# deep JSON on relabel_steps. After all of it lookout is still up.
. "$(dirname "$0")/../lib/common.sh"

SD=$TMP/sd
mkdir -p "$SD"
cat >"$SD/evil.json" <<'EOF'
[{"targets": ["evil.invalid:80"],
  "labels": {"team": "<script>alert(1)</script>", "__meta_scheme": "javascript",
             "__meta_path": "/\nalert(document.cookie)"}}]
EOF
cat >"$TMP/lookout.yml" <<EOF
scrape_configs:
  - job_name: files
    scrape_interval: 1h
    relabel_configs:
      - source_labels: [__meta_scheme]
        regex: '(.+)'
        target_label: __scheme__
      - source_labels: [__meta_path]
        regex: '(.+)'
        target_label: __metrics_path__
    file_sd_configs:
      - files: ['$SD/*.json']
EOF

start_lookout sec --config.file="$TMP/lookout.yml" || { not_ok "lookout starts"; exit 1; }

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }

big=$(head -c 100000 /dev/zero | tr '\0' a)
c=$(code -H "X-Big: $big" "$LOOKOUT_URL/-/healthy")
check "a 100 KB header is refused (431/413), got $c" [ "$c" = 431 -o "$c" = 413 ]
c=$(code "$LOOKOUT_URL/-/healthy?q=$big")
check "a 100 KB query string is refused (414/431/413), got $c" [ "$c" = 414 -o "$c" = 431 -o "$c" = 413 ]
start=$(date +%s%N)
c=$(code -X POST -H 'Content-Length: 10000000000' --data-binary @/dev/null "$LOOKOUT_URL/errors")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
# push is off here: its 404 is decided from the headers before the size (413 when push is on)
check "a declared 10 GB body is refused at once (404 in ${ms} ms), got $c" [ "$c" = 404 -a "$ms" -lt 3000 ]

for p in '/static/../../etc/passwd' '/static/%2e%2e/%2e%2e/etc/passwd' '/static/..%2f..%2fetc%2fpasswd'; do
  body=$(curl -s --path-as-is --max-time 10 "$LOOKOUT_URL$p")
  c=$(code --path-as-is "$LOOKOUT_URL$p")
  check "path traversal $p is 404 ($c)" [ "$c" = 404 -a "${body#*root:}" = "$body" ]
done

check_eq "GET /-/quit is 405" 405 "$(code "$LOOKOUT_URL/-/quit")"
check_eq "POST /-/quit without --web.enable-lifecycle is 403" 403 "$(code -X POST "$LOOKOUT_URL/-/quit")"
check_eq "POST /-/reload without --web.enable-lifecycle is 403" 403 "$(code -X POST "$LOOKOUT_URL/-/reload")"

check "the hostile target is discovered" eventually 10 sh -c "curl -s '$LOOKOUT_URL/api/v1/targets' | grep -q evil.invalid"
page=$(get /targets)
check_contains "/targets escapes a <script> label" "$page" '&lt;script&gt;alert(1)&lt;/script&gt;'
check "/targets has no raw <script>" [ "${page#*<script}" = "$page" ]
check "/targets does not link a javascript: URL" sh -c "! grep -qi 'href=\"javascript' <<'EOF'
$page
EOF"
sdp=$(get /service-discovery)
check "/service-discovery has no raw <script>" [ "${sdp#*<script}" = "$sdp" ]
hdrs=$(curl -s -D - -o /dev/null --max-time 10 "$LOOKOUT_URL/targets")
check_contains "/targets sends a Content-Security-Policy" "$hdrs" "Content-Security-Policy: default-src 'none'"
check_contains "/targets sends X-Frame-Options" "$hdrs" "X-Frame-Options: DENY"
hdrs=$(curl -s -D - -o /dev/null --max-time 10 "$LOOKOUT_URL/api/v1/targets")
check_contains "JSON answers send nosniff" "$hdrs" "X-Content-Type-Options: nosniff"

deep=$(python3 -c 'print("[" * 3000 + "]" * 3000)')
c=$(code -G --data-urlencode "scrapePool=files" --data-urlencode "labels=$deep" "$LOOKOUT_URL/api/v1/targets/relabel_steps")
check_eq "deeply nested labels JSON is a 400" 400 "$c"

check_eq "lookout is still healthy" 200 "$(code "$LOOKOUT_URL/-/healthy")"
check "lookout did not crash" kill -0 "$LOOKOUT_PID"
