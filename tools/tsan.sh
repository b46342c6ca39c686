#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The threaded code under ThreadSanitizer: the thread pool, the streaming copier thread
# with the compute that waits on it, and the pipelines that use both (docs/fuzzing.md).
#
#   tools/tsan.sh        builds build-tsan/ (clang, -fsanitize=thread) and runs the tests below
#
# Any data race or lock-order report fails the test that printed it (halt_on_error).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tests=(test_threadpool test_residency test_device_interface test_ops_rows test_pipeline)
{ CC=clang cmake -S "$root" -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=Release -DCANVAS_TSAN=ON -DCANVAS_BENCH=OFF &&
  cmake --build "$root/build-tsan" -j "$(nproc)" --target "${tests[@]}"; } > "$root/build-tsan.log" 2>&1 || {
  tail -20 "$root/build-tsan.log"; echo "tsan: the build failed (whole log: build-tsan.log)"; exit 1; }
pattern="^($(IFS='|'; echo "${tests[*]}"))\$"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir "$root/build-tsan" --output-on-failure -j "$(nproc)" -R "$pattern"
