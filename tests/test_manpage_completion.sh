#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man page and the bash completion the build made (tools/gen_manpage.sh,
# tools/gen_completion.sh) agree with the CLI's help texts. The flags are read from the
# help a second, plainer way here (every `--flag` / `-x` that starts an option line), so a
# flag the generators' parser misses fails this test:
#   - the completion's real function, driven as bash drives it, offers every command, every
#     flag of each command's help (and nothing that help does not name), debug's `case`;
#   - the man page has a section for every command naming each of its flags, and groff
#     renders it without a warning.
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$(cd "$(dirname "$cli")" && pwd)"
completion="$build/canvas.bash-completion"
manpage="$build/canvas.1"
check "[ -s '$completion' ] && [ -s '$manpage' ]" "the build made no man page or completion in $build"

# complete WORDS...: what _canvas offers for the last word, one a line
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _canvas
    printf '%s\n' "${COMPREPLY[@]}"
}
# shellcheck disable=SC1090
source "$completion"

commands="$("$cli" --help | awk '/^commands:/ { inside = 1; next } inside && /^$/ { exit } inside { print $1 }')"
check "[ \"\$(wc -w <<<'$commands')\" -ge 8 ]" "canvas --help lists fewer than 8 commands: $commands"
offered="$(complete_words canvas '')"
for cmd in $commands; do
    check "grep -qx -- '$cmd' <<<'$offered'" "completion does not offer the command $cmd"
done
check "[ \"\$(complete_words canvas ed)\" = edit ]" "'canvas ed<TAB>' does not complete to edit"

rendered="$(LC_ALL=C MANWIDTH=200 man -l "$manpage" 2>/dev/null)"
check "[ -z \"\$(groff -man -ww -z '$manpage' 2>&1)\" ]" "groff warns about $manpage"
for cmd in $commands; do
    help="$("$cli" "$cmd" --help)"
    # every flag that starts an option line, and every --flag anywhere in the help
    documented="$(grep -oE '^  (-[A-Za-z], )?--?[A-Za-z0-9][A-Za-z0-9-]*' <<<"$help" | tr ', ' '\n\n' | grep . | sort -u)"
    mentioned="$(grep -oE -- '(^|[ [(|])--?[a-z][a-z0-9-]*' <<<"$help" | grep -oE -- '--?[a-z][a-z0-9-]*' | sort -u)"
    offered="$(complete_words canvas "$cmd" - | sort -u)"
    check "[ -n '$documented' ]" "canvas $cmd --help has no option lines"
    for flag in $documented; do
        check "grep -qx -- '$flag' <<<'$offered'" "completion of canvas $cmd does not offer $flag"
    done
    for flag in $offered; do
        check "grep -qx -- '$flag' <<<'$mentioned'" "completion of canvas $cmd offers $flag, which its help does not name"
    done
    section="$(awk -v head="canvas $cmd" '$0 ~ "^   " head "$" { on = 1; next } on && /^   canvas / { exit } on' <<<"$rendered")"
    check "[ -n \"\$section\" ]" "the man page has no section 'canvas $cmd'"
    for flag in $documented; do
        check "grep -qe '$flag' <<<\"\$section\"" "the man page's section canvas $cmd does not name $flag"
    done
done
check "[ \"\$(complete_words canvas debug '')\" = case ]" "'canvas debug <TAB>' does not offer case"
check "[ \"\$(complete_words canvas edit --lightning '' | tr '\n' ' ')\" = '4 8 ' ]" "--lightning does not offer 4 and 8"
mkdir -p "$work/models/a" && touch "$work/models/file"
check "[ \"\$(complete_words canvas edit --model '$work/models/' | tr '\n' ' ')\" = '$work/models/a ' ]" \
      "--model does not complete folders only"
summary
