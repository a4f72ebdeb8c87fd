#!/usr/bin/env bash
# --web.config.file (Prometheus' exporter-toolkit format): a real TLS certificate made with openssl,
# bcrypt hashes made here; every endpoint without, with wrong and with right credentials; HTTPS only;
# configured headers; check-config; an invalid file refuses to start; reload re-reads users and the
# certificate and keeps the running file when the new one is broken; client certificates.
. "$(dirname "$0")/../lib/common.sh"
"$ROOT/scripts/deps.sh" openssl curl >&2 || { not_ok "openssl installed"; exit 1; }
HASH=$ROOT/${BUILD:-build}/helpers/bcrypt_hash
[ -x "$HASH" ] || make -s -C "$ROOT" "${BUILD:-build}/helpers/bcrypt_hash" >/dev/null
cd "$TMP" || exit 1

# A CA, a server certificate for 127.0.0.1 signed by it, a client certificate, and a second server
# certificate (for the reload).
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca
mkcert() { # NAME CN
  ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1.ext"
  ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 -extfile "$1.ext"
}
mkcert server lookout-one
mkcert server2 lookout-two
mkcert client scraper
ossl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=intruder
check "openssl made the certificates" test -s server.crt -a -s server2.crt -a -s client.crt

ALICE=$("$HASH" 's3cret pass')
BOB=$("$HASH" hunter2)
cat >web.yml <<YML
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  min_version: TLS12
http_server_config:
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: $ALICE
  bob: $BOB
YML

# --- check-config
out=$("$LOOKOUT_BIN" check-config --web.config.file=web.yml); rc=$?
check_eq "check-config accepts the file" "0 web.yml: SUCCESS" "$rc $out"
printf 'basic_auth_users:\n  alice: s3cret\n' >bad_plain.yml
out=$("$LOOKOUT_BIN" check-config --web.config.file=bad_plain.yml); rc=$?
check_eq "check-config: a plain password" "1 bad_plain.yml:2:3: basic_auth_users: password of user \"alice\" is not a bcrypt hash: crypto/bcrypt: hashedSecret too short to be a bcrypted password" "$rc $out"
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  clientauth: x\n' >bad_key.yml
out=$("$LOOKOUT_BIN" check-config --web.config.file=bad_key.yml); rc=$?
check_contains "check-config: an unknown key" "$rc $out" "1 bad_key.yml:4:3: field clientauth not found in type web.TLSConfig"
printf 'tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n' >bad_cert.yml
out=$("$LOOKOUT_BIN" check-config --web.config.file=bad_cert.yml); rc=$?
check_eq "check-config: an unreadable certificate" "1 bad_cert.yml: failed to read cert_file (nowhere.crt): open nowhere.crt: No such file or directory" "$rc $out"

# --- an invalid file refuses to start, naming the problem
port=$(free_port)
timeout 10 "$LOOKOUT_BIN" --web.config.file=bad_plain.yml --web.listen-address=127.0.0.1:$port \
  --storage.path="$TMP/bad-data" >bad.log 2>&1; rc=$?
check_eq "lookout with an invalid web config exits 1" 1 "$rc"
check_contains "and says why" "$(cat bad.log)" 'msg="Error loading web config file" err="bad_plain.yml:2:3: basic_auth_users: password of user \"alice\" is not a bcrypt hash'

# --- running with TLS and basic auth
cat >lookout.yml <<'YML'
storage: {type: memory}
scrape_configs: []
YML
start_lookout_bg web --config.file=lookout.yml --web.config.file=web.yml --web.enable-push --web.enable-lifecycle
URL=https://127.0.0.1:$LOOKOUT_PORT
C=(curl -s --max-time 10 --cacert ca.crt)
ready() { "${C[@]}" -fo /dev/null -u 'alice:s3cret pass' "$URL/-/ready"; }
check "lookout serves HTTPS with the certificate (verified against the CA)" eventually 15 ready
code() { "${C[@]}" -o /dev/null -w '%{http_code}' "$@"; }
check_eq "plain HTTP on the TLS port fails" 000 "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -u 'alice:s3cret pass' "http://127.0.0.1:$LOOKOUT_PORT/-/ready")"
hdrs=$("${C[@]}" -D - -o /dev/null "$URL/metrics")
check_contains "401 without credentials" "$hdrs" "HTTP/1.1 401 Unauthorized"
check_contains "401 asks for Basic" "$hdrs" "WWW-Authenticate: Basic"
check_contains "configured header on a 401" "$hdrs" "X-Frame-Options: deny"
hdrs=$("${C[@]}" -D - -o /dev/null -u bob:hunter2 "$URL/metrics")
check_contains "configured headers on a 200" "$hdrs" "Strict-Transport-Security: max-age=31536000"

push='{"target_uuid":"t","aggregated_errors":[]}'
# METHOD PATH [BODY]: every endpoint family, read and write.
endpoints=(
  "GET /" "GET /static/app.js" "GET /api/v1/errors" "GET /api/v1/errors/pushed/k" "GET /api/v1/jobs"
  "GET /api/v1/targets" "GET /api/v1/scrape_pools" "GET /api/v1/targets/relabel_steps?scrapePool=x&labels=%7B%7D"
  "GET /targets" "GET /service-discovery" "GET /services/" "GET /services/pushed/errors/" "GET /targets/"
  "GET /-/health" "GET /-/healthy" "GET /-/ready" "GET /metrics" "GET /-/exceptions" "GET /errors"
  "GET /federate/exceptions?job=pushed" "GET /-/errors" "POST /api/v1/errors/pushed/k/resolve"
  "POST /api/v1/errors/pushed/k/reopen" "DELETE /services/pushed/errors/k/" "POST /errors" "POST /api/v1/push/j"
  "POST /-/reload" "GET /no/such/page")
n_none=0 n_wrong=0 n_unknown=0 n_right=0 bad=""
for e in "${endpoints[@]}"; do
  m=${e%% *} p=${e#* }
  a=$(code -X "$m" -d "$push" "$URL$p")
  b=$(code -X "$m" -d "$push" -u alice:wrong "$URL$p")
  c=$(code -X "$m" -d "$push" -u mallory:hunter2 "$URL$p")
  d=$(code -X "$m" -d "$push" -u 'alice:s3cret pass' "$URL$p")
  [ "$a" = 401 ] && n_none=$((n_none + 1)) || bad="$bad [$e none:$a]"
  [ "$b" = 401 ] && n_wrong=$((n_wrong + 1)) || bad="$bad [$e wrong:$b]"
  [ "$c" = 401 ] && n_unknown=$((n_unknown + 1)) || bad="$bad [$e unknown-user:$c]"
  case $d in 401|000) bad="$bad [$e right:$d]" ;; *) n_right=$((n_right + 1)) ;; esac
done
n=${#endpoints[@]}
check_eq "every endpoint: 401 without / with a wrong password / unknown user; served with the right one" \
  "$n $n $n $n" "$n_none $n_wrong $n_unknown $n_right"
[ -n "$bad" ] && echo "# $bad"
check_eq "right credentials: /metrics 200" 200 "$(code -u bob:hunter2 "$URL/metrics")"
check_eq "right credentials: push 200" 200 "$(code -u bob:hunter2 -d "$push" "$URL/api/v1/push/j")"
check_eq "bob's password does not open alice" 401 "$(code -u alice:hunter2 "$URL/metrics")"
check_eq "Bearer instead of Basic: 401" 401 "$(code -H 'Authorization: Bearer hunter2' "$URL/metrics")"
subject() { openssl s_client -connect 127.0.0.1:$LOOKOUT_PORT -CAfile ca.crt </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
check_contains "the first certificate is served" "$(subject)" "CN = lookout-one"

# --- federation: an upper lookout scrapes this one with basic_auth and tls_config (README)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
err='{"target_uuid":"t","aggregated_errors":[{"aggregation_key":"fed-key","total_count":4,"severity":"error","created_at":"'$now'","latest_errors":[]}]}'
check_eq "push an error to federate" 200 "$(code -u bob:hunter2 -d "$err" "$URL/api/v1/push/fedjob")"
LOWER_PID=$LOOKOUT_PID LOWER_PORT=$LOOKOUT_PORT
cat >upper.yml <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: lower
    metrics_path: /federate/exceptions
    params: {job: [fedjob]}
    honor_labels: true
    scheme: https
    tls_config: {ca_file: $TMP/ca.crt}
    basic_auth: {username: alice, password: 's3cret pass'}
    static_configs: [{targets: ['127.0.0.1:$LOWER_PORT']}]
YML
start_lookout upper --config.file=upper.yml || not_ok "upper lookout starts"
fed() { get "/api/v1/errors?job=fedjob" | grep -q '"total_count":4'; }
check "the upper lookout federates over HTTPS with basic_auth" eventually 15 fed
stop_pid "$LOOKOUT_PID"
LOOKOUT_PID=$LOWER_PID LOOKOUT_PORT=$LOWER_PORT

# --- reload: new users and certificate; a broken file keeps the running one
CAROL=$("$HASH" carolpw)
cat >web.yml <<YML
tls_server_config:
  cert_file: server2.crt
  key_file: server2.key
basic_auth_users:
  carol: $CAROL
YML
kill -HUP "$LOOKOUT_PID"
carol_ok() { [ "$(code -u carol:carolpw "$URL/metrics")" = 200 ]; }
check "after SIGHUP the new user is accepted" eventually 10 carol_ok
check_eq "after SIGHUP the removed user is refused" 401 "$(code -u 'alice:s3cret pass' "$URL/metrics")"
check_contains "after SIGHUP new connections get the new certificate" "$(subject)" "CN = lookout-two"
printf 'basic_auth_users:\n  carol: not-a-hash\n' >web.yml
check_eq "POST /-/reload with a broken web config fails" 500 "$(code -u carol:carolpw -X POST "$URL/-/reload")"
check_eq "the running web config stays" 200 "$(code -u carol:carolpw "$URL/metrics")"
check_eq "lookout_config_last_reload_successful is 0" 0 "$("${C[@]}" -u carol:carolpw "$URL/metrics" | awk '$1=="lookout_config_last_reload_successful"{print $2}')"
check_contains "the log names the problem" "$(cat "$TMP/web.log")" 'msg="Error reloading web config file" err="web.yml:2:3: basic_auth_users: password of user \"carol\" is not a bcrypt hash'
check_eq "POST /-/quit without credentials: 401" 401 "$(code -X POST "$URL/-/quit")"
check_eq "POST /-/quit with credentials" 200 "$(code -u carol:carolpw -X POST "$URL/-/quit")"
wait "$LOOKOUT_PID" 2>/dev/null
check_eq "lookout quit" 1 "$(kill -0 "$LOOKOUT_PID" 2>/dev/null && echo 0 || echo 1)"

# --- client certificates: client_auth_type is enforced in the TLS handshake (Go's crypto/tls semantics)
mkcert client2 scraper-two
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca2.key -out ca2.crt -days 2 -subj /CN=test-ca-two
ossl req -newkey rsa:2048 -nodes -keyout client3.key -out client3.csr -subj /CN=scraper-three
ossl x509 -req -in client3.csr -CA ca2.crt -CAkey ca2.key -CAcreateserial -out client3.crt -days 2
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
YML
start_lookout_bg mtls --config.file=lookout.yml --web.config.file=mtls.yml --web.enable-lifecycle
URL=https://127.0.0.1:$LOOKOUT_PORT
mready() { "${C[@]}" -fo /dev/null --cert client.crt --key client.key "$URL/-/ready"; }
check "mTLS: a client certificate signed by the CA is served" eventually 15 mready
# curl's exit status: 35 (TLS 1.2) or 56 (TLS 1.3: the client's certificate comes after the server's
# Finished) when the server fails the handshake with an alert; 0 when the request is served.
hs() { "${C[@]}" -o /dev/null "$@" "$URL/-/ready"; echo $?; }
# curl's exit code for a server that refused the handshake: 35 (SSL connect error) or 56 (receive
# failure); with TLS 1.3 the client's side of the handshake is done before the server's alert arrives, so
# on a loaded machine curl may already be sending the request when the connection is gone: 55 (send
# failure). Any other code (0, 7, 28, 52...) fails the check.
handshake_fails() { case $(hs "$@") in 35|55|56) return 0 ;; *) return 1 ;; esac; }
# The alert openssl receives (TLS 1.3 and 1.2), like Go's crypto/tls sends.
alert() { (printf 'GET /-/ready HTTP/1.0\r\n\r\n'; sleep 1) | openssl s_client -connect 127.0.0.1:$LOOKOUT_PORT \
  -CAfile ca.crt -brief "$@" 2>&1 | grep -o 'alert [a-z ]*' | head -1; }
check "RequireAndVerifyClientCert: no client certificate fails the handshake" handshake_fails
check "RequireAndVerifyClientCert: a self-signed certificate fails the handshake" handshake_fails --cert other.crt --key other.key
check "RequireAndVerifyClientCert: a certificate from another CA fails the handshake" handshake_fails --cert client3.crt --key client3.key
check_eq "TLS 1.3 without a certificate: alert certificate required" "alert certificate required" "$(alert -tls1_3)"
check_eq "TLS 1.2 without a certificate: alert bad certificate" "alert bad certificate" "$(alert -tls1_2)"
check_eq "an unverifiable certificate: alert bad certificate" "alert bad certificate" "$(alert -cert other.crt -key other.key)"

# reload: CA rotation; the CA file is re-read
reload() { "${C[@]}" -s -o /dev/null -w '%{http_code}' -X POST --cert "$1" --key "${1%.crt}.key" "$URL/-/reload"; }
sed -i 's/client_ca_file: ca.crt/client_ca_file: ca2.crt/' mtls.yml
check_eq "reload with the new CA" 200 "$(reload client.crt)"
check_eq "after CA rotation: a certificate of the new CA is served" 0 "$(hs --cert client3.crt --key client3.key)"
check "after CA rotation: a certificate of the old CA fails the handshake" handshake_fails --cert client.crt --key client.key

# RequireAnyClientCert without client_ca_file (a Prometheus file that must work unchanged): any certificate
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAnyClientCert
YML
out=$("$LOOKOUT_BIN" check-config --web.config.file=mtls.yml); rc=$?
check_eq "check-config accepts RequireAnyClientCert without client_ca_file" "0 mtls.yml: SUCCESS" "$rc $out"
check_eq "reload to RequireAnyClientCert" 200 "$(reload client3.crt)"
check_eq "RequireAnyClientCert: a self-signed certificate is served" 0 "$(hs --cert other.crt --key other.key)"
check "RequireAnyClientCert: no certificate fails the handshake" handshake_fails

# client_allowed_sans: the leaf must carry one of them
printf '  client_allowed_sans: [localhost]\n' >>mtls.yml
check_eq "reload with client_allowed_sans" 200 "$(reload other.crt)"
check_eq "client_allowed_sans: a certificate with SAN localhost is served" 0 "$(hs --cert client.crt --key client.key)"
check "client_allowed_sans: one without it fails the handshake" handshake_fails --cert other.crt --key other.key

# VerifyClientCertIfGiven and RequestClientCert: no certificate is fine
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: VerifyClientCertIfGiven
  client_ca_file: ca.crt
YML
check_eq "reload to VerifyClientCertIfGiven" 200 "$(reload client.crt)"
check_eq "VerifyClientCertIfGiven: no certificate is served" 0 "$(hs)"
check "VerifyClientCertIfGiven: an unverifiable certificate fails the handshake" handshake_fails --cert other.crt --key other.key
sed -i 's/VerifyClientCertIfGiven/RequestClientCert/' mtls.yml
check_eq "reload to RequestClientCert" 200 "$(reload client.crt)"
check_eq "RequestClientCert: an unverifiable certificate is served" 0 "$(hs --cert other.crt --key other.key)"

# --- reload: protocol versions, cipher suites and curves apply to the next handshake
# "PROTOCOL CIPHERSUITE" of the session openssl gets, "" when the handshake fails.
proto() { openssl s_client -connect 127.0.0.1:$LOOKOUT_PORT -CAfile ca.crt -brief "$@" </dev/null 2>&1 |
  awk '/^Protocol version:/ {p=$3} /^Ciphersuite:/ {c=$2} END {if (p != "") print p, c}'; }
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  min_version: TLS13
YML
check_eq "reload to min_version TLS13" 200 "$(code -X POST "$URL/-/reload")"
check_eq "min_version TLS13: a TLS 1.2 client gets no session" "" "$(proto -tls1_2)"
check_contains "min_version TLS13: TLS 1.3 is served" "$(proto -tls1_3)" "TLSv1.3 TLS_"
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  max_version: TLS12
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
  curve_preferences: [CurveP384]
YML
check_eq "reload to max_version TLS12 with one cipher suite" 200 "$(code -X POST "$URL/-/reload")"
check_eq "max_version TLS12: a TLS 1.3 client gets no session" "" "$(proto -tls1_3)"
check_eq "TLS 1.2 with the configured suite" "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384" "$(proto -tls1_2)"
check_eq "a client offering only another suite gets no session" "" "$(proto -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)"
check_eq "a client offering only another curve gets no session" "" "$(proto -tls1_2 -curves X25519)"
check_contains "a client offering P-384 is served" "$(proto -tls1_2 -curves P-384)" "TLSv1.2"

# --- reload: TLS switched off and on again, on the same port, without a restart
pid_before=$LOOKOUT_PID
printf 'basic_auth_users:\n  carol: %s\n' "$CAROL" >mtls.yml
check_eq "reload to a file without tls_server_config" 200 "$(code -X POST "$URL/-/reload")"
plain() { curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:$LOOKOUT_PORT/-/ready"; }
check_eq "TLS off: plain HTTP is served (with credentials)" 200 "$(plain -u carol:carolpw)"
check_eq "TLS off: basic auth still applies" 401 "$(plain)"
check_eq "TLS off: HTTPS fails" 000 "$(code -u carol:carolpw "$URL/-/ready")"
check_contains "the log says TLS is disabled" "$(cat "$TMP/mtls.log")" 'msg="TLS is disabled." http2=false reason=reload'
cat >mtls.yml <<'YML'
tls_server_config:
  cert_file: server2.crt
  key_file: server2.key
YML
check_eq "reload over plain HTTP to a file with TLS" 200 "$(curl -s --max-time 10 -o /dev/null -w "%{http_code}" -u carol:carolpw -X POST "http://127.0.0.1:$LOOKOUT_PORT/-/reload")"
check_eq "TLS on again: HTTPS is served" 200 "$(code "$URL/-/ready")"
check_contains "TLS on again: with the new certificate" "$(subject)" "CN = lookout-two"
check_eq "TLS on again: plain HTTP fails" 000 "$(plain)"
printf 'tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n' >mtls.yml
check_eq "a broken TLS file fails the reload" 500 "$(code -X POST "$URL/-/reload")"
check_eq "and HTTPS goes on" 200 "$(code "$URL/-/ready")"
check_eq "the same process throughout" "$pid_before" "$LOOKOUT_PID"
check "lookout still runs" kill -0 "$LOOKOUT_PID"
