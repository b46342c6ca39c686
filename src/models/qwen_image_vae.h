/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_vae.h — AutoencoderKLQwenImage (the Wan-2.1-style causal 3-D VAE of
 * Qwen-Image and the Qwen-Image-Edit family) for single images, config-driven (any
 * base_dim, dim_mult, num_res_blocks, z_dim, input_channels).
 *
 * Three things are kept apart, as in the transformer (qwen_image_dit.h):
 *   vae_config      what never changes (io/config.h, parsed from vae/config.json)
 *   vae_encoder / vae_decoder
 *                   the weights: 3x3 convolution kernels repacked at load into the
 *                   [out, ky, kx, in] order op_conv2d reads (ops/ops_conv.h), only their
 *                   last temporal tap (the one a single frame meets, spec A.2.1), in their
 *                   stored type (F32, F16 or BF16), plus biases and norm gammas as f32:
 *                   one MEM_WEIGHTS block per part. 1x1 convolutions (shortcuts, quant
 *                   convs, attention) are used where they lie in the mmapped file. The
 *                   time_conv weights (a video feature) are never read.
 *   activations     MEM_ACTIVATIONS blocks allocated per layer and freed as soon as the
 *                   next layer has consumed them (see vae_activation_bytes).
 *
 * Layout: the public entry points take and return images and latents channel-first, as
 * diffusers does ([C, H, W] for the one frame of [1, C, 1, H, W]); inside, activations
 * are channels-last [H, W, C].
 *
 * Encode (spec A.4): conv_in, down_blocks (residual blocks and stride-2 downsamplers),
 * mid block (residual, single-head attention over the pixels, residual), norm_out + SiLU,
 * conv_out (2·z_dim channels: mean ‖ logvar), quant_conv; the result is the posterior's
 * mode, the mean, BEFORE the latents_mean/std normalisation (vae_normalize_latent).
 * Decode (spec A.6): post_quant_conv, conv_in, mid block, up_blocks (residual blocks,
 * nearest-2x + 3x3 conv upsamplers), norm_out + SiLU, conv_out, clamp to [-1, 1]. */
#ifndef CANVAS_MODELS_QWEN_IMAGE_VAE_H
#define CANVAS_MODELS_QWEN_IMAGE_VAE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "mem/mem_device.h"
#include "ops/ops.h"
#include "ops/threadpool.h"

/* A convolution ready for op_conv2d. kernel 0 marks an absent one (no shortcut). */
typedef struct vae_conv {
    weight_view weight;          /* [out, kernel² x in], columns in (ky, kx, in) order */
    const float *bias;           /* [out] */
    int kernel, in_channels, out_channels;
} vae_conv;

/* QwenImageResidualBlock: x + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), the shortcut a
 * 1x1 conv of the raw input when the widths differ. */
typedef struct vae_residual {
    const float *norm1;          /* norm1.gamma [in]  */
    vae_conv conv1;              /* 3x3, in -> out    */
    const float *norm2;          /* norm2.gamma [out] */
    vae_conv conv2;              /* 3x3, out -> out   */
    vae_conv shortcut;           /* 1x1, in -> out; kernel 0 when in == out */
} vae_residual;

/* QwenImageAttentionBlock: one head as wide as the channels, over the pixels of the frame. */
typedef struct vae_attention {
    int channels;                /* C */
    const float *norm;           /* norm.gamma [C] */
    weight_view to_q, to_k, to_v;/* rows [0,C), [C,2C), [2C,3C) of to_qkv.weight [3C, C] */
    const float *q_bias, *k_bias, *v_bias;
    weight_view proj;            /* proj.weight [C, C] */
    const float *proj_bias;
} vae_attention;

typedef struct vae_mid {
    vae_residual res0;
    vae_attention attn;
    vae_residual res1;
} vae_mid;

/* One entry of encoder.down_blocks (a flat list): a residual block or a downsampler. */
typedef struct vae_down_block {
    int is_downsample;
    vae_residual res;
    vae_conv downsample;         /* resample.1: 3x3, stride 2, zero pad right and bottom */
} vae_down_block;

typedef struct vae_up_block {
    int n_res;                   /* num_res_blocks + 1 */
    vae_residual *res;
    vae_conv upsample;           /* resample.1 after nearest 2x: 3x3, C -> C/2; kernel 0 in the last block */
} vae_up_block;

typedef struct vae_encoder {
    vae_conv conv_in;            /* 3x3, input_channels -> base_dim */
    int n_down;
    vae_down_block *down;
    vae_mid mid;
    const float *norm_out;
    vae_conv conv_out;           /* 3x3 -> 2 z_dim */
    vae_conv quant_conv;         /* 1x1, its first z_dim rows only: the mean */
    void *block;                 /* MEM_WEIGHTS: packed kernels and f32 vectors */
} vae_encoder;

typedef struct vae_decoder {
    vae_conv post_quant_conv;    /* 1x1, z_dim -> z_dim */
    vae_conv conv_in;            /* 3x3, z_dim -> top width */
    vae_mid mid;
    int n_up;
    vae_up_block *up;
    const float *norm_out;
    vae_conv conv_out;           /* 3x3 -> input_channels */
    vae_residual *residuals;     /* storage of every up block's res[] */
    void *block;                 /* MEM_WEIGHTS */
} vae_decoder;

typedef struct vae_model {
    vae_config config;
    char *component_dir;         /* e.g. ".../vae" */
    weight_set *files;           /* the mmapped safetensors; 1x1 views point into them */
    vae_encoder encoder;
    vae_decoder decoder;
    size_t weight_bytes;         /* MEM_WEIGHTS held by the two parts */
    mem_device *device;          /* NULL: the weights and activations are host memory */
    void *device_block;          /* vae_place_on_device: every weight, MEM_WEIGHTS of `device` */
    size_t device_bytes;
} vae_model;

/* Load a VAE component folder: vae_config_load(config.json), weights_open, arch_check
 * against arch_vae, then pack and wire. A regular file instead of a folder is one weights
 * file (io/weights_file.h; original names renamed) whose config is read from its tensors. Errors: CANVAS_ERR_INPUT (bad or missing config,
 * file or tensor, named), CANVAS_ERR_UNSUPPORTED (a weight type other than F32, F16,
 * BF16), CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status vae_load(const char *component_dir, vae_model **out);
void vae_free(vae_model *model);

/* Copy every weight of a loaded model into one MEM_WEIGHTS block of `device` and compute
 * there from then on: each forward allocates its activations on `device` and moves its
 * input in and its output out with mem_copy (the caller's image and latent stay host
 * memory), so `be` must be a backend that computes on that device (a table backend for a
 * device the CPU cannot address; the CPU backend for an addressable one). The host blocks are
 * freed. On failure the model is left on the host, unchanged. CANVAS_ERR_USAGE when it was
 * placed already; CANVAS_ERR_OUT_OF_MEMORY; a copy's failure. vae_free frees the block. */
canvas_status vae_place_on_device(vae_model *model, mem_device *device);

/* The bytes vae_place_on_device takes on a device (its one block: every weight 64-byte
 * aligned), whether or not the model is placed. */
size_t vae_device_weight_bytes(const vae_model *model);

/* The weights back in host memory from the device vae_place_on_device put them on: one
 * MEM_WEIGHTS host block (1x1 kernels included: they are copies now, not the mapping),
 * copied with mem_copy, the device block freed; the model computes on the CPU backend again,
 * with the same bytes (so the same results). Nothing to do for a model on the host. On
 * failure (CANVAS_ERR_OUT_OF_MEMORY, a copy's failure) the model stays on the device, whole. */
canvas_status vae_leave_device(vae_model *model);

/* Encode one image: image [input_channels, height, width] in [-1, 1] (height and width
 * multiples of vae_scale_factor) -> latent [z_dim, height/8, width/8], the posterior mean
 * before normalisation. be (the op backend) may be NULL: the CPU, one thread. */
canvas_status vae_encode(vae_model *model, op_backend *be, const float *image, int height, int width,
                         float *latent);

/* Decode one latent [z_dim, h, w] (de-normalised) -> image [input_channels, 8h, 8w],
 * clamped to [-1, 1]. */
canvas_status vae_decode(vae_model *model, op_backend *be, const float *latent, int height, int width,
                         float *image);
/* The same without the clamp (what the tiles of vae_decode_tiled are blended from). */
canvas_status vae_decode_raw(vae_model *model, op_backend *be, const float *latent, int height, int width,
                             float *image);

/* Peak host bytes (MEM_ACTIVATIONS, and the MEM_SCRATCH packing of the convolutions' GEMMs)
 * of one vae_encode (encode = 1) of a height x width image or
 * one vae_decode (encode = 0) of a height x width latent with `threads` workers
 * (op_backend_workers), exact: the same walk over the layers as the forward, counting
 * instead of allocating, op_conv2d's bands and op_attention's tiles included. About two
 * activations of the widest full-resolution stage (three where a shortcut changes the
 * width) plus one convolution band: 785 MiB at 1024x1024 with the real VAE (docs/vae.md).
 * A model placed on a device (vae_place_on_device) counts there, with the planar copy of the
 * input and of the output beside the first and last activation; the convolutions' and
 * attention's working memory is still the CPU backend's count (a table backend's scratch:
 * vae_device_bytes). */
size_t vae_activation_bytes(const vae_model *model, int threads, int encode, int height, int width);

/* The device peak of one vae_encode / vae_decode (sizes as vae_activation_bytes takes them)
 * with the model on a device that `be` computes on, weights apart (vae_device_weight_bytes),
 * exact, whether or not the model is placed yet: the activations there, the planar copies of
 * the input and output, and the ops' working memory: on a table backend (the CUDA one, or
 * its sizes-only twin op_backend_cuda_sizes) the one scratch block the pass lends it, the
 * largest op_backend_conv2d_scratch_bytes / op_backend_linear_scratch_bytes of its ops; on
 * the CPU backend (an addressable device; NULL: one worker) its bands and attention tiles. */
size_t vae_device_bytes(const vae_model *model, const op_backend *be, int encode, int height, int width);

/* Tiled encode/decode (spec A.10, the algorithm of diffusers' tiled_encode/decode): the
 * image is cut into tiles of tile_* pixels every stride_* pixels (tiles at the right and
 * bottom edges are smaller), each tile runs through the plain encoder/decoder, and the
 * overlaps are blended linearly, top neighbour first, then left, in row-major order,
 * each on the already blended neighbour. Results differ from the untiled ones (each tile
 * has its own attention and its own borders), as they do in diffusers. Memory is that of
 * one tile plus two rows of tile outputs. Sizes are in pixels, multiples of the scale
 * factor, stride <= tile. */
typedef struct vae_tiling {
    int tile_height, tile_width;       /* 256, 256 (diffusers tile_sample_min_*) */
    int stride_height, stride_width;   /* 192, 192 (diffusers tile_sample_stride_*) */
} vae_tiling;

void vae_tiling_default(vae_tiling *tiling);
/* 1 when an image of that size needs more than one tile (diffusers' trigger: larger than a
 * tile in either direction). */
int vae_tiling_needed(const vae_tiling *tiling, int image_height, int image_width);

/* Same contracts as vae_encode / vae_decode (image sizes in pixels, latent sizes in
 * latent pixels). vae_decode_tiled clamps the blended result to [-1, 1]; diffusers'
 * tiled_decode leaves that to the image post-processing, which clamps to the same range. */
canvas_status vae_encode_tiled(vae_model *model, op_backend *be, const vae_tiling *tiling, const float *image,
                               int height, int width, float *latent);
canvas_status vae_decode_tiled(vae_model *model, op_backend *be, const vae_tiling *tiling, const float *latent,
                               int height, int width, float *image);
/* The host bytes one tiled pass holds at its peak with `threads` workers, exact (sizes as
 * vae_encode_tiled / vae_decode_tiled take them): the input crop, two rows of tile outputs
 * and their table, and the largest tile's own pass (vae_activation_bytes). 0 for a tiling
 * or size those refuse. */
size_t vae_tiled_bytes(const vae_model *model, const vae_tiling *tiling, int threads, int encode, int height,
                       int width);
/* The device peak of one tiled pass on a device `be` computes on (weights apart): the
 * largest tile's vae_device_bytes (crops and blends stay host memory). 0 as vae_tiled_bytes. */
size_t vae_tiled_device_bytes(const vae_model *model, const op_backend *be, const vae_tiling *tiling, int encode,
                              int height, int width);

/* Latent normalisation around the transformer (transformer spec §4.3 / §4.8), in place on
 * [z_dim, count] values: normalize z = (z - mean_c) / std_c; denormalize z = z / (1/std_c)
 * + mean_c, the expressions of the pipeline in float32. */
void vae_normalize_latent(const vae_config *config, float *latent, int64_t count);
void vae_denormalize_latent(const vae_config *config, float *latent, int64_t count);

#endif
