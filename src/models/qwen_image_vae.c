/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae.c — the encoder and decoder forwards of AutoencoderKLQwenImage for one
 * frame (spec/qwen-image-vae-textenc.md A.4, A.6), on channels-last activations.
 *
 * Memory: every activation is its own MEM_ACTIVATIONS block, freed as soon as the next
 * layer has consumed it. A residual block holds its input and conv1's output (plus the
 * shortcut's output when the width changes): conv2 adds its result band by band into the
 * block's input (or shortcut output), which becomes the block's output, and the norms,
 * SiLUs and the 2x upsample are applied inside the convolutions' input strips
 * (ops_conv.h), never as whole images.
 *
 * The same walk over the layers runs in a counting mode (data pointers NULL, nothing
 * computed) that adds up the blocks the real run allocates, op_conv2d's and op_attention's
 * working memory included: vae_activation_bytes. With a table backend (the CUDA one) the ops'
 * working memory is the backend's scratch on the device instead: the counting walk finds the
 * largest any op of the pass needs (op_backend_conv2d_scratch_bytes,
 * op_backend_linear_scratch_bytes), and the pass takes one block of it before its first
 * activation and lends it to the backend (op_backend_lend_scratch) until its end, so its
 * device peak is that block plus the activations' (vae_device_bytes). */
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_vae.h"
#include "ops/ops_conv.h"
#include "ops/ops_layout.h"

typedef struct vae_run {
    op_backend *be;
    mem_device *device;      /* the model's device (vae_place_on_device); NULL: host memory */
    int placed;              /* 1: on a device (the input and output cross in planar copies) */
    int counting;            /* 1: only add up the bytes */
    int threads;             /* counting mode: the worker count the count is for */
    int table;               /* counting mode: count be's scratch, not the CPU ops' working memory */
    size_t current, peak;    /* counting mode */
    size_t scratch;          /* counting mode with `table`: the largest scratch an op asks of be */
} vae_run;

/* An activation: [height, width, channels], channels-last. */
typedef struct act {
    float *data;
    int height, width, channels;
} act;

static size_t act_bytes(const act *a) { return (size_t)a->height * a->width * a->channels * sizeof(float); }

static void count_peak(vae_run *r, size_t extra)
{
    if (r->current + extra > r->peak) r->peak = r->current + extra;
}

static void count_scratch(vae_run *r, size_t bytes)
{
    if (bytes > r->scratch) r->scratch = bytes;
}

static canvas_status act_new(vae_run *r, act *a, int height, int width, int channels)
{
    *a = (act){NULL, height, width, channels};
    if (r->counting) {
        r->current += act_bytes(a);
        count_peak(r, 0);
        return CANVAS_OK;
    }
    if (r->device) return mem_device_alloc(r->device, MEM_ACTIVATIONS, act_bytes(a), 64, (void **)&a->data);
    return mem_alloc((void **)&a->data, act_bytes(a), MEM_ACTIVATIONS);
}

static void act_release(vae_run *r, act *a)
{
    if (r->counting) r->current -= act_bytes(a);
    else if (r->device) mem_device_free(r->device, a->data);
    else mem_free(a->data);
    a->data = NULL;
}

/* ---- convolutions -------------------------------------------------------------------- */

typedef enum conv_mode { CONV_SAME, CONV_DOWN, CONV_UP } conv_mode;

static conv2d_params conv_params(const vae_conv *conv, const act *x, conv_mode mode, const float *norm, int accumulate)
{
    conv2d_params p = {.height = x->height, .width = x->width, .in_channels = conv->in_channels,
                       .out_channels = conv->out_channels, .kernel = conv->kernel, .stride = 1,
                       .norm_gamma = norm, .accumulate = accumulate};
    int pad = conv->kernel / 2;
    if (mode == CONV_DOWN) {
        /* ZeroPad2d((0, 1, 0, 1)) then a 3x3 stride-2 conv without padding */
        p.stride = 2;
        p.pad_bottom = p.pad_right = 1;
    } else {
        p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = pad;
        p.upsample = mode == CONV_UP;
    }
    return p;
}

static canvas_status conv_run(vae_run *r, const conv2d_params *p, const vae_conv *conv, const act *x, act *y)
{
    if (r->counting) {
        if (r->table) count_scratch(r, op_backend_conv2d_scratch_bytes(r->be, p, &conv->weight));
        else count_peak(r, op_conv2d_work_bytes(p, r->threads));
        return CANVAS_OK;
    }
    return op_conv2d(r->be, p, x->data, &conv->weight, conv->bias, y->data);
}

/* y = conv(x) into a new activation; `norm` (or NULL) applies norm + SiLU to the input. */
static canvas_status conv_new(vae_run *r, const vae_conv *conv, const act *x, conv_mode mode, const float *norm, act *y)
{
    conv2d_params p = conv_params(conv, x, mode, norm, 0);
    TRY(act_new(r, y, conv2d_out_height(&p), conv2d_out_width(&p), conv->out_channels));
    canvas_status st = conv_run(r, &p, conv, x, y);
    if (st != CANVAS_OK) act_release(r, y);
    return st;
}

/* y += conv(norm+SiLU(x)), y already of the output's shape. */
static canvas_status conv_add(vae_run *r, const vae_conv *conv, const act *x, const float *norm, act *y)
{
    conv2d_params p = conv_params(conv, x, CONV_SAME, norm, 1);
    return conv_run(r, &p, conv, x, y);
}

/* ---- blocks ---------------------------------------------------------------------------- */

/* *x <- residual(*x); the input block is reused as (or replaced by) the output. */
static canvas_status residual_forward(vae_run *r, const vae_residual *b, act *x)
{
    act shortcut = {0}, hidden;
    if (b->shortcut.kernel) TRY(conv_new(r, &b->shortcut, x, CONV_SAME, NULL, &shortcut));
    canvas_status st = conv_new(r, &b->conv1, x, CONV_SAME, b->norm1, &hidden);
    if (st != CANVAS_OK) {
        if (b->shortcut.kernel) act_release(r, &shortcut);
        return st;
    }
    if (b->shortcut.kernel) {
        act_release(r, x);
        *x = shortcut;
    }
    st = conv_add(r, &b->conv2, &hidden, b->norm2, x);
    act_release(r, &hidden);
    return st;
}

/* x += proj(attention(q, k, v)) with q, k, v from to_qkv(norm(x)); one head of width C. */
static canvas_status attention_forward(vae_run *r, const vae_attention *a, act *x)
{
    const int64_t n = (int64_t)x->height * x->width;
    const int c = a->channels;
    act normed, q = {0}, k = {0}, v = {0};
    TRY(act_new(r, &normed, x->height, x->width, c));
    canvas_status st = act_new(r, &q, x->height, x->width, c);
    if (st == CANVAS_OK) st = act_new(r, &k, x->height, x->width, c);
    if (st == CANVAS_OK) st = act_new(r, &v, x->height, x->width, c);
    if (st == CANVAS_OK && r->counting && r->table) {
        /* the norm's per-pixel scratch comes out of this block too (it is far smaller) */
        const weight_view *views[4] = {&a->to_q, &a->to_k, &a->to_v, &a->proj};
        for (int i = 0; i < 4; i++) count_scratch(r, op_backend_linear_scratch_bytes(r->be, n, views[i]));
    } else if (st == CANVAS_OK && r->counting) {
        count_peak(r, op_attention_workspace_bytes(n, 1, c, r->threads, 1));
    }
    if (st == CANVAS_OK && !r->counting) {
        op_channel_rms_norm_rows(r->be, x->data, n, c, a->norm, normed.data);
        st = op_linear(r->be, normed.data, n, &a->to_q, a->q_bias, q.data);
        if (st == CANVAS_OK) st = op_linear(r->be, normed.data, n, &a->to_k, a->k_bias, k.data);
        if (st == CANVAS_OK) st = op_linear(r->be, normed.data, n, &a->to_v, a->v_bias, v.data);
        /* the attention output goes where the normed input was, the projection where q was */
        if (st == CANVAS_OK) st = op_attention(r->be, q.data, k.data, v.data, n, 1, c, NULL, normed.data);
        if (st == CANVAS_OK) st = op_linear(r->be, normed.data, n, &a->proj, a->proj_bias, q.data);
        if (st == CANVAS_OK) op_add_inplace(r->be, x->data, q.data, n * c);
        if (st == CANVAS_OK) st = op_backend_check(r->be); /* the void ops' outcome */
    }
    if (v.channels) act_release(r, &v);
    if (k.channels) act_release(r, &k);
    if (q.channels) act_release(r, &q);
    act_release(r, &normed);
    return st;
}

static canvas_status mid_forward(vae_run *r, const vae_mid *m, act *x)
{
    TRY(residual_forward(r, &m->res0, x));
    TRY(attention_forward(r, &m->attn, x));
    return residual_forward(r, &m->res1, x);
}

/* *x <- conv(*x), the input released. */
static canvas_status replace_by_conv(vae_run *r, const vae_conv *conv, act *x, conv_mode mode, const float *norm)
{
    act y;
    TRY(conv_new(r, conv, x, mode, norm, &y));
    act_release(r, x);
    *x = y;
    return CANVAS_OK;
}

/* ---- layout at the edges ----------------------------------------------------------------- */

/* The model's input and output are host memory; on a device they cross in a planar block of
 * it (`planar`, the size of the activation) with mem_copy. */

/* [C, H, W] -> a new channels-last activation. */
static canvas_status from_channel_first(vae_run *r, const float *src, int height, int width, int channels, act *x)
{
    act planar = {0};
    TRY(act_new(r, x, height, width, channels));
    if (r->counting) {
        if (r->placed) count_peak(r, act_bytes(x)); /* the planar copy beside it */
        return CANVAS_OK;
    }
    canvas_status st = CANVAS_OK;
    if (r->device) {
        st = act_new(r, &planar, height, width, channels);
        if (st == CANVAS_OK)
            st = mem_copy(r->device, planar.data, mem_device_cpu(), src, act_bytes(&planar));
        src = planar.data;
    }
    if (st == CANVAS_OK) {
        op_to_channels_last(r->be, src, (int64_t)height * width, channels, x->data);
        st = op_backend_check(r->be);
    }
    if (planar.data) act_release(r, &planar);
    if (st != CANVAS_OK) act_release(r, x);
    return st;
}

/* channels-last -> [C, H, W], optionally clamped to [-1, 1]. */
static canvas_status to_channel_first(vae_run *r, const act *x, int clamp, float *dst)
{
    if (r->counting) {
        if (r->placed) count_peak(r, act_bytes(x));
        return CANVAS_OK;
    }
    act planar = {0};
    if (r->device) TRY(act_new(r, &planar, x->height, x->width, x->channels));
    op_to_channels_first(r->be, x->data, (int64_t)x->height * x->width, x->channels, clamp,
                         r->device ? planar.data : dst);
    canvas_status st = op_backend_check(r->be);
    if (st == CANVAS_OK && r->device) st = mem_copy(mem_device_cpu(), dst, r->device, planar.data, act_bytes(&planar));
    if (planar.data) act_release(r, &planar);
    return st;
}

/* ---- encoder and decoder ----------------------------------------------------------------- */

static canvas_status encoder_layers(vae_run *r, const vae_model *m, act *x)
{
    const vae_encoder *e = &m->encoder;
    TRY(replace_by_conv(r, &e->conv_in, x, CONV_SAME, NULL));
    for (int i = 0; i < e->n_down; i++) {
        const vae_down_block *b = &e->down[i];
        if (b->is_downsample) TRY(replace_by_conv(r, &b->downsample, x, CONV_DOWN, NULL));
        else TRY(residual_forward(r, &b->res, x));
    }
    TRY(mid_forward(r, &e->mid, x));
    TRY(replace_by_conv(r, &e->conv_out, x, CONV_SAME, e->norm_out));
    return replace_by_conv(r, &e->quant_conv, x, CONV_SAME, NULL);
}

static canvas_status decoder_layers(vae_run *r, const vae_model *m, act *x)
{
    const vae_decoder *d = &m->decoder;
    TRY(replace_by_conv(r, &d->post_quant_conv, x, CONV_SAME, NULL));
    TRY(replace_by_conv(r, &d->conv_in, x, CONV_SAME, NULL));
    TRY(mid_forward(r, &d->mid, x));
    for (int i = 0; i < d->n_up; i++) {
        const vae_up_block *b = &d->up[i];
        for (int j = 0; j < b->n_res; j++) TRY(residual_forward(r, &b->res[j], x));
        if (b->upsample.kernel) TRY(replace_by_conv(r, &b->upsample, x, CONV_UP, NULL));
    }
    return replace_by_conv(r, &d->conv_out, x, CONV_SAME, d->norm_out);
}

/* Where the run computes: on the model's device (vae_place_on_device) when it has one. A
 * backend that is not the CPU's computes on device memory only; the CPU's only on memory it
 * can address. */
static canvas_status run_setup(vae_model *model, op_backend *be, vae_run *r)
{
    *r = (vae_run){.be = be, .device = model->device, .placed = model->device != NULL};
    const int host_backend = op_backend_on_host(be);
    if (!model->device && !host_backend)
        return status_fail(CANVAS_ERR_USAGE, "vae: a backend other than the CPU's needs the weights on its device "
                                             "(vae_place_on_device)");
    if (model->device && host_backend && !mem_device_is_addressable(model->device))
        return status_fail(CANVAS_ERR_USAGE, "vae: the CPU backend cannot compute on device '%s'",
                           mem_device_name(model->device));
    return CANVAS_OK;
}

static canvas_status check_size(const vae_model *m, const char *what, int height, int width, int multiple)
{
    if (height < 1 || width < 1 || height % multiple || width % multiple)
        return status_fail(CANVAS_ERR_INPUT, "vae %s: size %dx%d is not a positive multiple of %d", what, height,
                           width, multiple);
    (void)m;
    return CANVAS_OK;
}

/* One walk: x is the input (channels-last), consumed; out receives channel-first data. */
static canvas_status walk(vae_run *r, const vae_model *m, int encode, const float *in, int height, int width,
                          int clamp, float *out)
{
    const vae_config *c = &m->config;
    act x;
    TRY(from_channel_first(r, in, height, width, encode ? c->input_channels : c->z_dim, &x));
    canvas_status st = encode ? encoder_layers(r, m, &x) : decoder_layers(r, m, &x);
    if (st == CANVAS_OK) st = to_channel_first(r, &x, clamp, out);
    act_release(r, &x);
    return st;
}

/* The counting walk of one pass on a device `be` computes on: the activations' peak there
 * (r->peak) and, for a table backend, the largest scratch its ops ask (r->scratch). */
static void count_on_device(const vae_model *model, const op_backend *be, int encode, int height, int width,
                            vae_run *r)
{
    *r = (vae_run){.be = (op_backend *)be, .placed = 1, .counting = 1, .threads = op_backend_workers(be),
                   .table = !op_backend_on_host(be)};
    walk(r, model, encode, NULL, height, width, 0, NULL);
}

/* One pass; on a table backend with the scratch block of the pass lent to it throughout
 * (taken before the first activation: the device peak is the block plus the activations'). */
static canvas_status pass(vae_model *model, op_backend *be, int encode, const float *in, int height, int width,
                          int clamp, float *out)
{
    vae_run r;
    TRY(run_setup(model, be, &r));
    size_t scratch = 0;
    if (!op_backend_on_host(be)) {
        vae_run count;
        count_on_device(model, be, encode, height, width, &count);
        scratch = count.scratch;
    }
    void *block = NULL;
    if (scratch) {
        TRY(mem_device_alloc(model->device, MEM_SCRATCH, scratch, 256, &block));
        canvas_status st = op_backend_lend_scratch(be, block, scratch);
        if (st != CANVAS_OK) {
            mem_device_free(model->device, block);
            return st;
        }
    }
    canvas_status st = walk(&r, model, encode, in, height, width, clamp, out);
    if (block) {
        op_backend_lend_scratch(be, NULL, 0); /* taking it back cannot fail */
        status_clear();
        mem_device_free(model->device, block);
    }
    return st;
}

canvas_status vae_encode(vae_model *model, op_backend *be, const float *image, int height, int width,
                         float *latent)
{
    TRY(check_size(model, "encode", height, width, vae_scale_factor(&model->config)));
    return pass(model, be, 1, image, height, width, 0, latent);
}

static canvas_status decode(vae_model *model, op_backend *be, const float *latent, int height, int width,
                            int clamp, float *image)
{
    TRY(check_size(model, "decode", height, width, 1));
    return pass(model, be, 0, latent, height, width, clamp, image);
}

canvas_status vae_decode(vae_model *model, op_backend *be, const float *latent, int height, int width,
                         float *image)
{
    return decode(model, be, latent, height, width, 1, image);
}

canvas_status vae_decode_raw(vae_model *model, op_backend *be, const float *latent, int height, int width,
                             float *image)
{
    return decode(model, be, latent, height, width, 0, image);
}

size_t vae_activation_bytes(const vae_model *model, int threads, int encode, int height, int width)
{
    vae_run r = {.counting = 1, .threads = threads < 1 ? 1 : threads, .placed = model->device != NULL};
    walk(&r, model, encode, NULL, height, width, 0, NULL);
    return r.peak;
}

size_t vae_device_bytes(const vae_model *model, const op_backend *be, int encode, int height, int width)
{
    vae_run r;
    count_on_device(model, be, encode, height, width, &r);
    return r.peak + r.scratch;
}

void vae_normalize_latent(const vae_config *config, float *latent, int64_t count)
{
    for (int c = 0; c < config->z_dim; c++) {
        const float mean = (float)config->latents_mean[c], std = (float)config->latents_std[c];
        float *plane = latent + (size_t)c * count;
        for (int64_t i = 0; i < count; i++) plane[i] = (plane[i] - mean) / std;
    }
}

void vae_denormalize_latent(const vae_config *config, float *latent, int64_t count)
{
    for (int c = 0; c < config->z_dim; c++) {
        /* the pipeline divides by the reciprocal: latents / (1 / std) + mean */
        const float inverse_std = 1.0f / (float)config->latents_std[c], mean = (float)config->latents_mean[c];
        float *plane = latent + (size_t)c * count;
        for (int64_t i = 0; i < count; i++) {
            float scaled = plane[i] / inverse_std;
            plane[i] = scaled + mean;
        }
    }
}
