/* SPDX-License-Identifier: Apache-2.0 */
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

#include <stdint.h>

#include "ops/cpu/cpu_variant.h"

#define GEMM_MR 6
#define GEMM_NR 16

/* The 6 x 16 accumulator tile. */
typedef struct gemm_tile {
    __m256 c[GEMM_MR][2];
} gemm_tile;

#ifdef CANVAS_CPU_PORTABLE

/* The portable twins of the four asm kernels below: the same fused multiply-adds in the
 * same order (k increasing, each accumulator once per step from zero), then the same one
 * addition of the bias or of C, so the tiles agree with the asm bit for bit.
 * A[r][k] = a[k * a_k + r * a_r]; B[k][c] = b[k * ldb + c]. */
static inline void gemm_tile_portable(int64_t kc, const float *a, int64_t a_k, int64_t a_r, const float *b,
                                      int64_t ldb, float acc[GEMM_MR][GEMM_NR])
{
    for (int r = 0; r < GEMM_MR; r++)
        for (int c = 0; c < GEMM_NR; c++) acc[r][c] = 0.0f;
    for (int64_t k = 0; k < kc; k++)
        for (int r = 0; r < GEMM_MR; r++) {
            const float av = a[k * a_k + r * a_r];
            for (int c = 0; c < GEMM_NR; c++) acc[r][c] = fmaf(av, b[k * ldb + c], acc[r][c]);
        }
}

/* C[r][c] = acc + (first ? add[c] : C[r][c]), C's rows ldc floats apart. */
static inline void gemm_tile_store_portable(float acc[GEMM_MR][GEMM_NR], float *c, int64_t ldc, int first,
                                            const float *add)
{
    for (int r = 0; r < GEMM_MR; r++)
        for (int j = 0; j < GEMM_NR; j++) c[r * ldc + j] = acc[r][j] + (first ? add[j] : c[r * ldc + j]);
}

static inline void gemm_tile_save_portable(float acc[GEMM_MR][GEMM_NR], gemm_tile *tile)
{
    for (int r = 0; r < GEMM_MR; r++) {
        memcpy(tile->c[r][0].f, acc[r], sizeof tile->c[r][0].f);
        memcpy(tile->c[r][1].f, acc[r] + 8, sizeof tile->c[r][1].f);
    }
}

static inline void gemm_kernel_6x16(int64_t kc, const float *a, const float *b, int64_t ldb, gemm_tile *tile)
{
    float acc[GEMM_MR][GEMM_NR];
    gemm_tile_portable(kc, a, GEMM_MR, 1, b, ldb, acc);
    gemm_tile_save_portable(acc, tile);
}

static inline void gemm_kernel_6x16_store(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                          int first, const float *add)
{
    float acc[GEMM_MR][GEMM_NR];
    gemm_tile_portable(kc, a, GEMM_MR, 1, b, GEMM_NR, acc);
    gemm_tile_store_portable(acc, c, ldc, first, add);
}

static inline void gemm_kernel_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                         gemm_tile *tile)
{
    float acc[GEMM_MR][GEMM_NR];
    gemm_tile_portable(kc, a, 1, lda, b, ldb, acc);
    gemm_tile_save_portable(acc, tile);
}

static inline void gemm_kernel_6x16_rows_store(int64_t kc, const float *a, int64_t lda, const float *b, float *c,
                                               int64_t ldc)
{
    float acc[GEMM_MR][GEMM_NR];
    gemm_tile_portable(kc, a, 1, lda, b, GEMM_NR, acc);
    gemm_tile_store_portable(acc, c, ldc, 0, NULL);
}

#else

/* Written in inline assembly because compilers do not keep this register allocation:
 * gcc folds the B loads into the FMAs as memory operands (12 loads instead of 2 per
 * step; the 2 vector loads per cycle then limit, not the FMAs) or spills accumulators.
 * ymm0..11 accumulate (row r in ymm2r, ymm2r+1), ymm12/13 hold B, ymm14/15 broadcasts.
 *
 * The four kernels below are put together from the asm pieces that follow: one k step
 * (its operands given as strings, so that the unrolled loops only change offsets),
 * clearing the tile, writing it out, adding it to C. */

/* One k step in registers of kind V ("ymm": the 6x16 tile, B's 16 floats in two halves;
 * "zmm": the 6x32 tile of the avx512 variant, two strips of 16): B's halves from B0 and
 * B1, A's six values from A0..A5 (asm operands). */
#define GEMM_ASM_STEP_V(V, B0, B1, A0, A1, A2, A3, A4, A5)                                                     \
    "vmovups " B0 ", %%" V "12\n\t"                                                                            \
    "vmovups " B1 ", %%" V "13\n\t"                                                                            \
    "vbroadcastss " A0 ", %%" V "14\n\t"                                                                       \
    "vbroadcastss " A1 ", %%" V "15\n\t"                                                                       \
    "vfmadd231ps %%" V "12, %%" V "14, %%" V "0\n\t"                                                           \
    "vfmadd231ps %%" V "13, %%" V "14, %%" V "1\n\t"                                                           \
    "vbroadcastss " A2 ", %%" V "14\n\t"                                                                       \
    "vfmadd231ps %%" V "12, %%" V "15, %%" V "2\n\t"                                                           \
    "vfmadd231ps %%" V "13, %%" V "15, %%" V "3\n\t"                                                           \
    "vbroadcastss " A3 ", %%" V "15\n\t"                                                                       \
    "vfmadd231ps %%" V "12, %%" V "14, %%" V "4\n\t"                                                           \
    "vfmadd231ps %%" V "13, %%" V "14, %%" V "5\n\t"                                                           \
    "vbroadcastss " A4 ", %%" V "14\n\t"                                                                       \
    "vfmadd231ps %%" V "12, %%" V "15, %%" V "6\n\t"                                                           \
    "vfmadd231ps %%" V "13, %%" V "15, %%" V "7\n\t"                                                           \
    "vbroadcastss " A5 ", %%" V "15\n\t"                                                                       \
    "vfmadd231ps %%" V "12, %%" V "14, %%" V "8\n\t"                                                           \
    "vfmadd231ps %%" V "13, %%" V "14, %%" V "9\n\t"                                                           \
    "vfmadd231ps %%" V "12, %%" V "15, %%" V "10\n\t"                                                          \
    "vfmadd231ps %%" V "13, %%" V "15, %%" V "11\n\t"

#define GEMM_ASM_STEP(B0, B1, A0, A1, A2, A3, A4, A5) GEMM_ASM_STEP_V("ymm", B0, B1, A0, A1, A2, A3, A4, A5)

/* Step s of a packed A strip (a[s*6 + r]) and B at byte offset bo: the offsets written out
 * (24 s + 4 r and bo, bo + 32), as the preprocessor cannot compute them. */
#define GEMM_ASM_STEP_PACKED(bo, bo32, a0, a1, a2, a3, a4, a5)                                                   \
    GEMM_ASM_STEP(#bo "(%[b])", #bo32 "(%[b])", #a0 "(%[a])", #a1 "(%[a])", #a2 "(%[a])", #a3 "(%[a])",         \
                  #a4 "(%[a])", #a5 "(%[a])")

/* Step at byte offset ao of a row-major A (rows at a, a + lda, a + 2 lda, a3 = a + 3 lda, ...). */
#define GEMM_ASM_STEP_ROWS(bo, bo32, ao)                                                                          \
    GEMM_ASM_STEP(#bo "(%[b])", #bo32 "(%[b])", #ao "(%[a])", #ao "(%[a],%[lda])", #ao "(%[a],%[lda],2)",        \
                  #ao "(%[a3])", #ao "(%[a3],%[lda])", #ao "(%[a3],%[lda],2)")

#define GEMM_ASM_CLEAR_TILE                                                                                    \
    "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"                                                                        \
    "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"                                                                        \
    "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"                                                                        \
    "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"                                                                        \
    "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"                                                                        \
    "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"                                                                        \
    "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"                                                                        \
    "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"                                                                        \
    "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"                                                                        \
    "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"                                                                        \
    "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"                                                                     \
    "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"

/* The tile into a gemm_tile at %[c]. */
#define GEMM_ASM_SAVE_TILE                                                                                     \
    "vmovups %%ymm0, 0(%[c])\n\t"                                                                              \
    "vmovups %%ymm1, 32(%[c])\n\t"                                                                             \
    "vmovups %%ymm2, 64(%[c])\n\t"                                                                             \
    "vmovups %%ymm3, 96(%[c])\n\t"                                                                             \
    "vmovups %%ymm4, 128(%[c])\n\t"                                                                            \
    "vmovups %%ymm5, 160(%[c])\n\t"                                                                            \
    "vmovups %%ymm6, 192(%[c])\n\t"                                                                            \
    "vmovups %%ymm7, 224(%[c])\n\t"                                                                            \
    "vmovups %%ymm8, 256(%[c])\n\t"                                                                            \
    "vmovups %%ymm9, 288(%[c])\n\t"                                                                            \
    "vmovups %%ymm10, 320(%[c])\n\t"                                                                           \
    "vmovups %%ymm11, 352(%[c])\n\t"

/* tile += C, C's rows at %[c], c + ldc, c + 2 ldc, %[c3] = c + 3 ldc, ...; registers of
 * kind V, each row's second half H bytes in ("32" for ymm, "64" for zmm). */
#define GEMM_ASM_ADD_C_V(V, H)                                                                                 \
    "vaddps (%[c]), %%" V "0, %%" V "0\n\t"                                                                    \
    "vaddps " H "(%[c]), %%" V "1, %%" V "1\n\t"                                                               \
    "vaddps (%[c],%[ldc]), %%" V "2, %%" V "2\n\t"                                                             \
    "vaddps " H "(%[c],%[ldc]), %%" V "3, %%" V "3\n\t"                                                        \
    "vaddps (%[c],%[ldc],2), %%" V "4, %%" V "4\n\t"                                                           \
    "vaddps " H "(%[c],%[ldc],2), %%" V "5, %%" V "5\n\t"                                                      \
    "vaddps (%[c3]), %%" V "6, %%" V "6\n\t"                                                                   \
    "vaddps " H "(%[c3]), %%" V "7, %%" V "7\n\t"                                                              \
    "vaddps (%[c3],%[ldc]), %%" V "8, %%" V "8\n\t"                                                            \
    "vaddps " H "(%[c3],%[ldc]), %%" V "9, %%" V "9\n\t"                                                       \
    "vaddps (%[c3],%[ldc],2), %%" V "10, %%" V "10\n\t"                                                        \
    "vaddps " H "(%[c3],%[ldc],2), %%" V "11, %%" V "11\n\t"

/* The tile into C (rows as for GEMM_ASM_ADD_C_V). */
#define GEMM_ASM_STORE_C_V(V, H)                                                                               \
    "vmovups %%" V "0, (%[c])\n\t"                                                                             \
    "vmovups %%" V "1, " H "(%[c])\n\t"                                                                        \
    "vmovups %%" V "2, (%[c],%[ldc])\n\t"                                                                      \
    "vmovups %%" V "3, " H "(%[c],%[ldc])\n\t"                                                                 \
    "vmovups %%" V "4, (%[c],%[ldc],2)\n\t"                                                                    \
    "vmovups %%" V "5, " H "(%[c],%[ldc],2)\n\t"                                                               \
    "vmovups %%" V "6, (%[c3])\n\t"                                                                            \
    "vmovups %%" V "7, " H "(%[c3])\n\t"                                                                       \
    "vmovups %%" V "8, (%[c3],%[ldc])\n\t"                                                                     \
    "vmovups %%" V "9, " H "(%[c3],%[ldc])\n\t"                                                                \
    "vmovups %%" V "10, (%[c3],%[ldc],2)\n\t"                                                                  \
    "vmovups %%" V "11, " H "(%[c3],%[ldc],2)\n\t"

/* The first k block's epilogue: both halves of add[] (the bias, or zeros) onto every row,
 * then jump to label 4 (the store), past GEMM_ASM_ADD_C_V at label 3. */
#define GEMM_ASM_ADD_BIAS_V(V, H)                                                                              \
    "test %[mode], %[mode]\n\t"                                                                                \
    "jz 3f\n\t"                                                                                                \
    "vmovups (%[add]), %%" V "12\n\t"                                                                          \
    "vmovups " H "(%[add]), %%" V "13\n\t"                                                                     \
    "vaddps %%" V "12, %%" V "0, %%" V "0\n\t"                                                                 \
    "vaddps %%" V "13, %%" V "1, %%" V "1\n\t"                                                                 \
    "vaddps %%" V "12, %%" V "2, %%" V "2\n\t"                                                                 \
    "vaddps %%" V "13, %%" V "3, %%" V "3\n\t"                                                                 \
    "vaddps %%" V "12, %%" V "4, %%" V "4\n\t"                                                                 \
    "vaddps %%" V "13, %%" V "5, %%" V "5\n\t"                                                                 \
    "vaddps %%" V "12, %%" V "6, %%" V "6\n\t"                                                                 \
    "vaddps %%" V "13, %%" V "7, %%" V "7\n\t"                                                                 \
    "vaddps %%" V "12, %%" V "8, %%" V "8\n\t"                                                                 \
    "vaddps %%" V "13, %%" V "9, %%" V "9\n\t"                                                                 \
    "vaddps %%" V "12, %%" V "10, %%" V "10\n\t"                                                               \
    "vaddps %%" V "13, %%" V "11, %%" V "11\n\t"                                                               \
    "jmp 4f\n\t"

#define GEMM_ASM_ADD_C GEMM_ASM_ADD_C_V("ymm", "32")
#define GEMM_ASM_STORE_C GEMM_ASM_STORE_C_V("ymm", "32")

#define GEMM_ASM_CLOBBERS                                                                                      \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",      \
        "xmm13", "xmm14", "xmm15", "cc", "memory"

/* The k loop unrolled four times, then one step at a time, ending at label 2: steps S0..S3
 * (S0 alone in the tail), pointer advances ADV4 after four steps and ADV1 after one. */
#define GEMM_ASM_K_LOOP(S0, S1, S2, S3, ADV4, ADV1)                                                            \
    "cmp $4, %[k]\n\t"                                                                                         \
    "jl 5f\n\t"                                                                                                \
    "6:\n\t" S0 S1 S2 S3 ADV4                                                                                   \
    "sub $4, %[k]\n\t"                                                                                         \
    "cmp $4, %[k]\n\t"                                                                                         \
    "jge 6b\n\t"                                                                                               \
    "5:\n\t"                                                                                                   \
    "test %[k], %[k]\n\t"                                                                                      \
    "jle 2f\n\t"                                                                                               \
    "1:\n\t" S0 ADV1                                                                                            \
    "dec %[k]\n\t"                                                                                             \
    "jnz 1b\n\t"                                                                                               \
    "2:\n\t"

/* tile = sum over k < kc of A[., k] (x) B[k, .] with A packed in 6-row strips
 * (a[k*6 + r]) and B rows ldb floats apart. */
static inline void gemm_kernel_6x16(int64_t kc, const float *a, const float *b, int64_t ldb, gemm_tile *tile)
{
    if (kc <= 0) {
        for (int r = 0; r < GEMM_MR; r++) tile->c[r][0] = tile->c[r][1] = _mm256_setzero_ps();
        return;
    }
    int64_t ldb_bytes = ldb * (int64_t)sizeof(float);
    __asm__ volatile(GEMM_ASM_CLEAR_TILE
                     "1:\n\t"
                     GEMM_ASM_STEP_PACKED(0, 32, 0, 4, 8, 12, 16, 20)
                     "add $24, %[a]\n\t"
                     "add %[ldb], %[b]\n\t"
                     "dec %[k]\n\t"
                     "jnz 1b\n\t"
                     GEMM_ASM_SAVE_TILE
                     : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc)
                     : [ldb] "r"(ldb_bytes), [c] "r"(tile->c)
                     : GEMM_ASM_CLOBBERS);
}

/* The GEMM's microkernel with the store fused: a full 6 x 16 tile of C (rows ldc floats
 * apart) becomes, when first, sum + add[0..15] (the bias, or zeros); else C + sum. The
 * sum over k is that of gemm_kernel_6x16 with a packed B strip (16 floats per k), and
 * each addition is the one a separate store would make, so the result is the same bit
 * for bit; it only saves the trip of the tile through memory. The k loop is unrolled
 * four times (then one step at a time): fewer loop instructions per FMA, same order.
 * The hot loop of every GEMM. */
static inline void gemm_kernel_6x16_store(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                          int first, const float *add)
{
    int64_t ldc_bytes = ldc * (int64_t)sizeof(float);
    float *c3 = c + 3 * ldc;
    int64_t mode = first;
    __asm__ volatile(GEMM_ASM_CLEAR_TILE
                     GEMM_ASM_K_LOOP(GEMM_ASM_STEP_PACKED(0, 32, 0, 4, 8, 12, 16, 20),
                                     GEMM_ASM_STEP_PACKED(64, 96, 24, 28, 32, 36, 40, 44),
                                     GEMM_ASM_STEP_PACKED(128, 160, 48, 52, 56, 60, 64, 68),
                                     GEMM_ASM_STEP_PACKED(192, 224, 72, 76, 80, 84, 88, 92),
                                     "add $96, %[a]\n\t"
                                     "add $256, %[b]\n\t",
                                     "add $24, %[a]\n\t"
                                     "add $64, %[b]\n\t")
                     GEMM_ASM_ADD_BIAS_V("ymm", "32")
                     "3:\n\t"
                     GEMM_ASM_ADD_C
                     "4:\n\t"
                     GEMM_ASM_STORE_C
                     : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc)
                     : [c] "r"(c), [c3] "r"(c3), [ldc] "r"(ldc_bytes), [mode] "r"(mode), [add] "r"(add)
                     : GEMM_ASM_CLOBBERS);
}

/* The same with A row-major, rows lda floats apart (a[r*lda + k]): attention multiplies
 * its probabilities with V this way without repacking them. */
static inline void gemm_kernel_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                         gemm_tile *tile)
{
    if (kc <= 0) {
        for (int r = 0; r < GEMM_MR; r++) tile->c[r][0] = tile->c[r][1] = _mm256_setzero_ps();
        return;
    }
    int64_t ldb_bytes = ldb * (int64_t)sizeof(float), lda_bytes = lda * (int64_t)sizeof(float);
    const float *a3 = a + 3 * lda;
    __asm__ volatile(GEMM_ASM_CLEAR_TILE
                     "1:\n\t"
                     GEMM_ASM_STEP_ROWS(0, 32, 0)
                     "add $4, %[a]\n\t"
                     "add $4, %[a3]\n\t"
                     "add %[ldb], %[b]\n\t"
                     "dec %[k]\n\t"
                     "jnz 1b\n\t"
                     GEMM_ASM_SAVE_TILE
                     : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [k] "+r"(kc)
                     : [ldb] "r"(ldb_bytes), [lda] "r"(lda_bytes), [c] "r"(tile->c)
                     : GEMM_ASM_CLOBBERS);
}

/* C += A B for a full 6 x 16 tile: A row-major, rows lda floats apart (a[r*lda + k]), B
 * packed in a 16-float strip (b[k*16 + c]), C rows ldc floats apart. The sum over k is
 * that of gemm_kernel_6x16_rows (increasing k, from zero) and is then added to C once, so
 * the result is bit for bit that of gemm_kernel_6x16_rows followed by a separate add and
 * store; the tile just never goes through memory. The k loop is unrolled four times.
 * Attention multiplies its probabilities (row-major) with V packed in 16-column strips. */
static inline void gemm_kernel_6x16_rows_store(int64_t kc, const float *a, int64_t lda, const float *b, float *c,
                                               int64_t ldc)
{
    int64_t lda_bytes = lda * (int64_t)sizeof(float), ldc_bytes = ldc * (int64_t)sizeof(float);
    const float *a3 = a + 3 * lda;
    float *c3 = c + 3 * ldc;
    __asm__ volatile(GEMM_ASM_CLEAR_TILE
                     GEMM_ASM_K_LOOP(GEMM_ASM_STEP_ROWS(0, 32, 0), GEMM_ASM_STEP_ROWS(64, 96, 4),
                                     GEMM_ASM_STEP_ROWS(128, 160, 8), GEMM_ASM_STEP_ROWS(192, 224, 12),
                                     "add $16, %[a]\n\t"
                                     "add $16, %[a3]\n\t"
                                     "add $256, %[b]\n\t",
                                     "add $4, %[a]\n\t"
                                     "add $4, %[a3]\n\t"
                                     "add $64, %[b]\n\t")
                     GEMM_ASM_ADD_C
                     GEMM_ASM_STORE_C
                     : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [k] "+r"(kc)
                     : [lda] "r"(lda_bytes), [c] "r"(c), [c3] "r"(c3), [ldc] "r"(ldc_bytes)
                     : GEMM_ASM_CLOBBERS);
}

#ifdef CANVAS_CPU_AVX512

/* Step s of a packed A strip with two packed B strips, the second bs bytes after the
 * first: zmm12 holds the first strip's 16 floats, zmm13 the second's. */
#define GEMM_ASM_STEP_PAIR(bo, a0, a1, a2, a3, a4, a5)                                                           \
    GEMM_ASM_STEP_V("zmm", #bo "(%[b])", #bo "(%[b],%[bs])", #a0 "(%[a])", #a1 "(%[a])", #a2 "(%[a])",           \
                    #a3 "(%[a])", #a4 "(%[a])", #a5 "(%[a])")

/* The avx512 variant's GEMM microkernel: gemm_kernel_6x16_store over two adjacent packed
 * 16-column strips at once (b, and b + kc*16 where the next strip of a panel starts), a
 * 6 x 32 tile in twelve zmm accumulators. Per k step: 2 loads of B, 6 broadcasts of A,
 * 12 FMAs of 16 lanes, twice the work of the ymm step for the same loads. Every element
 * gets the same FMAs in the same order and the same one addition of add[] (32 floats)
 * or of C, so the tile equals that of two gemm_kernel_6x16_store calls bit for bit. */
static inline void gemm_kernel_6x32_store(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                          int first, const float *add)
{
    int64_t ldc_bytes = ldc * (int64_t)sizeof(float), bs = kc * GEMM_NR * (int64_t)sizeof(float);
    float *c3 = c + 3 * ldc;
    int64_t mode = first;
    __asm__ volatile(GEMM_ASM_CLEAR_TILE /* (a VEX write of a ymm register clears its zmm) */
                     GEMM_ASM_K_LOOP(GEMM_ASM_STEP_PAIR(0, 0, 4, 8, 12, 16, 20),
                                     GEMM_ASM_STEP_PAIR(64, 24, 28, 32, 36, 40, 44),
                                     GEMM_ASM_STEP_PAIR(128, 48, 52, 56, 60, 64, 68),
                                     GEMM_ASM_STEP_PAIR(192, 72, 76, 80, 84, 88, 92),
                                     "add $96, %[a]\n\t"
                                     "add $256, %[b]\n\t",
                                     "add $24, %[a]\n\t"
                                     "add $64, %[b]\n\t")
                     GEMM_ASM_ADD_BIAS_V("zmm", "64")
                     "3:\n\t"
                     GEMM_ASM_ADD_C_V("zmm", "64")
                     "4:\n\t"
                     GEMM_ASM_STORE_C_V("zmm", "64")
                     "vzeroupper\n\t"
                     : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc)
                     : [bs] "r"(bs), [c] "r"(c), [c3] "r"(c3), [ldc] "r"(ldc_bytes), [mode] "r"(mode),
                       [add] "r"(add)
                     : GEMM_ASM_CLOBBERS);
}

#endif /* CANVAS_CPU_AVX512 */

#endif /* CANVAS_CPU_PORTABLE */

/* Put before the loops that fill and drain the 8 registers of a transpose: gcc -O2 does
 * not unroll them by itself and then keeps the whole tile on the stack (a store and a
 * reload of every vector, twice); unrolled, it stays in registers. The bf16 pack got
 * 5% faster on the 32-row text GEMM this way. */
#define GEMM_UNROLL8 _Pragma("GCC unroll 8")

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
            GEMM_UNROLL8 for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(src + i * ld + k);
            r[6] = r[7] = _mm256_setzero_ps();
            gemm_transpose8x8(r);
            GEMM_UNROLL8 for (int j = 0; j < 8; j++) _mm256_storeu_ps(a + (k + j) * 6, r[j]);
        }
    }
    for (; k < kc; k++)
        for (int i = 0; i < GEMM_MR; i++) a[k * 6 + i] = i < rows ? src[i * ld + k] : 0.0f;
}

#endif
