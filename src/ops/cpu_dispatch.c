/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_dispatch.c — the op_* entry points: a call given a backend with a table (ops_backend_impl.h:
 * CUDA, a test's relay) goes to that table, any other to the variant of ops/cpu picked once,
 * at the first call (cpu_table.h).
 *
 * The avx512 variant runs when the CPU has AVX-512 F, DQ, BW and VL (and AVX2, FMA, F16C)
 * and the OS saves the zmm registers; else the fast variant (AVX2, FMA, F16C) when the CPU
 * has those and the OS saves the ymm registers; otherwise, on other architectures, the
 * portable variant. CANVAS_CPU=avx2 or CANVAS_CPU=portable in the environment caps the
 * choice (a variant the CPU lacks is never taken). So one binary runs on any x86-64 and
 * still takes the fastest kernels it can (docs/kernels.md). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "ops/cpu/cpu_table.h"
#include "ops/ops.h"
#include "ops/ops_backend_impl.h"

#ifdef CANVAS_CPU_HAVE_FAST
#include <cpuid.h>

enum { CPU_PORTABLE, CPU_AVX2, CPU_AVX512 };

/* The best variant this CPU and OS run: AVX2, FMA and F16C with the ymm state enabled by
 * the OS (XCR0 bits 1, 2); AVX-512 F/DQ/BW/VL on top with the opmask and zmm state too
 * (XCR0 bits 5, 6, 7). */
static int cpu_best_kernels(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CPU_PORTABLE;
    if (!(c & bit_AVX) || !(c & bit_FMA) || !(c & bit_F16C) || !(c & bit_OSXSAVE)) return CPU_PORTABLE;
    unsigned xcr0, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    if ((xcr0 & 6u) != 6u || __get_cpuid_max(0, NULL) < 7) return CPU_PORTABLE;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & bit_AVX2)) return CPU_PORTABLE;
    const unsigned avx512 = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    if ((b & avx512) == avx512 && (xcr0 & 0xE0u) == 0xE0u) return CPU_AVX512;
    return CPU_AVX2;
}
#endif

static const ops_cpu_table *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    chosen = &ops_cpu_portable;
#ifdef CANVAS_CPU_HAVE_FAST
    const char *forced = getenv("CANVAS_CPU");
    int best = cpu_best_kernels();
    if (forced && !strcmp(forced, "portable")) best = CPU_PORTABLE;
    if (forced && !strcmp(forced, "avx2") && best > CPU_AVX2) best = CPU_AVX2;
    if (best == CPU_AVX512) chosen = &ops_cpu_avx512;
    else if (best == CPU_AVX2) chosen = &ops_cpu_fast;
#endif
}

static const ops_cpu_table *kernels(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *ops_cpu_kernels(void) { return kernels()->name; }

/* The ops that take a backend keep their names for the functions at the end of this file,
 * which send a table backend's call to its table and any other to the CPU entry point
 * generated here under a cpu_ name: one predictable branch per call on the CPU path. */
#define op_linear cpu_op_linear
#define op_attention cpu_op_attention
#define op_attention_grouped cpu_op_attention_grouped
#define op_conv2d cpu_op_conv2d
#define op_add_inplace cpu_op_add_inplace
#define op_norm_modulate cpu_op_norm_modulate
#define op_gated_add cpu_op_gated_add
#define op_gelu_tanh_rows cpu_op_gelu_tanh_rows
#define op_qk_norm_rope cpu_op_qk_norm_rope
#define op_rms_norm_rows cpu_op_rms_norm_rows
#define op_silu_rows cpu_op_silu_rows
#define op_copy_columns cpu_op_copy_columns
#define op_gather_rows cpu_op_gather_rows
#define op_scatter_rows cpu_op_scatter_rows
#define op_to_channels_last cpu_op_to_channels_last
#define op_to_channels_first cpu_op_to_channels_first
#define op_copy_window cpu_op_copy_window
#define op_blend_seam cpu_op_blend_seam

#define FORWARD(ret, name, params, args) \
    ret name params { return kernels()->f_##name args; }
#define FORWARD_VOID(name, params, args) \
    void name params { kernels()->f_##name args; }
OPS_CPU_FUNCTIONS(FORWARD, FORWARD_VOID)

#undef op_linear
#undef op_attention
#undef op_attention_grouped
#undef op_conv2d
#undef op_add_inplace
#undef op_norm_modulate
#undef op_gated_add
#undef op_gelu_tanh_rows
#undef op_qk_norm_rope
#undef op_rms_norm_rows
#undef op_silu_rows
#undef op_copy_columns
#undef op_gather_rows
#undef op_scatter_rows
#undef op_to_channels_last
#undef op_to_channels_first
#undef op_copy_window
#undef op_blend_seam

/* ---- table backends ---- */

static canvas_status no_kernel(const op_backend *be, const char *op)
{
    return status_fail(CANVAS_ERR_UNSUPPORTED, "%s has no kernel on the %s backend", op, be->table->name);
}

/* A void op's outcome: the first failure stays (with its reason as the error text) until
 * op_backend_check. */
static void note(op_backend *be, canvas_status st)
{
    if (st != CANVAS_OK && be->failed == CANVAS_OK) be->failed = st;
}

static void note_no_kernel(op_backend *be, const char *op)
{
    if (be->failed == CANVAS_OK) be->failed = no_kernel(be, op);
}

canvas_status op_backend_check(op_backend *be)
{
    if (!be) return CANVAS_OK;
    canvas_status st = be->failed;
    be->failed = CANVAS_OK;
    return st;
}

int op_backend_on_host(const op_backend *be) { return !be || !be->table; }

size_t op_backend_linear_scratch_bytes(const op_backend *be, int64_t m, const weight_view *w)
{
    return be && be->table && be->table->linear_scratch_bytes ? be->table->linear_scratch_bytes(m, w) : 0;
}

size_t op_backend_conv2d_scratch_bytes(const op_backend *be, const conv2d_params *p, const weight_view *w)
{
    return be && be->table && be->table->conv2d_scratch_bytes ? be->table->conv2d_scratch_bytes(p, w) : 0;
}

canvas_status op_backend_lend_scratch(op_backend *be, void *at, size_t bytes)
{
    return be && be->table && be->table->lend_scratch ? be->table->lend_scratch(be->ctx, at, bytes) : CANVAS_OK;
}

/* The table's entry for the op this is written in (__func__ names it), with the table's ctx. */
#define TABLE_STATUS(entry, ...) (be->table->entry ? be->table->entry(be->ctx, __VA_ARGS__) : no_kernel(be, __func__))
#define TABLE_VOID(entry, ...)                                                    \
    do {                                                                          \
        if (be->table->entry) note(be, be->table->entry(be->ctx, __VA_ARGS__)); \
        else note_no_kernel(be, __func__);                                        \
    } while (0)

canvas_status op_linear(op_backend *be, const float *x, int64_t m, const weight_view *w, const float *bias, float *y)
{
    if (be && be->table) return TABLE_STATUS(linear, x, m, w, bias, y);
    return cpu_op_linear(be, x, m, w, bias, y);
}

canvas_status op_attention(op_backend *be, const float *q, const float *k, const float *v, int64_t seq, int heads,
                           int head_dim, const uint8_t *key_mask, float *out)
{
    if (be && be->table) return TABLE_STATUS(attention, q, k, v, seq, heads, heads, head_dim, key_mask, 0, out);
    return cpu_op_attention(be, q, k, v, seq, heads, head_dim, key_mask, out);
}

canvas_status op_attention_grouped(op_backend *be, const float *q, const float *k, const float *v, int64_t seq,
                                   int heads, int kv_heads, int head_dim, int causal, float *out)
{
    if (be && be->table) return TABLE_STATUS(attention, q, k, v, seq, heads, kv_heads, head_dim, NULL, causal, out);
    return cpu_op_attention_grouped(be, q, k, v, seq, heads, kv_heads, head_dim, causal, out);
}

void op_add_inplace(op_backend *be, float *y, const float *x, int64_t n)
{
    if (be && be->table) TABLE_VOID(add_inplace, y, x, n);
    else cpu_op_add_inplace(be, y, x, n);
}

void op_norm_modulate(op_backend *be, const float *x, int64_t rows, int64_t d, float eps, const float *const shift[2],
                      const float *const scale[2], int64_t split, float *y)
{
    if (be && be->table) TABLE_VOID(norm_modulate, x, rows, d, eps, shift, scale, split, y);
    else cpu_op_norm_modulate(be, x, rows, d, eps, shift, scale, split, y);
}

void op_gated_add(op_backend *be, float *y, const float *x, int64_t rows, int64_t d, const float *const gate[2],
                  int64_t split)
{
    if (be && be->table) TABLE_VOID(gated_add, y, x, rows, d, gate, split);
    else cpu_op_gated_add(be, y, x, rows, d, gate, split);
}

void op_gelu_tanh_rows(op_backend *be, float *x, int64_t rows, int64_t width)
{
    if (be && be->table) TABLE_VOID(gelu_tanh_rows, x, rows, width);
    else cpu_op_gelu_tanh_rows(be, x, rows, width);
}

void op_qk_norm_rope(op_backend *be, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p)
{
    if (be && be->table) TABLE_VOID(qk_norm_rope, q, k, rows, p);
    else cpu_op_qk_norm_rope(be, q, k, rows, p);
}

void op_rms_norm_rows(op_backend *be, const float *x, int64_t rows, int64_t dim, float eps, const float *weight,
                      float *y)
{
    if (be && be->table) TABLE_VOID(rms_norm_rows, x, rows, dim, eps, weight, y);
    else cpu_op_rms_norm_rows(be, x, rows, dim, eps, weight, y);
}

void op_silu_rows(op_backend *be, float *x, int64_t n)
{
    if (be && be->table) TABLE_VOID(silu_rows, x, n);
    else cpu_op_silu_rows(be, x, n);
}

void op_copy_columns(op_backend *be, const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                     float *dst)
{
    if (be && be->table) TABLE_VOID(copy_columns, src, rows, src_cols, col0, cols, dst);
    else cpu_op_copy_columns(be, src, rows, src_cols, col0, cols, dst);
}

void op_gather_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst)
{
    if (be && be->table) TABLE_VOID(gather_rows, src, index, n, width, dst);
    else cpu_op_gather_rows(be, src, index, n, width, dst);
}

void op_scatter_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst)
{
    if (be && be->table) TABLE_VOID(scatter_rows, src, index, n, width, dst);
    else cpu_op_scatter_rows(be, src, index, n, width, dst);
}

/* The text encoder's elementwise ops: on the CPU backend the single-thread kernels it always
 * ran (the same bits, the same host work). */

void op_rope_half_rows(op_backend *be, float *x, int64_t seq, int heads, int head_dim, const float *cos,
                       const float *sin)
{
    if (be && be->table) TABLE_VOID(rope_half_rows, x, seq, heads, head_dim, cos, sin);
    else op_rope_half(x, seq, heads, head_dim, cos, sin);
}

void op_swiglu_rows(op_backend *be, float *gate, const float *up, int64_t n)
{
    if (be && be->table) TABLE_VOID(swiglu_rows, gate, up, n);
    else op_swiglu(gate, up, n);
}

void op_gelu_erf_rows(op_backend *be, float *x, int64_t n)
{
    if (be && be->table) TABLE_VOID(gelu_erf_rows, x, n);
    else op_gelu_erf(x, n);
}

/* The VAE's ops (ops_conv.h, ops_layout.h). */

canvas_status op_conv2d(op_backend *be, const conv2d_params *p, const float *x, const weight_view *weight,
                        const float *bias, float *y)
{
    if (be && be->table) return TABLE_STATUS(conv2d, p, x, weight, bias, y);
    return cpu_op_conv2d(be, p, x, weight, bias, y);
}

void op_channel_rms_norm_rows(op_backend *be, const float *x, int64_t pixels, int channels, const float *gamma,
                              float *y)
{
    if (be && be->table) TABLE_VOID(channel_rms_norm_rows, x, pixels, channels, gamma, y);
    else kernels()->f_op_channel_rms_norm(x, pixels, channels, gamma, y);
}

void op_to_channels_last(op_backend *be, const float *src, int64_t pixels, int channels, float *dst)
{
    if (be && be->table) TABLE_VOID(to_channels_last, src, pixels, channels, dst);
    else cpu_op_to_channels_last(be, src, pixels, channels, dst);
}

void op_to_channels_first(op_backend *be, const float *src, int64_t pixels, int channels, int clamp, float *dst)
{
    if (be && be->table) TABLE_VOID(to_channels_first, src, pixels, channels, clamp, dst);
    else cpu_op_to_channels_first(be, src, pixels, channels, clamp, dst);
}

void op_copy_window(op_backend *be, const op_window *w, const float *src, float *dst)
{
    if (be && be->table) TABLE_VOID(copy_window, w, src, dst);
    else cpu_op_copy_window(be, w, src, dst);
}

void op_blend_seam(op_backend *be, const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                   int channels, int extent, int columns)
{
    if (be && be->table) TABLE_VOID(blend_seam, a, a_height, a_width, b, b_height, b_width, channels, extent, columns);
    else cpu_op_blend_seam(be, a, a_height, a_width, b, b_height, b_width, channels, extent, columns);
}
