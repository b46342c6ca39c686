#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where a run computes, as `canvas plan` and the running commands decide it (docs/cuda.md,
# "Choosing the device"): `plan --device` takes edit's names and errors (cuda without a usable
# GPU: exit 1 with the runtime's reason, checked where no NVIDIA driver is; auto: the CPU, and
# the device line says why); --gpu and --viability plan a CUDA GPU's run, its GEMM scratch in
# the device peak, and are refused with --device cpu; --resident-blocks and --link-bandwidth
# by where the run computes; `canvas serve` refuses more resident blocks than the model has,
# as `canvas edit` does, before it listens.
set -u
source "$(dirname "$0")/cli_lib.sh"
export CANVAS_PROBE_CACHE=$work/probe.json
real=$tests/real-configs/qwen-image-edit-2511
model=$tests/golden/models/edit-tiny
case_dir=$tests/golden/cases/edit-cfg
edit=(edit --model "$model" --image "$case_dir/image0.png" --prompt-embeds "$case_dir/inputs.safetensors" --steps 2
      --vae-area 4096 -o "$work/out.png")

# --device: edit's parser, so edit's messages
expect 2 "device 'gpu': give cuda, cpu or auto" -- plan --model "$real" --device gpu
expect 2 "--device needs cuda, cpu or auto" -- plan --model "$real" --device
expect 2 "--gpu plans for a CUDA GPU: not with --device cpu" -- plan --model "$real" --device cpu --gpu 8G
expect 2 "--viability plans CUDA GPUs: not with --device cpu" -- plan --model "$real" --device=cpu --viability
if [ -e /dev/nvidiactl ]; then
    echo "an NVIDIA driver is present: --device cuda may plan this GPU (tools/device-check.sh checks it)"
else
    expect 1 "--device cuda: " -- plan --model "$real" --vram 24G --ram 64G --device cuda
    # auto falls back to the CPU and says so; the plan is --device cpu's
    auto=$("$cli" plan --model "$real" --vram 24G --ram 64G --threads 2 --device auto) && ok || bad "--device auto: exit $?"
    echo "$auto" | grep -q "^device: a 24.00 GiB pool that plays the GPU (--vram).* \[--device auto: the CPU, no CUDA GPU: " &&
        ok || bad "--device auto does not say it chose the CPU: $auto"
    cpu=$("$cli" plan --model "$real" --vram 24G --ram 64G --threads 2 --device cpu) && ok || bad "--device cpu: exit $?"
    echo "$cpu" | grep -q "device auto" && bad "--device cpu speaks of auto: $cpu" || ok
    [ "$(echo "$auto" | grep '^\* ')" = "$(echo "$cpu" | grep '^\* ')" ] && ok || bad "auto and cpu chose differently"
    # the running commands: cuda's error first, not a usage error about --vram
    expect 1 "--device cuda: " -- "${edit[@]}" --device cuda --resident-blocks 1
    expect 1 "--device cuda: " -- "${edit[@]}" --device cuda --vram 8M --link-bandwidth 1G/s
    # serve too: its --resident-blocks check before the load does not come first (it was exit 2)
    out=$(timeout 20 "$cli" serve --model "$model" --listen 127.0.0.1:0 --device cuda --resident-blocks 9 2>&1)
    rc=$?
    [ $rc -eq 1 ] && grep -qF -- "--device cuda: " <<<"$out" && ok || bad "serve --device cuda --resident-blocks 9: exit $rc: $out"
    check "[ ! -e '$work/out.png' ]" "--device cuda left an output"
    # on the CPU a resident prefix and a throttled link need the pool that plays the GPU
    expect 2 "--resident-blocks needs --vram or a CUDA GPU" -- "${edit[@]}" --device auto --resident-blocks 1
    expect 2 "--link-bandwidth needs --vram" -- "${edit[@]}" --link-bandwidth 1G/s
fi

# --gpu: the CUDA backend's sizes. All 60 blocks resident: 41,819,446,208 bytes with the CPU
# backend's sizes; the CUDA backend adds its GEMM scratch (cuBLASLt's 32 MiB workspace and the
# largest GEMM's input in bf16) where the peak is
json=$("$cli" plan --model "$real" --gpu 48G --ram 64G --json) && ok || bad "--gpu 48G: exit $?"
python3 -c 'import json,sys; c=json.loads(sys.argv[1])["chosen"]
assert c["name"]=="full" and c["resident_blocks"]==60 and c["predicted_device_peak_bytes"]==42045577344, c' "$json" &&
    ok || bad "--gpu 48G: not the CUDA backend's peak: $json"
# a --viability row is `plan --gpu SIZE --ram RAM`, so it counts the same
"$cli" plan --model "$real" --viability | grep "^| 8 GiB | 64 GiB |" |
    grep -qF "| offload: 7/60 blocks resident, device 6.87 GiB, host 33.56 GiB |" && ok || bad "--viability 8 GiB row"
"$cli" plan --model "$real" --gpu 8G --ram 64G | grep -qE '^\* offload +yes +7/60 ' && ok ||
    bad "--gpu 8G: not the --viability row's plan"

# serve checks --resident-blocks against the model before it listens (a server that starts
# anyway is killed by the timeout: exit 124)
out=$(timeout 20 "$cli" serve --model "$model" --listen 127.0.0.1:0 --vram 8M --resident-blocks 9 2>&1)
rc=$?
[ $rc -eq 2 ] && grep -qF -- "--resident-blocks 9: the transformer of $model has 2 blocks" <<<"$out" && ok ||
    bad "serve --resident-blocks 9: exit $rc: $out"
expect 2 "--resident-blocks 9: the transformer of $model has 2 blocks" -- "${edit[@]}" --vram 8M --resident-blocks 9
summary
