/* SPDX-License-Identifier: Apache-2.0 */
/* test_ops.c — the CPU kernels against naive double-precision references.
 *
 * Sizes are small but chosen to hit every tail of the blocked kernels: rows and columns
 * that are not multiples of the register tile, reductions longer than one cache block,
 * the few-rows (GEMV) path, masked keys including a fully masked sequence, and all three
 * weight formats. Results must not depend on the number of threads: outputs with pools
 * of 3 and 2 threads are compared bit for bit with single-threaded ones. */
#include <stdint.h>

#include "check.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "ops/ops.h"
#include "ops/threadpool.h"
#include "tensor/dtype.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float rand_uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *random_floats(int64_t n, float scale)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = rand_uniform() * scale;
    return p;
}

static uint16_t to_bf16_truncated(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A weight in `type` with its exact f32 values (what the kernel must see). */
typedef struct test_weight {
    weight_view view;
    void *data;
    float *exact;
} test_weight;

static test_weight make_weight(dtype type, int64_t n, int64_t k)
{
    test_weight w = {{type, NULL, n, k, NULL}, NULL, random_floats(n * k, 1.0f)};
    if (type == DTYPE_F32) {
        w.data = malloc((size_t)(n * k + 1) * 4);
        memcpy(w.data, w.exact, (size_t)(n * k) * 4);
    } else {
        uint16_t *bits = malloc((size_t)(n * k + 1) * 2);
        for (int64_t i = 0; i < n * k; i++) {
            if (type == DTYPE_BF16) {
                bits[i] = to_bf16_truncated(w.exact[i]);
                w.exact[i] = from_bf16(bits[i]);
            } else {
                bits[i] = f32_to_f16(w.exact[i]);
                w.exact[i] = f16_to_f32(bits[i]);
            }
        }
        w.data = bits;
    }
    w.view.data = w.data;
    return w;
}

static void free_weight(test_weight *w)
{
    free(w->data);
    free(w->exact);
}

static const dtype weight_types[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};

/* Checks y against a double reference; tolerance scaled by sum |x||w| per element. */
static int linear_matches(const float *x, int64_t m, const test_weight *w, const float *bias, const float *y)
{
    int64_t n = w->view.out_features, k = w->view.in_features;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = bias ? bias[j] : 0.0, magnitude = bias ? fabs(bias[j]) : 0.0;
            for (int64_t t = 0; t < k; t++) {
                sum += (double)x[i * k + t] * w->exact[j * k + t];
                magnitude += fabs((double)x[i * k + t] * w->exact[j * k + t]);
            }
            double err = fabs(y[i * n + j] - sum);
            if (!(err <= 2e-6 * magnitude + 1e-30)) {
                fprintf(stderr, "  linear m=%lld n=%lld k=%lld: y[%lld,%lld] = %.9g, want %.9g\n", (long long)m,
                        (long long)n, (long long)k, (long long)i, (long long)j, y[i * n + j], sum);
                return 0;
            }
        }
    return 1;
}

static void test_linear_against_reference(void)
{
    /* m, n, k */
    static const int64_t shapes[][3] = {
        {1, 1, 1},    {1, 37, 70},   {2, 19, 33},   {3, 16, 8},     {4, 5, 300},   {6, 16, 256},
        {7, 17, 257}, {13, 33, 9},   {12, 48, 64},  {25, 40, 520},  {150, 31, 17}, {301, 270, 300},
        {5, 300, 40}, {64, 64, 1}, {9, 1, 600},
        /* op_linear's paths: x packed per row item (one column item), rows split into items
         * of few rows, several column items sharing x, k blocks in more than one group */
        {180, 20, 300}, {200, 600, 600}, {8200, 9, 264}, {2800, 120, 400},
    };
    thread_pool *pool, *pool2;
    CHECK_OK(thread_pool_create(3, &pool));
    CHECK_OK(thread_pool_create(2, &pool2));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (size_t t = 0; t < 3; t++) {
            test_weight w = make_weight(weight_types[t], n, k);
            float *x = random_floats(m * k, 2.0f), *bias = random_floats(n, 1.0f);
            float *y1 = malloc((size_t)(m * n) * 4), *y3 = malloc((size_t)(m * n) * 4);
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const float *b = with_bias ? bias : NULL;
                CHECK_OK(op_linear(NULL, x, m, &w.view, b, y1));
                CHECK_MSG(linear_matches(x, m, &w, b, y1), "%s bias=%d", dtype_name(weight_types[t]), with_bias);
                memset(y3, 0xFF, (size_t)(m * n) * 4);
                CHECK_OK(op_linear(OP_BACKEND_CPU(pool), x, m, &w.view, b, y3));
                CHECK_MSG(memcmp(y1, y3, (size_t)(m * n) * 4) == 0, "threads change the result: m=%lld n=%lld k=%lld %s",
                          (long long)m, (long long)n, (long long)k, dtype_name(weight_types[t]));
                memset(y3, 0xFF, (size_t)(m * n) * 4);
                CHECK_OK(op_linear(OP_BACKEND_CPU(pool2), x, m, &w.view, b, y3));
                CHECK_MSG(memcmp(y1, y3, (size_t)(m * n) * 4) == 0, "2 threads change the result: m=%lld n=%lld k=%lld %s",
                          (long long)m, (long long)n, (long long)k, dtype_name(weight_types[t]));
            }
            free(x), free(bias), free(y1), free(y3);
            free_weight(&w);
        }
    }
    thread_pool_destroy(pool);
    thread_pool_destroy(pool2);
}

static void test_linear_workspace_is_exact(void)
{
    /* m, n, k: GEMV (none), x packed per row item (n < 128), shared x in one group and in
     * several, the few-rows walk */
    static const int64_t shapes[][3] = {{2, 64, 64}, {150, 20, 300}, {200, 600, 600}, {2800, 120, 400}, {40, 300, 800}};
    const int threads[] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        thread_pool *pool;
        CHECK_OK(thread_pool_create(threads[t], &pool));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            test_weight w = make_weight(DTYPE_BF16, n, k);
            float *x = random_floats(m * k, 1.0f), *y = malloc((size_t)(m * n) * 4);
            mem_reset_peaks();
            mem_class_stats before, after;
            mem_get_stats(MEM_SCRATCH, &before);
            CHECK_OK(op_linear(OP_BACKEND_CPU(pool), x, m, &w.view, NULL, y));
            mem_get_stats(MEM_SCRATCH, &after);
            size_t want = op_linear_workspace_bytes(m, n, k, threads[t]);
            CHECK_MSG(after.peak_bytes - before.current_bytes == want, "m %lld n %lld k %lld threads %d: %zu, said %zu",
                      (long long)m, (long long)n, (long long)k, threads[t], after.peak_bytes - before.current_bytes, want);
            CHECK(m <= 2 ? want == 0 : want > 0);
            free_weight(&w), free(x), free(y);
        }
        thread_pool_destroy(pool);
    }
}

static void test_linear_rejects_unknown_type(void)
{
    float x[4] = {0}, y[4];
    weight_view w = {DTYPE_I32, x, 2, 2, NULL};
    CHECK_FAILS(op_linear(NULL, x, 1, &w, NULL, y), CANVAS_ERR_UNSUPPORTED, "op_linear");
}

static void test_linear_frees_its_scratch(void)
{
    mem_class_stats before[MEM_CLASS_COUNT], after;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) mem_get_stats((mem_class)c, &before[c]);
    test_weight w = make_weight(DTYPE_BF16, 70, 300);
    float *x = random_floats(50 * 300, 1.0f), *y = malloc(50 * 70 * 4);
    CHECK_OK(op_linear(NULL, x, 50, &w.view, NULL, y));
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        mem_get_stats((mem_class)c, &after);
        CHECK(after.current_bytes == before[c].current_bytes);
    }
    free(x), free(y);
    free_weight(&w);
}

/* Reference attention in double for one (query, head). */
static void attention_reference(const float *q, const float *k, const float *v, int64_t seq, int heads, int hd,
                                const uint8_t *mask, int64_t i, int h, double *out)
{
    int64_t ld = (int64_t)heads * hd;
    double max = -INFINITY, denom = 0.0;
    double *scores = malloc((size_t)seq * sizeof(double));
    for (int64_t j = 0; j < seq; j++) {
        double s = 0.0;
        for (int d = 0; d < hd; d++) s += (double)q[i * ld + h * hd + d] * k[j * ld + h * hd + d];
        scores[j] = s / sqrt((double)hd);
        if ((!mask || mask[j]) && scores[j] > max) max = scores[j];
    }
    for (int d = 0; d < hd; d++) out[d] = 0.0;
    for (int64_t j = 0; j < seq; j++) {
        if (mask && !mask[j]) continue;
        double p = exp(scores[j] - max);
        denom += p;
        for (int d = 0; d < hd; d++) out[d] += p * v[j * ld + h * hd + d];
    }
    for (int d = 0; d < hd; d++) out[d] = denom > 0.0 ? out[d] / denom : 0.0;
    free(scores);
}

static void check_attention(thread_pool *pool, int64_t seq, int heads, int hd, int mask_kind, float q_scale)
{
    int64_t n = seq * heads * hd;
    float *q = random_floats(n, q_scale), *k = random_floats(n, 1.0f), *v = random_floats(n, 1.0f);
    float *out = malloc((size_t)n * 4), *out1 = malloc((size_t)n * 4);
    uint8_t *mask = NULL;
    if (mask_kind) {
        mask = malloc((size_t)seq);
        for (int64_t j = 0; j < seq; j++) mask[j] = mask_kind == 2 ? 0 : (uint8_t)((j * 7 + 3) % 5 != 0);
    }
    memset(out, 0xFF, (size_t)n * 4);
    CHECK_OK(op_attention(OP_BACKEND_CPU(pool), q, k, v, seq, heads, hd, mask, out));
    double *want = malloc((size_t)hd * sizeof(double));
    int ok = 1;
    for (int64_t i = 0; i < seq && ok; i++)
        for (int h = 0; h < heads && ok; h++) {
            attention_reference(q, k, v, seq, heads, hd, mask, i, h, want);
            for (int d = 0; d < hd; d++) {
                double got = out[i * heads * hd + h * hd + d];
                if (!(fabs(got - want[d]) <= 2e-6)) {
                    fprintf(stderr, "  attention seq=%lld heads=%d hd=%d mask=%d: out[%lld,%d,%d] = %.9g, want %.9g\n",
                            (long long)seq, heads, hd, mask_kind, (long long)i, h, d, got, want[d]);
                    ok = 0;
                    break;
                }
            }
        }
    CHECK_MSG(ok, "attention seq=%lld heads=%d head_dim=%d mask=%d", (long long)seq, heads, hd, mask_kind);
    CHECK_OK(op_attention(NULL, q, k, v, seq, heads, hd, mask, out1));
    CHECK_MSG(memcmp(out, out1, (size_t)n * 4) == 0, "attention depends on threads: seq=%lld hd=%d", (long long)seq,
              hd);
    free(q), free(k), free(v), free(out), free(out1), free(mask), free(want);
}

static void test_attention_against_reference(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(3, &pool));
    check_attention(pool, 1, 1, 16, 0, 1.0f);
    check_attention(pool, 5, 3, 16, 0, 1.0f);
    check_attention(pool, 37, 2, 8, 1, 1.0f);
    check_attention(pool, 100, 2, 128, 0, 1.0f);
    check_attention(pool, 131, 3, 64, 1, 4.0f);   /* sharp softmax: the running max moves */
    check_attention(pool, 200, 1, 20, 1, 1.0f);   /* head_dim not a multiple of 8 */
    check_attention(pool, 70, 2, 80, 0, 1.0f);    /* the vision tower's head size */
    check_attention(pool, 300, 2, 16, 1, 1.0f);   /* several key tiles */
    check_attention(pool, 29, 2, 16, 2, 1.0f);    /* every key masked: zeros */
    check_attention(pool, 45, 2, 7, 1, 1.0f);     /* odd head_dim: scaled-q tail, partial V strip */
    check_attention(pool, 110, 1, 33, 0, 1.0f);   /* head_dim just past a 16-column strip */
    check_attention(pool, 290, 2, 128, 1, 1.0f);  /* full head size, a partial last key block */
    check_attention(pool, 150, 2, 32, 1, 12.0f);  /* sharp: probabilities spread over many octaves */
    thread_pool_destroy(pool);
}

static void test_attention_fully_masked_is_zero(void)
{
    float q[2 * 8], k[2 * 8], v[2 * 8], out[2 * 8];
    for (int i = 0; i < 16; i++) q[i] = k[i] = v[i] = 1.0f, out[i] = 5.0f;
    uint8_t mask[2] = {0, 0};
    CHECK_OK(op_attention(NULL, q, k, v, 2, 1, 8, mask, out));
    int zero = 1;
    for (int i = 0; i < 16; i++) zero &= out[i] == 0.0f;
    CHECK(zero);
}

/* The sizing function is exact: what op_attention takes, per class. */
static void test_attention_workspace_is_exact(void)
{
    const int64_t seqs[] = {1, 50, 97, 300};
    const int threads[] = {1, 3};
    for (int t = 0; t < 2; t++) {
        thread_pool *pool;
        CHECK_OK(thread_pool_create(threads[t], &pool));
        for (int s = 0; s < 4; s++) {
            int64_t seq = seqs[s], n = seq * 2 * 24;
            float *q = random_floats(n, 1.0f), *out = malloc((size_t)n * 4);
            mem_reset_peaks();
            mem_class_stats act0, scr0, act1, scr1;
            mem_get_stats(MEM_ACTIVATIONS, &act0);
            mem_get_stats(MEM_SCRATCH, &scr0);
            CHECK_OK(op_attention(OP_BACKEND_CPU(pool), q, q, q, seq, 2, 24, NULL, out));
            mem_get_stats(MEM_ACTIVATIONS, &act1);
            mem_get_stats(MEM_SCRATCH, &scr1);
            size_t tiles = op_attention_workspace_bytes(seq, 2, 24, threads[t], 1);
            size_t all = op_attention_workspace_bytes(seq, 2, 24, threads[t], 0);
            CHECK_MSG(act1.peak_bytes - act0.current_bytes == tiles, "seq %lld threads %d", (long long)seq, threads[t]);
            CHECK(scr1.peak_bytes - scr0.current_bytes == all - tiles);
            free(q), free(out);
        }
        thread_pool_destroy(pool);
    }
}

static void test_norms(void)
{
    const int64_t dims[] = {1, 7, 16, 33, 3072};
    for (size_t s = 0; s < 5; s++) {
        int64_t dim = dims[s], rows = 5;
        float *x = random_floats(rows * dim, 3.0f), *w = random_floats(dim, 1.0f), *b = random_floats(dim, 1.0f);
        for (int64_t i = 0; i < rows * dim; i++) x[i] += 10.0f; /* a large mean */
        float *y = malloc((size_t)(rows * dim) * 4);
        for (int variant = 0; variant < 4; variant++) {
            const float *wv = (variant & 1) ? w : NULL, *bv = (variant & 2) ? b : NULL;
            op_layer_norm(x, rows, dim, 1e-6f, wv, bv, y);
            int ok = 1;
            for (int64_t r = 0; r < rows; r++) {
                double mean = 0, var = 0;
                for (int64_t i = 0; i < dim; i++) mean += x[r * dim + i];
                mean /= (double)dim;
                for (int64_t i = 0; i < dim; i++) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
                var /= (double)dim;
                for (int64_t i = 0; i < dim; i++) {
                    double want = (x[r * dim + i] - mean) / sqrt(var + 1e-6) * (wv ? wv[i] : 1.0) + (bv ? bv[i] : 0.0);
                    ok &= fabs(y[r * dim + i] - want) <= 2e-5 * (1.0 + fabs(want));
                }
            }
            CHECK_MSG(ok, "layer_norm dim=%lld variant=%d", (long long)dim, variant);
            op_rms_norm(x, rows, dim, 1e-6f, wv, y);
            ok = 1;
            for (int64_t r = 0; r < rows; r++) {
                double ms = 0;
                for (int64_t i = 0; i < dim; i++) ms += (double)x[r * dim + i] * x[r * dim + i];
                ms /= (double)dim;
                for (int64_t i = 0; i < dim; i++) {
                    double want = x[r * dim + i] / sqrt(ms + 1e-6) * (wv ? wv[i] : 1.0);
                    ok &= fabs(y[r * dim + i] - want) <= 2e-6 * (1.0 + fabs(want));
                }
            }
            CHECK_MSG(ok, "rms_norm dim=%lld variant=%d", (long long)dim, variant);
        }
        /* in place is allowed */
        float *copy = malloc((size_t)(rows * dim) * 4);
        memcpy(copy, x, (size_t)(rows * dim) * 4);
        op_rms_norm(x, rows, dim, 1e-6f, w, y);
        op_rms_norm(copy, rows, dim, 1e-6f, w, copy);
        CHECK(memcmp(copy, y, (size_t)(rows * dim) * 4) == 0);
        free(x), free(w), free(b), free(y), free(copy);
    }
}

/* Rows whose mean square is the size of eps: where eps sits (inside the square root, as in
 * torch) changes the result by tens of percent; the rows above (mean squares near 100) hide
 * it. An all-zero row stays zero (eps keeps the division finite). */
static void test_norms_small_rows(void)
{
    const int64_t rows = 3, dim = 48;
    const float eps = 1e-6f;
    float *x = random_floats(rows * dim, 2e-3f), *y = malloc((size_t)(rows * dim) * 4);
    for (int64_t i = 0; i < dim; i++) x[2 * dim + i] = 0.0f;
    op_rms_norm(x, rows, dim, eps, NULL, y);
    int ok = 1;
    for (int64_t r = 0; r < rows; r++) {
        double ms = 0;
        for (int64_t i = 0; i < dim; i++) ms += (double)x[r * dim + i] * x[r * dim + i];
        ms /= (double)dim;
        for (int64_t i = 0; i < dim; i++) {
            double want = x[r * dim + i] / sqrt(ms + eps);
            ok &= fabs(y[r * dim + i] - want) <= 1e-5 * (1.0 + fabs(want)) && isfinite(y[r * dim + i]);
        }
    }
    CHECK_MSG(ok, "rms_norm with a mean square near eps");
    op_layer_norm(x, rows, dim, eps, NULL, NULL, y);
    ok = 1;
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; i++) mean += x[r * dim + i];
        mean /= (double)dim;
        for (int64_t i = 0; i < dim; i++) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
        var /= (double)dim;
        for (int64_t i = 0; i < dim; i++) {
            double want = (x[r * dim + i] - mean) / sqrt(var + eps);
            ok &= fabs(y[r * dim + i] - want) <= 1e-5 * (1.0 + fabs(want)) && isfinite(y[r * dim + i]);
        }
    }
    CHECK_MSG(ok, "layer_norm with a variance near eps");
    free(x), free(y);
}

static void test_activations(void)
{
    int64_t n = 1003;
    float *x = random_floats(n, 12.0f), *g = malloc((size_t)n * 4), *s = malloc((size_t)n * 4);
    x[0] = 0.0f, x[1] = -100.0f, x[2] = 100.0f, x[3] = 1e-8f, x[4] = -1e-8f;
    memcpy(g, x, (size_t)n * 4);
    memcpy(s, x, (size_t)n * 4);
    op_gelu_tanh(g, n);
    op_silu(s, n);
    int ok_g = 1, ok_s = 1;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        double want_g = 0.5 * v * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
        double want_s = v / (1.0 + exp(-v));
        ok_g &= fabs(g[i] - want_g) <= 1e-6 * fabs(want_g) + 1e-30 || fabs(g[i] - want_g) <= 1e-7 * fabs(v);
        ok_s &= fabs(s[i] - want_s) <= 1e-6 * fabs(want_s) + 1e-30 || fabs(s[i] - want_s) <= 1e-7 * fabs(v);
        if (!ok_g || !ok_s) {
            fprintf(stderr, "  x=%.9g gelu %.9g want %.9g silu %.9g want %.9g\n", v, g[i], want_g, s[i], want_s);
            break;
        }
    }
    CHECK(ok_g);
    CHECK(ok_s);
    free(x), free(g), free(s);
}

static void test_rope(void)
{
    const int head_dims[] = {2, 10, 16, 128};
    for (int c = 0; c < 4; c++) {
        int hd = head_dims[c], heads = 3;
        int64_t seq = 5, n = seq * heads * hd;
        float *x = random_floats(n, 1.0f), *orig = malloc((size_t)n * 4);
        float *cs = malloc((size_t)(seq * hd / 2) * 4), *sn = malloc((size_t)(seq * hd / 2) * 4);
        for (int64_t i = 0; i < seq * hd / 2; i++) {
            double angle = rand_uniform() * 6.0;
            cs[i] = (float)cos(angle);
            sn[i] = (float)sin(angle);
        }
        memcpy(orig, x, (size_t)n * 4);
        op_rope_interleaved(x, seq, heads, hd, cs, sn);
        int ok = 1;
        for (int64_t t = 0; t < seq; t++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < hd / 2; j++) {
                    const float *o = orig + (t * heads + h) * hd + 2 * j;
                    const float *r = x + (t * heads + h) * hd + 2 * j;
                    double c = cs[t * hd / 2 + j], s = sn[t * hd / 2 + j];
                    ok &= fabs(r[0] - (o[0] * c - o[1] * s)) <= 1e-6 && fabs(r[1] - (o[0] * s + o[1] * c)) <= 1e-6;
                }
        CHECK_MSG(ok, "rope head_dim=%d", hd);
        free(x), free(orig), free(cs), free(sn);
    }
}

/* CANVAS_CPU=portable picks the portable kernels (tests/test_cpu_portable.sh runs this
 * program and test_dit that way), CANVAS_CPU=avx2 the AVX2 ones; otherwise an x86-64 CPU
 * with AVX-512 F/DQ/BW/VL gets the avx512 ones, one with AVX2 and FMA the fast ones (every
 * such CPU has F16C too). */
static void test_kernel_choice(void)
{
    const char *forced = getenv("CANVAS_CPU");
    const char *kernels = ops_cpu_kernels();
    fprintf(stderr, "kernels: %s\n", kernels);
    if (forced && !strcmp(forced, "portable")) {
        CHECK(!strcmp(kernels, "portable"));
        return;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    const int fast = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = fast && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    const int fast = 0, avx512 = 0;
#endif
    const char *want = avx512 && !(forced && !strcmp(forced, "avx2")) ? "avx512" : fast ? "avx2" : "portable";
    CHECK_MSG(!strcmp(kernels, want), "%s, not %s", kernels, want);
}

int main(void)
{
    RUN(test_kernel_choice);
    RUN(test_linear_against_reference);
    RUN(test_linear_workspace_is_exact);
    RUN(test_linear_rejects_unknown_type);
    RUN(test_linear_frees_its_scratch);
    RUN(test_attention_against_reference);
    RUN(test_attention_fully_masked_is_zero);
    RUN(test_attention_workspace_is_exact);
    RUN(test_norms);
    RUN(test_norms_small_rows);
    RUN(test_activations);
    RUN(test_rope);
    return check_summary();
}
