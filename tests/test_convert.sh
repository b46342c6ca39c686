#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_convert.sh — `canvas convert` end to end: for every format, the converted tiny
# transformer loads and `canvas debug case` on it writes the same bytes (output and every
# intermediate) as quantise-on-load (`--weights`) on the original; a pipeline folder keeps
# its other components; shards with an index; the files shrink; bad input is refused and
# leaves nothing behind.
set -u
source "$(dirname "$0")/cli_lib.sh"
golden="$tests/golden"

# A golden root of our own whose models/dit-tiny is the converted one.
for fmt in fp8 fp8-channel fp8-e5m2 nf4 q8; do
    root="$work/$fmt"
    mkdir -p "$root/cases" "$root/models/dit-tiny"
    for c in dit-edit-basic dit-padded-text; do
        mkdir -p "$root/cases/$c"
        cp "$golden/cases/$c/case.json" "$golden/cases/$c/inputs.safetensors" "$root/cases/$c/"
    done
    shard=""
    [ "$fmt" = nf4 ] && shard="--shard-size 100K"
    expect 0 "wrote" -- convert "$golden/models/dit-tiny/transformer" "$root/models/dit-tiny/transformer" --weights "$fmt" $shard
    for c in dit-edit-basic dit-padded-text; do
        expect 0 "" -- debug case "$golden/cases/$c" --weights "$fmt" --out "$work/$fmt-$c-onload.safetensors"
        expect 0 "" -- debug case "$root/cases/$c" --out "$work/$fmt-$c-converted.safetensors"
        if cmp -s "$work/$fmt-$c-onload.safetensors" "$work/$fmt-$c-converted.safetensors"; then ok
        else bad "$fmt $c: converted model and quantise-on-load differ"; fi
    done
    # smaller than the float32 original
    src=$(du -sb "$golden/models/dit-tiny/transformer" | cut -f1)
    dst=$(du -sb "$root/models/dit-tiny/transformer" | cut -f1)
    if [ "$dst" -lt "$src" ]; then ok; else bad "$fmt: $dst bytes is not smaller than $src"; fi
    expect 0 "" -- inspect "$root/models/dit-tiny/transformer"
done
# nf4 was written in shards with an index; the bitsandbytes layout is there
ls "$work/nf4/models/dit-tiny/transformer"/diffusion_pytorch_model-00001-of-*.safetensors >/dev/null 2>&1 && ok || bad "nf4: no shards"
[ -f "$work/nf4/models/dit-tiny/transformer/diffusion_pytorch_model.safetensors.index.json" ] && ok || bad "nf4: no index"
grep -q "quant_state.bitsandbytes__nf4" "$work/nf4/models/dit-tiny/transformer/diffusion_pytorch_model.safetensors.index.json" && ok || bad "nf4: no bitsandbytes state in the index"

# a pipeline folder: model_index.json, vae and scheduler copied, transformer converted
expect 0 "wrote" -- convert "$golden/models/edit-tiny" "$work/edit-q8" --weights q8
[ -f "$work/edit-q8/model_index.json" ] && [ -f "$work/edit-q8/vae/config.json" ] && [ -d "$work/edit-q8/scheduler" ] && ok || bad "pipeline parts missing"
cmp -s "$golden/models/edit-tiny/vae/diffusion_pytorch_model.safetensors" "$work/edit-q8/vae/diffusion_pytorch_model.safetensors" && ok || bad "vae not copied as is"
expect 0 "" -- inspect "$work/edit-q8"

# refusals: nothing written
expect 2 "already exists" -- convert "$golden/models/edit-tiny" "$work/edit-q8" --weights q8
expect 1 "already quantised" -- convert "$work/fp8/models/dit-tiny/transformer" "$work/again" --weights nf4
[ ! -e "$work/again" ] && [ ! -e "$work/again.partial" ] && ok || bad "a failed convert left files"
expect 2 "--weights" -- convert "$golden/models/edit-tiny" "$work/x" --weights int3
expect 2 "missing --weights" -- convert "$golden/models/edit-tiny" "$work/x"
expect 4 "" -- convert "$work/nothing-here" "$work/y" --weights nf4
[ ! -e "$work/y" ] && ok || bad "a failed convert left $work/y"

# out of memory at the N-th allocation of a convert (sharded nf4 from a sharded folder: the
# index, both shards, the quantiser, every output shard, the index written, the rename): every
# failing run exits 3 with one line saying so and leaves nothing (no OUT, no temporary
# folder); the run that completes writes what an undisturbed convert writes. Transient (N)
# at every allocation up to 100, every 53rd (every 151st under the sanitizers) and every one
# of the last 150 before the first run that completes; persistent (N+) every 211th: ~500
# runs of ~11,000 allocations each (most of them jansson's, parsing the headers).
mkdir -p "$work/oom" && cd "$work/oom"
"$cli" convert "$golden/models/dit-tiny/transformer" reference --weights nf4 --shard-size 100K >/dev/null 2>&1
stride=53
[ "${CANVAS_TEST_SANITIZED:-0}" = 1 ] && stride=151
oom_run() { # oom_run SPEC: one convert failing as SPEC says; 0 when it completed
    rm -rf out
    CANVAS_FAIL_ALLOC="$1" "$cli" convert "$golden/models/dit-tiny/transformer" out --weights nf4 --shard-size 100K \
        >/dev/null 2>err
    local rc=$?
    runs=$((runs + 1))
    if [ $rc = 0 ]; then
        diff -r reference out >/dev/null || bad "CANVAS_FAIL_ALLOC=$1: the completed convert differs from an undisturbed one"
        return 0
    fi
    [ $rc = 3 ] && [ "$(wc -l <err)" = 1 ] && grep -q "out of memory" err ||
        bad "CANVAS_FAIL_ALLOC=$1: exit $rc, stderr: $(head -c 300 err)"
    [ -z "$(ls -A | grep -vx -e reference -e err)" ] || bad "CANVAS_FAIL_ALLOC=$1 left: $(ls -A | tr '\n' ' ')"
    return 1
}
runs=0
completed=0
for n in $(seq 1 100); do oom_run $n && { completed=$n; break; }; done
n=100
while [ $completed = 0 ] && [ $n -lt 100000 ]; do
    n=$((n + stride))
    oom_run $n && completed=$n
done
# the last allocations before it, in order (the stride overshot the first completing N)
for n in $(seq $((completed > stride + 150 ? completed - stride - 150 : 1)) $((completed - 1))); do
    oom_run $n && { completed=$n; break; }
done
for n in $(seq 1 211 "$completed"); do oom_run "$n+"; done
echo "convert: $runs runs, the first of $completed allocations to complete"
[ $completed -gt 1000 ] && ok || bad "the convert sweep never completed (or completed at $completed)"
cd "$tests"

summary
