/* SPDX-License-Identifier: Apache-2.0 */
/* arch_infer.h — a component's config read from its tensors, for a component given as one
 * weights file (io/weights_file.h) with no config.json beside it.
 *
 * What the shapes and block counts say is taken from them (widths, head counts, layer and
 * block counts, channels, the VAE's levels and temporal resamplers, lm_head present or
 * tied); what no tensor carries is Qwen-Image-Edit-2511's value: the transformer's patch
 * size 2 and rope split 16/56/56 for 128-wide heads (other head sizes h, as in the test
 * models: h/2, h/4, h/4), zero_cond_t from ComfyUI's "__index_timestep_zero__" marker, the
 * VAE's latents_mean / latents_std (so only a 16-channel latent is accepted), the text
 * encoder's token ids, rope and norm constants, Qwen2.5-VL's head sizes (128 text, 80
 * vision) and full-attention vision blocks (every eighth). CANVAS_ERR_INPUT naming the file
 * and the tensor when a size cannot be told; the caller checks the result with arch_check. */
#ifndef CANVAS_MODELS_ARCH_INFER_H
#define CANVAS_MODELS_ARCH_INFER_H

#include "models/arch.h"

canvas_status qwen_dit_config_infer(const weight_set *files, qwen_dit_config *out);
canvas_status vae_config_infer(const weight_set *files, vae_config *out);
canvas_status textenc_config_infer(const weight_set *files, textenc_config *out);

#endif
