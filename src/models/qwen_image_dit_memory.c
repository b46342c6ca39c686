/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_memory.c — where the transformer's weights live and how the forward
 * reaches them: placement on a device through the residency manager, acquire/release of
 * a weight group, the sizes a planner needs, and the planner's choice of a resident
 * prefix by dry runs on a measure device.
 *
 * Groups as the residency manager numbers them: 0 = top level (always in the resident
 * prefix: it is small and used at both ends of a forward), 1 + i = transformer_blocks.i. */
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_residency.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"
#include "ops/ops.h"

canvas_status dit_memory_create(dit_model *model)
{
    const size_t groups = (size_t)model->config.num_layers + 1;
    dit_memory *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    model->memory = m;
    TRY(mem_calloc((void **)&m->groups, groups, sizeof *m->groups, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->table, groups, sizeof *m->table, MEM_SCRATCH));
    TRY(mem_calloc((void **)&m->blocks, groups, sizeof *m->blocks, MEM_SCRATCH)); /* >= 1 entry */
    return CANVAS_OK;
}

static void unplace(dit_memory *m)
{
    residency_destroy(m->manager);
    m->manager = NULL;
    m->device = NULL;
    m->resident_blocks = 0;
}

void dit_memory_destroy(dit_model *model)
{
    dit_memory *m = model->memory;
    if (!m) return;
    unplace(m);
    mem_free(m->groups);
    mem_free(m->table);
    mem_free(m->blocks);
    mem_free(m);
    model->memory = NULL;
}

void dit_group_remap(const dit_group *group, void *const *device_tensors, const void *home, void *out,
                     size_t struct_bytes)
{
    char *o = out;
    memcpy(o, home, struct_bytes);
    for (int i = 0; i < group->n_matrices; i++) {
        const void *data = device_tensors[i];
        memcpy(o + group->matrix_field[i] + offsetof(weight_view, data), &data, sizeof data);
    }
    const float *vectors = device_tensors[group->n_matrices];
    for (int i = 0; i < group->n_vectors; i++) {
        const float *at = vectors + group->vector_at[i];
        memcpy(o + group->vector_field[i], &at, sizeof at);
    }
}

canvas_status dit_place(dit_model *model, mem_device *device, int resident_blocks)
{
    dit_memory *m = model->memory;
    const int layers = model->config.num_layers;
    if (!device) device = mem_device_cpu();
    if (resident_blocks == DIT_ALL_BLOCKS) resident_blocks = layers;
    if (resident_blocks < 0 || resident_blocks > layers)
        return status_fail(CANVAS_ERR_USAGE, "transformer: %d resident blocks asked, the model has %d blocks",
                           resident_blocks, layers);
    unplace(m);
    residency_plan plan = {1 + resident_blocks};
    canvas_status st = residency_create(device, m->table, layers + 1, &plan, &m->manager);
    if (st != CANVAS_OK)
        return status_wrap(st, "placing the transformer on %s (%d of %d blocks resident): ", mem_device_name(device),
                           resident_blocks, layers);
    m->device = device;
    m->resident_blocks = mem_device_is_host(device) ? layers : resident_blocks; /* used in place: all */
    return CANVAS_OK;
}

mem_device *dit_device(const dit_model *model) { return model->memory ? model->memory->device : NULL; }

int dit_resident_blocks(const dit_model *model) { return model->memory ? model->memory->resident_blocks : 0; }

size_t dit_weight_device_bytes(const dit_model *model, int resident_blocks)
{
    const int layers = model->config.num_layers;
    if (resident_blocks < 0 || resident_blocks > layers) resident_blocks = layers;
    residency_plan plan = {1 + resident_blocks};
    return residency_plan_device_bytes(model->memory->table, layers + 1, &plan);
}

static canvas_status placed(const dit_model *model)
{
    if (model->memory && model->memory->manager) return CANVAS_OK;
    return status_fail(CANVAS_ERR_USAGE, "transformer: the weights are not placed on a device (the last dit_place "
                                         "failed; place the model again before a forward)");
}

canvas_status dit_top_acquire(dit_model *model, const dit_weights **out)
{
    *out = NULL;
    TRY(placed(model));
    dit_memory *m = model->memory;
    void *const *tensors;
    TRY(residency_acquire(m->manager, 0, &tensors));
    dit_group_remap(&m->groups[0], tensors, &model->weights, &m->top, sizeof m->top);
    *out = &m->top;
    return CANVAS_OK;
}

void dit_top_release(dit_model *model)
{
    if (model->memory && model->memory->manager) residency_release(model->memory->manager, 0);
}

canvas_status dit_block_acquire(dit_model *model, int block, const dit_block_weights **out)
{
    *out = NULL;
    if (block < 0 || block >= model->config.num_layers)
        return status_fail(CANVAS_ERR_INTERNAL, "transformer block %d out of range [0, %d)", block,
                           model->config.num_layers);
    TRY(placed(model));
    dit_memory *m = model->memory;
    void *const *tensors;
    TRY(residency_acquire(m->manager, 1 + block, &tensors));
    dit_group_remap(&m->groups[1 + block], tensors, &model->weights.blocks[block], &m->blocks[block],
                    sizeof m->blocks[block]);
    *out = &m->blocks[block];
    return CANVAS_OK;
}

void dit_block_release(dit_model *model, int block)
{
    if (block < 0 || block >= model->config.num_layers) return;
    if (model->memory && model->memory->manager) residency_release(model->memory->manager, 1 + block);
}

/* ---- sizes -------------------------------------------------------------------------- */

size_t dit_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only)
{
    /* the kernel sizes its own workspace: nothing here mirrors its tiling */
    return op_attention_workspace_bytes(seq, heads, head_dim, threads, tiles_only);
}

size_t dit_linear_workspace_bytes(const dit_config *c, int64_t n_img, int64_t n_txt, int threads)
{
    /* every op_linear of the forward with more than 2 rows (the timestep and modulation
     * GEMVs take none); they run one at a time, so the largest one counts */
    const int64_t d = dit_inner_dim(c), wide = DIT_MLP_MULT * d, j = c->joint_attention_dim;
    const int64_t out = dit_output_channels(c);
    const int64_t shapes[][3] = {
        {n_img, d, c->in_channels}, {n_txt, d, j}, {n_img, out, d}, /* img_in, txt_in, proj_out */
        {n_img, d, d},    {n_txt, d, d},                            /* q, k, v, out projections */
        {n_img, wide, d}, {n_img, d, wide},                         /* the image MLP */
        {n_txt, wide, d}, {n_txt, d, wide},                         /* the text MLP */
    };
    size_t most = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t bytes = op_linear_workspace_bytes(shapes[i][0], shapes[i][1], shapes[i][2], threads);
        if (bytes > most) most = bytes;
    }
    return most;
}

size_t dit_forward_arena_bytes(const dit_model *model, const op_backend *be, int64_t n_img, int64_t n_txt)
{
    const dit_config *c = &model->config;
    size_t bytes = dit_activation_bytes(c, n_img, n_txt);
    mem_device *device = dit_device(model);
    if (device && !mem_device_is_host(device)) {
        size_t reserve = dit_attention_workspace_bytes(n_img + n_txt, c->num_attention_heads, c->attention_head_dim,
                                                       op_backend_workers(be), 0);
        bytes += (reserve + 63) & ~(size_t)63;
    }
    return bytes;
}

/* ---- the planner's choice ------------------------------------------------------------ */

/* Dry-run the forward with `resident_blocks` on a measure device of `cap` bytes.
 * *refused: whether the measure device turned an allocation down (the plan does not fit),
 * as opposed to a failure elsewhere (host memory, an injected fault), which is returned as is. */
static canvas_status dry_run(dit_model *model, op_backend *be, const dit_inputs *inputs, size_t cap,
                             int resident_blocks, int *refused)
{
    *refused = 0;
    mem_device *measure;
    TRY(mem_device_create_measure("gpu (dry run)", cap, &measure));
    canvas_status st = dit_place(model, measure, resident_blocks);
    if (st == CANVAS_OK) st = dit_forward(model, be, inputs, NULL, NULL);
    unplace(model->memory);
    mem_device_stats stats;
    mem_device_get_stats(measure, &stats);
    *refused = stats.refused > 0;
    mem_device_destroy(measure);
    return st;
}

canvas_status dit_plan_resident_blocks(dit_model *model, op_backend *be, const dit_inputs *inputs, size_t cap,
                                       int *out_resident_blocks)
{
    *out_resident_blocks = -1;
    canvas_status st = CANVAS_ERR_OUT_OF_MEMORY;
    int refused = 1;
    /* Fewer resident blocks never need more memory, so the first prefix that fits, from
     * the top, is the largest. */
    for (int k = model->config.num_layers; k >= 0 && refused; k--) {
        st = dry_run(model, be, inputs, cap, k, &refused);
        if (st == CANVAS_OK) *out_resident_blocks = k;
        if (st != CANVAS_ERR_OUT_OF_MEMORY) refused = 0;
    }
    if (st == CANVAS_ERR_OUT_OF_MEMORY && refused) {
        const dit_config *c = &model->config;
        size_t weights = dit_weight_device_bytes(model, 0);
        size_t arena = dit_activation_bytes(c, inputs->n_img, inputs->n_txt) +
                       dit_attention_workspace_bytes(inputs->n_img + inputs->n_txt, c->num_attention_heads,
                                                     c->attention_head_dim, op_backend_workers(be), 0);
        st = status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                         "out of memory: the transformer does not fit in %zu bytes of device memory even with every "
                         "block streamed; that needs about %zu bytes (weights: top level + 2 streaming buffers %zu, "
                         "activations %zu)",
                         cap, weights + arena, weights, arena);
    }
    if (st != CANVAS_OK) return st; /* the model is left unplaced */
    return dit_place(model, mem_device_cpu(), DIT_ALL_BLOCKS);
}
