/* SPDX-License-Identifier: Apache-2.0 */
/* ops_conv.h — the convolution kernels of the VAE (CPU implementations in
 * src/ops/cpu/conv3d.c and src/ops/cpu/vae_norm.c).
 *
 * Images are f32 and channels-last: an [height, width, channels] array, one pixel's
 * channels contiguous, the same "token-major" layout as the rest of ops.h (a pixel is a
 * token). The VAE's causal 3-D convolutions reduce to 2-D ones for a single frame: the
 * causal padding puts two zero frames in front of the frame, so only the last temporal
 * tap of a kt=3 kernel ever meets data (spec/qwen-image-vae-textenc.md A.2.1).
 * conv_pack_taps slices that tap out of a Conv3d weight once, at load.
 *
 * A convolution runs as a GEMM (op_linear) over an im2col matrix built one band of
 * output rows at a time, so its working memory is bounded (CONV_BAND_FLOATS) whatever
 * the image size. Per band, the input rows the band needs are first gathered into a
 * padded strip — zero padding, the nearest 2x upsample and the per-pixel RMS norm +
 * SiLU of the VAE happen there, so none of those is ever materialised as a full image. */
#ifndef CANVAS_OPS_CONV_H
#define CANVAS_OPS_CONV_H

#include <stdint.h>

#include "canvas.h"
#include "ops/ops.h"
#include "ops/threadpool.h"
#include "tensor/dtype.h"

/* Upper bound of one band's im2col block, in floats (16 MiB). A band is at least one
 * output row, so a single row wider than this takes what it needs. */
#define CONV_BAND_FLOATS (4u << 20)

/* The norm of the VAE ("QwenImageRMS_norm", channel-first, no bias): per pixel,
 * y_c = x_c / max(||x||_2, 1e-12) * sqrt(C) * gamma_c. No eps inside the root. */
#define CONV_NORM_EPS 1e-12f

typedef struct conv2d_params {
    int height, width;              /* input image, before upsampling */
    int in_channels, out_channels;
    int kernel;                     /* square kernel side: 1 or 3 (any odd or even size works) */
    int stride;                     /* 1 or 2 */
    int pad_top, pad_bottom, pad_left, pad_right; /* zero padding around the (upsampled) input */
    int upsample;                   /* 1: nearest 2x (out[y][x] = in[y/2][x/2]) before padding */
    const float *norm_gamma;        /* [in_channels] or NULL: RMS norm (above) then SiLU on every
                                       input pixel before padding (padding stays zero) */
    int accumulate;                 /* 1: y += conv(x) (a residual), 0: y = conv(x) */
    size_t band_floats;             /* im2col budget per band; 0: CONV_BAND_FLOATS (tests use less) */
} conv2d_params;

/* Output size: ((upsampled size + pads - kernel) / stride) + 1; 0 when the kernel does
 * not fit. */
int conv2d_out_height(const conv2d_params *p);
int conv2d_out_width(const conv2d_params *p);

/* y[out_h, out_w, out_channels] (=|+=) conv(x[height, width, in_channels]).
 * weight: [out_channels, kernel * kernel * in_channels] in (ky, kx, c) column order, as
 * conv_pack_taps writes it (F32, F16 or BF16); bias: [out_channels] f32 or NULL.
 * y must not overlap x. Working memory: one band (im2col block + padded input strip,
 * + the band's output when accumulating), MEM_ACTIVATIONS, freed before returning.
 * Errors: CANVAS_ERR_USAGE for a bad geometry or a weight of the wrong size,
 * CANVAS_ERR_OUT_OF_MEMORY, or what op_linear returns. */
canvas_status op_conv2d(op_backend *be, const conv2d_params *p, const float *x, const weight_view *weight,
                        const float *bias, float *y);

/* The bytes op_conv2d holds while it runs with `threads` workers (op_backend_workers), its
 * peak, exact: the band's buffers (MEM_ACTIVATIONS) and, while the band's GEMM runs, its
 * packing scratch (op_linear_workspace_bytes, MEM_SCRATCH). */
size_t op_conv2d_work_bytes(const conv2d_params *p, int threads);

/* The device memory op_conv2d on `be` needs besides its operands (ops_backend_impl.h's
 * conv2d_scratch_bytes): 0 on the CPU backend (its band is op_conv2d_work_bytes of host
 * memory) and on a table without that entry. A pure function of the geometry and the
 * weight's shape and format: the VAE lends one block of the largest its pass needs
 * (op_backend_lend_scratch), and the planner counts the same bytes. */
size_t op_backend_conv2d_scratch_bytes(const op_backend *be, const conv2d_params *p, const weight_view *w);

/* Repack one temporal tap of a convolution weight stored as [out, in, kt, kh, kw]
 * (PyTorch Conv3d; a Conv2d weight is kt = 1) into [out, kh, kw, in], the column order
 * of op_conv2d. `element_size` bytes per element: the dtype is kept, so a BF16 file
 * stays BF16 in memory. dst holds out*kh*kw*in elements. */
void conv_pack_taps(const void *src, size_t element_size, int out, int in, int kt, int kh, int kw, int t_index,
                    void *dst);

/* The VAE norm above over the channels of every pixel: x, y [pixels, channels]
 * (y may equal x). gamma: [channels]. */
void op_channel_rms_norm(const float *x, int64_t pixels, int channels, const float *gamma, float *y);

/* op_channel_rms_norm on a backend: on a table backend (ops_backend_impl.h) its entry, with
 * x, gamma and y its memory; on the CPU op_channel_rms_norm itself. */
void op_channel_rms_norm_rows(op_backend *be, const float *x, int64_t pixels, int channels, const float *gamma,
                              float *y);

/* Same, followed by SiLU, for one pixel (the per-pixel transform of op_conv2d). */
void op_channel_rms_norm_silu_pixel(const float *x, int channels, const float *gamma, float *y);

/* y[i] += x[i] over n floats, spread over the backend's workers. */
void op_add_inplace(op_backend *be, float *y, const float *x, int64_t n);

#endif
