/* SPDX-License-Identifier: Apache-2.0 */
/* norms.c — LayerNorm and RMSNorm over the last dimension of a row-major matrix.
 *
 * Each row is reduced with eight f32 partial sums in a fixed order (two passes for
 * LayerNorm: mean, then the centred sum of squares, which keeps the variance accurate
 * when the mean is large). */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <math.h>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

static float row_sum(const float *x, int64_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + i));
        acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(x + i + 8));
    }
    float sum = simd_hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* sum of (x - center)^2 */
static float row_centred_squares(const float *x, int64_t n, float center)
{
    __m256 c = _mm256_set1_ps(center);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), c);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), c);
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    float sum = simd_hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += (x[i] - center) * (x[i] - center);
    return sum;
}

/* y = (x - shift) * scale * weight + bias, weight/bias optional. */
static void row_affine(const float *x, int64_t n, float shift, float scale, const float *weight, const float *bias,
                       float *y)
{
    __m256 vs = _mm256_set1_ps(shift), vk = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), vk);
        if (weight) t = _mm256_mul_ps(t, _mm256_loadu_ps(weight + i));
        if (bias) t = _mm256_add_ps(t, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(y + i, t);
    }
    for (; i < n; i++) {
        float t = (x[i] - shift) * scale;
        if (weight) t *= weight[i];
        if (bias) t += bias[i];
        y[i] = t;
    }
}

void op_layer_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, const float *bias,
                   float *y)
{
    if (dim <= 0) return;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float mean = row_sum(xr, dim) / (float)dim;
        float var = row_centred_squares(xr, dim, mean) / (float)dim;
        row_affine(xr, dim, mean, 1.0f / sqrtf(var + eps), weight, bias, y + r * dim);
    }
}

void op_rms_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight, float *y)
{
    if (dim <= 0) return;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float mean_square = row_centred_squares(xr, dim, 0.0f) / (float)dim;
        row_affine(xr, dim, 0.0f, 1.0f / sqrtf(mean_square + eps), weight, NULL, y + r * dim);
    }
}
