#!/usr/bin/env bash
# The scrape fast path (src/http/h1client.c) against curl: two lookouts scrape the same misbehaving target
# (tests/lib/h1_misbehave.py: statuses, resets, truncation, bad framing, gzip, redirects, limits, a hang),
# one with the fast path and one with --scrape.curl-only. Every target must end with the same health and
# lastError on both, and both must count the same scrapes and failures per job.
. "$(dirname "$0")/../lib/common.sh"
"$ROOT/scripts/deps.sh" python3 >/dev/null
bg python3 "$ROOT/tests/lib/h1_misbehave.py" "$TMP/port" "$ROOT/tests/fixtures/payloads/python.json"
eventually 10 test -s "$TMP/port" || { not_ok "misbehaving server starts"; exit 1; }
P=$(cat "$TMP/port"); DEAD=$(free_port)
cases=(ok chunked gzip http10 close s500 s503bare s404own hang reset resetmid truncated truncchunk badchunk
       garbage nothing badlength redirect brotli badgzip hugeheaders continue)
{
  echo "global: {scrape_interval: 2s, scrape_timeout: 1s}"
  echo "storage: {type: memory}"
  echo "scrape_configs:"
  echo "  - job_name: main"
  echo "    static_configs:"
  for c in "${cases[@]}"; do
    echo "      - {targets: ['127.0.0.1:$P'], labels: {__metrics_path__: /$c, case: $c}}"
  done
  echo "      - {targets: ['127.0.0.1:$DEAD'], labels: {case: refused}}"
  echo "      - {targets: ['[::1]:$DEAD'], labels: {case: refused6}}"
  echo "  - job_name: limited"
  echo "    body_size_limit: 2000B"
  echo "    static_configs:"
  for c in big bigchunked biggzip ok; do
    echo "      - {targets: ['127.0.0.1:$P'], labels: {__metrics_path__: /$c, case: lim_$c}}"
  done
  echo "  - job_name: noredirect"
  echo "    follow_redirects: false"
  echo "    static_configs:"
  echo "      - {targets: ['127.0.0.1:$P'], labels: {__metrics_path__: /redirect, case: redirect_nofollow}}"
} >"$TMP/l.yml"

start_lookout fast --config.file="$TMP/l.yml" || { not_ok "lookout starts"; exit 1; }
FAST_URL=$LOOKOUT_URL
start_lookout curl --config.file="$TMP/l.yml" --scrape.curl-only || { not_ok "lookout --scrape.curl-only starts"; exit 1; }
CURL_URL=$LOOKOUT_URL

states() { # URL -> "case health|lastError" lines, sorted
  curl -sS --max-time 10 "$1/api/v1/targets" | python3 -c '
import json,sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print(t["labels"]["case"], t["health"]+"|"+t["lastError"])' | sort
}
scraped_twice() { # every target of URL scraped at least twice per job counters
  local m; m=$(curl -sS --max-time 10 "$1/metrics")
  [ "$(states "$1" | grep -c '|unknown\| unknown|')" = 0 ] || return 1
  local n; n=$(awk '/^lookout_scrapes_total\{job="main"\}/ {print $2}' <<<"$m")
  [ "${n%.*}" -ge $(( (${#cases[@]} + 2) * 2 )) ] 2>/dev/null
}
eventually 30 scraped_twice "$FAST_URL" || not_ok "fast-path lookout scraped everything twice"
eventually 30 scraped_twice "$CURL_URL" || not_ok "curl-only lookout scraped everything twice"
sleep 2.2 # one more round on both: the states below are those of settled (sticky) clients
A=$(states "$FAST_URL"); B=$(states "$CURL_URL")
n=0
while read -r c rest; do
  b=$(grep "^$c " <<<"$B" | cut -d' ' -f2-)
  check_eq "case $c: same health and lastError with and without the fast path" "$b" "$rest"
  n=$((n + 1))
done <<<"$A"
check_eq "every case compared" "$(( ${#cases[@]} + 2 + 4 + 1 ))" "$n"

# a few literal texts, so that "equal" cannot mean "equally broken"
st() { grep "^$2 " <<<"$1" | cut -d' ' -f2-; }
check_eq "ok is up" "up|" "$(st "$A" ok)"
check_eq "gzip is up" "up|" "$(st "$A" gzip)"
check_eq "chunked is up" "up|" "$(st "$A" chunked)"
check_eq "HTTP/1.0 until close is up" "up|" "$(st "$A" http10)"
check_eq "redirect followed" "up|" "$(st "$A" redirect)"
check_eq "503 without reason" "down|server returned HTTP status 503 Service Unavailable" "$(st "$A" s503bare)"
check_eq "404 with the server's reason" "down|server returned HTTP status 404 Nothing Here At All" "$(st "$A" s404own)"
check_eq "redirect not followed" "down|server returned HTTP status 302 Found" "$(st "$A" redirect_nofollow)"
check_eq "hang" "down|Get \"http://127.0.0.1:$P/hang\": context deadline exceeded" "$(st "$A" hang)"
check_eq "refused" "down|Get \"http://127.0.0.1:$DEAD/-/exceptions\": dial tcp 127.0.0.1:$DEAD: connect: connection refused" "$(st "$A" refused)"
check_eq "body limit (Content-Length)" "down|body size limit exceeded (2000 bytes)" "$(st "$A" lim_big)"
check_eq "body limit (chunked)" "down|body size limit exceeded (2000 bytes)" "$(st "$A" lim_bigchunked)"
check_eq "body limit (inflated gzip)" "down|body size limit exceeded (2000 bytes)" "$(st "$A" lim_biggzip)"

counters() { # URL -> scrapes and failures per job
  curl -sS --max-time 10 "$1/metrics" | grep -E '^lookout_scrape(s|_failures)_total\{' | sort
}
# The two started apart, so their totals differ by the rounds in between; both scrape at the same phases
# (the offsets come from the host name and the targets), so the growth over the same rounds must match.
deltas() { # "before" "after" -> per-line differences
  paste -d' ' <(echo "$1") <(echo "$2") | awk '{ print $1, $4 - $2 }'
}
same_growth() {
  local a0 b0 a1 b1
  a0=$(counters "$FAST_URL"); b0=$(counters "$CURL_URL")
  sleep 6
  a1=$(counters "$FAST_URL"); b1=$(counters "$CURL_URL")
  [ "$(deltas "$a0" "$a1")" = "$(deltas "$b0" "$b1")" ] && [ -n "$a0" ] && \
    [ "$(deltas "$a0" "$a1" | awk '$2 > 0' | wc -l)" = 6 ] || { deltas "$a0" "$a1"; deltas "$b0" "$b1"; false; }
}
grown() { local i; for i in 1 2 3 4 5 6 7; do same_growth >/dev/null && return 0; done; same_growth; }
check "same scrapes and failures per job over the same rounds" grown
fastm=$(curl -sS --max-time 10 "$FAST_URL/metrics")
curlm=$(curl -sS --max-time 10 "$CURL_URL/metrics")
done_n=$(awk '/^lookout_scrape_fast_path_requests_total\{outcome="done"\}/ {print $2}' <<<"$fastm")
check "the fast path answered scrapes" test "${done_n:-0}" -gt 10
check "the fast path handed some to curl" grep -q '^lookout_scrape_fast_path_requests_total{outcome="curl"} [1-9]' <<<"$fastm"
check "--scrape.curl-only never takes the fast path" \
  bash -c '! grep -q "^lookout_scrape_fast_path_requests_total{" <<<"$1"' _ "$curlm"
