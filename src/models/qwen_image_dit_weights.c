/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_weights.c — loading a QwenImageTransformer2DModel folder: the config,
 * the (possibly sharded) safetensors, the architecture check, and the wiring of the
 * dit_weights views (spec/qwen-image-transformer.md §2).
 *
 * Matrices are used where they lie in the mmapped files. The small vectors (biases and
 * norm weights, O(D) each) are converted once to f32 into one MEM_WEIGHTS block per
 * weight group, so that the hot loops never branch on a dtype for them. */
#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/config.h"
#include "io/quant_loader.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "mem/mem_residency.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_groups.h"

enum { NAME_SIZE = 256 };

/* A group's f32 vectors are carved from one block; the loader first counts, then fills. */
typedef struct vector_block {
    float *base;      /* NULL while counting */
    size_t used;      /* floats */
} vector_block;

typedef struct wiring {
    const dit_model *model;
    const char *prefix;   /* "" or "transformer_blocks.3." */
    vector_block vectors;
    const char *home;     /* the struct being wired (dit_weights or dit_block_weights) */
    dit_group *group;     /* filled on the second pass: the group's tensors and field offsets */
    quant_choice quantize; /* format for this group's matrices (blocks only), or QUANT_NONE */
} wiring;

/* load() has run arch_check before any wiring: every tensor named here is in the files
 * with the shape arch_dit gives it and a float (or stored quantised) type. */

static canvas_status wire_matrix(wiring *w, const char *suffix, int64_t rows, int64_t cols, weight_view *out)
{
    if (!w->vectors.base) return CANVAS_OK; /* counting pass: matrices take no vector space */
    /* second pass: the view (plain, stored quantised, or quantised now), its home joins the group */
    char name[NAME_SIZE];
    snprintf(name, NAME_SIZE, "%s%s", w->prefix, suffix);
    quant_weight q;
    TRY(quant_weight_from_view(w->model->quant, w->model->files, name, rows, cols, w->quantize, &q));
    *out = (weight_view){q.type, q.data, rows, cols, q.quant};
    dit_group *g = w->group;
    if (g->n_matrices == DIT_GROUP_MAX_MATRICES)
        return status_fail(CANVAS_ERR_INTERNAL, "%s: too many matrices in one weight group", name);
    g->matrix_field[g->n_matrices] = (uint16_t)((const char *)out - w->home);
    g->tensors[g->n_matrices] = (residency_tensor){q.data, q.bytes};
    g->matrix_suffix[g->n_matrices] = suffix;
    g->n_matrices++;
    return CANVAS_OK;
}

/* Vectors take a multiple of 16 floats each so every one starts 64-byte aligned. */
static size_t padded_floats(int64_t n) { return ((size_t)n + 15u) & ~(size_t)15u; }

static canvas_status wire_vector(wiring *w, const char *suffix, int64_t length, const float **out)
{
    if (w->vectors.base) {
        char name[NAME_SIZE];
        snprintf(name, NAME_SIZE, "%s%s", w->prefix, suffix);
        const st_tensor *t = weights_find(w->model->files, name);
        if (!t) return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in arch_dit", name);
        float *dst = w->vectors.base + w->vectors.used;
        dtype_to_f32(t->type, t->data, dst, (size_t)length);
        *out = dst;
        dit_group *g = w->group;
        if (g->n_vectors == DIT_GROUP_MAX_VECTORS)
            return status_fail(CANVAS_ERR_INTERNAL, "%s: too many vectors in one weight group", name);
        g->vector_field[g->n_vectors] = (uint16_t)((const char *)out - w->home);
        g->vector_at[g->n_vectors] = (uint32_t)w->vectors.used;
        g->n_vectors++;
    }
    w->vectors.used += padded_floats(length);
    return CANVAS_OK;
}

static canvas_status wire_top(wiring *w, dit_weights *wt)
{
    const dit_config *c = &w->model->config;
    const int64_t d = dit_inner_dim(c);
    TRY(wire_matrix(w, "img_in.weight", d, c->in_channels, &wt->img_in));
    TRY(wire_vector(w, "img_in.bias", d, &wt->img_in_bias));
    TRY(wire_vector(w, "txt_norm.weight", c->joint_attention_dim, &wt->txt_norm));
    TRY(wire_matrix(w, "txt_in.weight", d, c->joint_attention_dim, &wt->txt_in));
    TRY(wire_vector(w, "txt_in.bias", d, &wt->txt_in_bias));
    TRY(wire_matrix(w, "time_text_embed.timestep_embedder.linear_1.weight", d, DIT_TIME_CHANNELS, &wt->time_linear_1));
    TRY(wire_vector(w, "time_text_embed.timestep_embedder.linear_1.bias", d, &wt->time_linear_1_bias));
    TRY(wire_matrix(w, "time_text_embed.timestep_embedder.linear_2.weight", d, d, &wt->time_linear_2));
    TRY(wire_vector(w, "time_text_embed.timestep_embedder.linear_2.bias", d, &wt->time_linear_2_bias));
    TRY(wire_matrix(w, "norm_out.linear.weight", 2 * d, d, &wt->norm_out));
    TRY(wire_vector(w, "norm_out.linear.bias", 2 * d, &wt->norm_out_bias));
    TRY(wire_matrix(w, "proj_out.weight", dit_output_channels(c), d, &wt->proj_out));
    TRY(wire_vector(w, "proj_out.bias", dit_output_channels(c), &wt->proj_out_bias));
    return CANVAS_OK;
}

static canvas_status wire_block(wiring *w, dit_block_weights *b)
{
    const dit_config *c = &w->model->config;
    const int64_t d = dit_inner_dim(c), h = DIT_MLP_MULT * d, hd = c->attention_head_dim;
    TRY(wire_matrix(w, "img_mod.1.weight", 6 * d, d, &b->img_mod));
    TRY(wire_vector(w, "img_mod.1.bias", 6 * d, &b->img_mod_bias));
    TRY(wire_matrix(w, "txt_mod.1.weight", 6 * d, d, &b->txt_mod));
    TRY(wire_vector(w, "txt_mod.1.bias", 6 * d, &b->txt_mod_bias));

    TRY(wire_matrix(w, "attn.to_q.weight", d, d, &b->to_q));
    TRY(wire_vector(w, "attn.to_q.bias", d, &b->to_q_bias));
    TRY(wire_matrix(w, "attn.to_k.weight", d, d, &b->to_k));
    TRY(wire_vector(w, "attn.to_k.bias", d, &b->to_k_bias));
    TRY(wire_matrix(w, "attn.to_v.weight", d, d, &b->to_v));
    TRY(wire_vector(w, "attn.to_v.bias", d, &b->to_v_bias));
    TRY(wire_matrix(w, "attn.add_q_proj.weight", d, d, &b->add_q));
    TRY(wire_vector(w, "attn.add_q_proj.bias", d, &b->add_q_bias));
    TRY(wire_matrix(w, "attn.add_k_proj.weight", d, d, &b->add_k));
    TRY(wire_vector(w, "attn.add_k_proj.bias", d, &b->add_k_bias));
    TRY(wire_matrix(w, "attn.add_v_proj.weight", d, d, &b->add_v));
    TRY(wire_vector(w, "attn.add_v_proj.bias", d, &b->add_v_bias));
    TRY(wire_vector(w, "attn.norm_q.weight", hd, &b->norm_q));
    TRY(wire_vector(w, "attn.norm_k.weight", hd, &b->norm_k));
    TRY(wire_vector(w, "attn.norm_added_q.weight", hd, &b->norm_added_q));
    TRY(wire_vector(w, "attn.norm_added_k.weight", hd, &b->norm_added_k));
    TRY(wire_matrix(w, "attn.to_out.0.weight", d, d, &b->to_out));
    TRY(wire_vector(w, "attn.to_out.0.bias", d, &b->to_out_bias));
    TRY(wire_matrix(w, "attn.to_add_out.weight", d, d, &b->to_add_out));
    TRY(wire_vector(w, "attn.to_add_out.bias", d, &b->to_add_out_bias));

    TRY(wire_matrix(w, "img_mlp.net.0.proj.weight", h, d, &b->img_mlp_in));
    TRY(wire_vector(w, "img_mlp.net.0.proj.bias", h, &b->img_mlp_in_bias));
    TRY(wire_matrix(w, "img_mlp.net.2.weight", d, h, &b->img_mlp_out));
    TRY(wire_vector(w, "img_mlp.net.2.bias", d, &b->img_mlp_out_bias));
    TRY(wire_matrix(w, "txt_mlp.net.0.proj.weight", h, d, &b->txt_mlp_in));
    TRY(wire_vector(w, "txt_mlp.net.0.proj.bias", h, &b->txt_mlp_in_bias));
    TRY(wire_matrix(w, "txt_mlp.net.2.weight", d, h, &b->txt_mlp_out));
    TRY(wire_vector(w, "txt_mlp.net.2.bias", d, &b->txt_mlp_out_bias));
    return CANVAS_OK;
}

/* Wire one group twice: a counting pass sizes its vector block, the second fills it and
 * records the group for the residency manager (group 0: top level, 1 + i: block i). */
static canvas_status wire_group(dit_model *model, int block)
{
    char prefix[64] = "";
    if (block >= 0) snprintf(prefix, sizeof prefix, "transformer_blocks.%d.", block);
    dit_group *group = &model->memory->groups[block + 1];
    memset(group, 0, sizeof *group);
    if (block >= 0) snprintf(group->name, sizeof group->name, "transformer_blocks.%d", block);
    else snprintf(group->name, sizeof group->name, "top level");
    wiring w = {.model = model, .prefix = prefix, .group = group,
                .quantize = block >= 0 ? model->weights_format : (quant_choice){QUANT_NONE, 0},
                .home = block >= 0 ? (const char *)&model->weights.blocks[block] : (const char *)&model->weights};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            TRY(mem_alloc((void **)&w.vectors.base, w.vectors.used * sizeof(float), MEM_WEIGHTS));
            if (block >= 0) model->weights.blocks[block].small = w.vectors.base;
            else model->weights.small = w.vectors.base;
            group->tensors[DIT_GROUP_MAX_MATRICES].bytes = w.vectors.used * sizeof(float);
            w.vectors.used = 0;
        }
        TRY(block >= 0 ? wire_block(&w, &model->weights.blocks[block]) : wire_top(&w, &model->weights));
    }
    /* the vectors tensor comes right after the matrices */
    group->tensors[group->n_matrices] = (residency_tensor){w.vectors.base, group->tensors[DIT_GROUP_MAX_MATRICES].bytes};
    model->memory->table[block + 1] = (residency_group){group->name, group->tensors, group->n_matrices + 1};
    return CANVAS_OK;
}

/* Features of the config this forward does not implement. */
static canvas_status check_supported(const dit_config *c, const char *config_path)
{
    if (c->use_additional_t_cond || c->use_layer3d_rope)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "%s: use_additional_t_cond / use_layer3d_rope (Qwen-Image-Layered) "
                           "are not supported", config_path);
    int rope_dims = c->axes_dims_rope[0] + c->axes_dims_rope[1] + c->axes_dims_rope[2];
    if (rope_dims != c->attention_head_dim)
        return status_fail(CANVAS_ERR_INPUT, "%s: axes_dims_rope sum to %d but attention_head_dim is %d", config_path,
                           rope_dims, c->attention_head_dim);
    for (int a = 0; a < 3; a++)
        if (c->axes_dims_rope[a] <= 0 || c->axes_dims_rope[a] % 2)
            return status_fail(CANVAS_ERR_INPUT, "%s: axes_dims_rope[%d] = %d must be even and positive", config_path, a,
                               c->axes_dims_rope[a]);
    if (c->num_layers < 0 || c->patch_size <= 0 || c->in_channels <= 0 || c->out_channels <= 0 ||
        c->num_attention_heads <= 0 || c->joint_attention_dim <= 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: impossible transformer dimensions", config_path);
    return CANVAS_OK;
}

static canvas_status load(dit_model *model, const char *component_dir)
{
    char config_path[PATH_BUFFER_SIZE];
    if (weights_is_file(component_dir)) { /* one file: the config from its tensors */
        TRY(weights_open_file(component_dir, WEIGHTS_TRANSFORMER, &model->files));
        TRY(dit_config_infer(model->files, &model->config));
        snprintf(config_path, sizeof config_path, "%s", component_dir);
    } else {
        TRY(path_join(config_path, sizeof config_path, component_dir, "config.json"));
        TRY(dit_config_load(config_path, &model->config));
    }
    TRY(check_supported(&model->config, config_path));
    TRY(mem_strdup(&model->component_dir, component_dir));
    TRY(quant_store_create(&model->quant));
    if (!model->files) TRY(weights_open(component_dir, &model->files));

    tensor_spec_list expected = {0};
    canvas_status st = arch_dit(&model->config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, model->files, "transformer");
    arch_free(&expected);
    TRY(st);

    const size_t layers = (size_t)model->config.num_layers;
    if (layers > 0) TRY(mem_calloc((void **)&model->weights.blocks, layers, sizeof(dit_block_weights), MEM_SCRATCH));
    TRY(dit_memory_create(model));
    TRY(wire_group(model, -1));
    for (int i = 0; i < model->config.num_layers; i++) TRY(wire_group(model, i));
    /* Until placed elsewhere the weights are read where they lie (the cpu device). */
    return dit_place(model, mem_device_cpu(), DIT_ALL_BLOCKS);
}

canvas_status dit_header_load(const char *file, dit_config *config, weight_set **files)
{
    TRY(weights_open_file_header(file, WEIGHTS_TRANSFORMER, files));
    canvas_status st = dit_config_infer(*files, config);
    if (st == CANVAS_OK) st = check_supported(config, file);
    tensor_spec_list expected = {0};
    if (st == CANVAS_OK) st = arch_dit(config, &expected);
    if (st == CANVAS_OK) st = arch_check(&expected, *files, "transformer");
    arch_free(&expected);
    if (st != CANVAS_OK) {
        weights_close(*files);
        *files = NULL;
        return status_wrap(st, "reading the transformer's header: ");
    }
    return CANVAS_OK;
}

canvas_status dit_load(const char *component_dir, dit_model **out)
{
    return dit_load_quantized(component_dir, (quant_choice){QUANT_NONE, 0}, out);
}

canvas_status dit_load_quantized(const char *component_dir, quant_choice weights, dit_model **out)
{
    *out = NULL;
    dit_model *model;
    TRY(mem_calloc((void **)&model, 1, sizeof *model, MEM_SCRATCH));
    model->weights_format = weights;
    canvas_status st = load(model, component_dir);
    if (st != CANVAS_OK) {
        dit_free(model);
        return status_wrap(st, "loading transformer: ");
    }
    *out = model;
    return CANVAS_OK;
}

void dit_free(dit_model *model)
{
    if (!model) return;
    if (model->memory) dit_matrices_free_owned(model);
    dit_memory_destroy(model);
    if (model->weights.blocks) {
        for (int i = 0; i < model->config.num_layers; i++) mem_free(model->weights.blocks[i].small);
        mem_free(model->weights.blocks);
    }
    mem_free(model->weights.small);
    quant_store_free(model->quant);
    if (model->files) weights_close(model->files);
    mem_free(model->component_dir);
    mem_free(model);
}

int64_t dit_output_channels(const dit_config *config)
{
    return (int64_t)config->patch_size * config->patch_size * config->out_channels;
}
