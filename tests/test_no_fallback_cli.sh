#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_no_fallback_cli.sh — --no-fallback ends a run at its first out-of-memory (exit 3, one
# line, no output), the VAE's own retries included: a whole VAE pass that runs out of memory
# is redone tiled only when fallbacks are allowed. An injected failure of the N-th
# activations allocation (CANVAS_FAIL_ALLOC=N:activations, mem/mem_fault.c) finds the pass:
# the first N after which canvas edit says "VAE encode ran out of memory: tiled instead".
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
# a 384x384 reference: more than one 256-pixel VAE tile, so a whole encode can be tiled
args=(edit --model "$model" --image "$case_dir/image0.png" --prompt-embeds "$case_dir/inputs.safetensors" --steps 2
    --vae-area 147456 --width 64 --height 64)
n=""
for i in $(seq 1 40); do
    if CANVAS_FAIL_ALLOC=$i:activations "$cli" "${args[@]}" -o "$work/with.png" 2>"$work/with.err" &&
        grep -q "fallback: VAE encode ran out of memory: tiled instead" "$work/with.err"; then
        n=$i
        break
    fi
done
check "[ -n '$n' ]" "no injected failure among the first 40 activations allocations made the VAE encode tile"
if [ -n "$n" ]; then
    check "[ -s '$work/with.png' ]" "the run that tiled its VAE encode wrote nothing"
    CANVAS_FAIL_ALLOC=$n:activations "$cli" "${args[@]}" --no-fallback -o "$work/without.png" 2>"$work/without.err"
    rc=$?
    check "[ $rc = 3 ]" "--no-fallback with activations allocation $n failing: exit $rc, wanted 3: $(cat "$work/without.err")"
    check "! grep -q fallback '$work/without.err' && grep -q 'out of memory' '$work/without.err'" \
        "--no-fallback still fell back, or did not say out of memory: $(cat "$work/without.err")"
    check "[ \"\$(grep -vc '^canvas edit: plan' '$work/without.err')\" = 1 ]" \
        "--no-fallback: more than one line besides the plan: $(cat "$work/without.err")"
    check "[ ! -e '$work/without.png' ]" "--no-fallback: an output was written after the out-of-memory"
fi
summary
