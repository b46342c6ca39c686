/* SPDX-License-Identifier: Apache-2.0 */
/* test_textenc.c — the Qwen2.5-VL encoder against transformers (textenc_forward golden
 * cases: every float tensor within 1e-4 of max|ref|, position ids and the vision window
 * bookkeeping exact), the BF16
 * prompt-tiny model with the real vocabulary, causality, the new ops against direct
 * double-precision references, and bad inputs. */
#include <stdint.h>
#include <stdlib.h>

#include "ops/threadpool.h"
#include "check.h"
#include "io/golden_case.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "models/qwen_textenc.h"
#include "models/qwen_textenc_case.h"
#include "ops/ops_cpu.h"

#define GOLDEN_TOLERANCE 1e-4

static thread_pool *pool;

static uint32_t rng_state = 77u;
static float random_uniform(void) { return test_uniform(&rng_state); }

/* ---- golden cases ----------------------------------------------------------------------- */

typedef struct comparison {
    const char *case_name;
    const st_file *expected;
    int compared;
} comparison;

static int same_shape(const st_tensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

static canvas_status compare_sink(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    comparison *cmp = ctx;
    const st_tensor *t = st_find(cmp->expected, name);
    CHECK_MSG(t != NULL, "%s: computed '%s' is not in expected.safetensors", cmp->case_name, name);
    if (!t) return CANVAS_OK;
    CHECK_MSG(same_shape(t, ndim, shape), "%s: '%s' has another shape than expected", cmp->case_name, name);
    if (!same_shape(t, ndim, shape)) return CANVAS_OK;
    const size_t n = (size_t)st_numel(t);
    if (t->type == DTYPE_I64) { /* position_ids: exact */
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t want;
            memcpy(&want, (const char *)t->data + i * 8, 8);
            wrong += (double)data[i] != (double)want;
        }
        printf("  %-20s %-20s %zu of %zu differ\n", cmp->case_name, name, wrong, n);
        CHECK_MSG(wrong == 0, "%s: '%s' differs in %zu places", cmp->case_name, name, wrong);
    } else {
        CHECK_MSG(t->type == DTYPE_F32, "%s: '%s' is not F32 in expected.safetensors", cmp->case_name, name);
        if (t->type != DTYPE_F32) return CANVAS_OK;
        double ratio = test_relative_error(data, t->data, n);
        printf("  %-20s %-20s max|diff|/max|ref| = %.3e\n", cmp->case_name, name, ratio);
        CHECK_MSG(ratio <= GOLDEN_TOLERANCE, "%s: '%s' ratio %.3e above %.0e", cmp->case_name, name, ratio,
                  GOLDEN_TOLERANCE);
    }
    cmp->compared++;
    return CANVAS_OK;
}

/* Expected tensors the forward produces: all but pixel_values (the image processor's
 * output, an input here). */
static int produced_count(const st_file *expected)
{
    int n = 0;
    for (int i = 0; i < expected->n_tensors; i++) n += strcmp(expected->tensors[i].name, "pixel_values") != 0;
    return n;
}

static void run_golden(const char *name)
{
    char case_dir[4096], path[4200];
    test_path(case_dir, sizeof case_dir, "golden/cases");
    snprintf(case_dir + strlen(case_dir), sizeof case_dir - strlen(case_dir), "/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    char op[32] = "";
    CHECK_OK(golden_case_op(case_dir, op, sizeof op));
    CHECK(!strcmp(op, "textenc_forward"));
    st_file *expected = NULL;
    CHECK_OK(st_open(path, &expected));
    if (!expected) return;
    comparison cmp = {name, expected, 0};
    CHECK_OK(textenc_case_run(case_dir, OP_BACKEND_CPU(pool), compare_sink, &cmp));
    CHECK_MSG(cmp.compared == produced_count(expected), "%s: compared %d tensors of %d", name, cmp.compared,
              produced_count(expected));
    st_close(expected);
}

static void test_golden_text_only(void) { run_golden("textenc-text-only"); }
static void test_golden_with_image(void) { run_golden("textenc-with-image"); }
static void test_golden_two_images(void) { run_golden("textenc-two-images"); }

/* ---- the model on its own --------------------------------------------------------------- */

static textenc_model *open_model(const char *model)
{
    char dir[4096];
    test_path(dir, sizeof dir, model);
    textenc_model *m = NULL;
    CHECK_OK(textenc_open(dir, &m));
    return m;
}

/* Causal: row i of the output depends on ids 0..i only, so a prefix gives the same rows. */
static void test_causal_prefix(void)
{
    char case_dir[4096];
    textenc_case *c = NULL;
    CHECK_OK(textenc_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/textenc-text-only"), &c));
    textenc_model *m = open_model("golden/models/textenc-tiny/text_encoder");
    if (!c || !m) goto done;
    const int64_t d = textenc_model_config(m)->text.hidden_size, n = c->n_ids, prefix = n / 2;
    float *full = malloc((size_t)(n * d) * sizeof(float)), *part = malloc((size_t)(prefix * d) * sizeof(float));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, NULL, NULL, 0, full));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, prefix, NULL, NULL, 0, part));
    double ratio = test_relative_error(part, full, (size_t)(prefix * d));
    printf("  causal prefix of %lld ids: max|diff|/max|ref| = %.3e\n", (long long)prefix, ratio);
    CHECK(ratio < 1e-6);
    /* and the later rows do see the earlier ids: changing id 0 changes the last row */
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    float *changed = malloc((size_t)(n * d) * sizeof(float));
    memcpy(ids, c->ids, (size_t)n * sizeof(int32_t));
    ids[0] = ids[0] == 5 ? 6 : 5;
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), ids, n, NULL, NULL, 0, changed));
    CHECK(test_relative_error(changed + (n - 1) * d, full + (n - 1) * d, (size_t)d) > 1e-4);
    free(changed);
    free(ids);
    free(full);
    free(part);
done:
    textenc_close(m);
    textenc_case_free(c);
}

/* prompt-tiny: BF16 weights, the real vocabulary (152064) and special ids, read from the
 * mapping; a chat-template prefix of real ids runs and gives unit-RMS rows scaled by the
 * final norm's weight (finite, not all equal). */
static void test_prompt_tiny_bf16(void)
{
    textenc_model *m = open_model("golden/models/prompt-tiny/text_encoder");
    if (!m) return;
    const textenc_config *c = textenc_model_config(m);
    CHECK(c->text.vocab_size == 152064);
    CHECK(c->image_token_id == 151655);
    /* <|im_start|>system\n ... <|im_end|>: ids at both ends of the vocabulary */
    const int32_t ids[6] = {151644, 8948, 198, 0, 152063, 151645};
    const int64_t d = c->text.hidden_size;
    float *hidden = malloc(6 * (size_t)d * sizeof(float));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 6, NULL, NULL, 0, hidden));
    int finite = 1, varied = 0;
    for (int64_t i = 0; i < 6 * d; i++) {
        finite &= isfinite(hidden[i]) != 0;
        varied |= hidden[i] != hidden[0];
    }
    CHECK(finite);
    CHECK(varied);
    /* the same first token alone gives the same first row */
    float first[64];
    CHECK(d <= 64);
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 1, NULL, NULL, 0, first));
    CHECK(test_relative_error(first, hidden, (size_t)d) < 1e-6);
    free(hidden);
    textenc_close(m);
}

/* The closed form of qwen_textenc.h, each buffer rounded up to 64 bytes. */
static size_t up64(int64_t bytes) { return ((size_t)bytes + 63) / 64 * 64; }

static size_t activation_bytes_by_hand(const textenc_config *c, int64_t n, const int64_t (*grid)[3], int n_images)
{
    const int64_t d = c->text.hidden_size, kv = (int64_t)c->text.num_key_value_heads * c->text.head_dim;
    const int64_t f = c->text.intermediate_size, hd = c->text.head_dim, dv = c->vision.hidden_size;
    const int64_t fv = c->vision.intermediate_size, hdv = dv / c->vision.num_heads, p = textenc_patch_values(c);
    const int64_t win = c->vision.window_size / 2 / c->vision.patch_size;
    int64_t tokens = 0, windows = 0, frames = 0;
    for (int i = 0; i < n_images; i++) {
        tokens += grid[i][0] * grid[i][1] / 2 * grid[i][2] / 2;
        windows += grid[i][0] * (grid[i][1] / 2 / win + 1) * (grid[i][2] / 2 / win + 1);
        frames += grid[i][0];
    }
    const int64_t patches = 4 * tokens;
    size_t text = 5 * up64(4 * n * d) + 2 * up64(4 * n * kv) + 2 * up64(4 * n * f) + 2 * up64(4 * n * hd / 2);
    size_t vision = 0;
    if (n_images)
        vision = up64(8 * tokens) + up64(8 * (windows + 1)) + up64(8 * (frames + 1)) + up64(4 * patches * p) +
                 7 * up64(4 * patches * dv) + up64(12 * patches * dv) + 2 * up64(4 * patches * fv) +
                 2 * up64(4 * patches * hdv / 2) + up64(4 * tokens * d);
    return up64(4 * tokens * d) + up64(4 * n * d) + (vision > text ? vision : text);
}

/* Streamed through a capped device (every group but the top level through the two slots),
 * the output is bit-identical to reading the weights where they lie, and every group's
 * bytes went over the link: the forward reaches its weights only through acquire. */
static void test_streamed_placement(void)
{
    char case_dir[4096];
    textenc_case *c = NULL;
    CHECK_OK(textenc_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/textenc-with-image"), &c));
    textenc_model *m = open_model("golden/models/textenc-tiny/text_encoder");
    mem_device *gpu = NULL;
    CHECK_OK(mem_device_create_capped("gpu", 4u << 20, &gpu));
    if (!c || !m || !gpu) goto done;
    const int64_t d = textenc_model_config(m)->text.hidden_size, n = c->n_ids;
    float *on_cpu = malloc((size_t)(n * d) * sizeof(float)), *streamed = malloc((size_t)(n * d) * sizeof(float));
    const int64_t(*grid)[3] = (const int64_t(*)[3])c->grid_thw;
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, on_cpu));
    CHECK_OK(textenc_place(m, gpu, 0));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, streamed));
    CHECK(!memcmp(on_cpu, streamed, (size_t)(n * d) * sizeof(float)));
    mem_device_stats stats;
    mem_device_get_stats(gpu, &stats);
    printf("  streamed: %llu bytes over the link, device weights peak %zu bytes\n",
           (unsigned long long)stats.bytes_in, stats.classes[MEM_WEIGHTS].peak_bytes);
    CHECK(stats.bytes_in > 0);
    /* the activations: one arena on the device, of exactly the documented size */
    const textenc_config *cfg = textenc_model_config(m);
    const size_t arena = textenc_activation_bytes(cfg, n, grid, c->n_images);
    printf("  activations: device peak %zu bytes, textenc_activation_bytes %zu, by hand %zu\n",
           stats.classes[MEM_ACTIVATIONS].peak_bytes, arena, activation_bytes_by_hand(cfg, n, grid, c->n_images));
    CHECK(stats.classes[MEM_ACTIVATIONS].peak_bytes == arena);
    CHECK(arena == activation_bytes_by_hand(cfg, n, grid, c->n_images));
    /* a device one byte short of it: out of memory, nothing left behind, the placement kept */
    CHECK_OK(mem_device_set_cap(gpu, stats.current_bytes + arena - 1));
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, streamed),
                CANVAS_ERR_OUT_OF_MEMORY, "");
    mem_device_get_stats(gpu, &stats);
    CHECK(stats.classes[MEM_ACTIVATIONS].current_bytes == 0);
    CHECK_OK(mem_device_set_cap(gpu, stats.current_bytes + arena));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, streamed));
    CHECK(!memcmp(on_cpu, streamed, (size_t)(n * d) * sizeof(float)));
    CHECK_FAILS(textenc_place(m, gpu, 7), CANVAS_ERR_USAGE, "resident groups");

    /* the dry run on a measure device: the same peaks per class, the same bytes over the link */
    mem_device *measure = NULL;
    CHECK_OK(mem_device_create_measure("gpu (dry run)", 0, &measure));
    if (measure) {
        CHECK_OK(mem_device_set_cap(gpu, 4u << 20));
        mem_device_reset_peaks(gpu);
        CHECK_OK(textenc_place(m, gpu, 2));
        CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, streamed));
        CHECK_OK(textenc_place(m, measure, 2));
        CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, NULL));
        mem_device_stats real, dry;
        mem_device_get_stats(gpu, &real);
        mem_device_get_stats(measure, &dry);
        printf("  dry run: weights peak %zu (real %zu), activations peak %zu (real %zu)\n",
               dry.classes[MEM_WEIGHTS].peak_bytes, real.classes[MEM_WEIGHTS].peak_bytes,
               dry.classes[MEM_ACTIVATIONS].peak_bytes, real.classes[MEM_ACTIVATIONS].peak_bytes);
        CHECK(dry.classes[MEM_WEIGHTS].peak_bytes == real.classes[MEM_WEIGHTS].peak_bytes);
        CHECK(dry.classes[MEM_ACTIVATIONS].peak_bytes == real.classes[MEM_ACTIVATIONS].peak_bytes);
        CHECK(dry.classes[MEM_ACTIVATIONS].peak_bytes == arena);
        CHECK_OK(textenc_place(m, NULL, TEXTENC_ALL_GROUPS));
        mem_device_destroy(measure);
    }
    CHECK_OK(textenc_place(m, NULL, TEXTENC_ALL_GROUPS));
    free(on_cpu);
    free(streamed);
done:
    textenc_close(m); /* drops the placement before the device goes */
    mem_device_destroy(gpu);
    textenc_case_free(c);
}

/* Every allocation of a forward with an image, then every weight block of textenc_open
 * (JSON parsing is jansson's, whose lexer asserts on some failed allocations), failing in
 * turn: an out-of-memory status, nothing leaked, and the run after it still right. */
/* The planner: the largest resident prefix that fits a cap, which then runs on a capped
 * device of that size (bit-identical) while one more resident group does not; a cap below
 * streaming everything is refused. */
static void test_plan_resident_groups(void)
{
    char case_dir[4096];
    textenc_case *c = NULL;
    CHECK_OK(textenc_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/textenc-two-images"), &c));
    textenc_model *m = open_model("golden/models/textenc-tiny/text_encoder");
    if (!c || !m) goto done;
    const int64_t d = textenc_model_config(m)->text.hidden_size, n = c->n_ids;
    const textenc_inputs in = {c->ids, n, c->pixel_values, (const int64_t(*)[3])c->grid_thw, c->n_images};
    float *want = malloc((size_t)(n * d) * sizeof(float)), *got = malloc((size_t)(n * d) * sizeof(float));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), in.ids, n, in.pixel_values, in.grid_thw, in.n_images, want));
    int all = -1, some = -1, none = -1;
    CHECK_OK(textenc_plan_resident_groups(m, &in, 64u << 20, &all, NULL));
    CHECK(all == 6); /* 4 vision blocks + 2 layers */
    /* the cap of a real run with 3 resident groups */
    mem_device *gpu = NULL;
    CHECK_OK(mem_device_create_capped("gpu", 64u << 20, &gpu));
    if (!gpu) goto done_buffers;
    CHECK_OK(textenc_place(m, gpu, 3));
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), in.ids, n, in.pixel_values, in.grid_thw, in.n_images, got));
    mem_device_stats stats;
    mem_device_get_stats(gpu, &stats);
    const size_t cap = stats.peak_bytes;
    CHECK_OK(textenc_place(m, NULL, TEXTENC_ALL_GROUPS));
    CHECK_OK(textenc_plan_resident_groups(m, &in, cap, &some, NULL));
    printf("  plan: every group resident under 64 MiB, %d of 6 under %zu bytes\n", some, cap);
    CHECK(some >= 1 && some < 6);
    /* on a fresh device of that cap (the planner's dry runs start from one too: a pool's
     * alignment holes depend on its history) */
    for (int extra = 0; extra < 2; extra++) {
        mem_device_destroy(gpu);
        gpu = NULL;
        CHECK_OK(mem_device_create_capped("gpu", cap, &gpu));
        if (!gpu) goto done_buffers;
        canvas_status st = textenc_place(m, gpu, some + extra);
        if (st == CANVAS_OK) st = textenc_forward(m, OP_BACKEND_CPU(pool), in.ids, n, in.pixel_values, in.grid_thw, in.n_images, got);
        CHECK(st == (extra ? CANVAS_ERR_OUT_OF_MEMORY : CANVAS_OK));
        if (!extra) CHECK(!memcmp(got, want, (size_t)(n * d) * sizeof(float)));
        CHECK_OK(textenc_place(m, NULL, TEXTENC_ALL_GROUPS));
    }
    CHECK_FAILS(textenc_plan_resident_groups(m, &in, 100000, &none, NULL), CANVAS_ERR_OUT_OF_MEMORY, "every group streamed");
    CHECK(none == -1);
    mem_device_destroy(gpu);
done_buffers:
    free(want);
    free(got);
done:
    textenc_close(m);
    textenc_case_free(c);
}

static void test_out_of_memory_everywhere(void)
{
    char case_dir[4096], model_dir[4096];
    textenc_case *c = NULL;
    CHECK_OK(textenc_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/textenc-with-image"), &c));
    textenc_model *m = open_model("golden/models/textenc-tiny/text_encoder");
    if (!c || !m) goto done;
    const int64_t d = textenc_model_config(m)->text.hidden_size, n = c->n_ids;
    float *want = malloc((size_t)(n * d) * sizeof(float)), *got = malloc((size_t)(n * d) * sizeof(float));
    const int64_t(*grid)[3] = (const int64_t(*)[3])c->grid_thw;
    CHECK_OK(textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, want));
    size_t live_before = mem_total_current();
    int failures = 0;
    for (uint64_t k = 1; k < 100000; k++) {
        mem_fault_arm(&(mem_fault_plan){.nth = k, .persistent = 0, .only_class = -1});
        canvas_status st = textenc_forward(m, OP_BACKEND_CPU(pool), c->ids, n, c->pixel_values, grid, c->n_images, got);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        CHECK_MSG(mem_total_current() == live_before, "allocation %llu failing leaks %zu bytes", (unsigned long long)k,
                  mem_total_current() - live_before);
        if (!hits) {
            CHECK_OK(st);
            CHECK(!memcmp(got, want, (size_t)(n * d) * sizeof(float)));
            break;
        }
        failures++;
        CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY, "allocation %llu failing gave %s: %s", (unsigned long long)k,
                  canvas_status_name(st), canvas_last_error());
    }
    printf("  forward: %d allocation sites failed in turn\n", failures);
    CHECK(failures > 20);

    test_path(model_dir, sizeof model_dir, "golden/models/textenc-tiny/text_encoder");
    failures = 0;
    for (uint64_t k = 1; k < 100000; k++) {
        textenc_model *opened = NULL;
        mem_fault_arm(&(mem_fault_plan){.nth = k, .persistent = 0, .only_class = MEM_WEIGHTS});
        canvas_status st = textenc_open(model_dir, &opened);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        textenc_close(opened);
        CHECK_MSG(mem_total_current() == live_before, "allocation %llu of open failing leaks %zu bytes",
                  (unsigned long long)k, mem_total_current() - live_before);
        if (!hits) {
            CHECK_OK(st);
            break;
        }
        failures++;
        CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY && !opened, "allocation %llu of open failing gave %s: %s",
                  (unsigned long long)k, canvas_status_name(st), canvas_last_error());
    }
    printf("  open: %d weight blocks failed in turn\n", failures);
    CHECK(failures == 7); /* the top level, 4 vision blocks, 2 decoder layers */
    free(want);
    free(got);
done:
    textenc_close(m);
    textenc_case_free(c);
}

static void test_bad_inputs(void)
{
    textenc_model *m = open_model("golden/models/textenc-tiny/text_encoder");
    if (!m) return;
    const textenc_config *c = textenc_model_config(m);
    float hidden[4 * 64], pixels[16 * 1176];
    memset(pixels, 0, sizeof pixels);
    int32_t ids[4] = {1, 2, 3, c->text.vocab_size};
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 4, NULL, NULL, 0, hidden), CANVAS_ERR_INPUT, "outside the vocabulary");
    ids[3] = c->image_token_id; /* a pad token without an image */
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 4, NULL, NULL, 0, hidden), CANVAS_ERR_INPUT, "<|image_pad|>");
    const int64_t grid[1][3] = {{1, 4, 4}}; /* 16 patches -> 4 tokens, but one pad given */
    ids[2] = c->vision_start_token_id;
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 4, pixels, grid, 1, hidden), CANVAS_ERR_INPUT, "<|image_pad|>");
    const int64_t odd[1][3] = {{1, 3, 4}};
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 4, pixels, odd, 1, hidden), CANVAS_ERR_INPUT, "spatial_merge_size");
    CHECK_FAILS(textenc_forward(m, OP_BACKEND_CPU(pool), ids, 0, NULL, NULL, 0, hidden), CANVAS_ERR_INPUT, "ids");
    textenc_close(m);
    char dir[4096];
    textenc_model *none = NULL;
    CHECK_FAILS(textenc_open(test_path(dir, sizeof dir, "golden/models/vae-tiny/vae"), &none), CANVAS_ERR_INPUT,
                "vae");
    CHECK(none == NULL);
}

/* ---- ops ---------------------------------------------------------------------------------- */

/* Direct double reference of op_attention_grouped. */
static void reference_attention(const float *q, const float *k, const float *v, int64_t seq, int heads, int kv_heads,
                                int hd, int causal, double *out)
{
    double *p = malloc((size_t)seq * sizeof(double));
    for (int h = 0; h < heads; h++) {
        int kh = h / (heads / kv_heads);
        for (int64_t i = 0; i < seq; i++) {
            int64_t keys = causal ? i + 1 : seq;
            double max = -INFINITY, sum = 0;
            for (int64_t j = 0; j < keys; j++) {
                double s = 0;
                for (int c = 0; c < hd; c++) s += (double)q[(i * heads + h) * hd + c] * k[(j * kv_heads + kh) * hd + c];
                p[j] = s / sqrt((double)hd);
                if (p[j] > max) max = p[j];
            }
            for (int64_t j = 0; j < keys; j++) sum += p[j] = exp(p[j] - max);
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int64_t j = 0; j < keys; j++) o += p[j] * v[(j * kv_heads + kh) * hd + c];
                out[(i * heads + h) * hd + c] = o / sum;
            }
        }
    }
    free(p);
}

static void check_attention(int64_t seq, int heads, int kv_heads, int hd, int causal)
{
    size_t nq = (size_t)(seq * heads * hd), nk = (size_t)(seq * kv_heads * hd);
    float *q = malloc(nq * sizeof(float)), *k = malloc(nk * sizeof(float)), *v = malloc(nk * sizeof(float));
    float *out = malloc(nq * sizeof(float));
    double *want = malloc(nq * sizeof(double));
    for (size_t i = 0; i < nq; i++) q[i] = 2 * random_uniform();
    for (size_t i = 0; i < nk; i++) k[i] = 2 * random_uniform(), v[i] = random_uniform();
    CHECK_OK(op_attention_grouped(OP_BACKEND_CPU(pool), q, k, v, seq, heads, kv_heads, hd, causal, out));
    reference_attention(q, k, v, seq, heads, kv_heads, hd, causal, want);
    double worst = 0;
    for (size_t i = 0; i < nq; i++) worst = fmax(worst, fabs(out[i] - want[i]));
    CHECK_MSG(worst < 2e-6, "seq %lld heads %d/%d hd %d causal %d: %.3e", (long long)seq, heads, kv_heads, hd, causal,
              worst);
    free(q), free(k), free(v), free(out), free(want);
}

static void test_attention_grouped_causal(void)
{
    check_attention(7, 4, 2, 16, 1);
    check_attention(130, 6, 2, 24, 1);   /* crosses the 96-query and 128-key blocks */
    check_attention(300, 4, 1, 8, 1);
    check_attention(97, 4, 4, 16, 0);
    check_attention(200, 6, 3, 32, 0);
}

/* op_attention_grouped with kv_heads = heads and no mask is op_attention, bit for bit. */
static void test_attention_unchanged(void)
{
    const int64_t seq = 150;
    const int heads = 3, hd = 40;
    size_t n = (size_t)(seq * heads * hd);
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) q[i] = random_uniform(), k[i] = random_uniform(), v[i] = random_uniform();
    CHECK_OK(op_attention(OP_BACKEND_CPU(pool), q, k, v, seq, heads, hd, NULL, a));
    CHECK_OK(op_attention_grouped(OP_BACKEND_CPU(pool), q, k, v, seq, heads, heads, hd, 0, b));
    CHECK(!memcmp(a, b, n * sizeof(float)));
    free(q), free(k), free(v), free(a), free(b);
}

static void test_rope_half(void)
{
    const int64_t seq = 3;
    const int heads = 2, hd = 20, half = hd / 2;
    float x[3 * 2 * 20], orig[3 * 2 * 20], cs[3 * 10], sn[3 * 10];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) orig[i] = x[i] = random_uniform();
    for (int i = 0; i < seq * half; i++) {
        double angle = 3 * random_uniform();
        cs[i] = (float)cos(angle), sn[i] = (float)sin(angle);
    }
    op_rope_half(x, seq, heads, hd, cs, sn);
    double worst = 0;
    for (int64_t t = 0; t < seq; t++)
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < half; j++) {
                const float *o = orig + (t * heads + h) * hd;
                const float *y = x + (t * heads + h) * hd;
                double c = cs[t * half + j], s = sn[t * half + j];
                worst = fmax(worst, fabs(y[j] - (o[j] * c - o[j + half] * s)));
                worst = fmax(worst, fabs(y[j + half] - (o[j + half] * c + o[j] * s)));
            }
    CHECK(worst < 1e-6);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    RUN(test_golden_text_only);
    RUN(test_golden_with_image);
    RUN(test_golden_two_images);
    RUN(test_causal_prefix);
    RUN(test_prompt_tiny_bf16);
    RUN(test_streamed_placement);
    RUN(test_plan_resident_groups);
    RUN(test_out_of_memory_everywhere);
    RUN(test_bad_inputs);
    RUN(test_attention_grouped_causal);
    RUN(test_attention_unchanged);
    RUN(test_rope_half);
    thread_pool_destroy(pool);
    CHECK(mem_total_current() == 0);
    return check_summary();
}
