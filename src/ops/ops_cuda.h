/* SPDX-License-Identifier: Apache-2.0 */
/* ops_cuda.h — the CUDA op backend (src/ops/cuda, built with -DCANVAS_CUDA=ON; docs/cuda.md):
 * what the owner of a CUDA device includes to hand the ops an op_backend (ops.h). Model code
 * never includes it, as it never includes ops_cpu.h.
 *
 *     op_cuda *cuda;  TRY(op_cuda_create(device, &cuda));    (device: mem_device_create_cuda)
 *     op_backend be = op_backend_cuda(cuda);
 *     op_linear(&be, x, m, &w, bias, y);                      (x, w, bias, y: blocks of device)
 *     TRY(op_backend_check(&be));                             (the void ops' first failure)
 *
 * The backend is a table (ops/ops_backend_impl.h, named "cuda") whose entries are the ops the
 * transformer needs: op_linear, op_attention / op_attention_grouped, op_add_inplace,
 * op_norm_modulate, op_gated_add, op_gelu_tanh_rows, op_qk_norm_rope, op_copy_columns,
 * op_rms_norm_rows, op_silu_rows. Given such a backend, every pointer they take is device
 * memory (blocks of `device`, or weights copied there). Each op queues its work on the
 * backend's compute stream and synchronises that stream before returning, as the CPU ops
 * return with their work done: no device buffer is still being read when the caller frees or
 * refills it (docs/cuda.md, "buffer reuse"). Every other op refuses a CUDA backend with
 * CANVAS_ERR_UNSUPPORTED (returned, or recorded for op_backend_check).
 *
 * op_linear computes in bf16 on tensor cores with f32 accumulation: x is rounded to bf16,
 * weights in any format are decoded to bf16 (in place when they are bf16), the output is f32. */
#ifndef CANVAS_OPS_CUDA_H
#define CANVAS_OPS_CUDA_H

#include "mem/mem_device.h"
#include "ops/ops.h"
#include "ops/ops_backend_impl.h"

typedef struct op_cuda op_cuda; /* the backend's state: stream, cuBLASLt handle, scratch */

/* A stream and a cuBLASLt handle; no device memory until an op needs scratch that was not lent
 * (then one MEM_SCRATCH block of the device, grown on demand and kept).
 * CANVAS_ERR_UNSUPPORTED when `device` is not a CUDA device. */
canvas_status op_cuda_create(mem_device *device, op_cuda **out);
void op_cuda_destroy(op_cuda *cuda);

/* The backend over `cuda` (a value: no allocation; it must not outlive `cuda`). */
op_backend op_backend_cuda(op_cuda *cuda);

/* ---- compiled in every build (ops/cuda_sizes.c): what the backend needs of the device ---- */

#define CUDA_TILE_BYTES ((size_t)64 << 20)   /* decoded weight rows per GEMM */
#define CUDA_LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt's workspace (what it asks for on Hopper) */

/* The rows of a [n, k] weight decoded to bf16 per GEMM: at most CUDA_TILE_BYTES of them, a
 * multiple of 16 (64-byte aligned output columns) unless one row is all that fits, at most n. */
int64_t op_cuda_tile_rows(int64_t n, int64_t k);

/* The backend's linear_scratch_bytes (ops_backend_impl.h): cuBLASLt's workspace + x in bf16
 * (256-byte aligned) + for weights not stored as bf16 a tile of decoded rows. The backend
 * takes that block from memory lent to it (op_backend_lend_scratch: the transformer's forward
 * lends the largest its GEMMs need), else grows its own scratch to it. */
size_t op_cuda_linear_scratch_bytes(int64_t m, const weight_view *w);

/* op_conv2d on the CUDA backend runs per band of output rows: the band's im2col matrix in
 * f32 (at most CUDA_CONV_BAND_FLOATS unless one row needs more), a temporary of the band's
 * output when accumulating, the input's per-pixel norms when the conv norms its input, then
 * the band's GEMM (op_linear's scratch, op_cuda_linear_scratch_bytes of the band's pixels),
 * every piece 256-byte aligned, one after the other in one block. */
#define CUDA_CONV_BAND_FLOATS ((size_t)16 << 20)

typedef struct op_cuda_conv_layout {
    int64_t band_rows;        /* output rows per band (the last band may have fewer) */
    size_t col_bytes, tmp_bytes, norm_bytes; /* offsets: 0, col_bytes, col_bytes + tmp_bytes */
    size_t own_bytes;         /* their sum: where the GEMM's scratch starts */
    size_t gemm_bytes;        /* op_cuda_linear_scratch_bytes(band_rows x out_width, w) */
} op_cuda_conv_layout;

/* The layout of one op_conv2d of `p` with `w` ([out, kernel² x in]); 0 when the geometry
 * gives no output or an operand too large for size_t (then the sizes are SIZE_MAX). */
int op_cuda_conv2d_layout(const conv2d_params *p, const weight_view *w, op_cuda_conv_layout *out);

/* The backend's conv2d_scratch_bytes (ops_backend_impl.h): own_bytes + gemm_bytes of the
 * layout above (0 for no output, SIZE_MAX when too large). The backend takes that block from
 * memory lent to it when it is large enough (the VAE lends the largest its pass needs), else
 * from blocks of its own, grown on demand. */
size_t op_cuda_conv2d_scratch_bytes(const conv2d_params *p, const weight_view *w);

/* A backend with no kernels that sizes like the CUDA one (linear_scratch_bytes,
 * conv2d_scratch_bytes; 1 worker):
 * what a planner dry-runs the transformer with to plan for a GPU it does not have. */
op_backend op_backend_cuda_sizes(void);

#endif
