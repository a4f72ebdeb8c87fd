#!/usr/bin/env bash
# runner: tests/run.sh itself, against fake unit binaries (real criterion programs and shell stand-ins)
# and fake integration/differential scripts in $TMP, through LOOKOUT_UNIT_DIR/LOOKOUT_INTEGRATION_DIR/
# LOOKOUT_DIFFERENTIAL_DIR. Each case checks the closing "N passed, M failed, K skipped" line and the
# exit status: a runner that reports a broken test as ok hides every other bug.
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

# Real criterion programs: the runner parses criterion's own output, not an imitation of it.
crit() { # crit NAME C-BODY: compiles a criterion test program into $TMP/bin/NAME
  mkdir -p "$TMP/bin"
  printf '#include <criterion/criterion.h>\n#include <signal.h>\n#include <unistd.h>\n%s\n' "$2" >"$TMP/$1.c"
  cc -o "$TMP/bin/$1" "$TMP/$1.c" -lcriterion 2>>"$TMP/cc.log"
}
crit pass 'Test(s, a) { cr_assert(1); } Test(s, b) { cr_assert_eq(2, 2); }' &&
crit crash 'Test(s, ok1) { cr_assert(1); } Test(s, boom) { raise(SIGSEGV); }' &&
crit fail 'Test(s, ok1) { cr_assert(1); } Test(s, no) { cr_assert_eq(1, 2); }' &&
crit suiteskip 'Test(s, ok1) { cr_assert(1); } Test(t, a) { cr_skip_test("x"); } Test(t, b, .disabled = true) {}' &&
crit oneskip 'Test(s, ok1) { cr_assert(1); } Test(s, a) { cr_skip_test("x"); }' &&
crit allskip 'Test(s, a) { cr_skip_test("x"); }' &&
# leak: exits 23 after its synthesis, in the runner process only (criterion forks a worker per test).
crit leak 'static pid_t main_pid; __attribute__((constructor)) static void rec(void) { main_pid = getpid(); }
__attribute__((destructor)) static void bye(void) { if (getpid() == main_pid) { fflush(NULL); _exit(23); } }
Test(s, ok1) { cr_assert(1); }' ||
  { not_ok "criterion test programs build"; sed 's/^/#   /' "$TMP/cc.log" | head -20; exit 0; }
ok "criterion test programs build"

# A test that leaks, under ASan: LeakSanitizer reports it from criterion's worker, whose synthesis and exit
# status stay clean.
mkdir -p "$TMP/bin"
printf '#include <criterion/criterion.h>\n#include <stdlib.h>\nvoid *volatile sink;\n%s\n' \
  'Test(s, ok1) { cr_assert(1); } Test(s, leaks) { char *p = malloc(64); p[0] = 1; sink = p; sink = NULL; }' \
  >"$TMP/asanleak.c"
if cc -O0 -fsanitize=address -o "$TMP/bin/asanleak" "$TMP/asanleak.c" -lcriterion 2>>"$TMP/cc.log"; then
  ok "ASan criterion program builds"
else
  not_ok "ASan criterion program builds"; sed 's/^/#   /' "$TMP/cc.log" | tail -5
fi

# A stand-in for a binary that prints a clean synthesis and then exits non-zero (LeakSanitizer at exit).
fake_unit() { # fake_unit NAME RC OUTPUT
  printf '#!/bin/sh\nprintf "%%s\\n" "%s"\nexit %s\n' "$3" "$2" >"$TMP/bin/$1"; chmod +x "$TMP/bin/$1"
}
fake_unit lsan 1 '[====] Synthesis: Tested: 4 | Passing: 4 | Failing: 0 | Crashing: 0 '
fake_unit silent 0 ''

# case NAME: fresh unit/integration/differential dirs for one runner invocation
case_dir() { C=$TMP/case-$1; rm -rf "$C"; mkdir -p "$C/unit" "$C/integration" "$C/differential" "$C/logs"; }
unit() { cp "$TMP/bin/$1" "$C/unit/test_$1"; }
script() { # script DIR NAME BODY
  printf '#!/usr/bin/env bash\n%s\n' "$3" >"$C/$1/$2.sh"
}
# run_runner [ENV=V...]: runs tests/run.sh on $C; sets OUT (all output), LAST (closing line), RC.
run_runner() {
  OUT=$(env -u CI -u LOOKOUT_UNIT_ONLY -u LOOKOUT_SKIP_DIFFERENTIAL LOOKOUT_TEST_FILTER=. \
    LOOKOUT_UNIT_DIR="$C/unit" LOOKOUT_INTEGRATION_DIR="$C/integration" \
    LOOKOUT_DIFFERENTIAL_DIR="$C/differential" LOOKOUT_TEST_LOGS="$C/logs" "$@" tests/run.sh 2>&1)
  RC=$?
  LAST=$(tail -1 <<<"$OUT")
}
expect() { # expect NAME CLOSING-LINE RC
  check_eq "$1: closing line" "$2" "$LAST"
  check_eq "$1: exit status" "$3" "$RC"
  [ "$LAST" == "$2" ] && [ "$RC" == "$3" ] || sed 's/^/#   | /' <<<"$OUT" | head -30
}

case_dir all_pass; unit pass; script integration good 'echo "ok - one"; echo "ok - two"'
run_runner; expect "passing binary and script" "4 passed, 0 failed, 0 skipped" 0
check_contains "passing binary is listed ok" "$OUT" "ok unit test_pass (2 tests)"

case_dir lsan; unit pass; unit lsan
run_runner; expect "clean synthesis then exit 1 fails" "6 passed, 1 failed, 0 skipped" 1
check_contains "the failure names the exit after the synthesis" "$OUT" "FAIL unit test_lsan: exited 1 after a clean synthesis"

case_dir leak_real; unit leak
run_runner; expect "criterion program exiting 23 after its synthesis fails" "1 passed, 1 failed, 0 skipped" 1

case_dir asan_leak; unit asanleak
run_runner ASAN_OPTIONS=detect_leaks=1:abort_on_error=1; expect "a leak reported by a test's worker fails" "2 passed, 1 failed, 0 skipped" 1
check_contains "the failure names the sanitizer" "$OUT" "FAIL unit test_asanleak: sanitizer report or crash outside a test"
run_runner ASAN_OPTIONS=detect_leaks=1; expect "a leak fails without abort_on_error too" "2 passed, 1 failed, 0 skipped" 1

case_dir silent; unit pass; unit silent
run_runner; expect "binary printing nothing fails" "2 passed, 1 failed, 0 skipped" 1
check_contains "the failure says no synthesis" "$OUT" "FAIL unit test_silent: printed no criterion synthesis"

case_dir crash; unit crash
run_runner; expect "a crash counts once" "1 passed, 1 failed, 0 skipped" 1

case_dir fail; unit fail
run_runner; expect "a failing assertion fails" "1 passed, 1 failed, 0 skipped" 1

case_dir empty_script; unit pass; script integration empty 'exit 0'
run_runner; expect "script reporting nothing fails" "2 passed, 1 failed, 0 skipped" 1
check_contains "the failure says no test" "$OUT" "FAIL integration empty: reported no test"

case_dir exit_script; script integration dies 'echo "ok - first"; exit 3'
run_runner; expect "script exiting non-zero fails" "1 passed, 1 failed, 0 skipped" 1

case_dir notok; script differential d 'echo "ok - a"; echo "not ok - b"; echo "not ok - c"'
run_runner; expect "differential not ok lines count" "1 passed, 2 failed, 0 skipped" 1

case_dir some_skips; unit oneskip
script integration partial 'echo "ok - a"; echo "ok - promtool check # SKIP promtool not installed"; echo "ok - c #skip lower case"'
run_runner; expect "skips are counted apart from passes" "2 passed, 0 failed, 3 skipped" 0
run_runner CI=true; expect "a single skipped check is allowed in CI" "2 passed, 0 failed, 3 skipped" 0
check_contains "the skip reason is shown" "$OUT" "promtool not installed"

case_dir whole_script_skip; unit pass; script integration skipper 'echo "ok - everything # SKIP needs root"'
run_runner; expect "whole-script skip outside CI" "2 passed, 0 failed, 1 skipped" 0
check_contains "a whole-script skip is shown as SKIP" "$OUT" "SKIP integration skipper (1 skipped)"
run_runner CI=true; expect "whole-script skip fails in CI" "2 passed, 1 failed, 1 skipped" 1

case_dir whole_suite_skip; unit suiteskip
run_runner; expect "whole criterion suite skipped outside CI" "1 passed, 0 failed, 2 skipped" 0
check_contains "the skipped suite is named" "$OUT" "SKIP unit test_suiteskip suite t"
run_runner CI=true; expect "whole criterion suite skipped fails in CI" "1 passed, 1 failed, 2 skipped" 1

case_dir whole_binary_skip; unit pass; unit allskip
run_runner; expect "whole binary skipped outside CI" "2 passed, 0 failed, 1 skipped" 0
run_runner CI=true; expect "whole binary skipped fails in CI" "2 passed, 1 failed, 1 skipped" 1

case_dir nothing
run_runner; expect "no test at all fails the run" "0 passed, 0 failed, 0 skipped" 1

case_dir filter; unit pass; unit fail; script integration good 'echo "ok - one"'
run_runner LOOKOUT_TEST_FILTER=pass; expect "filter selects by path" "2 passed, 0 failed, 0 skipped" 0
run_runner LOOKOUT_UNIT_ONLY=1 LOOKOUT_TEST_FILTER=good; expect "unit-only runs no script" "0 passed, 0 failed, 0 skipped" 1
run_runner LOOKOUT_UNIT_ONLY=1 LOOKOUT_TEST_FILTER=pass; expect "unit-only runs binaries" "2 passed, 0 failed, 0 skipped" 0
