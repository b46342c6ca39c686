/* SPDX-License-Identifier: Apache-2.0 */
/* prompt_case.h — running an `encode_prompt` golden case (tests/golden/README.md):
 * CASE_DIR/case.json gives the model (relative to the golden root, two folders above the
 * case; its text_encoder/ is used), the tokenizer (relative to the golden root's parent),
 * the pipeline class (the image processor's settings from processor/preprocessor_config.json
 * next to the tokenizer folder when there is one, else transformers' defaults), `prompt`, optional `negative_prompt` and `images` (file names in the
 * case folder, any size).
 *
 * The sink receives `input_ids` [1, L] (after <|image_pad|> expansion), each
 * `processed_image.N` [H, W, 3] (0..255 after the LANCZOS and BICUBIC resizes),
 * `prompt_embeds` [1, L - drop, D] and `prompt_embeds_mask` [1, L - drop] (ones: nothing
 * is padded), and with a negative prompt `negative_input_ids`, `negative_prompt_embeds`
 * and its mask likewise. Shared by `canvas debug case` and the tests. */
#ifndef CANVAS_PIPELINE_PROMPT_CASE_H
#define CANVAS_PIPELINE_PROMPT_CASE_H

#include "ops/threadpool.h"
#include "canvas.h"
#include "io/golden_case.h"

canvas_status prompt_case_run(const char *case_dir, thread_pool *pool, golden_sink_fn sink, void *ctx);

#endif
