/* SPDX-License-Identifier: Apache-2.0 */
/* arch_text_encoder.c — the tensors of Qwen2_5_VLForConditionalGeneration (spec B.2):
 * a Qwen2 decoder (GQA with q/k/v biases, SwiGLU without biases) and the Qwen2.5-VL
 * vision tower (patch Conv3d without bias, blocks with biased qkv/proj/SwiGLU, merger). */
#include <stddef.h>
#include <stdio.h>

#include "models/arch.h"
#include "models/qwen_textenc_internal.h"
#include "models/weight_groups.h"

const char *textenc_text_prefix(textenc_naming naming)
{
    return naming == TEXTENC_NAMES_NESTED ? "model.language_model." : "model.";
}

const char *textenc_vision_prefix(textenc_naming naming)
{
    return naming == TEXTENC_NAMES_NESTED ? "model.visual." : "visual.";
}

textenc_naming textenc_naming_of(const weight_set *files)
{
    return weights_find(files, "model.language_model." TEXTENC_EMBED_TOKENS) ? TEXTENC_NAMES_NESTED
                                                                           : TEXTENC_NAMES_CHECKPOINT;
}

void textenc_tensor_extents(const textenc_config *c, int64_t *extents)
{
    const textenc_text_config *t = &c->text;
    const textenc_vision_config *v = &c->vision;
    for (int i = 0; i < WEIGHT_EXTENTS; i++) extents[i] = 0;
    extents[TEXTENC_X_D] = t->hidden_size;
    extents[TEXTENC_X_KV] = (int64_t)t->num_key_value_heads * t->head_dim;
    extents[TEXTENC_X_F] = t->intermediate_size;
    extents[TEXTENC_X_DV] = v->hidden_size;
    extents[TEXTENC_X_FV] = v->intermediate_size;
    extents[TEXTENC_X_MERGED] = (int64_t)v->hidden_size * v->spatial_merge_size * v->spatial_merge_size;
    extents[TEXTENC_X_OUT] = v->out_hidden_size;
}

#define X(extent) WEIGHT_SIZE(1, extent)

/* A decoder layer: GQA with q/k/v biases, SwiGLU without biases. */
static const weight_tensor layer_tensors[] = {
    WEIGHT_VECTOR(textenc_layer_weights, "input_layernorm.weight", input_norm, X(TEXTENC_X_D)),
    WEIGHT_LINEAR(textenc_layer_weights, "self_attn.q_proj", q, X(TEXTENC_X_D), X(TEXTENC_X_D)),
    WEIGHT_LINEAR(textenc_layer_weights, "self_attn.k_proj", k, X(TEXTENC_X_KV), X(TEXTENC_X_D)),
    WEIGHT_LINEAR(textenc_layer_weights, "self_attn.v_proj", v, X(TEXTENC_X_KV), X(TEXTENC_X_D)),
    WEIGHT_MATRIX(textenc_layer_weights, "self_attn.o_proj.weight", o, X(TEXTENC_X_D), X(TEXTENC_X_D)),
    WEIGHT_VECTOR(textenc_layer_weights, "post_attention_layernorm.weight", post_norm, X(TEXTENC_X_D)),
    WEIGHT_MATRIX(textenc_layer_weights, "mlp.gate_proj.weight", gate, X(TEXTENC_X_F), X(TEXTENC_X_D)),
    WEIGHT_MATRIX(textenc_layer_weights, "mlp.up_proj.weight", up, X(TEXTENC_X_F), X(TEXTENC_X_D)),
    WEIGHT_MATRIX(textenc_layer_weights, "mlp.down_proj.weight", down, X(TEXTENC_X_D), X(TEXTENC_X_F)),
};

/* A vision block: biased qkv, proj and SwiGLU. */
static const weight_tensor block_tensors[] = {
    WEIGHT_VECTOR(textenc_block_weights, "norm1.weight", norm1, X(TEXTENC_X_DV)),
    WEIGHT_VECTOR(textenc_block_weights, "norm2.weight", norm2, X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_block_weights, "attn.qkv", qkv, WEIGHT_SIZE(3, TEXTENC_X_DV), X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_block_weights, "attn.proj", proj, X(TEXTENC_X_DV), X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_block_weights, "mlp.gate_proj", gate, X(TEXTENC_X_FV), X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_block_weights, "mlp.up_proj", up, X(TEXTENC_X_FV), X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_block_weights, "mlp.down_proj", down, X(TEXTENC_X_DV), X(TEXTENC_X_FV)),
};

static const weight_tensor norm_tensors[] = {
    WEIGHT_VECTOR(textenc_weights, "norm.weight", norm, X(TEXTENC_X_D)),
};

/* The merger concatenates spatial_merge_size² neighbouring patches. */
static const weight_tensor merger_tensors[] = {
    WEIGHT_VECTOR(textenc_weights, "merger.ln_q.weight", merger_norm, X(TEXTENC_X_DV)),
    WEIGHT_LINEAR(textenc_weights, "merger.mlp.0", merger_fc1, X(TEXTENC_X_MERGED), X(TEXTENC_X_MERGED)),
    WEIGHT_LINEAR(textenc_weights, "merger.mlp.2", merger_fc2, X(TEXTENC_X_OUT), X(TEXTENC_X_MERGED)),
};

_Static_assert(sizeof layer_tensors / sizeof layer_tensors[0] == TEXTENC_LAYER_TENSORS, "TEXTENC_LAYER_TENSORS");
_Static_assert(sizeof block_tensors / sizeof block_tensors[0] == TEXTENC_BLOCK_TENSORS, "TEXTENC_BLOCK_TENSORS");
_Static_assert(sizeof norm_tensors / sizeof norm_tensors[0] == TEXTENC_NORM_TENSORS, "TEXTENC_NORM_TENSORS");
_Static_assert(sizeof merger_tensors / sizeof merger_tensors[0] == TEXTENC_MERGER_TENSORS, "TEXTENC_MERGER_TENSORS");
const weight_tensor *const textenc_layer_tensors = layer_tensors;
const weight_tensor *const textenc_block_tensors = block_tensors;
const weight_tensor *const textenc_norm_tensors = norm_tensors;
const weight_tensor *const textenc_merger_tensors = merger_tensors;

/* Unit `unit` of a table, its names after `prefix` + "<unit>.<i>.". */
static canvas_status list_unit(const weight_tensor *table, int n, const int64_t *extents, int group,
                               const char *prefix, const char *unit, int i, tensor_spec_list *out)
{
    char name[128];
    TRY(arch_name(name, sizeof name, "%s%s.%d.", prefix, unit, i));
    return weight_tensors_list(table, n, extents, group, name, out);
}

static canvas_status text_model(const textenc_config *c, const int64_t *extents, tensor_spec_list *out,
                                textenc_naming naming)
{
    const textenc_text_config *t = &c->text;
    const char *prefix = textenc_text_prefix(naming);
    TRY(arch_add(out, -1, 0, 2, (int64_t[]){t->vocab_size, t->hidden_size}, "%s" TEXTENC_EMBED_TOKENS, prefix));
    for (int l = 0; l < t->num_hidden_layers; l++)
        TRY(list_unit(layer_tensors, TEXTENC_LAYER_TENSORS, extents, l, prefix, "layers", l, out));
    TRY(weight_tensors_list(norm_tensors, TEXTENC_NORM_TENSORS, extents, -1, prefix, out));
    if (c->tie_word_embeddings) return CANVAS_OK; /* lm_head shares embed_tokens */
    return arch_add(out, -1, ARCH_UNUSED, 2, (int64_t[]){t->vocab_size, t->hidden_size}, "lm_head.weight");
}

static canvas_status vision_tower(const textenc_config *c, const int64_t *extents, tensor_spec_list *out,
                                  textenc_naming naming)
{
    const textenc_vision_config *v = &c->vision;
    const char *prefix = textenc_vision_prefix(naming);
    int64_t patch_shape[5] = {v->hidden_size, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size};
    TRY(arch_add(out, -1, 0, 5, patch_shape, "%s" TEXTENC_PATCH_EMBED, prefix));
    for (int b = 0; b < v->depth; b++)
        TRY(list_unit(block_tensors, TEXTENC_BLOCK_TENSORS, extents, c->text.num_hidden_layers + b, prefix, "blocks",
                      b, out));
    return weight_tensors_list(merger_tensors, TEXTENC_MERGER_TENSORS, extents, -1, prefix, out);
}

canvas_status arch_text_encoder(const textenc_config *config, textenc_naming naming, tensor_spec_list *out)
{
    int64_t extents[WEIGHT_EXTENTS];
    textenc_tensor_extents(config, extents);
    TRY(text_model(config, extents, out, naming));
    return vision_tower(config, extents, out, naming);
}
