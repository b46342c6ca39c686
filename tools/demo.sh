#!/usr/bin/env bash
# The main job on the embedded default: installs missing Debian packages, builds, and
# runs an edit on the bundled tiny model (a random-weight Qwen-Image-Edit-2511-shaped
# pipeline) with the golden case's image and prompt embeddings, its transformer streamed
# through a small capped "GPU": prints the plan, a progress bar and the output path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/install-deps.sh
bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release
./build/canvas edit --model tests/golden/models/edit-tiny \
    --image tests/golden/cases/edit-cfg/image0.png \
    --prompt-embeds tests/golden/cases/edit-cfg/inputs.safetensors \
    --vae-area 4096 --steps 8 --cfg 4 --seed 42 --vram 8M --progress \
    -o build/demo-edit.png
