/* SPDX-License-Identifier: Apache-2.0 */
/* simd.h — small AVX2/FMA/F16C helpers shared by the CPU kernels (private to ops/cpu).
 *
 * Conversions of the storage formats to f32 and a vectorised exp. Every helper is exact
 * or documents its error; nothing here depends on -ffast-math. */
#ifndef CANVAS_OPS_CPU_SIMD_H
#define CANVAS_OPS_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#include "ops/cpu/cpu_variant.h"

/* bf16 is the upper half of an f32: widening is a 16-bit shift, exact. */
static inline float simd_bf16_to_f32(uint16_t bits)
{
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

/* f16 -> f32 with F16C (exact, subnormals and NaN included). */
static inline float simd_f16_to_f32(uint16_t bits) { return _cvtsh_ss(bits); }

/* 8 bf16 at p -> 8 f32. */
static inline __m256 simd_load8_bf16(const uint16_t *p)
{
    __m128i half = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

/* 8 f16 at p -> 8 f32. */
static inline __m256 simd_load8_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Sum of the 8 lanes, in a fixed order. */
static inline float simd_hsum(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 shuf = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, shuf);
    shuf = _mm_movehl_ps(shuf, sums);
    sums = _mm_add_ss(sums, shuf);
    return _mm_cvtss_f32(sums);
}

static inline float simd_hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* e^r for |r| <= ln2/2: the degree-6 Taylor polynomial, Horner with FMAs (shared by the
 * two exps below, so they agree bit for bit where both apply). */
static inline __m256 simd_exp_taylor6(__m256 r)
{
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
}

/* exp(x) for 8 lanes: x = n*ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor
 * polynomial (truncation error r^7/7! < 1.3e-7 relative), scaled by 2^n through the
 * exponent bits. Relative error about 2e-7 over the normal range. Inputs below -87.3
 * give exactly 0 (also -inf); inputs above 88.7 give +inf; NaN gives NaN. */
static inline __m256 simd_exp(__m256 x)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f);
    const __m256 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    const __m256 lo_limit = _mm256_set1_ps(-87.3365447f);
    const __m256 hi_limit = _mm256_set1_ps(88.7228390f);

    __m256 underflow = _mm256_cmp_ps(x, lo_limit, _CMP_LT_OQ);
    __m256 overflow = _mm256_cmp_ps(x, hi_limit, _CMP_GT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo_limit), hi_limit);

    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, xc);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);

    __m256 p = simd_exp_taylor6(r);

    /* 2^n: n in [-126, 128]; build it in two halves so n = 128 (x near the top) and
     * n = -126 stay representable. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half_n = _mm256_srai_epi32(ni, 1);
    __m256i rest_n = _mm256_sub_epi32(ni, half_n);
    __m256 scale1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half_n, _mm256_set1_epi32(127)), 23));
    __m256 scale2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest_n, _mm256_set1_epi32(127)), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, scale1), scale2);

    result = _mm256_andnot_ps(underflow, result);
    result = _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()), overflow);
    /* NaN: min/max above turned it into a limit; put it back. */
    __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    return _mm256_blendv_ps(result, x, is_nan);
}

/* exp(x) for x <= 0 or -inf (softmax after subtracting the row maximum): simd_exp without
 * the overflow and NaN handling. Same polynomial, same error. */
static inline __m256 simd_exp_nonpositive(__m256 x)
{
    const __m256 lo_limit = _mm256_set1_ps(-87.3365447f);
    __m256 underflow = _mm256_cmp_ps(x, lo_limit, _CMP_LT_OQ);
    __m256 xc = _mm256_max_ps(x, lo_limit);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = simd_exp_taylor6(r);
    /* n in [-126, 0]: 2^n is a normal float. */
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

#endif
