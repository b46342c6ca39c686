/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_weights.c — opening a text_encoder/ folder: the config, the (possibly
 * sharded) safetensors, the architecture check, and the wiring of the weight views.
 *
 * As for the transformer: matrices are used where they lie in the mapping (or as stored
 * quantised, io/quant_loader.h), or quantised on load into MEM_WEIGHTS blobs when a format
 * is asked for (textenc_open_quantized: the layer groups' plain matrices whose width the
 * format holds); the small vectors of each weight group (norms, biases)
 * are converted once to f32 into one MEM_WEIGHTS block per group, so the forward never
 * branches on a dtype for them. The embedding table stays in the mapping too: a forward
 * converts only the rows of its ids. lm_head is never touched. */
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/quant_loader.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch_infer.h"
#include "models/qwen_textenc_internal.h"

/* A plain float tensor read as a matrix (embed_tokens, the 5-D patch embedding): its name
 * is prefix + suffix. */
static canvas_status plain_tensor(const textenc_model *model, const char *prefix, const char *suffix,
                                  const st_tensor **out)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%s%s", prefix, suffix);
    if (n < 0 || (size_t)n >= sizeof name)
        return status_fail(CANVAS_ERR_INTERNAL, "%s%s: tensor name too long", prefix, suffix);
    const st_tensor *t = weights_find(model->files, name);
    if (!t) return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in arch_text_encoder", name);
    if (t->type != DTYPE_F32 && t->type != DTYPE_F16 && t->type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: stored as %s; the text encoder reads it as F32, F16 or BF16",
                           name, dtype_name(t->type));
    *out = t;
    return CANVAS_OK;
}

/* The top level spans two prefixes (text and vision): the final norm, the embedding table
 * (read on the host, in no group's tensors), the patch embedding, the merger. */
static canvas_status wire_top(weight_wiring *w, const textenc_model *model, textenc_weights *wt)
{
    const char *text = textenc_text_prefix(model->naming), *vision = textenc_vision_prefix(model->naming);
    w->prefix = text;
    TRY(weight_wire_table(w, textenc_norm_tensors, TEXTENC_NORM_TENSORS));
    if (w->vectors) {
        TRY(plain_tensor(model, text, TEXTENC_EMBED_TOKENS, &wt->embed_tokens));
        const st_tensor *patch;
        TRY(plain_tensor(model, vision, TEXTENC_PATCH_EMBED, &patch));
        wt->patch_embed = (weight_view){patch->type, patch->data, model->config.vision.hidden_size,
                                        textenc_patch_values(&model->config), NULL};
        TRY(weight_group_add_matrix(w->group, w->home, &wt->patch_embed,
                                    (residency_tensor){patch->data, (size_t)patch->nbytes}, TEXTENC_PATCH_EMBED,
                                    patch->name));
    }
    w->prefix = vision;
    return weight_wire_table(w, textenc_merger_tensors, TEXTENC_MERGER_TENSORS);
}

/* Wire residency group `group` (qwen_textenc_internal.h: 0 top level, then the vision
 * blocks, then the decoder layers) in two passes (weight_wiring); its vector block goes to
 * *small and becomes the group's last tensor. */
static canvas_status wire_group(textenc_model *model, int group)
{
    const int depth = model->config.vision.depth;
    weight_groups *set = &model->memory->set;
    int64_t extents[WEIGHT_EXTENTS];
    textenc_tensor_extents(&model->config, extents);
    char prefix[128];
    /* the layer groups are quantised, the top level stays as stored (plan/plan.h's shape) */
    weight_wiring w = {.files = model->files, .quant = model->quant, .extents = extents, .prefix = prefix,
                       .group = &set->groups[group], .arch = "arch_text_encoder", .home = (char *)&model->weights,
                       .quantize = group > 0 ? model->weights_format : (quant_choice){QUANT_NONE, 0}};
    const weight_tensor *table = NULL;
    int n = 0;
    float **small = &model->weights.small;
    weight_group_begin(set, group, "text encoder top level");
    if (group > depth) {
        const int l = group - 1 - depth;
        snprintf(prefix, sizeof prefix, "%slayers.%d.", textenc_text_prefix(model->naming), l);
        weight_group_begin(set, group, "text encoder layers.%d", l);
        small = &model->weights.layers[l].small;
        w.home = (char *)&model->weights.layers[l];
        table = textenc_layer_tensors;
        n = TEXTENC_LAYER_TENSORS;
    } else if (group > 0) {
        snprintf(prefix, sizeof prefix, "%sblocks.%d.", textenc_vision_prefix(model->naming), group - 1);
        weight_group_begin(set, group, "text encoder visual.blocks.%d", group - 1);
        small = &model->weights.blocks[group - 1].small;
        w.home = (char *)&model->weights.blocks[group - 1];
        table = textenc_block_tensors;
        n = TEXTENC_BLOCK_TENSORS;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            TRY(mem_alloc((void **)&w.vectors, w.used * sizeof(float), MEM_WEIGHTS));
            *small = w.vectors;
            w.used = 0;
        }
        TRY(table ? weight_wire_table(&w, table, n) : wire_top(&w, model, &model->weights));
    }
    weight_group_seal(set, group, w.vectors, w.used * sizeof(float));
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

static canvas_status open_model(textenc_model *model, const char *component_dir, quant_choice weights)
{
    model->weights_format = weights;
    char config_path[PATH_BUFFER_SIZE];
    if (weights_is_file(component_dir)) { /* one file: the config from its tensors */
        TRY(weights_open_file(component_dir, WEIGHTS_TEXT_ENCODER, &model->files));
        TRY(textenc_config_infer(model->files, &model->config));
        snprintf(config_path, sizeof config_path, "%s", component_dir);
    } else {
        TRY(path_join(config_path, sizeof config_path, component_dir, "config.json"));
        TRY(textenc_config_load(config_path, &model->config));
    }
    TRY(check_supported(&model->config, config_path));
    TRY(quant_store_create(&model->quant));
    if (!model->files) TRY(weights_open(component_dir, &model->files));
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
    TRY(textenc_memory_create(model));
    for (int g = 0; g < 1 + depth + layers; g++) TRY(wire_group(model, g));
    /* Until placed elsewhere the weights are read where they lie (the cpu device). */
    return textenc_place(model, mem_device_cpu(), TEXTENC_ALL_GROUPS);
}

canvas_status textenc_open(const char *component_dir, textenc_model **out)
{
    return textenc_open_quantized(component_dir, (quant_choice){QUANT_NONE, 0}, out);
}

canvas_status textenc_open_quantized(const char *component_dir, quant_choice weights, textenc_model **out)
{
    *out = NULL;
    if (weights.format < QUANT_NONE || weights.format >= QUANT_FORMAT_COUNT)
        return status_fail(CANVAS_ERR_USAGE, "%s: text encoder weight format %d is not one", component_dir,
                           (int)weights.format);
    textenc_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    canvas_status st = open_model(model, component_dir, weights);
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
    textenc_memory_destroy(model);
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

quant_choice textenc_weights_format(const textenc_model *model) { return model->weights_format; }

size_t textenc_quantized_bytes(const textenc_model *model) { return quant_store_bytes(model->quant); }

int64_t textenc_patch_values(const textenc_config *config)
{
    const textenc_vision_config *v = &config->vision;
    return (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
}
