/* SPDX-License-Identifier: Apache-2.0 */
/* edit.c — the Edit-Plus / text-to-image pipeline: open, plan, encode the references,
 * denoise, decode (the walk-through is in edit.h and docs/pipeline.md). */
#include "pipeline/edit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/size_parse.h"
#include "base/path.h"
#include "base/status.h"
#include "base/sysinfo.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "pipeline/lora.h"
#include "pipeline/pil_resize.h"
#include "pipeline/prompt.h"
#include "plan/plan.h"
#include "pipeline/rng.h"
#include "pipeline/scheduler.h"

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
    TRY(dit_load(path, &p->dit));
    if (src->text_encoder || model_dir) {
        TRY(component_path(src, src->text_encoder, "text_encoder", "--text-encoder", path, sizeof path));
        TRY(mem_strdup(&p->text_encoder, path));
    }
    const int z = p->vae->config.z_dim;
    if (p->dit->config.in_channels != 4 * z || dit_output_channels(&p->dit->config) != 4 * z)
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: the transformer takes %d and gives %lld channels per token, the VAE's packed latents "
                           "have %d (4 x z_dim %d): the components do not belong together",
                           p->dit->component_dir, p->dit->config.in_channels,
                           (long long)dit_output_channels(&p->dit->config), 4 * z, z);
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

int edit_load_retry(const edit_load_policy *policy, canvas_status st, int *attempts, const char *what)
{
    if (!policy || st != CANVAS_ERR_OUT_OF_MEMORY || !policy->fallback_enabled ||
        *attempts >= policy->oom_retry_attempts)
        return 0;
    (*attempts)++;
    char line[768];
    snprintf(line, sizeof line, "fallback: out of memory %s (%s): released what it held, loading again (%d of %d)",
             what, canvas_last_error(), *attempts, policy->oom_retry_attempts);
    if (policy->profiler) profiler_note_fallback(policy->profiler, line);
    if (policy->say) policy->say(policy->say_ctx, line);
    status_clear();
    return 1;
}

canvas_status edit_pipeline_open_sources(const edit_sources *src, const edit_load_policy *policy, edit_pipeline **out)
{
    canvas_status st;
    int attempts = 0;
    while ((st = open_sources(src, out)) != CANVAS_OK)
        if (!edit_load_retry(policy, st, &attempts, "loading the model")) return st;
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
static canvas_status reload_transformer(edit_pipeline *p, quant_choice format)
{
    dit_model *fresh;
    TRY(dit_load_quantized(p->dit->component_dir, format, &fresh));
    canvas_status st = lora_apply_specs(fresh, p->pool, p->loras, p->n_loras);
    if (st != CANVAS_OK) {
        dit_free(fresh);
        return status_wrap(st, "merging the LoRAs again after reloading the transformer as %s: ",
                           quant_choice_name(format));
    }
    dit_free(p->dit);
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
    canvas_status st = reload_transformer(p, p->dit->weights_format);
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
    dit_free(p->dit);
    vae_free(p->vae);
    mem_free(p->model_dir);
    mem_free(p->text_encoder);
    mem_free(p);
}

/* ---- one run ---------------------------------------------------------------------------- */

typedef struct reference {
    int vae_width, vae_height;    /* pixels */
} reference;

typedef struct run {
    edit_pipeline *p;
    const edit_request *r;
    const edit_observer *observer;
    mem_device *device;
    int width, height;            /* output pixels */
    int latent_width, latent_height;
    int scale;                    /* VAE downscale (8) */
    int z;                        /* latent channels (16) */
    int64_t channels;             /* packed channels (64) */
    int64_t n_target, n_img;
    reference *refs;
    dit_image_shape *shapes;
    float *hidden;                /* [n_img, channels]: target latents, then the references */
    float *output;                /* [n_img, channels] */
    float *negative_output;       /* [n_img, channels], with true CFG */
    float *sigmas, *timesteps;
    int cfg;                      /* true CFG on */
    int vae_tiled;                /* the plan: VAE passes tiled */
    char fallback_reason[512];    /* the out-of-memory a fallback handles */
    char format_change[64];       /* a fallback that lowered the weight format: "from X to fp8", else empty */
    int no_plan_fits;             /* the planner found nothing that fits: exit 3, no retry */
    int have_viable;              /* check_viable planned for the whole device: `viable` is that plan, */
    plan_result viable;           /*   which plan_and_place takes when it would plan the same again */
} run;

static void phase(run *s, const char *name)
{
    if (s->p->profiler) profiler_begin(s->p->profiler, "%s", name);
    if (s->observer && s->observer->phase) s->observer->phase(s->observer->ctx, name);
}

/* CANVAS_ERR_CANCELLED when the caller asks to stop (edit_observer.cancelled), naming where. */
static canvas_status check_cancel(run *s, const char *where)
{
    if (s->observer && s->observer->cancelled && s->observer->cancelled(s->observer->ctx))
        return status_fail(CANVAS_ERR_CANCELLED, "cancelled by the caller %s", where);
    return CANVAS_OK;
}

static void tell_plan(run *s, const char *message)
{
    if (s->observer && s->observer->plan) s->observer->plan(s->observer->ctx, message);
}

/* A fallback: counted and kept by the profiler (the report lists them) and told as a plan line. */
static void tell_fallback(run *s, const char *message)
{
    if (s->p->profiler) profiler_note_fallback(s->p->profiler, message);
    tell_plan(s, message);
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
    s->shapes[0] = (dit_image_shape){1, s->latent_height / 2, s->latent_width / 2};
    for (int i = 0; i < r->n_images; i++) {
        int h = s->refs[i].vae_height / multiple, w = s->refs[i].vae_width / multiple;
        s->shapes[1 + i] = (dit_image_shape){1, h, w};
        s->n_img += (int64_t)h * w;
    }
    return CANVAS_OK;
}

/* ---- host memory --------------------------------------------------------------------------- */

/* The host memory the run may use, read again before every phase (someone else may have
 * taken some): the --ram cap, and what the machine has available (MemAvailable) plus what
 * the run holds already, whichever is less; 0: neither is known. *held: what it holds. */
static uint64_t host_budget(const run *s, uint64_t *held)
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

/* ---- VAE passes (host memory, whole or tiled) --------------------------------------------- */

/* Tile when the host budget now leaves less room than a whole pass needs (pixel sizes);
 * *need and *room (may be NULL) get the two. */
static int vae_tiling_planned(run *s, int encode, int pixel_height, int pixel_width, uint64_t *need, uint64_t *room)
{
    vae_tiling tiling;
    vae_tiling_default(&tiling);
    if (!vae_tiling_needed(&tiling, pixel_height, pixel_width)) return 0;
    uint64_t held;
    const uint64_t budget = host_budget(s, &held);
    if (!budget) return s->vae_tiled;
    int h = encode ? pixel_height : pixel_height / s->scale, w = encode ? pixel_width : pixel_width / s->scale;
    const uint64_t pass = vae_activation_bytes(s->p->vae, thread_pool_size(s->p->pool), encode, h, w);
    const uint64_t free_now = budget > held ? budget - held : 0;
    if (need) *need = pass;
    if (room) *room = free_now;
    return pass > free_now;
}

/* One VAE pass; a whole pass that runs out of memory is redone tiled. */
static canvas_status vae_pass(run *s, int encode, const float *in, int pixel_height, int pixel_width, float *out)
{
    vae_model *vae = s->p->vae;
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
        tell_plan(s, message);
    }
    canvas_status st;
    if (!tiled) {
        st = encode ? vae_encode(vae, &be, in, pixel_height, pixel_width, out) : vae_decode(vae, &be, in, h, w, out);
        if (st != CANVAS_ERR_OUT_OF_MEMORY || !vae_tiling_needed(&tiling, pixel_height, pixel_width)) return st;
        tell_fallback(s, encode ? "fallback: VAE encode ran out of memory: tiled instead"
                                : "fallback: VAE decode ran out of memory: tiled instead");
        status_clear();
    }
    return encode ? vae_encode_tiled(vae, &be, &tiling, in, pixel_height, pixel_width, out)
                  : vae_decode_tiled(vae, &be, &tiling, in, h, w, out);
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

/* ---- the transformer's placement -------------------------------------------------------- */

static void describe_plan(run *s, int resident, size_t cap)
{
    char message[1024], cap_text[32], weights_text[32], arena_text[32];
    const dit_model *dit = s->p->dit;
    int layers = dit->config.num_layers;
    const char *vae = s->vae_tiled ? "tiled (host memory)" : "whole (host memory)";
    if (mem_device_is_host(s->device)) {
        snprintf(message, sizeof message,
                 "plan: transformer in host memory (%d blocks, weights read in place from the files), %lld target + "
                 "%lld reference tokens, %s; VAE %s",
                 layers, (long long)s->n_target, (long long)(s->n_img - s->n_target),
                 s->cfg ? "true CFG (2 calls a step)" : "no CFG", vae);
    } else {
        const op_backend be = op_backend_cpu(s->p->pool);
        size_t arena = dit_forward_arena_bytes(dit, &be, s->n_img,
                                               s->r->negative.values && s->r->negative.length > s->r->prompt.length
                                                   ? s->r->negative.length
                                                   : s->r->prompt.length);
        snprintf(message, sizeof message,
                 "plan: transformer on the %s device: %d of %d blocks resident, %d streamed through 2 buffers; "
                 "weights %s + activations %s on the device; %lld target + %lld reference tokens, %s; VAE %s",
                 size_format(cap, cap_text, sizeof cap_text), resident, layers, layers - resident,
                 size_format(dit_weight_device_bytes(dit, resident), weights_text, sizeof weights_text),
                 size_format(arena, arena_text, sizeof arena_text), (long long)s->n_target,
                 (long long)(s->n_img - s->n_target), s->cfg ? "true CFG (2 calls a step)" : "no CFG", vae);
    }
    if (s->p->plan_line[0]) {
        size_t used = strlen(message);
        snprintf(message + used, sizeof message - used, "; planner: %s", s->p->plan_line);
    }
    tell_plan(s, message);
}

/* The planner's view of this run (plan/plan.h). */
static void plan_inputs(run *s, const dit_inputs *longest, int same_format_only, plan_work *w, plan_limits *l,
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
    w->dit_model = p->dit;
    w->vae_model = p->vae;
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
    l->host_bytes = host_budget(s, &held);
    mem_device_stats host;
    mem_device_get_stats(p->host ? p->host : mem_device_cpu(), &host);
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
typedef enum place_reason { PLACE_NEW = 0, PLACE_AFTER_OOM, PLACE_DEVICE_GREW } place_reason;

static canvas_status plan_and_place(run *s, const dit_inputs *longest, place_reason why)
{
    edit_pipeline *p = s->p;
    const int fallback = why == PLACE_AFTER_OOM;
    plan_work w;
    plan_limits l;
    plan_hardware hw;
    plan_result result;
    s->format_change[0] = '\0';
    /* release the device first: the plan is for what is free without the old placement */
    if (dit_device(p->dit) && dit_device(p->dit) != mem_device_cpu())
        TRY(dit_place(p->dit, mem_device_cpu(), DIT_ALL_BLOCKS));
    if (!p->have_open_weights) {
        p->open_weights = p->dit->weights_format;
        p->have_open_weights = 1;
    }
    const quant_choice now = p->dit->weights_format;
    if (why == PLACE_DEVICE_GREW && p->strategy == PLAN_AUTO &&
        (now.format != p->open_weights.format || now.per_channel != p->open_weights.per_channel))
        TRY(reload_transformer(p, p->open_weights));
    plan_inputs(s, longest, fallback, &w, &l, &hw);
    /* a preference list: the first preset that fits, in order */
    const int preferring = !fallback && p->strategy == PLAN_AUTO ? p->n_preferred : 0;
    for (int i = 0; i < preferring; i++) {
        TRY(plan_make(&w, &hw, &l, (plan_preset)p->preferred[i], p->pool, &result));
        if (result.chosen >= 0) break;
    }
    /* check_viable made this very plan (same strategy, the whole device free) before the encode */
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
    if (c->point.weights.format != p->dit->weights_format.format ||
        c->point.weights.per_channel != p->dit->weights_format.per_channel)
        TRY(reload_transformer(p, c->point.weights)); /* the transformer alone, in the plan's format */
    plan_describe(c, &w, p->plan_line, sizeof p->plan_line);
    plan_timing_key(&w, &hw, &c->point, l.device_bytes != 0, p->planned_timing_key, sizeof p->planned_timing_key);
    p->planned = (edit_plan_record){c->point.preset, c->point.resident_blocks, c->point.weights, c->peak.device,
                                    c->peak.pinned, c->peak.host, c->seconds_per_step};
    if (p->profiler) profiler_note_prediction(p->profiler, &(profiler_prediction){c->peak.device, c->peak.pinned, c->peak.host});
    return dit_place(p->dit, s->device, mem_device_is_host(s->device) ? DIT_ALL_BLOCKS : c->point.resident_blocks);
}

/* The host budget still holds the last plan's host peak (or nothing was planned). */
static int host_plan_holds(const run *s)
{
    const edit_plan_record *planned = &s->p->planned;
    uint64_t held;
    const uint64_t budget = host_budget(s, &held);
    return planned->preset < 0 || !budget || planned->host + planned->pinned <= budget;
}

/* The last placement serves this run: same device, token counts and (within the headroom)
 * cap, the resident prefix asked for, and a host budget (read now) that still holds the plan. */
static int placement_reusable(const run *s, const dit_inputs *longest)
{
    const edit_pipeline *p = s->p;
    mem_device_stats stats;
    mem_device_get_stats(s->device, &stats);
    const size_t moved = stats.cap_bytes > p->placed_cap ? stats.cap_bytes - p->placed_cap : p->placed_cap - stats.cap_bytes;
    return p->placed_blocks >= 0 && p->placed_device == s->device && p->placed_n_img == longest->n_img &&
           p->placed_n_txt == longest->n_txt && dit_device(p->dit) == s->device && moved <= p->headroom_bytes &&
           (p->resident_blocks < 0 || p->resident_blocks == p->placed_blocks) && host_plan_holds(s);
}

/* Before the VAE encode: whether any plan of the strategy asked for fits the whole device
 * (its cap, as if the transformer held none of it: the placement may be re-made), the way
 * plan_and_place will ask. No plan: the out-of-memory that plan_and_place would give, now.
 * Nothing to check without a device, with a fixed --resident-blocks, or when the last
 * placement will be re-used (place_transformer). */
static canvas_status check_viable(run *s, const dit_inputs *longest)
{
    edit_pipeline *p = s->p;
    if (mem_device_is_host(s->device) || p->resident_blocks >= 0 || placement_reusable(s, longest)) return CANVAS_OK;
    plan_work w;
    plan_limits l;
    plan_hardware hw;
    plan_result result;
    plan_inputs(s, longest, 0, &w, &l, &hw);
    l.device_free_bytes = 0; /* the whole device */
    TRY(plan_make(&w, &hw, &l, p->n_preferred ? PLAN_AUTO : (plan_preset)p->strategy, p->pool, &result));
    if (result.chosen >= 0) {
        s->viable = result;
        s->have_viable = p->n_preferred == 0;
        return CANVAS_OK;
    }
    s->no_plan_fits = 1;
    return plan_no_fit(&result, &l);
}

/* Remember the placement (`blocks` resident) and the token counts it was made for: the
 * next run with the same counts re-uses it. */
static void record_placement(run *s, const dit_inputs *longest, int blocks)
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
 * fallback chain (plan_and_place), whatever the strategy or --resident-blocks asked. */
static canvas_status place_transformer(run *s, const dit_inputs *longest, int retry)
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
        TRY(plan_and_place(s, longest, why));
        k = dit_resident_blocks(p->dit);
        if (s->format_change[0]) {
            char message[256];
            snprintf(message, sizeof message, "plan: nothing in the loaded weight format fits what is free: weights "
                     "lowered %s (within that format's error bound)", s->format_change);
            tell_plan(s, message);
        }
    } else {
        TRY(dit_place(p->dit, s->device, k));
    }
    record_placement(s, longest, k);
    describe_plan(s, k, stats.cap_bytes);
    return CANVAS_OK;
}

/* An out-of-memory that a fallback may handle: with `say`, counts it and says so in one
 * fallback line (without, the caller does once it knows what the fallback did); clears the reason. 0 when it must be returned (other status, fallbacks off or used up). */
static int fallback_allowed(run *s, canvas_status st, int *attempts, const char *where, int say)
{
    edit_pipeline *p = s->p;
    if (st != CANVAS_ERR_OUT_OF_MEMORY || !p->fallback_enabled || *attempts >= p->oom_retry_attempts ||
        s->no_plan_fits)
        return 0;
    (*attempts)++;
    snprintf(s->fallback_reason, sizeof s->fallback_reason, "%s", canvas_last_error());
    status_clear();
    if (say) {
        char message[768];
        snprintf(message, sizeof message, "fallback: out of memory in %s (%s): released what it held, redone", where,
                 s->fallback_reason);
        tell_fallback(s, message);
    }
    return 1;
}

/* ---- denoising -------------------------------------------------------------------------- */

static void fill_inputs(run *s, const edit_text *text, float timestep, dit_inputs *in)
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
    dit_inputs in;
    char where[64];
    snprintf(where, sizeof where, "before step %d of %d", i + 1, s->r->steps);
    TRY(check_cancel(s, where));
    op_backend be = op_backend_cpu(p->pool);
    fill_inputs(s, &s->r->prompt, timestep, &in);
    TRY(dit_forward(p->dit, &be, &in, NULL, s->output));
    if (s->cfg) {
        snprintf(where, sizeof where, "in step %d of %d (before its negative-prompt call)", i + 1, s->r->steps);
        TRY(check_cancel(s, where));
        fill_inputs(s, &s->r->negative, timestep, &in);
        TRY(dit_forward(p->dit, &be, &in, NULL, s->negative_output));
        edit_cfg_combine(s->output, s->negative_output, s->n_target, s->channels, s->r->cfg);
    }
    /* reference rows of the output are dropped: only the target latents move */
    scheduler_step(s->hidden, s->output, s->n_target * s->channels, s->sigmas[i], s->sigmas[i + 1]);
    return CANVAS_OK;
}

/* The loop. An out-of-memory in a step (the forward frees what it took) re-plans for what
 * is free now, in the same weight format, and redoes the step; earlier steps are kept. */
static canvas_status denoise(run *s, const dit_inputs *longest)
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
        if (fallback_allowed(s, st, &attempts, where, mem_device_is_host(s->device))) {
            p->placed_blocks = -1;
            st = mem_device_is_host(s->device) ? CANVAS_OK : plan_and_place(s, longest, PLACE_AFTER_OOM);
            if (st == CANVAS_OK && !mem_device_is_host(s->device)) {
                record_placement(s, longest, dit_resident_blocks(p->dit));
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
                tell_fallback(s, message);
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

/* Every phase that runs out of memory releases what it took; it is redone (up to
 * oom_retry_attempts times) after the fallback line, with the planner's choice where it has one. */
static canvas_status run_all(run *s, float **out_image)
{
    canvas_status st;
    int attempts = 0;
    TRY(check_cancel(s, "before the run began"));
    while ((st = prepare(s)) != CANVAS_OK || (st = initial_latents(s)) != CANVAS_OK) {
        if (!fallback_allowed(s, st, &attempts, "preparing the run", 1)) return st;
        release_buffers(s);
    }
    /* the transformer's work is known before the references are encoded: a run that no plan
     * fits ends now, not after a VAE encode of many large images */
    dit_inputs longest;
    const edit_text *text = s->cfg && s->r->negative.length > s->r->prompt.length ? &s->r->negative : &s->r->prompt;
    fill_inputs(s, text, 1.0f, &longest);
    attempts = 0;
    while ((st = check_viable(s, &longest)) != CANVAS_OK) /* its own bookkeeping may run out: again */
        if (!fallback_allowed(s, st, &attempts, "planning", 1)) return st;
    if (s->r->n_images > 0) {
        phase(s, "vae-encode");
        float *at = s->hidden + s->n_target * s->channels;
        for (int i = 0; i < s->r->n_images; i++) {
            char where[48];
            snprintf(where, sizeof where, "vae-encode of reference %d", i + 1);
            TRY(check_cancel(s, "before the vae-encode of a reference"));
            attempts = 0;
            while ((st = encode_reference(s, i, at)) != CANVAS_OK)
                if (!fallback_allowed(s, st, &attempts, where, 1)) return st;
            at += (int64_t)s->shapes[1 + i].height * s->shapes[1 + i].width * s->channels;
        }
    }
    TRY(check_cancel(s, "before the plan"));
    phase(s, "plan");
    attempts = 0;
    for (int retry = 0; (st = place_transformer(s, &longest, retry)) != CANVAS_OK; retry = 1)
        if (!fallback_allowed(s, st, &attempts, "placing the transformer", 1)) return st;
    TRY(denoise(s, &longest));
    TRY(check_finite(s));
    /* the transformer's buffers are done: give the decode their room */
    mem_free(s->output);
    mem_free(s->negative_output);
    s->output = s->negative_output = NULL;
    TRY(check_cancel(s, "before the vae-decode"));
    phase(s, "vae-decode");
    attempts = 0;
    while ((st = decode(s, out_image)) != CANVAS_OK)
        if (!fallback_allowed(s, st, &attempts, "vae-decode", 1)) return st;
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
