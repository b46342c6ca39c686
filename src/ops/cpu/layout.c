/* SPDX-License-Identifier: Apache-2.0 */
/* layout.c — the layout copies and the tile blend of ops_layout.h, on the calling thread:
 * they move bytes once per pass at the edges of a model, far from the time the GEMMs take. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <string.h>

#include "ops/ops_layout.h"

void op_copy_columns(op_backend *be, const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                     float *dst)
{
    (void)be;
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * cols, src + r * src_cols + col0, (size_t)cols * sizeof(float));
}

void op_gather_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst)
{
    (void)be;
    for (int64_t k = 0; k < n; k++) memcpy(dst + k * width, src + index[k] * width, (size_t)width * sizeof(float));
}

void op_scatter_rows(op_backend *be, const float *src, const int64_t *index, int64_t n, int64_t width, float *dst)
{
    (void)be;
    for (int64_t k = 0; k < n; k++) memcpy(dst + index[k] * width, src + k * width, (size_t)width * sizeof(float));
}

void op_to_channels_last(op_backend *be, const float *src, int64_t pixels, int channels, float *dst)
{
    (void)be;
    for (int64_t p = 0; p < pixels; p++)
        for (int c = 0; c < channels; c++) dst[p * channels + c] = src[c * pixels + p];
}

void op_to_channels_first(op_backend *be, const float *src, int64_t pixels, int channels, int clamp, float *dst)
{
    (void)be;
    for (int64_t p = 0; p < pixels; p++)
        for (int c = 0; c < channels; c++) {
            float value = src[p * channels + c];
            if (clamp) value = value < -1.0f ? -1.0f : value > 1.0f ? 1.0f : value;
            dst[c * pixels + p] = value;
        }
}

void op_copy_window(op_backend *be, const op_window *w, const float *src, float *dst)
{
    (void)be;
    for (int c = 0; c < w->channels; c++)
        for (int y = 0; y < w->height; y++) {
            const float *from = src + ((size_t)c * w->src_height + w->src_y + y) * w->src_width + w->src_x;
            float *to = dst + ((size_t)c * w->dst_height + w->dst_y + y) * w->dst_width + w->dst_x;
            if (!w->clamp) {
                memcpy(to, from, (size_t)w->width * sizeof(float));
                continue;
            }
            for (int x = 0; x < w->width; x++) to[x] = from[x] < -1.0f ? -1.0f : from[x] > 1.0f ? 1.0f : from[x];
        }
}

/* The products are rounded apart (two statements): a fused multiply-add would not give
 * float32 PyTorch's result. */
static float blend(float from, float keep, float to, float take)
{
    float mine = from * keep;
    float theirs = to * take;
    return mine + theirs;
}

void op_blend_seam(op_backend *be, const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                   int channels, int extent, int columns)
{
    (void)be;
    const int a_size = columns ? a_width : a_height, b_size = columns ? b_width : b_height;
    int e = extent < a_size ? extent : a_size;
    if (b_size < e) e = b_size;
    for (int c = 0; c < channels; c++)
        if (!columns) {
            for (int y = 0; y < e; y++) {
                const float keep = (float)(1.0 - (double)y / e), take = (float)((double)y / e);
                const float *from = a + ((size_t)c * a_height + (a_height - e + y)) * a_width;
                float *to = b + ((size_t)c * b_height + y) * b_width;
                for (int x = 0; x < b_width; x++) to[x] = blend(from[x], keep, to[x], take);
            }
        } else {
            for (int y = 0; y < b_height; y++) {
                const float *from = a + ((size_t)c * a_height + y) * a_width + (a_width - e);
                float *to = b + ((size_t)c * b_height + y) * b_width;
                for (int x = 0; x < e; x++) {
                    const float keep = (float)(1.0 - (double)x / e), take = (float)((double)x / e);
                    to[x] = blend(from[x], keep, to[x], take);
                }
            }
        }
}
