#!/usr/bin/env bash
# Secrets scrubbed before storage: secrets planted in headers, URL (query, fragment, userinfo) and body
# (JSON and form) of scraped and pushed occurrences never appear in any API answer, the search, /metrics,
# federation output or any file under --storage.path (SQLite database and WAL), while names and other
# values stay readable; `scrubbing:` extends the lists and turns it off; the schema migration scrubs a
# database written without scrubbing.
. "$(dirname "$0")/../lib/common.sh"

# Every planted secret contains "zq" + a tag, so one grep finds them all.
make_payload() { # $1 uuid, $2 tag
  python3 - "$1" "$2" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
ts = lambda sec: (now - datetime.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")
uuid, tag = sys.argv[1], sys.argv[2]
s = lambda n: "zq%s%s" % (tag, n)
print(json.dumps({"target_uuid": uuid, "aggregated_errors": [{"aggregation_key": "LoginError@" + tag,
  "total_count": 2, "severity": "error", "created_at": ts(60), "latest_errors": [
  {"error": {"class": "LoginError", "message": "bad login", "stacktrace": ["at login()"], "cause": None},
   "uuid": "u1-" + tag, "timestamp": ts(50), "severity": "error",
   "http_context": {"request_method": "POST",
     "request_url": "https://bob:%s@app.example/login?next=https%%3A%%2F%%2Fsso%%3A%s%%40idp.example%%2F&page=2&access_token=%s&apiKey=%s#id_token=%s" % (s("pw"), s("nestpw"), s("tok"), s("key"), s("frag")),
     "request_headers": {"Authorization": "Bearer " + s("auth"), "Cookie": "sid=" + s("cookie"),
                         "X-Api-Key": s("xapi"), "X-Csrf-Token": s("csrf"), "X-Internal": s("internal"),
                         "Referer": "https://app.example/reset?reset_token=" + s("ref"), "Accept": "text/html"},
     "request_body": json.dumps({"user": "bob", "password": s("body"), "nested": {"client_secret": s("nest")},
                                 "ssn": s("ssn"), "db": "postgres://app:%s@db.example/x" % s("dburl")})}},
  {"error": {"class": "LoginError", "message": "bad login", "stacktrace": ["at login()"], "cause": None},
   "uuid": "u2-" + tag, "timestamp": ts(40), "severity": "error",
   "http_context": {"request_method": "POST", "request_url": "/oauth/token",
     "request_headers": {"Content-Type": "application/x-www-form-urlencoded"},
     "request_body": "grant_type=password&username=bob&password=%s&scope=read" % s("form")}}]}]}))
PY
}

mkdir -p "$TMP/www/app"
make_payload scraped-uuid S >"$TMP/www/app/exceptions"
WWW_PORT=$(free_port)
bg python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$WWW_PORT" 2>/dev/null
wait_http "http://127.0.0.1:$WWW_PORT/app/exceptions" 10 || { not_ok "payload server starts"; exit 1; }

cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrubbing:
  headers: [X-Internal]
  fields: [ssn]
scrape_configs:
  - job_name: app
    metrics_path: /app/exceptions
    static_configs: [{targets: ['127.0.0.1:$WWW_PORT']}]
YML
start_lookout scrub --config.file="$TMP/lookout.yml" --web.enable-push || { not_ok "lookout starts"; exit 1; }
make_payload pushed-uuid P >"$TMP/push.json"
check_eq "push with secrets accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$TMP/push.json" "$LOOKOUT_URL/api/v1/push/pushjob")"
has_key() { get "/api/v1/errors?job=app" | grep -q 'LoginError@S'; }
check "scraped error stored" eventually 15 has_key

# Every API answer and federation output.
answers() {
  for p in "/api/v1/errors" "/api/v1/errors?job=app" "/api/v1/errors/app/LoginError@S" \
           "/api/v1/errors/pushjob/LoginError@P" "/services/" "/services/app/errors/" "/services/pushjob/errors/" \
           "/federate/exceptions?job=app" "/federate/exceptions?job=pushjob" "/-/errors" "/metrics" \
           "/-/exceptions" "/api/v1/jobs" "/api/v1/targets" "/"; do
    echo "== $p"; get "$p"; echo
  done
}
answers >"$TMP/answers.txt"
check_eq "no planted secret in any API answer" "" "$(grep -o 'zq[SP][a-z]*' "$TMP/answers.txt" | sort -u | tr '\n' ' ')"
one=$(get "/api/v1/errors/app/LoginError@S")
check_contains "URL keeps other parameters, masks the token" "$one" 'page=2\u0026access_token=[Filtered]\u0026apiKey=[Filtered]#id_token=[Filtered]'
check_contains "userinfo password masked" "$one" 'https://bob:[Filtered]@app.example/login'
check_contains "a percent-encoded URL in a parameter loses its password" "$one" 'next=https%3A%2F%2Fsso%3A%5BFiltered%5D%40idp.example%2F\u0026page=2'
check_contains "a URL in a JSON string field loses its password" "$one" '\"db\": \"postgres://app:[Filtered]@db.example/x\"'
check_contains "Authorization header kept by name, value masked" "$one" '"Authorization":"[Filtered]"'
check_contains "extra header (scrubbing.headers) masked" "$one" '"X-Internal":"[Filtered]"'
check_contains "Referer scrubbed as a URL" "$one" 'reset?reset_token=[Filtered]'
check_contains "other headers readable" "$one" '"Accept":"text/html"'
check_contains "JSON body: password, nested secret and extra field (scrubbing.fields) masked" "$one" \
  '\"user\": \"bob\", \"password\": \"[Filtered]\", \"nested\": {\"client_secret\": \"[Filtered]\"}, \"ssn\": \"[Filtered]\"'
check_contains "form body masked, other fields kept" "$one" 'grant_type=password\u0026username=bob\u0026password=[Filtered]\u0026scope=read'
pushed=$(get "/api/v1/errors/pushjob/LoginError@P")
check_contains "pushed occurrence scrubbed too" "$pushed" '"Authorization":"[Filtered]"'
check_eq "search for a secret finds nothing" 0 "$(get "/api/v1/errors?q=zqstok" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["errors"]))' 2>/dev/null || echo error)"
check_eq "search still finds readable text" 1 "$(get "/api/v1/errors?q=grant_type&job=app" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["errors"]))' 2>/dev/null || echo error)"
# Per document: the URL, the JSON body, 6 headers (Referer included), the form body = 9 fields; one scrape
# (later scrapes are unchanged bodies) + one push.
check_eq "lookout_scrubbed_values_total counts the masked fields" 18 "$(metric_sum lookout_scrubbed_values_total)"

# Files: database and WAL, while running and after a clean stop.
check_eq "no secret in any file under --storage.path (running, WAL included)" "" "$(grep -rlaE 'zq[SP]' "$TMP/scrub-data" | tr '\n' ' ')"
stop_pid "$LOOKOUT_PID"
check_eq "no secret in any file under --storage.path (stopped)" "" "$(grep -rlaE 'zq[SP]' "$TMP/scrub-data" | tr '\n' ' ')"

# Migration: a database written without scrubbing (scrubbing.enabled false), marked as schema 3, is
# scrubbed when a lookout with the default rules opens it.
cat >"$TMP/off.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrubbing: {enabled: false}
scrape_configs:
  - job_name: app
    metrics_path: /app/exceptions
    static_configs: [{targets: ['127.0.0.1:$WWW_PORT']}]
YML
start_lookout mig --config.file="$TMP/off.yml" --web.enable-push || { not_ok "lookout (scrubbing off) starts"; exit 1; }
curl -s -o /dev/null --data-binary @"$TMP/push.json" "$LOOKOUT_URL/api/v1/push/pushjob"
check "scraped error stored (scrubbing off)" eventually 15 has_key
check_contains "scrubbing.enabled false stores values verbatim" "$(get "/api/v1/errors/app/LoginError@S")" 'Bearer zqSauth'
stop_pid "$LOOKOUT_PID"
check "unscrubbed database holds the secrets (the grep can see them)" grep -rqaE 'zq[SP]' "$TMP/mig-data"
python3 - "$TMP/mig-data" <<'PY'
import glob, sqlite3, sys
db = [f for f in glob.glob(sys.argv[1] + "/**/*", recursive=True) if f.endswith((".db", ".sqlite", ".sqlite3"))][0]
c = sqlite3.connect(db)
c.execute("UPDATE lookout_meta SET value = '3' WHERE name = 'schema_version'")
c.commit()
c.close()
PY
cat >"$TMP/noscrape.yml" <<'YML'
scrape_configs: []
YML
start_lookout mig --config.file="$TMP/noscrape.yml" || { not_ok "lookout migrates the database"; exit 1; }
mig=$(get "/api/v1/errors/app/LoginError@S")
check_contains "migrated: header masked" "$mig" '"Authorization":"[Filtered]"'
check_contains "migrated: URL masked, other parameters kept" "$mig" 'page=2\u0026access_token=[Filtered]'
check_contains "migrated: body masked" "$mig" '\"password\": \"[Filtered]\"'
check_eq "migrated: search finds no secret" 0 "$(get "/api/v1/errors?q=zqsauth" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["errors"]))' 2>/dev/null || echo error)"
answers >"$TMP/answers2.txt"
# The ssn field was an extra pattern of the first run's config: the migration applies the defaults only.
check_eq "migrated: no default-rule secret in any API answer" "" "$(grep -o 'zq[SP][a-z]*' "$TMP/answers2.txt" | grep -v -e ssn -e internal | sort -u | tr '\n' ' ')"
check_eq "migrated: no default-rule secret in any file (running)" "" "$(grep -raohE 'zq[SP][a-z]*' "$TMP/mig-data" | grep -v -e ssn -e internal | sort -u | tr '\n' ' ')"
stop_pid "$LOOKOUT_PID"
check_eq "migrated: no default-rule secret in any file (stopped)" "" "$(grep -raohE 'zq[SP][a-z]*' "$TMP/mig-data" | grep -v -e ssn -e internal | sort -u | tr '\n' ' ')"

# The configured rules reach the stored data too: the database remembers the rules it was scrubbed with,
# and when `scrubbing:` changes (here by a reload; at start alike) the stored samples are scrubbed again
# with the new rules once what was scrubbed with the old ones is written.
start_lookout mig --config.file="$TMP/noscrape.yml" || { not_ok "lookout opens the migrated database again"; exit 1; }
check_contains "before the reload the extra field is stored as it came" "$(get "/api/v1/errors/app/LoginError@S")" 'zqSssn'
cat >"$TMP/noscrape.yml" <<'YML'
scrubbing:
  headers: [X-Internal]
  fields: [ssn]
scrape_configs: []
YML
kill -HUP "$LOOKOUT_PID"
no_ssn() { ! get "/api/v1/errors/app/LoginError@S" | grep -q zqSssn; }
check "after a reload with extra rules the stored ssn is gone" eventually 15 no_ssn
answers >"$TMP/answers3.txt"
check_eq "extra rules: no planted secret in any API answer" "" "$(grep -o 'zq[SP][a-z]*' "$TMP/answers3.txt" | sort -u | tr '\n' ' ')"
one=$(get "/api/v1/errors/app/LoginError@S")
check_contains "extra rules: the ssn field is masked in the stored body" "$one" '\"ssn\": \"[Filtered]\"'
check_contains "extra rules: the extra header is masked" "$one" '"X-Internal":"[Filtered]"'
check_eq "extra rules: search finds no ssn" 0 "$(get "/api/v1/errors?q=zqsssn" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["errors"]))' 2>/dev/null || echo error)"
check_eq "the log says the stored samples were scrubbed (once)" 1 "$(grep -c 'msg="stored samples scrubbed with the current scrubbing rules"' "$TMP/mig.log")"
stop_pid "$LOOKOUT_PID"
check_eq "extra rules: no planted secret in any file (stopped)" "" "$(grep -raohE 'zq[SP][a-z]*' "$TMP/mig-data" | sort -u | tr '\n' ' ')"
start_lookout mig --config.file="$TMP/noscrape.yml" || { not_ok "lookout restarts with the same rules"; exit 1; }
check_eq "a restart with the same rules scrubs nothing again" 1 "$(grep -c 'msg="stored samples scrubbed with the current scrubbing rules"' "$TMP/mig.log")"
stop_pid "$LOOKOUT_PID"
