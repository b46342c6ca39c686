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

summary
