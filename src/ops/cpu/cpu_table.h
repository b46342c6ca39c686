/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_table.h — the functions ops/cpu exports, as one table per variant of the kernels
 * (cpu_variant.h): ops_cpu_fast (AVX2/FMA/F16C, x86-64 only), ops_cpu_avx512 (the same
 * plus AVX-512 F/DQ/BW/VL, x86-64 only) and ops_cpu_portable.
 * ops/cpu_dispatch.c defines the plain names over the table it picks.
 *
 * OPS_CPU_FUNCTIONS lists them: F(return type, name, (parameters), (arguments)) for those
 * that return a value, V(name, (parameters), (arguments)) for the void ones. The table's
 * fields are f_NAME; each variant fills them in this order (cpu_table.c), so the compiler
 * checks every function's type against the field it lands in. gemv_run (gemv.h) is the one
 * function left out: it is renamed per variant too, but only that variant's kernels call it. */
#ifndef CANVAS_OPS_CPU_TABLE_H
#define CANVAS_OPS_CPU_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "ops/cpu/quant_pack.h"
#include "ops/ops.h"
#include "ops/ops_conv.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"
#include "ops/threadpool.h"

#define OPS_CPU_FUNCTIONS(F, V)                                                                                      \
    F(canvas_status, op_linear, (op_backend * be, const float *x, int64_t m, const weight_view *w,                   \
      const float *bias, float *y), (be, x, m, w, bias, y))                                                          \
    F(size_t, op_linear_workspace_bytes, (int64_t m, int64_t n, int64_t k, int threads), (m, n, k, threads))         \
    F(canvas_status, op_attention, (op_backend * be, const float *q, const float *k, const float *v, int64_t seq,    \
      int heads, int head_dim, const uint8_t *key_mask, float *out), (be, q, k, v, seq, heads, head_dim, key_mask,   \
      out))                                                                                                          \
    F(canvas_status, op_attention_grouped, (op_backend * be, const float *q, const float *k, const float *v,         \
      int64_t seq, int heads, int kv_heads, int head_dim, int causal, float *out), (be, q, k, v, seq, heads,         \
      kv_heads, head_dim, causal, out))                                                                              \
    F(size_t, op_attention_workspace_bytes, (int64_t seq, int heads, int head_dim, int threads, int tiles_only),     \
      (seq, heads, head_dim, threads, tiles_only))                                                                   \
    V(op_layer_norm, (const float *x, int64_t rows, int64_t dim, float eps, const float *weight, const float *bias,  \
      float *y), (x, rows, dim, eps, weight, bias, y))                                                               \
    V(op_rms_norm, (const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y), (x, rows,  \
      dim, eps, weight, y))                                                                                          \
    V(op_gelu_tanh, (float *x, int64_t n), (x, n))                                                                   \
    V(op_silu, (float *x, int64_t n), (x, n))                                                                        \
    V(op_gelu_erf, (float *x, int64_t n), (x, n))                                                                    \
    V(op_swiglu, (float *gate, const float *up, int64_t n), (gate, up, n))                                           \
    V(op_add, (float *y, const float *x, int64_t n), (y, x, n))                                                      \
    V(op_rope_interleaved, (float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin), (x, \
      seq, heads, head_dim, cos, sin))                                                                               \
    V(op_rope_half, (float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin), (x, seq,   \
      heads, head_dim, cos, sin))                                                                                    \
    F(int, op_backend_workers, (const op_backend *be), (be))                                                         \
    F(int, conv2d_out_height, (const conv2d_params *p), (p))                                                         \
    F(int, conv2d_out_width, (const conv2d_params *p), (p))                                                          \
    F(canvas_status, op_conv2d, (op_backend * be, const conv2d_params *p, const float *x, const weight_view *weight, \
      const float *bias, float *y), (be, p, x, weight, bias, y))                                                     \
    F(size_t, op_conv2d_work_bytes, (const conv2d_params *p, int threads), (p, threads))                             \
    V(conv_pack_taps, (const void *src, size_t element_size, int out, int in, int kt, int kh, int kw, int t_index,   \
      void *dst), (src, element_size, out, in, kt, kh, kw, t_index, dst))                                            \
    V(op_channel_rms_norm, (const float *x, int64_t pixels, int channels, const float *gamma, float *y), (x, pixels, \
      channels, gamma, y))                                                                                           \
    V(op_channel_rms_norm_silu_pixel, (const float *x, int channels, const float *gamma, float *y), (x, channels,    \
      gamma, y))                                                                                                     \
    V(op_add_inplace, (op_backend * be, float *y, const float *x, int64_t n), (be, y, x, n))                         \
    V(op_norm_modulate, (op_backend * be, const float *x, int64_t rows, int64_t d, float eps,                        \
      const float *const shift[2], const float *const scale[2], int64_t split, float *y), (be, x, rows, d, eps,      \
      shift, scale, split, y))                                                                                       \
    V(op_gated_add, (op_backend * be, float *y, const float *x, int64_t rows, int64_t d, const float *const gate[2], \
      int64_t split), (be, y, x, rows, d, gate, split))                                                              \
    V(op_gelu_tanh_rows, (op_backend * be, float *x, int64_t rows, int64_t width), (be, x, rows, width))             \
    V(op_qk_norm_rope, (op_backend * be, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p), (be, q, \
      k, rows, p))                                                                                                   \
    V(op_rms_norm_rows, (op_backend * be, const float *x, int64_t rows, int64_t dim, float eps,                      \
      const float *weight, float *y), (be, x, rows, dim, eps, weight, y))                                            \
    V(op_silu_rows, (op_backend * be, float *x, int64_t n), (be, x, n))                                              \
    V(op_copy_columns, (op_backend * be, const float *src, int64_t rows, int64_t src_cols, int64_t col0,             \
      int64_t cols, float *dst), (be, src, rows, src_cols, col0, cols, dst))                                         \
    V(op_gather_rows, (op_backend * be, const float *src, const int64_t *index, int64_t n, int64_t width,            \
      float *dst), (be, src, index, n, width, dst))                                                                  \
    V(op_scatter_rows, (op_backend * be, const float *src, const int64_t *index, int64_t n, int64_t width,           \
      float *dst), (be, src, index, n, width, dst))                                                                  \
    V(op_to_channels_last, (op_backend * be, const float *src, int64_t pixels, int channels, float *dst), (be, src,  \
      pixels, channels, dst))                                                                                        \
    V(op_to_channels_first, (op_backend * be, const float *src, int64_t pixels, int channels, int clamp,             \
      float *dst), (be, src, pixels, channels, clamp, dst))                                                          \
    V(op_copy_window, (op_backend * be, const op_window *w, const float *src, float *dst), (be, w, src, dst))        \
    V(op_blend_seam, (op_backend * be, const float *a, int a_height, int a_width, float *b, int b_height,            \
      int b_width, int channels, int extent, int columns), (be, a, a_height, a_width, b, b_height, b_width,          \
      channels, extent, columns))                                                                                    \
    F(canvas_status, quant_view_check, (const weight_view *w), (w))                                                  \
    V(quant_pack_panel, (const weight_view *w, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float *panel), (w,  \
      n0, cols, k0, kc, panel))                                                                                      \
    V(quant_gemv, (thread_pool * pool, const float *x, int64_t m, const weight_view *w, const float *bias,           \
      float *y), (pool, x, m, w, bias, y))

#define OPS_CPU_FIELD(ret, name, params, args) ret(*f_##name) params;
#define OPS_CPU_VOID_FIELD(name, params, args) void(*f_##name) params;

typedef struct ops_cpu_table {
    const char *name; /* "avx512", "avx2" or "portable" */
    OPS_CPU_FUNCTIONS(OPS_CPU_FIELD, OPS_CPU_VOID_FIELD)
} ops_cpu_table;

extern const ops_cpu_table ops_cpu_fast;
extern const ops_cpu_table ops_cpu_avx512;
extern const ops_cpu_table ops_cpu_portable;

#endif
