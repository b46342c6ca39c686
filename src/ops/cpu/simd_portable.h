/* SPDX-License-Identifier: Apache-2.0 */
/* simd_portable.h — the x86 vector intrinsics the CPU kernels use, in plain C, for the
 * portable build of ops/cpu (cpu_variant.h includes it instead of <immintrin.h>).
 *
 * The kernels are written once, with AVX2/FMA/F16C intrinsics. The portable variant
 * compiles the same source against these definitions, so both variants run the same
 * algorithm in the same order: each lane computes what the instruction computes (fmaf is
 * the fused multiply-add, min/max pick the second operand on NaN as minps/maxps do,
 * rounding is to nearest even), and a portable result equals the AVX2 one bit for bit
 * as long as the compiler adds no contractions of its own (gcc in ISO C mode does not).
 * Only what ops/cpu uses is here; the names are Intel's so the kernels read unchanged.
 * The four inline-asm microkernels have C twins in gemm_kernel.h. */
#ifndef CANVAS_OPS_CPU_SIMD_PORTABLE_H
#define CANVAS_OPS_CPU_SIMD_PORTABLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tensor/dtype.h"

typedef struct { float f[8]; } __m256;
typedef struct { int32_t i[8]; } __m256i;
typedef struct { float f[4]; } __m128;
typedef struct { uint8_t b[16]; } __m128i;

#define SIMD_INLINE static inline
#define SIMD_LANES8 for (int l = 0; l < 8; l++)

#define _MM_SHUFFLE(z, y, x, w) (((z) << 6) | ((y) << 4) | ((x) << 2) | (w))
#define _MM_FROUND_TO_NEAREST_INT 0
#define _MM_FROUND_NO_EXC 8
#define _MM_HINT_T0 3
#define _MM_HINT_T1 2
#define _CMP_LT_OQ 17
#define _CMP_GT_OQ 30
#define _CMP_UNORD_Q 3

/* A prefetch is a hint: none here. */
#define _mm_prefetch(p, hint) ((void)(p), (void)(hint))

/* ---- 8 x f32 -------------------------------------------------------------------------- */

SIMD_INLINE __m256 _mm256_setzero_ps(void) { return (__m256){{0}}; }

SIMD_INLINE __m256 _mm256_set1_ps(float x)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = x;
    return r;
}

SIMD_INLINE __m256 _mm256_loadu_ps(const float *p)
{
    __m256 r;
    memcpy(r.f, p, sizeof r.f);
    return r;
}

SIMD_INLINE void _mm256_storeu_ps(float *p, __m256 v) { memcpy(p, v.f, sizeof v.f); }

SIMD_INLINE float _mm256_cvtss_f32(__m256 v) { return v.f[0]; }

#define SIMD_BINARY(name, expr)                 \
    SIMD_INLINE __m256 name(__m256 a, __m256 b) \
    {                                           \
        __m256 r;                               \
        SIMD_LANES8 r.f[l] = (expr);            \
        return r;                               \
    }
SIMD_BINARY(_mm256_add_ps, a.f[l] + b.f[l])
SIMD_BINARY(_mm256_sub_ps, a.f[l] - b.f[l])
SIMD_BINARY(_mm256_mul_ps, a.f[l] * b.f[l])
SIMD_BINARY(_mm256_div_ps, a.f[l] / b.f[l])
SIMD_BINARY(_mm256_min_ps, a.f[l] < b.f[l] ? a.f[l] : b.f[l])
SIMD_BINARY(_mm256_max_ps, a.f[l] > b.f[l] ? a.f[l] : b.f[l])
#undef SIMD_BINARY

SIMD_INLINE __m256 _mm256_fmadd_ps(__m256 a, __m256 b, __m256 c)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = fmaf(a.f[l], b.f[l], c.f[l]);
    return r;
}

/* -(a b) + c, one rounding. */
SIMD_INLINE __m256 _mm256_fnmadd_ps(__m256 a, __m256 b, __m256 c)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = fmaf(-a.f[l], b.f[l], c.f[l]);
    return r;
}

/* a b - c, one rounding. */
SIMD_INLINE __m256 _mm256_fmsub_ps(__m256 a, __m256 b, __m256 c)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = fmaf(a.f[l], b.f[l], -c.f[l]);
    return r;
}

/* Even lanes a b - c, odd lanes a b + c. */
SIMD_INLINE __m256 _mm256_fmaddsub_ps(__m256 a, __m256 b, __m256 c)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = fmaf(a.f[l], b.f[l], (l & 1) ? c.f[l] : -c.f[l]);
    return r;
}

SIMD_INLINE uint32_t simd_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

SIMD_INLINE float simd_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Lanes all ones where the (ordered, quiet) comparison holds. */
SIMD_INLINE __m256 _mm256_cmp_ps(__m256 a, __m256 b, int predicate)
{
    __m256 r;
    SIMD_LANES8 {
        int holds = predicate == _CMP_LT_OQ   ? a.f[l] < b.f[l]
                    : predicate == _CMP_GT_OQ ? a.f[l] > b.f[l]
                                              : isnan(a.f[l]) || isnan(b.f[l]);
        r.f[l] = simd_float(holds ? 0xFFFFFFFFu : 0u);
    }
    return r;
}

SIMD_INLINE __m256 _mm256_andnot_ps(__m256 a, __m256 b)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = simd_float(~simd_bits(a.f[l]) & simd_bits(b.f[l]));
    return r;
}

/* b where the mask's sign bit is set, else a. */
SIMD_INLINE __m256 _mm256_blendv_ps(__m256 a, __m256 b, __m256 mask)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = (simd_bits(mask.f[l]) >> 31) ? b.f[l] : a.f[l];
    return r;
}

/* Only round-to-nearest-even is used. */
SIMD_INLINE __m256 _mm256_round_ps(__m256 a, int mode)
{
    (void)mode;
    __m256 r;
    SIMD_LANES8 r.f[l] = nearbyintf(a.f[l]);
    return r;
}

/* Within each 128-bit half, as the instructions do. */
SIMD_INLINE __m256 _mm256_shuffle_ps(__m256 a, __m256 b, int imm)
{
    __m256 r;
    for (int h = 0; h < 8; h += 4) {
        r.f[h] = a.f[h + (imm & 3)];
        r.f[h + 1] = a.f[h + ((imm >> 2) & 3)];
        r.f[h + 2] = b.f[h + ((imm >> 4) & 3)];
        r.f[h + 3] = b.f[h + ((imm >> 6) & 3)];
    }
    return r;
}

SIMD_INLINE __m256 _mm256_permute_ps(__m256 a, int imm)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = a.f[(l & 4) + ((imm >> (2 * (l & 3))) & 3)];
    return r;
}

SIMD_INLINE __m256 _mm256_unpacklo_ps(__m256 a, __m256 b)
{
    __m256 r;
    for (int h = 0; h < 8; h += 4) {
        r.f[h] = a.f[h];
        r.f[h + 1] = b.f[h];
        r.f[h + 2] = a.f[h + 1];
        r.f[h + 3] = b.f[h + 1];
    }
    return r;
}

SIMD_INLINE __m256 _mm256_unpackhi_ps(__m256 a, __m256 b)
{
    __m256 r;
    for (int h = 0; h < 8; h += 4) {
        r.f[h] = a.f[h + 2];
        r.f[h + 1] = b.f[h + 2];
        r.f[h + 2] = a.f[h + 3];
        r.f[h + 3] = b.f[h + 3];
    }
    return r;
}

/* Each half of the result: a half of a or b chosen by 2 bits, or zero by the third. */
SIMD_INLINE __m256 _mm256_permute2f128_ps(__m256 a, __m256 b, int imm)
{
    __m256 r;
    for (int h = 0; h < 2; h++) {
        int select = (imm >> (4 * h)) & 0xF;
        const float *from = (select & 2) ? b.f : a.f;
        for (int i = 0; i < 4; i++) r.f[4 * h + i] = (select & 8) ? 0.0f : from[4 * (select & 1) + i];
    }
    return r;
}

SIMD_INLINE __m256 _mm256_permutevar8x32_ps(__m256 a, __m256i index)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = a.f[index.i[l] & 7];
    return r;
}

/* ---- 8 x i32 and conversions ------------------------------------------------------------ */

SIMD_INLINE __m256i _mm256_set1_epi32(int x)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = x;
    return r;
}

SIMD_INLINE __m256i _mm256_setr_epi32(int e0, int e1, int e2, int e3, int e4, int e5, int e6, int e7)
{
    return (__m256i){{e0, e1, e2, e3, e4, e5, e6, e7}};
}

SIMD_INLINE __m256 _mm256_castsi256_ps(__m256i v)
{
    __m256 r;
    memcpy(r.f, v.i, sizeof r.f);
    return r;
}

SIMD_INLINE __m256i _mm256_castps_si256(__m256 v)
{
    __m256i r;
    memcpy(r.i, v.f, sizeof r.i);
    return r;
}

/* Integer lanes wrap, as in hardware: computed on uint32_t. */
SIMD_INLINE int32_t simd_i32(uint32_t u)
{
    int32_t i;
    memcpy(&i, &u, sizeof i);
    return i;
}

SIMD_INLINE __m256i _mm256_add_epi32(__m256i a, __m256i b)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = simd_i32((uint32_t)a.i[l] + (uint32_t)b.i[l]);
    return r;
}

SIMD_INLINE __m256i _mm256_sub_epi32(__m256i a, __m256i b)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = simd_i32((uint32_t)a.i[l] - (uint32_t)b.i[l]);
    return r;
}

/* Shifts by 32 or more give 0 (logical) or the sign (arithmetic). */
SIMD_INLINE __m256i _mm256_slli_epi32(__m256i a, int n)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = n > 31 ? 0 : simd_i32((uint32_t)a.i[l] << n);
    return r;
}

SIMD_INLINE __m256i _mm256_srli_epi32(__m256i a, int n)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = n > 31 ? 0 : simd_i32((uint32_t)a.i[l] >> n);
    return r;
}

SIMD_INLINE __m256i _mm256_srai_epi32(__m256i a, int n)
{
    __m256i r;
    const int s = n > 31 ? 31 : n;
    SIMD_LANES8 r.i[l] = a.i[l] < 0 ? simd_i32(~(~(uint32_t)a.i[l] >> s)) : a.i[l] >> s;
    return r;
}

SIMD_INLINE __m256i _mm256_sllv_epi32(__m256i a, __m256i counts)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = (uint32_t)counts.i[l] > 31 ? 0 : simd_i32((uint32_t)a.i[l] << counts.i[l]);
    return r;
}

/* Round to nearest even; out of range or NaN gives INT32_MIN, as cvtps2dq does. */
SIMD_INLINE __m256i _mm256_cvtps_epi32(__m256 a)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = a.f[l] >= -2147483648.0f && a.f[l] < 2147483648.0f ? (int32_t)nearbyintf(a.f[l]) : INT32_MIN;
    return r;
}

SIMD_INLINE __m256 _mm256_cvtepi32_ps(__m256i a)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = (float)a.i[l];
    return r;
}

/* ---- 128-bit -------------------------------------------------------------------------- */

SIMD_INLINE __m128 _mm_loadu_ps(const float *p)
{
    __m128 r;
    memcpy(r.f, p, sizeof r.f);
    return r;
}

SIMD_INLINE float _mm_cvtss_f32(__m128 v) { return v.f[0]; }

SIMD_INLINE __m128 _mm_add_ps(__m128 a, __m128 b) { return (__m128){{a.f[0] + b.f[0], a.f[1] + b.f[1], a.f[2] + b.f[2], a.f[3] + b.f[3]}}; }

SIMD_INLINE float simd_max1(float a, float b) { return a > b ? a : b; }

SIMD_INLINE __m128 _mm_max_ps(__m128 a, __m128 b)
{
    return (__m128){{simd_max1(a.f[0], b.f[0]), simd_max1(a.f[1], b.f[1]), simd_max1(a.f[2], b.f[2]),
                     simd_max1(a.f[3], b.f[3])}};
}

SIMD_INLINE __m128 _mm_add_ss(__m128 a, __m128 b) { return (__m128){{a.f[0] + b.f[0], a.f[1], a.f[2], a.f[3]}}; }

SIMD_INLINE __m128 _mm_max_ss(__m128 a, __m128 b) { return (__m128){{simd_max1(a.f[0], b.f[0]), a.f[1], a.f[2], a.f[3]}}; }

SIMD_INLINE __m128 _mm_movehdup_ps(__m128 a) { return (__m128){{a.f[1], a.f[1], a.f[3], a.f[3]}}; }

SIMD_INLINE __m128 _mm_movehl_ps(__m128 a, __m128 b) { return (__m128){{b.f[2], b.f[3], a.f[2], a.f[3]}}; }

SIMD_INLINE __m128 _mm256_castps256_ps128(__m256 v) { return (__m128){{v.f[0], v.f[1], v.f[2], v.f[3]}}; }

SIMD_INLINE __m128 _mm256_extractf128_ps(__m256 v, int half)
{
    const float *h = v.f + 4 * (half & 1);
    return (__m128){{h[0], h[1], h[2], h[3]}};
}

/* The upper half is left undefined by the instruction; zero here. */
SIMD_INLINE __m256 _mm256_castps128_ps256(__m128 v) { return (__m256){{v.f[0], v.f[1], v.f[2], v.f[3], 0, 0, 0, 0}}; }

SIMD_INLINE __m128i _mm_loadu_si128(const __m128i *p)
{
    __m128i r;
    memcpy(r.b, p, sizeof r.b);
    return r;
}

SIMD_INLINE __m128i _mm_loadl_epi64(const __m128i *p)
{
    __m128i r = {{0}};
    memcpy(r.b, p, 8);
    return r;
}

/* 16-bit lanes of a 128-bit vector, little-endian as on x86. */
SIMD_INLINE uint16_t simd_u16(__m128i v, int lane) { return (uint16_t)(v.b[2 * lane] | v.b[2 * lane + 1] << 8); }

SIMD_INLINE void simd_set_u16(__m128i *v, int lane, uint16_t x)
{
    v->b[2 * lane] = (uint8_t)x;
    v->b[2 * lane + 1] = (uint8_t)(x >> 8);
}

SIMD_INLINE __m128i _mm_set1_epi16(short x)
{
    __m128i r;
    for (int l = 0; l < 8; l++) simd_set_u16(&r, l, (uint16_t)x);
    return r;
}

SIMD_INLINE __m128i _mm_cvtepi8_epi16(__m128i a)
{
    __m128i r;
    for (int l = 0; l < 8; l++) simd_set_u16(&r, l, (uint16_t)(int16_t)(int8_t)a.b[l]);
    return r;
}

SIMD_INLINE __m128i _mm_cvtepu8_epi16(__m128i a)
{
    __m128i r;
    for (int l = 0; l < 8; l++) simd_set_u16(&r, l, a.b[l]);
    return r;
}

SIMD_INLINE __m128i _mm_slli_epi16(__m128i a, int n)
{
    __m128i r;
    for (int l = 0; l < 8; l++) simd_set_u16(&r, l, n > 15 ? 0 : (uint16_t)(simd_u16(a, l) << n));
    return r;
}

SIMD_INLINE __m128i _mm_add_epi16(__m128i a, __m128i b)
{
    __m128i r;
    for (int l = 0; l < 8; l++) simd_set_u16(&r, l, (uint16_t)(simd_u16(a, l) + simd_u16(b, l)));
    return r;
}

SIMD_INLINE __m128i _mm_and_si128(__m128i a, __m128i b)
{
    __m128i r;
    for (int i = 0; i < 16; i++) r.b[i] = a.b[i] & b.b[i];
    return r;
}

SIMD_INLINE __m128i _mm_or_si128(__m128i a, __m128i b)
{
    __m128i r;
    for (int i = 0; i < 16; i++) r.b[i] = a.b[i] | b.b[i];
    return r;
}

SIMD_INLINE __m256i _mm256_cvtepu16_epi32(__m128i a)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = simd_u16(a, l);
    return r;
}

SIMD_INLINE __m256i _mm256_cvtepi8_epi32(__m128i a)
{
    __m256i r;
    SIMD_LANES8 r.i[l] = (int8_t)a.b[l];
    return r;
}

/* f16 -> f32 is exact either way (tensor/dtype.h). */
SIMD_INLINE __m256 _mm256_cvtph_ps(__m128i a)
{
    __m256 r;
    SIMD_LANES8 r.f[l] = f16_to_f32(simd_u16(a, l));
    return r;
}

SIMD_INLINE float _cvtsh_ss(unsigned short bits) { return f16_to_f32(bits); }

#undef SIMD_LANES8
#undef SIMD_INLINE

#endif
