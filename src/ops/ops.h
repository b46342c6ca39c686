/* ops.h — the kernels the models call (CPU implementations in src/ops/cpu/).
 *
 * Activations are f32, row-major, token-major: a [tokens, features] matrix. Weights stay
 * in their stored format (F32, F16, BF16; quantised formats later) in PyTorch Linear
 * layout [out_features, in_features] and are converted panel by panel inside the GEMM,
 * never as a full-size f32 copy. All accumulation is f32. */
#ifndef CANVAS_OPS_H
#define CANVAS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "ops/threadpool.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

/* A weight matrix as stored: [out_features, in_features], row-major. With `quant` set,
 * `data` is a quantised blob in the layout quant describes (tensor/quant.h: fp8, nf4,
 * q8_0; `type` is then DTYPE_U8) and the GEMM decodes it panel by panel. NULL: plain
 * F32/F16/BF16 elements. */
typedef struct weight_view {
    dtype type;
    const void *data;
    int64_t out_features;
    int64_t in_features;
    const quant_params *quant;
} weight_view;

/* y[m, n] = sum_k x[m, k] * W[n, k] + bias[n]   (bias f32 or NULL; y must not alias x).
 * Fails only when scratch memory cannot be had (CANVAS_ERR_OUT_OF_MEMORY) or the
 * weight type has no kernel (CANVAS_ERR_UNSUPPORTED). */
canvas_status op_linear(thread_pool *pool, const float *x, int64_t m, const weight_view *w, const float *bias,
                        float *y);

/* Bytes of MEM_SCRATCH op_linear takes while it runs, for m rows of x and a weight
 * [n, k] of any format, with a pool of `threads` (thread_pool_size): the packed x it
 * shares (<= 8 MiB, but always at least one k block of it: about M x 384 floats, 12.6 MiB
 * at M = 8192) and each task's packed weight strips. Zero for m <= 2 (the GEMV
 * path). Exact: the call and this query share the blocking code. */
size_t op_linear_workspace_bytes(int64_t m, int64_t n, int64_t k, int threads);

/* Softmax attention over one joint sequence, never materialising seq x seq scores
 * (online softmax over key tiles; memory O(seq)).
 * q, k, v, out: [seq, heads * head_dim] row-major (head h at columns h*head_dim...).
 * key_mask: NULL, or [seq] bytes where 0 excludes that key. Scale 1/sqrt(head_dim).
 * A query whose keys are all masked gets zeros. */
canvas_status op_attention(thread_pool *pool, const float *q, const float *k, const float *v, int64_t seq,
                           int heads, int head_dim, const uint8_t *key_mask, float *out);

/* Bytes op_attention takes from the host pool while it runs with a pool of `threads`
 * (thread_pool_size): per-worker tiles (MEM_ACTIVATIONS: the head's keys and values,
 * query/score/output tiles; O(seq x head_dim) per worker) plus one per-key row
 * (MEM_SCRATCH). `tiles_only` 1: the MEM_ACTIVATIONS part alone. Exact. */
size_t op_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only);

/* LayerNorm over the last dim (biased variance), optional affine (weight/bias may be NULL). */
void op_layer_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, const float *bias,
                   float *y);
/* RMSNorm over the last dim: y = x / sqrt(mean(x^2) + eps) * weight (weight may be NULL). */
void op_rms_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y);

/* In place, elementwise. */
void op_gelu_tanh(float *x, int64_t n);
void op_silu(float *x, int64_t n);

/* Rotary embedding on interleaved pairs (x[2i], x[2i+1]) of every head:
 * x: [seq, heads * head_dim]; cos, sin: [seq, head_dim / 2]. In place. */
void op_rope_interleaved(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin);

#endif
