/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae_place.c — vae_place_on_device: every weight of a loaded VAE (the packed
 * kernels and vectors of its MEM_WEIGHTS blocks, the 1x1 kernels still in the mapped files)
 * copied into one MEM_WEIGHTS block of a device, and the model's pointers moved there;
 * vae_leave_device: the same walk back into one host block.
 *
 * One walk over the model's tensors runs three times: counting the bytes (every piece
 * 64-byte aligned), copying each piece to its offset with mem_copy, then rewriting the
 * pointers. The rewrite only happens once every copy has succeeded, so a failure leaves the
 * model on the host, whole; after a success the host blocks are freed (the 1x1 kernels stay
 * mapped with the files, unread). */
#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_vae.h"

typedef enum place_mode { PLACE_COUNT, PLACE_COPY, PLACE_REBASE } place_mode;

typedef struct placer {
    place_mode mode;
    mem_device *to, *from; /* COPY: where the block is, where the pieces are now */
    unsigned char *base;   /* the new block (COPY, REBASE) */
    size_t used;
    canvas_status st;
} placer;

/* One piece of `bytes` at *ptr (NULL: absent, nothing placed). */
static void place(placer *pl, const void **ptr, size_t bytes)
{
    if (!*ptr || pl->st != CANVAS_OK) return;
    const size_t at = pl->used;
    pl->used += (bytes + 63u) & ~(size_t)63u;
    if (pl->mode == PLACE_COPY) pl->st = mem_copy(pl->to, pl->base + at, pl->from, *ptr, bytes);
    else if (pl->mode == PLACE_REBASE) *ptr = pl->base + at;
}

static void place_vector(placer *pl, const float **v, int length)
{
    place(pl, (const void **)v, (size_t)length * sizeof(float));
}

/* The VAE's weights are plain F32/F16/BF16 [out, in] matrices (vae_load refuses others). */
static void place_view(placer *pl, weight_view *w)
{
    place(pl, &w->data, (size_t)w->out_features * (size_t)w->in_features * dtype_size(w->type));
}

static void place_conv(placer *pl, vae_conv *c)
{
    if (!c->kernel) return; /* an absent shortcut or upsample */
    place_view(pl, &c->weight);
    place_vector(pl, &c->bias, c->out_channels);
}

static void place_residual(placer *pl, vae_residual *r)
{
    place_vector(pl, &r->norm1, r->conv1.in_channels);
    place_conv(pl, &r->conv1);
    place_vector(pl, &r->norm2, r->conv2.in_channels);
    place_conv(pl, &r->conv2);
    place_conv(pl, &r->shortcut);
}

static void place_mid(placer *pl, vae_mid *m)
{
    vae_attention *a = &m->attn;
    place_residual(pl, &m->res0);
    place_vector(pl, &a->norm, a->channels);
    place_view(pl, &a->to_q);
    place_view(pl, &a->to_k);
    place_view(pl, &a->to_v);
    place_vector(pl, &a->q_bias, a->channels);
    place_vector(pl, &a->k_bias, a->channels);
    place_vector(pl, &a->v_bias, a->channels);
    place_view(pl, &a->proj);
    place_vector(pl, &a->proj_bias, a->channels);
    place_residual(pl, &m->res1);
}

static void place_model(placer *pl, vae_model *model)
{
    vae_encoder *e = &model->encoder;
    place_conv(pl, &e->conv_in);
    for (int i = 0; i < e->n_down; i++) {
        if (e->down[i].is_downsample) place_conv(pl, &e->down[i].downsample);
        else place_residual(pl, &e->down[i].res);
    }
    place_mid(pl, &e->mid);
    place_vector(pl, &e->norm_out, e->conv_out.in_channels);
    place_conv(pl, &e->conv_out);
    place_conv(pl, &e->quant_conv);

    vae_decoder *d = &model->decoder;
    place_conv(pl, &d->post_quant_conv);
    place_conv(pl, &d->conv_in);
    place_mid(pl, &d->mid);
    for (int i = 0; i < d->n_up; i++) {
        for (int j = 0; j < d->up[i].n_res; j++) place_residual(pl, &d->up[i].res[j]);
        place_conv(pl, &d->up[i].upsample);
    }
    place_vector(pl, &d->norm_out, d->conv_out.in_channels);
    place_conv(pl, &d->conv_out);
}

size_t vae_device_weight_bytes(const vae_model *model)
{
    placer pl = {.mode = PLACE_COUNT, .st = CANVAS_OK};
    place_model(&pl, (vae_model *)model); /* counting reads the pointers, writes nothing */
    return pl.used;
}

/* Every piece copied from `from` into `block` of `to`, then the pointers moved there. */
static canvas_status move_weights(vae_model *model, mem_device *to, mem_device *from, void *block)
{
    placer pl = {.mode = PLACE_COPY, .to = to, .from = from, .base = block, .st = CANVAS_OK};
    place_model(&pl, model);
    TRY(pl.st);
    pl.mode = PLACE_REBASE;
    pl.used = 0;
    place_model(&pl, model);
    return CANVAS_OK;
}

canvas_status vae_place_on_device(vae_model *model, mem_device *device)
{
    if (model->device)
        return status_fail(CANVAS_ERR_USAGE, "vae: the weights are already on device '%s'",
                           mem_device_name(model->device));
    const size_t bytes = vae_device_weight_bytes(model);
    void *block = NULL;
    TRY(mem_device_alloc(device, MEM_WEIGHTS, bytes ? bytes : 1, 64, &block));
    canvas_status st = move_weights(model, device, mem_device_cpu(), block);
    if (st != CANVAS_OK) {
        mem_device_free(device, block);
        return status_wrap(st, "vae: placing the weights on device '%s': ", mem_device_name(device));
    }
    model->device = device;
    model->device_block = block;
    model->device_bytes = bytes;
    /* nothing points into the host blocks any more */
    mem_free(model->encoder.block);
    mem_free(model->decoder.block);
    model->encoder.block = model->decoder.block = NULL;
    model->weight_bytes = 0;
    return CANVAS_OK;
}

canvas_status vae_leave_device(vae_model *model)
{
    if (!model->device) return CANVAS_OK;
    const size_t bytes = model->device_bytes;
    void *block = NULL;
    TRY(mem_alloc(&block, bytes ? bytes : 1, MEM_WEIGHTS));
    canvas_status st = move_weights(model, mem_device_cpu(), model->device, block);
    if (st != CANVAS_OK) {
        mem_free(block);
        return status_wrap(st, "vae: taking the weights back from device '%s': ", mem_device_name(model->device));
    }
    mem_device_free(model->device, model->device_block);
    model->device = NULL;
    model->device_block = NULL;
    model->device_bytes = 0;
    model->encoder.block = block; /* the one host block now (the decoder's is part of it) */
    model->weight_bytes = bytes;
    return CANVAS_OK;
}
