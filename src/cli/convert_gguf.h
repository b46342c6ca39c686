/* SPDX-License-Identifier: Apache-2.0 */
/* convert_gguf.h — `canvas convert ... OUT.gguf --weights TYPE`: the transformer as one
 * GGUF file in the layout of city96's ComfyUI-GGUF Qwen-Image files, which ComfyUI's
 * UnetLoaderGGUF loads.
 *
 * general.architecture "qwen_image", general.quantization_version 2; tensor names as the
 * diffusers / ComfyUI file has them, without the "model.diffusion_model." prefix; dims
 * innermost first as GGUF stores them. Which tensors become TYPE: the matrices cmd_convert
 * quantises for every format (2-D "transformer_blocks.N.*.weight") whose rows are whole
 * blocks of TYPE; every other 1-D tensor (biases, norms) F32, as ComfyUI-GGUF's convert.py
 * keeps them; every other tensor (img_in, txt_in, the time embedder, norm_out, proj_out,
 * block matrices whose width is not whole blocks) as stored: F32, F16 or BF16. Edit-2511's
 * zero_cond_t is written as ComfyUI's "__index_timestep_zero__" marker (an empty F32
 * tensor). Quantised row by row from the mapped source and streamed to the file: one row
 * of f32 and its blocks in memory, never a copy of the model. The file is read back with
 * the strict reader (io/gguf.h) and its tensors compared with the plan before success. */
#ifndef CANVAS_CLI_CONVERT_GGUF_H
#define CANVAS_CLI_CONVERT_GGUF_H

#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"

/* The ggml type of a --weights name: the 13 writable types in lower case ("q4_k", "bf16").
 * 0 when there is none. */
int convert_gguf_type(const char *name, uint32_t *ggml_type);

/* The names convert_gguf_type takes, for messages: "f32, f16, bf16, q8_0, ...". */
const char *convert_gguf_type_names(void);

/* Write the transformer `files` (checked against `config`'s architecture) to out_path. */
canvas_status convert_write_gguf(const weight_set *files, const qwen_dit_config *config, uint32_t ggml_type,
                                 const char *out_path);

#endif
