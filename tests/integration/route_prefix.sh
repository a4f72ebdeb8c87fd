#!/usr/bin/env bash
# --web.external-url's path as the route prefix, and --web.route-prefix (Prometheus' semantics): every
# endpoint (UI, static files, APIs, /-/healthy, /-/ready, /metrics, server pages) moves below the prefix,
# / and the bare prefix redirect to prefix + "/", everything else is 404; the embedded configuration
# scrapes lookout's own exceptions under the prefix; the flag wins over the external URL's path; behind
# Debian's nginx as a reverse proxy the UI, assets and API answer, and a same-origin write passes the
# cross-site check because the proxy's origin is the external URL's.
. "$(dirname "$0")/../lib/common.sh"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$LOOKOUT_URL$1"; }
location() { curl -s -o /dev/null -w '%{redirect_url}' --max-time 5 "$LOOKOUT_URL$1"; }

LOOKOUT_PREFIX=/lookout start_lookout ext --web.external-url=http://lookout.example:8080/lookout/ ||
  { not_ok "lookout starts with --web.external-url=.../lookout/"; exit 1; }
check_eq "/ redirects into the prefix" "302 $LOOKOUT_URL/lookout/" "$(code /) $(location /)"
check_eq "the bare prefix redirects to prefix/" "302 $LOOKOUT_URL/lookout/" "$(code /lookout) $(location /lookout)"
check_eq "/-/healthy and /-/ready under the prefix" "200 200" "$(code /lookout/-/healthy) $(code /lookout/-/ready)"
check_eq "nothing outside it: /-/healthy, /api/v1/jobs, /static/app.js, /lookoutx/-/healthy" "404 404 404 404" \
  "$(code /-/healthy) $(code /api/v1/jobs) $(code /static/app.js) $(code /lookoutx/-/healthy)"
ui=$(get /lookout/)
check_contains "the UI under the prefix, its assets referenced relative to it" "$ui" 'src="static/app.js?v='
check_eq "static assets, API, metrics and the targets page under the prefix" "200 200 200 200" \
  "$(code /lookout/static/app.js) $(code /lookout/api/v1/jobs) $(code /lookout/metrics) $(code /lookout/targets)"
check_contains "server pages link relative to the prefix" "$(get /lookout/targets)" '<a href="service-discovery">'
self_up() { get /lookout/api/v1/targets | python3 -c '
import json,sys
t=json.load(sys.stdin)["data"]["activeTargets"][0]
sys.exit(0 if t["health"]=="up" and t["scrapeUrl"].endswith("/lookout/-/exceptions") else 1)'; }
check "the embedded configuration scrapes lookout's own exceptions under the prefix" eventually 30 self_up
stop_pid "$LOOKOUT_PID"

# behind nginx (proxy_pass keeps the path; the Host lookout sees is its own address, not the proxy's)
NP=$(free_port)
LOOKOUT_PREFIX=/lookout start_lookout proxied --web.external-url=http://127.0.0.1:$NP/lookout/ ||
  { not_ok "lookout starts for the proxy"; exit 1; }
start_nginx_proxy "$LOOKOUT_PORT" "$NP" || { not_ok "nginx starts"; exit 1; }
PX=http://127.0.0.1:$NGINX_PORT
pcode() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
check_eq "through nginx: UI, asset, API, /-/ready under the prefix" "200 200 200 200" \
  "$(pcode "$PX/lookout/") $(pcode "$PX/lookout/static/app.js") $(pcode "$PX/lookout/api/v1/jobs") $(pcode "$PX/lookout/-/ready")"
check_eq "through nginx: the root redirects into the prefix" "302 $PX/lookout/" \
  "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$PX/")"
check_eq "through nginx: a same-origin write from the proxy's origin is not refused as cross-site (404: no such error)" \
  404 "$(pcode -X POST -H "Origin: $PX" -H 'Sec-Fetch-Site: same-origin' "$PX/lookout/api/v1/errors/j/k/resolve")"
check_eq "through nginx: a write from another origin is refused" 403 \
  "$(pcode -X POST -H 'Origin: http://evil.example' "$PX/lookout/api/v1/errors/j/k/resolve")"
stop_pid "$LOOKOUT_PID"

LOOKOUT_PREFIX=/b start_lookout flag --web.external-url=http://lookout.example/a/ --web.route-prefix=b/ ||
  { not_ok "lookout starts with --web.route-prefix"; exit 1; }
check_eq "--web.route-prefix wins over the external URL's path (normalised to /b)" "200 404" \
  "$(code /b/-/healthy) $(code /a/-/healthy)"
stop_pid "$LOOKOUT_PID"

start_lookout root --web.external-url=http://lookout.example/ --web.route-prefix=/ ||
  { not_ok "lookout starts with --web.route-prefix=/"; exit 1; }
check_eq "--web.route-prefix=/ is no prefix" "200 200" "$(code /-/healthy) $(code /api/v1/jobs)"
stop_pid "$LOOKOUT_PID"

check_contains "lookout --help documents --web.route-prefix" "$("$LOOKOUT_BIN" --help)" "--web.route-prefix=PATH"
