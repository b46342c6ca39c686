/* SPDX-License-Identifier: Apache-2.0 */
/* test_api_model.c — the model object as a server keeps it open for many requests: a run
 * cancelled at step k (CANVAS_ERR_CANCELLED, no image, nothing left behind, the model
 * usable), the Lightning scheduler per request (the model's own untouched, even during the
 * run), host RAM caps per model (two models, two caps), LoRA scales changed between runs
 * (the same bytes as a model opened with that scale), the profile bounded and reset, and
 * an out-of-memory while loading recovered (or not) as the fallback policy says. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/canvas_model_internal.h"
#include "check.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "pipeline/lora.h"

/* The edit-cfg golden case's model, prompt and reference image. */
typedef struct inputs {
    char model_dir[4200];
    canvas_prompt prompt;
    canvas_image image;
} inputs;

static int inputs_load(inputs *in)
{
    char dir[4096], path[4200];
    memset(in, 0, sizeof *in);
    test_path(dir, sizeof dir, "golden/cases/edit-cfg");
    snprintf(in->model_dir, sizeof in->model_dir, "%s/../../models/edit-tiny", dir);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    CHECK_OK(canvas_prompt_load(path, &in->prompt));
    snprintf(path, sizeof path, "%s/image0.png", dir);
    CHECK_OK(canvas_image_load(path, &in->image));
    return in->prompt.positive.values && in->image.pixels;
}

static void inputs_free(inputs *in)
{
    canvas_prompt_free(&in->prompt);
    canvas_image_free(&in->image);
}

static void small_params(canvas_edit_params *e, int steps)
{
    canvas_edit_params_default(e);
    e->steps = steps;
    e->vae_area = 64 * 64;
    e->seed = 3;
}

static int same_image(const canvas_image *a, const canvas_image *b)
{
    return a->pixels && b->pixels && a->width == b->width && a->height == b->height &&
           !memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * 3);
}

/* ---- cancel ------------------------------------------------------------------------------ */

typedef struct stopper {
    int steps_seen;
    int stop_after_step;        /* > 0: the progress callback raises the flag after this step */
    int stop;                   /* the flag the cancel callback reads */
    int asked;                  /* times the cancel callback was asked */
} stopper;

static void stopper_progress(void *ctx, const canvas_progress *p)
{
    stopper *s = ctx;
    if (p->kind != CANVAS_PROGRESS_STEP) return;
    s->steps_seen = p->step;
    if (p->step == s->stop_after_step) s->stop = 1;
}

static int stopper_cancel(void *ctx)
{
    stopper *s = ctx;
    s->asked++;
    return s->stop;
}

static void cancel_run(const inputs *in, uint64_t vram_bytes)
{
    canvas_options o;
    canvas_options_default(&o);
    o.vram_bytes = vram_bytes;
    canvas_model *m = NULL;
    CHECK_OK(canvas_open(in->model_dir, &o, &m));
    if (!m) return;
    printf("  %s\n", vram_bytes ? "on a 16 MiB device" : "in host memory");
    canvas_edit_params e;
    small_params(&e, 4);
    e.cancel = stopper_cancel;

    /* never stopped: asked before the run, the reference's VAE pass, the plan, both calls
     * of each CFG step and the decode */
    stopper never = {0};
    e.cancel_ctx = &never;
    canvas_image first = {0}, out = {0};
    CHECK_OK(canvas_edit(m, &in->prompt, &in->image, 1, &e, stopper_progress, &never, &first));
    CHECK(never.steps_seen == 4 && never.asked == 4 + 2 * 4);

    /* the profile forgotten (its room kept), as a server does between jobs: what the
     * model holds now is what it holds between runs */
    CHECK_OK(canvas_profile_reset(m));
    canvas_memory_snapshot before, after;
    CHECK_OK(canvas_memory_snapshot_take(m, &before));
    const uint64_t host_blocks = mem_device_live_blocks(m->host);

    /* stopped by the progress callback after step 2: asked before step 3, nothing after */
    stopper at2 = {.stop_after_step = 2};
    e.cancel_ctx = &at2;
    CHECK_FAILS(canvas_edit(m, &in->prompt, &in->image, 1, &e, stopper_progress, &at2, &out), CANVAS_ERR_CANCELLED,
                "before step 3 of 4");
    CHECK(canvas_exit_code(CANVAS_ERR_CANCELLED) == 130);
    CHECK(at2.steps_seen == 2 && at2.asked == 3 + 2 * 2 + 1);
    CHECK(out.pixels == NULL && out.width == 0 && out.height == 0);
    /* the completed steps' latents and every activation released; the placed weights stay */
    CHECK_OK(canvas_memory_snapshot_take(m, &after));
    CHECK(mem_device_live_blocks(m->host) == host_blocks);
    CHECK(after.host_bytes == before.host_bytes);
    CHECK(after.device_bytes == before.device_bytes && after.device_activation_bytes == 0);
    CHECK(after.resident_blocks == before.resident_blocks);

    /* stopped before anything: no step, no phase */
    stopper at_once = {.stop = 1};
    e.cancel_ctx = &at_once;
    CHECK_FAILS(canvas_edit(m, &in->prompt, &in->image, 1, &e, stopper_progress, &at_once, &out), CANVAS_ERR_CANCELLED,
                "before the run began");
    CHECK(at_once.asked == 1 && at_once.steps_seen == 0 && out.pixels == NULL);

    /* the model goes on: the same request gives the same bytes */
    stopper again = {0};
    e.cancel_ctx = &again;
    CHECK_OK(canvas_edit(m, &in->prompt, &in->image, 1, &e, stopper_progress, &again, &out));
    CHECK(same_image(&first, &out));
    canvas_image_free(&out);
    canvas_image_free(&first);
    canvas_close(m);
}

static void test_cancel(void)
{
    inputs in;
    if (inputs_load(&in)) {
        cancel_run(&in, 0);
        cancel_run(&in, 16u << 20);
    }
    inputs_free(&in);
}

/* ---- the scheduler per request ----------------------------------------------------------- */

typedef struct scheduler_watch {
    const canvas_model *model;
    scheduler_config expected;
    int checked, changed;
} scheduler_watch;

static void scheduler_progress(void *ctx, const canvas_progress *p)
{
    scheduler_watch *w = ctx;
    if (p->kind != CANVAS_PROGRESS_STEP) return;
    w->checked++;
    if (memcmp(&w->model->pipeline->scheduler, &w->expected, sizeof w->expected)) w->changed++;
}

static void test_lightning_per_request(void)
{
    inputs in;
    canvas_model *m = NULL;
    if (inputs_load(&in)) CHECK_OK(canvas_open(in.model_dir, NULL, &m));
    if (m) {
        scheduler_watch w = {m, m->pipeline->scheduler, 0, 0};
        canvas_edit_params e;
        small_params(&e, 3);
        canvas_image plain = {0}, lightning = {0}, plain_again = {0};
        CHECK_OK(canvas_edit(m, &in.prompt, &in.image, 1, &e, NULL, NULL, &plain));
        e.lightning_scheduler = 1;
        CHECK_OK(canvas_edit(m, &in.prompt, &in.image, 1, &e, scheduler_progress, &w, &lightning));
        /* the model's scheduler was never swapped, not even while the Lightning run ran */
        CHECK(w.checked == 3 && w.changed == 0);
        CHECK(!memcmp(&m->pipeline->scheduler, &w.expected, sizeof w.expected));
        CHECK(lightning.pixels && !same_image(&plain, &lightning)); /* the request's schedule did apply */
        e.lightning_scheduler = 0;
        CHECK_OK(canvas_edit(m, &in.prompt, &in.image, 1, &e, NULL, NULL, &plain_again));
        CHECK(same_image(&plain, &plain_again));
        canvas_image_free(&plain);
        canvas_image_free(&lightning);
        canvas_image_free(&plain_again);
    }
    canvas_close(m);
    inputs_free(&in);
}

/* ---- host RAM caps per model --------------------------------------------------------------- */

static void test_ram_cap_per_model(void)
{
    inputs in;
    canvas_model *free_model = NULL, *roomy = NULL, *tight = NULL;
    if (!inputs_load(&in)) goto done;
    canvas_edit_params e;
    small_params(&e, 2);

    /* what a model holds once open, and its peak during a run */
    canvas_memory_snapshot open_snap, run_snap;
    CHECK_OK(canvas_open(in.model_dir, NULL, &free_model));
    if (!free_model) goto done;
    CHECK_OK(canvas_memory_snapshot_take(free_model, &open_snap));
    canvas_image out = {0};
    CHECK_OK(canvas_edit(free_model, &in.prompt, &in.image, 1, &e, NULL, NULL, &out));
    CHECK_OK(canvas_memory_snapshot_take(free_model, &run_snap));
    printf("  a model: %llu host bytes open, peak %llu in a run\n", (unsigned long long)open_snap.host_bytes,
           (unsigned long long)run_snap.host_peak_bytes);
    CHECK(open_snap.host_cap_bytes == 0 && open_snap.host_bytes > 0);
    CHECK(run_snap.host_peak_bytes > open_snap.host_bytes + 64 * 1024);
    /* the result is the caller's: not counted as the model's */
    canvas_image_free(&out);
    canvas_memory_snapshot freed;
    CHECK_OK(canvas_memory_snapshot_take(free_model, &freed));
    CHECK(freed.host_bytes == run_snap.host_bytes);

    /* the caller's own memory, larger than the tight model's cap: the process-wide cap of old
     * would count it against the model */
    const uint64_t tight_cap = open_snap.host_bytes + 32 * 1024;
    void *callers = NULL;
    CHECK_OK(mem_alloc(&callers, (size_t)tight_cap * 2, MEM_SCRATCH));

    canvas_options o;
    canvas_options_default(&o);
    o.ram_bytes = 1ull << 30;
    CHECK_OK(canvas_open(in.model_dir, &o, &roomy));
    o.ram_bytes = tight_cap;
    CHECK_OK(canvas_open(in.model_dir, &o, &tight));
    if (!roomy || !tight) goto free_callers;
    canvas_memory_snapshot r, t;
    CHECK_OK(canvas_memory_snapshot_take(roomy, &r));
    CHECK_OK(canvas_memory_snapshot_take(tight, &t));
    CHECK(r.host_cap_bytes == 1ull << 30 && t.host_cap_bytes == tight_cap);
    /* each counts its own: the same model opened the same way holds the same bytes */
    CHECK(r.host_bytes == open_snap.host_bytes && t.host_bytes == open_snap.host_bytes);

    /* the tight model cannot run under its cap (after its fallbacks), the roomy one can,
     * both open in one process */
    CHECK_FAILS(canvas_edit(tight, &in.prompt, &in.image, 1, &e, NULL, NULL, &out), CANVAS_ERR_OUT_OF_MEMORY,
                "the model's host RAM cap");
    CHECK(out.pixels == NULL);
    CHECK_OK(canvas_memory_snapshot_take(tight, &t));
    CHECK(t.host_bytes == open_snap.host_bytes && t.host_peak_bytes <= tight_cap);
    CHECK_OK(canvas_edit(roomy, &in.prompt, &in.image, 1, &e, NULL, NULL, &out));
    CHECK(out.pixels != NULL);
    canvas_image_free(&out);
    /* the tight cap raised: the same model runs */
    CHECK_OK(mem_device_set_cap(tight->host, (size_t)run_snap.host_peak_bytes + 256 * 1024));
    CHECK_OK(canvas_edit(tight, &in.prompt, &in.image, 1, &e, NULL, NULL, &out));
    CHECK(out.pixels != NULL);
    canvas_image_free(&out);

free_callers:
    mem_free(callers);
done:
    canvas_close(free_model);
    canvas_close(roomy);
    canvas_close(tight);
    inputs_free(&in);
}

/* ---- LoRA scales between runs ------------------------------------------------------------- */

static canvas_status edit_with(const inputs *in, canvas_model *m, canvas_image *out)
{
    canvas_edit_params e;
    small_params(&e, 2);
    return canvas_edit(m, &in->prompt, &in->image, 1, &e, NULL, NULL, out);
}

static void test_lora_scale(void)
{
    inputs in;
    char lora_path[4096];
    test_path(lora_path, sizeof lora_path, "golden/cases/lora-kohya/lora0-kohya.safetensors");
    canvas_lora lora = {lora_path, 0.7f};
    canvas_options o;
    canvas_options_default(&o);
    o.loras = &lora;
    o.n_loras = 1;
    canvas_model *m = NULL, *fresh = NULL;
    canvas_image at07 = {0}, at03 = {0}, fresh03 = {0}, back07 = {0};
    if (inputs_load(&in)) CHECK_OK(canvas_open(in.model_dir, &o, &m));
    if (!m) goto done;
    CHECK_OK(edit_with(&in, m, &at07));
    CHECK_OK(canvas_set_lora_scale(m, 0, 0.3f));
    CHECK_OK(edit_with(&in, m, &at03));
    lora.scale = 0.3f;
    CHECK_OK(canvas_open(in.model_dir, &o, &fresh));
    if (fresh) CHECK_OK(edit_with(&in, fresh, &fresh03));
    /* re-merged from the files: the bytes of a model opened with that scale */
    CHECK(same_image(&at03, &fresh03));
    CHECK(at07.pixels && !same_image(&at07, &at03));
    CHECK_OK(canvas_set_lora_scale(m, 0, 0.7f));
    CHECK_OK(edit_with(&in, m, &back07));
    CHECK(same_image(&at07, &back07));
    CHECK_FAILS(canvas_set_lora_scale(m, 1, 0.5f), CANVAS_ERR_USAGE, "LoRA 1");
    CHECK_FAILS(canvas_set_lora_scale(m, 0, NAN), CANVAS_ERR_USAGE, "finite");
    CHECK(m->pipeline->loras[0].scale == 0.7f);
done:
    canvas_image_free(&at07);
    canvas_image_free(&at03);
    canvas_image_free(&fresh03);
    canvas_image_free(&back07);
    canvas_close(m);
    canvas_close(fresh);
    inputs_free(&in);
}

/* ---- the profile: bounded, reset --------------------------------------------------------- */

static void test_profile_bounded_and_reset(void)
{
    inputs in;
    canvas_options o;
    canvas_options_default(&o);
    o.profile_phases = 5;
    canvas_model *m = NULL;
    if (inputs_load(&in)) CHECK_OK(canvas_open(in.model_dir, &o, &m));
    if (!m) goto done;
    canvas_image out = {0};
    CHECK_OK(edit_with(&in, m, &out)); /* load, vae-encode, plan, step 1, step 2, vae-decode */
    canvas_image_free(&out);
    CHECK(canvas_profile_phase_count(m) == 5);
    canvas_phase_profile ph;
    CHECK_OK(canvas_profile_phase(m, 0, &ph));
    CHECK(!strcmp(ph.name, "vae-encode"));
    CHECK_OK(canvas_profile_phase(m, 4, &ph));
    CHECK(!strcmp(ph.name, "vae-decode"));
    const double first_decode = ph.start_seconds;
    CHECK_OK(edit_with(&in, m, &out)); /* five more: the history keeps the second run's five */
    canvas_image_free(&out);
    CHECK(canvas_profile_phase_count(m) == 5);
    CHECK_OK(canvas_profile_phase(m, 0, &ph));
    CHECK(!strcmp(ph.name, "vae-encode") && ph.start_seconds > first_decode);
    CHECK_OK(canvas_profile_phase(m, 2, &ph));
    CHECK(!strcmp(ph.name, "step 1"));

    /* the report folds the six older phases into one summary, counted in its totals */
    char path[4096];
    snprintf(path, sizeof path, "/tmp/canvas-test-api-model-%d.json", (int)getpid());
    CHECK_OK(canvas_profile_write_report(m, path));
    json_t *root = NULL;
    CHECK_OK(json_file_load(path, &root));
    remove(path);
    json_t *earlier = json_object_get(root, "earlier_phases");
    CHECK(json_array_size(json_object_get(root, "phases")) == 5);
    CHECK(json_integer_value(json_object_get(earlier, "count")) == 6);
    CHECK(json_integer_value(json_object_get(root, "host_peak_bytes")) >=
          json_integer_value(json_object_get(earlier, "host_peak_bytes")));
    json_decref(root);

    CHECK_OK(canvas_profile_reset(m));
    CHECK(canvas_profile_phase_count(m) == 0);
    CHECK_FAILS(canvas_profile_phase(m, 0, &ph), CANVAS_ERR_USAGE, "phase 0");
    CHECK_OK(canvas_profile_write_report(m, path));
    CHECK_OK(json_file_load(path, &root));
    remove(path);
    CHECK(json_array_size(json_object_get(root, "phases")) == 0 && !json_object_get(root, "earlier_phases"));
    CHECK(json_integer_value(json_object_get(root, "fallbacks")) == 0);
    json_decref(root);
    CHECK_OK(edit_with(&in, m, &out)); /* vae-encode, plan, step 1, step 2, vae-decode */
    canvas_image_free(&out);
    CHECK(canvas_profile_phase_count(m) == 5);
    CHECK_OK(canvas_profile_phase(m, 0, &ph));
    CHECK(!strcmp(ph.name, "vae-encode"));
    canvas_options bad;
    canvas_options_default(&bad);
    bad.profile_phases = -1;
    canvas_model *none = NULL;
    CHECK_FAILS(canvas_open(in.model_dir, &bad, &none), CANVAS_ERR_USAGE, "profile_phases");
done:
    canvas_close(m);
    inputs_free(&in);
}

/* ---- out of memory while loading ----------------------------------------------------------- */

typedef struct load_lines {
    int n;
    char last[512];
} load_lines;

static void on_load_progress(void *ctx, const struct canvas_progress *p)
{
    load_lines *l = ctx;
    if (p->kind != CANVAS_PROGRESS_PLAN) return;
    l->n++;
    snprintf(l->last, sizeof l->last, "%s", p->message);
}

/* The third weights allocation of the load fails: once (recovered: one fallback line, the
 * same image as an undisturbed model), from then on (out of memory after
 * oom_retry_attempts lines, nothing left: the leak check), and with fallbacks off (at once). */
static void test_load_fallback(void)
{
    inputs in;
    if (!inputs_load(&in)) return;
    canvas_edit_params e;
    small_params(&e, 2);
    canvas_options o;
    canvas_options_default(&o);
    canvas_model *m = NULL;
    canvas_image want = {0}, got = {0};
    CHECK_OK(canvas_open(in.model_dir, &o, &m));
    if (m) CHECK_OK(canvas_edit(m, &in.prompt, &in.image, 1, &e, NULL, NULL, &want));
    canvas_close(m);

    load_lines lines = {0};
    o.load_progress = on_load_progress;
    o.load_progress_ctx = &lines;
    o.oom_retry_attempts = 2;
    mem_fault_arm(&(mem_fault_plan){.nth = 3, .persistent = 0, .only_class = MEM_WEIGHTS});
    m = NULL;
    CHECK_OK(canvas_open(in.model_dir, &o, &m));
    mem_fault_disarm();
    CHECK(lines.n == 1 && strstr(lines.last, "fallback: out of memory loading the model") &&
          strstr(lines.last, "(injected)") && strstr(lines.last, "(1 of 2)"));
    if (m) {
        CHECK_OK(canvas_edit(m, &in.prompt, &in.image, 1, &e, NULL, NULL, &got));
        CHECK(same_image(&want, &got));
        canvas_image_free(&got);
        canvas_close(m);
    }

    lines = (load_lines){0};
    mem_fault_arm(&(mem_fault_plan){.nth = 3, .persistent = 1, .only_class = MEM_WEIGHTS});
    m = NULL;
    CHECK_FAILS(canvas_open(in.model_dir, &o, &m), CANVAS_ERR_OUT_OF_MEMORY, "(injected)");
    mem_fault_disarm();
    CHECK(m == NULL && lines.n == 2 && strstr(lines.last, "(2 of 2)"));

    lines = (load_lines){0};
    o.no_fallback = 1;
    mem_fault_arm(&(mem_fault_plan){.nth = 3, .persistent = 0, .only_class = MEM_WEIGHTS});
    CHECK_FAILS(canvas_open(in.model_dir, &o, &m), CANVAS_ERR_OUT_OF_MEMORY, "(injected)");
    mem_fault_disarm();
    CHECK(m == NULL && lines.n == 0);
    canvas_image_free(&want);
    inputs_free(&in);
}

int main(void)
{
    RUN(test_cancel);
    RUN(test_lightning_per_request);
    RUN(test_ram_cap_per_model);
    RUN(test_lora_scale);
    RUN(test_profile_bounded_and_reset);
    RUN(test_load_fallback);
    return check_summary();
}
