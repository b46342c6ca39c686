/* SPDX-License-Identifier: Apache-2.0 */
/* weights_file.h — one component's weights from a single file, as ComfyUI users have them
 * (diffusion_models/qwen_image_edit_2511_*.safetensors, text_encoders/qwen_2.5_vl_7b*.safetensors,
 * vae/qwen_image_vae.safetensors), presented as the weight_set a component folder gives
 * (io/model_dir.h) under the names the loaders expect.
 *
 * Which tensors belong to the component: the file is searched for the component's anchor
 * tensor ("img_in.weight" for the transformer; "decoder.conv_in.weight" or the original
 * "decoder.conv1.weight" for the VAE; "model.language_model.embed_tokens.weight" or
 * "model.embed_tokens.weight" for the text encoder) at the end of a name, on a '.'
 * boundary. What stands before it is the key prefix ("" for a split file,
 * "model.diffusion_model." / "first_stage_model." / "text_encoders.qwen25_7b.transformer."
 * in a whole checkpoint); the prefix is stripped and tensors outside it are left out, so
 * one all-in-one checkpoint can be given for every component. Marker tensors named
 * "__*__" (ComfyUI's model-option buffers) are not weights and are left out; the one for
 * Edit-2511's zero_cond_t, "__index_timestep_zero__", is recorded in the set. A VAE in the
 * original Wan layout (spec A.11) is renamed to the diffusers names.
 *
 * A GGUF file (by its ".gguf" name or its magic; city96's ComfyUI-GGUF layout: the
 * ComfyUI / diffusers names, with or without the prefix) is read strictly (io/gguf.h) and
 * gives the same set: tensors in F32, F16 or BF16 are those dtypes, exactly as a safetensors
 * file's; a tensor in a ggml block type (Q8_0, Q4_K, ...) is DTYPE_U8 holding its blocks under
 * its logical shape (nbytes: the blocks' bytes), and weights_ggml_type says which type
 * (io/quant_loader.h turns it into a tensor/quant.h format in place, no copy). A tensor
 * ComfyUI-GGUF's converter reshaped ("comfy.gguf.orig_shape.*") is CANVAS_ERR_UNSUPPORTED.
 *
 * Failures: CANVAS_ERR_INPUT for a
 * file holding no such component (saying how many tensors it has, a few of their names,
 * which anchor was looked for and, when it recognises one, which component the file does
 * hold), for the anchor under two prefixes, or for two tensors renamed to one name. */
#ifndef CANVAS_IO_WEIGHTS_FILE_H
#define CANVAS_IO_WEIGHTS_FILE_H

#include "canvas.h"
#include "io/model_dir.h"

typedef enum weights_component {
    WEIGHTS_TRANSFORMER = 0,
    WEIGHTS_VAE,
    WEIGHTS_TEXT_ENCODER,
    WEIGHTS_COMPONENT_COUNT
} weights_component;

/* "transformer", "vae", "text encoder" */
const char *weights_component_name(weights_component component);

/* 1 when `path` is a regular file (a component given as one file), 0 for anything else
 * (a folder, nothing there). */
int weights_is_file(const char *path);

/* 1 when `path` is a GGUF file: named "*.gguf" or starting with the magic "GGUF". */
int weights_is_gguf(const char *path);

/* Open `path` (one weights file) as `component`'s weight set. set->dir is the path. */
canvas_status weights_open_file(const char *path, weights_component component, weight_set **out);

/* The same from a file that may hold a GGUF header alone (io/gguf.h's gguf_open_header): every
 * tensor's data is NULL, for what needs only names, shapes and sizes (arch inference, the
 * planner). A safetensors file is opened as by weights_open_file. */
canvas_status weights_open_file_header(const char *path, weights_component component, weight_set **out);

/* The ggml type code of tensor `t` of a set opened from a GGUF file (ggml_blocks.h: 0 F32,
 * 1 F16, 30 BF16, 8 Q8_0, ...), -1 for a set of safetensors files, an empty tensor or a
 * tensor not of the set. */
int weights_ggml_type(const weight_set *set, const st_tensor *t);

/* The key a VAE tensor of the original layout has in diffusers, written to out:
 * 1 renamed, 0 the name is not one of the original layout's (left unchanged),
 * -1 it does not fit in `size`. `per_up_block` is the number of entries of one decoder
 * level in the flat decoder.upsamples list (num_res_blocks + 2). Exposed for the test. */
int weights_vae_original_name(const char *name, int per_up_block, char *out, size_t size);

#endif
