/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_memory.c — where the encoder's weights live and how the forward reaches
 * them: placement through the residency manager (mem/mem_residency.h) and acquire /
 * release per weight group (models/weight_groups.h, as the transformer; groups
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
    const size_t depth = (size_t)model->config.vision.depth, layers = (size_t)model->config.text.num_hidden_layers;
    textenc_memory *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    model->memory = m;
    TRY(weight_groups_create(&m->set, group_count(model), "text encoder", "textenc_place"));
    TRY(mem_calloc((void **)&m->blocks, depth ? depth : 1, sizeof *m->blocks, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->layers, layers ? layers : 1, sizeof *m->layers, MEM_SCRATCH));
    return CANVAS_OK;
}

void textenc_memory_destroy(textenc_model *model)
{
    textenc_memory *m = model->memory;
    if (!m) return;
    weight_groups_destroy(&m->set);
    mem_free(m->blocks);
    mem_free(m->layers);
    mem_free(m);
    model->memory = NULL;
}

canvas_status textenc_place(textenc_model *model, mem_device *device, int resident_groups)
{
    const int streamable = group_count(model) - 1;
    if (!device) device = mem_device_cpu();
    if (resident_groups == TEXTENC_ALL_GROUPS) resident_groups = streamable;
    if (resident_groups < 0 || resident_groups > streamable)
        return status_fail(CANVAS_ERR_USAGE, "text encoder: %d resident groups asked, the model has %d", resident_groups,
                           streamable);
    canvas_status st = weight_groups_place(&model->memory->set, device, resident_groups);
    if (st != CANVAS_OK)
        return status_wrap(st, "placing the text encoder on %s (%d of %d groups resident): ", mem_device_name(device),
                           resident_groups, streamable);
    return CANVAS_OK;
}

mem_device *textenc_device(const textenc_model *model) { return model->memory ? model->memory->set.device : NULL; }

/* Group `group`'s device pointers into `out`, a copy of its home struct. */
static canvas_status acquire(textenc_model *model, int group, const void *home, void *out, size_t struct_bytes)
{
    return weight_groups_acquire(&model->memory->set, group, home, out, struct_bytes);
}

static void release(textenc_model *model, int group)
{
    if (model->memory) weight_groups_release(&model->memory->set, group);
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

/* One prefix of the search: a forward dry-run on a measure device of `cap` bytes with k
 * groups resident. It fits when the device turned nothing down; a failure elsewhere ends
 * the search as is. The peak of the last prefix that fitted is kept. */
typedef struct prefix_search {
    textenc_model *model;
    const textenc_inputs *in;
    size_t cap;
    int resident_groups;
    uint64_t peak;
} prefix_search;

static canvas_status dry_forward(void *ctx, mem_device *measure)
{
    prefix_search *s = ctx;
    const textenc_inputs *in = s->in;
    canvas_status st = textenc_place(s->model, measure, s->resident_groups);
    if (st == CANVAS_OK)
        st = textenc_forward(s->model, NULL, in->ids, in->n_ids, in->pixel_values, in->grid_thw, in->n_images, NULL);
    weight_groups_unplace(&s->model->memory->set);
    return st;
}

static canvas_status prefix_fits(void *ctx, int k, int *fits)
{
    prefix_search *s = ctx;
    s->resident_groups = k;
    uint64_t peak;
    TRY(weight_groups_dry_run(s->cap, dry_forward, s, fits, &peak));
    if (*fits) s->peak = peak;
    return CANVAS_OK;
}

canvas_status textenc_plan_resident_groups(textenc_model *model, const textenc_inputs *inputs, size_t cap,
                                           int *out_resident_groups, uint64_t *out_peak)
{
    *out_resident_groups = -1;
    prefix_search s = {model, inputs, cap, 0, 0};
    int k;
    TRY(weight_groups_largest_prefix(group_count(model) - 1, prefix_fits, &s, &k)); /* left unplaced */
    if (k < 0) {
        const size_t weights = weight_groups_device_bytes(&model->memory->set, 0);
        const size_t arena = textenc_activation_bytes(&model->config, inputs->n_ids, inputs->grid_thw, inputs->n_images);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory: the text encoder does not fit in %zu bytes of device memory even with every "
                           "group streamed; that needs about %zu bytes (weights: top level + 2 streaming buffers %zu, "
                           "activations %zu)", cap, weights + arena, weights, arena);
    }
    *out_resident_groups = k;
    if (out_peak) *out_peak = s.peak;
    return textenc_place(model, mem_device_cpu(), TEXTENC_ALL_GROUPS);
}
