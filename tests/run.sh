#!/usr/bin/env bash
# Runs every test: criterion unit tests, integration scripts, differential tests.
# Integration and differential scripts print TAP-style lines ("ok - name" / "not ok - name";
# "ok - name # SKIP why" is a skip, not a pass).
# Ends with one line: "N passed, M failed, K skipped" (CI parses it; keep the shape).
# A unit binary fails when it exits non-zero, even after a clean synthesis (LeakSanitizer does that at
# exit), when its log holds a sanitizer report (a leak in a test's worker process leaves the synthesis and
# the exit status clean), or when it prints no synthesis; a crashing test counts once. A script fails when it exits
# non-zero or reports no test at all. A binary, criterion suite or script whose every test was skipped
# is shown as SKIP, and fails when CI=true (a skip must never hide a whole suite in CI).
# Env: LOOKOUT_BIN (binary under test), BUILD (build dir), LOOKOUT_SKIP_DIFFERENTIAL=1,
#      LOOKOUT_TEST_FILTER=regex (only scripts/binaries whose path matches), LOOKOUT_UNIT_ONLY=1 (make check),
#      LOOKOUT_TEST_TIMEOUT (seconds per script, 900), CI=true (whole-suite skips fail).
#      LOOKOUT_UNIT_DIR, LOOKOUT_INTEGRATION_DIR, LOOKOUT_DIFFERENTIAL_DIR, LOOKOUT_TEST_LOGS override
#      where tests and logs are (tests/integration/runner.sh points them at fake tests).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$PWD/lookout}
unit_dir=${LOOKOUT_UNIT_DIR:-$BUILD/unit}
integration_dir=${LOOKOUT_INTEGRATION_DIR:-tests/integration}
differential_dir=${LOOKOUT_DIFFERENTIAL_DIR:-tests/differential}
logdir=${LOOKOUT_TEST_LOGS:-$BUILD/test-logs}
passed=0 failed=0 skipped=0
failed_names=() skipped_names=()
filter=${LOOKOUT_TEST_FILTER:-.}
in_ci=0; [ "${CI:-}" = true ] && in_ci=1
mkdir -p "$logdir"

# whole_skip KIND NAME LOG: a whole binary/suite/script was skipped; fails it in CI.
whole_skip() {
  if [ "$in_ci" = 1 ]; then
    failed=$((failed + 1)); failed_names+=("$1/$2")
    echo "FAIL $1 $2: every test skipped, not allowed when CI=true (log: $3)"
  else
    skipped_names+=("$1/$2")
  fi
}

for t in "$unit_dir"/test_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  [[ "$t" =~ $filter ]] || continue
  name=$(basename "$t")
  out="$logdir/$name.log"
  "$t" --jobs=2 --verbose >"$out" 2>&1
  rc=$?
  syn=$(grep -a 'Synthesis:' "$out" | tail -1)
  p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn")
  f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$syn")
  p=${p:-0}; f=${f:-0}
  # Criterion counts a crash under Failing and again under Crashing: Failing alone counts it once.
  s=$(grep -a -c '^\[SKIP\] ' "$out")
  # Suites (the part before "::") whose every test was skipped.
  skipped_suites=$(grep -a -E '^\[(PASS|FAIL|SKIP)\] ' "$out" | awk '{ split($2, a, "::"); n[a[1]]++;
    if ($1 == "[SKIP]") s[a[1]]++ } END { for (k in n) if (s[k] == n[k]) print k }' | sort | tr '\n' ' ')
  why=""
  # A sanitizer report from a test's worker process (a leak at its exit) leaves criterion's synthesis and
  # exit status clean: the report itself fails the binary.
  san=$(grep -a -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer)[^:]*|runtime error:|WARNING: ThreadSanitizer|crashed during its setup or teardown' "$out")
  if [ -z "$syn" ]; then why="printed no criterion synthesis (exit $rc)"; f=$((f > 0 ? f : 1))
  elif [ -n "$san" ] && [ "$f" -eq 0 ]; then why="sanitizer report or crash outside a test ($san)"; f=1
  elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then why="exited $rc after a clean synthesis"; f=1
  elif [ $((p + f + s)) -eq 0 ]; then why="ran no test"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" -gt 0 ]; then
    failed_names+=("$name"); echo "FAIL unit $name${why:+: $why} (log: $out)"
    grep -a -E '^\[(FAIL|----)\]' "$out" | head -20
    [ -n "$why" ] && tail -5 "$out" | sed 's/^/    /'
  elif [ "$p" -eq 0 ]; then
    echo "SKIP unit $name ($s skipped)"; whole_skip unit "$name" "$out"
  else
    echo "ok unit $name ($p tests$([ "$s" -gt 0 ] && echo ", $s skipped"))"
    for su in $skipped_suites; do
      echo "SKIP unit $name suite $su (every test skipped)"; whole_skip unit "$name::$su" "$out"
    done
  fi
done

run_script() {
  local s=$1 kind=$2 name out rc p f k why=""
  name=$(basename "$s" .sh)
  out="$logdir/$kind-$name.log"
  timeout --kill-after=10 "${LOOKOUT_TEST_TIMEOUT:-900}" bash "$s" >"$out" 2>&1
  rc=$?
  # TAP: a "# SKIP" directive (any case) after the description makes an ok line a skip.
  k=$(grep -a -c -i -E '^ok .*#[[:space:]]*skip' "$out")
  p=$(( $(grep -a -c '^ok ' "$out") - k )); f=$(grep -a -c '^not ok ' "$out")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; why="exited $rc"; echo "not ok - $name exited $rc" >>"$out"
  elif [ $((p + f + k)) -eq 0 ]; then f=1; why="reported no test"; echo "not ok - $name reported no test" >>"$out"
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
  if [ "$f" -gt 0 ]; then
    failed_names+=("$kind/$name"); echo "FAIL $kind $name${why:+: $why} (log: $out)"; grep -a '^not ok' "$out" | head -20
    tail -30 "$out" | sed 's/^/    /'
  elif [ "$p" -eq 0 ]; then
    echo "SKIP $kind $name ($k skipped)"; grep -a -i -E '^ok .*#[[:space:]]*skip' "$out" | head -5 | sed 's/^/    /'
    whole_skip "$kind" "$name" "$out"
  else
    echo "ok $kind $name ($p tests$([ "$k" -gt 0 ] && echo ", $k skipped"))"
    [ "$k" -gt 0 ] && grep -a -i -E '^ok .*#[[:space:]]*skip' "$out" | head -5 | sed 's/^/    /'
  fi
  return 0
}

[ "${LOOKOUT_UNIT_ONLY:-0}" = 1 ] && skip_scripts=1 || skip_scripts=0
for s in "$integration_dir"/*.sh; do
  [ "$skip_scripts" = 1 ] && break
  [ -f "$s" ] || continue
  [[ "$s" =~ $filter ]] || continue
  run_script "$s" integration
done
if [ "${LOOKOUT_SKIP_DIFFERENTIAL:-0}" != 1 ] && [ "$skip_scripts" = 0 ]; then
  for s in "$differential_dir"/*.sh; do
    [ -f "$s" ] || continue
    [[ "$s" =~ $filter ]] || continue
    run_script "$s" differential
  done
fi

[ ${#skipped_names[@]} -gt 0 ] && echo "skipped whole: ${skipped_names[*]}"
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
