#!/usr/bin/env bash
# The Periskop-compatible API against a real scrape: shapes byte-compared (timestamps normalised), the
# alert rules example validated with promtool, reload keeping scrape phases.
. "$(dirname "$0")/../lib/common.sh"
W=$TMP/www; mkdir -p "$W"
cat >"$W/p.json" <<'JSON'
{"target_uuid":"t1","aggregated_errors":[{"aggregation_key":"key/with slash","total_count":2,"severity":"warning","created_at":"2024-03-02T09:14:07.512Z","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":["a:1"],"cause":null},"uuid":"u1","timestamp":"2024-03-02T11:02:44.901Z","severity":"warning","http_context":{"request_method":"GET","request_url":"http://x/","request_headers":{"Accept":"*/*"},"request_body":null}}]}]}
JSON
HPORT=$(free_port)
(cd "$W" && exec python3 -m http.server "$HPORT" --bind 127.0.0.1) >/dev/null 2>&1 &
_pids+=($!)
wait_http "http://127.0.0.1:$HPORT/p.json" 10
cat >"$TMP/l.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: {type: memory}
scrape_configs:
  - job_name: svc
    metrics_path: /p.json
    static_configs: [{targets: ['127.0.0.1:$HPORT']}]
  - job_name: idle
    static_configs: [{targets: []}]
YML
start_lookout papi --config.file="$TMP/l.yml" --web.enable-lifecycle || { not_ok "lookout starts"; exit 1; }
has_errors() { [ "$(get /services/svc/errors/)" != "[]" ]; }
eventually 10 has_errors
check_eq "GET /services/ lists configured jobs" '["idle","svc"]' "$(get /services/)"
exp='[{"aggregation_key":"key/with slash","total_count":2,"severity":"warning","latest_errors":[{"error":{"class":"E","message":"m","stacktrace":["a:1"],"cause":null},"uuid":"u1","timestamp":1709377364,"severity":"warning","http_context":{"request_method":"GET","request_url":"http://x/","request_headers":{"Accept":"*/*"},"request_body":""}}],"created_at":1709370847}]'
check_eq "GET /services/svc/errors/ shape" "$exp" "$(get /services/svc/errors/)"
check_eq "GET /services/idle/errors/ empty" "[]" "$(get /services/idle/errors/)"
check_eq "unknown service 404" "404 service nope not found" "$(curl -s -w '%{http_code}' -o "$TMP/b" "$LOOKOUT_URL/services/nope/errors/"; echo " $(cat "$TMP/b")")"
check_eq "GET /targets/" "{\"idle\":[],\"svc\":[{\"endpoint\":\"127.0.0.1:$HPORT/p.json\"}]}" "$(get /targets/)"
check_eq "GET /-/health" "OK" "$(get /-/health)"
check_eq "DELETE raw key with slash" "204" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOOKOUT_URL/services/svc/errors/key/with%20slash/")"
check_eq "resolved error hidden" "[]" "$(get /services/svc/errors/)"

# Reload keeping phases: lastScrape keeps its sub-second offset across a reload of another job. A scrape
# starts at its phase plus the loop's lateness (>= 0; tens of ms under ASan on a loaded machine), which
# lookout_scrape_delay_seconds records for every scrape: the sub-second parts of scrapes before and after
# the reload may differ by the largest lateness of the scrapes in between (its histogram bucket), by 30 ms
# when that is less. Three scrapes on each side, the closest pair compared. A phase reset by the reload
# differs by a random amount.
phase_check() { python3 - "$LOOKOUT_URL" "$TMP/l.yml" <<'PY'
import json, re, sys, time, urllib.request
from datetime import datetime, timezone
url, cfg = sys.argv[1], sys.argv[2]
def get(path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return r.read().decode()
def when(s): return datetime.fromisoformat(s.replace("Z", "+00:00"))
def last():
    for x in json.loads(get("/api/v1/targets"))["data"]["activeTargets"]:
        if x["scrapePool"] == "svc":
            return x["lastScrape"]
def after(t, n):  # the lastScrape times of n successive scrapes started after t (at most 5 s apiece)
    out = []
    while len(out) < n:
        for _ in range(50):
            v = last()
            if v and when(v) > when(t):
                break
            time.sleep(0.1)
        else:
            break
        out.append(v); t = v
    return out
def delays():  # le -> cumulative count of lookout_scrape_delay_seconds
    h = {}
    for m in re.finditer(r'^lookout_scrape_delay_seconds_bucket\{le="([^"]+)"\} (\S+)$', get("/metrics"), re.M):
        h[float(m.group(1))] = float(m.group(2))
    return h
h0 = delays()
p1 = after(last(), 3)  # each completed after h0 was read: its delay is in the difference below
with open(cfg) as f: y = f.read()
with open(cfg, "w") as f: f.write(y.replace("targets: []", 'targets: ["127.0.0.1:1"]'))
urllib.request.urlopen(urllib.request.Request(url + "/-/reload", method="POST"), timeout=30).read()
p2 = after(datetime.now(timezone.utc).isoformat(), 3)
h1 = delays()
n = h1[float("inf")] - h0.get(float("inf"), 0)
bound = min(le for le in h1 if h1[le] - h0.get(le, 0) == n)
tol = max(30, bound * 1000)
def frac(t): return int((t.split(".")[1].rstrip("Z") + "000")[:3]) if "." in t else 0
def dist(a, b): d = abs(frac(a) - frac(b)); return min(d, 1000 - d)
d = min((dist(a, b) for a in p1 for b in p2), default=1000)
print("before %s after %s: closest %d ms apart, lateness <= %g s in between (allowed %g ms)" % (p1, p2, d, bound, tol))
print("scrapes after the reload: %d" % len(p2))
# a loop late by half an interval or more cannot tell a kept phase from a reset one: said, not failed
print("phase changed" if d > tol else "same phase" if tol < 500 else "same phase: not checkable (lateness %g s)" % bound)
PY
}
out=$(phase_check)
echo "$out" | sed 's/^/# /'
check_contains "reload keeps the scrape phase" "$out" "same phase"
check_contains "scraped three times after the reload" "$out" "scrapes after the reload: 3"

# The same with the default store (SQLite) and across a restart: a resolved error stays out of the
# Periskop list (and out of the API's status=open) until it occurs again.
stop_pid "$LOOKOUT_PID"
cat >"$TMP/s.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: svc
    metrics_path: /p.json
    static_configs: [{targets: ['127.0.0.1:$HPORT']}]
YML
start_lookout sqlite --config.file="$TMP/s.yml" || { not_ok "lookout (sqlite) starts"; exit 1; }
eventually 10 has_errors
check_eq "sqlite: DELETE" "204" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOOKOUT_URL/services/svc/errors/key/with%20slash/")"
check_eq "sqlite: resolved error hidden" "[]" "$(get /services/svc/errors/)"
check_contains "sqlite: status=open empty" "$(get '/api/v1/errors?status=open')" '"total":0}'
check_contains "sqlite: status=resolved lists it" "$(get '/api/v1/errors?status=resolved')" '"total":1}'
stop_pid "$LOOKOUT_PID"
start_lookout sqlite --config.file="$TMP/s.yml" || { not_ok "lookout (sqlite) restarts"; exit 1; }
scraped() { get /api/v1/targets | grep -q '"health":"up"'; }
eventually 10 scraped
sleep 1.2 # one more scrape interval after the first successful scrape
check_eq "sqlite: still hidden after a restart and a scrape" "[]" "$(get /services/svc/errors/)"
# it occurs again: listed again
sed -i 's/"total_count":2/"total_count":3/' "$W/p.json"
count3() { get /services/svc/errors/ | grep -q '"total_count":3'; }
check "sqlite: listed again when it occurs again" eventually 10 count3

if command -v promtool >/dev/null; then
  check "alerts.yml passes promtool check rules" promtool check rules "$ROOT/config/examples/alerts.yml"
else
  echo "ok - alerts.yml promtool check # SKIP promtool not installed"
fi
