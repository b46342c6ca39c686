/* SPDX-License-Identifier: Apache-2.0 */
/* gemv.h — y = x W^T + bias for one or two rows of x (the modulation GEMVs), reading the
 * weight once (private to ops/cpu). One loop serves every weight format: the caller
 * passes how to read weights as f32 (constant function pointers, inlined into the loop),
 * so plain and quantised weights reduce in the same order and a quantised weight gives
 * bit for bit what its dequantised f32 matrix gives.
 *
 * Reduction order: per output, 8-lane FMA accumulators over k in steps of 8, a fixed
 * horizontal sum, the scalar tail in increasing k, then the bias. Four weight rows at a
 * time: four streams in flight hide more memory latency than one, and each weight vector
 * serves both rows of x. */
#ifndef CANVAS_OPS_CPU_GEMV_H
#define CANVAS_OPS_CPU_GEMV_H

#include <stdint.h>

#include "ops/cpu/cpu_variant.h"
#include "ops/cpu/simd.h"
#include "ops/threadpool.h"

#define GEMV_MAX_ROWS 2
/* the loops over x's rows, unrolled so that the accumulators can live in registers */
#define GEMV_UNROLL _Pragma("GCC unroll 8")

/* How to read W as f32, from `src`: row(n) once per weight row (what all its reads share,
 * e.g. an fp8 row scale: kept out of the k loop), then W[n][k .. k+8) given that value,
 * and single weights W[n][k] for the tail. */
typedef struct gemv_reader {
    __m256 (*row)(const void *src, int64_t n);
    __m256 (*load8)(const void *src, int64_t n, int64_t k, __m256 row);
    float (*load1)(const void *src, int64_t n, int64_t k);
    const void *src;
} gemv_reader;

/* What one call computes: y[r][n] for r < m (<= GEMV_MAX_ROWS), n < n_out. */
typedef struct gemv_call {
    const float *x; /* [m, k] */
    int64_t m, k, n_out;
    const float *bias; /* [n_out] or NULL */
    float *y;          /* [m, n_out] */
} gemv_call;

/* gemv_rows for exactly m rows of x: with m a constant the accumulators stay in
 * registers (with m read at run time gcc kept them on the stack, and the decoding
 * formats, fp8 at the least, became bound by store-to-load latency instead of memory). */
static inline __attribute__((always_inline)) void gemv_rows_m(const gemv_call *c, gemv_reader rd, const int m,
                                                              int64_t n_begin, int64_t n_end)
{
    const int64_t k = c->k;
    int64_t n = n_begin;
    for (; n + 4 <= n_end; n += 4) {
        __m256 acc[GEMV_MAX_ROWS][4];
        GEMV_UNROLL for (int r = 0; r < GEMV_MAX_ROWS; r++)
            GEMV_UNROLL for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();
        __m256 row[4];
        GEMV_UNROLL for (int j = 0; j < 4; j++) row[j] = rd.row(rd.src, n + j);
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256 w0 = rd.load8(rd.src, n, t, row[0]), w1 = rd.load8(rd.src, n + 1, t, row[1]);
            __m256 w2 = rd.load8(rd.src, n + 2, t, row[2]), w3 = rd.load8(rd.src, n + 3, t, row[3]);
            GEMV_UNROLL for (int r = 0; r < m; r++) {
                __m256 xv = _mm256_loadu_ps(c->x + r * k + t);
                acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
                acc[r][2] = _mm256_fmadd_ps(xv, w2, acc[r][2]);
                acc[r][3] = _mm256_fmadd_ps(xv, w3, acc[r][3]);
            }
        }
        for (int r = 0; r < m; r++)
            for (int j = 0; j < 4; j++) {
                float sum = simd_hsum(acc[r][j]);
                for (int64_t u = t; u < k; u++) sum += c->x[r * k + u] * rd.load1(rd.src, n + j, u);
                c->y[r * c->n_out + n + j] = c->bias ? sum + c->bias[n + j] : sum;
            }
    }
    for (; n < n_end; n++) {
        __m256 acc[GEMV_MAX_ROWS];
        GEMV_UNROLL for (int r = 0; r < GEMV_MAX_ROWS; r++) acc[r] = _mm256_setzero_ps();
        __m256 row = rd.row(rd.src, n);
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256 w0 = rd.load8(rd.src, n, t, row);
            GEMV_UNROLL for (int r = 0; r < m; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(c->x + r * k + t), w0, acc[r]);
        }
        for (int r = 0; r < m; r++) {
            float sum = simd_hsum(acc[r]);
            for (int64_t u = t; u < k; u++) sum += c->x[r * k + u] * rd.load1(rd.src, n, u);
            c->y[r * c->n_out + n] = c->bias ? sum + c->bias[n] : sum;
        }
    }
}

/* Outputs [n_begin, n_end) of the call, reading W through rd. */
static inline __attribute__((always_inline)) void gemv_rows(const gemv_call *c, gemv_reader rd, int64_t n_begin,
                                                            int64_t n_end)
{
    if (c->m == 1) gemv_rows_m(c, rd, 1, n_begin, n_end);
    else gemv_rows_m(c, rd, 2, n_begin, n_end);
}

/* Runs rows(ctx, n0, n1) over [0, n_out) in items of 32 outputs, claimed by the pool's
 * threads; rows is expected to call gemv_rows with its format's reader. */
void gemv_run(thread_pool *pool, int64_t n_out, void (*rows)(const void *ctx, int64_t n0, int64_t n1),
              const void *ctx);

#endif
