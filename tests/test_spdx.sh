#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file carries its SPDX licence line (tools/add_spdx.sh lists those that do not),
# and the tool finds and fixes a planted tree: it lists exactly the files that lack the line,
# adds it in the right place (after a #! line), and a second run changes nothing.
set -u
source "$(dirname "$0")/cli_lib.sh"
root="$(cd "$tests/.." && pwd)"
tool="$root/tools/add_spdx.sh"

if out="$(bash "$tool" --check "$root" 2>&1)"; then ok; else bad "files without the licence line:"$'\n'"$out"; fi

tree="$work/tree"
mkdir -p "$tree/src/x" "$tree/tools" "$tree/docs"
printf '/* a.c — no line */\nint a;\n' >"$tree/src/x/a.c"
printf '/* SPDX-License-Identifier: Apache-2.0 */\n/* b.h */\n' >"$tree/src/x/b.h"
printf '#!/usr/bin/env bash\necho hi\n' >"$tree/tools/c.sh"
printf '#!/usr/bin/env python3\n# SPDX-License-Identifier: Apache-2.0\n' >"$tree/tools/d.py"
printf 'project(x)\n' >"$tree/CMakeLists.txt"
printf 'not a source file\n' >"$tree/docs/e.md"
listed="$(bash "$tool" --check "$tree" | grep -v 'lack the line' | tr '\n' ' ')"
check "[ '$listed' = 'CMakeLists.txt src/x/a.c tools/c.sh ' ]" "--check listed '$listed', wanted CMakeLists.txt src/x/a.c tools/c.sh"
check "! bash '$tool' --check '$tree' >/dev/null" "--check passed a tree with files lacking the line"
bash "$tool" "$tree" >/dev/null
check "[ \"\$(head -n 1 '$tree/src/x/a.c')\" = '/* SPDX-License-Identifier: Apache-2.0 */' ] &&
       [ \"\$(sed -n 2p '$tree/src/x/a.c')\" = '/* a.c — no line */' ]" "a.c: the line is not first, before the old first line"
check "[ \"\$(sed -n 2p '$tree/tools/c.sh')\" = '# SPDX-License-Identifier: Apache-2.0' ] &&
       [ \"\$(head -n 1 '$tree/tools/c.sh')\" = '#!/usr/bin/env bash' ]" "c.sh: the line is not right after the #! line"
check "[ \"\$(head -n 1 '$tree/CMakeLists.txt')\" = '# SPDX-License-Identifier: Apache-2.0' ]" "CMakeLists.txt: no line"
check "[ \"\$(cat '$tree/docs/e.md')\" = 'not a source file' ]" "a file outside the source kinds was changed"
before="$(cd "$tree" && find . -type f -exec md5sum {} + | sort)"
bash "$tool" "$tree" >/dev/null
check "[ \"\$(cd '$tree' && find . -type f -exec md5sum {} + | sort)\" = '$before' ]" "a second run changed files"
check "bash '$tool' --check '$tree' >/dev/null" "--check fails after the tool ran"
summary
