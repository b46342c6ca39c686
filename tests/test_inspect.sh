#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_inspect.sh — `canvas inspect` end to end: the real Qwen-Image-Edit-2511 configs
# (weights absent), the golden tiny pipeline, single files, --json values, and the exit
# codes for broken input (4) and usage errors (2).
set -u
source "$(dirname "$0")/cli_lib.sh"
real="$tests/real-configs/qwen-image-edit-2511"
tiny="$tests/golden/models/edit-tiny"

# json_is FILE PYTHON_EXPRESSION EXPECTED: the expression over j (the parsed JSON)
json_is() {
    local got
    got="$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(($2))" "$1" 2>&1)"
    if [ "$got" = "$3" ]; then ok; else bad "json $2 = '$got', wanted '$3'"; fi
}

# --- the real model from its configs alone ---------------------------------------------
expect 0 "20,430,401,088" -- inspect "$real"
expect 0 "339,831,296" -- inspect "$real"
expect 0 "blocks 0-59 (each)" -- inspect "$real"
expect 0 "126,892,531" -- inspect "$real"
expect 0 "8,292,166,656" -- inspect "$real"
expect 0 "7,747,169,280" -- inspect "$real"
expect 0 "676,550,144" -- inspect "$real"
expect 0 "weights absent" -- inspect "$real"
expect 0 "tokenizer     Qwen2Tokenizer: present, not inspected" -- inspect "$real"
expect 0 "shift_terminal 0.02" -- inspect "$real"
expect 0 "40.86 GB" -- inspect "$real/transformer"

"$cli" inspect "$real" --json >"$work/real.json" 2>"$work/err" && ok || bad "inspect --json real: $(cat "$work/err")"
comp='{c["name"]: c for c in j["components"]}'
json_is "$work/real.json" "j['kind'], j['pipeline_class']" "('pipeline', 'QwenImageEditPlusPipeline')"
json_is "$work/real.json" "$comp['transformer']['params'], $comp['transformer']['tensors']" "(20430401088, 1933)"
json_is "$work/real.json" "$comp['transformer']['weights'], $comp['transformer']['stored_bytes']" "('absent', None)"
json_is "$work/real.json" "len($comp['transformer']['blocks']), set(b['params'] for b in $comp['transformer']['blocks'])" "(60, {339831296})"
json_is "$work/real.json" "$comp['transformer']['bytes_as']['bf16']" "40860802176"
json_is "$work/real.json" "$comp['vae']['params'], $comp['vae']['tensors']" "(126892531, 194)"
json_is "$work/real.json" "$comp['text_encoder']['params']" "8292166656"
json_is "$work/real.json" "[(p['label'], p['params']) for p in $comp['text_encoder']['parts'][:2]]" "[('used for encoding', 7747169280), ('vision tower', 676550144)]"
json_is "$work/real.json" "$comp['scheduler']['state'], $comp['tokenizer']['state']" "('config_only', 'listed')"
json_is "$work/real.json" "j['total']['params']" "$((20430401088 + 126892531 + 8292166656))"

# --- the golden tiny pipeline, weights present -----------------------------------------
expect 0 "338,272" -- inspect "$tiny"
expect 0 "668,043" -- inspect "$tiny"
expect 0 "2 weight files (F32), checked against the architecture" -- inspect "$tiny"
"$cli" inspect "$tiny" --json >"$work/tiny.json" 2>"$work/err" && ok || bad "inspect --json tiny: $(cat "$work/err")"
json_is "$work/tiny.json" "$comp['transformer']['stored_bytes'], $comp['transformer']['files']" "(1353088, 2)"
json_is "$work/tiny.json" "$comp['vae']['tensors'], $comp['vae']['stored_dtypes']" "(146, 'F32')"
json_is "$work/tiny.json" "[b['params'] for b in $comp['transformer']['blocks']]" "[149440, 149440]"
expect 0 "BF16" -- inspect "$tests/golden/models/dit-tiny-bf16/transformer"
expect 0 "310,176" -- inspect "$tests/golden/models/textenc-tiny/text_encoder"
expect 0 "total          77          338,272          676,544" -- inspect "$tests/golden/models/dit-tiny-bf16/transformer/diffusion_pytorch_model.safetensors"
"$cli" inspect --json "$tests/golden/models/dit-tiny-bf16/transformer/diffusion_pytorch_model.safetensors" >"$work/file.json" && ok || bad "inspect --json file"
json_is "$work/file.json" "j['kind'], j['tensors'], j['params'], j['dtypes']['BF16']['bytes']" "('file', 77, 338272, 676544)"

# --- broken input: exit 4 with a line naming the file or tensor --------------------------
expect 4 "no such file or folder" -- inspect "$work/nothing-here"
mkdir -p "$work/empty"
expect 4 "not a model folder" -- inspect "$work/empty"
cp -r "$tiny" "$work/edit"
sed -i 's/"num_layers": 2/"num_layers": 3/' "$work/edit/transformer/config.json"
expect 4 "transformer: tensor 'transformer_blocks.2." -- inspect "$work/edit"
cp -r "$tiny" "$work/edit2"
sed -i 's/"num_layers": 2/"num_layers": "2"/' "$work/edit2/transformer/config.json"
expect 4 "key 'num_layers': expected an integer" -- inspect "$work/edit2"
cp -r "$tiny" "$work/edit3"
printf '{"_class_name": ' >"$work/edit3/vae/config.json"
expect 4 "vae/config.json" -- inspect "$work/edit3"
cp -r "$tiny" "$work/edit4"
head -c 1000 "$tiny/vae/diffusion_pytorch_model.safetensors" >"$work/edit4/vae/diffusion_pytorch_model.safetensors"
expect 4 "diffusion_pytorch_model.safetensors" -- inspect "$work/edit4"
printf 'not a safetensors file' >"$work/junk.safetensors"
expect 4 "junk.safetensors" -- inspect "$work/junk.safetensors"
mkdir -p "$work/other"
printf '{"_class_name": "FluxTransformer2DModel"}' >"$work/other/config.json"
expect 4 "not a model component canvas knows (class \"FluxTransformer2DModel\")" -- inspect "$work/other"
expect 0 "dynamic shift 0.5..0.9" -- inspect "$tiny/scheduler"
cp -r "$tiny" "$work/edit5"
sed -i 's/"use_layer3d_rope": false,//; s/"zero_cond_t": true/"zero_cond_t": true, "use_layer3d_rope": true/' "$work/edit5/transformer/config.json"
expect 1 "Qwen-Image-Layered" -- inspect "$work/edit5"
out="$("$cli" inspect "$work/edit" 2>&1 >/dev/null | head -1)"
case "$out" in "canvas inspect: error: "*) ok ;; *) bad "first stderr line should start with 'canvas inspect: error: ': $out" ;; esac

# --- usage ---------------------------------------------------------------------------------
expect 2 "missing PATH" -- inspect
expect 2 "unknown option '--bogus'" -- inspect "$tiny" --bogus
expect 2 "give one PATH" -- inspect "$tiny" "$real"
expect 0 "usage: canvas inspect PATH [--json]" -- inspect --help

summary
