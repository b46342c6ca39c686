/* SPDX-License-Identifier: Apache-2.0 */
/* dtype.c — the dtype table and exact conversions between the storage formats and f32.
 *
 * All narrowing conversions go through one routine, round_to_narrow_float(), which
 * rounds the magnitude of an f32 to a format with `mantissa_bits` and `bias` (f16, e4m3,
 * e5m2) by integer arithmetic on the bit pattern, so the rounding is exactly RNE and
 * does not depend on the FPU's rounding mode. Each format then only decides what
 * overflow and NaN become. */
#include "tensor/dtype.h"

#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define DTYPE_HAVE_F16C 1
#endif
#if defined(__AVX2__)
#include <immintrin.h>
#define DTYPE_HAVE_AVX2 1
#endif

#include "base/status.h"

typedef struct dtype_info {
    const char *name;
    size_t size;
    int is_float;
} dtype_info;

static const dtype_info dtype_table[DTYPE_COUNT] = {
    [DTYPE_F64] = {"F64", 8, 1},      [DTYPE_F32] = {"F32", 4, 1},
    [DTYPE_F16] = {"F16", 2, 1},      [DTYPE_BF16] = {"BF16", 2, 1},
    [DTYPE_I64] = {"I64", 8, 0},      [DTYPE_I32] = {"I32", 4, 0},
    [DTYPE_I16] = {"I16", 2, 0},      [DTYPE_I8] = {"I8", 1, 0},
    [DTYPE_U8] = {"U8", 1, 0},        [DTYPE_BOOL] = {"BOOL", 1, 0},
    [DTYPE_F8_E4M3] = {"F8_E4M3", 1, 1}, [DTYPE_F8_E5M2] = {"F8_E5M2", 1, 1},
};

static int dtype_valid(dtype t) { return (unsigned)t < (unsigned)DTYPE_COUNT; }

size_t dtype_size(dtype t) { return dtype_valid(t) ? dtype_table[t].size : 0; }

const char *dtype_name(dtype t) { return dtype_valid(t) ? dtype_table[t].name : "?"; }

int dtype_is_float(dtype t) { return dtype_valid(t) && dtype_table[t].is_float; }

canvas_status dtype_from_name(const char *name, dtype *out)
{
    for (int t = 0; t < DTYPE_COUNT; t++) {
        if (strcmp(name, dtype_table[t].name) == 0) {
            *out = (dtype)t;
            return CANVAS_OK;
        }
    }
    return CANVAS_ERR_INPUT;
}

/* ---- bit casts ------------------------------------------------------------------- */

static inline uint32_t f32_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline float f32_from_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

#define F32_SIGN 0x80000000u
#define F32_ABS 0x7FFFFFFFu
#define F32_INF 0x7F800000u
#define F32_QUIET 0x00400000u

/* ---- the one rounding routine ---------------------------------------------------- */

/* Round a finite, non-negative f32 bit pattern `abs_bits` to the narrow format with
 * `mantissa_bits` stored mantissa bits and exponent `bias`, ties to even. Returns the
 * magnitude code (exponent and mantissa fields, no sign). The result is not clamped:
 * a value beyond the format's largest finite number yields a code at or above the
 * infinity/NaN exponent, and the caller decides what overflow means. Subnormal
 * results are exact where representable and rounded otherwise. */
static uint32_t round_to_narrow_float(uint32_t abs_bits, int mantissa_bits, int bias)
{
    int exponent = (int)(abs_bits >> 23);     /* biased f32 exponent */
    int min_normal = 127 + 1 - bias;           /* f32 exponent of the narrow min normal */
    uint32_t q, rest, half;
    if (exponent >= min_normal) {
        /* Normal: drop the low 23 - mantissa_bits bits, then rebias. A round-up that
         * carries out of the mantissa correctly bumps the exponent. */
        int shift = 23 - mantissa_bits;
        q = abs_bits >> shift;
        rest = abs_bits & ((1u << shift) - 1u);
        half = 1u << (shift - 1);
        if (rest > half || (rest == half && (q & 1u))) q++;
        return q - ((uint32_t)(127 - bias) << mantissa_bits);
    }
    /* Subnormal: value = significand * 2^(exponent - 150); units of the narrow
     * subnormal are 2^(1 - bias - mantissa_bits). */
    int shift = (150 - exponent) + (1 - bias - mantissa_bits);
    if (exponent == 0 || shift > 24) return 0; /* below half the smallest subnormal */
    uint32_t significand = (abs_bits & 0x007FFFFFu) | 0x00800000u;
    q = significand >> shift;
    rest = significand & ((1u << shift) - 1u);
    half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) q++;
    return q; /* a carry into 1 << mantissa_bits is the smallest normal: still right */
}

/* Decode the magnitude of a narrow float code with a finite exponent field. */
static float narrow_finite_to_f32(uint32_t magnitude, int mantissa_bits, int bias)
{
    uint32_t exponent = magnitude >> mantissa_bits;
    uint32_t mantissa = magnitude & ((1u << mantissa_bits) - 1u);
    if (exponent == 0) {
        /* mantissa * 2^(1 - bias - mantissa_bits): exact in f32 for every format here. */
        uint32_t scale_bits = (uint32_t)(127 + 1 - bias - mantissa_bits) << 23;
        return (float)mantissa * f32_from_bits(scale_bits);
    }
    return f32_from_bits(((exponent + (uint32_t)(127 - bias)) << 23) | (mantissa << (23 - mantissa_bits)));
}

/* ---- bf16 ------------------------------------------------------------------------ */

float bf16_to_f32(uint16_t bits) { return f32_from_bits((uint32_t)bits << 16); }

uint16_t f32_to_bf16(float value)
{
    uint32_t bits = f32_bits(value);
    if ((bits & F32_ABS) > F32_INF) return (uint16_t)((bits >> 16) | 0x0040u); /* quiet NaN */
    /* RNE on the low half; a carry into the exponent rounds up to the next binade or
     * to infinity, as it should. */
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* ---- f16 and e5m2: IEEE-like, 5 exponent bits, bias 15 -------------------------- */

/* The two differ only in mantissa width: the all-ones exponent holds the infinities
 * and NaNs, and overflow rounds to infinity. Each format decides what a NaN becomes. */
#define IEEE5_BIAS 15

static float ieee5_to_f32(uint32_t sign, uint32_t magnitude, int mantissa_bits)
{
    uint32_t inf_code = 0x1Fu << mantissa_bits;
    if (magnitude >= inf_code) { /* inf or NaN; NaNs come back quiet, payload kept */
        uint32_t mantissa = (magnitude - inf_code) << (23 - mantissa_bits);
        return f32_from_bits(sign | F32_INF | mantissa | (mantissa ? F32_QUIET : 0u));
    }
    return f32_from_bits(sign | f32_bits(narrow_finite_to_f32(magnitude, mantissa_bits, IEEE5_BIAS)));
}

/* The magnitude code of a finite or infinite (not NaN) `abs_bits`: infinity and
 * overflow round past the largest finite code and are clamped to the inf code. */
static uint32_t f32_to_ieee5(uint32_t abs_bits, int mantissa_bits)
{
    uint32_t inf_code = 0x1Fu << mantissa_bits;
    uint32_t magnitude = round_to_narrow_float(abs_bits, mantissa_bits, IEEE5_BIAS);
    return magnitude < inf_code ? magnitude : inf_code;
}

float f16_to_f32(uint16_t bits) { return ieee5_to_f32((uint32_t)(bits & 0x8000u) << 16, bits & 0x7FFFu, 10); }

uint16_t f32_to_f16(float value)
{
    uint32_t bits = f32_bits(value);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t abs_bits = bits & F32_ABS;
    if (abs_bits > F32_INF) return (uint16_t)(sign | 0x7E00u | ((abs_bits >> 13) & 0x03FFu));
    return (uint16_t)(sign | f32_to_ieee5(abs_bits, 10));
}

float e5m2_to_f32(uint8_t bits) { return ieee5_to_f32((uint32_t)(bits & 0x80u) << 24, bits & 0x7Fu, 2); }

uint8_t f32_to_e5m2(float value)
{
    uint32_t bits = f32_bits(value);
    uint8_t sign = (uint8_t)((bits >> 24) & 0x80u);
    uint32_t abs_bits = bits & F32_ABS;
    if (abs_bits > F32_INF) return (uint8_t)(sign | 0x7Eu); /* no room for a payload */
    return (uint8_t)(sign | f32_to_ieee5(abs_bits, 2));
}

/* ---- f8 e4m3fn: no infinities, S.1111.111 is NaN, max 448 ------------------------- */

float e4m3_to_f32(uint8_t bits)
{
    uint32_t sign = (uint32_t)(bits & 0x80u) << 24;
    uint32_t magnitude = bits & 0x7Fu;
    if (magnitude == 0x7Fu) return f32_from_bits(sign | F32_INF | F32_QUIET);
    return f32_from_bits(sign | f32_bits(narrow_finite_to_f32(magnitude, 3, 7)));
}

uint8_t f32_to_e4m3(float value)
{
    uint32_t bits = f32_bits(value);
    uint8_t sign = (uint8_t)((bits >> 24) & 0x80u);
    uint32_t abs_bits = bits & F32_ABS;
    if (abs_bits > F32_INF) return (uint8_t)(sign | 0x7Fu);
    uint32_t magnitude = round_to_narrow_float(abs_bits, 3, 7);
    if (magnitude > 0x7Eu) magnitude = 0x7Eu; /* saturate at 448 rather than hit NaN; inf too */
    return (uint8_t)(sign | magnitude);
}

/* ---- bulk decode ----------------------------------------------------------------- */

/* Tensor data comes straight from a mapped file and need not be aligned for its type,
 * so every load below goes through memcpy (which compiles to a plain load). */

/* Hot path when loading bf16 weights: a widening shift per element, eight at a time
 * with AVX2 (gcc 12 -O2 does not vectorise the scalar loop by itself). */
static void bf16_block_to_f32(const unsigned char *src, float *dst, size_t n)
{
    size_t i = 0;
#ifdef DTYPE_HAVE_AVX2
    for (; i + 8 <= n; i += 8) {
        __m128i halves = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
        __m256i widened = _mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(widened));
    }
#endif
    for (; i < n; i++) {
        uint16_t half;
        memcpy(&half, src + 2 * i, 2);
        dst[i] = bf16_to_f32(half);
    }
}

/* Hot path for f16 weights: eight at a time with F16C when the build targets it. */
static void f16_block_to_f32(const unsigned char *src, float *dst, size_t n)
{
    size_t i = 0;
#ifdef DTYPE_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m128i halves = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
    }
#endif
    for (; i < n; i++) {
        uint16_t half;
        memcpy(&half, src + 2 * i, 2);
        dst[i] = f16_to_f32(half);
    }
}

static void f8_block_to_f32(const unsigned char *src, float *dst, size_t n, float (*decode)(uint8_t))
{
    if (n < 1024) {
        for (size_t i = 0; i < n; i++) dst[i] = decode(src[i]);
        return;
    }
    float table[256]; /* 256 codes: a lookup beats decoding once n is large */
    for (int code = 0; code < 256; code++) table[code] = decode((uint8_t)code);
    for (size_t i = 0; i < n; i++) dst[i] = table[src[i]];
}

/* Integers and F64: one generic loop per type, converting by value. */
#define DECODE_BY_VALUE(ctype)                        \
    for (size_t i = 0; i < n; i++) {                  \
        ctype element;                                \
        memcpy(&element, bytes + i * sizeof element, sizeof element); \
        dst[i] = (float)element;                      \
    }

void dtype_to_f32(dtype t, const void *src, float *dst, size_t n)
{
    const unsigned char *bytes = src;
    switch (t) {
    case DTYPE_F32: memmove(dst, src, n * sizeof(float)); break;
    case DTYPE_BF16: bf16_block_to_f32(bytes, dst, n); break;
    case DTYPE_F16: f16_block_to_f32(bytes, dst, n); break;
    case DTYPE_F8_E4M3: f8_block_to_f32(bytes, dst, n, e4m3_to_f32); break;
    case DTYPE_F8_E5M2: f8_block_to_f32(bytes, dst, n, e5m2_to_f32); break;
    case DTYPE_F64: DECODE_BY_VALUE(double); break;
    case DTYPE_I64: DECODE_BY_VALUE(int64_t); break;
    case DTYPE_I32: DECODE_BY_VALUE(int32_t); break;
    case DTYPE_I16: DECODE_BY_VALUE(int16_t); break;
    case DTYPE_I8: DECODE_BY_VALUE(int8_t); break;
    case DTYPE_U8: DECODE_BY_VALUE(uint8_t); break;
    case DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = bytes[i] ? 1.0f : 0.0f;
        break;
    default: break; /* not a dtype: nothing sensible to write */
    }
}

/* ---- bulk encode ----------------------------------------------------------------- */

static void f32_to_f16_block(const float *src, unsigned char *dst, size_t n)
{
    size_t i = 0;
#ifdef DTYPE_HAVE_F16C
    /* The hardware conversion is RNE with the same overflow and NaN results as
     * f32_to_f16 (quiet bit set, payload truncated); tests compare the two. */
    for (; i + 8 <= n; i += 8) {
        __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), halves);
    }
#endif
    for (; i < n; i++) {
        uint16_t half = f32_to_f16(src[i]);
        memcpy(dst + 2 * i, &half, 2);
    }
}

static void f32_to_bf16_block(const float *src, unsigned char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t half = f32_to_bf16(src[i]);
        memcpy(dst + 2 * i, &half, 2);
    }
}

canvas_status dtype_from_f32(dtype t, const float *src, void *dst, size_t n)
{
    unsigned char *bytes = dst;
    switch (t) {
    case DTYPE_F32: memmove(dst, src, n * sizeof(float)); return CANVAS_OK;
    case DTYPE_BF16: f32_to_bf16_block(src, bytes, n); return CANVAS_OK;
    case DTYPE_F16: f32_to_f16_block(src, bytes, n); return CANVAS_OK;
    case DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) bytes[i] = f32_to_e4m3(src[i]);
        return CANVAS_OK;
    case DTYPE_F8_E5M2:
        for (size_t i = 0; i < n; i++) bytes[i] = f32_to_e5m2(src[i]);
        return CANVAS_OK;
    case DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double wide = src[i];
            memcpy(bytes + 8 * i, &wide, 8);
        }
        return CANVAS_OK;
    default:
        return status_fail(CANVAS_ERR_UNSUPPORTED, "converting f32 to %s: not a float storage type",
                           dtype_name(t));
    }
}
