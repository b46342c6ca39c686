/* SPDX-License-Identifier: Apache-2.0 */
/* edit_run.c — one run of the Edit-Plus / text-to-image pipeline: sizes, VAE encode of the
 * references, denoising, decode, each phase redone after a fallback (edit_place.c decides
 * where the transformer goes). The walk-through is in edit.h and docs/pipeline.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/status.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "pipeline/edit_run_internal.h"
#include "pipeline/pil_resize.h"
#include "pipeline/prompt.h"
#include "pipeline/rng.h"
#include "pipeline/scheduler.h"

/* ---- one run ---------------------------------------------------------------------------- */

static void run_phase(run *s, const char *name)
{
    if (s->p->profiler) profiler_begin(s->p->profiler, "%s", name);
    if (s->observer && s->observer->phase) s->observer->phase(s->observer->ctx, name);
}

/* CANVAS_ERR_CANCELLED when the caller asks to stop (edit_observer.cancelled), naming where. */
static canvas_status run_check_cancel(run *s, const char *where)
{
    if (s->observer && s->observer->cancelled && s->observer->cancelled(s->observer->ctx))
        return status_fail(CANVAS_ERR_CANCELLED, "cancelled by the caller %s", where);
    return CANVAS_OK;
}

void run_tell_plan(run *s, const char *message)
{
    if (s->observer && s->observer->plan) s->observer->plan(s->observer->ctx, message);
}

/* A fallback: counted and kept by the profiler (the report lists them) and told as a plan line. */
void run_tell_fallback(run *s, const char *message)
{
    if (s->p->profiler) profiler_note_fallback(s->p->profiler, message);
    run_tell_plan(s, message);
}

static canvas_status check_text(const edit_text *t, const char *what, int dim)
{
    if (!t->values || t->length < 1)
        return status_fail(CANVAS_ERR_INPUT, "%s: no embeddings given", what);
    if (t->dim != dim)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: embeddings are %lld wide, the transformer's joint_attention_dim is %d (embeddings "
                           "from another model?)",
                           what, (long long)t->dim, dim);
    if (t->length > PROMPT_MAX_EMBED_ROWS)
        return status_fail(CANVAS_ERR_INPUT, "%s: %lld tokens is too long (at most %d)", what, (long long)t->length,
                           PROMPT_MAX_EMBED_ROWS);
    return CANVAS_OK;
}

/* Sizes of the output and the references, in pixels, then latents and tokens. */
static canvas_status plan_sizes(run *s)
{
    const edit_request *r = s->r;
    const int multiple = s->scale * 2; /* the VAE's factor times the 2x2 packing */
    if (r->n_images < 0 || r->n_images > 64)
        return status_fail(CANVAS_ERR_USAGE, "%d reference images: give 0 to 64", r->n_images);
    if (r->steps < 1 || r->steps > EDIT_MAX_STEPS)
        return status_fail(CANVAS_ERR_USAGE, "steps %d: give 1 to %d", r->steps, EDIT_MAX_STEPS);
    if (!isfinite(r->cfg)) return status_fail(CANVAS_ERR_USAGE, "cfg must be a finite number");
    if (r->vae_area < (int64_t)multiple * multiple || r->vae_area > (int64_t)EDIT_MAX_VAE_AREA)
        return status_fail(CANVAS_ERR_USAGE, "vae area %lld: give %d to %lld pixels", (long long)r->vae_area,
                           multiple * multiple, (long long)EDIT_MAX_VAE_AREA);
    if (r->width < 0 || r->height < 0 || r->width > 16384 || r->height > 16384)
        return status_fail(CANVAS_ERR_USAGE, "size %dx%d: give 0 (automatic) or up to 16384 pixels a side", r->width,
                           r->height);
    if (r->n_images) TRY(mem_calloc((void **)&s->refs, (size_t)r->n_images, sizeof *s->refs, MEM_SCRATCH));
    for (int i = 0; i < r->n_images; i++) {
        const canvas_image *img = &r->images[i];
        if (!img->pixels || img->width < 1 || img->height < 1)
            return status_fail(CANVAS_ERR_USAGE, "reference image %d is empty", i + 1);
        if (r->keep_reference_sizes) {
            s->refs[i].vae_width = img->width;
            s->refs[i].vae_height = img->height;
            if (img->width % multiple || img->height % multiple)
                return status_fail(CANVAS_ERR_INPUT, "reference image %d: %dx%d is not a multiple of %d", i + 1,
                                   img->width, img->height, multiple);
        } else {
            edit_dimensions(r->vae_area, (double)img->width / img->height, &s->refs[i].vae_width,
                            &s->refs[i].vae_height);
        }
        if (s->refs[i].vae_width > 16384 || s->refs[i].vae_height > 16384)
            return status_fail(CANVAS_ERR_USAGE,
                               "reference image %d: %dx%d at a VAE area of %lld pixels would be %dx%d, more than "
                               "16384 a side (crop the image or lower --vae-area)",
                               i + 1, img->width, img->height, (long long)r->vae_area, s->refs[i].vae_width,
                               s->refs[i].vae_height);
    }
    int width = r->width, height = r->height;
    if (!width || !height) {
        int w = EDIT_DEFAULT_SIZE, h = EDIT_DEFAULT_SIZE;
        if (r->n_images) {
            const canvas_image *last = &r->images[r->n_images - 1];
            edit_dimensions(r->vae_area, (double)last->width / last->height, &w, &h);
        }
        if (!width) width = w;
        if (!height) height = h;
    }
    s->width = width / multiple * multiple;
    s->height = height / multiple * multiple;
    if (s->width < multiple || s->height < multiple)
        return status_fail(CANVAS_ERR_USAGE, "output size %dx%d: each side must be at least %d pixels", width, height,
                           multiple);
    s->latent_width = s->width / s->scale;
    s->latent_height = s->height / s->scale;
    s->n_target = (int64_t)(s->latent_width / 2) * (s->latent_height / 2);
    s->n_img = s->n_target;
    TRY(mem_calloc((void **)&s->shapes, (size_t)r->n_images + 1, sizeof *s->shapes, MEM_SCRATCH));
    s->shapes[0] = (qwen_dit_image_shape){1, s->latent_height / 2, s->latent_width / 2};
    for (int i = 0; i < r->n_images; i++) {
        int h = s->refs[i].vae_height / multiple, w = s->refs[i].vae_width / multiple;
        s->shapes[1 + i] = (qwen_dit_image_shape){1, h, w};
        s->n_img += (int64_t)h * w;
    }
    return CANVAS_OK;
}

/* ---- VAE passes (on the run's device, or in host memory; whole or tiled) ------------------- */

op_backend *run_vae_device_backend(const run *s)
{
    if (mem_device_is_host(s->device) || mem_device_is_addressable(s->device)) return NULL;
    return s->p->dit_backend;
}

/* Tile when the plan says so (s->vae_tiled) or the host budget now leaves less room than a
 * whole pass needs (pixel sizes); *need and *room (may be NULL) get the two. */
static int vae_tiling_planned(run *s, int encode, int pixel_height, int pixel_width, uint64_t *need, uint64_t *room)
{
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    if (!vae_tiling_needed(&tiling, pixel_height, pixel_width)) return 0;
    uint64_t held;
    const uint64_t budget = run_host_budget(s, &held);
    if (!budget) return s->vae_tiled;
    int h = encode ? pixel_height : pixel_height / s->scale, w = encode ? pixel_width : pixel_width / s->scale;
    const uint64_t pass = vae_activation_bytes(s->p->vae, thread_pool_size(s->p->pool), encode, h, w);
    const uint64_t free_now = budget > held ? budget - held : 0;
    if (need) *need = pass;
    if (room) *room = free_now;
    return s->vae_tiled || pass > free_now;
}

/* One VAE pass in host memory on the CPU backend; a whole pass that runs out of memory is
 * redone tiled (a fallback: not with --no-fallback). */
static canvas_status vae_host_pass(run *s, int encode, const float *in, int pixel_height, int pixel_width, float *out)
{
    vae_model *vae = s->p->vae;
    TRY(vae_leave_device(vae)); /* a device pass whose return left the weights there */
    op_backend be = op_backend_cpu(s->p->pool);
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    const int h = pixel_height / s->scale, w = pixel_width / s->scale;
    uint64_t need = 0, room = 0;
    int tiled = vae_tiling_planned(s, encode, pixel_height, pixel_width, &need, &room);
    if (tiled && !s->vae_tiled) { /* memory went since the plan (read again before every pass) */
        char message[256], need_text[32], room_text[32];
        size_format(need, need_text, sizeof need_text);
        size_format(room, room_text, sizeof room_text);
        snprintf(message, sizeof message, "plan: VAE %s tiled: a whole pass needs %s of host memory and %s is free now",
                 encode ? "encode" : "decode", need_text, room_text);
        run_tell_plan(s, message);
    }
    canvas_status st;
    if (!tiled) {
        st = encode ? vae_encode(vae, &be, in, pixel_height, pixel_width, out) : vae_decode(vae, &be, in, h, w, out);
        if (st != CANVAS_ERR_OUT_OF_MEMORY || !vae_tiling_needed(&tiling, pixel_height, pixel_width) ||
            !s->p->fallback_enabled)
            return st;
        run_tell_fallback(s, encode ? "fallback: VAE encode ran out of memory: tiled instead"
                                : "fallback: VAE decode ran out of memory: tiled instead");
        status_clear();
    }
    return encode ? vae_encode_tiled(vae, &be, &tiling, in, pixel_height, pixel_width, out)
                  : vae_decode_tiled(vae, &be, &tiling, in, h, w, out);
}

/* Whether a pass goes to the device `be` computes on: the VAE's weights and the pass's peak
 * there (vae_device_weight_bytes, vae_device_bytes: the planner's count, the backend's scratch
 * in it) within the largest block free now less the headroom; whole when that fits, else
 * tiled (an image that tiles), else not. The choice is told as a plan line either way. */
static int vae_device_fits(run *s, op_backend *be, int encode, int pixel_height, int pixel_width, int *tiled)
{
    const vae_model *vae = s->p->vae;
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    const int h = encode ? pixel_height : pixel_height / s->scale, w = encode ? pixel_width : pixel_width / s->scale;
    mem_device_stats stats;
    mem_device_get_stats(s->device, &stats);
    const uint64_t room = stats.largest_free_block > s->p->headroom_bytes ? stats.largest_free_block - s->p->headroom_bytes : 0;
    const uint64_t weights = vae_device_weight_bytes(vae);
    const uint64_t whole = weights + vae_device_bytes(vae, be, encode, h, w);
    const uint64_t tiles = vae_tiling_needed(&tiling, pixel_height, pixel_width)
                               ? weights + vae_tiled_device_bytes(vae, be, &tiling, encode, h, w)
                               : 0;
    *tiled = whole > room;
    const int fits = !*tiled || (tiles && tiles <= room);
    char message[320], need_text[32], room_text[32];
    size_format(*tiled && tiles ? tiles : whole, need_text, sizeof need_text);
    size_format(room, room_text, sizeof room_text);
    snprintf(message, sizeof message, "plan: VAE %s of %dx%d %s device '%s'%s: %s there (weights, activations and "
             "the backend's scratch), %s free",
             encode ? "encode" : "decode", pixel_width, pixel_height, fits ? "on the" : "in host memory: it does not fit the",
             mem_device_name(s->device), fits && *tiled ? ", tiled" : "", need_text, room_text);
    run_tell_plan(s, message);
    return fits;
}

/* One VAE pass on the device: the weights placed for it and taken back after it, so that the
 * transformer has the device to itself in its phase (the table's order, plan_edit_steps). */
static canvas_status vae_device_pass(run *s, op_backend *be, int encode, int tiled, const float *in,
                                     int pixel_height, int pixel_width, float *out)
{
    vae_model *vae = s->p->vae;
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    const int h = pixel_height / s->scale, w = pixel_width / s->scale;
    TRY(vae_leave_device(vae)); /* a pass before whose return left the weights there */
    TRY(vae_place_on_device(vae, s->device));
    canvas_status st;
    if (tiled) st = encode ? vae_encode_tiled(vae, be, &tiling, in, pixel_height, pixel_width, out)
                           : vae_decode_tiled(vae, be, &tiling, in, h, w, out);
    else st = encode ? vae_encode(vae, be, in, pixel_height, pixel_width, out) : vae_decode(vae, be, in, h, w, out);
    if (st != CANVAS_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", canvas_last_error());
        if (vae_leave_device(vae) != CANVAS_OK) status_clear(); /* the pass's error is the one to tell */
        return status_fail(st, "%s", reason);
    }
    return vae_leave_device(vae);
}

/* One VAE pass: on the run's device when the host cannot address it and the pass fits there
 * (vae_device_fits), else in host memory as on the CPU; a device pass that runs out of memory
 * is redone in host memory (a fallback: not with --no-fallback). */
static canvas_status vae_pass(run *s, int encode, const float *in, int pixel_height, int pixel_width, float *out)
{
    op_backend *be = run_vae_device_backend(s);
    int tiled = 0;
    if (be && vae_device_fits(s, be, encode, pixel_height, pixel_width, &tiled)) {
        canvas_status st = vae_device_pass(s, be, encode, tiled, in, pixel_height, pixel_width, out);
        if (st != CANVAS_ERR_OUT_OF_MEMORY || !s->p->fallback_enabled) return st;
        char message[640];
        snprintf(message, sizeof message, "fallback: VAE %s on device '%s' ran out of memory (%s): redone in host memory",
                 encode ? "encode" : "decode", mem_device_name(s->device), canvas_last_error());
        run_tell_fallback(s, message);
        status_clear();
    }
    return vae_host_pass(s, encode, in, pixel_height, pixel_width, out);
}

/* Reference i -> its packed, normalised latents at `packed`. */
static canvas_status encode_reference(run *s, int i, float *packed)
{
    const canvas_image *img = &s->r->images[i];
    const int vw = s->refs[i].vae_width, vh = s->refs[i].vae_height;
    const size_t values = (size_t)vw * vh * 3;
    uint8_t *resized = NULL;
    float *chw = NULL, *latent = NULL;
    /* diffusers resizes the PIL image (LANCZOS, 8-bit), then x / 255 and 2x - 1 in float32 */
    canvas_status st = mem_alloc((void **)&resized, values, MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = pil_resize(img->pixels, img->width, img->height, 3, resized, vw, vh, PIL_LANCZOS);
    if (st == CANVAS_OK) st = mem_alloc((void **)&chw, values * sizeof(float), MEM_ACTIVATIONS);
    if (st == CANVAS_OK) {
        const size_t plane = (size_t)vw * vh;
        for (size_t k = 0; k < plane; k++)
            for (int c = 0; c < 3; c++) {
                float x = resized[k * 3 + c] / 255.0f;
                chw[c * plane + k] = 2.0f * x - 1.0f;
            }
    }
    mem_free(resized);
    const int h = vh / s->scale, w = vw / s->scale;
    if (st == CANVAS_OK) st = mem_alloc((void **)&latent, (size_t)s->z * h * w * sizeof(float), MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = vae_pass(s, 1, chw, vh, vw, latent);
    mem_free(chw);
    if (st == CANVAS_OK) {
        vae_normalize_latent(&s->p->vae->config, latent, (int64_t)h * w);
        edit_pack_latents(latent, s->z, h, w, packed);
    }
    mem_free(latent);
    if (st != CANVAS_OK) st = status_wrap(st, "encoding reference image %d: ", i + 1);
    return st;
}

/* ---- denoising -------------------------------------------------------------------------- */

static void fill_inputs(run *s, const edit_text *text, float timestep, qwen_dit_inputs *in)
{
    memset(in, 0, sizeof *in);
    in->hidden_states = s->hidden;
    in->n_img = s->n_img;
    in->hidden_channels = s->channels;
    in->encoder_hidden_states = text->values;
    in->n_txt = text->length;
    in->text_dim = text->dim;
    in->text_mask = text->mask;
    in->timestep = timestep;
    in->img_shapes = s->shapes;
    in->n_images = s->r->n_images + 1;
}

/* Step i: the velocity into s->output's first n_target rows (CFG applied), then Euler. */
static canvas_status denoise_step(run *s, int i)
{
    edit_pipeline *p = s->p;
    /* the pipeline passes t / 1000 with t = sigma * 1000, both float32 */
    const float timestep = s->timesteps[i] / 1000.0f;
    qwen_dit_inputs in;
    char where[64];
    snprintf(where, sizeof where, "before step %d of %d", i + 1, s->r->steps);
    TRY(run_check_cancel(s, where));
    op_backend cpu = op_backend_cpu(p->pool), *be = p->dit_backend ? p->dit_backend : &cpu;
    fill_inputs(s, &s->r->prompt, timestep, &in);
    TRY(qwen_dit_forward(p->dit, be, &in, NULL, s->output));
    if (s->cfg) {
        snprintf(where, sizeof where, "in step %d of %d (before its negative-prompt call)", i + 1, s->r->steps);
        TRY(run_check_cancel(s, where));
        fill_inputs(s, &s->r->negative, timestep, &in);
        TRY(qwen_dit_forward(p->dit, be, &in, NULL, s->negative_output));
        edit_cfg_combine(s->output, s->negative_output, s->n_target, s->channels, s->r->cfg);
    }
    /* reference rows of the output are dropped: only the target latents move */
    scheduler_step(s->hidden, s->output, s->n_target * s->channels, s->sigmas[i], s->sigmas[i + 1]);
    return CANVAS_OK;
}

/* The loop. An out-of-memory in a step (the forward frees what it took) re-plans for what
 * is free now, in the same weight format, and redoes the step; earlier steps are kept. */
static canvas_status denoise(run *s, const qwen_dit_inputs *longest)
{
    edit_pipeline *p = s->p;
    const int steps = s->r->steps;
    int attempts = 0, fell_back = 0;
    double after_first = 0;
    for (int i = 0; i < steps;) {
        if (p->profiler) TRY(profiler_begin(p->profiler, "step %d", i + 1));
        if (i == 0 && s->observer && s->observer->phase) s->observer->phase(s->observer->ctx, "denoise");
        canvas_status st = denoise_step(s, i);
        char where[32];
        snprintf(where, sizeof where, "step %d", i + 1);
        if (run_fallback_allowed(s, st, &attempts, where, mem_device_is_host(s->device))) {
            p->placed_blocks = -1;
            st = mem_device_is_host(s->device) ? CANVAS_OK : run_plan_and_place(s, longest, PLACE_AFTER_OOM);
            if (st == CANVAS_OK && !mem_device_is_host(s->device)) {
                run_record_placement(s, longest, qwen_dit_resident_blocks(p->dit));
                char message[1400], lowered[256] = "";
                if (s->format_change[0])
                    snprintf(lowered, sizeof lowered,
                             "; nothing in the loaded weight format fits: weights lowered %s (steps from here are "
                             "within that format's error bound, not identical)",
                             s->format_change);
                snprintf(message, sizeof message,
                         "fallback: out of memory in step %d (%s): released it, re-planned for what is free: %s%s; "
                         "step redone",
                         i + 1, s->fallback_reason, p->plan_line, lowered);
                run_tell_fallback(s, message);
            }
            if (st != CANVAS_OK) return status_wrap(st, "re-planning step %d of %d after an out-of-memory: ", i + 1, steps);
            fell_back = 1;
            continue;
        }
        if (st == CANVAS_ERR_CANCELLED) return st;
        if (st != CANVAS_OK) return status_wrap(st, "denoising step %d of %d: ", i + 1, steps);
        i++;
        attempts = 0;
        if (i == 1) after_first = clock_seconds(); /* the first step warms caches: not timed */
        if (s->observer && s->observer->step)
            TRY(s->observer->step(s->observer->ctx, i, steps, s->hidden, s->n_target, s->channels));
    }
    /* the planner learns this plan's real step time (a run that fell back ran another plan) */
    if (steps > 1 && !fell_back && p->planned_timing_key[0])
        plan_timing_record(p->planned_timing_key, (clock_seconds() - after_first) / (steps - 1));
    return CANVAS_OK;
}

/* ---- decode ----------------------------------------------------------------------------- */

/* NaN or infinity in the weights (transformer or a merged LoRA) ends as NaN latents and a
 * black image; the latents are checked once after the loop (cheap) instead of the weights
 * at load (a pass over every byte of tens of GB). */
static canvas_status check_finite(const run *s)
{
    const int64_t count = s->n_target * s->channels;
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(s->hidden[i]))
            return status_fail(CANVAS_ERR_INPUT, "the denoised latents hold %s at element %lld: the transformer's "
                               "weights (or a LoRA merged into them) hold NaN or infinity; nothing was written",
                               isnan(s->hidden[i]) ? "NaN" : "infinity", (long long)i);
    return CANVAS_OK;
}

static canvas_status decode(run *s, float **out_image)
{
    const int h = s->latent_height, w = s->latent_width;
    const size_t pixels = (size_t)s->width * s->height;
    float *latent = NULL, *chw = NULL, *hwc = NULL;
    canvas_status st = mem_alloc((void **)&latent, (size_t)s->z * h * w * sizeof(float), MEM_ACTIVATIONS);
    if (st == CANVAS_OK) {
        edit_unpack_latents(s->hidden, s->z, h, w, latent);
        vae_denormalize_latent(&s->p->vae->config, latent, (int64_t)h * w);
        st = mem_alloc((void **)&chw, pixels * 3 * sizeof(float), MEM_ACTIVATIONS);
    }
    if (st == CANVAS_OK) st = vae_pass(s, 0, latent, s->height, s->width, chw);
    mem_free(latent);
    if (st == CANVAS_OK) st = mem_alloc((void **)&hwc, pixels * 3 * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) edit_postprocess(chw, s->height, s->width, hwc);
    mem_free(chw);
    if (st != CANVAS_OK) return status_wrap(st, "decoding the image: ");
    *out_image = hwc;
    return CANVAS_OK;
}

/* ---- the run ---------------------------------------------------------------------------- */

static canvas_status prepare(run *s)
{
    edit_pipeline *p = s->p;
    const edit_request *r = s->r;
    const int joint = p->dit->config.joint_attention_dim;
    TRY(check_text(&r->prompt, "prompt", joint));
    s->cfg = r->cfg > 1.0f && r->negative.values != NULL;
    if (s->cfg) TRY(check_text(&r->negative, "negative prompt", joint));
    TRY(plan_sizes(s));
    const size_t row = (size_t)s->channels * sizeof(float);
    TRY(mem_alloc((void **)&s->hidden, (size_t)s->n_img * row, MEM_ACTIVATIONS));
    TRY(mem_alloc((void **)&s->output, (size_t)s->n_img * row, MEM_ACTIVATIONS));
    if (s->cfg) TRY(mem_alloc((void **)&s->negative_output, (size_t)s->n_img * row, MEM_ACTIVATIONS));
    TRY(mem_alloc((void **)&s->sigmas, (size_t)(r->steps + 1) * sizeof(float), MEM_SCRATCH));
    TRY(mem_alloc((void **)&s->timesteps, (size_t)r->steps * sizeof(float), MEM_SCRATCH));
    const scheduler_config *scheduler = r->scheduler ? r->scheduler : &p->scheduler;
    double mu = scheduler_mu(scheduler, s->n_target);
    canvas_status st = scheduler_sigmas(scheduler, r->steps, mu, s->sigmas, s->timesteps); /* refuses an undefined schedule */
    if (st != CANVAS_OK)
        return status_wrap(st, "output %dx%d (%lld image tokens): ", s->width, s->height, (long long)s->n_target);
    s->vae_tiled = vae_tiling_planned(s, 0, s->height, s->width, NULL, NULL);
    return CANVAS_OK;
}

/* The initial target latents: given, or seeded noise drawn unpacked and packed. */
static canvas_status initial_latents(run *s)
{
    if (s->r->initial_latents) {
        memcpy(s->hidden, s->r->initial_latents, (size_t)(s->n_target * s->channels) * sizeof(float));
        return CANVAS_OK;
    }
    const int64_t count = (int64_t)s->z * s->latent_height * s->latent_width;
    float *noise;
    TRY(mem_alloc((void **)&noise, (size_t)count * sizeof(float), MEM_ACTIVATIONS));
    rng_normal(s->r->seed, 0, noise, count);
    edit_pack_latents(noise, s->z, s->latent_height, s->latent_width, s->hidden);
    mem_free(noise);
    return CANVAS_OK;
}

/* What prepare allocated, released (so that a failed prepare can be redone). */
static void release_buffers(run *s)
{
    mem_free(s->refs);
    mem_free(s->shapes);
    mem_free(s->hidden);
    mem_free(s->output);
    mem_free(s->negative_output);
    mem_free(s->sigmas);
    mem_free(s->timesteps);
    s->refs = NULL;
    s->shapes = NULL;
    s->hidden = s->output = s->negative_output = s->sigmas = s->timesteps = NULL;
}

/* The references' latents into s->hidden after the target's (no phase without references). */
static canvas_status encode_phase(run *s)
{
    if (s->r->n_images == 0) return CANVAS_OK;
    canvas_status st;
    int attempts;
    run_phase(s, "vae-encode");
    float *at = s->hidden + s->n_target * s->channels;
    for (int i = 0; i < s->r->n_images; i++) {
        char where[48];
        snprintf(where, sizeof where, "vae-encode of reference %d", i + 1);
        TRY(run_check_cancel(s, "before the vae-encode of a reference"));
        attempts = 0;
        while ((st = encode_reference(s, i, at)) != CANVAS_OK)
            if (!run_fallback_allowed(s, st, &attempts, where, 1)) return st;
        at += (int64_t)s->shapes[1 + i].height * s->shapes[1 + i].width * s->channels;
    }
    return CANVAS_OK;
}

/* The transformer placed as planned, the steps, and its buffers freed for the decode. */
static canvas_status denoise_phase(run *s, const qwen_dit_inputs *longest)
{
    canvas_status st;
    TRY(run_check_cancel(s, "before the plan"));
    run_phase(s, "plan");
    int attempts = 0;
    for (int retry = 0; (st = run_place_transformer(s, longest, retry)) != CANVAS_OK; retry = 1)
        if (!run_fallback_allowed(s, st, &attempts, "placing the transformer", 1)) return st;
    TRY(denoise(s, longest));
    TRY(check_finite(s));
    /* the transformer's buffers are done: give the decode their room */
    mem_free(s->output);
    mem_free(s->negative_output);
    s->output = s->negative_output = NULL;
    return CANVAS_OK;
}

static canvas_status decode_phase(run *s, float **out_image)
{
    canvas_status st;
    TRY(run_check_cancel(s, "before the vae-decode"));
    run_phase(s, "vae-decode");
    int attempts = 0;
    while ((st = decode(s, out_image)) != CANVAS_OK)
        if (!run_fallback_allowed(s, st, &attempts, "vae-decode", 1)) return st;
    return CANVAS_OK;
}

/* Every phase that runs out of memory releases what it took; it is redone (up to
 * oom_retry_attempts times) after the fallback line, with the planner's choice where it has one.
 * The phases in the planner's order (plan_edit_steps, plan/plan.h): the text encoder's phase
 * and its release come before the run (the prompt arrives as embeddings: api/ encodes it,
 * and the encoder's weights leave the device when it ends, pipeline/prompt.h). */
static canvas_status run_all(run *s, float **out_image)
{
    canvas_status st;
    int attempts = 0;
    TRY(run_check_cancel(s, "before the run began"));
    while ((st = prepare(s)) != CANVAS_OK || (st = initial_latents(s)) != CANVAS_OK) {
        if (!run_fallback_allowed(s, st, &attempts, "preparing the run", 1)) return st;
        release_buffers(s);
    }
    /* the transformer's work is known before the references are encoded: a run that no plan
     * fits ends now, not after a VAE encode of many large images */
    qwen_dit_inputs longest;
    const edit_text *text = s->cfg && s->r->negative.length > s->r->prompt.length ? &s->r->negative : &s->r->prompt;
    fill_inputs(s, text, 1.0f, &longest);
    attempts = 0;
    while ((st = run_check_viable(s, &longest)) != CANVAS_OK) /* its own bookkeeping may run out: again */
        if (!run_fallback_allowed(s, st, &attempts, "planning", 1)) return st;
    for (int i = 0; i < plan_edit_n_steps; i++) {
        switch (plan_edit_steps[i].phase) {
        case PLAN_PHASE_VAE_ENCODE: TRY(encode_phase(s)); break;
        case PLAN_PHASE_DENOISE: TRY(denoise_phase(s, &longest)); break;
        case PLAN_PHASE_VAE_DECODE: TRY(decode_phase(s, out_image)); break;
        default: break; /* the text encoder's phase and release: before the run */
        }
    }
    return CANVAS_OK;
}

void edit_request_from_params(edit_request *r, const canvas_prompt *prompt, const canvas_image *images, int n_images,
                              const canvas_edit_params *params)
{
    memset(r, 0, sizeof *r);
    r->prompt = (edit_text){prompt->positive.values, prompt->positive.length, prompt->positive.dim,
                            prompt->positive.mask};
    r->negative = (edit_text){prompt->negative.values, prompt->negative.length, prompt->negative.dim,
                              prompt->negative.mask};
    r->images = images;
    r->n_images = n_images;
    r->width = params->width;
    r->height = params->height;
    r->vae_area = params->vae_area;
    r->steps = params->steps;
    r->cfg = params->cfg;
    r->seed = params->seed;
    r->initial_latents = params->initial_latents;
}

canvas_status edit_run(edit_pipeline *p, const edit_request *r, const edit_observer *observer, float **out_image,
                       int *out_width, int *out_height)
{
    *out_image = NULL;
    run s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.r = r;
    s.observer = observer;
    s.device = p->device ? p->device : mem_device_cpu();
    s.scale = vae_scale_factor(&p->vae->config);
    s.z = p->vae->config.z_dim;
    s.channels = 4 * (int64_t)s.z;
    canvas_status st = run_all(&s, out_image);
    if (p->profiler) profiler_end(p->profiler);
    if (st == CANVAS_OK) {
        *out_width = s.width;
        *out_height = s.height;
    }
    release_buffers(&s);
    return st;
}

