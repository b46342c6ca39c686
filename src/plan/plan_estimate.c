/* SPDX-License-Identifier: Apache-2.0 */
/* plan_estimate.c — what a plan costs: the transformer's device peak by a dry run of
 * qwen_dit_forward on a measure device (the real code, the real allocator), host memory from
 * the formulas the code allocates by, and seconds per step from the time model. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "io/quant_loader.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "models/arch.h"
#include "models/weight_groups.h"
#include "ops/ops_cpu.h"
#include "ops/ops_cuda.h"
#include "plan/plan_internal.h"
#include "tensor/dtype.h"

/* A shape model for `weights`: the loaded model's own group sizes when it holds that
 * format (exact whatever its files store), else sizes from the config, with each matrix as
 * the header's weight set stores it when there is one. */
canvas_status plan_shape_for(const plan_work *work, quant_choice weights, qwen_dit_model **out)
{
    const plan_component *t = &work->components[PLAN_TRANSFORMER];
    const qwen_dit_model *loaded = t->qwen_dit_model;
    if (loaded && loaded->weights_format.format == weights.format &&
        loaded->weights_format.per_channel == weights.per_channel) {
        TRY(plan_dit_shape_model(&loaded->config, weights, 2, out));
        /* copy the loaded groups' tensor sizes (their homes stay the shape model's) and its
         * matrices' formats (a backend's GEMM scratch depends on them) */
        weight_groups_copy_sizes(qwen_dit_weight_groups(*out), qwen_dit_weight_groups(loaded));
        plan_dit_shape_views(*out, loaded, weights, 2, NULL);
        return CANVAS_OK;
    }
    int stored = t->stored_bytes_per_element;
    if (loaded && loaded->weights_format.format == QUANT_NONE) stored = (int)dtype_size(loaded->weights.img_in.type);
    return plan_dit_shape_model_files(&t->config.dit, weights, stored, loaded ? NULL : t->dit_files, out);
}

/* The transformer's forward on a measure device with `resident_blocks` placed: its device
 * peak, whether it fits `cap` (0: unbounded) and, when out_host is not NULL, the host bytes
 * the placement itself holds (the copy thread's queue, the slots' tables: the real code's). */
static canvas_status dry_run_model(qwen_dit_model *model, const plan_work *work, int resident_blocks, uint64_t cap,
                                   thread_pool *pool, uint64_t *out_peak, int *fits, uint64_t *out_host)
{
    static const float unread[1];
    const qwen_dit_config *dit = &work->components[PLAN_TRANSFORMER].config.dit;
    qwen_dit_image_shape shape = {1, 1, (int)work->n_img};
    qwen_dit_inputs in = {.hidden_states = unread, .n_img = work->n_img, .hidden_channels = dit->in_channels,
                     .encoder_hidden_states = unread, .n_txt = work->n_txt, .text_dim = dit->joint_attention_dim,
                     .timestep = 1.0f, .img_shapes = &shape, .n_images = 1};
    mem_device *measure;
    TRY(mem_device_create_measure("gpu (dry run)", (size_t)cap, &measure));
    const size_t host_before = mem_thread_current();
    canvas_status st = qwen_dit_place(model, measure, resident_blocks);
    const size_t host_placed = mem_thread_current();
    if (out_host) *out_host = host_placed > host_before ? host_placed - host_before : 0;
    /* the run's backend as the dry run's: no kernel runs, but its workers size the arena's
     * attention reservation and its GEMM scratch is taken from the device */
    op_backend be = work->backend ? *work->backend : op_backend_cpu(pool);
    if (st == CANVAS_OK) st = qwen_dit_forward(model, &be, &in, NULL, NULL);
    mem_device_stats stats;
    mem_device_get_stats(measure, &stats);
    canvas_status back = qwen_dit_place(model, mem_device_cpu(), QWEN_DIT_ALL_BLOCKS);
    mem_device_destroy(measure);
    *out_peak = stats.peak_bytes;
    *fits = stats.refused == 0 && st == CANVAS_OK;
    if (st == CANVAS_ERR_OUT_OF_MEMORY && stats.refused) {
        status_clear();
        st = CANVAS_OK;
    }
    return st != CANVAS_OK ? st : back;
}

canvas_status plan_dit_dry_run(const plan_work *work, quant_choice weights, int resident_blocks, uint64_t cap,
                               thread_pool *pool, uint64_t *out_device_peak, int *fits)
{
    qwen_dit_model *model;
    TRY(plan_shape_for(work, weights, &model));
    canvas_status st = dry_run_model(model, work, resident_blocks, cap, pool, out_device_peak, fits, NULL);
    qwen_dit_free(model);
    return st;
}

canvas_status plan_largest_prefix(int n, plan_prefix_fits fits, void *ctx, int *out)
{
    return weight_groups_largest_prefix(n, fits, ctx, out); /* the one search, every model's */
}

typedef struct dit_prefix {
    qwen_dit_model *model;
    const plan_work *work;
    uint64_t cap;
    thread_pool *pool;
} dit_prefix;

static canvas_status dit_prefix_fits(void *ctx, int k, int *fits)
{
    const dit_prefix *d = ctx;
    uint64_t peak;
    return dry_run_model(d->model, d->work, k, d->cap, d->pool, &peak, fits, NULL);
}

static canvas_status largest_prefix(qwen_dit_model *model, const plan_work *work, uint64_t cap, thread_pool *pool,
                                    int *out)
{
    dit_prefix d = {model, work, cap, pool};
    return plan_largest_prefix(model->config.num_layers, dit_prefix_fits, &d, out);
}

canvas_status plan_dit_largest_prefix(const plan_work *work, quant_choice weights, uint64_t cap, thread_pool *pool,
                                      int *out_resident_blocks)
{
    qwen_dit_model *model;
    TRY(plan_shape_for(work, weights, &model));
    canvas_status st = largest_prefix(model, work, cap, pool, out_resident_blocks);
    qwen_dit_free(model);
    return st;
}

/* ---- host memory and the VAE -------------------------------------------------------- */

/* The transformer's host memory: every group's f32 vectors, plus the quantised blocks'
 * blobs (quantised on load into host RAM; the stored matrices are the mapping) and, when
 * the plan quantises to another format than the loaded model's, the new store's tables
 * (the loaded model's own are among the bytes the run holds already). */
static uint64_t dit_host_weights(const qwen_dit_model *shape, const qwen_dit_model *loaded)
{
    const quant_choice to = shape->weights_format;
    uint64_t bytes = 0;
    int quantised = 0;
    for (int g = 0; g <= shape->config.num_layers; g++) {
        const residency_group *group = &qwen_dit_weight_groups(shape)->table[g];
        bytes += group->tensors[group->n_tensors - 1].bytes;
        if (g > 0 && to.format != QUANT_NONE)
            for (int t = 0; t < group->n_tensors - 1; t++, quantised++) bytes += group->tensors[t].bytes;
    }
    const int reloaded = !loaded || loaded->weights_format.format != to.format ||
                         loaded->weights_format.per_channel != to.per_channel;
    return bytes + (reloaded ? quant_store_table_bytes(quantised) : 0);
}

/* The transformer's matrices a step reads in place from the mapping: every stored one
 * when computing in host memory (quantised blocks are host blobs); on a device the
 * streamed blocks' when their home is the mapping (as stored and not pinned): resident
 * blocks and the top level are copied to the device once, at placement. */
static uint64_t dit_mapped_bytes(const qwen_dit_model *shape, int on_device, int resident, int pinned)
{
    const int quantised = shape->weights_format.format != QUANT_NONE;
    uint64_t bytes = 0;
    for (int g = 0; g <= shape->config.num_layers; g++) {
        if ((g > 0 && quantised) || (on_device && (g <= resident || pinned))) continue;
        const residency_group *group = &qwen_dit_weight_groups(shape)->table[g];
        for (int t = 0; t < group->n_tensors - 1; t++) bytes += group->tensors[t].bytes;
    }
    return bytes;
}

static uint64_t group_bytes(const qwen_dit_model *shape, int g)
{
    const residency_group *group = &qwen_dit_weight_groups(shape)->table[g];
    uint64_t bytes = 0;
    for (int t = 0; t < group->n_tensors; t++)
        bytes += (group->tensors[t].bytes + RESIDENCY_TENSOR_ALIGNMENT - 1) / RESIDENCY_TENSOR_ALIGNMENT *
                 RESIDENCY_TENSOR_ALIGNMENT;
    return bytes;
}

/* Peak bytes of one VAE pass (pixel sizes), whole or, when `tiled` and the image needs more
 * than one tile, tiled as the pipeline runs it: the exact count when the VAE is loaded
 * (vae_activation_bytes, vae_tiled_bytes); from the config alone, three activations of the
 * widest full-resolution stage plus a convolution band (docs/vae.md's account of the peak)
 * of the whole image or of one tile plus two rows of tile outputs, an approximation. */
static uint64_t vae_pass_bytes(const plan_work *work, int encode, int tiled, int pixel_height, int pixel_width)
{
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    tiled = tiled && vae_tiling_needed(&tiling, pixel_height, pixel_width);
    const plan_component *vae = &work->components[PLAN_VAE];
    const int scale = vae_scale_factor(&vae->config.vae);
    if (vae->vae_model) {
        int h = encode ? pixel_height : pixel_height / scale, w = encode ? pixel_width : pixel_width / scale;
        return tiled ? vae_tiled_bytes(vae->vae_model, &tiling, work->threads, encode, h, w)
                     : vae_activation_bytes(vae->vae_model, work->threads, encode, h, w);
    }
    uint64_t rows = 0;
    if (tiled) {
        const uint64_t cols = ((uint64_t)pixel_width + (uint64_t)tiling.stride_width - 1) / (uint64_t)tiling.stride_width;
        const uint64_t out_channels = encode ? (uint64_t)vae->config.vae.z_dim : 3;
        const uint64_t tile_out = (uint64_t)tiling.tile_height * (uint64_t)tiling.tile_width / (encode ? (uint64_t)scale * (uint64_t)scale : 1u);
        rows = 2 * cols * tile_out * out_channels * sizeof(float);
        pixel_height = pixel_height < tiling.tile_height ? pixel_height : tiling.tile_height;
        pixel_width = pixel_width < tiling.tile_width ? pixel_width : tiling.tile_width;
    }
    const uint64_t widest = (uint64_t)vae->config.vae.base_dim * (uint64_t)vae->config.vae.dim_mult[0];
    const uint64_t plane = (uint64_t)pixel_height * (uint64_t)pixel_width * sizeof(float);
    return 2 * widest * plane + widest * plane / 8 + rows;
}

/* The device peak of one VAE pass (pixel sizes) with the VAE on the device, weights apart:
 * with the VAE loaded, exact (vae_device_bytes, vae_tiled_device_bytes) for the run's backend,
 * whose scratch for the convolutions and GEMMs counts there (no backend given: the CUDA
 * backend's sizes, the only one that puts the VAE on a device); from the config alone,
 * vae_pass_bytes' approximation. */
static uint64_t vae_pass_device_bytes(const plan_work *work, int encode, int tiled, int pixel_height, int pixel_width)
{
    const plan_component *vae = &work->components[PLAN_VAE];
    if (!vae->vae_model) return vae_pass_bytes(work, encode, tiled, pixel_height, pixel_width);
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    tiled = tiled && vae_tiling_needed(&tiling, pixel_height, pixel_width);
    const int scale = vae_scale_factor(&vae->config.vae);
    const int h = encode ? pixel_height : pixel_height / scale, w = encode ? pixel_width : pixel_width / scale;
    const op_backend cuda = op_backend_cuda_sizes(), *be = work->backend ? work->backend : &cuda;
    return tiled ? vae_tiled_device_bytes(vae->vae_model, be, &tiling, encode, h, w)
                 : vae_device_bytes(vae->vae_model, be, encode, h, w);
}

/* VAE weights: the loaded model's packed f32 blocks, or its arch size in f32. */
static uint64_t vae_weight_bytes(const plan_work *work, int part)
{
    const plan_component *vae = &work->components[PLAN_VAE];
    if (vae->vae_model) return part < 0 ? vae->vae_model->weight_bytes : vae->vae_model->weight_bytes / 2;
    tensor_spec_list specs = {0};
    uint64_t bytes = 0;
    if (arch_vae(&vae->config.vae, &specs) == CANVAS_OK)
        bytes = arch_count_group(&specs, part < 0 ? ARCH_ANY_GROUP : part, 0).params * sizeof(float);
    else status_clear();
    arch_free(&specs);
    return bytes;
}

/* ---- one candidate ------------------------------------------------------------------ */

int plan_pages_from_disk(const plan_memory *phase, const plan_limits *limits)
{
    return limits->host_bytes && phase->mapped && phase->host + phase->pinned + phase->mapped > limits->host_bytes;
}

double plan_disk_bytes_per_second(const plan_hardware *hw)
{
    return hw->disk_bytes_per_second > 0 ? hw->disk_bytes_per_second : 2e9;
}

static double dit_forward_flops_per_block(const plan_work *work)
{
    const double d = qwen_dit_inner_dim(&work->components[PLAN_TRANSFORMER].config.dit), n = (double)(work->n_img + work->n_txt);
    /* q, k, v, out (4 D^2) and the MLP (8 D^2) on every token of both streams, attention
     * QK^T and PV over the joint sequence; the modulations are one or two rows */
    return 2.0 * 12.0 * d * d * n + 4.0 * n * n * d;
}

/* The bytes of components other than its own that a step keeps on the device: the text
 * encoder's weights as its phase placed them (plan_steps_check allows no other). */
static canvas_status held_bytes(const plan_work *work, const plan_point *p, const plan_step *step, uint64_t *out)
{
    const plan_component *text = &work->components[PLAN_TEXT_ENCODER];
    *out = 0;
    if (!(step->device & ~PLAN_BIT(step->runs) & PLAN_BIT(PLAN_TEXT_ENCODER)) || !text->present || p->text_on_host)
        return CANVAS_OK;
    return plan_textenc_weight_bytes(&text->config.text, p->text_weights,
                                     text->stored_bytes_per_element > 0 ? text->stored_bytes_per_element : 2,
                                     p->text_resident, out);
}

/* The VAE's phases: whole passes when the phases fit where the VAE runs (`room`, with what
 * the table holds there: `held`; everything they hold counted), else 256-pixel tiles when
 * the VAE may tile. host_weights, latents and placed_host: the transformer's share. */
static void vae_estimate(const plan_work *work, const plan_limits *limits, uint64_t room, const uint64_t *held,
                         uint64_t host_weights, uint64_t latents, uint64_t placed_host, plan_candidate *c)
{
    const plan_component *vae = &work->components[PLAN_VAE];
    plan_point *p = &c->point;
    const uint64_t channels = (uint64_t)work->components[PLAN_TRANSFORMER].config.dit.in_channels;
    /* around a pass the pipeline holds the image (3 f32 planes) and the latent (z f32
     * planes at the VAE scale factor's fraction of the side); after a decode, the image and its HWC copy */
    const uint64_t z = (uint64_t)vae->config.vae.z_dim * sizeof(float);
    const uint64_t per_latent = (uint64_t)vae_scale_factor(&vae->config.vae) * (uint64_t)vae_scale_factor(&vae->config.vae);
    const uint64_t held_e = held[PLAN_PHASE_VAE_ENCODE], held_d = held[PLAN_PHASE_VAE_DECODE];
    plan_memory *e = &c->phases[PLAN_PHASE_VAE_ENCODE], *d = &c->phases[PLAN_PHASE_VAE_DECODE];
    const int on_device = limits->vae_on_device;
    for (int tiled = 0; tiled < (vae->residency & PLAN_TILED ? 2 : 1); tiled++) {
        /* each pass's own peak (on the device or in host memory) and the buffers around it */
        uint64_t enc_pass = 0, enc_buffers = 0;
        for (int i = 0; i < work->n_refs; i++) {
            const uint64_t pixels = (uint64_t)work->ref_width[i] * (uint64_t)work->ref_height[i];
            const int h = work->ref_height[i], w = work->ref_width[i];
            const uint64_t pass = on_device ? vae_pass_device_bytes(work, 1, tiled, h, w)
                                            : vae_pass_bytes(work, 1, tiled, h, w);
            const uint64_t buffers = pixels * 3 * sizeof(float) + pixels / per_latent * z;
            if (on_device) { /* the device's and the host's peaks apart */
                if (pass > enc_pass) enc_pass = pass;
                if (buffers > enc_buffers) enc_buffers = buffers;
            } else if (pass + buffers > enc_pass) {
                enc_pass = pass + buffers;
            }
        }
        const uint64_t pixels = (uint64_t)work->width * (uint64_t)work->height;
        const uint64_t image = pixels * 3 * sizeof(float);
        const uint64_t dec_pass = on_device ? vae_pass_device_bytes(work, 0, tiled, work->height, work->width)
                                            : vae_pass_bytes(work, 0, tiled, work->height, work->width);
        const uint64_t dec_buffers = image + pixels / per_latent * z;
        p->vae_tiled = tiled;
        if (on_device) {
            /* every weight goes to the device for each pass (vae_place_on_device); the images
             * and latents around it stay host memory */
            const uint64_t weights = vae->vae_model ? vae_device_weight_bytes(vae->vae_model) : vae_weight_bytes(work, -1);
            e->device = work->n_refs ? weights + enc_pass : 0;
            d->device = weights + dec_pass;
            e->host = latents + enc_buffers;
            d->host = latents + (dec_buffers > 2 * image ? dec_buffers : 2 * image);
            if (!room || (e->device + held_e <= room && d->device + held_d <= room)) break;
        } else {
            const uint64_t dec = dec_pass + dec_buffers > 2 * image ? dec_pass + dec_buffers : 2 * image;
            e->host = work->n_refs ? host_weights + latents + enc_pass : 0;
            /* the transformer stays placed through the decode: its placement's host tables too */
            d->host = host_weights + placed_host + (uint64_t)work->n_img * channels * sizeof(float) + dec;
            const uint64_t kept = limits->host_held_bytes;
            if (!room || (e->host + kept <= room && d->host + kept <= room)) break;
        }
    }
}

canvas_status plan_estimate(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                            thread_pool *pool, plan_candidate *c)
{
    plan_point *p = &c->point;
    memset(c->phases, 0, sizeof c->phases);
    const plan_component *t = &work->components[PLAN_TRANSFORMER];
    const qwen_dit_config *dit = &t->config.dit;
    const int layers = dit->num_layers;
    const int on_device = limits->device_bytes > 0;
    const uint64_t cap = on_device ? limits->device_bytes : 0;
    const uint64_t device_room = cap > limits->headroom_bytes ? cap - limits->headroom_bytes : 0;
    const uint64_t free_room = limits->device_free_bytes && limits->device_free_bytes < device_room
                                   ? limits->device_free_bytes
                                   : device_room;
    /* the table's phases: the text encoder's first (it runs before the others are placed,
     * with the room its step leaves it), then what it keeps on the device through each
     * later step, taken from that step's room */
    unsigned rows = 0;
    for (int i = 0; i < work->n_order; i++)
        if (work->order[i].phase != PLAN_RELEASE) rows |= 1u << work->order[i].phase;
    uint64_t held[PLAN_PHASE_COUNT] = {0};
    c->text_seconds = 0;
    p->text_resident = p->text_on_host = 0;
    if (rows & 1u << PLAN_PHASE_TEXT) TRY(plan_textenc_estimate(work, hw, limits, on_device ? free_room : 0, c));
    for (int i = 0; i < work->n_order; i++)
        if (work->order[i].phase != PLAN_RELEASE) TRY(held_bytes(work, p, &work->order[i], &held[work->order[i].phase]));
    const uint64_t dit_room = free_room > held[PLAN_PHASE_DENOISE] ? free_room - held[PLAN_PHASE_DENOISE] : 0;

    qwen_dit_model *shape;
    TRY(plan_shape_for(work, p->weights, &shape));
    canvas_status st = CANVAS_OK;
    uint64_t qwen_dit_device = 0, placed_host = 0;
    int fits = 1;
    if (on_device) {
        if (p->resident_blocks < 0) st = dit_room ? largest_prefix(shape, work, dit_room, pool, &p->resident_blocks) : CANVAS_OK;
        if (st == CANVAS_OK && p->resident_blocks >= 0) {
            /* under the real room first (rounding and fragmentation refuse as the pool would),
             * then unbounded for the peak of a plan that does not fit */
            st = dry_run_model(shape, work, p->resident_blocks, dit_room ? dit_room : 1, pool, &qwen_dit_device, &fits,
                               &placed_host);
            if (st == CANVAS_OK && !fits) {
                int unbounded_fits;
                st = dry_run_model(shape, work, p->resident_blocks, 0, pool, &qwen_dit_device, &unbounded_fits, &placed_host);
            }
        }
        if (p->resident_blocks < 0) {
            /* nothing fits: report what streaming every block needs */
            if (st == CANVAS_OK) st = dry_run_model(shape, work, 0, 0, pool, &qwen_dit_device, &fits, &placed_host);
            fits = 0;
        }
    } else {
        p->resident_blocks = layers;
    }
    if (st != CANVAS_OK) {
        qwen_dit_free(shape);
        return st;
    }
    const int resident = p->resident_blocks < 0 ? 0 : p->resident_blocks;
    const int streamed = on_device ? layers - resident : 0;
    const uint64_t block = layers > 0 ? group_bytes(shape, 1) : 0;
    const uint64_t streamed_bytes = (uint64_t)streamed * block;

    /* host: the pipeline's latents buffers, the attention kernel's workspace (the CPU
     * kernels take it from the host pool), the GEMMs' packing scratch, the forward's
     * arena when there is no device; weights: transformer vectors (+ quantised blobs), VAE */
    const uint64_t channels = (uint64_t)dit->in_channels;
    const uint64_t latents = (uint64_t)work->n_img * channels * sizeof(float) * (work->cfg ? 3u : 2u);
    const uint64_t attention = qwen_dit_attention_workspace_bytes(work->n_img + work->n_txt, dit->num_attention_heads,
                                                             dit->attention_head_dim, work->threads, 0);
    const uint64_t packing = qwen_dit_linear_workspace_bytes(dit, work->n_img, work->n_txt, work->threads);
    const uint64_t dit_host = dit_host_weights(shape, t->qwen_dit_model);
    const int has_vae = work->components[PLAN_VAE].present;
    const uint64_t vae_host = has_vae && !limits->vae_on_device ? vae_weight_bytes(work, -1) : 0;
    uint64_t host_weights = limits->vae_on_device ? 0 : dit_host + vae_host;
    uint64_t pinned = 0;
    p->stream_from_file = 0;
    if (limits->pinned_streaming && streamed) {
        pinned = streamed_bytes;
        if (limits->host_bytes && pinned + latents + (uint64_t)(1 << 30) > limits->host_bytes) {
            p->stream_from_file = 1; /* host RAM cannot hold them: read from the mapping each step */
            pinned = 0;
        }
    }
    plan_memory *denoise = &c->phases[PLAN_PHASE_DENOISE];
    denoise->device = qwen_dit_device;
    denoise->pinned = pinned;
    denoise->host = host_weights + latents + placed_host + (limits->vae_on_device ? 0 : attention + packing) +
                    (on_device ? 0 : qwen_dit_activation_bytes(dit, work->n_img, work->n_txt));
    denoise->mapped = dit_mapped_bytes(shape, on_device, resident, pinned > 0);
    p->paged = plan_pages_from_disk(denoise, limits);
    if (has_vae)
        vae_estimate(work, limits, limits->vae_on_device ? device_room : limits->host_bytes, held, host_weights,
                     latents, placed_host, c);

    /* the phases the table does not run hold nothing; the others their held components too */
    memset(&c->peak, 0, sizeof c->peak);
    for (int ph = 0; ph < PLAN_PHASE_COUNT; ph++) {
        if (!(rows & 1u << ph)) c->phases[ph] = (plan_memory){0};
        c->phases[ph].device += held[ph];
        if (c->phases[ph].host) c->phases[ph].host += limits->host_held_bytes;
        if (c->phases[ph].mapped > c->peak.mapped) c->peak.mapped = c->phases[ph].mapped;
        if (c->phases[ph].device > c->peak.device) c->peak.device = c->phases[ph].device;
        if (c->phases[ph].pinned > c->peak.pinned) c->peak.pinned = c->phases[ph].pinned;
        if (c->phases[ph].host > c->peak.host) c->peak.host = c->phases[ph].host;
    }

    /* time: compute per block at the format's measured throughput; streamed blocks overlap
     * their copy with compute except the first; every transformer call streams again */
    double flops = hw->flops_per_second[p->weights.format];
    if (!(flops > 0)) flops = hw->flops_per_second[QUANT_NONE] > 0 ? hw->flops_per_second[QUANT_NONE] : 1e9;
    double link = hw->link_bytes_per_second > 0 ? hw->link_bytes_per_second : 1e9;
    const double disk = plan_disk_bytes_per_second(hw);
    if ((p->stream_from_file || p->paged) && disk < link) link = disk;
    const double per_block = dit_forward_flops_per_block(work) / flops;
    const double transfer = (double)streamed_bytes / link;
    double forward = resident * per_block + fmax(streamed * per_block, transfer) + (streamed ? (double)block / link : 0);
    /* paged in host memory: the page faults stall the compute that takes them */
    const uint64_t paged = p->paged && !streamed ? denoise->mapped : 0;
    forward += (double)paged / disk;
    const int calls = work->cfg ? 2 : 1;
    c->seconds_per_step = calls * forward;
    c->seconds_total = c->seconds_per_step * work->steps + c->text_seconds;
    c->transfer_bytes_per_step = (uint64_t)calls * (streamed_bytes + paged);

    c->fits = fits && (!on_device || c->peak.device <= free_room) &&
              (!limits->host_bytes || c->peak.host + c->peak.pinned <= limits->host_bytes);
    qwen_dit_free(shape);
    return CANVAS_OK;
}
