#!/usr/bin/env bash
# The web UI behind HTTPS and basic auth (--web.config.file) in a real browser (Debian's chromium driven by
# playwright-core, tests/browser/auth.test.mjs): 401 without credentials; with them the UI loads, opens an
# error with its scrubbed HTTP context and resolves it.
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  scripts/deps.sh "${need[@]}" >&2 || { not_ok "ui_auth_browser: cannot install ${need[*]}"; exit 1; }
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2 || { not_ok "ui_auth_browser: npm ci"; exit 1; }
fi
HASH=$ROOT/${BUILD:-build}/helpers/bcrypt_hash
[ -x "$HASH" ] || make -s -C "$ROOT" "${BUILD:-build}/helpers/bcrypt_hash" >/dev/null

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/server.key" -out "$TMP/server.crt" -days 2 \
  -subj /CN=localhost -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
cat >"$TMP/web.yml" <<YML
tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  operator: $("$HASH" 'correct horse')
YML
printf 'scrape_configs: []\n' >"$TMP/lookout.yml"
start_lookout_bg auth --config.file="$TMP/lookout.yml" --web.config.file="$TMP/web.yml" --web.enable-push
URL=https://127.0.0.1:$LOOKOUT_PORT
C=(curl -sk --max-time 10 -u 'operator:correct horse')
ready() { "${C[@]}" -fo /dev/null "$URL/-/ready"; }
eventually 15 ready || { not_ok "ui_auth_browser: lookout starts with TLS and basic auth"; sed 's/^/#   /' "$TMP/auth.log" | tail; exit 0; }
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
body='{"target_uuid":"browser","aggregated_errors":[{"aggregation_key":"LoginError@browser","total_count":1,"severity":"error","created_at":"'$now'","latest_errors":[{"error":{"class":"LoginError","message":"bad password","stacktrace":["at login()"],"cause":null},"uuid":"b1","timestamp":"'$now'","severity":"error","http_context":{"request_method":"POST","request_url":"/login?session=zqbrowsersess","request_headers":{"Authorization":"Basic zqbrowserauth"},"request_body":"{\"password\":\"zqbrowserpw\"}"}}]}]}'
check_eq "push with credentials" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' --data-binary "$body" "$URL/api/v1/push/webshop")"
LOOKOUT_UI_URL=$URL LOOKOUT_UI_USER=operator LOOKOUT_UI_PASSWORD='correct horse' timeout 120 node tests/browser/auth.test.mjs
rc=$?
[ $rc -eq 0 ] || echo "# node exited $rc"
exit 0
