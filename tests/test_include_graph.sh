#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layers of src/ include only downwards (docs/architecture.md). Bottom to top:
#   base < mem < tensor < io < text < ops < models < plan < pipeline < api < server < cli
# A file in src/LAYER/ may include "canvas.h" (the public header), its own layer and the
# layers below it; every other #include "LAYER/..." is a back-arrow, listed as
#   src/FILE:LINE: FROM -> TO (#include "...")
# A folder of src/ that is not in the list fails too, so a new layer must be placed.
#
#   test_include_graph.sh            check src/, then check that the checker catches a
#                                    planted back-arrow (so this test can fail)
#   test_include_graph.sh --check D  check the tree D (a folder holding src/) only
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
layers=(base mem tensor io text ops models plan pipeline api server cli)

rank_of() { # the position of a layer in the list, or nothing
  local i
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && echo "$i" && return; done
}

# Print every violation under $1/src; exit status 1 when there is one.
check_tree() {
  local tree="$1" bad=0 dir from to file line target from_rank to_rank
  for dir in "$tree"/src/*/; do
    from="$(basename "$dir")"
    if [ -z "$(rank_of "$from")" ]; then
      echo "src/$from/: not a known layer (add it to tests/test_include_graph.sh and docs/architecture.md)"
      bad=1
    fi
  done
  while IFS=: read -r file line target; do
    file="${file#"$tree"/}"
    from="$(echo "$file" | cut -d/ -f2)"
    to="${target%%/*}"
    [ "$target" = "canvas.h" ] && continue
    from_rank="$(rank_of "$from")"
    to_rank="$(rank_of "$to")"
    [ -z "$from_rank" ] && continue # reported above
    if [ "$to" = "$target" ] || [ -z "$to_rank" ]; then
      echo "$file:$line: $from -> ? (#include \"$target\" names no layer)"
      bad=1
    elif [ "$to_rank" -gt "$from_rank" ]; then
      echo "$file:$line: $from -> $to (#include \"$target\")"
      bad=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$tree/src" --include='*.c' --include='*.h' |
           sed -E 's/^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2:\3/' | sort -t: -k1,1 -k2,2n)
  return $bad
}

if [ "${1:-}" = "--check" ]; then
  check_tree "$2"
  exit $?
fi

passed=0 failed=0
if out="$(check_tree "$root")"; then
  passed=$((passed + 1))
else
  echo "include graph: back-arrows in src/:"
  echo "$out"
  failed=$((failed + 1))
fi

# Self-check: a tree with one allowed include, one back-arrow, one include that names no
# layer and one unknown folder must give exactly those three lines and fail.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/base" "$tmp/src/ops/cpu" "$tmp/src/gadgets"
printf '#include "base/status.h"\n#include "canvas.h"\n\n#include "mem/mem.h"\n' >"$tmp/src/base/a.c"
printf '/* x */\n  #  include "tensor/dtype.h"\n#include "ops/ops.h"\n#include "simd.h"\n' >"$tmp/src/ops/cpu/b.h"
expected='src/gadgets/: not a known layer (add it to tests/test_include_graph.sh and docs/architecture.md)
src/base/a.c:4: base -> mem (#include "mem/mem.h")
src/ops/cpu/b.h:4: ops -> ? (#include "simd.h" names no layer)'
if got="$(check_tree "$tmp")"; then
  echo "self-check: the planted back-arrows passed"
  failed=$((failed + 1))
elif [ "$got" != "$expected" ]; then
  echo "self-check: expected"
  echo "$expected"
  echo "got"
  echo "$got"
  failed=$((failed + 1))
else
  passed=$((passed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
