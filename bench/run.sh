#!/usr/bin/env bash
# `make bench`: (1) the relabel micro-benchmark when bench/relabel_bench.c exists; (2) the SD absorption
# benchmark against Prometheus 2.42 (bench/sd_absorb.sh). Results go to stdout and to build/bench/.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$PWD/lookout}
mkdir -p "$BUILD/bench"
rc=0

if [ -f bench/relabel_bench.c ]; then
  echo "== relabel micro-benchmark (bench/relabel_bench.c)"
  PKGS="yaml-0.1 jansson libmicrohttpd libpcre2-8 libcurl libcrypto"
  # shellcheck disable=SC2046
  if make -s BUILD="$BUILD" "$BUILD/liblookout.a" &&
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Isrc -pthread $(pkg-config --cflags $PKGS) \
      -o "$BUILD/bench/relabel_bench" bench/relabel_bench.c "$BUILD/liblookout.a" \
      $(pkg-config --libs $PKGS) -pthread -lm; then
    "$BUILD/bench/relabel_bench" | tee "$BUILD/bench/relabel.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  else
    echo "relabel_bench: build failed"; rc=1
  fi
  echo
fi

echo "== SD absorption vs Prometheus 2.42 (bench/sd_absorb.sh)"
bash bench/sd_absorb.sh | tee "$BUILD/bench/sd_absorb.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
grep -q FAILED "$BUILD/bench/sd_absorb.txt" && rc=1
echo "== SD latency and Consul CPU (bench/sd_latency.sh)"
bash bench/sd_latency.sh | tee "$BUILD/bench/sd_latency.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
grep -q FAILED "$BUILD/bench/sd_latency.txt" && rc=1
exit $rc
