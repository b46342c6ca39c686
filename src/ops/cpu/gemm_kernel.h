/* gemm_kernel.h — the register-blocked f32 microkernel and the 8x8 transpose used to pack
 * its operands (private to ops/cpu; shared by linear.c and attention.c).
 *
 * The microkernel computes a GEMM_MR x GEMM_NR (6 x 16) tile of C = A B over kc steps:
 *   a: packed A, kc groups of 6 floats   (a[k*6 + r]  = A[r][k])
 *   b: packed B, kc groups of 16 floats  (b[k*16 + c] = B[k][c]), or any rows of 16
 *      floats b + k*ldb (attention reads V in place this way)
 * Twelve ymm accumulators hold the tile; each k step is 2 loads of B, 6 broadcasts of A
 * and 12 FMAs, which keeps both FMA pipes of a Zen core busy. The sum over k runs in
 * increasing k within a call, so a result never depends on how the caller split M or N. */
#ifndef CANVAS_OPS_CPU_GEMM_KERNEL_H
#define CANVAS_OPS_CPU_GEMM_KERNEL_H

#include <immintrin.h>
#include <stdint.h>

#define GEMM_MR 6
#define GEMM_NR 16

/* The 6 x 16 accumulator tile. */
typedef struct gemm_tile {
    __m256 c[GEMM_MR][2];
} gemm_tile;

#define GEMM_KERNEL_STEP(a_ptr, rs, b_lo, b_hi)                                   \
    do {                                                                          \
        __m256 a_;                                                                \
        a_ = _mm256_broadcast_ss((a_ptr) + 0 * (rs));                             \
        c00 = _mm256_fmadd_ps(a_, b_lo, c00); c01 = _mm256_fmadd_ps(a_, b_hi, c01); \
        a_ = _mm256_broadcast_ss((a_ptr) + 1 * (rs));                             \
        c10 = _mm256_fmadd_ps(a_, b_lo, c10); c11 = _mm256_fmadd_ps(a_, b_hi, c11); \
        a_ = _mm256_broadcast_ss((a_ptr) + 2 * (rs));                             \
        c20 = _mm256_fmadd_ps(a_, b_lo, c20); c21 = _mm256_fmadd_ps(a_, b_hi, c21); \
        a_ = _mm256_broadcast_ss((a_ptr) + 3 * (rs));                             \
        c30 = _mm256_fmadd_ps(a_, b_lo, c30); c31 = _mm256_fmadd_ps(a_, b_hi, c31); \
        a_ = _mm256_broadcast_ss((a_ptr) + 4 * (rs));                             \
        c40 = _mm256_fmadd_ps(a_, b_lo, c40); c41 = _mm256_fmadd_ps(a_, b_hi, c41); \
        a_ = _mm256_broadcast_ss((a_ptr) + 5 * (rs));                             \
        c50 = _mm256_fmadd_ps(a_, b_lo, c50); c51 = _mm256_fmadd_ps(a_, b_hi, c51); \
    } while (0)

/* tile = sum over k < kc of A[., k] (x) B[k, .], where A[r][k] = a[r*rs + k*ks] and
 * B[k][c] = b[k*ldb + c]. Packed A is rs = 1, ks = 6; a row-major A is rs = lda, ks = 1.
 * This is the hot loop of every GEMM and of attention. */
static inline void gemm_kernel_6x16_general(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b,
                                            int64_t ldb, gemm_tile *tile)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        GEMM_KERNEL_STEP(a, rs, b0, b1);
        b0 = _mm256_loadu_ps(b + ldb), b1 = _mm256_loadu_ps(b + ldb + 8);
        GEMM_KERNEL_STEP(a + ks, rs, b0, b1);
        b0 = _mm256_loadu_ps(b + 2 * ldb), b1 = _mm256_loadu_ps(b + 2 * ldb + 8);
        GEMM_KERNEL_STEP(a + 2 * ks, rs, b0, b1);
        b0 = _mm256_loadu_ps(b + 3 * ldb), b1 = _mm256_loadu_ps(b + 3 * ldb + 8);
        GEMM_KERNEL_STEP(a + 3 * ks, rs, b0, b1);
        a += 4 * ks;
        b += 4 * ldb;
    }
    for (; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        GEMM_KERNEL_STEP(a, rs, b0, b1);
        a += ks;
        b += ldb;
    }
    tile->c[0][0] = c00, tile->c[0][1] = c01, tile->c[1][0] = c10, tile->c[1][1] = c11;
    tile->c[2][0] = c20, tile->c[2][1] = c21, tile->c[3][0] = c30, tile->c[3][1] = c31;
    tile->c[4][0] = c40, tile->c[4][1] = c41, tile->c[5][0] = c50, tile->c[5][1] = c51;
}

/* A packed in 6-row strips (a[k*6 + r]). */
static inline void gemm_kernel_6x16(int64_t kc, const float *a, const float *b, int64_t ldb, gemm_tile *tile)
{
    gemm_kernel_6x16_general(kc, a, 1, GEMM_MR, b, ldb, tile);
}

/* A row-major with row stride lda (a[r*lda + k]). */
static inline void gemm_kernel_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                         gemm_tile *tile)
{
    gemm_kernel_6x16_general(kc, a, lda, 1, b, ldb, tile);
}

/* Transpose the 8x8 block held in r[0..7] (rows) in place (columns become rows). */
static inline void gemm_transpose8x8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Pack rows [0, rows) (rows <= 6) of the row-major f32 matrix src (row stride ld), columns
 * [0, kc), into a[k*6 + r]; missing rows are zero. a needs 6*kc + 2 floats (the vector
 * path writes 2 floats past the last group, later overwritten or unused). */
static inline void gemm_pack_a6(const float *src, int64_t ld, int rows, int64_t kc, float *a)
{
    int64_t k = 0;
    if (rows == GEMM_MR) {
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(src + i * ld + k);
            r[6] = r[7] = _mm256_setzero_ps();
            gemm_transpose8x8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(a + (k + j) * 6, r[j]);
        }
    }
    for (; k < kc; k++)
        for (int i = 0; i < GEMM_MR; i++) a[k * 6 + i] = i < rows ? src[i * ld + k] : 0.0f;
}

#endif
