/* SPDX-License-Identifier: Apache-2.0 */
/* ops_rows.h — the fused row kernels between a transformer's GEMMs (CPU implementations in
 * src/ops/cpu/rows.c).
 *
 * Each is one O(rows x d) pass over a token-major [rows, d] matrix, split by rows over the
 * backend's workers. A row is computed the same way whatever the split, so results do not depend on
 * the thread count.
 *
 * Several take two sets of per-row vectors and a `split`: rows [0, split) use set [0],
 * rows [split, rows) set [1]. The DiT uses that for its two streams (text rows, then image
 * rows, with their own q/k norms) and for zero_cond_t (the target rows modulated with
 * timestep t, the reference rows with t = 0). Passing the same vector twice makes it one
 * set for every row. */
#ifndef CANVAS_OPS_ROWS_H
#define CANVAS_OPS_ROWS_H

#include <stdint.h>

#include "ops/ops.h"

/* y = LayerNorm(x) * (1 + scale) + shift, LayerNorm without affine (biased variance, eps).
 * x, y: [rows, d] (y must not alias x); shift[i], scale[i]: [d]. */
void op_norm_modulate(op_backend *be, const float *x, int64_t rows, int64_t d, float eps,
                      const float *const shift[2], const float *const scale[2], int64_t split, float *y);

/* y += gate * x, elementwise per row with gate[0] or gate[1] ([d] each): a gated residual.
 * x, y: [rows, d]. */
void op_gated_add(op_backend *be, float *y, const float *x, int64_t rows, int64_t d, const float *const gate[2],
                  int64_t split);

/* op_gelu_tanh over [rows, width], in place, split by rows over the backend's workers. */
void op_gelu_tanh_rows(op_backend *be, float *x, int64_t rows, int64_t width);

/* op_rms_norm over [rows, dim] (weight [dim] or NULL; y may alias x), split by rows over the
 * backend's workers: op_rms_norm's result bit for bit. */
void op_rms_norm_rows(op_backend *be, const float *x, int64_t rows, int64_t dim, float eps, const float *weight,
                      float *y);

/* op_silu over x[n], in place, split over the backend's workers: op_silu's result bit for bit. */
void op_silu_rows(op_backend *be, float *x, int64_t n);

/* Attention's query/key preparation, in place: per-head RMSNorm of every q and k row
 * (eps, weights [head_dim]: norm_q[0] / norm_k[0] below split, [1] from split on), then
 * interleaved RoPE (op_rope_interleaved) on both. q, k: [rows, heads * head_dim];
 * cos, sin: [rows, head_dim / 2]. */
typedef struct op_qk_norm_rope_params {
    int heads, head_dim;
    float eps;
    int64_t split;
    const float *norm_q[2], *norm_k[2];
    const float *cos, *sin;
} op_qk_norm_rope_params;

void op_qk_norm_rope(op_backend *be, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p);

/* The text encoder's (Qwen2.5-VL) elementwise ops with a backend. On the CPU backend each is
 * its single-thread kernel of ops.h on the calling thread, that kernel's result bit for bit;
 * a table backend runs its own entry.
 * op_rope_half over x [seq, heads * head_dim] in place (cos, sin [seq, head_dim / 2]). */
void op_rope_half_rows(op_backend *be, float *x, int64_t seq, int heads, int head_dim, const float *cos,
                       const float *sin);
/* op_swiglu over n elements: gate = silu(gate) * up, in place in gate. */
void op_swiglu_rows(op_backend *be, float *gate, const float *up, int64_t n);
/* op_gelu_erf over n elements, in place. */
void op_gelu_erf_rows(op_backend *be, float *x, int64_t n);

#endif
