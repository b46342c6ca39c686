/* SPDX-License-Identifier: Apache-2.0 */
/* quant_pack.h — the quantised-weight side of op_linear (private to ops/cpu): panel
 * decoders for the blocked GEMM's packing step and the 1-2 row GEMV.
 *
 * A weight_view with `quant` set holds one blob (tensor/quant.h) at `data`. Decoding is
 * exact (f32 code value x f32 scale, as quant_dequantize_row), so op_linear with a
 * quantised weight gives bit for bit what it gives with the dequantised f32 matrix. */
#ifndef CANVAS_OPS_CPU_QUANT_PACK_H
#define CANVAS_OPS_CPU_QUANT_PACK_H

#include <stdint.h>

#include "canvas.h"
#include "ops/ops.h"
#include "ops/threadpool.h"

/* CANVAS_ERR_UNSUPPORTED / _INTERNAL when w->quant does not describe a matrix of w's shape
 * in a format with a kernel. */
canvas_status quant_view_check(const weight_view *w);

/* The packing step of the GEMM for a quantised weight: W[n0 .. n0+cols) x [k0 .. k0+kc)
 * into 16-column strips, panel[s*kc*16 + kk*16 + c] = W[n0 + 16s + c][k0 + kk], zero
 * past the last column (linear.c's pack_weight_strip calls it a strip at a time). */
void quant_pack_panel(const weight_view *w, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float *panel);

/* y[m, n] = x W^T + bias for m <= 2 rows, streaming the quantised weight once: the GEMV
 * loop of gemv.h with this format's readers, so the reduction order is the plain one. */
void quant_gemv(thread_pool *pool, const float *x, int64_t m, const weight_view *w, const float *bias, float *y);

#endif
