/* SPDX-License-Identifier: Apache-2.0 */
/* quant_pack.c — decoding quantised weights inside op_linear (tensor/quant.h layouts).
 *
 * The GEMM converts a weight panel to f32 once per call and reuses it for every row of
 * x, so decoding costs O(N K) against the O(M N K) of the multiply: the formats only have
 * to decode fast enough not to show at a few hundred rows. The GEMV (1-2 rows, the
 * modulation) is bound by reading the weight, where the smaller formats win outright.
 *
 * Eight consecutive weights of one row decode to one __m256, exactly as the scalar
 * quant_dequantize_row does (f32 code value x f32 scale, one rounding):
 *   e5m2   the code is the upper byte of an f16: shift, vcvtph2ps, x scale.
 *   e4m3   sign to bit 15, the other 7 bits to bits 13..7 make an f16 worth 2^-8 of the
 *          e4m3 value (subnormals included); x (scale 2^8), exact since 2^8 is a power of
 *          two. The NaN codes (S.1111.111) get an all-ones f16 exponent: NaN. (vpmovsxbw,
 *          shift, mask, and add / mask / or for the NaN bit: 8 instructions for 8 weights.)
 *   nf4    4 bytes broadcast, vpsllvd puts lane e's nibble (high first) in bits 28..31:
 *          the top bit picks one of two 8-entry vpermps tables, x absmax.
 *   q8_0   vpmovsxbd, vcvtdq2ps, x d.
 *   gguf_q8_0  the same, d read from the head of the weights' 34-byte block.
 *   gguf_q4_k  the 8 bytes holding the weights' nibbles widened to 32 bits, the high
 *          nibble shifted down or the low one kept (v - (v >> 4 << 4)); x (d sc) - (dmin mn)
 *          with the sub-block's 6-bit scale and min unpacked per call: a multiply and a
 *          subtraction, as ggml_to_f32.
 *   gguf_q5_k  as gguf_q4_k, the 5th bits (bit j of 8 qh bytes) widened, moved to the lane's
 *          top bit and down to bit 4 with one variable and two constant shifts.
 *   gguf_q6_k  the 8 ql and the 8 qh bytes widened; the nibble and the two bits shifted to the
 *          lane's top and down again (the counts depend on where the eight weights sit),
 *          x (d sc), the int8 scale of their 16.
 *   the other GGUF types (the generic path): the weight's whole block decoded by ggml_to_f32
 *          into a per-call cache of one block per row being read (8 rows: a panel's half
 *          strip, the GEMV's four), so a block is decoded once per pass over it, not once
 *          per eight weights; the values are ggml_to_f32's, so the products and their order
 *          are the f32 matrix's.
 * Blocks (64 for nf4, 32 for q8_0, 256 for Q4_K, whose sub-blocks of 32 hold 8 weights
 * in one run of bytes) are multiples of 8 and every k offset the GEMM asks for is a
 * multiple of 8 (KC is), so eight weights never straddle two scales. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <string.h>

#include "base/status.h"
#include "ops/cpu/gemm_kernel.h"
#include "ops/cpu/gemv.h"
#include "ops/cpu/quant_pack.h"
#include "ops/cpu/simd.h"
#include "tensor/ggml_blocks.h"

#define QUANT_INLINE static inline __attribute__((always_inline))

/* The generic path's decoded blocks: slot n % 8 holds row n's block `block` (-1: none). */
enum { GGML_CACHE_SLOTS = 8 };
/* The format the generic path's loops are instantiated with (a constant, like the others) */
#define QUANT_GENERIC QUANT_FORMAT_COUNT
typedef struct ggml_cache {
    int64_t row[GGML_CACHE_SLOTS], block[GGML_CACHE_SLOTS];
    float values[GGML_CACHE_SLOTS][GGML_QK_K];
} ggml_cache;

/* What the decoders need of a view, read once per call. */
typedef struct quant_source {
    const uint8_t *codes;
    const float *scales32;      /* fp8 scales, nf4 absmax */
    const uint16_t *scales16;   /* q8_0 d */
    int64_t in;
    int per_channel;
    float tensor_scale;         /* fp8 per tensor */
    __m256 nf4_low, nf4_high;   /* NF4 values 0..7 and 8..15 */
    uint32_t ggml_type;         /* the generic path: the type, its block, a row's bytes */
    uint32_t block_elements, block_bytes;
    size_t row_bytes;
    ggml_cache *cache;          /* set by the caller that reads through the generic path */
} quant_source;

static quant_source source_of(const weight_view *w)
{
    const quant_params *p = w->quant;
    quant_source s = {.codes = w->data, .in = p->in_features, .per_channel = p->per_channel,
                       .tensor_scale = p->tensor_scale};
    s.scales32 = (const float *)((const char *)w->data + p->scales_offset);
    s.scales16 = (const uint16_t *)((const char *)w->data + p->scales_offset);
    s.nf4_low = _mm256_loadu_ps(quant_nf4_values);
    s.nf4_high = _mm256_loadu_ps(quant_nf4_values + 8);
    int type = quant_ggml_type(p->format);
    if (type >= 0) {
        s.ggml_type = (uint32_t)type;
        s.block_elements = ggml_type_block_elements(s.ggml_type);
        s.block_bytes = ggml_type_block_bytes(s.ggml_type);
        s.row_bytes = (size_t)s.in / s.block_elements * s.block_bytes;
    }
    return s;
}

static void cache_reset(ggml_cache *cache)
{
    for (int i = 0; i < GGML_CACHE_SLOTS; i++) cache->row[i] = cache->block[i] = -1;
}

/* The generic path: W[n][k ..], from the cached decoded block holding k. */
static const float *generic_at(const quant_source *s, int64_t n, int64_t k)
{
    ggml_cache *c = s->cache;
    const int slot = (int)(n % GGML_CACHE_SLOTS);
    const int64_t block = k / s->block_elements;
    if (c->row[slot] != n || c->block[slot] != block) {
        const uint8_t *src = s->codes + (size_t)n * s->row_bytes + (size_t)block * s->block_bytes;
        (void)ggml_to_f32(s->ggml_type, src, c->values[slot], s->block_elements); /* one whole block */
        c->row[slot] = n;
        c->block[slot] = block;
    }
    return c->values[slot] + k % s->block_elements;
}

canvas_status quant_view_check(const weight_view *w)
{
    const quant_params *p = w->quant;
    if (p->format <= QUANT_NONE || p->format >= QUANT_FORMAT_COUNT)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "op_linear: no kernel for quantised format %d", (int)p->format);
    if (p->out_features != w->out_features || p->in_features != w->in_features || !quant_fits(p->format, p->in_features))
        return status_fail(CANVAS_ERR_INTERNAL, "op_linear: %s layout [%lld, %lld] does not match the weight [%lld, %lld]",
                           quant_format_name(p->format), (long long)p->out_features, (long long)p->in_features,
                           (long long)w->out_features, (long long)w->in_features);
    return CANVAS_OK;
}

/* ---- eight weights ------------------------------------------------------------------ */

/* An f16 inside a GGUF block (blocks of 34 or 144 bytes leave it unaligned). */
QUANT_INLINE uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Eight bytes, each widened to a 32-bit lane. */
QUANT_INLINE __m256i widen8(const uint8_t *p)
{
    return _mm256_cvtepu16_epi32(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p)));
}

/* Scale of row n for fp8 (per tensor or per row), pre-multiplied by 2^8 for e4m3. */
QUANT_INLINE __m256 fp8_scale(const quant_source *s, quant_format f, int64_t n)
{
    float scale = s->per_channel ? s->scales32[n] : s->tensor_scale;
    return _mm256_set1_ps(f == QUANT_FP8_E4M3 ? scale * 256.0f : scale);
}

/* Weights [n][k .. k+8) with k a multiple of 8; `fp8` is fp8_scale(n). */
QUANT_INLINE __m256 decode8(const quant_source *s, quant_format f, int64_t n, int64_t k, __m256 fp8)
{
    const size_t i = (size_t)n * (size_t)s->in + (size_t)k;
    switch (f) {
    case QUANT_FP8_E4M3: {
        /* sign-extended code << 7: the low 7 bits land in 13..7 and the sign fills 15..14;
         * masking bit 14 leaves the f16. Only 0x3F80 (a NaN code) carries into bit 14 when
         * 0x80 is added: that bit completes the all-ones exponent of an f16 NaN. */
        __m128i h = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(s->codes + i)));
        __m128i half = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16((short)0xBF80));
        __m128i nan = _mm_and_si128(_mm_add_epi16(half, _mm_set1_epi16(0x80)), _mm_set1_epi16(0x4000));
        return _mm256_mul_ps(_mm256_cvtph_ps(_mm_or_si128(half, nan)), fp8);
    }
    case QUANT_FP8_E5M2: {
        __m128i h = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(s->codes + i)));
        return _mm256_mul_ps(_mm256_cvtph_ps(_mm_slli_epi16(h, 8)), fp8);
    }
    case QUANT_NF4: {
        /* the 4 bytes in every lane; lane e shifted left so that its nibble fills bits
         * 28..31 (element 2j: bits 8j+4.., 2j+1: bits 8j..): the top bit picks the table
         * (blendv), the nibble shifted down is the index */
        uint32_t packed;
        memcpy(&packed, s->codes + i / 2, sizeof packed);
        __m256i top = _mm256_sllv_epi32(_mm256_set1_epi32((int)packed), _mm256_setr_epi32(24, 28, 16, 20, 8, 12, 0, 4));
        __m256i nibble = _mm256_srli_epi32(top, 28);
        __m256 low = _mm256_permutevar8x32_ps(s->nf4_low, nibble);
        __m256 high = _mm256_permutevar8x32_ps(s->nf4_high, nibble);
        __m256 value = _mm256_blendv_ps(low, high, _mm256_castsi256_ps(top));
        return _mm256_mul_ps(value, _mm256_set1_ps(s->scales32[i / QUANT_NF4_BLOCK]));
    }
    case QUANT_GGUF_Q8_0: {
        const uint8_t *block = s->codes + i / 32 * 34;
        __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 2 + i % 32)));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(simd_f16_to_f32(le16(block))));
    }
    case QUANT_GGUF_Q4_K: {
        const uint8_t *block = s->codes + i / GGML_QK_K * 144;
        int e = (int)(i % GGML_QK_K), j = e / 32, sc, mn;
        ggml_k_scale_min(block + 4, j, &sc, &mn);
        float dl = simd_f16_to_f32(le16(block)) * (float)sc, ml = simd_f16_to_f32(le16(block + 2)) * (float)mn;
        /* element e = 64 c + 32 s + l: nibble s of byte 32 c + l (ggml_blocks.c) */
        const uint8_t *bytes = block + 16 + (e >> 6) * 32 + (e & 31);
        __m256i v = _mm256_cvtepu16_epi32(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)bytes)));
        __m256i high = _mm256_srli_epi32(v, 4);
        __m256i q = j & 1 ? high : _mm256_sub_epi32(v, _mm256_slli_epi32(high, 4));
        return _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(q)), _mm256_set1_ps(ml));
    }
    case QUANT_GGUF_Q5_K: { /* as Q4_K, the 5th bit of element e = bit j of qh byte e % 32 */
        const uint8_t *block = s->codes + i / GGML_QK_K * 176;
        int e = (int)(i % GGML_QK_K), j = e / 32, sc, mn;
        ggml_k_scale_min(block + 4, j, &sc, &mn);
        float dl = simd_f16_to_f32(le16(block)) * (float)sc, ml = simd_f16_to_f32(le16(block + 2)) * (float)mn;
        __m256i v = widen8(block + 48 + (e >> 6) * 32 + (e & 31));
        __m256i high = _mm256_srli_epi32(v, 4);
        __m256i nibble = j & 1 ? high : _mm256_sub_epi32(v, _mm256_slli_epi32(high, 4));
        __m256i bit = _mm256_srli_epi32(_mm256_sllv_epi32(widen8(block + 16 + (e & 31)), _mm256_set1_epi32(31 - j)), 31);
        __m256i q = _mm256_add_epi32(nibble, _mm256_slli_epi32(bit, 4));
        return _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(q)), _mm256_set1_ps(ml));
    }
    case QUANT_GGUF_Q6_K: { /* element e = 128 h + 32 s + l: nibble s / 2 of ql byte 64 h + 32 (s % 2) + l,
                               bits 2s, 2s + 1 of qh byte 32 h + l (ggml_blocks.c); shifted up to the
                               lane's top and down again, so every shift count is a lane's own */
        const uint8_t *block = s->codes + i / GGML_QK_K * 210;
        int e = (int)(i % GGML_QK_K), h = e >> 7, sub = (e >> 5) & 3, l = e & 31;
        float dl = simd_f16_to_f32(le16(block + 208)) * (float)(int8_t)block[192 + e / 16];
        __m256i low = _mm256_sllv_epi32(widen8(block + 64 * h + 32 * (sub & 1) + l), _mm256_set1_epi32(28 - 4 * (sub >> 1)));
        __m256i high = _mm256_sllv_epi32(widen8(block + 128 + 32 * h + l), _mm256_set1_epi32(30 - 2 * sub));
        __m256i q = _mm256_add_epi32(_mm256_srli_epi32(low, 28), _mm256_slli_epi32(_mm256_srli_epi32(high, 30), 4));
        return _mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(32))));
    }
    case QUANT_Q8_0: {
        __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(s->codes + i)));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(simd_f16_to_f32(s->scales16[i / QUANT_Q8_BLOCK])));
    }
    default: return _mm256_loadu_ps(generic_at(s, n, k)); /* the other GGUF types: blocks of 32 or 256 */
    }
}

/* One weight (the tails of fp8 rows whose length is not a multiple of 8). */
static float decode1(const quant_source *s, quant_format f, int64_t n, int64_t k)
{
    const size_t i = (size_t)n * (size_t)s->in + (size_t)k;
    switch (f) {
    case QUANT_FP8_E4M3: return e4m3_to_f32(s->codes[i]) * (s->per_channel ? s->scales32[n] : s->tensor_scale);
    case QUANT_FP8_E5M2: return e5m2_to_f32(s->codes[i]) * (s->per_channel ? s->scales32[n] : s->tensor_scale);
    case QUANT_NF4: {
        uint8_t byte = s->codes[i / 2];
        return quant_nf4_values[i % 2 ? byte & 15 : byte >> 4] * s->scales32[i / QUANT_NF4_BLOCK];
    }
    case QUANT_GGUF_Q8_0:
    case QUANT_GGUF_Q4_K:
    case QUANT_GGUF_Q5_K:
    case QUANT_GGUF_Q6_K: {
        /* the weight's whole block, decoded exactly as ggml_to_f32 (the tails of short strips) */
        float values[GGML_QK_K];
        (void)ggml_to_f32(s->ggml_type, s->codes + i / s->block_elements * s->block_bytes, values, s->block_elements);
        return values[i % s->block_elements];
    }
    case QUANT_Q8_0: return (float)(int8_t)s->codes[i] * f16_to_f32(s->scales16[i / QUANT_Q8_BLOCK]);
    default: return *generic_at(s, n, k);
    }
}

/* ---- the GEMM's packing step ---------------------------------------------------------- */

/* Bytes of row n's codes from column k (for prefetching). */
static const char *codes_at(const quant_source *s, quant_format f, int64_t n, int64_t k)
{
    size_t i = (size_t)n * (size_t)s->in + (size_t)k;
    if (f == QUANT_GGUF_Q8_0) return (const char *)s->codes + i / 32 * 34;
    if (f == QUANT_GGUF_Q4_K) return (const char *)s->codes + i / GGML_QK_K * 144;
    if (f == QUANT_GGUF_Q5_K || f == QUANT_GGUF_Q6_K) return (const char *)s->codes + i / GGML_QK_K * s->block_bytes;
    if (f == QUANT_GENERIC)
        return (const char *)s->codes + (size_t)n * s->row_bytes + (size_t)k / s->block_elements * s->block_bytes;
    return (const char *)s->codes + (f == QUANT_NF4 ? i / 2 : i);
}

QUANT_INLINE void pack_panel(const quant_source *s, quant_format f, int64_t n0, int64_t cols, int64_t k0, int64_t kc,
                             float *panel)
{
    size_t row_bytes = f == QUANT_NF4 ? (size_t)kc / 2 : f == QUANT_GGUF_Q8_0 ? (size_t)kc / 32 * 34
                       : f == QUANT_GGUF_Q4_K ? ((size_t)kc + GGML_QK_K - 1) / GGML_QK_K * 144
                       : f == QUANT_GENERIC || f == QUANT_GGUF_Q5_K || f == QUANT_GGUF_Q6_K
                           ? ((size_t)kc + s->block_elements - 1) / s->block_elements * s->block_bytes
                                            : (size_t)kc;
    for (int64_t strip_index = 0; strip_index * GEMM_NR < cols; strip_index++) {
        float *strip = panel + strip_index * kc * GEMM_NR;
        int64_t c0 = n0 + strip_index * GEMM_NR;
        int64_t live = cols - strip_index * GEMM_NR < GEMM_NR ? cols - strip_index * GEMM_NR : GEMM_NR;
        int64_t next_live = cols - (strip_index + 1) * GEMM_NR < GEMM_NR ? cols - (strip_index + 1) * GEMM_NR : GEMM_NR;
        for (int64_t i = 0; i < next_live; i++) { /* short row pieces: prefetch the next strip's */
            const char *row = codes_at(s, f, c0 + GEMM_NR + i, k0);
            for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
        }
        for (int half = 0; half < 2; half++) {
            int64_t h0 = half * 8, rows = live - h0;
            int64_t kk = 0;
            if (rows >= 8) {
                __m256 scale[8];
                GEMM_UNROLL8 for (int i = 0; i < 8; i++) scale[i] = fp8_scale(s, f, c0 + h0 + i);
                for (; kk + 8 <= kc; kk += 8) {
                    __m256 r[8];
                    GEMM_UNROLL8 for (int i = 0; i < 8; i++) r[i] = decode8(s, f, c0 + h0 + i, k0 + kk, scale[i]);
                    gemm_transpose8x8(r);
                    GEMM_UNROLL8 for (int j = 0; j < 8; j++) _mm256_storeu_ps(strip + (kk + j) * GEMM_NR + h0, r[j]);
                }
            }
            for (; kk < kc; kk++)
                for (int i = 0; i < 8; i++)
                    strip[kk * GEMM_NR + h0 + i] = i < rows ? decode1(s, f, c0 + h0 + i, k0 + kk) : 0.0f;
        }
    }
}

void quant_pack_panel(const weight_view *w, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float *panel)
{
    quant_source s = source_of(w);
    switch (w->quant->format) {
    case QUANT_FP8_E4M3: pack_panel(&s, QUANT_FP8_E4M3, n0, cols, k0, kc, panel); break;
    case QUANT_FP8_E5M2: pack_panel(&s, QUANT_FP8_E5M2, n0, cols, k0, kc, panel); break;
    case QUANT_NF4: pack_panel(&s, QUANT_NF4, n0, cols, k0, kc, panel); break;
    case QUANT_GGUF_Q8_0: pack_panel(&s, QUANT_GGUF_Q8_0, n0, cols, k0, kc, panel); break;
    case QUANT_GGUF_Q4_K: pack_panel(&s, QUANT_GGUF_Q4_K, n0, cols, k0, kc, panel); break;
    case QUANT_GGUF_Q5_K: pack_panel(&s, QUANT_GGUF_Q5_K, n0, cols, k0, kc, panel); break;
    case QUANT_GGUF_Q6_K: pack_panel(&s, QUANT_GGUF_Q6_K, n0, cols, k0, kc, panel); break;
    case QUANT_Q8_0: pack_panel(&s, QUANT_Q8_0, n0, cols, k0, kc, panel); break;
    default: { /* the other GGUF types */
        ggml_cache cache;
        cache_reset(&cache);
        s.cache = &cache;
        pack_panel(&s, QUANT_GENERIC, n0, cols, k0, kc, panel);
        break;
    }
    }
}

/* ---- GEMV: 1-2 rows of x, the loop of gemv.h ------------------------------------------- */

/* One pair of readers per format (the format a constant in each, so decode8 folds). */
#define QUANT_GEMV_READERS(name, format)                                                                       \
    static inline __m256 name##_row(const void *src, int64_t n) { return fp8_scale(src, format, n); }           \
    static inline __m256 name##_load8(const void *src, int64_t n, int64_t k, __m256 scale)                     \
    {                                                                                                          \
        return decode8(src, format, n, k, scale);                                                              \
    }                                                                                                          \
    static inline float name##_load1(const void *src, int64_t n, int64_t k) { return decode1(src, format, n, k); }
QUANT_GEMV_READERS(e4m3, QUANT_FP8_E4M3)
QUANT_GEMV_READERS(e5m2, QUANT_FP8_E5M2)
QUANT_GEMV_READERS(nf4, QUANT_NF4)
QUANT_GEMV_READERS(q8, QUANT_Q8_0)
QUANT_GEMV_READERS(gguf_q8, QUANT_GGUF_Q8_0)
QUANT_GEMV_READERS(gguf_q4k, QUANT_GGUF_Q4_K)
QUANT_GEMV_READERS(gguf_q5k, QUANT_GGUF_Q5_K)
QUANT_GEMV_READERS(gguf_q6k, QUANT_GGUF_Q6_K)
QUANT_GEMV_READERS(gguf_generic, QUANT_GENERIC)

typedef struct quant_gemv_job {
    gemv_call call;
    quant_source s;
    quant_format format;
} quant_gemv_job;

static void quant_gemv_rows(const void *ctx, int64_t n0, int64_t n1)
{
    const quant_gemv_job *g = ctx;
    switch (g->format) {
    case QUANT_FP8_E4M3: gemv_rows(&g->call, (gemv_reader){e4m3_row, e4m3_load8, e4m3_load1, &g->s}, n0, n1); break;
    case QUANT_FP8_E5M2: gemv_rows(&g->call, (gemv_reader){e5m2_row, e5m2_load8, e5m2_load1, &g->s}, n0, n1); break;
    case QUANT_NF4: gemv_rows(&g->call, (gemv_reader){nf4_row, nf4_load8, nf4_load1, &g->s}, n0, n1); break;
    case QUANT_GGUF_Q8_0:
        gemv_rows(&g->call, (gemv_reader){gguf_q8_row, gguf_q8_load8, gguf_q8_load1, &g->s}, n0, n1);
        break;
    case QUANT_GGUF_Q4_K:
        gemv_rows(&g->call, (gemv_reader){gguf_q4k_row, gguf_q4k_load8, gguf_q4k_load1, &g->s}, n0, n1);
        break;
    case QUANT_GGUF_Q5_K:
        gemv_rows(&g->call, (gemv_reader){gguf_q5k_row, gguf_q5k_load8, gguf_q5k_load1, &g->s}, n0, n1);
        break;
    case QUANT_GGUF_Q6_K:
        gemv_rows(&g->call, (gemv_reader){gguf_q6k_row, gguf_q6k_load8, gguf_q6k_load1, &g->s}, n0, n1);
        break;
    case QUANT_Q8_0: gemv_rows(&g->call, (gemv_reader){q8_row, q8_load8, q8_load1, &g->s}, n0, n1); break;
    default: { /* the other GGUF types: this call's own cache (the job is shared by the threads) */
        quant_source s = g->s;
        ggml_cache cache;
        cache_reset(&cache);
        s.cache = &cache;
        gemv_rows(&g->call, (gemv_reader){gguf_generic_row, gguf_generic_load8, gguf_generic_load1, &s}, n0, n1);
        break;
    }
    }
}

void quant_gemv(thread_pool *pool, const float *x, int64_t m, const weight_view *w, const float *bias, float *y)
{
    quant_gemv_job g = {{x, m, w->in_features, w->out_features, bias, y}, source_of(w), w->quant->format};
    gemv_run(pool, w->out_features, quant_gemv_rows, &g);
}
