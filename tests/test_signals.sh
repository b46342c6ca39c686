#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_signals.sh — SIGTERM and SIGINT while `canvas edit` runs: at the start (as it
# loads), in the VAE encode, in a denoising step and at the decode. The run stops at its
# next safe point, exits 130 with one error line saying it was stopped, and leaves nothing
# under the output name and no temporary file; stopped at the decode it may also have
# finished first, and then the output is whole; sent at once, the signal may also come
# before the program has set up its handler (exit 143, nothing written). The steps are slowed down (every block
# streamed at 1 MB/s) so that each signal lands inside its phase; the phases are read from
# --json-progress. And SIGINT while `canvas convert` writes a GGUF file of a 240-block copy
# of the tiny transformer: exit 130, no output, no temporary file.
set -u
source "$(dirname "$0")/cli_lib.sh"
case_dir="$tests/golden/cases/edit-cfg"
slow=(--model "$tests/golden/models/edit-tiny" --prompt-embeds "$case_dir/inputs.safetensors"
      --image "$case_dir/image0.png" --steps 8 --vae-area 4096
      --vram 4M --resident-blocks 0 --link-bandwidth 1M/s --json-progress)

# stop_at SIGNAL EVENT_PATTERN LABEL: start the run, send SIGNAL once a progress line matches
# EVENT_PATTERN ("" sends it 0.1 s after the start, while it loads or soon after), check how it ended.
stop_at() {
    local signal=$1 pattern=$2 label=$3
    local out="$work/$label.png"
    rm -f "$work/events" "$work/err"
    "$cli" edit "${slow[@]}" -o "$out" >"$work/events" 2>"$work/err" &
    local pid=$! waited=0
    sleep 0.1 # the subshell has exec'd by then: killed before, it would run this script's EXIT trap
    if [ -n "$pattern" ]; then
        until grep -q "$pattern" "$work/events" 2>/dev/null; do
            sleep 0.05
            waited=$((waited + 1))
            if [ $waited -gt 1200 ] || ! kill -0 $pid 2>/dev/null; then break; fi
        done
    fi
    kill -s "$signal" $pid 2>/dev/null
    wait $pid
    local rc=$?
    local leftovers
    leftovers="$(find "$work" -name "*.tmp" -o -name ".*partial*" | head -3)"
    check "[ -z \"$leftovers\" ]" "$label: temporary files left: $leftovers"
    if [ "$label" = start ] && [ $rc -eq 143 ]; then
        # killed before the program had set its handler up: nothing had started
        check "[ ! -e '$out' ]" "$label: an output was left"
        echo "  $label: SIG$signal came before the handler was set up: exit 143, nothing written"
        return
    fi
    if [ "$label" = decode ] && [ $rc -eq 0 ]; then
        # finished before the signal came: the output is whole (a PNG ends with IEND)
        check "tail -c 12 '$out' | grep -q IEND" "$label: finished, but the output is not a whole PNG"
        echo "  $label: the run had finished before $signal came: whole output"
        return
    fi
    check "[ $rc -eq 130 ]" "$label: SIG$signal: exit $rc, wanted 130: $(tail -2 "$work/err")"
    check "[ ! -e '$out' ]" "$label: an output was left"
    check "grep -qE 'stopped|cancelled' '$work/err'" "$label: no 'stopped' or 'cancelled' on stderr: $(tail -2 "$work/err")"
    check "grep -q '\"event\":\"error\"' '$work/events'" "$label: no error event in --json-progress"
    echo "  $label: SIG$signal: exit $rc, $(grep -c '"event":"step"' "$work/events") steps done, nothing written"
}

stop_at TERM "" start
stop_at INT '"phase":"vae-encode"' vae-encode
stop_at TERM '"event":"step"' step
stop_at TERM '"phase":"vae-decode"' decode

# convert: a ComfyUI-style file of the tiny transformer with its block 0 repeated 240 times
# (about 140 MB), converted to Q8_0; SIGINT once the temporary output has appeared
big="$work/big.safetensors"
python3 - "$tests/golden/models/edit-tiny/transformer" "$big" <<'PY'
import json, os, re, struct, sys
src, out = sys.argv[1], sys.argv[2]
tensors = {}
for name in sorted(os.listdir(src)):
    if not name.endswith(".safetensors"):
        continue
    with open(os.path.join(src, name), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for key, info in header.items():
        if key != "__metadata__":
            a, b = info["data_offsets"]
            tensors[key] = (info["dtype"], info["shape"], data[a:b])
block0 = {k[len("transformer_blocks.0."):]: v for k, v in tensors.items() if k.startswith("transformer_blocks.0.")}
kept = {k: v for k, v in tensors.items() if not k.startswith("transformer_blocks.")}
for i in range(240):
    for k, v in block0.items():
        kept["transformer_blocks.%d.%s" % (i, k)] = v
header, offset, blobs = {}, 0, []
for k in sorted(kept):
    dtype, shape, blob = kept[k]
    header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
text = json.dumps(header).encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for blob in blobs:
        f.write(blob)
PY
[ -s "$big" ] && ok || bad "could not write the 240-block transformer"
rm -f "$work/big.gguf"
"$cli" convert --transformer "$big" "$work/big.gguf" --weights q8_0 2>"$work/err" &
pid=$! waited=0
until ls -a "$work" | grep -q '^\.big\.gguf\..*tmp$'; do
    sleep 0.02
    waited=$((waited + 1))
    if [ $waited -gt 1500 ] || ! kill -0 $pid 2>/dev/null; then break; fi
done
kill -s INT $pid 2>/dev/null
wait $pid
rc=$?
check "[ $rc -eq 130 ]" "convert: SIGINT: exit $rc, wanted 130: $(tail -2 "$work/err")"
check "[ ! -e '$work/big.gguf' ]" "convert: an output was left"
leftovers="$(ls -a "$work" | grep -E 'tmp|partial' | head -3)"
check "[ -z \"$leftovers\" ]" "convert: temporary files left: $leftovers"
grep -q "stopped by a signal" "$work/err" && ok || bad "convert: no 'stopped by a signal': $(tail -2 "$work/err")"
echo "  convert: SIGINT while writing: exit $rc, nothing left"
rm -f "$big"
summary
