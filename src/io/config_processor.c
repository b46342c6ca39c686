/* SPDX-License-Identifier: Apache-2.0 */
/* config_processor.c — the Qwen2-VL image processor's preprocessor_config.json
 * (contract in config.h). */
#include <string.h>

#include "base/status.h"
#include "io/config.h"
#include "io/config_fields.h"

#define VL_MAX_PATCH 1024
#define VL_MAX_PIXELS (1 << 28)

void vl_image_config_default(vl_image_config *out)
{
    /* Qwen2VLImageProcessor's constructor defaults (transformers) */
    *out = (vl_image_config){
        .patch_size = 14,
        .temporal_patch_size = 2,
        .merge_size = 2,
        .min_pixels = 56 * 56,
        .max_pixels = 28 * 28 * 1280,
        .resample = 3,
        .rescale_factor = 1.0 / 255.0,
        .image_mean = {0.48145466, 0.4578275, 0.40821073},
        .image_std = {0.26862954, 0.26130258, 0.27577711},
    };
}

/* A processing step this implementation always does may not be switched off. */
static canvas_status require_true(const cfg_source *src, const char *key)
{
    bool on = true;
    TRY(cfg_bool(src, key, &on));
    return on ? CANVAS_OK : cfg_bad_value(src, key, "only true is supported");
}

static canvas_status read_triple(const cfg_source *src, const char *key, double *values, int positive)
{
    int n = 3;
    TRY(cfg_double_array(src, key, values, 3, &n));
    if (n != 3) return cfg_bad_value(src, key, "must have 3 entries (R, G, B)");
    for (int i = 0; i < 3; i++)
        if (positive && !(values[i] > 0)) return cfg_bad_value(src, key, "entries must be > 0");
    return CANVAS_OK;
}

static canvas_status read_sizes(const cfg_source *src, vl_image_config *c)
{
    json_t *size;
    TRY(cfg_object(src, "size", &size));
    if (size) {
        cfg_source inner = {src->path, "size", size};
        TRY(cfg_int(&inner, "shortest_edge", &c->min_pixels));
        TRY(cfg_int(&inner, "longest_edge", &c->max_pixels));
    }
    TRY(cfg_int(src, "min_pixels", &c->min_pixels));
    TRY(cfg_int(src, "max_pixels", &c->max_pixels));
    TRY(cfg_check_count(src, "min_pixels", c->min_pixels, VL_MAX_PIXELS));
    TRY(cfg_check_count(src, "max_pixels", c->max_pixels, VL_MAX_PIXELS));
    if (c->max_pixels < c->min_pixels) return cfg_bad_value(src, "max_pixels", "must be >= min_pixels");
    return CANVAS_OK;
}

static canvas_status read_processor(const cfg_source *src, vl_image_config *c)
{
    char type[64] = "";
    TRY(cfg_string(src, "image_processor_type", type, sizeof type));
    if (type[0] && strcmp(type, "Qwen2VLImageProcessor") != 0 && strcmp(type, "Qwen2VLImageProcessorFast") != 0)
        return cfg_bad_value(src, "image_processor_type", "must be Qwen2VLImageProcessor");
    TRY(require_true(src, "do_resize"));
    TRY(require_true(src, "do_rescale"));
    TRY(require_true(src, "do_normalize"));
    TRY(require_true(src, "do_convert_rgb"));
    TRY(cfg_int(src, "patch_size", &c->patch_size));
    TRY(cfg_int(src, "temporal_patch_size", &c->temporal_patch_size));
    TRY(cfg_int(src, "merge_size", &c->merge_size));
    TRY(cfg_check_count(src, "patch_size", c->patch_size, VL_MAX_PATCH));
    TRY(cfg_check_count(src, "temporal_patch_size", c->temporal_patch_size, VL_MAX_PATCH));
    TRY(cfg_check_count(src, "merge_size", c->merge_size, VL_MAX_PATCH));
    TRY(read_sizes(src, c));
    TRY(cfg_int(src, "resample", &c->resample));
    if (c->resample < 1 || c->resample > 3)
        return cfg_bad_value(src, "resample", "must be 1 (LANCZOS), 2 (BILINEAR) or 3 (BICUBIC)");
    TRY(cfg_double(src, "rescale_factor", &c->rescale_factor));
    TRY(cfg_check_positive(src, "rescale_factor", c->rescale_factor));
    TRY(read_triple(src, "image_mean", c->image_mean, 0));
    TRY(read_triple(src, "image_std", c->image_std, 1));
    return CANVAS_OK;
}

canvas_status vl_image_config_load(const char *preprocessor_config_path, vl_image_config *out)
{
    vl_image_config_default(out);
    json_t *root;
    TRY(cfg_open(preprocessor_config_path, &root));
    cfg_source top = {preprocessor_config_path, "", root};
    canvas_status status = read_processor(&top, out);
    json_decref(root);
    return status;
}
