/* SPDX-License-Identifier: Apache-2.0 */
/* prompt.c — prompt text to embeddings for the Qwen-Image pipelines (contract in prompt.h). */
#include "pipeline/prompt.h"

#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "io/image.h"
#include "pipeline/vl_image.h"

/* The system prompts of the pipelines (diffusers' prompt_template_encode), split at the
 * user's text. */
#define EDIT_SYSTEM                                                                                               \
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "    \
    "background), then explain how the user's text instruction should alter or modify the image. Generate a new " \
    "image that meets the user's requirements while maintaining consistency with the original input where "       \
    "appropriate.<|im_end|>\n<|im_start|>user\n"
#define T2I_SYSTEM                                                                                                 \
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial " \
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n"
#define TEMPLATE_END "<|im_end|>\n<|im_start|>assistant\n"
#define IMAGE_SLOT "<|vision_start|><|image_pad|><|vision_end|>"

#define T2I_MAX_TOKENS (1024 + 34)  /* the tokenizer's max_length, truncation on */
#define T2I_MAX_EMBEDS 512          /* max_sequence_length */

canvas_status prompt_style_of(const char *class_name, prompt_style *out)
{
    if (!strcmp(class_name, "QwenImageEditPlusPipeline")) *out = PROMPT_EDIT_PLUS;
    else if (!strcmp(class_name, "QwenImageEditPipeline")) *out = PROMPT_EDIT;
    else if (!strcmp(class_name, "QwenImagePipeline")) *out = PROMPT_TEXT_TO_IMAGE;
    else
        return status_fail(CANVAS_ERR_UNSUPPORTED,
                           "pipeline class '%s': prompts are encoded for QwenImageEditPlusPipeline, "
                           "QwenImageEditPipeline and QwenImagePipeline only",
                           class_name);
    return CANVAS_OK;
}

int prompt_drop_rows(prompt_style style)
{
    return style == PROMPT_TEXT_TO_IMAGE ? 34 : 64;
}

int64_t prompt_condition_area(prompt_style style)
{
    switch (style) {
    case PROMPT_EDIT_PLUS: return 384 * 384;
    case PROMPT_EDIT: return 1024 * 1024;
    case PROMPT_TEXT_TO_IMAGE: return 0;
    }
    return 0;
}

static canvas_status special_id(const tokenizer *tok, const char *token, int64_t config_id, int32_t *out)
{
    *out = tokenizer_token_id(tok, token);
    if (*out < 0) return status_fail(CANVAS_ERR_INPUT, "tokenizer: no added token %s", token);
    if (config_id != *out) /* a negative id too: the encoder would find no image tokens */
        return status_fail(CANVAS_ERR_INPUT,
                           "tokenizer and text encoder disagree: %s is %d in the tokenizer, %lld in the encoder's "
                           "config.json",
                           token, (int)*out, (long long)config_id);
    return CANVAS_OK;
}

canvas_status prompt_encoder_open(const char *tokenizer_path, const char *text_encoder_dir,
                                  const char *processor_config, prompt_style style, quant_choice weights,
                                  prompt_encoder **out)
{
    *out = NULL;
    prompt_encoder *pe;
    TRY(mem_calloc((void **)&pe, 1, sizeof *pe, MEM_SCRATCH));
    pe->style = style;
    vl_image_config_default(&pe->processor);
    canvas_status st = processor_config ? vl_image_config_load(processor_config, &pe->processor) : CANVAS_OK;
    if (st == CANVAS_OK) st = tokenizer_open(tokenizer_path, &pe->tok);
    if (st == CANVAS_OK) st = textenc_open_quantized(text_encoder_dir, weights, &pe->encoder);
    if (st == CANVAS_OK) {
        const textenc_config *c = textenc_model_config(pe->encoder);
        st = special_id(pe->tok, "<|image_pad|>", c->image_token_id, &pe->image_pad);
        if (st == CANVAS_OK) st = special_id(pe->tok, "<|vision_start|>", c->vision_start_token_id, &pe->vision_start);
        if (st == CANVAS_OK) st = special_id(pe->tok, "<|vision_end|>", c->vision_end_token_id, &pe->vision_end);
    }
    if (st != CANVAS_OK) {
        prompt_encoder_close(pe);
        return st;
    }
    *out = pe;
    return CANVAS_OK;
}

void prompt_encoder_close(prompt_encoder *pe)
{
    if (!pe) return;
    tokenizer_close(pe->tok);
    textenc_close(pe->encoder);
    mem_free(pe);
}

/* The templated text: system part, the image slots, the user's prompt, the end. */
static canvas_status template_text(prompt_style style, const char *prompt, int n_images, char **out)
{
    size_t cap = strlen(prompt) + sizeof EDIT_SYSTEM + sizeof T2I_SYSTEM + sizeof TEMPLATE_END +
                 (size_t)n_images * (sizeof IMAGE_SLOT + 32);
    char *text;
    TRY(mem_alloc((void **)&text, cap, MEM_SCRATCH));
    size_t used = (size_t)snprintf(text, cap, "%s", style == PROMPT_TEXT_TO_IMAGE ? T2I_SYSTEM : EDIT_SYSTEM);
    for (int i = 0; i < n_images; i++) {
        if (style == PROMPT_EDIT_PLUS)
            used += (size_t)snprintf(text + used, cap - used, "Picture %d: " IMAGE_SLOT, i + 1);
        else
            used += (size_t)snprintf(text + used, cap - used, IMAGE_SLOT);
    }
    snprintf(text + used, cap - used, "%s" TEMPLATE_END, prompt);
    *out = text;
    return CANVAS_OK;
}

/* One condition image after the pipeline's LANCZOS resize and the VL processor. */
typedef struct condition_image {
    canvas_image processed;     /* after both resizes (the trace's processed_image) */
    float *patches;             /* [t·h·w, patch values] */
    int64_t grid[3];
} condition_image;

/* Token ids with every <|image_pad|> expanded to its image's merged patch count. */
static canvas_status expand_image_pads(const prompt_encoder *pe, const int32_t *ids, size_t n, const condition_image *imgs,
                                       int n_images, int32_t **out, int64_t *n_out)
{
    int64_t total = (int64_t)n;
    int pads = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pe->image_pad) continue;
        if (pads >= n_images)
            return status_fail(CANVAS_ERR_INPUT, "the prompt holds more <|image_pad|> tokens than there are images (%d)",
                               n_images);
        const int64_t *g = imgs[pads].grid;
        total += g[0] * g[1] * g[2] / 4 - 1;
        pads++;
    }
    if (pads != n_images)
        return status_fail(CANVAS_ERR_INPUT, "%d images but %d <|image_pad|> tokens in the prompt", n_images, pads);
    int32_t *x;
    TRY(mem_alloc((void **)&x, (size_t)total * sizeof *x, MEM_SCRATCH));
    int64_t k = 0;
    pads = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pe->image_pad) {
            x[k++] = ids[i];
            continue;
        }
        const int64_t *g = imgs[pads++].grid;
        for (int64_t j = 0; j < g[0] * g[1] * g[2] / 4; j++) x[k++] = pe->image_pad;
    }
    *out = x;
    *n_out = total;
    return CANVAS_OK;
}

static canvas_status trace_inputs(golden_sink_fn trace, void *ctx, const int32_t *ids, int64_t n,
                                  const condition_image *imgs, int n_images)
{
    float *f;
    TRY(mem_alloc((void **)&f, (size_t)n * sizeof *f, MEM_SCRATCH));
    for (int64_t i = 0; i < n; i++) f[i] = (float)ids[i];
    int64_t shape[3] = {1, n, 0};
    canvas_status st = trace(ctx, "input_ids", f, 2, shape);
    mem_free(f);
    for (int i = 0; st == CANVAS_OK && i < n_images; i++) {
        const canvas_image *p = &imgs[i].processed;
        size_t count = (size_t)p->width * p->height * 3;
        st = mem_alloc((void **)&f, count * sizeof *f, MEM_SCRATCH);
        if (st != CANVAS_OK) break;
        for (size_t j = 0; j < count; j++) f[j] = p->pixels[j];
        char name[64];
        snprintf(name, sizeof name, "processed_image.%d", i);
        int64_t ishape[3] = {p->height, p->width, 3};
        st = trace(ctx, name, f, 3, ishape);
        mem_free(f);
    }
    return st;
}

/* All images' patches in one block, in order, and their grids. */
static canvas_status gather_patches(const condition_image *imgs, int n_images, int64_t values, float **patches,
                                    int64_t (**grids)[3])
{
    int64_t rows = 0;
    for (int i = 0; i < n_images; i++) rows += imgs[i].grid[0] * imgs[i].grid[1] * imgs[i].grid[2];
    TRY(mem_alloc((void **)patches, (size_t)rows * (size_t)values * sizeof **patches, MEM_SCRATCH));
    canvas_status st = mem_alloc((void **)grids, (size_t)n_images * sizeof **grids, MEM_SCRATCH);
    if (st != CANVAS_OK) {
        mem_free(*patches);
        *patches = NULL; /* the caller frees what it is given back */
        return st;
    }
    float *at = *patches;
    for (int i = 0; i < n_images; i++) {
        int64_t r = imgs[i].grid[0] * imgs[i].grid[1] * imgs[i].grid[2];
        memcpy(at, imgs[i].patches, (size_t)(r * values) * sizeof *at);
        at += r * values;
        memcpy((*grids)[i], imgs[i].grid, sizeof imgs[i].grid);
    }
    return CANVAS_OK;
}

static canvas_status check_request(const prompt_encoder *pe, const char *text, int n_images)
{
    if (!text) return status_fail(CANVAS_ERR_USAGE, "prompt: no text given");
    if (strlen(text) > PROMPT_MAX_BYTES)
        return status_fail(CANVAS_ERR_USAGE, "prompt: %zu bytes, at most %d", strlen(text), PROMPT_MAX_BYTES);
    if (n_images < 0 || n_images > PROMPT_MAX_IMAGES)
        return status_fail(CANVAS_ERR_USAGE, "prompt: %d images, at most %d", n_images, PROMPT_MAX_IMAGES);
    if (pe->style == PROMPT_TEXT_TO_IMAGE && n_images)
        return status_fail(CANVAS_ERR_USAGE, "prompt: the text-to-image pipeline takes no condition image");
    if (pe->style == PROMPT_EDIT && n_images != 1)
        return status_fail(CANVAS_ERR_USAGE, "prompt: QwenImageEditPipeline takes exactly one image (%d given)",
                           n_images);
    return CANVAS_OK;
}

/* 1 when the weights are where textenc_open leaves them: read in place in host memory. */
static int in_host_memory(const prompt_encoder *pe) { return textenc_device(pe->encoder) == mem_device_cpu(); }

/* textenc_place; a host placement that is already there is not redone. */
static canvas_status place(prompt_encoder *pe, mem_device *device, int resident)
{
    if (!device && in_host_memory(pe)) return CANVAS_OK;
    return textenc_place(pe->encoder, device, resident);
}

/* The kept placement for this room and shape, or NULL. */
static const prompt_placement *placement_found(const prompt_encoder *pe, size_t room, int64_t n_ids,
                                                const int64_t (*grids)[3], int n_images)
{
    for (int i = 0; i < PROMPT_PLACEMENTS; i++) {
        const prompt_placement *p = &pe->placements[i];
        if (p->room == room && room && p->n_ids == n_ids && p->n_images == n_images &&
            (n_images == 0 || !memcmp(p->grids, grids, (size_t)n_images * sizeof *grids)))
            return p;
    }
    return NULL;
}

static void placement_keep(prompt_encoder *pe, size_t room, int64_t n_ids, const int64_t (*grids)[3], int n_images)
{
    prompt_placement *p = &pe->placements[pe->next_placement];
    pe->next_placement = (pe->next_placement + 1) % PROMPT_PLACEMENTS;
    memset(p, 0, sizeof *p);
    p->room = room;
    p->n_ids = n_ids;
    p->n_images = n_images;
    if (n_images) memcpy(p->grids, grids, (size_t)n_images * sizeof *grids);
    p->resident_groups = pe->resident_groups;
    p->peak = pe->predicted_device_peak;
    snprintf(p->plan_line, sizeof p->plan_line, "%s", pe->plan_line);
}

/* The largest resident prefix that fits the device's free room now (see prompt.h), placed. */
static canvas_status place_encoder(prompt_encoder *pe, const int32_t *ids, int64_t n_ids, const float *patches,
                                   const int64_t (*grids)[3], int n_images)
{
    const textenc_config *c = textenc_model_config(pe->encoder);
    pe->total_groups = c->vision.depth + c->text.num_hidden_layers;
    if (!pe->device || mem_device_is_host(pe->device)) {
        pe->resident_groups = -1;
        pe->predicted_device_peak = 0;
        snprintf(pe->plan_line, sizeof pe->plan_line, "text encoder in host memory");
        return place(pe, NULL, TEXTENC_ALL_GROUPS);
    }
    mem_device_stats s;
    mem_device_get_stats(pe->device, &s);
    size_t used = s.current_bytes + (size_t)pe->headroom_bytes;
    size_t room = s.cap_bytes > used ? s.cap_bytes - used : 0;
    const prompt_placement *kept = placement_found(pe, room, n_ids, grids, n_images);
    if (kept) {
        pe->resident_groups = kept->resident_groups;
        pe->predicted_device_peak = kept->peak;
        snprintf(pe->plan_line, sizeof pe->plan_line, "%s", kept->plan_line);
        return place(pe, pe->device, kept->resident_groups);
    }
    const textenc_inputs in = {ids, n_ids, patches, grids, n_images};
    int k;
    uint64_t peak = 0;
    pe->placements_planned++;
    canvas_status st = textenc_plan_resident_groups(pe->encoder, &in, room, &k, &peak);
    if (st == CANVAS_ERR_OUT_OF_MEMORY) { /* the last resort: compute in host memory */
        pe->resident_groups = -1;
        pe->predicted_device_peak = 0;
        snprintf(pe->plan_line, sizeof pe->plan_line, "text encoder in host memory (%s)", canvas_last_error());
        status_clear(); /* not kept: a host allocation failing in a dry run reads the same */
        return place(pe, NULL, TEXTENC_ALL_GROUPS);
    }
    TRY(st);
    pe->resident_groups = k;
    pe->predicted_device_peak = peak;
    snprintf(pe->plan_line, sizeof pe->plan_line, "text encoder on %s: %d of %d groups resident, %llu bytes peak",
             mem_device_name(pe->device), k, pe->total_groups, (unsigned long long)peak);
    placement_keep(pe, room, n_ids, grids, n_images);
    return place(pe, pe->device, k);
}

/* Place, run; an out-of-memory re-plans for what is free now and runs again. */
static canvas_status run_encoder(prompt_encoder *pe, thread_pool *pool, const int32_t *ids, int64_t n_ids,
                                 const float *patches, const int64_t (*grids)[3], int n_images, float *hidden)
{
    op_backend cpu = op_backend_cpu(pool);
    canvas_status st;
    textenc_set_progress(pe->encoder, pe->progress, pe->progress_ctx); /* real forwards only, not dry runs */
    for (int attempt = 0;; attempt++) {
        st = place_encoder(pe, ids, n_ids, patches, grids, n_images);
        /* the device's own backend where the weights went to the device, the CPU's in host memory */
        op_backend *be = pe->backend && !in_host_memory(pe) ? pe->backend : &cpu;
        if (st == CANVAS_OK) st = textenc_forward(pe->encoder, be, ids, n_ids, patches, grids, n_images, hidden);
        if (st != CANVAS_ERR_OUT_OF_MEMORY || attempt >= pe->oom_retry_attempts || pe->resident_groups < 0) break;
        pe->fallbacks++;
        status_clear();
    }
    /* the device's room goes back to the transformer; should even this fail (out of
     * memory for the host tables), the weights are off the device and the next encoding
     * places them again */
    if (place(pe, NULL, TEXTENC_ALL_GROUPS) != CANVAS_OK && st == CANVAS_OK) status_clear();
    textenc_set_progress(pe->encoder, NULL, NULL);
    return st;
}

canvas_status prompt_encode(prompt_encoder *pe, thread_pool *pool, const char *text, const canvas_image *images,
                            int n_images, golden_sink_fn trace, void *trace_ctx, float **embeds, int64_t *length,
                            int64_t *dim)
{
    *embeds = NULL;
    *length = *dim = 0;
    TRY(check_request(pe, text, n_images));
    condition_image imgs[PROMPT_MAX_IMAGES];
    memset(imgs, 0, sizeof imgs);
    char *templated = NULL;
    int32_t *ids = NULL, *expanded = NULL;
    size_t n_ids = 0;
    int64_t n_expanded = 0;
    float *patches = NULL, *hidden = NULL;
    int64_t(*grids)[3] = NULL;
    /* the user's text alone first: an invalid byte is reported at its offset in the prompt
     * (not in the templated text), and its length is checked before the images are resized */
    canvas_status st = tokenizer_encode(pe->tok, text, strlen(text), &ids, &n_ids);
    if (st != CANVAS_OK) return st;
    mem_free(ids);
    ids = NULL;
    if (n_ids > PROMPT_MAX_TOKENS)
        return status_fail(CANVAS_ERR_USAGE, "prompt: %zu tokens, at most %d", n_ids, PROMPT_MAX_TOKENS);
    for (int i = 0; st == CANVAS_OK && i < n_images; i++) {
        st = vl_condition_pixel_values(&images[i], prompt_condition_area(pe->style), &pe->processor,
                                       &imgs[i].patches, imgs[i].grid, &imgs[i].processed);
        if (st != CANVAS_OK) /* the sizes it names are the resized ones: say which image, as given */
            st = status_wrap(st, "condition image %d (%dx%d): ", i + 1, images[i].width, images[i].height);
    }
    if (st == CANVAS_OK) st = template_text(pe->style, text, n_images, &templated);
    if (st == CANVAS_OK) st = tokenizer_encode(pe->tok, templated, strlen(templated), &ids, &n_ids);
    if (st == CANVAS_OK && pe->style == PROMPT_TEXT_TO_IMAGE && n_ids > T2I_MAX_TOKENS) n_ids = T2I_MAX_TOKENS;
    if (st == CANVAS_OK) st = expand_image_pads(pe, ids, n_ids, imgs, n_images, &expanded, &n_expanded);
    if (st == CANVAS_OK && trace) st = trace_inputs(trace, trace_ctx, expanded, n_expanded, imgs, n_images);
    const textenc_config *c = textenc_model_config(pe->encoder);
    int64_t d = c->text.hidden_size, drop = prompt_drop_rows(pe->style);
    if (st == CANVAS_OK && n_expanded <= drop)
        st = status_fail(CANVAS_ERR_INTERNAL, "prompt: %lld tokens, not more than the %lld the template drops",
                         (long long)n_expanded, (long long)drop);
    if (st == CANVAS_OK && n_images)
        st = gather_patches(imgs, n_images, textenc_patch_values(c), &patches, &grids);
    if (st == CANVAS_OK) st = mem_alloc((void **)&hidden, (size_t)(n_expanded * d) * sizeof *hidden, MEM_SCRATCH);
    if (st == CANVAS_OK)
        st = run_encoder(pe, pool, expanded, n_expanded, patches, (const int64_t(*)[3])grids, n_images, hidden);
    if (st == CANVAS_OK) {
        int64_t keep = n_expanded - drop;
        if (pe->style == PROMPT_TEXT_TO_IMAGE && keep > T2I_MAX_EMBEDS) keep = T2I_MAX_EMBEDS;
        memmove(hidden, hidden + drop * d, (size_t)(keep * d) * sizeof *hidden);
        *embeds = hidden;
        hidden = NULL;
        *length = keep;
        *dim = d;
    }
    mem_free(hidden);
    mem_free(grids);
    mem_free(patches);
    mem_free(expanded);
    mem_free(ids);
    mem_free(templated);
    for (int i = 0; i < n_images; i++) {
        image_free(&imgs[i].processed);
        mem_free(imgs[i].patches);
    }
    return st;
}
