/* SPDX-License-Identifier: Apache-2.0 */
/* test_fallback_chain.c — the fallback chain when the device shrinks under a run (issue 13):
 * another process takes device memory between two steps, or while the transformer is being
 * placed. The edit-cfg golden case (true CFG, 3 steps) on a 16 MiB capped device planned
 * "full" (both bf16 blocks resident, 1.53 MiB), then the cap drops to 1 MiB: no plan in bf16
 * fits (streaming every block needs as much as keeping both, two 1-block buffers), so with
 * quantising allowed the run goes down the chain (fp8, then nf4, or the preference list's
 * order), says so in one fallback line that the profiler keeps for the report, and completes;
 * without it, it ends in an out-of-memory with nothing left on the device.
 *
 * Checked: the steps before the drop are bit-identical to the undisturbed run (completed steps
 * are never redone in another format); the image is within the lower format's error bound of
 * the undisturbed one (tests/quant_bounds.h, relative to the largest value); the weight format
 * the run ended in; the fallback lines. And a cap moved between two runs of one open model
 * re-plans before the second (no out-of-memory needed), both ways. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mem/mem_device_impl.h"
#include "mem/mem_profiler.h"
#include "ops/threadpool.h"
#include "pipeline/edit.h"
#include "pipeline/edit_case.h"
#include "plan/plan.h"
#include "quant_bounds.h"

#define MiB ((size_t)1024 * 1024)
#define MAX_TENSORS 8

static thread_pool *pool;

/* ---- what a run gives ----------------------------------------------------------------------- */

typedef struct captured {
    int n;
    char names[MAX_TENSORS][32];
    float *data[MAX_TENSORS];
    size_t count[MAX_TENSORS];
    mem_device *shrink_after_step0; /* lower this device's cap once step 1's latents are in */
} captured;

static canvas_status capture(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    captured *c = ctx;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (c->n == MAX_TENSORS) return status_fail(CANVAS_ERR_INTERNAL, "more than %d tensors", MAX_TENSORS);
    TRY(mem_alloc((void **)&c->data[c->n], n * sizeof(float), MEM_SCRATCH));
    memcpy(c->data[c->n], data, n * sizeof(float));
    snprintf(c->names[c->n], sizeof c->names[c->n], "%s", name);
    c->count[c->n++] = n;
    /* "another process takes device memory": between step 1 and step 2 */
    if (c->shrink_after_step0 && !strcmp(name, "latents.step0")) TRY(mem_device_set_cap(c->shrink_after_step0, 1 * MiB));
    return CANVAS_OK;
}

static void captured_free(captured *c)
{
    for (int i = 0; i < c->n; i++) mem_free(c->data[i]);
    c->n = 0;
}

static const float *tensor(const captured *c, const char *name, size_t *count)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name)) {
            *count = c->count[i];
            return c->data[i];
        }
    return NULL;
}

/* max|a - b| / max|b| of one captured tensor of each run; INFINITY when either lacks it. */
static double relative_difference(const captured *a, const captured *b, const char *name)
{
    size_t na = 0, nb = 0;
    const float *x = tensor(a, name, &na), *y = tensor(b, name, &nb);
    if (!x || !y || na != nb) return INFINITY;
    double worst = 0, largest = 0;
    for (size_t i = 0; i < na; i++) {
        const double d = fabs((double)x[i] - y[i]);
        if (!(d <= worst)) worst = d;
        if (fabs(y[i]) > largest) largest = fabs(y[i]);
    }
    return largest > 0 ? worst / largest : worst;
}

static double bound_of(const char *format)
{
    for (int i = 0; i < QUANT_BOUNDS_COUNT; i++)
        if (!strcmp(quant_bounds[i].name, format)) return quant_bounds[i].limit;
    return 0;
}

/* ---- a device that shrinks while the transformer is placed --------------------------------- */

/* A capped device whose table is copied with alloc_block wrapped: the `weights_left`-th
 * weights allocation first lowers the cap to `new_cap` (so it and what follows fail as on a
 * GPU that another process just filled). One at a time (static). */
static struct {
    mem_device_ops ops;
    const mem_device_ops *original;
    int weights_left;
    size_t new_cap;
} shrinking;

static canvas_status shrinking_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    if (cls == MEM_WEIGHTS && shrinking.weights_left > 0 && --shrinking.weights_left == 0)
        TRY(shrinking.original->set_cap(device, shrinking.new_cap));
    return shrinking.original->alloc_block(device, cls, size, align, out);
}

static canvas_status shrinking_create(size_t cap, int weights_left, size_t new_cap, mem_device **out)
{
    TRY(mem_device_create_capped("shrinking", cap, out));
    shrinking.original = (*out)->ops;
    shrinking.ops = *(*out)->ops;
    shrinking.ops.alloc_block = shrinking_alloc;
    shrinking.weights_left = weights_left;
    shrinking.new_cap = new_cap;
    (*out)->ops = &shrinking.ops;
    return CANVAS_OK;
}

/* ---- the runs ------------------------------------------------------------------------------ */

static char case_dir[4096];

typedef struct outcome {
    canvas_status status;
    edit_plan_record record;
    int fallbacks;
    int lowered_to_fp8, lowered_to_nf4, placing; /* what the fallback lines say */
    int vae_encoded;                             /* a "vae-encode" phase ran */
} outcome;

static void say(void *ctx, const char *message)
{
    (void)ctx;
    printf("  %s\n", message);
}

static outcome run_case(mem_device *device, const edit_case_plan *plan_options, captured *out)
{
    outcome o;
    memset(&o, 0, sizeof o);
    edit_case_plan options = *plan_options;
    options.record = &o.record;
    profiler *prof = NULL;
    CHECK_OK(profiler_create(device, mem_device_cpu(), &prof));
    if (!prof) {
        o.status = CANVAS_ERR_INTERNAL;
        return o;
    }
    o.status = edit_case_run_planned(case_dir, pool, device, -1, &options, prof, say, capture, out);
    if (o.status != CANVAS_OK) printf("  ended: %s\n", canvas_last_error());
    status_clear();
    o.fallbacks = (int)profiler_fallbacks(prof);
    for (int i = 0; profiler_fallback_line(prof, i); i++) {
        const char *line = profiler_fallback_line(prof, i);
        o.lowered_to_fp8 += strstr(line, "lowered from the files' precision to fp8") != NULL;
        o.lowered_to_nf4 += strstr(line, "lowered from the files' precision to nf4") != NULL;
        o.placing += strstr(line, "placing the transformer") != NULL;
    }
    for (int i = 0; i < profiler_phase_count(prof); i++)
        o.vae_encoded |= !strcmp(profiler_phase_at(prof, i)->name, "vae-encode");
    profiler_destroy(prof);
    return o;
}

static const edit_case_plan full_quantize_allowed = {.strategy = PLAN_FULL, .allow_quantize = 1, .fallback_enabled = 1};

static captured undisturbed;

/* The cap drops to 1 MiB after step 1: step 2 runs out of memory, nothing in bf16 fits, fp8 does. */
static void test_cap_lowered_between_steps(void)
{
    mem_device *device;
    CHECK_OK(mem_device_create_capped("gpu", 16 * MiB, &device));
    captured got = {.shrink_after_step0 = device};
    outcome o = run_case(device, &full_quantize_allowed, &got);
    CHECK_OK(o.status);
    CHECK_MSG(o.record.weights.format == QUANT_FP8_E4M3, "ended in format %d, not fp8", (int)o.record.weights.format);
    CHECK_MSG(o.fallbacks == 1 && o.lowered_to_fp8 == 1, "%d fallback(s), %d saying fp8", o.fallbacks, o.lowered_to_fp8);
    size_t n0 = 0, n1 = 0;
    const float *mine = tensor(&got, "latents.step0", &n0), *theirs = tensor(&undisturbed, "latents.step0", &n1);
    CHECK(mine && theirs && n0 == n1 && memcmp(mine, theirs, n0 * sizeof(float)) == 0);
    const double image = relative_difference(&got, &undisturbed, "image");
    printf("  image vs the undisturbed run: %.4f relative (fp8 bound %.2f)\n", image, bound_of("fp8"));
    CHECK(image <= bound_of("fp8"));
    CHECK(relative_difference(&got, &undisturbed, "latents.step1") > 0); /* the steps after did run in fp8 */
    CHECK(mem_device_live_blocks(device) == 0);
    captured_free(&got);
    mem_device_destroy(device);
}

/* The same drop while the transformer's second block is being placed: the placement fails,
 * is re-planned down the chain (fp8) and every step runs in fp8. */
static void test_cap_lowered_during_placement(void)
{
    mem_device *device;
    CHECK_OK(shrinking_create(16 * MiB, 2, 1 * MiB, &device));
    captured got = {0};
    outcome o = run_case(device, &full_quantize_allowed, &got);
    CHECK_OK(o.status);
    CHECK(shrinking.weights_left == 0); /* the drop did happen during placement */
    CHECK(o.record.weights.format == QUANT_FP8_E4M3);
    CHECK_MSG(o.fallbacks == 1 && o.placing == 1, "%d fallback(s), %d while placing", o.fallbacks, o.placing);
    const double image = relative_difference(&got, &undisturbed, "image");
    printf("  image vs the undisturbed run: %.4f relative (fp8 bound %.2f)\n", image, bound_of("fp8"));
    CHECK(image <= bound_of("fp8") && image > 0);
    CHECK(mem_device_live_blocks(device) == 0);
    captured_free(&got);
    mem_device_destroy(device);
}

/* The preference list is the chain's order: nf4 named before fp8 is tried first. */
static void test_chain_follows_the_preference_list(void)
{
    mem_device *device;
    CHECK_OK(mem_device_create_capped("gpu", 16 * MiB, &device));
    captured got = {.shrink_after_step0 = device};
    edit_case_plan options = {.strategy = PLAN_AUTO, .allow_quantize = 1, .fallback_enabled = 1,
                              .preferred = {PLAN_FULL, PLAN_NF4, PLAN_FP8}, .n_preferred = 3};
    outcome o = run_case(device, &options, &got);
    CHECK_OK(o.status);
    CHECK(o.record.weights.format == QUANT_NF4 && o.lowered_to_nf4 == 1 && o.lowered_to_fp8 == 0);
    const double image = relative_difference(&got, &undisturbed, "image");
    printf("  image vs the undisturbed run: %.4f relative (nf4 bound %.2f)\n", image, bound_of("nf4"));
    CHECK(image <= bound_of("nf4"));
    captured_free(&got);
    mem_device_destroy(device);
}

/* Without --allow-quantize the chain stops at the stored format: out of memory, the device
 * emptied, no image. */
static void test_no_lower_format_without_permission(void)
{
    mem_device *device;
    CHECK_OK(mem_device_create_capped("gpu", 16 * MiB, &device));
    captured got = {.shrink_after_step0 = device};
    edit_case_plan options = full_quantize_allowed;
    options.allow_quantize = 0;
    outcome o = run_case(device, &options, &got);
    CHECK(o.status == CANVAS_ERR_OUT_OF_MEMORY);
    size_t n = 0;
    CHECK(tensor(&got, "image", &n) == NULL && tensor(&got, "latents.step0", &n) != NULL);
    CHECK(o.lowered_to_fp8 == 0 && o.lowered_to_nf4 == 0);
    CHECK(mem_device_live_blocks(device) == 0);
    captured_free(&got);
    mem_device_destroy(device);
}

/* A device too small for any plan from the start: refused before the references' VAE encode. */
static void test_refused_before_the_encode(void)
{
    mem_device *device;
    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &device));
    captured got = {0};
    edit_case_plan options = {.strategy = PLAN_AUTO, .fallback_enabled = 1};
    outcome o = run_case(device, &options, &got);
    CHECK(o.status == CANVAS_ERR_OUT_OF_MEMORY && !o.vae_encoded && got.n == 0 && o.fallbacks == 0);
    CHECK(mem_device_live_blocks(device) == 0);
    captured_free(&got);
    mem_device_destroy(device);
}

/* ---- memory that someone else takes or gives back between runs --------------------------- */

typedef struct plan_watch {
    char plan[1024];
    int fallbacks;
} plan_watch;

static void watch_plans(void *ctx, const canvas_progress *p)
{
    plan_watch *w = ctx;
    if (p->kind != CANVAS_PROGRESS_PLAN) return;
    if (!strncmp(p->message, "fallback:", 9)) w->fallbacks++;
    else snprintf(w->plan, sizeof w->plan, "%s", p->message);
}

/* Through the public API on one open model: the cap lowered between two edits re-plans before
 * the second (fp8 or nf4 taken at once: no out-of-memory, no fallback), raised again re-plans back to
 * the files' precision: the same image as the first edit, bit for bit. */
static void test_cap_moved_between_runs_replans(void)
{
    char model_dir[4096], path[4200];
    test_path(model_dir, sizeof model_dir, "golden/models/edit-tiny");
    canvas_options options;
    canvas_options_default(&options);
    options.vram_bytes = 16 * MiB;
    options.allow_quantize = 1;
    canvas_model *model = NULL;
    canvas_prompt prompt = {0};
    canvas_image image = {0}, out[3] = {{0}};
    CHECK_OK(canvas_open(model_dir, &options, &model));
    snprintf(path, sizeof path, "%s/inputs.safetensors", case_dir);
    CHECK_OK(canvas_prompt_load(path, &prompt));
    snprintf(path, sizeof path, "%s/image0.png", case_dir);
    CHECK_OK(canvas_image_load(path, &image));
    if (!model || !prompt.positive.values || !image.pixels) goto done;
    canvas_edit_params params;
    canvas_edit_params_default(&params);
    params.steps = 3;
    params.vae_area = 64 * 64;
    const uint64_t caps[3] = {16 * MiB, 1 * MiB, 16 * MiB};
    /* under 1 MiB: fp8 or nf4, whichever the time model ranks faster on this machine */
    const char *planned[3] = {"planner: full", "planner: ", "planner: full"};
    for (int run = 0; run < 3; run++) {
        plan_watch w = {{0}, 0};
        CHECK_OK(canvas_set_vram_limit(model, caps[run]));
        CHECK_OK(canvas_edit(model, &prompt, &image, 1, &params, watch_plans, &w, &out[run]));
        printf("  run %d under %llu bytes: %.90s...\n", run + 1, (unsigned long long)caps[run], strstr(w.plan, "planner:"));
        const int lowered = strstr(w.plan, "blocks resident (fp8)") || strstr(w.plan, "blocks resident (nf4)");
        CHECK_MSG(strstr(w.plan, planned[run]) != NULL && w.fallbacks == 0 && lowered == (run == 1),
                  "run %d: %d fallbacks, plan %s", run + 1, w.fallbacks, w.plan);
    }
    CHECK(out[0].pixels && out[2].pixels && !memcmp(out[0].pixels, out[2].pixels, (size_t)64 * 64 * 3));
    CHECK(out[1].pixels && memcmp(out[0].pixels, out[1].pixels, (size_t)64 * 64 * 3) != 0); /* fp8 differs */
done:
    for (int i = 0; i < 3; i++) canvas_image_free(&out[i]);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);
    canvas_close(model);
}

/* A strategy that quantises without the permission is refused when it is set (at open, or
 * by canvas_set_strategy, which then keeps the strategy it had), not at every run. */
static void test_quantising_strategy_needs_permission(void)
{
    char model_dir[4096];
    test_path(model_dir, sizeof model_dir, "golden/models/edit-tiny");
    canvas_options options;
    canvas_options_default(&options);
    options.vram_bytes = 16 * MiB;
    options.strategy = "fp8";
    canvas_model *model = NULL;
    CHECK_FAILS(canvas_open(model_dir, &options, &model), CANVAS_ERR_USAGE, "allow quantising");
    CHECK(model == NULL);
    options.strategy = "offload,nf4"; /* a list: the planner skips what it may not take */
    CHECK_OK(canvas_open(model_dir, &options, &model));
    if (!model) return;
    CHECK_FAILS(canvas_set_strategy(model, "nf4", 0), CANVAS_ERR_USAGE, "strategy nf4");
    CHECK_OK(canvas_set_strategy(model, "nf4", 1));
    canvas_close(model);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    mem_device *device;
    CHECK_OK(mem_device_create_capped("gpu", 16 * MiB, &device));
    outcome o = run_case(device, &full_quantize_allowed, &undisturbed);
    CHECK_OK(o.status);
    CHECK(o.record.weights.format == QUANT_NONE && o.record.resident_blocks == 2 && o.fallbacks == 0);
    mem_device_destroy(device);
    RUN(test_cap_lowered_between_steps);
    RUN(test_cap_lowered_during_placement);
    RUN(test_chain_follows_the_preference_list);
    RUN(test_no_lower_format_without_permission);
    RUN(test_cap_moved_between_runs_replans);
    RUN(test_refused_before_the_encode);
    RUN(test_quantising_strategy_needs_permission);
    captured_free(&undisturbed);
    thread_pool_destroy(pool);
    return check_summary();
}
