/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_vision.c — the Qwen2.5-VL vision tower (spec B.7), read top to bottom:
 * the window order, the 2D rotary table, one block, the patch merger, the forward.
 *
 * Rows. pixel_values come in "merge-window order": the U = merge² patches of each merged
 * token are consecutive, merged tokens in raster order, per image and frame. The blocks
 * run on the rows permuted into WINDOW order (the merged tokens of each window of
 * window_size pixels consecutive, windows in raster order, U patches moving together), so
 * that every attention segment, a window or a whole frame, is a contiguous run of rows and
 * is one op_attention call. The merger works on groups of U rows, which the permutation
 * keeps together; its output is put back into raster order at the end.
 *
 * Device. Every activation is the arena's, on the model's device, and only ops with the
 * backend touch it (the permutations are op_gather_rows / op_scatter_rows over the window
 * index's copy on the device). Host code builds the layout and the rotary table: in place on
 * a host-addressable device; on any other the layout lists live in a host block (MEM_STAGING,
 * their arena slots unused but for the window index, sent there) and the table is staged
 * (mem_host_view, mem/mem_transfer.h). */
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

/* The window permutation and the attention segments of one forward (all images). */
typedef struct vision_layout {
    int64_t tokens;            /* S / U merged tokens */
    int64_t *window_index;     /* [tokens]: window position k holds merged token window_index[k] */
    int64_t *window_starts;    /* [n_windows + 1]: patch-row bounds of the windows (window order) */
    int64_t n_windows;
    int64_t max_windows;       /* windows before the empty ones are dropped: window_starts' room */
    int64_t *frame_starts;     /* [n_frames + 1]: patch-row bounds of each image frame */
    int64_t n_frames;
} vision_layout;

/* The merged grid lh x lw of a frame is padded up to whole windows of `win` merged tokens:
 * a full extra row/column of windows when it divides, as in transformers (those windows
 * are empty and dropped like the padding). */
static int64_t windows_across(int64_t merged, int64_t win) { return merged / win + 1; }

static int64_t window_tokens(const textenc_vision_config *v)
{
    return v->window_size / v->spatial_merge_size / v->patch_size;
}

/* The layout's sizes, before its arrays are carved. */
static void layout_count(const textenc_vision_config *v, const int64_t (*grid_thw)[3], int n_images,
                         vision_layout *l)
{
    const int64_t m = v->spatial_merge_size, win = window_tokens(v);
    memset(l, 0, sizeof *l);
    for (int i = 0; i < n_images; i++) {
        int64_t lh = grid_thw[i][1] / m, lw = grid_thw[i][2] / m;
        l->tokens += grid_thw[i][0] * lh * lw;
        l->n_frames += grid_thw[i][0];
        l->max_windows += grid_thw[i][0] * windows_across(lh, win) * windows_across(lw, win);
    }
}

/* get_window_index: windows in raster order per frame, merged tokens in raster order
 * inside a window, padding dropped. */
static void layout_build(const textenc_vision_config *v, const int64_t (*grid_thw)[3], int n_images, vision_layout *l)
{
    const int64_t m = v->spatial_merge_size, unit = m * m, win = window_tokens(v);
    int64_t k = 0, token0 = 0, frame = 0;
    l->window_starts[0] = l->frame_starts[0] = 0;
    for (int i = 0; i < n_images; i++) {
        const int64_t lh = grid_thw[i][1] / m, lw = grid_thw[i][2] / m;
        const int64_t wh = windows_across(lh, win), ww = windows_across(lw, win);
        for (int64_t t = 0; t < grid_thw[i][0]; t++, token0 += lh * lw) {
            for (int64_t wy = 0; wy < wh; wy++)
                for (int64_t wx = 0; wx < ww; wx++) {
                    int64_t first = k;
                    for (int64_t y = wy * win; y < (wy + 1) * win && y < lh; y++)
                        for (int64_t x = wx * win; x < (wx + 1) * win && x < lw; x++)
                            l->window_index[k++] = token0 + y * lw + x;
                    if (k > first) l->window_starts[++l->n_windows] = k * unit;
                }
            l->frame_starts[++frame] = (token0 + lh * lw) * unit;
        }
    }
}

/* cos/sin [S, hd/2] in window order: a patch at (hpos, wpos) of its frame rotates pair j
 * by hpos * inv_freq[j] for j < hd/4 and by wpos * inv_freq[j - hd/4] after, with
 * inv_freq[j] = 1 / 10000^(4j / hd) (Qwen2_5_VisionRotaryEmbedding(hd / 2)). */
static void rotary_table(const textenc_vision_config *v, const int64_t (*grid_thw)[3], int n_images,
                         const vision_layout *l, float *cos_out, float *sin_out)
{
    const int64_t m = v->spatial_merge_size, unit = m * m, hd = v->hidden_size / v->num_heads;
    const int64_t quarter = hd / 4, half = hd / 2;
    /* (on the host: cos_out and sin_out are the buffers or their staging, see forward) */
    float inv_freq[TEXTENC_MAX_HEAD_DIM / 4];
    for (int64_t j = 0; j < quarter; j++)
        inv_freq[j] = 1.0f / powf(TEXTENC_VISION_ROPE_THETA, (float)(2 * j) / (float)half);
    /* merged token id -> (image, position in its frame): walk the images once per token */
    for (int64_t k = 0; k < l->tokens; k++) {
        int64_t token = l->window_index[k], lw = 0;
        for (int i = 0; i < n_images; i++) {
            int64_t per_frame = (grid_thw[i][1] / m) * (grid_thw[i][2] / m), count = grid_thw[i][0] * per_frame;
            if (token < count) {
                token %= per_frame;
                lw = grid_thw[i][2] / m;
                break;
            }
            token -= count;
        }
        const int64_t by = token / lw, bx = token % lw;
        for (int64_t u = 0; u < unit; u++) {
            const float hpos = (float)(by * m + u / m), wpos = (float)(bx * m + u % m);
            float *c = cos_out + (k * unit + u) * half, *s = sin_out + (k * unit + u) * half;
            for (int64_t j = 0; j < quarter; j++) {
                float ah = hpos * inv_freq[j], aw = wpos * inv_freq[j];
                c[j] = cosf(ah), s[j] = sinf(ah);
                c[quarter + j] = cosf(aw), s[quarter + j] = sinf(aw);
            }
        }
    }
}

/* The activations of the tower, S patch rows, carved from the forward's arena. */
typedef struct vision_state {
    vision_layout layout;
    float *pixels;     /* [S, P] pixel_values, copied onto the model's device */
    float *x;          /* [S, Dv] the residual stream, window order */
    float *normed;     /* [S, Dv] */
    float *qkv;        /* [S, 3Dv] */
    float *q, *k, *v;  /* [S, Dv] each */
    float *attn;       /* [S, Dv] attention output; the merger's hidden [S/U, U Dv] */
    float *gate, *up;  /* [S, Fv] */
    float *cos, *sin;  /* [S, hd/2] */
    float *delta;      /* [S, Dv] a sub-layer's output before the residual add */
    float *merged;     /* [S/U, D] merger output, window order */
    int64_t *device_index;       /* the window index on the device (the layout's own, or its copy) */
    int64_t *host_layout;        /* the layout lists on a device the host cannot address (MEM_STAGING) */
    float *tap;        /* S + 1: the layout lists as floats for the tap (host MEM_SCRATCH, only with a
                          tap: not part of the arena) */
} vision_state;

enum { VISION_BUFFERS = 17 };

/* The arena's buffers of the tower in carving order (slots into st; layout sizes set). */
static void state_buffers(const textenc_config *c, const int64_t (*grid_thw)[3], int n_images, vision_state *st,
                          textenc_buffer b[VISION_BUFFERS])
{
    const size_t f = sizeof(float), i8 = sizeof(int64_t);
    const int64_t dv = c->vision.hidden_size, fv = c->vision.intermediate_size, hd = dv / c->vision.num_heads;
    const int64_t unit = (int64_t)c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    vision_layout *l = &st->layout;
    layout_count(&c->vision, grid_thw, n_images, l);
    const size_t s = (size_t)(l->tokens * unit);
    const textenc_buffer list[VISION_BUFFERS] = {
        TEXTENC_BUFFER(l->window_index, (size_t)l->tokens * i8),
        TEXTENC_BUFFER(l->window_starts, (size_t)(l->max_windows + 1) * i8),
        TEXTENC_BUFFER(l->frame_starts, (size_t)(l->n_frames + 1) * i8),
        TEXTENC_BUFFER(st->pixels, s * (size_t)textenc_patch_values(c) * f),
        TEXTENC_BUFFER(st->x, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->normed, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->qkv, 3 * s * (size_t)dv * f),
        TEXTENC_BUFFER(st->q, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->k, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->v, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->attn, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->gate, s * (size_t)fv * f),
        TEXTENC_BUFFER(st->up, s * (size_t)fv * f),
        TEXTENC_BUFFER(st->cos, s * (size_t)(hd / 2) * f),
        TEXTENC_BUFFER(st->sin, s * (size_t)(hd / 2) * f),
        TEXTENC_BUFFER(st->delta, s * (size_t)dv * f),
        TEXTENC_BUFFER(st->merged, (size_t)l->tokens * (size_t)c->text.hidden_size * f),
    };
    memcpy(b, list, sizeof list);
}

size_t textenc_vision_bytes(const textenc_config *config, const int64_t (*grid_thw)[3], int n_images)
{
    vision_state unused;
    textenc_buffer b[VISION_BUFFERS];
    state_buffers(config, grid_thw, n_images, &unused, b);
    return textenc_buffers_bytes(b, VISION_BUFFERS);
}

/* x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x)). Attention within each segment of `starts`
 * (windows, or whole frames for the full-attention blocks). */
static canvas_status block_forward(op_backend *be, const textenc_vision_config *v, const textenc_block_weights *b,
                                   int64_t s, const int64_t *starts, int64_t n_segments, vision_state *st)
{
    const int64_t dv = v->hidden_size, fv = v->intermediate_size;
    const int heads = v->num_heads, hd = (int)(dv / heads);
    op_rms_norm_rows(be, st->x, s, dv, TEXTENC_VISION_NORM_EPS, b->norm1, st->normed);
    TRY(op_linear(be, st->normed, s, &b->qkv, b->qkv_bias, st->qkv));
    /* split the rows [q | k | v] for op_attention's layout */
    op_copy_columns(be, st->qkv, s, 3 * dv, 0, dv, st->q);
    op_copy_columns(be, st->qkv, s, 3 * dv, dv, dv, st->k);
    op_copy_columns(be, st->qkv, s, 3 * dv, 2 * dv, dv, st->v);
    op_rope_half_rows(be, st->q, s, heads, hd, st->cos, st->sin);
    op_rope_half_rows(be, st->k, s, heads, hd, st->cos, st->sin);
    TRY(op_backend_check(be));
    for (int64_t i = 0; i < n_segments; i++) {
        const int64_t r0 = starts[i], rows = starts[i + 1] - starts[i];
        TRY(op_attention(be, st->q + r0 * dv, st->k + r0 * dv, st->v + r0 * dv, rows, heads, hd, NULL,
                         st->attn + r0 * dv));
    }
    TRY(op_linear(be, st->attn, s, &b->proj, b->proj_bias, st->delta));
    op_add_inplace(be, st->x, st->delta, s * dv);

    op_rms_norm_rows(be, st->x, s, dv, TEXTENC_VISION_NORM_EPS, b->norm2, st->normed);
    TRY(op_linear(be, st->normed, s, &b->gate, b->gate_bias, st->gate));
    TRY(op_linear(be, st->normed, s, &b->up, b->up_bias, st->up));
    op_swiglu_rows(be, st->gate, st->up, s * fv);
    TRY(op_linear(be, st->gate, s, &b->down, b->down_bias, st->delta));
    op_add_inplace(be, st->x, st->delta, s * dv);
    return op_backend_check(be);
}

static int is_full_attention(const textenc_vision_config *v, int block)
{
    for (int i = 0; i < v->n_fullatt_blocks; i++)
        if (v->fullatt_block_indexes[i] == block) return 1;
    return 0;
}

/* Rows of x (window order) in pixel_values order, to the tap: put back into st->delta (free
 * between blocks) with the backend. */
static canvas_status tap_window_rows(mem_device *device, op_backend *be, const textenc_tap *tap, const char *name,
                                     vision_state *st, int64_t unit, int64_t dv)
{
    if (!tap || !tap->fn) return CANVAS_OK;
    const vision_layout *l = &st->layout;
    op_scatter_rows(be, st->x, st->device_index, l->tokens, unit * dv, st->delta);
    TRY(op_backend_check(be));
    return textenc_tap_rows(device, tap, name, st->delta, l->tokens * unit, dv);
}

/* The window bookkeeping, as integers in floats (exact below 2^24), under the reference's
 * names: vision.window_index [S/U], vision.cu_window_seqlens, vision.cu_seqlens. */
static canvas_status tap_layout(const textenc_tap *tap, const vision_layout *l, float *scratch)
{
    if (!tap || !tap->fn) return CANVAS_OK;
    const struct { const char *name; const int64_t *values; int64_t n; } lists[3] = {
        {"vision.window_index", l->window_index, l->tokens},
        {"vision.cu_window_seqlens", l->window_starts, l->n_windows + 1},
        {"vision.cu_seqlens", l->frame_starts, l->n_frames + 1}};
    for (int i = 0; i < 3; i++) {
        for (int64_t k = 0; k < lists[i].n; k++) scratch[k] = (float)lists[i].values[k];
        TRY(tap->fn(tap->ctx, lists[i].name, scratch, lists[i].n, 1));
    }
    return CANVAS_OK;
}

static canvas_status forward(textenc_model *model, op_backend *be, const textenc_weights *w,
                             const int64_t (*grid_thw)[3], int n_images, const textenc_tap *tap, vision_state *st,
                             float *out)
{
    const vision_layout *l = &st->layout;
    const textenc_config *c = &model->config;
    const textenc_vision_config *v = &c->vision;
    const int64_t unit = (int64_t)v->spatial_merge_size * v->spatial_merge_size, s = l->tokens * unit;
    const int64_t dv = v->hidden_size;
    mem_device *device = textenc_device(model);

    /* Patch embedding (in pixel_values order), then into window order. */
    TRY(op_linear(be, st->pixels, s, &w->patch_embed, NULL, st->normed));
    TRY(textenc_tap_rows(device, tap, "vision.patch_embed", st->normed, s, dv));
    op_gather_rows(be, st->normed, st->device_index, l->tokens, unit * dv, st->x);
    TRY(op_backend_check(be));
    const size_t table = (size_t)s * (size_t)(dv / v->num_heads / 2) * sizeof(float);
    float *cos_at = NULL, *sin_at = NULL;
    canvas_status staged = mem_host_view(device, st->cos, table, 0, (void **)&cos_at);
    if (staged == CANVAS_OK) staged = mem_host_view(device, st->sin, table, 0, (void **)&sin_at);
    if (staged == CANVAS_OK) rotary_table(v, grid_thw, n_images, l, cos_at, sin_at);
    staged = mem_host_view_end(device, st->cos, cos_at, table, 1, staged);
    TRY(mem_host_view_end(device, st->sin, sin_at, table, 1, staged));
    TRY(tap_layout(tap, l, st->tap));

    for (int b = 0; b < v->depth; b++) {
        int full = is_full_attention(v, b);
        const textenc_block_weights *block;
        TRY(textenc_block_acquire(model, b, &block));
        canvas_status status = block_forward(be, v, block, s, full ? l->frame_starts : l->window_starts,
                                             full ? l->n_frames : l->n_windows, st);
        textenc_block_release(model, b);
        if (status != CANVAS_OK) return status_wrap(status, "vision block %d: ", b);
        char name[48];
        snprintf(name, sizeof name, "vision.block.%d", b);
        TRY(tap_window_rows(device, be, tap, name, st, unit, dv));
        TRY(textenc_progress_step(model));
    }

    /* Merger: RMSNorm per patch, U patches side by side, Linear, exact GELU, Linear. */
    op_rms_norm_rows(be, st->x, s, dv, TEXTENC_VISION_NORM_EPS, w->merger_norm, st->normed);
    TRY(op_linear(be, st->normed, l->tokens, &w->merger_fc1, w->merger_fc1_bias, st->attn));
    op_gelu_erf_rows(be, st->attn, s * dv);
    TRY(op_linear(be, st->attn, l->tokens, &w->merger_fc2, w->merger_fc2_bias, st->merged));
    op_scatter_rows(be, st->merged, st->device_index, l->tokens, c->text.hidden_size, out);
    return op_backend_check(be);
}

/* The dry run on a measure device: the carving and the copy as above, then every block's
 * acquire and release (hence the same prefetches and copies), no kernels. */
static canvas_status dry_forward(textenc_model *model)
{
    for (int b = 0; b < model->config.vision.depth; b++) {
        const textenc_block_weights *block;
        TRY(textenc_block_acquire(model, b, &block));
        textenc_block_release(model, b);
    }
    return CANVAS_OK;
}

/* The layout in its carved slots on a host-addressable device; on any other in a host block,
 * the window index sent to its slot for the permutations. */
static canvas_status build_layout(textenc_model *model, const int64_t (*grid_thw)[3], int n_images, vision_state *st)
{
    mem_device *device = textenc_device(model);
    vision_layout *l = &st->layout;
    st->device_index = l->window_index;
    if (!mem_device_is_addressable(device)) {
        const size_t lists = (size_t)(l->tokens + l->max_windows + 1 + l->n_frames + 1);
        TRY(mem_alloc((void **)&st->host_layout, lists * sizeof(int64_t), MEM_STAGING));
        l->window_index = st->host_layout;
        l->window_starts = l->window_index + l->tokens;
        l->frame_starts = l->window_starts + l->max_windows + 1;
    }
    layout_build(&model->config.vision, grid_thw, n_images, l);
    if (l->window_index == st->device_index) return CANVAS_OK;
    return mem_copy(device, st->device_index, mem_device_cpu(), l->window_index,
                    (size_t)l->tokens * sizeof(int64_t));
}

canvas_status textenc_vision_forward(textenc_model *model, op_backend *be, const textenc_weights *top,
                                     mem_arena *arena, const float *pixel_values, const int64_t (*grid_thw)[3],
                                     int n_images, const textenc_tap *tap, float *out)
{
    const int dry = !(mem_device_flags(textenc_device(model)) & MEM_DEVICE_HOLDS_DATA);
    const textenc_config *c = &model->config;
    vision_state state;
    textenc_buffer b[VISION_BUFFERS];
    memset(&state, 0, sizeof state);
    state_buffers(c, grid_thw, n_images, &state, b);
    const size_t mark = mem_arena_mark(arena);
    const int64_t s = state.layout.tokens * c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    canvas_status st = textenc_buffers_carve(arena, b, VISION_BUFFERS);
    if (st == CANVAS_OK && !dry) st = build_layout(model, grid_thw, n_images, &state);
    if (st == CANVAS_OK)
        st = mem_copy(textenc_device(model), state.pixels, mem_device_cpu(), pixel_values,
                      (size_t)(s * textenc_patch_values(c)) * sizeof(float));
    if (st == CANVAS_OK && tap && tap->fn && !dry)
        st = mem_alloc((void **)&state.tap, (size_t)(s + 1) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = dry ? dry_forward(model) : forward(model, be, top, grid_thw, n_images, tap, &state, out);
    mem_free(state.tap);
    mem_free(state.host_layout);
    mem_arena_rewind(arena, mark);
    return st;
}
