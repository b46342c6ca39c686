/* SPDX-License-Identifier: Apache-2.0 */
/* test_host_budget.c — host memory that someone else takes while a model is open (issue 13):
 * the run reads what the machine has available (MemAvailable) again before every phase and
 * plans with it. The test plays the machine with a file in /proc/meminfo's format
 * (sysinfo_set_meminfo_path) that it rewrites from the progress callback, on the edit-tiny
 * model with a 16 MiB capped device and a 512x512 output (a whole VAE decode needs more host
 * memory than one 256-pixel tile).
 *
 * Checked, through the public API on one open model:
 *   - MemAvailable drops during the denoising: the decode, planned whole, runs tiled without
 *     an out-of-memory or a fallback, says so in a plan line, and gives the pixels of a run
 *     that was tiled from the start (low MemAvailable before it began); the whole decode's
 *     pixels differ (tiling changes them slightly, as in diffusers).
 *   - MemAvailable below the last plan's host peak between two runs: the placement is not
 *     re-used, the run is re-planned and refused before any work (out of memory, naming host
 *     RAM); MemAvailable back: the next run is the first run again, bit for bit. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/sysinfo.h"
#include "check.h"

#define MiB ((uint64_t)1024 * 1024)

static char meminfo[4200];

static void set_available(uint64_t bytes)
{
    FILE *f = fopen(meminfo, "w");
    if (!f) return;
    fprintf(f, "MemTotal:       %llu kB\nMemFree:        %llu kB\nMemAvailable:   %llu kB\n",
            (unsigned long long)(64ull << 20), (unsigned long long)(bytes >> 10), (unsigned long long)(bytes >> 10));
    fclose(f);
}

typedef struct watch {
    uint64_t drop_to;       /* > 0: MemAvailable becomes this once step 1 is done */
    int tiled_line;         /* a "plan: VAE decode tiled" line came */
    int fallbacks;
    char plan[1024];
} watch;

static void on_progress(void *ctx, const canvas_progress *p)
{
    watch *w = ctx;
    if (p->kind == CANVAS_PROGRESS_STEP && p->step == 1 && w->drop_to && !strcmp(p->phase, "denoise"))
        set_available(w->drop_to);
    if (p->kind != CANVAS_PROGRESS_PLAN) return;
    printf("    %.160s\n", p->message);
    if (!strncmp(p->message, "fallback:", 9)) w->fallbacks++;
    else if (strstr(p->message, "plan: VAE decode tiled")) w->tiled_line = 1;
    else snprintf(w->plan, sizeof w->plan, "%s", p->message);
}

static canvas_model *model;
static canvas_prompt prompt;
static canvas_image reference;
static canvas_edit_params params;

static canvas_status edit(watch *w, canvas_image *out)
{
    memset(out, 0, sizeof *out);
    return canvas_edit(model, &prompt, &reference, 1, &params, on_progress, w, out);
}

static int same_pixels(const canvas_image *a, const canvas_image *b)
{
    return a->pixels && b->pixels && a->width == b->width && a->height == b->height &&
           !memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * 3);
}

static void test_decode_tiles_when_memory_goes(void)
{
    canvas_image whole = {0}, dropped = {0}, tiled = {0};
    watch w = {0};
    set_available(8192 * MiB);
    CHECK_OK(edit(&w, &whole));
    CHECK(!w.tiled_line && w.fallbacks == 0 && strstr(w.plan, "VAE whole") != NULL);

    /* 34 MiB: less than a whole 512x512 decode pass needs (35.56 MiB), more than a plan with a
     * tiled decode needs besides what the model holds (32.8 MiB) */
    watch d = {.drop_to = 34 * MiB};
    set_available(8192 * MiB);
    CHECK_OK(edit(&d, &dropped));
    CHECK_MSG(d.tiled_line && d.fallbacks == 0, "tiled line %d, %d fallbacks", d.tiled_line, d.fallbacks);

    watch t = {0};
    set_available(34 * MiB); /* low from the start: planned tiled */
    CHECK_OK(edit(&t, &tiled));
    CHECK(t.fallbacks == 0 && strstr(t.plan, "VAE tiled") != NULL);
    CHECK(same_pixels(&dropped, &tiled));
    CHECK(whole.pixels && dropped.pixels && !same_pixels(&whole, &dropped));
    canvas_image_free(&whole);
    canvas_image_free(&dropped);
    canvas_image_free(&tiled);
}

static void test_replanned_when_memory_goes_between_runs(void)
{
    canvas_image first = {0}, refused = {0}, again = {0};
    watch w = {0};
    set_available(8192 * MiB);
    CHECK_OK(edit(&w, &first));
    set_available(1 * MiB); /* far below the plan's host peak, and below a tile's */
    watch r = {0};
    CHECK_FAILS(edit(&r, &refused), CANVAS_ERR_OUT_OF_MEMORY, "host RAM");
    CHECK(refused.pixels == NULL && r.fallbacks == 0);
    set_available(8192 * MiB);
    watch a = {0};
    CHECK_OK(edit(&a, &again));
    CHECK(same_pixels(&first, &again));
    canvas_image_free(&first);
    canvas_image_free(&again);
}

int main(void)
{
    char model_dir[4096], path[4200];
    snprintf(meminfo, sizeof meminfo, "%s/canvas-test-meminfo-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    set_available(8192 * MiB);
    sysinfo_set_meminfo_path(meminfo);
    test_path(model_dir, sizeof model_dir, "golden/models/edit-tiny");
    canvas_options options;
    canvas_options_default(&options);
    options.vram_bytes = 16 * MiB;
    options.threads = 2;
    CHECK_OK(canvas_open(model_dir, &options, &model));
    test_path(path, sizeof path, "golden/cases/edit-cfg/inputs.safetensors");
    CHECK_OK(canvas_prompt_load(path, &prompt));
    test_path(path, sizeof path, "golden/cases/edit-cfg/image0.png");
    CHECK_OK(canvas_image_load(path, &reference));
    canvas_edit_params_default(&params);
    params.steps = 2;
    params.vae_area = 64 * 64;
    params.width = params.height = 512;
    if (model && prompt.positive.values && reference.pixels) {
        RUN(test_decode_tiles_when_memory_goes);
        RUN(test_replanned_when_memory_goes_between_runs);
    }
    canvas_image_free(&reference);
    canvas_prompt_free(&prompt);
    canvas_close(model);
    sysinfo_set_meminfo_path(NULL);
    remove(meminfo);
    return check_summary();
}
