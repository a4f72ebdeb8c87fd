#!/usr/bin/env bash
# The HTML /targets and /service-discovery pages of a large fleet (issue 12): 1,000 scrape pools of 40
# targets (a ~19 MiB /targets page showing all of them). Both pages are streamed a piece of whole pools at
# a time, each piece under the target manager's read lock, which is not held while the client reads:
# - four concurrent /targets and /service-discovery pages grow VmHWM by at most 16 MiB (built whole:
#   +110 MiB at 0aadac9, which wrote the whole page under the read lock, then sent it; 0 MiB now);
# - a client that stops reading after its first 64 KiB holds nothing: a SIGHUP reload that adds a pool
#   (the target manager's write lock) completes and the JSON API answers meanwhile; the stalled page,
#   read to its end afterwards, is whole. (The page built whole, then sent, passed this too; what it
#   catches is a writer that keeps the read lock across pieces: planted, the reload check fails.)
# Prints the measured numbers as comments.
. "$(dirname "$0")/../lib/common.sh"

write_config() { # FILE [EXTRA_JOB]
  python3 - "$1" "${2:-}" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("global: {scrape_interval: 1h, scrape_timeout: 10s}\nstorage: {type: memory}\nscrape_configs:\n")
    jobs = ["pool-%04d" % j for j in range(1000)] + ([sys.argv[2]] if sys.argv[2] else [])
    for j, job in enumerate(jobs):
        targets = ", ".join("'127.0.0.1:%d'" % (1 + t) for t in range(40))
        f.write("  - job_name: %s\n    metrics_path: /p%d\n    static_configs: [{targets: [%s], labels: "
                "{team: team-%d, env: production, region: eu-west-1, tier: backend}}]\n" % (job, j, targets, j % 37))
PY
}
write_config "$TMP/fleet.yml"
start_lookout fleet --config.file="$TMP/fleet.yml" || not_ok "lookout starts"
all_targets() { curl -s "$LOOKOUT_URL/metrics" | awk -v want="$1" '/^lookout_target_pool_targets\{/ { s += $2 } END { exit s != want }'; }
check "1,000 pools of 40 targets" eventually 120 all_targets 40000

echo 5 >"/proc/$LOOKOUT_PID/clear_refs"
base=$(hwm_kib "$LOOKOUT_PID")
pids=()
for i in 1 2 3 4; do
  path=/targets
  [ "$i" -gt 2 ] && path=/service-discovery
  curl -s -o "$TMP/page$i" -w '%{http_code}\n' --max-time 120 "$LOOKOUT_URL$path" >>"$TMP/codes" &
  pids+=($!)
done
wait "${pids[@]}"
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# two /targets ($(($(wc -c <"$TMP/page1") / MIB)) MiB) and two /service-discovery ($(($(wc -c <"$TMP/page3") / MIB)) MiB) at once: VmHWM growth $growth MiB"
check_eq "four pages" "4" "$(grep -c '^200$' "$TMP/codes")"
check_eq "/targets: every pool once, every target" "1000 40000 1" \
  "$(grep -o '<h2>pool-[0-9]*</h2>' "$TMP/page1" | sort -u | wc -l) $(grep -o 'href="http://127.0.0.1:[0-9]*/p[0-9]*"' "$TMP/page1" | wc -l) $(tail -c 22 "$TMP/page1" | grep -c '</main></body></html>')"
check_eq "/service-discovery: every pool once, every target" "1000 40000" \
  "$(grep -o '<h2>pool-[0-9]*</h2>' "$TMP/page3" | sort -u | wc -l) $(grep -o '__metrics_path__=&#34;/p[0-9]*&#34;' "$TMP/page3" | wc -l)"
check_mem "four concurrent pages: VmHWM growth $growth MiB <= 16 MiB" [ "$growth" -le 16 ]

# A client that stops reading after its first 64 KiB (it waits for $TMP/go, then reads the rest): the
# socket buffers take a few MiB of the 19 MiB page, then the server waits for the client.
python3 - "$LOOKOUT_PORT" "$TMP" <<'PY' &
import os, socket, sys, time
port, tmp = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /targets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while len(data) < 65536:
    data += s.recv(4096)
open(tmp + "/stalled", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.05)
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
open(tmp + "/slow.page", "wb").write(data)
PY
slow=$!
check "the slow client has its first 64 KiB" eventually 30 test -e "$TMP/stalled"
write_config "$TMP/fleet.yml" pool-added
kill -HUP "$LOOKOUT_PID"
# (a deadline, not a count of tries: a page writer that kept the read lock across pieces would block the
# reload's write lock, and behind it every request, so each try would wait for its --max-time)
check "meanwhile a reload adds a pool (the write lock is free)" timeout 60 bash -c \
  "until curl -s --max-time 10 '$LOOKOUT_URL/metrics' | grep -q '^lookout_target_pool_targets{job=\"pool-added\"} 40'; do sleep 0.1; done"
check_contains "... and the JSON API answers" "$(curl -s --max-time 10 "$LOOKOUT_URL/api/v1/scrape_pools")" '"pool-added"'
touch "$TMP/go"
wait "$slow"
check_eq "the stalled page, read to its end: chunked, every first pool once, whole" "1 1000 1" \
  "$(grep -ac 'Transfer-Encoding: chunked' "$TMP/slow.page") $(grep -ao '<h2>pool-0[0-9]*</h2>' "$TMP/slow.page" | sort -u | wc -l) $(grep -ac '</main></body></html>' "$TMP/slow.page")"
stop_pid "$LOOKOUT_PID"
