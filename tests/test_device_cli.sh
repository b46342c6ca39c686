#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# --device (docs/cuda.md): cuda without a usable CUDA device is exit 1 with the runtime's
# reason, never a CPU run (checked where no NVIDIA driver is); cpu and
# auto run the case on the CPU with the same output as no flag; a bad name is a usage error
# (exit 2).
set -u
source "$(dirname "$0")/cli_lib.sh"
case_dir=$tests/golden/cases/dit-bf16

if [ -e /dev/nvidiactl ]; then
    echo "an NVIDIA driver is present: --device cuda may compute here (tools/device-check.sh checks it)"
else
    expect 1 "--device cuda: " -- debug case "$case_dir" --out "$work/cuda.safetensors" --device cuda
    check "[ ! -e '$work/cuda.safetensors' ]" "--device cuda left an output"
fi
expect 2 "device 'gpu': give cuda, cpu or auto" -- debug case "$case_dir" --out "$work/x.safetensors" --device gpu
expect 2 "--device needs cuda, cpu or auto" -- debug case "$case_dir" --out "$work/x.safetensors" --device
expect 0 "" -- debug case "$case_dir" --out "$work/none.safetensors"
expect 0 "" -- debug case "$case_dir" --out "$work/cpu.safetensors" --device cpu
expect 0 "" -- debug case "$case_dir" --out "$work/auto.safetensors" --device=auto
check "cmp -s '$work/none.safetensors' '$work/cpu.safetensors'" "--device cpu changed the output"
check "cmp -s '$work/none.safetensors' '$work/auto.safetensors'" "--device auto changed the output"
summary
