#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# canvas bench on the edit-cfg golden case under an 8 MiB device: a row per preset, the
# stored-format presets' outputs identical (max |diff| exactly 0), fp8 / nf4 close but not
# equal, the planner's predicted device peak equal to the measured one for every row, and
# the predicted host peak equal to the measured one for every row (and with a device and
# without, at two more image sizes), --json parses; usage errors exit 2, no preset fitting exits 3.
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE=$work/probe.json
case_dir=$tests/golden/cases/edit-cfg

table=$("$cli" bench --case "$case_dir" --vram 8M --allow-quantize --threads 2 2>/dev/null) && ok || bad "bench: exit $?"
for preset in full sequential offload fp8 nf4 auto; do
    echo "$table" | grep -q "^$preset " && ok || bad "bench: no $preset row: $table"
done

json=$("$cli" bench --case "$case_dir" --vram 8M --allow-quantize --threads 2 --json 2>/dev/null) && ok || bad "--json: exit $?"
python3 - "$json" <<'PY' && ok || bad "--json content: $json"
import json, sys
rows = {r["preset"]: r for r in json.loads(sys.argv[1])["rows"]}
assert list(rows) == ["full", "sequential", "offload", "fp8", "nf4", "auto"], list(rows)
for name, r in rows.items():
    assert r["ran"], name
    assert r["predicted_device_peak_bytes"] == r["measured_device_peak_bytes"] > 0, (name, r)
    assert r["seconds_total"] > 0 and r["seconds_per_step"] > 0, (name, r)
for name in ("full", "sequential", "offload"):
    assert rows[name]["weights"] == "as stored" and rows[name]["max_abs_diff"] == 0, (name, rows[name])
assert rows["sequential"]["resident_blocks"] == 0 and rows["full"]["resident_blocks"] == 2
for name in ("fp8", "nf4"):
    assert rows[name]["weights"] == name and 0 < rows[name]["max_abs_diff"] < 0.1, (name, rows[name])
assert rows["nf4"]["measured_device_peak_bytes"] < rows["fp8"]["measured_device_peak_bytes"] < rows["full"]["measured_device_peak_bytes"]
assert rows["auto"]["plan"] == "full" and rows["auto"]["max_abs_diff"] == 0
for name, r in rows.items():
    assert r["predicted_host_peak_bytes"] == r["measured_host_peak_bytes"] > 0, (name, r)
print("bench --json: 6 rows; predicted = measured device and host peaks in each; stored-format rows identical")
PY

# host peaks, predicted = measured, at other sizes (the VAE's passes hold the peak at 256x256),
# on a device and without one (the transformer computes in host memory)
for size in 64 256; do
    for vram in 8M ""; do
        json=$("$cli" bench --model $tests/golden/models/edit-tiny --image "$case_dir/image0.png" \
               --prompt-embeds "$case_dir/inputs.safetensors" --width $size --height $size --vae-area $((size * size)) \
               --steps 2 --threads 2 ${vram:+--vram $vram} --json 2>/dev/null) && ok || bad "bench ${size}x$size ${vram:-host}: exit $?"
        python3 - "$json" <<'PY' && ok || bad "host peaks ${size}x$size ${vram:-host}: $json"
import json, sys
rows = [r for r in json.loads(sys.argv[1])["rows"] if r["ran"]]
assert len(rows) >= 2, rows
for r in rows:
    assert r["predicted_host_peak_bytes"] == r["measured_host_peak_bytes"] > 0, r
PY
    done
done

# without --allow-quantize fp8 and nf4 are listed as not fitting (lower precision than the files)
json=$("$cli" bench --case "$case_dir" --vram 8M --threads 2 --json 2>/dev/null) && ok || bad "no --allow-quantize: exit $?"
python3 -c 'import json,sys; r={x["preset"]: x for x in json.loads(sys.argv[1])["rows"]}
assert not r["fp8"]["ran"] and "allow-quantize" in r["fp8"]["reason"] and r["full"]["ran"]' "$json" && ok ||
    bad "without --allow-quantize: $json"

# a run's report holds its plan's peaks beside the measured ones; a --ram cap at the predicted
# host peak is met (no fallback, the same image), one byte less is refused before any work
edit=(edit --model $tests/golden/models/edit-tiny --image "$case_dir/image0.png"
      --prompt-embeds "$case_dir/inputs.safetensors" --steps 2 --vram 16M --vae-area 4096 --threads 2)
"$cli" "${edit[@]}" -o $work/free.png --report $work/free.json 2>/dev/null && ok || bad "edit with --report: exit $?"
predicted=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
assert r["predicted_host_peak_bytes"] == r["host_peak_bytes"] > 0 and r["fallbacks"] == 0, r
assert r["predicted_device_peak_bytes"] == r["device_peak_bytes"] > 0, r
print(r["predicted_host_peak_bytes"])' $work/free.json) && ok || bad "report peaks: $(cat $work/free.json)"
"$cli" "${edit[@]}" --ram "$predicted" -o $work/capped.png --report $work/capped.json 2>/dev/null && ok ||
    bad "--ram $predicted: exit $?"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["host_peak_bytes"] == int(sys.argv[2]) and r["fallbacks"] == 0, r' \
    $work/capped.json "$predicted" && ok || bad "capped at the prediction: $(cat $work/capped.json)"
cmp -s $work/free.png $work/capped.png && ok || bad "capped run: another image"
expect 3 "no plan fits" -- "${edit[@]}" --ram $((predicted - 1)) -o $work/under.png
[ ! -e $work/under.png ] && ok || bad "a refused run wrote its output"

# a cap that leaves no room for a whole 512x512 decode: planned tiled, and the tiled passes'
# host peak predicted exactly too (a larger cap never refuses what a smaller one runs)
for ram in 36M 40M; do
    out=$("$cli" "${edit[@]}" --width 512 --height 512 --ram $ram -o $work/tiled-$ram.png --report $work/tiled.json 2>&1) &&
        ok || bad "512x512 --ram $ram: exit $?: $out"
    echo "$out" | grep -q "VAE tiled (host memory)" && ok || bad "512x512 --ram $ram: not tiled: $out"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["predicted_host_peak_bytes"] == r["host_peak_bytes"] and r["fallbacks"] == 0, r' \
        $work/tiled.json && ok || bad "tiled host peak at --ram $ram: $(cat $work/tiled.json)"
done

expect 3 "no preset fits" -- bench --case "$case_dir" --vram 64K --threads 2
expect 2 "give --case CASE_DIR or --model DIR" -- bench --vram 8M
summary
