#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The library allocates only through mem/ (DESIGN.md, memory model point 1): no file in
# src/ outside src/mem/mem_host.c calls the C allocator directly.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
hits=$(grep -rnE '\b(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|strdup|strndup)[[:space:]]*\(' \
       "$root/src" --include='*.c' --include='*.h' | grep -v '^'"$root"'/src/mem/mem_host.c:' \
       | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|//|/\*)' | grep -vE 'mem_(free|alloc|calloc|realloc)|json_block_free' )
if [ -n "$hits" ]; then
  echo "raw allocator calls outside src/mem/mem_host.c:"
  echo "$hits"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
