#!/usr/bin/env bash
# Crash and outage tests of persistence with the real ./lookout binary.
#
# Targets: a python server (written to $TMP) on 10 ports, jobs "a" and "b" (5 targets each), 150 keys per
# target shared by the targets of a job. Every request to a target advances that target's counts
# (key k: requests x (1 + k % 3)) and carries one new occurrence per key, so every scrape (interval 1 s)
# changes every key: 1,500 instance counts and 300 aggregates with new samples per second. The server
# remembers every count it exported per target incarnation (target_uuid); /ctl/expected is the sum over
# targets and incarnations of the last exported count per key, i.e. exactly what lookout must store.
#
#  - crash: lookout (sqlite in $TMP) is killed with SIGKILL at a random point 1.2-3 s after each start,
#    KILLS times, and restarted. After every restart, before scraping catches up, the stored totals (API)
#    must never exceed what the targets exported (no double counting) and never go back (a commit is
#    never lost). Midway, the targets are frozen, lookout must catch up exactly, half of them restart
#    (new target_uuid, counts from 0) and the run continues. At the end: 3 more kills while the frozen
#    state is being caught up, then every key's stored total equals the exported sum exactly (nothing
#    lost beyond the in-flight cycle: the next scrape recovers it), a clean restart re-scraping the
#    unchanged targets adds 0, and PRAGMA integrity_check is ok.
#  - outage: lookout on a private PostgreSQL; PostgreSQL is stopped for 30 s while the targets keep
#    growing: lookout keeps scraping (target health, /-/ready reports the backlog), then catches up
#    exactly once PostgreSQL is back.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/dbservers.sh"
cd "$ROOT"
KILLS=${KILLS:-22}
[ -x "$LOOKOUT_BIN" ] || { not_ok "lookout binary built"; exit 0; }

cat >"$TMP/targets.py" <<'PY'
import json, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
ports = [int(p) for p in sys.argv[1].split(',')]
NKEYS = 150
mu = threading.Lock()
frozen = False
# per target: incarnation, requests in this incarnation; per (target, incarnation): last exported counts
state = {i: [0, 0] for i in range(len(ports))}
exported = {}
def job(i): return 'a' if i < len(ports) // 2 else 'b'
def count(r, k): return r * (1 + k % 3)
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, obj, code=200):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        global frozen
        i = ports.index(self.server.server_address[1])
        p = self.path
        if p == '/ctl/freeze':
            with mu: frozen = True
            return self.reply({})
        if p == '/ctl/unfreeze':
            with mu: frozen = False
            return self.reply({})
        if p.startswith('/ctl/restart'):   # restart every other target: new uuid, counts from 0
            with mu:
                for t in range(0, len(ports), 2):
                    state[t][0] += 1; state[t][1] = 0
            return self.reply({})
        if p == '/ctl/reset':              # every target restarts and the history is forgotten (new store)
            with mu:
                for t in state:
                    state[t][0] += 1; state[t][1] = 0
                exported.clear()
            return self.reply({})
        if p == '/ctl/expected':
            with mu:
                tot = {}
                for (t, inc), r in exported.items():
                    for k in range(NKEYS):
                        key = '%s/Err%d@crash' % (job(t), k)
                        tot[key] = tot.get(key, 0) + count(r, k)
            return self.reply(tot)
        with mu:
            if not frozen or state[i][1] == 0:
                state[i][1] += 1
            inc, r = state[i]
            exported[(i, inc)] = r
        uuid = 't%d-inc%d' % (i, inc)
        errs = []
        for k in range(NKEYS):
            errs.append({'aggregation_key': 'Err%d@crash' % k, 'total_count': count(r, k), 'severity': 'error',
                         'created_at': '2024-03-01T10:00:00.000Z',
                         'latest_errors': [{'error': {'class': 'Err%d' % k, 'message': 'boom %d on %d' % (k, i),
                                                      'stacktrace': ['at f%d (x.go:%d)' % (k, r)]},
                                            'uuid': '%s-%d-%d' % (uuid, k, r),
                                            'timestamp': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()),
                                            'severity': 'error'}]})
        self.reply({'target_uuid': uuid, 'aggregated_errors': errs})
servers = []
for p in ports:
    s = ThreadingHTTPServer(('127.0.0.1', p), H)
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
    servers.append(s)
print('ready', flush=True)
threading.Event().wait()
PY

# totals URL: the stored per-key totals from lookout's API as JSON {job/key: total}
cat >"$TMP/compare.py" <<'PY'
import json, sys, urllib.request
def get(u):
    with urllib.request.urlopen(u, timeout=10) as r:
        return json.load(r)
def stored(base):
    tot, cur = {}, ''
    while True:
        d = get(base + '/api/v1/errors?limit=1000' + ('&cursor=' + cur if cur else ''))['data']
        for e in d['errors']:
            tot[e['job'] + '/' + e['aggregation_key']] = e['total_count']
        cur = d.get('next_cursor')
        if not cur:
            return tot
mode, lookout, ctl = sys.argv[1], sys.argv[2], sys.argv[3]
exp = get(ctl + '/ctl/expected')
got = stored(lookout)
if mode == 'sum':      # prints stored_sum exported_sum extra_keys over_keys
    over = [k for k in got if got[k] > exp.get(k, 0)]
    print(sum(got.values()), sum(exp.values()), len(set(got) - set(exp)), len(over))
else:                  # exact: prints "equal" or the differences
    diff = {k: (got.get(k), exp.get(k)) for k in set(got) | set(exp) if got.get(k) != exp.get(k)}
    print('equal' if not diff else 'differ %d keys, e.g. %s' % (len(diff), sorted(diff.items())[:3]))
PY

ports=() ; for i in $(seq 1 10); do ports+=("$(free_port)"); done
plist=$(IFS=,; echo "${ports[*]}")
bg python3 "$TMP/targets.py" "$plist" >/dev/null
CTL=http://127.0.0.1:${ports[0]}
wait_http "$CTL/ctl/expected" 10 || { not_ok "target server started"; exit 0; }
ta=$(printf "'127.0.0.1:%s'," "${ports[@]:0:5}"); tb=$(printf "'127.0.0.1:%s'," "${ports[@]:5:5}")

write_config() { # STORAGE_YAML
  cat >"$TMP/l.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
storage: $1
scrape_configs:
  - job_name: a
    static_configs: [{targets: [${ta%,}]}]
  - job_name: b
    static_configs: [{targets: [${tb%,}]}]
YML
}

# ---- crash ----
write_config "{type: sqlite, samples_per_error: 20}"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
DATA=$TMP/crash-data
mkdir -p "$DATA"
run_lookout() { # starts lookout in the background, sets LPID; returns once ready (or 1)
  "$LOOKOUT_BIN" --config.file="$TMP/l.yml" --web.listen-address=127.0.0.1:$PORT --storage.path="$DATA" \
    >>"$TMP/crash.log" 2>&1 &
  LPID=$!
  wait_http "$URL/-/ready" 20
}
cmp_sum() { python3 "$TMP/compare.py" sum "$URL" "$CTL"; }
cmp_exact() { [ "$(python3 "$TMP/compare.py" exact "$URL" "$CTL")" = equal ]; }
if [ "${SKIP_CRASH:-0}" != 1 ]; then

double=0 went_back=0 startfail=0 last=0 kills=0 mid_exact=skipped
t0=$SECONDS
for i in $(seq 1 "$KILLS"); do
  if ! run_lookout; then startfail=$((startfail + 1)); kill -9 $LPID 2>/dev/null; wait $LPID 2>/dev/null; continue; fi
  read -r got exp extra over < <(cmp_sum)
  if [ "${over:-1}" != 0 ] || [ "${extra:-1}" != 0 ]; then double=$((double + 1)); echo "# restart $i: stored $got > exported $exp ($over keys over, $extra unknown)"; fi
  if [ "${got:-0}" -lt "$last" ]; then went_back=$((went_back + 1)); echo "# restart $i: stored total went back from $last to $got"; fi
  last=${got:-0}
  sleep "$((1 + RANDOM % 2)).$((2 + RANDOM % 8))"
  kill -9 $LPID; wait $LPID 2>/dev/null; kills=$((kills + 1))
  if [ "$i" = $((KILLS / 2)) ]; then
    # freeze, catch up exactly, restart half of the targets (new incarnations), go on
    curl -fsS "$CTL/ctl/freeze" >/dev/null
    run_lookout && eventually 20 cmp_exact && mid_exact=equal || mid_exact=differ
    kill -9 $LPID; wait $LPID 2>/dev/null; kills=$((kills + 1))
    curl -fsS "$CTL/ctl/restart" >/dev/null; curl -fsS "$CTL/ctl/unfreeze" >/dev/null
  fi
done
echo "# $kills kills in $((SECONDS - t0)) s; stored total before the last kill: $last"
check_eq "crash: no restart showed more than the targets exported (no double counting)" 0 "$double"
check_eq "crash: stored totals never went back across kills (no committed count lost)" 0 "$went_back"
check_eq "crash: lookout restarted and became ready after every kill" 0 "$startfail"
check_eq "crash: caught up exactly midway (before the target restarts)" equal "$mid_exact"
check "crash: at least 20 kill -9 ($kills)" test "$kills" -ge 20

# final: freeze, kill 3 more times while catching up, then the stored totals must equal the exports
curl -fsS "$CTL/ctl/freeze" >/dev/null
for j in 1 2 3; do
  run_lookout; sleep "0.$((3 + RANDOM % 7))"; kill -9 $LPID; wait $LPID 2>/dev/null; kills=$((kills + 1))
done
run_lookout
if eventually 20 cmp_exact; then ok "crash: after $kills kills every key's stored total equals what the targets exported (sum over incarnations)"
else not_ok "crash: after $kills kills every key's stored total equals what the targets exported"; python3 "$TMP/compare.py" exact "$URL" "$CTL" | sed 's/^/#   /'; fi
stop_pid $LPID
run_lookout; sleep 2.5
check "crash: a clean restart re-scraping unchanged targets adds 0" cmp_exact
stop_pid $LPID
check_eq "crash: PRAGMA integrity_check" ok \
  "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$DATA/lookout.db" 2>&1)"
grep -q "database disk image is malformed\|not a valid lookout database" "$TMP/crash.log" && { not_ok "crash: no corruption reported in the log"; } || ok "crash: no corruption reported in the log"

fi

# ---- outage ----
if [ "${SKIP_OUTAGE:-0}" = 1 ]; then exit 0; fi
if ! pg_start; then not_ok "outage: postgres server started"; exit 0; fi
curl -fsS "$CTL/ctl/reset" >/dev/null; curl -fsS "$CTL/ctl/unfreeze" >/dev/null
write_config "{type: postgres, dsn: '$PG_DSN', samples_per_error: 20}"
DATA=$TMP/outage-data; mkdir -p "$DATA"
run_lookout || { not_ok "outage: lookout on postgres ready"; sed 's/^/#   /' "$TMP/crash.log" | tail; exit 0; }
sleep 4
pg_stop
t_stop=$SECONDS
sleep 5
up() { curl -fsS "$URL/api/v1/targets" | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"]; import time; sys.exit(0 if all(x["health"]=="up" for x in t) and len(t)==10 else 1)'; }
check "outage: targets still scraped (up) while postgres is down" up
ready=$(curl -sS "$URL/-/ready")
check_contains "outage: /-/ready reports the store backlog" "$ready" "store backlog"
check_contains "outage: /metrics reports the backlog" "$(curl -sS "$URL/metrics")" "lookout_store_backlog"
s0=$(curl -fsS "$CTL/ctl/expected" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin).values()))')
sleep 25
s1=$(curl -fsS "$CTL/ctl/expected" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin).values()))')
check "outage: scraping went on during the 30 s outage (exported $s0 -> $s1)" test "$s1" -gt "$s0"
kill -0 $LPID 2>/dev/null && ok "outage: lookout still running" || not_ok "outage: lookout still running"
pg_restart
echo "# postgres restarted after $((SECONDS - t_stop)) s"
curl -fsS "$CTL/ctl/freeze" >/dev/null
# the writer's backoff is capped at 60 s by default; allow for one full wait
if eventually 75 cmp_exact; then ok "outage: store caught up exactly with every count after postgres returned"
else not_ok "outage: store caught up exactly after postgres returned"; python3 "$TMP/compare.py" exact "$URL" "$CTL" | sed 's/^/#   /'; fi
stop_pid $LPID
