#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_prompt_cli.sh — `canvas edit --prompt` / `generate --prompt` end to end on the demo
# model (tools/make_demo_model.sh: the tiny transformer and VAE, the real tokenizer, a tiny
# text encoder with the real vocabulary): a PNG is written and carries the prompt, the
# same prompt and seed give the same file, --save-embeds writes what --prompt-embeds reads,
# and the refusals (no text encoder, bad UTF-8, flag mix-ups) exit with their codes and
# leave no output.
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$(dirname "$cli")"
model="$work/demo-model"
if ! bash "$tests/../tools/make_demo_model.sh" "$build" "$model" >"$work/make.log" 2>&1; then
    bad "make_demo_model.sh failed: $(cat "$work/make.log")"
    summary
    exit 1
fi
check "[ \"\$(stat -c %a '$model')\" = \"\$(printf '%o' \$((0777 & ~0\$(umask))))\" ]" "the demo model folder is $(stat -c %a "$model"), not as umask says"
image="$tests/golden/cases/edit-cfg/image0.png"
small=(--model "$model" --image "$image" --steps 2 --vae-area 4096)

# --- a text-prompted edit; CFG on without a negative prompt says what it uses
expect 0 'the negative prompt is " "' -- edit "${small[@]}" --prompt "a red boat" --seed 3 -o "$work/a.png"
check "grep -qa 'a red boat' '$work/a.png'" "the PNG does not carry the prompt"
expect 0 "wrote $work/b.png" -- edit "${small[@]}" --prompt "a red boat" --seed 3 -o "$work/b.png"
check "cmp -s '$work/a.png' '$work/b.png'" "the same prompt and seed gave different files"
expect 0 "" -- edit "${small[@]}" --prompt "a blue boat" --seed 3 -o "$work/c.png"
check "! cmp -s '$work/a.png' '$work/c.png'" "two prompts gave the same file"

# --- --save-embeds writes the --prompt-embeds format; using it gives the same image
expect 0 "" -- edit "${small[@]}" --prompt "a red boat" --negative-prompt "blurry" --seed 3 --save-embeds "$work/e.safetensors" -o "$work/d.png"
check "[ -s '$work/e.safetensors' ]" "--save-embeds wrote nothing"
check "grep -qa '\"negative_prompt_embeds\"' '$work/e.safetensors'" "--save-embeds wrote no negative_prompt_embeds"
expect 0 "wrote $work/f.png" -- edit "${small[@]}" --prompt-embeds "$work/e.safetensors" --seed 3 -o "$work/f.png"

# --- --text-encoder-weights: the encoder's layers quantised on load give other embeddings of
# the same shape; none is as stored; the settings file's text_encoder_weights is the flag
expect 0 "" -- edit "${small[@]}" --prompt "a red boat" --negative-prompt "blurry" --seed 3 --text-encoder-weights none --save-embeds "$work/n.safetensors" -o "$work/n.png"
check "cmp -s '$work/e.safetensors' '$work/n.safetensors'" "--text-encoder-weights none changed the embeddings"
for f in fp8 nf4 q8; do
    expect 0 "" -- edit "${small[@]}" --prompt "a red boat" --negative-prompt "blurry" --seed 3 --vram 64M --text-encoder-weights $f --save-embeds "$work/q-$f.safetensors" -o "$work/q-$f.png"
    check "! cmp -s '$work/e.safetensors' '$work/q-$f.safetensors'" "--text-encoder-weights $f did not change the embeddings"
    check "[ \"\$(stat -c %s '$work/e.safetensors')\" = \"\$(stat -c %s '$work/q-$f.safetensors')\" ]" "--text-encoder-weights $f: embeddings of another shape"
done
printf 'memory_management:\n  text_encoder_weights: nf4\n' >"$work/nf4.yaml"
expect 0 "" -- edit "${small[@]}" --config "$work/nf4.yaml" --prompt "a red boat" --negative-prompt "blurry" --seed 3 --save-embeds "$work/y-nf4.safetensors" -o "$work/y-nf4.png"
check "cmp -s '$work/q-nf4.safetensors' '$work/y-nf4.safetensors'" "text_encoder_weights: nf4 in the settings is not --text-encoder-weights nf4"
printf 'memory_management:\n  text_encoder_weights: int3\n' >"$work/int3.yaml"
expect 4 "key 'text_encoder_weights': wants a weight format" -- edit "${small[@]}" --config "$work/int3.yaml" --prompt "x" -o "$work/x0.png"
expect 2 "unknown weight format 'int3'" -- edit "${small[@]}" --prompt "x" --text-encoder-weights int3 -o "$work/x0.png"
expect 2 "--text-encoder-weights needs a weight format" -- edit "${small[@]}" --prompt "x" -o "$work/x0.png" --text-encoder-weights
expect 2 "--text-encoder-weights needs --prompt" -- edit "${small[@]}" --prompt-embeds "$work/e.safetensors" --text-encoder-weights fp8 -o "$work/x0.png"
expect 2 "--text-encoder-weights is for edit and generate" -- debug case "$tests/golden/cases/edit-cfg" --text-encoder-weights fp8 --out "$work/x0.safetensors"
check "[ ! -e '$work/x0.png' ]" "a refused run left an output"

# --- generate from text; CJK and emoji pass through the tokenizer
expect 0 "wrote $work/g.png (64x64" -- generate --model "$model" --prompt "一只猫 🐱 on a boat" --cfg 1 --steps 2 --width 64 --height 64 -o "$work/g.png"

# --- the help names the text-encode phase and exit 130
expect 0 "load, text-encode (with --prompt)" -- edit --help
expect 0 "130 stopped by Ctrl-C" -- generate --help

# --- refusals
expect 4 "no text_encoder" -- edit --model "$tests/golden/models/edit-tiny" --image "$image" --prompt "x" --steps 2 --vae-area 4096 -o "$work/x1.png"
check "[ ! -e '$work/x1.png' ]" "a failed run left an output"
expect 4 "invalid UTF-8 at byte offset 4" -- edit "${small[@]}" --prompt "$(printf 'abc \xff')" -o "$work/x2.png"
check "[ ! -e '$work/x2.png' ]" "a failed run left an output"
expect 2 "--negative-prompt goes with --prompt" -- edit "${small[@]}" --prompt-embeds "$work/e.safetensors" --negative-prompt "x" -o "$work/x3.png"
expect 2 "not both" -- edit "${small[@]}" --prompt "x" --prompt-embeds "$work/e.safetensors" -o "$work/x4.png"
expect 2 "--save-embeds needs --prompt" -- edit "${small[@]}" --prompt-embeds "$work/e.safetensors" --save-embeds "$work/y.safetensors" -o "$work/x5.png"
expect 2 "same file" -- edit "${small[@]}" --prompt "x" --save-embeds "$work/x6.png" -o "$work/x6.png"
expect 2 "missing --prompt TEXT" -- edit "${small[@]}" -o "$work/x7.png"
# the model's own files are inputs too, and a folder or a FIFO is not replaced (a rename
# would put a file where a device such as /dev/null was)
sum_before="$(cksum <"$model/text_encoder/model.safetensors")"
expect 2 "is a file of the model folder" -- edit "${small[@]}" --prompt "x" --save-embeds "$model/text_encoder/model.safetensors" -o "$work/x8.png"
expect 2 "is a file of the model folder" -- edit "${small[@]}" --prompt "x" -o "$model/vae/../text_encoder/config.json"
check "[ \"\$(cksum <'$model/text_encoder/model.safetensors')\" = '$sum_before' ]" "--save-embeds overwrote the model's weights"
mkdir "$work/adir" && mkfifo "$work/afifo"
expect 2 "adir: exists and is not a regular file" -- edit "${small[@]}" --prompt "x" --save-embeds "$work/adir" -o "$work/x9.png"
expect 2 "afifo: exists and is not a regular file" -- edit "${small[@]}" --prompt "x" -o "$work/afifo"
# 1 step is undefined with this scheduler: refused before the prompt is encoded, leaving
# neither the image nor the --save-embeds file; the Lightning scheduler has a 1-step schedule
out=$("$cli" edit "${small[@]}" --steps 1 --prompt "x" --save-embeds "$work/late.safetensors" -o "$work/late.png" --progress 2>&1)
[ $? -eq 2 ] && grep -qF "use at least 2 steps" <<<"$out" && ok || bad "--steps 1: $out"
grep -q "text-encode" <<<"$out" && bad "--steps 1 was refused after the encoding began: $out" || ok
check "[ ! -e '$work/late.safetensors' ] && [ ! -e '$work/late.png' ]" "a failed run left --save-embeds or -o behind"

# an encoder config whose <|image_pad|> id is not the tokenizer's (even a negative one) is
# named as that, not as a count of image tokens
cp -r "$model" "$work/badid" && sed -i 's/"image_token_id": 151655/"image_token_id": -1/' "$work/badid/text_encoder/config.json"
expect 4 "<|image_pad|> is 151655 in the tokenizer, -1 in the encoder's config.json" -- edit --model "$work/badid" --image "$image" --steps 2 --vae-area 4096 --prompt "x" -o "$work/badid.png"

# debug case: --out never replaces the case's own files (a copy: the refusal comes first)
mkdir -p "$work/cases" && cp -r "$tests/golden/cases/prompt-edit-plus-one" "$work/cases/"
sum_before="$(cksum <"$work/cases/prompt-edit-plus-one/expected.safetensors")"
expect 2 "is a file of the case folder" -- debug case "$work/cases/prompt-edit-plus-one" --out "$work/cases/prompt-edit-plus-one/expected.safetensors"
check "[ \"\$(cksum <'$work/cases/prompt-edit-plus-one/expected.safetensors')\" = '$sum_before' ]" "debug case replaced the expected values"
check "[ -d '$work/adir' ] && [ -p '$work/afifo' ] && [ ! -e '$work/x8.png' ] && [ ! -e '$work/x9.png' ]" "a refused output was replaced or written"
check "[ ! -e '$work/x3.png' ] && [ ! -e '$work/x7.png' ]" "a refused run left an output"

# --- out of memory while the tokenizer loads (N = 100000, inside vocab.json), while the
# weights load for good (3+: every retry of the load fails too) and in the encoding: exit 3,
# one error line after the fallback lines, no output (test_prompt sweeps every allocation of
# the encoding itself); a failure of the load that passes is recovered (3:weights)
for spec in 100000 3+:weights 40+:activations; do
    rm -f "$work/oom.png"
    CANVAS_FAIL_ALLOC=$spec "$cli" edit "${small[@]}" --prompt "x" -o "$work/oom.png" >/dev/null 2>"$work/err"
    rc=$?
    check "[ $rc -eq 3 ] && [ \"\$(grep -vc 'fallback:' '$work/err')\" -eq 1 ] && grep -q 'out of memory' '$work/err'" \
        "CANVAS_FAIL_ALLOC=$spec: exit $rc: $(head -2 "$work/err")"
    check "[ ! -e '$work/oom.png' ]" "CANVAS_FAIL_ALLOC=$spec left an output"
done
rm -f "$work/oom.png"
CANVAS_FAIL_ALLOC=3:weights "$cli" edit "${small[@]}" --prompt "x" -o "$work/oom.png" >/dev/null 2>"$work/err"
rc=$?
check "[ $rc -eq 0 ] && grep -q 'fallback: out of memory loading the model' '$work/err' && [ -s '$work/oom.png' ]" \
    "CANVAS_FAIL_ALLOC=3:weights: not recovered: exit $rc: $(head -2 "$work/err")"

summary
