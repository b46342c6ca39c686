/* SPDX-License-Identifier: Apache-2.0 */
/* cuda_kernels.h — the hand-written CUDA kernels (cuda_kernels.cu), as C functions that queue
 * one kernel on `stream` and return the launch's error (cudaSuccess when queued; a fault
 * inside the kernel shows at the next synchronisation). Pointers are device memory, except
 * where a parameter says host. Layouts and formulas are those of the CPU twins named on each
 * line (ops.h, ops_rows.h, tensor/quant.h); tests/cuda/test_cuda_ops.c compares them. */
#ifndef CANVAS_OPS_CUDA_KERNELS_H
#define CANVAS_OPS_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The formats cuda_dequant_bf16 decodes (weight_view's type and quant_params' format). */
enum {
    CUDA_W_F32, CUDA_W_F16, CUDA_W_FP8_E4M3, CUDA_W_FP8_E5M2, CUDA_W_NF4, CUDA_W_Q8_0
};

/* x[n] f32 -> bf16 (uint16_t bits), round to nearest even. */
cudaError_t cuda_f32_to_bf16(const float *x, uint16_t *out, int64_t n, cudaStream_t stream);

/* Rows [row0, row0 + rows) of a weight [*, k] in `format` (data: the elements, or the whole
 * quantised blob with its scales at scales_offset; fp8 per tensor: tensor_scale, per row:
 * per_row 1) decoded to bf16 out[rows, k], as tensor/quant.h decodes them (value x scale in
 * f32), then rounded to nearest even. nf4_values: host, the 16 NF4 values (quant_nf4_values). */
cudaError_t cuda_dequant_bf16(int format, const void *data, int64_t row0, int64_t rows, int64_t k,
                              uint64_t scales_offset, int per_row, float tensor_scale, const float *nf4_values,
                              uint16_t *out, cudaStream_t stream);

/* y[m, n] += bias[n] */
cudaError_t cuda_bias_add(float *y, const float *bias, int64_t m, int64_t n, cudaStream_t stream);
/* y[i] += x[i] (op_add_inplace) */
cudaError_t cuda_add(float *y, const float *x, int64_t n, cudaStream_t stream);
/* op_gelu_tanh over n elements, in place */
cudaError_t cuda_gelu_tanh(float *x, int64_t n, cudaStream_t stream);
/* op_norm_modulate: shift0/scale0 for rows < split, shift1/scale1 after */
cudaError_t cuda_norm_modulate(const float *x, int64_t rows, int64_t d, float eps, const float *shift0,
                               const float *scale0, const float *shift1, const float *scale1, int64_t split,
                               float *y, cudaStream_t stream);
/* op_silu over n elements, in place (op_silu_rows) */
cudaError_t cuda_silu(float *x, int64_t n, cudaStream_t stream);
/* op_rms_norm over [rows, dim] (op_rms_norm_rows): weight [dim] or NULL; y may be x */
cudaError_t cuda_rms_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y,
                          cudaStream_t stream);
/* op_gated_add: y[r] += gate * x[r], gate0 for rows < split, gate1 after */
cudaError_t cuda_gated_add(float *y, const float *x, int64_t rows, int64_t d, const float *gate0,
                           const float *gate1, int64_t split, cudaStream_t stream);
/* op_qk_norm_rope on one matrix x [rows, heads * head_dim]: per-head RMSNorm (w0 for rows <
 * split, w1 after; NULL: no weight), then interleaved RoPE with cos, sin [rows, head_dim / 2]. */
cudaError_t cuda_rms_norm_rope(float *x, int64_t rows, int heads, int head_dim, float eps, const float *w0,
                               const float *w1, int64_t split, const float *cos, const float *sin,
                               cudaStream_t stream);
/* op_copy_columns: dst[r, c] = src[r, col0 + c] for c < cols */
cudaError_t cuda_copy_columns(const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                              float *dst, cudaStream_t stream);
/* The text encoder's: op_rope_half on x [seq, heads * head_dim] in place (cos, sin [seq,
 * head_dim / 2]); op_swiglu (gate = silu(gate) * up); op_gelu_erf in place; the row
 * permutations of [n, width] with index [n] on the device: gather dst[k] = src[index[k]],
 * scatter dst[index[k]] = src[k]. */
cudaError_t cuda_rope_half(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin,
                           cudaStream_t stream);
cudaError_t cuda_swiglu(float *gate, const float *up, int64_t n, cudaStream_t stream);
cudaError_t cuda_gelu_erf(float *x, int64_t n, cudaStream_t stream);
cudaError_t cuda_permute_rows(const float *src, const int64_t *index, int64_t n, int64_t width, int scatter,
                              float *dst, cudaStream_t stream);
/* op_attention / op_attention_grouped: q, out [seq, heads * head_dim], k, v [seq, kv_heads *
 * head_dim]; key_mask NULL or [seq] bytes (0: excluded); causal 1: query i sees keys 0..i.
 * head_dim <= 512. Online softmax over the keys, one warp per query and head: O(seq) memory. */
cudaError_t cuda_attention(const float *q, const float *k, const float *v, int64_t seq, int heads, int kv_heads,
                           int head_dim, const uint8_t *key_mask, int causal, float *out, cudaStream_t stream);

/* ---- the VAE's ops (ops_conv.h, ops_layout.h) ---- */

/* A convolution's shape (conv2d_params without its pointers, and its output width). */
typedef struct cuda_conv_geometry {
    int height, width, in_channels, kernel, stride, pad_top, pad_left, upsample, out_width;
} cuda_conv_geometry;

/* norms[p] = max(||x[p, :]||_2, 1e-12) over the channels of each pixel of x [pixels, channels]. */
cudaError_t cuda_channel_norms(const float *x, int64_t pixels, int channels, float *norms, cudaStream_t stream);
/* op_channel_rms_norm given norms (cuda_channel_norms); y may be x */
cudaError_t cuda_channel_rms_norm(const float *x, int64_t pixels, int channels, const float *norms,
                                  const float *gamma, float *y, cudaStream_t stream);
/* Rows [row0, row0 + rows) of op_conv2d's im2col matrix (one per output pixel, kernel^2
 * in_channels columns in (ky, kx, c) order) in f32: x [height, width, in] after the nearest 2x
 * upsample (g->upsample) and zero padding; norms (per input pixel, cuda_channel_norms) and
 * gamma [in] set: norm + SiLU on every input value (op_channel_rms_norm_silu_pixel). g is host. */
cudaError_t cuda_conv_im2col(const float *x, const cuda_conv_geometry *g, const float *norms, const float *gamma,
                             int64_t row0, int64_t rows, float *col, cudaStream_t stream);
/* op_to_channels_last, op_to_channels_first */
cudaError_t cuda_to_channels_last(const float *src, int64_t pixels, int channels, float *dst, cudaStream_t stream);
cudaError_t cuda_to_channels_first(const float *src, int64_t pixels, int channels, int clamp, float *dst,
                                   cudaStream_t stream);
/* op_copy_window (op_window's fields; w is host) */
typedef struct cuda_window {
    int channels, height, width;
    int src_height, src_width, src_y, src_x;
    int dst_height, dst_width, dst_y, dst_x;
    int clamp;
} cuda_window;
cudaError_t cuda_copy_window(const cuda_window *w, const float *src, float *dst, cudaStream_t stream);
/* op_blend_seam, in place in b */
cudaError_t cuda_blend_seam(const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                            int channels, int extent, int columns, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
