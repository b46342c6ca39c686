#!/usr/bin/env bash
# canvas plan: from config files alone (the real Edit-2511 configs), --json keys, the
# viability table, --case, exit 3 with a suggestion when nothing fits.
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE=$work/probe.json
real=$tests/real-configs/qwen-image-edit-2511

out=$("$cli" plan --model "$real" --size 1024x1024 --vram 24G --ram 64G) && ok || bad "plan 24G: exit $?"
echo "$out" | grep -q "^\* offload" && ok || bad "plan 24G: offload not chosen: $out"
echo "$out" | grep -q "weights absent" && ok || bad "plan 24G: does not say the weights are absent"

json=$("$cli" plan --model "$real" --size 1024x1024 --vram 24G --ram 64G --json) && ok || bad "--json: exit $?"
for key in '"chosen": {"name"' predicted_device_peak_bytes predicted_host_peak_bytes predicted_seconds_per_step \
    '"candidates": [' '"fits": ' '"reason": '; do
    echo "$json" | grep -qF "$key" && ok || bad "--json: no $key in $json"
done
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["chosen"]["name"]=="offload" and len(d["candidates"])==5' "$json" &&
    ok || bad "--json does not parse or has the wrong content"

table=$("$cli" plan --model "$real" --viability) && ok || bad "--viability: exit $?"
[ "$(echo "$table" | grep -c '^| [0-9]* GB | [0-9]* GB |')" -eq 8 ] && ok || bad "--viability: not 8 rows: $table"

expect 3 "even with every block streamed: give a device of at least" -- plan --model "$real" --vram 1G --ram 64G
# nothing as stored fits 2G, fp8 would: the suggestion names it
expect 3 "or --allow-quantize: the fp8 plan fits" -- plan --model "$real" --vram 2G --ram 64G

"$cli" plan --case "$tests/golden/cases/edit-cfg" --vram 8M --json | grep -q '"name": "full"' && ok || bad "--case: not full"
expect 2 "" -- plan --model "$real" --strategy bogus
summary
