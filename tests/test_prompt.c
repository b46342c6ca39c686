/* SPDX-License-Identifier: Apache-2.0 */
/* test_prompt.c — prompt text to embeddings against diffusers' encode_prompt (the
 * prompt-* goldens: the real tokenizer, the prompt-tiny encoder with the real vocabulary,
 * PNG condition images of any size): token ids and the resized condition images exact,
 * the embeddings within 1e-4 relative; then the pipeline styles and the hostile cases. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>

#include "base/status.h"
#include "ops/threadpool.h"
#include "check.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "pipeline/prompt.h"
#include "pipeline/prompt_case.h"
#include "tensor/dtype.h"

#define EMBED_TOLERANCE 1e-4

static thread_pool *pool;

typedef struct comparison {
    const char *label;
    const st_file *expected;
    int compared;
} comparison;

/* Integer and uint8 tensors exact; float tensors max|diff|/max|ref| <= EMBED_TOLERANCE. */
static canvas_status compare_sink(void *ctx, const char *name, const float *got, int ndim, const int64_t *shape)
{
    comparison *cmp = ctx;
    const st_tensor *t = st_find(cmp->expected, name);
    CHECK_MSG(t != NULL, "%s: computed '%s' is not in expected.safetensors", cmp->label, name);
    if (!t) return CANVAS_OK;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    CHECK_MSG(same, "%s: '%s' has another shape than expected", cmp->label, name);
    if (!same) return CANVAS_OK;
    size_t n = (size_t)st_numel(t);
    float *want;
    if (mem_alloc((void **)&want, n * sizeof *want, MEM_SCRATCH) != CANVAS_OK) return CANVAS_ERR_OUT_OF_MEMORY;
    dtype_to_f32(t->type, t->data, want, n);
    size_t first_bad = 0;
    while (first_bad < n && got[first_bad] == want[first_bad]) first_bad++;
    if (t->type == DTYPE_F32) {
        double ratio = test_relative_error(got, want, n);
        printf("  %s %-24s max|diff|/max|ref| = %.3e\n", cmp->label, name, ratio);
        CHECK_MSG(ratio <= EMBED_TOLERANCE, "%s: '%s' ratio %.3e above %.0e", cmp->label, name, ratio,
                  EMBED_TOLERANCE);
    } else {
        printf("  %s %-24s %zu values, %s\n", cmp->label, name, n, first_bad == n ? "exact" : "DIFFER");
        CHECK_MSG(first_bad == n, "%s: '%s' differs first at element %zu: %g, expected %g", cmp->label, name,
                  first_bad, first_bad < n ? got[first_bad] : 0.0, first_bad < n ? want[first_bad] : 0.0);
    }
    mem_free(want);
    cmp->compared++;
    return CANVAS_OK;
}

static void run_case(const char *name)
{
    char case_dir[4096], path[4200];
    snprintf(path, sizeof path, "golden/cases/%s", name);
    test_path(case_dir, sizeof case_dir, path);
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    st_file *expected = NULL;
    CHECK_OK(st_open(path, &expected));
    if (!expected) return;
    comparison cmp = {name, expected, 0};
    CHECK_OK(prompt_case_run(case_dir, pool, compare_sink, &cmp));
    CHECK_MSG(cmp.compared == expected->n_tensors, "%s: compared %d of %d expected tensors", name, cmp.compared,
              expected->n_tensors);
    st_close(expected);
}

static void test_golden_one_image(void) { run_case("prompt-edit-plus-one"); }
static void test_golden_two_images_negative(void) { run_case("prompt-edit-plus-two"); }

static void test_styles(void)
{
    prompt_style s;
    CHECK_OK(prompt_style_of("QwenImageEditPlusPipeline", &s));
    CHECK(s == PROMPT_EDIT_PLUS && prompt_drop_rows(s) == 64 && prompt_condition_area(s) == 384 * 384);
    CHECK_OK(prompt_style_of("QwenImageEditPipeline", &s));
    CHECK(s == PROMPT_EDIT && prompt_drop_rows(s) == 64 && prompt_condition_area(s) == 1024 * 1024);
    CHECK_OK(prompt_style_of("QwenImagePipeline", &s));
    CHECK(s == PROMPT_TEXT_TO_IMAGE && prompt_drop_rows(s) == 34 && prompt_condition_area(s) == 0);
    CHECK_FAILS(prompt_style_of("StableDiffusionPipeline", &s), CANVAS_ERR_UNSUPPORTED, "StableDiffusionPipeline");
}

static void open_tiny(prompt_style style, prompt_encoder **pe)
{
    char tok[4096], enc[4096], proc[4096];
    test_path(tok, sizeof tok, "real-configs/qwen-image-edit-2511/tokenizer");
    test_path(enc, sizeof enc, "golden/models/prompt-tiny/text_encoder");
    test_path(proc, sizeof proc, "real-configs/qwen-image-edit-2511/processor/preprocessor_config.json");
    CHECK_OK(prompt_encoder_open(tok, enc, proc, style, (quant_choice){QUANT_NONE, 0}, pe));
}

/* Text-to-image: no image, drop 34; the output has one row per token after the template's
 * first 34. A second encoding of the same text gives the same numbers. */
static void test_text_to_image(void)
{
    prompt_encoder *pe = NULL;
    open_tiny(PROMPT_TEXT_TO_IMAGE, &pe);
    if (!pe) return;
    float *a = NULL, *b = NULL;
    int64_t la = 0, lb = 0, d = 0;
    CHECK_OK(prompt_encode(pe, pool, "a red boat", NULL, 0, NULL, NULL, &a, &la, &d));
    CHECK_OK(prompt_encode(pe, pool, "a red boat", NULL, 0, NULL, NULL, &b, &lb, &d));
    /* "a red boat" is 3 tokens, then <|im_end|> \n <|im_start|> assistant \n: 5 */
    CHECK_MSG(la == 8 && lb == 8 && d == 8, "t2i: %lld rows of %lld", (long long)la, (long long)d);
    CHECK(a && b && la == lb && !memcmp(a, b, (size_t)(la * d) * sizeof *a));
    mem_free(a);
    mem_free(b);
    prompt_encoder_close(pe);
}

/* Out of memory at every allocation of one encoding (the encoder open, as in a server):
 * each run fails with CANVAS_ERR_OUT_OF_MEMORY and leaves nothing allocated, or survives
 * the failure with the same embeddings; transient (N) and persistent (N+) failures. */
static void fail_at_every_allocation(int persistent, size_t device_cap, uint64_t stride)
{
    prompt_encoder *pe = NULL;
    open_tiny(PROMPT_EDIT_PLUS, &pe);
    mem_device *gpu = NULL;
    if (device_cap) CHECK_OK(mem_device_create_capped("gpu", device_cap, &gpu));
    if (pe) {
        pe->device = gpu;          /* a streamed placement: the cap is below the resident size */
        pe->oom_retry_attempts = gpu ? 3 : 0; /* on a device, failures fall back and redo */
    }
    canvas_image img = {0};
    char path[4096];
    test_path(path, sizeof path, "golden/cases/prompt-edit-plus-one/image0.png");
    CHECK_OK(canvas_image_load(path, &img));
    if (!pe || !img.pixels) return;
    const char *text = "Make the sky purple";
    float *want = NULL, *got;
    int64_t lw = 0, l, d;
    CHECK_OK(prompt_encode(pe, pool, text, &img, 1, NULL, NULL, &want, &lw, &d));
    size_t base = mem_total_current();
    uint64_t n = 1, failed = 0, survived = 0;
    for (;; n += stride) {
        /* each encoding plans afresh, so that the sweep reaches the dry runs' allocations too */
        memset(pe->placements, 0, sizeof pe->placements);
        mem_fault_plan plan = {n, persistent, -1};
        mem_fault_arm(&plan);
        got = NULL;
        canvas_status st = prompt_encode(pe, pool, text, &img, 1, NULL, NULL, &got, &l, &d);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        int same = st == CANVAS_OK && got && l == lw && !memcmp(got, want, (size_t)(l * d) * sizeof *got);
        mem_free(got);
        if (hits == 0) {
            CHECK_MSG(same, "N=%llu: the undisturbed encoding differs", (unsigned long long)n);
            break;
        }
        if (st == CANVAS_OK) {
            survived++;
            CHECK_MSG(same, "N=%llu: survived the failure with other embeddings", (unsigned long long)n);
        } else {
            failed++;
            CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY, "N=%llu: status %d, wanted out of memory", (unsigned long long)n,
                      (int)st);
        }
        /* nothing left behind (less is allowed: when even the weights' way back to host memory
         * failed, they are nowhere until the next encoding places them again) */
        CHECK_MSG(mem_total_current() <= base, "N=%llu: %zu bytes left allocated", (unsigned long long)n,
                  mem_total_current() - base);
        status_clear();
    }
    printf("  fail-at-N%s over one encoding%s, every %llu%s N: about %llu allocations; %llu failed cleanly, %llu "
           "survived with the same embeddings\n",
           persistent ? "+" : "", gpu ? " on a capped device" : "", (unsigned long long)stride,
           stride == 1 ? "st" : "th", (unsigned long long)(n - 1), (unsigned long long)failed,
           (unsigned long long)survived);
    CHECK_MSG(mem_total_current() == base, "after the sweep: %zu bytes, %zu before", mem_total_current(), base);
    if (gpu) CHECK(mem_device_live_blocks(gpu) == 0);
    mem_device_destroy(gpu);
    CHECK(n > 20);
    mem_free(want);
    canvas_image_free(&img);
    prompt_encoder_close(pe);
}

/* Every allocation on the host; on a device (each encoding there dry-runs the forward for
 * its plan, so a run costs several) every 5th, which still reaches each kind of site. */
static void test_fail_at_n(void) { fail_at_every_allocation(0, 0, 1); }
static void test_fail_at_n_persistent(void) { fail_at_every_allocation(1, 0, 1); }
static void test_fail_at_n_device(void) { fail_at_every_allocation(0, 4300031, 5); }
static void test_fail_at_n_device_persistent(void) { fail_at_every_allocation(1, 4300031, 5); }

/* On a capped device: the embeddings of host memory, the measured device peak of the
 * encoding equal to the dry run's prediction, fewer groups resident when the device is
 * smaller, and host memory when not even streaming fits. */
static void test_capped_device(void)
{
    prompt_encoder *pe = NULL;
    open_tiny(PROMPT_EDIT_PLUS, &pe);
    canvas_image img = {0};
    char path[4096];
    test_path(path, sizeof path, "golden/cases/prompt-edit-plus-one/image0.png");
    CHECK_OK(canvas_image_load(path, &img));
    if (!pe || !img.pixels) return;
    float *want = NULL, *got = NULL;
    int64_t lw = 0, l = 0, d = 0;
    CHECK_OK(prompt_encode(pe, pool, "a boat", &img, 1, NULL, NULL, &want, &lw, &d));
    size_t caps[2] = {64u << 20, 0};
    for (int run = 0; run < 2; run++) {
        mem_device *gpu = NULL;
        CHECK_OK(mem_device_create_capped("gpu", caps[run], &gpu));
        if (!gpu) break;
        pe->device = gpu;
        mem_device_reset_peaks(gpu);
        got = NULL;
        CHECK_OK(prompt_encode(pe, pool, "a boat", &img, 1, NULL, NULL, &got, &l, &d));
        mem_device_stats s;
        mem_device_get_stats(gpu, &s);
        printf("  cap %zu: %s; measured peak %zu\n", caps[run], pe->plan_line, s.peak_bytes);
        CHECK_MSG(s.peak_bytes == pe->predicted_device_peak, "measured %zu, predicted %llu", s.peak_bytes,
                  (unsigned long long)pe->predicted_device_peak);
        CHECK(s.current_bytes == 0); /* the weights leave the device afterwards */
        CHECK(got && l == lw && !memcmp(got, want, (size_t)(l * d) * sizeof *got));
        if (run == 0) {
            CHECK(pe->resident_groups == pe->total_groups);
            caps[1] = (size_t)pe->predicted_device_peak - 1; /* one byte short: a group fewer resident */
        } else {
            CHECK(pe->resident_groups >= 0 && pe->resident_groups < pe->total_groups);
        }
        /* the same shape on the same room again: the kept placement, no dry runs, the same
         * prediction, measured again */
        const int planned = pe->placements_planned, k = pe->resident_groups;
        const uint64_t predicted = pe->predicted_device_peak;
        mem_free(got);
        got = NULL;
        mem_device_reset_peaks(gpu);
        CHECK_OK(prompt_encode(pe, pool, "a boat", &img, 1, NULL, NULL, &got, &l, &d));
        mem_device_get_stats(gpu, &s);
        CHECK_MSG(pe->placements_planned == planned && pe->resident_groups == k &&
                      pe->predicted_device_peak == predicted && s.peak_bytes == predicted,
                  "again: %d searches (%d before), %d groups, measured %zu, predicted %llu", pe->placements_planned,
                  planned, pe->resident_groups, s.peak_bytes, (unsigned long long)pe->predicted_device_peak);
        CHECK(got && !memcmp(got, want, (size_t)(l * d) * sizeof *got));
        mem_free(got);
        pe->device = NULL;
        mem_device_destroy(gpu);
    }
    mem_device *tiny = NULL;
    CHECK_OK(mem_device_create_capped("gpu", 4096, &tiny));
    pe->device = tiny;
    got = NULL;
    CHECK_OK(prompt_encode(pe, pool, "a boat", &img, 1, NULL, NULL, &got, &l, &d));
    CHECK(pe->resident_groups == -1 && strstr(pe->plan_line, "in host memory") != NULL);
    CHECK(strstr(pe->plan_line, "even with every group streamed") != NULL);
    CHECK(got && l == lw && !memcmp(got, want, (size_t)(l * d) * sizeof *got));
    mem_free(got);
    pe->device = NULL;
    mem_device_destroy(tiny);
    mem_free(want);
    canvas_image_free(&img);
    prompt_encoder_close(pe);
}

static void test_refusals(void)
{
    prompt_encoder *pe = NULL;
    open_tiny(PROMPT_EDIT, &pe);
    if (!pe) return;
    float *e = NULL;
    int64_t l, d;
    CHECK_FAILS(prompt_encode(pe, pool, "x", NULL, 0, NULL, NULL, &e, &l, &d), CANVAS_ERR_USAGE, "exactly one image");
    CHECK(e == NULL);
    char *huge;
    CHECK_OK(mem_alloc((void **)&huge, PROMPT_MAX_BYTES + 2, MEM_SCRATCH));
    memset(huge, 'a', PROMPT_MAX_BYTES + 1);
    huge[PROMPT_MAX_BYTES + 1] = '\0';
    prompt_encoder_close(pe);
    open_tiny(PROMPT_TEXT_TO_IMAGE, &pe);
    CHECK_FAILS(prompt_encode(pe, pool, huge, NULL, 0, NULL, NULL, &e, &l, &d), CANVAS_ERR_USAGE, "65537 bytes");
    /* invalid UTF-8 is the tokenizer's refusal, naming the offset */
    CHECK(prompt_encode(pe, pool, "ok \xff", NULL, 0, NULL, NULL, &e, &l, &d) == CANVAS_ERR_INPUT);
    mem_free(huge);
    prompt_encoder_close(pe);
    /* a tokenizer whose special ids differ from the encoder's config: textenc-tiny's vocab is shifted */
    char tok[4096], enc[4096];
    test_path(tok, sizeof tok, "real-configs/qwen-image-edit-2511/tokenizer");
    test_path(enc, sizeof enc, "golden/models/textenc-tiny/text_encoder");
    pe = NULL;
    CHECK_FAILS(prompt_encoder_open(tok, enc, NULL, PROMPT_EDIT_PLUS, (quant_choice){QUANT_NONE, 0}, &pe),
                CANVAS_ERR_INPUT, "disagree");
    CHECK(pe == NULL);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    RUN(test_golden_one_image);
    RUN(test_golden_two_images_negative);
    RUN(test_styles);
    RUN(test_text_to_image);
    RUN(test_capped_device);
    RUN(test_refusals);
    RUN(test_fail_at_n);
    RUN(test_fail_at_n_persistent);
    RUN(test_fail_at_n_device);
    RUN(test_fail_at_n_device_persistent);
    thread_pool_destroy(pool);
    return check_summary();
}
