#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_single_file_cli.sh — --transformer / --text-encoder / --vae on the command line: the
# tiny model's component files run edit, generate, plan and inspect without a model folder
# and on top of one; a file holding no such component is exit 4 naming what it holds, a
# truncated GGUF file exit 4, a missing file exit 4, a missing transformer or VAE
# exit 2, a component file is never overwritten by -o; convert writes ComfyUI-style files
# that compute what the folders do. (The outputs from files built from the folders being
# the folders', byte for byte, is test_single_file.c's.)
set -u
source "$(dirname "$0")/cli_lib.sh"
dit="$tests/golden/models/dit-tiny-bf16/transformer/diffusion_pytorch_model.safetensors"
vae="$tests/golden/models/edit-tiny/vae/diffusion_pytorch_model.safetensors"
lora="$tests/golden/cases/lora-kohya/lora0-kohya.safetensors"
case_dir="$tests/golden/cases/edit-cfg"
small=(--prompt-embeds "$case_dir/inputs.safetensors" --steps 2 --vae-area 4096)

# --- the files alone, and on top of a folder
expect 0 "wrote $work/a.png (64x64, 2 steps" -- edit --transformer "$dit" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/a.png"
check "grep -qa 'diffusion_pytorch_model.safetensors' '$work/a.png'" "the PNG does not name the transformer file as the model"
expect 0 "wrote $work/b.png" -- edit --model "$tests/golden/models/edit-tiny" --transformer "$dit" --image "$case_dir/image0.png" "${small[@]}" -o "$work/b.png"
expect 0 "wrote $work/g.png (64x64" -- generate --transformer "$dit" --vae "$vae" --prompt-embeds "$case_dir/inputs.safetensors" --steps 2 --width 64 --height 64 -o "$work/g.png"
expect 0 "chosen: full" -- plan --transformer "$dit" --vae "$vae" --size 64x64 --steps 2
expect 0 "a single file (BF16), checked against the architecture its tensors imply" -- inspect --transformer "$dit" --vae "$vae"
expect 0 '"weights": "single file"' -- inspect --vae "$vae" --json

# --- usage: a transformer or a VAE missing, both PATH and files, -o over a component file
expect 2 "missing --model DIR (or --transformer FILE and --vae FILE)" -- edit --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/u.png"
expect 2 "--transformer needs a FILE" -- edit --vae "$vae" --transformer
expect 2 "give PATH or the component files, not both" -- inspect "$tests/golden/models/edit-tiny" --vae "$vae"
cp "$dit" "$work/dit.safetensors"
before="$(cksum < "$work/dit.safetensors")"
expect 2 "refusing to overwrite an input" -- edit --transformer "$work/dit.safetensors" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/dit.safetensors"
check "[ \"\$(cksum < '$work/dit.safetensors')\" = '$before' ]" "the transformer file changed"

# --- bad files: exit 4 saying what the file holds; no output left
expect 4 "not a Qwen-Image transformer file" -- edit --transformer "$lora" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/bad.png"
check "[ ! -e '$work/bad.png' ]" "an output was written for a bad transformer file"
expect 4 "it looks like: vae" -- edit --transformer "$vae" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/bad.png"
expect 4 "not a Qwen-Image vae file" -- plan --transformer "$dit" --vae "$dit" --size 64x64
expect 4 "not a Qwen-Image text encoder file" -- inspect --text-encoder "$dit"
expect 4 "$work/none.safetensors: not a file" -- edit --transformer "$work/none.safetensors" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/bad.png"
printf 'GGUF\003\000\000\000' > "$work/q4.gguf"
expect 4 "shorter than the 24-byte GGUF header" -- edit --transformer "$work/q4.gguf" --vae "$vae" --image "$case_dir/image0.png" "${small[@]}" -o "$work/bad.png"
check "[ ! -e '$work/bad.png' ]" "an output was written for a bad file"

# --- convert: to a ComfyUI-style file and back. Its scaled fp8 computes what the converted
# folder's fp8 does, byte for byte (lossless WebP: no metadata that names the model); the
# repacked file (none) what the float folder does.
model="$tests/golden/models/edit-tiny"
run=(--image "$case_dir/image0.png" "${small[@]}")
expect 0 "wrote $work/fp8.safetensors (fp8)" -- convert "$model" "$work/fp8.safetensors" --weights fp8
expect 0 "wrote $work/fp8dir (fp8)" -- convert "$model" "$work/fp8dir" --weights fp8
expect 0 "wrote $work/none.safetensors (none)" -- convert "$model" "$work/none.safetensors" --weights none
expect 0 "zero_cond_t true (Edit-2511)" -- inspect --transformer "$work/fp8.safetensors"
expect 0 "" -- edit --model "$work/fp8dir" "${run[@]}" -o "$work/fp8_folder.webp"
expect 0 "" -- edit --model "$model" --transformer "$work/fp8.safetensors" "${run[@]}" -o "$work/fp8_file.webp"
expect 0 "" -- edit --model "$model" "${run[@]}" -o "$work/float_folder.webp"
expect 0 "" -- edit --model "$model" --transformer "$work/none.safetensors" "${run[@]}" -o "$work/float_file.webp"
check "cmp -s '$work/fp8_folder.webp' '$work/fp8_file.webp'" "the fp8 file and the fp8 folder gave different images"
check "cmp -s '$work/float_folder.webp' '$work/float_file.webp'" "the repacked file and the folder gave different images"
check "! cmp -s '$work/fp8_file.webp' '$work/float_file.webp'" "fp8 and float gave the same image: nothing was quantised"
expect 0 "wrote $work/tdir (q8)" -- convert --transformer "$dit" "$work/tdir" --weights q8
check "grep -q '\"num_layers\": 2' '$work/tdir/config.json'" "the config.json written from the file's tensors lacks num_layers 2"
expect 0 "wrote $work/pdir (nf4)" -- convert "$model" --transformer "$dit" "$work/pdir" --weights nf4
check "[ -f '$work/pdir/vae/config.json' ] && [ -f '$work/pdir/transformer/config.json' ]" "the pipeline was not copied around the file's transformer"
expect 1 "is already quantised" -- convert --transformer "$work/fp8.safetensors" "$work/again" --weights fp8
expect 2 "a ComfyUI file holds fp8 with one scale per tensor" -- convert "$model" "$work/c.safetensors" --weights nf4
expect 2 "--weights none only repacks into one file" -- convert "$model" "$work/cdir" --weights none
expect 2 "--text-encoder and --vae are not converted" -- convert "$model" "$work/cdir" --vae "$vae" --weights fp8
check "[ ! -e '$work/c.safetensors' ] && [ ! -e '$work/cdir' ] && [ ! -e '$work/again' ]" "a refused convert left output"

# --- a prompt needs a text encoder and a tokenizer: said, exit 4
expect 4 "--text-encoder" -- edit --transformer "$dit" --vae "$vae" --image "$case_dir/image0.png" --prompt "a boat" --steps 2 --vae-area 4096 -o "$work/p.png"
summary
