/* qwen_textenc_weights.c — opening a text_encoder/ folder: the config, the (possibly
 * sharded) safetensors, the architecture check, and the wiring of the weight views.
 *
 * As for the transformer: matrices are used where they lie in the mapping (or as stored
 * quantised, io/quant_loader.h); the small vectors of each weight group (norms, biases)
 * are converted once to f32 into one MEM_WEIGHTS block per group, so the forward never
 * branches on a dtype for them. The embedding table stays in the mapping too: a forward
 * converts only the rows of its ids. lm_head is never touched. */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/quant_loader.h"
#include "mem/mem.h"
#include "models/qwen_textenc_internal.h"

enum { NAME_SIZE = 256 };

/* A group's vectors are carved from one block; the wiring runs twice: count, then fill. */
typedef struct wiring {
    textenc_model *model;
    char prefix[128];       /* "model.layers.3.", "visual.blocks.0.", "visual." ... */
    float *base;            /* NULL on the counting pass */
    size_t used;            /* floats */
} wiring;

static canvas_status full_name(const wiring *w, const char *suffix, char name[NAME_SIZE])
{
    int n = snprintf(name, NAME_SIZE, "%s%s", w->prefix, suffix);
    if (n < 0 || n >= NAME_SIZE) return status_fail(CANVAS_ERR_INTERNAL, "%s%s: tensor name too long", w->prefix, suffix);
    return CANVAS_OK;
}

static canvas_status wire_matrix(wiring *w, const char *suffix, int64_t rows, int64_t cols, weight_view *out)
{
    if (!w->base) return CANVAS_OK;
    char name[NAME_SIZE];
    TRY(full_name(w, suffix, name));
    quant_weight q;
    TRY(quant_weight_from_view(w->model->quant, w->model->files, name, rows, cols, (quant_choice){QUANT_NONE, 0}, &q));
    *out = (weight_view){q.type, q.data, rows, cols, q.quant};
    return CANVAS_OK;
}

/* Vectors take a multiple of 16 floats each so every one starts 64-byte aligned. */
static size_t padded_floats(int64_t n) { return ((size_t)n + 15u) & ~(size_t)15u; }

static canvas_status wire_vector(wiring *w, const char *suffix, int64_t length, const float **out)
{
    if (w->base) {
        char name[NAME_SIZE];
        TRY(full_name(w, suffix, name));
        const st_tensor *t = weights_find(w->model->files, name);
        if (!t) return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in arch_text_encoder", name);
        float *dst = w->base + w->used;
        dtype_to_f32(t->type, t->data, dst, (size_t)length);
        *out = dst;
    }
    w->used += padded_floats(length);
    return CANVAS_OK;
}

/* A plain float tensor read as a matrix (embed_tokens, the 5-D patch embedding). */
static canvas_status plain_tensor(const wiring *w, const char *suffix, const st_tensor **out)
{
    char name[NAME_SIZE];
    TRY(full_name(w, suffix, name));
    const st_tensor *t = weights_find(w->model->files, name);
    if (!t) return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in arch_text_encoder", name);
    if (t->type != DTYPE_F32 && t->type != DTYPE_F16 && t->type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: stored as %s; the text encoder reads it as F32, F16 or BF16",
                           name, dtype_name(t->type));
    *out = t;
    return CANVAS_OK;
}

static canvas_status wire_layer(wiring *w, textenc_layer_weights *l)
{
    const textenc_text_config *t = &w->model->config.text;
    const int64_t d = t->hidden_size, kv = (int64_t)t->num_key_value_heads * t->head_dim, f = t->intermediate_size;
    TRY(wire_vector(w, "input_layernorm.weight", d, &l->input_norm));
    TRY(wire_matrix(w, "self_attn.q_proj.weight", d, d, &l->q));
    TRY(wire_vector(w, "self_attn.q_proj.bias", d, &l->q_bias));
    TRY(wire_matrix(w, "self_attn.k_proj.weight", kv, d, &l->k));
    TRY(wire_vector(w, "self_attn.k_proj.bias", kv, &l->k_bias));
    TRY(wire_matrix(w, "self_attn.v_proj.weight", kv, d, &l->v));
    TRY(wire_vector(w, "self_attn.v_proj.bias", kv, &l->v_bias));
    TRY(wire_matrix(w, "self_attn.o_proj.weight", d, d, &l->o));
    TRY(wire_vector(w, "post_attention_layernorm.weight", d, &l->post_norm));
    TRY(wire_matrix(w, "mlp.gate_proj.weight", f, d, &l->gate));
    TRY(wire_matrix(w, "mlp.up_proj.weight", f, d, &l->up));
    return wire_matrix(w, "mlp.down_proj.weight", d, f, &l->down);
}

static canvas_status wire_block(wiring *w, textenc_block_weights *b)
{
    const textenc_vision_config *v = &w->model->config.vision;
    const int64_t d = v->hidden_size, f = v->intermediate_size;
    TRY(wire_vector(w, "norm1.weight", d, &b->norm1));
    TRY(wire_vector(w, "norm2.weight", d, &b->norm2));
    TRY(wire_matrix(w, "attn.qkv.weight", 3 * d, d, &b->qkv));
    TRY(wire_vector(w, "attn.qkv.bias", 3 * d, &b->qkv_bias));
    TRY(wire_matrix(w, "attn.proj.weight", d, d, &b->proj));
    TRY(wire_vector(w, "attn.proj.bias", d, &b->proj_bias));
    TRY(wire_matrix(w, "mlp.gate_proj.weight", f, d, &b->gate));
    TRY(wire_vector(w, "mlp.gate_proj.bias", f, &b->gate_bias));
    TRY(wire_matrix(w, "mlp.up_proj.weight", f, d, &b->up));
    TRY(wire_vector(w, "mlp.up_proj.bias", f, &b->up_bias));
    TRY(wire_matrix(w, "mlp.down_proj.weight", d, f, &b->down));
    return wire_vector(w, "mlp.down_proj.bias", d, &b->down_bias);
}

/* The top level spans two prefixes (text and vision); `w->prefix` is switched between them. */
static canvas_status wire_top(wiring *w, textenc_weights *wt)
{
    const textenc_config *c = &w->model->config;
    const textenc_vision_config *v = &c->vision;
    const int64_t dv = v->hidden_size, merged = dv * v->spatial_merge_size * v->spatial_merge_size;
    snprintf(w->prefix, sizeof w->prefix, "%s", w->model->naming == TEXTENC_NAMES_NESTED ? "model.language_model." : "model.");
    TRY(wire_vector(w, "norm.weight", c->text.hidden_size, &wt->norm));
    if (w->base) TRY(plain_tensor(w, "embed_tokens.weight", &wt->embed_tokens));

    snprintf(w->prefix, sizeof w->prefix, "%s", textenc_vision_prefix(w->model->naming));
    if (w->base) {
        const st_tensor *patch;
        TRY(plain_tensor(w, "patch_embed.proj.weight", &patch));
        wt->patch_embed = (weight_view){patch->type, patch->data, dv, textenc_patch_values(c), NULL};
    }
    TRY(wire_vector(w, "merger.ln_q.weight", dv, &wt->merger_norm));
    TRY(wire_matrix(w, "merger.mlp.0.weight", merged, merged, &wt->merger_fc1));
    TRY(wire_vector(w, "merger.mlp.0.bias", merged, &wt->merger_fc1_bias));
    TRY(wire_matrix(w, "merger.mlp.2.weight", c->text.hidden_size, merged, &wt->merger_fc2));
    return wire_vector(w, "merger.mlp.2.bias", c->text.hidden_size, &wt->merger_fc2_bias);
}

/* Wire group `group` (arch.h numbering: -1 top, L < num_hidden_layers a decoder layer,
 * then the vision blocks) in two passes; its vector block goes to *small. */
static canvas_status wire_group(textenc_model *model, int group)
{
    const int layers = model->config.text.num_hidden_layers;
    wiring w = {.model = model};
    float **small = &model->weights.small;
    if (group >= layers) {
        snprintf(w.prefix, sizeof w.prefix, "%sblocks.%d.", textenc_vision_prefix(model->naming), group - layers);
        small = &model->weights.blocks[group - layers].small;
    } else if (group >= 0) {
        snprintf(w.prefix, sizeof w.prefix, "%slayers.%d.",
                 model->naming == TEXTENC_NAMES_NESTED ? "model.language_model." : "model.", group);
        small = &model->weights.layers[group].small;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            TRY(mem_alloc((void **)&w.base, w.used * sizeof(float), MEM_WEIGHTS));
            *small = w.base;
            w.used = 0;
        }
        if (group >= layers) TRY(wire_block(&w, &model->weights.blocks[group - layers]));
        else if (group >= 0) TRY(wire_layer(&w, &model->weights.layers[group]));
        else TRY(wire_top(&w, &model->weights));
    }
    return CANVAS_OK;
}

/* What the forward implements; the config loader has checked the sizes themselves. */
static canvas_status check_supported(const textenc_config *c, const char *config_path)
{
    if (strcmp(c->text.hidden_act, "silu") || strcmp(c->vision.hidden_act, "silu"))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: hidden_act '%s' / vision '%s'; only silu is implemented",
                           config_path, c->text.hidden_act, c->vision.hidden_act);
    if (c->text.use_sliding_window)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: use_sliding_window is not implemented", config_path);
    if (c->text.head_dim % 2 || c->vision.hidden_size % (4 * c->vision.num_heads))
        return status_fail(CANVAS_ERR_INPUT, "%s: rotary needs an even text head_dim and a vision head_dim divisible "
                           "by 4", config_path);
    if (c->vision.hidden_size / c->vision.num_heads > TEXTENC_MAX_HEAD_DIM)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: vision head_dim above %d", config_path, TEXTENC_MAX_HEAD_DIM);
    if (c->vision.patch_size <= 0 || c->vision.temporal_patch_size <= 0 || c->vision.spatial_merge_size <= 0 ||
        c->vision.in_channels <= 0 || c->vision.window_size < c->vision.patch_size * c->vision.spatial_merge_size)
        return status_fail(CANVAS_ERR_INPUT, "%s: impossible vision patch / merge / window sizes", config_path);
    for (int i = 0; i < c->vision.n_fullatt_blocks; i++)
        if (c->vision.fullatt_block_indexes[i] < 0 || c->vision.fullatt_block_indexes[i] >= c->vision.depth)
            return status_fail(CANVAS_ERR_INPUT, "%s: fullatt_block_indexes[%d] = %d is not a vision block", config_path,
                               i, c->vision.fullatt_block_indexes[i]);
    return CANVAS_OK;
}

static canvas_status open_model(textenc_model *model, const char *component_dir)
{
    char config_path[4096];
    int n = snprintf(config_path, sizeof config_path, "%s/config.json", component_dir);
    if (n < 0 || (size_t)n >= sizeof config_path) return status_fail(CANVAS_ERR_INPUT, "%s: path too long", component_dir);
    TRY(textenc_config_load(config_path, &model->config));
    TRY(check_supported(&model->config, config_path));
    TRY(quant_store_create(&model->quant));
    TRY(weights_open(component_dir, &model->files));
    model->naming = textenc_naming_of(model->files);

    tensor_spec_list expected = {0};
    canvas_status st = arch_text_encoder(&model->config, model->naming, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, model->files, "text_encoder");
    arch_free(&expected);
    TRY(st);

    const int layers = model->config.text.num_hidden_layers, depth = model->config.vision.depth;
    if (layers > 0)
        TRY(mem_calloc((void **)&model->weights.layers, (size_t)layers, sizeof(textenc_layer_weights), MEM_SCRATCH));
    if (depth > 0)
        TRY(mem_calloc((void **)&model->weights.blocks, (size_t)depth, sizeof(textenc_block_weights), MEM_SCRATCH));
    for (int g = -1; g < layers + depth; g++) TRY(wire_group(model, g));
    return CANVAS_OK;
}

canvas_status textenc_open(const char *component_dir, textenc_model **out)
{
    *out = NULL;
    textenc_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    canvas_status st = open_model(model, component_dir);
    if (st != CANVAS_OK) {
        textenc_close(model);
        return status_wrap(st, "loading text encoder: ");
    }
    *out = model;
    return CANVAS_OK;
}

void textenc_close(textenc_model *model)
{
    if (!model) return;
    if (model->weights.layers)
        for (int i = 0; i < model->config.text.num_hidden_layers; i++) mem_free(model->weights.layers[i].small);
    if (model->weights.blocks)
        for (int i = 0; i < model->config.vision.depth; i++) mem_free(model->weights.blocks[i].small);
    mem_free(model->weights.layers);
    mem_free(model->weights.blocks);
    mem_free(model->weights.small);
    quant_store_free(model->quant);
    if (model->files) weights_close(model->files);
    mem_free(model);
}

const textenc_config *textenc_model_config(const textenc_model *model) { return &model->config; }

int64_t textenc_patch_values(const textenc_config *config)
{
    const textenc_vision_config *v = &config->vision;
    return (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
}
