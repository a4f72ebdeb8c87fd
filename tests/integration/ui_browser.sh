#!/usr/bin/env bash
# Web UI in a real browser: Debian's chromium driven by playwright-core (tests/browser/ui.test.mjs), against
# the real ./lookout scraping real exception targets (tests/fakes/ui_targets.py) every second:
#   main   the targets built from tests/fixtures/ui/errors.json (several jobs, labels namespace/pod/version,
#          a down target, a job without targets); the test makes them report new errors and regressions
#   empty  a lookout without jobs (empty states)
#   prefix the main targets again, served under --web.route-prefix=/lookout behind Debian's nginx (reverse proxy)
#   bulk   100,000 errors from 4 targets, ingested once: ingestion time and the UI timings are printed as
#          "# perf" lines
# Env: LOOKOUT_UI_SHOTS=DIR saves screenshots (docs/screenshots is refreshed with LOOKOUT_UI_SHOTS=docs/screenshots);
#      LOOKOUT_UI_BULK=N changes the bulk size (0 skips it);
#      LOOKOUT_UI_BULK_STORAGE=memory|sqlite the bulk lookout's storage.type (default memory, which the figures
#      in docs/ui.md are for; the main and empty lookouts use the default, sqlite).
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

if [ ! -x "$LOOKOUT_BIN" ]; then
  not_ok "ui_browser: $LOOKOUT_BIN is not built"
  exit 0
fi
# Only what is missing: a machine whose node and npm come from elsewhere (NodeSource's nodejs bundles npm,
# and conflicts with Debian's npm package) must not be asked to install Debian's npm.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  scripts/deps.sh "${need[@]}" >&2 || { not_ok "ui_browser: cannot install ${need[*]}"; exit 1; }
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2 || { not_ok "ui_browser: npm ci"; exit 1; }
fi

# start_targets NAME ARGS...: starts ui_targets.py writing $TMP/NAME.yml; sets CONTROL_URL once it is ready.
start_targets() {
  local name=$1; shift
  bg python3 tests/fakes/ui_targets.py --config "$TMP/$name.yml" "$@" >"$TMP/$name-targets.out" 2>"$TMP/$name-targets.err"
}
wait_targets() { # NAME SECONDS
  local name=$1 i
  for ((i = 0; i < $2 * 20; i++)); do
    grep -q '^ready$' "$TMP/$name-targets.out" 2>/dev/null && break
    sleep 0.05
  done
  grep -q '^ready$' "$TMP/$name-targets.out" 2>/dev/null ||
    { echo "# $name targets did not start:"; sed 's/^/#   /' "$TMP/$name-targets.err"; return 1; }
  CONTROL_URL=http://127.0.0.1:$(sed -n 's/^control //p' "$TMP/$name-targets.out")
}
api_total() { # URL QUERY -> total of /api/v1/errors?QUERY (empty on failure)
  curl -sS --max-time 10 "$1/api/v1/errors?$2" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])' 2>/dev/null
}
now_ms() { date +%s%3N; }

BULK_N=${LOOKOUT_UI_BULK:-100000}
[ "$BULK_N" -gt 0 ] && start_targets bulk --bulk "big:$BULK_N:4" --interval 5s --body-size-limit 64MB
start_targets main
wait_targets main 20 || { not_ok "ui_browser: exception targets"; exit 0; }
MAIN_CONTROL=$CONTROL_URL
start_lookout main --config.file="$TMP/main.yml" --web.enable-lifecycle || { not_ok "ui_browser: start lookout"; exit 0; }
MAIN_URL=$LOOKOUT_URL
echo 'scrape_configs: []' >"$TMP/empty.yml"
start_lookout empty --config.file="$TMP/empty.yml" || { not_ok "ui_browser: start lookout (no jobs)"; exit 0; }
EMPTY_URL=$LOOKOUT_URL
LOOKOUT_PREFIX=/lookout start_lookout prefix --config.file="$TMP/main.yml" --web.route-prefix=/lookout ||
  { not_ok "ui_browser: start lookout (route prefix)"; exit 0; }
start_nginx_proxy "$LOOKOUT_PORT" || { not_ok "ui_browser: nginx in front of the prefixed lookout"; exit 0; }
PREFIX_URL=http://127.0.0.1:$NGINX_PORT

# The main lookout has scraped every target once (and found the down one) before the browser starts.
main_ready() {
  curl -sS --max-time 5 "$MAIN_URL/api/v1/jobs" | python3 -c '
import json, sys
j = {x["job"]: x for x in json.load(sys.stdin)["data"]}
a = j.get("api") or {}
sys.exit(0 if a.get("targets_up") == 3 and a.get("targets_down") == 1 and a.get("open", 0) >= 68 else 1)'
}
eventually 15 main_ready || { not_ok "ui_browser: lookout did not ingest the fixture targets"; exit 0; }

BULK_URL=
if [ "$BULK_N" -gt 0 ]; then
  if wait_targets bulk 60; then
    BULK_CONTROL=$CONTROL_URL
    cp "$TMP/bulk.yml" "$TMP/bulk-lookout.yml"
    # 100,000 errors in one job: above the default storage.max_errors_per_job (10,000), which would count
    # the rest into lookout.overflow.
    printf 'storage:\n  type: %s\n  max_errors_per_job: %d\n' "${LOOKOUT_UI_BULK_STORAGE:-memory}" $((BULK_N + 1000)) \
      >>"$TMP/bulk-lookout.yml"
    t0=$(now_ms)
    if start_lookout bulk --config.file="$TMP/bulk-lookout.yml"; then
      BULK_URL=$LOOKOUT_URL
      for ((i = 0; i < 300; i++)); do
        [ "$(api_total "$BULK_URL" "job=big&limit=1")" = "$BULK_N" ] && break
        sleep 0.1
      done
      t1=$(now_ms)
      n=$(api_total "$BULK_URL" "job=big&limit=1")
      curl -sS -X POST "$BULK_CONTROL/stop" >/dev/null # keep what was ingested; no more re-scrapes of 40 MB
      durs=$(curl -sS "$BULK_URL/api/v1/targets" | python3 -c '
import json, sys
print(" ".join("%.2f" % t["lastScrapeDuration"] for t in json.load(sys.stdin)["data"]["activeTargets"]))')
      echo "# perf ingestion: $n errors from 4 targets (~$((BULK_N / 4)) keys, one payload each) visible in the API (storage.type ${LOOKOUT_UI_BULK_STORAGE:-memory}) $(((t1 - t0)))ms after lookout started (includes waiting for each target's scrape offset in the 5s interval); last scrape durations: $durs s; lookout RSS $(proc_hwm_mib "$LOOKOUT_PID") MiB peak"
      [ "$n" = "$BULK_N" ] || { not_ok "ui_browser: bulk ingestion ($n of $BULK_N errors)"; BULK_URL=; }
    else
      not_ok "ui_browser: start lookout (bulk)"
    fi
  else
    not_ok "ui_browser: bulk targets"
  fi
fi

LOOKOUT_UI_URL=$MAIN_URL LOOKOUT_UI_CONTROL=$MAIN_CONTROL LOOKOUT_UI_EMPTY_URL=$EMPTY_URL LOOKOUT_UI_BULK_URL=$BULK_URL \
  LOOKOUT_UI_PREFIX_URL=$PREFIX_URL \
  LOOKOUT_UI_SHOTS=${LOOKOUT_UI_SHOTS:-} timeout 300 node tests/browser/ui.test.mjs
rc=$?
[ $rc -eq 0 ] || echo "# node exited $rc"
exit 0
