/* SPDX-License-Identifier: Apache-2.0 */
/* pil_resize.c — Pillow's 8-bit convolution resampling, reproduced operation for
 * operation so that the results are bit-identical (contract in pil_resize.h). The double
 * arithmetic below keeps Pillow's order of operations on purpose: the fixed-point weights
 * are rounded from these doubles, so a reassociated expression could move a weight by one
 * unit and a pixel by one level. */
#include "pipeline/pil_resize.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"

#define PIL_PRECISION_BITS 22      /* 32 - 8 - 2: 8 bits of value, 2 of headroom, sign */
#define PIL_RESIZE_MAX_SIDE (1 << 20)

static double bilinear_kernel(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = -0.5, written as Pillow evaluates it. */
static double bicubic_kernel(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x = x * 3.14159265358979323846;
    return sin(x) / x;
}

/* Three lobes; the interval is half-open on the right, as in Pillow. */
static double lanczos_kernel(double x)
{
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

typedef struct pil_kernel {
    double (*at)(double x);
    double support;
} pil_kernel;

static pil_kernel kernel_of(pil_filter f)
{
    switch (f) {
    case PIL_BILINEAR: return (pil_kernel){bilinear_kernel, 1.0};
    case PIL_BICUBIC: return (pil_kernel){bicubic_kernel, 2.0};
    default: return (pil_kernel){lanczos_kernel, 3.0};
    }
}

/* One axis: output i reads inputs first[i] .. first[i] + count[i] - 1 with the fixed-point
 * weights coeffs[i * ksize + j]. */
typedef struct pil_taps {
    int ksize;
    int *first, *count;
    int32_t *coeffs;
} pil_taps;

static void taps_free(pil_taps *t)
{
    mem_free(t->first);
    mem_free(t->count);
    mem_free(t->coeffs);
    memset(t, 0, sizeof *t);
}

static canvas_status taps_build(int in_size, int out_size, pil_kernel kernel, pil_taps *t)
{
    memset(t, 0, sizeof *t);
    const double scale = (double)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = kernel.support * filterscale;
    /* sides are at most 2^20, so ksize < 2^23 and out_size * ksize fits 64 bits */
    t->ksize = (int)ceil(support) * 2 + 1;
    double *w = NULL;
    canvas_status st = mem_alloc((void **)&t->first, (size_t)out_size * sizeof(int), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&t->count, (size_t)out_size * sizeof(int), MEM_SCRATCH);
    if (st == CANVAS_OK)
        st = mem_alloc((void **)&t->coeffs, (size_t)out_size * (size_t)t->ksize * sizeof(int32_t), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&w, (size_t)t->ksize * sizeof(double), MEM_SCRATCH);
    if (st != CANVAS_OK) {
        mem_free(w);
        taps_free(t);
        return st;
    }
    /* Pillow multiplies by the reciprocal rather than dividing by filterscale */
    const double inv_filterscale = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        const double center = (i + 0.5) * scale;
        /* (int) truncates: for a negative bound that is not floor, but 0 clips it anyway */
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        if (n < 0) n = 0;
        if (n > t->ksize) n = t->ksize; /* cannot happen: 2·support + 1 taps at most */
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            w[j] = kernel.at(((double)(lo + j) - center + 0.5) * inv_filterscale);
            sum += w[j];
        }
        int32_t *k = t->coeffs + (size_t)i * t->ksize;
        for (int j = 0; j < t->ksize; j++) {
            double v = j < n ? (sum != 0.0 ? w[j] / sum : w[j]) : 0.0;
            /* rounded half away from zero, as Pillow's normalize_coeffs_8bpc */
            v *= (double)(1 << PIL_PRECISION_BITS);
            k[j] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        t->first[i] = lo;
        t->count[i] = n;
    }
    mem_free(w);
    return CANVAS_OK;
}

/* Fixed point back to 8 bits: floor(acc / 2^22) clipped to 0..255 (acc carries the
 * +2^21 rounding bias). */
static inline uint8_t clip8(int64_t acc)
{
    if (acc < 0) return 0;
    acc >>= PIL_PRECISION_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* Along x: `rows` rows of [in_w][ch] starting at `in` -> [rows][out_w][ch]. */
static void pass_horizontal(const uint8_t *in, int in_w, int rows, int ch, const pil_taps *t, uint8_t *out,
                            int out_w)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)y * in_w * ch;
        uint8_t *dst = out + (size_t)y * out_w * ch;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = t->coeffs + (size_t)x * t->ksize;
            const uint8_t *p = src + (size_t)t->first[x] * ch;
            for (int c = 0; c < ch; c++) {
                int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
                for (int j = 0; j < t->count[x]; j++) acc += (int64_t)p[(size_t)j * ch + c] * k[j];
                dst[(size_t)x * ch + c] = clip8(acc);
            }
        }
    }
}

/* Along y: [..][row_values] whose first row is input row `row0` of the taps -> out_h rows. */
static void pass_vertical(const uint8_t *in, int row0, size_t row_values, const pil_taps *t, uint8_t *out,
                          int out_h)
{
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = t->coeffs + (size_t)y * t->ksize;
        const uint8_t *src = in + (size_t)(t->first[y] - row0) * row_values;
        uint8_t *dst = out + (size_t)y * row_values;
        for (size_t v = 0; v < row_values; v++) {
            int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
            for (int j = 0; j < t->count[y]; j++) acc += (int64_t)src[(size_t)j * row_values + v] * k[j];
            dst[v] = clip8(acc);
        }
    }
}

canvas_status pil_resize(const uint8_t *in, int in_w, int in_h, int channels, uint8_t *out, int out_w, int out_h,
                         pil_filter f)
{
    if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1 || in_w > PIL_RESIZE_MAX_SIDE || in_h > PIL_RESIZE_MAX_SIDE ||
        out_w > PIL_RESIZE_MAX_SIDE || out_h > PIL_RESIZE_MAX_SIDE)
        return status_fail(CANVAS_ERR_USAGE, "pil_resize: sizes must lie in 1..%d (%dx%d -> %dx%d)",
                           PIL_RESIZE_MAX_SIDE, in_w, in_h, out_w, out_h);
    if (channels < 1 || channels > 4)
        return status_fail(CANVAS_ERR_USAGE, "pil_resize: %d channels (1 to 4 supported)", channels);
    if (f != PIL_BILINEAR && f != PIL_BICUBIC && f != PIL_LANCZOS)
        return status_fail(CANVAS_ERR_USAGE, "pil_resize: unknown filter %d", (int)f);
    const int horizontal = in_w != out_w, vertical = in_h != out_h;
    if (!horizontal && !vertical) {
        memcpy(out, in, (size_t)in_w * in_h * channels);
        return CANVAS_OK;
    }
    const pil_kernel kernel = kernel_of(f);
    pil_taps tx = {0}, ty = {0};
    uint8_t *mid = NULL;
    canvas_status st = CANVAS_OK;
    if (vertical) st = taps_build(in_h, out_h, kernel, &ty);
    if (st == CANVAS_OK && horizontal) st = taps_build(in_w, out_w, kernel, &tx);
    if (st == CANVAS_OK && !vertical) {
        pass_horizontal(in, in_w, in_h, channels, &tx, out, out_w);
    } else if (st == CANVAS_OK && !horizontal) {
        pass_vertical(in, 0, (size_t)in_w * channels, &ty, out, out_h);
    } else if (st == CANVAS_OK) {
        /* only the input rows the vertical pass reads are resampled horizontally */
        const int row0 = ty.first[0], row_end = ty.first[out_h - 1] + ty.count[out_h - 1];
        const int rows = row_end > row0 ? row_end - row0 : 0;
        st = mem_alloc((void **)&mid, (size_t)rows * out_w * channels + 1, MEM_SCRATCH);
        if (st == CANVAS_OK) {
            pass_horizontal(in + (size_t)row0 * in_w * channels, in_w, rows, channels, &tx, mid, out_w);
            pass_vertical(mid, row0, (size_t)out_w * channels, &ty, out, out_h);
        }
    }
    mem_free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}
