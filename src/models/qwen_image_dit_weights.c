/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_weights.c — loading a QwenImageTransformer2DModel folder: the config,
 * the (possibly sharded) safetensors, the architecture check, and the wiring of the
 * qwen_dit_weights views (spec/qwen-image-transformer.md §2).
 *
 * Matrices are used where they lie in the mmapped files. The small vectors (biases and
 * norm weights, O(D) each) are converted once to f32 into one MEM_WEIGHTS block per
 * weight group, so that the hot loops never branch on a dtype for them. */
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/config.h"
#include "io/quant_loader.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"

/* load() has run arch_check before any wiring: every tensor of the tables is in the files
 * with the shape arch_dit gives it and a float (or stored quantised) type. Wire one group
 * twice: a counting pass sizes its vector block, the second fills it and records the
 * group for the residency manager (group 0: top level, 1 + i: block i). */
static canvas_status wire_group(qwen_dit_model *model, int block)
{
    char prefix[64] = "";
    weight_groups *set = qwen_dit_weight_groups(model);
    if (block >= 0) {
        snprintf(prefix, sizeof prefix, "transformer_blocks.%d.", block);
        weight_group_begin(set, block + 1, "transformer_blocks.%d", block);
    } else {
        weight_group_begin(set, 0, "top level");
    }
    int64_t extents[WEIGHT_EXTENTS];
    qwen_dit_tensor_extents(&model->config, extents);
    weight_wiring w = {.files = model->files, .quant = model->quant, .extents = extents, .prefix = prefix,
                       .group = &set->groups[block + 1], .arch = "arch_dit",
                       .quantize = block >= 0 ? model->weights_format : (quant_choice){QUANT_NONE, 0},
                       .home = block >= 0 ? (char *)&model->weights.blocks[block] : (char *)&model->weights};
    const weight_tensor *table = block >= 0 ? qwen_dit_block_tensors : qwen_dit_top_tensors;
    const int n = block >= 0 ? QWEN_DIT_BLOCK_TENSORS : QWEN_DIT_TOP_TENSORS;
    TRY(weight_wire_table(&w, table, n));
    const size_t bytes = w.used * sizeof(float);
    TRY(mem_alloc((void **)&w.vectors, bytes, MEM_WEIGHTS));
    if (block >= 0) model->weights.blocks[block].small = w.vectors;
    else model->weights.small = w.vectors;
    w.used = 0;
    TRY(weight_wire_table(&w, table, n));
    weight_group_seal(set, block + 1, w.vectors, bytes);
    return CANVAS_OK;
}

/* Features of the config this forward does not implement. */
static canvas_status check_supported(const qwen_dit_config *c, const char *config_path)
{
    if (c->use_additional_t_cond || c->use_layer3d_rope)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: use_additional_t_cond / use_layer3d_rope (Qwen-Image-Layered) "
                           "are not supported", config_path);
    int rope_dims = c->axes_dims_rope[0] + c->axes_dims_rope[1] + c->axes_dims_rope[2];
    if (rope_dims != c->attention_head_dim)
        return status_fail(CANVAS_ERR_INPUT, "%s: axes_dims_rope sum to %d but attention_head_dim is %d", config_path,
                           rope_dims, c->attention_head_dim);
    for (int a = 0; a < 3; a++)
        if (c->axes_dims_rope[a] <= 0 || c->axes_dims_rope[a] % 2)
            return status_fail(CANVAS_ERR_INPUT, "%s: axes_dims_rope[%d] = %d must be even and positive", config_path, a,
                               c->axes_dims_rope[a]);
    if (c->num_layers < 0 || c->patch_size <= 0 || c->in_channels <= 0 || c->out_channels <= 0 ||
        c->num_attention_heads <= 0 || c->joint_attention_dim <= 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: impossible transformer dimensions", config_path);
    return CANVAS_OK;
}

/* The model's block homes and empty groups for its config (load and the planner's shape
 * models). */
static canvas_status create(qwen_dit_model *model)
{
    const size_t layers = (size_t)model->config.num_layers;
    if (layers > 0) TRY(mem_calloc((void **)&model->weights.blocks, layers, sizeof(qwen_dit_block_weights), MEM_SCRATCH));
    return qwen_dit_memory_create(model);
}

static canvas_status load(qwen_dit_model *model, const char *component_dir)
{
    char config_path[PATH_BUFFER_SIZE];
    if (weights_is_file(component_dir)) { /* one file: the config from its tensors */
        TRY(weights_open_file(component_dir, WEIGHTS_TRANSFORMER, &model->files));
        TRY(qwen_dit_config_infer(model->files, &model->config));
        snprintf(config_path, sizeof config_path, "%s", component_dir);
    } else {
        TRY(path_join(config_path, sizeof config_path, component_dir, "config.json"));
        TRY(qwen_dit_config_load(config_path, &model->config));
    }
    TRY(check_supported(&model->config, config_path));
    TRY(mem_strdup(&model->component_dir, component_dir));
    TRY(quant_store_create(&model->quant));
    if (!model->files) TRY(weights_open(component_dir, &model->files));

    tensor_spec_list expected = {0};
    canvas_status st = arch_dit(&model->config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, model->files, "transformer");
    arch_free(&expected);
    TRY(st);

    TRY(create(model));
    TRY(wire_group(model, -1));
    for (int i = 0; i < model->config.num_layers; i++) TRY(wire_group(model, i));
    /* Until placed elsewhere the weights are read where they lie (the cpu device). */
    return qwen_dit_place(model, mem_device_cpu(), QWEN_DIT_ALL_BLOCKS);
}

canvas_status qwen_dit_header_load(const char *file, qwen_dit_config *config, weight_set **files)
{
    TRY(weights_open_file_header(file, WEIGHTS_TRANSFORMER, files));
    canvas_status st = qwen_dit_config_infer(*files, config);
    if (st == CANVAS_OK) st = check_supported(config, file);
    tensor_spec_list expected = {0};
    if (st == CANVAS_OK) st = arch_dit(config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, *files, "transformer");
    arch_free(&expected);
    if (st != CANVAS_OK) {
        weights_close(*files);
        *files = NULL;
        return status_wrap(st, "reading the transformer's header: ");
    }
    return CANVAS_OK;
}

canvas_status qwen_dit_shape_create(const qwen_dit_config *config, quant_choice weights, qwen_dit_model **out)
{
    *out = NULL;
    qwen_dit_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    model->config = *config;
    model->weights_format = weights;
    canvas_status st = create(model);
    if (st != CANVAS_OK) {
        qwen_dit_free(model);
        return st;
    }
    *out = model;
    return CANVAS_OK;
}

canvas_status qwen_dit_load(const char *component_dir, qwen_dit_model **out)
{
    return qwen_dit_load_quantized(component_dir, (quant_choice){QUANT_NONE, 0}, out);
}

canvas_status qwen_dit_load_quantized(const char *component_dir, quant_choice weights, qwen_dit_model **out)
{
    *out = NULL;
    qwen_dit_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    model->weights_format = weights;
    canvas_status st = load(model, component_dir);
    if (st != CANVAS_OK) {
        qwen_dit_free(model);
        return status_wrap(st, "loading transformer: ");
    }
    *out = model;
    return CANVAS_OK;
}

void qwen_dit_free(qwen_dit_model *model)
{
    if (!model) return;
    qwen_dit_memory_destroy(model);
    if (model->weights.blocks) {
        for (int i = 0; i < model->config.num_layers; i++) mem_free(model->weights.blocks[i].small);
        mem_free(model->weights.blocks);
    }
    mem_free(model->weights.small);
    quant_store_free(model->quant);
    if (model->files) weights_close(model->files);
    mem_free(model->component_dir);
    mem_free(model);
}

int64_t qwen_dit_output_channels(const qwen_dit_config *config)
{
    return (int64_t)config->patch_size * config->patch_size * config->out_channels;
}
