/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_case.c — reading a `qwen_dit_forward` golden case into qwen_dit_inputs. */
#include "models/qwen_image_dit_case.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/golden_case.h"
#include "io/safetensors.h"
#include "mem/mem.h"

enum { MAX_IMAGES = 64 };

/* dir/name as a new string (path_join, then a copy). */
static canvas_status joined_copy(char **out, const char *dir, const char *name)
{
    char buf[PATH_BUFFER_SIZE];
    TRY(path_join(buf, sizeof buf, dir, name));
    return mem_strdup(out, buf);
}

/* case.json "loras": a list of {"file", "scale" (default 1), "naming" (default "auto")}. */
static canvas_status read_loras(qwen_dit_case *c, json_t *loras, const char *json_path)
{
    if (!loras) return CANVAS_OK;
    if (!json_is_array(loras) || json_array_size(loras) > 64)
        return status_fail(CANVAS_ERR_INPUT, "%s: key 'loras' must be a list of at most 64 {file, scale, naming}",
                           json_path);
    size_t n = json_array_size(loras);
    if (n == 0) return CANVAS_OK;
    TRY(mem_calloc((void **)&c->loras, n, sizeof *c->loras, MEM_SCRATCH));
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(loras, i);
        const char *file = json_string_value(json_object_get(l, "file"));
        json_t *scale = json_object_get(l, "scale");
        const char *naming = json_string_value(json_object_get(l, "naming"));
        if (!json_is_object(l) || !file || (scale && !json_is_number(scale)) ||
            (json_object_get(l, "naming") && (!naming || strlen(naming) >= sizeof c->loras[i].naming)))
            return status_fail(CANVAS_ERR_INPUT, "%s: loras[%zu] must be {\"file\": string, \"scale\": number, "
                               "\"naming\": string}", json_path, i);
        /* a file name in the case folder, as the goldens keep them: "../" or "/" could make a
         * downloaded case read (and report on) any file */
        if (!file[0] || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, ".."))
            return status_fail(CANVAS_ERR_INPUT, "%s: loras[%zu].file '%s' must be a file name in the case folder "
                               "(no '/' or '..')", json_path, i, file);
        TRY(joined_copy(&c->loras[i].path, c->case_dir, file));
        c->n_loras = (int)i + 1;
        c->loras[i].scale = scale ? (float)json_number_value(scale) : 1.0f;
        snprintf(c->loras[i].naming, sizeof c->loras[i].naming, "%s", naming ? naming : "auto");
    }
    return CANVAS_OK;
}

/* case.json's "timestep": a finite number, the one inputs.safetensors holds (read_inputs
 * compares them); a case without it, or with another type, is not a case this reads. */
static canvas_status read_timestep(json_t *root, const char *json_path, double *out)
{
    json_t *t = json_object_get(root, "timestep");
    if (!t)
        return status_fail(CANVAS_ERR_INPUT, "%s: key 'timestep' is missing (the transformer's timestep, a number "
                           "already divided by 1000)", json_path);
    if (!json_is_number(t) || !isfinite(json_number_value(t)))
        return status_fail(CANVAS_ERR_INPUT, "%s: key 'timestep' must be a number (the transformer's timestep, "
                           "already divided by 1000), not %s", json_path,
                           json_is_string(t)   ? "a string"
                           : json_is_array(t)  ? "a list"
                           : json_is_object(t) ? "an object"
                           : json_is_null(t)   ? "null"
                           : json_is_boolean(t) ? "true or false"
                                                : "a number out of range");
    *out = json_number_value(t);
    return CANVAS_OK;
}

/* case.json: op, model, img_shapes, loras, timestep (into *timestep). */
static canvas_status read_case_json(qwen_dit_case *c, double *timestep)
{
    static const char *const ops[] = {"dit_forward", NULL};
    char json_path[PATH_BUFFER_SIZE], model_dir[PATH_BUFFER_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(c->case_dir, ops, "transformer", json_path, sizeof json_path, &root, &op, model_dir,
                         sizeof model_dir));
    canvas_status st = mem_strdup(&c->model_dir, model_dir);
    json_t *shapes = json_object_get(root, "img_shapes");
    json_t *loras = json_object_get(root, "loras");
    if (st == CANVAS_OK &&
        (!json_is_array(shapes) || json_array_size(shapes) < 1 || json_array_size(shapes) > MAX_IMAGES))
        st = status_fail(CANVAS_ERR_INPUT, "%s: key 'img_shapes' must be a list of 1 to %d [frames, h, w]", json_path,
                         MAX_IMAGES);
    size_t n_images = st == CANVAS_OK ? json_array_size(shapes) : 0;
    if (st == CANVAS_OK) st = mem_calloc((void **)&c->img_shapes, n_images, sizeof *c->img_shapes, MEM_SCRATCH);
    for (size_t i = 0; st == CANVAS_OK && i < n_images; i++) {
        json_t *s = json_array_get(shapes, i);
        int dims[3];
        int ok = json_is_array(s) && json_array_size(s) == 3;
        for (int k = 0; ok && k < 3; k++) {
            json_t *v = json_array_get(s, (size_t)k);
            ok = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 1 << 20;
            if (ok) dims[k] = (int)json_integer_value(v);
        }
        if (!ok) {
            st = status_fail(CANVAS_ERR_INPUT, "%s: img_shapes[%zu] must be [frames, h, w] of positive integers",
                             json_path, i);
            break;
        }
        c->img_shapes[i] = (qwen_dit_image_shape){dims[0], dims[1], dims[2]};
    }
    c->inputs.img_shapes = c->img_shapes;
    c->inputs.n_images = (int)n_images;
    if (st == CANVAS_OK) st = read_loras(c, loras, json_path);
    if (st == CANVAS_OK) st = read_timestep(root, json_path, timestep);
    json_decref(root);
    return st;
}

/* A [1, rows, cols] (or [rows, cols]) float tensor as an f32 copy. */
static canvas_status read_matrix(const st_file *f, const char *name, float **out, int64_t *rows, int64_t *cols)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", f->path, name);
    int batched = t->ndim == 3;
    if ((t->ndim != 2 && t->ndim != 3) || !dtype_is_float(t->type))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be a float [1, rows, cols] tensor", f->path, name);
    if (batched && t->shape[0] != 1)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: tensor '%s' has batch %lld; only batch 1 is supported", f->path,
                           name, (long long)t->shape[0]);
    *rows = t->shape[batched];
    *cols = t->shape[batched + 1];
    TRY(mem_alloc((void **)out, (size_t)st_numel(t) * sizeof(float) + 1, MEM_SCRATCH));
    dtype_to_f32(t->type, t->data, *out, (size_t)st_numel(t));
    return CANVAS_OK;
}

static canvas_status read_inputs(qwen_dit_case *c, const st_file *f)
{
    qwen_dit_inputs *in = &c->inputs;
    TRY(read_matrix(f, "hidden_states", &c->hidden_states, &in->n_img, &in->hidden_channels));
    TRY(read_matrix(f, "encoder_hidden_states", &c->encoder_hidden_states, &in->n_txt, &in->text_dim));
    in->hidden_states = c->hidden_states;
    in->encoder_hidden_states = c->encoder_hidden_states;

    const st_tensor *t = st_find(f, "timestep");
    if (!t) return status_fail(CANVAS_ERR_INPUT, "%s: tensor 'timestep' is missing", f->path);
    if (st_numel(t) != 1 || !dtype_is_float(t->type))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor 'timestep' must hold one float", f->path);
    dtype_to_f32(t->type, t->data, &in->timestep, 1);

    const st_tensor *mask = st_find(f, "encoder_hidden_states_mask");
    if (!mask) return CANVAS_OK;
    if ((int64_t)st_numel(mask) != in->n_txt || mask->ndim < 1 || mask->ndim > 2 || (mask->ndim == 2 && mask->shape[0] != 1))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor 'encoder_hidden_states_mask' must be [1, %lld]", f->path,
                           (long long)in->n_txt);
    float *values;
    TRY(mem_alloc((void **)&values, (size_t)in->n_txt * sizeof(float), MEM_SCRATCH));
    canvas_status st = mem_alloc((void **)&c->text_mask, (size_t)in->n_txt, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        dtype_to_f32(mask->type, mask->data, values, (size_t)in->n_txt);
        for (int64_t j = 0; st == CANVAS_OK && j < in->n_txt; j++) {
            if (values[j] != 0.0f && values[j] != 1.0f) /* a mask is 0 or 1, not a weight to round */
                st = status_fail(CANVAS_ERR_INPUT, "%s: tensor 'encoder_hidden_states_mask' holds %g at token %lld; "
                                 "a mask holds only 0 and 1", f->path, (double)values[j], (long long)j);
            c->text_mask[j] = values[j] != 0.0f;
        }
        in->text_mask = c->text_mask;
    }
    mem_free(values);
    return st;
}

/* The fewest digits that read back as `v` (as a float when `as_float`): a message about two
 * values that differ must not print them alike (%g said "is 0.6, but ... holds 0.6"). */
static const char *shortest(double v, int as_float, char *buf, size_t size)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (as_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) break;
    }
    return buf;
}

static canvas_status open_case(qwen_dit_case *c, const char *case_dir)
{
    TRY(mem_strdup(&c->case_dir, case_dir));
    double timestep = 0;
    TRY(read_case_json(c, &timestep));

    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, case_dir, "inputs.safetensors"));
    st_file *inputs;
    TRY(st_open(path, &inputs));
    canvas_status st = read_inputs(c, inputs);
    st_close(inputs);
    /* two timesteps that disagree: which one the reference ran is unknown */
    /* compared in float, the tensor's type; beyond float's range the cast is undefined */
    if (st == CANVAS_OK && (!(fabs(timestep) <= FLT_MAX) || (float)timestep != c->inputs.timestep)) {
        char given[32], held[32];
        st = status_fail(CANVAS_ERR_INPUT, "%s/case.json: key 'timestep' is %s, but %s's tensor 'timestep' holds %s",
                         case_dir, shortest(timestep, 0, given, sizeof given), path,
                         shortest(c->inputs.timestep, 1, held, sizeof held));
    }
    return st;
}

canvas_status qwen_dit_case_open(const char *case_dir, qwen_dit_case **out)
{
    *out = NULL;
    qwen_dit_case *c;
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    canvas_status st = open_case(c, case_dir);
    if (st != CANVAS_OK) {
        qwen_dit_case_free(c);
        return st;
    }
    *out = c;
    return CANVAS_OK;
}

void qwen_dit_case_free(qwen_dit_case *c)
{
    if (!c) return;
    mem_free(c->case_dir);
    mem_free(c->model_dir);
    mem_free(c->img_shapes);
    mem_free(c->hidden_states);
    mem_free(c->encoder_hidden_states);
    mem_free(c->text_mask);
    for (int i = 0; i < c->n_loras; i++) mem_free(c->loras[i].path);
    mem_free(c->loras);
    mem_free(c);
}
