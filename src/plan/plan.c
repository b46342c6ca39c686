/* SPDX-License-Identifier: Apache-2.0 */
/* plan.c — the presets as points of the plan space, the choice among the plans that fit,
 * and the words for it (plan.h has the model). */
#include "plan/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/size_parse.h"
#include "base/status.h"
#include "plan/plan_internal.h"

static const char *const preset_names[PLAN_PRESET_COUNT] = {"full", "sequential", "offload", "fp8", "nf4", "auto"};

const char *plan_preset_name(plan_preset preset)
{
    return preset >= 0 && preset < PLAN_PRESET_COUNT ? preset_names[preset] : "?";
}

canvas_status plan_preset_parse(const char *text, plan_preset *out)
{
    for (int i = 0; i < PLAN_PRESET_COUNT; i++)
        if (text && !strcmp(text, preset_names[i])) {
            *out = (plan_preset)i;
            return CANVAS_OK;
        }
    return status_fail(CANVAS_ERR_USAGE, "strategy '%s': give full, fp8, nf4, offload, sequential or auto",
                       text ? text : "");
}

canvas_status plan_preset_list_parse(const char *text, plan_preset *out, int max, int *n)
{
    *n = 0;
    const char *at = text ? text : "";
    for (;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        char item[32];
        if (len >= sizeof item) len = sizeof item - 1;
        memcpy(item, at, len);
        item[len] = '\0';
        if (*n == max) return status_fail(CANVAS_ERR_USAGE, "strategy list '%s': at most %d names", text, max);
        TRY(plan_preset_parse(item, &out[*n]));
        (*n)++;
        if (!comma) return CANVAS_OK;
        at = comma + 1;
    }
}

const char *plan_phase_name(int phase)
{
    static const char *const names[PLAN_PHASE_COUNT] = {"text-encode", "vae-encode", "denoise step", "vae-decode"};
    return phase >= 0 && phase < PLAN_PHASE_COUNT ? names[phase] : "?";
}

const char *plan_component_name(plan_component_kind kind)
{
    static const char *const names[PLAN_COMPONENT_KINDS] = {"text encoder", "transformer", "VAE"};
    return kind >= 0 && kind < PLAN_COMPONENT_KINDS ? names[kind] : "?";
}

/* The text encoder computes first with the whole device and is released before the
 * transformer is placed; the VAE and the transformer each have the device to themselves in
 * their phases (a CUDA VAE; this build's VAE computes in host memory). */
const plan_step plan_edit_steps[] = {
    {PLAN_PHASE_TEXT, PLAN_TEXT_ENCODER, PLAN_BIT(PLAN_TEXT_ENCODER), 0},
    {PLAN_RELEASE, PLAN_TEXT_ENCODER, 0, PLAN_BIT(PLAN_TEXT_ENCODER)},
    {PLAN_PHASE_VAE_ENCODE, PLAN_VAE, PLAN_BIT(PLAN_VAE), 0},
    {PLAN_PHASE_DENOISE, PLAN_TRANSFORMER, PLAN_BIT(PLAN_TRANSFORMER), 0},
    {PLAN_PHASE_VAE_DECODE, PLAN_VAE, PLAN_BIT(PLAN_VAE), 0},
};
const int plan_edit_n_steps = (int)(sizeof plan_edit_steps / sizeof plan_edit_steps[0]);

unsigned plan_component_phases(const plan_step *steps, int n_steps, plan_component_kind kind)
{
    unsigned rows = 0;
    for (int i = 0; i < n_steps; i++)
        if (steps[i].phase != PLAN_RELEASE && steps[i].runs == kind) rows |= 1u << steps[i].phase;
    return rows;
}

canvas_status plan_steps_check(const plan_step *steps, int n_steps)
{
    unsigned rows = 0, released = 0, ran = 0;
    if (n_steps < 0 || n_steps > PLAN_MAX_STEPS)
        return status_fail(CANVAS_ERR_USAGE, "plan steps: %d steps, at most %d", n_steps, PLAN_MAX_STEPS);
    for (int i = 0; i < n_steps; i++) {
        const plan_step *s = &steps[i];
        if (s->phase == PLAN_RELEASE) {
            released |= s->releases;
            continue;
        }
        if (s->phase < 0 || s->phase >= PLAN_PHASE_COUNT || (rows >> s->phase & 1u) || s->runs < 0 ||
            s->runs >= PLAN_COMPONENT_KINDS || !(s->device & PLAN_BIT(s->runs)))
            return status_fail(CANVAS_ERR_USAGE, "plan step %d: a phase row out of range or twice, or its component "
                               "not on the device", i + 1);
        if ((s->device | PLAN_BIT(s->runs)) & released)
            return status_fail(CANVAS_ERR_USAGE, "plan step %d (%s): a component released before it", i + 1,
                               plan_phase_name(s->phase));
        /* held through another's phase: only the text encoder's weights, as its own phase placed them */
        const unsigned held = s->device & ~PLAN_BIT(s->runs);
        if (held & ~(PLAN_BIT(PLAN_TEXT_ENCODER) & ran))
            return status_fail(CANVAS_ERR_USAGE, "plan step %d (%s): only the text encoder, after its own phase, can be "
                               "kept on the device through another's phase", i + 1, plan_phase_name(s->phase));
        rows |= 1u << s->phase;
        ran |= PLAN_BIT(s->runs);
    }
    return CANVAS_OK;
}

void plan_work_edit(plan_work *w, const qwen_dit_config *dit, const vae_config *vae, int width, int height, int n_refs,
                    int ref_width, int ref_height, int64_t n_txt, int cfg, int steps, int threads)
{
    memset(w, 0, sizeof *w);
    plan_component *t = &w->components[PLAN_TRANSFORMER];
    *t = (plan_component){.kind = PLAN_TRANSFORMER, .present = 1, .stored_bytes_per_element = 2, .formats = ~0u,
                          .residency = PLAN_RESIDENT | PLAN_STREAMED | PLAN_ON_HOST, .config.dit = *dit};
    if (vae) {
        plan_component *v = &w->components[PLAN_VAE];
        *v = (plan_component){.kind = PLAN_VAE, .present = 1, .stored_bytes_per_element = 4,
                              .formats = PLAN_BIT(QUANT_NONE), .residency = PLAN_RESIDENT | PLAN_ON_HOST | PLAN_TILED,
                              .config.vae = *vae};
    }
    memcpy(w->order, plan_edit_steps, sizeof plan_edit_steps);
    w->n_order = plan_edit_n_steps;
    w->width = width / 16 * 16;
    w->height = height / 16 * 16;
    if (n_refs > PLAN_MAX_REFERENCES) n_refs = PLAN_MAX_REFERENCES;
    w->n_refs = n_refs < 0 ? 0 : n_refs;
    w->n_target = (int64_t)(w->height / 16) * (w->width / 16);
    w->n_img = w->n_target;
    for (int i = 0; i < w->n_refs; i++) {
        w->ref_width[i] = (ref_width > 0 ? ref_width : width) / 32 * 32;
        w->ref_height[i] = (ref_height > 0 ? ref_height : height) / 32 * 32;
        w->n_img += (int64_t)(w->ref_height[i] / 16) * (w->ref_width[i] / 16);
    }
    w->n_txt = n_txt > 0 ? n_txt : 200;
    w->cfg = cfg;
    w->steps = steps > 0 ? steps : 50;
    w->threads = threads > 0 ? threads : 1;
}

void plan_work_transformer(plan_work *w, const qwen_dit_config *dit, int64_t n_img, int64_t n_txt, int threads)
{
    plan_work_edit(w, dit, NULL, 0, 0, 0, 0, 0, n_txt, 0, 1, threads);
    w->n_img = w->n_target = n_img;
    w->n_txt = n_txt;
}

void plan_work_loaded(plan_work *w, const qwen_dit_model *dit, const weight_set *dit_files, const vae_model *vae)
{
    w->components[PLAN_TRANSFORMER].qwen_dit_model = dit;
    w->components[PLAN_TRANSFORMER].dit_files = dit_files;
    w->components[PLAN_VAE].vae_model = vae;
}

/* ---- the presets' points ------------------------------------------------------------- */

/* full, sequential and offload keep the transformer's loaded format (as stored, or the
 * --weights it was loaded with); fp8 and nf4 quantise its blocks on load. */
static plan_point preset_point(const plan_work *work, plan_preset preset, int layers)
{
    plan_point p = {.preset = preset, .resident_blocks = -1};
    const qwen_dit_model *loaded = work->components[PLAN_TRANSFORMER].qwen_dit_model;
    p.weights = loaded ? loaded->weights_format : (quant_choice){QUANT_NONE, 0};
    switch (preset) {
    case PLAN_FULL: p.resident_blocks = layers; break;
    case PLAN_SEQUENTIAL: p.resident_blocks = 0; break;
    case PLAN_FP8:
    case PLAN_NF4: p.weights = plan_preset_weights(preset, p.weights); break;
    default: break;
    }
    /* the text encoder: as stored, or the quantised presets' format */
    if (preset == PLAN_FP8 || preset == PLAN_NF4) p.text_weights = p.weights;
    return p;
}

/* Formats below the files' precision need --allow-quantize; the files' own format does not. */
int plan_weights_allowed(quant_choice loaded, quant_choice weights, int allow_quantize, int fp8)
{
    if (weights.format == loaded.format && weights.per_channel == loaded.per_channel) return 1;
    if (weights.format == QUANT_FP8_E4M3 && fp8) return fp8 > 0;
    return allow_quantize;
}

quant_choice plan_preset_weights(plan_preset preset, quant_choice loaded)
{
    if (preset == PLAN_FP8) return (quant_choice){QUANT_FP8_E4M3, 0};
    if (preset == PLAN_NF4) return (quant_choice){QUANT_NF4, 0};
    return loaded;
}

static int format_allowed(const plan_work *work, const plan_limits *limits, quant_choice weights)
{
    const plan_component *t = &work->components[PLAN_TRANSFORMER];
    const quant_choice loaded = t->qwen_dit_model ? t->qwen_dit_model->weights_format : (quant_choice){QUANT_NONE, 0};
    if (!(t->formats & PLAN_BIT(weights.format))) return 0;
    if (limits->same_format_only) return weights.format == loaded.format && weights.per_channel == loaded.per_channel;
    return plan_weights_allowed(loaded, weights, limits->allow_quantize, limits->fp8);
}

static int same_point(const plan_point *a, const plan_point *b)
{
    return a->weights.format == b->weights.format && a->weights.per_channel == b->weights.per_channel &&
           a->resident_blocks == b->resident_blocks && a->text_weights.format == b->text_weights.format &&
           a->text_resident == b->text_resident && a->text_on_host == b->text_on_host && a->paged == b->paged;
}

/* "fits, slower" only when it is: a time within better()'s 1 % is as fast, and says why the
 * other one ranks first. */
static void slower_reason(plan_candidate *c, const plan_candidate *chosen, plan_preset chosen_preset)
{
    char bytes[32];
    const double a = c->seconds_per_step, b = chosen->seconds_per_step;
    if (fabs(a - b) > 0.01 * fmax(a, b))
        snprintf(c->reason, sizeof c->reason, "fits, slower: %.3g s/step", a);
    else if (c->transfer_bytes_per_step > chosen->transfer_bytes_per_step)
        snprintf(c->reason, sizeof c->reason, "fits, as fast as %s (%.3g s/step) but moves %s more a step",
                 plan_preset_name(chosen_preset), b,
                 size_format(c->transfer_bytes_per_step - chosen->transfer_bytes_per_step, bytes, sizeof bytes));
    else
        snprintf(c->reason, sizeof c->reason, "fits, as fast as %s (%.3g s/step); a tie goes to the preset listed first",
                 plan_preset_name(chosen_preset), b);
}

/* A fitting plan that pages its mapped weights says so after its reason. */
static void paged_note(plan_candidate *c)
{
    char bytes[32];
    const size_t used = strlen(c->reason);
    if (!c->fits || !c->point.paged || used + 2 >= sizeof c->reason) return;
    snprintf(c->reason + used, sizeof c->reason - used, "; pages %s of mapped weights from disk at every call",
             size_format(c->phases[PLAN_PHASE_DENOISE].mapped, bytes, sizeof bytes));
}

/* a faster than b; within 1 % the one that moves fewer bytes */
static int better(const plan_candidate *a, const plan_candidate *b)
{
    if (fabs(a->seconds_per_step - b->seconds_per_step) <= 0.01 * fmax(a->seconds_per_step, b->seconds_per_step))
        return a->transfer_bytes_per_step < b->transfer_bytes_per_step;
    return a->seconds_per_step < b->seconds_per_step;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Measured step times where earlier runs of a plan recorded them (plan_timings.c); the
 * others' modelled times scaled by the median of measured / modelled over the measured
 * ones, so that one ranking holds both (a model that is 3x off on this machine is 3x off
 * for every plan, near enough). */
static void apply_timings(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                          plan_result *out)
{
    out->time_scale = 1;
    json_t *timings = plan_timings_load();
    double ratios[PLAN_PRESET_COUNT];
    int n_ratios = 0;
    for (int i = 0; i < out->n; i++) {
        plan_candidate *c = &out->candidates[i];
        c->modelled_seconds_per_step = c->seconds_per_step;
        if (!timings) continue;
        char key[512];
        double measured = 0;
        plan_timing_key(work, hw, &c->point, limits->device_bytes != 0, key, sizeof key);
        c->measured_runs = plan_timing_lookup(timings, key, &measured);
        if (!c->measured_runs) continue;
        c->seconds_per_step = measured;
        if (c->modelled_seconds_per_step > 0 && c->same_as < 0) ratios[n_ratios++] = measured / c->modelled_seconds_per_step;
    }
    json_decref(timings);
    if (n_ratios) {
        qsort(ratios, (size_t)n_ratios, sizeof ratios[0], by_value);
        out->time_scale = n_ratios % 2 ? ratios[n_ratios / 2] : 0.5 * (ratios[n_ratios / 2 - 1] + ratios[n_ratios / 2]);
    }
    for (int i = 0; i < out->n; i++) {
        plan_candidate *c = &out->candidates[i];
        if (!c->measured_runs) c->seconds_per_step *= out->time_scale;
        c->seconds_total = c->seconds_per_step * work->steps + c->text_seconds;
    }
}

canvas_status plan_make(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                        plan_preset wanted, thread_pool *pool, plan_result *out)
{
    memset(out, 0, sizeof *out);
    out->chosen = -1;
    out->wanted = wanted;
    const int layers = work->components[PLAN_TRANSFORMER].config.dit.num_layers;
    char a[32], b[32];
    TRY(plan_steps_check(work->order, work->n_order));
    int quantized = -1; /* the first candidate that fits but only with --allow-quantize */
    for (int i = 0; i < PLAN_AUTO; i++) {
        plan_candidate *c = &out->candidates[out->n++];
        c->point = preset_point(work, (plan_preset)i, layers);
        if (limits->text_weights_given) c->point.text_weights = limits->text_weights;
        c->same_as = -1;
        TRY(plan_estimate(work, hw, limits, pool, c));
        if (limits->device_bytes == 0 && (i == PLAN_SEQUENTIAL || i == PLAN_OFFLOAD)) {
            c->fits = 0;
            snprintf(c->reason, sizeof c->reason, "streams to a device: none given (--vram or --gpu)");
            continue;
        }
        if (!format_allowed(work, limits, c->point.weights)) {
            snprintf(c->reason, sizeof c->reason, "%s: lower precision than the files; --allow-quantize allows it",
                     c->fits ? "would fit" : "would not fit either");
            if (c->fits && quantized < 0) quantized = i;
            c->fits = 0;
            continue;
        }
        if (!c->fits) {
            const uint64_t room = limits->device_bytes > limits->headroom_bytes
                                      ? limits->device_bytes - limits->headroom_bytes
                                      : 0;
            if (limits->device_bytes && (c->point.resident_blocks < 0 || c->peak.device > room))
                snprintf(c->reason, sizeof c->reason, "device: needs %s, %s available (after %s headroom)",
                         size_format(c->peak.device, a, sizeof a), size_format(room, b, sizeof b),
                         size_format(limits->headroom_bytes, (char[32]){0}, 32));
            else
                snprintf(c->reason, sizeof c->reason, "host RAM: needs %s, %s available",
                         size_format(c->peak.host + c->peak.pinned, a, sizeof a),
                         size_format(limits->host_bytes, b, sizeof b));
            continue;
        }
        for (int j = 0; j < out->n - 1; j++)
            if (out->candidates[j].fits && same_point(&out->candidates[j].point, &c->point)) {
                c->same_as = j;
                snprintf(c->reason, sizeof c->reason, "fits; the same plan as %s here", plan_preset_name((plan_preset)j));
                break;
            }
        if (c->same_as < 0) snprintf(c->reason, sizeof c->reason, "fits");
    }
    apply_timings(work, hw, limits, out);
    if (wanted != PLAN_AUTO) {
        if (out->candidates[wanted].fits) out->chosen = wanted;
    } else {
        for (int i = 0; i < out->n; i++) {
            const plan_candidate *c = &out->candidates[i];
            if (!c->fits || c->same_as >= 0) continue;
            if (out->chosen < 0 || better(c, &out->candidates[out->chosen])) out->chosen = i;
        }
    }
    for (int i = 0; i < out->n; i++) {
        plan_candidate *c = &out->candidates[i];
        if (i == out->chosen) snprintf(c->reason, sizeof c->reason, "chosen%s", wanted == PLAN_AUTO ? " (fastest that fits)" : "");
        else if (c->fits && c->same_as < 0 && wanted == PLAN_AUTO && out->chosen >= 0)
            slower_reason(c, &out->candidates[out->chosen], (plan_preset)out->chosen);
        else if (c->fits && c->same_as < 0)
            snprintf(c->reason, sizeof c->reason, "fits; not the strategy asked for (%s)", plan_preset_name(wanted));
        paged_note(c);
    }
    if (out->chosen < 0) {
        /* what would fit: a lower precision not allowed, more device memory, more RAM */
        uint64_t least_device = UINT64_MAX, least_host = UINT64_MAX;
        for (int i = 0; i < out->n; i++) {
            const plan_candidate *c = &out->candidates[i];
            if (!format_allowed(work, limits, c->point.weights) ||
                (limits->device_bytes == 0 && (i == PLAN_SEQUENTIAL || i == PLAN_OFFLOAD)))
                continue;
            if (c->peak.device < least_device) least_device = c->peak.device;
            if (c->peak.host + c->peak.pinned < least_host) least_host = c->peak.host + c->peak.pinned;
        }
        size_t used = 0;
        if (limits->device_bytes && least_device + limits->headroom_bytes > limits->device_bytes)
            used = (size_t)snprintf(out->suggestion, sizeof out->suggestion,
                                    "the transformer does not fit even with every block streamed: give a device of "
                                    "at least %s (%s plus headroom)",
                                    size_format(least_device + limits->headroom_bytes, a, sizeof a),
                                    size_format(least_device, b, sizeof b));
        else if (least_host != UINT64_MAX && limits->host_bytes && least_host > limits->host_bytes)
            used = (size_t)snprintf(out->suggestion, sizeof out->suggestion, "%s at least %s",
                                    limits->host_is_cap ? "raise --ram to" : "give more RAM:",
                                    size_format(least_host, a, sizeof a));
        else if (wanted != PLAN_AUTO && !format_allowed(work, limits, out->candidates[wanted].point.weights)) {
            /* the memory is there: the strategy asked for stores the transformer below the files' precision */
            used = (size_t)snprintf(out->suggestion, sizeof out->suggestion,
                                    "%s stores the transformer below the files' precision: add --allow-quantize, "
                                    "or take --strategy auto",
                                    plan_preset_name(wanted));
            quantized = -1; /* said */
            out->needs_quantize = 1;
            used = sizeof out->suggestion; /* and a smaller image would not help */
        } else {
            used = (size_t)snprintf(out->suggestion, sizeof out->suggestion,
                                    "%s does not fit here; --strategy auto takes the fastest plan that does",
                                    plan_preset_name(wanted));
        }
        if (used < sizeof out->suggestion && quantized >= 0)
            used += (size_t)snprintf(out->suggestion + used, sizeof out->suggestion - used,
                                     "; or --allow-quantize: the %s plan fits (device %s)",
                                     plan_preset_name((plan_preset)quantized),
                                     size_format(out->candidates[quantized].peak.device, a, sizeof a));
        if (used < sizeof out->suggestion)
            snprintf(out->suggestion + used, sizeof out->suggestion - used, "; or a smaller image size");
    }
    return CANVAS_OK;
}

canvas_status plan_no_fit(const plan_result *result, const plan_limits *limits)
{
    char a[32], b[32];
    if (result->needs_quantize) /* the memory is there: the flag is missing */
        return status_fail(CANVAS_ERR_USAGE, "strategy %s: %s", plan_preset_name(result->wanted), result->suggestion);
    return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                       "out of memory: no plan%s%s fits %s%s and %s of host RAM%s; %s",
                       result->wanted == PLAN_AUTO ? "" : " for strategy ",
                       result->wanted == PLAN_AUTO ? "" : plan_preset_name(result->wanted),
                       limits->device_bytes ? size_format(limits->device_bytes, a, sizeof a) : "without a device",
                       limits->device_bytes ? " of device memory" : "",
                       limits->host_bytes ? size_format(limits->host_bytes, b, sizeof b) : "unlimited",
                       limits->host_is_cap ? " (--ram)" : "", result->suggestion[0] ? result->suggestion : "try another strategy");
}

void plan_describe(const plan_candidate *c, const plan_work *work, char *buf, size_t size)
{
    char dev[32], host[32], pin[32];
    const plan_point *p = &c->point;
    const int layers = work->components[PLAN_TRANSFORMER].config.dit.num_layers;
    const char *format = p->weights.format == QUANT_NONE ? "as stored" : quant_choice_name(p->weights);
    const int resident = p->resident_blocks < 0 ? 0 : p->resident_blocks;
    char mapped[32];
    snprintf(buf, size,
             "%s: %d of %d blocks resident (%s), %d streamed%s; VAE %s, CFG %s; peak device %s, pinned %s, host %s, "
             "mapped %s%s; %.3g s/step %s",
             plan_preset_name(p->preset), resident, layers, format, layers - resident,
             layers - resident == 0 ? ""
             : p->stream_from_file  ? " from the mapped file"
                                    : " through 2 buffers",
             p->vae_tiled ? "tiled" : "whole", work->cfg ? (p->cfg_batched ? "batched" : "sequential") : "off",
             size_format(c->peak.device, dev, sizeof dev), size_format(c->peak.pinned, pin, sizeof pin),
             size_format(c->peak.host, host, sizeof host), size_format(c->peak.mapped, mapped, sizeof mapped),
             p->paged ? " (paged from disk at every call: more than RAM holds)" : "", c->seconds_per_step,
             c->measured_runs ? "measured (by earlier runs of this plan)" : "predicted");
    const size_t used = strlen(buf);
    if (work->components[PLAN_TEXT_ENCODER].present && used + 2 < size) {
        snprintf(buf + used, size - used, "; ");
        plan_describe_text(c, work, buf + used + 2, size - used - 2);
    }
}

void plan_describe_text(const plan_candidate *c, const plan_work *work, char *buf, size_t size)
{
    char dev[32], host[32];
    const plan_point *p = &c->point;
    const plan_component *text = &work->components[PLAN_TEXT_ENCODER];
    const int layers = plan_textenc_layers(&text->config.text);
    const char *format = p->text_weights.format == QUANT_NONE ? "as stored" : quant_choice_name(p->text_weights);
    if (!text->present) snprintf(buf, size, "no text encoder");
    else if (p->text_on_host)
        snprintf(buf, size, "text encoder (%s): on the host, computes in host memory, host %s", format,
                 size_format(c->phases[PLAN_PHASE_TEXT].host, host, sizeof host));
    else
        snprintf(buf, size, "text encoder (%s): %s (%d of %d layers resident), device %s", format,
                 p->text_resident == layers ? "resident" : "streamed", p->text_resident, layers,
                 size_format(c->phases[PLAN_PHASE_TEXT].device, dev, sizeof dev));
}
