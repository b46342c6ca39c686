#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cli_attacks.sh — what an attacker's pass over the CLI found, each case with the
# behaviour docs/cli.md promises: a refusal before any work, one clear line naming the flag
# or file and field, the documented exit code, and no output left behind.
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE="$work/probe.json" HOME="$work/home" CANVAS_TIMINGS_CACHE=off
unset XDG_CONFIG_HOME XDG_CACHE_HOME CANVAS_THREADS
mkdir -p "$HOME"
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
small=(edit --model "$model" --image "$case_dir/image0.png" --prompt-embeds "$case_dir/inputs.safetensors"
    --vae-area 4096 --steps 2)

# --- --ram below the host plan's minimum: refused before the VAE encode, saying the minimum ----
for mib in 2 3; do
    ram=${mib}M
    out="$("$cli" "${small[@]}" --ram $ram -o "$work/ram.png" 2>&1)"; rc=$?
    check "[ $rc -eq 3 ] && [ \$(wc -l <<<\"\$out\") -eq 1 ] &&
        grep -qE '^canvas edit: error: out of memory: no plan fits without a device and $mib\\.00 MiB of host RAM \\(--ram\\); raise --ram to at least [0-9.]+ MiB' <<<\"\$out\"" \
        "--ram $ram: exit $rc: $out"
    check "! grep -q 'vae-encode\\|fallback' <<<\"\$out\"" "--ram $ram reached a phase: $out"
    check "[ ! -e '$work/ram.png' ]" "--ram $ram wrote an output"
done
# the minimum it names is enough
least="$("$cli" "${small[@]}" --ram 2M -o "$work/ram.png" 2>&1 | sed -n 's/.*raise --ram to at least \([0-9.]*\) MiB.*/\1/p')"
expect 0 "wrote $work/least.png" -- "${small[@]}" --ram "$(awk -v m="$least" 'BEGIN { printf "%d", (m + 0.01) * 1048576 }')" \
    -o "$work/least.png"
# on a device the same words (the plan was already checked there before the encode)
expect 3 "of host RAM (--ram); raise --ram to at least" -- "${small[@]}" --vram 8M --ram 2M -o "$work/ram.png"
# loading the model: a refusal that a retry cannot change is said once, not once per try
"$cli" "${small[@]}" --ram 500K -o "$work/load.png" >/dev/null 2>"$work/load.err"; rc=$?
check "[ $rc -eq 3 ] && [ \$(grep -c 'fallback: out of memory loading the model' '$work/load.err') -eq 1 ] &&
    grep -q 'loading again (1 of 3)' '$work/load.err' && grep -q 'error: .*host RAM cap' '$work/load.err'" \
    "--ram 500K: exit $rc: $(cat "$work/load.err")"

# --- --headroom on the CPU without a device: nothing to keep free, refused as --link-bandwidth
# is (it was ignored, exit 0); the settings file's memory_threshold_mb is a default, left unused --
expect 2 "--headroom needs --vram or a CUDA GPU" -- "${small[@]}" --headroom 16M -o "$work/h.png"
expect 2 "--headroom needs --vram or a CUDA GPU" -- "${small[@]}" --device cpu --headroom=16M -o "$work/h.png"
expect 2 "--headroom needs --vram, --gpu or a CUDA GPU" -- plan --model "$model" --headroom 16M
out="$(timeout 20 "$cli" serve --model "$model" --listen 127.0.0.1:0 --headroom 16M 2>&1)"; rc=$? # 124: it listened
check "[ $rc -eq 2 ] && grep -qF -- '--headroom needs --vram or a CUDA GPU' <<<\"\$out\"" "serve --headroom: exit $rc: $out"
check "[ ! -e '$work/h.png' ]" "a refused --headroom wrote an output"
expect 0 "wrote $work/h.png" -- "${small[@]}" --vram 8M --headroom 1M -o "$work/h.png"
expect 0 "* full " -- plan --model "$model" --gpu 8G --headroom 16M
printf 'memory_management:\n  memory_threshold_mb: 512\n' >"$work/headroom.yaml"
expect 0 "wrote $work/h2.png" -- "${small[@]}" --config "$work/headroom.yaml" -o "$work/h2.png"

# --- a headroom of the whole device leaves no plan: exit 2 naming both (it was exit 3, "give a
# device of at least <the headroom>"), whichever flag or settings key gave them -------------------
expect 2 "--headroom (99.00 TiB) keeps all of --vram (1.00 GiB) unused" -- plan --model "$model" --headroom 99T --vram 1G
expect 2 "--headroom (1.00 GiB) keeps all of --vram (1.00 GiB) unused" -- plan --model "$model" --headroom 1G --vram 1G
expect 2 "--headroom (8.00 GiB) keeps all of --gpu 8G (8.00 GiB) unused" -- plan --model "$model" --headroom 8G --gpu 8G
expect 2 "a --gpu plan's default headroom (512.00 MiB) keeps all of --gpu 512M (512.00 MiB)" -- plan --model "$model" --gpu 512M
expect 2 "--headroom (9.00 GiB) keeps all of --viability's smallest GPU (8.00 GiB)" -- plan --model "$model" --headroom 9G --viability
expect 2 "--headroom (8.00 MiB) keeps all of --vram (8.00 MiB) unused" -- "${small[@]}" --vram 8M --headroom 8M -o "$work/h3.png"
printf 'memory_management:\n  memory_threshold_mb: 2048\n' >"$work/headroom2.yaml"
expect 2 "the settings file's memory_threshold_mb (2.00 GiB) keeps all of --vram (1.00 GiB)" -- \
    plan --model "$model" --config "$work/headroom2.yaml" --vram 1G
expect 2 "the settings file's memory_threshold_mb (2.00 GiB) keeps all of --vram (8.00 MiB)" -- \
    "${small[@]}" --config "$work/headroom2.yaml" --vram 8M -o "$work/h3.png"
check "[ ! -e '$work/h3.png' ]" "a refused headroom wrote an output"
# one byte less than the device is a plan (that does not fit: exit 3, saying what would)
expect 3 "give a device of at least" -- plan --model "$model" --headroom 1023M --vram 1G

# --- serve / worker: --report and --trace are checked before the model loads, as edit's (they
# were first opened at the stop: a FIFO failed then, after the whole service; a model's file was
# replaced). A command that starts anyway is ended by the timeout (exit 124) ---------------------
cp -r "$model" "$work/served"
mkfifo "$work/report-fifo"
for cmd in "serve --listen 127.0.0.1:0" "worker --queue redis://127.0.0.1:1/q"; do
    out="$(timeout 20 "$cli" $cmd --model "$work/served" --report "$work/report-fifo" 2>&1)"; rc=$?
    check "[ $rc -eq 2 ] && grep -qF -- '--report $work/report-fifo: exists and is not a regular file' <<<\"\$out\"" \
        "$cmd --report FIFO: exit $rc: $out"
    out="$(timeout 20 "$cli" $cmd --model "$work/served" --trace "$work/served/model_index.json" 2>&1)"; rc=$?
    check "[ $rc -eq 2 ] && grep -qF -- 'is a file of the model folder $work/served: refusing to overwrite an input' <<<\"\$out\"" \
        "$cmd --trace on the model's file: exit $rc: $out"
    check "cmp -s '$model/model_index.json' '$work/served/model_index.json'" "$cmd replaced the model's model_index.json"
done

# --- a model's config file of more than 1 MiB is refused before it is parsed: valid JSON of 62 MB
# took 5 GB and 10 s at serve's start-up check, and again at the load. 3 MB here (exit 2 before:
# the check read it and compared the blocks) ------------------------------------------------------
cp -r "$model" "$work/huge"
python3 -c "import json, sys; c = json.load(open(sys.argv[1])); c['pad'] = [0] * (1 << 20); json.dump(c, open(sys.argv[2], 'w'))" \
    "$model/transformer/config.json" "$work/huge/transformer/config.json"
out="$(timeout 20 "$cli" serve --model "$work/huge" --listen 127.0.0.1:0 --vram 8M --resident-blocks 3 2>&1)"; rc=$?
check "[ $rc -eq 4 ] && grep -qF -- \"$work/huge/transformer/config.json: 3146011 bytes; a model's config file holds at most 1 MiB\" <<<\"\$out\"" \
    "serve with a 3 MB transformer/config.json: exit $rc: $out"
expect 4 "transformer/config.json: 3146011 bytes; a model's config file holds at most 1 MiB" -- plan --model "$work/huge"

# --- a dit_forward case's timestep: a number, present, the one its inputs hold (exit 4) --------
mkdir -p "$work/g/cases/c" "$work/g/models"
cp -r "$tests/golden/models/dit-tiny" "$work/g/models/"
cp "$tests/golden/cases/dit-edit-basic"/* "$work/g/cases/c/"
dit_case() { # dit_case PYTHON-EXPR-ON-c: case.json of dit-edit-basic changed by the expression
    python3 -c "import json, sys; c = json.load(open(sys.argv[1])); $1; json.dump(c, open(sys.argv[2], 'w'))" \
        "$tests/golden/cases/dit-edit-basic/case.json" "$work/g/cases/c/case.json"
}
json="$work/g/cases/c/case.json"
dit_case "c['timestep'] = '0.6'"
expect 4 "$json: key 'timestep' must be a number (the transformer's timestep, already divided by 1000), not a string" -- \
    debug case "$work/g/cases/c" --out "$work/d.safetensors"
dit_case "del c['timestep']"
expect 4 "$json: key 'timestep' is missing" -- debug case "$work/g/cases/c" --out "$work/d.safetensors"
dit_case "c['timestep'] = None"
expect 4 "key 'timestep' must be a number (the transformer's timestep, already divided by 1000), not null" -- \
    debug case "$work/g/cases/c" --out "$work/d.safetensors"
dit_case "c['timestep'] = 0.7"
expect 4 "$json: key 'timestep' is 0.7, but $work/g/cases/c/inputs.safetensors's tensor 'timestep' holds 0.6" -- \
    debug case "$work/g/cases/c" --out "$work/d.safetensors"
check "[ ! -e '$work/d.safetensors' ]" "a refused case wrote its output"
# two timesteps that differ are said apart (%g printed 'is 0.6, but ... holds 0.6'); a number
# beyond float's range is compared without an undefined cast
dit_case "c['timestep'] = 0.6000001"
expect 4 "$json: key 'timestep' is 0.6000001, but $work/g/cases/c/inputs.safetensors's tensor 'timestep' holds 0.6" -- \
    debug case "$work/g/cases/c" --out "$work/d.safetensors"
dit_case "c['timestep'] = 1e308"
expect 4 "key 'timestep' is 1e+308, but $work/g/cases/c/inputs.safetensors's tensor 'timestep' holds 0.6" -- \
    debug case "$work/g/cases/c" --out "$work/d.safetensors"
dit_case "c['timestep'] = 0.6000000238418579" # 0.6 in float: the same timestep
expect 0 "wrote $work/d.safetensors" -- debug case "$work/g/cases/c" --out "$work/d.safetensors"
rm -f "$work/d.safetensors"
dit_case "pass"
expect 0 "wrote $work/d.safetensors" -- debug case "$work/g/cases/c" --out "$work/d.safetensors"

# --- a schedule case: a step count or a sequence length twice is refused when read (it ran
# everything, then failed writing one name twice, exit 2); so is a list longer than 64 ---------
mkdir -p "$work/g/cases/s"
cp "$tests/golden/cases/schedule"/* "$work/g/cases/s/"
schedule_case() {
    python3 -c "import json, sys; c = json.load(open(sys.argv[1])); $1; json.dump(c, open(sys.argv[2], 'w'))" \
        "$tests/golden/cases/schedule/case.json" "$work/g/cases/s/case.json"
}
schedule_case "c['steps'] = [4, 8, 4]"
expect 4 "$work/g/cases/s/case.json: key 'steps' holds 4 twice (items 0 and 2)" -- \
    debug case "$work/g/cases/s" --out "$work/s.safetensors"
schedule_case "c['image_seq_lens'] = list(range(1, 66))"
expect 4 "key 'image_seq_lens' must be a non-empty list of at most 64 integers from 1 to 1099511627776" -- \
    debug case "$work/g/cases/s" --out "$work/s.safetensors"
check "[ ! -e '$work/s.safetensors' ]" "a refused schedule case wrote its output"
schedule_case "pass"
expect 0 "wrote $work/s.safetensors" -- debug case "$work/g/cases/s" --out "$work/s.safetensors"

# --- inspect: a FIFO or a device exists, and is not taken for a missing path -------------------
mkfifo "$work/fifo"
expect 4 "$work/fifo: not a file or folder (a FIFO, device or socket)" -- inspect "$work/fifo"
expect 4 "/dev/null: not a file or folder (a FIFO, device or socket)" -- inspect /dev/null
expect 4 "$work/none: no such file or folder" -- inspect "$work/none"

# --- tokenize: stdin that cannot be read (a folder) is an error, not an empty input ------------
tokenizer="$tests/real-configs/qwen-image-edit-2511/tokenizer"
mkdir -p "$work/folder"
out="$("$cli" tokenize "$tokenizer" <"$work/folder" 2>&1)"; rc=$?
check "[ $rc -eq 4 ] && grep -qF 'canvas tokenize: error: tokenize: stdin line 1: cannot read stdin: Is a directory' <<<\"\$out\"" \
    "tokenize with a folder on stdin: exit $rc: $out"
expect 0 "14990" -- tokenize "$tokenizer" <<<"hello"

# --- convert's default shard size is diffusers' 10GB (decimal), and its help says so: in this
# CLI's sizes 10G is 10 GiB -------------------------------------------------------------------
expect 0 "--shard-size SIZE  largest file of the transformer (default 10GB, decimal: diffusers')" -- convert --help

summary
