#!/usr/bin/env bash
# Differential test of /api/v1/targets against Prometheus 2.42 (the oracle).
# For every config in configs/: Prometheus runs a copy whose relabel_configs start with a no-op pair
# (works around prometheus#11960, see targets.py canary), lookout runs the original. When both have
# settled, their ?state=any responses are normalized (discoveredLabels, labels, scrapePool, scrapeUrl,
# scrapeInterval, scrapeTimeout of active targets; discoveredLabels of dropped ones; sorted) and compared
# per job: one TAP line per job, with a unified diff on mismatch.
# Phase 2 changes the file_sd files (shrink a file, delete one, add one, empty one, break one) while both
# run, and compares the file_sd jobs again.
# Env: LOOKOUT_BIN; DIFF_ORACLE_ONLY=1 prints Prometheus' normalized answer only (to write scenarios);
#      DIFF_CONFIGS="relabel targets" limits the configs; DIFF_NO_CANARY=1 runs the oracle on the original
#      configs (shows the 2.42 bug).
. "$(dirname "$0")/../lib/common.sh"
HERE=$TESTS_DIR/differential
PY="python3 $HERE/targets.py"

ensure_prometheus || { not_ok "prometheus 2.42 available"; exit 1; }
oracle_only=${DIFF_ORACLE_ONLY:-0}
if [ "$oracle_only" != 1 ] && [ ! -x "$LOOKOUT_BIN" ]; then
  not_ok "lookout binary exists ($LOOKOUT_BIN)"
  exit 1
fi

# One directory for every config and the file_sd fixtures: both processes run with it as working
# directory, so a relative file_sd path means the same file to both, whichever base they resolve against.
CFG=$TMP/cfg
mkdir -p "$CFG/sd"
cp "$HERE"/file_sd/* "$CFG/sd/"
cd "$CFG" || exit 1

names=()
for f in "$HERE"/configs/*.yml; do
  n=$(basename "$f" .yml)
  if [ -n "${DIFF_CONFIGS:-}" ] && [[ " $DIFF_CONFIGS " != *" $n "* ]]; then continue; fi
  sed "s|@SD@|$CFG/sd|g" "$f" >"$CFG/$n.yml"
  if [ "${DIFF_NO_CANARY:-0}" = 1 ]; then cp "$CFG/$n.yml" "$CFG/$n.oracle.yml"
  else $PY canary "$CFG/$n.yml" "$CFG/$n.oracle.yml" || exit 1; fi
  names+=("$n")
done

declare -A prom_url lk_url
for n in "${names[@]}"; do
  start_prometheus "prom-$n" "$CFG/$n.oracle.yml" || { not_ok "prometheus accepts $n.yml"; exit 1; }
  prom_url[$n]=$PROM_URL
  if [ "$oracle_only" != 1 ]; then
    start_lookout_bg "lookout-$n" --config.file="$CFG/$n.yml"
    lk_url[$n]=$LOOKOUT_URL
  fi
done

# compare_all PHASE JOB_FILTER: one TAP block per config.
compare_all() {
  local phase=$1 filter=$2 n out jobs
  for n in "${names[@]}"; do
    mapfile -t jobs < <($PY jobs "$CFG/$n.yml" | grep -E "$filter")
    [ ${#jobs[@]} -gt 0 ] || continue
    echo "# config $n.yml ($phase)"
    if [ "$oracle_only" = 1 ]; then
      $PY normalize "$TMP/$n.prom.json"
      continue
    fi
    out=$($PY compare "$TMP/$n.prom.json" "$TMP/$n.lookout.json" "${jobs[@]}")
    [ "$phase" = initial ] || out=$(sed "s/^\(\(not \)\?ok - \)/\1$phase: /" <<<"$out")
    echo "$out"
    if grep -q '^not ok' <<<"$out"; then
      echo "# lookout log (lookout-$n.log, last lines):"
      tail -15 "$TMP/lookout-$n.log" | sed 's/^/#   /'
    fi
  done
}

# settle_all PROM_MIN: waits for every process to settle and saves the answers.
settle_all() {
  local n w waiters=()
  for n in "${names[@]}"; do
    $PY settle "${prom_url[$n]}" "$TMP/$n.prom.json" "$1" 3 45 & waiters+=($!)
    if [ "$oracle_only" != 1 ]; then
      $PY settle "${lk_url[$n]}" "$TMP/$n.lookout.json" 2 2 30 & waiters+=($!)
    fi
  done
  for w in "${waiters[@]}"; do wait "$w"; done
}

# Prometheus' scrape manager applies discovery updates on a 5 s tick: wait at least 6 s, then until the
# answer has been stable for 3 s (at most 45 s). lookout coalesces for 1 s.
settle_all 6
compare_all initial .

# Phase 2: file_sd changes while running. Both watch the directory; Prometheus applies the result on its
# next ticks (discovery manager 5 s, then scrape manager 5 s): wait at least 12 s.
# Each file is replaced by a rename: a file read half-written would be a different scenario.
mkdir -p "$CFG/staging"
for f in "$HERE"/file_sd_update/*; do
  cp "$f" "$CFG/staging/" && mv "$CFG/staging/$(basename "$f")" "$CFG/sd/"
done
rm -f "$CFG/sd/glob-b.json"
settle_all 12
compare_all "after file_sd changes" file_sd
