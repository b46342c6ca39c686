#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on the embedded default: installs missing Debian packages, builds, makes the
# demo model and runs a text-prompted edit on it, its transformer streamed through a small
# capped "GPU": prints the plan, a progress bar and the output path.
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
bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release
model=build/demo-model
[ -d "$model" ] || bash tools/make_demo_model.sh build "$model"
./build/canvas edit --model "$model" \
    --image tests/golden/cases/edit-cfg/image0.png \
    --prompt "Make the sky purple and add a small red boat." \
    --vae-area 4096 --steps 8 --cfg 4 --seed 42 --vram 8M --progress \
    -o build/demo-edit.png
