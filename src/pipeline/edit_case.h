/* SPDX-License-Identifier: Apache-2.0 */
/* edit_case.h — running an `edit_pipeline` golden case (tests/golden/README.md):
 * CASE_DIR/case.json gives the op, the model folder (relative to the golden root, two
 * folders above the case), height, width, steps, true_cfg_scale and vae_image_area;
 * CASE_DIR/inputs.safetensors holds `image.K` [H, W, 3] U8 (already at their VAE size),
 * `prompt_embeds` [1, L, D], `negative_prompt_embeds` [1, L', D] (optional) and
 * `latents` [1, (H/16)(W/16), 64], the packed initial noise.
 *
 * The sink receives `latents.stepK` [1, L, 64] after step K (0-based) and `image`
 * [H, W, 3] (floats in [0, 1], before 8-bit quantisation). Shared by `canvas debug case`
 * and the tests. */
#ifndef CANVAS_PIPELINE_EDIT_CASE_H
#define CANVAS_PIPELINE_EDIT_CASE_H

#include <stdint.h>

#include "canvas.h"
#include "io/golden_case.h"
#include "mem/mem_device.h"
#include "mem/mem_profiler.h"
#include "ops/ops.h"
#include "ops/threadpool.h"


/* Run the case on the host (the transformer reads its weights in place). pool may be NULL. */
canvas_status edit_case_run(const char *case_dir, thread_pool *pool, golden_sink_fn sink, void *ctx);

/* The same with the transformer on `device` (NULL: the cpu device) with `resident_blocks`
 * (-1: the planner's choice for the device's cap), phases recorded by `profiler` (may be
 * NULL: "load", "vae-encode", "plan", "step 1".., "vae-decode"; the last one is ended), the
 * plan line handed to `plan` (may be NULL). */
canvas_status edit_case_run_on(const char *case_dir, thread_pool *pool, mem_device *device, int resident_blocks,
                               profiler *profiler, void (*plan)(void *ctx, const char *message), golden_sink_fn sink,
                               void *ctx);

/* How the pipeline plans a case (plan/plan.h): the edit_pipeline fields of the same names. */
typedef struct edit_case_plan {
    int strategy;               /* a plan_preset */
    int allow_quantize;
    uint64_t headroom_bytes;
    int fallback_enabled;
    int fp8;                    /* edit_pipeline.fp8 */
    int oom_retry_attempts;     /* 0: the pipeline's default */
    int preferred[8];           /* edit_pipeline.preferred / n_preferred */
    int n_preferred;
    struct edit_plan_record *record; /* not NULL: receives the plan the run took (edit.h) */
    op_backend *dit_backend;    /* edit_pipeline.dit_backend: the device's backend (NULL: the CPU's) */
} edit_case_plan;

/* edit_case_run_on with the planner's options (NULL: auto, fallbacks on). */
canvas_status edit_case_run_planned(const char *case_dir, thread_pool *pool, mem_device *device, int resident_blocks,
                                    const edit_case_plan *plan_options, profiler *profiler,
                                    void (*plan)(void *ctx, const char *message), golden_sink_fn sink, void *ctx);

/* What a case asks the pipeline for, without running it (`canvas plan --case`). */
typedef struct edit_case_shape {
    char model_dir[4096];
    int width, height, steps, cfg;      /* cfg: 1 when true CFG runs (scale > 1 and a negative prompt) */
    int n_images;
    int ref_width, ref_height;          /* the last reference's size */
    int64_t n_txt;                      /* the longest prompt the transformer sees */
} edit_case_shape;
canvas_status edit_case_shape_read(const char *case_dir, edit_case_shape *out);

#endif
