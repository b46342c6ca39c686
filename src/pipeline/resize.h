/* resize.h — Lanczos-3 image resampling (the filter diffusers' image processor asks PIL
 * for: Image.LANCZOS, spec A.7).
 *
 * Separable: rows first (width), then columns (height). For each output coordinate x,
 * with scale = in / out and support = 3 · max(scale, 1) (the kernel is widened when
 * shrinking, so a downscale averages every input pixel it covers: antialiasing):
 *   centre = (x + 0.5) · scale
 *   taps   j = floor(centre - support + 0.5) .. floor(centre + support + 0.5) - 1, clipped to the image
 *   weight w_j = L((j + 0.5 - centre) / max(scale, 1)),  L(t) = sinc(t) · sinc(t / 3) for |t| < 3, else 0
 *   out    = Σ w_j · in_j / Σ w_j            (weights normalised, so a constant stays constant)
 * The arithmetic is float with double weights; PIL works in fixed point with 8-bit values
 * between the passes, so results differ from PIL by about one 8-bit level. An axis whose size
 * does not change is copied, not filtered (so the identity resize is exact). */
#ifndef CANVAS_PIPELINE_RESIZE_H
#define CANVAS_PIPELINE_RESIZE_H

#include "canvas.h"

/* Resize interleaved float pixels [in_h][in_w][channels] to [out_h][out_w][channels].
 * Values are not clamped (Lanczos overshoots at edges; callers clamp). Allocates its
 * weight tables and one intermediate image (MEM_SCRATCH); CANVAS_ERR_USAGE for a size < 1. */
canvas_status resize_lanczos3(const float *in, int in_w, int in_h, int channels, float *out, int out_w, int out_h);

/* The Lanczos-3 kernel L(t) above. */
double resize_lanczos3_kernel(double t);

#endif
