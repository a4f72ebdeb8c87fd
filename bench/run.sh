#!/usr/bin/env bash
# make bench: every benchmark. Env is passed through (TARGETS, DURATION, ... for scrape_bench.sh).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for b in merge_bench relabel_bench; do
  [ -f "bench/$b.c" ] && make -s "$BUILD/bench/$b" && "$BUILD/bench/$b"
done
bench/scrape_bench.sh
