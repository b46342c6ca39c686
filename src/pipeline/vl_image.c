/* SPDX-License-Identifier: Apache-2.0 */
/* vl_image.c — condition images and Qwen2VLImageProcessor (contract in vl_image.h). */
#include "pipeline/vl_image.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "io/image.h"
#include "mem/mem.h"
#include "pipeline/edit.h"
#include "pipeline/pil_resize.h"

canvas_status vl_smart_resize(int height, int width, int factor, int min_pixels, int max_pixels, int *out_height,
                              int *out_width)
{
    if (factor < 1 || min_pixels < 1 || max_pixels < min_pixels)
        return status_fail(CANVAS_ERR_USAGE, "smart_resize: factor %d, min_pixels %d, max_pixels %d", factor,
                           min_pixels, max_pixels);
    if (height < factor || width < factor)
        return status_fail(CANVAS_ERR_INPUT, "image %dx%d: each side must be at least %d pixels for the vision encoder",
                           width, height, factor);
    const double hi = height > width ? height : width, lo = height > width ? width : height;
    if (hi / lo > 200)
        return status_fail(CANVAS_ERR_INPUT, "image %dx%d: aspect ratio %.1f is over 200, which the vision encoder refuses",
                           width, height, hi / lo);
    /* Python's round() is half to even: rint in the default rounding mode */
    double h = rint((double)height / factor) * factor, w = rint((double)width / factor) * factor;
    if (h * w > max_pixels) {
        const double beta = sqrt((double)height * width / max_pixels);
        h = fmax(factor, floor(height / beta / factor) * factor);
        w = fmax(factor, floor(width / beta / factor) * factor);
    } else if (h * w < min_pixels) {
        const double beta = sqrt(min_pixels / ((double)height * width));
        h = ceil(height * beta / factor) * factor;
        w = ceil(width * beta / factor) * factor;
    }
    if (h > IMAGE_MAX_SIDE || w > IMAGE_MAX_SIDE)
        return status_fail(CANVAS_ERR_INPUT, "image %dx%d: the vision encoder's size %.0fx%.0f is over %d a side", width,
                           height, w, h, IMAGE_MAX_SIDE);
    *out_height = (int)h;
    *out_width = (int)w;
    return CANVAS_OK;
}

/* PIL's resample codes as preprocessor_config.json stores them. */
static pil_filter filter_of(int resample)
{
    return resample == 1 ? PIL_LANCZOS : resample == 2 ? PIL_BILINEAR : PIL_BICUBIC;
}

canvas_status vl_image_resize(const uint8_t *rgb, int w, int h, const vl_image_config *cfg, canvas_image *out)
{
    memset(out, 0, sizeof *out);
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (int64_t)w * h > IMAGE_MAX_PIXELS)
        return status_fail(CANVAS_ERR_INPUT, "image %dx%d is outside 1..%d pixels a side and %d pixels", w, h,
                           IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    int rh, rw;
    TRY(vl_smart_resize(h, w, cfg->patch_size * cfg->merge_size, cfg->min_pixels, cfg->max_pixels, &rh, &rw));
    TRY(image_alloc(rw, rh, out));
    canvas_status st = pil_resize(rgb, w, h, 3, out->pixels, rw, rh, filter_of(cfg->resample));
    if (st != CANVAS_OK) image_free(out);
    return st;
}

canvas_status vl_image_patches(const uint8_t *rgb, int w, int h, const vl_image_config *cfg, float **pixel_values,
                               int64_t grid_thw[3])
{
    *pixel_values = NULL;
    const int P = cfg->patch_size, T = cfg->temporal_patch_size, M = cfg->merge_size;
    if (P < 1 || T < 1 || M < 1 || P > 1024 || M > 1024 || T > 1024)
        return status_fail(CANVAS_ERR_USAGE, "vision patches: patch %d, temporal %d, merge %d", P, T, M);
    const int factor = P * M;
    if (w < factor || h < factor || w % factor || h % factor || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return status_fail(CANVAS_ERR_USAGE, "vision patches: image %dx%d is not a multiple of %d a side (up to %d)", w,
                           h, factor, IMAGE_MAX_SIDE);
    const int gh = h / P, gw = w / P;
    const size_t cols = (size_t)3 * T * P * P, rows = (size_t)gh * gw;
    TRY(mem_alloc((void **)pixel_values, rows * cols * sizeof(float), MEM_ACTIVATIONS));
    /* every 8-bit value of a channel maps to one float: a table keeps numpy's rounding
     * steps (float64 product, float32 difference and quotient) in one place */
    float value[3][256];
    for (int c = 0; c < 3; c++) {
        const float mean = (float)cfg->image_mean[c], std = (float)cfg->image_std[c];
        for (int v = 0; v < 256; v++) {
            const float x = (float)(v * cfg->rescale_factor);
            const float centred = x - mean;
            value[c][v] = centred / std;
        }
    }
    float *dst = *pixel_values;
    for (int by = 0; by < gh / M; by++)
        for (int bx = 0; bx < gw / M; bx++)
            for (int iy = 0; iy < M; iy++)
                for (int ix = 0; ix < M; ix++) {
                    const uint8_t *patch = rgb + ((size_t)(by * M + iy) * P * w + (size_t)(bx * M + ix) * P) * 3;
                    for (int c = 0; c < 3; c++)
                        for (int t = 0; t < T; t++) /* the single frame, repeated */
                            for (int y = 0; y < P; y++)
                                for (int x = 0; x < P; x++) *dst++ = value[c][patch[((size_t)y * w + x) * 3 + c]];
                }
    grid_thw[0] = 1;
    grid_thw[1] = gh;
    grid_thw[2] = gw;
    return CANVAS_OK;
}

canvas_status vl_image_pixel_values(const uint8_t *rgb, int w, int h, const vl_image_config *cfg,
                                    float **pixel_values, int64_t grid_thw[3])
{
    *pixel_values = NULL;
    canvas_image resized;
    TRY(vl_image_resize(rgb, w, h, cfg, &resized));
    canvas_status st = vl_image_patches(resized.pixels, resized.width, resized.height, cfg, pixel_values, grid_thw);
    image_free(&resized);
    return st;
}

canvas_status vl_condition_image(const canvas_image *image, int64_t area, canvas_image *out)
{
    memset(out, 0, sizeof *out);
    if (image->width < 1 || image->height < 1 || image->width > IMAGE_MAX_SIDE || image->height > IMAGE_MAX_SIDE ||
        (int64_t)image->width * image->height > IMAGE_MAX_PIXELS)
        return status_fail(CANVAS_ERR_INPUT, "image %dx%d is outside 1..%d pixels a side and %d pixels", image->width,
                           image->height, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    if (area < 1 || area > (int64_t)IMAGE_MAX_PIXELS)
        return status_fail(CANVAS_ERR_USAGE, "condition image: area %lld is outside 1..%d", (long long)area,
                           IMAGE_MAX_PIXELS);
    int w, h;
    edit_dimensions(area, (double)image->width / image->height, &w, &h);
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE) /* a 1x5000 strip: its resize would be 32x27168 */
        return status_fail(CANVAS_ERR_INPUT,
                           "aspect ratio too extreme: resized to the condition area it would be %dx%d, more than %d "
                           "pixels a side",
                           w, h, IMAGE_MAX_SIDE);
    TRY(image_alloc(w, h, out));
    canvas_status st = pil_resize(image->pixels, image->width, image->height, 3, out->pixels, w, h, PIL_LANCZOS);
    if (st != CANVAS_OK) image_free(out);
    return st;
}

canvas_status vl_condition_pixel_values(const canvas_image *image, int64_t area, const vl_image_config *cfg,
                                        float **pixel_values, int64_t grid_thw[3], canvas_image *processed)
{
    *pixel_values = NULL;
    if (processed) memset(processed, 0, sizeof *processed);
    canvas_image condition, resized;
    TRY(vl_condition_image(image, area, &condition));
    canvas_status st = vl_image_resize(condition.pixels, condition.width, condition.height, cfg, &resized);
    image_free(&condition);
    if (st != CANVAS_OK) return st;
    st = vl_image_patches(resized.pixels, resized.width, resized.height, cfg, pixel_values, grid_thw);
    if (st == CANVAS_OK && processed)
        *processed = resized;
    else
        image_free(&resized);
    return st;
}
