/* SPDX-License-Identifier: Apache-2.0 */
/* vae_norm.c — the VAE's per-pixel channel norm (QwenImageRMS_norm), optionally fused with
 * SiLU, and a threaded in-place add for residuals.
 *
 * PyTorch computes F.normalize(x, dim=1) * sqrt(C) * gamma: x divided by max(||x||, 1e-12),
 * then the two products in that order; we keep that order. The sum of squares uses eight
 * f32 partial sums in a fixed order, so results do not depend on the thread count. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <math.h>

#include "ops/cpu/simd.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"

static float sum_of_squares(const float *x, int n)
{
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float sum = simd_hsum(acc);
    for (; i < n; i++) sum += x[i] * x[i];
    return sum;
}

/* y_c = x_c / max(||x||, eps) * sqrt(C) * gamma_c for one pixel. */
static void norm_pixel(const float *x, int channels, const float *gamma, float *y)
{
    float norm = sqrtf(sum_of_squares(x, channels));
    if (norm < CONV_NORM_EPS) norm = CONV_NORM_EPS;
    const float scale = sqrtf((float)channels);
    for (int c = 0; c < channels; c++) {
        float normalized = x[c] / norm;
        float scaled = normalized * scale;
        y[c] = scaled * gamma[c];
    }
}

void op_channel_rms_norm(const float *x, int64_t pixels, int channels, const float *gamma, float *y)
{
    for (int64_t p = 0; p < pixels; p++) norm_pixel(x + p * channels, channels, gamma, y + p * channels);
}

void op_channel_rms_norm_silu_pixel(const float *x, int channels, const float *gamma, float *y)
{
    norm_pixel(x, channels, gamma, y);
    for (int c = 0; c < channels; c++) y[c] = y[c] / (1.0f + expf(-y[c]));
}

typedef struct add_job {
    float *y;
    const float *x;
    int64_t n;
} add_job;

static void add_task(void *ctx, int index, int n_tasks)
{
    const add_job *job = ctx;
    int64_t begin = job->n * index / n_tasks, end = job->n * (index + 1) / n_tasks;
    for (int64_t i = begin; i < end; i++) job->y[i] += job->x[i];
}

void op_add_inplace(op_backend *be, float *y, const float *x, int64_t n)
{
    thread_pool *pool = op_backend_pool(be);
    add_job job = {y, x, n};
    /* below ~64k floats the wake-up costs more than the add */
    int tasks = n < (1 << 16) ? 1 : thread_pool_size(pool);
    if (tasks <= 1) {
        add_task(&job, 0, 1);
        return;
    }
    thread_pool_run(pool, add_task, &job, tasks);
}
