/* SPDX-License-Identifier: Apache-2.0 */
/* quant.c — layouts, scalar decoding and the quantisers of quant.h.
 *
 * The scalar decoder here is the definition every SIMD path (ops/cpu/quant_pack.c)
 * matches bit for bit; the quantisers are written for clarity, not speed: 12-16 ns per
 * weight from bf16 on one core (quant_quantize on a [3072, 12288] matrix, each format,
 * a loaded 2-core machine), so some 4-6 minutes for a 20 B model. */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "tensor/ggml_blocks.h"
#include "tensor/ggml_quantize.h"

/* bitsandbytes' NF4 code values (the normal-distribution quantiles of QLoRA), as the
 * float32 numbers it stores in quant_map. */
#define NF4_V0 -1.0
#define NF4_V1 -0.6961928009986877
#define NF4_V2 -0.5250730514526367
#define NF4_V3 -0.39491748809814453
#define NF4_V4 -0.28444138169288635
#define NF4_V5 -0.18477343022823334
#define NF4_V6 -0.09105003625154495
#define NF4_V7 0.0
#define NF4_V8 0.07958029955625534
#define NF4_V9 0.16093020141124725
#define NF4_V10 0.24611230194568634
#define NF4_V11 0.33791524171829224
#define NF4_V12 0.44070982933044434
#define NF4_V13 0.5626170039176941
#define NF4_V14 0.7229568362236023
#define NF4_V15 1.0

const float quant_nf4_values[16] = {
    (float)NF4_V0, (float)NF4_V1, (float)NF4_V2,  (float)NF4_V3,  (float)NF4_V4,  (float)NF4_V5,
    (float)NF4_V6, (float)NF4_V7, (float)NF4_V8,  (float)NF4_V9,  (float)NF4_V10, (float)NF4_V11,
    (float)NF4_V12, (float)NF4_V13, (float)NF4_V14, (float)NF4_V15,
};

/* The decision thresholds: midpoints between neighbouring values, as float32. */
#define NF4_MID(a, b) (float)(((double)(float)(a) + (double)(float)(b)) / 2.0)
static const float nf4_midpoints[15] = {
    NF4_MID(NF4_V0, NF4_V1),   NF4_MID(NF4_V1, NF4_V2),   NF4_MID(NF4_V2, NF4_V3),   NF4_MID(NF4_V3, NF4_V4),
    NF4_MID(NF4_V4, NF4_V5),   NF4_MID(NF4_V5, NF4_V6),   NF4_MID(NF4_V6, NF4_V7),   NF4_MID(NF4_V7, NF4_V8),
    NF4_MID(NF4_V8, NF4_V9),   NF4_MID(NF4_V9, NF4_V10),  NF4_MID(NF4_V10, NF4_V11), NF4_MID(NF4_V11, NF4_V12),
    NF4_MID(NF4_V12, NF4_V13), NF4_MID(NF4_V13, NF4_V14), NF4_MID(NF4_V14, NF4_V15),
};

/* ---- names --------------------------------------------------------------------------- */

static const struct {
    const char *name;
    quant_choice choice;
} choices[] = {
    {"fp8", {QUANT_FP8_E4M3, 0}},
    {"fp8-channel", {QUANT_FP8_E4M3, 1}},
    {"fp8-e5m2", {QUANT_FP8_E5M2, 0}},
    {"nf4", {QUANT_NF4, 0}},
    {"q8", {QUANT_Q8_0, 0}},
};

canvas_status quant_choice_parse(const char *text, quant_choice *out)
{
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++)
        if (!strcmp(text, choices[i].name)) {
            *out = choices[i].choice;
            return CANVAS_OK;
        }
    if (!strcmp(text, "none") || !strcmp(text, "bf16")) {
        *out = (quant_choice){QUANT_NONE, 0};
        return CANVAS_OK;
    }
    return status_fail(CANVAS_ERR_USAGE, "unknown weight format '%s' (known: fp8, fp8-channel, fp8-e5m2, nf4, q8, none)",
                       text);
}

const char *quant_choice_name(quant_choice choice)
{
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++)
        if (choices[i].choice.format == choice.format && choices[i].choice.per_channel == choice.per_channel)
            return choices[i].name;
    if (choice.format == QUANT_FP8_E5M2) return "fp8-e5m2-channel";
    return "none";
}

const char *quant_format_name(quant_format format)
{
    switch (format) {
    case QUANT_FP8_E4M3: return "fp8_e4m3";
    case QUANT_FP8_E5M2: return "fp8_e5m2";
    case QUANT_NF4: return "nf4";
    case QUANT_Q8_0: return "q8_0";
    case QUANT_GGUF_Q8_0: return "gguf_q8_0";
    case QUANT_GGUF_Q4_K: return "gguf_q4_k";
    case QUANT_GGUF_Q4_0: return "gguf_q4_0";
    case QUANT_GGUF_Q4_1: return "gguf_q4_1";
    case QUANT_GGUF_Q5_0: return "gguf_q5_0";
    case QUANT_GGUF_Q5_1: return "gguf_q5_1";
    case QUANT_GGUF_Q2_K: return "gguf_q2_k";
    case QUANT_GGUF_Q3_K: return "gguf_q3_k";
    case QUANT_GGUF_Q5_K: return "gguf_q5_k";
    case QUANT_GGUF_Q6_K: return "gguf_q6_k";
    default: return "none";
    }
}

/* The GGUF formats and their ggml types, in the enum's order. */
static const uint32_t gguf_types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
                                      GGML_TYPE_Q5_1, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};

int quant_ggml_type(quant_format format)
{
    return format >= QUANT_GGUF_Q8_0 && format < QUANT_FORMAT_COUNT ? (int)gguf_types[format - QUANT_GGUF_Q8_0] : -1;
}

quant_format quant_format_of_ggml(uint32_t ggml_code)
{
    for (int f = QUANT_GGUF_Q8_0; f < QUANT_FORMAT_COUNT; f++)
        if (gguf_types[f - QUANT_GGUF_Q8_0] == ggml_code) return (quant_format)f;
    return QUANT_NONE;
}

/* ---- layout -------------------------------------------------------------------------- */

int quant_fits(quant_format format, int64_t in_features)
{
    switch (format) {
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2: return in_features > 0;
    case QUANT_NF4: return in_features > 0 && in_features % QUANT_NF4_BLOCK == 0;
    case QUANT_Q8_0: return in_features > 0 && in_features % QUANT_Q8_BLOCK == 0;
    case QUANT_NONE: return 0;
    default: {
        int type = quant_ggml_type(format);
        return type >= 0 && in_features > 0 && in_features % ggml_type_block_elements((uint32_t)type) == 0;
    }
    }
}

canvas_status quant_layout(quant_format format, int per_channel, int64_t out_features, int64_t in_features,
                           quant_params *out)
{
    memset(out, 0, sizeof *out);
    if (format <= QUANT_NONE || format >= QUANT_FORMAT_COUNT)
        return status_fail(CANVAS_ERR_USAGE, "quantised layout: bad format %d", (int)format);
    if (out_features <= 0 || in_features <= 0 || out_features > (INT64_C(1) << 40) / in_features)
        return status_fail(CANVAS_ERR_USAGE, "quantised layout: bad matrix size [%lld, %lld]", (long long)out_features,
                           (long long)in_features);
    if (!quant_fits(format, in_features))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s needs in_features divisible by %d; the matrix is [%lld, %lld]",
                           quant_format_name(format),
                           format == QUANT_NF4          ? QUANT_NF4_BLOCK
                           : quant_ggml_type(format) >= 0 ? (int)ggml_type_block_elements((uint32_t)quant_ggml_type(format))
                                                          : QUANT_Q8_BLOCK,
                           (long long)out_features, (long long)in_features);
    size_t n = (size_t)out_features * (size_t)in_features, scale_size = 4;
    out->format = format;
    out->per_channel = (format == QUANT_FP8_E4M3 || format == QUANT_FP8_E5M2) && per_channel;
    out->out_features = out_features;
    out->in_features = in_features;
    switch (format) {
    case QUANT_NF4:
        out->codes_bytes = n / 2;
        out->n_scales = n / QUANT_NF4_BLOCK;
        break;
    case QUANT_Q8_0:
        out->codes_bytes = n;
        out->n_scales = n / QUANT_Q8_BLOCK;
        scale_size = 2;
        break;
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2:
        out->codes_bytes = n;
        out->n_scales = out->per_channel ? (size_t)out_features : 0;
        out->tensor_scale = 1.0f;
        break;
    default: { /* GGUF: whole blocks, scales inside, nothing after the codes */
        uint32_t type = (uint32_t)quant_ggml_type(format);
        out->codes_bytes = n / ggml_type_block_elements(type) * ggml_type_block_bytes(type);
        out->scales_offset = out->bytes = out->codes_bytes;
        return CANVAS_OK;
    }
    }
    out->scales_offset = (out->codes_bytes + 63) & ~(size_t)63;
    out->bytes = out->scales_offset + out->n_scales * scale_size;
    return CANVAS_OK;
}

/* ---- scalar pieces ------------------------------------------------------------------- */

float quant_round_even(float x)
{
    float r = floorf(x), diff = x - r; /* exact for |x| < 2^23 */
    if (diff > 0.5f || (diff == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;
    return r;
}

uint8_t quant_nf4_encode(float normalised)
{
    uint8_t code = 0;
    while (code < 15 && normalised > nf4_midpoints[code]) code++;
    return code;
}

void quant_dequantize_row(const quant_params *p, const void *blob, int64_t row, float *out)
{
    const int64_t in = p->in_features;
    const size_t base = (size_t)row * (size_t)in;
    const uint8_t *codes = blob;
    switch (p->format) {
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2: {
        float scale = p->per_channel ? quant_scales_f32(p, blob)[row] : p->tensor_scale;
        for (int64_t k = 0; k < in; k++) {
            uint8_t c = codes[base + (size_t)k];
            out[k] = (p->format == QUANT_FP8_E4M3 ? e4m3_to_f32(c) : e5m2_to_f32(c)) * scale;
        }
        break;
    }
    case QUANT_NF4: {
        const float *absmax = quant_scales_f32(p, blob);
        for (int64_t k = 0; k < in; k++) {
            size_t i = base + (size_t)k;
            uint8_t byte = codes[i / 2];
            int code = i % 2 ? byte & 15 : byte >> 4;
            out[k] = quant_nf4_values[code] * absmax[i / QUANT_NF4_BLOCK];
        }
        break;
    }
    case QUANT_Q8_0: {
        const uint16_t *d = quant_scales_f16(p, blob);
        for (int64_t k = 0; k < in; k++) {
            size_t i = base + (size_t)k;
            out[k] = (float)(int8_t)codes[i] * f16_to_f32(d[i / QUANT_Q8_BLOCK]);
        }
        break;
    }
    default: {
        int type = quant_ggml_type(p->format);
        if (type < 0) {
            memset(out, 0, (size_t)in * sizeof *out);
            break;
        }
        size_t row_bytes = (size_t)in / ggml_type_block_elements((uint32_t)type) * ggml_type_block_bytes((uint32_t)type);
        (void)ggml_to_f32((uint32_t)type, codes + (size_t)row * row_bytes, out, (size_t)in); /* whole blocks: fits */
        break;
    }
    }
}

/* ---- quantisers ---------------------------------------------------------------------- */

static float amax_of(const float *x, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

static float fp8_scale(quant_format format, float amax)
{
    if (amax == 0.0f) return 1.0f;
    return amax / (format == QUANT_FP8_E4M3 ? QUANT_E4M3_MAX : QUANT_E5M2_MAX);
}

static void quantize_nf4_row(const float *x, int64_t in, uint8_t *codes, size_t base, float *absmax)
{
    for (int64_t b = 0; b < in; b += QUANT_NF4_BLOCK) {
        float m = amax_of(x + b, QUANT_NF4_BLOCK);
        float inv = m > 0.0f ? 1.0f / m : 0.0f;
        absmax[(base + (size_t)b) / QUANT_NF4_BLOCK] = m;
        for (int64_t k = b; k < b + QUANT_NF4_BLOCK; k += 2) {
            uint8_t hi = quant_nf4_encode(x[k] * inv), lo = quant_nf4_encode(x[k + 1] * inv);
            codes[(base + (size_t)k) / 2] = (uint8_t)(hi << 4 | lo);
        }
    }
}

static void quantize_q8_row(const float *x, int64_t in, uint8_t *codes, size_t base, uint16_t *scales)
{
    for (int64_t b = 0; b < in; b += QUANT_Q8_BLOCK) {
        float m = amax_of(x + b, QUANT_Q8_BLOCK);
        uint16_t d = f32_to_f16(m / 127.0f);
        if ((d & 0x7FFF) > 0x7BFF) d = (uint16_t)((d & 0x8000) | 0x7BFF); /* keep the scale finite */
        float df = f16_to_f32(d);
        scales[(base + (size_t)b) / QUANT_Q8_BLOCK] = d;
        for (int64_t k = b; k < b + QUANT_Q8_BLOCK; k++) {
            float q = df > 0.0f ? quant_round_even(x[k] / df) : 0.0f;
            q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
            codes[base + (size_t)k] = (uint8_t)(int8_t)q;
        }
    }
}

static canvas_status load_row(dtype src_type, const void *src, int64_t row, int64_t in, float *out, const char *name)
{
    dtype_to_f32(src_type, (const char *)src + (size_t)row * (size_t)in * dtype_size(src_type), out, (size_t)in);
    for (int64_t k = 0; k < in; k++)
        if (!isfinite(out[k]))
            return status_fail(CANVAS_ERR_INPUT, "quantising '%s': element [%lld, %lld] is %s; refusing to quantise",
                               name ? name : "?", (long long)row, (long long)k, isnan(out[k]) ? "NaN" : "infinite");
    return CANVAS_OK;
}

static canvas_status quantize_rows(quant_params *p, dtype src_type, const void *src, uint8_t *blob,
                                   const char *name, float *row)
{
    const int64_t in = p->in_features;
    float tensor_scale = 1.0f;
    int fp8 = p->format == QUANT_FP8_E4M3 || p->format == QUANT_FP8_E5M2;
    if (fp8 && !p->per_channel) { /* first pass: the tensor's amax */
        float amax = 0.0f;
        for (int64_t r = 0; r < p->out_features; r++) {
            TRY(load_row(src_type, src, r, in, row, name));
            float m = amax_of(row, in);
            amax = m > amax ? m : amax;
        }
        tensor_scale = fp8_scale(p->format, amax);
        p->tensor_scale = tensor_scale;
    }
    for (int64_t r = 0; r < p->out_features; r++) {
        TRY(load_row(src_type, src, r, in, row, name));
        size_t base = (size_t)r * (size_t)in;
        if (fp8) {
            float scale = tensor_scale;
            if (p->per_channel) {
                scale = fp8_scale(p->format, amax_of(row, in));
                ((float *)(blob + p->scales_offset))[r] = scale;
            }
            for (int64_t k = 0; k < in; k++) {
                float v = row[k] / scale;
                blob[base + (size_t)k] = p->format == QUANT_FP8_E4M3 ? f32_to_e4m3(v) : f32_to_e5m2(v);
            }
        } else if (quant_ggml_type(p->format) >= 0) {
            uint32_t type = (uint32_t)quant_ggml_type(p->format);
            size_t row_bytes = (size_t)in / ggml_type_block_elements(type) * ggml_type_block_bytes(type);
            TRY(ggml_quantize_row((int)type, row, in, blob + (size_t)r * row_bytes));
        } else if (p->format == QUANT_NF4) {
            quantize_nf4_row(row, in, blob, base, (float *)(blob + p->scales_offset));
        } else {
            quantize_q8_row(row, in, blob, base, (uint16_t *)(blob + p->scales_offset));
        }
    }
    return CANVAS_OK;
}

canvas_status quant_quantize(quant_params *p, dtype src_type, const void *src, void *blob, const char *name)
{
    if (src_type != DTYPE_F32 && src_type != DTYPE_F16 && src_type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_USAGE, "quantising '%s': source stored as %s; only F32, F16 and BF16 are quantised",
                           name ? name : "?", dtype_name(src_type));
    if (p->format <= QUANT_NONE || p->format >= QUANT_FORMAT_COUNT)
        return status_fail(CANVAS_ERR_USAGE, "quantising '%s': bad format", name ? name : "?");
    memset(blob, 0, p->bytes);
    float *row;
    TRY(mem_alloc((void **)&row, (size_t)p->in_features * sizeof(float), MEM_SCRATCH));
    canvas_status st = quantize_rows(p, src_type, src, blob, name, row);
    mem_free(row);
    return st;
}
