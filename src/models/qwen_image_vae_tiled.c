/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae_tiled.c — tiled encode and decode (spec A.10), diffusers' algorithm:
 *
 *   for each tile (row-major, every `stride` input pixels, `tile` wide, smaller at the edges):
 *       out = plain encode / decode of the tile
 *       if there is a tile above: blend_v(above, out)   rows:    out[y] = above[-e+y]·(1-y/e) + out[y]·(y/e)
 *       if there is a tile left:  blend_h(left, out)    columns: the same along x
 *       keep out[:stride_out, :stride_out] at the tile's place in the result
 *
 * with e = tile_out - stride_out (limited by both tiles' sizes). Blending is in place and
 * the neighbours are the already blended tiles, as in diffusers. Only two rows of tile
 * outputs are held (the row above and the current one), not every tile. */

#include "base/status.h"
#include "mem/mem.h"
#include "models/qwen_image_vae.h"
#include "ops/ops_layout.h"

void vae_tiling_default(vae_tiling *tiling)
{
    *tiling = (vae_tiling){.tile_height = 256, .tile_width = 256, .stride_height = 192, .stride_width = 192};
}

int vae_tiling_needed(const vae_tiling *tiling, int image_height, int image_width)
{
    return image_height > tiling->tile_height || image_width > tiling->tile_width;
}

/* One output tile: [channels, height, width]. */
typedef struct tile {
    float *data;
    int height, width;
} tile;

/* Geometry of a tiled run, in input units (pixels to encode, latent pixels to decode) and
 * output units. */
typedef struct tiled_run {
    vae_model *model;
    op_backend *be;
    op_backend *host_be;  /* the crops, tiles and output are host memory: be when it is the CPU's,
                             else NULL (the CPU on the calling thread) */
    int encode;
    int in_channels, out_channels;
    int in_h, in_w, out_h, out_w;
    int tile_in_h, tile_in_w, stride_in_h, stride_in_w;
    int stride_out_h, stride_out_w, blend_h, blend_w;
    int tile_out_h, tile_out_w;     /* the largest tile's output size */
} tiled_run;

static canvas_status check_tiling(const vae_tiling *t, int scale)
{
    const int sizes[4] = {t->tile_height, t->tile_width, t->stride_height, t->stride_width};
    for (int i = 0; i < 4; i++)
        if (sizes[i] < scale || sizes[i] % scale)
            return status_fail(CANVAS_ERR_USAGE, "vae tiling: tile and stride sizes must be positive multiples of %d "
                                                 "(got tile %dx%d, stride %dx%d)",
                               scale, t->tile_height, t->tile_width, t->stride_height, t->stride_width);
    if (t->stride_height > t->tile_height || t->stride_width > t->tile_width)
        return status_fail(CANVAS_ERR_USAGE, "vae tiling: the stride (%dx%d) must not exceed the tile (%dx%d)",
                           t->stride_height, t->stride_width, t->tile_height, t->tile_width);
    return CANVAS_OK;
}

/* Crop input[:, y0:y0+h, x0:x0+w] into crop, run the plain forward into out. */
static canvas_status run_tile(const tiled_run *r, const float *input, int y0, int x0, float *crop, tile *out)
{
    const int h = r->in_h - y0 < r->tile_in_h ? r->in_h - y0 : r->tile_in_h;
    const int w = r->in_w - x0 < r->tile_in_w ? r->in_w - x0 : r->tile_in_w;
    const op_window window = {.channels = r->in_channels, .height = h, .width = w,
                              .src_height = r->in_h, .src_width = r->in_w, .src_y = y0, .src_x = x0,
                              .dst_height = h, .dst_width = w};
    op_copy_window(r->host_be, &window, input, crop);
    const int scale = vae_scale_factor(&r->model->config);
    out->height = r->encode ? h / scale : h * scale;
    out->width = r->encode ? w / scale : w * scale;
    return r->encode ? vae_encode(r->model, r->be, crop, h, w, out->data)
                     : vae_decode_raw(r->model, r->be, crop, h, w, out->data);
}

/* Copy the tile's kept part (its first stride_out rows and columns) to the output. */
static void keep_part(const tiled_run *r, const tile *t, int out_y0, int out_x0, int clamp, float *output)
{
    int h = t->height < r->stride_out_h ? t->height : r->stride_out_h;
    int w = t->width < r->stride_out_w ? t->width : r->stride_out_w;
    if (out_y0 + h > r->out_h) h = r->out_h - out_y0;
    if (out_x0 + w > r->out_w) w = r->out_w - out_x0;
    const op_window window = {.channels = r->out_channels, .height = h, .width = w,
                              .src_height = t->height, .src_width = t->width,
                              .dst_height = r->out_h, .dst_width = r->out_w, .dst_y = out_y0, .dst_x = out_x0,
                              .clamp = clamp};
    op_copy_window(r->host_be, &window, t->data, output);
}

/* The three buffers of a tiled run: the input crop, two rows of tile outputs, their table. */
typedef struct tiled_buffers {
    size_t crop_bytes, store_bytes, table_bytes;
    int cols;
    size_t tile_floats;
} tiled_buffers;

static tiled_buffers buffers_of(const tiled_run *r)
{
    tiled_buffers b = {.cols = (r->in_w + r->stride_in_w - 1) / r->stride_in_w};
    b.tile_floats = (size_t)r->tile_out_h * r->tile_out_w * r->out_channels;
    b.crop_bytes = (size_t)r->tile_in_h * r->tile_in_w * r->in_channels * sizeof(float);
    b.store_bytes = 2 * (size_t)b.cols * b.tile_floats * sizeof(float);
    b.table_bytes = 2 * (size_t)b.cols * sizeof(tile);
    return b;
}

static canvas_status tiled(const tiled_run *r, const float *input, int clamp, float *output)
{
    const int rows = (r->in_h + r->stride_in_h - 1) / r->stride_in_h;
    const tiled_buffers b = buffers_of(r);
    const int cols = b.cols;
    const size_t tile_floats = b.tile_floats;
    float *crop = NULL, *store = NULL;
    tile *tiles = NULL, *above = NULL, *current = NULL;
    canvas_status st = mem_alloc((void **)&crop, b.crop_bytes, MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = mem_alloc((void **)&store, b.store_bytes, MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = mem_calloc((void **)&tiles, 2 * (size_t)cols, sizeof *tiles, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        above = tiles;
        current = tiles + cols;
        for (int j = 0; j < 2 * cols; j++) tiles[j].data = store + (size_t)j * tile_floats;
    }
    for (int i = 0; st == CANVAS_OK && i < rows; i++) {
        for (int j = 0; st == CANVAS_OK && j < cols; j++) {
            st = run_tile(r, input, i * r->stride_in_h, j * r->stride_in_w, crop, &current[j]);
            if (st != CANVAS_OK) break;
            tile *a = i > 0 ? &above[j] : NULL, *left = j > 0 ? &current[j - 1] : NULL, *b = &current[j];
            if (a)
                op_blend_seam(r->host_be, a->data, a->height, a->width, b->data, b->height, b->width,
                              r->out_channels, r->blend_h, 0);
            if (left) op_blend_seam(r->host_be, left->data, left->height, left->width, b->data, b->height, b->width,
                                    r->out_channels, r->blend_w, 1);
            keep_part(r, &current[j], i * r->stride_out_h, j * r->stride_out_w, clamp, output);
        }
        tile *swap = above;
        above = current;
        current = swap;
    }
    mem_free(tiles);
    mem_free(store);
    mem_free(crop);
    return st;
}

static canvas_status setup(tiled_run *r, vae_model *model, op_backend *be, const vae_tiling *t, int encode,
                           int height, int width)
{
    const vae_config *c = &model->config;
    const int scale = vae_scale_factor(c);
    TRY(check_tiling(t, scale));
    if (height < 1 || width < 1 || (encode && (height % scale || width % scale)))
        return status_fail(CANVAS_ERR_INPUT, "vae %s: size %dx%d is not a positive multiple of %d",
                           encode ? "encode" : "decode", height, width, encode ? scale : 1);
    *r = (tiled_run){.model = model, .be = be, .host_be = op_backend_on_host(be) ? be : NULL, .encode = encode,
                     .in_h = height, .in_w = width};
    r->in_channels = encode ? c->input_channels : c->z_dim;
    r->out_channels = encode ? c->z_dim : c->input_channels;
    r->out_h = encode ? height / scale : height * scale;
    r->out_w = encode ? width / scale : width * scale;
    /* tile sizes are given in pixels; decoding tiles the latent */
    const int div = encode ? 1 : scale;
    r->tile_in_h = t->tile_height / div;
    r->tile_in_w = t->tile_width / div;
    r->stride_in_h = t->stride_height / div;
    r->stride_in_w = t->stride_width / div;
    const int out_div = encode ? scale : 1;
    r->tile_out_h = t->tile_height / out_div;
    r->tile_out_w = t->tile_width / out_div;
    r->stride_out_h = t->stride_height / out_div;
    r->stride_out_w = t->stride_width / out_div;
    r->blend_h = r->tile_out_h - r->stride_out_h;
    r->blend_w = r->tile_out_w - r->stride_out_w;
    return CANVAS_OK;
}

size_t vae_tiled_bytes(const vae_model *model, const vae_tiling *tiling, int threads, int encode, int height,
                       int width)
{
    tiled_run r;
    if (setup(&r, (vae_model *)model, NULL, tiling, encode, height, width) != CANVAS_OK) {
        status_clear();
        return 0;
    }
    const tiled_buffers b = buffers_of(&r);
    /* the first tile is the largest: whole tile_in, or the input where it is smaller */
    const int h = r.in_h < r.tile_in_h ? r.in_h : r.tile_in_h, w = r.in_w < r.tile_in_w ? r.in_w : r.tile_in_w;
    return b.crop_bytes + b.store_bytes + b.table_bytes + vae_activation_bytes(model, threads, encode, h, w);
}

canvas_status vae_encode_tiled(vae_model *model, op_backend *be, const vae_tiling *tiling, const float *image,
                               int height, int width, float *latent)
{
    tiled_run r;
    TRY(setup(&r, model, be, tiling, 1, height, width));
    return tiled(&r, image, 0, latent);
}

canvas_status vae_decode_tiled(vae_model *model, op_backend *be, const vae_tiling *tiling, const float *latent,
                               int height, int width, float *image)
{
    tiled_run r;
    TRY(setup(&r, model, be, tiling, 0, height, width));
    return tiled(&r, latent, 1, image);
}

size_t vae_tiled_device_bytes(const vae_model *model, const op_backend *be, const vae_tiling *tiling, int encode,
                              int height, int width)
{
    tiled_run r;
    if (setup(&r, (vae_model *)model, NULL, tiling, encode, height, width) != CANVAS_OK) {
        status_clear();
        return 0;
    }
    /* crops, tile outputs and blends are host memory: on the device, one tile's pass at a time */
    const int h = r.in_h < r.tile_in_h ? r.in_h : r.tile_in_h, w = r.in_w < r.tile_in_w ? r.in_w : r.tile_in_w;
    return vae_device_bytes(model, be, encode, h, w);
}
