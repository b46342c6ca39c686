/* SPDX-License-Identifier: Apache-2.0 */
/* canvas_prompt_encode.c — canvas_encode_prompt and canvas_prompt_save (include/canvas.h):
 * prompt text through the model folder's tokenizer and text encoder (pipeline/prompt.h),
 * with a small cache of the last encodings, and the --prompt-embeds file format. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/canvas_model_internal.h"
#include "base/clock.h"
#include "base/path.h"
#include "base/status.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "plan/plan.h"

enum { PATH_SIZE = PATH_BUFFER_SIZE };

static int is_dir(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}

/* tokenizer/ of the model folder, else processor/tokenizer.json (both carry the vocabulary). */
static canvas_status tokenizer_path(const char *model_dir, char *out)
{
    if (!model_dir)
        return status_fail(CANVAS_ERR_INPUT, "no tokenizer: a text encoder file holds none; give a model folder with "
                                             "tokenizer/ (its configs alone will do) or the prompts as embeddings "
                                             "(--prompt-embeds)");
    TRY(path_join(out, PATH_SIZE, model_dir, "tokenizer"));
    if (is_dir(out)) return CANVAS_OK;
    TRY(path_join(out, PATH_SIZE, model_dir, "processor/tokenizer.json"));
    struct stat s;
    if (stat(out, &s) == 0 && S_ISREG(s.st_mode)) return CANVAS_OK;
    return status_fail(CANVAS_ERR_INPUT,
                       "%s: no tokenizer/ folder (nor processor/tokenizer.json): prompts cannot be encoded; give them "
                       "as embeddings (--prompt-embeds)",
                       model_dir);
}

void canvas_model_text_weights_set(canvas_model *model, const char *name)
{
    model->text_weights_given = name && quant_choice_parse(name, &model->text_weights) == CANVAS_OK;
    if (name && !model->text_weights_given) status_clear();
}

/* The encoder's weight format for the next encoding: the one asked for, else the planner's
 * rule (plan/plan.c preset_point: the fp8 and nf4 presets quantise the encoder's layers
 * too) for a strategy naming one of them that may be used (format_allowed's test: the
 * transformer's files already hold it, or quantising is allowed), else as stored. */
static quant_choice encoder_format(const canvas_model *m)
{
    if (m->text_weights_given) return m->text_weights;
    const edit_pipeline *p = m->pipeline;
    const quant_choice none = {QUANT_NONE, 0};
    if (p->strategy != PLAN_FP8 && p->strategy != PLAN_NF4) return none;
    const quant_choice preset = {p->strategy == PLAN_FP8 ? QUANT_FP8_E4M3 : QUANT_NF4, 0};
    const quant_choice loaded = p->dit->weights_format;
    if (loaded.format == preset.format && loaded.per_channel == preset.per_channel) return preset;
    if (preset.format == QUANT_FP8_E4M3 && p->fp8) return p->fp8 > 0 ? preset : none;
    return p->allow_quantize ? preset : none;
}

static canvas_status open_encoder(canvas_model *m)
{
    const quant_choice format = encoder_format(m);
    if (m->prompt) {
        const quant_choice now = textenc_weights_format(m->prompt->encoder);
        if (now.format == format.format && now.per_channel == format.per_channel) return CANVAS_OK;
        canvas_model_prompt_release(m); /* another format: other weights, other embeddings */
    }
    const edit_pipeline *p = m->pipeline;
    prompt_style style;
    TRY(prompt_style_of(p->index.class_name, &style));
    char tok[PATH_SIZE], proc[PATH_SIZE] = "";
    const char *enc = p->text_encoder; /* a folder, or one file (io/weights_file.h) */
    if (p->model_dir) TRY(path_join(proc, sizeof proc, p->model_dir, "processor/preprocessor_config.json"));
    struct stat s;
    int has_processor = proc[0] && stat(proc, &s) == 0 && S_ISREG(s.st_mode);
    if (!enc || (!is_dir(enc) && !weights_is_file(enc)))
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: no text_encoder/ folder: prompts cannot be encoded; give them as embeddings "
                           "(--prompt-embeds) or the text encoder's file (--text-encoder)",
                           p->model_dir ? p->model_dir : "no model folder");
    TRY(tokenizer_path(p->model_dir, tok));
    TRY(prompt_encoder_open(tok, enc, has_processor ? proc : NULL, style, format, &m->prompt));
    /* the encoder computes where the transformer does, before it, with the same op backend:
     * the device's room is the encoder's during the text-encode phase (pipeline/prompt.h). A
     * device the host cannot address without a backend of its own (none here today) leaves
     * it in host memory */
    m->prompt->backend = m->compute.backend;
    m->prompt->device = mem_device_is_addressable(m->device) || m->compute.backend ? m->device : NULL;
    m->prompt->headroom_bytes = m->options.headroom_bytes;
    m->prompt->oom_retry_attempts =
        m->options.no_fallback ? 0 : m->options.oom_retry_attempts ? m->options.oom_retry_attempts : 3;
    return CANVAS_OK;
}

/* The images as a cache key: per image its width and height, then its pixels. *key is
 * NULL (no caching) when they are over PROMPT_CACHE_IMAGE_BYTES or memory is short. */
static void images_key(const canvas_image *images, int n, uint8_t **key, size_t *bytes)
{
    *key = NULL;
    *bytes = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        total += 2 * sizeof(int32_t) + (size_t)images[i].width * (size_t)images[i].height * 3;
        if (total > PROMPT_CACHE_IMAGE_BYTES) return;
    }
    if (mem_alloc((void **)key, total ? total : 1, MEM_SCRATCH) != CANVAS_OK) {
        status_clear();
        *key = NULL;
        return;
    }
    uint8_t *at = *key;
    for (int i = 0; i < n; i++) {
        const int32_t size[2] = {images[i].width, images[i].height};
        memcpy(at, size, sizeof size);
        at += sizeof size;
        size_t count = (size_t)images[i].width * (size_t)images[i].height * 3;
        memcpy(at, images[i].pixels, count);
        at += count;
    }
    *bytes = total;
}

/* A copy for the caller: outside the model's host scope (the caller frees it, the model
 * does not hold it). */
static canvas_status embedding_copy(const canvas_embedding *from, canvas_embedding *to)
{
    memset(to, 0, sizeof *to);
    size_t bytes = (size_t)(from->length * from->dim) * sizeof *from->values;
    mem_scope *model_scope = mem_scope_enter(NULL);
    canvas_status st = mem_alloc((void **)&to->values, bytes, MEM_SCRATCH);
    mem_scope_leave(model_scope);
    TRY(st);
    memcpy(to->values, from->values, bytes);
    to->length = from->length;
    to->dim = from->dim;
    return CANVAS_OK;
}

static void entry_clear(prompt_cache_entry *e)
{
    mem_free(e->text);
    mem_free(e->images);
    mem_free(e->embedding.values);
    memset(e, 0, sizeof *e);
}

void canvas_model_prompt_release(canvas_model *model)
{
    prompt_encoder_close(model->prompt);
    model->prompt = NULL;
    for (int i = 0; i < PROMPT_CACHE_ENTRIES; i++) entry_clear(&model->cache[i]);
}

/* canvas_encode_prompt_progress's events and cancellation, per encoder layer. */
typedef struct encode_relay {
    canvas_model *model;
    const canvas_edit_params *params; /* may be NULL */
    canvas_progress_fn fn;            /* may be NULL */
    void *ctx;
    const char *which;                /* "prompt", "negative prompt" */
    double phase_start, encoding_start;
} encode_relay;

static int cancel_asked(const encode_relay *r)
{
    return r->params && r->params->cancel && r->params->cancel(r->params->cancel_ctx);
}

static void send(const encode_relay *r, canvas_progress *p)
{
    if (!r->fn) return;
    p->phase = "text-encode";
    if (!p->message) p->message = "";
    p->phase_seconds = clock_seconds() - r->phase_start;
    canvas_model_fill_progress(r->model, p);
    r->fn(r->ctx, p);
}

static canvas_status on_layer(void *ctx, int done, int total)
{
    encode_relay *r = ctx;
    canvas_progress p = {.kind = CANVAS_PROGRESS_STEP, .message = r->which, .step = done, .steps = total};
    p.seconds_per_step = (clock_seconds() - r->encoding_start) / done;
    send(r, &p);
    if (cancel_asked(r))
        return status_fail(CANVAS_ERR_CANCELLED, "cancelled by the caller during the text encoding (%s, after layer %d "
                                                 "of %d)", r->which, done, total);
    return CANVAS_OK;
}

/* The cached encoding of (text, images), or the encoder's, which then replaces the least
 * recently used entry. relay: the events and cancellation of the encoder's layers. */
static canvas_status encode_cached(canvas_model *m, const char *text, const canvas_image *images, int n_images,
                                   const uint8_t *key, size_t key_bytes, encode_relay *relay, canvas_embedding *out)
{
    /* first: a changed weight format releases the encoder and the encodings made with it */
    TRY(open_encoder(m));
    prompt_cache_entry *slot = &m->cache[0];
    for (int i = 0; key && i < PROMPT_CACHE_ENTRIES; i++) {
        prompt_cache_entry *e = &m->cache[i];
        if (e->text && e->images_bytes == key_bytes && !memcmp(e->images, key, key_bytes) && !strcmp(e->text, text)) {
            e->last_used = ++m->cache_clock;
            return embedding_copy(&e->embedding, out);
        }
        if (!e->text || e->last_used < slot->last_used) slot = e;
    }
    canvas_embedding fresh = {0};
    relay->encoding_start = clock_seconds();
    m->prompt->progress = on_layer;
    m->prompt->progress_ctx = relay;
    canvas_status st = prompt_encode(m->prompt, m->pool, text, images, n_images, NULL, NULL, &fresh.values,
                                     &fresh.length, &fresh.dim);
    m->prompt->progress = NULL; /* the relay lives on the caller's stack */
    m->prompt->progress_ctx = NULL;
    TRY(st);
    st = embedding_copy(&fresh, out);
    if (st != CANVAS_OK) {
        mem_free(fresh.values);
        return st;
    }
    entry_clear(slot);
    if (!key || mem_strdup(&slot->text, text) != CANVAS_OK ||
        mem_alloc((void **)&slot->images, key_bytes, MEM_SCRATCH) != CANVAS_OK) {
        status_clear(); /* a cache miss next time, nothing worse */
        entry_clear(slot);
        mem_free(fresh.values);
        return CANVAS_OK;
    }
    memcpy(slot->images, key, key_bytes);
    slot->images_bytes = key_bytes;
    slot->embedding = fresh;
    slot->last_used = ++m->cache_clock;
    return CANVAS_OK;
}

canvas_status canvas_encode_prompt(canvas_model *model, const char *prompt, const char *negative,
                                   const canvas_image *images, int n_images, canvas_prompt *out)
{
    return canvas_encode_prompt_progress(model, prompt, negative, images, n_images, NULL, NULL, NULL, out);
}

canvas_status canvas_encode_prompt_progress(canvas_model *model, const char *prompt, const char *negative,
                                            const canvas_image *images, int n_images,
                                            const canvas_edit_params *params, canvas_progress_fn progress,
                                            void *progress_ctx, canvas_prompt *out)
{
    if (!out) return status_fail(CANVAS_ERR_USAGE, "canvas_encode_prompt: no output given");
    memset(out, 0, sizeof *out);
    if (!model || !prompt) return status_fail(CANVAS_ERR_USAGE, "canvas_encode_prompt: a model and a prompt are required");
    if (n_images < 0 || n_images > PROMPT_MAX_IMAGES || (n_images > 0 && !images))
        return status_fail(CANVAS_ERR_USAGE, "canvas_encode_prompt: %d images (0 to %d, and the list)", n_images,
                           PROMPT_MAX_IMAGES);
    for (int i = 0; i < n_images; i++)
        if (!images[i].pixels || images[i].width < 1 || images[i].height < 1)
            return status_fail(CANVAS_ERR_USAGE, "canvas_encode_prompt: image %d is empty", i + 1);
    mem_scope *outer = canvas_model_enter(model);
    uint8_t *key;
    size_t key_bytes;
    images_key(images, n_images, &key, &key_bytes);
    encode_relay relay = {model, params, progress, progress_ctx, "prompt", clock_seconds(), 0};
    canvas_progress phase = {.kind = CANVAS_PROGRESS_PHASE};
    send(&relay, &phase);
    canvas_status st = CANVAS_ERR_CANCELLED;
    if (cancel_asked(&relay)) {
        status_fail(st, "cancelled by the caller before the text encoding");
    } else {
        st = profiler_begin(model->profiler, "text-encode");
        if (st == CANVAS_OK) st = encode_cached(model, prompt, images, n_images, key, key_bytes, &relay, &out->positive);
        if (st == CANVAS_OK && negative) {
            relay.which = "negative prompt";
            st = encode_cached(model, negative, images, n_images, key, key_bytes, &relay, &out->negative);
            if (st != CANVAS_OK) st = status_wrap(st, "negative prompt: "); /* its errors read as the prompt's */
        }
        profiler_end(model->profiler);
    }
    mem_free(key);
    mem_scope_leave(outer);
    if (st != CANVAS_OK) canvas_prompt_free(out);
    return st;
}

canvas_status canvas_prompt_save(const char *path, const canvas_prompt *prompt)
{
    if (!path || !prompt || !prompt->positive.values)
        return status_fail(CANVAS_ERR_USAGE, "canvas_prompt_save: a path and a prompt are required");
    st_write_tensor t[2];
    int n = 0;
    const canvas_embedding *e[2] = {&prompt->positive, &prompt->negative};
    const char *names[2] = {"prompt_embeds", "negative_prompt_embeds"};
    for (int i = 0; i < 2; i++) {
        if (!e[i]->values) continue;
        if (e[i]->mask)
            return status_fail(CANVAS_ERR_UNSUPPORTED, "canvas_prompt_save: %s has a padding mask; only unpadded "
                                                       "prompts are written",
                               names[i]);
        t[n] = (st_write_tensor){names[i], DTYPE_F32, 3, {1, e[i]->length, e[i]->dim}, e[i]->values};
        n++;
    }
    return st_write(path, t, n, NULL, 0);
}
