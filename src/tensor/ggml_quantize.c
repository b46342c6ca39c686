/* SPDX-License-Identifier: Apache-2.0 */
/* ggml_quantize.c — f32 into ggml blocks (ggml_quantize.h; layouts in ggml_blocks.h/.c).
 *
 * Each block quantiser fills one whole block and returns 0 when a scale or min it has to
 * store overflows f16. Fields are written byte by byte (blocks of 18 or 110 bytes leave
 * them misaligned). The legacy types follow gguf-py's arithmetic step by step, in the
 * precision it uses (f32, or f64 where it converts), so that the bytes are the same. */
#include "tensor/ggml_quantize.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "tensor/dtype.h"

/* An f16 field at p; 0 (the field left as is) when value rounds to an infinity. */
static int put_f16(uint8_t *p, float value)
{
    uint16_t h = f32_to_f16(value);
    if ((h & 0x7FFF) >= 0x7C00) return 0;
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
    return 1;
}

/* The smallest f16 at least value (>= 0) at p, so that value / it is at most the code range
 * it was divided by and no code is clipped, subnormal scales included; 0 on overflow. */
static int put_f16_up(uint8_t *p, float value)
{
    uint16_t h = f32_to_f16(value);
    if (f16_to_f32(h) < value) h++; /* the next f16 up (value > 0 here) */
    if ((h & 0x7FFF) >= 0x7C00) return 0;
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
    return 1;
}

static float f16_at(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Element j of a 32-element block of nibbles (Q4_0 ... Q5_1): j < 16 the low nibble of
 * byte j, else the high nibble of byte j - 16. qs must start zeroed. */
static void put_nibble(uint8_t *qs, int j, int q) { qs[j & 15] |= (uint8_t)((q & 0xF) << (j < 16 ? 0 : 4)); }

/* ---- the plain and legacy types (gguf-py's rules) ------------------------------------ */

static int q8_0_block(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        float q = roundf(x[j] * id); /* half away from zero, as gguf-py's np_roundf */
        b[2 + j] = (uint8_t)(int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
    }
    return put_f16(b, d);
}

/* Q4_0 / Q5_0: d = m / -half (m the first element of largest magnitude, which lands on
 * code 0); q = trunc(x (1 / d) + half + 0.5), the sum in f64 rounded to f32 before the
 * truncation as gguf-py's np.trunc(..., dtype=float32) does. (The f64 product of two f32
 * is exact, so fused or not gives the same sum.) Codes 0 .. 2 half - 1, one below what
 * the opposite extreme asks for: that element is off by up to one step. */
static void symmetric_codes(const float *x, int half, float *d_out, int *q)
{
    int imax = 0;
    for (int j = 1; j < 32; j++)
        if (fabsf(x[j]) > fabsf(x[imax])) imax = j;
    float d = x[imax] / -(float)half, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        float t = truncf((float)((double)x[j] * (double)id + ((double)half + 0.5)));
        q[j] = t < 0.0f ? 0 : t > (float)(2 * half - 1) ? 2 * half - 1 : (int)t;
    }
    *d_out = d;
}

/* Q4_1 / Q5_1: d = (max - min) / top, q = trunc((x - min)(1 / d) + 0.5), all in f32. */
static void affine_codes(const float *x, int top, float *d_out, float *min_out, int *q)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    float d = (hi - lo) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        float t = truncf((x[j] - lo) * id + 0.5f);
        q[j] = t < 0.0f ? 0 : t > (float)top ? top : (int)t;
    }
    *d_out = d;
    *min_out = lo;
}

/* The fifth bits of Q5_0 / Q5_1: bit j of a little-endian u32 is element j's. */
static void put_fifth_bits(uint8_t *qh, const int *q)
{
    for (int j = 0; j < 32; j++) qh[j >> 3] |= (uint8_t)(((q[j] >> 4) & 1) << (j & 7));
}

static int q4_0_block(const float *x, uint8_t *b)
{
    int q[32];
    float d;
    symmetric_codes(x, 8, &d, q);
    for (int j = 0; j < 32; j++) put_nibble(b + 2, j, q[j]);
    return put_f16(b, d);
}

static int q5_0_block(const float *x, uint8_t *b)
{
    int q[32];
    float d;
    symmetric_codes(x, 16, &d, q);
    put_fifth_bits(b + 2, q);
    for (int j = 0; j < 32; j++) put_nibble(b + 6, j, q[j]);
    return put_f16(b, d);
}

static int q4_1_block(const float *x, uint8_t *b)
{
    int q[32];
    float d, m;
    affine_codes(x, 15, &d, &m, q);
    for (int j = 0; j < 32; j++) put_nibble(b + 4, j, q[j]);
    return put_f16(b, d) && put_f16(b + 2, m);
}

static int q5_1_block(const float *x, uint8_t *b)
{
    int q[32];
    float d, m;
    affine_codes(x, 31, &d, &m, q);
    put_fifth_bits(b + 4, q);
    for (int j = 0; j < 32; j++) put_nibble(b + 8, j, q[j]);
    return put_f16(b, d) && put_f16(b + 2, m);
}

/* ---- the K types (this project's simple rule, ggml_quantize.h) ------------------------ */

/* Nearest integer to value / step within [lo, hi] (0 when step is 0). */
static int code_of(float value, float step, int lo, int hi)
{
    if (step == 0.0f) return 0;
    float q = roundf(value / step);
    return q < (float)lo ? lo : q > (float)hi ? hi : (int)q;
}

/* Q2_K, Q4_K, Q5_K (w = d sc q - dmin mn): the codes of a 256-element block of sub-blocks
 * of `sub` elements, codes q in 0..qmax, sc / mn in 0..cmax; d and dmin written at dd. */
static int affine_k_codes(const float *x, int sub, int qmax, int cmax, uint8_t *dd, int *sc, int *mn, int *q)
{
    const int n_sub = GGML_QK_K / sub;
    float scale[16], min[16], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < n_sub; j++) {
        float lo = 0.0f, hi = x[sub * j]; /* lo <= 0: the min is subtracted, never added */
        for (int e = sub * j; e < sub * j + sub; e++) {
            lo = x[e] < lo ? x[e] : lo;
            hi = x[e] > hi ? x[e] : hi;
        }
        scale[j] = (hi - lo) / (float)qmax;
        min[j] = -lo;
        max_scale = scale[j] > max_scale ? scale[j] : max_scale;
        max_min = min[j] > max_min ? min[j] : max_min;
    }
    if (!put_f16_up(dd, max_scale / (float)cmax) || !put_f16_up(dd + 2, max_min / (float)cmax)) return 0;
    float d = f16_at(dd), dmin = f16_at(dd + 2);
    for (int j = 0; j < n_sub; j++) {
        sc[j] = code_of(scale[j], d, 0, cmax);
        mn[j] = code_of(min[j], dmin, 0, cmax);
        float dl = d * (float)sc[j], ml = dmin * (float)mn[j];
        for (int e = sub * j; e < sub * j + sub; e++) q[e] = code_of(x[e] + ml, dl, 0, qmax);
    }
    return 1;
}

/* Q3_K, Q6_K (w = d sc v, v in -z..z-1): the codes of 16-element sub-blocks, v + z in q;
 * d written at dd. Each sub-block's scale is the smaller of the two signed ones whose code
 * range covers its values. */
static int symmetric_k_codes(const float *x, int z, int cmax, uint8_t *dd, int *sc, int *q)
{
    float s[16], max_s = 0.0f;
    for (int j = 0; j < 16; j++) {
        float neg = 0.0f, pos = 0.0f;
        for (int e = 16 * j; e < 16 * j + 16; e++) {
            neg = -x[e] > neg ? -x[e] : neg;
            pos = x[e] > pos ? x[e] : pos;
        }
        float up = fmaxf(neg / (float)z, pos / (float)(z - 1));   /* s > 0: -z s .. (z - 1) s */
        float down = fmaxf(neg / (float)(z - 1), pos / (float)z); /* s < 0 mirrors it */
        s[j] = up <= down ? up : -down;
        max_s = fabsf(s[j]) > max_s ? fabsf(s[j]) : max_s;
    }
    if (!put_f16_up(dd, max_s / (float)cmax)) return 0;
    float d = f16_at(dd);
    for (int j = 0; j < 16; j++) {
        sc[j] = code_of(s[j], d, -cmax, cmax);
        float dl = d * (float)sc[j];
        for (int e = 16 * j; e < 16 * j + 16; e++) q[e] = code_of(x[e], dl, -z, z - 1) + z;
    }
    return 1;
}

/* The 2-bit codes of Q2_K / Q3_K: element e = 128 h + 32 s + l is bits 2s..2s+1 of byte
 * 32 h + l. */
static void put_crumb(uint8_t *qs, int e, int q) { qs[(e >> 7) * 32 + (e & 31)] |= (uint8_t)((q & 3) << (2 * ((e >> 5) & 3))); }

/* The 4-bit codes of Q4_K / Q5_K: element e = 64 c + 32 s + l is nibble s of byte 32 c + l. */
static void put_k_nibble(uint8_t *qs, int e, int q) { qs[(e >> 6) * 32 + (e & 31)] |= (uint8_t)((q & 0xF) << (4 * ((e >> 5) & 1))); }

/* Q4_K / Q5_K's eight 6-bit scales and mins in 12 bytes (the inverse of ggml_k_scale_min). */
static void put_k_scales(uint8_t *p, const int *sc, const int *mn)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            p[j] |= (uint8_t)sc[j];
            p[4 + j] |= (uint8_t)mn[j];
        } else { /* low nibbles in byte 4 + j, the top two bits over bytes j - 4 and j */
            p[4 + j] = (uint8_t)((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
            p[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            p[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

static int q2_k_block(const float *x, uint8_t *b)
{
    int sc[16], mn[16], q[GGML_QK_K];
    if (!affine_k_codes(x, 16, 3, 15, b + 80, sc, mn, q)) return 0;
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)(sc[j] | mn[j] << 4);
    for (int e = 0; e < GGML_QK_K; e++) put_crumb(b + 16, e, q[e]);
    return 1;
}

static int q4_k_block(const float *x, uint8_t *b)
{
    int sc[8], mn[8], q[GGML_QK_K];
    if (!affine_k_codes(x, 32, 15, 63, b, sc, mn, q)) return 0;
    put_k_scales(b + 4, sc, mn);
    for (int e = 0; e < GGML_QK_K; e++) put_k_nibble(b + 16, e, q[e]);
    return 1;
}

static int q5_k_block(const float *x, uint8_t *b)
{
    int sc[8], mn[8], q[GGML_QK_K];
    if (!affine_k_codes(x, 32, 31, 63, b, sc, mn, q)) return 0;
    put_k_scales(b + 4, sc, mn);
    for (int e = 0; e < GGML_QK_K; e++) {
        b[16 + (e & 31)] |= (uint8_t)(((q[e] >> 4) & 1) << (e >> 5)); /* the 5th bit: bit e / 32 of byte e % 32 */
        put_k_nibble(b + 48, e, q[e]);
    }
    return 1;
}

static int q3_k_block(const float *x, uint8_t *b)
{
    int sc[16], q[GGML_QK_K];
    if (!symmetric_k_codes(x, 4, 31, b + 108, sc, q)) return 0;
    for (int e = 0; e < GGML_QK_K; e++) {
        b[e & 31] |= (uint8_t)((q[e] >> 2) << (e >> 5)); /* hmask: set for v >= 0 */
        put_crumb(b + 32, e, q[e]);
    }
    for (int i = 0; i < 16; i++) { /* stored + 32: low 4 bits as nibble i / 8 of byte i % 8, high 2 at 8 + i % 4 */
        int u = sc[i] + 32;
        b[96 + (i & 7)] |= (uint8_t)((u & 0xF) << (4 * (i >> 3)));
        b[104 + (i & 3)] |= (uint8_t)((u >> 4) << (2 * (i >> 2)));
    }
    return 1;
}

static int q6_k_block(const float *x, uint8_t *b)
{
    int sc[16], q[GGML_QK_K];
    if (!symmetric_k_codes(x, 32, 127, b + 208, sc, q)) return 0;
    for (int e = 0; e < GGML_QK_K; e++) { /* e = 128 h + 32 s + l */
        int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
        b[64 * h + 32 * (s & 1) + l] |= (uint8_t)((q[e] & 0xF) << (4 * (s >> 1)));
        b[128 + 32 * h + l] |= (uint8_t)((q[e] >> 4) << (2 * s));
    }
    for (int k = 0; k < 16; k++) b[192 + k] = (uint8_t)(int8_t)sc[k];
    return 1;
}

/* ---- rows ------------------------------------------------------------------------------ */

typedef int (*block_quantizer)(const float *x, uint8_t *block);

static block_quantizer quantizer_of(uint32_t code)
{
    switch (code) {
        GGML_BLOCK_TYPES(GGML_BLOCK_CASE)
    default: return NULL;
    }
}

/* F16 / BF16 element by element (dtype.h's round to nearest even); -1 when all are
 * finite, else the index of the first that overflowed. */
static int64_t plain_row(uint32_t code, const float *src, int64_t n, uint8_t *dst)
{
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = code == GGML_TYPE_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
        if ((h & 0x7FFF) >= (code == GGML_TYPE_F16 ? 0x7C00 : 0x7F80)) return i;
        dst[2 * i] = (uint8_t)h;
        dst[2 * i + 1] = (uint8_t)(h >> 8);
    }
    return -1;
}

canvas_status ggml_quantize_row(int ggml_type, const float *src, int64_t n, void *dst)
{
    const uint32_t code = ggml_type < 0 ? UINT32_MAX : (uint32_t)ggml_type;
    const char *name = ggml_type_name(code) ? ggml_type_name(code) : "unknown";
    if (!ggml_type_supported(code))
        return status_fail(CANVAS_ERR_INPUT, "ggml type %d (%s) cannot be written", ggml_type, name);
    const int64_t per_block = ggml_type_block_elements(code);
    if (n < 0 || n % per_block != 0)
        return status_fail(CANVAS_ERR_INPUT, "ggml type %s: %lld elements are not a whole number of %lld-element blocks",
                           name, (long long)n, (long long)per_block);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return status_fail(CANVAS_ERR_INPUT, "ggml type %s: element %lld is %s; refusing to quantise", name,
                               (long long)i, isnan(src[i]) ? "NaN" : "infinite");
    uint8_t *out = dst;
    if (code == GGML_TYPE_F32) {
        if (n > 0) memcpy(out, src, (size_t)n * sizeof *src);
        return CANVAS_OK;
    }
    if (code == GGML_TYPE_F16 || code == GGML_TYPE_BF16) {
        int64_t bad = plain_row(code, src, n, out);
        if (bad >= 0)
            return status_fail(CANVAS_ERR_INPUT, "ggml type %s: element %lld (%g) is beyond the type's range", name,
                               (long long)bad, (double)src[bad]);
        return CANVAS_OK;
    }
    block_quantizer quantize = quantizer_of(code);
    const size_t block_bytes = ggml_type_block_bytes(code);
    for (int64_t first = 0; first < n; first += per_block, out += block_bytes) {
        memset(out, 0, block_bytes); /* the packers OR their bits in */
        if (!quantize(src + first, out))
            return status_fail(CANVAS_ERR_INPUT, "ggml type %s: the block of elements %lld..%lld needs a scale beyond "
                               "f16's range", name, (long long)first, (long long)(first + per_block - 1));
    }
    return CANVAS_OK;
}
