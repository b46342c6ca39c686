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

/* Written in inline assembly because compilers do not keep this register allocation:
 * gcc folds the B loads into the FMAs as memory operands (12 loads instead of 2 per
 * step; the 2 vector loads per cycle then limit, not the FMAs) or spills accumulators.
 * ymm0..11 accumulate (row r in ymm2r, ymm2r+1), ymm12/13 hold B, ymm14/15 broadcasts. */

/* tile = sum over k < kc of A[., k] (x) B[k, .] with A packed in 6-row strips
 * (a[k*6 + r]) and B rows ldb floats apart. The hot loop of every GEMM. */
static inline void gemm_kernel_6x16(int64_t kc, const float *a, const float *b, int64_t ldb, gemm_tile *tile)
{
    if (kc <= 0) {
        for (int r = 0; r < GEMM_MR; r++) tile->c[r][0] = tile->c[r][1] = _mm256_setzero_ps();
        return;
    }
    int64_t ldb_bytes = ldb * (int64_t)sizeof(float);
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vbroadcastss 4(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 12(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 16(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 20(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "vmovups %%ymm0, 0(%[c])\n\t"
        "vmovups %%ymm1, 32(%[c])\n\t"
        "vmovups %%ymm2, 64(%[c])\n\t"
        "vmovups %%ymm3, 96(%[c])\n\t"
        "vmovups %%ymm4, 128(%[c])\n\t"
        "vmovups %%ymm5, 160(%[c])\n\t"
        "vmovups %%ymm6, 192(%[c])\n\t"
        "vmovups %%ymm7, 224(%[c])\n\t"
        "vmovups %%ymm8, 256(%[c])\n\t"
        "vmovups %%ymm9, 288(%[c])\n\t"
        "vmovups %%ymm10, 320(%[c])\n\t"
        "vmovups %%ymm11, 352(%[c])\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc)
        : [ldb] "r"(ldb_bytes), [c] "r"(tile->c)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
}

/* The GEMM's microkernel with the store fused: a full 6 x 16 tile of C (rows ldc floats
 * apart) becomes, when first, sum + add[0..15] (the bias, or zeros); else C + sum. The
 * sum over k is that of gemm_kernel_6x16 with a packed B strip (16 floats per k), and
 * each addition is the one a separate store would make, so the result is the same bit
 * for bit; it only saves the trip of the tile through memory. The k loop is unrolled
 * four times (then one step at a time): fewer loop instructions per FMA, same order. */
static inline void gemm_kernel_6x16_store(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                          int first, const float *add)
{
    int64_t ldc_bytes = ldc * (int64_t)sizeof(float);
    float *c3 = c + 3 * ldc;
    int64_t mode = first;
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "cmp $4, %[k]\n\t"
        "jl 5f\n\t"
        "6:\n\t"
        "vmovups 0(%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vbroadcastss 4(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 12(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 16(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 20(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 64(%[b]), %%ymm12\n\t"
        "vmovups 96(%[b]), %%ymm13\n\t"
        "vbroadcastss 24(%[a]), %%ymm14\n\t"
        "vbroadcastss 28(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 32(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 36(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 40(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 44(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 128(%[b]), %%ymm12\n\t"
        "vmovups 160(%[b]), %%ymm13\n\t"
        "vbroadcastss 48(%[a]), %%ymm14\n\t"
        "vbroadcastss 52(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 56(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 60(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 64(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 68(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 192(%[b]), %%ymm12\n\t"
        "vmovups 224(%[b]), %%ymm13\n\t"
        "vbroadcastss 72(%[a]), %%ymm14\n\t"
        "vbroadcastss 76(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 80(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 84(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 88(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 92(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $96, %[a]\n\t"
        "add $256, %[b]\n\t"
        "sub $4, %[k]\n\t"
        "cmp $4, %[k]\n\t"
        "jge 6b\n\t"
        "5:\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups 0(%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vbroadcastss 4(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 12(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 16(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 20(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $24, %[a]\n\t"
        "add $64, %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "test %[mode], %[mode]\n\t"
        "jz 3f\n\t"
        "vmovups (%[add]), %%ymm12\n\t"
        "vmovups 32(%[add]), %%ymm13\n\t"
        "vaddps %%ymm12, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm13, %%ymm1, %%ymm1\n\t"
        "vaddps %%ymm12, %%ymm2, %%ymm2\n\t"
        "vaddps %%ymm13, %%ymm3, %%ymm3\n\t"
        "vaddps %%ymm12, %%ymm4, %%ymm4\n\t"
        "vaddps %%ymm13, %%ymm5, %%ymm5\n\t"
        "vaddps %%ymm12, %%ymm6, %%ymm6\n\t"
        "vaddps %%ymm13, %%ymm7, %%ymm7\n\t"
        "vaddps %%ymm12, %%ymm8, %%ymm8\n\t"
        "vaddps %%ymm13, %%ymm9, %%ymm9\n\t"
        "vaddps %%ymm12, %%ymm10, %%ymm10\n\t"
        "vaddps %%ymm13, %%ymm11, %%ymm11\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vaddps (%[c]), %%ymm0, %%ymm0\n\t"
        "vaddps 32(%[c]), %%ymm1, %%ymm1\n\t"
        "vaddps (%[c],%[ldc]), %%ymm2, %%ymm2\n\t"
        "vaddps 32(%[c],%[ldc]), %%ymm3, %%ymm3\n\t"
        "vaddps (%[c],%[ldc],2), %%ymm4, %%ymm4\n\t"
        "vaddps 32(%[c],%[ldc],2), %%ymm5, %%ymm5\n\t"
        "vaddps (%[c3]), %%ymm6, %%ymm6\n\t"
        "vaddps 32(%[c3]), %%ymm7, %%ymm7\n\t"
        "vaddps (%[c3],%[ldc]), %%ymm8, %%ymm8\n\t"
        "vaddps 32(%[c3],%[ldc]), %%ymm9, %%ymm9\n\t"
        "vaddps (%[c3],%[ldc],2), %%ymm10, %%ymm10\n\t"
        "vaddps 32(%[c3],%[ldc],2), %%ymm11, %%ymm11\n\t"
        "4:\n\t"
        "vmovups %%ymm0, (%[c])\n\t"
        "vmovups %%ymm1, 32(%[c])\n\t"
        "vmovups %%ymm2, (%[c],%[ldc])\n\t"
        "vmovups %%ymm3, 32(%[c],%[ldc])\n\t"
        "vmovups %%ymm4, (%[c],%[ldc],2)\n\t"
        "vmovups %%ymm5, 32(%[c],%[ldc],2)\n\t"
        "vmovups %%ymm6, (%[c3])\n\t"
        "vmovups %%ymm7, 32(%[c3])\n\t"
        "vmovups %%ymm8, (%[c3],%[ldc])\n\t"
        "vmovups %%ymm9, 32(%[c3],%[ldc])\n\t"
        "vmovups %%ymm10, (%[c3],%[ldc],2)\n\t"
        "vmovups %%ymm11, 32(%[c3],%[ldc],2)\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc)
        : [c] "r"(c), [c3] "r"(c3), [ldc] "r"(ldc_bytes), [mode] "r"(mode), [add] "r"(add)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
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
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss (%[a]), %%ymm14\n\t"
        "vbroadcastss (%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss (%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss (%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss (%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss (%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $4, %[a]\n\t"
        "add $4, %[a3]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "vmovups %%ymm0, 0(%[c])\n\t"
        "vmovups %%ymm1, 32(%[c])\n\t"
        "vmovups %%ymm2, 64(%[c])\n\t"
        "vmovups %%ymm3, 96(%[c])\n\t"
        "vmovups %%ymm4, 128(%[c])\n\t"
        "vmovups %%ymm5, 160(%[c])\n\t"
        "vmovups %%ymm6, 192(%[c])\n\t"
        "vmovups %%ymm7, 224(%[c])\n\t"
        "vmovups %%ymm8, 256(%[c])\n\t"
        "vmovups %%ymm9, 288(%[c])\n\t"
        "vmovups %%ymm10, 320(%[c])\n\t"
        "vmovups %%ymm11, 352(%[c])\n\t"
        : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [k] "+r"(kc)
        : [ldb] "r"(ldb_bytes), [lda] "r"(lda_bytes), [c] "r"(tile->c)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
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
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "cmp $4, %[k]\n\t"
        "jl 5f\n\t"
        "6:\n\t"
        "vmovups 0(%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vbroadcastss 0(%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 0(%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 0(%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 0(%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 0(%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 64(%[b]), %%ymm12\n\t"
        "vmovups 96(%[b]), %%ymm13\n\t"
        "vbroadcastss 4(%[a]), %%ymm14\n\t"
        "vbroadcastss 4(%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 4(%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 4(%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 4(%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 4(%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 128(%[b]), %%ymm12\n\t"
        "vmovups 160(%[b]), %%ymm13\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vbroadcastss 8(%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 8(%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 8(%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 8(%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 8(%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "vmovups 192(%[b]), %%ymm12\n\t"
        "vmovups 224(%[b]), %%ymm13\n\t"
        "vbroadcastss 12(%[a]), %%ymm14\n\t"
        "vbroadcastss 12(%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 12(%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 12(%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 12(%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 12(%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $16, %[a]\n\t"
        "add $16, %[a3]\n\t"
        "add $256, %[b]\n\t"
        "sub $4, %[k]\n\t"
        "cmp $4, %[k]\n\t"
        "jge 6b\n\t"
        "5:\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups 0(%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vbroadcastss 0(%[a],%[lda]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 0(%[a],%[lda],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 0(%[a3]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 0(%[a3],%[lda]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 0(%[a3],%[lda],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $4, %[a]\n\t"
        "add $4, %[a3]\n\t"
        "add $64, %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vaddps (%[c]), %%ymm0, %%ymm0\n\t"
        "vaddps 32(%[c]), %%ymm1, %%ymm1\n\t"
        "vaddps (%[c],%[ldc]), %%ymm2, %%ymm2\n\t"
        "vaddps 32(%[c],%[ldc]), %%ymm3, %%ymm3\n\t"
        "vaddps (%[c],%[ldc],2), %%ymm4, %%ymm4\n\t"
        "vaddps 32(%[c],%[ldc],2), %%ymm5, %%ymm5\n\t"
        "vaddps (%[c3]), %%ymm6, %%ymm6\n\t"
        "vaddps 32(%[c3]), %%ymm7, %%ymm7\n\t"
        "vaddps (%[c3],%[ldc]), %%ymm8, %%ymm8\n\t"
        "vaddps 32(%[c3],%[ldc]), %%ymm9, %%ymm9\n\t"
        "vaddps (%[c3],%[ldc],2), %%ymm10, %%ymm10\n\t"
        "vaddps 32(%[c3],%[ldc],2), %%ymm11, %%ymm11\n\t"
        "vmovups %%ymm0, (%[c])\n\t"
        "vmovups %%ymm1, 32(%[c])\n\t"
        "vmovups %%ymm2, (%[c],%[ldc])\n\t"
        "vmovups %%ymm3, 32(%[c],%[ldc])\n\t"
        "vmovups %%ymm4, (%[c],%[ldc],2)\n\t"
        "vmovups %%ymm5, 32(%[c],%[ldc],2)\n\t"
        "vmovups %%ymm6, (%[c3])\n\t"
        "vmovups %%ymm7, 32(%[c3])\n\t"
        "vmovups %%ymm8, (%[c3],%[ldc])\n\t"
        "vmovups %%ymm9, 32(%[c3],%[ldc])\n\t"
        "vmovups %%ymm10, (%[c3],%[ldc],2)\n\t"
        "vmovups %%ymm11, 32(%[c3],%[ldc],2)\n\t"
        : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [k] "+r"(kc)
        : [lda] "r"(lda_bytes), [c] "r"(c), [c3] "r"(c3), [ldc] "r"(ldc_bytes)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
}

/* Transpose the 8x8 block held in r[0..7] (rows) in place (columns become rows). */
/* Put before the loops that fill and drain the 8 registers of a transpose: gcc -O2 does
 * not unroll them by itself and then keeps the whole tile on the stack (a store and a
 * reload of every vector, twice); unrolled, it stays in registers. The bf16 pack got
 * 5% faster on the 32-row text GEMM this way. */
#define GEMM_UNROLL8 _Pragma("GCC unroll 8")

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
