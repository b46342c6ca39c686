/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_memory.c — where the encoder's weights live and how the forward reaches
 * them: placement through the residency manager (mem/mem_residency.h) and acquire /
 * release per weight group, as the transformer does (qwen_image_dit_memory.c; groups
 * numbered as qwen_textenc_internal.h says). */
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "models/qwen_textenc_internal.h"

static int group_count(const textenc_model *model)
{
    return 1 + model->config.vision.depth + model->config.text.num_hidden_layers;
}

canvas_status textenc_memory_create(textenc_model *model)
{
    const size_t groups = (size_t)group_count(model);
    const size_t depth = (size_t)model->config.vision.depth, layers = (size_t)model->config.text.num_hidden_layers;
    textenc_memory *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    model->memory = m;
    TRY(mem_calloc((void **)&m->groups, groups, sizeof *m->groups, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->table, groups, sizeof *m->table, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->blocks, depth ? depth : 1, sizeof *m->blocks, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->layers, layers ? layers : 1, sizeof *m->layers, MEM_SCRATCH));
    return CANVAS_OK;
}

static void unplace(textenc_memory *m)
{
    residency_destroy(m->manager);
    m->manager = NULL;
    m->device = NULL;
    m->resident_groups = 0;
}

void textenc_memory_destroy(textenc_model *model)
{
    textenc_memory *m = model->memory;
    if (!m) return;
    unplace(m);
    mem_free(m->groups);
    mem_free(m->table);
    mem_free(m->blocks);
    mem_free(m->layers);
    mem_free(m);
    model->memory = NULL;
}

canvas_status textenc_place(textenc_model *model, mem_device *device, int resident_groups)
{
    textenc_memory *m = model->memory;
    const int streamable = group_count(model) - 1;
    if (!device) device = mem_device_cpu();
    if (resident_groups == TEXTENC_ALL_GROUPS) resident_groups = streamable;
    if (resident_groups < 0 || resident_groups > streamable)
        return status_fail(CANVAS_ERR_USAGE, "text encoder: %d resident groups asked, the model has %d", resident_groups,
                           streamable);
    unplace(m);
    residency_plan plan = {1 + resident_groups};
    canvas_status st = residency_create(device, m->table, streamable + 1, &plan, &m->manager);
    if (st != CANVAS_OK)
        return status_wrap(st, "placing the text encoder on %s (%d of %d groups resident): ", mem_device_name(device),
                           resident_groups, streamable);
    m->device = device;
    m->resident_groups = mem_device_is_host(device) ? streamable : resident_groups; /* used in place: all */
    return CANVAS_OK;
}

mem_device *textenc_device(const textenc_model *model) { return model->memory ? model->memory->device : NULL; }

/* Group `group`'s device pointers into `out`, a copy of its home struct. */
static canvas_status acquire(textenc_model *model, int group, const void *home, void *out, size_t struct_bytes)
{
    textenc_memory *m = model->memory;
    if (!m || !m->manager)
        return status_fail(CANVAS_ERR_USAGE, "text encoder: the weights are not placed on a device (the last "
                                             "textenc_place failed; place the model again before a forward)");
    void *const *tensors;
    TRY(residency_acquire(m->manager, group, &tensors));
    dit_group_remap(&m->groups[group], tensors, home, out, struct_bytes);
    return CANVAS_OK;
}

static void release(textenc_model *model, int group)
{
    if (model->memory && model->memory->manager) residency_release(model->memory->manager, group);
}

canvas_status textenc_top_acquire(textenc_model *model, const textenc_weights **out)
{
    *out = NULL;
    TRY(acquire(model, 0, &model->weights, &model->memory->top, sizeof model->memory->top));
    *out = &model->memory->top;
    return CANVAS_OK;
}

void textenc_top_release(textenc_model *model) { release(model, 0); }

canvas_status textenc_block_acquire(textenc_model *model, int block, const textenc_block_weights **out)
{
    *out = NULL;
    textenc_memory *m = model->memory;
    TRY(acquire(model, 1 + block, &model->weights.blocks[block], &m->blocks[block], sizeof m->blocks[block]));
    *out = &m->blocks[block];
    return CANVAS_OK;
}

void textenc_block_release(textenc_model *model, int block) { release(model, 1 + block); }

canvas_status textenc_layer_acquire(textenc_model *model, int layer, const textenc_layer_weights **out)
{
    *out = NULL;
    textenc_memory *m = model->memory;
    const int group = 1 + model->config.vision.depth + layer;
    TRY(acquire(model, group, &model->weights.layers[layer], &m->layers[layer], sizeof m->layers[layer]));
    *out = &m->layers[layer];
    return CANVAS_OK;
}

void textenc_layer_release(textenc_model *model, int layer) { release(model, 1 + model->config.vision.depth + layer); }

/* Dry-run a forward with `resident_groups` on a measure device of `cap` bytes. *refused:
 * whether the device turned an allocation down (the plan does not fit), as opposed to a
 * failure elsewhere, which is returned as is. */
static canvas_status dry_run(textenc_model *model, const textenc_inputs *in, size_t cap, int resident_groups,
                             int *refused, uint64_t *peak)
{
    *refused = 0;
    *peak = 0;
    mem_device *measure;
    TRY(mem_device_create_measure("gpu (dry run)", cap, &measure));
    canvas_status st = textenc_place(model, measure, resident_groups);
    if (st == CANVAS_OK)
        st = textenc_forward(model, NULL, in->ids, in->n_ids, in->pixel_values, in->grid_thw, in->n_images, NULL);
    unplace(model->memory);
    mem_device_stats stats;
    mem_device_get_stats(measure, &stats);
    *refused = stats.refused > 0;
    *peak = stats.peak_bytes;
    mem_device_destroy(measure);
    return st;
}

canvas_status textenc_plan_resident_groups(textenc_model *model, const textenc_inputs *inputs, size_t cap,
                                           int *out_resident_groups, uint64_t *out_peak)
{
    *out_resident_groups = -1;
    uint64_t peak = 0;
    canvas_status st = CANVAS_ERR_OUT_OF_MEMORY;
    int refused = 1;
    /* Fewer resident groups never need more memory: the first prefix that fits, from the
     * top, is the largest. */
    for (int k = group_count(model) - 1; k >= 0 && refused; k--) {
        st = dry_run(model, inputs, cap, k, &refused, &peak);
        if (st == CANVAS_OK) *out_resident_groups = k;
        if (st == CANVAS_OK && out_peak) *out_peak = peak;
        if (st != CANVAS_ERR_OUT_OF_MEMORY) refused = 0;
    }
    if (st == CANVAS_ERR_OUT_OF_MEMORY && refused) {
        residency_plan plan = {1};
        const size_t weights = residency_plan_device_bytes(model->memory->table, group_count(model), &plan);
        const size_t arena = textenc_activation_bytes(&model->config, inputs->n_ids, inputs->grid_thw, inputs->n_images);
        st = status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                         "out of memory: the text encoder does not fit in %zu bytes of device memory even with every "
                         "group streamed; that needs about %zu bytes (weights: top level + 2 streaming buffers %zu, "
                         "activations %zu)", cap, weights + arena, weights, arena);
    }
    if (st != CANVAS_OK) return st; /* the model is left unplaced */
    return textenc_place(model, mem_device_cpu(), TEXTENC_ALL_GROUPS);
}
