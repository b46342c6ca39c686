#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on the embedded default: installs missing Debian packages, builds (quietly:
# the build's output goes to build/demo-build.log, and its tail is shown only if the build
# fails), makes the demo model and runs a text-prompted edit on it on a small capped "GPU"
# (--vram 8M: the tiny transformer's 2 blocks fit, so the plan keeps both resident). It
# prints, in order: "encoding the prompt"; a warning that the negative prompt is " " (CFG 4
# without --negative-prompt, as the reference pipelines run it); the vae-encode line; the
# plan line; a progress bar per denoising step (s/it, ETA, device and host memory); the
# vae-decode and done lines; and the path of the image it wrote, build/demo-edit.png.
#
# The demo model (build/demo-model, made here, not committed) is a random-weight
# Qwen-Image-Edit-2511-shaped pipeline: the golden tiny transformer, VAE and scheduler
# (tests/golden/models/edit-tiny), the real tokenizer files (tests/real-configs/...
# /tokenizer) and a tiny text encoder with the real 152,064-row vocabulary
# (build/make_demo_model). Random weights draw noise: the demo shows the runtime working end
# to end, not a picture.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/install-deps.sh
mkdir -p build
log=build/demo-build.log
echo "demo: building into build/ (output in $log) ..."
if ! bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1; then
    echo "demo: the build failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
fi
model=build/demo-model
[ -d "$model" ] || bash tools/make_demo_model.sh build "$model" >>"$log" 2>&1
./build/canvas edit --model "$model" \
    --image tests/golden/cases/edit-cfg/image0.png \
    --prompt "Make the sky purple and add a small red boat." \
    --vae-area 4096 --steps 8 --cfg 4 --seed 42 --vram 8M --progress \
    -o build/demo-edit.png
echo "demo: the edited image is build/demo-edit.png"
