/* SPDX-License-Identifier: Apache-2.0 */
/* canvas_model_internal.h — what the api/ files share of an open model. */
#ifndef CANVAS_API_CANVAS_MODEL_INTERNAL_H
#define CANVAS_API_CANVAS_MODEL_INTERNAL_H

#include <stdint.h>

#include "ops/threadpool.h"
#include "canvas.h"
#include "mem/mem_device.h"
#include "pipeline/compute_device.h"
#include "mem/mem_profiler.h"
#include "pipeline/edit.h"
#include "pipeline/prompt.h"

/* The last few encodings (canvas_encode_prompt): the same text with the same images on
 * the same model is not encoded twice. The key holds the images themselves (sizes and
 * pixels), compared byte for byte: a hash could be made to collide and serve one user's
 * embeddings for another's images. Images over PROMPT_CACHE_IMAGE_BYTES are not cached. */
#define PROMPT_CACHE_ENTRIES 4
#define PROMPT_CACHE_IMAGE_BYTES ((size_t)64 << 20)
typedef struct prompt_cache_entry {
    char *text;                 /* NULL: empty slot */
    uint8_t *images;            /* the images' key (images_key in canvas_prompt_encode.c) */
    size_t images_bytes;
    canvas_embedding embedding;
    uint64_t last_used;
} prompt_cache_entry;

struct canvas_model {
    edit_pipeline *pipeline;
    thread_pool *pool;
    mem_device *device;         /* compute.device: the CUDA device, the capped device, or the cpu device */
    compute_device compute;     /* the device and the transformer's op backend (owned) */
    mem_device *host;           /* the model's host memory: a host scope device (owned) whose cap
                                   is ram_bytes; every call works inside its scope */
    profiler *profiler;
    canvas_options options;
    prompt_encoder *prompt;     /* opened at the first canvas_encode_prompt */
    int text_weights_given;     /* canvas_options.text_encoder_weights was given: text_weights */
    quant_choice text_weights;
    prompt_cache_entry cache[PROMPT_CACHE_ENTRIES];
    uint64_t cache_clock;
};

/* Make the model's host scope the calling thread's (what it allocates counts against its
 * ram_bytes); returns the scope to give back to mem_scope_leave. */
static inline mem_scope *canvas_model_enter(const canvas_model *model)
{
    return mem_scope_enter(mem_device_host_scope(model->host));
}

/* canvas_options.text_encoder_weights (a name quant_choice_parse takes, or NULL) into the
 * model's fields; an unknown name leaves it not given (canvas_open has checked it). */
void canvas_model_text_weights_set(canvas_model *model, const char *name);

/* A progress event's memory fields: the model's device (its host pool when it computes in
 * host memory) and its host scope. */
void canvas_model_fill_progress(const canvas_model *model, canvas_progress *p);

/* Release the prompt encoder and the cached encodings (canvas_close). */
void canvas_model_prompt_release(canvas_model *model);

#endif
