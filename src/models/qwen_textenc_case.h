/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_case.h — a `textenc_forward` golden case (tests/golden/README.md):
 * CASE_DIR/case.json gives the op and the model folder (relative to the golden root, two
 * folders above the case; the encoder is its text_encoder/ folder);
 * CASE_DIR/inputs.safetensors holds input_ids [1, L] (I64) and, with images,
 * pixel_values [S, P] (F32) and image_grid_thw [n, 3] (I64).
 *
 * Shared by `canvas debug case` and the tests, so both read a case the same way. */
#ifndef CANVAS_MODELS_QWEN_TEXTENC_CASE_H
#define CANVAS_MODELS_QWEN_TEXTENC_CASE_H

#include <stdint.h>

#include "canvas.h"
#include "io/golden_case.h"
#include "mem/mem_device.h"
#include "ops/ops.h"

typedef struct textenc_case {
    char *model_dir;            /* <golden root>/<model>/text_encoder */
    int32_t *ids;               /* [n_ids] */
    int64_t n_ids;
    float *pixel_values;        /* [patches, patch_values], NULL without images */
    int64_t patches, patch_values;
    int64_t (*grid_thw)[3];     /* [n_images] */
    int n_images;
} textenc_case;

/* Read a case (the model folder is only named). CANVAS_ERR_INPUT naming the file and
 * key/tensor for a bad case; CANVAS_ERR_UNSUPPORTED for another op. */
canvas_status textenc_case_open(const char *case_dir, textenc_case **out);
void textenc_case_free(textenc_case *c);

/* Open the case and its encoder, run the forward and hand the sink, under the names of
 * expected.safetensors: vision.patch_embed, vision.block.K, vision_embeds,
 * vision.window_index, vision.cu_window_seqlens, vision.cu_seqlens (with images; the last
 * three integers as floats),
 * inputs_embeds, layer.K, hidden_states (those three [1, L, D]) and position_ids [3, 1, L]
 * (as floats: exact below 2^24). be (the op backend) may be NULL: the CPU, one thread. */
canvas_status textenc_case_run(const char *case_dir, op_backend *be, golden_sink_fn sink, void *ctx);

/* The same with every group placed on `device` (NULL: host memory, as textenc_case_run) and
 * computed with `be`, that device's op backend (`canvas debug case --device cuda`). */
canvas_status textenc_case_run_on(const char *case_dir, op_backend *be, mem_device *device, golden_sink_fn sink,
                                  void *ctx);

#endif
