/* SPDX-License-Identifier: Apache-2.0 */
/* edit_latents.c — the small numeric pieces of the pipeline: sizes, 2x2 packing, true
 * CFG with the norm rescale, image post-processing (contracts in edit.h). */
#include <math.h>

#include "pipeline/edit.h"

void edit_dimensions(int64_t area, double ratio, int *out_width, int *out_height)
{
    double width = sqrt((double)area * ratio);
    double height = width / ratio;
    /* Python's round() is half to even: rint in the default rounding mode */
    double w = rint(width / 32.0) * 32.0, h = rint(height / 32.0) * 32.0;
    *out_width = w < 32 ? 32 : (int)w;
    *out_height = h < 32 ? 32 : (int)h;
}

/* Where latent pixel (c, y, x) goes in the packed tokens: channel c*4 + (y%2)*2 + x%2 of
 * token (y/2)*(w/2) + x/2 (2x2 patches). */
static inline int64_t packed_index(int c, int y, int x, int channels, int width)
{
    return ((int64_t)(y / 2) * (width / 2) + x / 2) * 4 * channels + (int64_t)c * 4 + (y % 2) * 2 + x % 2;
}

void edit_pack_latents(const float *latent, int channels, int height, int width, float *packed)
{
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                packed[packed_index(c, y, x, channels, width)] = latent[((int64_t)c * height + y) * width + x];
}

void edit_unpack_latents(const float *packed, int channels, int height, int width, float *latent)
{
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                latent[((int64_t)c * height + y) * width + x] = packed[packed_index(c, y, x, channels, width)];
}

void edit_cfg_combine(float *cond, const float *neg, int64_t tokens, int64_t channels, float scale)
{
    for (int64_t t = 0; t < tokens; t++) {
        float *c = cond + t * channels;
        const float *n = neg + t * channels;
        double cond_sq = 0, comb_sq = 0;
        for (int64_t k = 0; k < channels; k++) cond_sq += (double)c[k] * c[k];
        for (int64_t k = 0; k < channels; k++) {
            /* float32, in torch's order: neg + scale * (cond - neg) */
            float difference = c[k] - n[k];
            float product = scale * difference;
            c[k] = n[k] + product;
            comb_sq += (double)c[k] * c[k];
        }
        float cond_norm = (float)sqrt(cond_sq), comb_norm = (float)sqrt(comb_sq);
        float ratio = cond_norm / comb_norm;
        for (int64_t k = 0; k < channels; k++) c[k] *= ratio;
    }
}

void edit_postprocess(const float *chw, int height, int width, float *hwc)
{
    const int64_t plane = (int64_t)height * width;
    for (int64_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float v = chw[c * plane + i] * 0.5f + 0.5f;
            hwc[i * 3 + c] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
}

void edit_to_rgb8(const float *hwc, int64_t count, uint8_t *out)
{
    for (int64_t i = 0; i < count; i++) {
        float v = hwc[i] * 255.0f;
        v = !(v >= 0.0f) ? 0.0f : v > 255.0f ? 255.0f : v; /* NaN -> 0 */
        out[i] = (uint8_t)rintf(v);
    }
}
