/* SPDX-License-Identifier: Apache-2.0 */
/* edit_run_internal.h — one run of the pipeline, shared by its two halves (not a public
 * interface): edit_run.c runs the phases (sizes, VAE encode, denoise, decode) and
 * edit_place.c decides where the transformer goes for them (the plan, its re-use, the
 * fallback policy after an out-of-memory) and what host memory the run may use. */
#ifndef CANVAS_PIPELINE_EDIT_RUN_INTERNAL_H
#define CANVAS_PIPELINE_EDIT_RUN_INTERNAL_H

#include <stdint.h>

#include "pipeline/edit.h"
#include "plan/plan.h"

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
    qwen_dit_image_shape *shapes;
    float *hidden;                /* [n_img, channels]: target latents, then the references */
    float *output;                /* [n_img, channels] */
    float *negative_output;       /* [n_img, channels], with true CFG */
    float *sigmas, *timesteps;
    int cfg;                      /* true CFG on */
    int vae_tiled;                /* the plan: VAE passes tiled */
    char fallback_reason[512];    /* the out-of-memory a fallback handles */
    uint64_t fallback_refused;    /* the host's and the device's refusals for lack of room by then */
    mem_refusal fallback_refusal; /* the refusal that made the last fallback (count 0: none, injected) */
    char format_change[64];       /* a fallback that lowered the weight format: "from X to fp8", else empty */
    int no_plan_fits;             /* the planner found nothing that fits: exit 3, no retry */
    int have_viable;              /* check_viable planned for the whole device: `viable` is that plan, */
    plan_result viable;           /*   which plan_and_place takes when it would plan the same again */
} run;

/* A plan line to the observer (edit_observer.plan). */
void run_tell_plan(run *s, const char *message);
/* A fallback: counted and kept by the profiler (the report lists them) and told as a plan line. */
void run_tell_fallback(run *s, const char *message);

/* The op backend the VAE's passes may compute with on the run's device: the device's own
 * (edit_pipeline.dit_backend) when the host cannot address the device (a CUDA device, a test's
 * sealed one); NULL: the VAE computes in host memory on the CPU backend (no device, the capped
 * pool, any addressable device), as it always did there. */
op_backend *run_vae_device_backend(const run *s);

/* The host memory the run may use, read again each call (someone else may have taken some):
 * the --ram cap, and MemAvailable plus what the run holds already, whichever is less; 0:
 * neither is known. *held: what the run holds now. */
uint64_t run_host_budget(const run *s, uint64_t *held);

/* Before the VAE encode: the out-of-memory that placing the transformer would give, now, when
 * no plan of the strategy fits (nothing to check without a device, with a fixed prefix, or
 * when the last placement will be re-used). */
canvas_status run_check_viable(run *s, const qwen_dit_inputs *longest);
/* Put the transformer on the device for this run's token counts (planning when asked);
 * `retry`: the placement before ran out of memory: re-plan down the fallback chain. */
canvas_status run_place_transformer(run *s, const qwen_dit_inputs *longest, int retry);

/* Why a plan is made: PLACE_AFTER_OOM re-plans for what is free now, in the loaded format
 * first, then down the chain; PLACE_DEVICE_GREW (the cap went up by more than the headroom)
 * lets strategy auto go back to the format the transformer was opened in. */
typedef enum place_reason { PLACE_NEW = 0, PLACE_AFTER_OOM, PLACE_DEVICE_GREW } place_reason;
canvas_status run_plan_and_place(run *s, const qwen_dit_inputs *longest, place_reason why);
/* Remember the placement (`blocks` resident) for the token counts it was made for. */
void run_record_placement(run *s, const qwen_dit_inputs *longest, int blocks);
/* An out-of-memory that a fallback may handle (see edit_place.c); 0: return it. */
int run_fallback_allowed(run *s, canvas_status st, int *attempts, const char *where, int say);

/* edit.c: the transformer alone, reloaded from its folder in `format` with the LoRAs merged
 * again; replaces p->dit only when all of that worked. */
canvas_status edit_reload_transformer(edit_pipeline *p, quant_choice format);

#endif
