/* SPDX-License-Identifier: Apache-2.0 */
/* bench_cuda_dit.c — the CUDA backend on the full-width 2-block transformer forward of a
 * 1024x1024 edit: 8,192 image tokens (a 64x64 target and one 64x64 reference) + 32 text tokens,
 * hidden 3072, 24 heads x 128, MLP 12288, bf16 weights (built with -DCANVAS_CUDA=ON;
 * tools/device-check.sh runs it).
 *
 * The transformer itself does not compute on CUDA yet, so this runs the forward's op sequence
 * (bench/torch_dit.py's, which bench/torch_dit_cuda.py times in PyTorch bf16 on the same GPU:
 * the same FLOPs) through op_linear, op_attention and the row ops with a CUDA backend:
 *
 *   resident  both blocks' weights on the device; median of 5 forwards after a warm-up.
 *   streamed  one block's weights on the device; each block is copied in (mem_copy through the
 *             pinned staging ring) before it computes. The copy and the compute do not overlap
 *             yet (mem_copy waits), so the bound printed next to it, max(compute, bytes / link)
 *             with the link measured here (pinned), is what overlap would reach, not what this
 *             run can reach (about compute + bytes / link).
 * Without a CUDA device it prints why and exits 77. */
#include <math.h>
#include <string.h>

#include "base/status.h"
#include "bench_util.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "ops/ops_cuda.h"
#include "tensor/dtype.h"

enum { D = 3072, HEADS = 24, HD = 128, FF = 4 * D, IN_CH = 64, OUT_CH = 16, JOINT = 3584, TIME_CH = 256 };
enum { NT = 32, NI = 2 * 64 * 64, N = NT + NI, LAYERS = 2, RUNS = 5 };

/* One block's matrices, in this order in one bf16 buffer: (out, in) each. */
static const int64_t block_shapes[][2] = {
    {6 * D, D}, {6 * D, D},                                   /* img_mod, txt_mod */
    {D, D}, {D, D}, {D, D}, {D, D}, {D, D}, {D, D},           /* to_q/k/v, add_q/k/v */
    {D, D}, {D, D},                                           /* to_out, to_add_out */
    {FF, D}, {D, FF}, {FF, D}, {D, FF},                       /* img fc1, fc2, txt fc1, fc2 */
};
enum { BLOCK_MATS = sizeof block_shapes / sizeof block_shapes[0] };
static const int64_t top_shapes[][2] = {{D, IN_CH}, {D, JOINT}, {D, TIME_CH}, {D, D}, {2 * D, D}, {4 * OUT_CH, D}};
enum { TOP_MATS = sizeof top_shapes / sizeof top_shapes[0] };

static size_t mats_bytes(const int64_t (*shapes)[2], int n)
{
    size_t b = 0;
    for (int i = 0; i < n; i++) b += (size_t)(shapes[i][0] * shapes[i][1]) * 2;
    return b;
}

/* Views of the matrices laid out from `base` (device memory). */
static void views(const int64_t (*shapes)[2], int n, char *base, weight_view *w)
{
    for (int i = 0; i < n; i++) {
        w[i] = (weight_view){.type = DTYPE_BF16, .data = base, .out_features = shapes[i][0], .in_features = shapes[i][1]};
        base += (size_t)(shapes[i][0] * shapes[i][1]) * 2;
    }
}

typedef struct acts {
    float *x, *c, *normed, *q, *k, *v, *attn, *hidden, *mod_img, *mod_txt, *temb, *temb_silu, *bias, *ones,
        *cos, *sin, *in_img, *in_txt, *out, *time_in;
} acts;

static mem_device *gpu;

static canvas_status fill(float *device_dst, size_t n, float scale)
{
    float *h = xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = scale * rand_float();
    canvas_status st = mem_copy(gpu, device_dst, mem_device_cpu(), h, n * sizeof *h);
    free(h);
    return st;
}

static canvas_status block(op_backend *be, const weight_view *w, acts *a)
{
    const float *bias = a->bias;
    TRY(op_linear(be, a->temb_silu, 2, &w[0], bias, a->mod_img));
    TRY(op_linear(be, a->temb_silu, 1, &w[1], bias, a->mod_txt));
    const float *mi = a->mod_img, *mt = a->mod_txt, *mi0 = a->mod_img + 6 * D;
    const float *tsh[2] = {mt, mt}, *tsc[2] = {mt + D, mt + D}, *ish[2] = {mi, mi0}, *isc[2] = {mi + D, mi0 + D};
    op_norm_modulate(be, a->c, NT, D, 1e-6f, tsh, tsc, NT, a->normed);
    op_norm_modulate(be, a->x, NI, D, 1e-6f, ish, isc, NI / 2, a->normed + NT * D);
    float *qkv[3] = {a->q, a->k, a->v};
    for (int j = 0; j < 3; j++) {
        TRY(op_linear(be, a->normed, NT, &w[5 + j], bias, qkv[j]));
        TRY(op_linear(be, a->normed + NT * D, NI, &w[2 + j], bias, qkv[j] + NT * D));
    }
    op_qk_norm_rope_params p = {.heads = HEADS, .head_dim = HD, .eps = 1e-6f, .split = NT,
                                .norm_q = {a->ones, a->ones}, .norm_k = {a->ones, a->ones}, .cos = a->cos, .sin = a->sin};
    op_qk_norm_rope(be, a->q, a->k, N, &p);
    TRY(op_attention(be, a->q, a->k, a->v, N, HEADS, HD, NULL, a->attn));
    TRY(op_linear(be, a->attn, NT, &w[9], bias, a->q));
    TRY(op_linear(be, a->attn + NT * D, NI, &w[8], bias, a->q + NT * D));
    const float *tg[2] = {mt + 2 * D, mt + 2 * D}, *ig[2] = {mi + 2 * D, mi0 + 2 * D};
    op_gated_add(be, a->c, a->q, NT, D, tg, NT);
    op_gated_add(be, a->x, a->q + NT * D, NI, D, ig, NI / 2);
    const float *tsh2[2] = {mt + 3 * D, mt + 3 * D}, *tsc2[2] = {mt + 4 * D, mt + 4 * D};
    const float *ish2[2] = {mi + 3 * D, mi0 + 3 * D}, *isc2[2] = {mi + 4 * D, mi0 + 4 * D};
    op_norm_modulate(be, a->c, NT, D, 1e-6f, tsh2, tsc2, NT, a->normed);
    op_norm_modulate(be, a->x, NI, D, 1e-6f, ish2, isc2, NI / 2, a->normed + NT * D);
    TRY(op_linear(be, a->normed, NT, &w[12], bias, a->hidden));
    op_gelu_tanh_rows(be, a->hidden, NT, FF);
    TRY(op_linear(be, a->hidden, NT, &w[13], bias, a->q));
    TRY(op_linear(be, a->normed + NT * D, NI, &w[10], bias, a->hidden));
    op_gelu_tanh_rows(be, a->hidden, NI, FF);
    TRY(op_linear(be, a->hidden, NI, &w[11], bias, a->q + NT * D));
    const float *tg2[2] = {mt + 5 * D, mt + 5 * D}, *ig2[2] = {mi + 5 * D, mi0 + 5 * D};
    op_gated_add(be, a->c, a->q, NT, D, tg2, NT);
    op_gated_add(be, a->x, a->q + NT * D, NI, D, ig2, NI / 2);
    return op_backend_check(be);
}

/* The forward: top level, then each block (from `blocks[i]`, or streamed: copied from the
 * host into blocks[0] first). */
static canvas_status forward(op_backend *be, const weight_view *top, char *const blocks[LAYERS], const void *host_block,
                             size_t block_bytes, int streamed, acts *a)
{
    const float *bias = a->bias;
    TRY(op_linear(be, a->in_img, NI, &top[0], bias, a->x));
    TRY(op_linear(be, a->in_txt, NT, &top[1], bias, a->c));
    TRY(op_linear(be, a->time_in, 2, &top[2], bias, a->temb));
    TRY(op_linear(be, a->temb, 2, &top[3], bias, a->temb_silu));
    for (int i = 0; i < LAYERS; i++) {
        weight_view w[BLOCK_MATS];
        if (streamed) TRY(mem_copy(gpu, blocks[0], mem_device_cpu(), host_block, block_bytes));
        views(block_shapes, BLOCK_MATS, streamed ? blocks[0] : blocks[i], w);
        TRY(block(be, w, a));
    }
    TRY(op_linear(be, a->temb_silu, 1, &top[4], bias, a->mod_txt));
    const float *sh[2] = {a->mod_txt + D, a->mod_txt + D}, *sc[2] = {a->mod_txt, a->mod_txt};
    op_norm_modulate(be, a->x, NI, D, 1e-6f, sh, sc, NI, a->normed);
    TRY(op_linear(be, a->normed, NI, &top[5], bias, a->out));
    return op_backend_check(be);
}

static double flops(void)
{
    const double d = D, n = N;
    double per_block = 2.0 * n * 12 * d * d + 4.0 * n * n * d + 2.0 * 2 * 2 * 6 * d * d;
    double top = 2.0 * NI * IN_CH * d + 2.0 * NT * JOINT * d + 2.0 * NI * d * 4 * OUT_CH + 2.0 * 2 * (TIME_CH * d + d * d) +
                 2.0 * 2 * d * d;
    return LAYERS * per_block + top;
}

static canvas_status run(void)
{
    mem_cuda_info info;
    mem_cuda_query(&info);
    op_cuda *cuda = NULL;
    TRY(mem_device_create_cuda("cuda", 0, (size_t)2 << 30, &gpu));
    TRY(op_cuda_create(gpu, &cuda));
    op_backend be = op_backend_cuda(cuda);
    double pinned = 0, pageable = 0;
    TRY(mem_cuda_measure_link(&pinned, &pageable));

    const size_t block_bytes = mats_bytes(block_shapes, BLOCK_MATS), top_bytes = mats_bytes(top_shapes, TOP_MATS);
    uint16_t *host_block = xmalloc(block_bytes);
    for (size_t i = 0; i < block_bytes / 2; i++) host_block[i] = f32_to_bf16(rand_float() * 0.02f);
    char *blocks[LAYERS], *topw;
    weight_view top[TOP_MATS];
    for (int i = 0; i < LAYERS; i++) {
        TRY(mem_device_alloc(gpu, MEM_WEIGHTS, block_bytes, 256, (void **)&blocks[i]));
        TRY(mem_copy(gpu, blocks[i], mem_device_cpu(), host_block, block_bytes));
    }
    TRY(mem_device_alloc(gpu, MEM_WEIGHTS, top_bytes, 256, (void **)&topw));
    TRY(mem_copy(gpu, topw, mem_device_cpu(), host_block, top_bytes)); /* any bf16 values do */
    views(top_shapes, TOP_MATS, topw, top);

    acts a;
    struct { float **p; size_t n; float scale; } buf[] = {
        {&a.x, (size_t)NI * D, 1}, {&a.c, (size_t)NT * D, 1}, {&a.normed, (size_t)N * D, 0}, {&a.q, (size_t)N * D, 0},
        {&a.k, (size_t)N * D, 0}, {&a.v, (size_t)N * D, 0}, {&a.attn, (size_t)N * D, 0}, {&a.hidden, (size_t)N * FF, 0},
        {&a.mod_img, 12 * D, 0}, {&a.mod_txt, 6 * D, 0}, {&a.temb, 2 * D, 0}, {&a.temb_silu, 2 * D, 0},
        {&a.bias, 6 * D, 0.02f}, {&a.ones, HD, 1}, {&a.cos, (size_t)N * HD / 2, 1}, {&a.sin, (size_t)N * HD / 2, 1},
        {&a.in_img, (size_t)NI * IN_CH, 1}, {&a.in_txt, (size_t)NT * JOINT, 1}, {&a.out, (size_t)NI * 4 * OUT_CH, 0},
        {&a.time_in, 2 * TIME_CH, 1},
    };
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) {
        TRY(mem_device_alloc(gpu, MEM_ACTIVATIONS, buf[i].n * 4, 256, (void **)buf[i].p));
        TRY(fill(*buf[i].p, buf[i].n, buf[i].scale));
    }

    double t_res[RUNS], t_str[RUNS];
    TRY(forward(&be, top, blocks, host_block, block_bytes, 0, &a)); /* warm-up: cuBLASLt's first calls */
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_seconds();
        TRY(forward(&be, top, blocks, host_block, block_bytes, 0, &a));
        t_res[r] = now_seconds() - t0;
    }
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_seconds();
        TRY(forward(&be, top, blocks, host_block, block_bytes, 1, &a));
        t_str[r] = now_seconds() - t0;
    }
    const double res = median(t_res, RUNS), str = median(t_str, RUNS), f = flops();
    const double copy = LAYERS * (double)block_bytes / pinned, bound = res > copy ? res : copy;
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    printf("%s, sm_%d; link %.1f GB/s pinned, %.1f GB/s pageable (measured)\n", info.name, info.compute_capability,
           pinned / 1e9, pageable / 1e9);
    printf("full-width 2-block forward, %d image + %d text tokens, bf16 weights, %.1f GFLOP, median of %d\n", NI, NT,
           f / 1e9, RUNS);
    printf("resident %.4f s (%.1f TFLOP/s)\n", res, f / res / 1e12);
    printf("streamed %.4f s: %zu MiB of blocks copied in; bound max(compute %.4f, bytes / link %.4f) = %.4f s, "
           "streamed / bound %.2f (no copy/compute overlap yet)\n",
           str, LAYERS * block_bytes >> 20, res, copy, bound, str / bound);
    printf("device peak %.2f GiB of the pool\n", st.peak_bytes / 1073741824.0);
    free(host_block);
    op_cuda_destroy(cuda);
    return CANVAS_OK; /* the device goes with the process */
}

int main(void)
{
    mem_cuda_info info;
    mem_cuda_query(&info);
    if (!info.devices) {
        printf("skipped: %s\n", info.reason);
        return 77;
    }
    canvas_status st = run();
    if (st != CANVAS_OK) {
        fprintf(stderr, "bench_cuda_dit: %s\n", canvas_last_error());
        return 1;
    }
    return 0;
}
