/* SPDX-License-Identifier: Apache-2.0 */
/* pil_resize.h — 8-bit image resampling bit-exact to Pillow's Image.resize (reducing_gap
 * None), the resize that diffusers' VaeImageProcessor (LANCZOS) and transformers'
 * Qwen2VLImageProcessor (BICUBIC) apply to PIL images (spec A.7, B.6).
 *
 * Pillow resamples separably, each pass in fixed point with 8-bit values in between:
 *   scale   = in / out;  filterscale = max(scale, 1)  (the kernel widens when shrinking:
 *             a downscale averages every input pixel it covers)
 *   support = filter support · filterscale  (bilinear 1, bicubic 2, lanczos 3)
 *   output x: centre = (x + 0.5) · scale; taps xmin = (int)(centre - support + 0.5) clipped
 *             to 0, xmax = (int)(centre + support + 0.5) clipped to in; weight
 *             k(((xmin + j) - centre + 0.5) / filterscale) in double, normalised to sum 1,
 *             then to fixed point: (int)round-half-away(w · 2^22)
 *   pixel   = clip8((2^21 + Σ w_j · in_j) >> 22)
 *   kernels bilinear: triangle; bicubic: Keys with a = -0.5; lanczos: sinc(t)·sinc(t/3), |t| < 3
 * The horizontal pass runs first, over only the input rows the vertical pass will read;
 * an axis whose size does not change is not filtered (so the identity resize is a copy). */
#ifndef CANVAS_PIPELINE_PIL_RESIZE_H
#define CANVAS_PIPELINE_PIL_RESIZE_H

#include <stdint.h>

#include "canvas.h"

typedef enum pil_filter { PIL_BILINEAR, PIL_BICUBIC, PIL_LANCZOS } pil_filter;

/* Resize interleaved uint8 pixels [in_h][in_w][channels] (channels 1..4, each resampled
 * independently as Pillow does for L, RGB and RGBA) to [out_h][out_w][channels] in `out`,
 * which the caller provides and which must not overlap `in`. Allocates coefficient tables
 * and one intermediate image (MEM_SCRATCH; about out_w · in_h · channels bytes) after
 * checking sizes: CANVAS_ERR_USAGE for a side outside 1..2^20, channels outside 1..4 or an
 * unknown filter. Pillow's Image.resize premultiplies RGBA by alpha first; this function
 * does not (every channel on its own, as Pillow's core resamples RGB and RGBX). */
canvas_status pil_resize(const uint8_t *in, int in_w, int in_h, int channels, uint8_t *out, int out_w, int out_h,
                         pil_filter f);

#endif
