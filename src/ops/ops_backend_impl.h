/* SPDX-License-Identifier: Apache-2.0 */
/* ops_backend_impl.h — what a backend other than the CPU is made of (docs/kernels.md, "The op
 * backend"): a table of kernels and its own state. Files that implement such a backend
 * (ops/cuda, a test's relay backend) and the owners of backends (ops_cpu.h, ops_cuda.h)
 * include it; model code never does: it receives an `op_backend *` and passes it on.
 *
 * An op_* entry point given a backend whose `table` is set calls the table's entry with the
 * table's `ctx` and the op's own arguments, and never runs a CPU kernel over the pointers:
 * they may be memory the CPU cannot address. A NULL entry (and every op that has no entry:
 * an op that no table lists) gives
 * CANVAS_ERR_UNSUPPORTED "op_<name> has no kernel on the <name> backend": returned by the ops
 * that return a status, recorded in `failed` by the void ones (op_backend_check). */
#ifndef CANVAS_OPS_BACKEND_IMPL_H
#define CANVAS_OPS_BACKEND_IMPL_H

#include <stdint.h>

#include "canvas.h"
#include "ops/ops.h"
#include "ops/ops_conv.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"
#include "ops/threadpool.h"

/* Each entry has the contract of the op it is named after (ops.h, ops_rows.h,
 * ops_layout.h, ops_conv.h), minus the backend, and returns a status even where the op returns nothing.
 * `attention` serves op_attention (kv_heads = heads, causal 0) and op_attention_grouped
 * (key_mask NULL). An entry returns when its outputs are written, as the CPU ops do. */
typedef struct op_backend_table {
    const char *name; /* "cuda", "relay": named in errors */
    canvas_status (*linear)(void *ctx, const float *x, int64_t m, const weight_view *w, const float *bias, float *y);
    canvas_status (*attention)(void *ctx, const float *q, const float *k, const float *v, int64_t seq, int heads,
                               int kv_heads, int head_dim, const uint8_t *key_mask, int causal, float *out);
    canvas_status (*add_inplace)(void *ctx, float *y, const float *x, int64_t n);
    canvas_status (*norm_modulate)(void *ctx, const float *x, int64_t rows, int64_t d, float eps,
                                   const float *const shift[2], const float *const scale[2], int64_t split, float *y);
    canvas_status (*gated_add)(void *ctx, float *y, const float *x, int64_t rows, int64_t d,
                               const float *const gate[2], int64_t split);
    canvas_status (*gelu_tanh_rows)(void *ctx, float *x, int64_t rows, int64_t width);
    canvas_status (*qk_norm_rope)(void *ctx, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p);
    canvas_status (*copy_columns)(void *ctx, const float *src, int64_t rows, int64_t src_cols, int64_t col0,
                                  int64_t cols, float *dst);
    canvas_status (*rms_norm_rows)(void *ctx, const float *x, int64_t rows, int64_t dim, float eps,
                                   const float *weight, float *y);
    canvas_status (*silu_rows)(void *ctx, float *x, int64_t n);

    /* The device memory one op_linear of x [m, w->in_features] by w needs besides its
     * operands (a GEMM library's workspace, x converted, a decoded weight tile), in bytes: a
     * pure function of the shapes and the weight's format, read without a device (the
     * planner's dry runs). NULL: none. */
    size_t (*linear_scratch_bytes)(int64_t m, const weight_view *w);
    /* Lends the backend `bytes` of its device at `at` for its ops' scratch until it is taken
     * back (at NULL, bytes 0): an op whose linear_scratch_bytes fit in it takes no memory of
     * its own. NULL: the backend needs none. */
    canvas_status (*lend_scratch)(void *ctx, void *at, size_t bytes);
    /* The device memory one op_conv2d of `p` with `w` needs besides its operands (an im2col
     * band, its GEMM's own linear scratch after it), as linear_scratch_bytes: a pure function,
     * served from the lent block when that is large enough. NULL: none. */
    size_t (*conv2d_scratch_bytes)(const conv2d_params *p, const weight_view *w);

    /* the text encoder's (op_gather_rows / op_scatter_rows: `index` is [n] int64 of the device) */
    canvas_status (*rope_half_rows)(void *ctx, float *x, int64_t seq, int heads, int head_dim, const float *cos,
                                    const float *sin);
    canvas_status (*swiglu_rows)(void *ctx, float *gate, const float *up, int64_t n);
    canvas_status (*gelu_erf_rows)(void *ctx, float *x, int64_t n);
    canvas_status (*gather_rows)(void *ctx, const float *src, const int64_t *index, int64_t n, int64_t width,
                                 float *dst);
    canvas_status (*scatter_rows)(void *ctx, const float *src, const int64_t *index, int64_t n, int64_t width,
                                  float *dst);

    /* the VAE's ops (ops_conv.h, ops_layout.h); conv2d's params struct is host memory, the
     * pointers in it (norm_gamma) and the op's own pointers are the backend's */
    canvas_status (*conv2d)(void *ctx, const conv2d_params *p, const float *x, const weight_view *weight,
                            const float *bias, float *y);
    canvas_status (*channel_rms_norm_rows)(void *ctx, const float *x, int64_t pixels, int channels,
                                           const float *gamma, float *y);
    canvas_status (*to_channels_last)(void *ctx, const float *src, int64_t pixels, int channels, float *dst);
    canvas_status (*to_channels_first)(void *ctx, const float *src, int64_t pixels, int channels, int clamp,
                                       float *dst);
    canvas_status (*copy_window)(void *ctx, const op_window *w, const float *src, float *dst);
    canvas_status (*blend_seam)(void *ctx, const float *a, int a_height, int a_width, float *b, int b_height,
                                int b_width, int channels, int extent, int columns);
} op_backend_table;

struct op_backend {
    thread_pool *pool;             /* the CPU backend's workers; NULL: the calling thread */
    const op_backend_table *table; /* NULL: the CPU backend */
    void *ctx;                     /* the table's own state (op_cuda *, the relay's) */
    canvas_status failed;          /* first failure of a void op on this backend (CANVAS_OK: none) */
};

/* A backend over `table` and its state (no pool: a table backend's ops split their own work). */
static inline op_backend op_backend_table_make(const op_backend_table *table, void *ctx)
{
    op_backend be = {.pool = NULL, .table = table, .ctx = ctx, .failed = CANVAS_OK};
    return be;
}

#endif
