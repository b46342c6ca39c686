#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_hostile_cli.sh — the findings of an adversarial pass over the CLI, each as a
# regression: outputs checked before any work (folder, type, ending, never an input, never
# a device, FIFO or link), written whole or not at all (two runs on one output), `convert`
# deleting nothing it did not create, FIFOs as inputs refused at once, non-UTF-8 paths in
# JSON, NaN/Inf and masks that are not 0/1, a golden case's LoRA leaving its folder, absurd
# link bandwidths and thread counts, terminal escape sequences in names quoted by errors.
set -u
source "$(dirname "$0")/cli_lib.sh"
# copies: a build that lets these bugs through must not overwrite the goldens
cp -r "$tests/golden/models/edit-tiny" "$work/model"
cp "$tests/golden/cases/edit-cfg/inputs.safetensors" "$work/embeds.safetensors"
cp "$tests/golden/cases/edit-cfg/image0.png" "$work/image.png"
model="$work/model" embeds="$work/embeds.safetensors" image="$work/image.png"
small=(--model "$model" --prompt-embeds "$embeds" --image "$image" --steps 2 --vae-area 4096)
# every run under a time limit: a FIFO input must be refused, not waited on (124 otherwise)
printf '#!/bin/sh\nexec timeout 20 "%s" "$@"\n' "$cli" >"$work/canvas-limited" && chmod +x "$work/canvas-limited"
cli="$work/canvas-limited"

# safetensors writer for crafted inputs: st NAME DTYPE SHAPE VALUES... (f32 only)
st() {
    python3 - "$@" <<'EOF'
import json, struct, sys
path, specs = sys.argv[1], sys.argv[2:]
header, blobs, at = {}, [], 0
for spec in specs:
    name, shape, values = spec.split("=")
    shape = [int(s) for s in shape.split("x")]
    vals = [float(v) for v in values.split(",")]
    n = 1
    for s in shape: n *= s
    vals = (vals * n)[:n]
    blob = struct.pack("<%df" % n, *vals)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + len(blob)]}
    blobs.append(blob); at += len(blob)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF
}

# a PNG whose chunks are all whole, with their CRCs, ending in IEND
cat >"$work/png_whole.py" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
at, kind = 8, b""
while at < len(data):
    n, kind = struct.unpack(">I4s", data[at:at + 8])
    assert zlib.crc32(data[at + 4:at + 8 + n]) == struct.unpack(">I", data[at + 8 + n:at + 12 + n])[0]
    at += 12 + n
assert at == len(data) and kind == b"IEND"
EOF

# --- outputs are checked before any work ------------------------------------------------
expect 2 "the folder $work/nodir does not exist" -- edit "${small[@]}" -o "$work/nodir/x.png"
expect 2 "unknown file type (the name must end in .png, .jpg, .jpeg, .webp)" -- edit "${small[@]}" -o "$work/x.txt"
expect 2 "--report $work/r.txt: unknown file type (the name must end in .json)" -- edit "${small[@]}" -o "$work/x.png" --report "$work/r.txt"
expect 2 "names a folder, not a file" -- edit "${small[@]}" -o "$work/"
if [ "$(id -u)" != 0 ]; then # root may write anywhere
    mkdir "$work/ro" && chmod 555 "$work/ro"
    expect 2 "cannot create files in $work/ro" -- edit "${small[@]}" -o "$work/ro/x.png"
fi
check "[ ! -e '$work/x.png' ] && [ ! -e '$work/x.txt' ]" "a refused run wrote an output"

# --- --report / --trace / -o never name an input or each other ------------------------------
before="$(cat "$image" "$embeds" "$model"/model_index.json "$model"/transformer/* | cksum)"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" -o "$work/o1.png" --report "$image"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" -o "$work/o1.png" --trace "$embeds"
expect 2 "is a file of the model folder" -- edit "${small[@]}" -o "$work/o1.png" --report "$model/model_index.json"
expect 2 "is a file of the model folder" -- edit "${small[@]}" -o "$model/transformer/diffusion_pytorch_model-00001-of-00002.safetensors"
expect 2 "is a file of the model folder" -- edit "${small[@]}" -o "$model/model_index.json"
expect 2 "two outputs to one file" -- edit "${small[@]}" -o "$work/o1.png" --report "$work/o1.png"
expect 2 "two outputs to one file" -- edit "${small[@]}" -o "$work/o1.png" --report "$work/t.json" --trace "$work/./t.json"
check "[ \"\$(cat '$image' '$embeds' '$model'/model_index.json '$model'/transformer/* | cksum)\" = '$before' ]" "an input changed"
# the LoRA and the settings file are inputs too (also through a hard link)
cp "$tests/golden/cases/lora-kohya/lora0-kohya.safetensors" "$work/lora.safetensors"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" --lora "$work/lora.safetensors" -o "$work/lora.safetensors"
printf 'memory_management:\n  oom_retry_attempts: 2\n' >"$work/settings.yaml"
ln "$work/settings.yaml" "$work/settings-link.json"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" --config "$work/settings.yaml" -o "$work/o1.png" --report "$work/settings-link.json"
check "grep -q oom_retry_attempts '$work/settings.yaml'" "the settings file was overwritten"
# a model file reached through a Hugging Face-style link from outside the folder
cp -r "$model" "$work/hf" && mv "$work/hf/model_index.json" "$work/blob.json" && ln -s "$work/blob.json" "$work/hf/model_index.json"
expect 2 "is the same file as $work/hf/model_index.json" -- edit --model "$work/hf" --prompt-embeds "$embeds" --image "$image" -o "$work/o1.png" --report "$work/blob.json"

# --- devices, FIFOs and links are never replaced by a rename -------------------------------
mkfifo "$work/fifo"
ln -s "$work/elsewhere.png" "$work/link.png"
expect 2 "exists and is not a regular file" -- edit "${small[@]}" -o /dev/null
expect 2 "exists and is not a regular file" -- edit "${small[@]}" -o "$work/o1.png" --trace /dev/null
expect 2 "exists and is not a regular file" -- edit "${small[@]}" -o "$work/fifo"
expect 2 "is a symbolic link" -- edit "${small[@]}" -o "$work/link.png"
check "[ -c /dev/null ] && [ -p '$work/fifo' ] && [ -L '$work/link.png' ] && [ ! -e '$work/elsewhere.png' ]" \
    "a device, FIFO or link was replaced"

# --- a FIFO as any input is refused at once (exit 4), not waited on --------------------------
expect 4 "fifo: not a regular file" -- edit --model "$model" --prompt-embeds "$embeds" --image "$work/fifo" -o "$work/f1.png"
expect 4 "fifo: not a regular file" -- edit --model "$model" --prompt-embeds "$work/fifo" --image "$image" -o "$work/f2.png"
expect 4 "fifo: not a regular file" -- edit "${small[@]}" --lora "$work/fifo" -o "$work/f3.png"
expect 4 "fifo: not a regular file" -- edit "${small[@]}" --config "$work/fifo" -o "$work/f4.png"
cp -r "$model" "$work/fifo-shard" && rm "$work/fifo-shard/transformer/diffusion_pytorch_model-00002-of-00002.safetensors" &&
    mkfifo "$work/fifo-shard/transformer/diffusion_pytorch_model-00002-of-00002.safetensors"
expect 4 "not a regular file" -- edit --model "$work/fifo-shard" --prompt-embeds "$embeds" --image "$image" -o "$work/f5.png"
cp -r "$model" "$work/fifo-config" && rm "$work/fifo-config/transformer/config.json" && mkfifo "$work/fifo-config/transformer/config.json"
expect 4 "config.json: not a regular file" -- edit --model "$work/fifo-config" --prompt-embeds "$embeds" --image "$image" -o "$work/f6.png"
check "! ls '$work'/f?.png >/dev/null 2>&1" "a refused input left an output"

# --- two runs writing one output at once: one whole PNG, no temporaries ---------------------
"$cli" edit "${small[@]}" --seed 3 -o "$work/same.png" 2>/dev/null &
first=$!
"$cli" edit "${small[@]}" --seed 4 -o "$work/same.png" 2>/dev/null
second=$?
wait "$first"
check "[ $? -eq 0 ] && [ $second -eq 0 ] && python3 '$work/png_whole.py' '$work/same.png'" "two runs on one output did not leave one whole PNG"
check "[ -z \"\$(ls -A '$work' | grep -e '\\.tmp\$')\" ]" "temporary files were left: $(ls -A "$work")"

# --- convert: OUT_DIR.partial is never deleted, MODEL_DIR never written ----------------------
cp -r "$tests/golden/models/dit-tiny/transformer" "$work/m.partial"
before="$(cat "$work/m.partial"/* | cksum)"
expect 0 "wrote" -- convert "$work/m.partial" "$work/m" --weights q8
check "[ \"\$(cat '$work/m.partial'/* | cksum)\" = '$before' ]" "convert X.partial X changed or deleted its input"
mkdir "$work/mine.partial" && echo keep >"$work/mine.partial/notes.txt"
expect 0 "wrote" -- convert "$tests/golden/models/dit-tiny/transformer" "$work/mine" --weights q8
check "[ \"\$(cat '$work/mine.partial/notes.txt')\" = keep ]" "convert deleted a folder it did not create"
expect 2 "is a file of the model folder" -- convert "$work/m.partial" "$work/m.partial/inside" --weights q8
expect 2 "does not exist" -- convert "$work/m.partial" "$work/nodir/out" --weights q8
expect 4 "" -- convert "$work/fifo-config" "$work/failed" --weights q8
check "[ -z \"\$(ls -A '$work' | grep -e '^\\..*\\.partial\$' -e '^failed')\" ]" "a failed convert left a folder: $(ls -A "$work")"

# --- non-UTF-8 paths in JSON ------------------------------------------------------------
bad_name="$work/$(printf 'caf\xe9').safetensors"
cp "$embeds" "$bad_name"
expect 2 "is not valid UTF-8" -- inspect --json "$bad_name"
bad_out="$work/$(printf 'out\xff').png"
"$cli" edit "${small[@]}" --json-progress -o "$bad_out" >"$work/progress.jsonl" 2>/dev/null
cat >"$work/json_lines.py" <<'EOF'
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").splitlines()  # valid UTF-8 throughout
events = [json.loads(line) for line in lines]  # every line JSON
assert events and events[-1]["event"] == "written" and events[-1]["output"].endswith("out\ufffd.png")
EOF
check "[ -s '$bad_out' ] && python3 '$work/json_lines.py' '$work/progress.jsonl'" \
    "--json-progress with a non-UTF-8 output path is not valid JSON: $(tail -c 300 "$work/progress.jsonl")"

# --- NaN / infinity and masks ----------------------------------------------------------------
st "$work/nan-embeds.safetensors" "prompt_embeds=1x4x32=0.5,nan"
expect 4 "NaN or infinity" -- edit --model "$model" --prompt-embeds "$work/nan-embeds.safetensors" --image "$image" -o "$work/n1.png"
st "$work/half-mask.safetensors" "prompt_embeds=1x4x32=0.25" "prompt_embeds_mask=1x4=1,1,0.5,0"
expect 4 "holds 0.5 at token 2; a mask holds only 0 and 1" -- edit --model "$model" --prompt-embeds "$work/half-mask.safetensors" --image "$image" -o "$work/n2.png"
st "$work/long.safetensors" "prompt_embeds=1x30000x1=0.25"
expect 4 "at most 26096 tokens" -- edit --model "$model" --prompt-embeds "$work/long.safetensors" --image "$image" -o "$work/n3.png"
st "$work/wide.safetensors" "prompt_embeds=1x4x16=0.25"
expect 4 "embeddings are 16 wide, the transformer's joint_attention_dim is 32" -- edit --model "$model" --prompt-embeds "$work/wide.safetensors" --image "$image" -o "$work/n4.png"
# a transformer weight poisoned with NaN: said before a black image is written
cp -r "$model" "$work/nan-model"
python3 - "$work/nan-model/transformer"/*.safetensors <<'EOF'
import json, struct, sys
for path in sys.argv[1:]:
    data = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    if "proj_out.weight" not in header: continue
    t = header["proj_out.weight"]
    start = 8 + n + t["data_offsets"][0]
    data[start:start + 4] = {"F32": b"\x00\x00\xc0\x7f", "BF16": b"\xc0\x7f\xc0\x7f", "F16": b"\x00\x7e\x00\x7e"}[t["dtype"]]
    open(path, "wb").write(data)
    sys.exit(0)
sys.exit("no proj_out.weight")
EOF
expect 4 "hold NaN or infinity; nothing was written" -- edit --model "$work/nan-model" --prompt-embeds "$embeds" --image "$image" --steps 2 --vae-area 4096 -o "$work/n5.png"
check "! ls '$work'/n?.png >/dev/null 2>&1" "a refused input left an output"

st "$work/empty.safetensors" "prompt_embeds=1x0x32=0"
expect 4 "must be a float [1, L, D] tensor" -- edit --model "$model" --prompt-embeds "$work/empty.safetensors" --image "$image" -o "$work/n6.png"

# --- absurd config values: refused against the files before anything of their size is allocated
cp -r "$model" "$work/absurd"
for change in '"num_layers": 4096' '"in_channels": 1048576' '"joint_attention_dim": 1048576' \
              '"num_attention_heads": 4096, "attention_head_dim": 256, "axes_dims_rope": [64, 96, 96]'; do
    python3 -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c.update(json.loads("{" + sys.argv[2] + "}")); json.dump(c, open(p, "w"))' \
        "$work/absurd/transformer/config.json" "$change"
    # 4 GB of address space at most (not under ASan, whose shadow memory needs terabytes)
    out="$( ([ "${CANVAS_TEST_SANITIZED:-0}" = 1 ] || ulimit -v 4000000
            "$cli" edit --model "$work/absurd" --prompt-embeds "$embeds" --image "$image" -o "$work/a.png") 2>&1)"
    rc=$?
    check "[ $rc -eq 4 ] && grep -q 'transformer: tensor' <<<\"\$out\"" "config $change: exit $rc: $out"
    cp "$model/transformer/config.json" "$work/absurd/transformer/config.json"
done

# --- a golden case's LoRA stays in the case folder ------------------------------------------
mkdir -p "$work/golden/cases/escape" && ln -s "$tests/golden/models" "$work/golden/models"
cp "$tests/golden/cases/lora-kohya/inputs.safetensors" "$work/golden/cases/escape/"
sed 's|"lora0-kohya.safetensors"|"../../../lora.safetensors"|' "$tests/golden/cases/lora-kohya/case.json" >"$work/golden/cases/escape/case.json"
expect 4 "must be a file name in the case folder" -- debug case "$work/golden/cases/escape" --out "$work/escape.safetensors"

# --- absurd memory flags --------------------------------------------------------------------
expect 2 "at least 1M/s" -- edit "${small[@]}" --vram 8M --link-bandwidth 1/s -o "$work/l1.png"
expect 2 "at least 1M/s" -- debug case "$tests/golden/cases/dit-edit-basic" --vram 8M --link-bandwidth 1/s --out "$work/l2.safetensors"
# threads far above the cores: the CLI cuts them to the CPUs and says so (the library refuses
# more than 4 per CPU, test_api_model), and the run finishes
many=$(( $(nproc) * 4 + 1 ))
expect 0 "--threads $many is more than the $(nproc) online CPUs: using $(nproc)" -- edit "${small[@]}" --threads "$many" -o "$work/l3.png"

# --- limits the runtime honours (each let a mutant through: nothing tested it) ----------------
# the headroom is kept free: the tiny transformer's 1.53 MiB fit a 2 MiB device, not with
# 512 KiB of it kept back
expect 0 "2 of 2 blocks resident" -- edit "${small[@]}" --vram 2M -o "$work/h1.png"
expect 3 "plus headroom" -- edit "${small[@]}" --vram 2M --headroom 512K -o "$work/h2.png"
check "[ ! -e '$work/h2.png' ]" "a run that did not fit its headroom wrote an output"
# oom_retry_attempts bounds the fallbacks: exactly that many under a persistent failure
for retries in 1 2 4; do
    printf 'memory_management:\n  oom_retry_attempts: %d\n' "$retries" >"$work/retries.yaml"
    CANVAS_FAIL_ALLOC=1+:activations "$cli" edit --config "$work/retries.yaml" "${small[@]}" --vram 8M -o "$work/r.png" \
        >/dev/null 2>"$work/retries.err"
    rc=$?
    got=$(grep -c 'fallback:' "$work/retries.err")
    check "[ $rc -eq 3 ] && [ $got -eq $retries ]" "oom_retry_attempts $retries: exit $rc after $got fallbacks"
done

# a name from a file (a path, a tensor name) may hold a terminal's escape sequences or a
# newline that forges a second line: errors print control characters as \xNN
evil="$work/a$(printf '\033')]0;title$(printf '\007')$(printf '\033')[2Jb
forged line.gguf"
"$cli" inspect --transformer "$evil" >"$work/evil.out" 2>"$work/evil.err"
rc=$?
check "[ $rc -eq 4 ]" "a missing file with control characters in its name: exit $rc"
check "! grep -q \"\$(printf '\033')\" '$work/evil.err' && ! grep -q \"\$(printf '\007')\" '$work/evil.err'" \
    "raw control characters on stderr: $(od -c "$work/evil.err" | head -3)"
check "[ \$(wc -l < '$work/evil.err') -eq 1 ] && grep -qF '\\x1b]0;title\\x07\\x1b[2Jb\\x0aforged' '$work/evil.err'" \
    "the name is not quoted with \\xNN on one line: $(cat "$work/evil.err")"


# --- debug case: --out never into the case's model folder; an unknown op named as one ----------
mkdir -p "$work/g2/cases/c" "$work/g2/models"
cp -r "$tests/golden/models/dit-tiny" "$work/g2/models/"
cp "$tests/golden/cases/dit-edit-basic"/* "$work/g2/cases/c/"
before="$(cat "$work/g2/models/dit-tiny/transformer"/* | cksum)"
shard="$work/g2/models/dit-tiny/transformer/diffusion_pytorch_model-00001-of-00002.safetensors"
expect 2 "is a file of the model folder" -- debug case "$work/g2/cases/c" --out "$shard"
expect 2 "is a file of the model folder" -- debug case "$work/g2/cases/c" --out "$work/g2/models/dit-tiny/transformer/new.safetensors"
expect 2 "is a file of the model folder" -- debug case "$work/g2/cases/c" --out "$work/d.safetensors" --report "$work/g2/models/dit-tiny/transformer/config.json"
check "[ \"\$(cat '$work/g2/models/dit-tiny/transformer'/* | cksum)\" = '$before' ] && [ ! -e '$work/g2/models/dit-tiny/transformer/new.safetensors' ]" \
    "debug case wrote into its model folder"
sed 's/"dit_forward"/"dit_forwardx"/' "$tests/golden/cases/dit-edit-basic/case.json" >"$work/g2/cases/c/case.json"
expect 1 "op 'dit_forwardx' is not supported (known: dit_forward, edit_pipeline" -- debug case "$work/g2/cases/c" --out "$work/d.safetensors"

# --- a refusal for lack of room that a retry cannot change is said once, not once per try ------
# (on a device: the dry run that plans it passes the cap itself; without one, the plan's
# host minimum refuses --ram 1M before any phase, test_cli_attacks.sh)
"$cli" edit "${small[@]}" --threads 1 --vram 8M --ram 1M -o "$work/once.png" >/dev/null 2>"$work/once.err"
rc=$?
check "[ $rc -eq 3 ] && [ \$(grep -c 'fallback:' '$work/once.err') -eq 1 ] && grep -q 'error: .*host RAM cap' '$work/once.err'" \
    "--vram 8M --ram 1M: exit $rc, $(grep -c 'fallback:' "$work/once.err") fallback lines: $(cat "$work/once.err")"

# --- convert: ggml type names as GGUF files spell them; llama.cpp's mixes named as such ----------
expect 0 "wrote $work/upper.gguf (q8_0)" -- convert "$model" "$work/upper.gguf" --weights Q8_0
expect 0 "Q8_0" -- inspect "$work/upper.gguf"
expect 2 "--weights Q4_K_M: llama.cpp's _s / _m / _l mixes (a type per tensor) are not written; give one type, q4_k" -- \
    convert "$model" "$work/mix.gguf" --weights Q4_K_M
check "[ ! -e '$work/mix.gguf' ]" "a refused convert wrote its output"

# --- plan refuses the weights the run refuses (a transformer tensor of the wrong shape) --------
cp -r "$model" "$work/bad-shape"
python3 - "$work/bad-shape/transformer"/*.safetensors <<'EOF2'
import json, struct, sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    if "img_in.weight" not in header: continue
    a, b = header["img_in.weight"]["shape"]
    header["img_in.weight"]["shape"] = [a // 2, b * 2]  # the same bytes, another shape
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data[8 + n:])
    sys.exit(0)
sys.exit("no img_in.weight")
EOF2
expect 4 "tensor 'img_in.weight'" -- edit --model "$work/bad-shape" --prompt-embeds "$embeds" --image "$image" -o "$work/bs.png"
expect 4 "tensor 'img_in.weight'" -- plan --model "$work/bad-shape"


# --- plan takes its values as the run does: no NaN CFG, no 0-byte GPU ------------------------
expect 2 "--cfg takes a number from 0 to 100" -- plan --model "$model" --cfg nan
expect 2 "--cfg takes a number from 0 to 100" -- plan --model "$model" --cfg -1
expect 2 "--gpu must be a card's name or more than 0 bytes" -- plan --model "$model" --gpu 0
expect 2 "--text-tokens takes 1 to 1048576" -- plan --model "$model" --text-tokens 99999999


# --- bench writes no --report: said, not silently ignored ----------------------------------
expect 0 "warning: --report and --trace are not written by bench" -- bench --case "$tests/golden/cases/edit-cfg" --threads 1 --report "$work/bench.json"
check "[ ! -e '$work/bench.json' ]" "bench wrote a report it says it does not write"


# --- a JSON file far larger than any config or case is refused before it is parsed ------------
mkdir -p "$work/g2/cases/big" && cp "$tests/golden/cases/dit-edit-basic/inputs.safetensors" "$work/g2/cases/big/"
truncate -s 65M "$work/g2/cases/big/case.json"
expect 4 "case.json: 68157440 bytes; a config, index, cache or case file of JSON holds at most 64 MiB" -- \
    debug case "$work/g2/cases/big" --out "$work/big.safetensors"
cp -r "$model" "$work/big-config" && truncate -s 65M "$work/big-config/transformer/config.json"
expect 4 "config.json: 68157440 bytes" -- edit --model "$work/big-config" --prompt-embeds "$embeds" --image "$image" -o "$work/bc.png"


# --- plan --case: another op is exit 1 as in bench (not 4); a bad --image keeps its own code -----
expect 1 "op 'dit_forward' is not edit_pipeline" -- plan --case "$tests/golden/cases/dit-edit-basic"
expect 1 "op 'dit_forward' is not edit_pipeline" -- bench --case "$tests/golden/cases/dit-edit-basic"
expect 4 "not a regular file" -- plan --model "$model" --image "$work/fifo"

summary
