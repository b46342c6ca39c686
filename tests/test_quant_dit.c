/* SPDX-License-Identifier: Apache-2.0 */
/* test_quant_dit.c — the transformer with quantised weights: every dit golden case with
 * the blocks quantised on load to fp8 (per tensor, per channel), nf4 and q8_0, against the
 * float32 expected output (max|got - expected| / max|expected|, printed); the bytes per
 * parameter the quantised copies take; and the loader on the checkpoint layouts users
 * have (ComfyUI scaled fp8, comfy_quant, bitsandbytes nf4 with double quantisation, q8_0)
 * and on quantisation metadata it must refuse. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/model_dir.h"
#include "io/quant_loader.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"
#include "quant_bounds.h"

static thread_pool *pool;

static const char *const cases[] = {"dit-edit-basic", "dit-edit-two-refs", "dit-no-zero-cond",
                                    "dit-padded-text", "dit-text-to-image", "dit-bf16"};

/* max|got - expected| / max|expected| of the forward's output for one case and format;
 * *bytes_per_param: the quantised copies' MEM_WEIGHTS bytes over the block parameters. */
static double run_case(const char *case_name, quant_choice choice, double *bytes_per_param)
{
    char case_dir[4096], path[4200], rel[256];
    snprintf(rel, sizeof rel, "golden/cases/%s", case_name);
    test_path(case_dir, sizeof case_dir, rel);
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    qwen_dit_case *dc = NULL;
    qwen_dit_model *model = NULL;
    st_file *expected = NULL;
    float *output = NULL;
    double ratio = INFINITY;
    CHECK_OK(qwen_dit_case_open(case_dir, &dc));
    if (dc) CHECK_OK(qwen_dit_load_quantized(dc->model_dir, choice, &model));
    CHECK_OK(st_open(path, &expected));
    const st_tensor *want = expected ? st_find(expected, "output") : NULL;
    if (!dc || !model || !want) goto done;
    const int64_t channels = qwen_dit_output_channels(&model->config);
    CHECK_OK(mem_alloc((void **)&output, (size_t)(dc->inputs.n_img * channels) * sizeof(float), MEM_SCRATCH));
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, NULL, output));
    double max_diff = 0, max_ref = 0;
    const float *ref = want->data;
    for (uint64_t i = 0; i < st_numel(want); i++) {
        double diff = fabs((double)output[i] - ref[i]);
        if (!(diff <= max_diff)) max_diff = diff;
        max_ref = fmax(max_ref, fabs((double)ref[i]));
    }
    ratio = max_diff / max_ref;
    /* parameters of the block matrices (the ones quantised) */
    const int64_t d = qwen_dit_inner_dim(&model->config), layers = model->config.num_layers;
    const double params = (double)layers * (double)(2 * 6 * d * d + 8 * d * d + 4 * 4 * d * d);
    *bytes_per_param = (double)quant_store_bytes(model->quant) / params;
done:
    mem_free(output);
    st_close(expected);
    qwen_dit_free(model);
    qwen_dit_case_free(dc);
    return ratio;
}

static void test_golden_cases_quantised(void)
{
    for (size_t f = 0; f < sizeof quant_bounds / sizeof quant_bounds[0]; f++) {
        quant_choice choice;
        CHECK_OK(quant_choice_parse(quant_bounds[f].name, &choice));
        double worst = 0, bytes = 0;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            double ratio = run_case(cases[c], choice, &bytes);
            printf("  %-12s %-18s max|got-expected|/max|expected| = %.4f\n", quant_bounds[f].name, cases[c], ratio);
            worst = fmax(worst, ratio);
        }
        printf("  %-12s worst %.4f (limit %.2f), %.4f bytes per quantised parameter\n", quant_bounds[f].name, worst,
               quant_bounds[f].limit, bytes);
        CHECK_MSG(worst <= quant_bounds[f].limit, "%s: %.4f above %.2f", quant_bounds[f].name, worst, quant_bounds[f].limit);
        double want_bytes = choice.format == QUANT_NF4 ? 0.5625 : choice.format == QUANT_Q8_0 ? 1.0625 : 1.0;
        if (choice.per_channel) want_bytes = 1.052; /* + one f32 per row: 1920 per block of 147456 parameters */
        CHECK_MSG(bytes >= want_bytes - 0.01 && bytes <= want_bytes + 0.02, "%s: %.4f bytes per parameter",
                  quant_bounds[f].name, bytes);
    }
    /* as stored is bit-identical to qwen_dit_load */
    double bytes;
    double plain = run_case("dit-edit-basic", (quant_choice){QUANT_NONE, 0}, &bytes);
    CHECK(plain < 1e-4 && bytes == 0);
}

/* ---- the loader on files users have ------------------------------------------------------ */

static char tmp_dir[256];

static void write_set(const st_write_tensor *tensors, int n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", tmp_dir);
    CHECK_OK(st_write(path, tensors, n, NULL, 0));
}

static float nf4_expect(const uint8_t *codes, size_t i, float absmax)
{
    int code = i % 2 ? codes[i / 2] & 15 : codes[i / 2] >> 4;
    return quant_nf4_values[code] * absmax;
}

static void test_loader_layouts(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/canvas_test_quant_dit_%d", (int)getpid());
    mkdir(tmp_dir, 0700);

    /* bitsandbytes nf4 with double quantisation: [4, 128], 8 blocks, one nested block */
    uint8_t bnb_codes[256], bnb_absmax[8];
    for (int i = 0; i < 256; i++) bnb_codes[i] = (uint8_t)(i * 29 + 3);
    for (int i = 0; i < 8; i++) bnb_absmax[i] = (uint8_t)(i * 31 + 5);
    float nested_map[256], nested_absmax[1] = {0.5f}, quant_map[16], plain_absmax[8];
    for (int i = 0; i < 256; i++) nested_map[i] = (float)i / 255.0f - 0.25f;
    memcpy(quant_map, quant_nf4_values, sizeof quant_map);
    for (int i = 0; i < 8; i++) plain_absmax[i] = 0.1f * (float)(i + 1);
    const char *state_nested = "{\"quant_type\": \"nf4\", \"absmax_dtype\": \"float32\", \"blocksize\": 64, "
                               "\"dtype\": \"bfloat16\", \"shape\": [4, 128], \"nested_blocksize\": 256, "
                               "\"nested_dtype\": \"float32\", \"nested_offset\": 0.03125}";
    const char *state_plain = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [4, 128]}";
    const char *state_fp4 = "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [4, 128]}";
    /* fp8: ComfyUI scaled fp8 (per tensor) and comfy_quant with per-channel scales */
    uint8_t fp8[8 * 16];
    for (int i = 0; i < 128; i++) fp8[i] = (uint8_t)(i * 5 + 1) == 0x7F ? 0 : (uint8_t)(i * 5 + 1);
    for (int i = 0; i < 128; i++) if ((fp8[i] & 0x7F) == 0x7F) fp8[i] = 0x10;
    float scale_a = 0.25f, scale_b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *comfy_ok = "{\"format\": \"float8_e4m3fn\"}", *comfy_nvfp4 = "{\"format\": \"nvfp4\"}";
    /* q8_0 */
    int8_t q8[4 * 64];
    uint16_t q8_scales[8];
    for (int i = 0; i < 256; i++) q8[i] = (int8_t)(i - 128);
    for (int i = 0; i < 8; i++) q8_scales[i] = f32_to_f16(0.01f * (float)(i + 1));
    uint16_t bf16[4 * 64] = {0};
    float f32w[4 * 64] = {0}, one = 1.0f;
    int32_t i32w[4 * 64] = {0};
    uint8_t marker[1] = {0};

    st_write_tensor t[] = {
        {"n.weight", DTYPE_U8, 2, {256, 1}, bnb_codes},
        {"n.weight.absmax", DTYPE_U8, 1, {8}, bnb_absmax},
        {"n.weight.quant_map", DTYPE_F32, 1, {16}, quant_map},
        {"n.weight.nested_absmax", DTYPE_F32, 1, {1}, nested_absmax},
        {"n.weight.nested_quant_map", DTYPE_F32, 1, {256}, nested_map},
        {"n.weight.quant_state.bitsandbytes__nf4", DTYPE_U8, 1, {(int64_t)strlen(state_nested)}, state_nested},
        {"p.weight", DTYPE_U8, 2, {256, 1}, bnb_codes},
        {"p.weight.absmax", DTYPE_F32, 1, {8}, plain_absmax},
        {"p.weight.quant_map", DTYPE_F32, 1, {16}, quant_map},
        {"p.weight.quant_state.bitsandbytes__nf4", DTYPE_U8, 1, {(int64_t)strlen(state_plain)}, state_plain},
        {"a.weight", DTYPE_F8_E4M3, 2, {8, 16}, fp8},
        {"a.scale_weight", DTYPE_F32, 0, {0}, &scale_a},
        {"scaled_fp8", DTYPE_F8_E4M3, 1, {1}, marker},
        {"b.weight", DTYPE_F8_E4M3, 2, {8, 16}, fp8},
        {"b.weight_scale", DTYPE_F32, 2, {8, 1}, scale_b},
        {"b.comfy_quant", DTYPE_U8, 1, {(int64_t)strlen(comfy_ok)}, comfy_ok},
        {"c.weight", DTYPE_I8, 2, {4, 64}, q8},
        {"c.weight_scale", DTYPE_F16, 2, {4, 2}, q8_scales},
        {"d.weight", DTYPE_U8, 2, {256, 1}, bnb_codes},
        {"d.weight.quant_state.bitsandbytes__fp4", DTYPE_U8, 1, {(int64_t)strlen(state_fp4)}, state_fp4},
        {"e.weight", DTYPE_F8_E4M3, 2, {8, 16}, fp8},
        {"e.comfy_quant", DTYPE_U8, 1, {(int64_t)strlen(comfy_nvfp4)}, comfy_nvfp4},
        {"f.weight", DTYPE_BF16, 2, {4, 64}, bf16},
        {"f.weight.foo", DTYPE_F32, 1, {1}, &one},
        {"g.weight", DTYPE_I8, 2, {4, 64}, q8},
        {"h.weight", DTYPE_F32, 2, {4, 64}, f32w},
        {"h.scale_weight", DTYPE_F32, 0, {0}, &one},
        {"i.weight", DTYPE_I32, 2, {4, 64}, i32w},
        {"j.weight", DTYPE_F32, 2, {4, 64}, f32w},
    };
    write_set(t, (int)(sizeof t / sizeof t[0]));
    weight_set *files = NULL;
    CHECK_OK(weights_open(tmp_dir, &files));
    if (!files) return;
    quant_store *store = NULL;
    CHECK_OK(quant_store_create(&store));
    quant_choice none = {QUANT_NONE, 0};
    quant_weight q;
    float row[128];

    /* nested absmax: code[q] * nested_absmax + offset, in f32 */
    CHECK_OK(quant_weight_from_view(store, files, "n.weight", 4, 128, none, &q));
    if (q.quant) {
        CHECK(q.quant->format == QUANT_NF4);
        int bad = 0;
        for (int r = 0; r < 4; r++) {
            quant_dequantize_row(q.quant, q.data, r, row);
            for (int k = 0; k < 128; k++) {
                size_t i = (size_t)(r * 128 + k);
                float absmax = nested_map[bnb_absmax[i / 64]] * 0.5f + 0.03125f;
                bad += row[k] != nf4_expect(bnb_codes, i, absmax);
            }
        }
        CHECK_MSG(bad == 0, "nested nf4: %d values differ", bad);
    }
    CHECK_OK(quant_weight_from_view(store, files, "p.weight", 4, 128, none, &q));
    if (q.quant) {
        quant_dequantize_row(q.quant, q.data, 3, row);
        for (int k = 0; k < 128; k++) CHECK(row[k] == nf4_expect(bnb_codes, (size_t)(384 + k), plain_absmax[6 + k / 64]));
    }
    /* scaled fp8, per tensor: the codes are used where they lie */
    CHECK_OK(quant_weight_from_view(store, files, "a.weight", 8, 16, none, &q));
    CHECK(q.quant && q.quant->format == QUANT_FP8_E4M3 && !q.quant->per_channel && q.quant->tensor_scale == 0.25f);
    CHECK(q.data == weights_find(files, "a.weight")->data);
    if (q.quant) {
        quant_dequantize_row(q.quant, q.data, 2, row);
        for (int k = 0; k < 16; k++) CHECK(row[k] == e4m3_to_f32(fp8[32 + k]) * 0.25f);
    }
    CHECK_OK(quant_weight_from_view(store, files, "b.weight", 8, 16, none, &q));
    CHECK(q.quant && q.quant->per_channel);
    if (q.quant) {
        quant_dequantize_row(q.quant, q.data, 5, row);
        for (int k = 0; k < 16; k++) CHECK(row[k] == e4m3_to_f32(fp8[80 + k]) * 6.0f);
    }
    CHECK_OK(quant_weight_from_view(store, files, "c.weight", 4, 64, none, &q));
    if (q.quant) {
        quant_dequantize_row(q.quant, q.data, 1, row);
        for (int k = 0; k < 64; k++) CHECK(row[k] == (float)q8[64 + k] * f16_to_f32(q8_scales[2 + k / 32]));
    }
    /* a wrong logical shape, and what must be refused */
    CHECK_FAILS(quant_weight_from_view(store, files, "n.weight", 8, 64, none, &q), CANVAS_ERR_INPUT, "[4, 128]");
    CHECK_FAILS(quant_weight_from_view(store, files, "d.weight", 4, 128, none, &q), CANVAS_ERR_UNSUPPORTED, "fp4");
    CHECK_FAILS(quant_weight_from_view(store, files, "e.weight", 8, 16, none, &q), CANVAS_ERR_UNSUPPORTED, "nvfp4");
    CHECK_FAILS(quant_weight_from_view(store, files, "f.weight", 4, 64, none, &q), CANVAS_ERR_UNSUPPORTED, "f.weight.foo");
    CHECK_FAILS(quant_weight_from_view(store, files, "g.weight", 4, 64, none, &q), CANVAS_ERR_UNSUPPORTED, "q8_0 scales");
    CHECK_FAILS(quant_weight_from_view(store, files, "h.weight", 4, 64, none, &q), CANVAS_ERR_INPUT, "h.scale_weight");
    CHECK_FAILS(quant_weight_from_view(store, files, "i.weight", 4, 64, none, &q), CANVAS_ERR_UNSUPPORTED, "I32");
    /* quantise on load from a float weight; a format that does not fit stays plain */
    quant_choice nf4 = {QUANT_NF4, 0};
    CHECK_OK(quant_weight_from_view(store, files, "j.weight", 4, 64, (quant_choice){QUANT_Q8_0, 0}, &q));
    CHECK(q.quant && q.quant->format == QUANT_Q8_0 && q.bytes == q.quant->bytes);
    CHECK_OK(quant_weight_from_view(store, files, "j.weight", 4, 64, nf4, &q));
    CHECK(q.quant && q.quant->format == QUANT_NF4);
    CHECK_OK(quant_weight_from_view(store, files, "j.weight", 4, 64, (quant_choice){QUANT_FP8_E4M3, 0}, &q));
    CHECK(q.quant && q.quant->bytes == 256);
    /* the arch check's helpers */
    CHECK(quant_is_auxiliary(files, "scaled_fp8") && quant_is_auxiliary(files, "a.scale_weight"));
    CHECK(quant_is_auxiliary(files, "n.weight.nested_quant_map") && quant_is_auxiliary(files, "b.comfy_quant"));
    CHECK(!quant_is_auxiliary(files, "zz.weight_scale") && !quant_is_auxiliary(files, "a.weight"));
    CHECK(quant_is_stored_quantized(files, "a.weight") && quant_is_stored_quantized(files, "n.weight"));
    quant_store_free(store);
    weights_close(files);
    char path[512];
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", tmp_dir);
    unlink(path);
    rmdir(tmp_dir);
}

int main(void)
{
    CHECK_OK(thread_pool_create(0, &pool));
    RUN(test_loader_layouts);
    RUN(test_golden_cases_quantised);
    thread_pool_destroy(pool);
    return check_summary();
}
