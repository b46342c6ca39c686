/* resize.c — separable Lanczos-3 resampling (contract in resize.h). */
#include "pipeline/resize.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"

#define LANCZOS_LOBES 3.0

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    const double pi = 3.14159265358979323846;
    return sin(pi * x) / (pi * x);
}

double resize_lanczos3_kernel(double t)
{
    if (t <= -LANCZOS_LOBES || t >= LANCZOS_LOBES) return 0.0;
    return sinc(t) * sinc(t / LANCZOS_LOBES);
}

/* The taps of one axis: for output i, inputs first[i] .. first[i] + count[i] - 1 with
 * weights weights[i * width + k], normalised to sum 1. */
typedef struct axis_taps {
    int width;          /* most taps of any output */
    int *first, *count;
    float *weights;
} axis_taps;

static void axis_free(axis_taps *a)
{
    mem_free(a->first);
    mem_free(a->count);
    mem_free(a->weights);
}

static canvas_status axis_build(int in_size, int out_size, axis_taps *a)
{
    memset(a, 0, sizeof *a);
    const double scale = (double)in_size / out_size;
    const double stretch = scale > 1.0 ? scale : 1.0;
    const double support = LANCZOS_LOBES * stretch;
    a->width = (int)ceil(support) * 2 + 1;
    canvas_status st = mem_alloc((void **)&a->first, (size_t)out_size * sizeof(int), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&a->count, (size_t)out_size * sizeof(int), MEM_SCRATCH);
    if (st == CANVAS_OK)
        st = mem_alloc((void **)&a->weights, (size_t)out_size * (size_t)a->width * sizeof(float), MEM_SCRATCH);
    if (st != CANVAS_OK) {
        axis_free(a);
        return st;
    }
    for (int i = 0; i < out_size; i++) {
        double centre = (i + 0.5) * scale;
        int lo = (int)floor(centre - support + 0.5), hi = (int)floor(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (hi - lo > a->width) hi = lo + a->width;
        const int n = hi - lo;
        double sum = 0;
        for (int k = 0; k < n; k++) sum += resize_lanczos3_kernel((lo + k + 0.5 - centre) / stretch);
        /* normalised in double, rounded once */
        float *row = a->weights + (size_t)i * a->width;
        for (int k = 0; k < n; k++)
            row[k] = sum != 0 ? (float)(resize_lanczos3_kernel((lo + k + 0.5 - centre) / stretch) / sum) : 0.0f;
        a->first[i] = lo;
        a->count[i] = n;
    }
    return CANVAS_OK;
}

/* Filter along x: in [rows][in_w][ch] -> out [rows][out_w][ch]. */
static void filter_rows(const float *in, int in_w, int rows, int ch, const axis_taps *a, float *out, int out_w)
{
    for (int y = 0; y < rows; y++) {
        const float *src = in + (size_t)y * in_w * ch;
        float *dst = out + (size_t)y * out_w * ch;
        for (int x = 0; x < out_w; x++) {
            const float *w = a->weights + (size_t)x * a->width;
            for (int c = 0; c < ch; c++) {
                float acc = 0;
                for (int k = 0; k < a->count[x]; k++) acc += w[k] * src[(size_t)(a->first[x] + k) * ch + c];
                dst[(size_t)x * ch + c] = acc;
            }
        }
    }
}

/* Filter along y: in [in_h][cols·ch] -> out [out_h][cols·ch]. */
static void filter_columns(const float *in, int row_values, const axis_taps *a, float *out, int out_h)
{
    for (int y = 0; y < out_h; y++) {
        const float *w = a->weights + (size_t)y * a->width;
        float *dst = out + (size_t)y * row_values;
        for (int v = 0; v < row_values; v++) dst[v] = 0;
        for (int k = 0; k < a->count[y]; k++) {
            const float *src = in + (size_t)(a->first[y] + k) * row_values;
            for (int v = 0; v < row_values; v++) dst[v] += w[k] * src[v];
        }
    }
}

canvas_status resize_lanczos3(const float *in, int in_w, int in_h, int channels, float *out, int out_w, int out_h)
{
    if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1 || channels < 1)
        return status_fail(CANVAS_ERR_USAGE, "resize: sizes must be positive (%dx%d -> %dx%d, %d channels)", in_w,
                           in_h, out_w, out_h, channels);
    if (in_w == out_w && in_h == out_h) {
        memcpy(out, in, (size_t)in_w * in_h * channels * sizeof(float));
        return CANVAS_OK;
    }
    axis_taps ax = {0}, ay = {0};
    float *mid = NULL;
    canvas_status st = CANVAS_OK;
    if (in_w != out_w) st = axis_build(in_w, out_w, &ax);
    if (st == CANVAS_OK && in_h != out_h) st = axis_build(in_h, out_h, &ay);
    if (st == CANVAS_OK && in_w != out_w && in_h != out_h)
        st = mem_alloc((void **)&mid, (size_t)in_h * out_w * channels * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) {
        if (in_h == out_h) {
            filter_rows(in, in_w, in_h, channels, &ax, out, out_w);
        } else if (in_w == out_w) {
            filter_columns(in, in_w * channels, &ay, out, out_h);
        } else {
            filter_rows(in, in_w, in_h, channels, &ax, mid, out_w);
            filter_columns(mid, out_w * channels, &ay, out, out_h);
        }
    }
    mem_free(mid);
    axis_free(&ax);
    axis_free(&ay);
    return st;
}
