#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cli_attacks.sh — what an attacker's pass over the CLI found, each case with the
# behaviour docs/cli.md promises: a refusal before any work, one clear line naming the flag
# or file and field, the documented exit code, and no output left behind.
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE="$work/probe.json" HOME="$work/home" CANVAS_TIMINGS_CACHE=off
unset XDG_CONFIG_HOME XDG_CACHE_HOME CANVAS_THREADS
mkdir -p "$HOME"
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
small=(edit --model "$model" --image "$case_dir/image0.png" --prompt-embeds "$case_dir/inputs.safetensors"
    --vae-area 4096 --steps 2)

# --- --ram below the host plan's minimum: refused before the VAE encode, saying the minimum ----
for mib in 2 3; do
    ram=${mib}M
    out="$("$cli" "${small[@]}" --ram $ram -o "$work/ram.png" 2>&1)"; rc=$?
    check "[ $rc -eq 3 ] && [ \$(wc -l <<<\"\$out\") -eq 1 ] &&
        grep -qE '^canvas edit: error: out of memory: no plan fits without a device and $mib\\.00 MiB of host RAM \\(--ram\\); raise --ram to at least [0-9.]+ MiB' <<<\"\$out\"" \
        "--ram $ram: exit $rc: $out"
    check "! grep -q 'vae-encode\\|fallback' <<<\"\$out\"" "--ram $ram reached a phase: $out"
    check "[ ! -e '$work/ram.png' ]" "--ram $ram wrote an output"
done
# the minimum it names is enough
least="$("$cli" "${small[@]}" --ram 2M -o "$work/ram.png" 2>&1 | sed -n 's/.*raise --ram to at least \([0-9.]*\) MiB.*/\1/p')"
expect 0 "wrote $work/least.png" -- "${small[@]}" --ram "$(awk -v m="$least" 'BEGIN { printf "%d", (m + 0.01) * 1048576 }')" \
    -o "$work/least.png"
# on a device the same words (the plan was already checked there before the encode)
expect 3 "of host RAM (--ram); raise --ram to at least" -- "${small[@]}" --vram 8M --ram 2M -o "$work/ram.png"

summary
