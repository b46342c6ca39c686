/* SPDX-License-Identifier: Apache-2.0 */
/* test_cuda_ops.c — the CUDA backend against its CPU twins, on a GPU (built with
 * -DCANVAS_CUDA=ON only; tools/device-check.sh runs it). Without a CUDA device it prints why
 * and exits 77, which ctest counts as skipped: it never passes without having compared.
 *
 * Every op gets random inputs (test_uniform, fixed seeds), runs on the host through the CPU
 * kernels (a NULL backend) and on the device through a CUDA backend, and the outputs are
 * compared within the bounds stated at each check:
 *   op_linear   |gpu - cpu| <= 2^-7 sum_k |x_k w_k| + 1e-6 per element: the GPU rounds x to
 *               bf16 (relative 2^-9) and decodes weights to bf16 (2^-9 more unless they are
 *               bf16 already); f32 accumulation on both sides in other orders.
 *   attention   2e-5 absolute (|v| < 1, so outputs are < 1): f32 online softmax on both.
 *   norms, RoPE 1e-5 relative to max(1, |cpu|): f32 reductions in other orders (rms_norm_rows
 *               and silu_rows too: SiLU through expf on both sides).
 *   elementwise 2e-6 relative (fused multiply-adds on the GPU), copies exact.
 *   op_conv2d   op_linear's bound over the im2col row (sum |col w|, the GPU runs the same
 *               GEMM) + 1e-5 relative; the VAE norm 1e-5 relative; the layout copies and
 *               the seam blend exact.
 * It also moves 150 MiB through the pinned staging ring both ways (exact), and fails every
 * allocation of a device + backend + GEMM in turn (fail-at-N) checking each ends cleanly. */
#include <math.h>

#include "check.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "ops/ops_conv.h"
#include "ops/ops_cuda.h"
#include "ops/ops_layout.h"
#include "ops/ops_rows.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

static mem_device *gpu;
static op_cuda *cuda;

static float *rand_host(size_t n, uint32_t seed, float scale)
{
    float *p = NULL;
    if (mem_alloc((void **)&p, n * sizeof *p, MEM_SCRATCH) != CANVAS_OK) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = scale * test_uniform(&seed);
    return p;
}

/* A device copy of `bytes` of host memory. */
static void *up(const void *host, size_t bytes)
{
    void *d = NULL;
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, bytes, 256, &d));
    if (d) CHECK_OK(mem_copy(gpu, d, mem_device_cpu(), host, bytes));
    return d;
}

static void down(void *host, const void *d, size_t bytes) { CHECK_OK(mem_copy(mem_device_cpu(), host, gpu, d, bytes)); }

static void release(void *d)
{
    if (d) mem_device_free(gpu, d);
}

/* max over i of |got - want| / max(1, |want|) */
static double rel_err(const float *got, const float *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

/* ---- op_linear in every weight format ---- */

enum { K = 128, N = 96 };

static void linear_case(const char *label, dtype type, quant_format qf, int per_channel, int64_t m)
{
    float *w32 = rand_host((size_t)N * K, 7, 0.5f), *x = rand_host((size_t)m * K, 11, 1.0f), *bias = rand_host(N, 13, 0.1f);
    float *want = NULL, *got = NULL, *wrow = NULL;
    void *stored = NULL;
    quant_params qp;
    weight_view w = {.type = type, .out_features = N, .in_features = K};
    size_t stored_bytes = (size_t)N * K * dtype_size(type);
    CHECK_OK(mem_alloc((void **)&want, (size_t)m * N * sizeof *want, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&got, (size_t)m * N * sizeof *got, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&wrow, K * sizeof *wrow, MEM_SCRATCH));
    if (qf != QUANT_NONE) {
        CHECK_OK(quant_layout(qf, per_channel, N, K, &qp));
        stored_bytes = qp.bytes;
        CHECK_OK(mem_calloc(&stored, 1, stored_bytes, MEM_SCRATCH));
        CHECK_OK(quant_quantize(&qp, DTYPE_F32, w32, stored, label));
        w.type = DTYPE_U8;
        w.quant = &qp;
    } else {
        CHECK_OK(mem_alloc(&stored, stored_bytes, MEM_SCRATCH));
        CHECK_OK(dtype_from_f32(type, w32, stored, (size_t)N * K));
    }
    w.data = stored;
    CHECK_OK(op_linear(NULL, x, m, &w, bias, want));

    void *dx = up(x, (size_t)m * K * 4), *dw = up(stored, stored_bytes), *db = up(bias, N * 4), *dy = NULL;
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, (size_t)m * N * 4, 256, &dy));
    weight_view dwv = w;
    dwv.data = dw;
    op_backend be = op_backend_cuda(cuda);
    CHECK_OK(op_linear(&be, dx, m, &dwv, db, dy));
    down(got, dy, (size_t)m * N * 4);

    int bad = 0;
    for (int64_t n = 0; n < N && !bad; n++) {
        if (qf != QUANT_NONE) quant_dequantize_row(&qp, stored, n, wrow);
        else dtype_to_f32(type, (const char *)stored + (size_t)n * K * dtype_size(type), wrow, K);
        for (int64_t r = 0; r < m && !bad; r++) {
            double mass = 0;
            for (int k = 0; k < K; k++) mass += fabs((double)x[r * K + k] * wrow[k]);
            double diff = fabs((double)got[r * N + n] - want[r * N + n]);
            if (!(diff <= mass / 128 + 1e-6)) {
                CHECK_MSG(0, "%s m=%lld: y[%lld, %lld] = %g, cpu %g (bound %g)", label, (long long)m, (long long)r,
                          (long long)n, got[r * N + n], want[r * N + n], mass / 128 + 1e-6);
                bad = 1;
            }
        }
    }
    CHECK(!bad);
    release(dx), release(dw), release(db), release(dy);
    mem_free(w32), mem_free(x), mem_free(bias), mem_free(want), mem_free(got), mem_free(wrow), mem_free(stored);
}

static void test_linear(void)
{
    for (int64_t m = 1; m <= 70; m += 69) {
        linear_case("bf16", DTYPE_BF16, QUANT_NONE, 0, m);
        linear_case("f32", DTYPE_F32, QUANT_NONE, 0, m);
        linear_case("f16", DTYPE_F16, QUANT_NONE, 0, m);
        linear_case("fp8 e4m3", DTYPE_F32, QUANT_FP8_E4M3, 0, m);
        linear_case("fp8 e4m3 per row", DTYPE_F32, QUANT_FP8_E4M3, 1, m);
        linear_case("fp8 e5m2", DTYPE_F32, QUANT_FP8_E5M2, 0, m);
        linear_case("nf4", DTYPE_F32, QUANT_NF4, 0, m);
        linear_case("q8_0", DTYPE_F32, QUANT_Q8_0, 0, m);
    }
}

/* ---- attention ---- */

static void attention_case(int64_t seq, int heads, int kv_heads, int head_dim, int causal, int masked)
{
    size_t qn = (size_t)seq * heads * head_dim, kn = (size_t)seq * kv_heads * head_dim;
    float *q = rand_host(qn, 21, 1.0f), *k = rand_host(kn, 22, 1.0f), *v = rand_host(kn, 23, 1.0f);
    float *want = rand_host(qn, 1, 0), *got = rand_host(qn, 1, 0);
    uint8_t mask[256];
    for (int64_t i = 0; i < seq; i++) mask[i] = (uint8_t)(i % 5 != 3);
    if (heads == kv_heads && !causal)
        CHECK_OK(op_attention(NULL, q, k, v, seq, heads, head_dim, masked ? mask : NULL, want));
    else
        CHECK_OK(op_attention_grouped(NULL, q, k, v, seq, heads, kv_heads, head_dim, causal, want));
    void *dq = up(q, qn * 4), *dk = up(k, kn * 4), *dv = up(v, kn * 4), *dm = up(mask, 256), *dout = NULL;
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, qn * 4, 256, &dout));
    op_backend be = op_backend_cuda(cuda);
    if (heads == kv_heads && !causal)
        CHECK_OK(op_attention(&be, dq, dk, dv, seq, heads, head_dim, masked ? dm : NULL, dout));
    else
        CHECK_OK(op_attention_grouped(&be, dq, dk, dv, seq, heads, kv_heads, head_dim, causal, dout));
    down(got, dout, qn * 4);
    double worst = 0;
    for (size_t i = 0; i < qn; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    CHECK_MSG(worst <= 2e-5, "attention seq %lld heads %d/%d dim %d causal %d mask %d: %g", (long long)seq, heads,
              kv_heads, head_dim, causal, masked, worst);
    release(dq), release(dk), release(dv), release(dm), release(dout);
    mem_free(q), mem_free(k), mem_free(v), mem_free(want), mem_free(got);
}

static void test_attention(void)
{
    attention_case(77, 3, 3, 64, 0, 0);
    attention_case(77, 3, 3, 64, 0, 1);
    attention_case(200, 2, 2, 128, 0, 1);
    attention_case(50, 4, 2, 128, 1, 0);
    attention_case(33, 4, 1, 96, 0, 0);
}

/* ---- the row ops ---- */

static void test_rows(void)
{
    enum { ROWS = 10, D = 300, SPLIT = 4 };
    const size_t n = (size_t)ROWS * D;
    float *x = rand_host(n, 31, 2.0f), *y = rand_host(n, 32, 1.0f), *vec = rand_host(4 * D, 33, 0.5f);
    float *want = rand_host(n, 1, 0), *got = rand_host(n, 1, 0);
    float *dx = up(x, n * 4), *dy = up(y, n * 4), *dvec = up(vec, 4 * D * 4);
    op_backend be = op_backend_cuda(cuda);

    /* norm_modulate */
    const float *shift[2] = {vec, vec + D}, *scale[2] = {vec + 2 * D, vec + 3 * D};
    const float *dshift[2] = {dvec, dvec + D}, *dscale[2] = {dvec + 2 * D, dvec + 3 * D};
    op_norm_modulate(NULL, x, ROWS, D, 1e-6f, shift, scale, SPLIT, want);
    op_norm_modulate(&be, dx, ROWS, D, 1e-6f, dshift, dscale, SPLIT, dy);
    CHECK_OK(op_backend_check(&be));
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "norm_modulate %g", rel_err(got, want, n));

    /* gated_add: y += gate * x over the result above */
    const float *gate[2] = {vec, vec + 2 * D}, *dgate[2] = {dvec, dvec + 2 * D};
    op_gated_add(NULL, want, x, ROWS, D, gate, SPLIT);
    op_gated_add(&be, dy, dx, ROWS, D, dgate, SPLIT);
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "gated_add %g", rel_err(got, want, n));

    /* gelu_tanh_rows, add_inplace */
    op_gelu_tanh_rows(NULL, want, ROWS, D);
    op_gelu_tanh_rows(&be, dy, ROWS, D);
    op_add_inplace(NULL, want, x, (int64_t)n);
    op_add_inplace(&be, dy, dx, (int64_t)n);
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "gelu + add %g", rel_err(got, want, n));

    /* rms_norm_rows (with a weight, then in place without), silu_rows */
    op_rms_norm_rows(NULL, x, ROWS, D, 1e-6f, vec, want);
    op_rms_norm_rows(&be, dx, ROWS, D, 1e-6f, dvec, dy);
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "rms_norm_rows %g", rel_err(got, want, n));
    op_rms_norm_rows(NULL, want, ROWS, D, 1e-6f, NULL, want);
    op_rms_norm_rows(&be, dy, ROWS, D, 1e-6f, NULL, dy);
    op_silu_rows(NULL, want, (int64_t)n);
    op_silu_rows(&be, dy, (int64_t)n);
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "rms_norm_rows in place + silu_rows %g", rel_err(got, want, n));
    CHECK_OK(op_backend_check(&be));

    /* copy_columns: exact */
    op_copy_columns(NULL, x, ROWS, D, 17, 100, want);
    op_copy_columns(&be, dx, ROWS, D, 17, 100, dy);
    down(got, dy, ROWS * 100 * 4);
    CHECK(memcmp(got, want, ROWS * 100 * 4) == 0);

    /* qk_norm_rope: 2 heads of 64 per row; cos/sin [ROWS, 32] from vec */
    op_qk_norm_rope_params p = {.heads = 2, .head_dim = 64, .eps = 1e-6f, .split = SPLIT,
                                .norm_q = {vec, vec + 64}, .norm_k = {vec + 128, vec + 192},
                                .cos = vec + 300, .sin = vec + 300 + ROWS * 32};
    op_qk_norm_rope_params dp = p;
    dp.norm_q[0] = dvec, dp.norm_q[1] = dvec + 64, dp.norm_k[0] = dvec + 128, dp.norm_k[1] = dvec + 192;
    dp.cos = dvec + 300, dp.sin = dvec + 300 + ROWS * 32;
    const size_t qk = (size_t)ROWS * 128;
    memcpy(want, x, qk * 4), memcpy(want + qk, y, qk * 4);
    op_qk_norm_rope(NULL, want, want + qk, ROWS, &p);
    CHECK_OK(mem_copy(gpu, dy, mem_device_cpu(), x, qk * 4));
    CHECK_OK(mem_copy(gpu, dy + qk, mem_device_cpu(), y, qk * 4));
    op_qk_norm_rope(&be, dy, dy + qk, ROWS, &dp);
    down(got, dy, 2 * qk * 4);
    CHECK_MSG(rel_err(got, want, 2 * qk) <= 1e-5, "qk_norm_rope %g", rel_err(got, want, 2 * qk));
    CHECK_OK(op_backend_check(&be));

    /* the text encoder's: rope_half_rows (2 heads of 64, cos/sin [ROWS, 32] from vec),
     * swiglu_rows, gelu_erf_rows within the norms' bound; the row permutations exact */
    memcpy(want, x, qk * 4);
    op_rope_half_rows(NULL, want, ROWS, 2, 64, vec + 300, vec + 300 + ROWS * 32);
    CHECK_OK(mem_copy(gpu, dy, mem_device_cpu(), x, qk * 4));
    op_rope_half_rows(&be, dy, ROWS, 2, 64, dvec + 300, dvec + 300 + ROWS * 32);
    down(got, dy, qk * 4);
    CHECK_MSG(rel_err(got, want, qk) <= 1e-5, "rope_half_rows %g", rel_err(got, want, qk));
    memcpy(want, y, n * 4);
    CHECK_OK(mem_copy(gpu, dy, mem_device_cpu(), y, n * 4));
    op_swiglu_rows(NULL, want, x, (int64_t)n);
    op_swiglu_rows(&be, dy, dx, (int64_t)n);
    op_gelu_erf_rows(NULL, want, (int64_t)n);
    op_gelu_erf_rows(&be, dy, (int64_t)n);
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "swiglu_rows + gelu_erf_rows %g", rel_err(got, want, n));
    int64_t index[ROWS];
    for (int r = 0; r < ROWS; r++) index[r] = (ROWS - 1 - r + 3) % ROWS;
    int64_t *dindex = up(index, sizeof index);
    op_gather_rows(NULL, x, index, ROWS, D, want);
    op_gather_rows(&be, dx, dindex, ROWS, D, dy);
    down(got, dy, n * 4);
    CHECK(memcmp(got, want, n * 4) == 0);
    op_scatter_rows(&be, dy, dindex, ROWS, D, dx);
    down(got, dx, n * 4);
    CHECK(memcmp(got, x, n * 4) == 0);
    CHECK_OK(op_backend_check(&be));
    release(dindex);

    /* an op the "cuda" table has no entry for is refused, never run on the CPU over device memory */
    op_copy_window(&be, &(op_window){.channels = 1, .height = 1, .width = 1, .src_height = 1, .src_width = 1,
                                     .dst_height = 1, .dst_width = 1}, dx, dy);
    CHECK(op_backend_check(&be) == CANVAS_ERR_UNSUPPORTED);
    CHECK(strstr(canvas_last_error(), "op_copy_window has no kernel on the cuda backend") != NULL);

    release(dx), release(dy), release(dvec);
    mem_free(x), mem_free(y), mem_free(vec), mem_free(want), mem_free(got);
}

/* ---- the VAE's ops: op_conv2d as im2col + the bf16 GEMM, its norm, the layout copies ---- */

typedef struct conv_case {
    const char *label;
    int height, width, in, out, kernel, stride, upsample, norm, accumulate;
    dtype type;
} conv_case;

/* A copy of x (as f32 [pixels, in]) with every value |v|, after norm + SiLU when `gamma`:
 * convolved with |w| it gives each output's sum of |col x w|, op_linear's error mass. */
static float *abs_inputs(const float *x, int64_t pixels, int in, const float *gamma)
{
    float *a = rand_host((size_t)(pixels * in), 1, 0.0f);
    for (int64_t q = 0; q < pixels && a; q++) {
        if (gamma) op_channel_rms_norm_silu_pixel(x + q * in, in, gamma, a + q * in);
        else memcpy(a + q * in, x + q * in, (size_t)in * sizeof *a);
        for (int c = 0; c < in; c++) a[q * in + c] = fabsf(a[q * in + c]);
    }
    return a;
}

/* |gpu - cpu| <= 2^-7 sum |col w| + 1e-5 max(1, |cpu|) per output (op_linear's bound; the
 * second term: the accumulated y and the bias added apart on the GPU). */
static void conv_case_run(const conv_case *cc)
{
    conv2d_params p = {.height = cc->height, .width = cc->width, .in_channels = cc->in, .out_channels = cc->out,
                       .kernel = cc->kernel, .stride = cc->stride, .upsample = cc->upsample,
                       .accumulate = cc->accumulate};
    if (cc->stride == 2) p.pad_bottom = p.pad_right = 1;
    else p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = cc->kernel / 2;
    const int64_t pixels = (int64_t)cc->height * cc->width, cols = (int64_t)cc->kernel * cc->kernel * cc->in;
    const int64_t yn = (int64_t)conv2d_out_height(&p) * conv2d_out_width(&p) * cc->out;
    float *x = rand_host((size_t)(pixels * cc->in), 71, 2.0f), *w32 = rand_host((size_t)(cc->out * cols), 72, 0.3f);
    float *gamma = rand_host((size_t)cc->in, 73, 1.0f), *bias = rand_host((size_t)cc->out, 74, 0.1f);
    float *want = rand_host((size_t)yn, 75, 1.0f), *got = rand_host((size_t)yn, 1, 0.0f);
    float *mass = rand_host((size_t)yn, 1, 0.0f), *wabs = rand_host((size_t)(cc->out * cols), 1, 0.0f);
    void *stored = NULL;
    const size_t w_bytes = (size_t)(cc->out * cols) * dtype_size(cc->type);
    CHECK_OK(mem_alloc(&stored, w_bytes, MEM_SCRATCH));
    CHECK_OK(dtype_from_f32(cc->type, w32, stored, (size_t)(cc->out * cols)));
    dtype_to_f32(cc->type, stored, wabs, (size_t)(cc->out * cols));
    for (int64_t i = 0; i < cc->out * cols; i++) wabs[i] = fabsf(wabs[i]);
    float *xabs = abs_inputs(x, pixels, cc->in, cc->norm ? gamma : NULL);
    conv2d_params pm = p;
    pm.accumulate = 0;
    weight_view w = {.type = cc->type, .data = stored, .out_features = cc->out, .in_features = cols};
    weight_view wm = {.type = DTYPE_F32, .data = wabs, .out_features = cc->out, .in_features = cols};
    CHECK_OK(op_conv2d(NULL, &pm, xabs, &wm, NULL, mass));

    void *dx = up(x, (size_t)(pixels * cc->in) * 4), *dw = up(stored, w_bytes), *dg = up(gamma, (size_t)cc->in * 4);
    void *db = up(bias, (size_t)cc->out * 4), *dy = up(want, (size_t)yn * 4); /* y's start: what accumulate adds to */
    p.norm_gamma = cc->norm ? gamma : NULL;
    CHECK_OK(op_conv2d(NULL, &p, x, &w, bias, want));
    conv2d_params dp = p;
    dp.norm_gamma = cc->norm ? dg : NULL;
    weight_view dwv = w;
    dwv.data = dw;
    op_backend be = op_backend_cuda(cuda);
    CHECK_OK(op_conv2d(&be, &dp, dx, &dwv, db, dy));
    down(got, dy, (size_t)yn * 4);
    int bad = 0;
    for (int64_t i = 0; i < yn && !bad; i++) {
        const double bound = mass[i] / 128 + 1e-5 * fmax(1.0, fabs((double)want[i]));
        if (!(fabs((double)got[i] - want[i]) <= bound)) {
            CHECK_MSG(0, "op_conv2d %s: y[%lld] = %g, cpu %g (bound %g)", cc->label, (long long)i, got[i], want[i],
                      bound);
            bad = 1;
        }
    }
    CHECK(!bad);
    release(dx), release(dw), release(dg), release(db), release(dy);
    mem_free(x), mem_free(w32), mem_free(gamma), mem_free(bias), mem_free(want), mem_free(got), mem_free(mass);
    mem_free(wabs), mem_free(xabs), mem_free(stored);
}

static void test_vae_ops(void)
{
    static const conv_case cases[] = {
        {"3x3 same, f32", 9, 11, 5, 6, 3, 1, 0, 0, 0, DTYPE_F32},
        {"3x3 same, norm + SiLU, accumulate, bf16", 12, 10, 64, 32, 3, 1, 0, 1, 1, DTYPE_BF16},
        {"3x3 stride 2, f16", 16, 14, 8, 12, 3, 2, 0, 0, 0, DTYPE_F16},
        {"3x3 2x upsample, norm, bf16", 7, 9, 16, 8, 3, 1, 1, 1, 0, DTYPE_BF16},
        {"1x1, bf16", 10, 10, 24, 16, 1, 1, 0, 0, 0, DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case_run(&cases[i]);

    /* the norm (1e-5 relative), the layout copies and the seam blend (exact: no fused
     * multiply-add in the blend's kernel, the CPU's weights) */
    enum { PIX = 300, CH = 384, WC = 3, DH = 20, DW = 24 };
    const size_t n = (size_t)PIX * CH;
    float *x = rand_host(n, 81, 3.0f), *gamma = rand_host(CH, 82, 1.0f), *want = rand_host(n, 1, 0.0f);
    float *got = rand_host(n, 1, 0.0f);
    void *dx = up(x, n * 4), *dg = up(gamma, CH * 4), *dy = up(want, n * 4);
    op_backend be = op_backend_cuda(cuda);
    op_channel_rms_norm_rows(NULL, x, PIX, CH, gamma, want);
    op_channel_rms_norm_rows(&be, dx, PIX, CH, dg, dy);
    CHECK_OK(op_backend_check(&be));
    down(got, dy, n * 4);
    CHECK_MSG(rel_err(got, want, n) <= 1e-5, "op_channel_rms_norm_rows: %g", rel_err(got, want, n));
    op_to_channels_last(NULL, x, PIX, CH, want);
    op_to_channels_last(&be, dx, PIX, CH, dy);
    CHECK_OK(op_backend_check(&be));
    down(got, dy, n * 4);
    CHECK(memcmp(got, want, n * 4) == 0);
    op_to_channels_first(NULL, x, PIX, CH, 1, want);
    op_to_channels_first(&be, dx, PIX, CH, 1, dy);
    CHECK_OK(op_backend_check(&be));
    down(got, dy, n * 4);
    CHECK(memcmp(got, want, n * 4) == 0);

    const size_t tile = (size_t)WC * DH * DW;
    float *b = rand_host(tile, 83, 1.0f), *a = rand_host(tile, 84, 1.0f);
    void *db = up(b, tile * 4), *da = up(a, tile * 4);
    const op_window win = {.channels = WC, .height = 7, .width = 9, .src_height = DH, .src_width = DW, .src_y = 5,
                           .src_x = 2, .dst_height = DH, .dst_width = DW, .dst_y = 1, .dst_x = 13, .clamp = 1};
    op_copy_window(NULL, &win, x, b);
    op_copy_window(&be, &win, dx, db);
    op_blend_seam(NULL, a, 16, DW, b, DH, DW, WC, 6, 0);
    op_blend_seam(&be, da, 16, DW, db, DH, DW, WC, 6, 0);
    op_blend_seam(NULL, a, DH, 10, b, DH, DW, WC, 7, 1);
    op_blend_seam(&be, da, DH, 10, db, DH, DW, WC, 7, 1);
    CHECK_OK(op_backend_check(&be));
    down(got, db, tile * 4);
    CHECK(memcmp(got, b, tile * 4) == 0);
    release(dx), release(dg), release(dy), release(db), release(da);
    mem_free(x), mem_free(gamma), mem_free(want), mem_free(got), mem_free(b), mem_free(a);
}

/* ---- the staging ring: more than its slots hold, both ways, exact ---- */

static void test_copies(void)
{
    const size_t bytes = ((size_t)150 << 20) + 12345;
    unsigned char *a = NULL, *b = NULL;
    void *d = NULL;
    CHECK_OK(mem_alloc((void **)&a, bytes, MEM_SCRATCH));
    CHECK_OK(mem_calloc((void **)&b, 1, bytes, MEM_SCRATCH));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, bytes, 0, &d));
    if (!a || !b || !d) return;
    uint32_t s = 5;
    for (size_t i = 0; i < bytes; i++) a[i] = (unsigned char)((s = s * 1664525u + 1013904223u) >> 24);
    CHECK_OK(mem_copy(gpu, d, mem_device_cpu(), a, bytes));
    CHECK_OK(mem_copy(mem_device_cpu(), b, gpu, d, bytes));
    CHECK(memcmp(a, b, bytes) == 0);
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.bytes_in >= bytes && st.bytes_out >= bytes);
    release(d);
    mem_free(a), mem_free(b);
}

/* ---- fail-at-N over a device, a backend and a GEMM: each failure is a status, nothing leaks ---- */

static void test_fail_at_n(void)
{
    int completed = 0;
    for (uint64_t nth = 1; nth < 64 && !completed; nth++) {
        mem_fault_plan plan = {.nth = nth, .persistent = 0, .only_class = -1};
        mem_device *dev = NULL;
        op_cuda *c = NULL;
        void *dx = NULL, *dw = NULL, *dy = NULL;
        mem_fault_arm(&plan);
        canvas_status st = mem_device_create_cuda("cuda-fault", (size_t)256 << 20, 0, &dev);
        if (st == CANVAS_OK) st = op_cuda_create(dev, &c);
        if (st == CANVAS_OK) st = mem_device_alloc(dev, MEM_ACTIVATIONS, (size_t)8 * K * 4, 0, &dx);
        if (st == CANVAS_OK) st = mem_device_alloc(dev, MEM_WEIGHTS, (size_t)N * K * 4, 0, &dw);
        if (st == CANVAS_OK) st = mem_device_alloc(dev, MEM_ACTIVATIONS, (size_t)8 * N * 4, 0, &dy);
        if (st == CANVAS_OK) {
            weight_view w = {.type = DTYPE_F32, .data = dw, .out_features = N, .in_features = K};
            op_backend be = op_backend_cuda(c);
            st = op_linear(&be, dx, 8, &w, NULL, dy); /* contents do not matter: its scratch does */
        }
        uint64_t hits = mem_fault_hits();
        mem_fault_disarm();
        CHECK_MSG(st == CANVAS_OK || (st == CANVAS_ERR_OUT_OF_MEMORY && hits == 1 && strstr(canvas_last_error(), "injected")),
                  "fail at %llu: %s", (unsigned long long)nth, canvas_last_error());
        completed = st == CANVAS_OK && hits == 0;
        if (dev) {
            if (dx) mem_device_free(dev, dx);
            if (dw) mem_device_free(dev, dw);
            if (dy) mem_device_free(dev, dy);
            op_cuda_destroy(c);
            CHECK(mem_device_live_blocks(dev) == 0);
            mem_device_destroy(dev);
        }
    }
    CHECK(completed);
}

int main(void)
{
    mem_cuda_info info;
    mem_cuda_query(&info);
    if (!info.devices) {
        printf("skipped: %s\n", info.reason);
        return 77;
    }
    printf("%s, sm_%d, %.1f of %.1f GiB free\n", info.name, info.compute_capability, info.free_bytes / 1073741824.0,
           info.total_bytes / 1073741824.0);
    CHECK_OK(mem_device_create_cuda("cuda", (size_t)2 << 30, 0, &gpu));
    if (gpu) CHECK_OK(op_cuda_create(gpu, &cuda));
    if (!gpu || !cuda) return check_summary();
    RUN(test_linear);
    RUN(test_attention);
    RUN(test_rows);
    RUN(test_vae_ops);
    RUN(test_copies);
    op_cuda_destroy(cuda);
    CHECK(mem_device_live_blocks(gpu) == 0);
    mem_device_destroy(gpu);
    RUN(test_fail_at_n);
    return check_summary();
}
