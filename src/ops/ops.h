/* SPDX-License-Identifier: Apache-2.0 */
/* ops.h — the kernels the models call (CPU implementations in src/ops/cpu/), and the
 * backend they run on. Families with their own headers: ops_rows.h (the fused row
 * kernels between a transformer's GEMMs), ops_conv.h (the VAE's convolutions),
 * ops_layout.h (layout copies).
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

/* The backend an op runs on: where its work is done (the CPU backend: the calling thread
 * and a thread pool, ops/ops_cpu.h; any other is a table of kernels, ops/ops_backend_impl.h:
 * the CUDA backend's stream, ops/ops_cuda.h, or a test's). Opaque here:
 * model code receives an `op_backend *` from its caller and passes it to every op that
 * takes one, never reaching for threads itself. NULL is accepted and means the CPU on the
 * calling thread alone. Every op that takes a backend returns with its work done and its
 * output written (the CPU ops are synchronous). */
typedef struct op_backend op_backend;

/* How many workers the backend's ops split their work over (the CPU backend: the pool's
 * thread count, 1 for NULL): the `threads` of the workspace queries below. */
int op_backend_workers(const op_backend *be);

/* 1 for the CPU backend (and NULL): its kernels read and write their pointers from host
 * code, so they compute only on host-addressable memory (mem_device_is_addressable); 0 for
 * a backend with its own kernels (a table: CUDA, a test's relay). */
int op_backend_on_host(const op_backend *be);

/* The first failure of an op that returns nothing (op_add_inplace, the ops of ops_rows.h and
 * ops_layout.h, ...) on `be` since the last check, and clears it: a backend other than the
 * CPU may fail where the CPU cannot (a kernel launch, an op it has no kernel for:
 * CANVAS_ERR_UNSUPPORTED). Its reason was the thread's error text when it was recorded.
 * The CPU backend and NULL always give CANVAS_OK. Check after a run of void ops, before
 * their outputs are used. */
canvas_status op_backend_check(op_backend *be);

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

/* The device memory `be` needs for one op_linear of x [m, w->in_features] by w besides its
 * operands: 0 on the CPU backend (its packing scratch is host memory:
 * op_linear_workspace_bytes) and on a table without a linear_scratch_bytes entry. A pure
 * function of the shapes and w's format (w->data is not read): a caller sizes one block for
 * a run of ops from the largest and lends it with op_backend_lend_scratch, so the backend
 * takes no device memory of its own mid-run and a dry run can count that block. */
size_t op_backend_linear_scratch_bytes(const op_backend *be, int64_t m, const weight_view *w);

/* Lends `be` a block of `bytes` of its device at `at` for its ops' scratch, until taken back
 * with (NULL, 0) before the block is freed. Nothing (CANVAS_OK) on a backend that needs none. */
canvas_status op_backend_lend_scratch(op_backend *be, void *at, size_t bytes);

/* y[m, n] = sum_k x[m, k] * W[n, k] + bias[n]   (bias f32 or NULL; y must not alias x).
 * Fails only when scratch memory cannot be had (CANVAS_ERR_OUT_OF_MEMORY) or the
 * weight type has no kernel (CANVAS_ERR_UNSUPPORTED). */
canvas_status op_linear(op_backend *be, const float *x, int64_t m, const weight_view *w, const float *bias, float *y);

/* Bytes of MEM_SCRATCH op_linear takes while it runs, for m rows of x and a weight
 * [n, k] of any format, with `threads` workers (op_backend_workers): the packed x it
 * shares (<= 8 MiB, but always at least one k block of it: about M x 384 floats, 12.6 MiB
 * at M = 8192) and each task's packed weight strips. Zero for m <= 2 (the GEMV
 * path). Exact: the call and this query share the blocking code. */
size_t op_linear_workspace_bytes(int64_t m, int64_t n, int64_t k, int threads);

/* Softmax attention over one joint sequence, never materialising seq x seq scores
 * (online softmax over key tiles; memory O(seq)).
 * q, k, v, out: [seq, heads * head_dim] row-major (head h at columns h*head_dim...).
 * key_mask: NULL, or [seq] bytes where 0 excludes that key. Scale 1/sqrt(head_dim).
 * A query whose keys are all masked gets zeros. */
canvas_status op_attention(op_backend *be, const float *q, const float *k, const float *v, int64_t seq,
                           int heads, int head_dim, const uint8_t *key_mask, float *out);

/* op_attention with grouped keys and values and an optional causal mask (no key mask).
 * q, out: [seq, heads * head_dim]; k, v: [seq, kv_heads * head_dim]; query head h reads
 * key/value head h / (heads / kv_heads). causal 1: query i sees keys 0..i only. With
 * kv_heads = heads and causal 0 it computes what op_attention does, bit for bit; its
 * workspace is op_attention_workspace_bytes(seq, heads, head_dim, ...).
 * CANVAS_ERR_INTERNAL when kv_heads does not divide heads. */
canvas_status op_attention_grouped(op_backend *be, const float *q, const float *k, const float *v, int64_t seq,
                                   int heads, int kv_heads, int head_dim, int causal, float *out);

/* Bytes op_attention takes from the host pool while it runs with `threads` workers
 * (op_backend_workers): per-worker tiles (MEM_ACTIVATIONS: the head's keys and values,
 * query/score/output tiles; O(seq x head_dim) per worker) plus one per-key row
 * (MEM_SCRATCH). `tiles_only` 1: the MEM_ACTIVATIONS part alone. Exact. */
size_t op_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only);

/* The single-thread kernels below take no backend: they run on the calling thread over
 * host memory. Model code reaches them through the fused ops of ops_rows.h, or calls them
 * on small host buffers (time embeddings, one layer's norms); the ops/cpu kernels use them
 * as building blocks. */

/* LayerNorm over the last dim (biased variance), optional affine (weight/bias may be NULL). */
void op_layer_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, const float *bias,
                   float *y);
/* RMSNorm over the last dim: y = x / sqrt(mean(x^2) + eps) * weight (weight may be NULL). */
void op_rms_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y);

/* In place, elementwise. */
void op_gelu_tanh(float *x, int64_t n);
void op_silu(float *x, int64_t n);
void op_gelu_erf(float *x, int64_t n);   /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
/* gate[i] = silu(gate[i]) * up[i] (the SwiGLU MLP's hidden) */
void op_swiglu(float *gate, const float *up, int64_t n);
/* y[i] += x[i] (residual connections) */
void op_add(float *y, const float *x, int64_t n);

/* Rotary embedding on interleaved pairs (x[2i], x[2i+1]) of every head:
 * x: [seq, heads * head_dim]; cos, sin: [seq, head_dim / 2]. In place. */
void op_rope_interleaved(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin);
/* The same on half-split pairs (x[i], x[i + head_dim/2]) of every head, the rotate_half
 * convention (Qwen2 / Qwen2.5-VL): x_i' = x_i c_i - x_{i+h} s_i, x_{i+h}' = x_{i+h} c_i + x_i s_i. */
void op_rope_half(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin);

/* Which build of the CPU kernels runs: "avx512" (AVX-512 F/DQ/BW/VL on top of the AVX2
 * set, chosen when the CPU has them), "avx2" (AVX2 + FMA + F16C, or forced with
 * CANVAS_CPU=avx2) or "portable" (plain C; any CPU, or forced with CANVAS_CPU=portable).
 * Same algorithm, same order of operations: the same bits under gcc (docs/kernels.md). */
const char *ops_cpu_kernels(void);

#endif
