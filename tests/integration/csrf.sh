#!/usr/bin/env bash
# No cross-site writes: every state-changing endpoint (resolve, reopen, Periskop DELETE, both push paths,
# /-/reload, /-/quit, OPTIONS preflights) answers 403 to a request the browser marks as cross-site
# (Origin of another site, Origin null, Sec-Fetch-Site cross-site or same-site) and changes nothing;
# same-origin requests and requests without Origin (curl, clients) work; reads are unaffected;
# --web.cors.origin allows an origin (the Periskop UI's development server) with CORS headers.
. "$(dirname "$0")/../lib/common.sh"
cat >"$TMP/a.yml" <<'YML'
storage: {type: memory}
scrape_configs: []
YML
start_lookout csrf --config.file="$TMP/a.yml" --web.enable-push --web.enable-lifecycle || { not_ok "lookout starts"; exit 1; }
code() { curl -s --max-time 10 -o "$TMP/body" -w '%{http_code}' "$@"; }
body() { python3 -c '
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"target_uuid": "t", "aggregated_errors": [{"aggregation_key": "k1", "total_count": int(sys.argv[1]),
  "severity": "error", "created_at": now, "latest_errors": []}]}))' "$1"; }
check_eq "push without Origin (a client library) works" 200 "$(code --data-binary "$(body 1)" "$LOOKOUT_URL/api/v1/push/j")"
status() { get /api/v1/errors/j/k1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"])'; }
check_eq "error is open" open "$(status)"

evil=(-H 'Origin: http://evil.example')
writes=("POST /api/v1/errors/j/k1/resolve" "POST /api/v1/errors/j/k1/reopen" "DELETE /services/j/errors/k1/"
        "POST /errors" "POST /api/v1/push/j" "POST /-/reload" "PUT /-/reload" "POST /-/quit" "PUT /-/quit"
        "OPTIONS /services/j/errors/k1/" "OPTIONS /api/v1/errors/j/k1/resolve" "OPTIONS /-/quit")
variants=("Origin: http://evil.example" "Origin: null" "Sec-Fetch-Site: cross-site" "Sec-Fetch-Site: same-site"
          "Origin: https://127.0.0.1:$LOOKOUT_PORT")
total=0 refused=0 bad=""
for w in "${writes[@]}"; do
  m=${w%% *} p=${w#* }
  for v in "${variants[@]}"; do
    total=$((total + 1))
    c=$(code -X "$m" -H "$v" -H 'Access-Control-Request-Method: POST' --data-binary "$(body 5)" "$LOOKOUT_URL$p")
    [ "$c" = 403 ] && refused=$((refused + 1)) || bad="$bad [$w $v: $c]"
  done
done
check_eq "every cross-site write and preflight: 403 ($total requests)" "$total" "$refused"
[ -n "$bad" ] && echo "# $bad"
check_contains "403 says why" "$(code -X POST "${evil[@]}" "$LOOKOUT_URL/-/quit"; cat "$TMP/body")" "cross-site requests may not change lookout's state"
check_eq "lookout still runs after cross-site /-/quit" 200 "$(code "$LOOKOUT_URL/-/ready")"
check_eq "cross-site resolve changed nothing" open "$(status)"
check_eq "cross-site pushes changed nothing (count 1)" 1 "$(get /api/v1/errors/j/k1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total_count"])')"

check_eq "cross-site GET (a read) is served" 200 "$(code "${evil[@]}" -H 'Sec-Fetch-Site: cross-site' "$LOOKOUT_URL/api/v1/errors")"
check_eq "no CORS header for an origin not allowed" "" "$(curl -s -D - -o /dev/null "${evil[@]}" "$LOOKOUT_URL/services/" | grep -i '^access-control-allow-origin' | tr -d '\r')"
check_eq "Periskop UI's localhost origin is not allowed unless listed" 403 "$(code -X DELETE -H 'Origin: http://localhost:3000' "$LOOKOUT_URL/services/j/errors/k1/")"
same=(-H "Origin: http://127.0.0.1:$LOOKOUT_PORT" -H 'Sec-Fetch-Site: same-origin')
check_eq "same-origin resolve (the UI) works" 200 "$(code -X POST "${same[@]}" "$LOOKOUT_URL/api/v1/errors/j/k1/resolve")"
check_eq "resolved" resolved "$(status)"
check_eq "same-origin reopen works" 200 "$(code -X POST "${same[@]}" "$LOOKOUT_URL/api/v1/errors/j/k1/reopen")"
check_eq "Origin with the default port of the scheme is the same origin" 200 "$(code -X POST -H 'Origin: http://localhost' -H 'Host: localhost:80' "$LOOKOUT_URL/api/v1/errors/j/k1/resolve")"
proxy=(-H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: lookout.example')
check_eq "behind a TLS-terminating proxy: the public origin is lookout's own" 200 "$(code -X POST "${proxy[@]}" -H 'Origin: https://lookout.example' "$LOOKOUT_URL/api/v1/errors/j/k1/reopen")"
check_eq "behind a proxy: another origin is still refused" 403 "$(code -X POST "${proxy[@]}" "${evil[@]}" "$LOOKOUT_URL/api/v1/errors/j/k1/resolve")"
check_eq "Periskop DELETE without Origin (curl) works" 204 "$(code -X DELETE "$LOOKOUT_URL/services/j/errors/k1/")"
check_eq "/-/reload without Origin works" 200 "$(code -X POST "$LOOKOUT_URL/-/reload")"
check_eq "typed-in navigation (Sec-Fetch-Site: none) is not cross-site" 200 "$(code -X POST -H 'Sec-Fetch-Site: none' "$LOOKOUT_URL/-/reload")"
check_eq "same-origin /-/quit works" 200 "$(code -X POST "${same[@]}" "$LOOKOUT_URL/-/quit")"
wait "$LOOKOUT_PID" 2>/dev/null

# --web.cors.origin: Prometheus' flag, a fully anchored regex.
start_lookout cors --config.file="$TMP/a.yml" --web.enable-push --web.cors.origin='http://localhost:[0-9]+' || { not_ok "lookout with --web.cors.origin starts"; exit 1; }
code --data-binary "$(body 1)" "$LOOKOUT_URL/api/v1/push/j" >/dev/null
ui=(-H 'Origin: http://localhost:3000' -H 'Sec-Fetch-Site: same-site')
hdrs=$(curl -s -D - -o /dev/null -X OPTIONS "${ui[@]}" -H 'Access-Control-Request-Method: DELETE' "$LOOKOUT_URL/services/j/errors/k1/" | tr -d '\r')
check_contains "allowed origin: preflight 204" "$hdrs" "HTTP/1.1 204"
check_contains "allowed origin: Access-Control-Allow-Origin" "$hdrs" "Access-Control-Allow-Origin: http://localhost:3000"
check_contains "allowed origin: methods" "$hdrs" "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS"
check_eq "allowed origin: DELETE works" 204 "$(code -X DELETE "${ui[@]}" "$LOOKOUT_URL/services/j/errors/k1/")"
check_eq "anchored: http://localhost:3000.evil.example is refused" 403 "$(code -X DELETE -H 'Origin: http://localhost:3000.evil.example' "$LOOKOUT_URL/services/j/errors/k1/")"
check_eq "another origin is still refused" 403 "$(code -X POST "${evil[@]}" "$LOOKOUT_URL/api/v1/push/j")"
stop_pid "$LOOKOUT_PID"
