/* SPDX-License-Identifier: Apache-2.0 */
/* test_dtype.c — the dtype table and every conversion, checked exhaustively.
 *
 * The reference for decoding is an ldexp formula written from the format definitions;
 * the reference for encoding is a search over the sorted table of a format's finite
 * values (nearest value, ties to the even code), so neither shares code with
 * src/tensor/dtype.c. Rules checked besides plain values:
 *   - decode -> encode gives back every code, except NaN codes, which come back as a
 *     NaN of the same sign (bf16/f16/e5m2: the quiet bit set, payload kept where the
 *     format has room; e4m3fn: the one NaN code 0x7F|sign). -0 comes back as -0.
 *   - every midpoint between adjacent codes goes to the even code, one f32 ulp above
 *     it to the upper code and one ulp below to the lower code. */
#include <float.h>
#include <stdint.h>

#include "check.h"
#include "tensor/dtype.h"

/* ---- a description of each narrow format, and the references ---------------------- */

typedef struct format {
    const char *name;
    int exponent_bits, mantissa_bits, bias;
    int has_inf;        /* IEEE-like top exponent (inf + NaN) vs e4m3fn (only S.1111.111 NaN) */
    int saturates;      /* overflow goes to the largest finite value instead of inf */
    int bits;           /* 16 or 8 */
    float (*decode)(unsigned code);
    unsigned (*encode)(float value);
} format;

static float dec_bf16(unsigned c) { return bf16_to_f32((uint16_t)c); }
static float dec_f16(unsigned c) { return f16_to_f32((uint16_t)c); }
static float dec_e4m3(unsigned c) { return e4m3_to_f32((uint8_t)c); }
static float dec_e5m2(unsigned c) { return e5m2_to_f32((uint8_t)c); }
static unsigned enc_bf16(float v) { return f32_to_bf16(v); }
static unsigned enc_f16(float v) { return f32_to_f16(v); }
static unsigned enc_e4m3(float v) { return f32_to_e4m3(v); }
static unsigned enc_e5m2(float v) { return f32_to_e5m2(v); }

static const format formats[] = {
    {"bf16", 8, 7, 127, 1, 0, 16, dec_bf16, enc_bf16},
    {"f16", 5, 10, 15, 1, 0, 16, dec_f16, enc_f16},
    {"e4m3fn", 4, 3, 7, 0, 1, 8, dec_e4m3, enc_e4m3},
    {"e5m2", 5, 2, 15, 1, 0, 8, dec_e5m2, enc_e5m2},
};
#define N_FORMATS (int)(sizeof formats / sizeof formats[0])

static unsigned sign_bit(const format *f) { return 1u << (f->bits - 1); }
static unsigned top_exponent(const format *f) { return (1u << f->exponent_bits) - 1u; }

static int is_nan_code(const format *f, unsigned code)
{
    unsigned magnitude = code & (sign_bit(f) - 1u);
    unsigned exponent = magnitude >> f->mantissa_bits, mantissa = magnitude & ((1u << f->mantissa_bits) - 1u);
    if (f->has_inf) return exponent == top_exponent(f) && mantissa != 0;
    return magnitude == sign_bit(f) - 1u;
}

/* Value of the magnitude code as the exponent/mantissa formula gives it, ignoring what
 * the top exponent means: for the first code past the largest finite one this is
 * the value overflow rounding compares against. */
static double formula_value(const format *f, unsigned magnitude)
{
    int exponent = (int)(magnitude >> f->mantissa_bits);
    double mantissa = (double)(magnitude & ((1u << f->mantissa_bits) - 1u));
    if (exponent == 0) return ldexp(mantissa, 1 - f->bias - f->mantissa_bits);
    return ldexp(ldexp(1.0, f->mantissa_bits) + mantissa, exponent - f->bias - f->mantissa_bits);
}

/* Reference decode: NaN, +-inf or the formula, with the sign applied. */
static double reference_decode(const format *f, unsigned code)
{
    unsigned magnitude = code & (sign_bit(f) - 1u);
    double sign = (code & sign_bit(f)) ? -1.0 : 1.0;
    if (is_nan_code(f, code)) return NAN;
    if (f->has_inf && (magnitude >> f->mantissa_bits) == top_exponent(f)) return sign * INFINITY;
    return sign * formula_value(f, magnitude);
}

/* Number of non-negative finite codes: 0 .. largest finite. */
static unsigned finite_count(const format *f)
{
    return f->has_inf ? top_exponent(f) << f->mantissa_bits : sign_bit(f) - 1u;
}

/* Reference encode of a finite or infinite non-NaN value: nearest finite value by
 * binary search over the (monotonic) magnitude codes, ties to the even code; past the
 * largest finite value, compare against the next formula value for overflow. */
static unsigned reference_encode(const format *f, double value)
{
    unsigned sign = signbit(value) ? sign_bit(f) : 0u;
    double a = fabs(value);
    unsigned n = finite_count(f), max_code = n - 1u;
    unsigned overflow_code = f->saturates ? max_code : n; /* n is the inf code */
    if (isinf(a)) return sign | overflow_code;
    unsigned low = 0, high = n; /* largest code with value <= a, in [low, high) */
    if (a >= formula_value(f, max_code)) {
        low = max_code;
    } else {
        while (high - low > 1) {
            unsigned mid = (low + high) / 2;
            if (formula_value(f, mid) <= a) low = mid;
            else high = mid;
        }
    }
    double below = formula_value(f, low), above = formula_value(f, low + 1u);
    unsigned code;
    if (a - below < above - a) code = low;
    else if (a - below > above - a) code = low + 1u;
    else code = (low & 1u) ? low + 1u : low;
    if (code > max_code) code = overflow_code;
    return sign | code;
}

/* Bit pattern of the f32 reached from the exact double `value`. */
static uint32_t f32_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return bits;
}

static float f32_from_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

/* ---- exhaustive checks ----------------------------------------------------------- */

/* Decode of every code equals the formula (bit for bit for the f32 result, which is
 * exact: every value of these formats is an f32). */
static void test_decode_every_code(void)
{
    for (int k = 0; k < N_FORMATS; k++) {
        const format *f = &formats[k];
        int bad = 0;
        for (unsigned code = 0; code < (1u << f->bits); code++) {
            float got = f->decode(code);
            double want = reference_decode(f, code);
            int same = isnan(want) ? (isnan(got) && !signbit(got) == !(code & sign_bit(f)))
                                   : ((double)got == want && !signbit(got) == !signbit(want));
            if (!same && bad++ < 5) fprintf(stderr, "%s decode 0x%x: got %a want %a\n", f->name, code, (double)got, want);
        }
        CHECK_MSG(bad == 0, "%s: %d codes decode wrongly", f->name, bad);
    }
}

/* decode -> encode is the identity on every non-NaN code; NaN codes stay NaN codes of
 * the same sign. */
static void test_round_trip_every_code(void)
{
    for (int k = 0; k < N_FORMATS; k++) {
        const format *f = &formats[k];
        int bad = 0;
        for (unsigned code = 0; code < (1u << f->bits); code++) {
            unsigned back = f->encode(f->decode(code));
            int ok = is_nan_code(f, code) ? (is_nan_code(f, back) && (back & sign_bit(f)) == (code & sign_bit(f)))
                                          : back == code;
            if (!ok && bad++ < 5) fprintf(stderr, "%s round trip 0x%x -> 0x%x\n", f->name, code, back);
        }
        CHECK_MSG(bad == 0, "%s: %d codes do not round-trip", f->name, bad);
    }
    /* The NaN rules stated in dtype.h and above, precisely. */
    CHECK(f32_to_bf16(bf16_to_f32(0x7F81)) == 0x7FC1);           /* signalling -> quiet, payload kept */
    CHECK(f32_to_bf16(bf16_to_f32(0xFFC0)) == 0xFFC0);
    CHECK(f32_to_f16(f16_to_f32(0x7C01)) == 0x7E01);
    CHECK(f32_to_f16(f16_to_f32(0xFE00)) == 0xFE00);
    CHECK(f32_to_e4m3(e4m3_to_f32(0xFF)) == 0xFF);
    CHECK(f32_to_e5m2(e5m2_to_f32(0x7D)) == 0x7E); /* e5m2 keeps no payload: the one quiet NaN */
    CHECK(f32_to_e5m2(e5m2_to_f32(0xFF)) == 0xFE);
}

/* Midpoints between adjacent codes (both signs): ties to even, one f32 ulp either side
 * to the nearer code. Includes 0 / smallest subnormal and the largest finite value /
 * overflow (whose upper neighbour is inf, or the saturated max for e4m3fn). */
static void test_midpoints_every_pair(void)
{
    for (int k = 0; k < N_FORMATS; k++) {
        const format *f = &formats[k];
        unsigned n = finite_count(f);
        int bad = 0;
        for (unsigned low = 0; low < n; low++) {
            /* Every midpoint is exact in f32: at most mantissa_bits + 2 significant
             * bits, and far above f32's smallest subnormal for all four formats. */
            double mid = (formula_value(f, low) + formula_value(f, low + 1u)) / 2.0;
            float m = (float)mid;
            if ((double)m != mid) {
                bad++;
                continue;
            }
            unsigned upper = low + 1u < n ? low + 1u : (f->saturates ? low : n);
            unsigned tie = (low & 1u) ? upper : low;
            for (int s = 0; s < 2; s++) {
                unsigned sign = s ? sign_bit(f) : 0u;
                float ms = s ? -m : m;
                float above = nextafterf(ms, s ? -INFINITY : INFINITY), below = nextafterf(ms, 0.0f);
                int ok = f->encode(ms) == (sign | tie) && f->encode(above) == (sign | upper) &&
                         f->encode(below) == (sign | low);
                if (!ok && bad++ < 5)
                    fprintf(stderr, "%s midpoint %a (codes 0x%x/0x%x): tie 0x%x above 0x%x below 0x%x\n", f->name,
                            (double)ms, sign | low, sign | upper, f->encode(ms), f->encode(above), f->encode(below));
            }
        }
        CHECK_MSG(bad == 0, "%s: %d midpoints round wrongly", f->name, bad);
    }
}

/* ---- special values ---------------------------------------------------------------- */

static void test_overflow_saturation_nan(void)
{
    /* bf16: largest finite 0x7F7F; its midpoint with 2^128 rounds (to even) to inf. */
    CHECK(f32_to_bf16(f32_from_bits(0x7F7F7FFF)) == 0x7F7F);
    CHECK(f32_to_bf16(f32_from_bits(0x7F7F8000)) == 0x7F80);
    CHECK(f32_to_bf16(FLT_MAX) == 0x7F80);
    CHECK(f32_to_bf16(-INFINITY) == 0xFF80);
    CHECK(f32_to_bf16(NAN) == 0x7FC0);
    CHECK(f32_to_bf16(-NAN) == 0xFFC0);
    CHECK(f32_to_bf16(f32_from_bits(0x7F800001)) == 0x7FC0); /* sNaN with payload only low: still NaN */
    CHECK(f32_to_bf16(f32_from_bits(0x00000001)) == 0x0000);  /* f32 subnormals round like anything else */
    CHECK(f32_to_bf16(f32_from_bits(0x00008000)) == 0x0000);  /* tie -> even (0) */
    CHECK(f32_to_bf16(f32_from_bits(0x00018000)) == 0x0002);  /* tie -> even (2) */
    /* f16: max 65504; 65520 is the midpoint to 2^16 and goes to inf. */
    CHECK(f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(f32_to_f16(65519.996f) == 0x7BFF);
    CHECK(f32_to_f16(65520.0f) == 0x7C00);
    CHECK(f32_to_f16(-1e10f) == 0xFC00);
    CHECK(f32_to_f16(INFINITY) == 0x7C00);
    CHECK(f32_to_f16(NAN) == 0x7E00);
    CHECK(f32_to_f16(-NAN) == 0xFE00);
    CHECK(f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);   /* smallest subnormal */
    CHECK(f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);   /* half of it: tie -> 0 */
    CHECK(f32_to_f16(ldexpf(1.5f, -25)) == 0x0001);
    CHECK(f32_to_f16(-ldexpf(1.0f, -26)) == 0x8000);  /* -0 keeps its sign */
    CHECK(f32_to_f16(f32_from_bits(1)) == 0x0000);
    CHECK(f32_to_f16(ldexpf(1023.0f, -24)) == 0x03FF); /* largest subnormal, exact */
    CHECK(f32_to_f16(ldexpf(1023.5f, -24)) == 0x0400); /* rounds up into the smallest normal */
    /* e4m3fn: saturates at 448 for everything beyond, inf included; NaN is 0x7F|sign. */
    CHECK(e4m3_to_f32(0x7E) == 448.0f);
    CHECK(f32_to_e4m3(448.0f) == 0x7E);
    CHECK(f32_to_e4m3(464.0f) == 0x7E);
    CHECK(f32_to_e4m3(480.0f) == 0x7E);
    CHECK(f32_to_e4m3(1e30f) == 0x7E);
    CHECK(f32_to_e4m3(-1e30f) == 0xFE);
    CHECK(f32_to_e4m3(INFINITY) == 0x7E);
    CHECK(f32_to_e4m3(-INFINITY) == 0xFE);
    CHECK(f32_to_e4m3(NAN) == 0x7F);
    CHECK(f32_to_e4m3(-NAN) == 0xFF);
    CHECK(isnan(e4m3_to_f32(0x7F)) && isnan(e4m3_to_f32(0xFF)));
    CHECK(e4m3_to_f32(0x01) == ldexpf(1.0f, -9));
    CHECK(f32_to_e4m3(ldexpf(1.0f, -10)) == 0x00); /* tie with 0 -> 0 */
    CHECK(f32_to_e4m3(-ldexpf(1.0f, -10)) == 0x80);
    /* e5m2: max 57344; 61440 is the midpoint to 2^16 and goes to inf. */
    CHECK(e5m2_to_f32(0x7B) == 57344.0f);
    CHECK(f32_to_e5m2(61439.996f) == 0x7B);
    CHECK(f32_to_e5m2(61440.0f) == 0x7C);
    CHECK(f32_to_e5m2(-1e9f) == 0xFC);
    CHECK(f32_to_e5m2(INFINITY) == 0x7C && e5m2_to_f32(0x7C) == INFINITY && e5m2_to_f32(0xFC) == -INFINITY);
    CHECK(f32_to_e5m2(NAN) == 0x7E);
    CHECK(f32_to_e5m2(-NAN) == 0xFE);
    CHECK(e5m2_to_f32(0x01) == ldexpf(1.0f, -16));
}

/* ---- random f32 patterns against the reference ------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Check encode on n f32 patterns: all exponents, then exponents near the format's range
 * (where nearly all the interesting rounding is). NaN patterns are checked by
 * test_random_nan_encodes. */
static void check_random_encodes(const format *f, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        uint32_t bits = next_random();
        if (i & 1) {
            int span = f->bias * 2 + f->mantissa_bits + 6;
            int exponent = 127 - f->bias - f->mantissa_bits - 3 + (int)(next_random() % (uint32_t)span);
            bits = (bits & 0x807FFFFFu) | ((uint32_t)exponent << 23);
        }
        if ((bits & 0x7FFFFFFFu) > 0x7F800000u) continue;
        float value = f32_from_bits(bits);
        unsigned got = f->encode(value), want = reference_encode(f, (double)value);
        if (got != want && bad++ < 5)
            fprintf(stderr, "%s encode 0x%08x (%a): got 0x%x want 0x%x\n", f->name, bits, (double)value, got, want);
    }
    CHECK_MSG(bad == 0, "%s: %d of %d random encodes differ from the reference", f->name, bad, n);
}

/* Every NaN gives a NaN code of the same sign, whatever its payload. (gcc 12.2 -O2
 * miscounted this check when it shared a loop with the one above: its jump threading
 * took correct NaN results for failures; clang and gcc -O0/-O1 did not. Kept apart.) */
static void test_random_nan_encodes(void)
{
    for (int k = 0; k < N_FORMATS; k++) {
        const format *f = &formats[k];
        int bad = 0;
        for (int i = 0; i < 1 << 16; i++) {
            uint32_t payload = next_random() & 0x007FFFFFu;
            uint32_t bits = (i & 1 ? 0xFF800000u : 0x7F800000u) | (payload ? payload : 1u);
            unsigned got = f->encode(f32_from_bits(bits));
            int ok = is_nan_code(f, got) && ((got & sign_bit(f)) != 0) == ((i & 1) != 0);
            if (!ok && bad++ < 5) fprintf(stderr, "%s encode NaN 0x%08x: got 0x%x\n", f->name, bits, got);
        }
        CHECK_MSG(bad == 0, "%s: %d NaN encodes are not NaN codes of the same sign", f->name, bad);
    }
}

static void test_random_f32_encodes(void)
{
    check_random_encodes(&formats[0], 1 << 20); /* bf16 */
    check_random_encodes(&formats[1], 1 << 19); /* f16 */
    check_random_encodes(&formats[2], 1 << 18); /* e4m3fn */
    check_random_encodes(&formats[3], 1 << 18); /* e5m2 */
}

/* ---- the table and the bulk converters -------------------------------------------- */

static void test_table(void)
{
    static const struct { dtype t; const char *name; size_t size; int is_float; } expected[] = {
        {DTYPE_F64, "F64", 8, 1},  {DTYPE_F32, "F32", 4, 1},          {DTYPE_F16, "F16", 2, 1},
        {DTYPE_BF16, "BF16", 2, 1}, {DTYPE_I64, "I64", 8, 0},         {DTYPE_I32, "I32", 4, 0},
        {DTYPE_I16, "I16", 2, 0},  {DTYPE_I8, "I8", 1, 0},            {DTYPE_U8, "U8", 1, 0},
        {DTYPE_BOOL, "BOOL", 1, 0}, {DTYPE_F8_E4M3, "F8_E4M3", 1, 1}, {DTYPE_F8_E5M2, "F8_E5M2", 1, 1},
    };
    CHECK(sizeof expected / sizeof expected[0] == DTYPE_COUNT);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        dtype parsed = DTYPE_COUNT;
        CHECK(dtype_size(expected[i].t) == expected[i].size);
        CHECK(strcmp(dtype_name(expected[i].t), expected[i].name) == 0);
        CHECK(dtype_is_float(expected[i].t) == expected[i].is_float);
        CHECK(dtype_from_name(expected[i].name, &parsed) == CANVAS_OK && parsed == expected[i].t);
    }
    dtype unused;
    CHECK(dtype_from_name("F8_E4M3FN", &unused) == CANVAS_ERR_INPUT);
    CHECK(dtype_from_name("f32", &unused) == CANVAS_ERR_INPUT);
    CHECK(dtype_from_name("", &unused) == CANVAS_ERR_INPUT);
}

/* Bulk decode of every bf16 and f16 code, from an odd (unaligned) address, equals the
 * scalar decode bit for bit. */
static void test_bulk_decode(void)
{
    static unsigned char raw[2 * 65536 + 1];
    static float out[65536];
    for (unsigned code = 0; code < 65536; code++) {
        raw[1 + 2 * code] = (unsigned char)(code & 0xFF);
        raw[2 + 2 * code] = (unsigned char)(code >> 8);
    }
    for (int k = 0; k < 2; k++) {
        dtype t = k ? DTYPE_F16 : DTYPE_BF16;
        dtype_to_f32(t, raw + 1, out, 65536);
        int bad = 0;
        for (unsigned code = 0; code < 65536; code++) {
            float want = k ? f16_to_f32((uint16_t)code) : bf16_to_f32((uint16_t)code);
            if (f32_bits(out[code]) != f32_bits(want) && bad++ < 3)
                fprintf(stderr, "%s bulk 0x%04x: 0x%08x vs 0x%08x\n", dtype_name(t), code, f32_bits(out[code]),
                        f32_bits(want));
        }
        CHECK_MSG(bad == 0, "%s: %d bulk decodes differ", dtype_name(t), bad);
    }
    /* fp8 through the table path (n >= 1024) and the short path. */
    static unsigned char codes[2048];
    for (int i = 0; i < 2048; i++) codes[i] = (unsigned char)(i * 7);
    for (int k = 0; k < 2; k++) {
        dtype t = k ? DTYPE_F8_E5M2 : DTYPE_F8_E4M3;
        for (size_t n = 100; n <= 2048; n += 1948) {
            dtype_to_f32(t, codes, out, n);
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                float want = k ? e5m2_to_f32(codes[i]) : e4m3_to_f32(codes[i]);
                bad += f32_bits(out[i]) != f32_bits(want);
            }
            CHECK_MSG(bad == 0, "%s n=%zu: %d bulk decodes differ", dtype_name(t), n, bad);
        }
    }
}

static void test_bulk_integers(void)
{
    float out[4];
    const int64_t i64[4] = {-3, 0, 1 << 24, INT64_C(1) << 40};
    dtype_to_f32(DTYPE_I64, i64, out, 4);
    CHECK(out[0] == -3.0f && out[1] == 0.0f && out[2] == 16777216.0f && out[3] == ldexpf(1.0f, 40));
    const int32_t i32[4] = {-7, 5, INT32_MIN, 16777217};
    dtype_to_f32(DTYPE_I32, i32, out, 4);
    CHECK(out[0] == -7.0f && out[1] == 5.0f && out[2] == -2147483648.0f && out[3] == 16777216.0f);
    const int16_t i16[4] = {-32768, 32767, 0, -1};
    dtype_to_f32(DTYPE_I16, i16, out, 4);
    CHECK(out[0] == -32768.0f && out[1] == 32767.0f && out[3] == -1.0f);
    const int8_t i8[4] = {-128, 127, 0, -1};
    dtype_to_f32(DTYPE_I8, i8, out, 4);
    CHECK(out[0] == -128.0f && out[1] == 127.0f && out[3] == -1.0f);
    const uint8_t u8[4] = {0, 255, 128, 1};
    dtype_to_f32(DTYPE_U8, u8, out, 4);
    CHECK(out[1] == 255.0f && out[2] == 128.0f);
    const uint8_t flags[4] = {0, 1, 2, 255};
    dtype_to_f32(DTYPE_BOOL, flags, out, 4);
    CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f && out[3] == 1.0f);
    const double f64[4] = {0.1, -1e300, 1.0 + ldexp(1.0, -24), 1.0 + ldexp(1.0, -24) + ldexp(1.0, -40)};
    dtype_to_f32(DTYPE_F64, f64, out, 4);
    CHECK(out[0] == 0.1f && out[1] == -INFINITY);
    CHECK(out[2] == 1.0f);                           /* tie -> even */
    CHECK(out[3] == 1.0f + ldexpf(1.0f, -23));       /* just above the tie -> up */
    int32_t target[4];
    float source[4] = {1, 2, 3, 4};
    CHECK_FAILS(dtype_from_f32(DTYPE_I32, source, target, 4), CANVAS_ERR_UNSUPPORTED, "I32");
}

/* Bulk encode (F16C on this build when available) equals the scalar encode, NaNs and
 * odd lengths included. */
static void test_bulk_encode(void)
{
    enum { N = 4099 };
    static float source[N];
    static unsigned char packed[2 * N + 8];
    static double wide[N];
    for (int i = 0; i < N; i++) source[i] = f32_from_bits(next_random());
    source[0] = NAN;
    source[1] = -INFINITY;
    source[2] = 65520.0f;
    source[3] = ldexpf(1.0f, -25);
    for (int k = 0; k < 4; k++) {
        static const dtype targets[4] = {DTYPE_F16, DTYPE_BF16, DTYPE_F8_E4M3, DTYPE_F8_E5M2};
        dtype t = targets[k];
        size_t element = dtype_size(t);
        CHECK_OK(dtype_from_f32(t, source, packed + 1, N));
        int bad = 0;
        for (int i = 0; i < N; i++) {
            unsigned got = packed[1 + element * (size_t)i], want;
            if (element == 2) got |= (unsigned)packed[2 + 2 * (size_t)i] << 8;
            switch (t) {
            case DTYPE_F16: want = f32_to_f16(source[i]); break;
            case DTYPE_BF16: want = f32_to_bf16(source[i]); break;
            case DTYPE_F8_E4M3: want = f32_to_e4m3(source[i]); break;
            default: want = f32_to_e5m2(source[i]); break;
            }
            if (got != want && bad++ < 3) fprintf(stderr, "%s bulk encode %d: 0x%x vs 0x%x\n", dtype_name(t), i, got, want);
        }
        CHECK_MSG(bad == 0, "%s: %d bulk encodes differ", dtype_name(t), bad);
    }
    CHECK_OK(dtype_from_f32(DTYPE_F64, source, wide, N));
    int same = 1;
    for (int i = 4; i < N; i++) same &= isnan(source[i]) ? isnan(wide[i]) : wide[i] == (double)source[i];
    CHECK(same);
    /* f32 -> f32 and back through the bulk decoder is the identity. */
    static float back[N];
    CHECK_OK(dtype_from_f32(DTYPE_F32, source, packed, 1000));
    dtype_to_f32(DTYPE_F32, packed, back, 1000);
    CHECK(memcmp(back, source, 1000 * sizeof(float)) == 0);
}

int main(void)
{
    RUN(test_table);
    RUN(test_decode_every_code);
    RUN(test_round_trip_every_code);
    RUN(test_midpoints_every_pair);
    RUN(test_overflow_saturation_nan);
    RUN(test_random_f32_encodes);
    RUN(test_random_nan_encodes);
    RUN(test_bulk_decode);
    RUN(test_bulk_integers);
    RUN(test_bulk_encode);
    return check_summary();
}
