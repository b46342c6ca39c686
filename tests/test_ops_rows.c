/* SPDX-License-Identifier: Apache-2.0 */
/* test_ops_rows.c — the fused row kernels (ops_rows.h) against double-precision
 * references, the layout copies (ops_layout.h) as exact permutations, and both through
 * the CPU backend: the same bits with a pool of 3 threads, a pool of 2 and none. A table
 * backend (ops_backend_impl.h) gets every call of the ops it has entries for, with their
 * arguments, and refuses the rest with CANVAS_ERR_UNSUPPORTED (returned or recorded). */
#include <stdint.h>

#include "ops/threadpool.h"
#include "base/status.h"
#include "check.h"
#include "ops/ops_backend_impl.h"
#include "ops/ops_conv.h"
#include "ops/ops_cpu.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static float rand_uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *random_floats(int64_t n, float scale)
{
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = rand_uniform() * scale;
    return p;
}

static float *copy_of(const float *x, int64_t n)
{
    float *p = malloc((size_t)n * sizeof(float));
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

static thread_pool *pools[3]; /* NULL (the calling thread), 2 and 3 threads */

enum { ROWS = 37, D = 48, SPLIT = 13 };

static void test_backend_workers(void)
{
    CHECK(op_backend_workers(NULL) == 1);
    CHECK(op_backend_workers(OP_BACKEND_CPU(NULL)) == 1);
    op_backend be = op_backend_cpu(pools[2]);
    CHECK(op_backend_workers(&be) == 3);
    CHECK(op_backend_pool(&be) == pools[2]);
}

/* y = LayerNorm(x) * (1 + scale) + shift with the split's two sets, eps 1e-6. */
static void test_norm_modulate(void)
{
    float *x = random_floats(ROWS * D, 3.0f), *mods = random_floats(4 * D, 0.5f);
    const float *shift[2] = {mods, mods + D}, *scale[2] = {mods + 2 * D, mods + 3 * D};
    float *y[3];
    for (int p = 0; p < 3; p++) {
        y[p] = malloc(ROWS * D * sizeof(float));
        op_norm_modulate(OP_BACKEND_CPU(pools[p]), x, ROWS, D, 1e-6f, shift, scale, SPLIT, y[p]);
    }
    double worst = 0;
    for (int64_t r = 0; r < ROWS; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += x[r * D + i];
        mean /= D;
        for (int i = 0; i < D; i++) var += (x[r * D + i] - mean) * (x[r * D + i] - mean);
        var /= D;
        const int set = r < SPLIT ? 0 : 1;
        for (int i = 0; i < D; i++) {
            double want = (x[r * D + i] - mean) / sqrt(var + 1e-6) * (1.0 + scale[set][i]) + shift[set][i];
            double err = fabs(y[0][r * D + i] - want);
            if (err > worst) worst = err;
        }
    }
    CHECK_MSG(worst < 1e-5, "max error %g\n", worst);
    CHECK(!memcmp(y[0], y[1], ROWS * D * sizeof(float)));
    CHECK(!memcmp(y[0], y[2], ROWS * D * sizeof(float)));
    for (int p = 0; p < 3; p++) free(y[p]);
    free(x);
    free(mods);
}

/* y += gate * x: row r with gate[0] below the split, gate[1] from it; the same gate
 * twice is one gate for every row. */
static void test_gated_add(void)
{
    float *x = random_floats(ROWS * D, 1.0f), *y0 = random_floats(ROWS * D, 1.0f), *gates = random_floats(2 * D, 1.0f);
    const float *gate[2] = {gates, gates + D}, *same[2] = {gates, gates};
    for (int p = 0; p < 3; p++) {
        float *y = copy_of(y0, ROWS * D), *z = copy_of(y0, ROWS * D);
        op_gated_add(OP_BACKEND_CPU(pools[p]), y, x, ROWS, D, gate, SPLIT);
        op_gated_add(OP_BACKEND_CPU(pools[p]), z, x, ROWS, D, same, SPLIT);
        int exact = 1, exact_same = 1;
        for (int64_t r = 0; r < ROWS; r++)
            for (int i = 0; i < D; i++) {
                float g = gate[r < SPLIT ? 0 : 1][i], base = y0[r * D + i], add = x[r * D + i];
                float want = base + g * add, want_same = base + gates[i] * add;
                exact &= y[r * D + i] == want;
                exact_same &= z[r * D + i] == want_same;
            }
        CHECK(exact);
        CHECK(exact_same);
        free(y);
        free(z);
    }
    free(x);
    free(y0);
    free(gates);
}

/* op_gelu_tanh_rows is op_gelu_tanh over the whole matrix, whatever the pool. */
static void test_gelu_rows(void)
{
    float *x = random_floats(ROWS * D, 4.0f), *want = copy_of(x, ROWS * D);
    op_gelu_tanh(want, ROWS * D);
    CHECK_NEAR(want[0], 0.5f * x[0] * (1.0f + tanhf(0.7978845608f * (x[0] + 0.044715f * x[0] * x[0] * x[0]))), 1e-5);
    for (int p = 0; p < 3; p++) {
        float *y = copy_of(x, ROWS * D);
        op_gelu_tanh_rows(OP_BACKEND_CPU(pools[p]), y, ROWS, D);
        CHECK(!memcmp(y, want, ROWS * D * sizeof(float)));
        free(y);
    }
    free(x);
    free(want);
}

/* Per-head RMSNorm with the split's weights, then interleaved RoPE, against the same
 * computed in double. */
static void test_qk_norm_rope(void)
{
    enum { HEADS = 3, HD = 16, PAIRS = HD / 2, W = HEADS * HD };
    float *q0 = random_floats(ROWS * W, 2.0f), *k0 = random_floats(ROWS * W, 2.0f);
    float *norms = random_floats(4 * HD, 1.0f), *angles = random_floats(ROWS * PAIRS, 3.0f);
    float *cos_t = malloc(ROWS * PAIRS * sizeof(float)), *sin_t = malloc(ROWS * PAIRS * sizeof(float));
    for (int i = 0; i < ROWS * PAIRS; i++) cos_t[i] = cosf(angles[i]), sin_t[i] = sinf(angles[i]);
    op_qk_norm_rope_params prm = {.heads = HEADS, .head_dim = HD, .eps = 1e-6f, .split = SPLIT,
                                  .norm_q = {norms, norms + HD}, .norm_k = {norms + 2 * HD, norms + 3 * HD},
                                  .cos = cos_t, .sin = sin_t};
    float *q[3], *k[3];
    for (int p = 0; p < 3; p++) {
        q[p] = copy_of(q0, ROWS * W);
        k[p] = copy_of(k0, ROWS * W);
        op_qk_norm_rope(OP_BACKEND_CPU(pools[p]), q[p], k[p], ROWS, &prm);
    }
    double worst = 0;
    for (int which = 0; which < 2; which++) {
        const float *in = which ? k0 : q0, *out = which ? k[0] : q[0];
        for (int64_t r = 0; r < ROWS; r++)
            for (int h = 0; h < HEADS; h++) {
                const float *row = in + r * W + h * HD, *w = (which ? prm.norm_k : prm.norm_q)[r < SPLIT ? 0 : 1];
                double ss = 0, n[HD];
                for (int i = 0; i < HD; i++) ss += (double)row[i] * row[i];
                for (int i = 0; i < HD; i++) n[i] = row[i] / sqrt(ss / HD + 1e-6) * w[i];
                for (int j = 0; j < PAIRS; j++) {
                    double c = cos_t[r * PAIRS + j], s = sin_t[r * PAIRS + j];
                    double a = n[2 * j] * c - n[2 * j + 1] * s, b = n[2 * j + 1] * c + n[2 * j] * s;
                    double ea = fabs(out[r * W + h * HD + 2 * j] - a), eb = fabs(out[r * W + h * HD + 2 * j + 1] - b);
                    if (ea > worst) worst = ea;
                    if (eb > worst) worst = eb;
                }
            }
    }
    CHECK_MSG(worst < 2e-5, "max error %g\n", worst);
    for (int p = 1; p < 3; p++) {
        CHECK(!memcmp(q[p], q[0], ROWS * W * sizeof(float)));
        CHECK(!memcmp(k[p], k[0], ROWS * W * sizeof(float)));
    }
    for (int p = 0; p < 3; p++) free(q[p]), free(k[p]);
    free(q0), free(k0), free(norms), free(angles), free(cos_t), free(sin_t);
}

/* The layout copies are exact: planar -> channels-last -> planar is the identity (the
 * clamp only clamps), a gather undoes a scatter, column slices tile the matrix. */
static void test_layout(void)
{
    enum { PIXELS = 35, CH = 5, N = 9, WIDTH = 7 };
    float *planar = random_floats(PIXELS * CH, 2.0f), *last = malloc(PIXELS * CH * sizeof(float));
    float *back = malloc(PIXELS * CH * sizeof(float));
    op_to_channels_last(NULL, planar, PIXELS, CH, last);
    CHECK(last[3 * CH + 2] == planar[2 * PIXELS + 3]);
    op_to_channels_first(NULL, last, PIXELS, CH, 0, back);
    CHECK(!memcmp(back, planar, PIXELS * CH * sizeof(float)));
    op_to_channels_first(NULL, last, PIXELS, CH, 1, back);
    int clamped = 1;
    for (int i = 0; i < PIXELS * CH; i++)
        clamped &= back[i] == (planar[i] < -1.0f ? -1.0f : planar[i] > 1.0f ? 1.0f : planar[i]);
    CHECK(clamped);

    const int64_t index[N] = {4, 0, 8, 2, 6, 1, 7, 3, 5};
    float *rows = random_floats(N * WIDTH, 1.0f), *gathered = malloc(N * WIDTH * sizeof(float));
    float *restored = malloc(N * WIDTH * sizeof(float));
    op_gather_rows(NULL, rows, index, N, WIDTH, gathered);
    CHECK(!memcmp(gathered + 2 * WIDTH, rows + 8 * WIDTH, WIDTH * sizeof(float)));
    op_scatter_rows(NULL, gathered, index, N, WIDTH, restored);
    CHECK(!memcmp(restored, rows, N * WIDTH * sizeof(float)));

    float left[N * 3], right[N * 4];
    op_copy_columns(NULL, rows, N, WIDTH, 0, 3, left);
    op_copy_columns(NULL, rows, N, WIDTH, 3, 4, right);
    int tiled = 1;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < WIDTH; c++) tiled &= rows[r * WIDTH + c] == (c < 3 ? left[r * 3 + c] : right[r * 4 + c - 3]);
    CHECK(tiled);
    free(planar), free(last), free(back), free(rows), free(gathered), free(restored);
}

/* A window of planar images lands where it should, clamped on request, and nothing else
 * moves; the seam blend is the ramp of diffusers' blend_v / blend_h, bit for bit. */
static void test_window_and_seam(void)
{
    enum { C = 2, H = 6, W = 7 };
    float *src = random_floats(C * H * W, 2.0f), *dst = random_floats(C * H * W, 2.0f), *dst0 = copy_of(dst, C * H * W);
    const op_window win = {.channels = C, .height = 3, .width = 4, .src_height = H, .src_width = W, .src_y = 2,
                           .src_x = 1, .dst_height = H, .dst_width = W, .dst_y = 1, .dst_x = 3, .clamp = 1};
    op_copy_window(NULL, &win, src, dst);
    int right = 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const int inside = y >= 1 && y < 4 && x >= 3 && x < 7;
                float v = inside ? src[(c * H + y + 1) * W + x - 2] : dst0[(c * H + y) * W + x];
                if (inside) v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
                right &= dst[(c * H + y) * W + x] == v;
            }
    CHECK(right);

    /* rows: a [C, 5, W] above b [C, H, W] with extent 3; columns: extent 9 is cut to a's width */
    float *a = random_floats(C * 5 * W, 1.0f), *b = copy_of(dst0, C * H * W);
    op_blend_seam(NULL, a, 5, W, b, H, W, C, 3, 0);
    int rows_right = 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float want = dst0[(c * H + y) * W + x];
                if (y < 3) {
                    const float keep = (float)(1.0 - y / 3.0), take = (float)(y / 3.0);
                    float mine = a[(c * 5 + 2 + y) * W + x] * keep;
                    float theirs = want * take;
                    want = mine + theirs;
                }
                rows_right &= b[(c * H + y) * W + x] == want;
            }
    CHECK(rows_right);
    CHECK(b[0] == a[2 * W]); /* the first row of the seam is all a */
    memcpy(b, dst0, C * H * W * sizeof(float));
    op_blend_seam(NULL, src, H, W, b, H, W, C, 9, 1);
    CHECK(b[0] == src[0] && b[W] == src[W]);       /* column 0 is all a's first column (e = W) */
    CHECK(b[W - 1] != dst0[W - 1] || src[W - 1] == dst0[W - 1]);
    free(src), free(dst), free(dst0), free(a), free(b);
}

/* op_rms_norm_rows and op_silu_rows are op_rms_norm and op_silu bit for bit, whatever the
 * pool, in place or not; the values are RMSNorm and SiLU (checked in double on a few). */
static void test_rms_norm_rows(void)
{
    float *x = random_floats(ROWS * D, 3.0f), *weight = random_floats(D, 1.0f), *want = copy_of(x, ROWS * D);
    float *want_plain = copy_of(x, ROWS * D);
    op_rms_norm(x, ROWS, D, 1e-6f, weight, want);
    op_rms_norm(x, ROWS, D, 1e-6f, NULL, want_plain);
    double ms = 0;
    for (int i = 0; i < D; i++) ms += (double)x[5 * D + i] * x[5 * D + i];
    const double inv = 1.0 / sqrt(ms / D + 1e-6);
    CHECK_NEAR(want[5 * D + 7], x[5 * D + 7] * inv * weight[7], 1e-5);
    CHECK_NEAR(want_plain[5 * D + 3], x[5 * D + 3] * inv, 1e-5);
    for (int p = 0; p < 3; p++) {
        float *y = malloc(ROWS * D * sizeof(float)), *z = copy_of(x, ROWS * D), *u = malloc(ROWS * D * sizeof(float));
        op_rms_norm_rows(OP_BACKEND_CPU(pools[p]), x, ROWS, D, 1e-6f, weight, y);
        op_rms_norm_rows(OP_BACKEND_CPU(pools[p]), z, ROWS, D, 1e-6f, weight, z); /* in place */
        op_rms_norm_rows(OP_BACKEND_CPU(pools[p]), x, ROWS, D, 1e-6f, NULL, u);
        CHECK(!memcmp(y, want, ROWS * D * sizeof(float)));
        CHECK(!memcmp(z, want, ROWS * D * sizeof(float)));
        CHECK(!memcmp(u, want_plain, ROWS * D * sizeof(float)));
        free(y), free(z), free(u);
    }
    op_rms_norm_rows(OP_BACKEND_CPU(pools[2]), x, 0, D, 1e-6f, weight, NULL); /* no rows: nothing touched */
    free(x), free(weight), free(want), free(want_plain);
}

static void test_silu_rows(void)
{
    /* below one run, tails of every length mod 8, and several runs per worker */
    static const int64_t sizes[] = {1, 7, 8, 13, 64, 65, 203, 1000, 4099};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        float *x = random_floats(n, 6.0f), *want = copy_of(x, n);
        op_silu(want, n);
        const double x0 = x[n - 1];
        CHECK_NEAR(want[n - 1], x0 / (1.0 + exp(-x0)), 1e-5);
        for (int p = 0; p < 3; p++) {
            float *y = copy_of(x, n);
            op_silu_rows(OP_BACKEND_CPU(pools[p]), y, n);
            CHECK_MSG(!memcmp(y, want, (size_t)n * sizeof(float)), "n = %lld, pool %d", (long long)n, p);
            free(y);
        }
        free(x), free(want);
    }
    op_silu_rows(OP_BACKEND_CPU(pools[1]), NULL, 0);
}

/* ---- a table backend ---- */

typedef struct stub_state {
    int calls;              /* entries called */
    canvas_status answer;   /* what add_inplace returns */
    int heads, kv_heads, causal;
    const uint8_t *key_mask;
    void *last_y;           /* add_inplace's y */
} stub_state;

static canvas_status stub_add(void *ctx, float *y, const float *x, int64_t n)
{
    stub_state *s = ctx;
    (void)x, (void)n;
    s->calls++;
    s->last_y = y;
    return s->answer == CANVAS_OK ? CANVAS_OK : status_fail(s->answer, "stub: add_inplace failed on purpose");
}

static canvas_status stub_attention(void *ctx, const float *q, const float *k, const float *v, int64_t seq, int heads,
                                    int kv_heads, int head_dim, const uint8_t *key_mask, int causal, float *out)
{
    stub_state *s = ctx;
    (void)q, (void)k, (void)v, (void)seq, (void)head_dim, (void)out;
    s->calls++;
    s->heads = heads, s->kv_heads = kv_heads, s->causal = causal, s->key_mask = key_mask;
    return CANVAS_OK;
}

/* Entries for add_inplace and attention only: every other op is refused, and no CPU kernel
 * runs over the arguments (x keeps its values). */
static void test_table_backend(void)
{
    static const op_backend_table stub = {.name = "stub", .add_inplace = stub_add, .attention = stub_attention};
    stub_state state = {.answer = CANVAS_OK};
    op_backend be = op_backend_table_make(&stub, &state);
    float x[16] = {1, 2, 3}, y[16] = {0}, keep[16];
    memcpy(keep, x, sizeof x);
    const float *vec[2] = {x, x};
    const uint8_t mask[4] = {1, 1, 0, 1};
    CHECK(op_backend_check(NULL) == CANVAS_OK);
    CHECK(op_backend_check(OP_BACKEND_CPU(pools[1])) == CANVAS_OK);
    CHECK(op_backend_workers(&be) == 1);

    op_add_inplace(&be, y, x, 16);
    CHECK(state.calls == 1 && state.last_y == y);
    CHECK(op_backend_check(&be) == CANVAS_OK);
    CHECK(y[0] == 0.0f); /* the stub computes nothing, and the CPU did not either */

    CHECK_OK(op_attention(&be, x, x, x, 4, 2, 8, mask, y));
    CHECK(state.calls == 2 && state.heads == 2 && state.kv_heads == 2 && state.causal == 0 && state.key_mask == mask);
    CHECK_OK(op_attention_grouped(&be, x, x, x, 4, 4, 2, 4, 1, y));
    CHECK(state.calls == 3 && state.heads == 4 && state.kv_heads == 2 && state.causal == 1 && !state.key_mask);

    /* status ops without an entry return the refusal */
    weight_view w = {.type = DTYPE_F32, .data = x, .out_features = 4, .in_features = 4};
    CHECK_FAILS(op_linear(&be, x, 1, &w, NULL, y), CANVAS_ERR_UNSUPPORTED,
                "op_linear has no kernel on the stub backend");
    conv2d_params cp = {0};
    CHECK_FAILS(op_conv2d(&be, &cp, x, &w, NULL, y), CANVAS_ERR_UNSUPPORTED, "op_conv2d has no kernel on the stub");
    CHECK(op_backend_check(&be) == CANVAS_OK); /* returned, not recorded */

    /* void ops without an entry record it; the first failure stays, the check clears it */
    op_silu_rows(&be, x, 16);
    op_rms_norm_rows(&be, x, 2, 8, 1e-6f, NULL, x);
    op_gated_add(&be, y, x, 2, 8, vec, 1);
    op_gather_rows(&be, x, (const int64_t[]){0}, 1, 4, y);
    CHECK(!memcmp(x, keep, sizeof x) && y[0] == 0.0f);
    CHECK(strstr(canvas_last_error(), "op_silu_rows has no kernel on the stub backend") != NULL);
    CHECK(op_backend_check(&be) == CANVAS_ERR_UNSUPPORTED);
    CHECK(op_backend_check(&be) == CANVAS_OK);

    /* an entry's own failure is recorded the same way, and a later refusal does not replace it */
    state.answer = CANVAS_ERR_IO;
    op_add_inplace(&be, y, x, 16);
    op_copy_columns(&be, x, 2, 8, 0, 4, y);
    CHECK(strstr(canvas_last_error(), "failed on purpose") != NULL);
    CHECK(op_backend_check(&be) == CANVAS_ERR_IO);
    CHECK(op_backend_check(&be) == CANVAS_OK);
    CHECK(state.calls == 4);
}

int main(void)
{
    if (thread_pool_create(2, &pools[1]) != CANVAS_OK || thread_pool_create(3, &pools[2]) != CANVAS_OK) return 1;
    RUN(test_backend_workers);
    RUN(test_norm_modulate);
    RUN(test_gated_add);
    RUN(test_gelu_rows);
    RUN(test_qk_norm_rope);
    RUN(test_rms_norm_rows);
    RUN(test_silu_rows);
    RUN(test_table_backend);
    RUN(test_layout);
    RUN(test_window_and_seam);
    thread_pool_destroy(pools[1]);
    thread_pool_destroy(pools[2]);
    return check_summary();
}
