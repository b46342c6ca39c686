#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cli_help.sh — what the canvas CLI's help texts say, read by the tools that make the man page
# and the bash completion from them (tools/gen_manpage.sh, tools/gen_completion.sh) and by
# their test (tests/test_manpage_completion.sh). Sourced; every function takes the CLI's path.
#
#   cli_commands CLI         the commands of `canvas --help`, one a line
#   cli_summary CLI CMD      that command's one-line description there
#   cli_flags CLI CMD        the options of `canvas CMD --help`, one a line: FLAG or FLAG METAVAR
#   cli_subcommands CLI CMD  words its usage lines put right after `canvas CMD` (debug: case)

# The commands are the indented lines of the "commands:" block, up to the next blank line.
cli_commands() {
    "$1" --help | awk '/^commands:/ { inside = 1; next } inside && /^$/ { exit } inside { print $1 }'
}

cli_summary() {
    "$1" --help | awk -v cmd="$2" '/^commands:/ { inside = 1; next } inside && /^$/ { exit }
        inside && $1 == cmd { sub(/^ *[^ ]+ +/, ""); print }'
}

# Flags come from the option lines (two spaces and a dash) and from the usage lines (some
# flags, such as bench's --image, are only named there). An option line's synopsis is a run of
# flags and metavars that ends at the first other word; a metavar (upper case, digits, WxH,
# FILE[:SCALE], OUT.png, or choices such as 4|8 or fp8|nf4) gives the flags just before it a
# value. The first mention of a flag wins (the usage lines come first).
cli_flags() {
    "$1" "$2" --help | awk '
        function scan(line, in_usage,    n, w, i, word, k, last_comma) {
            gsub(/[][()]/, " ", line); gsub(/\|--/, " --", line); gsub(/\.\.\./, " ", line)
            gsub(/=/, " ", line) # --flag=VALUE
            n = split(line, w, " "); npending = 0; last_comma = 1
            for (i = 1; i <= n; i++) {
                word = w[i]
                if (word ~ /^--?[A-Za-z0-9][A-Za-z0-9-]*,?$/) {
                    if (!last_comma) npending = 0
                    last_comma = word ~ /,$/; sub(/,$/, "", word)
                    if (!(word in value)) { order[++count] = word; value[word] = "" }
                    pending[++npending] = word
                } else if (npending && (word ~ /^[A-Z0-9_:.]+$/ || word ~ /^[A-Z]+x[A-Z]+$/ ||
                                        word ~ /^[A-Z_]+\.[a-z]+$/ || word ~ /^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)+$/)) {
                    for (k = 1; k <= npending; k++) if (value[pending[k]] == "") value[pending[k]] = word
                    npending = 0; last_comma = 1
                } else if (in_usage) {
                    npending = 0; last_comma = 1
                } else return
            }
        }
        /^usage:/ { in_usage = 1 }
        in_usage && /^$/ { in_usage = 0 }
        in_usage { scan($0, 1); next }
        /^  -/ { scan($0, 0) }
        END { for (i = 1; i <= count; i++) print order[i] (value[order[i]] == "" ? "" : " " value[order[i]]) }'
}

cli_subcommands() {
    "$1" "$2" --help | awk -v cmd="$2" '{
        for (i = 1; i < NF - 1; i++)
            if ($i == "canvas" && $(i + 1) == cmd && $(i + 2) ~ /^[a-z]+$/ && !(($(i + 2)) in seen)) {
                seen[$(i + 2)] = 1; print $(i + 2)
            }
    }'
}
