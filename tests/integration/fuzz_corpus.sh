#!/usr/bin/env bash
# fuzz_corpus: regression replay of the fuzz corpora. Builds every harness in fuzz/ with clang + ASan + UBSan
# linked to fuzz/replay_main.c (no libFuzzer needed; `make fuzz-replay`, objects shared with `make fuzz` in
# build-fuzz/) and runs each once over fuzz/corpus/<target>/ (seeds) and fuzz/crashes/<target>/ (inputs that
# crashed, hung or leaked once; fixed since). Any sanitizer report fails the target.
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"
# A fresh machine may lack clang or its sanitizer runtimes: install them (only what is missing).
[ -n "${FUZZ_CC:-}" ] || scripts/deps.sh clang libclang-rt-14-dev >/dev/null 2>&1 || true
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
  ok "fuzz corpus replay # SKIP ${FUZZ_CC:-clang} not installed"
  exit 0
fi
if ! make -s -j2 fuzz-replay >"$TMP/build.log" 2>&1; then
  not_ok "fuzz harnesses build"; tail -30 "$TMP/build.log" | sed 's/^/#   /'
  exit 0
fi
ok "fuzz harnesses build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for src in fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  n=$(find "fuzz/corpus/$t" "fuzz/crashes/$t" -type f 2>/dev/null | wc -l)
  if [ "$n" -eq 0 ]; then not_ok "$t: no corpus in fuzz/corpus/$t"; continue; fi
  if timeout 60 "build-fuzz/replay/$t" "fuzz/corpus/$t" "fuzz/crashes/$t" >"$TMP/$t.log" 2>&1; then
    ok "$t replays $n inputs without a sanitizer report"
  else
    not_ok "$t replay"; grep -a -E 'replay |ERROR|SUMMARY|runtime error' "$TMP/$t.log" | tail -8 | sed 's/^/#   /'
  fi
done
