#!/usr/bin/env bash
# canvas plan: from config files alone (the real Edit-2511 configs), --json keys, the
# viability table, --case, exit 3 with a suggestion when nothing fits.
set -u
tests=${CANVAS_TEST_DIR:-tests}
cli=${CANVAS_CLI:-build/canvas}
export CANVAS_PROBE_CACHE=${TMPDIR:-/tmp}/canvas_test_plan_probe.$$.json
trap 'rm -f "$CANVAS_PROBE_CACHE"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
real=$tests/real-configs/qwen-image-edit-2511

out=$("$cli" plan --model "$real" --size 1024x1024 --vram 24G --ram 64G) || fail "plan 24G: exit $?"
echo "$out" | grep -q "^\* offload" || fail "plan 24G: offload not chosen: $out"
echo "$out" | grep -q "weights absent" || fail "plan 24G: does not say the weights are absent"

json=$("$cli" plan --model "$real" --size 1024x1024 --vram 24G --ram 64G --json) || fail "--json: exit $?"
for key in '"chosen": {"name"' predicted_device_peak_bytes predicted_host_peak_bytes predicted_seconds_per_step \
    '"candidates": [' '"fits": ' '"reason": '; do
    echo "$json" | grep -qF "$key" || fail "--json: no $key in $json"
done
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["chosen"]["name"]=="offload" and len(d["candidates"])==5' "$json" ||
    fail "--json does not parse or has the wrong content"

table=$("$cli" plan --model "$real" --viability) || fail "--viability: exit $?"
[ "$(echo "$table" | grep -c '^| [0-9]* GB | [0-9]* GB |')" -eq 8 ] || fail "--viability: not 8 rows: $table"

err=$(mktemp)
"$cli" plan --model "$real" --vram 1G --ram 64G >/dev/null 2>"$err"; rc=$?
[ $rc -eq 3 ] && grep -q "even with every block streamed: give a device of at least" "$err" ||
    fail "--vram 1G: exit $rc, wanted 3 with a suggestion: $(cat "$err")"
rm -f "$err"

"$cli" plan --case "$tests/golden/cases/edit-cfg" --vram 8M --json | grep -q '"name": "full"' || fail "--case: not full"
"$cli" plan --model "$real" --strategy bogus 2>/dev/null; [ $? -eq 2 ] || fail "--strategy bogus: not exit 2"
[ $failures -eq 0 ] && echo "test_plan_cli: ok"
exit $((failures > 0))
