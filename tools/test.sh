#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, twice: a normal (Release) build, then an ASan+UBSan build with
# leak checking. Installs missing Debian packages first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/install-deps.sh
jobs="$(nproc)"
echo "== normal build (build/) =="
bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release
ctest --test-dir build --output-on-failure -j "$jobs"
echo "== ASan + UBSan build (build-asan/) =="
bash tools/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DCANVAS_SANITIZE=ON -DCANVAS_BENCH=OFF
ctest --test-dir build-asan --output-on-failure -j "$jobs"
