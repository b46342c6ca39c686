/* SPDX-License-Identifier: Apache-2.0 */
/* test_ggml_quantize.c — ggml_quantize_row (tensor/ggml_quantize.h): every type's blocks
 * decode (through ggml_to_f32, itself bit-exact with gguf-py) within the error the format
 * and the rule allow, element by element; Q8_0 is byte for byte gguf-py's quantize.
 *
 * The bound of each element is derived from its block alone (ggml_quantize.h):
 *   F16 / BF16     half an ulp: e16(x) / |x| 2^-8, e16(v) = max(|v| 2^-11, 2^-25) (f16's
 *                  rounding, subnormals included)
 *   Q8_0           amax / 254 (half a step) + 127 e16(d) (d's f16 rounding x 127), d = amax / 127
 *   Q4_0 / Q5_0    |d| (the element opposite the largest lands one step short) + h e16(d),
 *                  d = amax / h, h = 8 / 16
 *   Q4_1 / Q5_1    d / 2 + t e16(d) + e16(min), d = (max - min) / t, t = 15 / 31
 *   Q2_K Q4_K Q5_K s / 2 + (qmax / 2 + 1/4) d + dmin / 2 per sub-block, s = (max - min(lo, 0)) / qmax
 *   Q3_K Q6_K      s / 2 + (z / 2 + 1/4) d, s the smallest signed scale covering the sub-block
 * with d and dmin read from the block as stored, plus 1e-6 of the block's amax for f32
 * rounding. The worst error / bound and error / amax per type are printed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "io/gguf.h"
#include "tensor/dtype.h"
#include "tensor/ggml_quantize.h"

static const ggml_type TYPES[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

enum { ROW = 768, ROWS = 3 }; /* 3 K blocks or 24 blocks of 32 per row; an odd row count */

static float f16_field(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static void range_of(const float *x, int n, float *lo, float *hi, float *amax)
{
    *lo = *hi = x[0];
    *amax = 0.0f;
    for (int i = 0; i < n; i++) {
        *lo = fminf(*lo, x[i]);
        *hi = fmaxf(*hi, x[i]);
        *amax = fmaxf(*amax, fabsf(x[i]));
    }
}

/* The allowed error of element e (0 .. block elements - 1) of block x, stored as b. */
/* How far f16 rounding moves v: half an ulp, 2^-25 among the subnormals. */
static double f16_err(double v) { return fmax(fabs(v) * ldexp(1.0, -11), ldexp(1.0, -25)); }

static double bound_of(ggml_type type, const float *x, const uint8_t *b, int e)
{
    float lo, hi, amax;
    switch (type) {
    case GGML_TYPE_F32: return 0.0;
    case GGML_TYPE_F16: return f16_err(x[0]);
    case GGML_TYPE_BF16: return fabs((double)x[0]) * ldexp(1.0, -8);
    case GGML_TYPE_Q8_0: range_of(x, 32, &lo, &hi, &amax); return amax / 254.0 + 127 * f16_err(amax / 127.0);
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q5_0: {
        double h = type == GGML_TYPE_Q4_0 ? 8 : 16;
        range_of(x, 32, &lo, &hi, &amax);
        return amax / h + h * f16_err(amax / h);
    }
    case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_1: {
        double t = type == GGML_TYPE_Q4_1 ? 15 : 31;
        range_of(x, 32, &lo, &hi, &amax);
        double d = ((double)hi - lo) / t;
        return d / 2 + t * f16_err(d) + f16_err(lo);
    }
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: {
        int sub = type == GGML_TYPE_Q2_K ? 16 : 32, qmax = type == GGML_TYPE_Q2_K ? 3 : type == GGML_TYPE_Q4_K ? 15 : 31;
        const uint8_t *dd = type == GGML_TYPE_Q2_K ? b + 80 : b;
        const float *s0 = x + e / sub * sub;
        range_of(s0, sub, &lo, &hi, &amax);
        double s = ((double)hi - fmin(lo, 0.0)) / qmax;
        return s / 2 + (qmax / 2.0 + 0.25) * f16_field(dd) + f16_field(dd + 2) / 2.0;
    }
    case GGML_TYPE_Q3_K:
    case GGML_TYPE_Q6_K: {
        double z = type == GGML_TYPE_Q3_K ? 4 : 32;
        const float *s0 = x + e / 16 * 16;
        range_of(s0, 16, &lo, &hi, &amax);
        double neg = fmax(-lo, 0.0), pos = fmax(hi, 0.0);
        double s = fmin(fmax(neg / z, pos / (z - 1)), fmax(neg / (z - 1), pos / z));
        return s / 2 + (z / 2 + 0.25) * f16_field(type == GGML_TYPE_Q3_K ? b + 108 : b + 208);
    }
    }
    return 0.0;
}

/* Row kinds: random of several shapes, structured ones, and magnitudes far from 1. */
static float input(int kind, int i, uint32_t *rng)
{
    float u = test_uniform(rng);
    switch (kind) {
    case 0: return u;
    case 1: return u * (float)(1 + i % 7);             /* magnitudes varying inside blocks */
    case 2: return u + 1.5f;                            /* all positive */
    case 3: return u * 0.25f - 3.0f;                    /* all negative */
    case 4: return u * u * u * u * u * 100.0f;          /* heavy tails */
    case 5: return (float)i * 0.001f - 0.4f;            /* a ramp */
    case 6: return 0.0f;
    case 7: return i < ROW ? 0.37f : -2.5f;             /* constant rows */
    case 8: return i % 97 == 5 ? 40.0f : 0.0f;          /* spikes in zeros */
    case 9: return u * 1e-3f;
    default: return u * 1e3f;
    }
}
#define N_KINDS 11

static void test_round_trips(void)
{
    const size_t n = (size_t)ROW * ROWS;
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back);
    uint8_t *whole = malloc(n * 4), *rows = malloc(n * 4);
    for (size_t t = 0; t < N_TYPES; t++) {
        const ggml_type type = TYPES[t];
        const int per_block = (int)ggml_type_block_elements(type);
        const size_t block_bytes = ggml_type_block_bytes(type);
        uint64_t row_bytes = 0;
        CHECK_OK(ggml_type_bytes(type, ROW, &row_bytes));
        double worst_ratio = 0.0, worst_rel = 0.0; /* error / bound; error / the row's amax */
        uint32_t rng = 12345u + (uint32_t)t;
        for (int kind = 0; kind < N_KINDS; kind++) {
            for (size_t i = 0; i < n; i++) x[i] = input(kind, (int)i, &rng);
            /* row by row equals the rows at once: blocks never depend on their neighbours */
            CHECK_OK(ggml_quantize_row(type, x, (int64_t)n, whole));
            for (int r = 0; r < ROWS; r++) CHECK_OK(ggml_quantize_row(type, x + (size_t)r * ROW, ROW, rows + r * row_bytes));
            CHECK_MSG(memcmp(whole, rows, (size_t)row_bytes * ROWS) == 0, "%s kind %d: rows differ from the whole",
                      ggml_type_name(type), kind);
            CHECK_OK(ggml_to_f32(type, whole, back, n));
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                const size_t first = i / per_block * per_block;
                const uint8_t *block = whole + first / per_block * block_bytes;
                float lo, hi, amax, row_amax;
                range_of(x + first, per_block, &lo, &hi, &amax);
                range_of(x + i / ROW * ROW, ROW, &lo, &hi, &row_amax);
                double err = fabs((double)back[i] - x[i]);
                double bound = bound_of(type, x + first, block, (int)(i - first)) + 1e-6 * amax;
                if (kind == 6) bound = 0.0; /* zeros come back as zeros, in every type */
                if (err > bound && bad++ == 0)
                    CHECK_MSG(0, "%s kind %d element %zu: %.9g came back as %.9g (error %.3g > bound %.3g)",
                              ggml_type_name(type), kind, i, x[i], back[i], err, bound);
                if (bound > 0) worst_ratio = fmax(worst_ratio, err / bound);
                if (row_amax > 0 && kind != 4 && kind != 8) worst_rel = fmax(worst_rel, err / row_amax);
            }
        }
        printf("  %-5s worst error / bound %.3f, worst error / row amax %.5f (rows without outliers)\n", ggml_type_name(type),
               worst_ratio, worst_rel);
    }
    free(x), free(back), free(whole), free(rows);
}

/* Q8_0 is gguf-py's quantize, byte for byte (tools/gguf_vectors.py: Q8_0.source / .quantized). */
static void test_q8_0_reference(void)
{
    char path[512];
    gguf_file *file = NULL;
    CHECK_OK(gguf_open(test_path(path, sizeof path, "gguf/vectors.gguf"), &file));
    if (!file) return;
    const gguf_tensor *src = gguf_find(file, "Q8_0.source"), *want = gguf_find(file, "Q8_0.quantized");
    CHECK(src && want && gguf_numel(src) == 768 && want->nbytes == 768 / 32 * 34);
    if (src && want) {
        float x[768];
        unsigned char got[768 / 32 * 34];
        memcpy(x, src->data, sizeof x);
        CHECK_OK(ggml_quantize_row(GGML_TYPE_Q8_0, x, 768, got));
        size_t differ = 0;
        for (size_t i = 0; i < sizeof got; i++) differ += got[i] != ((const unsigned char *)want->data)[i];
        CHECK_MSG(differ == 0, "%zu of %zu bytes differ from gguf-py's Q8_0", differ, sizeof got);
    }
    gguf_close(file);
}

/* gguf-py's rules on hand-made blocks: Q4_0's largest element lands on code 0 and its
 * opposite is clipped; Q4_1's min on code 0 and max on 15; ties of Q8_0 away from zero. */
static void test_known_blocks(void)
{
    float x[32] = {0};
    uint8_t b[34];
    x[3] = -2.0f, x[4] = 2.0f, x[5] = 0.25f; /* the first of largest magnitude: x[3] */
    CHECK_OK(ggml_quantize_row(GGML_TYPE_Q4_0, x, 32, b));
    CHECK(f16_field(b) == 0.25f);          /* d = -2 / -8 */
    CHECK((b[2 + 3] & 0xF) == 0);          /* -2 / 0.25 + 8.5 = 0.5 -> 0 */
    CHECK((b[2 + 4] & 0xF) == 15);         /* 16.5 -> 16, clipped */
    CHECK((b[2 + 5] & 0xF) == 9 && (b[2 + 0] & 0xF) == 8);
    for (int i = 0; i < 32; i++) x[i] = (float)i * 0.5f - 1.0f;
    CHECK_OK(ggml_quantize_row(GGML_TYPE_Q4_1, x, 32, b));
    CHECK(f16_field(b + 2) == -1.0f && (b[4] & 0xF) == 0 && (b[4 + 15] >> 4) == 15);
    for (int i = 0; i < 32; i++) x[i] = i == 0 ? 127.0f : i == 1 ? 2.5f : i == 2 ? -2.5f : 0.0f;
    CHECK_OK(ggml_quantize_row(GGML_TYPE_Q8_0, x, 32, b));
    CHECK(f16_field(b) == 1.0f && (int8_t)b[3] == 3 && (int8_t)b[4] == -3);
}

static void test_refusals(void)
{
    float x[256] = {0};
    uint8_t b[256 * 4];
    CHECK_FAILS(ggml_quantize_row(GGML_TYPE_Q4_K, x, 128, b), CANVAS_ERR_INPUT, "Q4_K");
    CHECK_FAILS(ggml_quantize_row(GGML_TYPE_Q8_0, x, 33, b), CANVAS_ERR_INPUT, "Q8_0");
    CHECK_FAILS(ggml_quantize_row(GGML_TYPE_F16, x, -1, b), CANVAS_ERR_INPUT, "F16");
    CHECK_FAILS(ggml_quantize_row(9, x, 32, b), CANVAS_ERR_INPUT, "Q8_1");
    CHECK_FAILS(ggml_quantize_row(-3, x, 32, b), CANVAS_ERR_INPUT, "unknown");
    CHECK_FAILS(ggml_quantize_row(200, x, 32, b), CANVAS_ERR_INPUT, "unknown");
    CHECK_OK(ggml_quantize_row(GGML_TYPE_Q6_K, x, 0, b)); /* nothing to do */
    for (size_t t = 0; t < N_TYPES; t++) {
        x[70] = NAN;
        CHECK_FAILS(ggml_quantize_row(TYPES[t], x, 256, b), CANVAS_ERR_INPUT, "element 70 is NaN");
        x[70] = -INFINITY;
        CHECK_FAILS(ggml_quantize_row(TYPES[t], x, 256, b), CANVAS_ERR_INPUT, "infinite");
        x[70] = 3.4e38f; /* finite, but no f16 scale (nor an f16 or bf16 element) holds it */
        canvas_status st = ggml_quantize_row(TYPES[t], x, 256, b);
        CHECK_MSG(TYPES[t] == GGML_TYPE_F32 ? st == CANVAS_OK : st == CANVAS_ERR_INPUT, "%s: 3.4e38 gave status %d",
                  ggml_type_name(TYPES[t]), st);
        x[70] = 0.0f;
    }
}

int main(void)
{
    RUN(test_round_trips);
    RUN(test_q8_0_reference);
    RUN(test_known_blocks);
    RUN(test_refusals);
    return check_summary();
}
