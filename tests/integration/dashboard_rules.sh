#!/usr/bin/env bash
# deploy/grafana/lookout.json and config/examples/alerts.yml against a real Prometheus (Debian's 2.42, as
# the differential tests use) scraping a real lookout (honor_labels: true, as README says) that scrapes the
# example emitter (changing errors), a dead target (scrape failures) and itself, takes one push, and has one
# resolved error that regresses. Every PromQL expression of the dashboard (panels and variables) and every
# rule of alerts.yml is evaluated through /api/v1/query: it must parse and return a non-empty result.
# Alert expressions that are legitimately empty while nothing is wrong are evaluated without their
# threshold comparison (said in a comment line). `promtool check rules` must pass.
. "$(dirname "$0")/../lib/common.sh"
ensure_prometheus || { not_ok "prometheus installs"; exit 1; }
PROMTOOL=$(dirname "$PROMETHEUS_BIN")/promtool
DASH=$ROOT/deploy/grafana/lookout.json
RULES=$ROOT/config/examples/alerts.yml

out=$("$PROMTOOL" check rules "$RULES" 2>&1)
check "promtool check rules passes on alerts.yml" test $? -eq 0
check_contains "promtool finds the rules" "$out" "SUCCESS"
check "dashboard is valid JSON" python3 -m json.tool "$DASH" /dev/null

EPORT=$(free_port); DEAD=$(free_port)
bg python3 "$ROOT/examples/emitter/emitter.py" --port "$EPORT" --style mixed --new-every 2 --seed 7
wait_http "http://127.0.0.1:$EPORT/-/exceptions" 10 || { not_ok "emitter starts"; exit 1; }
LPORT=$(free_port)
cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: example
    static_configs: [{targets: ['127.0.0.1:$EPORT']}]
  - job_name: dead
    static_configs: [{targets: ['127.0.0.1:$DEAD']}]
  - job_name: lookout
    static_configs: [{targets: ['127.0.0.1:$LPORT']}]
YML
# start_lookout picks its own port; the self-scrape needs it known in advance, so start it by hand.
mkdir -p "$TMP/l-data"
bg "$LOOKOUT_BIN" --config.file="$TMP/lookout.yml" --storage.path="$TMP/l-data" --web.enable-push \
  --web.listen-address=127.0.0.1:$LPORT >"$TMP/l.log" 2>&1
LOOKOUT_URL=http://127.0.0.1:$LPORT
wait_http "$LOOKOUT_URL/-/ready" 15 || { not_ok "lookout starts"; sed 's/^/# /' "$TMP/l.log"; exit 1; }

cp "$RULES" "$TMP/alerts.yml"
cat >"$TMP/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [alerts.yml]
scrape_configs:
  - job_name: lookout-metrics
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$LPORT']}]
YML
start_prometheus prom "$TMP/prometheus.yml" || { not_ok "prometheus starts"; exit 1; }

# One push (push requests), and one error resolved while its count keeps growing (a regression).
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$ROOT/tests/fixtures/payloads/python.json" "$LOOKOUT_URL/errors")
check_eq "a push is accepted" 200 "$code"
key_of_example() { curl -fsS "$LOOKOUT_URL/api/v1/errors?job=example&sort=count" | python3 -c '
import json, sys, urllib.parse
errs = json.load(sys.stdin)["data"]["errors"]
print(urllib.parse.quote(errs[0]["aggregation_key"], safe="")) if errs else sys.exit(1)'; }
eventually 15 key_of_example >/dev/null
key=$(key_of_example)
check_eq "resolve an example error" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$LOOKOUT_URL/api/v1/errors/example/$key/resolve")"
is_regressed() { curl -fsS "$LOOKOUT_URL/api/v1/errors/example/$key" | grep -q '"status":"regressed"'; }
check "it regresses as the emitter reports it again" eventually 20 is_regressed

# PromQL through Prometheus' HTTP API: prints the number of series, or "error: ..." when it does not parse.
promql() {
  curl -sS --max-time 10 --data-urlencode "query=$1" "$PROM_URL/api/v1/query" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("status") != "success":
    print("error: %s: %s" % (d.get("errorType"), d.get("error"))); sys.exit(0)
r = d["data"]["result"]
print(len(r) if isinstance(r, list) else 1)'
}
nonempty() { local n; n=$(promql "$1"); [[ "$n" =~ ^[1-9][0-9]*$ ]]; }
# The regression must have reached Prometheus before the expressions are judged.
check "Prometheus sees lookout_errors{status=\"regressed\"} == 1 for job example" \
  eventually 30 nonempty 'lookout_errors{job="example",status="regressed"} == 1'

cat >"$TMP/eval.py" <<'PY'
# eval.py PROM_URL KIND < TSV: evaluates each line's PromQL through /api/v1/query and prints TAP lines.
# dashboard lines: TITLE<TAB>EXPR. alert lines: NAME<TAB>HEALTH<TAB>EXPR; an alert expression that is empty
# is evaluated again without its trailing threshold comparison (and says so).
import json, re, sys, time, urllib.parse, urllib.request
url, kind = sys.argv[1], sys.argv[2]
deadline = time.time() + 20
def query(e):
    data = urllib.parse.urlencode({"query": e}).encode()
    try:
        d = json.load(urllib.request.urlopen(url + "/api/v1/query", data, timeout=10))
    except urllib.error.HTTPError as ex:
        d = json.load(ex)
    if d.get("status") != "success":
        return "error: %s: %s" % (d.get("errorType"), d.get("error"))
    r = d["data"]["result"]
    return len(r) if isinstance(r, list) else 1
def series(e):
    while True:
        n = query(e)
        if not isinstance(n, int) or n > 0 or time.time() > deadline:
            return n
        time.sleep(0.5)
def report(good, name, detail=None):
    print(("ok - " if good else "not ok - ") + name)
    if detail is not None and not good:
        print("#   result: %s" % detail)
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    if kind == "dashboard":
        title, e = f
        # "A or B * 0" shows zeros where A has no series yet; each side must have data here on its own,
        # so that a misspelt A is not hidden behind B.
        for part in [e] + (e.split(" or ") if " or " in e else []):
            n = series(part)
            report(isinstance(n, int) and n > 0, "dashboard: %s: %s (%s series)" % (title, part, n), n)
        continue
    name, health, e = f
    report(health == "ok", "alert %s: rule health in Prometheus is ok" % name, health)
    n = query(e)
    if n == 0:
        bare = re.sub(r"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.e+]+\s*$", "", e)
        print("# alert %s is empty while nothing is wrong; evaluated without its threshold: %s" % (name, bare))
        n = series(bare) if bare != e else 0
        e = bare
    report(isinstance(n, int) and n > 0, "alert %s: %s (%s series)" % (name, e, n), n)
PY

# Dashboard: every target expression and every query variable, with Grafana's variables substituted.
python3 - "$DASH" >"$TMP/dash.tsv" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
def walk(ps):
    for p in ps:
        yield p
        yield from walk(p.get("panels", []))
subst = {"$__rate_interval": "30s", "$__range": "5m", "$job": ".+", "$instance": ".+"}
def fill(e):
    for k in sorted(subst, key=len, reverse=True):
        e = e.replace(k, subst[k])
    return e
for p in walk(d["panels"]):
    for t in p.get("targets", []):
        print("%s\t%s" % (p["title"], fill(t["expr"])))
for v in d["templating"]["list"]:
    if v["type"] == "query":
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["definition"])
        print("variable $%s\t%s" % (v["name"], "count by (%s) (%s)" % (m.group(2), m.group(1)) if m else v["definition"]))
PY
n_expr=$(wc -l <"$TMP/dash.tsv")
check "dashboard has at least 30 expressions" test "$n_expr" -ge 30
# One Python process evaluates them all (a process per query costs seconds on a busy machine); an empty
# result is retried until a shared 20 s deadline, for rates that need a second sample.
python3 "$TMP/eval.py" "$PROM_URL" dashboard <"$TMP/dash.tsv"

# Every variable is defined, every panel uses the datasource variable, panel ids are unique.
python3 - "$DASH" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
def ok(c, n): print(("ok - " if c else "not ok - ") + n)
ps = []
def walk(l):
    for p in l:
        ps.append(p); walk(p.get("panels", []))
walk(d["panels"])
names = {v["name"] for v in d["templating"]["list"]}
used = set(re.findall(r"\$(\w+)", json.dumps(d["panels"]))) - {"__rate_interval", "__range"}
ok(used <= names, "dashboard: every variable it uses is defined (%s)" % ", ".join(sorted(used)))
ok("job" in names and "datasource" in names, "dashboard: has the job and datasource variables")
ok(all(p.get("datasource") == {"type": "prometheus", "uid": "${datasource}"} for p in ps if p["type"] != "row"),
   "dashboard: every panel queries the datasource variable")
ids = [p["id"] for p in ps]
ok(len(ids) == len(set(ids)), "dashboard: panel ids are unique")
ok(d.get("id") is None and d.get("uid") == "lookout" and d.get("schemaVersion", 0) >= 36, "dashboard: importable (no id, a uid, schemaVersion)")
ok(all(0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in ps), "dashboard: panels fit the 24-column grid")
PY

# Alert rules: as Prometheus loaded them (/api/v1/rules), each evaluated; empty ones without the threshold.
rules_json=$(curl -sS "$PROM_URL/api/v1/rules")
python3 -c '
import json, sys
for g in json.loads(sys.argv[1])["data"]["groups"]:
    for r in g["rules"]:
        print("%s\t%s\t%s" % (r["name"], r["health"], r["query"]))' "$rules_json" >"$TMP/rules.tsv"
check_eq "Prometheus loaded every rule of alerts.yml" "$(grep -c '^ *- alert:' "$RULES")" "$(wc -l <"$TMP/rules.tsv")"
python3 "$TMP/eval.py" "$PROM_URL" alert <"$TMP/rules.tsv"

# The alerts that must be active here: the dead target, the growing errors, the regression.
# Waited for (Prometheus publishes alerts once per rule evaluation): until all three are there, 60 s at most.
active_alerts() {
  curl -sS "$PROM_URL/api/v1/alerts" | python3 -c '
import json, sys
print(" ".join(sorted({"%s/%s" % (a["labels"]["alertname"], a["labels"].get("job", "")) for a in json.load(sys.stdin)["data"]["alerts"]})))'
}
for _ in $(seq 120); do
  alerts=$(active_alerts)
  [[ "$alerts" == *LookoutTargetDown/dead* && "$alerts" == *ApplicationErrorsIncreasing/example* &&
     "$alerts" == *ApplicationErrorRegressed/example* ]] && break
  sleep 0.5
done
check_contains "LookoutTargetDown is active for job dead" "$alerts" "LookoutTargetDown/dead"
check_contains "ApplicationErrorsIncreasing is active for job example" "$alerts" "ApplicationErrorsIncreasing/example"
check_contains "ApplicationErrorRegressed is active for job example" "$alerts" "ApplicationErrorRegressed/example"
check "lookout counted its /metrics requests (lookout_http_requests_total)" \
  nonempty 'lookout_http_requests_total{handler="/metrics",code="200"} > 0'
check "lookout counted the push (lookout_push_requests_total{code=\"200\"})" \
  nonempty 'lookout_push_requests_total{code="200"} == 1'
