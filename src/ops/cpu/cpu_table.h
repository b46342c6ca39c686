/* cpu_table.h — the functions ops/cpu exports, as one table per variant of the kernels
 * (cpu_variant.h): ops_cpu_fast (AVX2/FMA/F16C, x86-64 only) and ops_cpu_portable.
 * ops/cpu_dispatch.c defines the plain names over the table it picks.
 *
 * OPS_CPU_FUNCTIONS lists them: F(return type, name, (parameters), (arguments)) for those
 * that return a value, V(name, (parameters), (arguments)) for the void ones. The table's
 * fields are f_NAME; each variant fills them in this order (cpu_table.c), so the compiler
 * checks every function's type against the field it lands in. */
#ifndef CANVAS_OPS_CPU_TABLE_H
#define CANVAS_OPS_CPU_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "ops/cpu/quant_pack.h"
#include "ops/ops.h"
#include "ops/ops_conv.h"
#include "ops/threadpool.h"

#define OPS_CPU_FUNCTIONS(F, V)                                                                                    \
    F(canvas_status, op_linear, (thread_pool * pool, const float *x, int64_t m, const weight_view *w,            \
                                 const float *bias, float *y), (pool, x, m, w, bias, y))                         \
    F(size_t, op_linear_workspace_bytes, (int64_t m, int64_t n, int64_t k, int threads), (m, n, k, threads))     \
    F(canvas_status, op_attention, (thread_pool * pool, const float *q, const float *k, const float *v,          \
                                    int64_t seq, int heads, int head_dim, const uint8_t *key_mask, float *out),  \
      (pool, q, k, v, seq, heads, head_dim, key_mask, out))                                                      \
    F(size_t, op_attention_workspace_bytes, (int64_t seq, int heads, int head_dim, int threads, int tiles_only), \
      (seq, heads, head_dim, threads, tiles_only))                                                               \
    V(op_layer_norm, (const float *x, int64_t rows, int64_t dim, float eps, const float *weight,                 \
                      const float *bias, float *y), (x, rows, dim, eps, weight, bias, y))                        \
    V(op_rms_norm, (const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y),        \
      (x, rows, dim, eps, weight, y))                                                                            \
    V(op_gelu_tanh, (float *x, int64_t n), (x, n))                                                               \
    V(op_silu, (float *x, int64_t n), (x, n))                                                                    \
    V(op_rope_interleaved, (float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin), \
      (x, seq, heads, head_dim, cos, sin))                                                                       \
    F(int, conv2d_out_height, (const conv2d_params *p), (p))                                                     \
    F(int, conv2d_out_width, (const conv2d_params *p), (p))                                                      \
    F(canvas_status, op_conv2d, (thread_pool * pool, const conv2d_params *p, const float *x,                     \
                                 const weight_view *weight, const float *bias, float *y),                        \
      (pool, p, x, weight, bias, y))                                                                             \
    F(size_t, op_conv2d_work_bytes, (const conv2d_params *p), (p))                                               \
    V(conv_pack_taps, (const void *src, size_t element_size, int out, int in, int kt, int kh, int kw,            \
                       int t_index, void *dst), (src, element_size, out, in, kt, kh, kw, t_index, dst))          \
    V(op_channel_rms_norm, (const float *x, int64_t pixels, int channels, const float *gamma, float *y),         \
      (x, pixels, channels, gamma, y))                                                                           \
    V(op_channel_rms_norm_silu_pixel, (const float *x, int channels, const float *gamma, float *y),              \
      (x, channels, gamma, y))                                                                                   \
    V(op_add_inplace, (thread_pool * pool, float *y, const float *x, int64_t n), (pool, y, x, n))                \
    F(canvas_status, quant_view_check, (const weight_view *w), (w))                                              \
    V(quant_pack_panel, (const weight_view *w, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float *panel),  \
      (w, n0, cols, k0, kc, panel))                                                                              \
    V(quant_gemv, (thread_pool * pool, const float *x, int64_t m, const weight_view *w, const float *bias,       \
                   float *y), (pool, x, m, w, bias, y))

#define OPS_CPU_FIELD(ret, name, params, args) ret(*f_##name) params;
#define OPS_CPU_VOID_FIELD(name, params, args) void(*f_##name) params;

typedef struct ops_cpu_table {
    const char *name; /* "avx2" or "portable" */
    OPS_CPU_FUNCTIONS(OPS_CPU_FIELD, OPS_CPU_VOID_FIELD)
} ops_cpu_table;

extern const ops_cpu_table ops_cpu_fast;
extern const ops_cpu_table ops_cpu_portable;

#endif
