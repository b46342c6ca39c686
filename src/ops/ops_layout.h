/* ops_layout.h — copies that change an activation's layout (CPU implementations in
 * src/ops/cpu/layout.c): the models' edges (a planar image in, channels-last inside) and
 * the column slices of a fused projection. Exact copies: no arithmetic beyond the clamp. */
#ifndef CANVAS_OPS_LAYOUT_H
#define CANVAS_OPS_LAYOUT_H

#include <stdint.h>

#include "ops/ops.h"

/* dst[r, c] = src[r, col0 + c] for c < cols: columns [col0, col0 + cols) of a [rows,
 * src_cols] matrix into a [rows, cols] one (dst must not overlap src). */
void op_copy_columns(op_backend *be, const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                     float *dst);

/* Row permutations of [n, width] matrices (dst must not overlap src; index holds a
 * permutation of 0..n-1): gather dst[k] = src[index[k]], scatter dst[index[k]] = src[k]. */
void op_gather_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst);
void op_scatter_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst);

/* Planar [channels, pixels] -> channels-last [pixels, channels]. */
void op_to_channels_last(op_backend *be, const float *src, int64_t pixels, int channels, float *dst);

/* Channels-last [pixels, channels] -> planar [channels, pixels]; clamp 1 clamps every
 * value to [-1, 1] on the way. */
void op_to_channels_first(op_backend *be, const float *src, int64_t pixels, int channels, int clamp, float *dst);

#endif
