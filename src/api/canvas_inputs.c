/* SPDX-License-Identifier: Apache-2.0 */
/* canvas_inputs.c — the public API's images and prompt embeddings (include/canvas.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "canvas.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "pipeline/prompt.h"

canvas_status canvas_image_load(const char *path, canvas_image *out)
{
    if (!path || !out) return status_fail(CANVAS_ERR_USAGE, "canvas_image_load: path and out are required");
    return image_load(path, out);
}

canvas_status canvas_image_save_png(const char *path, const canvas_image *image, const canvas_text *texts, int n_texts)
{
    if (!path || n_texts < 0 || (n_texts > 0 && !texts))
        return status_fail(CANVAS_ERR_USAGE, "canvas_image_save_png: a path and %d texts expected", n_texts);
    return image_write_png(path, image, texts, n_texts);
}

void canvas_image_free(canvas_image *image) { image_free(image); }

static void embedding_free(canvas_embedding *e)
{
    mem_free(e->values);
    mem_free(e->mask);
    memset(e, 0, sizeof *e);
}

void canvas_prompt_free(canvas_prompt *prompt)
{
    if (!prompt) return;
    embedding_free(&prompt->positive);
    embedding_free(&prompt->negative);
}

/* `name` [1, L, D] as f32, and its mask `name`_mask [1, L] when present. */
static canvas_status read_embedding(const st_file *file, const char *name, canvas_embedding *out)
{
    const st_tensor *t = st_find(file, name);
    if (!t) return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is missing", file->path, name);
    if (t->ndim != 3 || t->shape[0] != 1 || t->shape[1] < 1 || t->shape[2] < 1 || !dtype_is_float(t->type))
        return status_fail(CANVAS_ERR_INPUT,
                           "%s: tensor '%s' must be a float [1, L, D] tensor (batch 1, L tokens, D = the "
                           "transformer's joint_attention_dim)",
                           file->path, name);
    if (t->shape[1] > PROMPT_MAX_EMBED_ROWS || t->shape[2] > PROMPT_MAX_EMBED_DIM)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is [1, %lld, %lld]: at most %d tokens of at most %d "
                           "values (no encoder writes more)", file->path, name, (long long)t->shape[1],
                           (long long)t->shape[2], PROMPT_MAX_EMBED_ROWS, PROMPT_MAX_EMBED_DIM);
    const size_t count = (size_t)st_numel(t);
    TRY(mem_alloc((void **)&out->values, count * sizeof(float), MEM_SCRATCH));
    dtype_to_f32(t->type, t->data, out->values, count);
    out->length = t->shape[1];
    out->dim = t->shape[2];
    for (size_t i = 0; i < count; i++)
        if (!isfinite(out->values[i]))
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' holds a NaN or infinity at element %zu", file->path,
                               name, i);

    char mask_name[128];
    snprintf(mask_name, sizeof mask_name, "%s_mask", name);
    const st_tensor *m = st_find(file, mask_name);
    if (!m) return CANVAS_OK;
    if (m->ndim != 2 || m->shape[0] != 1 || m->shape[1] != out->length)
        return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' must be [1, %lld] like '%s'", file->path, mask_name,
                           (long long)out->length, name);
    float *mask_values;
    TRY(mem_alloc((void **)&mask_values, (size_t)out->length * sizeof(float), MEM_SCRATCH));
    dtype_to_f32(m->type, m->data, mask_values, (size_t)out->length);
    canvas_status st = mem_alloc((void **)&out->mask, (size_t)out->length, MEM_SCRATCH);
    int64_t tokens = 0;
    for (int64_t i = 0; st == CANVAS_OK && i < out->length; i++) {
        /* an attention mask is 0 or 1; anything else (0.5, NaN, -1) is a damaged file, not a
         * value to round */
        if (mask_values[i] != 0.0f && mask_values[i] != 1.0f)
            st = status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' holds %g at token %lld; a mask holds only 0 and 1",
                             file->path, mask_name, (double)mask_values[i], (long long)i);
        else out->mask[i] = mask_values[i] != 0.0f;
        if (st == CANVAS_OK) tokens += out->mask[i];
    }
    mem_free(mask_values);
    if (st == CANVAS_OK && tokens == 0)
        st = status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' masks out every token", file->path, mask_name);
    return st;
}

canvas_status canvas_prompt_load(const char *path, canvas_prompt *out)
{
    if (!path || !out) return status_fail(CANVAS_ERR_USAGE, "canvas_prompt_load: path and out are required");
    memset(out, 0, sizeof *out);
    st_file *file;
    TRY(st_open(path, &file));
    canvas_status st = read_embedding(file, "prompt_embeds", &out->positive);
    if (st == CANVAS_OK && st_find(file, "negative_prompt_embeds"))
        st = read_embedding(file, "negative_prompt_embeds", &out->negative);
    if (st == CANVAS_OK && out->negative.values && out->negative.dim != out->positive.dim)
        st = status_fail(CANVAS_ERR_INPUT, "%s: negative_prompt_embeds is %lld wide, prompt_embeds %lld", path,
                         (long long)out->negative.dim, (long long)out->positive.dim);
    st_close(file);
    if (st != CANVAS_OK) canvas_prompt_free(out);
    return st;
}
