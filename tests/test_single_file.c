/* SPDX-License-Identifier: Apache-2.0 */
/* test_single_file.c — components given as one file, as ComfyUI keeps them: single files
 * are built here from the golden tiny models (keys under "model.diffusion_model." with the
 * Edit-2511 marker, the VAE under its original Wan names, ComfyUI's scaled-fp8 and plain
 * fp8_e4m3fn transformers, a text encoder under an all-in-one checkpoint's prefix) and must
 * give what the folders give: the same configs, the same transformer output bytes, the same
 * edited pixels through canvas_open; the fp8_scaled file the same bytes as the folder
 * quantised to fp8 on load; both fp8 files within the fp8 bound of the float output. Files
 * holding no such component, a component twice, and truncated GGUF files are refused with
 * messages that say what was found. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch_infer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "models/qwen_image_vae.h"
#include "models/qwen_textenc_internal.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"
#include "quant_bounds.h"
#include "tensor/quant.h"
#include "textenc_random_model.h"

enum { NAME = 256, MAX_TENSORS = 1024 };

static thread_pool *pool;
static char work[4096];

/* ---- writing single files ------------------------------------------------------------ */

typedef enum layout { AS_DIFFUSERS, VAE_ORIGINAL, FP8_SCALED, FP8_PLAIN } layout;

/* Inner names of a residual block, diffusers -> original (the reverse of spec A.11). */
static void block_inner(const char *rest, char *out, size_t size)
{
    static const char *const from[] = {"norm1.", "conv1.", "norm2.", "conv2.", "conv_shortcut."};
    static const char *const to[] = {"residual.0.", "residual.2.", "residual.3.", "residual.6.", "shortcut."};
    for (int i = 0; i < 5; i++)
        if (!strncmp(rest, from[i], strlen(from[i]))) {
            snprintf(out, size, "%s%s", to[i], rest + strlen(from[i]));
            return;
        }
    snprintf(out, size, "%s", rest);
}

/* A diffusers VAE key under its original Wan name; per = entries per decoder level. */
static void vae_original(const char *name, int per, char *out, size_t size)
{
    char side[16], inner[NAME / 2];
    int a, b, used = 0;
    if (!strncmp(name, "quant_conv.", 11)) {
        snprintf(out, size, "conv1.%s", name + 11);
    } else if (!strncmp(name, "post_quant_conv.", 16)) {
        snprintf(out, size, "conv2.%s", name + 16);
    } else if (sscanf(name, "%7[a-z].down_blocks.%d.%n", side, &a, &used) == 2 && used) {
        block_inner(name + used, inner, sizeof inner);
        snprintf(out, size, "encoder.downsamples.%d.%s", a, inner);
    } else if (sscanf(name, "decoder.up_blocks.%d.resnets.%d.%n", &a, &b, &used) == 2 && used) {
        block_inner(name + used, inner, sizeof inner);
        snprintf(out, size, "decoder.upsamples.%d.%s", a * per + b, inner);
    } else if (sscanf(name, "decoder.up_blocks.%d.upsamplers.0.%n", &a, &used) == 1 && used) {
        snprintf(out, size, "decoder.upsamples.%d.%s", a * per + per - 1, name + used);
    } else if (sscanf(name, "%7[a-z].mid_block.resnets.%d.%n", side, &a, &used) == 2 && used) {
        block_inner(name + used, inner, sizeof inner);
        snprintf(out, size, "%s.middle.%d.%s", side, a ? 2 : 0, inner);
    } else if (sscanf(name, "%7[a-z].mid_block.attentions.0.%n", side, &used) == 1 && used) {
        snprintf(out, size, "%s.middle.1.%s", side, name + used);
    } else if (sscanf(name, "%7[a-z].conv_in.%n", side, &used) == 1 && used) {
        snprintf(out, size, "%s.conv1.%s", side, name + used);
    } else if (sscanf(name, "%7[a-z].norm_out.%n", side, &used) == 1 && used) {
        snprintf(out, size, "%s.head.0.%s", side, name + used);
    } else if (sscanf(name, "%7[a-z].conv_out.%n", side, &used) == 1 && used) {
        snprintf(out, size, "%s.head.2.%s", side, name + used);
    } else {
        snprintf(out, size, "%s", name);
    }
}

static int is_block_matrix(const st_tensor *t)
{
    size_t n = strlen(t->name);
    return t->ndim == 2 && !strncmp(t->name, "transformer_blocks.", 19) && n > 7 && !strcmp(t->name + n - 7, ".weight");
}

/* The component folder `dir` as one file `path`: every key under `prefix`, renamed or
 * quantised as `how` says, plus the given marker tensors (empty F32). */
static void write_single(const char *dir, const char *path, const char *prefix, layout how, const char *marker)
{
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (!set) return;
    static char names[MAX_TENSORS][NAME];
    static st_write_tensor out[MAX_TENSORS];
    static float scales[MAX_TENSORS];
    void *blobs[MAX_TENSORS] = {0};
    int n = 0;
    for (int i = 0; i < set->n_tensors && n + 3 < MAX_TENSORS; i++) {
        const st_tensor *t = set->tensors[i];
        char renamed[NAME];
        if (how == VAE_ORIGINAL) vae_original(t->name, 3, renamed, sizeof renamed); /* num_res_blocks 1 */
        else snprintf(renamed, sizeof renamed, "%s", t->name);
        snprintf(names[n], NAME, "%s%s", prefix, renamed);
        out[n] = (st_write_tensor){names[n], t->type, t->ndim, {0}, t->data};
        memcpy(out[n].shape, t->shape, sizeof t->shape);
        if (how == FP8_SCALED && is_block_matrix(t)) { /* codes F8_E4M3 + one f32 scale, as ComfyUI stores them */
            quant_params q;
            CHECK_OK(quant_layout(QUANT_FP8_E4M3, 0, t->shape[0], t->shape[1], &q));
            CHECK_OK(mem_alloc(&blobs[n], q.bytes, MEM_SCRATCH));
            if (!blobs[n]) break;
            CHECK_OK(quant_quantize(&q, t->type, t->data, blobs[n], t->name));
            out[n].type = DTYPE_F8_E4M3;
            out[n].data = blobs[n];
            scales[n] = q.tensor_scale;
            snprintf(names[n + 1], NAME, "%s%.*s.scale_weight", prefix, (int)strlen(t->name) - 7, t->name);
            out[n + 1] = (st_write_tensor){names[n + 1], DTYPE_F32, 0, {0}, &scales[n]};
            n++;
        }
        if (how == FP8_PLAIN && is_block_matrix(t)) { /* ComfyUI's fp8_e4m3fn: the values cast, no scale */
            const size_t count = (size_t)(t->shape[0] * t->shape[1]);
            float *values = NULL;
            CHECK_OK(mem_alloc((void **)&values, count * sizeof *values, MEM_SCRATCH));
            CHECK_OK(mem_alloc(&blobs[n], count, MEM_SCRATCH));
            if (!values || !blobs[n]) break;
            dtype_to_f32(t->type, t->data, values, count);
            CHECK_OK(dtype_from_f32(DTYPE_F8_E4M3, values, blobs[n], count));
            mem_free(values);
            out[n].type = DTYPE_F8_E4M3;
            out[n].data = blobs[n];
        }
        n++;
    }
    static const float nothing[1];
    if (how == FP8_SCALED) {
        snprintf(names[n], NAME, "%sscaled_fp8", prefix);
        out[n] = (st_write_tensor){names[n], DTYPE_F8_E4M3, 1, {0}, nothing};
        n++;
    }
    if (marker) {
        snprintf(names[n], NAME, "%s%s", prefix, marker);
        out[n] = (st_write_tensor){names[n], DTYPE_F32, 1, {0}, nothing};
        n++;
    }
    CHECK_OK(st_write(path, out, n, NULL, 0));
    for (int i = 0; i < n; i++) mem_free(blobs[i]);
    weights_close(set);
}

static const char *golden(char *buf, size_t size, const char *relative)
{
    return test_path(buf, size, relative);
}

static const char *in_work(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", work, name);
    return buf;
}

/* ---- names --------------------------------------------------------------------------- */

static void test_vae_original_names(void)
{
    static const char *const pairs[][2] = {
        {"encoder.conv1.weight", "encoder.conv_in.weight"},
        {"conv1.bias", "quant_conv.bias"},
        {"conv2.weight", "post_quant_conv.weight"},
        {"decoder.head.0.gamma", "decoder.norm_out.gamma"},
        {"encoder.head.2.bias", "encoder.conv_out.bias"},
        {"decoder.middle.0.residual.0.gamma", "decoder.mid_block.resnets.0.norm1.gamma"},
        {"encoder.middle.2.residual.6.weight", "encoder.mid_block.resnets.1.conv2.weight"},
        {"decoder.middle.1.to_qkv.weight", "decoder.mid_block.attentions.0.to_qkv.weight"},
        {"encoder.downsamples.3.residual.3.gamma", "encoder.down_blocks.3.norm2.gamma"},
        {"encoder.downsamples.2.resample.1.weight", "encoder.down_blocks.2.resample.1.weight"},
        {"encoder.downsamples.5.time_conv.bias", "encoder.down_blocks.5.time_conv.bias"},
        {"decoder.upsamples.3.resample.1.weight", "decoder.up_blocks.0.upsamplers.0.resample.1.weight"},
        {"decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"},
        {"decoder.upsamples.11.time_conv.weight", "decoder.up_blocks.2.upsamplers.0.time_conv.weight"},
        {"decoder.upsamples.14.residual.2.bias", "decoder.up_blocks.3.resnets.2.conv1.bias"},
    };
    char out[NAME];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        CHECK(weights_vae_original_name(pairs[i][0], 4, out, sizeof out) == 1); /* the real VAE: 3 + 1 per level */
        CHECK_MSG(!strcmp(out, pairs[i][1]), "%s -> %s, want %s", pairs[i][0], out, pairs[i][1]);
    }
    CHECK(weights_vae_original_name("decoder.up_blocks.0.resnets.0.norm1.gamma", 4, out, sizeof out) == 0);
    CHECK(!strcmp(out, "decoder.up_blocks.0.resnets.0.norm1.gamma"));
    CHECK(weights_vae_original_name("decoder.upsamples.3.resample.1.weight", 4, out, 8) == -1);
}

/* ---- transformer --------------------------------------------------------------------- */

static int same_dit_config(const qwen_dit_config *a, const qwen_dit_config *b)
{
    return a->patch_size == b->patch_size && a->in_channels == b->in_channels && a->out_channels == b->out_channels &&
           a->num_layers == b->num_layers && a->attention_head_dim == b->attention_head_dim &&
           a->num_attention_heads == b->num_attention_heads && a->joint_attention_dim == b->joint_attention_dim &&
           !memcmp(a->axes_dims_rope, b->axes_dims_rope, sizeof a->axes_dims_rope) &&
           a->zero_cond_t == b->zero_cond_t && a->use_additional_t_cond == b->use_additional_t_cond;
}

/* The forward of a dit golden case with the transformer from `source` (folder or file). */
static float *forward(const qwen_dit_case *dc, const char *source, quant_choice format, int64_t *n_out)
{
    qwen_dit_model *model = NULL;
    float *output = NULL;
    CHECK_OK(qwen_dit_load_quantized(source, format, &model));
    if (!model) return NULL;
    *n_out = dc->inputs.n_img * qwen_dit_output_channels(&model->config);
    CHECK_OK(mem_alloc((void **)&output, (size_t)*n_out * sizeof(float), MEM_SCRATCH));
    if (output) CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, NULL, output));
    qwen_dit_free(model);
    return output;
}

static void test_transformer_file(void)
{
    char case_dir[4096], file[4200], plain[4200];
    qwen_dit_case *dc = NULL;
    CHECK_OK(qwen_dit_case_open(golden(case_dir, sizeof case_dir, "golden/cases/dit-edit-basic"), &dc));
    if (!dc) return;
    write_single(dc->model_dir, in_work(file, sizeof file, "qwen_image_edit_2511_bf16.safetensors"),
                 "model.diffusion_model.", AS_DIFFUSERS, "__index_timestep_zero__");
    write_single(dc->model_dir, in_work(plain, sizeof plain, "no_marker.safetensors"), "", AS_DIFFUSERS, NULL);

    /* the config from the tensors is the folder's, zero_cond_t from the marker */
    qwen_dit_model *folder = NULL, *single = NULL, *unmarked = NULL;
    CHECK_OK(qwen_dit_load(dc->model_dir, &folder));
    CHECK_OK(qwen_dit_load(file, &single));
    CHECK_OK(qwen_dit_load(plain, &unmarked));
    if (folder && single && unmarked) {
        CHECK(folder->config.zero_cond_t && same_dit_config(&folder->config, &single->config));
        CHECK(!unmarked->config.zero_cond_t);
        CHECK(single->files->n_tensors == folder->files->n_tensors); /* the marker is no weight */
        CHECK(single->files->index_timestep_zero && !unmarked->files->index_timestep_zero);
    }
    qwen_dit_free(folder);
    qwen_dit_free(single);
    qwen_dit_free(unmarked);

    /* the same output bytes */
    const quant_choice none = {QUANT_NONE, 0};
    int64_t n_a = 0, n_b = 0;
    float *a = forward(dc, dc->model_dir, none, &n_a), *b = forward(dc, file, none, &n_b);
    CHECK(a && b && n_a == n_b && n_a > 0 && !memcmp(a, b, (size_t)n_a * sizeof(float)));
    mem_free(b);

    /* ComfyUI scaled fp8: the same bytes as the folder quantised to fp8 on load, and within
     * the fp8 bound of the float output */
    char fp8[4200];
    write_single(dc->model_dir, in_work(fp8, sizeof fp8, "qwen_image_edit_2511_fp8_scaled.safetensors"),
                 "model.diffusion_model.", FP8_SCALED, "__index_timestep_zero__");
    quant_choice fp8_choice;
    CHECK_OK(quant_choice_parse("fp8", &fp8_choice));
    int64_t n_c = 0, n_d = 0;
    float *c = forward(dc, dc->model_dir, fp8_choice, &n_c), *d = forward(dc, fp8, none, &n_d);
    CHECK(c && d && n_c == n_d && n_c == n_a && !memcmp(c, d, (size_t)n_c * sizeof(float)));
    if (a && d && n_d == n_a) {
        double error = test_relative_error(d, a, (size_t)n_a);
        printf("  fp8_scaled file vs float folder: max|got-want|/max|want| = %.4f (bound %.2f)\n", error,
               quant_bounds[0].limit);
        CHECK(error > 0 && error <= quant_bounds[0].limit);
    }

    /* ComfyUI's fp8_e4m3fn (weights cast, no scales): read with scale 1 */
    char plain_fp8[4200];
    write_single(dc->model_dir, in_work(plain_fp8, sizeof plain_fp8, "qwen_image_edit_2511_fp8_e4m3fn.safetensors"),
                 "model.diffusion_model.", FP8_PLAIN, "__index_timestep_zero__");
    int64_t n_e = 0;
    float *e = forward(dc, plain_fp8, none, &n_e);
    if (a && e && n_e == n_a) {
        double error = test_relative_error(e, a, (size_t)n_a);
        printf("  fp8_e4m3fn file vs float folder: max|got-want|/max|want| = %.4f (bound %.2f)\n", error,
               quant_bounds[0].limit);
        CHECK(error > 0 && error <= quant_bounds[0].limit);
    }
    mem_free(e);
    mem_free(a);
    mem_free(c);
    mem_free(d);
    qwen_dit_case_free(dc);
}

/* ---- VAE and the whole pipeline -------------------------------------------------------- */

static void test_vae_file(void)
{
    char dir[4096], file[4200];
    golden(dir, sizeof dir, "golden/models/edit-tiny/vae");
    write_single(dir, in_work(file, sizeof file, "qwen_image_vae.safetensors"), "", VAE_ORIGINAL, NULL);
    vae_model *folder = NULL, *single = NULL;
    CHECK_OK(vae_load(dir, &folder));
    CHECK_OK(vae_load(file, &single));
    if (!folder || !single) goto done;
    const vae_config *a = &folder->config, *b = &single->config;
    CHECK(a->base_dim == b->base_dim && a->z_dim == b->z_dim && a->n_dim_mult == b->n_dim_mult &&
          !memcmp(a->dim_mult, b->dim_mult, sizeof a->dim_mult) && a->num_res_blocks == b->num_res_blocks &&
          !memcmp(a->temperal_downsample, b->temperal_downsample, sizeof a->temperal_downsample) &&
          !memcmp(a->latents_mean, b->latents_mean, sizeof a->latents_mean) &&
          !memcmp(a->latents_std, b->latents_std, sizeof a->latents_std));
    /* every tensor found under its diffusers name, the very same bytes */
    CHECK(folder->files->n_tensors == single->files->n_tensors);
    for (int i = 0; i < folder->files->n_tensors; i++) {
        const st_tensor *want = folder->files->tensors[i], *got = weights_find(single->files, want->name);
        CHECK_MSG(got && got->nbytes == want->nbytes && !memcmp(got->data, want->data, want->nbytes), "%s",
                  want->name);
    }
done:
    vae_free(folder);
    vae_free(single);
}

static int same_image(const canvas_image *a, const canvas_image *b)
{
    return a->pixels && b->pixels && a->width == b->width && a->height == b->height &&
           !memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * 3);
}

/* An edit through canvas_open: the folder; the files alone; the folder with its VAE replaced. */
static void test_edit_from_files(void)
{
    char case_dir[4096], model[4200], path[4400], dit[4200], vae[4200];
    golden(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    snprintf(model, sizeof model, "%s/../../models/edit-tiny", case_dir);
    canvas_prompt prompt = {0};
    canvas_image image = {0}, out[3] = {{0}};
    snprintf(path, sizeof path, "%s/inputs.safetensors", case_dir);
    CHECK_OK(canvas_prompt_load(path, &prompt));
    snprintf(path, sizeof path, "%s/image0.png", case_dir);
    CHECK_OK(canvas_image_load(path, &image));
    snprintf(path, sizeof path, "%s/transformer", model);
    write_single(path, in_work(dit, sizeof dit, "edit_transformer.safetensors"), "model.diffusion_model.",
                 AS_DIFFUSERS, "__index_timestep_zero__");
    snprintf(path, sizeof path, "%s/vae", model);
    write_single(path, in_work(vae, sizeof vae, "edit_vae.safetensors"), "", VAE_ORIGINAL, NULL);

    canvas_edit_params e;
    canvas_edit_params_default(&e);
    e.steps = 2;
    e.vae_area = 64 * 64;
    e.seed = 3;
    for (int run = 0; run < 3; run++) {
        canvas_options o;
        canvas_options_default(&o);
        if (run >= 1) o.vae_file = vae;
        if (run == 1) o.transformer_file = dit;
        canvas_model *m = NULL;
        CHECK_OK(canvas_open(run == 1 ? NULL : model, &o, &m));
        if (m) CHECK_OK(canvas_edit(m, &prompt, &image, 1, &e, NULL, NULL, &out[run]));
        canvas_close(m);
    }
    CHECK(same_image(&out[0], &out[1]));
    CHECK(same_image(&out[0], &out[2]));

    /* no folder and no transformer file: a usage error */
    canvas_options o;
    canvas_options_default(&o);
    o.vae_file = vae;
    canvas_model *m = NULL;
    CHECK_FAILS(canvas_open(NULL, &o, &m), CANVAS_ERR_USAGE, "transformer and VAE files");
    for (int i = 0; i < 3; i++) canvas_image_free(&out[i]);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);
}

/* ---- text encoder ------------------------------------------------------------------- */

/* A Qwen2.5-VL-shaped encoder (128-wide text heads, 80-wide vision heads) saved as a
 * folder, then as an all-in-one checkpoint's text encoder: the sizes read from the
 * tensors are the folder config's, every tensor found under its name with the same bytes.
 * (The full-attention blocks are the family's rule, every eighth, not this config's.) */
static void test_text_encoder_file(void)
{
    char dir[4200], file[4200];
    in_work(dir, sizeof dir, "text_encoder");
    CHECK(mkdir(dir, 0755) == 0);
    const textenc_random_shape shape = {TEXTENC_RANDOM_TEST_IDS, .hidden = 256, .intermediate = 96, .layers = 2,
                                        .heads = 2, .kv_heads = 1, .mrope = {16, 24, 24}, .max_window_layers = 2,
                                        .vision_depth = 9, .vision_hidden = 160, .vision_heads = 2,
                                        .vision_intermediate = 64, .window = 112};
    CHECK_OK(textenc_random_model_write(dir, &shape, 0.05f));
    write_single(dir, in_work(file, sizeof file, "all_in_one.safetensors"), "text_encoders.qwen25_7b.transformer.",
                 AS_DIFFUSERS, NULL);
    textenc_model *folder = NULL, *single = NULL;
    CHECK_OK(textenc_open(dir, &folder));
    CHECK_OK(textenc_open(file, &single));
    if (!folder || !single) goto done;
    const textenc_config *a = &folder->config, *b = &single->config;
    CHECK(a->text.hidden_size == b->text.hidden_size && a->text.num_attention_heads == b->text.num_attention_heads &&
          a->text.num_key_value_heads == b->text.num_key_value_heads && a->text.head_dim == b->text.head_dim &&
          a->text.intermediate_size == b->text.intermediate_size &&
          a->text.num_hidden_layers == b->text.num_hidden_layers && a->text.vocab_size == b->text.vocab_size &&
          !memcmp(a->text.mrope_section, b->text.mrope_section, sizeof a->text.mrope_section));
    CHECK(a->vision.depth == b->vision.depth && a->vision.hidden_size == b->vision.hidden_size &&
          a->vision.num_heads == b->vision.num_heads && a->vision.out_hidden_size == b->vision.out_hidden_size &&
          b->vision.n_fullatt_blocks == 1 && b->vision.fullatt_block_indexes[0] == 7);
    CHECK(folder->files->n_tensors == single->files->n_tensors);
    for (int i = 0; i < folder->files->n_tensors; i++) {
        const st_tensor *want = folder->files->tensors[i], *got = weights_find(single->files, want->name);
        CHECK_MSG(got && got->nbytes == want->nbytes && !memcmp(got->data, want->data, want->nbytes), "%s",
                  want->name);
    }
done:
    textenc_close(folder);
    textenc_close(single);
}

/* ---- files that are not a component ---------------------------------------------------- */

static void test_refused(void)
{
    char path[4200], vae_dir[4096], twice[4200];
    static const float values[4] = {1, 2, 3, 4};
    const st_write_tensor other[] = {{"lora_unet_down.alpha", DTYPE_F32, 1, {1}, values},
                                     {"lora_unet_down.lora_down.weight", DTYPE_F32, 2, {1, 2}, values},
                                     {"lora_unet_down.lora_up.weight", DTYPE_F32, 1, {1}, values}};
    CHECK_OK(st_write(in_work(path, sizeof path, "lora.safetensors"), other, 3, NULL, 0));
    weight_set *set = NULL;
    CHECK_FAILS(weights_open_file(path, WEIGHTS_TRANSFORMER, &set), CANVAS_ERR_INPUT,
                "not a Qwen-Image transformer file: 3 tensors ('lora_unet_down.alpha'");
    CHECK(set == NULL);
    qwen_dit_model *dit = NULL;
    CHECK_FAILS(qwen_dit_load(path, &dit), CANVAS_ERR_INPUT, "no 'img_in.weight' under any key prefix");

    /* a VAE given as the transformer: said so */
    golden(vae_dir, sizeof vae_dir, "golden/models/edit-tiny/vae/diffusion_pytorch_model.safetensors");
    CHECK_FAILS(weights_open_file(vae_dir, WEIGHTS_TRANSFORMER, &set), CANVAS_ERR_INPUT, "it looks like: vae");

    /* two transformers in one file */
    const st_write_tensor two[] = {{"a.img_in.weight", DTYPE_F32, 2, {2, 2}, values},
                                   {"b.img_in.weight", DTYPE_F32, 2, {2, 2}, values}};
    CHECK_OK(st_write(in_work(twice, sizeof twice, "two.safetensors"), two, 2, NULL, 0));
    CHECK_FAILS(weights_open_file(twice, WEIGHTS_TRANSFORMER, &set), CANVAS_ERR_INPUT, "holds two transformers");

    /* GGUF, by name and by magic: read by the strict GGUF reader (test_gguf_run.c runs them) */
    FILE *f = fopen(in_work(path, sizeof path, "model.gguf"), "wb");
    CHECK(f && fwrite("GGUF\3\0\0\0", 1, 8, f) == 8 && fclose(f) == 0);
    CHECK_FAILS(weights_open_file(path, WEIGHTS_TRANSFORMER, &set), CANVAS_ERR_INPUT, "shorter than the 24-byte GGUF header");
    f = fopen(in_work(path, sizeof path, "quantised.bin"), "wb");
    CHECK(f && fwrite("GGUF\3\0\0\0", 1, 8, f) == 8 && fclose(f) == 0);
    CHECK_FAILS(weights_open_file(path, WEIGHTS_VAE, &set), CANVAS_ERR_INPUT, "quantised.bin: file is 8 bytes");

    /* a folder is not a file */
    CHECK_FAILS(weights_open_file(work, WEIGHTS_VAE, &set), CANVAS_ERR_INPUT, "not a regular file");
}

static void remove_work(void)
{
    static const char *const files[] = {"qwen_image_edit_2511_bf16.safetensors", "no_marker.safetensors",
                                        "qwen_image_edit_2511_fp8_scaled.safetensors", "qwen_image_vae.safetensors",
                                        "qwen_image_edit_2511_fp8_e4m3fn.safetensors",
                                        "edit_transformer.safetensors", "edit_vae.safetensors",
                                        "all_in_one.safetensors", "text_encoder/config.json",
                                        "text_encoder/model.safetensors", "text_encoder", "lora.safetensors",
                                        "two.safetensors", "model.gguf", "quantised.bin"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove(in_work(path, sizeof path, files[i]));
    rmdir(work);
}

int main(void)
{
    snprintf(work, sizeof work, "/tmp/canvas_single_file_%ld", (long)getpid());
    if (mkdir(work, 0700) != 0) return 1;
    CHECK_OK(thread_pool_create(2, &pool));
    RUN(test_vae_original_names);
    RUN(test_transformer_file);
    RUN(test_vae_file);
    RUN(test_edit_from_files);
    RUN(test_text_encoder_file);
    RUN(test_refused);
    thread_pool_destroy(pool);
    remove_work();
    return check_summary();
}
