/* SPDX-License-Identifier: Apache-2.0 */
/* test_arch.c — architectures from configs: the real model's exact sizes, every golden
 * model folder checked against its files, and broken folders rejected by name. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "models/arch.h"

#define REAL "real-configs/qwen-image-edit-2511/"

static void test_real_transformer(void)
{
    char path[512];
    qwen_dit_config c;
    tensor_spec_list list = {0};
    CHECK_OK(qwen_dit_config_load(test_path(path, sizeof path, REAL "transformer/config.json"), &c));
    CHECK_OK(arch_dit(&c, &list));
    arch_count all = arch_count_group(&list, ARCH_ANY_GROUP, 0);
    CHECK_MSG(all.params == 20430401088ull, "%llu", (unsigned long long)all.params);
    CHECK(all.tensors == 1933);
    CHECK(arch_group_count(&list) == 60);
    for (int b = 0; b < 60; b++) {
        arch_count block = arch_count_group(&list, b, 0);
        CHECK(block.params == 339831296ull && block.tensors == 32);
    }
    arch_count top = arch_count_group(&list, -1, 0);
    CHECK(top.params == 40523328ull && top.tensors == 13);
    CHECK(arch_bytes_as(&list, ARCH_ANY_GROUP, QUANT_NONE) == 2 * 20430401088ull);
    /* Every DiT Linear has in % 64 == 0, so only the 1-D tensors stay bf16. */
    uint64_t vectors = 0, matrices = 0;
    for (int i = 0; i < list.count; i++) {
        if (list.items[i].ndim == 1) vectors += arch_numel(&list.items[i]);
        else matrices++;
    }
    uint64_t matrix_params = all.params - vectors;
    CHECK(matrices == 6 + 60 * 14);
    CHECK(arch_bytes_as(&list, ARCH_ANY_GROUP, QUANT_NF4) == matrix_params / 64 * 36 + 2 * vectors);
    CHECK(arch_bytes_as(&list, ARCH_ANY_GROUP, QUANT_Q8_0) == matrix_params / 32 * 34 + 2 * vectors);
    CHECK(arch_bytes_as(&list, ARCH_ANY_GROUP, QUANT_FP8_E4M3) == matrix_params + 4 * matrices + 2 * vectors);
    CHECK(arch_bytes_as(&list, 0, QUANT_NONE) == 2 * 339831296ull);
    /* names and shapes from spec §2 */
    CHECK(!strcmp(list.items[0].name, "img_in.weight") && list.items[0].shape[0] == 3072 && list.items[0].shape[1] == 64);
    int found = 0;
    for (int i = 0; i < list.count; i++) {
        const tensor_spec *s = &list.items[i];
        if (!strcmp(s->name, "transformer_blocks.59.img_mod.1.weight"))
            found += s->group == 59 && s->shape[0] == 18432 && s->shape[1] == 3072;
        if (!strcmp(s->name, "transformer_blocks.7.attn.norm_added_k.weight")) found += s->ndim == 1 && s->shape[0] == 128;
        if (!strcmp(s->name, "proj_out.weight")) found += s->group == -1 && s->shape[0] == 64;
        if (!strcmp(s->name, "txt_norm.weight")) found += s->shape[0] == 3584;
    }
    CHECK(found == 4);
    arch_free(&list);

    c.use_layer3d_rope = true;
    CHECK_FAILS(arch_dit(&c, &list), CANVAS_ERR_UNSUPPORTED, "Qwen-Image-Layered");
    arch_free(&list);
}

static void test_real_vae(void)
{
    char path[512];
    vae_config c;
    tensor_spec_list list = {0};
    CHECK_OK(vae_config_load(test_path(path, sizeof path, REAL "vae/config.json"), &c));
    CHECK_OK(arch_vae(&c, &list));
    arch_count all = arch_count_group(&list, ARCH_ANY_GROUP, 0);
    CHECK_MSG(all.params == 126892531ull, "%llu", (unsigned long long)all.params);
    CHECK_MSG(all.tensors == 194, "%d", all.tensors);
    /* spec A.8: encoder 53,595,872 (+ quant_conv 1,056), decoder 73,295,331 (+ post_quant_conv 272) */
    CHECK(arch_count_prefix(&list, "encoder.").params == 53595872ull);
    CHECK(arch_count_prefix(&list, "decoder.").params == 73295331ull);
    CHECK(arch_count_group(&list, 0, 0).params == 53595872ull + 1056);
    CHECK(arch_count_group(&list, 1, 0).params == 73295331ull + 272);
    CHECK(all.params - arch_count_group(&list, ARCH_ANY_GROUP, ARCH_UNUSED).params == 2324544ull); /* time_conv */
    arch_free(&list);

    c.n_attn_scales = 1;
    CHECK_FAILS(arch_vae(&c, &list), CANVAS_ERR_UNSUPPORTED, "attn_scales");
    arch_free(&list);
}

/* The tiny VAE of the diffusers pipeline tests (spec D.1): 118 tensors, 4,054,447 params. */
static void test_diffusers_test_vae(void)
{
    vae_config c;
    vae_config_default(&c);
    c.base_dim = 24;
    c.z_dim = 4;
    c.n_dim_mult = 3;
    c.dim_mult[0] = 1, c.dim_mult[1] = 2, c.dim_mult[2] = 4;
    c.num_res_blocks = 1;
    c.n_temperal_downsample = 2;
    c.temperal_downsample[0] = false, c.temperal_downsample[1] = true;
    tensor_spec_list list = {0};
    CHECK_OK(arch_vae(&c, &list));
    arch_count all = arch_count_group(&list, ARCH_ANY_GROUP, 0);
    CHECK_MSG(all.params == 4054447ull && all.tensors == 118, "%llu in %d", (unsigned long long)all.params, all.tensors);
    CHECK(arch_count_prefix(&list, "encoder.").params == 1593368ull);
    CHECK(arch_count_prefix(&list, "decoder.").params == 2460987ull);
    arch_free(&list);
}

static void test_real_text_encoder(void)
{
    char path[512];
    textenc_config c;
    tensor_spec_list list = {0};
    CHECK_OK(textenc_config_load(test_path(path, sizeof path, REAL "text_encoder/config.json"), &c));
    CHECK_OK(arch_text_encoder(&c, TEXTENC_NAMES_CHECKPOINT, &list));
    /* spec B.2 */
    arch_count all = arch_count_group(&list, ARCH_ANY_GROUP, 0);
    CHECK_MSG(all.params == 8292166656ull, "%llu", (unsigned long long)all.params);
    CHECK(arch_count_group(&list, ARCH_ANY_GROUP, ARCH_UNUSED).params == 7747169280ull);
    CHECK(arch_count_prefix(&list, "visual.").params == 676550144ull);
    CHECK(arch_count_prefix(&list, "model.").params == 7070619136ull);
    CHECK(arch_count_prefix(&list, "lm_head.").params == 544997376ull);
    CHECK(arch_count_prefix(&list, "model.embed_tokens.").params == 544997376ull);
    CHECK(arch_count_prefix(&list, "visual.patch_embed.").params == 1505280ull);
    CHECK(arch_count_prefix(&list, "visual.merger.").params == 44574464ull);
    CHECK(arch_count_group(&list, 0, 0).params == 233057792ull && arch_count_group(&list, 0, 0).tensors == 12);
    CHECK(arch_count_group(&list, 28, 0).params == 19702200ull && arch_count_group(&list, 28, 0).tensors == 12);
    CHECK(arch_group_count(&list) == 28 + 32);
    /* 3 top + 28 x 12 text, lm_head, 1 + 32 x 12 + 5 vision */
    CHECK_MSG(all.tensors == 2 + 28 * 12 + 1 + 1 + 32 * 12 + 5, "%d", all.tensors);
    arch_free(&list);

    CHECK_OK(arch_text_encoder(&c, TEXTENC_NAMES_NESTED, &list));
    CHECK(arch_count_prefix(&list, "model.visual.").params == 676550144ull);
    CHECK(arch_count_prefix(&list, "model.language_model.").params == 7070619136ull);
    arch_free(&list);

    c.tie_word_embeddings = true;
    CHECK_OK(arch_text_encoder(&c, TEXTENC_NAMES_CHECKPOINT, &list));
    CHECK(arch_count_group(&list, ARCH_ANY_GROUP, 0).params == 7747169280ull);
    CHECK(arch_count_prefix(&list, "lm_head").tensors == 0);
    arch_free(&list);
}

/* Build the architecture of one golden component folder. */
static canvas_status golden_arch(const char *component, const char *dir, tensor_spec_list *list,
                                 const weight_set *files)
{
    char config[600];
    snprintf(config, sizeof config, "%s/config.json", dir);
    if (!strcmp(component, "transformer")) {
        qwen_dit_config c;
        TRY(qwen_dit_config_load(config, &c));
        return arch_dit(&c, list);
    }
    if (!strcmp(component, "vae")) {
        vae_config c;
        TRY(vae_config_load(config, &c));
        return arch_vae(&c, list);
    }
    textenc_config c;
    TRY(textenc_config_load(config, &c));
    return arch_text_encoder(&c, textenc_naming_of(files), list);
}

static void check_golden(const char *relative, const char *component, int tensors, uint64_t params)
{
    char dir[512];
    test_path(dir, sizeof dir, relative);
    weight_set *files = NULL;
    tensor_spec_list list = {0};
    CHECK_OK(weights_open(dir, &files));
    if (!files) return;
    CHECK_OK(golden_arch(component, dir, &list, files));
    CHECK_OK(arch_check(&list, files, component));
    arch_count all = arch_count_group(&list, ARCH_ANY_GROUP, 0);
    CHECK_MSG(all.tensors == files->n_tensors && all.tensors == tensors, "%s: %d tensors, files %d", relative,
              all.tensors, files->n_tensors);
    uint64_t stored = 0;
    for (int i = 0; i < files->n_tensors; i++) stored += st_numel(files->tensors[i]);
    CHECK_MSG(all.params == stored && all.params == params, "%s: %llu params, files %llu", relative,
              (unsigned long long)all.params, (unsigned long long)stored);
    arch_free(&list);
    weights_close(files);
}

static void test_golden_folders(void)
{
    check_golden("golden/models/dit-tiny/transformer", "transformer", 77, 338272);
    check_golden("golden/models/dit-tiny-bf16/transformer", "transformer", 77, 338272);
    check_golden("golden/models/dit-tiny-2509/transformer", "transformer", 77, 338272);
    check_golden("golden/models/edit-tiny/transformer", "transformer", 77, 338272);
    check_golden("golden/models/vae-tiny/vae", "vae", 146, 668043);
    check_golden("golden/models/edit-tiny/vae", "vae", 146, 668043);
    check_golden("golden/models/textenc-tiny/text_encoder", "text_encoder", 81, 310176);
}

/* ---- broken folders, written by the test from the tiny bf16 transformer ------------- */

static const char tiny_dit_config[] =
    "{\"_class_name\": \"QwenImageTransformer2DModel\", \"num_layers\": 2, \"attention_head_dim\": 16,"
    " \"num_attention_heads\": 4, \"joint_attention_dim\": 32, \"axes_dims_rope\": [8, 4, 4], \"zero_cond_t\": true}";

typedef enum breakage { INTACT, DROP, EXTRA, RESHAPE, INTEGER } breakage;

/* Copy the golden tensors into DIR/diffusion_pytorch_model.safetensors with one
 * tensor (`victim`) broken as asked; `also` breaks a second one the same way. */
static void write_folder(const char *dir, breakage how, const char *victim, const char *also)
{
    char path[600], golden[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(tiny_dit_config, f);
        fclose(f);
    }
    st_file *src = NULL;
    CHECK_OK(st_open(test_path(golden, sizeof golden, "golden/models/dit-tiny-bf16/transformer/diffusion_pytorch_model.safetensors"), &src));
    if (!src) return;
    st_write_tensor out[100];
    int n = 0;
    static const int32_t ints[64];
    for (int i = 0; i < src->n_tensors && n < 98; i++) {
        const st_tensor *t = &src->tensors[i];
        int hit = !strcmp(t->name, victim) || (also && !strcmp(t->name, also));
        if (hit && how == DROP) continue;
        st_write_tensor w = {.name = t->name, .type = t->type, .ndim = t->ndim, .data = t->data};
        memcpy(w.shape, t->shape, sizeof w.shape);
        if (hit && how == RESHAPE) w.shape[0] /= 2;
        if (hit && how == INTEGER) w.type = DTYPE_I16; /* same bytes as bf16 */
        out[n++] = w;
    }
    if (how == EXTRA)
        out[n++] = (st_write_tensor){.name = victim, .type = DTYPE_I32, .ndim = 1, .shape = {64}, .data = ints};
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    CHECK_OK(st_write(path, out, n, NULL, 0));
    st_close(src);
}

/* arch_check of DIR must fail with a message holding each needle. */
static void check_broken(const char *dir, const char *needle, const char *needle2)
{
    char config[600];
    snprintf(config, sizeof config, "%s/config.json", dir);
    qwen_dit_config c;
    tensor_spec_list list = {0};
    weight_set *files = NULL;
    CHECK_OK(qwen_dit_config_load(config, &c));
    CHECK_OK(arch_dit(&c, &list));
    CHECK_OK(weights_open(dir, &files));
    if (files) {
        CHECK_FAILS(arch_check(&list, files, "transformer"), CANVAS_ERR_INPUT, needle);
        CHECK_MSG(strstr(canvas_last_error(), needle2) != NULL, "%s lacks %s", canvas_last_error(), needle2);
    }
    weights_close(files);
    arch_free(&list);
}

static void test_broken_folders(void)
{
    char dir[] = "/tmp/canvas_test_arch_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char file[600];
    snprintf(file, sizeof file, "%s/diffusion_pytorch_model.safetensors", dir);

    write_folder(dir, INTACT, "", NULL);
    tensor_spec_list list = {0};
    weight_set *files = NULL;
    qwen_dit_config c;
    char config[600];
    snprintf(config, sizeof config, "%s/config.json", dir);
    CHECK_OK(qwen_dit_config_load(config, &c));
    CHECK_OK(arch_dit(&c, &list));
    CHECK_OK(weights_open(dir, &files));
    if (files) CHECK_OK(arch_check(&list, files, "transformer"));
    weights_close(files);
    arch_free(&list);

    write_folder(dir, DROP, "transformer_blocks.1.attn.to_q.bias", NULL);
    check_broken(dir, "transformer: tensor 'transformer_blocks.1.attn.to_q.bias' [64] is missing from", dir);
    write_folder(dir, EXTRA, "transformer_blocks.1.attn.extra.weight", NULL);
    check_broken(dir, "transformer: unexpected tensor 'transformer_blocks.1.attn.extra.weight' in", file);
    write_folder(dir, RESHAPE, "proj_out.weight", NULL);
    check_broken(dir, "transformer: tensor 'proj_out.weight' in", "has shape [32, 64], the config implies [64, 64]");
    CHECK(strstr(canvas_last_error(), file) != NULL);
    write_folder(dir, INTEGER, "txt_norm.weight", NULL);
    check_broken(dir, "tensor 'txt_norm.weight' in", "is stored as I16; weights must be a float type");
    write_folder(dir, DROP, "img_in.bias", "txt_in.bias");
    check_broken(dir, "tensor 'img_in.bias' [64] is missing", "(and 1 more problem)");

    /* a config that disagrees with intact weights: 3 blocks expected, 2 stored */
    write_folder(dir, INTACT, "", NULL);
    c.num_layers = 3;
    CHECK_OK(arch_dit(&c, &list));
    CHECK_OK(weights_open(dir, &files));
    if (files) CHECK_FAILS(arch_check(&list, files, "transformer"), CANVAS_ERR_INPUT,
                           "tensor 'transformer_blocks.2.img_mod.1.weight' [384, 64] is missing from");
    CHECK(strstr(canvas_last_error(), "(and 31 more problems)") != NULL);
    weights_close(files);
    arch_free(&list);

    unlink(file);
    unlink(config);
    rmdir(dir);
}

/* The text encoder as transformers >= 4.52 saves it: model.language_model.*, model.visual.* */
static void test_nested_text_encoder_names(void)
{
    char dir[] = "/tmp/canvas_test_arch_te_XXXXXX", golden[512], path[600], names[100][160];
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    st_file *src = NULL;
    CHECK_OK(st_open(test_path(golden, sizeof golden, "golden/models/textenc-tiny/text_encoder/model.safetensors"), &src));
    if (!src) return;
    st_write_tensor out[100];
    int n = 0;
    for (int i = 0; i < src->n_tensors && n < 100; i++, n++) {
        const st_tensor *t = &src->tensors[i];
        if (!strncmp(t->name, "visual.", 7)) snprintf(names[n], sizeof names[n], "model.%s", t->name);
        else if (!strncmp(t->name, "model.", 6)) snprintf(names[n], sizeof names[n], "model.language_model.%s", t->name + 6);
        else snprintf(names[n], sizeof names[n], "%s", t->name);
        out[n] = (st_write_tensor){.name = names[n], .type = t->type, .ndim = t->ndim, .data = t->data};
        memcpy(out[n].shape, t->shape, sizeof out[n].shape);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(st_write(path, out, n, NULL, 0));
    st_close(src);

    textenc_config c;
    weight_set *files = NULL;
    tensor_spec_list list = {0};
    CHECK_OK(textenc_config_load(test_path(golden, sizeof golden, "golden/models/textenc-tiny/text_encoder/config.json"), &c));
    CHECK_OK(weights_open(dir, &files));
    if (files) {
        CHECK(textenc_naming_of(files) == TEXTENC_NAMES_NESTED);
        CHECK_OK(arch_text_encoder(&c, TEXTENC_NAMES_NESTED, &list));
        CHECK_OK(arch_check(&list, files, "text_encoder"));
        arch_free(&list);
        CHECK_OK(arch_text_encoder(&c, TEXTENC_NAMES_CHECKPOINT, &list));
        CHECK_FAILS(arch_check(&list, files, "text_encoder"), CANVAS_ERR_INPUT,
                    "text_encoder: tensor 'model.embed_tokens.weight' [1024, 64] is missing");
        arch_free(&list);
    }
    weights_close(files);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(test_real_transformer);
    RUN(test_real_vae);
    RUN(test_diffusers_test_vae);
    RUN(test_real_text_encoder);
    RUN(test_golden_folders);
    RUN(test_broken_folders);
    RUN(test_nested_text_encoder_names);
    return check_summary();
}
