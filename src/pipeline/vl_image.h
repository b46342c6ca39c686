/* SPDX-License-Identifier: Apache-2.0 */
/* vl_image.h — images into the Qwen2.5-VL vision tower: the pipelines' condition-image
 * resize and transformers' Qwen2VLImageProcessor (slow, PIL path), spec B.6 and B.9.
 *
 *   condition  PIL LANCZOS to calculate_dimensions(area, w/h) (edit_dimensions): area
 *              384·384 for Edit-Plus (2509/2511), 1024·1024 for the first Edit
 *   processor  smart_resize(h, w) to multiples of factor = patch_size · merge_size, then
 *              PIL resize with cfg->resample (BICUBIC) to that size: 8-bit RGB
 *   values     x = float32(u8 · rescale_factor) (the product in double, as numpy's float64
 *              rescale), then (x - mean) / std in float32 per channel
 *   patches    the frame repeated temporal_patch_size times; rows in merge-window order
 *              (t, block row, block col, iy, ix) with patch (2·by + iy, 2·bx + ix) for
 *              merge 2; columns (c, t, y, x):  col = c·T·P² + t·P² + y·P + x
 *              pixel_values [grid_t·grid_h·grid_w, 3·T·P·P], grid_thw = (1, H/P, W/P)
 * All sizes are checked before anything is allocated; the RGB inputs are canvas_image /
 * interleaved 8-bit RGB as io/image.c decodes them (alpha dropped, grey replicated: what
 * PIL's convert("RGB") gives). */
#ifndef CANVAS_PIPELINE_VL_IMAGE_H
#define CANVAS_PIPELINE_VL_IMAGE_H

#include <stdint.h>

#include "canvas.h"
#include "io/config.h"

/* The condition-image areas of the pipelines (calculate_dimensions' target_area). */
#define VL_CONDITION_AREA_EDIT_PLUS ((int64_t)384 * 384)
#define VL_CONDITION_AREA_EDIT ((int64_t)1024 * 1024)

/* transformers' smart_resize: h' = round(h / factor)·factor (Python's round, half to even),
 * likewise w'; when h'·w' > max_pixels, beta = sqrt(h·w / max_pixels) and h' =
 * max(factor, floor(h / beta / factor)·factor); when h'·w' < min_pixels, beta =
 * sqrt(min_pixels / (h·w)) and h' = ceil(h · beta / factor)·factor. CANVAS_ERR_INPUT when
 * a side is below factor or the aspect ratio exceeds 200 (transformers raises), or the
 * result is over IMAGE_MAX_SIDE a side; CANVAS_ERR_USAGE for factor < 1 or min_pixels >
 * max_pixels. */
canvas_status vl_smart_resize(int height, int width, int factor, int min_pixels, int max_pixels, int *out_height,
                              int *out_width);

/* The processor's resize: `rgb` (w x h) to its smart_resize size in a new image (image_free). */
canvas_status vl_image_resize(const uint8_t *rgb, int w, int h, const vl_image_config *cfg, canvas_image *out);

/* Values and patch order of an image already at a multiple of patch_size · merge_size a
 * side (no resize). *pixel_values is a new MEM_ACTIVATIONS block (mem_free). */
canvas_status vl_image_patches(const uint8_t *rgb, int w, int h, const vl_image_config *cfg, float **pixel_values,
                               int64_t grid_thw[3]);

/* The whole processor: vl_image_resize then vl_image_patches. */
canvas_status vl_image_pixel_values(const uint8_t *rgb, int w, int h, const vl_image_config *cfg,
                                    float **pixel_values, int64_t grid_thw[3]);

/* The pipeline's condition image: PIL LANCZOS to calculate_dimensions(area, w/h) (new image). */
canvas_status vl_condition_image(const canvas_image *image, int64_t area, canvas_image *out);

/* A pipeline's whole chain for one input image: vl_condition_image, then the processor.
 * `processed`, when not NULL, receives the 8-bit image the patches were cut from (what
 * the goldens call processed_image; image_free it); on failure nothing is returned. */
canvas_status vl_condition_pixel_values(const canvas_image *image, int64_t area, const vl_image_config *cfg,
                                        float **pixel_values, int64_t grid_thw[3], canvas_image *processed);

#endif
