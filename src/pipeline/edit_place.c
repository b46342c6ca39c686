/* SPDX-License-Identifier: Apache-2.0 */
/* edit_place.c — where a run's transformer goes and what happens when memory runs out: the
 * host budget read before every phase, the planner asked with this run's work and limits,
 * the placement made or re-used, and the fallback policy (re-plan for what is free now, down
 * the chain of weight formats when allowed). The run's phases are edit_run.c. */
#include <stdio.h>
#include <string.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "pipeline/edit_run_internal.h"

/* ---- host memory --------------------------------------------------------------------------- */

/* The host memory the run may use, read again before every phase (someone else may have
 * taken some): the --ram cap, and what the machine has available (MemAvailable) plus what
 * the run holds already, whichever is less; 0: neither is known. *held: what it holds. */
uint64_t run_host_budget(const run *s, uint64_t *held)
{
    mem_device_stats host;
    mem_device_get_stats(s->p->host ? s->p->host : mem_device_cpu(), &host);
    *held = host.current_bytes;
    uint64_t budget = host.cap_bytes, available;
    if (sysinfo_mem_available(&available) != CANVAS_OK) {
        status_clear();
        return budget;
    }
    available += host.current_bytes;
    return budget && budget < available ? budget : available;
}

/* The bytes of the latents buffers that prepare allocated (the planner's `latents`). */
static uint64_t run_latents_bytes(const run *s)
{
    const uint64_t buffer = (uint64_t)s->n_img * (uint64_t)s->channels * sizeof(float);
    return (s->hidden ? buffer : 0) + (s->output ? buffer : 0) + (s->negative_output ? buffer : 0);
}

/* ---- the transformer's placement -------------------------------------------------------- */

static void describe_plan(run *s, int resident, size_t cap)
{
    char message[1024], cap_text[32], weights_text[32], arena_text[32];
    const qwen_dit_model *dit = s->p->dit;
    int layers = dit->config.num_layers;
    const char *vae = run_vae_device_backend(s) ? (s->vae_tiled ? "tiled, on the device for each pass that fits there"
                                                                 : "whole, on the device for each pass that fits there")
                      : s->vae_tiled ? "tiled (host memory)" : "whole (host memory)";
    if (mem_device_is_host(s->device)) {
        snprintf(message, sizeof message,
                 "plan: transformer in host memory (%d blocks, weights read in place from the files), %lld target + "
                 "%lld reference tokens, %s; VAE %s",
                 layers, (long long)s->n_target, (long long)(s->n_img - s->n_target),
                 s->cfg ? "true CFG (2 calls a step)" : "no CFG", vae);
    } else {
        const op_backend cpu = op_backend_cpu(s->p->pool);
        size_t arena = qwen_dit_forward_arena_bytes(dit, s->p->dit_backend ? s->p->dit_backend : &cpu, s->n_img,
                                               s->r->negative.values && s->r->negative.length > s->r->prompt.length
                                                   ? s->r->negative.length
                                                   : s->r->prompt.length);
        snprintf(message, sizeof message,
                 "plan: transformer on the %s device: %d of %d blocks resident, %d streamed through 2 buffers; "
                 "weights %s + activations %s on the device; %lld target + %lld reference tokens, %s; VAE %s",
                 size_format(cap, cap_text, sizeof cap_text), resident, layers, layers - resident,
                 size_format(qwen_dit_weight_device_bytes(dit, resident), weights_text, sizeof weights_text),
                 size_format(arena, arena_text, sizeof arena_text), (long long)s->n_target,
                 (long long)(s->n_img - s->n_target), s->cfg ? "true CFG (2 calls a step)" : "no CFG", vae);
    }
    if (s->p->plan_line[0]) {
        size_t used = strlen(message);
        snprintf(message + used, sizeof message - used, "; planner: %s", s->p->plan_line);
    }
    run_tell_plan(s, message);
}

/* The planner's view of this run (plan/plan.h). */
static void plan_inputs(run *s, const qwen_dit_inputs *longest, int same_format_only, plan_work *w, plan_limits *l,
                        plan_hardware *hw)
{
    edit_pipeline *p = s->p;
    plan_work_edit(w, &p->dit->config, &p->vae->config, s->width, s->height, 0, 0, 0, longest->n_txt, s->cfg,
                   s->r->steps, thread_pool_size(p->pool));
    w->n_refs = s->r->n_images < PLAN_MAX_REFERENCES ? s->r->n_images : PLAN_MAX_REFERENCES;
    for (int i = 0; i < w->n_refs; i++) {
        w->ref_width[i] = s->refs[i].vae_width;
        w->ref_height[i] = s->refs[i].vae_height;
    }
    w->n_img = longest->n_img;
    w->n_target = s->n_target;
    w->backend = p->dit_backend;
    plan_work_loaded(w, p->dit, NULL, p->vae);
    memset(l, 0, sizeof *l);
    if (!mem_device_is_host(s->device)) {
        mem_device_stats stats;
        mem_device_get_stats(s->device, &stats);
        l->device_bytes = stats.cap_bytes;
        l->device_free_bytes = stats.largest_free_block ? stats.largest_free_block : 1;
    }
    /* what the run holds now that the phases' formulas do not count: the host weights and
     * the latents buffers are theirs, everything else (tables, names, inputs) is held through */
    uint64_t held;
    l->host_bytes = run_host_budget(s, &held);
    mem_device_stats host;
    mem_device_get_stats(p->host ? p->host : mem_device_cpu(), &host);
    l->host_is_cap = host.cap_bytes && l->host_bytes == host.cap_bytes;
    const uint64_t counted = host.classes[MEM_WEIGHTS].current_bytes + run_latents_bytes(s);
    l->host_held_bytes = held > counted ? held - counted : 0;
    l->headroom_bytes = p->headroom_bytes;
    l->allow_quantize = same_format_only ? 0 : p->allow_quantize;
    l->fp8 = same_format_only ? 0 : p->fp8;
    l->same_format_only = same_format_only;
    double link = !mem_device_is_host(s->device) ? mem_device_link_bandwidth(s->device) : 0;
    if (plan_probe(thread_pool_size(p->pool), link, 2, hw) != CANVAS_OK) status_clear();
}

/* The weight formats a fallback may go down to when nothing in the loaded one fits: fp8,
 * then nf4, or the order the preference list gives them; only below the loaded format
 * (plan_make refuses them unless the user allows quantising). Returns how many. */
static int lower_presets(const edit_pipeline *p, plan_preset out[2])
{
    const quant_format loaded = p->dit->weights_format.format;
    const int below_fp8 = loaded == QUANT_NONE, below_nf4 = loaded == QUANT_NONE || loaded == QUANT_FP8_E4M3 ||
                                                               loaded == QUANT_FP8_E5M2 || loaded == QUANT_Q8_0;
    int n = 0;
    for (int i = 0; i < p->n_preferred && n < 2; i++) {
        if (p->preferred[i] == PLAN_FP8 && below_fp8) out[n++] = PLAN_FP8;
        if (p->preferred[i] == PLAN_NF4 && below_nf4) out[n++] = PLAN_NF4;
    }
    if (p->n_preferred > 0) return n;
    if (below_fp8) out[n++] = PLAN_FP8;
    if (below_nf4) out[n++] = PLAN_NF4;
    return n;
}

/* Ask the planner and put the transformer where it says: its weight format (reloading
 * the transformer alone when that changes) and resident prefix. `fallback`: after an
 * out-of-memory, the best plan for what is free now: in the same weight format (fewer
 * resident blocks, then streaming every block), else down the chain of lower formats
 * (lower_presets), saying so in s->format_change. PLACE_DEVICE_GREW (the device's cap went up
 * since the last plan, by more than the headroom): with strategy auto, the transformer goes
 * back to its format before any plan first (memory came back). */

canvas_status run_plan_and_place(run *s, const qwen_dit_inputs *longest, place_reason why)
{
    edit_pipeline *p = s->p;
    const int fallback = why == PLACE_AFTER_OOM;
    plan_work w;
    plan_limits l;
    plan_hardware hw;
    plan_result result;
    s->format_change[0] = '\0';
    /* release the device first: the plan is for what is free without the old placement */
    if (qwen_dit_device(p->dit) && qwen_dit_device(p->dit) != mem_device_cpu())
        TRY(qwen_dit_place(p->dit, mem_device_cpu(), QWEN_DIT_ALL_BLOCKS));
    if (!p->have_open_weights) {
        p->open_weights = p->dit->weights_format;
        p->have_open_weights = 1;
    }
    const quant_choice now = p->dit->weights_format;
    if (why == PLACE_DEVICE_GREW && p->strategy == PLAN_AUTO &&
        (now.format != p->open_weights.format || now.per_channel != p->open_weights.per_channel))
        TRY(edit_reload_transformer(p, p->open_weights));
    plan_inputs(s, longest, fallback, &w, &l, &hw);
    /* a preference list: the first preset that fits, in order */
    const int preferring = !fallback && p->strategy == PLAN_AUTO ? p->n_preferred : 0;
    for (int i = 0; i < preferring; i++) {
        TRY(plan_make(&w, &hw, &l, (plan_preset)p->preferred[i], p->pool, &result));
        if (result.chosen >= 0) break;
    }
    /* run_check_viable made this very plan (same strategy, the whole device free) before the encode */
    const int same_as_viable = s->have_viable && why == PLACE_NEW && preferring == 0 &&
                               l.device_free_bytes == l.device_bytes;
    if (same_as_viable) result = s->viable;
    else if (preferring == 0 || result.chosen < 0)
        TRY(plan_make(&w, &hw, &l, fallback ? PLAN_AUTO : (plan_preset)p->strategy, p->pool, &result));
    if (result.chosen < 0 && fallback) {
        plan_preset lower[2];
        const int n = lower_presets(p, lower);
        plan_result below;
        l.same_format_only = 0;
        l.allow_quantize = p->allow_quantize;
        l.fp8 = p->fp8;
        for (int i = 0; i < n && result.chosen < 0; i++) {
            TRY(plan_make(&w, &hw, &l, lower[i], p->pool, &below));
            if (below.chosen >= 0 && below.candidates[below.chosen].point.preset == lower[i]) {
                result = below;
                snprintf(s->format_change, sizeof s->format_change, "from %s to %s",
                         p->dit->weights_format.format == QUANT_NONE ? "the files' precision"
                                                                     : quant_choice_name(p->dit->weights_format),
                         plan_preset_name(lower[i]));
            }
        }
    }
    if (result.chosen < 0) {
        s->no_plan_fits = 1; /* no fallback can help: say what would */
        return plan_no_fit(&result, &l);
    }
    const plan_candidate *c = &result.candidates[result.chosen];
    s->vae_tiled = c->point.vae_tiled; /* the decode as planned (each pass still re-reads the budget) */
    if (c->point.weights.format != p->dit->weights_format.format ||
        c->point.weights.per_channel != p->dit->weights_format.per_channel)
        TRY(edit_reload_transformer(p, c->point.weights)); /* the transformer alone, in the plan's format */
    plan_describe(c, &w, p->plan_line, sizeof p->plan_line);
    plan_timing_key(&w, &hw, &c->point, l.device_bytes != 0, p->planned_timing_key, sizeof p->planned_timing_key);
    p->planned = (edit_plan_record){c->point.preset, c->point.resident_blocks, c->point.weights, c->peak.device,
                                    c->peak.pinned, c->peak.host, c->seconds_per_step};
    /* without a device the profiler's device is host memory: its peak is the host one */
    const uint64_t device_peak = mem_device_is_host(s->device) ? c->peak.host : c->peak.device;
    if (p->profiler) profiler_note_prediction(p->profiler, &(profiler_prediction){device_peak, c->peak.pinned, c->peak.host});
    return qwen_dit_place(p->dit, s->device, mem_device_is_host(s->device) ? QWEN_DIT_ALL_BLOCKS : c->point.resident_blocks);
}

/* The host budget still holds the last plan's host peak (or nothing was planned). */
static int host_plan_holds(const run *s)
{
    const edit_plan_record *planned = &s->p->planned;
    uint64_t held;
    const uint64_t budget = run_host_budget(s, &held);
    return planned->preset < 0 || !budget || planned->host + planned->pinned <= budget;
}

/* The last placement serves this run: same device, token counts and (within the headroom)
 * cap, the resident prefix asked for, and a host budget (read now) that still holds the plan. */
static int placement_reusable(const run *s, const qwen_dit_inputs *longest)
{
    const edit_pipeline *p = s->p;
    mem_device_stats stats;
    mem_device_get_stats(s->device, &stats);
    const size_t moved = stats.cap_bytes > p->placed_cap ? stats.cap_bytes - p->placed_cap : p->placed_cap - stats.cap_bytes;
    return p->placed_blocks >= 0 && p->placed_device == s->device && p->placed_n_img == longest->n_img &&
           p->placed_n_txt == longest->n_txt && qwen_dit_device(p->dit) == s->device && moved <= p->headroom_bytes &&
           (p->resident_blocks < 0 || p->resident_blocks == p->placed_blocks) && host_plan_holds(s);
}

/* Before the VAE encode: whether any plan of the strategy asked for fits the whole device
 * (its cap, as if the transformer held none of it: the placement may be re-made) and the
 * host budget, the way run_plan_and_place will ask. No plan: the out-of-memory that
 * run_plan_and_place would give, now, with the minimum it needs (a --ram below the host
 * plan's minimum would otherwise end in whichever phase first passed the cap, saying only
 * that phase's bytes). Nothing to check with a fixed --resident-blocks on a device (no plan
 * is made), or when the last placement will be re-used (run_place_transformer). */
canvas_status run_check_viable(run *s, const qwen_dit_inputs *longest)
{
    edit_pipeline *p = s->p;
    if ((!mem_device_is_host(s->device) && p->resident_blocks >= 0) || placement_reusable(s, longest))
        return CANVAS_OK;
    plan_work w;
    plan_limits l;
    plan_hardware hw;
    plan_result result;
    plan_inputs(s, longest, 0, &w, &l, &hw);
    l.device_free_bytes = 0; /* the whole device */
    TRY(plan_make(&w, &hw, &l, p->n_preferred ? PLAN_AUTO : (plan_preset)p->strategy, p->pool, &result));
    if (result.chosen >= 0) {
        s->vae_tiled = result.candidates[result.chosen].point.vae_tiled; /* the encode as planned */
        s->viable = result;
        s->have_viable = p->n_preferred == 0;
        return CANVAS_OK;
    }
    s->no_plan_fits = 1;
    return plan_no_fit(&result, &l);
}

/* Remember the placement (`blocks` resident) and the token counts it was made for: the
 * next run with the same counts re-uses it. */
void run_record_placement(run *s, const qwen_dit_inputs *longest, int blocks)
{
    edit_pipeline *p = s->p;
    p->placed_blocks = blocks;
    p->placed_device = s->device;
    p->placed_n_img = longest->n_img;
    p->placed_n_txt = longest->n_txt;
    mem_device_stats stats;
    mem_device_get_stats(s->device, &stats);
    p->placed_cap = stats.cap_bytes;
}

/* Put the transformer on the device for this run's token counts (planning when asked).
 * `retry`: the placement before ran out of memory: re-plan for what is free now, down the
 * fallback chain (run_plan_and_place), whatever the strategy or --resident-blocks asked. */
canvas_status run_place_transformer(run *s, const qwen_dit_inputs *longest, int retry)
{
    edit_pipeline *p = s->p;
    mem_device_stats stats;
    mem_device_get_stats(s->device, &stats);
    if (placement_reusable(s, longest)) {
        describe_plan(s, p->placed_blocks, stats.cap_bytes);
        return CANVAS_OK;
    }
    p->placed_blocks = -1;
    p->plan_line[0] = '\0';
    p->planned.preset = -1;
    p->planned_timing_key[0] = '\0';
    int k = p->resident_blocks;
    if (k > p->dit->config.num_layers) k = p->dit->config.num_layers;
    if (k < 0 || retry || mem_device_is_host(s->device)) {
        const place_reason why = retry ? PLACE_AFTER_OOM
                                 : p->placed_device == s->device && stats.cap_bytes > p->placed_cap + p->headroom_bytes
                                     ? PLACE_DEVICE_GREW
                                     : PLACE_NEW;
        TRY(run_plan_and_place(s, longest, why));
        k = qwen_dit_resident_blocks(p->dit);
        if (s->format_change[0]) {
            char message[256];
            snprintf(message, sizeof message, "plan: nothing in the loaded weight format fits what is free: weights "
                     "lowered %s (within that format's error bound)", s->format_change);
            run_tell_plan(s, message);
        }
    } else {
        TRY(qwen_dit_place(p->dit, s->device, k));
    }
    run_record_placement(s, longest, k);
    describe_plan(s, k, stats.cap_bytes);
    return CANVAS_OK;
}

/* An out-of-memory that a fallback may handle: with `say`, counts it and says so in one
 * fallback line (without, the caller does once it knows what the fallback did); clears the reason. 0 when it must be returned (other status, fallbacks off or used up). */
int run_fallback_allowed(run *s, canvas_status st, int *attempts, const char *where, int say)
{
    edit_pipeline *p = s->p;
    if (st != CANVAS_ERR_OUT_OF_MEMORY || !p->fallback_enabled || *attempts >= p->oom_retry_attempts ||
        s->no_plan_fits)
        return 0;
    mem_device_stats host, device = {0};
    mem_device_get_stats(p->host ? p->host : mem_device_cpu(), &host);
    if (!mem_device_is_host(s->device)) mem_device_get_stats(s->device, &device);
    mem_refusal last;
    mem_last_refusal(&last);
    /* refused for lack of room (the counters moved and so did this thread's), not injected */
    const uint64_t refused = host.refused + device.refused;
    const int refusal = refused > s->fallback_refused && last.count > s->fallback_refusal.count;
    /* the try before was refused too, with the same numbers (bytes asked, in use, cap,
     * class, device): nothing changed, so another try would only fail again */
    if (*attempts > 0 && refusal && s->fallback_refusal.count && mem_refusal_same(&last, &s->fallback_refusal))
        return 0;
    s->fallback_refused = refused;
    s->fallback_refusal = last;
    if (!refusal) s->fallback_refusal.count = 0; /* (the last refusal is an older one) */
    (*attempts)++;
    snprintf(s->fallback_reason, sizeof s->fallback_reason, "%s", canvas_last_error());
    status_clear();
    if (say) {
        char message[768];
        snprintf(message, sizeof message, "fallback: out of memory in %s (%s): released what it held, redone", where,
                 s->fallback_reason);
        run_tell_fallback(s, message);
    }
    return 1;
}

