/* SPDX-License-Identifier: Apache-2.0 */
/* edit_case.c — running an edit_pipeline golden case (contract in edit_case.h). */
#include "pipeline/edit_case.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "pipeline/edit.h"

enum { MAX_IMAGES = 16 };

typedef struct edit_case {
    char model_dir[PATH_BUFFER_SIZE];
    int height, width, steps;
    double cfg;
    int64_t vae_area;
    st_file *inputs;
    canvas_image images[MAX_IMAGES];   /* pixels point into `inputs` */
    int n_images;
    float *prompt, *negative, *latents;
    int64_t prompt_len, negative_len, dim;
} edit_case;

static int int_key(json_t *root, const char *key, int64_t low, int64_t high, int64_t *out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v) || json_integer_value(v) < low || json_integer_value(v) > high) return 0;
    *out = json_integer_value(v);
    return 1;
}

static canvas_status read_case_json(const char *case_dir, edit_case *c)
{
    static const char *const ops[] = {"edit_pipeline", NULL};
    char path[PATH_BUFFER_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(case_dir, ops, NULL, path, sizeof path, &root, &op, c->model_dir, sizeof c->model_dir));
    canvas_status st = CANVAS_OK;
    json_t *cfg = json_object_get(root, "true_cfg_scale");
    int64_t height = 0, width = 0, steps = 0, area = 0;
    if (!int_key(root, "height", 1, 16384, &height) || !int_key(root, "width", 1, 16384, &width))
        st = status_fail(CANVAS_ERR_INPUT, "%s: keys 'height' and 'width' must be integers from 1 to 16384", path);
    else if (!int_key(root, "steps", 1, EDIT_MAX_STEPS, &steps))
        st = status_fail(CANVAS_ERR_INPUT, "%s: key 'steps' must be an integer from 1 to %d", path, EDIT_MAX_STEPS);
    else if (!json_is_number(cfg))
        st = status_fail(CANVAS_ERR_INPUT, "%s: key 'true_cfg_scale' (a number) is missing", path);
    else if (!int_key(root, "vae_image_area", 1, EDIT_MAX_VAE_AREA, &area))
        st = status_fail(CANVAS_ERR_INPUT, "%s: key 'vae_image_area' must be a positive integer", path);
    if (st == CANVAS_OK) {
        c->height = (int)height;
        c->width = (int)width;
        c->steps = (int)steps;
        c->cfg = json_number_value(cfg);
        c->vae_area = area;
    }
    json_decref(root);
    return st;
}

/* A float tensor [1, L, D] as f32; *out NULL when absent and optional. */
static canvas_status read_sequence(const edit_case *c, const char *name, int optional, float **out, int64_t *length,
                                   int64_t *dim)
{
    *out = NULL;
    const st_tensor *t = st_find(c->inputs, name);
    if (!t && optional) return CANVAS_OK;
    if (!t) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", c->inputs->path, name);
    if (t->ndim != 3 || t->shape[0] != 1 || t->shape[1] < 1 || t->shape[2] < 1 || !dtype_is_float(t->type))
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be a float [1, L, D] tensor", c->inputs->path, name);
    TRY(mem_alloc((void **)out, (size_t)st_numel(t) * sizeof(float), MEM_SCRATCH));
    dtype_to_f32(t->type, t->data, *out, (size_t)st_numel(t));
    *length = t->shape[1];
    *dim = t->shape[2];
    return CANVAS_OK;
}

static canvas_status read_inputs(const char *case_dir, edit_case *c)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, case_dir, "inputs.safetensors"));
    TRY(st_open(path, &c->inputs));
    for (int k = 0; k < MAX_IMAGES; k++) {
        char name[32];
        snprintf(name, sizeof name, "image.%d", k);
        const st_tensor *t = st_find(c->inputs, name);
        if (!t) break;
        if (t->type != DTYPE_U8 || t->ndim != 3 || t->shape[2] != 3 || t->shape[0] < 1 || t->shape[1] < 1)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be a U8 [H, W, 3] image", path, name);
        c->images[k] = (canvas_image){(int)t->shape[1], (int)t->shape[0], (uint8_t *)t->data};
        c->n_images = k + 1;
    }
    int64_t dim2 = 0, len, dim;
    TRY(read_sequence(c, "prompt_embeds", 0, &c->prompt, &c->prompt_len, &c->dim));
    TRY(read_sequence(c, "negative_prompt_embeds", 1, &c->negative, &c->negative_len, &dim2));
    if (c->negative && dim2 != c->dim)
        return status_fail(CANVAS_ERR_INPUT, "%s: negative_prompt_embeds is %lld wide, prompt_embeds %lld", path,
                           (long long)dim2, (long long)c->dim);
    TRY(read_sequence(c, "latents", 1, &c->latents, &len, &dim));
    if (c->latents) {
        const int64_t tokens = (int64_t)(c->height / 16) * (c->width / 16);
        if (len != tokens)
            return status_fail(CANVAS_ERR_INPUT, "%s: latents has %lld tokens, a %dx%d image has %lld", path,
                               (long long)len, c->width, c->height, (long long)tokens);
    }
    return CANVAS_OK;
}

static void edit_case_free(edit_case *c)
{
    mem_free(c->prompt);
    mem_free(c->negative);
    mem_free(c->latents);
    st_close(c->inputs);
}

typedef struct step_sink {
    golden_sink_fn sink;
    void *ctx;
} step_sink;

static canvas_status on_step(void *ctx, int step, int steps, const float *latents, int64_t tokens, int64_t channels)
{
    (void)steps;
    step_sink *s = ctx;
    char name[32];
    snprintf(name, sizeof name, "latents.step%d", step - 1);
    const int64_t shape[3] = {1, tokens, channels};
    return s->sink(s->ctx, name, latents, 3, shape);
}

canvas_status edit_case_run_on(const char *case_dir, thread_pool *pool, mem_device *device, int resident_blocks,
                               profiler *profiler, void (*plan)(void *ctx, const char *message), golden_sink_fn sink,
                               void *ctx)
{
    return edit_case_run_planned(case_dir, pool, device, resident_blocks, NULL, profiler, plan, sink, ctx);
}

canvas_status edit_case_shape_read(const char *case_dir, edit_case_shape *out)
{
    memset(out, 0, sizeof *out);
    edit_case *c;
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    canvas_status st = read_case_json(case_dir, c);
    if (st == CANVAS_OK) st = read_inputs(case_dir, c);
    if (st == CANVAS_OK) {
        snprintf(out->model_dir, sizeof out->model_dir, "%s", c->model_dir);
        out->width = c->width;
        out->height = c->height;
        out->steps = c->steps;
        out->cfg = c->cfg > 1.0 && c->negative != NULL;
        out->n_images = c->n_images;
        if (c->n_images > 0) {
            out->ref_width = c->images[c->n_images - 1].width;
            out->ref_height = c->images[c->n_images - 1].height;
        }
        out->n_txt = out->cfg && c->negative_len > c->prompt_len ? c->negative_len : c->prompt_len;
    }
    edit_case_free(c);
    mem_free(c);
    return st;
}

canvas_status edit_case_run_planned(const char *case_dir, thread_pool *pool, mem_device *device, int resident_blocks,
                                    const edit_case_plan *plan_options, profiler *profiler,
                                    void (*plan)(void *ctx, const char *message), golden_sink_fn sink, void *ctx)
{
    edit_case *c;
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    edit_pipeline *p = NULL;
    float *image = NULL;
    canvas_status st = read_case_json(case_dir, c);
    if (st == CANVAS_OK) st = read_inputs(case_dir, c);
    if (st == CANVAS_OK && profiler) st = profiler_begin(profiler, "load");
    step_sink steps = {sink, ctx};
    const edit_load_policy load = {.fallback_enabled = plan_options ? plan_options->fallback_enabled : 1,
                                   .oom_retry_attempts = plan_options && plan_options->oom_retry_attempts > 0
                                                             ? plan_options->oom_retry_attempts
                                                             : 3,
                                   .profiler = profiler,
                                   .say = plan,
                                   .say_ctx = &steps};
    if (st == CANVAS_OK) st = edit_pipeline_open_retrying(c->model_dir, &load, &p);
    if (st == CANVAS_OK) {
        p->pool = pool;
        p->device = device;
        p->resident_blocks = resident_blocks;
        p->profiler = profiler;
        if (plan_options) {
            p->strategy = plan_options->strategy;
            p->allow_quantize = plan_options->allow_quantize;
            p->headroom_bytes = plan_options->headroom_bytes;
            p->fallback_enabled = plan_options->fallback_enabled;
            p->fp8 = plan_options->fp8;
            if (plan_options->oom_retry_attempts > 0) p->oom_retry_attempts = plan_options->oom_retry_attempts;
            p->n_preferred = plan_options->n_preferred;
            memcpy(p->preferred, plan_options->preferred, sizeof p->preferred);
            p->dit_backend = plan_options->dit_backend;
        }
        edit_request r;
        memset(&r, 0, sizeof r);
        r.prompt = (edit_text){c->prompt, c->prompt_len, c->dim, NULL};
        r.negative = (edit_text){c->negative, c->negative_len, c->dim, NULL};
        r.images = c->images;
        r.n_images = c->n_images;
        r.width = c->width;
        r.height = c->height;
        r.vae_area = c->vae_area;
        r.keep_reference_sizes = 1; /* the case's images are at their VAE size */
        r.steps = c->steps;
        r.cfg = (float)c->cfg;
        r.initial_latents = c->latents;
        edit_observer observer = {.plan = plan, .step = on_step, .ctx = &steps};
        int width = 0, height = 0;
        st = edit_run(p, &r, &observer, &image, &width, &height);
        if (st == CANVAS_OK) {
            const int64_t shape[3] = {height, width, 3};
            st = sink(ctx, "image", image, 3, shape);
        }
    }
    if (st != CANVAS_OK) st = status_wrap(st, "%s: ", case_dir);
    if (p && plan_options && plan_options->record) *plan_options->record = p->planned;
    mem_free(image);
    edit_pipeline_close(p);
    edit_case_free(c);
    mem_free(c);
    return st;
}

canvas_status edit_case_run(const char *case_dir, thread_pool *pool, golden_sink_fn sink, void *ctx)
{
    return edit_case_run_on(case_dir, pool, NULL, -1, NULL, NULL, sink, ctx);
}
