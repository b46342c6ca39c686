/* SPDX-License-Identifier: Apache-2.0 */
/* arch_dit.c — the tensors of QwenImageTransformer2DModel (spec §2). Every Linear has a
 * bias; the q/k RMSNorms have a weight only; the block LayerNorms have no parameters;
 * RoPE tables are computed, not stored. */
#include <stdio.h>

#include "models/arch.h"

/* nn.Linear(in, out): weight [out, in] and bias [out]. */
static canvas_status linear(tensor_spec_list *out, int group, const char *name, int64_t out_features,
                            int64_t in_features)
{
    TRY(arch_add(out, group, 0, 2, (int64_t[]){out_features, in_features}, "%s.weight", name));
    return arch_add(out, group, 0, 1, (int64_t[]){out_features}, "%s.bias", name);
}

static canvas_status top_level(const dit_config *c, tensor_spec_list *out)
{
    int64_t d = dit_inner_dim(c), j = c->joint_attention_dim;
    TRY(linear(out, -1, "img_in", d, c->in_channels));
    TRY(arch_add(out, -1, 0, 1, (int64_t[]){j}, "txt_norm.weight"));
    TRY(linear(out, -1, "txt_in", d, j));
    TRY(linear(out, -1, "time_text_embed.timestep_embedder.linear_1", d, 256)); /* 256 sinusoid channels */
    TRY(linear(out, -1, "time_text_embed.timestep_embedder.linear_2", d, d));
    TRY(linear(out, -1, "norm_out.linear", 2 * d, d));
    return linear(out, -1, "proj_out", (int64_t)c->patch_size * c->patch_size * c->out_channels, d);
}

static canvas_status block_attention(const dit_config *c, tensor_spec_list *out, int i)
{
    static const char *const projections[] = {"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj",
                                              "add_v_proj", "to_out.0", "to_add_out"};
    static const char *const norms[] = {"norm_q", "norm_k", "norm_added_q", "norm_added_k"};
    int64_t d = dit_inner_dim(c);
    char name[96];
    for (int p = 0; p < 8; p++) {
        TRY(arch_name(name, sizeof name, "transformer_blocks.%d.attn.%s", i, projections[p]));
        TRY(linear(out, i, name, d, d));
    }
    for (int n = 0; n < 4; n++)
        TRY(arch_add(out, i, 0, 1, (int64_t[]){c->attention_head_dim}, "transformer_blocks.%d.attn.%s.weight", i,
                     norms[n]));
    return CANVAS_OK;
}

/* One stream's modulation (SiLU + Linear(D, 6D)) and MLP (GELU-tanh, 4D hidden). */
static canvas_status block_stream(const dit_config *c, tensor_spec_list *out, int i, const char *stream)
{
    int64_t d = dit_inner_dim(c);
    char name[96];
    TRY(arch_name(name, sizeof name, "transformer_blocks.%d.%s_mod.1", i, stream));
    TRY(linear(out, i, name, 6 * d, d));
    TRY(arch_name(name, sizeof name, "transformer_blocks.%d.%s_mlp.net.0.proj", i, stream));
    TRY(linear(out, i, name, 4 * d, d));
    TRY(arch_name(name, sizeof name, "transformer_blocks.%d.%s_mlp.net.2", i, stream));
    return linear(out, i, name, d, 4 * d);
}

canvas_status arch_dit(const dit_config *config, tensor_spec_list *out)
{
    if (config->use_additional_t_cond || config->use_layer3d_rope)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "transformer: use_additional_t_cond / use_layer3d_rope are "
                                                   "Qwen-Image-Layered features, which this build does not run");
    TRY(top_level(config, out));
    for (int i = 0; i < config->num_layers; i++) {
        TRY(block_stream(config, out, i, "img"));
        TRY(block_stream(config, out, i, "txt"));
        TRY(block_attention(config, out, i));
    }
    return CANVAS_OK;
}
