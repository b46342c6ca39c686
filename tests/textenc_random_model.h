/* SPDX-License-Identifier: Apache-2.0 */
/* textenc_random_model.h — write a Qwen2.5-VL text_encoder/ folder with random BF16
 * weights: a config.json written from a textenc_random_shape, and model.safetensors holding exactly the tensors
 * arch_text_encoder lists for that config (checkpoint names, lm_head left out). Same output
 * on every run (seeded normals). Header-only (static functions); used by
 * tools/make_demo_model.c (the demo model's tiny encoder), bench/bench_textenc.c (one
 * layer and two vision blocks at the real width) and tests/test_textenc_quant.c. */
#ifndef CANVAS_TESTS_TEXTENC_RANDOM_MODEL_H
#define CANVAS_TESTS_TEXTENC_RANDOM_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "pipeline/rng.h"
#include "tensor/dtype.h"

static int textenc_random_ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* Norm weights near 1 (1 + 0.05 N), vectors 0.02 N, the embedding table N, matrices
 * matrix_scale N, or N / sqrt(in_features) when matrix_scale is 0 (activations that keep
 * their size through a wide layer). */
static canvas_status textenc_random_tensor(const tensor_spec *t, uint64_t seed, float matrix_scale, uint16_t **out)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    float *f;
    TRY(mem_alloc((void **)&f, (size_t)n * sizeof *f, MEM_SCRATCH));
    canvas_status st = mem_alloc((void **)out, (size_t)n * sizeof **out, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        mem_free(f);
        return st;
    }
    rng_normal(seed, 0, f, n);
    int is_norm = strstr(t->name, "norm") && textenc_random_ends_with(t->name, ".weight");
    is_norm = is_norm || textenc_random_ends_with(t->name, "ln_q.weight");
    float scale = matrix_scale > 0 ? matrix_scale : 1.0f / sqrtf((float)(n / t->shape[0]));
    if (t->ndim == 1) scale = 0.02f;
    if (strstr(t->name, "embed_tokens")) scale = 1.0f;
    for (int64_t i = 0; i < n; i++) (*out)[i] = f32_to_bf16(is_norm ? 1.0f + 0.05f * f[i] : scale * f[i]);
    mem_free(f);
    return CANVAS_OK;
}

/* weights_path: every tensor arch_text_encoder lists for the config at config_path. */
static canvas_status textenc_random_weights_write(const char *config_path, const char *weights_path,
                                                  float matrix_scale)
{
    textenc_config config;
    TRY(textenc_config_load(config_path, &config));
    tensor_spec_list specs = {0};
    canvas_status st = arch_text_encoder(&config, TEXTENC_NAMES_CHECKPOINT, &specs);
    st_write_tensor *tensors = NULL;
    uint16_t **data = NULL;
    int n = 0;
    if (st == CANVAS_OK) st = mem_calloc((void **)&tensors, (size_t)specs.count, sizeof *tensors, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_calloc((void **)&data, (size_t)specs.count, sizeof *data, MEM_SCRATCH);
    for (int i = 0; st == CANVAS_OK && i < specs.count; i++) {
        const tensor_spec *t = &specs.items[i];
        if (t->flags & ARCH_UNUSED) continue;
        st = textenc_random_tensor(t, 1000 + (uint64_t)i, matrix_scale, &data[n]);
        if (st != CANVAS_OK) break;
        tensors[n] = (st_write_tensor){.name = t->name, .type = DTYPE_BF16, .ndim = t->ndim, .data = data[n]};
        memcpy(tensors[n].shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
        n++;
    }
    if (st == CANVAS_OK) st = st_write(weights_path, tensors, n, NULL, 0);
    for (int i = 0; data && i < n; i++) mem_free(data[i]);
    mem_free(data);
    mem_free(tensors);
    arch_free(&specs);
    return st;
}

/* The shape of a random encoder: its widths and counts and the special token ids (test
 * models use ids above a small vocabulary; the demo model uses Qwen2.5's). The rest of the
 * config is Qwen2.5-VL's: tied embeddings, SiLU, 14-pixel patches over 2 frames, 2x2
 * merge, the last vision block of the two... (fullatt_block_indexes [1]). */
typedef struct textenc_random_shape {
    int vocab, hidden, intermediate, layers, heads, kv_heads, mrope[3], max_window_layers;
    int vision_depth, vision_hidden, vision_heads, vision_intermediate, window;
    int bos, eos, image, video, vision_start, vision_end, vision; /* token ids */
} textenc_random_shape;

/* Test and bench shapes put the special ids at 1000.. above a 1024-row vocabulary. */
#define TEXTENC_RANDOM_TEST_IDS .vocab = 1024, .bos = 1000, .eos = 1001, .image = 1005, .video = 1006, \
                                .vision_start = 1002, .vision_end = 1003, .vision = 1004

/* DIR/config.json (written from shape) and DIR/model.safetensors; DIR must exist. */
static canvas_status textenc_random_model_write(const char *dir, const textenc_random_shape *t, float matrix_scale)
{
    char config_path[4096], weights_path[4096];
    if (snprintf(config_path, sizeof config_path, "%s/config.json", dir) >= (int)sizeof config_path ||
        snprintf(weights_path, sizeof weights_path, "%s/model.safetensors", dir) >= (int)sizeof weights_path)
        return status_fail(CANVAS_ERR_INPUT, "%s: path too long", dir);
    FILE *f = fopen(config_path, "w");
    int written = f && fprintf(f,
        "{\n"
        "  \"architectures\": [\"Qwen2_5_VLForConditionalGeneration\"], \"model_type\": \"qwen2_5_vl\",\n"
        "  \"bos_token_id\": %d, \"eos_token_id\": %d, \"image_token_id\": %d, \"video_token_id\": %d,\n"
        "  \"vision_start_token_id\": %d, \"vision_end_token_id\": %d, \"vision_token_id\": %d,\n"
        "  \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\",\n"
        "  \"text_config\": {\n"
        "    \"model_type\": \"qwen2_5_vl_text\", \"vocab_size\": %d, \"hidden_size\": %d,\n"
        "    \"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d,\n"
        "    \"num_key_value_heads\": %d, \"hidden_act\": \"silu\", \"max_position_embeddings\": 128000,\n"
        "    \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0,\n"
        "    \"rope_scaling\": {\"mrope_section\": [%d, %d, %d], \"rope_type\": \"default\", \"type\": \"default\"},\n"
        "    \"use_sliding_window\": false, \"sliding_window\": 32768, \"max_window_layers\": %d\n"
        "  },\n"
        "  \"vision_config\": {\n"
        "    \"depth\": %d, \"hidden_size\": %d, \"num_heads\": %d, \"intermediate_size\": %d,\n"
        "    \"hidden_act\": \"silu\", \"in_channels\": 3, \"patch_size\": 14, \"temporal_patch_size\": 2,\n"
        "    \"spatial_merge_size\": 2, \"window_size\": %d, \"out_hidden_size\": %d, \"tokens_per_second\": 2,\n"
        "    \"fullatt_block_indexes\": [1]\n"
        "  }\n"
        "}\n",
        t->bos, t->eos, t->image, t->video, t->vision_start, t->vision_end, t->vision, t->vocab, t->hidden,
        t->intermediate, t->layers, t->heads, t->kv_heads, t->mrope[0], t->mrope[1], t->mrope[2],
        t->max_window_layers, t->vision_depth, t->vision_hidden, t->vision_heads, t->vision_intermediate, t->window,
        t->hidden) > 0;
    if ((f && fclose(f) != 0) || !written) return status_fail(CANVAS_ERR_IO, "%s: cannot write", config_path);
    return textenc_random_weights_write(config_path, weights_path, matrix_scale);
}

/* Remove what textenc_random_model_write wrote, and DIR itself (when empty). */
static inline void textenc_random_model_remove(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

#endif
