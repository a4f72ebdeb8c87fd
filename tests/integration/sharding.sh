#!/usr/bin/env bash
# Horizontal scaling (docs/scaling.md): config/examples/shard-0.yml and shard-1.yml, two lookout shards
# sharing one private PostgreSQL, 1,000 targets (exception_server /t/<i>, each its own target_uuid).
# Every target is scraped by exactly one shard, and the merged counts, read through either shard, equal
# the sum of what the targets export.
. "$(dirname "$0")/../lib/common.sh"
. "$ROOT/tests/lib/dbservers.sh"
N=${SHARD_TARGETS:-1000}
ES=$ROOT/${BUILD:-build}/helpers/exception_server
[ -x "$ES" ] || make -C "$ROOT" -s "${BUILD:-build}/helpers/exception_server" >/dev/null || { not_ok "build exception_server"; exit 1; }
pg_start || { not_ok "private PostgreSQL starts"; exit 0; }
EPORT=$(free_port)
bg "$ES" --port "$EPORT" --payload-size 1200 --threads 2 >/dev/null
wait_http "http://127.0.0.1:$EPORT/t/0" 10 || { not_ok "exception_server starts"; exit 1; }
mkdir -p "$TMP/targets"
python3 - "$EPORT" "$N" >"$TMP/targets/api-1.json" <<'PY'
import json, sys
port, n = sys.argv[1], int(sys.argv[2])
print(json.dumps([{"targets": ["127.0.0.1:%s" % port], "labels": {"__metrics_path__": "/t/%d" % i}} for i in range(n)]))
PY
for i in 0 1; do
  sed -e "s|scrape_interval: 15s|scrape_interval: 2s|" \
      -e "s|dsn: .*|dsn: \"$PG_DSN\"|" \
      -e "s|targets/api-\*.json|$TMP/targets/api-*.json|" "$ROOT/config/examples/shard-$i.yml" >"$TMP/shard-$i.yml"
done
start_lookout shard0 --config.file="$TMP/shard-0.yml" || { not_ok "shard 0 starts"; exit 1; }
S0=$LOOKOUT_URL
start_lookout shard1 --config.file="$TMP/shard-1.yml" || { not_ok "shard 1 starts"; exit 1; }
S1=$LOOKOUT_URL

# What the targets export: every /t/<i> has the same keys and counts (only target_uuid differs).
expected=$(curl -s "http://127.0.0.1:$EPORT/t/0" | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(json.dumps({a["aggregation_key"]: a["total_count"] * int(sys.argv[1]) for a in d["aggregated_errors"]}, sort_keys=True))' "$N")
# merged URL: {key: total} from the Periskop API of one shard (which reads the shared database).
merged() { curl -s "$1/services/api/errors/" | python3 -c '
import json,sys
try: print(json.dumps({a["aggregation_key"]: a["total_count"] for a in json.load(sys.stdin)}, sort_keys=True))
except Exception: print("{}")'; }
same() { [ "$(merged "$1")" = "$expected" ]; }
eventually 60 same "$S0"
check_eq "merged counts via shard 0 == sum over $N targets" "$expected" "$(merged "$S0")"
check_eq "merged counts via shard 1 == the same" "$expected" "$(merged "$S1")"

# targets URL: the scrape URLs of the active targets of job api, one per line, sorted.
targets() { curl -s "$1/api/v1/targets?state=active&scrapePool=api" | python3 -c '
import json,sys
for t in sorted(t["scrapeUrl"] for t in json.load(sys.stdin)["data"]["activeTargets"]): print(t)'; }
targets "$S0" >"$TMP/t0"; targets "$S1" >"$TMP/t1"
n0=$(wc -l <"$TMP/t0"); n1=$(wc -l <"$TMP/t1")
check_eq "every target on exactly one shard ($n0 + $n1)" "$N 0" "$(sort -u "$TMP/t0" "$TMP/t1" | wc -l) $(comm -12 "$TMP/t0" "$TMP/t1" | wc -l)"
[ "$n0" -gt $((N / 4)) ] && [ "$n1" -gt $((N / 4)) ] && ok "both shards carry load ($n0 / $n1)" || not_ok "both shards carry load ($n0 / $n1)"
up=$(for u in "$S0" "$S1"; do curl -s "$u/api/v1/targets?state=active&scrapePool=api"; echo; done | python3 -c '
import json,sys
print(sum(1 for l in sys.stdin if l.strip() for t in json.loads(l)["data"]["activeTargets"] if t["health"]=="up"))')
check_eq "all $N targets up" "$N" "$up"

# Further scrapes of unchanged targets add nothing: first prove both shards scraped every target again.
scrapes() { curl -s "$1/metrics" | awk '$1 == "lookout_scrapes_total" || index($1, "lookout_scrapes_total{") == 1 { s += $NF } END { printf "%d\n", s }'; }
scraped_to() { [ $(( $(scrapes "$S0") + $(scrapes "$S1") )) -ge "$1" ]; }
s_before=$(( $(scrapes "$S0") + $(scrapes "$S1") ))
check "every target scraped again (lookout_scrapes_total from $s_before up by $((2 * N)))" \
  eventually 30 scraped_to $((s_before + 2 * N))
check_eq "counts stable over further scrapes" "$expected" "$(merged "$S1")"
