#!/usr/bin/env bash
# Push ingestion end to end: the four Periskop clients' push_to_gateway bodies (with and without
# Content-Type) at POST /errors and POST /api/v1/push/{job}, replays counted once, occurrence timestamps
# kept, 100 concurrent pushers, oversize (413), malformed (400), unauthorized (401), disabled (404), and
# the gateway export GET /-/errors.
. "$(dirname "$0")/../lib/common.sh"
FX=$ROOT/tests/fixtures/payloads
cat >"$TMP/a.yml" <<'YML'
storage: {type: memory}
scrape_configs: []
YML
start_lookout push --config.file="$TMP/a.yml" --web.enable-push || { not_ok "lookout starts"; exit 1; }
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
# Python and Scala send no Content-Type; Go and Ruby send application/json.
check_eq "python body, no content type -> 200" 200 "$(code --data-binary @"$FX/python.json" -H 'Content-Type:' "$LOOKOUT_URL/errors")"
check_eq "scala body, no content type -> 200" 200 "$(code --data-binary @"$FX/scala.json" -H 'Content-Type:' "$LOOKOUT_URL/errors")"
check_eq "go body, application/json -> 200" 200 "$(code --data-binary @"$FX/go.json" -H 'Content-Type: application/json' "$LOOKOUT_URL/errors")"
check_eq "ruby body to /api/v1/push/rubyjob -> 200" 200 "$(code --data-binary @"$FX/ruby.json" -H 'Content-Type: application/json' "$LOOKOUT_URL/api/v1/push/rubyjob")"
check_contains "push answer names job and target_uuid" "$(cat "$TMP/body")" '"job":"rubyjob","instance":"127.0.0.1","target_uuid":"9d4a2c6e-1f3b-4d5e-8a7b-6c5d4e3f2a1b"'

# counts KEY [JOB]: total_count from the Periskop API (data is stored when the push returns).
counts() { get "/services/${2:-pushed}/errors/" | python3 -c '
import json,sys
print(sum(a["total_count"] for a in json.load(sys.stdin) if a["aggregation_key"]==sys.argv[1]))' "$1"; }
check_eq "count visible right after the push (go key)" 137 "$(counts '*url.Error@9f3c1a07')"
check_eq "count (scala key)" 12 "$(counts feature-flag-fallback)"
check_eq "count (python key)" 5 "$(counts ZeroDivisionError@4f2a9c1d)"
check_eq "count (ruby job)" 3 "$(counts NoMethodError@a1b2c3d4 rubyjob)"
ts=$(get /services/pushed/errors/ | python3 -c '
import json,sys
for a in json.load(sys.stdin):
    if a["aggregation_key"]=="ZeroDivisionError@4f2a9c1d": print(a["latest_errors"][0]["timestamp"])')
check_eq "occurrence timestamp kept (2024-03-02T10:05:06Z)" 1709373906 "$ts"

nsamples() { get /services/pushed/errors/ | python3 -c '
import json,sys
print(sum(len(a["latest_errors"]) for a in json.load(sys.stdin)))'; }
check_eq "samples of go (3), python (1), scala (2)" 6 "$(nsamples)"
for f in go python scala; do code --data-binary @"$FX/$f.json" "$LOOKOUT_URL/errors" >/dev/null; done
check_eq "replayed go state adds nothing" 137 "$(counts '*url.Error@9f3c1a07')"
check_eq "replayed python state adds nothing" 5 "$(counts ZeroDivisionError@4f2a9c1d)"
check_eq "replayed samples deduplicated by uuid" 6 "$(nsamples)"

# 100 pushers in parallel, each its own process (target_uuid), each pushing its state twice.
python3 - "$LOOKOUT_URL" >"$TMP/conc.out" 2>&1 <<'PY'
import json, sys, urllib.request, concurrent.futures
url = sys.argv[1] + "/api/v1/push/conc"
def push(i):
    body = {"target_uuid": "proc-%03d" % i, "aggregated_errors": [{"aggregation_key": "conc-key", "total_count": 3,
            "severity": "error", "created_at": "2024-03-02T10:00:00Z", "latest_errors": [{"error": {"class": "E",
            "message": "m%d" % i, "stacktrace": [], "cause": None}, "uuid": "occ-%03d" % i,
            "timestamp": "2024-03-02T10:00:%02dZ" % (i % 60), "severity": "error", "http_context": None}]}]}
    codes = []
    for _ in range(2):
        r = urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), method="POST"), timeout=30)
        codes.append(r.status)
    return codes
with concurrent.futures.ThreadPoolExecutor(100) as ex:
    res = [c for cs in ex.map(push, range(100)) for c in cs]
print("ok" if all(c == 200 for c in res) else "codes %s" % sorted(set(res)))
PY
check_eq "100 concurrent pushers all answered 200" ok "$(tail -1 "$TMP/conc.out")"
check_eq "100 pushers x 3, each pushed twice: 300" 300 "$(counts conc-key conc)"

check_eq "malformed body -> 400" 400 "$(code --data-binary '{"aggregated_errors": {}' "$LOOKOUT_URL/errors")"
check_contains "400 names the parse error" "$(cat "$TMP/body")" "invalid payload: invalid JSON at line 1"
check_eq "partly malformed body -> 400" 400 "$(code --data-binary @"$FX/partly_malformed.json" "$LOOKOUT_URL/api/v1/push/half")"
check_eq "nothing half-applied" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/services/half/errors/")"
head -c $((10 * 1024 * 1024 + 10)) /dev/zero >"$TMP/big"
check_eq "body over 10 MiB -> 413" 413 "$(code --data-binary @"$TMP/big" "$LOOKOUT_URL/errors")"
check_eq "GET /errors still serves lookout's own exceptions" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$LOOKOUT_URL/errors")"
exp=$(get /-/errors | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(d["target_uuid"]!="" , sorted({a["__lookout_job__"] for a in d["aggregated_errors"]}), sum(a["total_count"] for a in d["aggregated_errors"] if a["aggregation_key"]=="conc-key"))')
check_eq "GET /-/errors exports the pushed jobs in client format" "True ['conc', 'pushed', 'rubyjob'] 300" "$exp"
check_eq "GET /-/health" OK "$(get /-/health)"
stop_pid "$LOOKOUT_PID"

# Authorization and a configured limit; enabled from the config file, no flag.
echo "  t0ken " >"$TMP/token"
cat >"$TMP/b.yml" <<YML
storage: {type: memory}
scrape_configs: []
push:
  enabled: true
  default_job: batch
  body_size_limit: 4KiB
  authorization: {credentials_file: $TMP/token}
YML
start_lookout pushauth --config.file="$TMP/b.yml" || { not_ok "lookout with push config starts"; exit 1; }
check_eq "no credentials -> 401" 401 "$(code --data-binary @"$FX/python.json" "$LOOKOUT_URL/errors")"
check_eq "wrong token -> 401" 401 "$(code -H 'Authorization: Bearer t0ke' --data-binary @"$FX/python.json" "$LOOKOUT_URL/errors")"
check_eq "right token -> 200" 200 "$(code -H 'Authorization: Bearer t0ken' --data-binary @"$FX/python.json" "$LOOKOUT_URL/errors")"
check_eq "default_job from the config" 5 "$(counts ZeroDivisionError@4f2a9c1d batch)"
head -c 5000 /dev/zero >"$TMP/5k"
check_eq "configured body_size_limit 4KiB -> 413" 413 "$(code -H 'Authorization: Bearer t0ken' --data-binary @"$TMP/5k" "$LOOKOUT_URL/errors")"
stop_pid "$LOOKOUT_PID"

start_lookout nopush --config.file="$TMP/a.yml" || { not_ok "lookout without push starts"; exit 1; }
check_eq "push disabled by default -> 404" 404 "$(code --data-binary @"$FX/python.json" "$LOOKOUT_URL/errors")"
check_contains "404 says how to enable" "$(cat "$TMP/body")" "--web.enable-push"
