/* SPDX-License-Identifier: Apache-2.0 */
/* dtype.h — element types of stored tensors and exact conversions to and from f32.
 *
 * Compute is always f32; f16, bf16 and the fp8 formats are storage formats. Every
 * conversion that rounds rounds to nearest, ties to even.
 *   f32 -> bf16 : RNE on the upper 16 bits; NaN stays NaN (quiet), infinities kept.
 *   f32 -> f16  : RNE, overflow to +-inf, subnormals exact; NaN stays NaN.
 *   f32 -> e4m3fn: RNE, saturates to +-448 (the format has no infinities, and +-inf
 *                 saturates too); NaN -> 0x7F / 0xFF (the only NaN codes, S.1111.111).
 *   f32 -> e5m2 : RNE, overflow to +-inf (e5m2 has infinities), NaN -> quiet NaN 0x7E|sign.
 * Decoding is exact (every value of these formats is an f32). NaN codes decode to an
 * f32 NaN of the same sign with the payload in the top mantissa bits: quiet for f16,
 * e4m3 and e5m2; bf16 decoding is the plain 16-bit shift, so a signalling bf16 NaN
 * stays signalling. decode -> encode returns every code except signalling NaNs, which
 * come back quiet (e5m2: as 0x7E|sign, it has no room for a payload).
 * Rounding is done on the bit patterns, so it does not depend on the FPU rounding mode.
 */
#ifndef CANVAS_TENSOR_DTYPE_H
#define CANVAS_TENSOR_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

typedef enum dtype {
    DTYPE_F64 = 0,
    DTYPE_F32,
    DTYPE_F16,
    DTYPE_BF16,
    DTYPE_I64,
    DTYPE_I32,
    DTYPE_I16,
    DTYPE_I8,
    DTYPE_U8,
    DTYPE_BOOL,
    DTYPE_F8_E4M3,   /* safetensors "F8_E4M3": e4m3fn (no inf, max 448) */
    DTYPE_F8_E5M2,
    DTYPE_COUNT
} dtype;

/* Bytes per element. */
size_t dtype_size(dtype t);
/* The safetensors name ("F32", "BF16", "F8_E4M3", ...). */
const char *dtype_name(dtype t);
/* Parse a safetensors dtype name; CANVAS_ERR_INPUT (no message set) when unknown. */
canvas_status dtype_from_name(const char *name, dtype *out);
/* 1 for the floating formats (F64 F32 F16 BF16 F8_*). */
int dtype_is_float(dtype t);

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float e4m3_to_f32(uint8_t bits);
uint8_t f32_to_e4m3(float value);
float e5m2_to_f32(uint8_t bits);
uint8_t f32_to_e5m2(float value);

/* Convert n elements of a stored tensor to f32 (any dtype; integers converted by value,
 * F64 rounded to nearest, BOOL nonzero -> 1). `src` need not be aligned. The bf16 and
 * f16 paths are the hot ones (vectorised; F16C when the build targets it). An invalid
 * dtype writes nothing. */
void dtype_to_f32(dtype t, const void *src, float *dst, size_t n);
/* Convert n f32 values into a float storage dtype (F64 F32 F16 BF16 F8_*); `dst` need
 * not be aligned. CANVAS_ERR_UNSUPPORTED (with a message) for integer targets. */
canvas_status dtype_from_f32(dtype t, const float *src, void *dst, size_t n);

#endif
