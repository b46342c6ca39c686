/* SPDX-License-Identifier: Apache-2.0 */
/* conv3d.c — op_conv2d: the VAE's (causal-3-D-at-one-frame) convolutions as banded
 * im2col + GEMM.
 *
 *   for each band of output rows (at most CONV_BAND_FLOATS of im2col):
 *       strip  <- the input rows the band reads, zero padded, upsampled and/or normed+SiLU
 *       col    <- [band pixels, k*k*Cin]: for each output pixel and each kernel row ky, the
 *                 k*Cin floats of the strip under it (contiguous: the column order is ky, kx, c)
 *       y band <- col · Wᵀ + bias (op_linear; into a temporary and added when accumulating)
 *
 * The strip and the col block are built by the thread pool, row by row; op_linear
 * splits the GEMM itself. Each output is a single dot product of length k*k*Cin summed
 * by op_linear in a fixed order, so results are identical for any thread count. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"

static int upsampled(int size, const conv2d_params *p) { return p->upsample ? 2 * size : size; }

int conv2d_out_height(const conv2d_params *p)
{
    int span = upsampled(p->height, p) + p->pad_top + p->pad_bottom - p->kernel;
    return span < 0 || p->stride < 1 ? 0 : span / p->stride + 1;
}

int conv2d_out_width(const conv2d_params *p)
{
    int span = upsampled(p->width, p) + p->pad_left + p->pad_right - p->kernel;
    return span < 0 || p->stride < 1 ? 0 : span / p->stride + 1;
}

void conv_pack_taps(const void *src, size_t element_size, int out, int in, int kt, int kh, int kw, int t_index,
                    void *dst)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (int o = 0; o < out; o++)
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < in; i++) {
                    /* source index of W[o][i][t_index][y][x] */
                    size_t from = ((((size_t)o * in + i) * kt + t_index) * kh + y) * kw + x;
                    size_t to = (((size_t)o * kh + y) * kw + x) * in + i;
                    memcpy(d + to * element_size, s + from * element_size, element_size);
                }
}

typedef struct band_job {
    const conv2d_params *p;
    const float *x;
    int in_w_up, in_h_up;      /* upsampled input size */
    /* the padded strip: rows [strip_row0, strip_row0 + strip_rows) of the padded input */
    float *strip;
    int strip_row0, strip_rows, strip_width;
    /* the im2col block of output rows [out_row0, out_row0 + rows) */
    float *col;
    int out_row0, rows, out_w;
} band_job;

static void strip_row(const band_job *job, int r)
{
    const conv2d_params *p = job->p;
    const int cin = p->in_channels;
    float *dst = job->strip + (size_t)r * job->strip_width * cin;
    int u = job->strip_row0 + r - p->pad_top; /* row of the upsampled input */
    if (u < 0 || u >= job->in_h_up) {
        memset(dst, 0, (size_t)job->strip_width * cin * sizeof(float));
        return;
    }
    const float *src_row = job->x + (size_t)(p->upsample ? u / 2 : u) * p->width * cin;
    for (int c = 0; c < job->strip_width; c++, dst += cin) {
        int v = c - p->pad_left;
        if (v < 0 || v >= job->in_w_up) {
            memset(dst, 0, (size_t)cin * sizeof(float));
            continue;
        }
        const float *src = src_row + (size_t)(p->upsample ? v / 2 : v) * cin;
        if (p->norm_gamma) op_channel_rms_norm_silu_pixel(src, cin, p->norm_gamma, dst);
        else memcpy(dst, src, (size_t)cin * sizeof(float));
    }
}

static void strip_task(void *ctx, int index, int n_tasks)
{
    const band_job *job = ctx;
    for (int r = job->strip_rows * index / n_tasks; r < job->strip_rows * (index + 1) / n_tasks; r++) strip_row(job, r);
}

static void col_task(void *ctx, int index, int n_tasks)
{
    const band_job *job = ctx;
    const conv2d_params *p = job->p;
    const int k = p->kernel, s = p->stride, cin = p->in_channels;
    const size_t run = (size_t)k * cin;              /* one kernel row under a pixel */
    const size_t width = (size_t)job->strip_width * cin;
    int64_t pixels = (int64_t)job->rows * job->out_w;
    for (int64_t i = pixels * index / n_tasks; i < pixels * (index + 1) / n_tasks; i++) {
        int oy = (int)(i / job->out_w), ox = (int)(i % job->out_w);
        float *dst = job->col + (size_t)i * k * run;
        const float *src = job->strip + (size_t)oy * s * width + (size_t)ox * s * cin;
        for (int ky = 0; ky < k; ky++) memcpy(dst + ky * run, src + ky * width, run * sizeof(float));
    }
}

/* Small strips and blocks run on the calling thread: waking the pool costs more. */
static void run_tasks(thread_pool *pool, void (*task)(void *, int, int), void *ctx, size_t floats)
{
    int tasks = floats < (1u << 15) ? 1 : thread_pool_size(pool);
    if (tasks <= 1) task(ctx, 0, 1);
    else thread_pool_run(pool, task, ctx, tasks);
}

static canvas_status check_params(const conv2d_params *p, const weight_view *w, int out_h, int out_w)
{
    if (p->height < 1 || p->width < 1 || p->in_channels < 1 || p->out_channels < 1 || p->kernel < 1 ||
        p->stride < 1 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return status_fail(CANVAS_ERR_USAGE, "op_conv2d: bad geometry (%dx%dx%d -> %d, kernel %d, stride %d)",
                           p->height, p->width, p->in_channels, p->out_channels, p->kernel, p->stride);
    if (out_h < 1 || out_w < 1)
        return status_fail(CANVAS_ERR_USAGE, "op_conv2d: a %dx%d kernel does not fit a %dx%d input", p->kernel,
                           p->kernel, p->height, p->width);
    if (w->out_features != p->out_channels || w->in_features != (int64_t)p->kernel * p->kernel * p->in_channels)
        return status_fail(CANVAS_ERR_USAGE, "op_conv2d: weight is [%lld, %lld], expected [%d, %d]",
                           (long long)w->out_features, (long long)w->in_features, p->out_channels,
                           p->kernel * p->kernel * p->in_channels);
    return CANVAS_OK;
}

/* A 1x1, stride 1, unpadded, plain convolution is one GEMM over the image as it lies. */
static int is_pointwise(const conv2d_params *p)
{
    return p->kernel == 1 && p->stride == 1 && !p->upsample && !p->norm_gamma && !p->pad_top && !p->pad_bottom &&
           !p->pad_left && !p->pad_right;
}

/* The band's GEMM: straight into y, or through `scratch` and added. */
static canvas_status band_gemm(op_backend *be, const conv2d_params *p, const float *rows, int64_t m,
                               const weight_view *w, const float *bias, float *y, float *scratch)
{
    if (!p->accumulate) return op_linear(be, rows, m, w, bias, y);
    TRY(op_linear(be, rows, m, w, bias, scratch));
    op_add_inplace(be, y, scratch, m * p->out_channels);
    return CANVAS_OK;
}

/* How op_conv2d cuts the work: rows per band and the three buffers' sizes in floats. */
typedef struct conv_plan {
    int out_h, out_w, band;
    size_t strip_floats, col_floats, scratch_floats;
} conv_plan;

static conv_plan plan_conv(const conv2d_params *p)
{
    conv_plan plan = {.out_h = conv2d_out_height(p), .out_w = conv2d_out_width(p)};
    if (plan.out_h < 1 || plan.out_w < 1 || p->kernel < 1 || p->in_channels < 1) return plan;
    const size_t per_row = (size_t)plan.out_w * p->kernel * p->kernel * p->in_channels;
    size_t band = (p->band_floats ? p->band_floats : CONV_BAND_FLOATS) / per_row;
    if (band < 1) band = 1;
    if (band > (size_t)plan.out_h || is_pointwise(p)) band = (size_t)plan.out_h;
    plan.band = (int)band;
    if (p->accumulate) plan.scratch_floats = band * plan.out_w * p->out_channels;
    if (is_pointwise(p)) return plan; /* no im2col: the band only sizes the accumulate scratch */
    const size_t strip_width = (size_t)upsampled(p->width, p) + p->pad_left + p->pad_right;
    plan.strip_floats = ((band - 1) * p->stride + p->kernel) * strip_width * p->in_channels;
    plan.col_floats = band * per_row;
    return plan;
}

size_t op_conv2d_work_bytes(const conv2d_params *p, int threads)
{
    conv_plan plan = plan_conv(p);
    if (plan.out_h < 1 || plan.out_w < 1) return 0;
    /* the first band is the largest: its GEMM packs the most rows */
    const int64_t rows = (int64_t)plan.band * plan.out_w, k = (int64_t)p->kernel * p->kernel * p->in_channels;
    return (plan.strip_floats + plan.col_floats + plan.scratch_floats) * sizeof(float) +
           op_linear_workspace_bytes(rows, p->out_channels, k, threads);
}

canvas_status op_conv2d(op_backend *be, const conv2d_params *p, const float *x, const weight_view *weight,
                        const float *bias, float *y)
{
    thread_pool *pool = op_backend_pool(be);
    const conv_plan plan = plan_conv(p);
    TRY(check_params(p, weight, plan.out_h, plan.out_w));
    const int out_h = plan.out_h, out_w = plan.out_w, band = plan.band;
    const size_t per_row_out = (size_t)out_w * p->out_channels;

    float *scratch = NULL, *strip = NULL, *col = NULL;
    canvas_status st = CANVAS_OK;
    if (plan.scratch_floats) st = mem_alloc((void **)&scratch, plan.scratch_floats * sizeof(float), MEM_ACTIVATIONS);
    if (is_pointwise(p)) {
        if (st == CANVAS_OK) st = band_gemm(be, p, x, (int64_t)out_h * out_w, weight, bias, y, scratch);
        mem_free(scratch);
        return st;
    }

    band_job job = {.p = p, .x = x, .in_w_up = upsampled(p->width, p), .in_h_up = upsampled(p->height, p),
                    .out_w = out_w};
    job.strip_width = job.in_w_up + p->pad_left + p->pad_right;
    if (st == CANVAS_OK) st = mem_alloc((void **)&strip, plan.strip_floats * sizeof(float), MEM_ACTIVATIONS);
    if (st == CANVAS_OK) st = mem_alloc((void **)&col, plan.col_floats * sizeof(float), MEM_ACTIVATIONS);
    job.strip = strip;
    job.col = col;
    const size_t col_per_row = (size_t)out_w * p->kernel * p->kernel * p->in_channels;
    for (int row0 = 0; st == CANVAS_OK && row0 < out_h; row0 += band) {
        job.out_row0 = row0;
        job.rows = out_h - row0 < band ? out_h - row0 : band;
        job.strip_row0 = row0 * p->stride;
        job.strip_rows = (job.rows - 1) * p->stride + p->kernel;
        run_tasks(pool, strip_task, &job, (size_t)job.strip_rows * job.strip_width * p->in_channels);
        run_tasks(pool, col_task, &job, (size_t)job.rows * col_per_row);
        st = band_gemm(be, p, col, (int64_t)job.rows * out_w, weight, bias, y + (size_t)row0 * per_row_out,
                       scratch);
    }
    mem_free(col);
    mem_free(strip);
    mem_free(scratch);
    return st;
}
