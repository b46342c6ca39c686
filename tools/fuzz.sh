#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Search for crashing inputs with libFuzzer (docs/fuzzing.md).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]    default: 60 seconds each, every target
#
# Builds build-fuzz/ with clang (libFuzzer + ASan + UBSan, -O2), then runs each target for
# SECONDS over a scratch corpus seeded from its manifest (tests/fuzz/seeds/TARGET.txt) and
# prints one line per target: executions, executions per second, corpus size. A crash
# stops that target: its input is left in build-fuzz/crashes/ and the script exits 1 —
# copy it into tests/fuzz/regress/TARGET/ (and name that folder in the manifest) once the
# bug is fixed, so ctest replays it from then on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"; shift || true
build="$root/build-fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/seeds/*.txt; do targets+=("$(basename "$f" .txt)"); done
fi
# Only the fuzz targets are built: the library instrumented, not every test program.
{ CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCANVAS_FUZZ=ON -DCANVAS_SANITIZE=ON \
    -DCANVAS_BENCH=OFF && cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"; } \
  > "$root/build-fuzz.log" 2>&1 || {
  tail -20 "$root/build-fuzz.log"; echo "fuzz: the build failed (whole log: build-fuzz.log)"; exit 1; }
export CANVAS_TEST_DIR="$root/tests" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
mkdir -p "$build/crashes"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  # Seed the scratch corpus with every file the manifest names (files or folders).
  grep -v '^#' "$root/tests/fuzz/seeds/$t.txt" | while read -r entry; do
    [ -n "$entry" ] && find "$root/tests/$entry" -type f -exec cp -f {} "$corpus/" \;
  done
  log="$build/fuzz_$t.log"
  if "$build/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$build/crashes/$t-" "$corpus" > "$log" 2>&1; then
    result=ok
  else
    result="CRASH (input in build-fuzz/crashes/, log $log)"; status=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  printf 'fuzz_%-15s %10s executions %7s/s  corpus %5s files  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
    "$(ls "$corpus" | wc -l)" "$result"
done
exit $status
