/* SPDX-License-Identifier: Apache-2.0 */
/* arch_dit.c — the tensors of QwenImageTransformer2DModel (spec §2), declared once: the
 * tables below give each tensor's name, shape and field in dit_weights / dit_block_weights;
 * arch_dit lists them for the loader's check, inspect and the planner, and the loader
 * wires the fields from the same tables (qwen_image_dit_weights.c). Every Linear has a
 * bias; the q/k RMSNorms have a weight only; the block LayerNorms have no parameters;
 * RoPE tables are computed, not stored. */
#include <stddef.h>
#include <stdio.h>

#include "models/arch.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"

int64_t dit_tensor_size(const dit_config *c, dit_size size)
{
    int64_t of = 0;
    switch ((dit_extent)size.of) {
    case DIT_X_NONE: return 0;
    case DIT_X_D: of = dit_inner_dim(c); break;
    case DIT_X_J: of = c->joint_attention_dim; break;
    case DIT_X_IN: of = c->in_channels; break;
    case DIT_X_TIME: of = DIT_TIME_CHANNELS; break;
    case DIT_X_OUT: of = (int64_t)c->patch_size * c->patch_size * c->out_channels; break;
    case DIT_X_HEAD: of = c->attention_head_dim; break;
    }
    return size.times * of;
}

#define D(n) {n, DIT_X_D}
#define X(extent) {1, extent}
#define NO {0, DIT_X_NONE}
/* nn.Linear(in, out) of struct S: weight [out, in] into field `w`, bias [out] into `w`_bias. */
#define LINEAR(S, name, w, out, in)                                                                                  \
    {name ".weight", offsetof(S, w), out, in}, { name ".bias", offsetof(S, w##_bias), out, NO }
#define VECTOR(S, name, field, n) {name, offsetof(S, field), n, NO}

static const dit_tensor top_tensors[] = {
    LINEAR(dit_weights, "img_in", img_in, D(1), X(DIT_X_IN)),
    VECTOR(dit_weights, "txt_norm.weight", txt_norm, X(DIT_X_J)),
    LINEAR(dit_weights, "txt_in", txt_in, D(1), X(DIT_X_J)),
    LINEAR(dit_weights, "time_text_embed.timestep_embedder.linear_1", time_linear_1, D(1), X(DIT_X_TIME)),
    LINEAR(dit_weights, "time_text_embed.timestep_embedder.linear_2", time_linear_2, D(1), D(1)),
    LINEAR(dit_weights, "norm_out.linear", norm_out, D(2), D(1)),
    LINEAR(dit_weights, "proj_out", proj_out, X(DIT_X_OUT), D(1)),
};

/* Per stream a modulation (SiLU + Linear(D, 6D)) and an MLP (GELU-tanh, 4D hidden), then
 * the joint attention. */
static const dit_tensor block_tensors[] = {
    LINEAR(dit_block_weights, "img_mod.1", img_mod, D(6), D(1)),
    LINEAR(dit_block_weights, "img_mlp.net.0.proj", img_mlp_in, D(DIT_MLP_MULT), D(1)),
    LINEAR(dit_block_weights, "img_mlp.net.2", img_mlp_out, D(1), D(DIT_MLP_MULT)),
    LINEAR(dit_block_weights, "txt_mod.1", txt_mod, D(6), D(1)),
    LINEAR(dit_block_weights, "txt_mlp.net.0.proj", txt_mlp_in, D(DIT_MLP_MULT), D(1)),
    LINEAR(dit_block_weights, "txt_mlp.net.2", txt_mlp_out, D(1), D(DIT_MLP_MULT)),
    LINEAR(dit_block_weights, "attn.to_q", to_q, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.to_k", to_k, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.to_v", to_v, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.add_q_proj", add_q, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.add_k_proj", add_k, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.add_v_proj", add_v, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.to_out.0", to_out, D(1), D(1)),
    LINEAR(dit_block_weights, "attn.to_add_out", to_add_out, D(1), D(1)),
    VECTOR(dit_block_weights, "attn.norm_q.weight", norm_q, X(DIT_X_HEAD)),
    VECTOR(dit_block_weights, "attn.norm_k.weight", norm_k, X(DIT_X_HEAD)),
    VECTOR(dit_block_weights, "attn.norm_added_q.weight", norm_added_q, X(DIT_X_HEAD)),
    VECTOR(dit_block_weights, "attn.norm_added_k.weight", norm_added_k, X(DIT_X_HEAD)),
};

_Static_assert(sizeof top_tensors / sizeof top_tensors[0] == DIT_TOP_TENSORS, "DIT_TOP_TENSORS");
_Static_assert(sizeof block_tensors / sizeof block_tensors[0] == DIT_BLOCK_TENSORS, "DIT_BLOCK_TENSORS");
const dit_tensor *const dit_top_tensors = top_tensors;
const dit_tensor *const dit_block_tensors = block_tensors;

/* One table's tensors into `out`, names after `prefix` ("" or "transformer_blocks.i."). */
static canvas_status add_table(const dit_config *c, const dit_tensor *table, int n, int group, const char *prefix,
                               tensor_spec_list *out)
{
    for (int i = 0; i < n; i++) {
        const dit_tensor *t = &table[i];
        const int64_t shape[2] = {dit_tensor_size(c, t->rows), dit_tensor_size(c, t->cols)};
        TRY(arch_add(out, group, 0, t->cols.of == DIT_X_NONE ? 1 : 2, shape, "%s%s", prefix, t->suffix));
    }
    return CANVAS_OK;
}

canvas_status arch_dit(const dit_config *config, tensor_spec_list *out)
{
    if (config->use_additional_t_cond || config->use_layer3d_rope)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "transformer: use_additional_t_cond / use_layer3d_rope are "
                                                   "Qwen-Image-Layered features, which this build does not run");
    TRY(add_table(config, dit_top_tensors, DIT_TOP_TENSORS, -1, "", out));
    for (int i = 0; i < config->num_layers; i++) {
        char prefix[48];
        TRY(arch_name(prefix, sizeof prefix, "transformer_blocks.%d.", i));
        TRY(add_table(config, dit_block_tensors, DIT_BLOCK_TENSORS, i, prefix, out));
    }
    return CANVAS_OK;
}
