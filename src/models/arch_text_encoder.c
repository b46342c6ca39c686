/* SPDX-License-Identifier: Apache-2.0 */
/* arch_text_encoder.c — the tensors of Qwen2_5_VLForConditionalGeneration (spec B.2):
 * a Qwen2 decoder (GQA with q/k/v biases, SwiGLU without biases) and the Qwen2.5-VL
 * vision tower (patch Conv3d without bias, blocks with biased qkv/proj/SwiGLU, merger). */
#include <stdio.h>

#include "models/arch.h"

static const char *text_prefix(textenc_naming naming)
{
    return naming == TEXTENC_NAMES_NESTED ? "model.language_model." : "model.";
}

const char *textenc_vision_prefix(textenc_naming naming)
{
    return naming == TEXTENC_NAMES_NESTED ? "model.visual." : "visual.";
}

textenc_naming textenc_naming_of(const weight_set *files)
{
    return weights_find(files, "model.language_model.embed_tokens.weight") ? TEXTENC_NAMES_NESTED
                                                                           : TEXTENC_NAMES_CHECKPOINT;
}

static canvas_status weight(tensor_spec_list *out, int group, const char *name, int64_t rows, int64_t cols)
{
    return arch_add(out, group, 0, 2, (int64_t[]){rows, cols}, "%s.weight", name);
}

static canvas_status vector(tensor_spec_list *out, int group, const char *name, const char *suffix, int64_t n)
{
    return arch_add(out, group, 0, 1, (int64_t[]){n}, "%s.%s", name, suffix);
}

static canvas_status linear(tensor_spec_list *out, int group, const char *name, int64_t rows, int64_t cols)
{
    TRY(weight(out, group, name, rows, cols));
    return vector(out, group, name, "bias", rows);
}

static canvas_status decoder_layer(const textenc_text_config *t, tensor_spec_list *out, const char *prefix, int l)
{
    int64_t d = t->hidden_size, kv = (int64_t)t->num_key_value_heads * t->head_dim, ff = t->intermediate_size;
    char base[128], name[192];
    TRY(arch_name(base, sizeof base, "%slayers.%d", prefix, l));
    TRY(arch_name(name, sizeof name, "%s.input_layernorm", base));
    TRY(vector(out, l, name, "weight", d));
    TRY(arch_name(name, sizeof name, "%s.self_attn.q_proj", base));
    TRY(linear(out, l, name, d, d));
    TRY(arch_name(name, sizeof name, "%s.self_attn.k_proj", base));
    TRY(linear(out, l, name, kv, d));
    TRY(arch_name(name, sizeof name, "%s.self_attn.v_proj", base));
    TRY(linear(out, l, name, kv, d));
    TRY(arch_name(name, sizeof name, "%s.self_attn.o_proj", base));
    TRY(weight(out, l, name, d, d));
    TRY(arch_name(name, sizeof name, "%s.post_attention_layernorm", base));
    TRY(vector(out, l, name, "weight", d));
    TRY(arch_name(name, sizeof name, "%s.mlp.gate_proj", base));
    TRY(weight(out, l, name, ff, d));
    TRY(arch_name(name, sizeof name, "%s.mlp.up_proj", base));
    TRY(weight(out, l, name, ff, d));
    TRY(arch_name(name, sizeof name, "%s.mlp.down_proj", base));
    return weight(out, l, name, d, ff);
}

static canvas_status text_model(const textenc_config *c, tensor_spec_list *out, textenc_naming naming)
{
    const textenc_text_config *t = &c->text;
    const char *prefix = text_prefix(naming);
    TRY(arch_add(out, -1, 0, 2, (int64_t[]){t->vocab_size, t->hidden_size}, "%sembed_tokens.weight", prefix));
    for (int l = 0; l < t->num_hidden_layers; l++) TRY(decoder_layer(t, out, prefix, l));
    TRY(arch_add(out, -1, 0, 1, (int64_t[]){t->hidden_size}, "%snorm.weight", prefix));
    if (c->tie_word_embeddings) return CANVAS_OK; /* lm_head shares embed_tokens */
    return arch_add(out, -1, ARCH_UNUSED, 2, (int64_t[]){t->vocab_size, t->hidden_size}, "lm_head.weight");
}

static canvas_status vision_block(const textenc_vision_config *v, tensor_spec_list *out, const char *prefix,
                                  int group, int b)
{
    int64_t d = v->hidden_size, ff = v->intermediate_size;
    char base[128], name[192];
    TRY(arch_name(base, sizeof base, "%sblocks.%d", prefix, b));
    TRY(arch_name(name, sizeof name, "%s.norm1", base));
    TRY(vector(out, group, name, "weight", d));
    TRY(arch_name(name, sizeof name, "%s.norm2", base));
    TRY(vector(out, group, name, "weight", d));
    TRY(arch_name(name, sizeof name, "%s.attn.qkv", base));
    TRY(linear(out, group, name, 3 * d, d));
    TRY(arch_name(name, sizeof name, "%s.attn.proj", base));
    TRY(linear(out, group, name, d, d));
    TRY(arch_name(name, sizeof name, "%s.mlp.gate_proj", base));
    TRY(linear(out, group, name, ff, d));
    TRY(arch_name(name, sizeof name, "%s.mlp.up_proj", base));
    TRY(linear(out, group, name, ff, d));
    TRY(arch_name(name, sizeof name, "%s.mlp.down_proj", base));
    return linear(out, group, name, d, ff);
}

static canvas_status vision_tower(const textenc_config *c, tensor_spec_list *out, textenc_naming naming)
{
    const textenc_vision_config *v = &c->vision;
    const char *prefix = textenc_vision_prefix(naming);
    int64_t patch_shape[5] = {v->hidden_size, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size};
    TRY(arch_add(out, -1, 0, 5, patch_shape, "%spatch_embed.proj.weight", prefix));
    for (int b = 0; b < v->depth; b++) TRY(vision_block(v, out, prefix, c->text.num_hidden_layers + b, b));
    /* The merger concatenates spatial_merge_size^2 neighbouring patches. */
    int64_t merged = (int64_t)v->hidden_size * v->spatial_merge_size * v->spatial_merge_size;
    char name[128];
    TRY(arch_name(name, sizeof name, "%smerger.ln_q", prefix));
    TRY(vector(out, -1, name, "weight", v->hidden_size));
    TRY(arch_name(name, sizeof name, "%smerger.mlp.0", prefix));
    TRY(linear(out, -1, name, merged, merged));
    TRY(arch_name(name, sizeof name, "%smerger.mlp.2", prefix));
    return linear(out, -1, name, v->out_hidden_size, merged);
}

canvas_status arch_text_encoder(const textenc_config *config, textenc_naming naming, tensor_spec_list *out)
{
    TRY(text_model(config, out, naming));
    return vision_tower(config, out, naming);
}
