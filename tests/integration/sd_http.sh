#!/usr/bin/env bash
# http_sd end to end: lookout polls a JSON document served by python3 -m http.server; changes show up,
# a broken document and a 404 keep the last targets and count failures.
. "$(dirname "$0")/../lib/common.sh"
W=$TMP/www; mkdir -p "$W"
echo '[{"targets": ["a.invalid:1", "a.invalid:2"], "labels": {"team": "x"}}]' >"$W/sd.json"
HPORT=$(free_port)
(cd "$W" && exec python3 -m http.server --bind 127.0.0.1 "$HPORT") >"$TMP/http.log" 2>&1 &
_pids+=($!)
wait_http "http://127.0.0.1:$HPORT/sd.json" 10 || { not_ok "http server starts"; exit 1; }
cat >"$TMP/lookout.yml" <<EOF
scrape_configs:
  - job_name: h
    scrape_interval: 1h
    http_sd_configs:
      - url: http://127.0.0.1:$HPORT/sd.json
        refresh_interval: 300ms
EOF
start_lookout httpsd --config.file="$TMP/lookout.yml" || { not_ok "lookout starts with http_sd_configs"; exit 1; }
check "targets from the document" eventually 10 targets_are "h/a.invalid:1,h/a.invalid:2"
url=$(get "/api/v1/targets?scrapePool=h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["activeTargets"][0]["discoveredLabels"].get("__meta_url"))')
check_eq "__meta_url" "http://127.0.0.1:$HPORT/sd.json" "$url"
echo '[{"targets": ["b.invalid:1"]}]' >"$W/sd.json.tmp" && mv "$W/sd.json.tmp" "$W/sd.json"
check "document changed: targets follow" eventually 5 targets_are "h/b.invalid:1"
f=$(metric_sum lookout_sd_http_failures_total)
echo '[{"targets": ' >"$W/sd.json"
check "invalid JSON: failure counted" eventually 5 metric_at_least lookout_sd_http_failures_total $((${f%.*} + 1))
check_eq "invalid JSON: targets kept" "h/b.invalid:1" "$(active_targets h)"
rm -f "$W/sd.json"
f=$(metric_sum lookout_sd_http_failures_total)
check "404: failure counted" eventually 5 metric_at_least lookout_sd_http_failures_total $((${f%.*} + 2))
check_eq "404: targets kept" "h/b.invalid:1" "$(active_targets h)"
echo '[]' >"$W/sd.json"
check "empty list: targets removed" eventually 5 targets_are "" h
