/* SPDX-License-Identifier: Apache-2.0 */
/* test_dit_memory.c — the transformer under the memory manager: the same forward, bit for
 * bit, with no cap, with a cap that holds everything, with every resident prefix k of a
 * streamed model, and with a cap that holds only the double buffer; the measured device
 * peak under the cap each time; the dry run's peaks per class equal to the real run's;
 * the planner's choice; out of memory at every allocation while streaming.
 *
 * Models: the golden tiny ones (2 blocks, F32 and BF16) and a 6-block random model of the
 * same width written here (tests/dit_random_model.h), so that prefixes k = 0..6 differ. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dit_random_model.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"

static thread_pool *pool;
static char tmp_dir[256];

/* ---- one run under one plan ------------------------------------------------------------ */

typedef struct plan_run {
    canvas_status status;
    mem_device_stats stats;  /* the device's, after the run (peaks since it was created) */
    size_t arena_bytes;
} plan_run;

/* Place `model` with `k` resident blocks on a fresh capped (or measure) device of `cap`
 * bytes, run one forward (or `forwards` in a row), then give the device back. */
static plan_run run_plan(qwen_dit_model *model, int measure, size_t cap, int k, const qwen_dit_inputs *in, float *out,
                         int forwards)
{
    plan_run r = {0};
    mem_device *device = NULL;
    r.status = measure ? mem_device_create_measure("gpu", cap, &device) : mem_device_create_capped("gpu", cap, &device);
    if (r.status != CANVAS_OK) return r;
    r.status = qwen_dit_place(model, device, k);
    if (r.status == CANVAS_OK) r.arena_bytes = qwen_dit_forward_arena_bytes(model, OP_BACKEND_CPU(pool), in->n_img, in->n_txt);
    for (int i = 0; i < forwards && r.status == CANVAS_OK; i++) r.status = qwen_dit_forward(model, OP_BACKEND_CPU(pool), in, NULL, out);
    canvas_status back = qwen_dit_place(model, NULL, QWEN_DIT_ALL_BLOCKS);
    CHECK_OK(back);
    mem_device_get_stats(device, &r.stats);
    CHECK_MSG(r.stats.current_bytes == 0 && mem_device_live_blocks(device) == 0, "%zu bytes left on the device",
              r.stats.current_bytes);
    mem_device_destroy(device);
    return r;
}

/* The smallest cap under which plan k's dry run fits (the measure device runs the capped
 * pool's allocator, so this is the capped pool's answer too). */
static size_t smallest_cap(qwen_dit_model *model, int k, const qwen_dit_inputs *in)
{
    size_t low = 1, high = (size_t)1 << 32; /* fits at high, not at low - 1 */
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        plan_run r = run_plan(model, 1, mid, k, in, NULL, 1);
        if (r.status == CANVAS_OK) high = mid;
        else low = mid + 1;
    }
    return low;
}

/* Everything about plan k at cap `cap`: the real run's output equals `reference` bit for
 * bit, its device peak is under the cap, and the dry run's peaks per class, total peak,
 * allocation counts and bytes copied in equal the real run's. */
static void check_plan(const char *what, qwen_dit_model *model, size_t cap, int k, const qwen_dit_inputs *in,
                       const float *reference, float *out, size_t out_bytes, int forwards)
{
    memset(out, 0xff, out_bytes);
    plan_run real = run_plan(model, 0, cap, k, in, out, forwards);
    CHECK_MSG(real.status == CANVAS_OK, "%s k=%d cap %zu: %s", what, k, cap, canvas_last_error());
    if (real.status != CANVAS_OK) return;
    CHECK_MSG(memcmp(out, reference, out_bytes) == 0, "%s k=%d: the output differs from the unplaced run", what, k);
    CHECK_MSG(real.stats.peak_bytes <= cap, "%s k=%d: device peak %zu over the cap %zu", what, k, real.stats.peak_bytes,
              cap);
    plan_run dry = run_plan(model, 1, cap, k, in, NULL, forwards);
    CHECK_OK(dry.status);
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        CHECK_MSG(dry.stats.classes[c].peak_bytes == real.stats.classes[c].peak_bytes,
                  "%s k=%d %s: dry run %zu, real %zu", what, k, mem_class_name((mem_class)c),
                  dry.stats.classes[c].peak_bytes, real.stats.classes[c].peak_bytes);
        CHECK(dry.stats.classes[c].allocations == real.stats.classes[c].allocations);
    }
    CHECK(dry.stats.peak_bytes == real.stats.peak_bytes);
    CHECK_MSG(dry.stats.bytes_in == real.stats.bytes_in, "%s k=%d: dry run copies %llu bytes in, real %llu", what, k,
              (unsigned long long)dry.stats.bytes_in, (unsigned long long)real.stats.bytes_in);
    /* and the peaks are what the sizes promise */
    CHECK(real.stats.classes[MEM_WEIGHTS].peak_bytes == qwen_dit_weight_device_bytes(model, k));
    CHECK(real.stats.classes[MEM_ACTIVATIONS].peak_bytes == real.arena_bytes);
    printf("  %-10s k=%d cap %8zu: device peak %8zu (weights %8zu, activations %6zu), copied in %8llu\n", what, k, cap,
           real.stats.peak_bytes, real.stats.classes[MEM_WEIGHTS].peak_bytes,
           real.stats.classes[MEM_ACTIVATIONS].peak_bytes, (unsigned long long)real.stats.bytes_in);
}

/* Every plan of a model: the reference unplaced (cpu device, no cap), a cap that holds
 * everything, the smallest cap of each prefix k (planner and explicit), and the double
 * buffer only. */
static void check_every_plan(const char *what, qwen_dit_model *model, const qwen_dit_inputs *in)
{
    const int layers = model->config.num_layers;
    const size_t out_bytes = (size_t)(in->n_img * qwen_dit_output_channels(&model->config)) * sizeof(float);
    float *reference = NULL, *out = NULL;
    CHECK_OK(mem_alloc((void **)&reference, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&out, out_bytes, MEM_SCRATCH));
    if (!reference || !out) goto done;
    CHECK(qwen_dit_device(model) == mem_device_cpu());
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), in, NULL, reference));

    /* a cap that holds everything: the planner keeps every block */
    const size_t roomy = 64u << 20;
    int k = -1;
    CHECK_OK(qwen_dit_plan_resident_blocks(model, OP_BACKEND_CPU(pool), in, roomy, &k));
    CHECK(k == layers);
    check_plan(what, model, roomy, layers, in, reference, out, out_bytes, 1);

    size_t previous_cap = 0;
    for (k = 0; k <= layers; k++) {
        size_t cap = smallest_cap(model, k, in);
        /* one byte less does not fit: the capped pool refuses too, and leaves nothing */
        plan_run tight = run_plan(model, 0, cap - 1, k, in, out, 1);
        CHECK_MSG(tight.status == CANVAS_ERR_OUT_OF_MEMORY, "%s k=%d cap %zu - 1: %s", what, k, cap,
                  canvas_status_name(tight.status));
        CHECK(cap >= previous_cap); /* more resident blocks never need less */
        previous_cap = cap;
        /* the planner keeps the largest prefix that fits this cap: at least k, and the
         * next one would not fit */
        int chosen = -1;
        CHECK_OK(qwen_dit_plan_resident_blocks(model, OP_BACKEND_CPU(pool), in, cap, &chosen));
        CHECK_MSG(chosen >= k, "%s: the planner chose %d blocks at the smallest cap of %d", what, chosen, k);
        if (chosen >= k && chosen < layers) CHECK(smallest_cap(model, chosen + 1, in) > cap);
        /* k == 0 is the double buffer alone; run it twice to cross the wrap-around prefetch */
        check_plan(what, model, cap, k, in, reference, out, out_bytes, k == 0 ? 2 : 1);
        if (chosen != k) check_plan(what, model, cap, chosen, in, reference, out, out_bytes, 1);
    }
done:
    mem_free(reference);
    mem_free(out);
}

/* ---- the golden cases -------------------------------------------------------------------- */

static void check_golden_case(const char *name)
{
    char case_dir[4096];
    char relative[256];
    snprintf(relative, sizeof relative, "golden/cases/%s", name);
    test_path(case_dir, sizeof case_dir, relative);
    qwen_dit_case *dc = NULL;
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_case_open(case_dir, &dc));
    if (dc) CHECK_OK(qwen_dit_load(dc->model_dir, &model));
    if (model) check_every_plan(name, model, &dc->inputs);
    qwen_dit_free(model);
    qwen_dit_case_free(dc);
}

static void test_golden_two_refs(void) { check_golden_case("dit-edit-two-refs"); }
static void test_golden_bf16(void) { check_golden_case("dit-bf16"); }

/* ---- a deeper random model ----------------------------------------------------------------- */

typedef struct random_inputs {
    float hidden[48 * 64];
    float text[7 * 32];
    uint8_t mask[7];
    qwen_dit_image_shape shapes[2];
    qwen_dit_inputs in;
} random_inputs;

static void make_inputs(random_inputs *r)
{
    dit_random_writer rng = {.rng = 99u};
    for (size_t i = 0; i < sizeof r->hidden / sizeof r->hidden[0]; i++) r->hidden[i] = dit_random_uniform(&rng);
    for (size_t i = 0; i < sizeof r->text / sizeof r->text[0]; i++) r->text[i] = dit_random_uniform(&rng);
    for (int i = 0; i < 7; i++) r->mask[i] = i < 5; /* two padded text tokens */
    r->shapes[0] = (qwen_dit_image_shape){1, 4, 6};
    r->shapes[1] = (qwen_dit_image_shape){1, 6, 4};
    r->in = (qwen_dit_inputs){.hidden_states = r->hidden, .n_img = 48, .hidden_channels = 64,
                         .encoder_hidden_states = r->text, .n_txt = 7, .text_dim = 32, .text_mask = r->mask,
                         .timestep = 0.7f, .img_shapes = r->shapes, .n_images = 2};
}

static canvas_status load_deep_model(qwen_dit_model **out)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/transformer", tmp_dir);
    return qwen_dit_load(dir, out);
}

static void test_deep_model_every_prefix(void)
{
    random_inputs *r = NULL;
    CHECK_OK(mem_calloc((void **)&r, 1, sizeof *r, MEM_SCRATCH));
    qwen_dit_model *model = NULL;
    CHECK_OK(load_deep_model(&model));
    if (r && model) {
        CHECK(model->config.num_layers == 6);
        make_inputs(r);
        check_every_plan("random-6", model, &r->in);
    }
    qwen_dit_free(model);
    mem_free(r);
}

/* ---- out of memory at every allocation while streaming ------------------------------------ */

/* Load the deep model, place it on `device` with 2 resident blocks, run a forward. */
static canvas_status streamed_round_trip(mem_device *device, const qwen_dit_inputs *in, float *out)
{
    qwen_dit_model *model = NULL;
    canvas_status st = load_deep_model(&model);
    if (st == CANVAS_OK) st = qwen_dit_place(model, device, 2);
    if (st == CANVAS_OK) st = qwen_dit_forward(model, OP_BACKEND_CPU(pool), in, NULL, out);
    qwen_dit_free(model);
    return st;
}

/* N = 1, 2, ... (transient and persistent, every class) until a run completes: each ends
 * OK or out of memory, with every host class and the device back where they were; the
 * completed run's output equals an undisturbed one. */
static void test_streaming_fail_at_every_allocation(void)
{
    random_inputs *r = NULL;
    float *want = NULL, *got = NULL;
    mem_device *device = NULL;
    const size_t out_bytes = 48 * 64 * sizeof(float);
    CHECK_OK(mem_calloc((void **)&r, 1, sizeof *r, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&want, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&got, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_device_create_capped("gpu", 16u << 20, &device));
    if (!r || !want || !got || !device) goto done;
    make_inputs(r);
    CHECK_OK(streamed_round_trip(device, &r->in, want));
    for (int persistent = 0; persistent <= 1; persistent++) {
        int completed = 0, n, failures = 0;
        for (n = 1; n < 100000 && !completed; n++) {
            mem_class_stats before[MEM_CLASS_COUNT], after;
            for (int c = 0; c < MEM_CLASS_COUNT; c++) mem_get_stats((mem_class)c, &before[c]);
            mem_fault_plan plan = {.nth = (uint64_t)n, .persistent = persistent, .only_class = -1};
            memset(got, 0, out_bytes);
            mem_fault_arm(&plan);
            canvas_status st = streamed_round_trip(device, &r->in, got);
            mem_fault_disarm();
            CHECK_MSG(st == CANVAS_OK || st == CANVAS_ERR_OUT_OF_MEMORY, "N=%d%s: %s: %s", n, persistent ? "+" : "",
                      canvas_status_name(st), canvas_last_error());
            failures += st != CANVAS_OK;
            for (int c = 0; c < MEM_CLASS_COUNT; c++) {
                mem_get_stats((mem_class)c, &after);
                CHECK_MSG(after.current_bytes == before[c].current_bytes, "N=%d%s: host %s: %zu bytes left behind", n,
                          persistent ? "+" : "", mem_class_name((mem_class)c),
                          after.current_bytes - before[c].current_bytes);
            }
            CHECK_MSG(mem_device_live_blocks(device) == 0, "N=%d%s: blocks left on the device", n, persistent ? "+" : "");
            completed = st == CANVAS_OK;
        }
        CHECK(completed && failures == n - 2);
        CHECK(memcmp(got, want, out_bytes) == 0);
        printf("  streaming fail-at-N%s (every class): %d allocations failed one by one, each unwound; completed "
               "at N = %d\n",
               persistent ? "+" : "", failures, n - 1);
    }
done:
    mem_device_destroy(device);
    mem_free(r);
    mem_free(want);
    mem_free(got);
}

/* A model that does not fit even streamed: a clear out-of-memory naming what it needs. */
static void test_planner_refuses_too_small(void)
{
    random_inputs *r = NULL;
    qwen_dit_model *model = NULL;
    CHECK_OK(mem_calloc((void **)&r, 1, sizeof *r, MEM_SCRATCH));
    CHECK_OK(load_deep_model(&model));
    if (r && model) {
        make_inputs(r);
        int k = 7;
        CHECK_FAILS(qwen_dit_plan_resident_blocks(model, OP_BACKEND_CPU(pool), &r->in, 100000, &k), CANVAS_ERR_OUT_OF_MEMORY,
                    "even with every block streamed");
        CHECK(k == -1);
        CHECK_FAILS(qwen_dit_place(model, mem_device_cpu(), 7), CANVAS_ERR_USAGE, "the model has 6 blocks");
        float out[48 * 64];
        CHECK_FAILS(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &r->in, NULL, out), CANVAS_ERR_USAGE, "not placed");
        CHECK_OK(qwen_dit_place(model, NULL, QWEN_DIT_ALL_BLOCKS));
        CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &r->in, NULL, out));
    }
    qwen_dit_free(model);
    mem_free(r);
}

static void remove_tmp(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/transformer", tmp_dir);
    dit_random_model_remove(path);
    rmdir(tmp_dir);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/canvas_test_dit_memory_XXXXXX");
    if (!mkdtemp(tmp_dir) || thread_pool_create(2, &pool) != CANVAS_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s/transformer", tmp_dir);
    mkdir(dir, 0700);
    dit_random_shape shape = {.layers = 6, .heads = 4, .head_dim = 16, .joint_dim = 32, .in_channels = 64,
                              .out_channels = 16, .matrix_type = DTYPE_BF16, .seed = 7};
    canvas_status st = dit_random_model_write(dir, &shape);
    if (st != CANVAS_OK) {
        fprintf(stderr, "writing the random model: %s\n", canvas_last_error());
        return 1;
    }
    RUN(test_golden_two_refs);
    RUN(test_golden_bf16);
    RUN(test_deep_model_every_prefix);
    RUN(test_planner_refuses_too_small);
    RUN(test_streaming_fail_at_every_allocation);
    remove_tmp();
    thread_pool_destroy(pool);
    return check_summary();
}
