#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The settings file through the command line: --config FILE, ./canvas.yaml found by
# default, flags win over the file, a bad file exits 4 naming the file, line and key.
set -u
tests=$(cd "${CANVAS_TEST_DIR:-tests}" && pwd)
cli=$(cd "$(dirname "${CANVAS_CLI:-build/canvas}")" && pwd)/$(basename "${CANVAS_CLI:-build/canvas}")
work=$(mktemp -d /tmp/canvas_test_config_cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
export CANVAS_PROBE_CACHE=$work/probe.json HOME=$work
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
edit=(edit --model "$tests/golden/models/edit-tiny" --image "$tests/golden/cases/edit-cfg/image0.png"
      --prompt-embeds "$tests/golden/cases/edit-cfg/inputs.safetensors" --vae-area 4096 --threads 2 -o "$work/o.png")

printf 'memory_management:\n  vram: 8M\n  strategy: sequential\n  default_inference_steps: 3\n' > "$work/seq.yaml"
out=$("$cli" "${edit[@]}" --config "$work/seq.yaml" 2>&1) || fail "--config seq.yaml: exit $?: $out"
grep -q "0 of 2 blocks resident" <<<"$out" || fail "the file's strategy sequential not used: $out"
grep -q ", 3 steps" <<<"$out" || fail "default_inference_steps 3 not used: $out"
out=$("$cli" "${edit[@]}" --config "$work/seq.yaml" --strategy full --steps 2 2>&1) || fail "override: exit $?"
grep -q "2 of 2 blocks resident" <<<"$out" && grep -q ", 2 steps" <<<"$out" || fail "flags do not win over the file: $out"

# ./canvas.yaml is found without --config; a flag overrides its cap
printf 'memory_management:\n  vram: 64K\n' > "$work/canvas.yaml"
(cd "$work" && "$cli" "${edit[@]}" >/dev/null 2>&1); rc=$?
[ $rc -eq 3 ] || fail "./canvas.yaml with vram 64K: exit $rc, wanted 3"
(cd "$work" && "$cli" "${edit[@]}" --vram 8M >/dev/null 2>&1) || fail "--vram 8M over ./canvas.yaml: exit $?"
rm -f "$work/canvas.yaml"

# ~/.config/canvas/config.yaml when there is no ./canvas.yaml
mkdir -p "$work/.config/canvas"
printf 'memory_management:\n  vram: 64K\n' > "$work/.config/canvas/config.yaml"
(cd "$work" && "$cli" "${edit[@]}" >/dev/null 2>&1); rc=$?
[ $rc -eq 3 ] || fail "~/.config/canvas/config.yaml with vram 64K: exit $rc, wanted 3"
rm -rf "$work/.config"

printf 'memory_management:\n  vram: 8M\n  colour: blue\n' > "$work/bad.yaml"
err=$("$cli" "${edit[@]}" --config "$work/bad.yaml" 2>&1); rc=$?
[ $rc -eq 4 ] && grep -qF "$work/bad.yaml:3: unknown key 'colour'" <<<"$err" || fail "bad key: exit $rc: $err"
err=$("$cli" debug case "$tests/golden/cases/edit-cfg" --out "$work/d.safetensors" --config "$work/bad.yaml" 2>&1); rc=$?
[ $rc -eq 4 ] || fail "debug case with a bad file: exit $rc: $err"
"$cli" "${edit[@]}" --config "$work/missing.yaml" >/dev/null 2>&1; rc=$?
[ $rc -eq 4 ] || fail "missing --config file: exit $rc, wanted 4"
[ ! -e "$work/o.png" ] || [ -s "$work/o.png" ] || fail "an empty output was left"
[ $failures -eq 0 ] && echo "test_config_cli: ok"
exit $((failures > 0))
