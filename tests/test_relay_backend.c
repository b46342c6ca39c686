/* SPDX-License-Identifier: Apache-2.0 */
/* test_relay_backend.c — every op of the backend table, run through the relay backend
 * (tests/relay_backend.h) on the sealed probe device (tests/probe_device.h: memory the CPU
 * cannot touch), gives the CPU op's output bit for bit: random inputs (fixed seeds) are copied
 * to the device, the op runs on the relay backend, the outputs come back through mem_copy and
 * are compared with memcmp against the same op on host copies with a CPU backend. op_linear
 * in every weight format a weight_view holds (f32, f16, bf16, fp8 e4m3 per tensor and per
 * row, fp8 e5m2, nf4, q8_0, GGUF Q8_0 and Q4_K), on the GEMV path (m <= 2) and the GEMM's.
 * Also: the probe counted the relay's copies, an op the table has no entry for is refused
 * without running (running it would fault on the sealed addresses), and a copy that fails
 * is the op's failure. The VAE's ops too: op_conv2d (padding, stride 2, the 2x upsample, the
 * fused norm + SiLU, accumulation, f32/f16/bf16 weights, several bands), its per-pixel norm,
 * the layout copies and the tile blend. */
#include <stdint.h>

#include "check.h"
#include "probe_device.h"
#include "relay_backend.h"

#define MiB ((size_t)1024 * 1024)

static mem_device *sealed;
static thread_pool *pool;
static relay_backend relay;

static float *random_host(int64_t n, uint32_t seed, float scale)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = scale * test_uniform(&seed);
    return p;
}

/* A block of the sealed device holding a copy of `bytes` of host memory. */
static void *put(const void *host, size_t bytes)
{
    void *d = NULL;
    CHECK_OK(mem_device_alloc(sealed, MEM_ACTIVATIONS, bytes, 64, &d));
    if (d) CHECK_OK(mem_copy(sealed, d, mem_device_cpu(), host, bytes));
    return d;
}

static void *put_floats(const float *host, int64_t n) { return put(host, (size_t)n * sizeof(float)); }

/* 1 when `n` floats of the device block are the host's, bit for bit. */
static int same_as(const void *device_block, const float *want, int64_t n)
{
    float *got = malloc((size_t)n * sizeof *got);
    CHECK_OK(mem_copy(mem_device_cpu(), got, sealed, device_block, (size_t)n * sizeof *got));
    int same = !memcmp(got, want, (size_t)n * sizeof *got);
    free(got);
    return same;
}

static void drop(void *device_block)
{
    if (device_block) mem_device_free(sealed, device_block);
}

/* ---- op_linear in every format ---- */

enum { K = 256, N = 40 }; /* K: whole GGUF Q4_K blocks */

typedef struct format_case {
    const char *label;
    dtype type;          /* plain weights */
    quant_format format; /* or quantised (QUANT_NONE: plain) */
    int per_channel;
} format_case;

static void linear_case(const format_case *fc, int64_t m, int with_bias)
{
    float *w32 = random_host((int64_t)N * K, 7, 0.5f), *x = random_host(m * K, 11, 1.0f);
    float *bias = random_host(N, 13, 0.1f), *want = malloc((size_t)(m * N) * sizeof *want);
    quant_params qp;
    weight_view w = {.type = fc->type, .out_features = N, .in_features = K};
    size_t bytes = (size_t)N * K * dtype_size(fc->type);
    void *stored;
    if (fc->format != QUANT_NONE) {
        CHECK_OK(quant_layout(fc->format, fc->per_channel, N, K, &qp));
        bytes = qp.bytes;
        stored = malloc(bytes);
        CHECK_OK(quant_quantize(&qp, DTYPE_F32, w32, stored, fc->label));
        w.type = DTYPE_U8;
        w.quant = &qp;
    } else {
        stored = malloc(bytes);
        CHECK_OK(dtype_from_f32(fc->type, w32, stored, (size_t)N * K));
    }
    w.data = stored;
    CHECK_OK(op_linear(OP_BACKEND_CPU(pool), x, m, &w, with_bias ? bias : NULL, want));

    op_backend be = relay_backend_make(&relay);
    void *dx = put_floats(x, m * K), *dw = put(stored, bytes), *db = put_floats(bias, N);
    void *dy = put_floats(want, m * N); /* sized; overwritten below */
    weight_view dwv = w;
    dwv.data = dw;
    float *zero = calloc((size_t)(m * N), sizeof *zero);
    CHECK_OK(mem_copy(sealed, dy, mem_device_cpu(), zero, (size_t)(m * N) * sizeof *zero));
    CHECK_OK(op_linear(&be, dx, m, &dwv, with_bias ? db : NULL, dy));
    CHECK_MSG(same_as(dy, want, m * N), "op_linear %s, m = %lld%s", fc->label, (long long)m,
              with_bias ? ", bias" : "");
    drop(dx), drop(dw), drop(db), drop(dy);
    free(w32), free(x), free(bias), free(want), free(stored), free(zero);
}

static void test_linear(void)
{
    static const format_case cases[] = {
        {"f32", DTYPE_F32, QUANT_NONE, 0},
        {"f16", DTYPE_F16, QUANT_NONE, 0},
        {"bf16", DTYPE_BF16, QUANT_NONE, 0},
        {"fp8", DTYPE_U8, QUANT_FP8_E4M3, 0},
        {"fp8-channel", DTYPE_U8, QUANT_FP8_E4M3, 1},
        {"fp8-e5m2", DTYPE_U8, QUANT_FP8_E5M2, 0},
        {"nf4", DTYPE_U8, QUANT_NF4, 0},
        {"q8_0", DTYPE_U8, QUANT_Q8_0, 0},
        {"gguf_q8_0", DTYPE_U8, QUANT_GGUF_Q8_0, 0},
        {"gguf_q4_k", DTYPE_U8, QUANT_GGUF_Q4_K, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        linear_case(&cases[i], 1, 1);  /* the GEMV path */
        linear_case(&cases[i], 37, 1); /* the GEMM's */
    }
    linear_case(&cases[2], 9, 0);
}

/* ---- attention: with a key mask; grouped and causal ---- */

static void attention_case(int64_t seq, int heads, int kv_heads, int head_dim, int causal, int masked)
{
    const int64_t qn = seq * heads * head_dim, kvn = seq * kv_heads * head_dim;
    float *q = random_host(qn, 21, 1.0f), *k = random_host(kvn, 22, 1.0f), *v = random_host(kvn, 23, 1.0f);
    float *want = malloc((size_t)qn * sizeof *want);
    uint8_t *mask = malloc((size_t)seq);
    for (int64_t i = 0; i < seq; i++) mask[i] = i % 5 != 3;
    if (masked) CHECK_OK(op_attention(OP_BACKEND_CPU(pool), q, k, v, seq, heads, head_dim, mask, want));
    else CHECK_OK(op_attention_grouped(OP_BACKEND_CPU(pool), q, k, v, seq, heads, kv_heads, head_dim, causal, want));

    op_backend be = relay_backend_make(&relay);
    void *dq = put_floats(q, qn), *dk = put_floats(k, kvn), *dv = put_floats(v, kvn), *dm = put(mask, (size_t)seq);
    void *dout = put_floats(q, qn);
    if (masked) CHECK_OK(op_attention(&be, dq, dk, dv, seq, heads, head_dim, dm, dout));
    else CHECK_OK(op_attention_grouped(&be, dq, dk, dv, seq, heads, kv_heads, head_dim, causal, dout));
    CHECK_MSG(same_as(dout, want, qn), "attention seq %lld, %d/%d heads, causal %d, mask %d", (long long)seq, heads,
              kv_heads, causal, masked);
    drop(dq), drop(dk), drop(dv), drop(dm), drop(dout);
    free(q), free(k), free(v), free(want), free(mask);
}

static void test_attention(void)
{
    attention_case(45, 4, 4, 32, 0, 1);
    attention_case(45, 4, 2, 32, 1, 0);
    attention_case(17, 3, 1, 16, 0, 0);
}

/* ---- the row ops, add_inplace, copy_columns ---- */

enum { ROWS = 23, D = 96, SPLIT = 9, HEADS = 3, HD = 32 };

static void test_rows(void)
{
    const int64_t n = (int64_t)ROWS * D;
    op_backend be = relay_backend_make(&relay);
    op_backend *cpu = OP_BACKEND_CPU(pool);
    float *x = random_host(n, 31, 2.0f), *y = random_host(n, 32, 1.0f), *vec = random_host(8 * D, 33, 0.5f);
    float *want = malloc((size_t)n * sizeof *want);
    void *dx = put_floats(x, n), *dy = put_floats(y, n), *dvec = put_floats(vec, 8 * D);
    float *dv = dvec;

    /* norm_modulate: y = LN(x) (1 + scale) + shift, two sets */
    const float *shift[2] = {vec, vec + D}, *scale[2] = {vec + 2 * D, vec + 3 * D};
    const float *dshift[2] = {dv, dv + D}, *dscale[2] = {dv + 2 * D, dv + 3 * D};
    op_norm_modulate(cpu, x, ROWS, D, 1e-6f, shift, scale, SPLIT, want);
    op_norm_modulate(&be, dx, ROWS, D, 1e-6f, dshift, dscale, SPLIT, dy);
    CHECK(same_as(dy, want, n));

    /* gated_add over that result */
    const float *gate[2] = {vec + 4 * D, vec + 5 * D}, *dgate[2] = {dv + 4 * D, dv + 5 * D};
    op_gated_add(cpu, want, x, ROWS, D, gate, SPLIT);
    op_gated_add(&be, dy, dx, ROWS, D, dgate, SPLIT);
    CHECK(same_as(dy, want, n));

    /* gelu_tanh_rows, add_inplace, silu_rows */
    op_gelu_tanh_rows(cpu, want, ROWS, D);
    op_gelu_tanh_rows(&be, dy, ROWS, D);
    CHECK(same_as(dy, want, n));
    op_add_inplace(cpu, want, x, n);
    op_add_inplace(&be, dy, dx, n);
    CHECK(same_as(dy, want, n));
    op_silu_rows(cpu, want, n - 3);
    op_silu_rows(&be, dy, n - 3);
    CHECK(same_as(dy, want, n));

    /* rms_norm_rows: with a weight into another buffer, then in place without */
    float *want2 = malloc((size_t)n * sizeof *want2);
    void *dz = put_floats(y, n);
    op_rms_norm_rows(cpu, want, ROWS, D, 1e-6f, vec + 6 * D, want2);
    op_rms_norm_rows(&be, dy, ROWS, D, 1e-6f, dv + 6 * D, dz);
    CHECK(same_as(dz, want2, n));
    op_rms_norm_rows(cpu, want2, ROWS, D, 1e-5f, NULL, want2);
    op_rms_norm_rows(&be, dz, ROWS, D, 1e-5f, NULL, dz);
    CHECK(same_as(dz, want2, n));

    /* copy_columns: columns [17, 17 + 40) of every row */
    op_copy_columns(cpu, x, ROWS, D, 17, 40, want);
    op_copy_columns(&be, dx, ROWS, D, 17, 40, dz);
    CHECK(same_as(dz, want, (int64_t)ROWS * 40));

    /* qk_norm_rope: q, k [ROWS, HEADS * HD], norms of the two sets, cos/sin [ROWS, HD / 2] */
    const int64_t qkn = (int64_t)ROWS * HEADS * HD, angles = (int64_t)ROWS * HD / 2;
    float *q = random_host(qkn, 41, 1.5f), *k = random_host(qkn, 42, 1.5f), *cs = random_host(2 * angles, 43, 1.0f);
    float *nq = random_host(4 * HD, 44, 1.0f);
    void *dq = put_floats(q, qkn), *dk = put_floats(k, qkn), *dcs = put_floats(cs, 2 * angles);
    void *dnq = put_floats(nq, 4 * HD);
    float *dcsf = dcs, *dnqf = dnq;
    op_qk_norm_rope_params p = {.heads = HEADS, .head_dim = HD, .eps = 1e-6f, .split = SPLIT,
                                .norm_q = {nq, nq + HD}, .norm_k = {nq + 2 * HD, nq + 3 * HD},
                                .cos = cs, .sin = cs + angles};
    op_qk_norm_rope_params dp = {.heads = HEADS, .head_dim = HD, .eps = 1e-6f, .split = SPLIT,
                                 .norm_q = {dnqf, dnqf + HD}, .norm_k = {dnqf + 2 * HD, dnqf + 3 * HD},
                                 .cos = dcsf, .sin = dcsf + angles};
    op_qk_norm_rope(cpu, q, k, ROWS, &p);
    op_qk_norm_rope(&be, dq, dk, ROWS, &dp);
    CHECK(same_as(dq, q, qkn));
    CHECK(same_as(dk, k, qkn));
    CHECK_OK(op_backend_check(&be));

    /* the text encoder's: rope_half_rows on q, swiglu_rows, gelu_erf_rows, then the rows of
     * x permuted (gather) and put back (scatter) by a reversed-and-rotated index */
    op_rope_half_rows(cpu, q, ROWS, HEADS, HD, cs, cs + angles);
    op_rope_half_rows(&be, dq, ROWS, HEADS, HD, dcsf, dcsf + angles);
    CHECK(same_as(dq, q, qkn));
    CHECK_OK(mem_copy(sealed, dy, mem_device_cpu(), want, (size_t)n * sizeof(float)));
    op_swiglu_rows(cpu, want, x, n - 5);
    op_swiglu_rows(&be, dy, dx, n - 5);
    CHECK(same_as(dy, want, n));
    op_gelu_erf_rows(cpu, want, n);
    op_gelu_erf_rows(&be, dy, n);
    CHECK(same_as(dy, want, n));
    int64_t index[ROWS];
    for (int64_t r = 0; r < ROWS; r++) index[r] = (ROWS - 1 - r + 5) % ROWS;
    void *dindex = put(index, sizeof index);
    op_gather_rows(cpu, x, index, ROWS, D, want);
    op_gather_rows(&be, dx, dindex, ROWS, D, dz);
    CHECK(same_as(dz, want, n));
    CHECK(!memcmp(want, x + index[0] * D, D * sizeof(float)));
    op_scatter_rows(&be, dz, dindex, ROWS, D, dy);
    CHECK(same_as(dy, x, n));
    CHECK_OK(op_backend_check(&be));
    drop(dindex);

    drop(dx), drop(dy), drop(dvec), drop(dz), drop(dq), drop(dk), drop(dcs), drop(dnq);
    free(x), free(y), free(vec), free(want), free(want2), free(q), free(k), free(cs), free(nq);
}

/* ---- the VAE's ops: convolutions, its norm, the layout copies, the tile blend ---- */

typedef struct conv_case {
    const char *label;
    int height, width, in, out, kernel, stride, pad, upsample, norm, accumulate, bias;
    dtype type;
    size_t band_floats; /* 0: the default; small: several bands */
} conv_case;

/* One op_conv2d on the relay against the CPU; y starts as random values (what accumulate adds to). */
static void conv_case_run(const conv_case *cc)
{
    conv2d_params p = {.height = cc->height, .width = cc->width, .in_channels = cc->in, .out_channels = cc->out,
                       .kernel = cc->kernel, .stride = cc->stride, .upsample = cc->upsample,
                       .accumulate = cc->accumulate, .band_floats = cc->band_floats};
    if (cc->stride == 2) p.pad_bottom = p.pad_right = 1;
    else p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = cc->pad;
    const int64_t xn = (int64_t)cc->height * cc->width * cc->in, cols = (int64_t)cc->kernel * cc->kernel * cc->in;
    const int64_t yn = (int64_t)conv2d_out_height(&p) * conv2d_out_width(&p) * cc->out;
    CHECK(yn > 0);
    float *x = random_host(xn, 51, 2.0f), *w32 = random_host(cc->out * cols, 52, 0.3f);
    float *extra = random_host(cc->out + cc->in, 53, 1.0f), *want = random_host(yn, 54, 1.0f);
    const size_t w_bytes = (size_t)(cc->out * cols) * dtype_size(cc->type);
    void *stored = malloc(w_bytes);
    CHECK_OK(dtype_from_f32(cc->type, w32, stored, (size_t)(cc->out * cols)));
    void *dx = put_floats(x, xn), *dw = put(stored, w_bytes), *dextra = put_floats(extra, cc->out + cc->in);
    void *dy = put_floats(want, yn);
    float *dextraf = dextra;
    weight_view w = {.type = cc->type, .data = stored, .out_features = cc->out, .in_features = cols};
    weight_view dwv = w;
    dwv.data = dw;

    conv2d_params dp = p;
    p.norm_gamma = cc->norm ? extra + cc->out : NULL;
    dp.norm_gamma = cc->norm ? dextraf + cc->out : NULL;
    op_backend be = relay_backend_make(&relay);
    CHECK_OK(op_conv2d(OP_BACKEND_CPU(pool), &p, x, &w, cc->bias ? extra : NULL, want));
    CHECK_OK(op_conv2d(&be, &dp, dx, &dwv, cc->bias ? dextraf : NULL, dy));
    CHECK_MSG(same_as(dy, want, yn), "op_conv2d %s", cc->label);
    drop(dx), drop(dw), drop(dextra), drop(dy);
    free(x), free(w32), free(extra), free(want), free(stored);
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        {"3x3 same, bias, f32", 7, 9, 5, 6, 3, 1, 1, 0, 0, 0, 1, DTYPE_F32, 0},
        {"3x3 same, norm + SiLU, accumulate, bf16, bands", 8, 6, 16, 8, 3, 1, 1, 0, 1, 1, 1, DTYPE_BF16, 600},
        {"3x3 stride 2 (pad right/bottom), f16", 8, 10, 4, 7, 3, 2, 0, 0, 0, 0, 1, DTYPE_F16, 0},
        {"3x3 nearest 2x upsample, norm, bf16", 5, 4, 8, 4, 3, 1, 1, 1, 1, 0, 1, DTYPE_BF16, 0},
        {"1x1 no bias, f32", 6, 6, 12, 3, 1, 1, 0, 0, 0, 0, 0, DTYPE_F32, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case_run(&cases[i]);
}

enum { PIX = 37, CH = 24 };

static void test_vae_layout(void)
{
    op_backend be = relay_backend_make(&relay);
    op_backend *cpu = OP_BACKEND_CPU(pool);
    const int64_t n = (int64_t)PIX * CH;
    float *x = random_host(n, 61, 1.5f), *gamma = random_host(CH, 62, 1.0f), *want = malloc((size_t)n * sizeof *want);
    void *dx = put_floats(x, n), *dg = put_floats(gamma, CH), *dy = put_floats(x, n);

    /* the VAE norm (per pixel over its channels), into another buffer */
    op_channel_rms_norm_rows(cpu, x, PIX, CH, gamma, want);
    op_channel_rms_norm_rows(&be, dx, PIX, CH, dg, dy);
    CHECK(same_as(dy, want, n));

    /* planar -> channels-last, channels-last -> planar with and without the clamp */
    op_to_channels_last(cpu, x, PIX, CH, want);
    op_to_channels_last(&be, dx, PIX, CH, dy);
    CHECK(same_as(dy, want, n));
    for (int clamp = 0; clamp < 2; clamp++) {
        op_to_channels_first(cpu, x, PIX, CH, clamp, want);
        op_to_channels_first(&be, dx, PIX, CH, clamp, dy);
        CHECK_MSG(same_as(dy, want, n), "op_to_channels_first, clamp %d", clamp);
    }

    /* a clamped window of 3 planar [8, 9] images into [3, 10, 12] ones, the rest of dst kept */
    enum { WC = 3, SH = 8, SW = 9, DH = 10, DW = 12 };
    const op_window win = {.channels = WC, .height = 5, .width = 6, .src_height = SH, .src_width = SW, .src_y = 2,
                           .src_x = 3, .dst_height = DH, .dst_width = DW, .dst_y = 4, .dst_x = 1, .clamp = 1};
    float *dst = random_host(WC * DH * DW, 63, 1.0f);
    void *ddst = put_floats(dst, WC * DH * DW);
    op_copy_window(cpu, &win, x, dst);
    op_copy_window(&be, &win, dx, ddst);
    CHECK(same_as(ddst, dst, WC * DH * DW));

    /* the seam blend in place in b ([3, 10, 12]): over rows from a [3, 8, 12], then over
     * columns from a [3, 10, 9] (the tiles share the other axis, as the tiled VAE's do) */
    float *a = random_host(WC * DH * DW, 64, 1.0f);
    void *da = put_floats(a, WC * DH * DW);
    op_blend_seam(cpu, a, SH, DW, dst, DH, DW, WC, 4, 0);
    op_blend_seam(&be, da, SH, DW, ddst, DH, DW, WC, 4, 0);
    CHECK(same_as(ddst, dst, WC * DH * DW));
    op_blend_seam(cpu, a, DH, SW, dst, DH, DW, WC, 5, 1);
    op_blend_seam(&be, da, DH, SW, ddst, DH, DW, WC, 5, 1);
    CHECK(same_as(ddst, dst, WC * DH * DW));
    CHECK_OK(op_backend_check(&be));

    drop(dx), drop(dg), drop(dy), drop(ddst), drop(da);
    free(x), free(gamma), free(want), free(dst), free(a);
}

/* ---- what the relay is not: a CPU run over device pointers ---- */

static void test_refusals(void)
{
    op_backend be = relay_backend_make(&relay);
    float host[64] = {0};
    void *d = put_floats(host, 64);
    const probe_counts before = probe_counts_of(sealed);
    const uint64_t ops_before = relay.ops;

    /* no entry: refused, and never run (running it would touch the sealed reservation) */
    /* a table whose conv2d, layout and row-permutation entries are NULL: the status op says so,
     * the void ones record it (the relay itself has an entry for every op) */
    op_backend_table partial = *be.table;
    partial.conv2d = NULL;
    partial.to_channels_last = NULL;
    partial.gather_rows = NULL;
    op_backend pbe = op_backend_table_make(&partial, &relay);
    op_gather_rows(&pbe, d, (const int64_t[]){1, 0}, 2, 8, d);
    CHECK(op_backend_check(&pbe) == CANVAS_ERR_UNSUPPORTED);
    CHECK(strstr(canvas_last_error(), "op_gather_rows has no kernel on the relay backend") != NULL);
    conv2d_params cp = {0};
    weight_view w = {.type = DTYPE_F32, .data = d, .out_features = 1, .in_features = 1};
    CHECK_FAILS(op_conv2d(&pbe, &cp, d, &w, NULL, d), CANVAS_ERR_UNSUPPORTED, "op_conv2d has no kernel on the relay");
    op_to_channels_last(&pbe, d, 8, 4, d);
    CHECK(op_backend_check(&pbe) == CANVAS_ERR_UNSUPPORTED);
    CHECK(strstr(canvas_last_error(), "op_to_channels_last has no kernel on the relay backend") != NULL);
    const probe_counts after = probe_counts_of(sealed);
    CHECK(after.copies_in == before.copies_in && after.copies_out == before.copies_out);
    CHECK(relay.ops == ops_before);

    /* a pointer that is not the device's: mem_copy refuses it, and the void op records that */
    op_silu_rows(&be, host, 64);
    CHECK(op_backend_check(&be) == CANVAS_ERR_INTERNAL);
    CHECK(strstr(canvas_last_error(), "sealed") != NULL);
    CHECK(op_backend_check(&be) == CANVAS_OK);
    CHECK(relay.ops == ops_before);

    /* a relayed op moves its operands both ways through the device's copies */
    op_silu_rows(&be, d, 64);
    CHECK_OK(op_backend_check(&be));
    const probe_counts last = probe_counts_of(sealed);
    CHECK(last.copies_out == after.copies_out + 1 && last.bytes_out == after.bytes_out + 64 * sizeof(float));
    CHECK(last.copies_in == after.copies_in + 1 && last.bytes_in == after.bytes_in + 64 * sizeof(float));
    CHECK(relay.ops == ops_before + 1);
    drop(d);
}

int main(void)
{
    if (thread_pool_create(3, &pool) != CANVAS_OK) return 1;
    CHECK_OK(probe_create(1, 16 * MiB, &sealed));
    if (!sealed) return check_summary();
    relay = (relay_backend){.device = sealed, .pool = pool};
    RUN(test_linear);
    RUN(test_attention);
    RUN(test_rows);
    RUN(test_conv);
    RUN(test_vae_layout);
    RUN(test_refusals);
    CHECK_MSG(relay.ops == 21 + 3 + 14 + 5 + 7 + 1, "%llu ops relayed", (unsigned long long)relay.ops);
    CHECK(mem_device_live_blocks(sealed) == 0);
    mem_device_destroy(sealed);
    thread_pool_destroy(pool);
    return check_summary();
}
