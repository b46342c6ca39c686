/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae_weights.c — loading an AutoencoderKLQwenImage folder: the config, the
 * safetensors, the architecture check (arch_vae), and the packing of the weights into
 * the vae_encoder / vae_decoder structs (spec/qwen-image-vae-textenc.md A.3).
 *
 * Each part (encoder + quant_conv, post_quant_conv + decoder) gets one MEM_WEIGHTS block,
 * sized by a counting pass over the same wiring code that then fills it:
 *   3x3 kernels  the last temporal tap, repacked to [out, ky, kx, in], stored type kept
 *   vectors      biases and norm gammas, converted to f32
 * 1x1 kernels ([out, in, 1, 1(, 1)] is already [out, in]) stay in the mapped file. */
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "models/qwen_image_vae.h"
#include "ops/ops_conv.h"

enum { NAME_SIZE = 192 };

typedef struct wiring {
    const vae_model *model;
    unsigned char *base;   /* NULL while counting */
    size_t used;           /* bytes, every piece 64-byte aligned */
} wiring;

static void *carve(wiring *w, size_t bytes)
{
    void *at = w->base ? w->base + w->used : NULL;
    w->used += (bytes + 63u) & ~(size_t)63u;
    return at;
}

static const st_tensor *find(wiring *w, const char *name)
{
    return weights_find(w->model->files, name);
}

/* load() has run arch_check before any wiring: every tensor named here is in the files
 * with the shape arch_vae gives it and a float type. */
static canvas_status missing(const char *name)
{
    return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in arch_vae", name);
}

/* A bias or gamma of `length` values (any shape with that many elements) as f32. */
static canvas_status wire_vector(wiring *w, const char *name, int64_t length, const float **out)
{
    const st_tensor *t = find(w, name);
    if (!t) return missing(name);
    float *dst = carve(w, (size_t)length * sizeof(float));
    if (dst) dtype_to_f32(t->type, t->data, dst, (size_t)length);
    *out = dst;
    return CANVAS_OK;
}

/* PREFIX.weight and PREFIX.bias of a Conv2d or Conv3d with a square kernel. */
static canvas_status wire_conv(wiring *w, const char *prefix, int in, int out, int kernel, vae_conv *conv)
{
    char name[NAME_SIZE];
    TRY(arch_name(name, sizeof name, "%s.weight", prefix));
    const st_tensor *t = find(w, name);
    if (!t) return missing(name);
    int kt = t->ndim == 5 ? (int)t->shape[2] : 1;
    if (t->type != DTYPE_F32 && t->type != DTYPE_F16 && t->type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s' is stored as %s; the VAE takes F32, F16 or BF16",
                           w->model->component_dir, name, dtype_name(t->type));
    conv->kernel = kernel;
    conv->in_channels = in;
    conv->out_channels = out;
    conv->weight = (weight_view){t->type, t->data, out, (int64_t)kernel * kernel * in, NULL};
    if (kernel > 1 || kt > 1) {
        /* the causal padding leaves a single frame only the last temporal tap */
        size_t elements = (size_t)out * kernel * kernel * in, size = dtype_size(t->type);
        void *packed = carve(w, elements * size);
        if (packed) conv_pack_taps(t->data, size, out, in, kt, kernel, kernel, kt - 1, packed);
        conv->weight.data = packed;
    }
    TRY(arch_name(name, sizeof name, "%s.bias", prefix));
    return wire_vector(w, name, out, &conv->bias);
}

static canvas_status wire_residual(wiring *w, const char *prefix, int in, int out, vae_residual *r)
{
    char name[NAME_SIZE];
    TRY(arch_name(name, sizeof name, "%s.norm1.gamma", prefix));
    TRY(wire_vector(w, name, in, &r->norm1));
    TRY(arch_name(name, sizeof name, "%s.conv1", prefix));
    TRY(wire_conv(w, name, in, out, 3, &r->conv1));
    TRY(arch_name(name, sizeof name, "%s.norm2.gamma", prefix));
    TRY(wire_vector(w, name, out, &r->norm2));
    TRY(arch_name(name, sizeof name, "%s.conv2", prefix));
    TRY(wire_conv(w, name, out, out, 3, &r->conv2));
    memset(&r->shortcut, 0, sizeof r->shortcut);
    if (in == out) return CANVAS_OK;
    TRY(arch_name(name, sizeof name, "%s.conv_shortcut", prefix));
    return wire_conv(w, name, in, out, 1, &r->shortcut);
}

/* to_qkv is one [3C, C] 1x1 conv; q, k and v are consecutive row ranges of it. */
static canvas_status wire_attention(wiring *w, const char *prefix, int dim, vae_attention *a)
{
    char name[NAME_SIZE];
    a->channels = dim;
    TRY(arch_name(name, sizeof name, "%s.norm.gamma", prefix));
    TRY(wire_vector(w, name, dim, &a->norm));
    vae_conv qkv;
    TRY(arch_name(name, sizeof name, "%s.to_qkv", prefix));
    TRY(wire_conv(w, name, dim, 3 * dim, 1, &qkv));
    size_t rows_bytes = (size_t)dim * dim * dtype_size(qkv.weight.type);
    weight_view *views[3] = {&a->to_q, &a->to_k, &a->to_v};
    const float **biases[3] = {&a->q_bias, &a->k_bias, &a->v_bias};
    for (int i = 0; i < 3; i++) {
        *views[i] = (weight_view){qkv.weight.type, (const unsigned char *)qkv.weight.data + i * rows_bytes, dim, dim, NULL};
        *biases[i] = qkv.bias ? qkv.bias + (size_t)i * dim : NULL;
    }
    vae_conv proj;
    TRY(arch_name(name, sizeof name, "%s.proj", prefix));
    TRY(wire_conv(w, name, dim, dim, 1, &proj));
    a->proj = proj.weight;
    a->proj_bias = proj.bias;
    return CANVAS_OK;
}

static canvas_status wire_mid(wiring *w, const char *side, int dim, vae_mid *m)
{
    char name[NAME_SIZE];
    TRY(arch_name(name, sizeof name, "%s.mid_block.resnets.0", side));
    TRY(wire_residual(w, name, dim, dim, &m->res0));
    TRY(arch_name(name, sizeof name, "%s.mid_block.attentions.0", side));
    TRY(wire_attention(w, name, dim, &m->attn));
    TRY(arch_name(name, sizeof name, "%s.mid_block.resnets.1", side));
    return wire_residual(w, name, dim, dim, &m->res1);
}

/* Channel widths: encoder dims[0] = base, dims[i+1] = base * mult[i]. */
static canvas_status wire_encoder(wiring *w, vae_encoder *e)
{
    const vae_config *c = &w->model->config;
    const int levels = c->n_dim_mult;
    int dims[VAE_MAX_LEVELS + 1] = {c->base_dim};
    for (int i = 0; i < levels; i++) dims[i + 1] = c->base_dim * c->dim_mult[i];
    TRY(wire_conv(w, "encoder.conv_in", c->input_channels, dims[0], 3, &e->conv_in));
    char name[NAME_SIZE];
    int index = 0;
    for (int i = 0; i < levels; i++) {
        int in = dims[i];
        for (int r = 0; r < c->num_res_blocks; r++, in = dims[i + 1]) {
            TRY(arch_name(name, sizeof name, "encoder.down_blocks.%d", index));
            vae_down_block *b = &e->down[index++];
            b->is_downsample = 0;
            TRY(wire_residual(w, name, in, dims[i + 1], &b->res));
        }
        if (i == levels - 1) break;
        TRY(arch_name(name, sizeof name, "encoder.down_blocks.%d.resample.1", index));
        vae_down_block *b = &e->down[index++];
        b->is_downsample = 1;
        TRY(wire_conv(w, name, dims[i + 1], dims[i + 1], 3, &b->downsample));
    }
    TRY(wire_mid(w, "encoder", dims[levels], &e->mid));
    TRY(wire_vector(w, "encoder.norm_out.gamma", dims[levels], &e->norm_out));
    TRY(wire_conv(w, "encoder.conv_out", dims[levels], 2 * c->z_dim, 3, &e->conv_out));
    TRY(wire_conv(w, "quant_conv", 2 * c->z_dim, 2 * c->z_dim, 1, &e->quant_conv));
    /* only the mean is wanted: the first z_dim output rows */
    e->quant_conv.out_channels = c->z_dim;
    e->quant_conv.weight.out_features = c->z_dim;
    return CANVAS_OK;
}

/* Decoder widths: dims[0] = base * mult[last], dims[i+1] = base * mult[last - i]; up block
 * i > 0 starts from dims[i] / 2 (the previous upsampler halved it). */
static canvas_status wire_decoder(wiring *w, vae_decoder *d)
{
    const vae_config *c = &w->model->config;
    const int levels = c->n_dim_mult;
    int dims[VAE_MAX_LEVELS + 1] = {c->base_dim * c->dim_mult[levels - 1]};
    for (int i = 0; i < levels; i++) dims[i + 1] = c->base_dim * c->dim_mult[levels - 1 - i];
    TRY(wire_conv(w, "post_quant_conv", c->z_dim, c->z_dim, 1, &d->post_quant_conv));
    TRY(wire_conv(w, "decoder.conv_in", c->z_dim, dims[0], 3, &d->conv_in));
    TRY(wire_mid(w, "decoder", dims[0], &d->mid));
    char name[NAME_SIZE];
    for (int i = 0; i < levels; i++) {
        vae_up_block *b = &d->up[i];
        int in = i > 0 ? dims[i] / 2 : dims[i];
        for (int r = 0; r < b->n_res; r++, in = dims[i + 1]) {
            TRY(arch_name(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, r));
            TRY(wire_residual(w, name, in, dims[i + 1], &b->res[r]));
        }
        memset(&b->upsample, 0, sizeof b->upsample);
        if (i == levels - 1) continue;
        TRY(arch_name(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.resample.1", i));
        TRY(wire_conv(w, name, dims[i + 1], dims[i + 1] / 2, 3, &b->upsample));
    }
    TRY(wire_vector(w, "decoder.norm_out.gamma", dims[levels], &d->norm_out));
    return wire_conv(w, "decoder.conv_out", dims[levels], c->input_channels, 3, &d->conv_out);
}

/* Count, allocate, fill: the same wiring twice. */
static canvas_status wire_part(vae_model *model, int encoder, void **block)
{
    wiring w = {.model = model};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            TRY(mem_alloc(block, w.used ? w.used : 1, MEM_WEIGHTS));
            model->weight_bytes += w.used;
            w.base = *block;
            w.used = 0;
        }
        TRY(encoder ? wire_encoder(&w, &model->encoder) : wire_decoder(&w, &model->decoder));
    }
    return CANVAS_OK;
}

static canvas_status allocate_lists(vae_model *model)
{
    const vae_config *c = &model->config;
    const int levels = c->n_dim_mult;
    vae_encoder *e = &model->encoder;
    e->n_down = levels * c->num_res_blocks + (levels - 1);
    TRY(mem_calloc((void **)&e->down, (size_t)e->n_down, sizeof *e->down, MEM_SCRATCH));
    vae_decoder *d = &model->decoder;
    d->n_up = levels;
    int per_block = c->num_res_blocks + 1;
    TRY(mem_calloc((void **)&d->up, (size_t)levels, sizeof *d->up, MEM_SCRATCH));
    TRY(mem_calloc((void **)&d->residuals, (size_t)levels * per_block, sizeof *d->residuals, MEM_SCRATCH));
    for (int i = 0; i < levels; i++) {
        d->up[i].n_res = per_block;
        d->up[i].res = d->residuals + (size_t)i * per_block;
    }
    return CANVAS_OK;
}

static canvas_status load(vae_model *model, const char *component_dir)
{
    TRY(mem_strdup(&model->component_dir, component_dir));
    if (weights_is_file(component_dir)) { /* one file: the config from its tensors */
        TRY(weights_open_file(component_dir, WEIGHTS_VAE, &model->files));
        TRY(vae_config_infer(model->files, &model->config));
    } else {
        char path[PATH_BUFFER_SIZE];
        TRY(path_join(path, sizeof path, component_dir, "config.json"));
        TRY(vae_config_load(path, &model->config));
        TRY(weights_open(component_dir, &model->files));
    }
    tensor_spec_list expected = {0};
    canvas_status st = arch_vae(&model->config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, model->files, component_dir);
    arch_free(&expected);
    TRY(st);
    TRY(allocate_lists(model));
    TRY(wire_part(model, 1, &model->encoder.block));
    return wire_part(model, 0, &model->decoder.block);
}

canvas_status vae_load(const char *component_dir, vae_model **out)
{
    *out = NULL;
    vae_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    canvas_status st = load(model, component_dir);
    if (st != CANVAS_OK) {
        vae_free(model);
        return status_wrap(st, "loading VAE: ");
    }
    *out = model;
    return CANVAS_OK;
}

void vae_free(vae_model *model)
{
    if (!model) return;
    if (model->device_block) mem_device_free(model->device, model->device_block);
    mem_free(model->encoder.block);
    mem_free(model->encoder.down);
    mem_free(model->decoder.block);
    mem_free(model->decoder.up);
    mem_free(model->decoder.residuals);
    weights_close(model->files);
    mem_free(model->component_dir);
    mem_free(model);
}
