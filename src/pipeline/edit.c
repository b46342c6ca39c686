/* SPDX-License-Identifier: Apache-2.0 */
/* edit.c — the Edit-Plus / text-to-image pipeline's object: its components opened from a
 * folder or single files, the LoRAs merged, the transformer reloaded in another format. A run
 * is edit_run.c (its phases) and edit_place.c (where the transformer goes, and the fallbacks);
 * the walk-through is in edit.h and docs/pipeline.md. */
#include "pipeline/edit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "base/status.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "pipeline/lora.h"
#include "plan/plan.h"

enum { PATH_SIZE = PATH_BUFFER_SIZE };

/* ---- open / close ----------------------------------------------------------------------- */

/* The Qwen-Image family's scheduler_config.json (spec §4.5), for a folder without one. */
static void qwen_image_scheduler(scheduler_config *c)
{
    scheduler_config_default(c);
    c->use_dynamic_shifting = true;
    c->base_shift = 0.5;
    c->max_shift = 0.9;
    c->base_image_seq_len = 256;
    c->max_image_seq_len = 8192;
    c->shift_terminal = 0.02;
    c->time_shift = TIME_SHIFT_EXPONENTIAL;
}

canvas_status edit_scheduler_load(const char *model_dir, scheduler_config *out)
{
    char path[PATH_SIZE];
    if (!model_dir) { /* components from files alone */
        qwen_image_scheduler(out);
        return CANVAS_OK;
    }
    TRY(path_join(path, sizeof path, model_dir, "scheduler/scheduler_config.json"));
    struct stat probe; /* not opened to probe: a FIFO there must not block; the load refuses it */
    if (stat(path, &probe) == 0) return scheduler_config_load(path, out);
    qwen_image_scheduler(out);
    return CANVAS_OK;
}

/* Without a folder: the pipeline Qwen-Image-Edit-2511 declares (its model_index.json). */
static void known_index(pipeline_index *index)
{
    static const char *const parts[][3] = {{"scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"},
                                           {"transformer", "diffusers", "QwenImageTransformer2DModel"},
                                           {"vae", "diffusers", "AutoencoderKLQwenImage"}};
    memset(index, 0, sizeof *index);
    snprintf(index->class_name, sizeof index->class_name, "QwenImageEditPlusPipeline");
    for (int i = 0; i < 3; i++) {
        pipeline_component *c = &index->components[index->n_components++];
        snprintf(c->name, sizeof c->name, "%s", parts[i][0]);
        snprintf(c->library, sizeof c->library, "%s", parts[i][1]);
        snprintf(c->class_name, sizeof c->class_name, "%s", parts[i][2]);
    }
}

/* A component's weights: its file when given, else the folder's sub-folder `name`. */
static canvas_status component_path(const edit_sources *src, const char *file, const char *name, const char *flag,
                                    char *out, size_t size)
{
    if (file) { /* a missing file must not be taken for a folder */
        if (!weights_is_file(file)) return status_fail(CANVAS_ERR_INPUT, "%s: not a file (the %s given as one)", file, name);
        if (snprintf(out, size, "%s", file) >= (int)size) return status_fail(CANVAS_ERR_INPUT, "%s: path too long", file);
        return CANVAS_OK;
    }
    if (!src->model_dir)
        return status_fail(CANVAS_ERR_USAGE, "no %s: give a model folder or the %s's file (%s)", name, name, flag);
    return path_join(out, size, src->model_dir, name);
}

static canvas_status open_components(edit_pipeline *p, const edit_sources *src)
{
    char path[PATH_SIZE];
    const char *model_dir = src->model_dir;
    if (model_dir) {
        TRY(path_join(path, sizeof path, model_dir, "model_index.json"));
        canvas_status st = pipeline_index_load(path, &p->index);
        if (st != CANVAS_OK)
            return status_wrap(st, "%s: not a pipeline folder (model_index.json, transformer/, vae/): ", model_dir);
    } else {
        known_index(&p->index);
    }
    TRY(edit_scheduler_load(model_dir, &p->scheduler));
    TRY(component_path(src, src->vae, "vae", "--vae", path, sizeof path));
    TRY(vae_load(path, &p->vae));
    TRY(component_path(src, src->transformer, "transformer", "--transformer", path, sizeof path));
    TRY(qwen_dit_load(path, &p->dit));
    if (src->text_encoder || model_dir) {
        TRY(component_path(src, src->text_encoder, "text_encoder", "--text-encoder", path, sizeof path));
        TRY(mem_strdup(&p->text_encoder, path));
    }
    const int z = p->vae->config.z_dim;
    if (p->dit->config.in_channels != 4 * z || qwen_dit_output_channels(&p->dit->config) != 4 * z)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: the transformer takes %d and gives %lld channels per token, the VAE's packed latents "
                           "have %d (4 x z_dim %d): the components do not belong together",
                           p->dit->component_dir, p->dit->config.in_channels,
                           (long long)qwen_dit_output_channels(&p->dit->config), 4 * z, z);
    return CANVAS_OK;
}

static canvas_status open_sources(const edit_sources *src, edit_pipeline **out)
{
    *out = NULL;
    edit_pipeline *p;
    TRY(mem_calloc((void **)&p, 1, sizeof *p, MEM_SCRATCH));
    p->resident_blocks = -1;
    p->placed_blocks = -1;
    p->planned.preset = -1;
    p->strategy = PLAN_AUTO;
    p->fallback_enabled = 1;
    p->oom_retry_attempts = 3;
    canvas_status st = src->model_dir ? mem_strdup(&p->model_dir, src->model_dir) : CANVAS_OK;
    if (st == CANVAS_OK) st = open_components(p, src);
    if (st != CANVAS_OK) {
        edit_pipeline_close(p);
        return st;
    }
    *out = p;
    return CANVAS_OK;
}

canvas_status edit_pipeline_open(const char *model_dir, edit_pipeline **out)
{
    const edit_sources src = {.model_dir = model_dir};
    return open_sources(&src, out);
}

void edit_load_tries_begin(edit_load_tries *tries)
{
    mem_refusal last;
    mem_last_refusal(&last);
    *tries = (edit_load_tries){0, last.count, {0}};
}

int edit_load_retry(const edit_load_policy *policy, canvas_status st, edit_load_tries *tries, const char *what)
{
    if (!policy || st != CANVAS_ERR_OUT_OF_MEMORY || !policy->fallback_enabled ||
        tries->attempts >= policy->oom_retry_attempts)
        return 0;
    mem_refusal last;
    mem_last_refusal(&last);
    if (last.count == tries->refusals) last.count = 0; /* not refused for lack of room (injected) */
    if (last.count && tries->refusal.count && mem_refusal_same(&last, &tries->refusal)) return 0;
    tries->refusal = last;
    tries->refusals = last.count ? last.count : tries->refusals;
    tries->attempts++;
    char line[768];
    snprintf(line, sizeof line, "fallback: out of memory %s (%s): released what it held, loading again (%d of %d)",
             what, canvas_last_error(), tries->attempts, policy->oom_retry_attempts);
    if (policy->profiler) profiler_note_fallback(policy->profiler, line);
    if (policy->say) policy->say(policy->say_ctx, line);
    status_clear();
    return 1;
}

canvas_status edit_pipeline_open_sources(const edit_sources *src, const edit_load_policy *policy, edit_pipeline **out)
{
    canvas_status st;
    edit_load_tries tries;
    edit_load_tries_begin(&tries);
    while ((st = open_sources(src, out)) != CANVAS_OK)
        if (!edit_load_retry(policy, st, &tries, "loading the model")) return st;
    return CANVAS_OK;
}

canvas_status edit_pipeline_open_retrying(const char *model_dir, const edit_load_policy *policy, edit_pipeline **out)
{
    const edit_sources src = {.model_dir = model_dir};
    return edit_pipeline_open_sources(&src, policy, out);
}

static void free_loras(lora_spec *loras, int n)
{
    for (int i = 0; i < n; i++) mem_free((void *)loras[i].path);
    mem_free(loras);
}

canvas_status edit_pipeline_add_loras(edit_pipeline *p, thread_pool *pool, const lora_spec *specs, int n)
{
    if (n <= 0) return CANVAS_OK;
    lora_spec *all;
    const int total = p->n_loras + n;
    TRY(mem_calloc((void **)&all, (size_t)total, sizeof *all, MEM_SCRATCH));
    canvas_status st = CANVAS_OK;
    for (int i = 0; st == CANVAS_OK && i < total; i++) {
        const lora_spec *from = i < p->n_loras ? &p->loras[i] : &specs[i - p->n_loras];
        all[i] = *from;
        all[i].path = NULL;
        st = mem_strdup((char **)&all[i].path, from->path);
    }
    if (st == CANVAS_OK) st = lora_apply_specs(p->dit, pool, specs, n);
    if (st != CANVAS_OK) {
        free_loras(all, total);
        return st;
    }
    free_loras(p->loras, p->n_loras);
    p->loras = all;
    p->n_loras = total;
    return CANVAS_OK;
}

/* The transformer alone, reloaded from its folder in `format`, with the LoRAs merged again
 * at their scales; replaces p->dit only when all of that worked. */
canvas_status edit_reload_transformer(edit_pipeline *p, quant_choice format)
{
    qwen_dit_model *fresh;
    TRY(qwen_dit_load_quantized(p->dit->component_dir, format, &fresh));
    canvas_status st = lora_apply_specs(fresh, p->pool, p->loras, p->n_loras);
    if (st != CANVAS_OK) {
        qwen_dit_free(fresh);
        return status_wrap(st, "merging the LoRAs again after reloading the transformer as %s: ",
                           quant_choice_name(format));
    }
    qwen_dit_free(p->dit);
    p->dit = fresh;
    return CANVAS_OK;
}

canvas_status edit_pipeline_set_lora_scale(edit_pipeline *p, int index, float scale)
{
    if (index < 0 || index >= p->n_loras)
        return status_fail(CANVAS_ERR_USAGE, "LoRA %d: the model has %d LoRA file(s) (0-based index)", index,
                           p->n_loras);
    if (!isfinite(scale)) return status_fail(CANVAS_ERR_USAGE, "LoRA %d: the scale must be a finite number", index);
    const float before = p->loras[index].scale;
    p->loras[index].scale = scale;
    canvas_status st = edit_reload_transformer(p, p->dit->weights_format);
    if (st != CANVAS_OK) {
        p->loras[index].scale = before;
        return st;
    }
    p->placed_blocks = -1; /* the fresh transformer is placed at the next run */
    return CANVAS_OK;
}

void edit_pipeline_close(edit_pipeline *p)
{
    if (!p) return;
    free_loras(p->loras, p->n_loras);
    qwen_dit_free(p->dit);
    vae_free(p->vae);
    mem_free(p->model_dir);
    mem_free(p->text_encoder);
    mem_free(p);
}

void edit_pipeline_attach(edit_pipeline *p, const edit_runtime *runtime)
{
    p->pool = runtime->pool;
    p->device = runtime->device;
    p->dit_backend = runtime->dit_backend;
    p->host = runtime->host;
    p->profiler = runtime->profiler;
}

void edit_pipeline_get_policy(const edit_pipeline *p, edit_policy *out)
{
    *out = (edit_policy){
        .resident_blocks = p->resident_blocks,
        .strategy = p->strategy,
        .n_preferred = p->n_preferred,
        .allow_quantize = p->allow_quantize,
        .fp8 = p->fp8,
        .headroom_bytes = p->headroom_bytes,
        .fallback_enabled = p->fallback_enabled,
        .oom_retry_attempts = p->oom_retry_attempts,
    };
    memcpy(out->preferred, p->preferred, sizeof out->preferred);
}

canvas_status edit_pipeline_set_policy(edit_pipeline *p, const edit_policy *policy)
{
    if (policy->n_preferred < 0 || policy->n_preferred > 8 || policy->oom_retry_attempts < 1)
        return status_fail(CANVAS_ERR_USAGE, "pipeline policy: %d preferred presets (0 to 8), %d retries (at least 1)",
                           policy->n_preferred, policy->oom_retry_attempts);
    const quant_choice loaded = p->dit->weights_format;
    if (!plan_weights_allowed(loaded, plan_preset_weights((plan_preset)policy->strategy, loaded),
                              policy->allow_quantize, policy->fp8))
        return status_fail(CANVAS_ERR_USAGE, "strategy %s stores the transformer below the precision it was loaded in: "
                           "allow quantising (--allow-quantize, canvas_options.allow_quantize) or take another strategy",
                           plan_preset_name((plan_preset)policy->strategy));
    p->resident_blocks = policy->resident_blocks;
    p->strategy = policy->strategy;
    memcpy(p->preferred, policy->preferred, sizeof p->preferred);
    p->n_preferred = policy->n_preferred;
    p->allow_quantize = policy->allow_quantize ? 1 : 0;
    p->fp8 = policy->fp8;
    p->headroom_bytes = policy->headroom_bytes;
    p->fallback_enabled = policy->fallback_enabled ? 1 : 0;
    p->oom_retry_attempts = policy->oom_retry_attempts;
    p->placed_blocks = -1; /* placed (and planned) again at the next run */
    return CANVAS_OK;
}
