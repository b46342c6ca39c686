/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae_case.c — running a vae_encode / vae_decode golden case. */
#include "models/qwen_image_vae_case.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_vae.h"

typedef struct vae_case {
    int encode;
    int height, width;          /* pixels */
    char model_dir[PATH_BUFFER_SIZE];  /* <golden root>/<model>/vae */
} vae_case;

static int positive_int(json_t *value, int *out)
{
    if (!json_is_integer(value) || json_integer_value(value) < 1 || json_integer_value(value) > (1 << 20)) return 0;
    *out = (int)json_integer_value(value);
    return 1;
}

static canvas_status read_case_json(const char *case_dir, vae_case *c)
{
    static const char *const ops[] = {"vae_encode", "vae_decode", NULL};
    char path[PATH_BUFFER_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(case_dir, ops, "vae", path, sizeof path, &root, &op, c->model_dir, sizeof c->model_dir));
    canvas_status st = CANVAS_OK;
    if (!positive_int(json_object_get(root, "height"), &c->height) ||
        !positive_int(json_object_get(root, "width"), &c->width))
        st = status_fail(CANVAS_ERR_INPUT, "%s: keys 'height' and 'width' must be positive integers", path);
    else
        c->encode = !strcmp(op, "vae_encode");
    json_decref(root);
    return st;
}

/* The input tensor, [1, channels, 1, height, width] of a float type, as f32. */
static canvas_status read_input(const char *case_dir, const char *name, int channels, int height, int width,
                                float **out)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, case_dir, "inputs.safetensors"));
    st_file *file;
    TRY(st_open(path, &file));
    canvas_status st = CANVAS_OK;
    const st_tensor *t = st_find(file, name);
    const int64_t want[5] = {1, channels, 1, height, width};
    int ok = t && t->ndim == 5 && dtype_is_float(t->type);
    for (int i = 0; ok && i < 5; i++) ok = t->shape[i] == want[i];
    if (!t) st = status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", path, name);
    else if (!ok)
        st = status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be a float [1, %d, 1, %d, %d] tensor", path, name,
                         channels, height, width);
    if (st == CANVAS_OK) st = mem_alloc((void **)out, (size_t)st_numel(t) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) dtype_to_f32(t->type, t->data, *out, (size_t)st_numel(t));
    st_close(file);
    return st;
}

static canvas_status run_case(const vae_case *c, vae_model *model, const char *case_dir, op_backend *be,
                              golden_sink_fn sink, void *ctx)
{
    const vae_config *cfg = &model->config;
    const int scale = vae_scale_factor(cfg);
    if (c->height % scale || c->width % scale)
        return status_fail(CANVAS_ERR_INPUT, "%s: height and width must be multiples of %d", case_dir, scale);
    const int lh = c->height / scale, lw = c->width / scale;
    const int in_channels = c->encode ? cfg->input_channels : cfg->z_dim;
    const int out_channels = c->encode ? cfg->z_dim : cfg->input_channels;
    float *input = NULL, *output = NULL;
    canvas_status st = c->encode ? read_input(case_dir, "image", in_channels, c->height, c->width, &input)
                                 : read_input(case_dir, "latent", in_channels, lh, lw, &input);
    size_t out_pixels = c->encode ? (size_t)lh * lw : (size_t)c->height * c->width;
    if (st == CANVAS_OK) st = mem_alloc((void **)&output, out_pixels * out_channels * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK)
        st = c->encode ? vae_encode(model, be, input, c->height, c->width, output)
                       : vae_decode(model, be, input, lh, lw, output);
    if (st == CANVAS_OK) {
        int64_t shape[5] = {1, out_channels, 1, c->encode ? lh : c->height, c->encode ? lw : c->width};
        st = sink(ctx, c->encode ? "latent" : "image", output, 5, shape);
    }
    mem_free(output);
    mem_free(input);
    return st;
}

canvas_status vae_case_run(const char *case_dir, op_backend *be, golden_sink_fn sink, void *ctx)
{
    vae_case c;
    TRY(read_case_json(case_dir, &c));
    vae_model *model;
    TRY(vae_load(c.model_dir, &model));
    canvas_status st = run_case(&c, model, case_dir, be, sink, ctx);
    vae_free(model);
    return st;
}
