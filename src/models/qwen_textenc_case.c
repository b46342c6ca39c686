/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_case.c — reading and running a textenc_forward golden case. */
#include "models/qwen_textenc_case.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_textenc.h"

enum { PATH_SIZE = PATH_BUFFER_SIZE };

static canvas_status read_case_json(const char *case_dir, textenc_case *c)
{
    static const char *const ops[] = {"textenc_forward", NULL};
    char path[PATH_SIZE], model_dir[PATH_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(case_dir, ops, "text_encoder", path, sizeof path, &root, &op, model_dir, sizeof model_dir));
    canvas_status st = mem_strdup(&c->model_dir, model_dir);
    json_decref(root);
    return st;
}

/* Tensor `name` of `file` with this dtype and rank (dims checked by the caller). */
static canvas_status find(const st_file *file, const char *path, const char *name, dtype type, int ndim,
                          const st_tensor **out)
{
    const st_tensor *t = st_find(file, name);
    if (!t) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", path, name);
    if (t->type != type || t->ndim != ndim)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be a %d-D %s tensor", path, name, ndim,
                           dtype_name(type));
    *out = t;
    return CANVAS_OK;
}

static canvas_status read_inputs(const st_file *file, const char *path, textenc_case *c)
{
    const st_tensor *ids;
    TRY(find(file, path, "input_ids", DTYPE_I64, 2, &ids));
    if (ids->shape[0] != 1 || ids->shape[1] < 1)
        return status_fail(CANVAS_ERR_INPUT, "%s: input_ids must be [1, L] with L >= 1", path);
    c->n_ids = ids->shape[1];
    TRY(mem_alloc((void **)&c->ids, (size_t)c->n_ids * sizeof(int32_t), MEM_SCRATCH));
    for (int64_t i = 0; i < c->n_ids; i++) {
        int64_t id;
        memcpy(&id, (const char *)ids->data + i * 8, 8);
        if (id < 0 || id > INT32_MAX) return status_fail(CANVAS_ERR_INPUT, "%s: input_ids[%lld] is out of range", path, (long long)i);
        c->ids[i] = (int32_t)id;
    }
    if (!st_find(file, "pixel_values")) return CANVAS_OK; /* text only */

    const st_tensor *pixels, *grid;
    TRY(find(file, path, "pixel_values", DTYPE_F32, 2, &pixels));
    TRY(find(file, path, "image_grid_thw", DTYPE_I64, 2, &grid));
    if (grid->shape[1] != 3 || grid->shape[0] < 1 || grid->shape[0] > 64)
        return status_fail(CANVAS_ERR_INPUT, "%s: image_grid_thw must be [n, 3] with 1 <= n <= 64", path);
    c->n_images = (int)grid->shape[0];
    TRY(mem_alloc((void **)&c->grid_thw, (size_t)c->n_images * sizeof *c->grid_thw, MEM_SCRATCH));
    memcpy(c->grid_thw, grid->data, (size_t)c->n_images * sizeof *c->grid_thw);
    c->patches = pixels->shape[0];
    c->patch_values = pixels->shape[1];
    TRY(mem_alloc((void **)&c->pixel_values, (size_t)st_numel(pixels) * sizeof(float), MEM_SCRATCH));
    memcpy(c->pixel_values, pixels->data, (size_t)st_numel(pixels) * sizeof(float));
    return CANVAS_OK;
}

canvas_status textenc_case_open(const char *case_dir, textenc_case **out)
{
    *out = NULL;
    textenc_case *c;
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    char path[PATH_SIZE];
    st_file *file = NULL;
    canvas_status st = read_case_json(case_dir, c);
    if (st == CANVAS_OK) st = path_join(path, sizeof path, case_dir, "inputs.safetensors");
    if (st == CANVAS_OK) st = st_open(path, &file);
    if (st == CANVAS_OK) st = read_inputs(file, path, c);
    st_close(file);
    if (st != CANVAS_OK) {
        textenc_case_free(c);
        return st;
    }
    *out = c;
    return CANVAS_OK;
}

void textenc_case_free(textenc_case *c)
{
    if (!c) return;
    mem_free(c->model_dir);
    mem_free(c->ids);
    mem_free(c->pixel_values);
    mem_free(c->grid_thw);
    mem_free(c);
}

/* The forward's tap, forwarding to the sink with the golden shapes ([1, L, D] for the
 * decoder's tensors, [rows, cols] for the vision tower's). */
typedef struct tap_to_sink {
    golden_sink_fn sink;
    void *ctx;
} tap_to_sink;

static canvas_status forward_tap(void *ctx, const char *name, const float *data, int64_t rows, int64_t cols)
{
    const tap_to_sink *t = ctx;
    if (cols == 1) return t->sink(t->ctx, name, data, 1, (int64_t[]){rows}); /* the window lists */
    if (!strncmp(name, "vision", 6)) return t->sink(t->ctx, name, data, 2, (int64_t[]){rows, cols});
    return t->sink(t->ctx, name, data, 3, (int64_t[]){1, rows, cols});
}

static canvas_status run_case(const textenc_case *c, textenc_model *model, op_backend *be, golden_sink_fn sink,
                              void *ctx)
{
    const textenc_config *config = textenc_model_config(model);
    if (c->n_images > 0 && c->patch_values != textenc_patch_values(config))
        return status_fail(CANVAS_ERR_INPUT, "pixel_values rows have %lld values, the model takes %lld",
                           (long long)c->patch_values, (long long)textenc_patch_values(config));
    int64_t patches = 0;
    for (int i = 0; i < c->n_images; i++) patches += c->grid_thw[i][0] * c->grid_thw[i][1] * c->grid_thw[i][2];
    if (patches != c->patches)
        return status_fail(CANVAS_ERR_INPUT, "pixel_values has %lld rows, image_grid_thw needs %lld",
                           (long long)c->patches, (long long)patches);
    const int64_t d = config->text.hidden_size, n = c->n_ids;
    float *hidden = NULL, *positions = NULL;
    int64_t *pos = NULL;
    canvas_status st = mem_alloc((void **)&hidden, (size_t)(n * d) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&pos, (size_t)(3 * n) * sizeof(int64_t), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&positions, (size_t)(3 * n) * sizeof(float), MEM_SCRATCH);
    tap_to_sink forward_sink = {sink, ctx};
    textenc_tap tap = {forward_tap, &forward_sink};
    if (st == CANVAS_OK)
        st = textenc_forward_tapped(model, be, c->ids, n, c->pixel_values, (const int64_t(*)[3])c->grid_thw,
                                    c->n_images, &tap, hidden);
    if (st == CANVAS_OK) st = sink(ctx, "hidden_states", hidden, 3, (int64_t[]){1, n, d});
    if (st == CANVAS_OK)
        st = textenc_position_ids(config, c->ids, n, (const int64_t(*)[3])c->grid_thw, c->n_images, pos);
    if (st == CANVAS_OK) {
        for (int64_t i = 0; i < 3 * n; i++) positions[i] = (float)pos[i];
        st = sink(ctx, "position_ids", positions, 3, (int64_t[]){3, 1, n});
    }
    mem_free(positions);
    mem_free(pos);
    mem_free(hidden);
    return st;
}

canvas_status textenc_case_run(const char *case_dir, op_backend *be, golden_sink_fn sink, void *ctx)
{
    return textenc_case_run_on(case_dir, be, NULL, sink, ctx);
}

canvas_status textenc_case_run_on(const char *case_dir, op_backend *be, mem_device *device, golden_sink_fn sink,
                                  void *ctx)
{
    textenc_case *c;
    TRY(textenc_case_open(case_dir, &c));
    textenc_model *model = NULL;
    canvas_status st = textenc_open(c->model_dir, &model);
    if (st == CANVAS_OK && device) st = textenc_place(model, device, TEXTENC_ALL_GROUPS);
    if (st == CANVAS_OK) st = run_case(c, model, be, sink, ctx);
    textenc_close(model);
    textenc_case_free(c);
    return st;
}
