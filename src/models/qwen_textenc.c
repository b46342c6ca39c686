/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc.c — the Qwen2.5-VL encoder forward (spec B.4, B.5, B.8), read top to
 * bottom: the inputs' checks and M-RoPE position ids, the rotary table, one decoder layer,
 * the forward (vision tower, embeddings with the image features scattered in, the layers,
 * the final norm). The vision tower is qwen_textenc_vision.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_transfer.h"
#include "models/qwen_textenc_internal.h"
#include "ops/ops_conv.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"

/* Bounds on one forward's sizes, far above any prompt, so sizes never overflow. */
#define TEXTENC_MAX_IDS (1 << 22)
#define TEXTENC_MAX_GRID (1 << 14)

static size_t rounded(size_t bytes) { return (bytes + MEM_ALIGNMENT - 1) & ~(size_t)(MEM_ALIGNMENT - 1); }

size_t textenc_buffers_bytes(const textenc_buffer *buffers, int n)
{
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += rounded(buffers[i].bytes);
    return bytes;
}

canvas_status textenc_buffers_carve(mem_arena *arena, const textenc_buffer *buffers, int n)
{
    for (int i = 0; i < n; i++) {
        *buffers[i].slot = NULL;
        if (buffers[i].bytes) TRY(mem_arena_alloc(arena, rounded(buffers[i].bytes), MEM_ALIGNMENT, buffers[i].slot));
    }
    return CANVAS_OK;
}

/* ---- inputs and positions --------------------------------------------------------------- */

/* Image grids: positive, within bounds, h and w multiples of the merge size. Sets the
 * number of patch rows and of merged tokens. */
static canvas_status check_grids(const textenc_config *c, const int64_t (*grid_thw)[3], int n_images,
                                 int64_t *patches, int64_t *tokens)
{
    const int64_t m = c->vision.spatial_merge_size;
    *patches = *tokens = 0;
    if (n_images < 0 || (n_images > 0 && !grid_thw))
        return status_fail(CANVAS_ERR_INPUT, "text encoder: %d images without their grid_thw", n_images);
    for (int i = 0; i < n_images; i++) {
        const int64_t t = grid_thw[i][0], h = grid_thw[i][1], w = grid_thw[i][2];
        if (t < 1 || h < 1 || w < 1 || t > TEXTENC_MAX_GRID || h > TEXTENC_MAX_GRID || w > TEXTENC_MAX_GRID || h % m ||
            w % m)
            return status_fail(CANVAS_ERR_INPUT, "text encoder: image %d has grid_thw [%lld, %lld, %lld]; each must be "
                               "in [1, %d] with h and w multiples of spatial_merge_size %lld", i, (long long)t,
                               (long long)h, (long long)w, TEXTENC_MAX_GRID, (long long)m);
        *patches += t * h * w;
        if (*patches > (int64_t)TEXTENC_MAX_IDS * m * m)
            return status_fail(CANVAS_ERR_INPUT, "text encoder: more than %lld image patches",
                               (long long)TEXTENC_MAX_IDS * m * m);
    }
    *tokens = *patches / (m * m);
    return CANVAS_OK;
}

/* get_rope_index for batch 1 without padding: text runs count up on all three rows from
 * one past the largest position so far; an image's merged tokens sit at (start, start + y,
 * start + x) where start follows the text before it (images: temporal index 0). */
canvas_status textenc_position_ids(const textenc_config *config, const int32_t *ids, int64_t n_ids,
                                   const int64_t (*grid_thw)[3], int n_images, int64_t *pos)
{
    int64_t patches, tokens;
    if (n_ids < 1 || n_ids > TEXTENC_MAX_IDS || !ids)
        return status_fail(CANVAS_ERR_INPUT, "text encoder: %lld ids (1 to %d)", (long long)n_ids, TEXTENC_MAX_IDS);
    TRY(check_grids(config, grid_thw, n_images, &patches, &tokens));
    const int32_t pad = config->image_token_id, start_id = config->vision_start_token_id;
    int64_t pads = 0, starts = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        pads += ids[i] == pad;
        starts += i + 1 < n_ids && ids[i] == start_id && ids[i + 1] == pad;
    }
    if (pads != tokens || starts != n_images)
        return status_fail(CANVAS_ERR_INPUT, "text encoder: the ids hold %lld <|image_pad|> tokens in %lld runs after "
                           "<|vision_start|>, the %d images need %lld in %d", (long long)pads, (long long)starts,
                           n_images, (long long)tokens, n_images);
    const int64_t m = config->vision.spatial_merge_size;
    int64_t *pt = pos, *ph = pos + n_ids, *pw = pos + 2 * n_ids;
    int64_t at = 0, next = 0; /* next: one past the largest position so far */
    for (int k = 0; k < n_images; k++) {
        int64_t ed = at;
        while (ed < n_ids && ids[ed] != pad) ed++;
        const int64_t t = grid_thw[k][0], lh = grid_thw[k][1] / m, lw = grid_thw[k][2] / m, run = t * lh * lw;
        for (int64_t i = ed; i < ed + run; i++)
            if (i >= n_ids || ids[i] != pad)
                return status_fail(CANVAS_ERR_INPUT, "text encoder: image %d needs a run of %lld <|image_pad|> tokens "
                                   "from id %lld", k, (long long)run, (long long)ed);
        for (int64_t i = at; i < ed; i++) pt[i] = ph[i] = pw[i] = next + (i - at);
        const int64_t base = next + (ed - at);
        for (int64_t i = 0; i < run; i++) {
            int64_t in_frame = i % (lh * lw);
            pt[ed + i] = base;
            ph[ed + i] = base + in_frame / lw;
            pw[ed + i] = base + in_frame % lw;
        }
        next = base + (lh > lw ? lh : lw);
        at = ed + run;
    }
    for (int64_t i = at; i < n_ids; i++) pt[i] = ph[i] = pw[i] = next + (i - at);
    return CANVAS_OK;
}

/* M-RoPE (spec B.5.1): pair j of a head (channels j and j + hd/2) rotates by
 * pos[axis(j)] * inv_freq[j], inv_freq[j] = 1 / theta^(2j / hd), axis(j) = t, h or w as
 * mrope_section splits the hd/2 pairs (all t when the config has no sections). */
static void rope_table(const textenc_text_config *t, const int64_t *pos, int64_t n, float *cos_out, float *sin_out)
{
    const int64_t half = t->head_dim / 2;
    const int sections = t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2];
    for (int64_t j = 0; j < half; j++) {
        const float inv_freq = 1.0f / powf((float)t->rope_theta, (float)(2 * j) / (float)t->head_dim);
        int axis = 0;
        if (sections) axis = j < t->mrope_section[0] ? 0 : j < t->mrope_section[0] + t->mrope_section[1] ? 1 : 2;
        for (int64_t i = 0; i < n; i++) {
            const float angle = (float)pos[axis * n + i] * inv_freq;
            cos_out[i * half + j] = cosf(angle);
            sin_out[i * half + j] = sinf(angle);
        }
    }
}

/* ---- one decoder layer -------------------------------------------------------------------- */

/* The forward's activations, carved from one arena: first what lives through the whole
 * forward, then the vision tower's (given back when it is done), then the decoder's in
 * the same place. n = n_ids rows. */
typedef struct text_state {
    float *vision;     /* [image tokens, D] the vision tower's output */
    float *out;        /* [n, D]  the output, copied to the caller's buffer at the end */
    float *h;          /* [n, D]  the residual stream */
    float *normed;     /* [n, D]  */
    float *q;          /* [n, D]  */
    float *k, *v;      /* [n, KV] */
    float *attn;       /* [n, D]  */
    float *delta;      /* [n, D]  a sub-layer's output before the residual add */
    float *gate, *up;  /* [n, F]  */
    float *cos, *sin;  /* [n, hd/2] */
} text_state;

enum { KEPT_BUFFERS = 2, TEXT_BUFFERS = 11 };

static int64_t image_tokens_of(const textenc_config *c, const int64_t (*grid_thw)[3], int n_images)
{
    const int64_t m = c->vision.spatial_merge_size;
    int64_t tokens = 0;
    for (int i = 0; i < n_images; i++) tokens += grid_thw[i][0] * (grid_thw[i][1] / m) * (grid_thw[i][2] / m);
    return tokens;
}

/* The arena's buffers in carving order: b[0, KEPT_BUFFERS) kept, then the decoder's. */
static void text_buffers(const textenc_config *c, int64_t n, int64_t image_tokens, text_state *s,
                         textenc_buffer b[KEPT_BUFFERS + TEXT_BUFFERS])
{
    const textenc_text_config *t = &c->text;
    const size_t rows = (size_t)n * sizeof(float), d = (size_t)t->hidden_size, ff = (size_t)t->intermediate_size;
    const size_t kv = (size_t)t->num_key_value_heads * (size_t)t->head_dim, half = (size_t)t->head_dim / 2;
    const textenc_buffer list[KEPT_BUFFERS + TEXT_BUFFERS] = {
        TEXTENC_BUFFER(s->vision, (size_t)image_tokens * d * sizeof(float)), TEXTENC_BUFFER(s->out, rows * d),
        TEXTENC_BUFFER(s->h, rows * d), TEXTENC_BUFFER(s->normed, rows * d), TEXTENC_BUFFER(s->q, rows * d),
        TEXTENC_BUFFER(s->k, rows * kv), TEXTENC_BUFFER(s->v, rows * kv), TEXTENC_BUFFER(s->attn, rows * d),
        TEXTENC_BUFFER(s->delta, rows * d), TEXTENC_BUFFER(s->gate, rows * ff), TEXTENC_BUFFER(s->up, rows * ff),
        TEXTENC_BUFFER(s->cos, rows * half), TEXTENC_BUFFER(s->sin, rows * half)};
    memcpy(b, list, sizeof list);
}

size_t textenc_activation_bytes(const textenc_config *config, int64_t n_ids, const int64_t (*grid_thw)[3],
                                int n_images)
{
    text_state unused;
    textenc_buffer b[KEPT_BUFFERS + TEXT_BUFFERS];
    text_buffers(config, n_ids, image_tokens_of(config, grid_thw, n_images), &unused, b);
    const size_t vision = n_images > 0 ? textenc_vision_bytes(config, grid_thw, n_images) : 0;
    const size_t text = textenc_buffers_bytes(b + KEPT_BUFFERS, TEXT_BUFFERS);
    return textenc_buffers_bytes(b, KEPT_BUFFERS) + (vision > text ? vision : text);
}

static canvas_status layer_forward(op_backend *be, const textenc_text_config *t, const textenc_layer_weights *l,
                                   int64_t n, text_state *s)
{
    const int64_t d = t->hidden_size, f = t->intermediate_size;
    const int heads = t->num_attention_heads, kv_heads = t->num_key_value_heads, hd = t->head_dim;
    const float eps = (float)t->rms_norm_eps;
    op_rms_norm_rows(be, s->h, n, d, eps, l->input_norm, s->normed);
    TRY(op_linear(be, s->normed, n, &l->q, l->q_bias, s->q));
    TRY(op_linear(be, s->normed, n, &l->k, l->k_bias, s->k));
    TRY(op_linear(be, s->normed, n, &l->v, l->v_bias, s->v));
    op_rope_half_rows(be, s->q, n, heads, hd, s->cos, s->sin);
    op_rope_half_rows(be, s->k, n, kv_heads, hd, s->cos, s->sin);
    TRY(op_attention_grouped(be, s->q, s->k, s->v, n, heads, kv_heads, hd, 1, s->attn));
    TRY(op_linear(be, s->attn, n, &l->o, NULL, s->delta));
    op_add_inplace(be, s->h, s->delta, n * d);

    op_rms_norm_rows(be, s->h, n, d, eps, l->post_norm, s->normed);
    TRY(op_linear(be, s->normed, n, &l->gate, NULL, s->gate));
    TRY(op_linear(be, s->normed, n, &l->up, NULL, s->up));
    op_swiglu_rows(be, s->gate, s->up, n * f);
    TRY(op_linear(be, s->gate, n, &l->down, NULL, s->delta));
    op_add_inplace(be, s->h, s->delta, n * d);
    return op_backend_check(be);
}

/* ---- the forward -------------------------------------------------------------------------- */

canvas_status textenc_tap_rows(mem_device *device, const textenc_tap *tap, const char *name, const float *data,
                               int64_t rows, int64_t cols)
{
    if (!tap || !tap->fn) return CANVAS_OK;
    const size_t bytes = (size_t)(rows * cols) * sizeof(float);
    float *host;
    TRY(mem_host_view(device, (void *)data, bytes, 1, (void **)&host));
    canvas_status st = tap->fn(tap->ctx, name, host, rows, cols);
    return mem_host_view_end(device, (void *)data, host, bytes, 0, st);
}

/* Token embeddings (rows converted from the stored type, which stays in host memory), the
 * k-th <|image_pad|> taking row k of the vision output (masked_scatter). On a host-addressable
 * device the rows are written in place; on any other the token rows are gathered into a host
 * block of n·D floats (MEM_STAGING, the image rows zero) and sent, then each run of image
 * tokens is copied from the vision output on the device with the backend (op_copy_columns). */
static canvas_status embed(const textenc_model *model, op_backend *be, const int32_t *ids, int64_t n,
                           const float *vision, float *out)
{
    mem_device *device = textenc_device(model);
    const st_tensor *table = model->weights.embed_tokens;
    const int32_t pad = model->config.image_token_id;
    const int64_t d = model->config.text.hidden_size;
    const size_t row_bytes = (size_t)d * dtype_size(table->type), bytes = (size_t)(n * d) * sizeof(float);
    float *rows;
    TRY(mem_host_view(device, out, bytes, 0, (void **)&rows));
    const int staged = rows != out;
    int64_t image_row = 0;
    for (int64_t i = 0; i < n; i++) {
        if (vision && ids[i] == pad && staged)
            memset(rows + i * d, 0, (size_t)d * sizeof(float));
        else if (vision && ids[i] == pad)
            memcpy(out + i * d, vision + image_row++ * d, (size_t)d * sizeof(float));
        else
            dtype_to_f32(table->type, (const char *)table->data + (size_t)ids[i] * row_bytes, rows + i * d, (size_t)d);
    }
    TRY(mem_host_view_end(device, out, rows, bytes, 1, CANVAS_OK));
    for (int64_t i = 0; staged && vision && i < n;) {
        int64_t end = i;
        while (end < n && ids[end] == pad) end++;
        if (end > i) op_copy_columns(be, vision + image_row * d, end - i, d, 0, d, out + i * d);
        image_row += end - i;
        i = end > i ? end : i + 1;
    }
    return op_backend_check(be);
}

/* The rotary table of the positions into s->cos, s->sin (through host staging where the
 * device is not host-addressable: 2·n·hd/2 floats). */
static canvas_status send_rope_table(mem_device *device, const textenc_text_config *t, const int64_t *pos, int64_t n,
                                     text_state *s)
{
    const size_t bytes = (size_t)n * (size_t)(t->head_dim / 2) * sizeof(float);
    float *cos_at = NULL, *sin_at = NULL;
    canvas_status st = mem_host_view(device, s->cos, bytes, 0, (void **)&cos_at);
    if (st == CANVAS_OK) st = mem_host_view(device, s->sin, bytes, 0, (void **)&sin_at);
    if (st == CANVAS_OK) rope_table(t, pos, n, cos_at, sin_at);
    st = mem_host_view_end(device, s->cos, cos_at, bytes, 1, st);
    return mem_host_view_end(device, s->sin, sin_at, bytes, 1, st);
}

void textenc_set_progress(textenc_model *model, textenc_progress_fn fn, void *ctx)
{
    model->progress = fn;
    model->progress_ctx = ctx;
}

canvas_status textenc_progress_step(textenc_model *model)
{
    model->progress_done++;
    return model->progress ? model->progress(model->progress_ctx, model->progress_done, model->progress_total)
                           : CANVAS_OK;
}

static canvas_status forward(textenc_model *model, op_backend *be, const textenc_weights *top, mem_arena *arena,
                             const int32_t *ids, int64_t n, const float *pixel_values, const int64_t (*grid_thw)[3],
                             int n_images, const textenc_tap *tap, const int64_t *pos, text_state *s,
                             textenc_buffer *decoder_buffers)
{
    const textenc_text_config *t = &model->config.text;
    mem_device *device = textenc_device(model);
    const int64_t d = t->hidden_size;
    if (n_images > 0) {
        TRY(textenc_vision_forward(model, be, top, arena, pixel_values, grid_thw, n_images, tap, s->vision));
        TRY(textenc_tap_rows(device, tap, "vision_embeds", s->vision,
                             image_tokens_of(&model->config, grid_thw, n_images), d));
    }
    TRY(textenc_buffers_carve(arena, decoder_buffers, TEXT_BUFFERS));
    TRY(embed(model, be, ids, n, n_images > 0 ? s->vision : NULL, s->h));
    TRY(textenc_tap_rows(device, tap, "inputs_embeds", s->h, n, d));
    TRY(send_rope_table(device, t, pos, n, s));
    for (int l = 0; l < t->num_hidden_layers; l++) {
        const textenc_layer_weights *w;
        TRY(textenc_layer_acquire(model, l, &w));
        canvas_status st = layer_forward(be, t, w, n, s);
        textenc_layer_release(model, l);
        if (st != CANVAS_OK) return status_wrap(st, "text encoder layer %d: ", l);
        char name[32];
        snprintf(name, sizeof name, "layer.%d", l);
        TRY(textenc_tap_rows(device, tap, name, s->h, n, d));
        TRY(textenc_progress_step(model));
    }
    op_rms_norm_rows(be, s->h, n, d, (float)t->rms_norm_eps, top->norm, s->out);
    return op_backend_check(be);
}

/* The dry run on a measure device, after the vision tower's: the decoder's carving and
 * every layer's acquire and release, no kernels. */
static canvas_status dry_forward(textenc_model *model, const textenc_weights *top, mem_arena *arena,
                                 const float *pixel_values, const int64_t (*grid_thw)[3], int n_images,
                                 textenc_buffer *decoder_buffers)
{
    if (n_images > 0)
        TRY(textenc_vision_forward(model, NULL, top, arena, pixel_values, grid_thw, n_images, NULL, NULL));
    TRY(textenc_buffers_carve(arena, decoder_buffers, TEXT_BUFFERS));
    for (int l = 0; l < model->config.text.num_hidden_layers; l++) {
        const textenc_layer_weights *w;
        TRY(textenc_layer_acquire(model, l, &w));
        textenc_layer_release(model, l);
    }
    return CANVAS_OK;
}

/* Arena in, forward (or dry run), output out; the top level is held throughout. */
static canvas_status run_on_device(textenc_model *model, op_backend *be, const int32_t *ids, int64_t n,
                                   const float *pixel_values, const int64_t (*grid_thw)[3], int n_images,
                                   const textenc_tap *tap, const int64_t *pos, float *hidden)
{
    const textenc_config *c = &model->config;
    mem_device *device = textenc_device(model);
    const int dry = !(mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA);
    const size_t bytes = textenc_activation_bytes(c, n, grid_thw, n_images);
    text_state s;
    textenc_buffer b[KEPT_BUFFERS + TEXT_BUFFERS];
    text_buffers(c, n, image_tokens_of(c, grid_thw, n_images), &s, b);
    mem_arena *arena;
    TRY(mem_arena_create(device, MEM_ACTIVATIONS, bytes, &arena));
    const textenc_weights *top = NULL;
    model->progress_done = 0;
    model->progress_total = (n_images > 0 ? c->vision.depth : 0) + c->text.num_hidden_layers;
    canvas_status st = textenc_buffers_carve(arena, b, KEPT_BUFFERS);
    if (st == CANVAS_OK) st = textenc_top_acquire(model, &top);
    if (st == CANVAS_OK) {
        st = dry ? dry_forward(model, top, arena, pixel_values, grid_thw, n_images, b + KEPT_BUFFERS)
                 : forward(model, be, top, arena, ids, n, pixel_values, grid_thw, n_images, tap, pos, &s,
                           b + KEPT_BUFFERS);
        textenc_top_release(model);
    }
    if (st == CANVAS_OK && mem_arena_high_water(arena) != bytes)
        st = status_fail(CANVAS_ERR_INTERNAL, "text encoder: the activation formula (%zu bytes) and the carving "
                         "(%zu bytes) disagree", bytes, mem_arena_high_water(arena));
    if (st == CANVAS_OK && hidden) /* hidden is NULL only in a dry run */
        st = mem_copy(mem_device_cpu(), hidden, device, s.out, (size_t)(n * c->text.hidden_size) * sizeof(float));
    mem_arena_destroy(arena);
    return st;
}

canvas_status textenc_forward_tapped(textenc_model *model, op_backend *be, const int32_t *ids, int64_t n_ids,
                                     const float *pixel_values, const int64_t (*grid_thw)[3], int n_images,
                                     const textenc_tap *tap, float *hidden)
{
    const textenc_config *c = &model->config;
    const textenc_text_config *t = &c->text;
    int64_t *pos = NULL;
    mem_device *device = textenc_device(model);
    if (!device)
        return status_fail(CANVAS_ERR_USAGE, "text encoder: the weights are not placed on a device (the last "
                                             "textenc_place failed; place the model again before a forward)");
    const unsigned flags = mem_device_flags(device);
    /* The CPU kernels would read and write the device's blocks through their addresses and
     * fault: a device the host cannot address computes with its own backend or not at all. */
    if ((flags & MEM_DEVICE_HOLDS_DATA) && !mem_device_is_addressable(device) && op_backend_on_host(be))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "text encoder forward: device '%s' is not host-addressable and the "
                           "CPU op backend computes only in host memory: give the device's own op backend",
                           mem_device_name(device));
    const int dry = !(flags & MEM_DEVICE_HOLDS_DATA);
    if (n_ids < 1 || n_ids > TEXTENC_MAX_IDS || !ids || (!hidden && !dry))
        return status_fail(CANVAS_ERR_INPUT, "text encoder: %lld ids (1 to %d, with an output buffer)",
                           (long long)n_ids, TEXTENC_MAX_IDS);
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return status_fail(CANVAS_ERR_INPUT, "text encoder: id %lld is %d, outside the vocabulary [0, %d)",
                               (long long)i, ids[i], t->vocab_size);
    if (n_images > 0 && !pixel_values)
        return status_fail(CANVAS_ERR_INPUT, "text encoder: %d images without pixel_values", n_images);
    int64_t patches, tokens;
    TRY(check_grids(c, grid_thw, n_images, &patches, &tokens));
    /* the positions are host bookkeeping: the rotary tables are built from them */
    TRY(mem_alloc((void **)&pos, 3 * (size_t)n_ids * sizeof(int64_t), MEM_SCRATCH));
    canvas_status st = textenc_position_ids(c, ids, n_ids, grid_thw, n_images, pos);
    if (st == CANVAS_OK) st = run_on_device(model, be, ids, n_ids, pixel_values, grid_thw, n_images, tap, pos, hidden);
    mem_free(pos);
    return st;
}

canvas_status textenc_forward(textenc_model *model, op_backend *be, const int32_t *ids, int64_t n_ids,
                              const float *pixel_values, const int64_t (*grid_thw)[3], int n_images, float *hidden)
{
    return textenc_forward_tapped(model, be, ids, n_ids, pixel_values, grid_thw, n_images, NULL, hidden);
}
