/* SPDX-License-Identifier: Apache-2.0 */
/* edit.h — the Qwen-Image-Edit-Plus pipeline (QwenImageEditPlusPipeline, spec §4) and
 * text-to-image (QwenImagePipeline: the same loop without references), from prompt
 * embeddings to a float RGB image.
 *
 *   references  each image: PIL's LANCZOS resize (pil_resize, 8-bit, bit-exact) to the VAE
 *               size (edit_dimensions of the VAE area and its aspect ratio), x/255·2 - 1,
 *               VAE encode (posterior mean), (z - mean)/std, packed 2x2 ->
 *               [(h/2)(w/2), 4·z_dim]; all references concatenated in order
 *   noise       rng_normal(seed) in diffusers' [1, 1, z_dim, H, W] order, then packed
 *   schedule    sigmas linspace(1, 1/S, S), mu from the TARGET token count (scheduler.h)
 *   each step   transformer([target | references], t/1000) -> keep the target rows;
 *               with true CFG (cfg > 1 and a negative prompt) a second call with the
 *               negative embeddings, comb = neg + cfg·(cond - neg), rescaled per token to
 *               ||cond||: v = comb · (||cond|| / ||comb||); Euler step x += (σ' - σ)·v
 *   decode      unpack, z·std + mean, VAE decode (clamped to [-1, 1]), clamp(x/2 + 1/2, 0, 1)
 *
 * Memory: the transformer computes on the pipeline's device (the cpu device, a capped
 * device, a CUDA device; through dit_backend) with the weight format and resident prefix the planner (plan/plan.h) chooses for
 * this run's token counts and `strategy`, re-used while they do not change; an
 * out-of-memory inside a step (or a VAE pass, or the placement) releases what the attempt
 * held, re-probes what is free, takes the best plan that fits in the same weight format (else,
 * with allow_quantize, fp8 then nf4, or the preference list's order: the transformer reloaded
 * in that format) and redoes that step (completed steps and latents are kept; one fallback
 * line each, kept by the profiler). The VAE runs on a device the CPU cannot address (CUDA)
 * for each pass that fits what is free there (its weights placed for the pass and taken back,
 * a plan line saying so), else in host memory, whole or tiled (vae_encode_tiled /
 * vae_decode_tiled) when its activation peak would not fit under the host cap, or after a
 * whole pass ran out of memory. */
#ifndef CANVAS_PIPELINE_EDIT_H
#define CANVAS_PIPELINE_EDIT_H

#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "mem/mem_device.h"
#include "mem/mem_profiler.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_vae.h"
#include "ops/threadpool.h"
#include "tensor/quant.h"

#define EDIT_DEFAULT_STEPS 50
#define EDIT_DEFAULT_CFG 4.0f
#define EDIT_DEFAULT_VAE_AREA (1024 * 1024)
#define EDIT_DEFAULT_SIZE 1024 /* text-to-image: default_sample_size 128 x vae scale 8 */
#define EDIT_MAX_STEPS 1000
#define EDIT_MAX_VAE_AREA ((int64_t)1 << 28) /* 16384 x 16384 */

/* The plan a run took, as the planner predicted it (canvas bench compares it with the
 * measured peaks). */
typedef struct edit_plan_record {
    int preset;                 /* the plan_preset taken; -1: not planned (host memory, or a fixed prefix) */
    int resident_blocks;
    quant_choice weights;
    uint64_t device, pinned, host;  /* predicted peaks */
    double seconds_per_step;
} edit_plan_record;

typedef struct edit_pipeline {
    char *model_dir;            /* NULL: every component from its own file (edit_sources) */
    char *text_encoder;         /* the text encoder's folder or file; NULL: none known */
    pipeline_index index;       /* model_index.json */
    qwen_dit_model *dit;
    vae_model *vae;
    scheduler_config scheduler;
    /* set by the owner after edit_pipeline_open through edit_pipeline_attach and
     * edit_pipeline_set_policy (read here, never written from outside pipeline/); not owned: */
    thread_pool *pool;          /* NULL: one thread; the models run on the CPU op backend over it */
    mem_device *device;         /* where the transformer computes; NULL: the cpu device */
    op_backend *dit_backend;    /* the op backend of `device` for the transformer's forwards (made by
                                   whoever made the device: op_cuda's on a CUDA device); NULL: the
                                   CPU backend over pool. The VAE's passes use it too on a device
                                   the CPU cannot address, each one that fits there; else the VAE
                                   computes on the CPU backend in host memory (the text encoder:
                                   prompt.h) */
    mem_device *host;           /* the host memory budget of its owner (a host scope device: the
                                   VAE tiling and the planner's host limit read its cap); NULL: the
                                   process's (mem_device_cpu()) */
    profiler *profiler;         /* NULL: no phases recorded */
    int resident_blocks;        /* -1: the planner chooses (only with a device other than cpu) */
    int strategy;               /* a plan_preset (plan/plan.h): PLAN_AUTO (0 means "full": set it) */
    int allow_quantize;         /* 1: the planner may load the transformer in fp8 / nf4 */
    int fp8;                    /* 0: fp8 as allow_quantize says; 1: allowed anyway; -1: never (plan_limits.fp8) */
    int preferred[8];           /* with strategy PLAN_AUTO: presets tried in this order, the first that fits */
    int n_preferred;            /*   is taken (none fits: the fastest that fits); 0: no preference */
    uint64_t headroom_bytes;    /* kept free on the device */
    int fallback_enabled;       /* 1: an out-of-memory re-plans and redoes the step (default) */
    int oom_retry_attempts;     /* fallbacks allowed per step / phase (3) */
    char plan_line[256];        /* the chosen plan, in words (plan_describe) */
    edit_plan_record planned;   /* the same, in numbers (the last plan made) */
    char planned_timing_key[512]; /* its key for learned step times (plan_timing_key); "": none */
    /* the LoRA files merged into the transformer (edit_pipeline_add_loras), owned: merged
     * again whenever the planner reloads the transformer in another weight format */
    struct lora_spec *loras;
    int n_loras;
    /* the placement made for the last run, re-used while the token counts stay */
    int placed_blocks;          /* -1: not placed for a run yet */
    int64_t placed_n_img, placed_n_txt;
    mem_device *placed_device;
    int have_open_weights;      /* open_weights is set (at the first plan) */
    quant_choice open_weights;  /* the transformer's format before any plan: when the device grows back
                                   (with strategy auto), the plan starts from it again, not from a
                                   format that a fallback or a tight plan went down to */
    size_t placed_cap;          /* the device's cap it was planned under: another cap (more than the
                                   headroom away: memory someone else took or gave back) re-plans */
} edit_pipeline;

/* The folder's scheduler/scheduler_config.json, or the Qwen-Image family's (spec 4.5) when
 * it has none or there is no folder (NULL); CANVAS_ERR_INPUT naming a bad file. */
canvas_status edit_scheduler_load(const char *model_dir, scheduler_config *out);

/* Open a diffusers pipeline folder: model_index.json, transformer/, vae/,
 * scheduler/scheduler_config.json (the Qwen-Image defaults when the folder has none).
 * CANVAS_ERR_INPUT naming the folder and what is missing or wrong. */
canvas_status edit_pipeline_open(const char *model_dir, edit_pipeline **out);

/* What loading does when memory runs out, with the runs' own fallback policy: with
 * fallback_enabled, an out-of-memory while loading (a transient shortage: memory another
 * process held a moment) releases everything loaded so far and loads again, up to
 * oom_retry_attempts times, each time telling `say` (NULL: nobody) one "fallback:" line and
 * counting it in `profiler` (NULL: not counted). Loading needs the same memory every time
 * (the weights are mapped; the copies made are the small vectors), so a shortage that
 * lasts ends in the out-of-memory after the last attempt. */
typedef struct edit_load_policy {
    int fallback_enabled;
    int oom_retry_attempts;
    profiler *profiler;
    void (*say)(void *ctx, const char *line);
    void *say_ctx;
} edit_load_policy;

/* edit_pipeline_open under `policy` (NULL: no retry). */
canvas_status edit_pipeline_open_retrying(const char *model_dir, const edit_load_policy *policy, edit_pipeline **out);

/* Where the components come from: a diffusers folder, and/or one weights file per
 * component replacing the folder's (io/weights_file.h; its config is read from its
 * tensors, models/arch_infer.h). Without a folder the transformer and the VAE files are
 * required, the pipeline is Qwen-Image-Edit-2511's (QwenImageEditPlusPipeline, the
 * Qwen-Image scheduler) and prompts need embeddings or a tokenizer from a folder. */
typedef struct edit_sources {
    const char *model_dir;      /* NULL: none */
    const char *transformer;    /* NULL: model_dir/transformer */
    const char *vae;            /* NULL: model_dir/vae */
    const char *text_encoder;   /* NULL: model_dir/text_encoder */
} edit_sources;

/* edit_pipeline_open_retrying from sources; CANVAS_ERR_USAGE when a component has neither. */
canvas_status edit_pipeline_open_sources(const edit_sources *src, const edit_load_policy *policy, edit_pipeline **out);

/* The tries of one load step: edit_load_tries_begin before the first. */
typedef struct edit_load_tries {
    int attempts;                 /* retries so far */
    uint64_t refusals;            /* the thread's refusal count (mem_last_refusal) when the try before began */
    mem_refusal refusal;          /* what the try before was refused with (count 0: not a refusal) */
} edit_load_tries;
void edit_load_tries_begin(edit_load_tries *tries);

/* After a load step (`what`: "loading the model", "merging the LoRAs") failed with st: 1 when
 * the policy lets it be tried again (counted in tries->attempts, said and counted as above;
 * the error cleared), 0 when st must be returned: the policy's attempts are used up, or this
 * try and the one before were refused for lack of room with the same numbers (nothing
 * changed, another try would fail the same). The step must have released what it took. */
int edit_load_retry(const edit_load_policy *policy, canvas_status st, edit_load_tries *tries, const char *what);
void edit_pipeline_close(edit_pipeline *p);

/* Where an open pipeline computes, given by its owner (nothing here is owned by the pipeline):
 * the fields of the same names in edit_pipeline. */
typedef struct edit_runtime {
    thread_pool *pool;
    mem_device *device;
    op_backend *dit_backend;
    mem_device *host;
    profiler *profiler;
} edit_runtime;
void edit_pipeline_attach(edit_pipeline *p, const edit_runtime *runtime);

/* How it plans and what it does when memory runs out: the fields of the same names in
 * edit_pipeline (edit_pipeline_get_policy fills one from them). */
typedef struct edit_policy {
    int resident_blocks;        /* -1: the planner chooses */
    int strategy;               /* a plan_preset */
    int preferred[8];
    int n_preferred;
    int allow_quantize;
    int fp8;
    uint64_t headroom_bytes;
    int fallback_enabled;
    int oom_retry_attempts;     /* > 0 */
} edit_policy;
void edit_pipeline_get_policy(const edit_pipeline *p, edit_policy *out);

/* Take `policy` for the next runs (placed again at the next run). A strategy of one
 * quantising preset (fp8, nf4) below the transformer's format as loaded, without the
 * permission to quantise, is refused now (CANVAS_ERR_USAGE), not at every run (a server
 * would answer every job with it); a preference list is not: the planner skips the presets
 * it may not take. On a refusal nothing changes. */
canvas_status edit_pipeline_set_policy(edit_pipeline *p, const edit_policy *policy);

/* Merge LoRA files into the transformer (pipeline/lora.h, in order) and remember them (the
 * paths are copied), so that a reload in another weight format merges them again. On
 * failure the transformer and the list are unchanged. pool may be NULL. */
struct lora_spec;
canvas_status edit_pipeline_add_loras(edit_pipeline *p, thread_pool *pool, const struct lora_spec *specs, int n);

/* Set the scale of the index-th LoRA (0 <= index < n_loras) and merge them all again: the
 * transformer reloaded from its folder in its current weight format, every LoRA merged at
 * its scale (as edit_pipeline_add_loras at open with that scale would have), placed again
 * at the next run. All or nothing: on failure the transformer and the scales are unchanged. */
canvas_status edit_pipeline_set_lora_scale(edit_pipeline *p, int index, float scale);

/* One encoded prompt as the transformer takes it. */
typedef struct edit_text {
    const float *values;        /* [length, dim]; NULL: absent */
    int64_t length, dim;        /* dim must be the transformer's joint_attention_dim */
    const uint8_t *mask;        /* [length], 1 = token; NULL: every token */
} edit_text;

typedef struct edit_request {
    edit_text prompt, negative;
    const canvas_image *images; /* references, in order; none for text-to-image */
    int n_images;
    int width, height;          /* 0: from the last image at vae_area (no image: 1024 x 1024) */
    int64_t vae_area;           /* pixels of each VAE reference image (sides multiples of 32) */
    int keep_reference_sizes;   /* 1: images are already at their VAE size (golden cases) */
    int steps;
    float cfg;                  /* true_cfg_scale */
    uint64_t seed;
    const float *initial_latents; /* NULL: seeded noise; else packed [L_target, 4·z_dim] */
    const scheduler_config *scheduler; /* NULL: the pipeline's (p->scheduler); else this run's
                                          own (the Lightning config), p->scheduler untouched */
} edit_request;

/* The request for a public-API prompt, references and parameters (canvas.h): every field
 * of *r set, the embeddings and images referenced, not copied; keep_reference_sizes 0,
 * scheduler NULL (params->lightning_scheduler is the caller's to turn into a config). */
void edit_request_from_params(edit_request *r, const canvas_prompt *prompt, const canvas_image *images, int n_images,
                              const canvas_edit_params *params);

/* Optional callbacks. plan: a line describing the memory plan; phase: a phase begins;
 * step: after step `step` (1-based), the packed target latents (valid during the call);
 * a non-OK return from step stops the run with that status. cancelled: asked before each
 * phase, each reference's VAE pass and each transformer call; nonzero stops the run with
 * CANVAS_ERR_CANCELLED (everything the run allocated released, as on any failure). */
typedef struct edit_observer {
    void (*plan)(void *ctx, const char *message);
    void (*phase)(void *ctx, const char *phase);
    canvas_status (*step)(void *ctx, int step, int steps, const float *latents, int64_t tokens, int64_t channels);
    int (*cancelled)(void *ctx);
    void *ctx;
} edit_observer;

/* Run the pipeline. *out_image: [height, width, 3] floats in [0, 1] (MEM_SCRATCH, the
 * caller mem_frees it). CANVAS_ERR_USAGE for bad parameters, CANVAS_ERR_INPUT for
 * embeddings or images that do not fit the model, CANVAS_ERR_OUT_OF_MEMORY when no plan fits. */
canvas_status edit_run(edit_pipeline *p, const edit_request *r, const edit_observer *observer, float **out_image,
                       int *out_width, int *out_height);

/* ---- building blocks (edit_latents.c), exposed for tests ------------------------------- */

/* calculate_dimensions of the pipeline: w = sqrt(area·ratio), h = w / ratio, each rounded
 * to a multiple of 32 with Python's round (half to even). At least 32 each. */
void edit_dimensions(int64_t area, double ratio, int *out_width, int *out_height);

/* _pack_latents: latent [C, H, W] (H, W even) -> packed [(H/2)(W/2), 4C], token
 * (y/2)·(W/2) + x/2, channel c·4 + (y%2)·2 + x%2. */
void edit_pack_latents(const float *latent, int channels, int height, int width, float *packed);
/* _unpack_latents: the inverse. */
void edit_unpack_latents(const float *packed, int channels, int height, int width, float *latent);

/* True CFG with the norm rescale, in place on cond [tokens, channels]:
 * cond = comb · (||cond|| / ||comb||), comb = neg + scale·(cond - neg), norms per token. */
void edit_cfg_combine(float *cond, const float *neg, int64_t tokens, int64_t channels, float scale);

/* Image post-processing: [3, H, W] in [-1, 1] -> [H, W, 3] clamp(x·0.5 + 0.5, 0, 1). */
void edit_postprocess(const float *chw, int height, int width, float *hwc);
/* 8-bit: round half to even of 255·x (numpy's round), x clamped to [0, 1]. */
void edit_to_rgb8(const float *hwc, int64_t count, uint8_t *out);

#endif
