/* SPDX-License-Identifier: Apache-2.0 */
/* prompt.h — prompt text to prompt embeddings, as the Qwen-Image pipelines' encode_prompt
 * does it (spec B.9): the pipeline's chat template around the prompt, one image
 * placeholder per condition image, the tokenizer (text/tokenizer.h), each <|image_pad|>
 * expanded to the image's merged patch count, the Qwen2.5-VL encoder
 * (models/qwen_textenc.h), and the template's first `drop` hidden states dropped.
 *
 *   Edit-Plus (2509, 2511)  "Picture N: <|vision_start|><|image_pad|><|vision_end|>" per
 *                           image before the prompt; condition images PIL-LANCZOS-resized
 *                           to edit_dimensions(384·384, w/h); drop 64
 *   Edit (the first one)    one "<|vision_start|><|image_pad|><|vision_end|>" before the
 *                           prompt, the image at edit_dimensions(1024·1024, w/h); drop 64
 *   text-to-image           no image; at most 1024 + 34 tokens in (truncated, as the
 *                           tokenizer call does), drop 34, at most 512 embeddings out
 * Each condition image then goes through the Qwen2-VL image processor (smart_resize to
 * multiples of 28, PIL BICUBIC, CLIP normalisation, 14x14x2 patches: pipeline/vl_image.h).
 *
 * The template is the pipeline's, chosen from model_index.json's _class_name; the token
 * ids of the special tokens come from the tokenizer, checked against the encoder's config. */
#ifndef CANVAS_PIPELINE_PROMPT_H
#define CANVAS_PIPELINE_PROMPT_H

#include <stdint.h>

#include "ops/threadpool.h"
#include "canvas.h"
#include "io/config.h"
#include "io/golden_case.h"
#include "mem/mem_device.h"
#include "models/qwen_textenc.h"
#include "ops/ops.h"
#include "text/tokenizer.h"

/* The user's prompt may be at most PROMPT_MAX_BYTES bytes and PROMPT_MAX_TOKENS tokens (a
 * longer one is CANVAS_ERR_USAGE before any image is resized); at most PROMPT_MAX_IMAGES
 * condition images. */
#define PROMPT_MAX_BYTES (64 * 1024)
#define PROMPT_MAX_TOKENS 4096
#define PROMPT_MAX_IMAGES 16

/* The most rows prompt embeddings may have: the longest prompt, the template's rows that are
 * kept, and PROMPT_MAX_IMAGES images at the largest condition area (Edit's 1024x1024: 1369
 * tokens and the two vision markers each); and the widest row (joint_attention_dim is 3584
 * in the released models). Embeddings read from a file are held to these before anything is
 * allocated, and the pipeline refuses longer ones. */
#define PROMPT_MAX_EMBED_ROWS (PROMPT_MAX_TOKENS + 64 + PROMPT_MAX_IMAGES * (1369 + 2))
#define PROMPT_MAX_EMBED_DIM 16384

typedef enum prompt_style {
    PROMPT_EDIT_PLUS = 0,       /* QwenImageEditPlusPipeline */
    PROMPT_EDIT,                /* QwenImageEditPipeline */
    PROMPT_TEXT_TO_IMAGE        /* QwenImagePipeline */
} prompt_style;

/* The style of a pipeline class name; CANVAS_ERR_UNSUPPORTED naming it for any other. */
canvas_status prompt_style_of(const char *class_name, prompt_style *out);

/* Rows dropped from the front of the encoder's output (64 or 34). */
int prompt_drop_rows(prompt_style style);

/* Condition-image area of the style (384·384, 1024·1024; 0 for text-to-image). */
int64_t prompt_condition_area(prompt_style style);

/* A placement found by dry runs, kept for the next encoding of the same shape on the same
 * room: the dry runs depend only on these (the weights and the code are the model's). */
#define PROMPT_PLACEMENTS 4
typedef struct prompt_placement {
    size_t room;                /* free device bytes less headroom; 0: an empty slot */
    int64_t n_ids;
    int n_images;
    int64_t grids[PROMPT_MAX_IMAGES][3];
    int resident_groups;        /* the choice (a placement on the device: host fallbacks are not kept) */
    uint64_t peak;
    char plan_line[512];
} prompt_placement;

typedef struct prompt_encoder {
    prompt_style style;
    tokenizer *tok;             /* owned */
    textenc_model *encoder;     /* owned */
    int32_t image_pad, vision_start, vision_end; /* ids, read from the tokenizer */
    vl_image_config processor;  /* the image processor's settings */
    /* where it computes, set by the caller after prompt_encoder_open (not owned): */
    mem_device *device;         /* NULL or the cpu device: host memory, weights read in place */
    op_backend *backend;        /* the op backend of `device` for the encoder's forwards (e.g. the
                                   CUDA one); NULL: the CPU backend over the pool, which computes
                                   only on a host-addressable device. A forward placed in host
                                   memory (the fallback) always runs on the CPU backend */
    uint64_t headroom_bytes;    /* kept free on the device */
    int oom_retry_attempts;     /* fallbacks per encoding (0: none) */
    textenc_progress_fn progress; /* NULL, or told each vision block and decoder layer done during the
                                     encoder's forward (models/qwen_textenc.h); a non-OK return stops the
                                     encoding with it (CANVAS_ERR_CANCELLED), not retried */
    void *progress_ctx;
    /* what the last encoding did, for the report and the tests: */
    int resident_groups;        /* groups kept on the device (-1: host memory) */
    int total_groups;           /* vision blocks + decoder layers */
    uint64_t predicted_device_peak; /* the dry run's peak for the chosen placement */
    int fallbacks;              /* out-of-memory fallbacks taken */
    char plan_line[512];        /* the placement, in words */
    int placements_planned;     /* placement searches run (dry runs); a repeated shape and room reuse one */
    prompt_placement placements[PROMPT_PLACEMENTS]; /* the last few, most recent replacing the oldest */
    int next_placement;
} prompt_encoder;

/* Open the tokenizer at tokenizer_path (a tokenizer/ folder or a tokenizer.json), the
 * encoder in text_encoder_dir with its layers in `weights` (QUANT_NONE: as stored; else
 * quantised on load, textenc_open_quantized) and the image processor's settings
 * (processor_config: a preprocessor_config.json, or NULL for transformers' defaults).
 * CANVAS_ERR_INPUT naming the file when one is missing or bad, or when the tokenizer's
 * special-token ids are not the encoder config's. */
canvas_status prompt_encoder_open(const char *tokenizer_path, const char *text_encoder_dir,
                                  const char *processor_config, prompt_style style, quant_choice weights,
                                  prompt_encoder **out);
void prompt_encoder_close(prompt_encoder *pe);

/* Placement, when `device` is a device other than the host: the largest prefix of weight
 * groups (vision blocks, then decoder layers, in the order the forward uses them) whose
 * placement plus the forward's activation arena (textenc_activation_bytes) fits what is
 * free on the device less headroom, found by dry runs of the same placement on a measure
 * device (so the predicted peak is the measured one); the other groups stream through two
 * slots. When not even every group streamed fits, it computes in host memory (plan_line
 * says so, naming the minimum). The choice is kept for the same room and the same shape
 * (token count, image grids) when it is on the device: a repeated encoding (the next
 * run's, or the negative prompt of the same length) places without dry runs. An out-of-memory during the forward (the device shrank) re-plans for what is
 * free and redoes the encoding, at most oom_retry_attempts times; the embeddings are the
 * same whatever the placement. The weights leave the device when the encoding ends.
 *
 * Encode one prompt with its condition images (none for text-to-image; Edit takes one).
 * *embeds: [*length, *dim] floats (MEM_SCRATCH, the caller mem_frees them). trace, when
 * not NULL, receives "input_ids" [1, L] (after expansion, as floats) and
 * "processed_image.N" [H, W, 3] (the condition image after both resizes, as floats
 * 0..255) before the encoder runs. pool may be NULL. */
canvas_status prompt_encode(prompt_encoder *pe, thread_pool *pool, const char *text, const canvas_image *images,
                            int n_images, golden_sink_fn trace, void *trace_ctx, float **embeds, int64_t *length,
                            int64_t *dim);

#endif
