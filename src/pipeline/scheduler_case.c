/* SPDX-License-Identifier: Apache-2.0 */
/* scheduler_case.c — running a `schedule` golden case. */
#include "pipeline/scheduler_case.h"

#include <stdio.h>
#include <string.h>

#include "base/path.h"
#include "base/status.h"
#include "io/config_fields.h"
#include "mem/mem.h"
#include "pipeline/scheduler.h"

enum { MAX_STEPS = 10000, MAX_LIST = 64 };

/* A non-empty list of at most MAX_LIST distinct integers in [1, max]: each pair of the two
 * lists names its outputs (sigmas.S.L), so a value twice would write one name twice, after
 * all the work, and a long list would multiply the work. */
static canvas_status int_list(json_t *root, const char *path, const char *key, int64_t max)
{
    json_t *list = json_object_get(root, key);
    int ok = json_is_array(list) && json_array_size(list) > 0 && json_array_size(list) <= MAX_LIST;
    for (size_t i = 0; ok && i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        ok = json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= max;
        for (size_t j = 0; ok && j < i; j++)
            if (json_integer_value(json_array_get(list, j)) == json_integer_value(v))
                return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' holds %lld twice (items %zu and %zu)", path, key,
                                   (long long)json_integer_value(v), j, i);
    }
    if (!ok)
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' must be a non-empty list of at most %d integers from 1 to "
                           "%lld", path, key, MAX_LIST, (long long)max);
    return CANVAS_OK;
}

static canvas_status emit(const scheduler_config *config, int steps, int64_t seq_len, golden_sink_fn sink, void *ctx)
{
    float *buffer;
    TRY(mem_alloc((void **)&buffer, (2 * (size_t)steps + 1) * sizeof(float), MEM_SCRATCH));
    float *sigmas = buffer, *timesteps = buffer + steps + 1;
    double mu = scheduler_mu(config, seq_len);
    canvas_status st = scheduler_sigmas(config, steps, mu, sigmas, timesteps);
    char name[64];
    if (st == CANVAS_OK) {
        snprintf(name, sizeof name, "sigmas.%d.%lld", steps, (long long)seq_len);
        st = sink(ctx, name, sigmas, 1, (int64_t[]){steps + 1});
    }
    if (st == CANVAS_OK) {
        snprintf(name, sizeof name, "timesteps.%d.%lld", steps, (long long)seq_len);
        st = sink(ctx, name, timesteps, 1, (int64_t[]){steps});
    }
    if (st == CANVAS_OK) {
        float mu32 = (float)mu;
        snprintf(name, sizeof name, "mu.%d.%lld", steps, (long long)seq_len);
        st = sink(ctx, name, &mu32, 1, (int64_t[]){1});
    }
    mem_free(buffer);
    return st;
}

static canvas_status run(json_t *root, const char *path, golden_sink_fn sink, void *ctx)
{
    scheduler_config config;
    TRY(scheduler_config_from_json(json_object_get(root, "scheduler_config"), path, "scheduler_config", &config));
    TRY(int_list(root, path, "steps", MAX_STEPS));
    TRY(int_list(root, path, "image_seq_lens", INT64_C(1) << 40));
    json_t *steps = json_object_get(root, "steps"), *lens = json_object_get(root, "image_seq_lens");
    for (size_t i = 0; i < json_array_size(steps); i++)
        for (size_t j = 0; j < json_array_size(lens); j++)
            TRY(emit(&config, (int)json_integer_value(json_array_get(steps, i)),
                     (int64_t)json_integer_value(json_array_get(lens, j)), sink, ctx));
    return CANVAS_OK;
}

canvas_status schedule_case_run(const char *case_dir, golden_sink_fn sink, void *ctx)
{
    static const char *const ops[] = {"schedule", NULL};
    char path[PATH_BUFFER_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(case_dir, ops, NULL, path, sizeof path, &root, &op, NULL, 0));
    canvas_status st = run(root, path, sink, ctx);
    json_decref(root);
    return st;
}
