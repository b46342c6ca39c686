/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit.c — the forward pass of QwenImageTransformer2DModel
 * (spec/qwen-image-transformer.md §3), read top to bottom: the activation arena, the
 * modulated norms and gated residuals (fused row kernels of ops/ops_rows.h), one block,
 * the forward.
 *
 * Layout: the two streams live in one [N, D] matrix, text rows first, then image rows,
 * which is the order of the joint attention sequence; q, k and v use the same rows, so
 * the per-stream projections write straight into their part of the joint sequence. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_arena.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_dit.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"

/* The activations of one forward, carved from one MEM_ACTIVATIONS arena on the model's
 * device. N = n_txt + n_img, M = max(n_txt, n_img), T = 1 or 2 temb rows. */
typedef struct qwen_dit_state {
    float *stream;      /* [N, D]  text stream c (rows 0..n_txt) then image stream x       */
    float *normed;      /* [N, D]  modulated LayerNorm output; later the attention output */
    float *q, *k, *v;   /* [N, D]  joint q/k/v; q doubles as the projection output         */
    float *wide;        /* [max(4D·M, J·n_txt)]  MLP hidden of one stream / txt_norm output */
    float *rope_cos;    /* [N, hd/2] */
    float *rope_sin;    /* [N, hd/2] */
    float *sinusoid;    /* [T, 256]  */
    float *time_hidden; /* [T, D]    */
    float *temb;        /* [T, D]    row 0: timestep t; row 1: t = 0 (zero_cond_t) */
    float *temb_silu;   /* [T, D]    SiLU(temb), the input of every modulation Linear */
    float *img_mod;     /* [T, 6D]   shift1 scale1 gate1 shift2 scale2 gate2 */
    float *txt_mod;     /* [6D]      */
    float *out_mod;     /* [2D]      norm_out: scale, then shift */
    float *hidden;      /* [n_img, C] the input latent tokens, copied in */
    float *text;        /* [n_txt, J] the text encoder output, copied in */
    float *out;         /* [n_img, P] the output, copied out at the end */
    uint8_t *mask;      /* [N]       joint key mask */
    mem_arena *arena;
} qwen_dit_state;

enum { STATE_BUFFERS = 18 };

/* Every float buffer is rounded up to 16 floats so each starts 64-byte aligned. */
static size_t floats_16(int64_t n) { return ((size_t)n + 15u) & ~(size_t)15u; }

/* The float buffers in carving order with their sizes in floats; the mask comes last. */
static void state_buffers(const qwen_dit_config *c, int64_t n_img, int64_t n_txt, qwen_dit_state *s, float **slots[],
                          int64_t floats[])
{
    const int64_t d = qwen_dit_inner_dim(c), n = n_txt + n_img, m = n_txt > n_img ? n_txt : n_img;
    const int64_t t_rows = c->zero_cond_t ? 2 : 1, pairs = c->attention_head_dim / 2;
    const int64_t mlp = QWEN_DIT_MLP_MULT * d * m, txt_norm = (int64_t)c->joint_attention_dim * n_txt;
    float **s_[STATE_BUFFERS] = {&s->stream, &s->normed, &s->q, &s->k, &s->v, &s->wide, &s->rope_cos,
                                 &s->rope_sin, &s->sinusoid, &s->time_hidden, &s->temb, &s->temb_silu,
                                 &s->img_mod, &s->txt_mod, &s->out_mod, &s->hidden, &s->text, &s->out};
    const int64_t f_[STATE_BUFFERS] = {n * d, n * d, n * d, n * d, n * d, mlp > txt_norm ? mlp : txt_norm,
                                       n * pairs, n * pairs, t_rows * QWEN_DIT_TIME_CHANNELS, t_rows * d, t_rows * d,
                                       t_rows * d, t_rows * 6 * d, 6 * d, 2 * d, n_img * c->in_channels,
                                       n_txt * c->joint_attention_dim, n_img * qwen_dit_output_channels(c)};
    for (int i = 0; i < STATE_BUFFERS; i++) {
        slots[i] = s_[i];
        floats[i] = f_[i];
    }
}

static size_t mask_bytes(int64_t n) { return ((size_t)n + 63u) & ~(size_t)63u; }

size_t qwen_dit_activation_bytes(const qwen_dit_config *config, int64_t n_img, int64_t n_txt)
{
    qwen_dit_state unused;
    float **slots[STATE_BUFFERS];
    int64_t floats[STATE_BUFFERS];
    state_buffers(config, n_img, n_txt, &unused, slots, floats);
    size_t bytes = 0;
    for (int i = 0; i < STATE_BUFFERS; i++) bytes += floats_16(floats[i]) * sizeof(float);
    return bytes + mask_bytes(n_img + n_txt);
}

/* One arena of exactly `bytes` on the device, carved in the order of state_buffers; the
 * rest of the arena (a device's reservation for the attention kernel) stays unused. */
static canvas_status state_alloc(mem_device *device, const qwen_dit_config *c, int64_t n_img, int64_t n_txt, size_t bytes,
                                 qwen_dit_state *s)
{
    memset(s, 0, sizeof *s);
    TRY(mem_arena_create(device, MEM_ACTIVATIONS, bytes, &s->arena));
    float **slots[STATE_BUFFERS];
    int64_t floats[STATE_BUFFERS];
    state_buffers(c, n_img, n_txt, s, slots, floats);
    void *block;
    for (int i = 0; i < STATE_BUFFERS; i++) {
        TRY(mem_arena_alloc(s->arena, floats_16(floats[i]) * sizeof(float), MEM_ALIGNMENT, &block));
        *slots[i] = block;
    }
    TRY(mem_arena_alloc(s->arena, mask_bytes(n_img + n_txt), MEM_ALIGNMENT, &block));
    s->mask = block;
    if (mem_arena_used(s->arena) != qwen_dit_activation_bytes(c, n_img, n_txt))
        return status_fail(CANVAS_ERR_INTERNAL, "transformer: the activation formula (%zu bytes) and the carving "
                           "(%zu bytes) disagree", qwen_dit_activation_bytes(c, n_img, n_txt), mem_arena_used(s->arena));
    return CANVAS_OK;
}

static void state_free(qwen_dit_state *s) { mem_arena_destroy(s->arena); }

/* ---- the modulated norms and gated residuals ------------------------------------------- */

/* y = LayerNorm(x) * (1 + scale) + shift. A block's modulation chunk is [shift | scale |
 * gate]: mod_t for rows [0, rows_t), mod_0 for the rest (zero_cond_t reference tokens). */
static void norm_modulate(op_backend *be, const float *x, int64_t rows, int64_t d, const float *mod_t,
                          const float *mod_0, int64_t rows_t, float *y)
{
    const float *shift[2] = {mod_t, mod_0}, *scale[2] = {mod_t + d, mod_0 + d};
    op_norm_modulate(be, x, rows, d, QWEN_DIT_NORM_EPS, shift, scale, rows_t, y);
}

/* x += gate * delta, per row the gate of mod_t or mod_0 as above. */
static void gated_add(op_backend *be, float *x, const float *delta, int64_t rows, int64_t d, const float *gate_t,
                      const float *gate_0, int64_t rows_t)
{
    const float *gate[2] = {gate_t, gate_0};
    op_gated_add(be, x, delta, rows, d, gate, rows_t);
}

/* ---- one block ------------------------------------------------------------------------ */

/* Where the two streams sit in the joint rows, and which image rows use timestep t. */
typedef struct qwen_dit_geometry {
    int64_t n_txt, n_img, n;
    int64_t d, heads, head_dim;
    int64_t img_rows_t;        /* image rows modulated with timestep t (the rest: t = 0) */
    int zero_cond;
    const uint8_t *key_mask;   /* NULL when no key is masked */
} qwen_dit_geometry;

/* One stream's GELU-tanh MLP on s->normed rows, output in s->q rows (same offset). */
static canvas_status stream_mlp(op_backend *be, qwen_dit_state *s, int64_t row0, int64_t rows, int64_t d,
                                const weight_view *w_in, const float *b_in, const weight_view *w_out,
                                const float *b_out)
{
    TRY(op_linear(be, s->normed + row0 * d, rows, w_in, b_in, s->wide));
    op_gelu_tanh_rows(be, s->wide, rows, QWEN_DIT_MLP_MULT * d);
    return op_linear(be, s->wide, rows, w_out, b_out, s->q + row0 * d);
}

static canvas_status block_forward(op_backend *be, const qwen_dit_block_weights *b, const qwen_dit_geometry *g, qwen_dit_state *s)
{
    const int64_t d = g->d, nt = g->n_txt, ni = g->n_img, hd = g->head_dim;
    float *c = s->stream, *x = s->stream + nt * d;

    /* Modulation: [shift1 | scale1 | gate1 | shift2 | scale2 | gate2], text from t only. */
    TRY(op_linear(be, s->temb_silu, g->zero_cond ? 2 : 1, &b->img_mod, b->img_mod_bias, s->img_mod));
    TRY(op_linear(be, s->temb_silu, 1, &b->txt_mod, b->txt_mod_bias, s->txt_mod));
    const float *img_t = s->img_mod, *img_0 = g->zero_cond ? s->img_mod + 6 * d : s->img_mod;
    const float *txt = s->txt_mod;

    /* Attention sub-layer. */
    norm_modulate(be, c, nt, d, txt, txt, nt, s->normed);
    norm_modulate(be, x, ni, d, img_t, img_0, g->img_rows_t, s->normed + nt * d);
    const float *normed_img = s->normed + nt * d;
    TRY(op_linear(be, s->normed, nt, &b->add_q, b->add_q_bias, s->q));
    TRY(op_linear(be, s->normed, nt, &b->add_k, b->add_k_bias, s->k));
    TRY(op_linear(be, s->normed, nt, &b->add_v, b->add_v_bias, s->v));
    TRY(op_linear(be, normed_img, ni, &b->to_q, b->to_q_bias, s->q + nt * d));
    TRY(op_linear(be, normed_img, ni, &b->to_k, b->to_k_bias, s->k + nt * d));
    TRY(op_linear(be, normed_img, ni, &b->to_v, b->to_v_bias, s->v + nt * d));

    /* Per-head RMSNorm (in place), then RoPE; v gets neither. */
    op_qk_norm_rope_params qk = {.heads = (int)g->heads, .head_dim = (int)hd, .eps = QWEN_DIT_NORM_EPS, .split = nt,
                                 .norm_q = {b->norm_added_q, b->norm_q}, .norm_k = {b->norm_added_k, b->norm_k},
                                 .cos = s->rope_cos, .sin = s->rope_sin};
    op_qk_norm_rope(be, s->q, s->k, g->n, &qk);

    float *attn = s->normed; /* the modulated input is dead once q, k, v exist */
    TRY(op_attention(be, s->q, s->k, s->v, g->n, (int)g->heads, (int)hd, g->key_mask, attn));
    TRY(op_linear(be, attn, nt, &b->to_add_out, b->to_add_out_bias, s->q));
    TRY(op_linear(be, attn + nt * d, ni, &b->to_out, b->to_out_bias, s->q + nt * d));
    gated_add(be, c, s->q, nt, d, txt + 2 * d, txt + 2 * d, nt);
    gated_add(be, x, s->q + nt * d, ni, d, img_t + 2 * d, img_0 + 2 * d, g->img_rows_t);

    /* MLP sub-layer, one stream at a time through the shared hidden buffer. */
    norm_modulate(be, c, nt, d, txt + 3 * d, txt + 3 * d, nt, s->normed);
    norm_modulate(be, x, ni, d, img_t + 3 * d, img_0 + 3 * d, g->img_rows_t, s->normed + nt * d);
    TRY(stream_mlp(be, s, 0, nt, d, &b->txt_mlp_in, b->txt_mlp_in_bias, &b->txt_mlp_out, b->txt_mlp_out_bias));
    TRY(stream_mlp(be, s, nt, ni, d, &b->img_mlp_in, b->img_mlp_in_bias, &b->img_mlp_out, b->img_mlp_out_bias));
    gated_add(be, c, s->q, nt, d, txt + 5 * d, txt + 5 * d, nt);
    gated_add(be, x, s->q + nt * d, ni, d, img_t + 5 * d, img_0 + 5 * d, g->img_rows_t);
    return CANVAS_OK;
}

/* ---- the forward ---------------------------------------------------------------------- */

/* A tap sees host memory: on a device the CPU cannot address the tensor is copied to a host
 * block first (taps are for debugging: the copy is not planned for). */
static canvas_status tap_tensor(mem_device *device, const qwen_dit_tap *tap, const char *name, const float *data, int ndim,
                                const int64_t *shape)
{
    if (!tap || !tap->fn) return CANVAS_OK;
    size_t bytes = sizeof(float);
    for (int i = 0; i < ndim; i++) bytes *= (size_t)shape[i];
    float *host;
    TRY(mem_host_view(device, (void *)data, bytes, 1, (void **)&host));
    canvas_status st = tap->fn(tap->ctx, name, host, ndim, shape);
    return mem_host_view_end(device, (void *)data, host, bytes, 0, st);
}

static canvas_status tap_rows(mem_device *device, const qwen_dit_tap *tap, const char *name, const float *data,
                              int64_t rows, int64_t d)
{
    const int64_t shape[3] = {1, rows, d};
    return tap_tensor(device, tap, name, data, 3, shape);
}

static canvas_status check_inputs(const qwen_dit_model *model, const qwen_dit_inputs *in)
{
    const qwen_dit_config *c = &model->config;
    if (in->n_img < 1 || in->n_txt < 1 || !in->hidden_states || !in->encoder_hidden_states)
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: needs at least one image and one text token "
                           "(got %lld and %lld)", (long long)in->n_img, (long long)in->n_txt);
    if (in->hidden_channels != c->in_channels)
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: hidden_states has %lld channels, the model takes %d",
                           (long long)in->hidden_channels, c->in_channels);
    if (in->text_dim != c->joint_attention_dim)
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: encoder_hidden_states has width %lld, the model "
                           "takes joint_attention_dim %d", (long long)in->text_dim, c->joint_attention_dim);
    if (in->n_images < 1 || !in->img_shapes)
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: img_shapes is empty");
    int64_t tokens = 0;
    for (int i = 0; i < in->n_images; i++) {
        const qwen_dit_image_shape *s = &in->img_shapes[i];
        if (s->frames < 1 || s->height < 1 || s->width < 1)
            return status_fail(CANVAS_ERR_INPUT, "transformer forward: img_shapes[%d] = [%d, %d, %d] is not positive", i,
                               s->frames, s->height, s->width);
        tokens += (int64_t)s->frames * s->height * s->width;
    }
    if (tokens != in->n_img)
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: img_shapes hold %lld tokens but hidden_states has %lld",
                           (long long)tokens, (long long)in->n_img);
    if (!isfinite(in->timestep))
        return status_fail(CANVAS_ERR_INPUT, "transformer forward: timestep is not finite");
    return CANVAS_OK;
}

/* The tables host code computes (spec §3.3, §3.4): the RoPE rotations, the timestep
 * sinusoids and the joint key mask, into their buffers of the device. On a host-addressable
 * device they are written in place; on any other device they are computed into one host
 * block and sent with mem_copy. That block is what staging costs in host memory:
 * N·hd·4 (cos and sin) + T·256·4 + N bytes (MEM_STAGING), about 4.2 MiB for a 1024x1024
 * edit with one reference (8,192 image and ~300 text tokens, head dim 128), freed before the
 * first block. The planner does not count it: its host phases are an addressable device's. */
static canvas_status send_tables(mem_device *device, const qwen_dit_config *c, const qwen_dit_inputs *in, qwen_dit_geometry *g,
                                 qwen_dit_state *s)
{
    const size_t table = (size_t)g->n * (size_t)(c->attention_head_dim / 2) * sizeof(float);
    const size_t sinusoid = (size_t)(g->zero_cond ? 2 : 1) * QWEN_DIT_TIME_CHANNELS * sizeof(float);
    const int staged = !mem_device_is_addressable(device);
    float *cos_at = s->rope_cos, *sin_at = s->rope_sin, *sinusoid_at = s->sinusoid;
    uint8_t *mask_at = s->mask;
    char *host = NULL;
    if (staged) {
        TRY(mem_alloc((void **)&host, 2 * table + sinusoid + (size_t)g->n, MEM_STAGING));
        cos_at = (float *)host;
        sin_at = (float *)(host + table);
        sinusoid_at = (float *)(host + 2 * table);
        mask_at = (uint8_t *)(host + 2 * table + sinusoid);
    }
    qwen_dit_rope_tables(c, in->img_shapes, in->n_images, g->n_txt, cos_at, sin_at);
    qwen_dit_timestep_sinusoid(in->timestep, sinusoid_at);
    if (g->zero_cond) qwen_dit_timestep_sinusoid(0.0f, sinusoid_at + QWEN_DIT_TIME_CHANNELS);
    int any_masked = 0;
    for (int64_t j = 0; j < g->n; j++) {
        mask_at[j] = (j < g->n_txt && in->text_mask) ? (in->text_mask[j] != 0) : 1;
        any_masked |= !mask_at[j];
    }
    g->key_mask = any_masked ? s->mask : NULL;
    if (!staged) return CANVAS_OK;
    mem_device *cpu = mem_device_cpu();
    canvas_status st = mem_copy(device, s->rope_cos, cpu, cos_at, table);
    if (st == CANVAS_OK) st = mem_copy(device, s->rope_sin, cpu, sin_at, table);
    if (st == CANVAS_OK) st = mem_copy(device, s->sinusoid, cpu, sinusoid_at, sinusoid);
    if (st == CANVAS_OK) st = mem_copy(device, s->mask, cpu, mask_at, (size_t)g->n);
    mem_free(host);
    return st;
}

/* temb rows: MLP(sinusoid(t)) and, with zero_cond_t, MLP(sinusoid(0)); then SiLU copies.
 * The sinusoids are in s->sinusoid already (send_tables). */
static canvas_status time_embedding(op_backend *be, const qwen_dit_weights *w, int rows, int64_t d, qwen_dit_state *s)
{
    TRY(op_linear(be, s->sinusoid, rows, &w->time_linear_1, w->time_linear_1_bias, s->time_hidden));
    op_silu_rows(be, s->time_hidden, rows * d);
    TRY(op_linear(be, s->time_hidden, rows, &w->time_linear_2, w->time_linear_2_bias, s->temb));
    op_copy_columns(be, s->temb, rows, d, 0, d, s->temb_silu);
    op_silu_rows(be, s->temb_silu, rows * d);
    return CANVAS_OK;
}

/* The forward on the device: `w` is the top level (acquired by the caller), the inputs
 * are in s->hidden and s->text, the output goes to s->out. Host code only computes the
 * tables (send_tables) and reads taps: every other byte of the device is an op's. */
static canvas_status forward(qwen_dit_model *model, op_backend *be, const qwen_dit_weights *w, const qwen_dit_inputs *in,
                             const qwen_dit_tap *tap, qwen_dit_state *s, qwen_dit_geometry *g)
{
    const qwen_dit_config *c = &model->config;
    mem_device *device = qwen_dit_device(model);
    const int64_t d = g->d, nt = g->n_txt, ni = g->n_img;
    float *x = s->stream + nt * d;

    TRY(send_tables(device, c, in, g, s));

    /* Input projections: x = img_in(X); c = txt_in(RMSNorm(E)). */
    TRY(op_linear(be, s->hidden, ni, &w->img_in, w->img_in_bias, x));
    TRY(tap_rows(device, tap, "img_in", x, ni, d));
    op_rms_norm_rows(be, s->text, nt, c->joint_attention_dim, QWEN_DIT_NORM_EPS, w->txt_norm, s->wide);
    TRY(op_linear(be, s->wide, nt, &w->txt_in, w->txt_in_bias, s->stream));
    TRY(op_backend_check(be));
    TRY(tap_rows(device, tap, "txt_in", s->stream, nt, d));

    const int t_rows = g->zero_cond ? 2 : 1;
    TRY(time_embedding(be, w, t_rows, d, s));
    TRY(op_backend_check(be));
    const int64_t temb_shape[2] = {t_rows, d};
    TRY(tap_tensor(device, tap, "temb", s->temb, 2, temb_shape));

    for (int i = 0; i < c->num_layers; i++) {
        const qwen_dit_block_weights *b;
        TRY(qwen_dit_block_acquire(model, i, &b));
        canvas_status st = block_forward(be, b, g, s);
        qwen_dit_block_release(model, i);
        if (st == CANVAS_OK) st = op_backend_check(be);
        if (st != CANVAS_OK) return status_wrap(st, "transformer block %d: ", i);
        char name[48];
        snprintf(name, sizeof name, "block.%d.img", i);
        TRY(tap_rows(device, tap, name, x, ni, d));
        snprintf(name, sizeof name, "block.%d.txt", i);
        TRY(tap_rows(device, tap, name, s->stream, nt, d));
    }

    /* norm_out (AdaLayerNormContinuous): [scale | shift] from timestep t, then proj_out. */
    TRY(op_linear(be, s->temb_silu, 1, &w->norm_out, w->norm_out_bias, s->out_mod));
    float *normed_img = s->normed + nt * d;
    const float *shift[2] = {s->out_mod + d, s->out_mod + d}, *scale[2] = {s->out_mod, s->out_mod};
    op_norm_modulate(be, x, ni, d, QWEN_DIT_NORM_EPS, shift, scale, ni, normed_img);
    TRY(op_linear(be, normed_img, ni, &w->proj_out, w->proj_out_bias, s->out));
    return op_backend_check(be);
}

/* The dry run on a measure device: what forward() does to memory (the block acquires and
 * releases, hence the same prefetches and copies), without kernels. */
static canvas_status dry_forward(qwen_dit_model *model)
{
    for (int i = 0; i < model->config.num_layers; i++) {
        const qwen_dit_block_weights *b;
        TRY(qwen_dit_block_acquire(model, i, &b));
        qwen_dit_block_release(model, i);
    }
    return CANVAS_OK;
}

/* The scratch the backend's GEMMs need on the device for this forward: the largest
 * op_backend_linear_scratch_bytes over its op_linear calls, each with its weight's shape and
 * format (the homes' views: a placed copy has the same). 0 on the CPU backend. */
static size_t backend_scratch_bytes(const qwen_dit_model *model, const op_backend *be, const qwen_dit_geometry *g)
{
    const qwen_dit_weights *w = &model->weights;
    const int64_t nt = g->n_txt, ni = g->n_img, t_rows = g->zero_cond ? 2 : 1;
    size_t most = 0;
#define NEEDS(rows, view)                                                           \
    do {                                                                            \
        const size_t need_ = op_backend_linear_scratch_bytes(be, (rows), &(view)); \
        if (need_ > most) most = need_;                                             \
    } while (0)
    NEEDS(ni, w->img_in);
    NEEDS(nt, w->txt_in);
    NEEDS(t_rows, w->time_linear_1);
    NEEDS(t_rows, w->time_linear_2);
    NEEDS(1, w->norm_out);
    NEEDS(ni, w->proj_out);
    for (int i = 0; i < model->config.num_layers; i++) {
        const qwen_dit_block_weights *b = &w->blocks[i];
        NEEDS(t_rows, b->img_mod);
        NEEDS(1, b->txt_mod);
        NEEDS(nt, b->add_q);
        NEEDS(nt, b->add_k);
        NEEDS(nt, b->add_v);
        NEEDS(nt, b->to_add_out);
        NEEDS(nt, b->txt_mlp_in);
        NEEDS(nt, b->txt_mlp_out);
        NEEDS(ni, b->to_q);
        NEEDS(ni, b->to_k);
        NEEDS(ni, b->to_v);
        NEEDS(ni, b->to_out);
        NEEDS(ni, b->img_mlp_in);
        NEEDS(ni, b->img_mlp_out);
    }
#undef NEEDS
    return most;
}

/* Inputs in, forward (or dry run on a device that holds no data), output out; the top level
 * is held throughout. */
static canvas_status run_on_device(qwen_dit_model *model, op_backend *be, const qwen_dit_inputs *in, const qwen_dit_tap *tap,
                                   qwen_dit_state *s, qwen_dit_geometry *g, float *output)
{
    mem_device *device = qwen_dit_device(model), *host = mem_device_cpu();
    const qwen_dit_config *c = &model->config;
    const int real = (mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA) != 0;
    TRY(mem_copy(device, s->hidden, host, in->hidden_states, (size_t)(in->n_img * c->in_channels) * sizeof(float)));
    TRY(mem_copy(device, s->text, host, in->encoder_hidden_states,
                 (size_t)(in->n_txt * c->joint_attention_dim) * sizeof(float)));
    const qwen_dit_weights *w;
    TRY(qwen_dit_top_acquire(model, &w));
    canvas_status st = real ? forward(model, be, w, in, tap, s, g) : dry_forward(model);
    qwen_dit_top_release(model);
    TRY(st);
    if (!output) return real ? status_fail(CANVAS_ERR_USAGE, "transformer forward: no output buffer") : CANVAS_OK;
    return mem_copy(host, output, device, s->out, (size_t)(in->n_img * qwen_dit_output_channels(c)) * sizeof(float));
}

canvas_status qwen_dit_forward(qwen_dit_model *model, op_backend *be, const qwen_dit_inputs *inputs, const qwen_dit_tap *tap,
                          float *output)
{
    TRY(check_inputs(model, inputs));
    mem_device *device = qwen_dit_device(model);
    if (!device)
        return status_fail(CANVAS_ERR_USAGE, "transformer: the weights are not placed on a device (the last qwen_dit_place "
                                             "failed; place the model again before a forward)");
    /* The CPU kernels would read and write the device's blocks through their addresses and
     * fault: a device the host cannot address computes with its own backend or not at all. */
    if ((mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA) && !mem_device_is_addressable(device) &&
        op_backend_on_host(be))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "transformer forward: device '%s' is not host-addressable and the "
                           "CPU op backend computes only in host memory: give the device's own op backend",
                           mem_device_name(device));
    const qwen_dit_config *c = &model->config;
    const qwen_dit_image_shape *target = &inputs->img_shapes[0];
    qwen_dit_geometry g = {
        .n_txt = inputs->n_txt,
        .n_img = inputs->n_img,
        .n = inputs->n_txt + inputs->n_img,
        .d = qwen_dit_inner_dim(c),
        .heads = c->num_attention_heads,
        .head_dim = c->attention_head_dim,
        .zero_cond = c->zero_cond_t ? 1 : 0,
        /* zero_cond_t: target tokens use timestep t, every reference token t = 0. */
        .img_rows_t = c->zero_cond_t ? (int64_t)target->frames * target->height * target->width : inputs->n_img,
    };
    qwen_dit_state s;
    canvas_status st = state_alloc(device, c, g.n_img, g.n_txt, qwen_dit_forward_arena_bytes(model, be, g.n_img, g.n_txt),
                                   &s);
    /* The backend's GEMM scratch, taken here once for the whole forward (and so in the dry run
     * too: the planner's device peak counts it) and lent to the backend; none on the CPU. */
    const size_t scratch_bytes = backend_scratch_bytes(model, be, &g);
    const int real = (mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA) != 0;
    void *scratch = NULL;
    if (st == CANVAS_OK && scratch_bytes) st = mem_device_alloc(device, MEM_SCRATCH, scratch_bytes, 256, &scratch);
    if (st == CANVAS_OK && scratch && real) st = op_backend_lend_scratch(be, scratch, scratch_bytes);
    if (st == CANVAS_OK) st = run_on_device(model, be, inputs, tap, &s, &g, output);
    if (scratch) {
        if (real) op_backend_lend_scratch(be, NULL, 0); /* taking it back cannot fail */
        mem_device_free(device, scratch);
    }
    state_free(&s);
    return st;
}
