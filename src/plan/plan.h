/* SPDX-License-Identifier: Apache-2.0 */
/* plan.h — the planner: which weight format and residency a run uses, chosen from dry
 * runs of the real code on a measure device, ranked by a time model.
 *
 *   hardware   plan_probe: host RAM (total, MemAvailable), CPU features and cores, CUDA
 *              (absent in this build), host-to-device bandwidth (a short mem_copy probe)
 *              and GEMM throughput (a short op_linear probe), both cached in
 *              ~/.cache/canvas/probe.json
 *   work       plan_work: what the run computes (token counts, CFG, steps, image sizes) and
 *              with what: a list of components (text encoder, transformer, VAE), each with
 *              its config, the formats and placements a plan may give it, from a loaded
 *              model or from config files alone; and the order of their phases as a table
 *              (plan_step: which component computes, which are on the device, which are
 *              released), the one the pipeline's runner walks too
 *   space      plan_point: transformer weight format (as stored / fp8 / nf4 / q8), a
 *              resident prefix of blocks (the rest streamed through two buffers, from
 *              pinned host or, when host RAM is short, from the mmapped file), component
 *              offload (the VAE loaded for its phases only; the text encoder resident or
 *              streamed for its phase and released before the transformer loads), VAE
 *              whole or tiled, CFG sequential
 *   presets    full | fp8 | nf4 | offload | sequential map onto points; auto ranks them
 *   estimate   per phase (text-encode, vae-encode, denoise step, vae-decode) and per kind
 *              (device, pinned, host); the phases run one after the other and each frees
 *              its memory before the next (the table: encode -> release -> denoise ->
 *              decode), so the run's peak is the largest phase, not their sum; a component
 *              the table keeps on the device through a later phase (the text encoder) takes
 *              its weights' bytes from that phase's room. The denoise step's device
 *              peak is the dry run of qwen_dit_forward on a measure device (exact, the same
 *              allocator as the capped pool); the text encoder's is a dry placement of its
 *              weight groups and activation arena on a measure device, the arena from the
 *              formula in plan_textenc.c;
 *              host memory from the formulas the code allocates by; weights read in place
 *              from the mapping (every stored matrix when computing in host memory, the
 *              streamed blocks' homes on a device) counted apart as `mapped`: with host
 *              allocations they must fit the host budget (--ram, else MemAvailable; the run's
 *              --ram cap and every --viability row use the same number) or they are paged
 *              from disk at every call
 *   time       FLOPs / measured throughput, streamed bytes / bandwidth, overlapped:
 *              seconds per forward = resident compute + max(streamed compute, transfer)
 *              + the first streamed block's transfer (it cannot be hidden); + the mapped
 *              weights / disk bandwidth when they are paged
 *
 * The planner allocates only MEM_SCRATCH bookkeeping and measure-device tokens. It never
 * prints: describe functions fill buffers, the CLI prints them. */
#ifndef CANVAS_PLAN_PLAN_H
#define CANVAS_PLAN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_vae.h"
#include "ops/threadpool.h"
#include "tensor/quant.h"

/* ---- presets ------------------------------------------------------------------------- */

typedef enum plan_preset {
    PLAN_FULL = 0,      /* weights as stored, every block resident */
    PLAN_SEQUENTIAL,    /* weights as stored, every block streamed (the least device memory) */
    PLAN_OFFLOAD,       /* weights as stored, the largest resident prefix that fits, the rest streamed */
    PLAN_FP8,           /* fp8 (e4m3, per-tensor scale) blocks, the largest prefix that fits */
    PLAN_NF4,           /* nf4 blocks, the largest prefix that fits */
    PLAN_AUTO,          /* the fastest plan that fits, among the presets the user allows */
    PLAN_PRESET_COUNT
} plan_preset;

const char *plan_preset_name(plan_preset preset);
/* "full", "fp8", "nf4", "offload", "sequential", "auto"; CANVAS_ERR_USAGE otherwise. */
canvas_status plan_preset_parse(const char *text, plan_preset *out);

/* A preference list "offload,fp8" (one name is a list of one): up to `max` presets in
 * order into out[], their number in *n. CANVAS_ERR_USAGE naming the bad item. */
canvas_status plan_preset_list_parse(const char *text, plan_preset *out, int max, int *n);

/* ---- hardware ------------------------------------------------------------------------ */

typedef struct plan_hardware {
    uint64_t ram_total_bytes, ram_available_bytes;
    int cpus;
    char cpu_features[96];          /* "avx2 fma f16c avx512f ..." */
    int cuda;                       /* CUDA devices (0: none, or no CUDA in this build: cuda_reason) */
    uint64_t cuda_total_bytes, cuda_free_bytes;
    int cuda_compute_capability;    /* 89 = sm_89 (fp8 support from there on) */
    int cuda_fp8;                   /* 1: the GPU has fp8 tensor cores (sm_89 and later) */
    char cuda_name[96];             /* device 0 */
    char cuda_reason[192];          /* with cuda 0: why ("this build has no CUDA", "no CUDA device: ...") */
    double cuda_link_pinned, cuda_link_pageable; /* measured host -> device bytes/s (0: not measured) */
    double link_bytes_per_second;   /* host <-> device */
    char link_source[48];           /* "measured", "cache", "--link-bandwidth", "nominal GPU" */
    double flops_per_second[QUANT_FORMAT_COUNT]; /* op_linear throughput per weight format */
    char flops_source[48];
    double disk_bytes_per_second;   /* streaming from the mmapped file (an assumed 2 GB/s NVMe read) */
} plan_hardware;

/* Probe the machine for `threads` workers (0: every CPU). link_bytes_per_second > 0 is
 * taken as the link (a --link-bandwidth throttle) instead of measuring one. use_cache:
 * 0 measure; 1 read ~/.cache/canvas/probe.json (keyed by the thread count and CPU; the
 * CANVAS_PROBE_CACHE variable names another file) or measure and write it; 2 read it or
 * take nominal figures without measuring (what a run does: planning must stay cheap). */
canvas_status plan_probe(int threads, double link_bytes_per_second, int use_cache, plan_hardware *out);

/* A named GPU or a size ("rtx4090", "24G"): its memory and nominal bf16 throughput and
 * link, for planning a CUDA machine from this one. CANVAS_ERR_USAGE for an unknown name. */
canvas_status plan_gpu_lookup(const char *name_or_size, uint64_t *out_bytes, double *out_flops,
                              double *out_link_bytes_per_second, char *label, size_t label_size);

/* ---- what the run computes ------------------------------------------------------------ */

#define PLAN_MAX_REFERENCES 16
/* How a pipeline class builds its prompt (spec B.9), for the text encoder's work:
 *   Edit-Plus (2509 / 2511)  drop 64 template tokens; every reference a condition image at the
 *                            384x384 area -> 392x392 (multiples of 28) -> 28 x 28 = 784 patches
 *                            of 14 pixels, 196 tokens after the 2x2 merge
 *   Edit (the first)         drop 64; the first image at the 1024x1024 area -> 1036x1036 ->
 *                            74 x 74 = 5,476 patches, 1,369 tokens
 *   text-to-image            drop 34; no image */
typedef enum plan_prompt_style { PLAN_PROMPT_EDIT_PLUS = 0, PLAN_PROMPT_EDIT, PLAN_PROMPT_TEXT_TO_IMAGE } plan_prompt_style;
#define PLAN_EDIT_PLUS_PATCHES 784
#define PLAN_EDIT_PATCHES 5476
/* From model_index.json's _class_name: QwenImageEditPipeline -> EDIT, QwenImagePipeline and
 * QwenImageImg2ImgPipeline -> TEXT_TO_IMAGE, anything else (QwenImageEditPlusPipeline) -> EDIT_PLUS. */
plan_prompt_style plan_prompt_style_of(const char *pipeline_class);

/* ---- the components and the order of their phases ------------------------------------ */

/* The models a run computes with. The work holds one record of each kind it uses
 * (plan_work.components[kind], `present`); a new kind (a second transformer, an upscaler) is
 * one more value here, its record's config and its phases in the table below. */
typedef enum plan_component_kind {
    PLAN_TEXT_ENCODER = 0,           /* Qwen2.5-VL: the prompt (and condition images) to embeddings */
    PLAN_TRANSFORMER,                /* the DiT: one forward per denoising call */
    PLAN_VAE,                        /* images to latents and back */
    PLAN_COMPONENT_KINDS
} plan_component_kind;
#define PLAN_BIT(kind) (1u << (kind))
const char *plan_component_name(plan_component_kind kind); /* "text encoder", "transformer", "VAE" */

/* Where the planner may put a component (plan_component.residency; bits). */
enum {
    PLAN_RESIDENT = 1,               /* every weight group on the device */
    PLAN_STREAMED = 2,               /* a resident prefix, the rest streamed through two slots */
    PLAN_ON_HOST = 4,                /* computes in host memory (no device, or nothing fits it) */
    PLAN_TILED = 8                   /* its passes may run in tiles (the VAE) */
};

typedef struct plan_component {
    plan_component_kind kind;
    int present;                     /* 0: the run has none of this kind (its fields are zero) */
    int stored_bytes_per_element;    /* config alone: what the files hold per matrix element (2: bf16) */
    unsigned formats;                /* the weight formats a plan may store it in (bit 1 << quant_format) */
    unsigned residency;              /* the placements a plan may give it (PLAN_RESIDENT, ...) */
    union {
        qwen_dit_config dit;              /* PLAN_TRANSFORMER */
        vae_config vae;              /* PLAN_VAE */
        textenc_config text;         /* PLAN_TEXT_ENCODER */
    } config;
    const qwen_dit_model *qwen_dit_model;      /* transformer: loaded (its stored sizes), or NULL: config alone */
    const weight_set *dit_files;     /* transformer without qwen_dit_model: its weight set from a header (a GGUF
                                        file's), whose tensors' byte sizes are used, or NULL */
    const vae_model *vae_model;      /* VAE: loaded (exact activation counts), or NULL */
    int64_t text_tokens;             /* text encoder: its sequence, the dropped template tokens + n_txt (the
                                        prompt embeddings the transformer sees, image tokens included) */
    int64_t vision_patches[PLAN_MAX_REFERENCES]; /* text encoder: per condition image (one per reference) */
} plan_component;

/* The phases that compute, each a row of plan_candidate.phases. */
enum { PLAN_PHASE_TEXT = 0, PLAN_PHASE_VAE_ENCODE, PLAN_PHASE_DENOISE, PLAN_PHASE_VAE_DECODE, PLAN_PHASE_COUNT };
#define PLAN_RELEASE (-1)
const char *plan_phase_name(int phase);

/* One step of a run, in order: a phase that computes with `runs` (`phase` its row) while the
 * components in `device` are on the device (its room is theirs alone), or, with phase =
 * PLAN_RELEASE, the release of the components in `releases` (their device and host memory
 * goes; they take part in no later step). The planner's estimates and the pipeline's runner
 * (pipeline/edit_run.c) walk the same table. */
typedef struct plan_step {
    int phase;                       /* PLAN_PHASE_*, or PLAN_RELEASE */
    plan_component_kind runs;        /* the component that computes in the phase */
    unsigned device;                 /* PLAN_BIT(kind) of every component on the device through it */
    unsigned releases;               /* with PLAN_RELEASE: PLAN_BIT(kind) of the components released */
} plan_step;
#define PLAN_MAX_STEPS 8

/* An edit's order: text-encode (the encoder alone on the device) -> release the text encoder
 * -> VAE encode -> denoise (the transformer alone on the device) -> VAE decode. Each phase
 * frees its activations before the next, so the run's peak is the largest phase. */
extern const plan_step plan_edit_steps[];
extern const int plan_edit_n_steps;

/* The PLAN_PHASE_* rows a component computes in under `steps` (bit 1 << row). */
unsigned plan_component_phases(const plan_step *steps, int n_steps, plan_component_kind kind);
/* CANVAS_ERR_USAGE naming the step when the table cannot be planned: a phase row out of
 * range or twice, a component on the device in a step after its release, or on the device
 * through another's phase while it is not the text encoder that ran before (the held bytes
 * the planner counts: the encoder's weights as its phase placed them). */
canvas_status plan_steps_check(const plan_step *steps, int n_steps);

typedef struct plan_work {
    plan_component components[PLAN_COMPONENT_KINDS]; /* [kind]; `present` says which the run uses */
    plan_step order[PLAN_MAX_STEPS]; /* the run's steps (plan_edit_steps unless set otherwise) */
    int n_order;
    int64_t n_img, n_txt;            /* the longest forward: image tokens (target + references), text */
    int64_t n_target;
    int cfg;                         /* 1: two transformer calls a step */
    int steps;
    int threads;
    const op_backend *backend;       /* the transformer's op backend on the device (NULL: the CPU's over the
                                      * pool): its workers and GEMM scratch count in the device peak */
    int width, height;               /* output pixels */
    int n_refs;
    int ref_width[PLAN_MAX_REFERENCES], ref_height[PLAN_MAX_REFERENCES];
} plan_work;

/* An edit at width x height with n_refs references of ref_w x ref_h (0: the output size),
 * n_txt text tokens (0: 200), from the config alone (plan_work_loaded may add the models):
 * the transformer, and the VAE when `vae` is not NULL, in plan_edit_steps' order. */
void plan_work_edit(plan_work *w, const qwen_dit_config *dit, const vae_config *vae, int width, int height, int n_refs,
                    int ref_width, int ref_height, int64_t n_txt, int cfg, int steps, int threads);

/* A transformer alone (a qwen_dit_forward case): one forward over n_img image and n_txt text tokens. */
void plan_work_transformer(plan_work *w, const qwen_dit_config *dit, int64_t n_img, int64_t n_txt, int threads);

/* The loaded models, for exact sizes (each may be NULL): the transformer, a GGUF
 * transformer's header (used without `dit`), the VAE. */
void plan_work_loaded(plan_work *w, const qwen_dit_model *dit, const weight_set *dit_files, const vae_model *vae);

/* The run encodes its prompt with this text encoder (bf16 files) in `style`: text_tokens =
 * the dropped template tokens + n_txt, the style's patches per condition image (a caller
 * that knows the processed condition sizes may set vision_patches after). Call after
 * plan_work_edit. */
void plan_work_text_encoder(plan_work *w, const textenc_config *config, plan_prompt_style style);

/* ---- limits ------------------------------------------------------------------------- */

typedef struct plan_limits {
    uint64_t device_bytes;           /* the device's memory (0: no device, compute in host memory) */
    uint64_t device_free_bytes;      /* what is free now (re-probed after an OOM); 0: device_bytes */
    uint64_t headroom_bytes;         /* kept free on the device */
    uint64_t host_bytes;             /* host RAM budget (--ram, else MemAvailable) */
    int host_is_cap;                 /* 1: host_bytes is the --ram cap (what no plan fitting says to raise) */
    uint64_t host_held_bytes;        /* host bytes held through every phase that no formula counts
                                        (tables, names, the inputs): measured by the caller */
    int allow_quantize;              /* 1: fp8 / nf4 may be used below the stored precision */
    int fp8;                         /* 0: fp8 as allow_quantize says; 1: fp8 allowed anyway; -1: never fp8 */
    int vae_on_device;               /* 1: the VAE runs on the device (a CUDA build); 0: host (this build) */
    int pinned_streaming;            /* 1: streamed blocks live in pinned host memory (CUDA) */
    int same_format_only;            /* 1: only the loaded transformer's own weight format (a fallback) */
    int text_weights_given;          /* 1: the text encoder in text_weights in every preset
                                        (--text-encoder-weights); 0: as stored, or fp8 / nf4 with
                                        the presets of that name */
    quant_choice text_weights;
} plan_limits;

/* ---- the plan space ------------------------------------------------------------------ */

typedef struct plan_point {
    plan_preset preset;
    quant_choice weights;            /* QUANT_NONE: as stored */
    int resident_blocks;             /* the resident prefix */
    int stream_from_file;            /* 1: host RAM cannot hold the streamed blocks: read from the mapping */
    int vae_tiled;                   /* 1: VAE passes in 256-pixel tiles */
    int cfg_batched;                 /* 0: the two CFG calls run one after the other (this build) */
    quant_choice text_weights;       /* the text encoder's layers (QUANT_NONE: as stored) */
    int text_resident;               /* its resident prefix of layer groups (plan_textenc_groups) */
    int text_on_host;                /* 1: it computes in host memory (no device, or not even
                                        streaming every layer fits the device) */
    int paged;                       /* 1: host RAM cannot keep the transformer's mapped weights
                                        next to the allocations: every call reads them from disk */
} plan_point;

/* mapped: weights a phase reads in place from the mmapped files (page cache, not an
 * allocation: --ram does not cap it, but it needs the same RAM). When host + pinned +
 * mapped is over the host budget the page cache cannot keep them: every pass reads them
 * from disk again (plan_point.paged, priced at disk_bytes_per_second, not overlapped: a
 * page fault stalls the thread that takes it). */
typedef struct plan_memory {
    uint64_t device, pinned, host, mapped;
} plan_memory;

typedef struct plan_candidate {
    plan_point point;
    plan_memory phases[PLAN_PHASE_COUNT];
    plan_memory peak;                /* over the phases */
    double seconds_per_step, seconds_total; /* total: the steps, plus text_seconds */
    int measured_runs;               /* > 0: seconds_per_step is the median that many runs of this plan
                                        measured here (plan_timings.c); 0: the time model's, scaled by
                                        what measured plans showed of the model (time_scale) */
    double modelled_seconds_per_step; /* the time model's own figure */
    double text_seconds;             /* the text encoder's pass (0 without one) */
    uint64_t transfer_bytes_per_step;
    int fits;
    int same_as;                     /* index of an earlier candidate with the same point, or -1 */
    char reason[200];                /* why it does not fit / is not allowed / what it does */
} plan_candidate;

typedef struct plan_result {
    plan_candidate candidates[PLAN_PRESET_COUNT - 1];
    int n;
    int chosen;                      /* index, -1 when nothing fits */
    plan_preset wanted;
    char suggestion[400];            /* when nothing fits: what would */
    int needs_quantize;              /* nothing fits only because the strategy wanted quantises
                                        without limits.allow_quantize: a usage error, not memory */
    double time_scale;               /* measured / modelled seconds of the measured candidates (median;
                                        1 when none was measured): applied to the unmeasured ones */
} plan_result;

/* Estimate every preset's plan for `work` under `limits` and choose: the preset asked
 * for (when it fits) or, for PLAN_AUTO, the fastest that fits. CANVAS_OK with
 * chosen = -1 when nothing fits (the caller decides: plan_no_fit gives the status).
 * CANVAS_ERR_OUT_OF_MEMORY only for host bookkeeping. */
canvas_status plan_make(const plan_work *work, const plan_hardware *hw, const plan_limits *limits,
                        plan_preset wanted, thread_pool *pool, plan_result *out);

/* CANVAS_ERR_OUT_OF_MEMORY with a message naming the smallest need and what would fit. */
canvas_status plan_no_fit(const plan_result *result, const plan_limits *limits);

/* The dry run: the transformer's device peak (all classes) and its weight bytes on the
 * device for `resident_blocks` in `weights` format, on a measure device of `cap` bytes
 * (0: unbounded). *fits 0 when the measure device refused an allocation. */
canvas_status plan_dit_dry_run(const plan_work *work, quant_choice weights, int resident_blocks, uint64_t cap,
                               thread_pool *pool, uint64_t *out_device_peak, int *fits);

/* Whether a plan may store the transformer in `weights` when it is loaded in `loaded`: its own
 * format always; fp8 as `fp8` says (1 yes, -1 never, 0 as allow_quantize); anything else
 * with allow_quantize (plan_limits' fields of those names). The one rule for the planner
 * and for a strategy being set (canvas_open, canvas_set_strategy). */
int plan_weights_allowed(quant_choice loaded, quant_choice weights, int allow_quantize, int fp8);
/* The weights a preset stores the transformer in: fp8 (e4m3, per tensor), nf4, or `loaded`. */
quant_choice plan_preset_weights(plan_preset preset, quant_choice loaded);

/* ---- learned step times (plan_timings.c) ------------------------------------------------ */

/* The key a run's measured step time is kept under: the machine (CPU features, CUDA,
 * threads; not the link, whose probe varies from one measurement to the next), the transformer's shape, the tokens and CFG, where it computes and the plan point
 * (weights, resident blocks, streaming from the file). */
void plan_timing_key(const plan_work *work, const plan_hardware *hw, const plan_point *point, int on_device,
                     char *buf, size_t size);
/* Keep a run's measured seconds per step under `key` (the last 5 runs; best effort: a cache
 * that cannot be written is not an error). plan_make uses them for that plan from then on. */
void plan_timing_record(const char *key, double seconds_per_step);

/* The largest resident prefix whose dry run fits `cap` (-1 when not even 0 does). */
canvas_status plan_dit_largest_prefix(const plan_work *work, quant_choice weights, uint64_t cap, thread_pool *pool,
                                      int *out_resident_blocks);

/* One line: "offload: 41 of 60 blocks resident (bf16), 19 streamed from pinned host; device 23.1 GiB ..."
 * (with a text encoder, what it does: "text encoder 60 of 60 layers resident (as stored)"). */
void plan_describe(const plan_candidate *c, const plan_work *work, char *buf, size_t size);
/* The text encoder's part alone: "text encoder (as stored): streamed (44 of 60 layers
 * resident), device 7.41 GiB", "... resident (60 of 60 ...", or "text encoder (nf4): on the
 * host, computes in host memory, host 1.2 GiB". */
void plan_describe_text(const plan_candidate *c, const plan_work *work, char *buf, size_t size);

/* A transformer built from its config alone (no files): every weight group with its
 * exact sizes for `weights` (QUANT_NONE: stored_bytes_per_element per matrix element)
 * and homes that are never read, placed on the cpu device. Only dry runs on a measure
 * device may run it. qwen_dit_free releases it. */
canvas_status plan_dit_shape_model(const qwen_dit_config *config, quant_choice weights, int stored_bytes_per_element,
                                   qwen_dit_model **out);
/* The same with each matrix as `files` stores it (NULL: as above): what the loader would
 * hold, from a weight set whose data need not be there (weights_open_file_header). */
canvas_status plan_dit_shape_model_files(const qwen_dit_config *config, quant_choice weights, int stored_bytes_per_element,
                                         const weight_set *files, qwen_dit_model **out);

/* ---- the text encoder (plan_textenc.c) ------------------------------------------------ */

/* Its residency groups, in the order a forward runs them: 0 the top level (final norm,
 * patch embed, merger; always resident), 1 .. depth the vision blocks, then the decoder
 * layers (arch.h's groups, vision first). In that order the manager prefetches in the order
 * the forward runs, and while a decoder layer outweighs a vision block (466 MB to 39 MB in
 * Qwen-Image's bf16) the slots are a decoder layer's for every prefix short of all, so fewer
 * resident groups never need more device memory (plan_largest_prefix's premise).
 * embed_tokens is not a group: the forward gathers its L rows on the host from the mapping
 * (1.02 GiB in bf16 for L rows of 14 KiB). Matrices as stored (stored_bytes per element)
 * or, in the layer groups, in `weights` when the format holds their width (the
 * transformer's rule: quant_layout's blob); vectors f32, padded to 16 floats. */
int plan_textenc_layers(const textenc_config *config); /* depth + num_hidden_layers (60) */

/* Parameters it encodes with (lm_head left out: 7,747,169,280 for Qwen-Image's) and those
 * of them that stay on the host (embed_tokens: 544,997,376). */
canvas_status plan_textenc_size(const textenc_config *config, uint64_t *params, uint64_t *host_only_params);

/* Device bytes of its weights with the top level and the first `resident` layer groups on
 * the device and the rest streamed through two slots (residency_plan_device_bytes). */
canvas_status plan_textenc_weight_bytes(const textenc_config *config, quant_choice weights, int stored_bytes,
                                        int resident, uint64_t *out);

/* Its activation arena for `tokens` text tokens and the condition images' patches: the
 * forward's own textenc_activation_bytes (models/qwen_textenc.h) over square-ish grids of
 * those patch counts (images with 0 patches left out). */
uint64_t plan_textenc_activation_bytes(const textenc_config *config, int64_t tokens, const int64_t *patches,
                                       int n_images);

#endif
