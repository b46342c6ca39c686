#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# add_spdx.sh [--check] [ROOT] — the licence line of every source file (docs/install.md).
#   C (.c, .h):                                  /* SPDX-License-Identifier: Apache-2.0 */ first
#   shell, Python, CMake (.sh, .py, .cmake, .cmake.in, CMakeLists.txt):
#                                                # SPDX-License-Identifier: Apache-2.0 first, or
#                                                right after a #! line
# in src/, include/, tests/, tools/, bench/, cmake/ and the top CMakeLists.txt of ROOT (default:
# this repository). Adds the line where it is missing and leaves every other file as it is,
# so it can be run again after a merge. --check changes nothing: it lists the files that lack
# the line and exits 1 when there is one (tests/test_spdx.sh).
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
c_line='/* SPDX-License-Identifier: Apache-2.0 */'
hash_line='# SPDX-License-Identifier: Apache-2.0'

# The files, relative to ROOT, one a line (folders that are absent are skipped).
source_files() {
    local dirs=() dir
    for dir in src include tests tools bench cmake; do [ -d "$root/$dir" ] && dirs+=("$dir"); done
    (cd "$root" && {
        [ -f CMakeLists.txt ] && echo CMakeLists.txt
        [ "${#dirs[@]}" -gt 0 ] && find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' -o -name '*.sh' \
            -o -name '*.py' -o -name '*.cmake' -o -name '*.cmake.in' -o -name CMakeLists.txt \)
    } | LC_ALL=C sort)
}

missing=0
while IFS= read -r file; do
    path="$root/$file"
    case "$file" in
        *.c | *.h) line="$c_line" ;;
        *) line="$hash_line" ;;
    esac
    # where the line belongs: 1, or 2 after a #! line
    at=1
    if [ "$line" = "$hash_line" ] && head -n 1 "$path" | grep -q '^#!'; then at=2; fi
    [ "$(sed -n "${at}p" "$path")" = "$line" ] && continue
    missing=$((missing + 1))
    if [ "$check" = 1 ]; then
        echo "$file"
    elif [ ! -s "$path" ]; then
        echo "$line" >"$path"
    elif [ "$at" = 1 ]; then
        sed -i "1i $line" "$path"
    elif [ "$(wc -l <"$path")" -ge 1 ]; then
        sed -i "1a $line" "$path"
    else
        printf '\n%s\n' "$line" >>"$path" # a #! line without a newline
    fi
done < <(source_files)
if [ "$check" = 1 ] && [ "$missing" -gt 0 ]; then
    echo "$missing file(s) above lack the line '$c_line' / '$hash_line' (bash tools/add_spdx.sh adds it)"
    exit 1
fi
[ "$check" = 1 ] || echo "add_spdx.sh: added the line to $missing file(s)"
