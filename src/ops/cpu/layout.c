/* layout.c — the layout copies of ops_layout.h, on the calling thread: they move bytes
 * once per pass at the edges of a model, far from the time the GEMMs take. */
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
