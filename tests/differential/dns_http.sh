#!/usr/bin/env bash
# Differential test of dns_sd_configs and http_sd_configs: /api/v1/targets of lookout vs Prometheus 2.42.
# A private dnsmasq answers on 127.0.0.53:53 (Go's resolver only speaks to port 53). Both processes run in
# their own mount namespace (unshare -m) where /etc/resolv.conf is bind-mounted to
# "nameserver 127.0.0.53 / search lookout.test", so both resolve the same names with the same search
# list (no LOOKOUT_DNS_SERVERS here: lookout reads resolv.conf like Prometheus). The HTTP SD documents are
# served by python3 -m http.server (application/json for .json, text/plain for .txt, 404 for the rest).
# Phase 2 changes the hosts file (SIGHUP) and the JSON document and compares again.
# Needs root (port 53, mount namespace).
. "$(dirname "$0")/../lib/common.sh"
HERE=$TESTS_DIR/differential
PY="python3 $HERE/targets.py"

if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
  echo "ok - dns_http differential # SKIP needs root and unshare -m"; exit 0
fi
command -v dnsmasq >/dev/null || "$ROOT/scripts/deps.sh" dnsmasq >&2 || { not_ok "dnsmasq available"; exit 1; }
ensure_prometheus || { not_ok "prometheus 2.42 available"; exit 1; }
[ -x "$LOOKOUT_BIN" ] || { not_ok "lookout binary exists ($LOOKOUT_BIN)"; exit 1; }
if ss -lun 2>/dev/null | grep -q '127.0.0.53:53 '; then
  echo "ok - dns_http differential # SKIP 127.0.0.53:53 is taken"; exit 0
fi

D=$TMP/dns; W=$TMP/www
mkdir -p "$D" "$W"
cp "$ROOT/tests/fixtures/dns/hosts" "$D/hosts"
cp "$HERE/dns_http/targets.json" "$HERE/dns_http/targets.txt" "$W/"
printf 'nameserver 127.0.0.53\nsearch lookout.test\noptions ndots:1\n' >"$TMP/resolv.conf"
bg dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.53 --port=53 \
  --bind-interfaces --user=root --group=root --local=/test/ --addn-hosts="$D/hosts" \
  --srv-host=_web._tcp.lookout.test,web-1.lookout.test,8080,0,0 \
  --srv-host=_web._tcp.lookout.test,web-2.lookout.test,8081,1,0 \
  --mx-host=mail.lookout.test,mx1.lookout.test,10 --mx-host=mail.lookout.test,mx2.lookout.test,20 \
  --pid-file="$D/pid" >"$TMP/dnsmasq.log" 2>&1
DNSMASQ_PID=$BG_PID
sleep 0.5
kill -0 "$DNSMASQ_PID" 2>/dev/null || { not_ok "dnsmasq starts on 127.0.0.53:53"; sed 's/^/#   /' "$TMP/dnsmasq.log"; exit 1; }
HTTP_PORT=$(free_port)
(cd "$W" && exec python3 -m http.server --bind 127.0.0.1 "$HTTP_PORT") >"$TMP/http.log" 2>&1 &
_pids+=($!)
wait_http "http://127.0.0.1:$HTTP_PORT/targets.json" 10 || { not_ok "http server starts"; exit 1; }

sed "s|@HTTP@|http://127.0.0.1:$HTTP_PORT|g" "$HERE/dns_http/config.yml" >"$TMP/lookout.yml"
$PY canary "$TMP/lookout.yml" "$TMP/oracle.yml" || exit 1

# in_ns CMD...: runs CMD in a private mount namespace that sees $TMP/resolv.conf as /etc/resolv.conf
# (exec: bg runs it in a subshell whose pid must become the process's, so that cleanup kills it)
in_ns() { exec unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$TMP/resolv.conf" "$@"; }

PROM_PORT=$(free_port); PROM_URL=http://127.0.0.1:$PROM_PORT
mkdir -p "$TMP/tsdb"
bg in_ns "$PROMETHEUS_BIN" --config.file="$TMP/oracle.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address=127.0.0.1:$PROM_PORT --log.level=warn >"$TMP/prom.log" 2>&1
_prom=$BG_PID
LOOKOUT_PORT=$(free_port); LOOKOUT_URL=http://127.0.0.1:$LOOKOUT_PORT
mkdir -p "$TMP/lk-data"
bg in_ns "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --web.listen-address=127.0.0.1:$LOOKOUT_PORT \
  --storage.path="$TMP/lk-data" >"$TMP/lookout.log" 2>&1
wait_http_pid "$_prom" "$PROM_URL/-/ready" 30 || { not_ok "prometheus starts"; exit 1; }
wait_http "$LOOKOUT_URL/-/ready" 15 || { not_ok "lookout starts"; exit 1; }

jobs=(dns_srv dns_a_search dns_aaaa dns_mx dns_missing_and_many http_sd)
# jobs whose SD must fail in both (wrong Content-Type, 404): compared by their (zero) target counts, since
# targets.py refuses to compare empty answers
empty_jobs=(http_sd_wrong_type http_sd_404)
count_pool() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]
print(sum(1 for k in ("activeTargets","droppedTargets") for t in d.get(k) or [] if t.get("scrapePool", (t.get("discoveredLabels") or {}).get("job"))==sys.argv[2]))' "$1" "$2"
}
compare() {
  local phase=$1 out
  $PY settle "$PROM_URL" "$TMP/prom.json" "$2" 3 45 & local w1=$!
  $PY settle "$LOOKOUT_URL" "$TMP/lookout.json" 3 2 30 & local w2=$!
  wait $w1 $w2
  out=$($PY compare "$TMP/prom.json" "$TMP/lookout.json" "${jobs[@]}")
  [ "$phase" = initial ] || out=$(sed "s/^\(\(not \)\?ok - \)/\1$phase: /" <<<"$out")
  echo "$out"
  local j
  for j in "${empty_jobs[@]}"; do
    check_eq "$phase: $j has no targets in either (SD failure)" "0 0" "$(count_pool "$TMP/prom.json" "$j") $(count_pool "$TMP/lookout.json" "$j")"
  done
}
compare initial 8
# a sanity check that the oracle really discovered something (a broken setup would compare empty sets)
n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["data"]["activeTargets"]))' "$TMP/prom.json")
check "oracle discovered DNS and HTTP targets ($n)" test "$n" -ge 10

cp "$ROOT/tests/fixtures/dns/hosts_update" "$D/hosts"
kill -HUP "$DNSMASQ_PID"
cp "$HERE/dns_http/targets_update.json" "$W/targets.json"
compare "after changes" 14
n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for t in d["data"]["activeTargets"] if t["labels"].get("instance")=="10.8.0.3:9100"))' "$TMP/lookout.json")
check "lookout saw the changed A record" test "$n" -ge 1
