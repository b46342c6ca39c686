/* SPDX-License-Identifier: Apache-2.0 */
/* ops_layout.h — copies that change an activation's layout (CPU implementations in
 * src/ops/cpu/layout.c): the models' edges (a planar image in, channels-last inside), the
 * column slices of a fused projection, row permutations, windows of planar images and the
 * blend of two overlapping tiles. Exact copies: no arithmetic beyond the clamp, except
 * the blend. */
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

/* A window of planar images ([channels, height, width] each): the height x width pixels
 * at (src_y, src_x) of src go to (dst_y, dst_x) of dst, every channel; clamp 1 clamps the
 * values to [-1, 1]. The window must lie inside both images. */
typedef struct op_window {
    int channels, height, width;
    int src_height, src_width, src_y, src_x;
    int dst_height, dst_width, dst_y, dst_x;
    int clamp;
} op_window;

void op_copy_window(op_backend *be, const op_window *w, const float *src, float *dst);

/* The seam of two overlapping planar tiles a [channels, a_height, a_width] (above or to the
 * left) and b [channels, b_height, b_width], in place in b: with e = min(extent, both
 * tiles' sizes along the axis), b's first e rows (columns = 0) or columns (columns = 1)
 * become a's last e times (1 - i/e) plus b's own times i/e, i the row or column within
 * the seam, both weights rounded to float first and the two products rounded apart
 * (diffusers' blend_v / blend_h on float32 tensors). Over rows, b's width is used. */
void op_blend_seam(op_backend *be, const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                   int channels, int extent, int columns);

#endif
