/* SPDX-License-Identifier: Apache-2.0 */
/* test_quant.c — quantised weight formats (tensor/quant.h) and their GEMM paths:
 * every code of every format decoded (scalar reference, panel decoder, GEMV), the
 * quantisers' rounding, layouts and bytes per parameter, op_linear with a quantised
 * weight bit-identical to op_linear with its dequantised f32 matrix for any thread count. */
#include <stdint.h>

#include "check.h"
#include "mem/mem.h"
#include "ops/cpu/quant_pack.h"
#include "ops/ops_cpu.h"
#include "ops/ops.h"
#include "ops/threadpool.h"
#include "tensor/quant.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float random_uniform(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static int same_float(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

/* A blob of [out, in] with every code byte given by code_of(row, col) and the scales set. */
typedef struct blob {
    quant_params p;
    uint8_t *bytes;
} blob;

static blob make_blob(quant_format f, int per_channel, int64_t out, int64_t in)
{
    blob b;
    CHECK_OK(quant_layout(f, per_channel, out, in, &b.p));
    b.bytes = calloc(1, b.p.bytes + 64);
    return b;
}

/* Check the scalar decoder against the definition, and the panel decoder and the GEMV
 * against the scalar decoder, on every element. */
static void check_decoders(const blob *b, float (*definition)(const blob *, int64_t, int64_t))
{
    const int64_t out = b->p.out_features, in = b->p.in_features;
    float *row = malloc((size_t)in * sizeof *row);
    float *dense = malloc((size_t)(out * in) * sizeof *dense);
    int bad = 0;
    for (int64_t r = 0; r < out; r++) {
        quant_dequantize_row(&b->p, b->bytes, r, row);
        for (int64_t k = 0; k < in; k++) {
            bad += !same_float(row[k], definition(b, r, k));
            dense[r * in + k] = row[k];
        }
    }
    CHECK_MSG(bad == 0, "%s: %d elements decode differently from the definition", quant_format_name(b->p.format), bad);

    /* the panel decoder, over the whole matrix in k blocks of up to 256 */
    weight_view w = {DTYPE_U8, b->bytes, out, in, &b->p};
    int64_t cols16 = (out + 15) / 16 * 16;
    float *panel = malloc((size_t)(cols16 * 256) * sizeof *panel);
    bad = 0;
    for (int64_t k0 = 0; k0 < in; k0 += 256) {
        int64_t kc = in - k0 < 256 ? in - k0 : 256;
        quant_pack_panel(&w, 0, out, k0, kc, panel);
        for (int64_t c = 0; c < cols16; c++)
            for (int64_t kk = 0; kk < kc; kk++) {
                float got = panel[(c / 16) * kc * 16 + kk * 16 + c % 16];
                float want = c < out ? dense[c * in + k0 + kk] : 0.0f;
                bad += !same_float(got, want);
            }
    }
    CHECK_MSG(bad == 0, "%s: %d panel elements differ from the scalar decoder", quant_format_name(b->p.format), bad);
    free(panel);
    free(dense);
    free(row);
}

static float def_fp8(const blob *b, int64_t r, int64_t k)
{
    uint8_t c = b->bytes[r * b->p.in_features + k];
    float scale = b->p.per_channel ? quant_scales_f32(&b->p, b->bytes)[r] : b->p.tensor_scale;
    return (b->p.format == QUANT_FP8_E4M3 ? e4m3_to_f32(c) : e5m2_to_f32(c)) * scale;
}

static float def_nf4(const blob *b, int64_t r, int64_t k)
{
    size_t i = (size_t)(r * b->p.in_features + k);
    uint8_t byte = b->bytes[i / 2];
    int code = i % 2 == 0 ? byte >> 4 : byte & 15; /* high nibble first, as bitsandbytes packs */
    return quant_nf4_values[code] * quant_scales_f32(&b->p, b->bytes)[i / 64];
}

static float def_q8(const blob *b, int64_t r, int64_t k)
{
    size_t i = (size_t)(r * b->p.in_features + k);
    return (float)(int8_t)b->bytes[i] * f16_to_f32(quant_scales_f16(&b->p, b->bytes)[i / 32]);
}

/* Every fp8 code in every row (rows rotate the codes), scales per tensor and per row
 * (powers of two, odd values, tiny and large). */
static void test_fp8_every_code(void)
{
    static const float scales[] = {1.0f, 0.0123f, 3.5f, 1.0f / 448.0f, 1e-30f, 7.1e30f, 0.75f, 2.0f};
    for (int f = QUANT_FP8_E4M3; f <= QUANT_FP8_E5M2; f++)
        for (int per_channel = 0; per_channel < 2; per_channel++) {
            blob b = make_blob((quant_format)f, per_channel, 24, 264); /* 264: a tail of 8 past 256 */
            for (int64_t r = 0; r < 24; r++)
                for (int64_t k = 0; k < 264; k++) b.bytes[r * 264 + k] = (uint8_t)(k + 7 * r);
            float *s = (float *)(b.bytes + b.p.scales_offset);
            for (size_t i = 0; i < b.p.n_scales; i++) s[i] = scales[i % 8];
            for (int t = 0; t < (per_channel ? 1 : 8); t++) {
                b.p.tensor_scale = scales[t];
                check_decoders(&b, def_fp8);
            }
            free(b.bytes);
        }
    /* e4m3 by hand: 0x7F / 0xFF are NaN, 0x7E = 448, 0x01 = 2^-9, 0x08 = 2^-6 */
    blob b = make_blob(QUANT_FP8_E4M3, 0, 1, 8);
    uint8_t codes[8] = {0x7F, 0xFF, 0x7E, 0x01, 0x08, 0x80, 0xFE, 0x38};
    memcpy(b.bytes, codes, 8);
    float row[8];
    quant_dequantize_row(&b.p, b.bytes, 0, row);
    CHECK(isnan(row[0]) && isnan(row[1]));
    CHECK(row[2] == 448.0f && row[3] == 0x1p-9f && row[4] == 0x1p-6f && row[5] == 0.0f && signbit(row[5]));
    CHECK(row[6] == -448.0f && row[7] == 1.0f);
    check_decoders(&b, def_fp8);
    free(b.bytes);
}

/* Every byte (two codes) of nf4 in every position of a block, several absmax values. */
static void test_nf4_every_code(void)
{
    blob b = make_blob(QUANT_NF4, 0, 20, 512);
    for (int64_t i = 0; i < 20 * 512 / 2; i++) b.bytes[i] = (uint8_t)(i * 37 + i / 256);
    float *absmax = (float *)(b.bytes + b.p.scales_offset);
    for (size_t i = 0; i < b.p.n_scales; i++) absmax[i] = i % 5 == 0 ? 0.0f : 0.01f * (float)(i + 1);
    check_decoders(&b, def_nf4);
    /* byte 0x0F: first element -1 x absmax, second +1 x absmax */
    b.bytes[0] = 0x0F;
    absmax[0] = 2.0f;
    float row[512];
    quant_dequantize_row(&b.p, b.bytes, 0, row);
    CHECK(row[0] == -2.0f && row[1] == 2.0f);
    for (int c = 0; c < 16; c++) b.bytes[c] = (uint8_t)(c << 4 | (15 - c));
    quant_dequantize_row(&b.p, b.bytes, 0, row);
    for (int c = 0; c < 16; c++) {
        CHECK(row[2 * c] == quant_nf4_values[c] * 2.0f);
        CHECK(row[2 * c + 1] == quant_nf4_values[15 - c] * 2.0f);
    }
    CHECK(quant_nf4_values[7] == 0.0f && quant_nf4_values[0] == -1.0f && quant_nf4_values[15] == 1.0f);
    free(b.bytes);
}

/* Every int8 value with f16 scales from subnormal to the largest. */
static void test_q8_every_code(void)
{
    blob b = make_blob(QUANT_Q8_0, 0, 18, 320);
    for (int64_t i = 0; i < 18 * 320; i++) b.bytes[i] = (uint8_t)(i * 3 + i / 320);
    uint16_t *d = (uint16_t *)(b.bytes + b.p.scales_offset);
    static const uint16_t scales[] = {0x3C00, 0x0001, 0x03FF, 0x7BFF, 0x2E66, 0xB800, 0x0000, 0x1234};
    for (size_t i = 0; i < b.p.n_scales; i++) d[i] = scales[i % 8];
    check_decoders(&b, def_q8);
    free(b.bytes);
}

static void test_quantisers(void)
{
    /* RNE helper */
    CHECK(quant_round_even(0.5f) == 0.0f && quant_round_even(1.5f) == 2.0f && quant_round_even(2.5f) == 2.0f);
    CHECK(quant_round_even(-0.5f) == 0.0f && quant_round_even(-1.5f) == -2.0f && quant_round_even(-2.4f) == -2.0f);
    /* nf4: nearest value, a tie between neighbours to the lower code */
    for (int c = 0; c < 16; c++) CHECK(quant_nf4_encode(quant_nf4_values[c]) == c);
    CHECK(quant_nf4_encode(1.5f) == 15 && quant_nf4_encode(-1.5f) == 0);
    float mid = (float)(((double)quant_nf4_values[7] + quant_nf4_values[8]) / 2.0);
    CHECK(quant_nf4_encode(mid) == 7);
    CHECK(quant_nf4_encode(nextafterf(mid, 1.0f)) == 8);

    /* q8_0: a block with amax 127 has d = 1, ties round to even */
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 32) - 16.0f;
    x[0] = 127.0f, x[1] = 0.5f, x[2] = 1.5f, x[3] = 2.5f, x[4] = -2.5f;
    x[32] = 0.0f;
    for (int i = 33; i < 64; i++) x[i] = 0.0f; /* an all-zero block */
    quant_params p;
    CHECK_OK(quant_layout(QUANT_Q8_0, 0, 2, 32, &p));
    uint8_t q[256];
    CHECK_OK(quant_quantize(&p, DTYPE_F32, x, q, "x"));
    CHECK(quant_scales_f16(&p, q)[0] == 0x3C00 && quant_scales_f16(&p, q)[1] == 0);
    CHECK((int8_t)q[0] == 127 && q[1] == 0 && q[2] == 2 && q[3] == 2 && (int8_t)q[4] == -2);
    for (int i = 32; i < 64; i++) CHECK(q[i] == 0);

    /* fp8 per tensor: scale = amax / 448 and the amax element maps to 448 */
    float y[16];
    for (int i = 0; i < 16; i++) y[i] = random_uniform();
    y[5] = -3.0f;
    CHECK_OK(quant_layout(QUANT_FP8_E4M3, 0, 2, 8, &p));
    CHECK_OK(quant_quantize(&p, DTYPE_F32, y, q, "y"));
    CHECK(p.tensor_scale == 3.0f / 448.0f);
    CHECK(q[5] == 0xFE);
    for (int i = 0; i < 16; i++) CHECK(q[i] == f32_to_e4m3(y[i] / (3.0f / 448.0f)));
    /* per channel: each row its own scale */
    CHECK_OK(quant_layout(QUANT_FP8_E5M2, 1, 2, 8, &p));
    CHECK_OK(quant_quantize(&p, DTYPE_F32, y, q, "y"));
    float amax1 = 0;
    for (int i = 8; i < 16; i++) amax1 = fabsf(y[i]) > amax1 ? fabsf(y[i]) : amax1;
    CHECK(quant_scales_f32(&p, q)[0] == 3.0f / 57344.0f && quant_scales_f32(&p, q)[1] == amax1 / 57344.0f);

    /* re-quantising a decoded matrix gives the same blob (every format up to Q4_K, from bf16
     * too; the other GGUF types are read from files, their quantisers' bounds are
     * test_ggml_quantize's) */
    for (int f = QUANT_FP8_E4M3; f < QUANT_GGUF_Q4_0; f++)
        for (int per_channel = 0; per_channel < 2; per_channel++) {
            const int64_t out = 6, in = 256; /* gguf_q4_k: blocks of 256 */
            float *w = malloc(out * in * sizeof *w), *back = malloc(out * in * sizeof *back);
            for (int64_t i = 0; i < out * in; i++) w[i] = random_uniform() * (float)(1 + i % 7);
            quant_params lp;
            CHECK_OK(quant_layout((quant_format)f, per_channel, out, in, &lp));
            uint8_t *b1 = malloc(lp.bytes), *b2 = malloc(lp.bytes);
            CHECK_OK(quant_quantize(&lp, DTYPE_F32, w, b1, "w"));
            for (int64_t r = 0; r < out; r++) quant_dequantize_row(&lp, b1, r, back + r * in);
            CHECK_OK(quant_quantize(&lp, DTYPE_F32, back, b2, "w"));
            CHECK_MSG(memcmp(b1, b2, lp.codes_bytes) == 0, "%s: re-quantised codes differ", quant_format_name(lp.format));
            /* error bound per format, relative to the tensor's amax */
            double worst = 0, amax = 0;
            for (int64_t i = 0; i < out * in; i++) {
                worst = fmax(worst, fabs((double)back[i] - w[i]));
                amax = fmax(amax, fabs((double)w[i]));
            }
            double bound = f == QUANT_NF4 ? 0.2 : f == QUANT_Q8_0 ? 0.005 : f == QUANT_FP8_E4M3 ? 0.07 : 0.13;
            CHECK_MSG(worst / amax <= bound, "%s: worst error %.4f of amax", quant_format_name(lp.format), worst / amax);
            uint16_t *bf = malloc(out * in * 2);
            CHECK_OK(dtype_from_f32(DTYPE_BF16, w, bf, (size_t)(out * in)));
            CHECK_OK(quant_quantize(&lp, DTYPE_BF16, bf, b2, "w"));
            free(bf);
            free(b1), free(b2), free(w), free(back);
        }
}

static void test_layouts_and_errors(void)
{
    quant_params p;
    CHECK_OK(quant_layout(QUANT_NF4, 0, 3072, 3072, &p));
    CHECK_NEAR((double)p.bytes / (3072.0 * 3072.0), 0.5625, 1e-9);
    CHECK_OK(quant_layout(QUANT_Q8_0, 0, 3072, 3072, &p));
    CHECK_NEAR((double)p.bytes / (3072.0 * 3072.0), 1.0625, 1e-9);
    CHECK_OK(quant_layout(QUANT_FP8_E4M3, 0, 3072, 3072, &p));
    CHECK(p.bytes == 3072u * 3072u);
    CHECK_OK(quant_layout(QUANT_FP8_E4M3, 1, 3072, 3072, &p));
    CHECK(p.bytes == 3072u * 3072u + 4 * 3072);
    CHECK(p.scales_offset % 64 == 0);
    CHECK_FAILS(quant_layout(QUANT_NF4, 0, 8, 96, &p), CANVAS_ERR_UNSUPPORTED, "divisible by 64");
    CHECK_FAILS(quant_layout(QUANT_Q8_0, 0, 8, 48, &p), CANVAS_ERR_UNSUPPORTED, "divisible by 32");
    float w[64] = {0};
    w[10] = NAN;
    uint8_t q[256];
    CHECK_OK(quant_layout(QUANT_Q8_0, 0, 2, 32, &p));
    CHECK_FAILS(quant_quantize(&p, DTYPE_F32, w, q, "blocks.0.w"), CANVAS_ERR_INPUT, "blocks.0.w");
    w[10] = INFINITY;
    CHECK_FAILS(quant_quantize(&p, DTYPE_F32, w, q, "blocks.0.w"), CANVAS_ERR_INPUT, "infinite");
    CHECK_FAILS(quant_quantize(&p, DTYPE_I32, w, q, "w"), CANVAS_ERR_USAGE, "I32");
    quant_choice c;
    CHECK_OK(quant_choice_parse("nf4", &c));
    CHECK(c.format == QUANT_NF4);
    CHECK_OK(quant_choice_parse("fp8-channel", &c));
    CHECK(c.format == QUANT_FP8_E4M3 && c.per_channel == 1 && !strcmp(quant_choice_name(c), "fp8-channel"));
    CHECK_FAILS(quant_choice_parse("int3", &c), CANVAS_ERR_USAGE, "int3");
}

/* op_linear with a quantised weight == op_linear with the dequantised f32 matrix, bit for
 * bit, for GEMV and GEMM row counts, odd widths, k tails, 1 and 5 threads. */
static void test_linear_matches_dequantised(void)
{
    static const struct { quant_format f; int per_channel; int64_t n, k; } shapes[] = {
        {QUANT_FP8_E4M3, 0, 37, 100}, {QUANT_FP8_E4M3, 1, 70, 640}, {QUANT_FP8_E5M2, 1, 33, 264},
        {QUANT_NF4, 0, 45, 192},      {QUANT_NF4, 0, 64, 576},      {QUANT_Q8_0, 0, 50, 96},
        {QUANT_Q8_0, 0, 96, 544},     {QUANT_GGUF_Q8_0, 0, 50, 96}, {QUANT_GGUF_Q8_0, 0, 96, 544},
        {QUANT_GGUF_Q4_K, 0, 45, 512}, {QUANT_GGUF_Q4_K, 0, 64, 768},
    };
    static const int64_t rows[] = {1, 2, 3, 7, 150};
    thread_pool *pools[2];
    CHECK_OK(thread_pool_create(1, &pools[0]));
    CHECK_OK(thread_pool_create(5, &pools[1]));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s].n, k = shapes[s].k;
        float *w = malloc((size_t)(n * k) * sizeof *w), *dense = malloc((size_t)(n * k) * sizeof *dense);
        for (int64_t i = 0; i < n * k; i++) w[i] = random_uniform();
        quant_params p;
        CHECK_OK(quant_layout(shapes[s].f, shapes[s].per_channel, n, k, &p));
        uint8_t *b = malloc(p.bytes);
        CHECK_OK(quant_quantize(&p, DTYPE_F32, w, b, "w"));
        for (int64_t r = 0; r < n; r++) quant_dequantize_row(&p, b, r, dense + r * k);
        weight_view qv = {DTYPE_U8, b, n, k, &p}, fv = {DTYPE_F32, dense, n, k, NULL};
        float *bias = malloc((size_t)n * sizeof *bias);
        for (int64_t i = 0; i < n; i++) bias[i] = random_uniform();
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            int64_t m = rows[ri];
            float *x = malloc((size_t)(m * k) * sizeof *x);
            float *y0 = malloc((size_t)(m * n) * sizeof *y0), *y1 = malloc((size_t)(m * n) * sizeof *y1);
            float *y2 = malloc((size_t)(m * n) * sizeof *y2);
            for (int64_t i = 0; i < m * k; i++) x[i] = random_uniform();
            CHECK_OK(op_linear(OP_BACKEND_CPU(pools[1]), x, m, &fv, bias, y0));
            CHECK_OK(op_linear(OP_BACKEND_CPU(pools[1]), x, m, &qv, bias, y1));
            CHECK_OK(op_linear(OP_BACKEND_CPU(pools[0]), x, m, &qv, bias, y2));
            CHECK_MSG(memcmp(y0, y1, (size_t)(m * n) * sizeof *y0) == 0, "%s [%lld x %lld] m=%lld: differs from f32",
                      quant_format_name(p.format), (long long)n, (long long)k, (long long)m);
            CHECK_MSG(memcmp(y1, y2, (size_t)(m * n) * sizeof *y1) == 0, "%s m=%lld: depends on the thread count",
                      quant_format_name(p.format), (long long)m);
            free(x), free(y0), free(y1), free(y2);
        }
        free(w), free(dense), free(b), free(bias);
    }
    /* a layout that does not match the view is refused, not read out of bounds */
    quant_params p;
    CHECK_OK(quant_layout(QUANT_Q8_0, 0, 4, 64, &p));
    uint8_t b[512] = {0};
    float x[128] = {0}, y[16];
    weight_view bad = {DTYPE_U8, b, 4, 32, &p};
    CHECK_FAILS(op_linear(OP_BACKEND_CPU(pools[0]), x, 2, &bad, NULL, y), CANVAS_ERR_INTERNAL, "does not match");
    thread_pool_destroy(pools[0]);
    thread_pool_destroy(pools[1]);
}

int main(void)
{
    RUN(test_fp8_every_code);
    RUN(test_nf4_every_code);
    RUN(test_q8_every_code);
    RUN(test_quantisers);
    RUN(test_layouts_and_errors);
    RUN(test_linear_matches_dequantised);
    return check_summary();
}
