/* SPDX-License-Identifier: Apache-2.0 */
/* convert_comfy.h — `canvas convert ... OUT.safetensors`: the transformer as one file in
 * ComfyUI's layout (diffusion_models/), which ComfyUI and --transformer FILE both load.
 *
 * Every key under "model.diffusion_model."; the matrices cmd_convert quantises (2-D
 * "transformer_blocks.N.*.weight") in fp8 with one scale per tensor, as ComfyUI's scaled
 * fp8: "L.weight" F8_E4M3 / F8_E5M2 codes and "L.scale_weight" an F32 scalar, plus the
 * "scaled_fp8" marker (an empty tensor of the fp8 type); QUANT_NONE copies every tensor as
 * stored. zero_cond_t (Edit-2511) is written as ComfyUI's "__index_timestep_zero__"
 * marker. The whole file is built in memory (the quantised copies: about 1 byte per
 * parameter) and written through a temporary file renamed at the end. */
#ifndef CANVAS_CLI_CONVERT_COMFY_H
#define CANVAS_CLI_CONVERT_COMFY_H

#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "tensor/quant.h"

/* 1 for the matrices every converted format quantises (where the format fits its width):
 * 2-D "transformer_blocks.N.*.weight" in F32, F16 or BF16. */
int convert_block_matrix(const st_tensor *t);

/* CANVAS_ERR_USAGE for a format ComfyUI's scaled fp8 cannot hold (per-row fp8, nf4, q8). */
canvas_status convert_write_comfy(const weight_set *files, const qwen_dit_config *config, quant_choice choice,
                                  const char *out_path);

#endif
