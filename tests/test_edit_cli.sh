#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_edit_cli.sh — `canvas edit` / `canvas generate` end to end on the bundled tiny model
# with the edit-cfg golden's inputs (its inputs.safetensors holds prompt_embeds and
# negative_prompt_embeds): a PNG is written, the same seed gives the same file, inputs are
# never overwritten, bad input exits 4 and leaves no output, out of memory exits 3.
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
embeds="$case_dir/inputs.safetensors"

cp "$case_dir/image0.png" "$work/input.png"
small=(--model "$model" --prompt-embeds "$embeds" --steps 2 --vae-area 4096)

is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# --- an edit writes a PNG; the same seed twice gives the same file; another seed another
expect 0 "wrote $work/a.png (64x64, 2 steps, seed 7)" -- edit "${small[@]}" --image "$work/input.png" --seed 7 -o "$work/a.png"
check "is_png '$work/a.png'" "a.png is not a PNG"
expect 0 "plan: transformer in host memory" -- edit "${small[@]}" --image "$work/input.png" --seed 7 -o "$work/b.png"
check "cmp -s '$work/a.png' '$work/b.png'" "the same seed gave different files"
expect 0 "" -- edit "${small[@]}" --image "$work/input.png" --seed 8 -o "$work/c.png"
check "! cmp -s '$work/a.png' '$work/c.png'" "seeds 7 and 8 gave the same file"
check "grep -qa 'seed' '$work/a.png' && grep -qa 'strategy' '$work/a.png'" "text chunks missing"
check "! ls '$work'/*.tmp >/dev/null 2>&1" "a temporary file was left behind"

# --- machines: one JSON line per event, a step line per step
out="$("$cli" edit "${small[@]}" --image "$work/input.png" -o "$work/j.png" --json-progress 2>/dev/null)"
check "[ \"\$(grep -c '\"event\":\"step\"' <<<\"\$out\")\" = 2 ]" "--json-progress: not 2 step lines: $out"
check "grep -qF '\"event\":\"written\"' <<<\"\$out\"" "--json-progress: no written line"

# --- a capped device with every block streamed: same pixels (strategy text aside), so same size class
expect 0 "0 of 2 blocks resident" -- edit "${small[@]}" --image "$work/input.png" --vram 8M --resident-blocks 0 -o "$work/v.png"

# --- generate: text to image
expect 0 "wrote $work/g.png (64x64" -- generate --model "$model" --prompt-embeds "$embeds" --steps 2 --width 64 --height 64 -o "$work/g.png"
check "is_png '$work/g.png'" "g.png is not a PNG"

# --- inputs are never overwritten
before="$(cksum < "$work/input.png")"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" --image "$work/input.png" -o "$work/input.png"
expect 2 "refusing to overwrite an input" -- edit "${small[@]}" --image "$work/input.png" -o "$work/../$(basename "$work")/input.png"
check "[ \"\$(cksum < '$work/input.png')\" = '$before' ]" "the input image changed"

# --- bad input: exit 4, no output
printf 'not an image' > "$work/bad.png"
expect 4 "bad.png: not a PNG, JPEG or WebP image" -- edit "${small[@]}" --image "$work/bad.png" -o "$work/out_bad.png"
check "[ ! -e '$work/out_bad.png' ]" "an output was written for a bad image"
head -c 100 "$work/input.png" > "$work/cut.png"
expect 4 "cut.png" -- edit "${small[@]}" --image "$work/cut.png" -o "$work/out_cut.png"
check "[ ! -e '$work/out_cut.png' ]" "an output was written for a truncated image"
expect 4 "no-such-model" -- edit --model "$work/no-such-model" --prompt-embeds "$embeds" --image "$work/input.png" -o "$work/out_m.png"
expect 4 "input.png" -- edit --model "$model" --prompt-embeds "$work/input.png" --image "$work/input.png" -o "$work/out_e.png"
check "[ ! -e '$work/out_e.png' ]" "an output was written for bad embeddings"

# --- out of memory: exit 3, no output
expect 3 "out of memory" -- edit "${small[@]}" --image "$work/input.png" --vram 64K -o "$work/out_oom.png"
check "[ ! -e '$work/out_oom.png' ]" "an output was written after out of memory"

# --- Ctrl-C: the run stops at its next check, exit 130, no output
"$cli" edit --model "$model" --prompt-embeds "$embeds" --image "$work/input.png" --vae-area 4096 --steps 1000 \
    -o "$work/int.png" >/dev/null 2>"$work/int.err" &
pid=$!
for _ in $(seq 50); do grep -q "plan:" "$work/int.err" 2>/dev/null && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
rc=$?
check "[ $rc -eq 130 ] && grep -q 'cancelled' '$work/int.err'" "SIGINT: exit $rc: $(cat "$work/int.err")"
check "[ ! -e '$work/int.png' ] && ! ls '$work'/int.png.*.tmp >/dev/null 2>&1" "SIGINT left an output"

# --- usage
expect 4 "no text_encoder/ folder" -- edit --model "$model" --prompt "a cat" --image "$work/input.png" -o "$work/p.png"
expect 2 "missing -o" -- edit "${small[@]}" --image "$work/input.png"
expect 2 "missing --image" -- edit "${small[@]}" -o "$work/x.png"
expect 2 "--steps takes" -- edit "${small[@]}" --image "$work/input.png" --steps 0 -o "$work/x.png"
expect 2 "unknown option" -- generate --model "$model" --prompt-embeds "$embeds" --vae-area 4096 -o "$work/x.png"
expect 0 "--prompt-embeds FILE" -- edit --help
check "[ ! -e '$work/x.png' ] && [ ! -e '$work/p.png' ]" "an output was written after a usage error"

summary
