/* SPDX-License-Identifier: Apache-2.0 */
/* dit_random_model.h — write a QwenImageTransformer2DModel folder with random weights
 * (config.json + one safetensors file, exactly the tensors arch_dit expects), for tests
 * and benches that need another depth or width than the golden tiny models. Header-only
 * (static functions); used by tests/test_dit_memory.c, tests/test_plan_width.c,
 * bench/bench_dit.c and bench/bench_dit_streaming.c. */
#ifndef CANVAS_TESTS_DIT_RANDOM_MODEL_H
#define CANVAS_TESTS_DIT_RANDOM_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_dit.h"
#include "tensor/dtype.h"

typedef struct dit_random_shape {
    int layers, heads, head_dim, joint_dim, in_channels, out_channels; /* patch 2, zero_cond_t */
    dtype matrix_type;          /* F32, F16 or BF16; vectors are F32 */
    uint32_t seed;
} dit_random_shape;

typedef struct dit_random_writer {
    st_write_tensor *tensors;
    int count, capacity;
    uint32_t rng;
    dtype matrix_type;
    canvas_status status;
} dit_random_writer;

static float dit_random_uniform(dit_random_writer *w)
{
    w->rng = w->rng * 1664525u + 1013904223u;
    return (float)(w->rng >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* One tensor: rows x cols (cols 0: a vector of `rows`), values scale * U(-1, 1) + offset. */
static void dit_random_add(dit_random_writer *w, const char *prefix, const char *name, int64_t rows, int64_t cols,
                           float scale, float offset)
{
    if (w->status != CANVAS_OK) return;
    if (w->count == w->capacity) {
        int capacity = w->capacity ? 2 * w->capacity : 64;
        w->status = mem_realloc((void **)&w->tensors, (size_t)capacity * sizeof *w->tensors, MEM_SCRATCH);
        if (w->status != CANVAS_OK) return;
        w->capacity = capacity;
    }
    st_write_tensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const size_t n = (size_t)(rows * (cols ? cols : 1));
    const dtype type = cols ? w->matrix_type : DTYPE_F32;
    float *values = NULL;
    void *data = NULL;
    char *copy = NULL;
    w->status = mem_alloc((void **)&values, n * sizeof(float), MEM_SCRATCH);
    if (w->status == CANVAS_OK) w->status = mem_alloc(&data, n * dtype_size(type) + 1, MEM_SCRATCH);
    if (w->status == CANVAS_OK) w->status = mem_strdup(&copy, full);
    if (w->status == CANVAS_OK) {
        for (size_t i = 0; i < n; i++) values[i] = scale * dit_random_uniform(w) + offset;
        w->status = dtype_from_f32(type, values, data, n);
    }
    mem_free(values);
    if (w->status != CANVAS_OK) {
        mem_free(data);
        mem_free(copy);
        return;
    }
    t->name = copy;
    t->type = type;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = data;
    w->count++;
}

/* A Linear: weight [out, in] scaled 1/sqrt(in), bias [out]. */
static void dit_random_linear(dit_random_writer *w, const char *prefix, const char *name, int64_t out, int64_t in)
{
    char full[200];
    snprintf(full, sizeof full, "%s.weight", name);
    dit_random_add(w, prefix, full, out, in, 1.0f / sqrtf((float)in), 0.0f);
    snprintf(full, sizeof full, "%s.bias", name);
    dit_random_add(w, prefix, full, out, 0, 0.05f, 0.0f);
}

/* Write DIR/config.json and DIR/diffusion_pytorch_model.safetensors (DIR must exist). */
static canvas_status dit_random_model_write(const char *dir, const dit_random_shape *s)
{
    const int64_t d = (int64_t)s->heads * s->head_dim, h = 4 * d, p = 4 * (int64_t)s->out_channels;
    const int hd = s->head_dim, a1 = (hd * 7 / 16) & ~1, a0 = hd - 2 * a1;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return status_fail(CANVAS_ERR_IO, "%s: cannot write", path);
    fprintf(f,
            "{\"_class_name\": \"QwenImageTransformer2DModel\", \"patch_size\": 2, \"in_channels\": %d,\n"
            " \"out_channels\": %d, \"num_layers\": %d, \"attention_head_dim\": %d, \"num_attention_heads\": %d,\n"
            " \"joint_attention_dim\": %d, \"guidance_embeds\": false, \"axes_dims_rope\": [%d, %d, %d],\n"
            " \"zero_cond_t\": true}\n",
            s->in_channels, s->out_channels, s->layers, hd, s->heads, s->joint_dim, a0, a1, a1);
    if (fclose(f) != 0) return status_fail(CANVAS_ERR_IO, "%s: cannot write", path);

    dit_random_writer w = {.rng = s->seed ? s->seed : 1u, .matrix_type = s->matrix_type};
    dit_random_linear(&w, "", "img_in", d, s->in_channels);
    dit_random_add(&w, "", "txt_norm.weight", s->joint_dim, 0, 0.1f, 1.0f);
    dit_random_linear(&w, "", "txt_in", d, s->joint_dim);
    dit_random_linear(&w, "", "time_text_embed.timestep_embedder.linear_1", d, 256);
    dit_random_linear(&w, "", "time_text_embed.timestep_embedder.linear_2", d, d);
    dit_random_linear(&w, "", "norm_out.linear", 2 * d, d);
    dit_random_linear(&w, "", "proj_out", p, d);
    for (int b = 0; b < s->layers; b++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "transformer_blocks.%d.", b);
        dit_random_linear(&w, prefix, "img_mod.1", 6 * d, d);
        dit_random_linear(&w, prefix, "txt_mod.1", 6 * d, d);
        const char *square[] = {"attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj",
                                "attn.add_v_proj", "attn.to_out.0", "attn.to_add_out"};
        for (int i = 0; i < 8; i++) dit_random_linear(&w, prefix, square[i], d, d);
        const char *norms[] = {"attn.norm_q.weight", "attn.norm_k.weight", "attn.norm_added_q.weight",
                               "attn.norm_added_k.weight"};
        for (int i = 0; i < 4; i++) dit_random_add(&w, prefix, norms[i], hd, 0, 0.1f, 1.0f);
        dit_random_linear(&w, prefix, "img_mlp.net.0.proj", h, d);
        dit_random_linear(&w, prefix, "img_mlp.net.2", d, h);
        dit_random_linear(&w, prefix, "txt_mlp.net.0.proj", h, d);
        dit_random_linear(&w, prefix, "txt_mlp.net.2", d, h);
    }
    canvas_status st = w.status;
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    if (st == CANVAS_OK) st = st_write(path, w.tensors, w.count, NULL, 0);
    for (int i = 0; i < w.count; i++) {
        mem_free((void *)w.tensors[i].name);
        mem_free((void *)w.tensors[i].data);
    }
    mem_free(w.tensors);
    return st;
}

/* Remove what dit_random_model_write wrote, and DIR itself (when empty). */
static inline void dit_random_model_remove(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

/* The inputs the streaming tests give a random model with in_channels 64 and joint_dim 32:
 * two images of 4x6 and 6x4 patches (48 tokens), seven text tokens of which the last two are
 * padding, timestep 0.7, values from seed 5. `in` points into `b`. */
typedef struct dit_random_two_images {
    float hidden[48 * 64], text[7 * 32];
    uint8_t mask[7];
    qwen_dit_image_shape shapes[2];
} dit_random_two_images;

static inline void dit_random_two_images_make(dit_random_two_images *b, qwen_dit_inputs *in)
{
    dit_random_writer rng = {.rng = 5u};
    for (size_t i = 0; i < sizeof b->hidden / sizeof b->hidden[0]; i++) b->hidden[i] = dit_random_uniform(&rng);
    for (size_t i = 0; i < sizeof b->text / sizeof b->text[0]; i++) b->text[i] = dit_random_uniform(&rng);
    for (int i = 0; i < 7; i++) b->mask[i] = i < 5;
    b->shapes[0] = (qwen_dit_image_shape){1, 4, 6};
    b->shapes[1] = (qwen_dit_image_shape){1, 6, 4};
    *in = (qwen_dit_inputs){.hidden_states = b->hidden, .n_img = 48, .hidden_channels = 64,
                            .encoder_hidden_states = b->text, .n_txt = 7, .text_dim = 32, .text_mask = b->mask,
                            .timestep = 0.7f, .img_shapes = b->shapes, .n_images = 2};
}

#endif
