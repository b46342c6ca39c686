/* SPDX-License-Identifier: Apache-2.0 */
/* test_lora.c — LoRA files (pipeline/lora.h): the lora-* goldens through the library,
 * every naming against a direct computation of the merged weights, stacking, bf16 and
 * quantised bases, errors that name the file and the key, and fail-at-N over the merge. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "pipeline/lora.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

static char temp_dir[64];

static const char *temp_file(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", temp_dir, name);
    return buf;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double rel_diff(const float *got, const float *want, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fabs((double)got[i] - want[i]) > d ? fabs((double)got[i] - want[i]) : d;
    double m = max_abs(want, n);
    return m > 0 ? d / m : d;
}

/* The forward of a case on a model; output malloc'ed [n_img, 64]. */
static float *forward(qwen_dit_model *model, const qwen_dit_case *dc)
{
    size_t n = (size_t)(dc->inputs.n_img * qwen_dit_output_channels(&model->config));
    float *out = malloc(n * sizeof *out);
    CHECK_OK(qwen_dit_forward(model, NULL, &dc->inputs, NULL, out));
    return out;
}

static float *expected_output(const char *case_dir, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    st_file *f = NULL;
    CHECK_OK(st_open(path, &f));
    if (!f) return NULL;
    const st_tensor *t = st_find(f, "output");
    *n = (size_t)st_numel(t);
    float *out = malloc(*n * sizeof *out);
    dtype_to_f32(t->type, t->data, out, *n);
    st_close(f);
    return out;
}

/* A case's model with its loras merged (the way `canvas debug case` does it). */
static qwen_dit_model *load_case_model(const qwen_dit_case *dc, quant_choice weights)
{
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_load_quantized(dc->model_dir, weights, &model));
    if (!model) return NULL;
    for (int i = 0; i < dc->n_loras; i++) {
        lora_spec spec = {dc->loras[i].path, dc->loras[i].scale, LORA_NAMING_AUTO};
        CHECK_OK(lora_naming_parse(dc->loras[i].naming, &spec.naming));
        CHECK_OK(lora_apply_specs(model, NULL, &spec, 1));
    }
    return model;
}

static void test_goldens(void)
{
    const char *cases[] = {"golden/cases/lora-kohya", "golden/cases/lora-peft"};
    for (int c = 0; c < 2; c++) {
        char dir[4096];
        test_path(dir, sizeof dir, cases[c]);
        qwen_dit_case *dc = NULL;
        CHECK_OK(qwen_dit_case_open(dir, &dc));
        if (!dc) continue;
        CHECK(dc->n_loras == 1 && dc->loras[0].scale == 1.0f);
        size_t n = 0;
        float *want = expected_output(dir, &n);
        qwen_dit_model *model = load_case_model(dc, (quant_choice){QUANT_NONE, 0});
        if (model && want) {
            float *got = forward(model, dc);
            double err = rel_diff(got, want, n);
            fprintf(stderr, "  %-10s output max|diff|/max|ref| = %.3e\n", cases[c] + 13, err);
            CHECK_MSG(err <= 1e-4, "%s: %g", cases[c], err);
            free(got);
        }
        qwen_dit_free(model);
        /* the LoRA matters: without it the output is far off */
        model = NULL;
        CHECK_OK(qwen_dit_load(dc->model_dir, &model));
        if (model && want) {
            float *base = forward(model, dc);
            CHECK(rel_diff(base, want, n) > 1e-2);
            free(base);
        }
        qwen_dit_free(model);
        free(want);
        qwen_dit_case_free(dc);
    }
}

/* ---- own files in every naming -------------------------------------------------------- */

typedef struct test_module {
    const char *name;       /* "transformer_blocks.0.attn.to_q" */
    int64_t out, in, rank;
    float alpha;
    float down[8 * 256], up[256 * 8];
} test_module;

static unsigned rng_state = 12345;
static float rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return ((float)((rng_state >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.2f;
}

static void make_module(test_module *m, const char *name, int64_t out, int64_t in, int64_t rank, float alpha)
{
    m->name = name;
    m->out = out, m->in = in, m->rank = rank, m->alpha = alpha;
    for (int64_t i = 0; i < rank * in; i++) m->down[i] = rnd();
    for (int64_t i = 0; i < out * rank; i++) m->up[i] = rnd();
}

/* Write modules in a naming; alpha written unless with_alpha is 0. */
static void write_lora(const char *path, lora_naming naming, const char *peft_prefix, test_module *mods, int n,
                       int with_alpha)
{
    static char names[64][256];
    st_write_tensor t[64];
    int k = 0;
    for (int i = 0; i < n; i++) {
        char module[128];
        snprintf(module, sizeof module, "%s.weight", mods[i].name);
        char written[128];
        lora_module_name(naming, module, written, sizeof written);
        const char *prefix = naming == LORA_NAMING_PEFT    ? peft_prefix
                             : naming == LORA_NAMING_KOHYA ? "lora_unet_"
                             : naming == LORA_NAMING_COMFY ? "diffusion_model."
                                                           : "";
        const char *down = naming == LORA_NAMING_PEFT ? "lora_A.weight" : "lora_down.weight";
        const char *up = naming == LORA_NAMING_PEFT ? "lora_B.weight" : "lora_up.weight";
        snprintf(names[k], sizeof names[k], "%s%s.%s", prefix, written, down);
        t[k] = (st_write_tensor){names[k], DTYPE_F32, 2, {mods[i].rank, mods[i].in}, mods[i].down};
        k++;
        snprintf(names[k], sizeof names[k], "%s%s.%s", prefix, written, up);
        t[k] = (st_write_tensor){names[k], DTYPE_F32, 2, {mods[i].out, mods[i].rank}, mods[i].up};
        k++;
        if (with_alpha) {
            snprintf(names[k], sizeof names[k], "%s%s.alpha", prefix, written);
            t[k] = (st_write_tensor){names[k], DTYPE_F32, 0, {0}, &mods[i].alpha};
            k++;
        }
    }
    CHECK_OK(st_write(path, t, k, NULL, 0));
}

static int find_matrix(const qwen_dit_model *model, const char *module, qwen_dit_matrix_info *info)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", module);
    for (int i = 0; i < qwen_dit_matrix_count(model); i++) {
        qwen_dit_matrix_get(model, i, info);
        if (!strcmp(info->name, name)) return i;
    }
    return -1;
}

static void matrix_f32(const qwen_dit_matrix_info *info, float *out)
{
    const weight_view *w = &info->home;
    for (int64_t r = 0; r < w->out_features; r++) {
        if (w->quant) quant_dequantize_row(w->quant, w->data, r, out + r * w->in_features);
        else
            dtype_to_f32(w->type, (const char *)w->data + (size_t)(r * w->in_features) * dtype_size(w->type),
                         out + r * w->in_features, (size_t)w->in_features);
    }
}

/* base + sum of scale_j · alpha/rank · up @ down, in double. */
static void direct_merge(const float *base, const test_module *const *mods, const float *scales, int n, int64_t out,
                         int64_t in, double *merged)
{
    for (int64_t i = 0; i < out * in; i++) merged[i] = base[i];
    for (int j = 0; j < n; j++) {
        const test_module *m = mods[j];
        double f = (double)scales[j] * m->alpha / (double)m->rank;
        for (int64_t o = 0; o < out; o++)
            for (int64_t c = 0; c < in; c++) {
                double s = 0;
                for (int64_t r = 0; r < m->rank; r++) s += (double)m->up[o * m->rank + r] * m->down[r * in + c];
                merged[o * in + c] += f * s;
            }
    }
}

static const char *model_dir(char *buf, size_t size) { return test_path(buf, size, "golden/models/dit-tiny/transformer"); }

/* Modules of dit-tiny (D = 64, H = 256) spread over the top level and both blocks. */
static test_module mods[4];
static void make_modules(void)
{
    make_module(&mods[0], "transformer_blocks.0.attn.to_q", 64, 64, 4, 2.0f);
    make_module(&mods[1], "transformer_blocks.1.img_mlp.net.2", 64, 256, 8, 8.0f);
    make_module(&mods[2], "transformer_blocks.1.attn.to_out.0", 64, 64, 2, 1.0f);
    make_module(&mods[3], "proj_out", 64, 64, 4, 4.0f);
}

/* Load dit-tiny (format `weights`), apply `path` with `naming`, compare every module's
 * merged matrix with the direct merge; returns the largest |error| / max|merged|. */
static double merged_error(const char *dir, quant_choice weights, const char *path, lora_naming naming, float scale,
                           int alpha_written)
{
    qwen_dit_model *model = NULL, *base = NULL;
    CHECK_OK(qwen_dit_load_quantized(dir, (quant_choice){QUANT_NONE, 0}, &base));
    CHECK_OK(qwen_dit_load_quantized(dir, weights, &model));
    double worst = -1;
    if (!model || !base) goto done;
    lora_spec spec = {path, scale, naming};
    CHECK_OK(lora_apply_specs(model, NULL, &spec, 1));
    worst = 0;
    for (int i = 0; i < 4; i++) {
        qwen_dit_matrix_info info, base_info;
        int at = find_matrix(model, mods[i].name, &info);
        CHECK(at >= 0 && info.replaced);
        find_matrix(base, mods[i].name, &base_info);
        if (at < 0) continue;
        size_t n = (size_t)(mods[i].out * mods[i].in);
        float *b = malloc(n * sizeof *b), *got = malloc(n * sizeof *got);
        double *want = malloc(n * sizeof *want);
        matrix_f32(&base_info, b);
        matrix_f32(&info, got);
        test_module alpha_rank = mods[i];
        if (!alpha_written) alpha_rank.alpha = (float)alpha_rank.rank;
        const test_module *list[1] = {&alpha_rank};
        direct_merge(b, list, &scale, 1, mods[i].out, mods[i].in, want);
        double m = 0, d = 0;
        for (size_t k = 0; k < n; k++) {
            m = fabs(want[k]) > m ? fabs(want[k]) : m;
            d = fabs(want[k] - got[k]) > d ? fabs(want[k] - got[k]) : d;
        }
        worst = d / m > worst ? d / m : worst;
        free(b), free(got), free(want);
    }
    /* a module the file does not name keeps its home */
    qwen_dit_matrix_info untouched;
    CHECK(find_matrix(model, "transformer_blocks.0.attn.to_k", &untouched) >= 0 && !untouched.replaced);
done:
    qwen_dit_free(model);
    qwen_dit_free(base);
    return worst;
}

static void test_namings(void)
{
    char dir[4096], path[256];
    model_dir(dir, sizeof dir);
    make_modules();
    struct {
        lora_naming naming;
        const char *peft_prefix;
        int alpha;
        const char *file;
    } files[] = {
        {LORA_NAMING_KOHYA, NULL, 1, "kohya.safetensors"},
        {LORA_NAMING_PEFT, "transformer.", 0, "peft.safetensors"},
        {LORA_NAMING_PEFT, "base_model.model.", 1, "peft-base-model.safetensors"},
        {LORA_NAMING_LIGHTX2V, NULL, 1, "lightx2v.safetensors"},
        {LORA_NAMING_COMFY, NULL, 1, "comfy.safetensors"},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        temp_file(path, sizeof path, files[f].file);
        write_lora(path, files[f].naming, files[f].peft_prefix, mods, 4, files[f].alpha);
        st_file *st = NULL;
        CHECK_OK(st_open(path, &st));
        if (st) CHECK_MSG(lora_naming_detect(st) == files[f].naming, "%s", files[f].file);
        st_close(st);
        /* recognised from the keys, and named explicitly */
        double auto_err = merged_error(dir, (quant_choice){QUANT_NONE, 0}, path, LORA_NAMING_AUTO, 0.75f, files[f].alpha);
        double named_err = merged_error(dir, (quant_choice){QUANT_NONE, 0}, path, files[f].naming, 1.0f, files[f].alpha);
        CHECK_MSG(auto_err >= 0 && auto_err <= 1e-6, "%s: %g", files[f].file, auto_err);
        CHECK_MSG(named_err >= 0 && named_err <= 1e-6, "%s: %g", files[f].file, named_err);
        remove(path);
    }
}

/* Two files on the same module add up; a bf16 base is stored back as bf16, exactly the
 * RNE of the f32 merge. */
static void test_stacking_and_bf16(void)
{
    char dir[4096], a[256], b[256];
    make_modules();
    test_module second;
    make_module(&second, "transformer_blocks.0.attn.to_q", 64, 64, 3, 1.5f);
    temp_file(a, sizeof a, "first.safetensors");
    temp_file(b, sizeof b, "second.safetensors");
    write_lora(a, LORA_NAMING_KOHYA, NULL, mods, 1, 1);
    write_lora(b, LORA_NAMING_PEFT, "transformer.", &second, 1, 1);

    model_dir(dir, sizeof dir);
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_load(dir, &model));
    qwen_dit_matrix_info before, after;
    if (model) find_matrix(model, "transformer_blocks.0.attn.to_q", &before);
    float *base = malloc(64 * 64 * sizeof *base), *got = malloc(64 * 64 * sizeof *got);
    double *want = malloc(64 * 64 * sizeof *want);
    if (model) matrix_f32(&before, base);
    lora_spec specs[2] = {{a, 0.5f, LORA_NAMING_AUTO}, {b, -1.25f, LORA_NAMING_AUTO}};
    if (model) CHECK_OK(lora_apply_specs(model, NULL, specs, 2));
    if (model) {
        find_matrix(model, "transformer_blocks.0.attn.to_q", &after);
        matrix_f32(&after, got);
        const test_module *list[2] = {&mods[0], &second};
        float scales[2] = {0.5f, -1.25f};
        direct_merge(base, list, scales, 2, 64, 64, want);
        float *wf = malloc(64 * 64 * sizeof *wf);
        for (int i = 0; i < 64 * 64; i++) wf[i] = (float)want[i];
        CHECK(after.home.type == DTYPE_F32 && after.replaced);
        CHECK(rel_diff(got, wf, 64 * 64) <= 1e-6);
        free(wf);
    }
    qwen_dit_free(model);

    /* bf16 base */
    test_path(dir, sizeof dir, "golden/models/dit-tiny-bf16/transformer");
    model = NULL;
    CHECK_OK(qwen_dit_load(dir, &model));
    if (model) {
        find_matrix(model, "transformer_blocks.0.attn.to_q", &before);
        CHECK(before.home.type == DTYPE_BF16);
        matrix_f32(&before, base);
        CHECK_OK(lora_apply_specs(model, NULL, specs, 1));
        find_matrix(model, "transformer_blocks.0.attn.to_q", &after);
        CHECK(after.home.type == DTYPE_BF16 && after.bytes == 64 * 64 * 2);
        const test_module *list[1] = {&mods[0]};
        float scale = 0.5f;
        direct_merge(base, list, &scale, 1, 64, 64, want);
        const uint16_t *bits = after.home.data;
        int off = 0, far = 0;
        for (int i = 0; i < 64 * 64; i++) {
            /* the f32 merge may differ from the double one in its last f32 bit, which moves
             * a value next to a bf16 tie to the neighbouring code: allow that, a few times */
            uint16_t exact = f32_to_bf16((float)want[i]);
            if (bits[i] != exact) off++;
            if (abs((int)bits[i] - (int)exact) > 1) far++;
        }
        CHECK_MSG(off <= 2 && far == 0, "%d of 4096 bf16 codes differ from RNE(direct merge), %d by more than one code",
                  off, far);
    }
    qwen_dit_free(model);
    free(base), free(got), free(want);
    remove(a), remove(b);
}

/* A quantised base (q8_0 and nf4 on load) with the golden kohya LoRA against the f32 golden. */
static void test_quantized_base(void)
{
    char dir[4096];
    test_path(dir, sizeof dir, "golden/cases/lora-kohya");
    qwen_dit_case *dc = NULL;
    CHECK_OK(qwen_dit_case_open(dir, &dc));
    if (!dc) return;
    size_t n = 0;
    float *want = expected_output(dir, &n);
    struct {
        quant_choice format;
        double bound;
    } formats[] = {{{QUANT_Q8_0, 0}, 0.02}, {{QUANT_NF4, 0}, 0.30}, {{QUANT_FP8_E4M3, 1}, 0.08}};
    for (int f = 0; f < 3; f++) {
        qwen_dit_model *model = load_case_model(dc, formats[f].format);
        if (!model || !want) {
            qwen_dit_free(model);
            continue;
        }
        qwen_dit_matrix_info info;
        find_matrix(model, "transformer_blocks.1.img_mod.1", &info);
        CHECK(info.replaced && info.home.quant && info.home.quant->format == formats[f].format.format);
        float *got = forward(model, dc);
        double err = rel_diff(got, want, n);
        fprintf(stderr, "  %-12s + kohya LoRA vs f32 golden: %.3e (bound %g)\n", quant_choice_name(formats[f].format),
                err, formats[f].bound);
        CHECK_MSG(err <= formats[f].bound, "%s: %g", quant_choice_name(formats[f].format), err);
        free(got);
        /* a second LoRA at scale 0 merges from the dequantised blob and quantises again:
         * the quantiser's fixed points keep the output where it was */
        lora_spec again = {dc->loras[0].path, 0.0f, LORA_NAMING_KOHYA};
        CHECK_OK(lora_apply_specs(model, NULL, &again, 1));
        got = forward(model, dc);
        double err2 = rel_diff(got, want, n);
        CHECK_MSG(err2 <= formats[f].bound, "%s requantised: %g", quant_choice_name(formats[f].format), err2);
        free(got);
        qwen_dit_free(model);
    }
    free(want);
    qwen_dit_case_free(dc);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_error(const char *dir, const char *path, lora_naming naming, const char *needle1,
                         const char *needle2)
{
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_load(dir, &model));
    if (!model) return;
    qwen_dit_matrix_info before, after;
    qwen_dit_matrix_get(model, 5, &before);
    lora_spec spec = {path, 1.0f, naming};
    canvas_status st = lora_apply_specs(model, NULL, &spec, 1);
    CHECK_MSG(st == CANVAS_ERR_INPUT && strstr(canvas_last_error(), needle1) && strstr(canvas_last_error(), needle2),
              "%s: got %s \"%s\"", path, canvas_status_name(st), canvas_last_error());
    CHECK(strstr(canvas_last_error(), path) != NULL);
    qwen_dit_matrix_get(model, 5, &after);
    CHECK(after.home.data == before.home.data && !after.replaced);
    qwen_dit_free(model);
}

static void test_errors(void)
{
    char dir[4096], path[256];
    model_dir(dir, sizeof dir);
    float down[4 * 64] = {0}, up[64 * 4] = {0}, small[4 * 32] = {0}, alpha = 4.0f, two[2] = {1, 2};
    temp_file(path, sizeof path, "bad.safetensors");

    st_write_tensor unknown[2] = {
        {"transformer.transformer_blocks.0.attn.to_zz.lora_A.weight", DTYPE_F32, 2, {4, 64}, down},
        {"transformer.transformer_blocks.0.attn.to_zz.lora_B.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, unknown, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "to_zz.lora_A.weight", "no Linear 'transformer_blocks.0.attn.to_zz'");

    st_write_tensor block9[2] = {
        {"lora_unet_transformer_blocks_9_attn_to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"lora_unet_transformer_blocks_9_attn_to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, block9, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_KOHYA, "lora_unet_transformer_blocks_9_attn_to_q.lora_down.weight", "no Linear");

    st_write_tensor shape[2] = {
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 32}, small},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, shape, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_LIGHTX2V, "'transformer_blocks.0.attn.to_q.lora_down.weight' must be [rank, 64]",
                 "[64, 64]");

    st_write_tensor rank[2] = {
        {"diffusion_model.transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"diffusion_model.transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {32, 8}, up},
    };
    CHECK_OK(st_write(path, rank, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "diffusion_model.transformer_blocks.0.attn.to_q.lora_up.weight",
                 "must be [64, 4]");

    /* rank above the layer's width: refused before the merge (it overflowed a scratch row) */
    static float wide_down[80 * 64], wide_up[64 * 80];
    st_write_tensor too_wide[2] = {
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {80, 64}, wide_down},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 80}, wide_up},
    };
    CHECK_OK(st_write(path, too_wide, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "rank 80 is more than 'transformer_blocks.0.attn.to_q.weight'",
                 "at most 64");

    /* NaN / infinity in a matrix: named at merge time, nothing replaced */
    float poisoned[4 * 64] = {0};
    poisoned[70] = NAN;
    st_write_tensor nan_down[2] = {
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, poisoned},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, nan_down, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "'transformer_blocks.0.attn.to_q.lora_down.weight': value 70 is NaN",
                 "damaged");
    float infinite[64 * 4] = {0};
    infinite[3] = -INFINITY;
    st_write_tensor inf_up[2] = {
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, infinite},
    };
    CHECK_OK(st_write(path, inf_up, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "'transformer_blocks.0.attn.to_q.lora_up.weight': value 3 is infinite",
                 "damaged");

    st_write_tensor no_up[2] = {
        {"lora_unet_transformer_blocks_1_txt_mod_1.alpha", DTYPE_F32, 0, {0}, &alpha},
        {"lora_unet_transformer_blocks_1_txt_mod_1.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
    };
    CHECK_OK(st_write(path, no_up, 2, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "transformer_blocks.1.txt_mod.1.weight", "has no up matrix");

    st_write_tensor no_down[1] = {
        {"transformer.proj_out.lora_B.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, no_down, 1, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "transformer.proj_out.lora_B.weight", "has no down matrix");

    st_write_tensor alone_alpha[1] = {
        {"transformer_blocks.0.attn.to_q.alpha", DTYPE_F32, 0, {0}, &alpha},
    };
    CHECK_OK(st_write(path, alone_alpha, 1, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "transformer_blocks.0.attn.to_q.alpha", "has no down matrix");

    st_write_tensor bad_alpha[3] = {
        {"transformer_blocks.0.attn.to_q.alpha", DTYPE_F32, 1, {2}, two},
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, bad_alpha, 3, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "'transformer_blocks.0.attn.to_q.alpha' must be one float", "alpha");

    st_write_tensor duplicate[3] = {
        {"transformer_blocks.0.attn.to_q.lora_A.weight", DTYPE_F32, 2, {4, 64}, down},
        {"transformer_blocks.0.attn.to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"transformer_blocks.0.attn.to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, duplicate, 3, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "transformer_blocks.0.attn.to_q.lora_down.weight", "already has");

    /* a key of another naming, and a stray tensor */
    st_write_tensor mixed[3] = {
        {"lora_unet_transformer_blocks_0_attn_to_q.lora_down.weight", DTYPE_F32, 2, {4, 64}, down},
        {"lora_unet_transformer_blocks_0_attn_to_q.lora_up.weight", DTYPE_F32, 2, {64, 4}, up},
        {"lora_unet_transformer_blocks_0_attn_to_q.dora_scale", DTYPE_F32, 2, {64, 4}, up},
    };
    CHECK_OK(st_write(path, mixed, 3, NULL, 0));
    expect_error(dir, path, LORA_NAMING_AUTO, "key 'lora_unet_transformer_blocks_0_attn_to_q.dora_scale'",
                 "not a kohya LoRA key");
    expect_error(dir, path, LORA_NAMING_PEFT, "key 'lora_unet_transformer_blocks_0_attn_to_q.dora_scale'",
                 "not a peft LoRA key");

    /* a missing file is the safetensors reader's error */
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_load(dir, &model));
    lora_spec spec = {"/nonexistent/x.safetensors", 1.0f, LORA_NAMING_AUTO};
    if (model) CHECK_FAILS(lora_apply_specs(model, NULL, &spec, 1), CANVAS_ERR_INPUT, "/nonexistent/x.safetensors");
    qwen_dit_free(model);
    remove(path);

    /* FILE[:scale] */
    char file[64];
    float scale = 0;
    CHECK_OK(lora_spec_parse("a.safetensors:0.8", file, sizeof file, &scale));
    CHECK(!strcmp(file, "a.safetensors") && scale == 0.8f);
    CHECK_OK(lora_spec_parse("C:/x/a.safetensors", file, sizeof file, &scale));
    CHECK(!strcmp(file, "C:/x/a.safetensors") && scale == 1.0f);
    CHECK_OK(lora_spec_parse("b:-1.5", file, sizeof file, &scale));
    CHECK(!strcmp(file, "b") && scale == -1.5f);
    CHECK_FAILS(lora_spec_parse(":2", file, sizeof file, &scale), CANVAS_ERR_USAGE, "no file name");
    CHECK_FAILS(lora_spec_parse("a:inf", file, sizeof file, &scale), CANVAS_ERR_USAGE, "finite");
    lora_naming naming;
    CHECK_FAILS(lora_naming_parse("lycoris", &naming), CANVAS_ERR_INPUT, "lycoris");
}

/* Fail the N-th allocation (transient and persistent) over the whole open + merge +
 * re-place; every failure is an out-of-memory, the model is unchanged or unplaced, and
 * freeing it leaves nothing. */
static void test_fail_at_n(void)
{
    char dir[4096], path[256];
    model_dir(dir, sizeof dir);
    make_modules();
    temp_file(path, sizeof path, "fail.safetensors");
    write_lora(path, LORA_NAMING_KOHYA, NULL, mods, 4, 1);
    const size_t baseline = mem_total_current();
    int finished = 0;
    for (int persistent = 0; persistent < 2; persistent++)
        for (uint64_t nth = 1; nth < 400; nth++) {
            qwen_dit_model *model = NULL;
            CHECK_OK(qwen_dit_load(dir, &model));
            if (!model) return;
            qwen_dit_matrix_info before, after;
            find_matrix(model, "proj_out", &before);
            mem_fault_plan plan = {nth, persistent, -1};
            mem_fault_arm(&plan);
            lora_spec spec = {path, 1.0f, LORA_NAMING_AUTO};
            canvas_status st = lora_apply_specs(model, NULL, &spec, 1);
            uint64_t hits = mem_fault_hits();
            mem_fault_disarm();
            find_matrix(model, "proj_out", &after);
            if (hits == 0) {
                CHECK_OK(st);
                CHECK(after.replaced);
                qwen_dit_free(model);
                finished++;
                break;
            }
            CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY, "N=%llu: %s", (unsigned long long)nth, canvas_last_error());
            /* all or nothing, except a failed re-placement (the model is then unplaced) */
            CHECK(qwen_dit_device(model) == NULL || (after.home.data == before.home.data && !after.replaced));
            qwen_dit_free(model);
            CHECK_MSG(mem_total_current() == baseline, "N=%llu: %zu bytes left", (unsigned long long)nth,
                      mem_total_current() - baseline);
        }
    CHECK(finished == 2);
    CHECK(mem_total_current() == baseline);
    remove(path);
}

/* The public API: canvas_options.loras merged at open; a bad file fails the open cleanly. */
static void test_api(void)
{
    char model[4096], lora[4096], bad[4096];
    test_path(model, sizeof model, "golden/models/edit-tiny");
    test_path(lora, sizeof lora, "golden/cases/lora-kohya/lora0-kohya.safetensors");
    test_path(bad, sizeof bad, "golden/cases/lora-kohya/inputs.safetensors");
    const size_t baseline = mem_total_current();
    canvas_options opt;
    canvas_options_default(&opt);
    canvas_lora loras[2] = {{lora, 0.8f}, {bad, 1.0f}};
    opt.loras = loras;
    opt.n_loras = 2;
    canvas_model *m = NULL;
    CHECK_FAILS(canvas_open(model, &opt, &m), CANVAS_ERR_INPUT, "inputs.safetensors: key 'encoder_hidden_states'");
    CHECK(m == NULL && mem_total_current() == baseline);
    opt.n_loras = 1;
    CHECK_OK(canvas_open(model, &opt, &m));
    canvas_memory_snapshot snap;
    if (m) CHECK_OK(canvas_memory_snapshot_take(m, &snap));
    if (m) CHECK(snap.host_weight_bytes > 0);
    canvas_close(m);
    CHECK(mem_total_current() == baseline);
}

int main(void)
{
    snprintf(temp_dir, sizeof temp_dir, "/tmp/canvas_test_lora_XXXXXX");
    if (!mkdtemp(temp_dir)) return 1;
    RUN(test_goldens);
    RUN(test_namings);
    RUN(test_stacking_and_bf16);
    RUN(test_quantized_base);
    RUN(test_errors);
    RUN(test_fail_at_n);
    RUN(test_api);
    rmdir(temp_dir);
    return check_summary();
}
