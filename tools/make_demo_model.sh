#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Assemble the demo model folder OUT_DIR (must not exist yet): a random-weight
# Qwen-Image-Edit-2511-shaped pipeline made of the golden tiny transformer, VAE and scheduler
# (tests/golden/models/edit-tiny), the real tokenizer files (tests/real-configs/
# qwen-image-edit-2511/tokenizer) and a tiny text encoder with the real 152,064-row
# vocabulary, written by the make_demo_model program of BUILD_DIR (about 10 MB, so it is
# generated rather than committed).
#
#   bash tools/make_demo_model.sh BUILD_DIR OUT_DIR
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: bash tools/make_demo_model.sh BUILD_DIR OUT_DIR" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$1" out="$2"
if [ -e "$out" ]; then
    echo "make_demo_model.sh: $out exists; refusing to write into it" >&2
    exit 2
fi
# built under a temporary name and renamed when complete: OUT_DIR is never half made
tmp="$(mktemp -d "$(dirname "$out")/.demo-model.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$tmp" # mktemp's 0700 would stay on OUT_DIR
cp -r "$root/tests/golden/models/edit-tiny/transformer" "$root/tests/golden/models/edit-tiny/vae" \
    "$root/tests/golden/models/edit-tiny/scheduler" "$tmp/"
cp -r "$root/tests/real-configs/qwen-image-edit-2511/tokenizer" "$tmp/"
cat > "$tmp/model_index.json" <<'JSON'
{
  "_class_name": "QwenImageEditPlusPipeline",
  "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
  "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
  "tokenizer": ["transformers", "Qwen2Tokenizer"],
  "transformer": ["diffusers", "QwenImageTransformer2DModel"],
  "vae": ["diffusers", "AutoencoderKLQwenImage"]
}
JSON
"$build/make_demo_model" "$tmp"
mv "$tmp" "$out"
trap - EXIT
