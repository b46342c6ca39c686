/* SPDX-License-Identifier: Apache-2.0 */
/* rope.c — rotary embedding, in place, on interleaved channel pairs (the transformer) or
 * on half-split pairs (the rotate_half convention of the Qwen2.5-VL encoder).
 *
 * For pair j of each head: (a, b) -> (a c_j - b s_j, a s_j + b c_j). With the pairs kept
 * interleaved in a vector, fmaddsub(x, c, swap(x) * s) computes exactly that: even lanes
 * subtract, odd lanes add. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include "ops/cpu/simd.h"
#include "ops/ops.h"

void op_rope_interleaved(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin)
{
    int pairs = head_dim / 2;
    for (int64_t t = 0; t < seq; t++) {
        const float *ct = cos + t * pairs, *st = sin + t * pairs;
        for (int h = 0; h < heads; h++) {
            float *xh = x + (t * heads + h) * (int64_t)head_dim;
            int j = 0;
            for (; j + 4 <= pairs; j += 4) {
                __m128 c4 = _mm_loadu_ps(ct + j), s4 = _mm_loadu_ps(st + j);
                /* (c0 c0 c1 c1 c2 c2 c3 c3) */
                __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(c4), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
                __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s4), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
                __m256 v = _mm256_loadu_ps(xh + 2 * j);
                __m256 swapped = _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
                _mm256_storeu_ps(xh + 2 * j, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(swapped, s)));
            }
            for (; j < pairs; j++) {
                float a = xh[2 * j], b = xh[2 * j + 1];
                xh[2 * j] = a * ct[j] - b * st[j];
                xh[2 * j + 1] = a * st[j] + b * ct[j];
            }
        }
    }
}

/* Half-split pairs (x[j], x[j + pairs]) per head: the same rotation, with the two halves
 * of the head as separate vectors. */
void op_rope_half(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin)
{
    int pairs = head_dim / 2;
    for (int64_t t = 0; t < seq; t++) {
        const float *ct = cos + t * pairs, *st = sin + t * pairs;
        for (int h = 0; h < heads; h++) {
            float *lo = x + (t * heads + h) * (int64_t)head_dim, *hi = lo + pairs;
            int j = 0;
            for (; j + 8 <= pairs; j += 8) {
                __m256 c = _mm256_loadu_ps(ct + j), s = _mm256_loadu_ps(st + j);
                __m256 a = _mm256_loadu_ps(lo + j), b = _mm256_loadu_ps(hi + j);
                _mm256_storeu_ps(lo + j, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
                _mm256_storeu_ps(hi + j, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
            }
            for (; j < pairs; j++) {
                float a = lo[j], b = hi[j];
                lo[j] = a * ct[j] - b * st[j];
                hi[j] = b * ct[j] + a * st[j];
            }
        }
    }
}
