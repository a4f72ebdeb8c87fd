#!/usr/bin/env bash
# Hostile and runaway input against a real lookout (issue 12, part B):
# - memory: a scraped 10 MB body of each runaway shape ([{},{},...], empty samples, deep and wide
#   arrays, one huge string, ~360k tiny aggregates of 5000 keys, ~230k distinct keys, 3M empty stack
#   lines) grows VmHWM by at most 5 x the body + 48 MiB (distinct keys: the store keeps at most
#   storage.max_errors_per_job of them, the rest go to lookout.overflow);
# - push: 404 (off) and 401 (bad credentials) answered from the headers while a huge declared body is
#   never sent; 40 concurrent 9 MB pushes (off, then on) keep VmHWM growth bounded;
# - slow-loris: 300 connections dribbling header bytes from 127.0.0.1 leave /-/healthy, the UI and the
#   APIs answering a client at 127.0.0.2 (curl --max-time 2: a liveness bound, not a timing assertion);
#   --web.max-connections-per-client=50 keeps 50 of them; --web.read-header-timeout=3s closes a client
#   that sends a header byte every second (a total deadline: an idle limit never would);
# - dumps: six concurrent /federate/exceptions, and six /services/{job}/errors/, of 18,000 errors
#   (~63 MiB each) grow VmHWM by at most 24 MiB (streamed page by page; built whole: +186 MiB), and 40
#   dumps and searches at once leave /-/healthy and the UI answering;
# - discovery: a FIFO matching a file_sd glob is skipped (log line, lookout_sd_file_read_errors_total),
#   and http_sd, Consul and Kubernetes endpoints accept connections and never answer;
#   start-up, SIGHUP reload and SIGTERM each finish within 5 s (`timeout` on the process).
# - --web.read-timeout=3s: an idle keep-alive connection is kept past the 1 s header timeout and closed
#   after 3 s; a body dribbled a byte every 200 ms is cut (lookout_http_read_timeouts_total).
# Prints the measured numbers as comments (the issue's before/after table comes from these).
. "$(dirname "$0")/../lib/common.sh"

# ---- memory per body shape ----
mkdir -p "$TMP/shapes"
python3 - "$TMP/shapes" <<'PY'
import sys
d = sys.argv[1]
N = 10 * 1000 * 1000
def fill(name, head, tail, gen):
    with open(f"{d}/{name}", "w") as f:
        f.write(head); n = len(head) + len(tail); i = 0
        while n < N:
            u = gen(i); u = u if i == 0 else "," + u
            f.write(u); n += len(u); i += 1
        f.write(tail)
fill("empty_objects", '{"aggregated_errors":[', "]}", lambda i: "{}")
fill("empty_samples", '{"aggregated_errors":[{"aggregation_key":"k","total_count":1,"latest_errors":[', "]}]}", lambda i: "{}")
fill("wide_arrays", '{"x":[', '],"aggregated_errors":[]}', lambda i: "[]")
with open(f"{d}/deep_arrays", "w") as f:
    f.write('{"x":' + "[" * (N // 2) + "]" * (N // 2) + "}")
with open(f"{d}/huge_string", "w") as f:
    f.write('{"aggregated_errors":[{"aggregation_key":"k","total_count":1,"latest_errors":[{"error":{"message":"'
            + "x" * N + '"}}]}]}')
fill("tiny_aggregates", '{"aggregated_errors":[', "]}", lambda i: '{"aggregation_key":"%x","total_count":1}' % (i % 5000))
fill("distinct_tiny_aggregates", '{"aggregated_errors":[', "]}", lambda i: '{"aggregation_key":"%x","total_count":1}' % i)
fill("empty_stack_lines", '{"aggregated_errors":[{"aggregation_key":"k","total_count":1,"latest_errors":[{"error":{"stacktrace":[',
     "]}}]}]}", lambda i: '""')
PY
SHAPE_PORT=$(free_port)
bg python3 -m http.server "$SHAPE_PORT" --bind 127.0.0.1 --directory "$TMP/shapes"
wait_http "http://127.0.0.1:$SHAPE_PORT/empty_objects" 10 || not_ok "shape server starts"
for shape in empty_objects empty_samples wide_arrays deep_arrays huge_string tiny_aggregates empty_stack_lines \
  distinct_tiny_aggregates; do
  cat >"$TMP/$shape.yml" <<YML
global: {scrape_interval: 2s, scrape_timeout: 2s}
storage: {type: memory}
scrape_configs:
  - job_name: shape
    body_size_limit: 11MB
    metrics_path: /$shape
    static_configs: [{targets: ["127.0.0.1:$SHAPE_PORT"]}]
YML
  start_lookout "mem-$shape" --config.file="$TMP/$shape.yml" || { not_ok "lookout starts ($shape)"; continue; }
  base=$(hwm_kib "$LOOKOUT_PID")
  # the scrape runs at start; it is done when the target has a last scrape
  eventually 60 bash -c "curl -s '$LOOKOUT_URL/api/v1/targets' | grep -q '\"lastScrape\":\"2'" ||
    not_ok "$shape: scraped"
  sleep 1 # the ingest writer parses after the scrape loop hands the body over
  curl -s "$LOOKOUT_URL/api/v1/targets" >/dev/null
  peak=$(hwm_kib "$LOOKOUT_PID")
  size=$(stat -c %s "$TMP/shapes/$shape")
  growth=$(((peak - base) * 1024))
  echo "# VmHWM $shape: body $((size / MIB)) MiB, base $((base / 1024)) MiB, peak $((peak / 1024)) MiB, growth $((growth / MIB)) MiB"
  # distinct keys: storage.max_errors_per_job (10,000) errors are kept, the rest counted into
  # lookout.overflow, so the store stays within the same bound as the parse (494 MiB before that cap).
  check_mem "$shape: VmHWM growth $((growth / MIB)) MiB <= 5 x body + 48 MiB" [ "$growth" -le $((5 * size + 48 * MIB)) ]
  stop_pid "$LOOKOUT_PID"
done

# ---- push: decided from the headers ----
# raw_status PORT REQUEST: sends the request head (no body), prints the status code of the answer.
raw_status() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].replace("\\r\\n", "\r\n").encode())
try:
    print(s.recv(4096).split(b" ")[1].decode())
except Exception as e:
    print("no answer:", type(e).__name__)
PY
}
cat >"$TMP/push.yml" <<'YML'
storage: {type: memory}
scrape_configs: []
YML
start_lookout push-off --config.file="$TMP/push.yml" || not_ok "lookout starts (push off)"
check_eq "push off: 404 from the headers of a 1 GB body never sent" 404 \
  "$(raw_status "$LOOKOUT_PORT" 'POST /errors HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n')"
check_eq "push off: 404 from the headers of a chunked body never sent" 404 \
  "$(raw_status "$LOOKOUT_PORT" 'POST /api/v1/push/j HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')"
# 40 concurrent 9 MB bodies while push is off: each refused before its body is read
python3 -c 'import sys; sys.stdout.write("{\"aggregated_errors\":[" + ",".join(["{}"] * 3000000) + "]}")' >"$TMP/9mb.json"
pushes() { # URL [HEADER]: 40 concurrent pushes of the 9 MB body, prints the status codes sorted and counted
  local url=$1 h=${2:-X-None: 1} i
  for i in $(seq 40); do curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H "$h" --data-binary @"$TMP/9mb.json" "$url" & done | sort | uniq -c | tr -s ' \n' ' '
}
base=$(hwm_kib "$LOOKOUT_PID")
codes=$(pushes "$LOOKOUT_URL/errors")
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# push off, 40 x 9 MB: answers $codes, VmHWM growth $growth MiB"
check_eq "push off: 40 concurrent 9 MB pushes all 404" " 40 404 " "$codes"
check_mem "push off: VmHWM growth $growth MiB <= 16 MiB" [ "$growth" -le 16 ]
stop_pid "$LOOKOUT_PID"

cat >"$TMP/push-auth.yml" <<'YML'
storage: {type: memory}
scrape_configs: []
push:
  enabled: true
  authorization: {credentials: s3cret}
YML
start_lookout push-auth --config.file="$TMP/push-auth.yml" || not_ok "lookout starts (push with a token)"
check_eq "wrong token: 401 from the headers of a 1 GB body never sent" 401 \
  "$(raw_status "$LOOKOUT_PORT" 'POST /errors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 1000000000\r\n\r\n')"
check_eq "no token: 401 from the headers" 401 \
  "$(raw_status "$LOOKOUT_PORT" 'POST /api/v1/push/j HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n')"
base=$(hwm_kib "$LOOKOUT_PID")
codes=$(pushes "$LOOKOUT_URL/errors" "Authorization: Bearer s3cret")
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# push on, 40 x 9 MB with the right token: answers $codes, VmHWM growth $growth MiB"
check_contains "push on: bodies past the in-flight budget get 503" "$codes" " 503"
check_mem "push on: VmHWM growth $growth MiB <= 160 MiB (32 MiB of bodies in flight, each parsed in < 5x)" [ "$growth" -le 160 ]
check_eq "push on: the right token still works" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' --data-binary '{"aggregated_errors":[{"aggregation_key":"k","total_count":1}]}' "$LOOKOUT_URL/errors")"
stop_pid "$LOOKOUT_PID"

# ---- slow-loris from 127.0.0.1, everyone else at 127.0.0.2 ----
start_lookout loris --config.file="$TMP/push.yml" --web.max-connections-per-client=50 --web.read-header-timeout=3s ||
  not_ok "lookout starts (slow-loris)"
cat >"$TMP/loris.py" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    try:
        s = socket.socket(); s.settimeout(2); s.bind(("127.0.0.1", 0)); s.connect(("127.0.0.1", port))
        s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"); socks.append(s)
    except OSError:
        pass
def alive(s):  # open as long as the server has not closed it
    try:
        s.setblocking(False); return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
time.sleep(1)
socks = [s for s in socks if alive(s)]
print(len(socks), flush=True)
while True:  # a header byte every second per socket, forever
    for s in list(socks):
        try: s.sendall(b"X")
        except OSError: socks.remove(s)
    time.sleep(1)
PY
bg python3 "$TMP/loris.py" "$LOOKOUT_PORT" 300 >"$TMP/loris.out"
LORIS_PID=$BG_PID
eventually 10 test -s "$TMP/loris.out"
check_eq "slow-loris: --web.max-connections-per-client=50 keeps 50 of 300 connections from one address" 50 \
  "$(head -1 "$TMP/loris.out")"
other() { # prints the status; the time taken goes to $TMP/loris_times (printed below, not asserted)
  local r
  r=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --interface 127.0.0.2 --max-time 2 "$LOOKOUT_URL$1")
  echo "$1 ${r#* } s" >>"$TMP/loris_times"
  echo "${r%% *}"
}
check_eq "slow-loris: /-/healthy answers 127.0.0.2" 200 "$(other /-/healthy)"
check_eq "slow-loris: the UI answers 127.0.0.2" 200 "$(other /)"
check_eq "slow-loris: /api/v1/targets answers 127.0.0.2" 200 "$(other /api/v1/targets)"
check_eq "slow-loris: /api/v1/errors answers 127.0.0.2" 200 "$(other /api/v1/errors)"
echo "# slow-loris, answered to 127.0.0.2 in: $(tr '\n' ';' <"$TMP/loris_times")"
stop_pid "$LORIS_PID"
# The header deadline is total: a client sending a header byte every second (never idle for 3 s) is
# closed once its headers are 3 s late. Printed: how long it kept the connection.
dribble() {
  python3 - "$LOOKOUT_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); t0 = time.time()
s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"); s.settimeout(1)
while time.time() - t0 < 30:
    try:
        s.sendall(b"X")
        if s.recv(1) == b"": break
    except socket.timeout: continue
    except OSError: break
print("closed after %.0f s" % (time.time() - t0) if time.time() - t0 < 30 else "open after 30 s")
PY
}
held=$(dribble)
echo "# a header byte every second under --web.read-header-timeout=3s: $held"
secs=$(sed -n 's/^closed after \([0-9]*\) s$/\1/p' <<<"$held")
check "read-header-timeout: a client dribbling header bytes is closed within 10 s ($held)" [ "${secs:-999}" -le 10 ]
check "read-header-timeout: counted in lookout_http_header_timeouts_total" \
  eventually 5 metric_at_least lookout_http_header_timeouts_total 1
check_eq "after the dribblers: /-/healthy answers" 200 "$(other /-/healthy)"
stop_pid "$LOOKOUT_PID"

# ---- six concurrent full dumps of 18,000 errors ----
cat >"$TMP/dump.yml" <<'YML'
storage: {type: memory, max_errors_per_job: 20000}
scrape_configs: []
push: {enabled: true}
YML
# 18,000 errors with three ~1 KB samples each (nine pushes under the 10 MiB push limit): each dump is
# ~63 MiB, so a dump built whole in memory cannot hide under the bound.
for part in 0 1 2 3 4 5 6 7 8; do
  python3 - "$part" >"$TMP/part$part.json" <<'PY'
import json, sys
p = int(sys.argv[1])
aggs = [{"aggregation_key": f"key-{p}-{i}", "total_count": 3, "severity": "error",
         "latest_errors": [{"error": {"class": "E", "message": f"failure {p}-{i}-{j} " + "m" * 1000,
                                      "stacktrace": ["at a.b(c.go:1)", "at d.e(f.go:2)"]},
                            "uuid": f"u-{p}-{i}-{j}", "timestamp": "2024-03-02T10:00:0%dZ" % j} for j in range(3)]}
        for i in range(2000)]
print(json.dumps({"target_uuid": f"t{p}", "aggregated_errors": aggs}))
PY
done
push_all() {
  local part codes=""
  for part in 0 1 2 3 4 5 6 7 8; do
    codes+="$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 --data-binary @"$TMP/part$part.json" "$LOOKOUT_URL/errors") "
  done
  check_eq "push 18,000 errors in nine bodies" "200 200 200 200 200 200 200 200 200 " "$codes"
}
start_lookout dump --config.file="$TMP/dump.yml" || not_ok "lookout starts (dumps)"
push_all
base=$(hwm_kib "$LOOKOUT_PID") # before any dump: a dump built whole raises VmHWM already on its own
one=$(curl -s --max-time 60 "$LOOKOUT_URL/federate/exceptions" | tee "$TMP/dump0" | wc -c)
check_eq "one dump: 18,000 errors" 18000 "$(grep -o '"aggregation_key"' "$TMP/dump0" | wc -l)"
dumps=()
for i in 1 2 3 4 5 6; do
  curl -s -o "$TMP/dump$i" -w '%{http_code}\n' --max-time 120 "$LOOKOUT_URL/federate/exceptions" >>"$TMP/dump-codes" &
  dumps+=($!)
done
wait "${dumps[@]}"
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# six concurrent /federate/exceptions of 18,000 errors ($((one / MIB)) MiB each): VmHWM growth $growth MiB"
check_eq "six dumps answered" "6" "$(grep -c '^200$' "$TMP/dump-codes")"
check_eq "every dump identical to the first" "0 0 0 0 0 0" \
  "$(for i in 1 2 3 4 5 6; do cmp -s "$TMP/dump0" "$TMP/dump$i"; echo -n "$? "; done | sed 's/ $//')"
# Streamed page by page: each dump holds a page and one job's keys (built whole: +186 MiB here).
check_mem "six dumps of $((one / MIB)) MiB: VmHWM growth $growth MiB <= 24 MiB" [ "$growth" -le 24 ]
# Forty dumps and searches at once cannot hold the threads that answer health checks and the UI (each
# dump costs about a second of CPU here: on the server threads, twenty would hold all four for seconds).
slow=()
for i in $(seq 20); do
  curl -s -o /dev/null --max-time 120 "$LOOKOUT_URL/federate/exceptions" & slow+=($!)
  curl -s -o /dev/null --max-time 120 "$LOOKOUT_URL/api/v1/errors?q=failure" & slow+=($!)
done
sleep 1
check_eq "forty slow requests in flight: /-/healthy answers (--max-time 2)" 200 \
  "$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --max-time 2 "$LOOKOUT_URL/-/healthy")"
check_eq "forty slow requests in flight: the UI answers (--max-time 2)" 200 \
  "$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --max-time 2 "$LOOKOUT_URL/")"
wait "${slow[@]}"
stop_pid "$LOOKOUT_PID"
# The same for Periskop's list of one service, on a fresh process (VmHWM is a peak: measured from the
# same data without any dump before).
start_lookout dump-periskop --config.file="$TMP/dump.yml" || not_ok "lookout starts (Periskop lists)"
push_all
base=$(hwm_kib "$LOOKOUT_PID")
svc=()
for i in 1 2 3 4 5 6; do curl -s -o "$TMP/svc$i" --max-time 120 "$LOOKOUT_URL/services/pushed/errors/" & svc+=($!); done
wait "${svc[@]}"
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# six concurrent /services/pushed/errors/ ($(($(wc -c <"$TMP/svc1") / MIB)) MiB each): VmHWM growth $growth MiB"
check_eq "Periskop list: 18,000 errors" 18000 "$(grep -o '"aggregation_key"' "$TMP/svc1" | wc -l)"
check_mem "six Periskop lists: VmHWM growth $growth MiB <= 24 MiB" [ "$growth" -le 24 ]
stop_pid "$LOOKOUT_PID"

# ---- file_sd with a FIFO in the glob ----
mkdir -p "$TMP/sd"
mkfifo "$TMP/sd/fifo.json"
echo '[{"targets":["127.0.0.1:1"],"labels":{"from":"file"}}]' >"$TMP/sd/good.json"
cat >"$TMP/fifo.yml" <<YML
global: {scrape_interval: 1h}
storage: {type: memory}
scrape_configs:
  - job_name: fifo
    file_sd_configs: [{files: ["$TMP/sd/*.json"]}]
YML
PORT=$(free_port)
t0=$(date +%s%N)
bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$PORT --storage.path="$TMP/fifo-data" \
  --config.file="$TMP/fifo.yml" --web.enable-lifecycle >"$TMP/fifo.log" 2>&1
FIFO_PID=$BG_PID
LOOKOUT_URL=http://127.0.0.1:$PORT
check "FIFO in the glob: ready within 5 s" timeout 5 bash -c "until curl -fs -o /dev/null $LOOKOUT_URL/-/ready; do sleep 0.05; done"
echo "# FIFO: ready after $((($(date +%s%N) - t0) / 1000000)) ms"
check "FIFO: skipped and counted in lookout_sd_file_read_errors_total" eventually 5 metric_at_least lookout_sd_file_read_errors_total 1
check_contains "FIFO: the regular file's target is discovered" "$(get /api/v1/targets)" '"from":"file"'
check "FIFO: a log line names it" eventually 5 grep -qF \
  "msg=\"error reading file\" job=fifo file=$TMP/sd/fifo.json err=\"not a regular file\"" "$TMP/fifo.log"
kill -HUP "$FIFO_PID"
check_eq "FIFO: POST /-/reload answers within 5 s" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$LOOKOUT_URL/-/reload")"
kill -TERM "$FIFO_PID"
check "FIFO: SIGTERM ends lookout within 5 s" timeout 5 bash -c "while kill -0 $FIFO_PID 2>/dev/null; do sleep 0.05; done"
wait "$FIFO_PID"
check_eq "FIFO: exit status 0 after SIGTERM" 0 "$?"

# ---- discovery endpoints that accept and never answer (http_sd, Consul, Kubernetes) ----
HOLE=$(free_port)
bg python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(100); held = []
while True: held.append(s.accept()[0])' "$HOLE"
cat >"$TMP/hole.yml" <<YML
global: {scrape_interval: 1h}
storage: {type: memory}
scrape_configs:
  - job_name: hole
    http_sd_configs: [{url: "http://127.0.0.1:$HOLE/sd"}]
    consul_sd_configs: [{server: "127.0.0.1:$HOLE"}]
    kubernetes_sd_configs: [{role: pod, api_server: "http://127.0.0.1:$HOLE"}]
YML
PORT=$(free_port)
LOOKOUT_URL=http://127.0.0.1:$PORT
bg "$LOOKOUT_BIN" --web.listen-address=127.0.0.1:$PORT --storage.path="$TMP/hole-data" --config.file="$TMP/hole.yml" \
  --web.enable-lifecycle
HOLE_PID=$BG_PID
check "providers that never answer: ready within 5 s" timeout 5 bash -c "until curl -fs -o /dev/null $LOOKOUT_URL/-/ready; do sleep 0.05; done"
kill -HUP "$HOLE_PID"
check_eq "providers that never answer: POST /-/reload answers within 5 s" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$LOOKOUT_URL/-/reload")"
kill -TERM "$HOLE_PID"
check "providers that never answer: SIGTERM ends lookout within 5 s" timeout 5 bash -c "while kill -0 $HOLE_PID 2>/dev/null; do sleep 0.05; done"

# ---- --web.read-timeout: idle keep-alive connections and slow bodies ----
start_lookout read-timeout --config.file="$TMP/push.yml" --web.read-timeout=3s --web.read-header-timeout=1s ||
  not_ok "lookout starts (read timeout)"
out=$(python3 - "$LOOKOUT_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def closed(s):
    s.setblocking(False)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except BlockingIOError:
        return False
    finally:
        s.setblocking(True)
# idle keep-alive: kept past the 1 s header timeout, closed after the 3 s read timeout. "open" can only be
# asserted while less than 3 s has passed since the request was sent (the connection's last activity is
# after t0): a run stalled past that (a loaded machine) says so and is made again on a new connection.
req = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
for attempt in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    s.sendall(req); s.recv(4096)
    time.sleep(1.5)
    state = "closed" if closed(s) else "open"
    if time.monotonic() - t0 < 2.9:
        break
    print("stalled %.1f s past the request: made again" % (time.monotonic() - t0))
    s.close()
print("idle 1.5s:", state)
s.sendall(req); print("second request:", s.recv(4096).split(b"\r\n")[0].decode())
for i in range(300):
    time.sleep(0.1)
    if closed(s):
        break
print("idle: closed" if closed(s) else "idle: never closed")
# a body of 100 bytes, one every 200 ms (20 s in all)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
sent = 0
try:
    while sent < 100:
        time.sleep(0.2)
        s.sendall(b"x"); sent += 1
        if closed(s):
            break
except OSError:
    pass
print("slow body:", "cut" if sent < 100 else "read whole")
PY
)
echo "$out" | sed 's/^/# /'
check_contains "read-timeout: an idle keep-alive connection outlives the 1 s header timeout" "$out" "idle 1.5s: open"
check_contains "read-timeout: ... and serves its next request" "$out" "second request: HTTP/1.1 200 OK"
check_contains "read-timeout: ... and is closed after --web.read-timeout=3s" "$out" "idle: closed"
check_contains "read-timeout: a body dribbled slower than 3 s is cut" "$out" "slow body: cut"
check "read-timeout: counted in lookout_http_read_timeouts_total" \
  eventually 5 metric_at_least lookout_http_read_timeouts_total 1
stop_pid "$LOOKOUT_PID"
