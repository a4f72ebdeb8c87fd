#!/usr/bin/env bash
# ThreadSanitizer run (`make tsan`): a TSan build of lookout ($LOOKOUT_BIN, normally ./lookout-tsan) against
# the integration scripts that exercise threads (SD provider threads, reloads, scrape loop, writer, HTTP
# pool) plus tests/stress/concurrency.sh. Every report is written to $BUILD/tsan-logs/lookout.<pid>; any
# report, or any failing test, fails the run. TSan's exitcode=66 also makes a racy lookout exit non-zero
# where a test checks the exit status. Criterion unit tests cannot run under TSan (they fork from an
# arena TSan cannot inherit), hence integration level only.
# Env: TSAN_TESTS (regex of integration script names), STRESS_SECONDS.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-tsan}
export BUILD LOOKOUT_BIN=${LOOKOUT_BIN:-$PWD/lookout-tsan}
logs=$PWD/$BUILD/tsan-logs
rm -rf "$logs" && mkdir -p "$logs"
supp=""
[ -f tests/tsan.supp ] && supp=" suppressions=$PWD/tests/tsan.supp"
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 log_path=$logs/lookout$supp"
tests=${TSAN_TESTS:-file_sd|reload|scrape_failures|scrape_formats|push|federation|periskop_api|sd_http|sd_consul|sd_dns|sd_kubernetes|sd_cache}
start=$SECONDS
LOOKOUT_SKIP_DIFFERENTIAL=1 LOOKOUT_TEST_FILTER="integration/($tests)\.sh" tests/run.sh
rc=$?
echo "# stress (tests/stress/concurrency.sh)"
out=$(bash tests/stress/concurrency.sh 2>&1)
echo "$out" | grep -a -E '^(ok|not ok) '
grep -a -q '^not ok' <<<"$out" && rc=1
reports=$(ls "$logs" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
  rc=1
  echo "FAIL: $reports ThreadSanitizer report file(s) in $logs:"
  grep -h -A12 '^WARNING: ThreadSanitizer' "$logs"/* | head -150
else
  echo "no ThreadSanitizer reports"
fi
echo "tsan run took $((SECONDS - start)) s"
exit $rc
