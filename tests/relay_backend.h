/* SPDX-License-Identifier: Apache-2.0 */
/* relay_backend.h — an op backend written only for tests (ops/ops_backend_impl.h): a table
 * named "relay" whose ops compute on a device the CPU may not address (the sealed probe
 * device of tests/probe_device.h) by relaying through host memory. Each op copies its inputs
 * from the device into host buffers with mem_copy, runs the CPU op on them (op_* with a CPU
 * backend over the relay's pool), and copies its outputs back with mem_copy; the host
 * buffers are mem_alloc'ed for the op and freed before it returns. So its results are the
 * CPU's bit for bit, and model code that runs through it never touched device memory itself.
 *
 *     relay_backend relay = {.device = sealed, .pool = pool};
 *     op_backend be = relay_backend_make(&relay);
 *     op_linear(&be, x, m, &w, bias, y);          (x, w's data, bias, y: blocks of `sealed`)
 *
 * Every size comes from the op's arguments: activations are f32 of the shapes the op's
 * contract gives, a weight is weight_view_bytes (its quant blob, or out x in elements), norm
 * weights and modulation rows are [d] f32 vectors on the device, the key mask is seq bytes.
 * The weight_view and op_qk_norm_rope_params structs themselves are host memory (only the
 * pointers in them are device memory), as for any backend. Everything is static, for one
 * test program each.
 *
 * relay_backend_make_scratch gives the same relay that also takes device scratch for its GEMMs
 * and convolutions by the CUDA backend's rules (op_cuda_linear_scratch_bytes,
 * op_cuda_conv2d_scratch_bytes) the way the CUDA backend does: from
 * the block lent to it (op_backend_lend_scratch) when that is large enough, else from a block
 * of its own on the device, grown on demand (relay_backend_release frees it). So a forward on
 * the sealed probe takes the device memory a CUDA run would take for its scratch. */
#ifndef CANVAS_TESTS_RELAY_BACKEND_H
#define CANVAS_TESTS_RELAY_BACKEND_H

#include <stdint.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "ops/ops_backend_impl.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"
#include "ops/ops_cuda.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

typedef struct relay_backend {
    mem_device *device; /* where every pointer the ops take lives */
    thread_pool *pool;  /* the CPU ops' workers (NULL: the calling thread) */
    uint64_t ops;       /* ops relayed */
    /* relay_backend_make_scratch only: */
    void *lent;            /* the block lent to it (NULL: none) and its bytes */
    size_t lent_bytes;
    void *own;             /* its own block, taken when the lent one was short, and its bytes */
    size_t own_bytes;
    size_t most_needed;    /* the largest scratch an op asked for */
} relay_backend;

#define RELAY_MAX_BUFFERS 12

/* One op's host buffers and its outcome so far: after the first failure nothing more is
 * copied or computed, and relay_end frees what was taken. */
typedef struct relay_call {
    relay_backend *relay;
    void *host[RELAY_MAX_BUFFERS];
    int n;
    canvas_status st;
} relay_call;

/* a x b elements of `elem` bytes, or a failure for a negative or overflowing size. */
static inline size_t relay_bytes(relay_call *c, int64_t a, int64_t b, size_t elem)
{
    if (c->st != CANVAS_OK) return 0;
    if (a < 0 || b < 0 || (b > 0 && (uint64_t)a > SIZE_MAX / elem / (uint64_t)b)) {
        c->st = status_fail(CANVAS_ERR_INTERNAL, "relay: an operand of %lld x %lld elements", (long long)a,
                            (long long)b);
        return 0;
    }
    return (size_t)a * (size_t)b * elem;
}

/* The bytes of a weight as stored: its quant blob, or out x in elements of its type. */
static inline size_t relay_weight_bytes(relay_call *c, const weight_view *w)
{
    return w->quant ? w->quant->bytes : relay_bytes(c, w->out_features, w->in_features, dtype_size(w->type));
}

/* A host buffer of `bytes` for the op (at least 1, so an empty operand still has one). */
static inline void *relay_host(relay_call *c, size_t bytes)
{
    if (c->st != CANVAS_OK) return NULL;
    if (c->n == RELAY_MAX_BUFFERS) {
        c->st = status_fail(CANVAS_ERR_INTERNAL, "relay: more than %d operands", RELAY_MAX_BUFFERS);
        return NULL;
    }
    void *p = NULL;
    c->st = mem_alloc(&p, bytes ? bytes : 1, MEM_SCRATCH);
    if (c->st == CANVAS_OK) c->host[c->n++] = p;
    return p;
}

/* A host copy of `bytes` of the device at `device_ptr` (NULL stays NULL: an absent operand). */
static inline void *relay_in(relay_call *c, const void *device_ptr, size_t bytes)
{
    if (!device_ptr || c->st != CANVAS_OK) return NULL;
    void *p = relay_host(c, bytes);
    if (p && bytes) c->st = mem_copy(mem_device_cpu(), p, c->relay->device, device_ptr, bytes);
    return p;
}

/* The op's output back to the device, when everything before went well. */
static inline void relay_out(relay_call *c, void *device_ptr, const void *host, size_t bytes)
{
    if (c->st == CANVAS_OK && bytes) c->st = mem_copy(c->relay->device, device_ptr, mem_device_cpu(), host, bytes);
}

static inline canvas_status relay_end(relay_call *c)
{
    for (int i = 0; i < c->n; i++) mem_free(c->host[i]);
    if (c->st == CANVAS_OK) c->relay->ops++;
    return c->st;
}

#define RELAY_CALL(ctx) {.relay = (relay_backend *)(ctx), .st = CANVAS_OK}
#define RELAY_CPU(c) OP_BACKEND_CPU((c)->relay->pool)
#define RELAY_F32(c, a, b) relay_bytes(c, a, b, sizeof(float))

/* `need` bytes of scratch taken as the CUDA backend takes them (the bytes are not used). */
static inline canvas_status relay_take(relay_backend *r, size_t need)
{
    if (need > r->most_needed) r->most_needed = need;
    if ((r->lent && need <= r->lent_bytes) || need <= r->own_bytes) return CANVAS_OK;
    if (r->own) mem_device_free(r->device, r->own);
    r->own = NULL;
    r->own_bytes = 0;
    TRY(mem_device_alloc(r->device, MEM_SCRATCH, need, 256, &r->own));
    r->own_bytes = need;
    return CANVAS_OK;
}

/* The CUDA backend's scratch for one op_linear. */
static inline canvas_status relay_scratch(relay_backend *r, int64_t m, const weight_view *w)
{
    return relay_take(r, op_cuda_linear_scratch_bytes(m, w));
}

static inline canvas_status relay_lend_scratch(void *ctx, void *at, size_t bytes)
{
    relay_backend *r = ctx;
    r->lent = at;
    r->lent_bytes = at ? bytes : 0;
    return CANVAS_OK;
}

static inline void relay_backend_release(relay_backend *r)
{
    if (r->own) mem_device_free(r->device, r->own);
    r->own = NULL;
    r->own_bytes = 0;
}

static inline canvas_status relay_linear(void *ctx, const float *x, int64_t m, const weight_view *w, const float *bias,
                                         float *y)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t y_bytes = RELAY_F32(&c, m, w->out_features);
    weight_view hw = *w;
    const float *hx = relay_in(&c, x, RELAY_F32(&c, m, w->in_features));
    hw.data = relay_in(&c, w->data, relay_weight_bytes(&c, w));
    const float *hb = relay_in(&c, bias, RELAY_F32(&c, 1, w->out_features));
    float *hy = relay_host(&c, y_bytes);
    if (c.st == CANVAS_OK) c.st = op_linear(RELAY_CPU(&c), hx, m, &hw, hb, hy);
    relay_out(&c, y, hy, y_bytes);
    return relay_end(&c);
}

/* op_attention when there is a key mask (it has no groups and no causal mask), else
 * op_attention_grouped (the same bits as op_attention where both apply). */
static inline canvas_status relay_attention(void *ctx, const float *q, const float *k, const float *v, int64_t seq,
                                            int heads, int kv_heads, int head_dim, const uint8_t *key_mask, int causal,
                                            float *out)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t q_bytes = RELAY_F32(&c, seq, (int64_t)heads * head_dim);
    const size_t kv_bytes = RELAY_F32(&c, seq, (int64_t)kv_heads * head_dim);
    const float *hq = relay_in(&c, q, q_bytes), *hk = relay_in(&c, k, kv_bytes), *hv = relay_in(&c, v, kv_bytes);
    const uint8_t *hm = relay_in(&c, key_mask, relay_bytes(&c, seq, 1, 1));
    float *ho = relay_host(&c, q_bytes);
    if (c.st == CANVAS_OK && key_mask && (kv_heads != heads || causal))
        c.st = status_fail(CANVAS_ERR_UNSUPPORTED, "relay: attention with a key mask and groups or a causal mask");
    if (c.st == CANVAS_OK)
        c.st = key_mask ? op_attention(RELAY_CPU(&c), hq, hk, hv, seq, heads, head_dim, hm, ho)
                        : op_attention_grouped(RELAY_CPU(&c), hq, hk, hv, seq, heads, kv_heads, head_dim, causal, ho);
    relay_out(&c, out, ho, q_bytes);
    return relay_end(&c);
}

static inline canvas_status relay_add_inplace(void *ctx, float *y, const float *x, int64_t n)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, n, 1);
    float *hy = relay_in(&c, y, bytes);
    const float *hx = relay_in(&c, x, bytes);
    if (c.st == CANVAS_OK) op_add_inplace(RELAY_CPU(&c), hy, hx, n);
    relay_out(&c, y, hy, bytes);
    return relay_end(&c);
}

/* Host copies of a pair of per-row vector sets ([d] f32 each). */
static inline void relay_pair(relay_call *c, const float *const device_pair[2], int64_t d, const float *host_pair[2])
{
    for (int i = 0; i < 2; i++) host_pair[i] = relay_in(c, device_pair[i], RELAY_F32(c, d, 1));
}

static inline canvas_status relay_norm_modulate(void *ctx, const float *x, int64_t rows, int64_t d, float eps,
                                                const float *const shift[2], const float *const scale[2],
                                                int64_t split, float *y)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, rows, d);
    const float *hx = relay_in(&c, x, bytes), *hshift[2], *hscale[2];
    relay_pair(&c, shift, d, hshift);
    relay_pair(&c, scale, d, hscale);
    float *hy = relay_host(&c, bytes);
    if (c.st == CANVAS_OK) op_norm_modulate(RELAY_CPU(&c), hx, rows, d, eps, hshift, hscale, split, hy);
    relay_out(&c, y, hy, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_gated_add(void *ctx, float *y, const float *x, int64_t rows, int64_t d,
                                            const float *const gate[2], int64_t split)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, rows, d);
    float *hy = relay_in(&c, y, bytes);
    const float *hx = relay_in(&c, x, bytes), *hgate[2];
    relay_pair(&c, gate, d, hgate);
    if (c.st == CANVAS_OK) op_gated_add(RELAY_CPU(&c), hy, hx, rows, d, hgate, split);
    relay_out(&c, y, hy, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_gelu_tanh_rows(void *ctx, float *x, int64_t rows, int64_t width)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, rows, width);
    float *hx = relay_in(&c, x, bytes);
    if (c.st == CANVAS_OK) op_gelu_tanh_rows(RELAY_CPU(&c), hx, rows, width);
    relay_out(&c, x, hx, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_qk_norm_rope(void *ctx, float *q, float *k, int64_t rows,
                                               const op_qk_norm_rope_params *p)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, rows, (int64_t)p->heads * p->head_dim);
    const size_t angles = RELAY_F32(&c, rows, p->head_dim / 2);
    op_qk_norm_rope_params hp = *p;
    float *hq = relay_in(&c, q, bytes), *hk = relay_in(&c, k, bytes);
    relay_pair(&c, p->norm_q, p->head_dim, hp.norm_q);
    relay_pair(&c, p->norm_k, p->head_dim, hp.norm_k);
    hp.cos = relay_in(&c, p->cos, angles);
    hp.sin = relay_in(&c, p->sin, angles);
    if (c.st == CANVAS_OK) op_qk_norm_rope(RELAY_CPU(&c), hq, hk, rows, &hp);
    relay_out(&c, q, hq, bytes);
    relay_out(&c, k, hk, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_copy_columns(void *ctx, const float *src, int64_t rows, int64_t src_cols,
                                               int64_t col0, int64_t cols, float *dst)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t dst_bytes = RELAY_F32(&c, rows, cols);
    const float *hs = relay_in(&c, src, RELAY_F32(&c, rows, src_cols));
    float *hd = relay_host(&c, dst_bytes);
    if (c.st == CANVAS_OK) op_copy_columns(RELAY_CPU(&c), hs, rows, src_cols, col0, cols, hd);
    relay_out(&c, dst, hd, dst_bytes);
    return relay_end(&c);
}

static inline canvas_status relay_rms_norm_rows(void *ctx, const float *x, int64_t rows, int64_t dim, float eps,
                                                const float *weight, float *y)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, rows, dim);
    const float *hx = relay_in(&c, x, bytes), *hw = relay_in(&c, weight, RELAY_F32(&c, dim, 1));
    float *hy = relay_host(&c, bytes);
    if (c.st == CANVAS_OK) op_rms_norm_rows(RELAY_CPU(&c), hx, rows, dim, eps, hw, hy);
    relay_out(&c, y, hy, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_silu_rows(void *ctx, float *x, int64_t n)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, n, 1);
    float *hx = relay_in(&c, x, bytes);
    if (c.st == CANVAS_OK) op_silu_rows(RELAY_CPU(&c), hx, n);
    relay_out(&c, x, hx, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_rope_half_rows(void *ctx, float *x, int64_t seq, int heads, int head_dim,
                                                 const float *cos, const float *sin)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, seq, (int64_t)heads * head_dim), angles = RELAY_F32(&c, seq, head_dim / 2);
    float *hx = relay_in(&c, x, bytes);
    const float *hc = relay_in(&c, cos, angles), *hs = relay_in(&c, sin, angles);
    if (c.st == CANVAS_OK) op_rope_half_rows(RELAY_CPU(&c), hx, seq, heads, head_dim, hc, hs);
    relay_out(&c, x, hx, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_swiglu_rows(void *ctx, float *gate, const float *up, int64_t n)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, n, 1);
    float *hg = relay_in(&c, gate, bytes);
    const float *hu = relay_in(&c, up, bytes);
    if (c.st == CANVAS_OK) op_swiglu_rows(RELAY_CPU(&c), hg, hu, n);
    relay_out(&c, gate, hg, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_gelu_erf_rows(void *ctx, float *x, int64_t n)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, n, 1);
    float *hx = relay_in(&c, x, bytes);
    if (c.st == CANVAS_OK) op_gelu_erf_rows(RELAY_CPU(&c), hx, n);
    relay_out(&c, x, hx, bytes);
    return relay_end(&c);
}

/* op_gather_rows (scatter 0) or op_scatter_rows (scatter 1); the index is on the device too. */
static inline canvas_status relay_permute_rows(void *ctx, const float *src, const int64_t *index, int64_t n,
                                               int64_t width, float *dst, int scatter)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, n, width);
    const float *hs = relay_in(&c, src, bytes);
    const int64_t *hi = relay_in(&c, index, relay_bytes(&c, n, 1, sizeof(int64_t)));
    float *hd = relay_host(&c, bytes);
    if (c.st == CANVAS_OK && scatter) op_scatter_rows(RELAY_CPU(&c), hs, hi, n, width, hd);
    else if (c.st == CANVAS_OK) op_gather_rows(RELAY_CPU(&c), hs, hi, n, width, hd);
    relay_out(&c, dst, hd, bytes);
    return relay_end(&c);
}

/* ---- the VAE's ops ---- */

/* op_conv2d: x [height, width, in], y [out_h, out_w, out] (read too when accumulating), the
 * weight [out, kernel^2 in], bias [out], the params' norm_gamma [in]. */
static inline canvas_status relay_conv2d(void *ctx, const conv2d_params *p, const float *x, const weight_view *weight,
                                         const float *bias, float *y)
{
    relay_call c = RELAY_CALL(ctx);
    conv2d_params hp = *p;
    weight_view hw = *weight;
    const size_t y_bytes = RELAY_F32(&c, (int64_t)conv2d_out_height(p) * conv2d_out_width(p), p->out_channels);
    const float *hx = relay_in(&c, x, RELAY_F32(&c, (int64_t)p->height * p->width, p->in_channels));
    hw.data = relay_in(&c, weight->data, relay_weight_bytes(&c, weight));
    const float *hb = relay_in(&c, bias, RELAY_F32(&c, p->out_channels, 1));
    hp.norm_gamma = relay_in(&c, p->norm_gamma, RELAY_F32(&c, p->in_channels, 1));
    float *hy = p->accumulate ? relay_in(&c, y, y_bytes) : relay_host(&c, y_bytes);
    if (c.st == CANVAS_OK) c.st = op_conv2d(RELAY_CPU(&c), &hp, hx, &hw, hb, hy);
    relay_out(&c, y, hy, y_bytes);
    return relay_end(&c);
}

static inline canvas_status relay_channel_rms_norm_rows(void *ctx, const float *x, int64_t pixels, int channels,
                                                        const float *gamma, float *y)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, pixels, channels);
    const float *hx = relay_in(&c, x, bytes), *hg = relay_in(&c, gamma, RELAY_F32(&c, channels, 1));
    float *hy = relay_host(&c, bytes);
    if (c.st == CANVAS_OK) op_channel_rms_norm_rows(RELAY_CPU(&c), hx, pixels, channels, hg, hy);
    relay_out(&c, y, hy, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_to_channels_last(void *ctx, const float *src, int64_t pixels, int channels,
                                                   float *dst)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, pixels, channels);
    const float *hs = relay_in(&c, src, bytes);
    float *hd = relay_host(&c, bytes);
    if (c.st == CANVAS_OK) op_to_channels_last(RELAY_CPU(&c), hs, pixels, channels, hd);
    relay_out(&c, dst, hd, bytes);
    return relay_end(&c);
}

static inline canvas_status relay_gather_rows(void *ctx, const float *src, const int64_t *index, int64_t n,
                                              int64_t width, float *dst)
{
    return relay_permute_rows(ctx, src, index, n, width, dst, 0);
}

static inline canvas_status relay_scatter_rows(void *ctx, const float *src, const int64_t *index, int64_t n,
                                               int64_t width, float *dst)
{
    return relay_permute_rows(ctx, src, index, n, width, dst, 1);
}

static inline canvas_status relay_linear_scratch(void *ctx, const float *x, int64_t m, const weight_view *w,
                                                 const float *bias, float *y)
{
    TRY(relay_scratch(ctx, m, w));
    return relay_linear(ctx, x, m, w, bias, y);
}

/* op_conv2d taking the CUDA backend's scratch for it (op_cuda_conv2d_scratch_bytes: its
 * band and its GEMM's), from the lent block when that holds it, as the CUDA backend does. */
static inline canvas_status relay_conv2d_scratch(void *ctx, const conv2d_params *p, const float *x,
                                                 const weight_view *weight, const float *bias, float *y)
{
    TRY(relay_take(ctx, op_cuda_conv2d_scratch_bytes(p, weight)));
    return relay_conv2d(ctx, p, x, weight, bias, y);
}

static inline canvas_status relay_to_channels_first(void *ctx, const float *src, int64_t pixels, int channels,
                                                    int clamp, float *dst)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t bytes = RELAY_F32(&c, pixels, channels);
    const float *hs = relay_in(&c, src, bytes);
    float *hd = relay_host(&c, bytes);
    if (c.st == CANVAS_OK) op_to_channels_first(RELAY_CPU(&c), hs, pixels, channels, clamp, hd);
    relay_out(&c, dst, hd, bytes);
    return relay_end(&c);
}

/* op_copy_window: whole planar images both ways (dst keeps what lies outside the window). */
static inline canvas_status relay_copy_window(void *ctx, const op_window *w, const float *src, float *dst)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t dst_bytes = RELAY_F32(&c, (int64_t)w->channels * w->dst_height, w->dst_width);
    const float *hs = relay_in(&c, src, RELAY_F32(&c, (int64_t)w->channels * w->src_height, w->src_width));
    float *hd = relay_in(&c, dst, dst_bytes);
    if (c.st == CANVAS_OK) op_copy_window(RELAY_CPU(&c), w, hs, hd);
    relay_out(&c, dst, hd, dst_bytes);
    return relay_end(&c);
}

static inline canvas_status relay_blend_seam(void *ctx, const float *a, int a_height, int a_width, float *b,
                                             int b_height, int b_width, int channels, int extent, int columns)
{
    relay_call c = RELAY_CALL(ctx);
    const size_t b_bytes = RELAY_F32(&c, (int64_t)channels * b_height, b_width);
    const float *ha = relay_in(&c, a, RELAY_F32(&c, (int64_t)channels * a_height, a_width));
    float *hb = relay_in(&c, b, b_bytes);
    if (c.st == CANVAS_OK)
        op_blend_seam(RELAY_CPU(&c), ha, a_height, a_width, hb, b_height, b_width, channels, extent, columns);
    relay_out(&c, b, hb, b_bytes);
    return relay_end(&c);
}

#define RELAY_TABLE(a_name, a_linear, a_scratch_bytes, a_lend, a_conv2d, a_conv2d_bytes)          \
    {                                                                                            \
        .name = (a_name), .linear = (a_linear), .attention = relay_attention,                     \
        .add_inplace = relay_add_inplace, .norm_modulate = relay_norm_modulate,                    \
        .gated_add = relay_gated_add, .gelu_tanh_rows = relay_gelu_tanh_rows,                      \
        .qk_norm_rope = relay_qk_norm_rope, .copy_columns = relay_copy_columns,                    \
        .rms_norm_rows = relay_rms_norm_rows, .silu_rows = relay_silu_rows,                        \
        .linear_scratch_bytes = (a_scratch_bytes), .lend_scratch = (a_lend),                       \
        .rope_half_rows = relay_rope_half_rows, .swiglu_rows = relay_swiglu_rows,                  \
        .gelu_erf_rows = relay_gelu_erf_rows, .gather_rows = relay_gather_rows,                    \
        .scatter_rows = relay_scatter_rows, .conv2d = (a_conv2d),                                \
        .conv2d_scratch_bytes = (a_conv2d_bytes),                                                \
        .channel_rms_norm_rows = relay_channel_rms_norm_rows,                                    \
        .to_channels_last = relay_to_channels_last, .to_channels_first = relay_to_channels_first, \
        .copy_window = relay_copy_window, .blend_seam = relay_blend_seam,                        \
    }

/* The relay's backend (a value: it must not outlive `relay`). */
static inline op_backend relay_backend_make(relay_backend *relay)
{
    static const op_backend_table relay_table = RELAY_TABLE("relay", relay_linear, NULL, NULL, relay_conv2d, NULL);
    return op_backend_table_make(&relay_table, relay);
}

/* The relay taking GEMM scratch on its device by the CUDA backend's rule (see the top). */
static inline op_backend relay_backend_make_scratch(relay_backend *relay)
{
    static const op_backend_table scratch_table =
        RELAY_TABLE("relay (CUDA scratch)", relay_linear_scratch, op_cuda_linear_scratch_bytes, relay_lend_scratch,
                    relay_conv2d_scratch, op_cuda_conv2d_scratch_bytes);
    return op_backend_table_make(&scratch_table, relay);
}

#endif
