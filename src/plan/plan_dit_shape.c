/* SPDX-License-Identifier: Apache-2.0 */
/* plan_dit_shape.c — a transformer made of sizes only, so that the planner can dry-run
 * the real forward from config files alone (no weights on disk).
 *
 * The residency manager packs each group's tensors at 256-byte boundaries; the real
 * loader's group is the block's matrices (stored, or quantised on load: quant_layout's
 * blob) followed by one tensor of the group's f32 vectors, each padded to 16 floats. The
 * shape model builds the same groups from arch_dit's tensor list, with homes that point
 * at one static byte: a measure device never reads them (copies to it move nothing).
 * Given the weight set (a GGUF header: names, shapes and byte sizes, no data), every matrix
 * counts the bytes its file stores it in, so each ggml type weighs what it really takes. */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/model_dir.h"
#include "models/arch.h"
#include "models/qwen_image_dit_groups.h"
#include "models/weight_groups.h"
#include "plan/plan_internal.h"

/* Never read: the home of every tensor of a shape model (the text encoder's too). */
const unsigned char plan_shape_home[64];

/* A matrix's bytes as the loader would hold it: a tensor stored quantised (a GGUF block type,
 * fp8, ...) as stored whatever `weights` says (quant_weight_from_view keeps it so);
 * quantised on load when `quantise` and the format holds its width; else as stored: the
 * file's bytes when `files` is given, numel x stored_bytes from a config alone. */
static uint64_t matrix_bytes(const tensor_spec *t, int quantise, quant_choice weights, int stored_bytes,
                             const weight_set *files)
{
    const uint64_t numel = arch_numel(t);
    const st_tensor *stored = files ? weights_find(files, t->name) : NULL;
    if (stored && stored->type == DTYPE_U8) return stored->nbytes;
    if (quantise && t->ndim == 2 && weights.format != QUANT_NONE && quant_fits(weights.format, t->shape[1])) {
        quant_params layout;
        if (quant_layout(weights.format, weights.per_channel, t->shape[0], t->shape[1], &layout) == CANVAS_OK)
            return layout.bytes;
        status_clear();
    }
    return stored ? stored->nbytes : numel * (uint64_t)stored_bytes;
}

static canvas_status group_sizes(const tensor_spec_list *specs, int group, int quantise, quant_choice weights,
                                 int stored_bytes, const weight_set *files, size_t *bytes, int max_matrices,
                                 int *n_matrices)
{
    uint64_t vector_bytes = 0;
    *n_matrices = 0;
    for (int i = 0; i < specs->count; i++) {
        const tensor_spec *t = &specs->items[i];
        if (t->group != group || (t->flags & ARCH_UNUSED)) continue;
        if (t->ndim >= 2) {
            if (*n_matrices == max_matrices)
                return status_fail(CANVAS_ERR_INTERNAL, "%s: too many matrices in one weight group", t->name);
            bytes[(*n_matrices)++] = (size_t)matrix_bytes(t, quantise, weights, stored_bytes, files);
        } else {
            vector_bytes += weight_group_padded_floats((int64_t)arch_numel(t)) * sizeof(float);
        }
    }
    bytes[*n_matrices] = (size_t)vector_bytes;
    return CANVAS_OK;
}

canvas_status plan_group_sizes(const tensor_spec_list *specs, int group, int quantise, quant_choice weights,
                               int stored_bytes, size_t *bytes, int max_matrices, int *n_matrices)
{
    return group_sizes(specs, group, quantise, weights, stored_bytes, NULL, bytes, max_matrices, n_matrices);
}

static canvas_status build_group(weight_groups *set, const tensor_spec_list *specs, int block,
                                 quant_choice weights, int stored_bytes, const weight_set *files)
{
    if (block >= 0) weight_group_begin(set, block + 1, "transformer_blocks.%d", block);
    else weight_group_begin(set, 0, "top level");
    weight_group *g = &set->groups[block + 1];
    size_t bytes[WEIGHT_GROUP_MAX_MATRICES + 1];
    TRY(group_sizes(specs, block, block >= 0, weights, stored_bytes, files, bytes, WEIGHT_GROUP_MAX_MATRICES,
                    &g->n_matrices));
    /* matrix_field / vector_field stay 0: a remap then rewrites one harmless pointer */
    for (int t = 0; t < g->n_matrices; t++) g->tensors[t] = (residency_tensor){plan_shape_home, bytes[t]};
    weight_group_seal(set, block + 1, plan_shape_home, bytes[g->n_matrices]);
    return CANVAS_OK;
}

/* The type a shape model's matrix stands for: the file's (a quantised one: U8), else
 * quantised on load (U8), else numel x stored_bytes (4: F32, 1: U8, otherwise BF16). Only a
 * backend's GEMM scratch reads it (op_backend_linear_scratch_bytes: whether it decodes). */
static dtype view_type(const char *name, int64_t in_features, int quantise, quant_choice weights, int stored_bytes,
                       const weight_set *files)
{
    const st_tensor *stored = files ? weights_find(files, name) : NULL;
    if (stored) return stored->type;
    if (quantise && weights.format != QUANT_NONE && quant_fits(weights.format, in_features)) return DTYPE_U8;
    return stored_bytes == 4 ? DTYPE_F32 : stored_bytes == 1 ? DTYPE_U8 : DTYPE_BF16;
}

void plan_dit_shape_views(qwen_dit_model *model, const qwen_dit_model *loaded, quant_choice weights, int stored_bytes,
                          const weight_set *files)
{
    int64_t extents[WEIGHT_EXTENTS];
    qwen_dit_tensor_extents(&model->config, extents);
    for (int b = -1; b < model->config.num_layers; b++) {
        char *home = b >= 0 ? (char *)&model->weights.blocks[b] : (char *)&model->weights;
        const char *from = !loaded ? NULL : b >= 0 ? (const char *)&loaded->weights.blocks[b] : (const char *)&loaded->weights;
        const weight_tensor *table = b >= 0 ? qwen_dit_block_tensors : qwen_dit_top_tensors;
        const int n = b >= 0 ? QWEN_DIT_BLOCK_TENSORS : QWEN_DIT_TOP_TENSORS;
        for (int i = 0; i < n; i++) {
            if (table[i].cols == WEIGHT_NONE) continue;
            weight_view *v = (weight_view *)(home + table[i].field);
            if (from) {
                *v = *(const weight_view *)(from + table[i].field);
            } else {
                char name[128];
                if (b >= 0) snprintf(name, sizeof name, "transformer_blocks.%d.%s", b, table[i].suffix);
                else snprintf(name, sizeof name, "%s", table[i].suffix);
                *v = (weight_view){.out_features = weight_size_of(table[i].rows, extents),
                                   .in_features = weight_size_of(table[i].cols, extents)};
                v->type = view_type(name, v->in_features, b >= 0, weights, stored_bytes, files);
            }
            v->data = plan_shape_home;
        }
    }
}

canvas_status plan_dit_shape_model(const qwen_dit_config *config, quant_choice weights, int stored_bytes_per_element,
                                   qwen_dit_model **out)
{
    return plan_dit_shape_model_files(config, weights, stored_bytes_per_element, NULL, out);
}

canvas_status plan_dit_shape_model_files(const qwen_dit_config *config, quant_choice weights, int stored_bytes_per_element,
                                         const weight_set *files, qwen_dit_model **out)
{
    *out = NULL;
    if (stored_bytes_per_element < 1) stored_bytes_per_element = 2;
    qwen_dit_model *model = NULL;
    tensor_spec_list specs = {0};
    canvas_status st = arch_dit(config, &specs);
    if (st == CANVAS_OK) st = qwen_dit_shape_create(config, weights, &model);
    for (int b = -1; st == CANVAS_OK && b < config->num_layers; b++)
        st = build_group(qwen_dit_weight_groups(model), &specs, b, weights, stored_bytes_per_element, files);
    arch_free(&specs);
    if (st == CANVAS_OK) plan_dit_shape_views(model, NULL, weights, stored_bytes_per_element, files);
    if (st == CANVAS_OK) st = qwen_dit_place(model, mem_device_cpu(), QWEN_DIT_ALL_BLOCKS);
    if (st != CANVAS_OK) {
        qwen_dit_free(model);
        return status_wrap(st, "planning the transformer from its config: ");
    }
    *out = model;
    return CANVAS_OK;
}
