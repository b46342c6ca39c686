#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_convert_gguf.sh — `canvas convert ... OUT.gguf --weights TYPE` (cli/convert_gguf.h):
# the tiny Edit-2511 transformer (width 64; the MLP down projections 256 wide) as GGUF in
# several types, from a pipeline folder, a transformer folder and a ComfyUI single file;
# `canvas inspect` (the strict reader) lists the expected tensors per type; bad --weights
# names and refused outputs exit 2 and leave nothing behind.
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tests/golden/models/edit-tiny"

# expect_types FILE TYPE=N ...: exactly these types with these counts (and no other type)
expect_types() {
    local file="$1" want got
    shift
    got="$("$cli" inspect "$file" 2>/dev/null | awk 'NF == 5 && $1 ~ /^(F|BF|Q)[0-9]/ { printf "%s=%s ", $1, $2 }')"
    want="$*"
    if [ "$got" = "$want " ]; then ok; else bad "$file: types '$got', wanted '$want '"; fi
}

# 77 tensors + the zero_cond_t marker. 2 blocks x 14 block matrices: 12 of width 64 (attention,
# MLP in, modulation) and 2 of width 256 (the MLP down projections); the rest F32 as stored.
expect 0 "wrote $work/q8_0.gguf (q8_0)" -- convert "$model" "$work/q8_0.gguf" --weights q8_0
expect_types "$work/q8_0.gguf" F32=50 Q8_0=28
expect 0 "architecture: qwen_image" -- inspect "$work/q8_0.gguf"
expect 0 "__index_timestep_zero__" -- inspect "$work/q8_0.gguf"
expect 0 "wrote" -- convert "$model" "$work/q4_k.gguf" --weights q4_k
expect_types "$work/q4_k.gguf" F32=74 Q4_K=4         # K blocks are 256 wide: the down projections only
expect 0 "wrote" -- convert "$model" "$work/q4_0.gguf" --weights q4_0
expect_types "$work/q4_0.gguf" F32=50 Q4_0=28
expect 0 "wrote" -- convert "$model" "$work/bf16.gguf" --weights bf16
expect_types "$work/bf16.gguf" F32=50 BF16=28
# a shape read back with GGUF's innermost-first dims turned around again: [out, in]
check "'$cli' inspect '$work/q4_k.gguf' | grep -qE '^transformer_blocks\.0\.img_mlp\.net\.2\.weight +Q4_K +\[64, 256\]'" \
    "q4_k: the MLP down projection is not Q4_K [64, 256]"
# smaller than the float32 transformer
src=$(du -cb "$model"/transformer/*.safetensors | tail -1 | cut -f1)
for t in q8_0 q4_0 bf16; do
    dst=$(stat -c %s "$work/$t.gguf")
    check "[ $dst -lt $src ]" "$t: $dst bytes is not smaller than $src"
done

# every other type, from the transformer folder and from a ComfyUI single file
expect 0 "wrote" -- convert "$model" "$work/comfy.safetensors" --weights none
for t in f32 f16 q4_1 q5_0 q5_1 q2_k q3_k q5_k q6_k; do
    T=$(echo "$t" | tr a-z A-Z)
    expect 0 "wrote" -- convert "$model/transformer" "$work/dir-$t.gguf" --weights "$t"
    expect 0 "wrote" -- convert --transformer "$work/comfy.safetensors" "$work/file-$t.gguf" --weights "$t"
    if cmp -s "$work/dir-$t.gguf" "$work/file-$t.gguf"; then ok; else bad "$t: folder and single file give other bytes"; fi
    case "$t" in
    f32) expect_types "$work/dir-$t.gguf" F32=78 ;;
    *_k) expect_types "$work/dir-$t.gguf" F32=74 "$T=4" ;;
        *) expect_types "$work/dir-$t.gguf" F32=50 "$T=28" ;;
    esac
done
# writing again replaces the file
expect 0 "wrote" -- convert "$model" "$work/q8_0.gguf" --weights q8_0
expect_types "$work/q8_0.gguf" F32=50 Q8_0=28

# bad --weights names: usage, nothing written
expect 2 "must be a ggml type" -- convert "$model" "$work/bad.gguf" --weights Q9_0
expect 2 "q4_k" -- convert "$model" "$work/bad.gguf" --weights q8
expect 2 "must be a ggml type" -- convert "$model" "$work/bad.gguf" --weights q8_1
expect 2 "must be a ggml type" -- convert "$model" "$work/bad.gguf" --weights nf4
expect 2 "must be fp8" -- convert "$model" "$work/bad.safetensors" --weights q4_k
# output rules as the other outputs: no folder, no link, not inside the model, folder must exist
mkdir "$work/adir.gguf"
expect 2 "OUT" -- convert "$model" "$work/adir.gguf" --weights q8_0
ln -s "$work/elsewhere.gguf" "$work/link.gguf"
expect 2 "OUT" -- convert "$model" "$work/link.gguf" --weights q8_0
check "[ ! -e '$work/elsewhere.gguf' ]" "wrote through a link"
expect 2 "OUT" -- convert "$model" "$model/transformer/x.gguf" --weights q8_0
check "[ ! -e '$model/transformer/x.gguf' ]" "wrote inside the model"
expect 2 "OUT" -- convert "$model" "$work/no/such/x.gguf" --weights q8_0
# nor anywhere else in the model folder (a copy: a failure here must not harm the golden
# model), with or without --transformer FILE
cp -r "$model" "$work/m2"
vae_file="$work/m2/vae/diffusion_pytorch_model.safetensors"
vae_sum=$(cksum < "$vae_file")
expect 2 "of the model folder" -- convert "$work/m2" "$vae_file" --weights none
expect 2 "of the model folder" -- convert "$work/m2" "$work/m2/vae/x.gguf" --weights q8_0
expect 2 "of the model folder" -- convert "$work/m2" --transformer "$work/q8_0.gguf" "$work/m2/vae/y.safetensors" --weights none
check "[ \"\$(cksum < '$vae_file')\" = '$vae_sum' ] && [ ! -e '$work/m2/vae/x.gguf' ] && [ ! -e '$work/m2/vae/y.safetensors' ]" \
    "convert wrote into the model folder"
rm -rf "$work/m2"
# --shard-size is for a folder; an upper-case .GGUF is a GGUF file too
expect 2 "--shard-size is for an OUT_DIR folder" -- convert "$model" "$work/s.gguf" --weights q8_0 --shard-size 1G
expect 0 "wrote" -- convert "$model" "$work/upper.GGUF" --weights q8_0
rm -f "$work/upper.GGUF"
# an already quantised source: refused, no file and no temporary file left
expect 0 "wrote" -- convert "$model" "$work/fp8.safetensors" --weights fp8
expect 1 "already quantised" -- convert --transformer "$work/fp8.safetensors" "$work/again.gguf" --weights q8_0
check "[ ! -e '$work/bad.gguf' ] && [ ! -e '$work/bad.safetensors' ] && [ ! -e '$work/again.gguf' ]" "a refused convert left output"
check "[ -z \"\$(ls -A '$work' | grep '^\\.')\" ]" "a temporary file was left: $(ls -A "$work" | grep '^\.' | tr '\n' ' ')"
summary
