/* SPDX-License-Identifier: Apache-2.0 */
/* ops_cuda.h — the CUDA op backend (src/ops/cuda, built with -DCANVAS_CUDA=ON; docs/cuda.md):
 * what the owner of a CUDA device includes to hand the ops an op_backend (ops.h). Model code
 * never includes it, as it never includes ops_cpu.h.
 *
 *     op_cuda *cuda;  TRY(op_cuda_create(device, &cuda));    (device: mem_device_create_cuda)
 *     op_backend be = op_backend_cuda(cuda);
 *     op_linear(&be, x, m, &w, bias, y);                      (x, w, bias, y: blocks of device)
 *     TRY(op_cuda_status(cuda));                              (the void ops' first failure)
 *
 * The ops that have a CUDA kernel (op_cuda_* below) go to it when given such a backend: every
 * pointer they take is then device memory (blocks of `device`, or weights copied there). Each
 * op queues its work on the backend's stream and synchronises it before returning, as the CPU
 * ops return with their work done: no device buffer is still being read when the caller
 * frees or refills it (docs/cuda.md, "buffer reuse"). Ops without a CUDA kernel must not be
 * given a CUDA backend: the model code does not compute on CUDA yet (docs/cuda.md). */
#ifndef CANVAS_OPS_CUDA_H
#define CANVAS_OPS_CUDA_H

#include "mem/mem_device.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"

/* A stream, a cuBLASLt handle and scratch (MEM_SCRATCH blocks of the device, grown on
 * demand). CANVAS_ERR_UNSUPPORTED when `device` is not a CUDA device. */
canvas_status op_cuda_create(mem_device *device, op_cuda **out);
void op_cuda_destroy(op_cuda *cuda);

static inline op_backend op_backend_cuda(op_cuda *cuda)
{
    op_backend be = {.pool = NULL, .cuda = cuda};
    return be;
}

/* The first failure of an op that returns nothing (a launch or a synchronisation that
 * failed), with its reason; CANVAS_OK when none. It stays until op_cuda_clear_status. */
canvas_status op_cuda_status(const op_cuda *cuda);
void op_cuda_clear_status(op_cuda *cuda);

/* The CUDA twins of the ops (same contracts as ops.h / ops_rows.h / ops_layout.h /
 * ops_conv.h), called by the op_* entry points for a CUDA backend. op_linear computes in
 * bf16 on tensor cores with f32 accumulation: x is rounded to bf16, weights in any format are
 * decoded to bf16 (in place when they are bf16), the output is f32. */
canvas_status op_cuda_linear(op_cuda *cuda, const float *x, int64_t m, const weight_view *w, const float *bias,
                             float *y);
canvas_status op_cuda_attention(op_cuda *cuda, const float *q, const float *k, const float *v, int64_t seq, int heads,
                                int kv_heads, int head_dim, const uint8_t *key_mask, int causal, float *out);
void op_cuda_add_inplace(op_cuda *cuda, float *y, const float *x, int64_t n);
void op_cuda_norm_modulate(op_cuda *cuda, const float *x, int64_t rows, int64_t d, float eps,
                           const float *const shift[2], const float *const scale[2], int64_t split, float *y);
void op_cuda_gated_add(op_cuda *cuda, float *y, const float *x, int64_t rows, int64_t d, const float *const gate[2],
                       int64_t split);
void op_cuda_gelu_tanh_rows(op_cuda *cuda, float *x, int64_t rows, int64_t width);
void op_cuda_qk_norm_rope(op_cuda *cuda, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p);
void op_cuda_copy_columns(op_cuda *cuda, const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                          float *dst);

#endif
