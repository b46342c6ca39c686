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
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"
#include "ops/ops.h"

canvas_status qwen_dit_memory_create(qwen_dit_model *model)
{
    qwen_dit_memory *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    model->memory = m;
    TRY(weight_groups_create(&m->set, model->config.num_layers + 1, "transformer", "qwen_dit_place"));
    const size_t layers = (size_t)model->config.num_layers;
    return mem_calloc((void **)&m->blocks, layers ? layers : 1, sizeof *m->blocks, MEM_SCRATCH);
}

void qwen_dit_memory_destroy(qwen_dit_model *model)
{
    qwen_dit_memory *m = model->memory;
    if (!m) return;
    weight_groups_destroy(&m->set);
    mem_free(m->blocks);
    mem_free(m);
    model->memory = NULL;
}

weight_groups *qwen_dit_weight_groups(const qwen_dit_model *model) { return &model->memory->set; }

canvas_status qwen_dit_place(qwen_dit_model *model, mem_device *device, int resident_blocks)
{
    const int layers = model->config.num_layers;
    if (!device) device = mem_device_cpu();
    if (resident_blocks == QWEN_DIT_ALL_BLOCKS) resident_blocks = layers;
    if (resident_blocks < 0 || resident_blocks > layers)
        return status_fail(CANVAS_ERR_USAGE, "transformer: %d resident blocks asked, the model has %d blocks",
                           resident_blocks, layers);
    canvas_status st = weight_groups_place(&model->memory->set, device, resident_blocks);
    if (st != CANVAS_OK)
        return status_wrap(st, "placing the transformer on %s (%d of %d blocks resident): ", mem_device_name(device),
                           resident_blocks, layers);
    return CANVAS_OK;
}

mem_device *qwen_dit_device(const qwen_dit_model *model) { return model->memory ? model->memory->set.device : NULL; }

int qwen_dit_resident_blocks(const qwen_dit_model *model) { return model->memory ? model->memory->set.resident : 0; }

size_t qwen_dit_weight_device_bytes(const qwen_dit_model *model, int resident_blocks)
{
    const int layers = model->config.num_layers;
    if (resident_blocks < 0 || resident_blocks > layers) resident_blocks = layers;
    return weight_groups_device_bytes(&model->memory->set, resident_blocks);
}

canvas_status qwen_dit_top_acquire(qwen_dit_model *model, const qwen_dit_weights **out)
{
    *out = NULL;
    qwen_dit_memory *m = model->memory;
    TRY(weight_groups_acquire(&m->set, 0, &model->weights, &m->top, sizeof m->top));
    *out = &m->top;
    return CANVAS_OK;
}

void qwen_dit_top_release(qwen_dit_model *model) { weight_groups_release(&model->memory->set, 0); }

canvas_status qwen_dit_block_acquire(qwen_dit_model *model, int block, const qwen_dit_block_weights **out)
{
    *out = NULL;
    if (block < 0 || block >= model->config.num_layers)
        return status_fail(CANVAS_ERR_INTERNAL, "transformer block %d out of range [0, %d)", block,
                           model->config.num_layers);
    qwen_dit_memory *m = model->memory;
    TRY(weight_groups_acquire(&m->set, 1 + block, &model->weights.blocks[block], &m->blocks[block],
                              sizeof m->blocks[block]));
    *out = &m->blocks[block];
    return CANVAS_OK;
}

void qwen_dit_block_release(qwen_dit_model *model, int block)
{
    if (block < 0 || block >= model->config.num_layers) return;
    weight_groups_release(&model->memory->set, 1 + block);
}

/* ---- sizes -------------------------------------------------------------------------- */

size_t qwen_dit_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only)
{
    /* the kernel sizes its own workspace: nothing here mirrors its tiling */
    return op_attention_workspace_bytes(seq, heads, head_dim, threads, tiles_only);
}

size_t qwen_dit_linear_workspace_bytes(const qwen_dit_config *c, int64_t n_img, int64_t n_txt, int threads)
{
    /* every op_linear of the forward with more than 2 rows (the timestep and modulation
     * GEMVs take none); they run one at a time, so the largest one counts */
    const int64_t d = qwen_dit_inner_dim(c), wide = QWEN_DIT_MLP_MULT * d, j = c->joint_attention_dim;
    const int64_t out = qwen_dit_output_channels(c);
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

size_t qwen_dit_forward_arena_bytes(const qwen_dit_model *model, const op_backend *be, int64_t n_img, int64_t n_txt)
{
    const qwen_dit_config *c = &model->config;
    size_t bytes = qwen_dit_activation_bytes(c, n_img, n_txt);
    mem_device *device = qwen_dit_device(model);
    if (device && !mem_device_is_host(device)) {
        size_t reserve = qwen_dit_attention_workspace_bytes(n_img + n_txt, c->num_attention_heads, c->attention_head_dim,
                                                       op_backend_workers(be), 0);
        bytes += (reserve + 63) & ~(size_t)63;
    }
    return bytes;
}

/* ---- the planner's choice ------------------------------------------------------------ */

/* One prefix of the planner's search: the forward dry-run on a measure device of `cap`
 * bytes with k blocks resident. It fits when the device turned nothing down; a failure
 * elsewhere (host memory, an injected fault) ends the search as is. */
typedef struct prefix_search {
    qwen_dit_model *model;
    op_backend *be;
    const qwen_dit_inputs *inputs;
    size_t cap;
    int resident_blocks;
} prefix_search;

static canvas_status dry_forward(void *ctx, mem_device *measure)
{
    prefix_search *s = ctx;
    canvas_status st = qwen_dit_place(s->model, measure, s->resident_blocks);
    if (st == CANVAS_OK) st = qwen_dit_forward(s->model, s->be, s->inputs, NULL, NULL);
    weight_groups_unplace(&s->model->memory->set);
    return st;
}

static canvas_status prefix_fits(void *ctx, int k, int *fits)
{
    prefix_search *s = ctx;
    s->resident_blocks = k;
    return weight_groups_dry_run(s->cap, dry_forward, s, fits, NULL);
}

canvas_status qwen_dit_plan_resident_blocks(qwen_dit_model *model, op_backend *be, const qwen_dit_inputs *inputs, size_t cap,
                                       int *out_resident_blocks)
{
    *out_resident_blocks = -1;
    prefix_search s = {model, be, inputs, cap, 0};
    int k;
    TRY(weight_groups_largest_prefix(model->config.num_layers, prefix_fits, &s, &k)); /* left unplaced */
    if (k < 0) {
        const qwen_dit_config *c = &model->config;
        size_t weights = qwen_dit_weight_device_bytes(model, 0);
        size_t arena = qwen_dit_activation_bytes(c, inputs->n_img, inputs->n_txt) +
                       qwen_dit_attention_workspace_bytes(inputs->n_img + inputs->n_txt, c->num_attention_heads,
                                                     c->attention_head_dim, op_backend_workers(be), 0);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory: the transformer does not fit in %zu bytes of device memory even with every "
                           "block streamed; that needs about %zu bytes (weights: top level + 2 streaming buffers %zu, "
                           "activations %zu)",
                           cap, weights + arena, weights, arena);
    }
    *out_resident_blocks = k;
    return qwen_dit_place(model, mem_device_cpu(), QWEN_DIT_ALL_BLOCKS);
}
