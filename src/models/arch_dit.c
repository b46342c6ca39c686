/* SPDX-License-Identifier: Apache-2.0 */
/* arch_dit.c — the tensors of QwenImageTransformer2DModel (spec §2), declared once: the
 * tables below give each tensor's name, shape and field in qwen_dit_weights / qwen_dit_block_weights;
 * arch_dit lists them for the loader's check, inspect and the planner, and the loader
 * wires the fields from the same tables (qwen_image_dit_weights.c). Every Linear has a
 * bias; the q/k RMSNorms have a weight only; the block LayerNorms have no parameters;
 * RoPE tables are computed, not stored. */
#include <stddef.h>
#include <stdio.h>

#include "models/arch.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"

void qwen_dit_tensor_extents(const qwen_dit_config *c, int64_t *extents)
{
    for (int i = 0; i < WEIGHT_EXTENTS; i++) extents[i] = 0;
    extents[QWEN_DIT_X_D] = qwen_dit_inner_dim(c);
    extents[QWEN_DIT_X_J] = c->joint_attention_dim;
    extents[QWEN_DIT_X_IN] = c->in_channels;
    extents[QWEN_DIT_X_TIME] = QWEN_DIT_TIME_CHANNELS;
    extents[QWEN_DIT_X_OUT] = qwen_dit_output_channels(c);
    extents[QWEN_DIT_X_HEAD] = c->attention_head_dim;
}

#define D(n) WEIGHT_SIZE(n, QWEN_DIT_X_D)
#define X(extent) WEIGHT_SIZE(1, extent)
#define LINEAR(S, name, w, out, in) WEIGHT_LINEAR(S, name, w, out, in)
#define VECTOR(S, name, field, n) WEIGHT_VECTOR(S, name, field, n)

static const weight_tensor top_tensors[] = {
    LINEAR(qwen_dit_weights, "img_in", img_in, D(1), X(QWEN_DIT_X_IN)),
    VECTOR(qwen_dit_weights, "txt_norm.weight", txt_norm, X(QWEN_DIT_X_J)),
    LINEAR(qwen_dit_weights, "txt_in", txt_in, D(1), X(QWEN_DIT_X_J)),
    LINEAR(qwen_dit_weights, "time_text_embed.timestep_embedder.linear_1", time_linear_1, D(1), X(QWEN_DIT_X_TIME)),
    LINEAR(qwen_dit_weights, "time_text_embed.timestep_embedder.linear_2", time_linear_2, D(1), D(1)),
    LINEAR(qwen_dit_weights, "norm_out.linear", norm_out, D(2), D(1)),
    LINEAR(qwen_dit_weights, "proj_out", proj_out, X(QWEN_DIT_X_OUT), D(1)),
};

/* Per stream a modulation (SiLU + Linear(D, 6D)) and an MLP (GELU-tanh, 4D hidden), then
 * the joint attention. */
static const weight_tensor block_tensors[] = {
    LINEAR(qwen_dit_block_weights, "img_mod.1", img_mod, D(6), D(1)),
    LINEAR(qwen_dit_block_weights, "img_mlp.net.0.proj", img_mlp_in, D(QWEN_DIT_MLP_MULT), D(1)),
    LINEAR(qwen_dit_block_weights, "img_mlp.net.2", img_mlp_out, D(1), D(QWEN_DIT_MLP_MULT)),
    LINEAR(qwen_dit_block_weights, "txt_mod.1", txt_mod, D(6), D(1)),
    LINEAR(qwen_dit_block_weights, "txt_mlp.net.0.proj", txt_mlp_in, D(QWEN_DIT_MLP_MULT), D(1)),
    LINEAR(qwen_dit_block_weights, "txt_mlp.net.2", txt_mlp_out, D(1), D(QWEN_DIT_MLP_MULT)),
    LINEAR(qwen_dit_block_weights, "attn.to_q", to_q, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.to_k", to_k, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.to_v", to_v, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.add_q_proj", add_q, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.add_k_proj", add_k, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.add_v_proj", add_v, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.to_out.0", to_out, D(1), D(1)),
    LINEAR(qwen_dit_block_weights, "attn.to_add_out", to_add_out, D(1), D(1)),
    VECTOR(qwen_dit_block_weights, "attn.norm_q.weight", norm_q, X(QWEN_DIT_X_HEAD)),
    VECTOR(qwen_dit_block_weights, "attn.norm_k.weight", norm_k, X(QWEN_DIT_X_HEAD)),
    VECTOR(qwen_dit_block_weights, "attn.norm_added_q.weight", norm_added_q, X(QWEN_DIT_X_HEAD)),
    VECTOR(qwen_dit_block_weights, "attn.norm_added_k.weight", norm_added_k, X(QWEN_DIT_X_HEAD)),
};

_Static_assert(sizeof top_tensors / sizeof top_tensors[0] == QWEN_DIT_TOP_TENSORS, "DIT_TOP_TENSORS");
_Static_assert(sizeof block_tensors / sizeof block_tensors[0] == QWEN_DIT_BLOCK_TENSORS, "DIT_BLOCK_TENSORS");
const weight_tensor *const qwen_dit_top_tensors = top_tensors;
const weight_tensor *const qwen_dit_block_tensors = block_tensors;

canvas_status arch_dit(const qwen_dit_config *config, tensor_spec_list *out)
{
    if (config->use_additional_t_cond || config->use_layer3d_rope)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "transformer: use_additional_t_cond / use_layer3d_rope are "
                                                   "Qwen-Image-Layered features, which this build does not run");
    int64_t extents[WEIGHT_EXTENTS];
    qwen_dit_tensor_extents(config, extents);
    TRY(weight_tensors_list(top_tensors, QWEN_DIT_TOP_TENSORS, extents, -1, "", out));
    for (int i = 0; i < config->num_layers; i++) {
        char prefix[48];
        TRY(arch_name(prefix, sizeof prefix, "transformer_blocks.%d.", i));
        TRY(weight_tensors_list(block_tensors, QWEN_DIT_BLOCK_TENSORS, extents, i, prefix, out));
    }
    return CANVAS_OK;
}
