/* SPDX-License-Identifier: Apache-2.0 */
/* test_scheduler.c — the flow-match Euler schedule against diffusers (the `schedule` and
 * `schedule-lightning` golden cases, every (steps, seq len) pair), the spec's reference
 * numbers, the Lightning config, the Euler step and bad input. */
#include <float.h>
#include <stdint.h>

#include "check.h"
#include "io/golden_case.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "pipeline/scheduler.h"
#include "pipeline/scheduler_case.h"

#define SCHEDULE_TOLERANCE 1e-6 /* relative, per value */

typedef struct comparison {
    const st_file *expected;
    int compared;
    int exact_values, values;
    double worst;
} comparison;

static canvas_status compare_sink(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    comparison *cmp = ctx;
    const st_tensor *t = st_find(cmp->expected, name);
    CHECK_MSG(t != NULL, "computed '%s' is not in expected.safetensors", name);
    if (!t) return CANVAS_OK;
    CHECK_MSG(t->ndim == ndim && ndim == 1 && t->shape[0] == shape[0] && t->type == DTYPE_F32, "'%s': shape", name);
    if (t->shape[0] != shape[0] || t->type != DTYPE_F32) return CANVAS_OK;
    const float *want = t->data;
    for (int64_t i = 0; i < shape[0]; i++) {
        double diff = fabs((double)data[i] - (double)want[i]);
        double rel = want[i] != 0 ? diff / fabs((double)want[i]) : diff;
        CHECK_MSG(rel <= SCHEDULE_TOLERANCE, "'%s'[%lld]: %.9g vs %.9g (relative %.2e)", name, (long long)i,
                  (double)data[i], (double)want[i], rel);
        if (rel > cmp->worst) cmp->worst = rel;
        cmp->exact_values += data[i] == want[i];
        cmp->values++;
    }
    cmp->compared++;
    return CANVAS_OK;
}

static void run_case(const char *name)
{
    char dir[4096], path[4200];
    test_path(dir, sizeof dir, "golden/cases");
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    char op[32] = "";
    CHECK_OK(golden_case_op(dir, op, sizeof op));
    CHECK(!strcmp(op, "schedule"));
    st_file *expected = NULL;
    CHECK_OK(st_open(path, &expected));
    if (!expected) return;
    comparison cmp = {.expected = expected};
    CHECK_OK(schedule_case_run(dir, compare_sink, &cmp));
    CHECK_MSG(cmp.compared == expected->n_tensors, "%s: compared %d of %d tensors", name, cmp.compared,
              expected->n_tensors);
    printf("  %-20s %d tensors, %d of %d values bit-exact, worst relative error %.3e\n", name, cmp.compared,
           cmp.exact_values, cmp.values, cmp.worst);
    st_close(expected);
}

static void test_golden_schedule(void) { run_case("schedule"); }
static void test_golden_schedule_lightning(void) { run_case("schedule-lightning"); }

static void test_lightning_config_is_the_case_config(void)
{
    char path[4096];
    test_path(path, sizeof path, "golden/cases/schedule-lightning/case.json");
    json_t *root = NULL;
    CHECK_OK(json_file_load(path, &root));
    if (!root) return;
    scheduler_config from_case, preset;
    CHECK_OK(scheduler_config_from_json(json_object_get(root, "scheduler_config"), path, "scheduler_config",
                                          &from_case));
    json_decref(root);
    scheduler_config_lightning(&preset);
    CHECK(from_case.use_dynamic_shifting == preset.use_dynamic_shifting);
    CHECK(from_case.base_shift == preset.base_shift && from_case.max_shift == preset.max_shift);
    CHECK(from_case.base_image_seq_len == preset.base_image_seq_len);
    CHECK(from_case.max_image_seq_len == preset.max_image_seq_len);
    CHECK(from_case.shift_terminal == preset.shift_terminal && preset.shift_terminal == 0);
    CHECK(from_case.time_shift == preset.time_shift && from_case.shift == preset.shift);
    CHECK(from_case.num_train_timesteps == preset.num_train_timesteps);
    /* mu is ln 3 for every size: the constant shift 3 */
    CHECK_NEAR(scheduler_mu(&preset, 4096), log(3.0), 1e-15);
    CHECK_NEAR(scheduler_mu(&preset, 17), log(3.0), 1e-15);
}

/* The Qwen-Image scheduler config of the edit-tiny pipeline (= the real one). */
static void qwen_config(scheduler_config *c)
{
    char path[4096];
    test_path(path, sizeof path, "golden/models/edit-tiny/scheduler/scheduler_config.json");
    CHECK_OK(scheduler_config_load(path, c));
}

/* spec/qwen-image-transformer.md §4.5 reference numbers (6 decimals). */
static void test_spec_reference_numbers(void)
{
    scheduler_config c;
    qwen_config(&c);
    CHECK_NEAR(scheduler_mu(&c, 4096), 0.693548387, 1e-9);
    static const double want[41] = {
        1.0,      0.986964, 0.973593, 0.959875, 0.945796, 0.931341, 0.916495, 0.901242, 0.885566, 0.869447, 0.852868,
        0.835808, 0.818247, 0.800160, 0.781525, 0.762317, 0.742508, 0.722070, 0.700973, 0.679183, 0.656666, 0.633386,
        0.609303, 0.584374, 0.558554, 0.531795, 0.504044, 0.475245, 0.445338, 0.414258, 0.381933, 0.348288, 0.313241,
        0.276701, 0.238571, 0.198745, 0.157108, 0.113533, 0.067881, 0.020000, 0.0};
    float sigmas[41], timesteps[40];
    CHECK_OK(scheduler_sigmas(&c, 40, scheduler_mu(&c, 4096), sigmas, timesteps));
    for (int i = 0; i < 41; i++) CHECK_NEAR(sigmas[i], want[i], 6e-7);
    for (int i = 0; i < 40; i++) CHECK(timesteps[i] == sigmas[i] * 1000.0f);

    /* 32x32 output, 2 steps, L = 4: mu 0.48730, sigmas [1, 0.02, 0] */
    float two[3], t2[2];
    CHECK_NEAR(scheduler_mu(&c, 4), 0.48730, 1e-5);
    CHECK_OK(scheduler_sigmas(&c, 2, scheduler_mu(&c, 4), two, t2));
    CHECK_NEAR(two[0], 1.0, 0);
    CHECK_NEAR(two[1], 0.02, 1e-7);
    CHECK(two[2] == 0.0f);

    /* the default config (no dynamic shift, shift 1): plain linspace */
    scheduler_config plain;
    scheduler_config_default(&plain);
    CHECK_OK(scheduler_sigmas(&plain, 2, 0.0, two, t2));
    CHECK(two[0] == 1.0f && two[1] == 0.5f && two[2] == 0.0f);
    CHECK(t2[0] == 1000.0f && t2[1] == 500.0f);
    /* one step: [1, 0] */
    CHECK_OK(scheduler_sigmas(&plain, 1, 0.0, two, t2));
    CHECK(two[0] == 1.0f && two[1] == 0.0f && t2[0] == 1000.0f);
}

static void test_static_shift_and_invert(void)
{
    scheduler_config c;
    scheduler_config_default(&c);
    c.shift = 3.0;
    float s[5], t[4];
    CHECK_OK(scheduler_sigmas(&c, 4, 0.0, s, t));
    /* shift·σ / (1 + (shift-1)·σ) on linspace(1, 0.25, 4) */
    const double lin[4] = {1.0, 0.75, 0.5, 0.25};
    for (int i = 0; i < 4; i++) CHECK_NEAR(s[i], 3 * lin[i] / (1 + 2 * lin[i]), 1e-7);
    CHECK(s[4] == 0.0f);
    c.invert_sigmas = true;
    CHECK_OK(scheduler_sigmas(&c, 4, 0.0, s, t));
    for (int i = 0; i < 4; i++) CHECK_NEAR(s[i], 1 - 3 * lin[i] / (1 + 2 * lin[i]), 1e-7);
    CHECK(s[4] == 1.0f);
    /* linear time shift: mu / (mu + 1/σ - 1) */
    scheduler_config lin_cfg;
    scheduler_config_default(&lin_cfg);
    lin_cfg.use_dynamic_shifting = true;
    lin_cfg.time_shift = TIME_SHIFT_LINEAR;
    CHECK_OK(scheduler_sigmas(&lin_cfg, 4, 2.0, s, t));
    for (int i = 0; i < 4; i++) CHECK_NEAR(s[i], 2.0 / (2.0 + 1 / lin[i] - 1), 1e-7);
}

static void test_euler_step(void)
{
    float x[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float v[4] = {0.25f, 1.0f, -4.0f, 0.0f};
    scheduler_step(x, v, 4, 0.75f, 0.5f);
    CHECK(x[0] == 1.0f - 0.0625f && x[1] == -2.25f && x[2] == 1.5f && x[3] == 3.0f);
    /* rounding as torch: the difference, then the product, then the sum, each in float32 */
    float y[1] = {0.1f};
    const float w[1] = {0.3f};
    const float sigma = 0.9f, next = 0.7f;
    float dt = next - sigma;
    volatile float product = dt * w[0];
    float want = y[0] + product;
    scheduler_step(y, w, 1, sigma, next);
    CHECK(y[0] == want);
    /* a full schedule of steps on v = x1 - x0 walks x from noise to the data exactly (in exact arithmetic) */
    scheduler_config c;
    qwen_config(&c);
    float sigmas[9], timesteps[8];
    CHECK_OK(scheduler_sigmas(&c, 8, scheduler_mu(&c, 1024), sigmas, timesteps));
    const float noise = 0.8f, data = -0.3f;
    float z[1] = {noise};
    const float velocity[1] = {noise - data};
    for (int i = 0; i < 8; i++) scheduler_step(z, velocity, 1, sigmas[i], sigmas[i + 1]);
    CHECK_NEAR(z[0], data, 1e-6);
}

static void test_bad_input(void)
{
    scheduler_config c;
    scheduler_config_default(&c);
    float s[2], t[1];
    CHECK_FAILS(scheduler_sigmas(&c, 0, 0.0, s, t), CANVAS_ERR_USAGE, "steps");
    c.use_karras_sigmas = true;
    CHECK_FAILS(scheduler_sigmas(&c, 1, 0.0, s, t), CANVAS_ERR_UNSUPPORTED, "karras");
    /* the Qwen-Image schedule at a huge image (mu 53: 16384 x 16384) rounds every sigma to 1:
     * refused, not a NaN schedule; the largest mu that still works gives finite sigmas */
    {
        scheduler_config q;
        scheduler_config_default(&q);
        q.use_dynamic_shifting = true;
        q.shift_terminal = 0.02;
        float qs[3], qt[2];
        CHECK_FAILS(scheduler_sigmas(&q, 2, 53.3, qs, qt), CANVAS_ERR_USAGE, "undefined at this image size");
        CHECK_OK(scheduler_sigmas(&q, 2, 10.0, qs, qt));
        CHECK(isfinite(qs[0]) && isfinite(qs[1]) && qs[2] == 0.0f);
    }

    json_t *object = json_pack("{s:s}", "time_shift_type", "cubic");
    CHECK_FAILS(scheduler_config_from_json(object, "x.json", "scheduler_config", &c), CANVAS_ERR_INPUT,
                "time_shift_type");
    json_decref(object);
    object = json_pack("{s:i,s:i}", "base_image_seq_len", 300, "max_image_seq_len", 200);
    CHECK_FAILS(scheduler_config_from_json(object, "x.json", "scheduler_config", &c), CANVAS_ERR_INPUT,
                "max_image_seq_len");
    json_decref(object);
    object = json_pack("{s:s}", "_class_name", "AutoencoderKLQwenImage");
    CHECK_FAILS(scheduler_config_from_json(object, "x.json", "scheduler_config", &c), CANVAS_ERR_INPUT,
                "FlowMatchEulerDiscreteScheduler");
    json_decref(object);
    CHECK_FAILS(scheduler_config_from_json(NULL, "x.json", "scheduler_config", &c), CANVAS_ERR_INPUT,
                "scheduler_config");

    char dir[4096];
    CHECK_FAILS(schedule_case_run(test_path(dir, sizeof dir, "golden/cases/vae-32x48-encode"), compare_sink, NULL), CANVAS_ERR_UNSUPPORTED, "is not schedule");
}

int main(void)
{
    json_use_canvas_allocator();
    RUN(test_golden_schedule);
    RUN(test_golden_schedule_lightning);
    RUN(test_lightning_config_is_the_case_config);
    RUN(test_spec_reference_numbers);
    RUN(test_static_shift_and_invert);
    RUN(test_euler_step);
    RUN(test_bad_input);
    return check_summary();
}
