/* SPDX-License-Identifier: Apache-2.0 */
/* ggml_quantize.h — f32 rows into the blocks of every ggml type ggml_blocks.h decodes,
 * what `canvas convert ... OUT.gguf` writes and what the GGUF test files are made from.
 *
 * Sizes (bytes of n elements of a type) are ggml_blocks.h's ggml_type_bytes; decoding is
 * ggml_to_f32. Every block written here decodes there; how close it comes back:
 *
 *   F32            copied.
 *   F16, BF16      round to nearest even (dtype.h's converters): half an ulp of the type.
 *   Q8_0           llama.cpp gguf-py's quantize, byte for byte: d = amax / 127, q = x / d
 *                  rounded half away from zero, d stored as f16 (nearest even).
 *   Q4_0, Q5_0     gguf-py's: d = m / -8 (Q5_0: / -16) where m is the first element of
 *                  largest magnitude, q = trunc(x (1 / d) + 8.5 (16.5)) in f64, clipped to
 *                  0..15 (0..31), d stored as f16.
 *   Q4_1, Q5_1     gguf-py's: d = (max - min) / 15 (31), q = trunc((x - min)(1 / d) + 0.5)
 *                  in f32 clipped, d and min stored as f16.
 *   K types        this project's own, simple rule (NOT llama.cpp's error-minimising
 *                  search; the blocks are valid and any GGUF reader decodes them):
 *     Q2_K, Q4_K, Q5_K  (w = d sc q - dmin mn): per sub-block (16, 32, 32 elements)
 *                  scale = (max - lo) / qmax and min = -lo with lo = min(smallest, 0) (the
 *                  format's offset can only subtract); d = largest scale / cmax and dmin =
 *                  largest min / cmax rounded UP to f16 (so no code is clipped; cmax 15 for Q2_K's 4-bit sc / mn, 63
 *                  for the 6-bit ones); sc, mn the nearest codes; q = nearest code of
 *                  (x + dmin mn) / (d sc), clipped to 0..qmax (3, 15, 31).
 *     Q3_K, Q6_K  (w = d sc (q - z), q - z in -z..z-1, z = 4 or 32): per 16 elements the
 *                  signed scale of smallest magnitude whose code range covers the values
 *                  (s > 0: -z s .. (z-1) s; s < 0 mirrors it), d = largest |s| / cmax (31
 *                  for Q3_K's 6-bit scales, 127 for Q6_K's int8) rounded up to f16; sc the nearest
 *                  code; q - z the nearest integer of x / (d sc), clipped.
 *   The K types' worst error per element (tests/test_ggml_quantize.c checks it): half a
 *   step of the sub-block's ideal scale, plus (qmax / 2 + 1/4) d for the scale code's
 *   rounding (the range it no longer covers, and the step it grew by; qmax 3, 15, 31, and
 *   z for Q3_K / Q6_K), plus dmin / 2 for the min's; d and dmin as stored (subnormal
 *   f16 included: rounding them up keeps every scale code in range).
 *
 * Inputs must be finite: a NaN or infinity is refused, and so is a value whose stored
 * number (an F16/BF16 element, a block's f16 scale or min) would overflow to infinity
 * (gguf-py writes the infinity; a file that decodes to it is no use). */
#ifndef CANVAS_TENSOR_GGML_QUANTIZE_H
#define CANVAS_TENSOR_GGML_QUANTIZE_H

#include <stdint.h>

#include "canvas.h"
#include "tensor/ggml_blocks.h"

/* Quantise n elements of src (a whole number of the type's blocks: one row, or several
 * rows back to back) into ggml_type_bytes(ggml_type, n) bytes at dst (no alignment
 * needed). CANVAS_ERR_INPUT naming the type for a type ggml_blocks.h does not decode, n
 * negative or not whole blocks, or an input refused above (naming the element); dst may
 * then be partly written. */
canvas_status ggml_quantize_row(int ggml_type, const float *src, int64_t n, void *dst);

#endif
