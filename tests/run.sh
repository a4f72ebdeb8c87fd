#!/usr/bin/env bash
# Runs every test: criterion unit tests, integration scripts, differential tests.
# Integration and differential scripts print TAP-style lines ("ok - name" / "not ok - name").
# Ends with one line: "N passed, N failed".
# Env: LOOKOUT_BIN (binary under test), BUILD (build dir), LOOKOUT_SKIP_DIFFERENTIAL=1,
#      LOOKOUT_TEST_FILTER=regex (only scripts/binaries whose path matches), LOOKOUT_UNIT_ONLY=1 (make check).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$PWD/lookout}
passed=0 failed=0
failed_names=()
filter=${LOOKOUT_TEST_FILTER:-.}
logdir=$BUILD/test-logs
mkdir -p "$logdir"

for t in "$BUILD"/unit/test_*; do
  [ -x "$t" ] || continue
  [[ "$t" =~ $filter ]] || continue
  name=$(basename "$t")
  out="$logdir/$name.log"
  "$t" --jobs=2 >"$out" 2>&1
  rc=$?
  syn=$(grep -a 'Synthesis:' "$out" | tail -1)
  p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn")
  f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$syn")
  c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$syn")
  p=${p:-0}; f=${f:-0}; c=${c:-0}
  if [ -z "$syn" ] && [ $rc -ne 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f + c))
  if [ $((f + c)) -gt 0 ] || { [ $rc -ne 0 ] && [ -z "$syn" ]; }; then
    failed_names+=("$name"); echo "FAIL unit $name (log: $out)"; grep -a -E '\[(FAIL|----)\]' "$out" | head -20
  else
    echo "ok unit $name ($p tests)"
  fi
done

run_script() {
  local s=$1 kind=$2 name out rc p f
  name=$(basename "$s" .sh)
  out="$logdir/$kind-$name.log"
  timeout --kill-after=10 "${LOOKOUT_TEST_TIMEOUT:-900}" bash "$s" >"$out" 2>&1
  rc=$?
  p=$(grep -a -c '^ok ' "$out"); f=$(grep -a -c '^not ok ' "$out")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$out"; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then
    failed_names+=("$kind/$name"); echo "FAIL $kind $name (log: $out)"; grep -a '^not ok' "$out" | head -20
    tail -30 "$out" | sed 's/^/    /'
  else
    echo "ok $kind $name ($p tests)"
  fi
}

[ "${LOOKOUT_UNIT_ONLY:-0}" = 1 ] && skip_scripts=1 || skip_scripts=0
for s in tests/integration/*.sh; do
  [ "$skip_scripts" = 1 ] && break
  [ -f "$s" ] || continue
  [[ "$s" =~ $filter ]] || continue
  run_script "$s" integration
done
if [ "${LOOKOUT_SKIP_DIFFERENTIAL:-0}" != 1 ] && [ "$skip_scripts" = 0 ]; then
  for s in tests/differential/*.sh; do
    [ -f "$s" ] || continue
    [[ "$s" =~ $filter ]] || continue
    run_script "$s" differential
  done
fi

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
