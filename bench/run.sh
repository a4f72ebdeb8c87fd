#!/usr/bin/env bash
# `make bench`: every benchmark, one after the other; figures on stdout and in build/bench/*.txt.
# C micro-benchmarks are bench/*.c, built by the Makefile rule $(BUILD)/bench/%. Scripted benchmarks
# (bench/*.sh) start lookout and, where the issue asks for it, Prometheus 2.42 side by side.
# BENCH_ONLY=regex limits the run to matching steps.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$PWD/lookout} BUILD
mkdir -p "$BUILD/bench"
rc=0
only=${BENCH_ONLY:-.}

step() { # step NAME COMMAND...
  local name=$1; shift
  [[ "$name" =~ $only ]] || return 0
  echo "== $name"
  "$@" 2>&1 | tee "$BUILD/bench/$name.txt"
  if [ "${PIPESTATUS[0]}" -ne 0 ] || grep -q FAILED "$BUILD/bench/$name.txt"; then
    echo "$name: FAILED"; rc=1
  fi
  echo
}

for c in bench/*.c; do
  make -s BUILD="$BUILD" "$BUILD/bench/$(basename "$c" .c)" || { echo "$c: build failed"; rc=1; }
done

step relabel "$BUILD/bench/relabel_bench"
step merge "$BUILD/bench/merge_bench"
step sd_absorb bash bench/sd_absorb.sh
step k8s bash bench/k8s_bench.sh
step sd_latency bash bench/sd_latency.sh
step scrape_path bash bench/scrape_path_bench.sh
step scrape_syscalls bash bench/scrape_syscalls.sh
step fleet bash bench/fleet_bench.sh
step fleet_memory bash bench/fleet_memory.sh
step throughput bash bench/throughput_bench.sh
step memsearch "$BUILD/bench/memsearch_bench"
step store bash bench/store_bench.sh
exit $rc
