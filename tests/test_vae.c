/* SPDX-License-Identifier: Apache-2.0 */
/* test_vae.c — the Qwen-Image VAE against diffusers (vae_encode / vae_decode golden cases),
 * the convolution op against a direct double-precision reference, tiled encode/decode
 * against an independent tiling of the plain forward, the activation-memory count
 * against the measured peak, and bad inputs. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"
#include "io/golden_case.h"
#include "io/safetensors.h"
#include "mem/mem.h"
#include "mem/mem_device.h"
#include "models/qwen_image_vae.h"
#include "models/qwen_image_vae_case.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"

#define GOLDEN_TOLERANCE 1e-4

/* The golden and op tests run on a thread pool; the loops of many small forwards (tiling,
 * memory, fault injection) on the calling thread, where a pool's wake-ups on a busy machine
 * cost more than the work. */
static thread_pool *threads;
static thread_pool *pool;

static uint32_t rng_state = 2024u;
static float random_uniform(void) { return test_uniform(&rng_state); }

/* ---- golden cases ----------------------------------------------------------------------- */

typedef struct comparison {
    const char *case_name;
    const st_file *expected;
    int compared;
} comparison;

static canvas_status compare_sink(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    comparison *cmp = ctx;
    const st_tensor *t = st_find(cmp->expected, name);
    CHECK_MSG(t != NULL, "%s: computed '%s' is not in expected.safetensors", cmp->case_name, name);
    if (!t) return CANVAS_OK;
    int same = t->ndim == ndim && t->type == DTYPE_F32;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    CHECK_MSG(same, "%s: '%s' has another shape or type than expected", cmp->case_name, name);
    if (!same) return CANVAS_OK;
    double ratio = test_relative_error(data, t->data, (size_t)st_numel(t));
    printf("  %-18s %-8s max|diff|/max|ref| = %.3e\n", cmp->case_name, name, ratio);
    CHECK_MSG(ratio <= GOLDEN_TOLERANCE, "%s: '%s' ratio %.3e above %.0e", cmp->case_name, name, ratio,
              GOLDEN_TOLERANCE);
    cmp->compared++;
    return CANVAS_OK;
}

static void run_golden(const char *name)
{
    char case_dir[4096], path[4200];
    test_path(case_dir, sizeof case_dir, "golden/cases");
    snprintf(case_dir + strlen(case_dir), sizeof case_dir - strlen(case_dir), "/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", case_dir);
    char op[32] = "";
    CHECK_OK(golden_case_op(case_dir, op, sizeof op));
    CHECK(!strncmp(op, "vae_", 4));
    st_file *expected = NULL;
    CHECK_OK(st_open(path, &expected));
    if (!expected) return;
    comparison cmp = {name, expected, 0};
    CHECK_OK(vae_case_run(case_dir, OP_BACKEND_CPU(pool), compare_sink, &cmp));
    CHECK(cmp.compared == 1);
    st_close(expected);
}

static void test_golden_encode(void) { run_golden("vae-32x48-encode"); }
static void test_golden_decode(void) { run_golden("vae-32x48-decode"); }

static void test_case_handles(void)
{
    char dir[4096];
    char op[32];
    CHECK_FAILS(golden_case_op(test_path(dir, sizeof dir, "golden/cases/no-such-case"), op, sizeof op),
                CANVAS_ERR_INPUT, "no-such-case/case.json");
    CHECK_FAILS(vae_case_run(test_path(dir, sizeof dir, "golden/cases/schedule"), OP_BACKEND_CPU(pool), compare_sink, NULL),
                CANVAS_ERR_UNSUPPORTED, "is not vae_encode or vae_decode");
}

/* ---- the convolution op ------------------------------------------------------------------ */

/* Direct double reference of op_conv2d's contract: y = conv(pad(upsample(silu(norm(x))))). */
static void reference_conv(const conv2d_params *p, const float *x, const float *w, const float *bias, double *y)
{
    const int oh = conv2d_out_height(p), ow = conv2d_out_width(p), k = p->kernel, cin = p->in_channels;
    const int uh = p->upsample ? 2 * p->height : p->height, uw = p->upsample ? 2 * p->width : p->width;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int o = 0; o < p->out_channels; o++) {
                double sum = bias ? bias[o] : 0.0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int u = oy * p->stride + ky - p->pad_top, v = ox * p->stride + kx - p->pad_left;
                        if (u < 0 || v < 0 || u >= uh || v >= uw) continue;
                        const float *px = x + ((size_t)(p->upsample ? u / 2 : u) * p->width + (p->upsample ? v / 2 : v)) * cin;
                        double norm = 0;
                        for (int c = 0; c < cin; c++) norm += (double)px[c] * px[c];
                        norm = sqrt(norm);
                        for (int c = 0; c < cin; c++) {
                            double value = px[c];
                            if (p->norm_gamma) {
                                value = value / norm * sqrt((double)cin) * p->norm_gamma[c];
                                value = value / (1 + exp(-value));
                            }
                            sum += value * w[(((size_t)o * k + ky) * k + kx) * cin + c];
                        }
                    }
                y[((size_t)oy * ow + ox) * p->out_channels + o] = sum;
            }
}

static void check_conv(const char *what, conv2d_params p, dtype type)
{
    const int oh = conv2d_out_height(&p), ow = conv2d_out_width(&p);
    const size_t nx = (size_t)p.height * p.width * p.in_channels, ny = (size_t)oh * ow * p.out_channels;
    const size_t nw = (size_t)p.out_channels * p.kernel * p.kernel * p.in_channels;
    float *x = NULL, *w = NULL, *bias = NULL, *gamma = NULL, *y = NULL, *y0 = NULL;
    uint16_t *w16 = NULL;
    double *want = NULL;
    CHECK_OK(mem_alloc((void **)&x, nx * sizeof *x, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&w, nw * sizeof *w, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&w16, nw * sizeof *w16, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&bias, (size_t)p.out_channels * sizeof *bias, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&gamma, (size_t)p.in_channels * sizeof *gamma, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&y, ny * sizeof *y, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&y0, ny * sizeof *y0, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&want, ny * sizeof *want, MEM_SCRATCH));
    if (!x || !w || !w16 || !bias || !gamma || !y || !y0 || !want) goto done;
    for (size_t i = 0; i < nx; i++) x[i] = random_uniform();
    for (size_t i = 0; i < nw; i++) {
        w[i] = random_uniform();
        if (type == DTYPE_BF16) {
            w16[i] = f32_to_bf16(w[i]);
            w[i] = bf16_to_f32(w16[i]);
        }
    }
    for (int i = 0; i < p.out_channels; i++) bias[i] = random_uniform();
    for (int i = 0; i < p.in_channels; i++) gamma[i] = 1.0f + 0.2f * random_uniform();
    if (p.norm_gamma) p.norm_gamma = gamma;
    for (size_t i = 0; i < ny; i++) y0[i] = y[i] = p.accumulate ? random_uniform() : 0.0f;
    reference_conv(&p, x, w, bias, want);
    if (p.accumulate)
        for (size_t i = 0; i < ny; i++) want[i] += y0[i];
    weight_view view = {type, type == DTYPE_BF16 ? (const void *)w16 : (const void *)w, p.out_channels,
                        (int64_t)p.kernel * p.kernel * p.in_channels, NULL};
    CHECK_OK(op_conv2d(OP_BACKEND_CPU(pool), &p, x, &view, bias, y));
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < ny; i++) {
        double diff = fabs(y[i] - want[i]);
        if (!(diff <= max_diff)) max_diff = diff;
        if (fabs(want[i]) > max_ref) max_ref = fabs(want[i]);
    }
    CHECK_MSG(max_diff <= 1e-5 * max_ref, "%s: max diff %.3e of max %.3e", what, max_diff, max_ref);
done:
    mem_free(x);
    mem_free(w);
    mem_free(w16);
    mem_free(bias);
    mem_free(gamma);
    mem_free(y);
    mem_free(y0);
    mem_free(want);
}

static void test_conv_op(void)
{
    static const float marker = 1.0f;
    const conv2d_params same = {.height = 7, .width = 9, .in_channels = 5, .out_channels = 6, .kernel = 3,
                                .stride = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    check_conv("3x3 same", same, DTYPE_F32);
    check_conv("3x3 same bf16", same, DTYPE_BF16);
    conv2d_params p = same;
    p.band_floats = 1; /* one output row per band */
    check_conv("3x3 one row per band", p, DTYPE_F32);
    p.band_floats = 3 * 9 * 9 * 5; /* three rows per band, the last band shorter */
    p.norm_gamma = &marker;
    check_conv("3x3 norm+silu, 3-row bands", p, DTYPE_F32);
    p.accumulate = 1;
    check_conv("3x3 norm+silu accumulate", p, DTYPE_F32);
    conv2d_params down = {.height = 8, .width = 10, .in_channels = 4, .out_channels = 3, .kernel = 3, .stride = 2,
                          .pad_bottom = 1, .pad_right = 1, .band_floats = 2 * 5 * 9 * 4};
    CHECK(conv2d_out_height(&down) == 4 && conv2d_out_width(&down) == 5);
    check_conv("3x3 stride 2, pad right/bottom", down, DTYPE_F32);
    conv2d_params up = same;
    up.upsample = 1;
    up.band_floats = 5 * 18 * 9 * 5;
    CHECK(conv2d_out_height(&up) == 14 && conv2d_out_width(&up) == 18);
    check_conv("nearest 2x + 3x3", up, DTYPE_F32);
    conv2d_params point = {.height = 5, .width = 3, .in_channels = 7, .out_channels = 4, .kernel = 1, .stride = 1};
    check_conv("1x1", point, DTYPE_F32);
    point.accumulate = 1;
    check_conv("1x1 accumulate", point, DTYPE_F32);

    /* a weight of the wrong size is refused */
    float dummy[4] = {0};
    weight_view bad = {DTYPE_F32, dummy, 6, 4, NULL};
    CHECK_FAILS(op_conv2d(OP_BACKEND_CPU(pool), &same, dummy, &bad, NULL, dummy), CANVAS_ERR_USAGE, "weight");
    conv2d_params tiny = same;
    tiny.height = 1;
    tiny.pad_top = tiny.pad_bottom = 0;
    CHECK_FAILS(op_conv2d(OP_BACKEND_CPU(pool), &tiny, dummy, &bad, NULL, dummy), CANVAS_ERR_USAGE, "does not fit");
}

/* conv_pack_taps picks W[:, :, t] and reorders it to [out, ky, kx, in]. */
static void test_pack_taps(void)
{
    enum { OUT = 2, IN = 3, KT = 3, K = 3 };
    float w[OUT * IN * KT * K * K], packed[OUT * K * K * IN];
    for (int i = 0; i < OUT * IN * KT * K * K; i++) w[i] = (float)i;
    conv_pack_taps(w, sizeof(float), OUT, IN, KT, K, K, KT - 1, packed);
    int ok = 1;
    for (int o = 0; o < OUT; o++)
        for (int y = 0; y < K; y++)
            for (int x = 0; x < K; x++)
                for (int i = 0; i < IN; i++)
                    ok &= packed[((o * K + y) * K + x) * IN + i] == w[(((o * IN + i) * KT + 2) * K + y) * K + x];
    CHECK(ok);
}

/* ---- tiling ---------------------------------------------------------------------------- */

static vae_model *load_tiny(void)
{
    char dir[4096];
    vae_model *model = NULL;
    CHECK_OK(vae_load(test_path(dir, sizeof dir, "golden/models/vae-tiny/vae"), &model));
    return model;
}

static float *random_buffer(size_t n)
{
    float *p = NULL;
    CHECK_OK(mem_alloc((void **)&p, n * sizeof *p, MEM_SCRATCH));
    for (size_t i = 0; p && i < n; i++) p[i] = random_uniform();
    return p;
}

/* diffusers' tiled_encode / tiled_decode written out plainly: every tile kept, blended in
 * place in row-major order, the kept parts concatenated and cropped. */
static void reference_tiled(vae_model *m, int encode, const vae_tiling *t, const float *in, int h, int w, float *out)
{
    const vae_config *c = &m->config;
    const int s = vae_scale_factor(c), cin = encode ? c->input_channels : c->z_dim;
    const int cout = encode ? c->z_dim : c->input_channels;
    const int ti = encode ? t->tile_height : t->tile_height / s, si = encode ? t->stride_height : t->stride_height / s;
    const int so = encode ? t->stride_height / s : t->stride_height;
    const int blend = encode ? (t->tile_height - t->stride_height) / s : t->tile_height - t->stride_height;
    const int oh = encode ? h / s : h * s, ow = encode ? w / s : w * s;
    enum { MAX_TILES = 8 };
    float *tiles[MAX_TILES][MAX_TILES] = {{0}};
    int th[MAX_TILES], tw[MAX_TILES], rows = 0, cols = 0;
    for (int i = 0; i < h; i += si, rows++) {
        cols = 0;
        for (int j = 0; j < w; j += si, cols++) {
            int hh = h - i < ti ? h - i : ti, ww = w - j < ti ? w - j : ti;
            float *crop = random_buffer((size_t)cin * hh * ww);
            for (int ch = 0; ch < cin; ch++)
                for (int y = 0; y < hh; y++)
                    for (int x = 0; x < ww; x++)
                        crop[((size_t)ch * hh + y) * ww + x] = in[((size_t)ch * h + i + y) * w + j + x];
            th[rows] = encode ? hh / s : hh * s;
            tw[cols] = encode ? ww / s : ww * s;
            tiles[rows][cols] = random_buffer((size_t)cout * th[rows] * tw[cols]);
            if (encode) CHECK_OK(vae_encode(m, OP_BACKEND_CPU(pool), crop, hh, ww, tiles[rows][cols]));
            else CHECK_OK(vae_decode_raw(m, OP_BACKEND_CPU(pool), crop, hh, ww, tiles[rows][cols]));
            mem_free(crop);
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float *b = tiles[i][j];
            if (i > 0) {
                const float *a = tiles[i - 1][j];
                int e = blend < th[i - 1] ? blend : th[i - 1];
                if (th[i] < e) e = th[i];
                for (int ch = 0; ch < cout; ch++)
                    for (int y = 0; y < e; y++)
                        for (int x = 0; x < tw[j]; x++) {
                            float *to = &b[((size_t)ch * th[i] + y) * tw[j] + x];
                            float first = a[((size_t)ch * th[i - 1] + th[i - 1] - e + y) * tw[j] + x] * (float)(1.0 - (double)y / e);
                            float second = *to * (float)((double)y / e);
                            *to = first + second;
                        }
            }
            if (j > 0) {
                const float *a = tiles[i][j - 1];
                int e = blend < tw[j - 1] ? blend : tw[j - 1];
                if (tw[j] < e) e = tw[j];
                for (int ch = 0; ch < cout; ch++)
                    for (int y = 0; y < th[i]; y++)
                        for (int x = 0; x < e; x++) {
                            float *to = &b[((size_t)ch * th[i] + y) * tw[j] + x];
                            float first = a[((size_t)ch * th[i] + y) * tw[j - 1] + tw[j - 1] - e + x] * (float)(1.0 - (double)x / e);
                            float second = *to * (float)((double)x / e);
                            *to = first + second;
                        }
            }
            for (int ch = 0; ch < cout; ch++)
                for (int y = 0; y < th[i] && y < so && i * so + y < oh; y++)
                    for (int x = 0; x < tw[j] && x < so && j * so + x < ow; x++) {
                        float v = b[((size_t)ch * th[i] + y) * tw[j] + x];
                        if (!encode) v = v < -1 ? -1 : v > 1 ? 1 : v;
                        out[((size_t)ch * oh + i * so + y) * ow + j * so + x] = v;
                    }
        }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) mem_free(tiles[i][j]);
}

/* mean|a - b| / mean|b| */
static double mean_relative_error(const float *got, const float *want, size_t n)
{
    double diff = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        diff += fabs((double)got[i] - (double)want[i]);
        ref += fabs((double)want[i]);
    }
    return ref > 0 ? diff / ref : diff;
}

static void check_tiled(vae_model *m, int encode, int h, int w, vae_tiling t, double mean_bound)
{
    const vae_config *c = &m->config;
    const int s = vae_scale_factor(c);
    CHECK(vae_tiling_needed(&t, encode ? h : h * s, encode ? w : w * s));
    const int cin = encode ? c->input_channels : c->z_dim, cout = encode ? c->z_dim : c->input_channels;
    const size_t nout = (size_t)cout * (encode ? (size_t)(h / s) * (w / s) : (size_t)(h * s) * (w * s));
    float *in = random_buffer((size_t)cin * h * w);
    if (!encode)
        for (size_t i = 0; in && i < (size_t)cin * h * w; i++) in[i] *= 3.0f;
    float *tiled = random_buffer(nout), *want = random_buffer(nout), *plain = random_buffer(nout);
    if (!in || !tiled || !want || !plain) goto done;
    if (encode) {
        CHECK_OK(vae_encode_tiled(m, OP_BACKEND_CPU(pool), &t, in, h, w, tiled));
        CHECK_OK(vae_encode(m, OP_BACKEND_CPU(pool), in, h, w, plain));
    } else {
        CHECK_OK(vae_decode_tiled(m, OP_BACKEND_CPU(pool), &t, in, h, w, tiled));
        CHECK_OK(vae_decode(m, OP_BACKEND_CPU(pool), in, h, w, plain));
    }
    reference_tiled(m, encode, &t, in, h, w, want);
    double exact = test_relative_error(tiled, want, nout), vs_plain = test_relative_error(tiled, plain, nout);
    double vs_plain_mean = mean_relative_error(tiled, plain, nout);
    printf("  tiled %s %dx%d (tile %d, stride %d): vs diffusers' tiling %.3e; vs untiled: max %.3e, mean %.3e\n",
           encode ? "encode" : "decode", h, w, t.tile_height, t.stride_height, exact, vs_plain, vs_plain_mean);
    CHECK_MSG(exact <= 1e-6, "tiled %s differs from the reference tiling by %.3e", encode ? "encode" : "decode", exact);
    /* tiles see their own borders and attention: close to, not equal to, the plain forward */
    CHECK_MSG(vs_plain_mean <= mean_bound, "tiled %s differs from the untiled by %.3e on average",
              encode ? "encode" : "decode", vs_plain_mean);
done:
    mem_free(in);
    mem_free(tiled);
    mem_free(want);
    mem_free(plain);
}

static void test_tiled(void)
{
    vae_model *m = load_tiny();
    if (!m) return;
    const vae_tiling small = {48, 48, 32, 32}; /* 2x2 tiles for 64x64 pixels / 8x8 latents */
    check_tiled(m, 1, 64, 64, small, 0.5);
    check_tiled(m, 1, 64, 56, small, 0.5);
    check_tiled(m, 0, 8, 8, small, 0.5);
    check_tiled(m, 0, 8, 6, small, 0.5);
    /* With random weights the VAE mixes far more globally than a trained one (its mid
     * attention spans the whole tile), so tiles change the result a lot; larger tiles less. */
    const vae_tiling large = {128, 128, 96, 96}; /* 2x2 tiles for 24x24 latents */
    check_tiled(m, 0, 24, 24, large, 0.2);

    /* one tile is the plain forward, exactly */
    vae_tiling big;
    vae_tiling_default(&big);
    CHECK(!vae_tiling_needed(&big, 32, 48));
    float *in = random_buffer(3 * 32 * 48), *a = random_buffer(16 * 4 * 6), *b = random_buffer(16 * 4 * 6);
    if (in && a && b) {
        CHECK_OK(vae_encode_tiled(m, OP_BACKEND_CPU(pool), &big, in, 32, 48, a));
        CHECK_OK(vae_encode(m, OP_BACKEND_CPU(pool), in, 32, 48, b));
        CHECK(memcmp(a, b, 16 * 4 * 6 * sizeof(float)) == 0);
    }
    vae_tiling bad = {48, 48, 40, 36};
    CHECK_FAILS(vae_encode_tiled(m, OP_BACKEND_CPU(pool), &bad, in, 32, 48, a), CANVAS_ERR_USAGE, "multiples of 8");
    bad = (vae_tiling){32, 32, 40, 40};
    CHECK_FAILS(vae_decode_tiled(m, OP_BACKEND_CPU(pool), &bad, in, 4, 6, a), CANVAS_ERR_USAGE, "must not exceed");
    mem_free(in);
    mem_free(a);
    mem_free(b);
    vae_free(m);
}

/* ---- stored weight types ----------------------------------------------------------------- */

/* Write vae-tiny again into dir/vae with every tensor rounded to `rounding` (BF16 or F16) and
 * stored as `stored` (that type, or F32 holding the rounded values). */
static int write_rounded_copy(const char *dir, dtype rounding, dtype stored)
{
    char src[4096], path[4400], sub[4200];
    test_path(src, sizeof src, "golden/models/vae-tiny/vae/diffusion_pytorch_model.safetensors");
    st_file *f = NULL;
    CHECK_OK(st_open(src, &f));
    if (!f) return 0;
    snprintf(sub, sizeof sub, "%s/vae", dir);
    mkdir(sub, 0755);
    st_write_tensor *t = NULL;
    CHECK_OK(mem_calloc((void **)&t, (size_t)f->n_tensors, sizeof *t, MEM_SCRATCH));
    int ok = t != NULL;
    for (int i = 0; ok && i < f->n_tensors; i++) {
        const st_tensor *in = &f->tensors[i];
        size_t n = (size_t)st_numel(in);
        float *values = NULL;
        void *data = NULL;
        CHECK_OK(mem_alloc((void **)&values, n * sizeof(float), MEM_SCRATCH));
        CHECK_OK(mem_alloc(&data, n * sizeof(float), MEM_SCRATCH));
        if (!values || !data) {
            mem_free(values);
            mem_free(data);
            ok = 0;
            break;
        }
        dtype_to_f32(in->type, in->data, values, n);
        CHECK_OK(dtype_from_f32(rounding, values, data, n));
        if (stored == DTYPE_F32) {
            /* the rounded values, widened back to f32 */
            dtype_to_f32(rounding, data, values, n);
            memcpy(data, values, n * sizeof(float));
        }
        mem_free(values);
        t[i] = (st_write_tensor){.name = in->name, .type = stored, .ndim = in->ndim, .data = data};
        memcpy(t[i].shape, in->shape, sizeof t[i].shape);
    }
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", sub);
    if (ok) CHECK_OK(st_write(path, t, f->n_tensors, NULL, 0));
    for (int i = 0; t && i < f->n_tensors; i++) mem_free((void *)t[i].data);
    mem_free(t);
    st_close(f);
    /* the config as it is */
    char config_src[4096], config_dst[4400];
    test_path(config_src, sizeof config_src, "golden/models/vae-tiny/vae/config.json");
    snprintf(config_dst, sizeof config_dst, "%s/config.json", sub);
    FILE *in = fopen(config_src, "rb"), *out = fopen(config_dst, "wb");
    char buf[4096];
    size_t got;
    while (in && out && (got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out);
    if (in) fclose(in);
    if (out) fclose(out);
    return ok && in && out;
}

/* A BF16 (F16) file gives what an F32 file holding the same rounded values gives: the
 * kernels are repacked in their stored type and widened exactly inside the GEMM. */
static void check_stored_type(dtype type)
{
    char low[] = "/tmp/canvas-vae-low-XXXXXX", wide[] = "/tmp/canvas-vae-wide-XXXXXX";
    CHECK(mkdtemp(low) != NULL && mkdtemp(wide) != NULL);
    if (!write_rounded_copy(low, type, type) || !write_rounded_copy(wide, type, DTYPE_F32)) return;
    char a_dir[4200], b_dir[4200];
    snprintf(a_dir, sizeof a_dir, "%s/vae", low);
    snprintf(b_dir, sizeof b_dir, "%s/vae", wide);
    vae_model *a = NULL, *b = NULL;
    CHECK_OK(vae_load(a_dir, &a));
    CHECK_OK(vae_load(b_dir, &b));
    float *image = random_buffer(3 * 32 * 48), *la = random_buffer(16 * 4 * 6), *lb = random_buffer(16 * 4 * 6);
    float *ia = random_buffer(3 * 32 * 48), *ib = random_buffer(3 * 32 * 48);
    if (a && b && image && la && lb && ia && ib) {
        CHECK(a->weight_bytes < b->weight_bytes);
        CHECK_OK(vae_encode(a, OP_BACKEND_CPU(pool), image, 32, 48, la));
        CHECK_OK(vae_encode(b, OP_BACKEND_CPU(pool), image, 32, 48, lb));
        CHECK_OK(vae_decode(a, OP_BACKEND_CPU(pool), la, 4, 6, ia));
        CHECK_OK(vae_decode(b, OP_BACKEND_CPU(pool), la, 4, 6, ib));
        double enc = test_relative_error(la, lb, 16 * 4 * 6), dec = test_relative_error(ia, ib, 3 * 32 * 48);
        printf("  %s file vs F32 file of the same values: encode %.3e, decode %.3e\n", dtype_name(type), enc, dec);
        CHECK(enc <= 1e-6 && dec <= 1e-6);
    }
    mem_free(image);
    mem_free(la);
    mem_free(lb);
    mem_free(ia);
    mem_free(ib);
    vae_free(a);
    vae_free(b);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", low, wide);
    CHECK(system(cmd) == 0);
}

static void test_stored_types(void)
{
    check_stored_type(DTYPE_BF16);
    check_stored_type(DTYPE_F16);
}

/* ---- memory ---------------------------------------------------------------------------- */

static void check_peak(vae_model *m, int encode, int h, int w)
{
    const vae_config *c = &m->config;
    const int s = vae_scale_factor(c);
    const int cin = encode ? c->input_channels : c->z_dim, cout = encode ? c->z_dim : c->input_channels;
    const size_t nout = (size_t)cout * (encode ? (size_t)(h / s) * (w / s) : (size_t)(h * s) * (w * s));
    float *in = random_buffer((size_t)cin * h * w), *out = random_buffer(nout);
    if (!in || !out) goto done;
    /* every class together: the activations and the GEMMs' packing scratch */
    mem_device_stats before, after;
    mem_device_get_stats(mem_device_cpu(), &before);
    mem_device_reset_peaks(mem_device_cpu());
    CHECK_OK(encode ? vae_encode(m, OP_BACKEND_CPU(pool), in, h, w, out) : vae_decode(m, OP_BACKEND_CPU(pool), in, h, w, out));
    mem_device_get_stats(mem_device_cpu(), &after);
    size_t measured = after.peak_bytes - before.current_bytes;
    size_t counted = vae_activation_bytes(m, thread_pool_size(pool), encode, h, w);
    printf("  %s %dx%d: activation peak %zu bytes, counted %zu\n", encode ? "encode" : "decode", h, w, measured,
           counted);
    CHECK(measured == counted);
    CHECK(after.current_bytes == before.current_bytes);
    /* the largest full-resolution stage: base_dim channels at full size, twice, bounds it from below */
    size_t stage = (size_t)c->base_dim * (encode ? (size_t)h * w : (size_t)h * s * w * s) * sizeof(float);
    CHECK(counted >= 2 * stage && counted <= 4 * stage + 3 * (size_t)CONV_BAND_FLOATS * sizeof(float));
done:
    mem_free(in);
    mem_free(out);
}

static void test_activation_peak(void)
{
    vae_model *m = load_tiny();
    if (!m) return;
    check_peak(m, 1, 64, 96);
    check_peak(m, 0, 8, 12);
    pool = threads; /* the attention's per-thread tiles are counted for the pool's size */
    check_peak(m, 1, 64, 96);
    check_peak(m, 0, 8, 12);
    pool = NULL;
    vae_free(m);
}

/* ---- failures ---------------------------------------------------------------------------- */

static void test_bad_input(void)
{
    vae_model *m = load_tiny();
    if (!m) return;
    float buf[3 * 16 * 16];
    CHECK_FAILS(vae_encode(m, OP_BACKEND_CPU(pool), buf, 12, 16, buf), CANVAS_ERR_INPUT, "multiple of 8");
    CHECK_FAILS(vae_decode(m, OP_BACKEND_CPU(pool), buf, 0, 2, buf), CANVAS_ERR_INPUT, "positive");
    vae_free(m);

    char dir[4096];
    vae_model *none = NULL;
    CHECK_FAILS(vae_load(test_path(dir, sizeof dir, "golden/models/no-such-model/vae"), &none), CANVAS_ERR_INPUT,
                "loading VAE");
    CHECK(none == NULL);
    /* a transformer folder is not a VAE */
    CHECK_FAILS(vae_load(test_path(dir, sizeof dir, "golden/models/dit-tiny/transformer"), &none), CANVAS_ERR_INPUT,
                "AutoencoderKLQwenImage");
}

/* Every allocation of encode + decode failing in turn (and the loader's weight blocks):
 * an out-of-memory status, nothing leaked, and the run after it still right. */
static void test_out_of_memory_everywhere(void)
{
    char dir[4096];
    test_path(dir, sizeof dir, "golden/models/vae-tiny/vae");
    vae_model *m = load_tiny();
    float *in = random_buffer(3 * 16 * 16), *latent = random_buffer(16 * 2 * 2), *image = random_buffer(3 * 16 * 16);
    if (!m || !in || !latent || !image) return;
    size_t live_before = mem_total_current();
    int failures = 0;
    for (uint64_t n = 1; n < 100000; n++) {
        mem_fault_arm(&(mem_fault_plan){.nth = n, .persistent = 0, .only_class = -1});
        canvas_status st = vae_encode(m, OP_BACKEND_CPU(pool), in, 16, 16, latent);
        if (st == CANVAS_OK) st = vae_decode(m, OP_BACKEND_CPU(pool), latent, 2, 2, image);
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        CHECK_MSG(mem_total_current() == live_before, "allocation %llu failing leaks %zu bytes",
                  (unsigned long long)n, mem_total_current() - live_before);
        if (!hits) {
            CHECK_OK(st);
            break;
        }
        failures++;
        CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY, "allocation %llu failing gave %s: %s", (unsigned long long)n,
                  canvas_status_name(st), canvas_last_error());
    }
    printf("  encode + decode: %d allocation sites failed in turn\n", failures);
    CHECK(failures > 20);
    vae_free(m);

    /* the loader's weight blocks (encoder, decoder) */
    for (uint64_t n = 1; n <= 2; n++) {
        size_t before = mem_total_current();
        mem_fault_arm(&(mem_fault_plan){.nth = n, .persistent = 0, .only_class = MEM_WEIGHTS});
        vae_model *failed = NULL;
        CHECK_FAILS(vae_load(dir, &failed), CANVAS_ERR_OUT_OF_MEMORY, "loading VAE");
        mem_fault_disarm();
        CHECK(failed == NULL && mem_total_current() == before);
    }
    mem_free(in);
    mem_free(latent);
    mem_free(image);
}

int main(void)
{
    CHECK_OK(thread_pool_create(0, &threads));
    pool = threads;
    RUN(test_golden_encode);
    RUN(test_golden_decode);
    RUN(test_case_handles);
    RUN(test_conv_op);
    RUN(test_pack_taps);
    pool = NULL;
    RUN(test_tiled);
    RUN(test_stored_types);
    RUN(test_activation_peak);
    RUN(test_bad_input);
    RUN(test_out_of_memory_everywhere);
    thread_pool_destroy(threads);
    return check_summary();
}
