/* SPDX-License-Identifier: Apache-2.0 */
/* quant.h — quantised weight formats: their layout in memory, exact decoding, and the
 * quantisers that make them from f32/f16/bf16 weights.
 *
 * A quantised matrix [out, in] (PyTorch Linear layout) is ONE contiguous byte blob, codes
 * first and scales after, so that anything that moves weights (the residency manager, a
 * device copy) moves a quantised matrix as one range and the offsets below stay valid:
 *
 *   format          codes (row-major, flat index i = row*in + col)     scales at scales_offset
 *   fp8 e4m3/e5m2   1 byte per weight (e4m3fn or e5m2 code)             per row: f32 [out]; per tensor: none,
 *                                                                       the scale is params.tensor_scale
 *   nf4             2 weights per byte, flat element 2j in the HIGH     f32 absmax: one per 64 consecutive
 *                   nibble of byte j, 2j+1 in the low one (bitsandbytes) elements (blocks never cross rows:
 *                                                                       in % 64 == 0)
 *   q8_0            int8 per weight                                     f16 d: one per 32 consecutive
 *                                                                       elements (in % 32 == 0)
 *
 * scales_offset = codes bytes rounded up to 64, so scales are aligned wherever the blob is.
 * A per-tensor fp8 blob is nothing but the codes, so an fp8 checkpoint's weight tensor is
 * used where it lies in the mapped file (no copy).
 * Bytes per parameter: fp8 1 (+ 4 / in per-row), nf4 0.5625
 * (32 bytes of codes + a 4-byte absmax per 64), q8_0 1.0625 (32 + 2 per 32).
 *
 * Values (every decode is exact arithmetic in f32, as the reference implementations do):
 *   fp8   w = code_value x scale
 *   nf4   w = NF4[code] x absmax           NF4 = the 16 bitsandbytes NormalFloat values
 *   q8_0  w = (float)q x f16_to_f32(d)
 *
 * Quantisers (what `--weights` and `canvas convert` use):
 *   fp8   scale = amax / FMAX (448 e4m3, 57344 e5m2; amax over the tensor or the row; 1 when
 *         amax is 0), code = f32_to_e4m3/e5m2(w / scale): round to nearest even, saturating.
 *   nf4   absmax = max|w| of the block; code = the NF4 value nearest to w x (1 / absmax), a tie
 *         going to the lower code (bitsandbytes' decision thresholds are the midpoints and
 *         compare with '>'); an all-zero block gets absmax 0 and code 7 (0.0).
 *   q8_0  d = f16(amax / 127) (round to nearest even); q = w / f32(d) rounded to nearest even
 *         and clamped to [-127, 127]; d = 0 gives q = 0.
 * NaN or infinite inputs are refused (CANVAS_ERR_INPUT): a scale made from them is garbage.
 *
 * The GGUF formats hold a matrix exactly as a GGUF file does (tensor/ggml_blocks.h): rows of
 * blocks with their scales inside (gguf_q8_0: 34 bytes per 32 weights, in % 32 == 0;
 * gguf_q4_k: 144 bytes per 256, in % 256 == 0), no separate scales (scales_offset = bytes =
 * codes_bytes), so a tensor of a mapped GGUF file is used where it lies. Values and
 * quantisers are ggml_to_f32's and ggml_quantize_row's (tensor/ggml_quantize.h). They are not
 * --weights choices. The other ggml block types (QUANT_GGUF_Q4_0 .. QUANT_GGUF_Q6_K) are held
 * the same way; Q5_K and Q6_K have SIMD decoders as Q8_0 and Q4_K do, the others (Q4_0, Q4_1,
 * Q5_0, Q5_1, Q2_K, Q3_K) are decoded whole blocks at a time by ggml_to_f32 into a small
 * cache as the GEMM packs a panel or the GEMV walks a row (the generic path: every weight
 * still decoded exactly, the same values and the same reduction order as the f32 matrix
 * they stand for; slower to decode, which shows in the GEMV). */
#ifndef CANVAS_TENSOR_QUANT_H
#define CANVAS_TENSOR_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "tensor/dtype.h"

typedef enum quant_format {
    QUANT_NONE = 0,       /* not quantised: F32 / F16 / BF16 as stored */
    QUANT_FP8_E4M3,
    QUANT_FP8_E5M2,
    QUANT_NF4,
    QUANT_Q8_0,
    QUANT_GGUF_Q8_0,      /* ggml Q8_0 / Q4_K blocks as a GGUF file stores them (below) */
    QUANT_GGUF_Q4_K,
    QUANT_GGUF_Q4_0,      /* the other ggml block types (below: Q5_K and Q6_K with SIMD */
    QUANT_GGUF_Q4_1,      /* decoders, the rest through ggml_to_f32, the generic path) */
    QUANT_GGUF_Q5_0,
    QUANT_GGUF_Q5_1,
    QUANT_GGUF_Q2_K,
    QUANT_GGUF_Q3_K,
    QUANT_GGUF_Q5_K,
    QUANT_GGUF_Q6_K,
    QUANT_FORMAT_COUNT
} quant_format;

#define QUANT_NF4_BLOCK 64
#define QUANT_Q8_BLOCK 32
#define QUANT_E4M3_MAX 448.0f
#define QUANT_E5M2_MAX 57344.0f

/* The layout of one quantised matrix (the blob itself is elsewhere). */
typedef struct quant_params {
    quant_format format;
    int per_channel;          /* fp8: one scale per output row (0: one for the tensor) */
    int64_t out_features, in_features;
    size_t codes_bytes;       /* bytes of codes at the start of the blob */
    size_t scales_offset;     /* codes_bytes rounded up to 64 */
    size_t n_scales;          /* f32 scales (fp8 per row, nf4) or f16 scales (q8_0) in the blob */
    float tensor_scale;       /* fp8 per tensor: the scale (set by quant_quantize or a loader) */
    size_t bytes;             /* the whole blob */
} quant_params;

/* A user's choice of format: "fp8" (e4m3, per-tensor scale, ComfyUI's scaled fp8),
 * "fp8-channel" (e4m3, per-row scales), "fp8-e5m2" (per-tensor), "nf4", "q8" (q8_0). */
typedef struct quant_choice {
    quant_format format;
    int per_channel;
} quant_choice;

/* Parse a --weights value; CANVAS_ERR_USAGE naming the value and the known names. */
canvas_status quant_choice_parse(const char *text, quant_choice *out);
/* The name quant_choice_parse takes for a choice ("fp8", "nf4", ...; "none"). */
const char *quant_choice_name(quant_choice choice);
/* "fp8_e4m3", "fp8_e5m2", "nf4", "q8_0", "none". */
const char *quant_format_name(quant_format format);

/* The ggml type code of a GGUF format (QUANT_GGUF_*), -1 for any other format; and the
 * GGUF format of a ggml block type (QUANT_NONE for F32 / F16 / BF16 and unknown codes). */
int quant_ggml_type(quant_format format);
quant_format quant_format_of_ggml(uint32_t ggml_code);

/* 1 when the format can hold a matrix with this many input features (nf4: in % 64 == 0,
 * q8_0: in % 32 == 0, fp8: any, GGUF: whole blocks of the ggml type). */
int quant_fits(quant_format format, int64_t in_features);

/* Fill the layout of a [out, in] matrix. CANVAS_ERR_UNSUPPORTED when the format cannot
 * hold it (quant_fits), CANVAS_ERR_USAGE for a bad format or size. */
canvas_status quant_layout(quant_format format, int per_channel, int64_t out_features, int64_t in_features,
                           quant_params *out);

/* Quantise a stored matrix (F32, F16 or BF16, [out, in] row-major, `src` need not be
 * aligned) into `blob` (params->bytes, padding zeroed); sets params->tensor_scale. Uses one row of f32 scratch
 * (MEM_SCRATCH). CANVAS_ERR_INPUT when the matrix holds NaN or infinity (`name` in the
 * message), CANVAS_ERR_USAGE for another source type. */
canvas_status quant_quantize(quant_params *params, dtype src_type, const void *src, void *blob,
                             const char *name);

/* Decode row `row` of a blob into out[in] (the scalar reference every kernel matches). */
void quant_dequantize_row(const quant_params *params, const void *blob, int64_t row, float *out);

/* The 16 NF4 values, code 0 = -1 .. code 7 = 0 .. code 15 = 1. */
extern const float quant_nf4_values[16];
/* The NF4 code of a value already divided by its absmax (nearest; ties to the lower code). */
uint8_t quant_nf4_encode(float normalised);
/* Round to nearest, ties to even, independent of the FPU rounding mode (|x| < 2^22). */
float quant_round_even(float x);

/* Scales of the blob (f32 for fp8 and nf4). */
static inline const float *quant_scales_f32(const quant_params *p, const void *blob)
{
    return (const float *)((const char *)blob + p->scales_offset);
}
static inline const uint16_t *quant_scales_f16(const quant_params *p, const void *blob)
{
    return (const uint16_t *)((const char *)blob + p->scales_offset);
}

#endif
