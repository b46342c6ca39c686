/* SPDX-License-Identifier: Apache-2.0 */
/* canvas_model.c — the public model API (include/canvas.h) over the edit pipeline
 * (pipeline/edit.h), the devices and the profiler (mem/). */
#include <string.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "api/canvas_model_internal.h"
#include "canvas.h"
#include "io/image.h"
#include "io/profiler_json.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "mem/mem_profiler.h"
#include "ops/threadpool.h"
#include "pipeline/edit.h"
#include "pipeline/lora.h"
#include "pipeline/scheduler.h"
#include "plan/plan.h"

/* more threads than this per online CPU are refused (canvas_options.threads) */
enum { THREADS_PER_CPU_MAX = 4 };


void canvas_options_default(canvas_options *options)
{
    memset(options, 0, sizeof *options);
    options->resident_blocks = -1;
}

void canvas_edit_params_default(canvas_edit_params *params)
{
    memset(params, 0, sizeof *params);
    params->steps = EDIT_DEFAULT_STEPS;
    params->cfg = EDIT_DEFAULT_CFG;
    params->vae_area = EDIT_DEFAULT_VAE_AREA;
}

static canvas_status check_options(const canvas_options *o)
{
    mem_device_choice device;
    int use_cuda;
    TRY(mem_device_choice_parse(o->device, &device));
    TRY(mem_device_choose(device, &use_cuda));
    /* a CUDA GPU is a device without vram_bytes (its free memory), and its link is not throttled */
    if (use_cuda && o->link_bytes_per_second > 0)
        return status_fail(CANVAS_ERR_USAGE, "a link bandwidth throttles the pool that plays a GPU on the CPU, not a "
                                             "CUDA device");
    if (!use_cuda && !o->vram_bytes && o->link_bytes_per_second > 0)
        return status_fail(CANVAS_ERR_USAGE, "a link bandwidth needs a device (vram_bytes)");
    if (!use_cuda && !o->vram_bytes && o->resident_blocks >= 0)
        return status_fail(CANVAS_ERR_USAGE, "resident blocks need a device (vram_bytes or a CUDA GPU)");
    if (o->resident_blocks < -1) return status_fail(CANVAS_ERR_USAGE, "resident blocks %d: give -1 or more", o->resident_blocks);
    if (o->threads < 0 || o->threads > 4096) return status_fail(CANVAS_ERR_USAGE, "threads %d: give 0 to 4096", o->threads);
    /* far more threads than CPUs only add switching (a 2-CPU machine ran 512 threads 10x slower) */
    const int cpus = sysinfo_online_cpus();
    if (o->threads > THREADS_PER_CPU_MAX * cpus)
        return status_fail(CANVAS_ERR_USAGE, "threads %d: this machine has %d CPUs; give at most %d (0: one per CPU)",
                           o->threads, cpus, THREADS_PER_CPU_MAX * cpus);
    if (o->link_bytes_per_second < 0 || (o->link_bytes_per_second > 0 && o->link_bytes_per_second < SIZE_RATE_MIN))
        return status_fail(CANVAS_ERR_USAGE, "link bandwidth %g bytes/s: give 0 (none) or at least 1 MiB/s",
                           o->link_bytes_per_second);
    if (o->n_loras < 0 || o->n_loras > 256 || (o->n_loras > 0 && !o->loras))
        return status_fail(CANVAS_ERR_USAGE, "%d LoRA files: give 0 to 256 and the list", o->n_loras);
    for (int i = 0; i < o->n_loras; i++)
        if (!o->loras[i].path || !(o->loras[i].scale == o->loras[i].scale))
            return status_fail(CANVAS_ERR_USAGE, "LoRA %d: a path and a scale are required", i);
    if (o->fp8 < -1 || o->fp8 > 1) return status_fail(CANVAS_ERR_USAGE, "fp8 %d: give -1, 0 or 1", o->fp8);
    if (o->profile_phases < 0)
        return status_fail(CANVAS_ERR_USAGE, "profile_phases %d: give 0 (1024) or more", o->profile_phases);
    if (o->oom_retry_attempts < 0 || o->oom_retry_attempts > 100)
        return status_fail(CANVAS_ERR_USAGE, "oom_retry_attempts %d: give 0 (the default, 3) to 100",
                           o->oom_retry_attempts);
    if (o->strategy) {
        plan_preset list[8];
        int n;
        TRY(plan_preset_list_parse(o->strategy, list, 8, &n));
    }
    if (o->text_encoder_weights) {
        quant_choice format;
        TRY(quant_choice_parse(o->text_encoder_weights, &format));
    }
    if ((uint64_t)(size_t)o->vram_bytes != o->vram_bytes || (uint64_t)(size_t)o->ram_bytes != o->ram_bytes)
        return status_fail(CANVAS_ERR_USAGE, "a memory cap is more than this machine can address");
    return CANVAS_OK;
}

void canvas_close(canvas_model *model)
{
    if (!model) return;
    canvas_model_prompt_release(model);
    edit_pipeline_close(model->pipeline);
    profiler_destroy(model->profiler);
    thread_pool_destroy(model->pool);
    compute_device_close(&model->compute);
    mem_device_destroy(model->host); /* its scope goes with its last block */
    mem_free(model);
}

/* The options' LoRA files merged into the transformer (pipeline/lora.h); the pipeline keeps
 * the list to merge them again when the planner reloads the transformer. */
static canvas_status apply_loras(edit_pipeline *p, thread_pool *pool, const canvas_options *o)
{
    if (o->n_loras == 0) return CANVAS_OK;
    lora_spec *specs;
    TRY(mem_calloc((void **)&specs, (size_t)o->n_loras, sizeof *specs, MEM_SCRATCH));
    for (int i = 0; i < o->n_loras; i++) specs[i] = (lora_spec){o->loras[i].path, o->loras[i].scale, LORA_NAMING_AUTO};
    canvas_status st = edit_pipeline_add_loras(p, pool, specs, o->n_loras);
    mem_free(specs);
    return st;
}

/* A strategy text (a name or a preference list) into a pipeline policy. */
static canvas_status parse_strategy(const char *strategy, edit_policy *policy)
{
    plan_preset list[8];
    int n = 1;
    list[0] = PLAN_AUTO;
    if (strategy) TRY(plan_preset_list_parse(strategy, list, 8, &n));
    policy->strategy = n == 1 ? list[0] : PLAN_AUTO;
    policy->n_preferred = n == 1 ? 0 : n;
    for (int i = 0; i < n && n > 1; i++) policy->preferred[i] = list[i];
    return CANVAS_OK;
}

/* A fallback line while loading, as a PLAN progress event to the caller's load_progress. */
static void say_load_fallback(void *ctx, const char *line)
{
    const canvas_options *o = ctx;
    if (!o->load_progress) return;
    canvas_progress p = {.kind = CANVAS_PROGRESS_PLAN, .phase = "load", .message = line};
    o->load_progress(o->load_progress_ctx, &p);
}

/* The pipeline opened and the LoRAs merged; an out-of-memory in either releases both and
 * loads again, as the fallback policy allows (edit_load_policy). */
static canvas_status open_pipeline(canvas_model *m, const char *model_dir, const canvas_options *o)
{
    const edit_load_policy policy = {.fallback_enabled = !o->no_fallback,
                                     .oom_retry_attempts = o->oom_retry_attempts > 0 ? o->oom_retry_attempts : 3,
                                     .profiler = m->profiler,
                                     .say = say_load_fallback,
                                     .say_ctx = (void *)o};
    edit_load_tries tries;
    edit_load_tries_begin(&tries);
    for (;;) {
        const edit_sources sources = {model_dir, o->transformer_file, o->vae_file, o->text_encoder_file};
        canvas_status st = edit_pipeline_open_sources(&sources, &policy, &m->pipeline);
        if (st != CANVAS_OK) return st;
        st = apply_loras(m->pipeline, m->pool, o);
        if (st == CANVAS_OK) return CANVAS_OK;
        edit_pipeline_close(m->pipeline);
        m->pipeline = NULL;
        if (!edit_load_retry(&policy, st, &tries, "merging the LoRAs")) return st;
    }
}

canvas_status canvas_open(const char *model_dir, const canvas_options *options, canvas_model **out)
{
    if (!out) return status_fail(CANVAS_ERR_USAGE, "canvas_open: out is required");
    if (!model_dir && (!options || !options->transformer_file || !options->vae_file))
        return status_fail(CANVAS_ERR_USAGE, "canvas_open: a model folder, or the transformer and VAE files, are "
                                             "required");
    *out = NULL;
    canvas_options defaults;
    canvas_options_default(&defaults);
    if (!options) options = &defaults;
    TRY(check_options(options));
    canvas_model *m;
    TRY(mem_calloc((void **)&m, 1, sizeof *m, MEM_SCRATCH));
    m->options = *options;
    /* the model's host memory: what it allocates from here on is counted (and capped) apart */
    canvas_status st = mem_device_create_host_scope("cpu", (size_t)options->ram_bytes, &m->host);
    if (st != CANVAS_OK) {
        mem_free(m);
        return st;
    }
    mem_scope *outer = canvas_model_enter(m);
    mem_device_choice choice;
    st = mem_device_choice_parse(options->device, &choice); /* checked by check_options */
    if (st == CANVAS_OK)
        st = compute_device_open(choice, options->vram_bytes, options->link_bytes_per_second, &m->compute);
    m->device = st == CANVAS_OK ? m->compute.device : mem_device_cpu();
    if (st == CANVAS_OK) st = thread_pool_create(options->threads, &m->pool);
    /* computing in host memory, the model's host scope is its device in the profile too */
    if (st == CANVAS_OK)
        st = profiler_create(mem_device_is_host(m->device) ? m->host : m->device, m->host, &m->profiler);
    if (st == CANVAS_OK && options->profile_phases) st = profiler_set_history(m->profiler, options->profile_phases);
    if (st == CANVAS_OK) st = profiler_begin(m->profiler, "load");
    if (st == CANVAS_OK) st = open_pipeline(m, model_dir, options);
    if (st == CANVAS_OK) {
        profiler_end(m->profiler);
        edit_pipeline *p = m->pipeline;
        const edit_runtime runtime = {.pool = m->pool, .device = m->device, .dit_backend = m->compute.backend,
                                      .host = m->host, .profiler = m->profiler};
        edit_pipeline_attach(p, &runtime);
        edit_policy policy;
        edit_pipeline_get_policy(p, &policy);
        policy.resident_blocks = options->resident_blocks;
        policy.allow_quantize = options->allow_quantize ? 1 : 0;
        policy.fp8 = options->fp8;
        policy.headroom_bytes = options->headroom_bytes;
        policy.fallback_enabled = !options->no_fallback;
        if (options->oom_retry_attempts > 0) policy.oom_retry_attempts = options->oom_retry_attempts;
        st = parse_strategy(options->strategy, &policy);
        if (st == CANVAS_OK) st = edit_pipeline_set_policy(p, &policy);
    }
    m->options.loras = NULL; /* the caller's arrays are not kept */
    m->options.n_loras = 0;
    m->options.strategy = NULL;
    m->options.load_progress = NULL;
    m->options.load_progress_ctx = NULL;
    canvas_model_text_weights_set(m, options->text_encoder_weights); /* parsed by check_options */
    m->options.text_encoder_weights = NULL;
    m->options.transformer_file = m->options.text_encoder_file = m->options.vae_file = NULL; /* kept by the pipeline */
    mem_scope_leave(outer);
    if (st != CANVAS_OK) {
        canvas_close(m);
        return st;
    }
    *out = m;
    return CANVAS_OK;
}

canvas_status canvas_set_resident_blocks(canvas_model *model, int resident_blocks)
{
    if (!model) return status_fail(CANVAS_ERR_USAGE, "canvas_set_resident_blocks: no model");
    if (resident_blocks < -1)
        return status_fail(CANVAS_ERR_USAGE, "resident blocks %d: give -1 (the planner) or a count", resident_blocks);
    if (resident_blocks >= 0 && mem_device_is_host(model->device))
        return status_fail(CANVAS_ERR_USAGE, "resident blocks need a device (open the model with vram_bytes)");
    edit_policy policy;
    edit_pipeline_get_policy(model->pipeline, &policy);
    policy.resident_blocks = resident_blocks;
    return edit_pipeline_set_policy(model->pipeline, &policy); /* placed again at the next run */
}

canvas_status canvas_set_strategy(canvas_model *model, const char *strategy, int allow_quantize)
{
    if (!model) return status_fail(CANVAS_ERR_USAGE, "canvas_set_strategy: no model");
    if (!strategy) return status_fail(CANVAS_ERR_USAGE, "canvas_set_strategy: no strategy given");
    edit_policy policy;
    edit_pipeline_get_policy(model->pipeline, &policy);
    TRY(parse_strategy(strategy, &policy));
    policy.allow_quantize = allow_quantize ? 1 : 0;
    policy.resident_blocks = -1; /* planned again at the next run; refused: the model keeps what it had */
    return edit_pipeline_set_policy(model->pipeline, &policy);
}

canvas_status canvas_set_lora_scale(canvas_model *model, int index, float scale)
{
    if (!model) return status_fail(CANVAS_ERR_USAGE, "canvas_set_lora_scale: no model");
    mem_scope *outer = canvas_model_enter(model);
    canvas_status st = edit_pipeline_set_lora_scale(model->pipeline, index, scale);
    mem_scope_leave(outer);
    return st;
}

canvas_status canvas_set_vram_limit(canvas_model *model, uint64_t bytes)
{
    if (!model) return status_fail(CANVAS_ERR_USAGE, "canvas_set_vram_limit: no model");
    if (mem_device_is_host(model->device))
        return status_fail(CANVAS_ERR_USAGE, "canvas_set_vram_limit: the model has no device (open it with vram_bytes)");
    if (bytes == 0 || bytes > model->options.vram_bytes)
        return status_fail(CANVAS_ERR_USAGE, "canvas_set_vram_limit: give 1 to %llu bytes (the size it was opened with)",
                           (unsigned long long)model->options.vram_bytes);
    return mem_device_set_cap(model->device, (size_t)bytes);
}

/* ---- progress --------------------------------------------------------------------------- */

typedef struct progress_relay {
    canvas_model *model;
    canvas_progress_fn fn;
    void *ctx;
    const char *phase;
    double phase_start, denoise_start;
    canvas_cancel_fn cancel;
    void *cancel_ctx;
} progress_relay;

void canvas_model_fill_progress(const canvas_model *m, canvas_progress *p)
{
    mem_device_stats device, host;
    mem_device_get_stats(mem_device_is_host(m->device) ? m->host : m->device, &device);
    mem_device_get_stats(m->host, &host);
    p->on_device = !mem_device_is_host(m->device);
    p->device_bytes = device.current_bytes;
    p->device_peak_bytes = device.peak_bytes;
    p->host_bytes = host.current_bytes;
    p->host_peak_bytes = host.peak_bytes;
}

static void relay(progress_relay *r, canvas_progress *p)
{
    p->phase = r->phase ? r->phase : "";
    if (!p->message) p->message = "";
    p->phase_seconds = clock_seconds() - r->phase_start;
    canvas_model_fill_progress(r->model, p);
    r->fn(r->ctx, p);
}

static void on_plan(void *ctx, const char *message)
{
    progress_relay *r = ctx;
    if (!r->fn) return;
    canvas_progress p = {.kind = CANVAS_PROGRESS_PLAN, .message = message};
    relay(r, &p);
}

static void on_phase(void *ctx, const char *phase)
{
    progress_relay *r = ctx;
    r->phase = phase;
    r->phase_start = clock_seconds();
    if (!strcmp(phase, "denoise")) r->denoise_start = r->phase_start;
    if (!r->fn) return;
    canvas_progress p = {.kind = CANVAS_PROGRESS_PHASE};
    relay(r, &p);
}

static canvas_status on_step(void *ctx, int step, int steps, const float *latents, int64_t tokens, int64_t channels)
{
    progress_relay *r = ctx;
    if (!r->fn) return CANVAS_OK;
    canvas_progress p = {.kind = CANVAS_PROGRESS_STEP, .step = step, .steps = steps, .latents = latents,
                         .latent_tokens = tokens, .latent_channels = channels};
    p.seconds_per_step = (clock_seconds() - r->denoise_start) / step;
    relay(r, &p);
    return CANVAS_OK;
}

static int on_cancel(void *ctx)
{
    progress_relay *r = ctx;
    return r->cancel && r->cancel(r->cancel_ctx);
}

/* ---- edit / generate -------------------------------------------------------------------- */

static canvas_status run_pipeline(canvas_model *model, const canvas_prompt *prompt, const canvas_image *images,
                                  int n_images, const canvas_edit_params *params, canvas_progress_fn progress,
                                  void *progress_ctx, canvas_image *out)
{
    if (!out) return status_fail(CANVAS_ERR_USAGE, "no output image given");
    memset(out, 0, sizeof *out);
    if (!model || !prompt) return status_fail(CANVAS_ERR_USAGE, "a model and a prompt are required");
    if (n_images < 0 || (n_images > 0 && !images))
        return status_fail(CANVAS_ERR_USAGE, "%d reference images expected", n_images);
    canvas_edit_params defaults;
    canvas_edit_params_default(&defaults);
    if (!params) params = &defaults;

    edit_request r;
    edit_request_from_params(&r, prompt, images, n_images, params);

    /* the request's own scheduler: the model's stays as it is, even during the run */
    scheduler_config lightning;
    if (params->lightning_scheduler) {
        scheduler_config_lightning(&lightning);
        r.scheduler = &lightning;
    }

    progress_relay relay_state = {model, progress, progress_ctx, NULL, clock_seconds(), clock_seconds(),
                                  params->cancel, params->cancel_ctx};
    edit_observer observer = {.plan = on_plan, .phase = on_phase, .step = on_step, .cancelled = on_cancel,
                              .ctx = &relay_state};
    float *image = NULL;
    int width = 0, height = 0;
    mem_scope *outer = canvas_model_enter(model);
    canvas_status st = edit_run(model->pipeline, &r, &observer, &image, &width, &height);
    mem_scope_leave(outer); /* the image is the caller's, not the model's */
    if (st == CANVAS_OK) st = image_alloc(width, height, out);
    if (st == CANVAS_OK) edit_to_rgb8(image, (int64_t)width * height * 3, out->pixels);
    mem_free(image);
    if (st != CANVAS_OK) {
        image_free(out);
        return st;
    }
    if (progress) {
        canvas_progress p = {.kind = CANVAS_PROGRESS_DONE};
        relay(&relay_state, &p);
    }
    return CANVAS_OK;
}

canvas_status canvas_check_params(canvas_model *model, const canvas_edit_params *params)
{
    if (!model || !params) return status_fail(CANVAS_ERR_USAGE, "canvas_check_params: a model and parameters are required");
    scheduler_config lightning;
    if (params->lightning_scheduler) scheduler_config_lightning(&lightning);
    return scheduler_check_steps(params->lightning_scheduler ? &lightning : &model->pipeline->scheduler, params->steps);
}

canvas_status canvas_edit(canvas_model *model, const canvas_prompt *prompt, const canvas_image *images,
                          int n_images, const canvas_edit_params *params, canvas_progress_fn progress,
                          void *progress_ctx, canvas_image *out)
{
    if (n_images < 1) {
        if (out) memset(out, 0, sizeof *out);
        return status_fail(CANVAS_ERR_USAGE, "an edit needs at least one image (canvas_generate makes one from text)");
    }
    return run_pipeline(model, prompt, images, n_images, params, progress, progress_ctx, out);
}

canvas_status canvas_generate(canvas_model *model, const canvas_prompt *prompt, const canvas_edit_params *params,
                              canvas_progress_fn progress, void *progress_ctx, canvas_image *out)
{
    return run_pipeline(model, prompt, NULL, 0, params, progress, progress_ctx, out);
}

/* ---- memory and profile ----------------------------------------------------------------- */

canvas_status canvas_memory_snapshot_take(const canvas_model *model, canvas_memory_snapshot *out)
{
    if (!model || !out) return status_fail(CANVAS_ERR_USAGE, "canvas_memory_snapshot_take: model and out are required");
    memset(out, 0, sizeof *out);
    mem_device_stats device, host;
    mem_device_get_stats(model->device, &device);
    mem_device_get_stats(model->host, &host);
    /* the profiler restarts the devices' peaks at each phase: the peak since open (or the
     * profile's reset) is the largest over the phases, their summary and the current one */
    size_t device_peak = device.peak_bytes, host_peak = host.peak_bytes;
    int n_earlier;
    const profiler_phase *earlier = profiler_earlier(model->profiler, &n_earlier);
    for (int i = -1; i < profiler_phase_count(model->profiler); i++) {
        const profiler_phase *ph = i < 0 ? earlier : profiler_phase_at(model->profiler, i);
        if (!ph) continue;
        if (ph->device_peak_bytes > device_peak) device_peak = ph->device_peak_bytes;
        if (ph->host_peak_bytes > host_peak) host_peak = ph->host_peak_bytes;
    }
    if (!mem_device_is_host(model->device)) {
        out->device_cap_bytes = device.cap_bytes;
        out->device_bytes = device.current_bytes;
        out->device_peak_bytes = device_peak;
        out->device_weight_bytes = device.classes[MEM_WEIGHTS].current_bytes;
        out->device_activation_bytes = device.classes[MEM_ACTIVATIONS].current_bytes;
    }
    out->host_bytes = host.current_bytes;
    out->host_peak_bytes = host_peak;
    out->host_weight_bytes = host.classes[MEM_WEIGHTS].current_bytes;
    out->host_cap_bytes = host.cap_bytes;
    if (sysinfo_rss(&out->host_rss_bytes) != CANVAS_OK) status_clear();
    if (sysinfo_mem_available(&out->mem_available_bytes) != CANVAS_OK) status_clear();
    const qwen_dit_model *dit = model->pipeline->dit;
    out->total_blocks = dit->config.num_layers;
    out->resident_blocks = mem_device_is_host(model->device) ? out->total_blocks
                           : qwen_dit_device(dit) == model->device ? qwen_dit_resident_blocks(dit)
                                                              : 0;
    return CANVAS_OK;
}

int canvas_profile_phase_count(const canvas_model *model) { return model ? profiler_phase_count(model->profiler) : 0; }

canvas_status canvas_profile_phase(const canvas_model *model, int index, canvas_phase_profile *out)
{
    if (!model || !out || index < 0 || index >= profiler_phase_count(model->profiler))
        return status_fail(CANVAS_ERR_USAGE, "profile phase %d does not exist", index);
    const profiler_phase *ph = profiler_phase_at(model->profiler, index);
    memset(out, 0, sizeof *out);
    out->name = ph->name;
    out->start_seconds = ph->start_seconds;
    out->seconds = ph->seconds;
    out->device_peak_bytes = ph->device_peak_bytes;
    out->host_peak_bytes = ph->host_peak_bytes;
    out->pinned_peak_bytes = ph->pinned_peak_bytes;
    out->transfer_bytes = ph->transfer_bytes;
    out->transfer_wait_seconds = ph->transfer_wait_seconds;
    return CANVAS_OK;
}

canvas_status canvas_profile_reset(canvas_model *model)
{
    if (!model) return status_fail(CANVAS_ERR_USAGE, "canvas_profile_reset: no model");
    profiler_reset(model->profiler);
    return CANVAS_OK;
}

canvas_status canvas_profile_write_report(const canvas_model *model, const char *path)
{
    if (!model || !path) return status_fail(CANVAS_ERR_USAGE, "canvas_profile_write_report: model and path are required");
    return profiler_write_report(model->profiler, path);
}

canvas_status canvas_profile_write_trace(const canvas_model *model, const char *path)
{
    if (!model || !path) return status_fail(CANVAS_ERR_USAGE, "canvas_profile_write_trace: model and path are required");
    return profiler_write_trace(model->profiler, path);
}
