/* SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
/* test_plan_timings.c — the planner learns step times from runs (plan/plan_timings.c): a
 * recorded plan is ranked by its measured time (the median of the last 5 runs), the others
 * by the time model scaled by what the measured ones showed of it; a run of the pipeline
 * records its plan; the cache stays bounded (256 entries), survives a corrupt file and is
 * off with CANVAS_TIMINGS_CACHE=off. The cache file is this test's own (the test command
 * runs every other test with the cache off, so that no test's plan depends on another's). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "io/config.h"
#include "io/json_file.h"
#include "mem/mem_device.h"
#include "ops/threadpool.h"
#include "pipeline/edit.h"
#include "pipeline/edit_case.h"
#include "plan/plan.h"

#define MiB ((uint64_t)1 << 20)

static thread_pool *pool;
static char cache[512];

/* The 1024x1024 edit of the real transformer's config on a 24 GiB device: full, sequential
 * and offload all fit, with different modelled times. */
static void real_work(plan_work *w, plan_hardware *hw, plan_limits *l)
{
    char dir[4096], path[4200];
    test_path(dir, sizeof dir, "real-configs/qwen-image-edit-2511");
    qwen_dit_config dit;
    vae_config vae;
    snprintf(path, sizeof path, "%s/transformer/config.json", dir);
    CHECK_OK(qwen_dit_config_load(path, &dit));
    snprintf(path, sizeof path, "%s/vae/config.json", dir);
    CHECK_OK(vae_config_load(path, &vae));
    plan_work_edit(w, &dit, &vae, 1024, 1024, 1, 0, 0, 200, 1, 50, 2);
    memset(hw, 0, sizeof *hw);
    CHECK_OK(plan_probe(2, 0, 2, hw)); /* nominal figures: CANVAS_PROBE_CACHE is off */
    memset(l, 0, sizeof *l);
    l->device_bytes = 64ull << 30;
    l->host_bytes = 256ull << 30;
}

static void key_of(const plan_work *w, const plan_hardware *hw, const plan_result *r, plan_preset preset, char *key,
                   size_t size)
{
    plan_timing_key(w, hw, &r->candidates[preset].point, 1, key, size);
}

static void test_measured_times_rank_the_plans(void)
{
    plan_work w;
    plan_hardware hw;
    plan_limits l;
    real_work(&w, &hw, &l);
    plan_result r;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    CHECK(r.chosen == PLAN_FULL && r.time_scale == 1);
    for (int i = 0; i < r.n; i++) CHECK(r.candidates[i].measured_runs == 0);
    const double full = r.candidates[PLAN_FULL].seconds_per_step, seq = r.candidates[PLAN_SEQUENTIAL].seconds_per_step;
    CHECK(full > 0 && seq > full);

    /* full measured 3x slower than modelled, in 7 runs: the median of the last 5 counts */
    char key[512];
    key_of(&w, &hw, &r, PLAN_FULL, key, sizeof key);
    const double runs[7] = {100, 100, 3, 2.9, 3.1, 50, 3.05}; /* x full; the last 5: 3 2.9 3.1 50 3.05 */
    for (int i = 0; i < 7; i++) plan_timing_record(key, runs[i] * full);
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    const plan_candidate *c = &r.candidates[PLAN_FULL];
    CHECK_MSG(c->measured_runs == 5 && fabs(c->seconds_per_step - 3.05 * full) < 1e-9 * full,
              "%d runs, %g s (wanted %g)", c->measured_runs, c->seconds_per_step, 3.05 * full);
    CHECK(fabs(r.time_scale - 3.05) < 1e-9 && fabs(c->modelled_seconds_per_step - full) < 1e-12 * full);
    /* the unmeasured plans are scaled alike: the ranking holds */
    CHECK(r.candidates[PLAN_SEQUENTIAL].measured_runs == 0 &&
          fabs(r.candidates[PLAN_SEQUENTIAL].seconds_per_step - 3.05 * seq) < 1e-9 * seq);
    CHECK(r.chosen == PLAN_FULL);
    CHECK(fabs(c->seconds_total - c->seconds_per_step * w.steps - c->text_seconds) < 1e-9 * c->seconds_total);
    char line[1024];
    plan_describe(c, &w, line, sizeof line);
    CHECK_MSG(strstr(line, "s/step measured") != NULL, "%s", line);

    /* sequential measured faster than full: auto takes it */
    key_of(&w, &hw, &r, PLAN_SEQUENTIAL, key, sizeof key);
    plan_timing_record(key, full); /* < 3.05 x full */
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    CHECK(r.candidates[PLAN_SEQUENTIAL].measured_runs == 1 && r.chosen == PLAN_SEQUENTIAL);

    /* another machine (another thread count) learns nothing from these */
    w.threads = 3;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_AUTO, pool, &r));
    CHECK(r.candidates[PLAN_FULL].measured_runs == 0 && r.time_scale == 1);
}

/* Bounded: 300 plans recorded, 256 kept, the latest among them; a corrupt or foreign file is
 * replaced; "off" writes nothing. */
static void test_cache_bounded_and_robust(void)
{
    char key[64];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "plan %d", i);
        plan_timing_record(key, 1.0 + i);
    }
    json_t *root = NULL;
    CHECK_OK(json_file_load(cache, &root));
    json_t *entries = json_object_get(root, "entries");
    CHECK_MSG(json_object_size(entries) == 256, "%zu entries", json_object_size(entries));
    CHECK(json_object_get(entries, "plan 299") && !json_object_get(entries, "plan 0"));
    json_decref(root);

    FILE *f = fopen(cache, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"version\": 99, \"entries\": 7}", f);
        fclose(f);
    }
    plan_timing_record("after", 2.0);
    root = NULL;
    CHECK_OK(json_file_load(cache, &root));
    CHECK(json_integer_value(json_object_get(root, "version")) == 1 &&
          json_object_size(json_object_get(root, "entries")) == 1);
    json_decref(root);
    plan_timing_record("bad value", NAN); /* ignored */
    plan_timing_record("bad value", -1);
    root = NULL;
    CHECK_OK(json_file_load(cache, &root));
    CHECK(json_object_size(json_object_get(root, "entries")) == 1);
    json_decref(root);

    setenv("CANVAS_TIMINGS_CACHE", "off", 1);
    remove(cache);
    plan_timing_record("off", 1.0);
    CHECK(access(cache, F_OK) != 0);
    setenv("CANVAS_TIMINGS_CACHE", cache, 1);
}

/* Records `key` (3 s) into a cache file of `entries` entries "pN" and a "mine" of `runs`
 * runs (7 s each) at seq `seq`; the seconds it took. */
static double record_into(const char *key, int entries, int runs, const char *seq)
{
    FILE *f = fopen(cache, "w");
    CHECK(f != NULL);
    if (!f) return 0;
    fprintf(f, "{\"version\": 1, \"entries\": {\"mine\": {\"seq\": %s, \"seconds\": [7", seq);
    for (int i = 1; i < runs; i++) fputs(",7", f);
    fputs("]}", f);
    for (int i = 0; i < entries; i++) fprintf(f, ", \"p%d\": {\"seq\": %d, \"seconds\": [1]}", i, i);
    fputs("}}", f);
    fclose(f);
    const double start = clock_seconds();
    plan_timing_record(key, 3.0);
    return clock_seconds() - start;
}

/* The runs and seq of "mine" in the cache file, and how many entries it has. */
static size_t mine_in_file(json_t **runs, json_int_t *seq, json_t **root)
{
    *root = NULL;
    CHECK_OK(json_file_load(cache, root));
    json_t *entries = json_object_get(*root, "entries"), *mine = json_object_get(entries, "mine");
    *runs = json_object_get(mine, "seconds");
    *seq = json_integer_value(json_object_get(mine, "seq"));
    return json_object_size(entries);
}

/* A cache that is not what this writes costs no more than one that is: 20000 entries (each
 * dropped by a scan of them all: 2e8 steps), a run list of 100000 (each removed from the
 * front), a seq at the top of json_int_t (seq + 1 overflowed); a file over 4 MiB is not read. */
static void test_hostile_cache_is_cheap(void)
{
    json_t *root, *runs;
    json_int_t seq;
    double took = record_into("new", 20000, 1, "1");
    CHECK_MSG(took < 1.0, "recording into 20000 entries took %.1f s", took);
    size_t n = mine_in_file(&runs, &seq, &root);
    CHECK_MSG(n == 1 && !runs, "%zu entries", n); /* started again: only "new" */
    json_decref(root);

    took = record_into("mine", 10, 100000, "9223372036854775807");
    CHECK_MSG(took < 1.0, "recording after 100000 runs took %.1f s", took);
    n = mine_in_file(&runs, &seq, &root);
    CHECK_MSG(n == 11 && json_array_size(runs) == 1 && json_real_value(json_array_get(runs, 0)) == 3.0 && seq == 10,
              "%zu entries, %zu runs, seq %lld", n, json_array_size(runs), (long long)seq);
    json_decref(root);

    /* a valid cache behind 5 MiB of blanks: not read (its "mine" is not kept); the record replaces it */
    FILE *f = fopen(cache, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"version\": 1, \"entries\": {\"mine\": {\"seq\": 1, \"seconds\": [4]}}", f);
    for (int i = 0; i < 5 << 10; i++) fprintf(f, "%1024s", "");
    fputs("}", f);
    fclose(f);
    plan_timing_record("other", 3.0);
    n = mine_in_file(&runs, &seq, &root);
    CHECK_MSG(n == 1 && !runs, "%zu entries, 'mine' %s", n, runs ? "read from the big file" : "gone");
    json_decref(root);
}

/* The cache is replaced only where a regular file (or nothing) is: a symbolic link (to a file
 * of the user's here) stays a link and its target untouched, a FIFO stays a FIFO. */
static void test_cache_replaces_no_link(void)
{
    char target[600], fifo[600];
    snprintf(target, sizeof target, "%s.target", cache);
    snprintf(fifo, sizeof fifo, "%s.fifo", cache);
    FILE *f = fopen(target, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("mine\n", f);
    fclose(f);
    remove(cache);
    CHECK(symlink(target, cache) == 0);
    plan_timing_record("linked", 1.0);
    struct stat sb;
    CHECK(lstat(cache, &sb) == 0 && S_ISLNK(sb.st_mode));
    char text[16] = "";
    f = fopen(target, "r");
    CHECK(f && fgets(text, sizeof text, f) && !strcmp(text, "mine\n"));
    if (f) fclose(f);
    remove(cache);
    remove(target);

    setenv("CANVAS_TIMINGS_CACHE", fifo, 1);
    CHECK(mkfifo(fifo, 0600) == 0);
    plan_timing_record("fifo", 1.0); /* returns: a FIFO is neither read nor replaced */
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    remove(fifo);
    setenv("CANVAS_TIMINGS_CACHE", cache, 1);
}

static canvas_status ignore(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    (void)ctx, (void)name, (void)data, (void)ndim, (void)shape;
    return CANVAS_OK;
}

/* A pipeline run records its plan's step time under the key its planning made. */
static void test_a_run_records_its_plan(void)
{
    remove(cache);
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 16 * MiB, &gpu));
    edit_plan_record record;
    edit_case_plan options = {.strategy = PLAN_AUTO, .fallback_enabled = 1, .record = &record};
    for (int run = 0; run < 2; run++)
        CHECK_OK(edit_case_run_planned(case_dir, pool, gpu, -1, &options, NULL, NULL, ignore, NULL));
    mem_device_destroy(gpu);
    json_t *root = NULL;
    CHECK_OK(json_file_load(cache, &root));
    json_t *entries = json_object_get(root, "entries");
    CHECK_MSG(json_object_size(entries) == 1, "%zu entries", json_object_size(entries));
    const char *key;
    json_t *entry;
    json_object_foreach(entries, key, entry) {
        printf("  %s: %zu runs\n", key, json_array_size(json_object_get(entry, "seconds")));
        CHECK(strstr(key, "device weights=none resident=2") != NULL && strstr(key, "layers=2") != NULL);
        CHECK(json_array_size(json_object_get(entry, "seconds")) == 2);
    }
    json_decref(root);
}

int main(void)
{
    snprintf(cache, sizeof cache, "/tmp/canvas_test_timings.%d.json", (int)getpid());
    setenv("CANVAS_TIMINGS_CACHE", cache, 1);
    setenv("CANVAS_PROBE_CACHE", "off", 1);
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    RUN(test_measured_times_rank_the_plans);
    RUN(test_cache_bounded_and_robust);
    RUN(test_hostile_cache_is_cheap);
    RUN(test_cache_replaces_no_link);
    RUN(test_a_run_records_its_plan);
    thread_pool_destroy(pool);
    remove(cache);
    return check_summary();
}
