#!/usr/bin/env bash
# Web UI in a real browser: Debian's chromium driven by playwright-core (tests/browser/ui.test.mjs).
# The UI runs against tests/fakes/fake_api.py (fixture data, resolve/reopen, injected errors, and a second
# instance holding 100,000 errors for the timing figures, printed as "# perf" lines).
# Env: LOOKOUT_UI_SHOTS=DIR saves screenshots (docs/screenshots is refreshed with LOOKOUT_UI_SHOTS=docs/screenshots).
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  scripts/deps.sh chromium nodejs npm >&2 || { not_ok "ui_browser: cannot install chromium/node"; exit 1; }
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2 || { not_ok "ui_browser: npm ci"; exit 1; }
fi

start_fake() { # NAME ARGS... -> sets FAKE_URL
  local name=$1; shift
  bg python3 tests/fakes/fake_api.py --port 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  local i port=
  for ((i = 0; i < 600; i++)); do
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$TMP/$name.out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "# $name did not start:"; sed 's/^/#   /' "$TMP/$name.err"; return 1; }
  FAKE_URL=http://127.0.0.1:$port
}

start_fake fake || { not_ok "ui_browser: fake API"; exit 1; }
UI_URL=$FAKE_URL
start_fake fake-bulk --fixture none --bulk big:100000 || { not_ok "ui_browser: bulk fake API"; exit 1; }
BULK_URL=$FAKE_URL

REAL_URL=
if [ -x "$LOOKOUT_BIN" ]; then
  cat >"$TMP/lookout.yml" <<'YML'
scrape_configs:
  - job_name: api
    static_configs:
      - targets: ['127.0.0.1:9']
YML
  if start_lookout real --config.file="$TMP/lookout.yml"; then REAL_URL=$LOOKOUT_URL; else not_ok "ui_browser: start lookout"; fi
else
  echo "# $LOOKOUT_BIN not built: skipping the checks against the real binary"
fi

LOOKOUT_UI_REAL_URL=$REAL_URL LOOKOUT_UI_URL=$UI_URL LOOKOUT_UI_BULK_URL=$BULK_URL LOOKOUT_UI_SHOTS=${LOOKOUT_UI_SHOTS:-} \
  timeout 300 node tests/browser/ui.test.mjs
rc=$?
[ $rc -eq 0 ] || echo "# node exited $rc"
exit 0
