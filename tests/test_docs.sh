#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_docs.sh — the documentation tells the truth:
#   1. every command line quoted in a code block of README.md and docs/*.md runs and exits 0,
#      from a scratch folder that looks like the repository root (tests/, tools/, bench/,
#      and build/ holding this build's programs and the demo model). A command line is a
#      code line that starts with a program (canvas, ./build/..., build/..., bash, python3,
#      cmake, ctest, VAR=value ...) or with "$ ". Not run, by rule:
#        - synopses (a "[" or "<...>" or an ALL-CAPS placeholder such as DIR or OUT.png),
#        - benchmarks (build/bench_*, bench/*.py): timed runs of minutes,
#        - lines marked "# needs real weights" or "# ... not run by the docs check".
#   2. no page names a private build folder (build-*/ other than build-asan/, build-fuzz/ and
#      build-tsan/, which tools/test.sh, tools/fuzz.sh and tools/tsan.sh make) or a file
#      outside the repository (../shared, the spec/*.md files kept beside it).
set -u
source "$(dirname "$0")/cli_lib.sh"
root="$(cd "$tests/.." && pwd)"
build="$(cd "$(dirname "$cli")" && pwd)"
pages=("$root/README.md" "$root"/docs/*.md)

# --- 2: no private build folder, nothing outside the repository
for page in "${pages[@]}"; do
    name="${page#"$root"/}"
    hits="$(grep -nE '(^|[^A-Za-z0-9_.-])build-[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*/' "$page" | grep -vE 'build-(asan|fuzz|tsan)/' || true)"
    check "[ -z \"\$hits\" ]" "$name names a private build folder: $hits"
    hits="$(grep -nE '\.\./shared|(^|[`( ])spec/[a-z0-9-]+\.md' "$page" || true)"
    check "[ -z \"\$hits\" ]" "$name points outside the repository: $hits"
done

# --- 1: the command lines
# One line per command: "page:line<TAB>command" (continuation lines joined).
python3 - "$root" "${pages[@]}" >"$work/commands.txt" <<'PY'
import re, sys
root, pages = sys.argv[1], sys.argv[2:]
program = re.compile(r'^((\w+=\S+\s+)*)(\./)?(build/\S+|canvas|bash|python3|/usr/bin/python3|cmake|ctest)(\s|$)')
for page in pages:
    lines = open(page, encoding='utf-8').read().split('\n')
    fenced, i = False, 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith('```'):
            fenced = not fenced
            i += 1
            continue
        indented = line.startswith('    ') and (i == 0 or not lines[i - 1].strip() or lines[i - 1].startswith('    '))
        if not (fenced or indented):
            i += 1
            continue
        text, j = line.strip(), i
        while text.endswith('\\') and j + 1 < len(lines):
            j += 1
            text = text[:-1].rstrip() + ' ' + lines[j].strip()
        if text.startswith('$ ') or program.match(text):
            print(f"{page[len(root) + 1:]}:{i + 1}\t{text}")
        i = j + 1
PY
check "[ -s '$work/commands.txt' ]" "no command lines found in the docs"

# The scratch root: the repository's inputs by link, build/ with this build's programs.
run="$work/root"
mkdir -p "$run/build" "$work/bin"
for d in tests tools bench; do ln -s "$root/$d" "$run/$d"; done
for f in "$build"/*; do [ -f "$f" ] && [ -x "$f" ] && ln -s "$f" "$run/build/$(basename "$f")"; done
ln -s "$cli" "$work/bin/canvas"
if ! bash "$root/tools/make_demo_model.sh" "$build" "$run/build/demo-model" >"$work/make.log" 2>&1; then
    bad "make_demo_model.sh failed: $(cat "$work/make.log")"
fi

ran=0 skipped=0
while IFS=$'\t' read -r where command; do
    command="${command#\$ }"
    bare="$(sed -E 's/^([A-Za-z_][A-Za-z0-9_]*=[^ ]+ +)*//' <<<"$command")"
    code="${bare%%#*}"
    if grep -qE 'needs real weights|not run by the docs check' <<<"$command" ||
        grep -qE '^(\./)?(build/bench_|(/usr/bin/)?python3 bench/)' <<<"$bare" ||
        grep -qE '\[|<[a-z]|(^|[ =/])[A-Z][A-Z_]{2,}([ .]|$)' <<<"$code"; then
        skipped=$((skipped + 1))
        continue
    fi
    ran=$((ran + 1))
    start=$SECONDS
    out="$(cd "$run" && PATH="$work/bin:$PATH" timeout 120 bash -c "$command" 2>&1)"
    rc=$?
    [ -n "${CANVAS_DOCS_VERBOSE:-}" ] && echo "$((SECONDS - start)) s  $where"
    if [ "$rc" -ne 0 ]; then bad "$where: exit $rc: $command
$(tail -5 <<<"$out")"; else ok; fi
done <"$work/commands.txt"
echo "docs: $ran command lines run, $skipped synopses, benchmarks or marked lines not run"
check "[ $ran -ge 8 ]" "only $ran command lines ran: the extraction is broken"
summary
