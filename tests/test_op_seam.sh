#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The op backend seam (docs/kernels.md, "The op backend"): model code calls ops only. No file
# in src/models/ includes the thread pool, a backend's own header (CPU, CUDA, the table of
# ops_backend_impl.h), or calls the pool.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
hits=$(grep -rnE '#include "(base/threadpool\.h|ops/ops_cpu\.h|ops/ops_cuda\.h|ops/ops_backend_impl\.h|ops/cpu/|ops/cuda/)|\bthread_pool(_[a-z]+)?\b' \
       "$root/src/models" --include='*.c' --include='*.h')
if [ -n "$hits" ]; then
  echo "model code reaching past the op backend:"
  echo "$hits"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
