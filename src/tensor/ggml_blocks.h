/* SPDX-License-Identifier: Apache-2.0 */
/* ggml_blocks.h — the ggml tensor types that GGUF files store: their sizes and exact
 * decoding to f32.
 *
 * A ggml type packs a run of `block elements` consecutive values of a row into a block of
 * `block bytes` (F32, F16 and BF16 are blocks of one element). Rows are whole blocks, so a
 * tensor of n elements takes n / block_elements * block_bytes bytes:
 *
 *   type   code  block  bytes  bytes/weight  layout of one block (little-endian; d, m, dmin f16)
 *   F32       0      1      4      4          the value
 *   F16       1      1      2      2          the value
 *   BF16     30      1      2      2          the value
 *   Q4_0      2     32     18      0.5625     d, 16 bytes of 4-bit q (element j: low nibble of
 *                                             byte j, element j+16: its high nibble); w = d(q-8)
 *   Q4_1      3     32     20      0.625      d, m, 16 bytes of q as Q4_0;       w = d q + m
 *   Q5_0      6     32     22      0.6875     d, u32 qh (bit j: 5th bit of element j), q as Q4_0;
 *                                             w = d(q-16)
 *   Q5_1      7     32     24      0.75       d, m, qh, q as Q5_0;               w = d q + m
 *   Q8_0      8     32     34      1.0625     d, 32 int8 q;                      w = q d
 *   Q2_K     10    256     84      0.328125   16 scale bytes (low nibble: scale, high: min, one
 *                                             per 16 elements), 64 bytes of 2-bit q, d, dmin;
 *                                             w = (d sc) q - (dmin mn)
 *   Q3_K     11    256    110      0.4296875  32 bytes hmask, 64 bytes of 2-bit q, 12 bytes of
 *                                             sixteen 6-bit scales (minus 32), d;
 *                                             w = (d sc)(q - 4 (1 - hbit))
 *   Q4_K     12    256    144      0.5625     d, dmin, 12 bytes of eight 6-bit scales and eight
 *                                             6-bit mins, 128 bytes of 4-bit q;
 *                                             w = (d sc) q - (dmin mn), one sc/mn per 32
 *   Q5_K     13    256    176      0.6875     as Q4_K with 32 bytes of 5th bits before the q
 *   Q6_K     14    256    210      0.8203125  128 bytes low 4 bits, 64 bytes high 2 bits, 16
 *                                             int8 scales (one per 16), d; w = (d sc)(q - 32)
 *
 * Where each element's bits sit inside the K blocks is spelled out in ggml_blocks.c. The
 * arithmetic is the reference's (llama.cpp's gguf-py quants.py): every product and sum one
 * f32 operation in the order written above, never fused, so the result is bit-exact with
 * it (tests/test_gguf_blocks.c checks every code of every field against its output). */
#ifndef CANVAS_TENSOR_GGML_BLOCKS_H
#define CANVAS_TENSOR_GGML_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

/* The codes are ggml's (the numbers a GGUF file stores); only the decodable ones are named. */
typedef enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_BF16 = 30,
} ggml_type;

#define GGML_QK_K 256 /* elements per block of the K types */

/* The block types as X(code, name) for a switch per operation, so that the decoders (here)
 * and the quantisers (ggml_quantize.c) list them once: each file names its functions
 * name##_block. */
#define GGML_BLOCK_TYPES(X)                                                                            \
    X(GGML_TYPE_Q4_0, q4_0) X(GGML_TYPE_Q4_1, q4_1) X(GGML_TYPE_Q5_0, q5_0) X(GGML_TYPE_Q5_1, q5_1)    \
    X(GGML_TYPE_Q8_0, q8_0) X(GGML_TYPE_Q2_K, q2_k) X(GGML_TYPE_Q3_K, q3_k) X(GGML_TYPE_Q4_K, q4_k)    \
    X(GGML_TYPE_Q5_K, q5_k) X(GGML_TYPE_Q6_K, q6_k)
#define GGML_BLOCK_CASE(code, name) \
    case code: return name##_block;

/* 1 when `code` is one of the types above (the ones this build decodes). */
int ggml_type_supported(uint32_t code);
/* The type's name ("Q4_K"), also for ggml types that exist but are not decoded here
 * ("IQ2_XXS"); NULL for a code ggml does not have. */
const char *ggml_type_name(uint32_t code);
/* Elements per block and bytes per block of a supported type (0 for any other code). */
uint32_t ggml_type_block_elements(uint32_t code);
uint32_t ggml_type_block_bytes(uint32_t code);

/* The bytes of n_elements of a supported type into *bytes. CANVAS_ERR_INPUT (message naming
 * the type) when the type is not supported, n_elements is not a whole number of blocks, or
 * the byte count overflows 64 bits. What the planner counts a GGUF weight as. */
canvas_status ggml_type_bytes(uint32_t code, uint64_t n_elements, uint64_t *bytes);

/* Decode n_elements (a whole number of blocks) of a supported type at src (no alignment
 * needed) into dst. CANVAS_ERR_USAGE, nothing written, for an unsupported type or a count
 * that is not whole blocks: the caller checked both when it read the tensor. */
canvas_status ggml_to_f32(uint32_t code, const void *src, float *dst, size_t n_elements);

/* (Quantising f32 into these blocks: tensor/ggml_quantize.h.) */

/* Q4_K / Q5_K scale and min of sub-block j (0..7) from the 12 packed bytes: j < 4 the low
 * 6 bits of bytes j and 4 + j; j >= 4 the nibbles of byte 4 + j topped with the two high
 * bits of bytes j - 4 and j. (Shared with the GEMM's panel decoder.) */
static inline void ggml_k_scale_min(const uint8_t *p, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = p[j] & 0x3F;
        *mn = p[4 + j] & 0x3F;
    } else {
        *sc = (p[4 + j] & 0xF) | (p[j - 4] >> 6) << 4;
        *mn = (p[4 + j] >> 4) | (p[j] >> 6) << 4;
    }
}

#endif
