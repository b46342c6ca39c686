/* SPDX-License-Identifier: Apache-2.0 */
/* prompt_case.c — running an encode_prompt golden case (contract in prompt_case.h). */
#include "pipeline/prompt_case.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "base/status.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "pipeline/prompt.h"

enum { PATH_SIZE = PATH_BUFFER_SIZE };

typedef struct prompt_case {
    char encoder_dir[PATH_SIZE], tokenizer[PATH_SIZE], processor[PATH_SIZE];
    int has_processor;          /* processor/preprocessor_config.json next to the tokenizer folder */
    prompt_style style;
    char *prompt, *negative;    /* negative NULL when the case has none */
    canvas_image images[PROMPT_MAX_IMAGES];
    int n_images;
} prompt_case;

static void case_free(prompt_case *c)
{
    mem_free(c->prompt);
    mem_free(c->negative);
    for (int i = 0; i < c->n_images; i++) canvas_image_free(&c->images[i]);
}

static canvas_status read_images(const char *path, const char *case_dir, json_t *list, prompt_case *c)
{
    if (!list) return CANVAS_OK;
    if (!json_is_array(list) || json_array_size(list) > PROMPT_MAX_IMAGES)
        return status_fail(CANVAS_ERR_INPUT, "%s: 'images' must be a list of at most %d file names", path,
                           PROMPT_MAX_IMAGES);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (!name || strchr(name, '/'))
            return status_fail(CANVAS_ERR_INPUT, "%s: images[%zu] must be a file name in the case folder", path, i);
        char file[PATH_SIZE];
        TRY(path_join(file, sizeof file, case_dir, name));
        TRY(canvas_image_load(file, &c->images[c->n_images]));
        c->n_images++;
    }
    return CANVAS_OK;
}

static canvas_status read_case(const char *case_dir, prompt_case *c)
{
    static const char *const ops[] = {"encode_prompt", NULL};
    char path[PATH_SIZE];
    json_t *root;
    const char *op;
    TRY(golden_case_open(case_dir, ops, "text_encoder", path, sizeof path, &root, &op, c->encoder_dir,
                         sizeof c->encoder_dir));
    canvas_status st = CANVAS_OK;
    const char *tok = json_string_value(json_object_get(root, "tokenizer"));
    const char *pipeline = json_string_value(json_object_get(root, "pipeline"));
    const char *prompt = json_string_value(json_object_get(root, "prompt"));
    json_t *negative = json_object_get(root, "negative_prompt");
    if (!tok || !pipeline || !prompt)
        st = status_fail(CANVAS_ERR_INPUT, "%s: keys 'tokenizer', 'pipeline' and 'prompt' (strings) are needed", path);
    else if (negative && !json_is_string(negative))
        st = status_fail(CANVAS_ERR_INPUT, "%s: 'negative_prompt' must be a string", path);
    char relative[PATH_SIZE];
    if (st == CANVAS_OK) st = prompt_style_of(pipeline, &c->style);
    if (st == CANVAS_OK && snprintf(relative, sizeof relative, "../../%s", tok) >= PATH_SIZE)
        st = status_fail(CANVAS_ERR_INPUT, "%s: tokenizer path too long", path);
    if (st == CANVAS_OK) st = path_join(c->tokenizer, sizeof c->tokenizer, case_dir, relative);
    if (st == CANVAS_OK) st = path_join(c->processor, sizeof c->processor, c->tokenizer, "../processor/preprocessor_config.json");
    struct stat s;
    c->has_processor = st == CANVAS_OK && stat(c->processor, &s) == 0 && S_ISREG(s.st_mode);
    if (st == CANVAS_OK) st = mem_strdup(&c->prompt, prompt);
    if (st == CANVAS_OK && negative) st = mem_strdup(&c->negative, json_string_value(negative));
    if (st == CANVAS_OK) st = read_images(path, case_dir, json_object_get(root, "images"), c);
    json_decref(root);
    return st;
}

/* Renames the encoder's input_ids for the negative pass; drops its processed images
 * (the same as the positive pass's). */
typedef struct negative_sink {
    golden_sink_fn sink;
    void *ctx;
} negative_sink;

static canvas_status negative_trace(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    negative_sink *n = ctx;
    if (strcmp(name, "input_ids") != 0) return CANVAS_OK;
    return n->sink(n->ctx, "negative_input_ids", data, ndim, shape);
}

static canvas_status encode_one(prompt_encoder *pe, thread_pool *pool, const prompt_case *c, const char *text,
                                const char *name, golden_sink_fn trace, void *trace_ctx, golden_sink_fn sink,
                                void *ctx)
{
    float *embeds;
    int64_t length, dim;
    TRY(prompt_encode(pe, pool, text, c->images, c->n_images, trace, trace_ctx, &embeds, &length, &dim));
    int64_t shape[3] = {1, length, dim};
    canvas_status st = sink(ctx, name, embeds, 3, shape);
    /* the mask: every row a token (nothing is padded at batch 1) */
    for (int64_t i = 0; st == CANVAS_OK && i < length; i++) embeds[i] = 1.0f;
    char mask[64];
    snprintf(mask, sizeof mask, "%s_mask", name);
    if (st == CANVAS_OK) st = sink(ctx, mask, embeds, 2, shape);
    mem_free(embeds);
    return st;
}

canvas_status prompt_case_run(const char *case_dir, thread_pool *pool, golden_sink_fn sink, void *ctx)
{
    prompt_case c;
    memset(&c, 0, sizeof c);
    prompt_encoder *pe = NULL;
    canvas_status st = read_case(case_dir, &c);
    if (st == CANVAS_OK)
        st = prompt_encoder_open(c.tokenizer, c.encoder_dir, c.has_processor ? c.processor : NULL, c.style,
                                 (quant_choice){QUANT_NONE, 0}, &pe);
    if (st == CANVAS_OK) st = encode_one(pe, pool, &c, c.prompt, "prompt_embeds", sink, ctx, sink, ctx);
    if (st == CANVAS_OK && c.negative) {
        negative_sink n = {sink, ctx};
        st = encode_one(pe, pool, &c, c.negative, "negative_prompt_embeds", negative_trace, &n, sink, ctx);
    }
    prompt_encoder_close(pe);
    case_free(&c);
    return st;
}
