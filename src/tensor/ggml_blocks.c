/* SPDX-License-Identifier: Apache-2.0 */
/* ggml_blocks.c — sizes of the ggml types and their decoding to f32 (ggml_blocks.h).
 *
 * Each decoder takes one block and writes its elements in order. Scales are formed first
 * (d x sc as one f32 product), then each element as (scale) x q [- (min)], the order of the
 * reference, so results are bit-exact with it. Blocks are read byte by byte (a block of 18
 * or 110 bytes leaves every field misaligned), f16 fields through dtype.h's exact decoder. */
#include "tensor/ggml_blocks.h"

#include <string.h>

#include "base/status.h"
#include "tensor/dtype.h"

typedef struct type_info {
    const char *name;
    uint32_t block_elements, block_bytes; /* 0: a ggml type not decoded here */
} type_info;

static const type_info TYPES[] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 0, 0},       [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 0, 0},      [16] = {"IQ2_XXS", 0, 0},
    [17] = {"IQ2_XS", 0, 0},   [18] = {"IQ3_XXS", 0, 0},   [19] = {"IQ1_S", 0, 0},
    [20] = {"IQ4_NL", 0, 0},   [21] = {"IQ3_S", 0, 0},     [22] = {"IQ2_S", 0, 0},
    [23] = {"IQ4_XS", 0, 0},   [24] = {"I8", 0, 0},        [25] = {"I16", 0, 0},
    [26] = {"I32", 0, 0},      [27] = {"I64", 0, 0},       [28] = {"F64", 0, 0},
    [29] = {"IQ1_M", 0, 0},    [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 0, 0},
    [35] = {"TQ2_0", 0, 0},    [39] = {"MXFP4", 0, 0},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

int ggml_type_supported(uint32_t code) { return code < N_TYPES && TYPES[code].block_bytes != 0; }

const char *ggml_type_name(uint32_t code) { return code < N_TYPES ? TYPES[code].name : NULL; }

uint32_t ggml_type_block_elements(uint32_t code)
{
    return ggml_type_supported(code) ? TYPES[code].block_elements : 0;
}

uint32_t ggml_type_block_bytes(uint32_t code) { return ggml_type_supported(code) ? TYPES[code].block_bytes : 0; }

canvas_status ggml_type_bytes(uint32_t code, uint64_t n_elements, uint64_t *bytes)
{
    *bytes = 0;
    if (!ggml_type_supported(code))
        return status_fail(CANVAS_ERR_INPUT, "ggml type %u (%s) is not supported", code,
                           ggml_type_name(code) ? ggml_type_name(code) : "unknown");
    const type_info *t = &TYPES[code];
    if (n_elements % t->block_elements != 0)
        return status_fail(CANVAS_ERR_INPUT, "ggml type %s: %llu elements are not a whole number of %u-element blocks",
                           t->name, (unsigned long long)n_elements, t->block_elements);
    uint64_t blocks = n_elements / t->block_elements;
    if (blocks > UINT64_MAX / t->block_bytes)
        return status_fail(CANVAS_ERR_INPUT, "ggml type %s: %llu elements overflow 64-bit byte counts", t->name,
                           (unsigned long long)n_elements);
    *bytes = blocks * t->block_bytes;
    return CANVAS_OK;
}

/* ---- one block each --------------------------------------------------------------- */

static float f16_at(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Element j of a 32-element block of nibbles: j < 16 the low nibble of byte j, else the
 * high nibble of byte j - 16. */
static int nibble(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

static void q4_0_block(const uint8_t *b, float *y)
{
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(nibble(b + 2, j) - 8);
}

static void q4_1_block(const uint8_t *b, float *y)
{
    float d = f16_at(b), m = f16_at(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)nibble(b + 4, j) + m;
}

static void q5_0_block(const uint8_t *b, float *y)
{
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)((nibble(b + 6, j) | (int)((qh >> j) & 1) << 4) - 16);
}

static void q5_1_block(const uint8_t *b, float *y)
{
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(nibble(b + 8, j) | (int)((qh >> j) & 1) << 4) + m;
}

static void q8_0_block(const uint8_t *b, float *y)
{
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* The 2-bit codes of Q2_K and Q3_K: element e = 128 h + 32 s + l is bits 2s..2s+1 of
 * byte 32 h + l. */
static int crumb(const uint8_t *qs, int e) { return qs[(e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3)) & 3; }

static void q2_k_block(const uint8_t *b, float *y)
{
    const uint8_t *scales = b, *qs = b + 16;
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int k = 0; k < 16; k++) {
        float dl = d * (float)(scales[k] & 0xF), ml = dmin * (float)(scales[k] >> 4);
        for (int e = 16 * k; e < 16 * k + 16; e++) y[e] = dl * (float)crumb(qs, e) - ml;
    }
}

/* Q3_K's sixteen 6-bit scales: the low 4 bits of scale i are nibble i / 8 of byte i % 8,
 * the high 2 bits are bits 2 (i / 4) of byte 8 + i % 4; stored plus 32. */
static int q3_k_scale(const uint8_t *sc, int i)
{
    int low = sc[i & 7] >> (4 * (i >> 3)) & 0xF;
    int high = sc[8 + (i & 3)] >> (2 * (i >> 2)) & 3;
    return (low | high << 4) - 32;
}

static void q3_k_block(const uint8_t *b, float *y)
{
    const uint8_t *hmask = b, *qs = b + 32, *scales = b + 96;
    float d = f16_at(b + 108);
    for (int k = 0; k < 16; k++) {
        float dl = d * (float)q3_k_scale(scales, k);
        for (int e = 16 * k; e < 16 * k + 16; e++) {
            int high = hmask[e & 31] >> (e >> 5) & 1; /* a set bit means no offset */
            y[e] = dl * (float)(crumb(qs, e) - (high ? 0 : 4));
        }
    }
}

/* The 4-bit codes of Q4_K / Q5_K: element e = 64 c + 32 s + l is nibble s of byte 32 c + l. */
static int k_nibble(const uint8_t *qs, int e) { return qs[(e >> 6) * 32 + (e & 31)] >> (4 * ((e >> 5) & 1)) & 0xF; }

static void q4_k_block(const uint8_t *b, float *y)
{
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        ggml_k_scale_min(b + 4, j, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int e = 32 * j; e < 32 * j + 32; e++) y[e] = dl * (float)k_nibble(b + 16, e) - ml;
    }
}

static void q5_k_block(const uint8_t *b, float *y)
{
    const uint8_t *qh = b + 16, *qs = b + 48;
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        ggml_k_scale_min(b + 4, j, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int e = 32 * j; e < 32 * j + 32; e++) /* the 5th bit: bit j of byte e % 32 */
            y[e] = dl * (float)(k_nibble(qs, e) | (qh[e & 31] >> j & 1) << 4) - ml;
    }
}

/* Q6_K: element e = 128 h + 32 s + l (s 0..3) takes nibble s / 2 of ql byte 64 h + 32 (s % 2)
 * + l and bits 2s..2s+1 of qh byte 32 h + l. */
static void q6_k_block(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int k = 0; k < 16; k++) {
        float dl = d * (float)scales[k];
        for (int e = 16 * k; e < 16 * k + 16; e++) {
            int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
            int low = ql[64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1)) & 0xF;
            int high = qh[32 * h + l] >> (2 * s) & 3;
            y[e] = dl * (float)((low | high << 4) - 32);
        }
    }
}

typedef void (*block_decoder)(const uint8_t *block, float *out);

static block_decoder decoder_of(uint32_t code)
{
    switch (code) {
        GGML_BLOCK_TYPES(GGML_BLOCK_CASE)
    default: return NULL;
    }
}

canvas_status ggml_to_f32(uint32_t code, const void *src, float *dst, size_t n_elements)
{
    if (!ggml_type_supported(code) || n_elements % TYPES[code].block_elements != 0)
        return status_fail(CANVAS_ERR_USAGE, "ggml_to_f32: %zu elements of ggml type %u are not whole blocks of a decodable type",
                           n_elements, code);
    switch (code) { /* the plain formats: dtype.h's converters (vectorised, exact) */
    case GGML_TYPE_F32: dtype_to_f32(DTYPE_F32, src, dst, n_elements); return CANVAS_OK;
    case GGML_TYPE_F16: dtype_to_f32(DTYPE_F16, src, dst, n_elements); return CANVAS_OK;
    case GGML_TYPE_BF16: dtype_to_f32(DTYPE_BF16, src, dst, n_elements); return CANVAS_OK;
    default: break;
    }
    block_decoder decode = decoder_of(code);
    const type_info *t = &TYPES[code];
    const uint8_t *block = src;
    for (size_t done = 0; done < n_elements; done += t->block_elements, block += t->block_bytes)
        decode(block, dst + done);
    return CANVAS_OK;
}
