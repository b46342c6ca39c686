/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae_case.h — running a `vae_encode` / `vae_decode` golden case
 * (tests/golden/README.md): CASE_DIR/case.json gives the op, the model folder (relative to
 * the golden root, two folders above the case; the VAE is its vae/ folder), height and
 * width in pixels; CASE_DIR/inputs.safetensors holds `image` [1, C, 1, H, W] (encode) or
 * `latent` [1, z_dim, 1, H/8, W/8] (decode).
 *
 * Shared by `canvas debug case` and the tests, so both read a case the same way. */
#ifndef CANVAS_MODELS_QWEN_IMAGE_VAE_CASE_H
#define CANVAS_MODELS_QWEN_IMAGE_VAE_CASE_H

#include <stdint.h>

#include "canvas.h"
#include "io/golden_case.h"
#include "ops/ops.h"


/* Load the case's VAE, run the op, hand `latent` [1, z_dim, 1, h, w] or `image`
 * [1, C, 1, H, W] to the sink. be (the op backend) may be NULL: the CPU, one thread. CANVAS_ERR_INPUT naming the file and
 * key/tensor for a bad case; CANVAS_ERR_UNSUPPORTED for another op. */
canvas_status vae_case_run(const char *case_dir, op_backend *be, golden_sink_fn sink, void *ctx);

#endif
