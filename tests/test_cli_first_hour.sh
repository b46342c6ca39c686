#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cli_first_hour.sh — what a new user meets in the first hour, each case with the
# behaviour docs/cli.md promises: nothing is silently ignored (refused with exit 2, or
# changed with a warning), the conventions hold (--opt=value, one message style, XDG
# settings, ETA, the error event, reproducible PNG text chunks, JPEG/WebP by extension),
# and the smaller commands say what they did (inspect FILE, convert, debug case, --gpu).
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE="$work/probe.json" HOME="$work/home"
unset XDG_CONFIG_HOME XDG_CACHE_HOME CANVAS_THREADS
mkdir -p "$HOME"
build="$(dirname "$cli")"
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
embeds="$case_dir/inputs.safetensors"
small=(edit --model "$model" --image "$case_dir/image0.png" --prompt-embeds "$embeds" --steps 2 --vae-area 4096 --seed 7)

# expect_stderr CODE NEEDLE -- ARGS: like expect, on stderr alone, the run from $work
magic() { head -c "$2" "$1" | od -An -tx1 | tr -d ' \n'; }

# --- output formats by extension; an unknown one is refused before any work
expect 2 "unknown file type" -- edit --model /no/such/model --image "$case_dir/image0.png" \
    --prompt-embeds "$embeds" -o "$work/x.gif"
check "[ ! -e '$work/x.gif' ]" "x.gif was written"
expect 0 "wrote $work/x.jpg" -- "${small[@]}" -o "$work/x.jpg"
check "[ \"\$(magic '$work/x.jpg' 3)\" = ffd8ff ]" "x.jpg is not a JPEG"
expect 0 "wrote $work/x.webp" -- "${small[@]}" -o "$work/x.webp"
check "[ \"\$(head -c 4 '$work/x.webp')\$(tail -c +9 '$work/x.webp' | head -c 4)\" = RIFFWEBP ]" "x.webp is not a WebP"
expect 0 "" -- "${small[@]}" -o "$work/q.jpg" --quality 30
check "[ \$(stat -c %s '$work/q.jpg') -lt \$(stat -c %s '$work/x.jpg') ]" "--quality 30 did not make a smaller JPEG"
expect 2 "--quality is for .jpg and .webp" -- "${small[@]}" -o "$work/q.png" --quality 30

# --- no silent no-ops
expect 2 "--lightning needs the Lightning LoRA" -- "${small[@]}" --lightning 4 -o "$work/l.png"
check "[ ! -e '$work/l.png' ]" "--lightning without --lora wrote an output"
printf 'memory_management:\n  lightning_lora_enabled: true\n' >"$work/lightning.yaml"
expect 0 "lightning_lora_enabled is ignored" -- "${small[@]}" --config "$work/lightning.yaml" -o "$work/l2.png"
expect 2 "is not a number" -- "${small[@]}" --lora "$work/f:abc" -o "$work/f.png"
expect 2 "the transformer of $model has 2 blocks" -- "${small[@]}" --vram 8M --resident-blocks 500 -o "$work/r.png"
expect 2 "the transformer of $model has 2 blocks" -- generate --model "$model" --prompt-embeds "$embeds" --steps 1 \
    --width 32 --height 32 --vram 8M --resident-blocks 500 -o "$work/r.png"
check "[ ! -e '$work/r.png' ]" "--resident-blocks 500 wrote an output"
out="$(CANVAS_THREADS=abc "$cli" "${small[@]}" -o "$work/t.png" 2>&1)"; rc=$?
check "[ $rc -eq 2 ] && grep -qF 'CANVAS_THREADS=abc' <<<\"\$out\"" "CANVAS_THREADS=abc: exit $rc: $out"
cpus="$(getconf _NPROCESSORS_ONLN)"
out="$(CANVAS_THREADS=4096 "$cli" "${small[@]}" -o "$work/t.png" 2>&1)"; rc=$?
check "[ $rc -eq 0 ] && grep -qF \"CANVAS_THREADS=4096 is more than the $cpus online CPUs: using $cpus\" <<<\"\$out\"" \
    "CANVAS_THREADS=4096: exit $rc: $out"
expect 0 "--threads 4096 is more than the $cpus online CPUs: using $cpus" -- "${small[@]}" --threads 4096 -o "$work/t2.png"
expect 0 "is more than this machine's" -- "${small[@]}" --ram 900T -o "$work/ram.png"

# --cfg > 1 with embeddings that have no negative: CFG off, said, and the PNG says cfg 1
if bash "$tests/../tools/make_demo_model.sh" "$build" "$work/demo-model" >"$work/make.log" 2>&1; then
    demo=(edit --model "$work/demo-model" --image "$case_dir/image0.png" --prompt "a red boat" --steps 2 --vae-area 4096)
    expect 0 "--cfg 7 with no --negative-prompt: the negative prompt is \" \"" -- "${demo[@]}" --cfg 7 -o "$work/n.png"
    check "grep -qa 'Negative prompt:' '$work/n.png' && grep -qa 'CFG scale: 7' '$work/n.png'" "the PNG does not record the negative and cfg 7"
    expect 0 "" -- "${demo[@]}" --cfg 1 --save-embeds "$work/positive.safetensors" -o "$work/p.png"
    expect 0 "has no negative_prompt_embeds, so CFG is off" -- edit --model "$model" --image "$case_dir/image0.png" \
        --prompt-embeds "$work/positive.safetensors" --steps 2 --vae-area 4096 --cfg 7 -o "$work/off.png"
    check "grep -qa 'CFG scale: 1,' '$work/off.png' && ! grep -qa 'Negative prompt' '$work/off.png'" "the PNG does not record that CFG was off"
else
    bad "make_demo_model.sh failed: $(cat "$work/make.log")"
fi

# --- settings: which file was read, from XDG_CONFIG_HOME too; plan reads the same
printf 'memory_management:\n  vram: 8M\n  strategy: sequential\n' >"$work/canvas.yaml"
out="$(cd "$work" && "$cli" "${small[@]}" -o "$work/s.png" 2>&1)"
check "grep -qF 'canvas edit: settings from canvas.yaml' <<<\"\$out\" && grep -qF '0 of 2 blocks resident' <<<\"\$out\"" "./canvas.yaml: $out"
out="$(cd "$work" && "$cli" plan --model "$model" --size 64x64 2>&1)"
check "grep -qF 'canvas plan: settings from canvas.yaml' <<<\"\$out\" && grep -qF '* sequential' <<<\"\$out\" && grep -qF '8.00 MiB pool' <<<\"\$out\"" \
    "plan does not read ./canvas.yaml: $out"
out="$("$cli" plan --model "$model" --size 64x64 --config "$work/canvas.yaml" 2>&1)"
check "grep -qF '* sequential' <<<\"\$out\"" "plan --config ignored: $out"
rm "$work/canvas.yaml"
mkdir -p "$work/xdg/canvas" "$HOME/.config/canvas"
printf 'memory_management:\n  vram: 8M\n  strategy: sequential\n' >"$work/xdg/canvas/config.yaml"
printf 'memory_management:\n  vram: 1K\n' >"$HOME/.config/canvas/config.yaml"
out="$(XDG_CONFIG_HOME="$work/xdg" "$cli" "${small[@]}" -o "$work/x.png" 2>&1)"
check "grep -qF \"settings from $work/xdg/canvas/config.yaml\" <<<\"\$out\"" "XDG_CONFIG_HOME not read: $out"
rm -r "$work/xdg" "$HOME/.config/canvas"
printf 'memory_management:\n  threads: 4096\n' >"$work/threads.yaml"
expect 0 "--threads 4096 is more than the $cpus online CPUs" -- "${small[@]}" --config "$work/threads.yaml" -o "$work/t3.png"

# --- conventions
# --opt=value gives the same run as --opt value
expect 0 "" -- "${small[@]}" -o "$work/space.png"
expect 0 "" -- edit --model="$model" --image="$case_dir/image0.png" --prompt-embeds="$embeds" --steps=2 \
    --vae-area=4096 --seed=7 --output="$work/equals.png"
check "cmp -s '$work/space.png' '$work/equals.png'" "--opt=value gave another image than --opt value"
expect 0 "" -- plan --model="$model" --size=64x64 --vram=8M
# one message style
out="$("$cli" "${small[@]}" --bogus 2>&1)"
check "[ \"\$(head -1 <<<\"\$out\")\" = \"canvas edit: error: unknown option '--bogus' (see \\\`canvas edit --help\\\`)\" ]" "usage error line: $out"
out="$("$cli" "${small[@]}" --image "$work/missing.png" -o "$work/m.png" 2>&1)"
check "grep -q '^canvas edit: error: .*missing.png' <<<\"\$out\"" "failure line: $out"
# the PNG's text chunks reproduce it: the same flags on another thread count, the same bytes
expect 0 "" -- "${small[@]}" --threads 1 -o "$work/one.png"
check "cmp -s '$work/space.png' '$work/one.png'" "--threads 1 and the default gave different files"
check "grep -qa 'parameters' '$work/one.png' && grep -qa 'Steps: 2, Sampler: FlowMatchEuler, CFG scale: 4, Seed: 7, Size: 64x64, Model: edit-tiny' '$work/one.png'" \
    "no A1111 parameters chunk"
check "! grep -qa 's/step' '$work/one.png'" "a machine-dependent timing in the PNG"
# ETA in the bar; an error event in --json-progress
expect 0 "ETA" -- "${small[@]}" --progress -o "$work/eta.png"
out="$("$cli" "${small[@]}" --image "$work/missing.png" --json-progress -o "$work/j.png" 2>/dev/null)"
check "grep -q '^{\"event\":\"error\",\"exit_code\":4,\"message\":\".*missing.png' <<<\"\$out\"" "no error event: $out"
out="$("$cli" "${small[@]}" --json-progress -o "$work/j2.png" 2>/dev/null)"
check "grep -q '\"eta_seconds\":' <<<\"\$out\"" "no eta_seconds in the step events: $out"

# --- the smaller commands
expect 0 "prompt_embeds" -- inspect "$embeds"
expect 0 "[1, 6, 32]" -- inspect "$embeds"
expect 0 "of files before" -- convert "$model" "$work/nf4" --weights nf4
expect 0 "relative" -- debug case "$case_dir" --out "$work/case.safetensors"
expect 0 "rtx4060ti (16 GiB" -- plan --model "$model" --size 64x64 --gpu "RTX 4060 Ti"
expect 0 "a size, not a named card" -- plan --model "$model" --size 64x64 --gpu 24G
for gpu in rtx3060 rtx3080 rtx3090 rtx4060 rtx4060ti rtx4070 rtx4080 rtx4090 rtx5080 rtx5090 a100-40g a100-80g h100 l40s; do
    expect 0 "device: $gpu (" -- plan --model "$model" --size 64x64 --gpu "$gpu"
done
expect 2 "give a size (24G) or a name" -- plan --model "$model" --gpu rtx9999
summary
