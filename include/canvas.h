/* SPDX-License-Identifier: Apache-2.0 */
/*
 * canvas.h — the one public header of Ethereal Canvas (libcanvas).
 *
 * Ethereal Canvas runs the Qwen-Image-Edit family of diffusion models on whatever
 * memory a machine has. Every function that can fail returns a canvas_status; when it
 * is not CANVAS_OK, canvas_last_error() gives a one-line reason naming the file,
 * tensor or flag concerned. The library never exits, aborts or writes to stdout.
 */
#ifndef CANVAS_H
#define CANVAS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; canvas_version() gives the library's, which differs when a
 * program runs with another libcanvas.so than the one it was built against. The build
 * reads the project version from these three lines (CMakeLists.txt). */
#define CANVAS_VERSION_MAJOR 0
#define CANVAS_VERSION_MINOR 1
#define CANVAS_VERSION_PATCH 0
#define CANVAS_VERSION "0.1.0"

/* libcanvas.so is built with -fvisibility=hidden: only what this header declares is
 * exported, so the library's internals stay out of a program's symbol space. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

/* "MAJOR.MINOR.PATCH" of the library that is running. */
const char *canvas_version(void);

/* Status codes. The CLI maps them onto its exit codes with canvas_exit_code(). */
typedef enum canvas_status {
    CANVAS_OK = 0,
    CANVAS_ERR_USAGE,          /* a caller error: bad argument, bad flag          -> exit 2 */
    CANVAS_ERR_OUT_OF_MEMORY,  /* an allocation failed (real, capped or injected)  -> exit 3 */
    CANVAS_ERR_INPUT,          /* a bad or missing file, model, image or config    -> exit 4 */
    CANVAS_ERR_IO,             /* the system refused a read or write               -> exit 1 */
    CANVAS_ERR_UNSUPPORTED,    /* valid, but not something this build can do       -> exit 1 */
    CANVAS_ERR_INTERNAL,       /* a bug: an invariant did not hold                 -> exit 1 */
    CANVAS_ERR_CANCELLED       /* the caller stopped the run (canvas_cancel_fn)    -> exit 130 */
} canvas_status;

/* The reason for the last failure on the calling thread ("" when none). The text stays
 * valid until the next failing call on this thread. */
const char *canvas_last_error(void);

/* Short name of a status ("out of memory", ...). */
const char *canvas_status_name(canvas_status status);

/* Exit code the canvas CLI uses for a status: 0 ok, 2 usage, 3 out of memory,
 * 4 bad input, 130 cancelled (as a shell reports a run stopped by Ctrl-C), 1 anything else. */
int canvas_exit_code(canvas_status status);

/* ======================================================================================
 * The model API: open a model folder, edit or generate images, watch memory.
 *
 *   canvas_options opt;  canvas_options_default(&opt);  opt.vram_bytes = 6ull << 30;
 *   canvas_model *m;     canvas_open("Qwen-Image-Edit-2511", &opt, &m);
 *   canvas_prompt p;     canvas_prompt_load("embeds.safetensors", &p);
 *   canvas_image in, out;  canvas_image_load("cat.png", &in);
 *   canvas_edit_params e;  canvas_edit_params_default(&e);  e.seed = 7;
 *   canvas_edit(m, &p, &in, 1, &e, on_progress, NULL, &out);
 *   canvas_image_save_png("out.png", &out, NULL, 0);
 *   canvas_image_free(&out); canvas_image_free(&in); canvas_prompt_free(&p); canvas_close(m);
 *
 * One model is used by one thread at a time (several models may be open, each used by its
 * own thread, each with its own caps, profile and counters). docs/api.md walks through it.
 * ====================================================================================== */

/* ---- images ---------------------------------------------------------------------------- */

/* 8-bit RGB pixels, row-major, 3 bytes per pixel: pixel (x, y) starts at 3 (y width + x).
 * Images the library returns own `pixels`; canvas_image_free releases them. */
typedef struct canvas_image {
    int width, height;
    uint8_t *pixels;
} canvas_image;

/* Read a PNG, JPEG or WebP file (recognised by its first bytes, not its name). Grey and
 * palette images become RGB, an alpha channel is dropped (as PIL's convert("RGB") does),
 * 16-bit samples keep their high byte, colour profiles and EXIF orientation are ignored.
 * CANVAS_ERR_INPUT naming the file for a missing, truncated, unknown or oversized image
 * (at most 16384 pixels a side, 2^27 pixels). */
canvas_status canvas_image_load(const char *path, canvas_image *out);

/* A text chunk of a PNG: key (1-79 Latin-1 characters), value (any text; written as tEXt
 * when it is ASCII, as iTXt (UTF-8) otherwise). */
typedef struct canvas_text {
    const char *key;
    const char *value;
} canvas_text;

/* Write an 8-bit RGB PNG with the given text chunks. The file is written to a temporary
 * file next to `path` and renamed over it only when complete, so a failure leaves no
 * partial file (and an existing `path` untouched). CANVAS_ERR_IO when the system refuses. */
canvas_status canvas_image_save_png(const char *path, const canvas_image *image, const canvas_text *texts,
                                    int n_texts);

/* Release what the library allocated for an image (pixels = NULL afterwards). */
void canvas_image_free(canvas_image *image);

/* ---- prompts --------------------------------------------------------------------------- */

/* One encoded prompt: the text encoder's output after the pipeline drops its template
 * prefix, [length, dim] floats (dim = the transformer's joint_attention_dim), and an
 * optional mask (1 = token, 0 = padding; NULL = every token). */
typedef struct canvas_embedding {
    float *values;
    int64_t length, dim;
    uint8_t *mask;
} canvas_embedding;

/* The prompt of an edit: `positive` always; `negative` (values NULL when absent) turns
 * on true classifier-free guidance when cfg > 1, as in the reference pipeline. */
typedef struct canvas_prompt {
    canvas_embedding positive;
    canvas_embedding negative;
} canvas_prompt;

/* Read prompt embeddings from a safetensors file holding `prompt_embeds` [1, L, D] and
 * optionally `negative_prompt_embeds` [1, L', D], with optional masks
 * `prompt_embeds_mask` [1, L] and `negative_prompt_embeds_mask` [1, L'] (any integer or
 * float type, nonzero = token) — the names diffusers' pipelines take. F32, F16 and BF16
 * embeddings are read as f32. CANVAS_ERR_INPUT naming the file and tensor otherwise. */
canvas_status canvas_prompt_load(const char *path, canvas_prompt *out);
void canvas_prompt_free(canvas_prompt *prompt);

/* Write a prompt in the format canvas_prompt_load reads: `prompt_embeds` [1, L, D] and,
 * when present, `negative_prompt_embeds`, as F32 (to PATH.tmp, then renamed).
 * CANVAS_ERR_UNSUPPORTED for a prompt with a padding mask. */
canvas_status canvas_prompt_save(const char *path, const canvas_prompt *prompt);

/* ---- opening a model ------------------------------------------------------------------- */

typedef struct canvas_model canvas_model;

/* A LoRA file merged into the transformer's weights when the model opens (docs/lora.md).
 * Every naming people use for Qwen-Image is recognised from the keys: diffusers / PEFT
 * (lora_A / lora_B), kohya (lora_unet_...), the lightx2v Lightning files, ComfyUI
 * (diffusion_model.). Each key must match a Linear of the transformer: an unknown key, a
 * missing half or a shape mismatch is CANVAS_ERR_INPUT naming the file and the key. */
typedef struct canvas_lora {
    const char *path;
    float scale;                  /* the strength: W += scale · (alpha / rank) · up @ down */
} canvas_lora;

struct canvas_progress; /* below, with edit and generate */

/* Where the model may put memory. Zero everywhere means: compute in host memory, no caps. */
typedef struct canvas_options {
    uint64_t vram_bytes;          /* > 0: a device of this many bytes plays the GPU (weights and
                                     activations of the transformer live there); on CUDA (device) it
                                     caps the GPU region instead */
    uint64_t ram_bytes;           /* > 0: cap on the host memory this model allocates (its copies of
                                     weights, activations, caches, the text encoder), counted per model:
                                     other models and the caller's own allocations do not count (a
                                     model's work runs on the calling thread; docs/api.md) */
    double link_bytes_per_second; /* > 0: throttle host <-> device copies (needs vram_bytes; refused
                                     on CUDA, whose link is real) */
    int resident_blocks;          /* -1: the planner chooses; K: keep K transformer blocks on the
                                     device and stream the rest (needs vram_bytes, or CUDA) */
    int threads;                  /* 0: CANVAS_THREADS, else every online CPU; at most 4 per CPU */
    const canvas_lora *loras;     /* n_loras LoRA files merged at open, in order (their deltas add up); the
                                     merged matrices are new MEM_WEIGHTS copies in the stored format */
    int n_loras;
    /* the planner (docs/cli.md#canvas-plan); zero everywhere: auto, as stored, fallbacks on */
    const char *strategy;         /* NULL or "auto": the fastest plan that fits; "full", "fp8", "nf4",
                                     "offload", "sequential"; or a preference list "offload,fp8": the
                                     first that fits, in order (none fits: the fastest that fits) */
    int allow_quantize;           /* 1: the planner may quantise the transformer (fp8, nf4) below the
                                     files' precision; the LoRAs are merged again after such a reload */
    int fp8;                      /* 0: fp8 as allow_quantize says; 1: fp8 allowed anyway; -1: never fp8 */
    uint64_t headroom_bytes;      /* device memory the planner keeps unused */
    int no_fallback;              /* 1: an out-of-memory ends the run (0: release, re-plan, redo the step) */
    int oom_retry_attempts;       /* fallbacks allowed per step or phase; 0: 3 */
    int profile_phases;           /* phase records the profiler keeps; 0: 1024. Older ones are folded
                                     into one summary (peaks as maxima, seconds and transfers summed) */
    const char *text_encoder_weights; /* the text encoder's layers quantised on load (docs/text-encoder.md):
                                     "fp8", "fp8-channel", "fp8-e5m2", "nf4", "q8", or "none" (as
                                     stored); NULL: as stored, or fp8 / nf4 while `strategy` names that
                                     preset and quantising is allowed (allow_quantize, fp8), as the
                                     planner counts it. CANVAS_ERR_USAGE for another name */
    void (*load_progress)(void *ctx, const struct canvas_progress *progress);
                                  /* NULL: none; else told, during canvas_open, of each fallback while
                                     loading (a CANVAS_PROGRESS_PLAN event whose message is the
                                     "fallback: ..." line): an out-of-memory while loading releases what
                                     was loaded and loads again, up to oom_retry_attempts times */
    void *load_progress_ctx;
    /* components from single files, as ComfyUI keeps them (docs/cli.md#single-files): each NULL
       (the model folder's) or one .safetensors file replacing that component of the folder, its
       key prefix ("model.diffusion_model.", none, ...) stripped, the original VAE names renamed,
       fp8_scaled weights read with their scales, its config read from its tensors (the rest as
       Qwen-Image-Edit-2511's). With transformer_file and vae_file, canvas_open takes a NULL
       model_dir; prompts then need embeddings or a folder's tokenizer. A GGUF file is
       CANVAS_ERR_UNSUPPORTED for now; a file holding no such component CANVAS_ERR_INPUT */
    const char *transformer_file;
    const char *text_encoder_file;
    const char *vae_file;
    const char *device;           /* where the model computes: NULL or "auto" (CUDA when a GPU is present,
                                     else the CPU), "cpu", or "cuda" (an error, CANVAS_ERR_UNSUPPORTED,
                                     without a usable GPU: never a silent CPU run). On CUDA the
                                     transformer, the text encoder and each VAE pass that fits compute
                                     on the GPU (vram_bytes caps its region; docs/cuda.md) */
} canvas_options;

void canvas_options_default(canvas_options *options);

/* Open a diffusers-layout model folder (model_index.json, transformer/, vae/,
 * scheduler/), and/or the component files of options (model_dir NULL when both the
 * transformer and the VAE come from files): configs checked, weights mapped (not read), the device set up. The memory
 * plan (how many transformer blocks stay on the device, tiled or whole VAE passes) is made
 * automatically at each edit for its image sizes, by dry runs of the real code on a
 * measure device; progress reports it. CANVAS_ERR_INPUT naming the folder, file or key
 * for a bad or missing model; CANVAS_ERR_USAGE for contradictory options. */
canvas_status canvas_open(const char *model_dir, const canvas_options *options, canvas_model **out);
void canvas_close(canvas_model *model);

/* Switch the strategy between runs: a resident prefix of K transformer blocks (K >= 0),
 * or -1 to let the planner choose again. Takes effect at the next edit/generate. */
canvas_status canvas_set_resident_blocks(canvas_model *model, int resident_blocks);

/* Switch the memory strategy between runs: "full", "fp8", "nf4", "offload", "sequential"
 * or "auto" (the planner's fastest plan that fits; docs/cli.md#canvas-plan), or a preference
 * list ("offload,fp8", as canvas_options.strategy). allow_quantize 1 lets
 * the planner use fp8 / nf4 below the files' precision. Takes effect at the next
 * edit/generate; what can stay stays (the VAE; the transformer is reloaded only when its
 * weight format changes, re-placed otherwise). CANVAS_ERR_USAGE for an unknown name. */
canvas_status canvas_set_strategy(canvas_model *model, const char *strategy, int allow_quantize);

/* Lower (or raise, up to the size it was opened with) the device's memory limit, as when
 * another process takes GPU memory. Blocks already placed stay; the next allocation that
 * does not fit fails, and the run falls back: releases the step, re-plans for what is free,
 * redoes it (the report counts fallbacks). May be called from a progress callback. */
canvas_status canvas_set_vram_limit(canvas_model *model, uint64_t bytes);

/* Change the strength of the index-th LoRA of canvas_options.loras (0-based) and merge the
 * LoRAs again: the transformer is reloaded from its files in its current weight format and
 * every LoRA merged at its (new) scale, exactly as canvas_open would have done with that
 * scale; a scale per model, not per request (merged weights have one scale; a server sets
 * it between jobs). Costs a reload (fast for float files, mapped; a quantised model is
 * quantised again). All or nothing: on failure the model is unchanged. CANVAS_ERR_USAGE for
 * an index out of range or a scale that is not finite. */
canvas_status canvas_set_lora_scale(canvas_model *model, int index, float scale);

/* Encode prompt text with the model folder's tokenizer/ (or processor/tokenizer.json) and
 * text_encoder/ as its pipeline (model_index.json's _class_name) does (docs/text-encoder.md):
 * Edit-Plus puts one "Picture N: <image>" per condition image before the prompt, Edit one
 * image, text-to-image none. `negative` (NULL: none) is encoded the same way with the same
 * images; pass " " for the reference pipelines' default when cfg > 1. The images are the
 * edit's references, resized here as the pipeline does. The encoder is opened at the first
 * call and kept; the last few encodings are kept too, so the same text with the same
 * images is not encoded twice. Runs in host memory; the profiler records a "text-encode"
 * phase. CANVAS_ERR_INPUT when the folder has no text encoder or tokenizer (prompts then
 * come as embeddings), CANVAS_ERR_USAGE for a prompt over 64 KiB or 4096 tokens. */
canvas_status canvas_encode_prompt(canvas_model *model, const char *prompt, const char *negative,
                                   const canvas_image *images, int n_images, canvas_prompt *out);

/* ---- edit and generate ----------------------------------------------------------------- */

/* A run asks this, on its own thread, before each phase (vae-encode, plan, vae-decode), before
 * each reference's VAE pass and before each transformer call of a denoising step; nonzero
 * stops the run: what it holds is released (the completed steps' latents too), no image is
 * made, and the call returns CANVAS_ERR_CANCELLED naming where it stopped. The model stays
 * open and usable (a transformer placed on the device stays, as after any run). To stop
 * from another thread, read a flag that thread sets (an atomic_int); to stop from the
 * progress callback, set such a flag there (pass the same context to both). */
typedef int (*canvas_cancel_fn)(void *ctx);

typedef struct canvas_edit_params {
    int steps;                    /* 50 (the pipeline's default; the 2511 model card uses 40) */
    float cfg;                    /* true_cfg_scale, 4.0; used when > 1 and a negative prompt is given */
    uint64_t seed;                /* 0; the noise generator is documented in docs/pipeline.md */
    int width, height;            /* output size, 0: from the last image's aspect ratio at vae_area
                                     (generate: 1024 x 1024); floored to multiples of 16 */
    int64_t vae_area;             /* pixels each reference image is resized to (aspect kept,
                                     sides multiples of 32): 1024 x 1024 */
    const float *initial_latents; /* NULL: seeded noise; else the packed initial latents
                                     [(H/16)(W/16), 64] (to reproduce another implementation) */
    int lightning_scheduler;      /* 1: the scheduler config the Qwen-Image-Lightning LoRAs are used with
                                     (a fixed shift 3: base_shift = max_shift = ln 3, no shift_terminal)
                                     instead of the model's, for this run only (the model keeps its own);
                                     the CLI's --lightning 4|8 also sets steps and cfg 1 */
    canvas_cancel_fn cancel;      /* NULL: the run is not stopped; else asked as above, with cancel_ctx */
    void *cancel_ctx;
} canvas_edit_params;

void canvas_edit_params_default(canvas_edit_params *params);

/* Check a run's parameters against the model before any work (call it before
 * canvas_encode_prompt to fail before the encoding): today the step count its scheduler
 * (or the Lightning one) has a schedule for: 1 step is undefined with the Qwen-Image
 * schedulers' shift_terminal. CANVAS_ERR_USAGE saying what to give; canvas_edit and
 * canvas_generate refuse the same, later. */
canvas_status canvas_check_params(canvas_model *model, const canvas_edit_params *params);

typedef enum canvas_progress_kind {
    CANVAS_PROGRESS_PLAN = 0,   /* `message` describes the memory plan chosen for this run */
    CANVAS_PROGRESS_PHASE,      /* a phase begins: "vae-encode", "denoise", "vae-decode" */
    CANVAS_PROGRESS_STEP,       /* a denoising step finished; in phase "text-encode" an encoder layer
                                   (canvas_encode_prompt_progress: step = vision blocks and decoder
                                   layers done, steps = those of this encoding, no latents) */
    CANVAS_PROGRESS_DONE        /* the image is ready */
} canvas_progress_kind;

/* What a progress callback sees. Pointers are valid only during the call. */
typedef struct canvas_progress {
    canvas_progress_kind kind;
    const char *phase;            /* the current phase */
    const char *message;          /* PLAN: one line; "text-encode" STEP: "prompt" or "negative prompt";
                                     otherwise "" */
    int step, steps;              /* STEP: steps done (1-based) out of steps */
    double phase_seconds;         /* seconds since the phase began */
    double seconds_per_step;      /* STEP: mean over the steps so far */
    int on_device;                /* 1: the transformer computes on a capped device (vram_bytes) */
    uint64_t device_bytes, device_peak_bytes; /* that device; with on_device 0, the host pool */
    uint64_t host_bytes, host_peak_bytes;     /* host allocations of this model (its ram_bytes scope) */
    const float *latents;         /* STEP: the packed target latents after the step */
    int64_t latent_tokens, latent_channels;
} canvas_progress;

typedef void (*canvas_progress_fn)(void *ctx, const canvas_progress *progress);

/* Edit: the Qwen-Image-Edit-Plus pipeline (spec §4): each of the n_images references
 * resized to params->vae_area and VAE-encoded, the target latents denoised by the
 * transformer over the flow-match schedule (true CFG with the per-token norm rescale when
 * cfg > 1 and the prompt has a negative), decoded, and returned as 8-bit RGB in *out
 * (round half to even of 255 x, x in [0, 1]). progress may be NULL. On failure *out is
 * empty: CANVAS_ERR_OUT_OF_MEMORY when no plan fits the caps (the message names the
 * minimum), CANVAS_ERR_INPUT for embeddings of the wrong width, CANVAS_ERR_USAGE for bad
 * parameters. An out-of-memory inside a step (memory taken by someone else) re-plans with
 * fewer resident blocks and redoes that step; earlier steps are kept. */
canvas_status canvas_edit(canvas_model *model, const canvas_prompt *prompt, const canvas_image *images,
                          int n_images, const canvas_edit_params *params, canvas_progress_fn progress,
                          void *progress_ctx, canvas_image *out);

/* Text to image: the same without references (zero_cond_t then changes nothing). */
canvas_status canvas_generate(canvas_model *model, const canvas_prompt *prompt, const canvas_edit_params *params,
                              canvas_progress_fn progress, void *progress_ctx, canvas_image *out);

/* canvas_encode_prompt with progress and cancellation, for a run about to use `params`: a
 * PHASE event "text-encode", then per encoding (the prompt, then the negative; a cached one
 * has none) a STEP event in phase "text-encode" after each vision block and decoder layer
 * (step of steps, message "prompt" / "negative prompt", seconds_per_step the mean per
 * layer). params->cancel (params and progress may be NULL) is asked before the encoding and
 * after each layer: nonzero stops it with CANVAS_ERR_CANCELLED naming where, nothing
 * cached or returned, the model usable. */
canvas_status canvas_encode_prompt_progress(canvas_model *model, const char *prompt, const char *negative,
                                            const canvas_image *images, int n_images,
                                            const canvas_edit_params *params, canvas_progress_fn progress,
                                            void *progress_ctx, canvas_prompt *out);

/* ---- memory and profile ---------------------------------------------------------------- */

typedef struct canvas_memory_snapshot {
    uint64_t device_cap_bytes;        /* 0: no device (computing in host memory) */
    uint64_t device_bytes, device_peak_bytes;      /* all classes, now and since open */
    uint64_t device_weight_bytes, device_activation_bytes;
    uint64_t host_bytes, host_peak_bytes;          /* this model's allocations in host memory */
    uint64_t host_weight_bytes;
    uint64_t host_cap_bytes;          /* the model's ram_bytes (0: none) */
    uint64_t host_rss_bytes;          /* the process's resident set (mapped weights included) */
    uint64_t mem_available_bytes;     /* the kernel's MemAvailable */
    int resident_blocks, total_blocks;/* transformer blocks kept on the device / in the model */
} canvas_memory_snapshot;

canvas_status canvas_memory_snapshot_take(const canvas_model *model, canvas_memory_snapshot *out);

/* The profile: one record per phase since open or the last reset ("load", "vae-encode",
 * "plan", "step 1"..., "vae-decode"), peaks per phase; the last canvas_options.profile_phases
 * of them (older ones are folded into the report's "earlier_phases" summary). */
typedef struct canvas_phase_profile {
    const char *name;
    double start_seconds, seconds;
    uint64_t device_peak_bytes, host_peak_bytes, pinned_peak_bytes;
    uint64_t transfer_bytes;
    double transfer_wait_seconds;
} canvas_phase_profile;

int canvas_profile_phase_count(const canvas_model *model);
canvas_status canvas_profile_phase(const canvas_model *model, int index, canvas_phase_profile *out);
/* Forget the phases, the summary of older ones, the memory samples and the fallback count,
 * as a server does before each job; times keep counting from open. The peaks "since open" of
 * canvas_memory_snapshot_take then mean since the reset. */
canvas_status canvas_profile_reset(canvas_model *model);
/* The report (JSON, docs/memory.md) and a Chrome/Perfetto trace, written to PATH.tmp and
 * renamed. */
canvas_status canvas_profile_write_report(const canvas_model *model, const char *path);
canvas_status canvas_profile_write_trace(const canvas_model *model, const char *path);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* CANVAS_H */
