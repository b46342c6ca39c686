#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: a normal (Release) build, the CUDA build where the toolkit is
# installed (its CPU path), an ASan+UBSan build with leak checking,
# a short libFuzzer run of every fuzz target and the threaded tests under ThreadSanitizer
# (both with clang). Installs missing Debian packages first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/install-deps.sh
jobs="$(nproc)"
echo "== normal build (build/) =="
bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release
ctest --test-dir build --output-on-failure -j "$jobs"
# Where the CUDA toolkit is installed (no GPU needed), the CUDA build too, -Werror, and the
# whole suite on it: the CPU path of the same binary a GPU machine runs must stay green
# (docs/cuda.md). About ten minutes on two cores; the GPU parts run from tools/device-check.sh.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== CUDA build (build-cuda/): -DCANVAS_CUDA=ON, the suite on the CPU path =="
  bash tools/build.sh build-cuda -DCMAKE_BUILD_TYPE=Release -DCANVAS_CUDA=ON
  ctest --test-dir build-cuda --output-on-failure -j "$jobs"
fi
echo "== ASan + UBSan build (build-asan/) =="
bash tools/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DCANVAS_SANITIZE=ON -DCANVAS_BENCH=OFF
ctest --test-dir build-asan --output-on-failure -j "$jobs"
echo "== fuzz smoke: libFuzzer, 10 s a target (docs/fuzzing.md) =="
bash tools/fuzz.sh 10
echo "== ThreadSanitizer (docs/fuzzing.md) =="
bash tools/tsan.sh
