/* SPDX-License-Identifier: Apache-2.0 */
/* linear.c — op_linear: y[m, n] = sum_k x[m, k] W[n, k] + bias[n], W stored F32/F16/BF16
 * (or quantised: quant_pack.c decodes at the packing step).
 *
 * Blocked GEMM in the manner of GotoBLAS/BLIS, with the weight converted while packing:
 *
 *   for each group of k blocks (GEMM_KC) whose packed x fits LINEAR_X_GROUP_BYTES:
 *     pass 1, all threads: pack x[all rows, group] into 6-row strips, shared     (L3)
 *     pass 2, work item = (a run of 16-column strips, a run of rows), claimed:
 *       for each k block of the group:
 *         pack W[item columns, k block] -> f32 strips, 16 columns each           (L2)
 *         for each GEMM_MC_STRIPS row strips of x (144 rows, 144 KiB):           (L2)
 *           for each strip of W (24 KiB), for each row strip:                     (L1)
 *             6x16 microkernel, its result added to the tile of y in registers
 *
 * x is packed once per call whatever the thread count (an item only reads it). With one
 * column item there is nothing to share: items pack their own rows right before use. With
 * few rows (M <= 144, the text stream) an item takes one weight strip at a time through
 * all its k blocks, so that the weight, which dominates, streams in long row runs.
 * Each weight element is converted once per row item (almost always once per call). No
 * full f32 copy of a weight exists. Scratch: the packed x group (<= 8 MiB, or one k block
 * when that is larger) and, per thread, an item's weight strips (<= 384 KiB); exactly
 * op_linear_workspace_bytes.
 *
 * Reduction order: every output element is the sum over k blocks in increasing order,
 * each block summed by the microkernel in increasing k, the bias added to the first
 * block. Threads only split M and N, and the blocking depends on M, N, K only, so the
 * result is bit-identical for any thread count.
 *
 * One or two rows (the modulation GEMV) take a streaming path instead: it is bound by
 * reading the weight, so it converts 8 weights at a time and uses them for both rows. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <stdatomic.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/cpu/gemm_kernel.h"
#include "ops/cpu/gemv.h"
#include "ops/cpu/quant_pack.h"
#include "ops/cpu/simd.h"
#include "ops/ops_cpu.h"

/* A packed weight strip is KC x 16 floats = 24 KiB: it stays in L1 while x streams past.
 * 384 measured 1-4% faster than 256 on every DiT shape (fewer passes over y). */
#define GEMM_KC 384
/* x packed for a group of k blocks lives in L3 and is shared by the threads: at most
 * this many bytes, so that M = 544 packs all of K = 3072 in one group. */
#define LINEAR_X_GROUP_BYTES ((size_t)8 << 20)
#define LINEAR_ITEMS_PER_THREAD 8
#define GEMM_MC_STRIPS 24     /* 144 rows of packed x: 144 KiB, L2 */
#define LINEAR_MIN_ITEM_STRIPS 4 /* columns of an item: >= 64 */
#define LINEAR_MAX_ITEM_STRIPS 16 /* and <= 256: its packed weight, KC x 256 (384 KiB), stays in L2 */
/* Weight strips one microkernel call takes: the avx512 variant's 6x32 kernel takes two
 * adjacent strips of the packed panel at once (gemm_kernel.h); items then hold an even
 * number of strips, so that no strip but the matrix's last is taken alone. */
#ifdef CANVAS_CPU_AVX512
#define LINEAR_KERNEL_STRIPS 2
#else
#define LINEAR_KERNEL_STRIPS 1
#endif

typedef struct linear_job {
    const float *x;
    int64_t m, n, k;
    const weight_view *w;
    const float *bias;
    float *y;

    /* x packed for one group of k blocks [kb0, kb1), shared by every thread: k block j,
     * 6-row strip r at apack + (j - kb0) * kb_floats + r * strip_floats. When there is
     * a single column item nothing would be shared: apack is NULL, and each item packs
     * its blocks of rows itself, right before using them. */
    float *apack;
    int64_t m_strips, strip_floats, kb_floats;
    int64_t kb0, kb1;
    int64_t pack_chunks;        /* units of the packing pass per k block */

    /* work items of the multiply: (a run of 16-column strips) x (a run of row strips) */
    int64_t strips_per_item, col_items;
    int64_t rstrips_per_item, row_items;
    atomic_int_fast64_t next_item;

    int64_t k_blocks, per_group; /* k blocks in all; per group of packed x */
    int shared_x;               /* x packed once for all threads (else per row item) */
    int n_tasks;
    size_t x_floats;            /* the packed x group, when shared */

    float *strips;              /* per task: the item's packed weight strips, then (when x is
                                 * not shared) GEMM_MC_STRIPS strips of packed x */
    size_t strip_buffer_floats;
    size_t task_floats;
} linear_job;

/* ---- packing the weight ------------------------------------------------------------ */

static inline __m256 load8_weight(const weight_view *w, int64_t n, int64_t k)
{
    size_t at = (size_t)(n * w->in_features + k);
    switch (w->type) {
    case DTYPE_BF16: return simd_load8_bf16((const uint16_t *)w->data + at);
    case DTYPE_F16: return simd_load8_f16((const uint16_t *)w->data + at);
    default: return _mm256_loadu_ps((const float *)w->data + at);
    }
}

static inline float load1_weight(const weight_view *w, int64_t n, int64_t k)
{
    size_t at = (size_t)(n * w->in_features + k);
    switch (w->type) {
    case DTYPE_BF16: return simd_bf16_to_f32(((const uint16_t *)w->data)[at]);
    case DTYPE_F16: return simd_f16_to_f32(((const uint16_t *)w->data)[at]);
    default: return ((const float *)w->data)[at];
    }
}

/* One strip: strip[kk*16 + c] = W[n0 + c][k0 + kk] for c < live (<= 16), zero past it.
 * Written once per stored type (the switch in load8_weight folds away). */
static inline __attribute__((always_inline)) void pack_strip_typed(const weight_view *w, int64_t n0, int64_t live,
                                                                   int64_t k0, int64_t kc, float *strip)
{
    for (int half = 0; half < 2; half++) {
        int64_t h0 = half * 8;
        int64_t rows = live - h0; /* live columns of W in this 8-row half */
        int64_t kk = 0;
        if (rows >= 8) {
            for (; kk + 8 <= kc; kk += 8) {
                __m256 r[8];
                GEMM_UNROLL8 for (int i = 0; i < 8; i++) r[i] = load8_weight(w, n0 + h0 + i, k0 + kk);
                gemm_transpose8x8(r);
                GEMM_UNROLL8 for (int j = 0; j < 8; j++) _mm256_storeu_ps(strip + (kk + j) * GEMM_NR + h0, r[j]);
            }
        }
        for (; kk < kc; kk++)
            for (int i = 0; i < 8; i++)
                strip[kk * GEMM_NR + h0 + i] = i < rows ? load1_weight(w, n0 + h0 + i, k0 + kk) : 0.0f;
    }
}

/* Per stored type: the packing step and the GEMV's readers (gemv.h), all through
 * load8_weight / load1_weight with the type a constant, so that their switch folds away
 * and each type's loop is compiled on its own. */
#define PLAIN_TYPE_FUNCTIONS(name, TYPE)                                                                       \
    static void pack_strip_##name(const weight_view *w, int64_t n0, int64_t live, int64_t k0, int64_t kc,     \
                                  float *strip)                                                                \
    {                                                                                                          \
        weight_view v = *w;                                                                                    \
        v.type = TYPE;                                                                                         \
        pack_strip_typed(&v, n0, live, k0, kc, strip);                                                         \
    }                                                                                                          \
    static inline __m256 name##_load8(const void *src, int64_t n, int64_t k, __m256 row)                      \
    {                                                                                                          \
        weight_view v = *(const weight_view *)src;                                                             \
        v.type = TYPE;                                                                                         \
        (void)row;                                                                                             \
        return load8_weight(&v, n, k);                                                                         \
    }                                                                                                          \
    static inline float name##_load1(const void *src, int64_t n, int64_t k)                                    \
    {                                                                                                          \
        weight_view v = *(const weight_view *)src;                                                             \
        v.type = TYPE;                                                                                         \
        return load1_weight(&v, n, k);                                                                         \
    }
PLAIN_TYPE_FUNCTIONS(bf16, DTYPE_BF16)
PLAIN_TYPE_FUNCTIONS(f16, DTYPE_F16)
PLAIN_TYPE_FUNCTIONS(f32, DTYPE_F32)

/* The packing step: W[n0 .. n0+live) x [k0 .. k0+kc) -> one 16-column f32 strip,
 * strip[kk*16 + c] = W[n0 + c][k0 + kk], zero past the last column. One function per
 * stored format. */
static void pack_weight_strip(const weight_view *w, int64_t n0, int64_t live, int64_t k0, int64_t kc, float *strip)
{
    if (w->quant) { /* quantised formats decode here (quant_pack.c) */
        quant_pack_panel(w, n0, live, k0, kc, strip);
        return;
    }
    switch (w->type) {
    case DTYPE_BF16: pack_strip_bf16(w, n0, live, k0, kc, strip); break;
    case DTYPE_F16: pack_strip_f16(w, n0, live, k0, kc, strip); break;
    default: pack_strip_f32(w, n0, live, k0, kc, strip); break;
    }
}

/* Ask for the weight of the next strip while this one is multiplied: its 16 row pieces
 * are too short for the hardware prefetcher. Into L2; the multiply owns L1. */
static void prefetch_weight_strip(const weight_view *w, int64_t n0, int64_t live, int64_t k0, int64_t kc)
{
    size_t row_bytes, elem;
    if (w->quant) return;
    elem = dtype_size(w->type);
    row_bytes = (size_t)kc * elem;
    for (int64_t i = 0; i < live; i++) {
        const char *row = (const char *)w->data + ((size_t)(n0 + i) * (size_t)w->in_features + (size_t)k0) * elem;
        for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T1);
    }
}

/* ---- writing a partial tile --------------------------------------------------------- */

/* C[rows x cols] (row stride ldc) = sum + bias when first, else += sum; the sums in
 * buffer, rows ldb floats apart. */
static void store_sums(const float *buffer, int64_t ldb, float *c, int64_t ldc, int rows, int cols, int first,
                       const float *bias)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = buffer[r * ldb + j];
            if (first)
                c[r * ldc + j] = bias ? v + bias[j] : v + 0.0f;
            else
                c[r * ldc + j] += v;
        }
}

/* C[rows x cols] (row stride ldc) = tile + bias when first, else += tile. */
static void store_tile(const gemm_tile *tile, float *c, int64_t ldc, int rows, int cols, int first, const float *bias)
{
    float buffer[GEMM_MR * GEMM_NR];
    for (int r = 0; r < GEMM_MR; r++) {
        _mm256_storeu_ps(buffer + r * GEMM_NR, tile->c[r][0]);
        _mm256_storeu_ps(buffer + r * GEMM_NR + 8, tile->c[r][1]);
    }
    store_sums(buffer, GEMM_NR, c, ldc, rows, cols, first, bias);
}

/* ---- packing x, shared --------------------------------------------------------------- */

static int64_t block_kc(const linear_job *job, int64_t kb)
{
    int64_t k0 = kb * GEMM_KC;
    return job->k - k0 < GEMM_KC ? job->k - k0 : GEMM_KC;
}

enum { PACK_CHUNK_STRIPS = 16 };

/* Row strips [r0, r1) of x, k block kb, into dst (strip r at dst + (r - r0) * strip_floats). */
static void pack_x_strips(const linear_job *job, int64_t kb, int64_t r0, int64_t r1, float *dst)
{
    int64_t k0 = kb * GEMM_KC, kc = block_kc(job, kb);
    for (int64_t r = r0; r < r1; r++) {
        int64_t row = r * GEMM_MR;
        int rows = (int)(job->m - row < GEMM_MR ? job->m - row : GEMM_MR);
        gemm_pack_a6(job->x + row * job->k + k0, job->k, rows, kc, dst + (r - r0) * job->strip_floats);
    }
}

static void pack_x_task(void *ctx, int index, int n_tasks)
{
    linear_job *job = ctx;
    (void)index, (void)n_tasks;
    int64_t units = (job->kb1 - job->kb0) * job->pack_chunks;
    for (;;) {
        int64_t unit = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (unit >= units) return;
        int64_t kb = job->kb0 + unit / job->pack_chunks, chunk = unit % job->pack_chunks;
        int64_t r0 = chunk * PACK_CHUNK_STRIPS;
        int64_t r1 = r0 + PACK_CHUNK_STRIPS < job->m_strips ? r0 + PACK_CHUNK_STRIPS : job->m_strips;
        pack_x_strips(job, kb, r0, r1, job->apack + (kb - job->kb0) * job->kb_floats + r0 * job->strip_floats);
    }
}

/* ---- the multiply ----------------------------------------------------------------------- */

static const float zero_bias[LINEAR_KERNEL_STRIPS * GEMM_NR];

static int strip_live(const linear_job *job, int64_t s)
{
    return (int)(job->n - s * GEMM_NR < GEMM_NR ? job->n - s * GEMM_NR : GEMM_NR);
}

/* The tiles of row strips [r0, r1) (one block of at most GEMM_MC_STRIPS) of strip s, k block
 * kb: c = (bias or 0) + sum when kb is the first k block, else c += sum. */
static void multiply_tiles(const linear_job *job, const float *a, const float *strip, int64_t s, int64_t kb,
                           int64_t r0, int64_t r1)
{
    const int64_t ldy = job->n, n0 = s * GEMM_NR, kc = block_kc(job, kb);
    const int live = strip_live(job, s);
    const int first = kb == 0;
    const float *bias = job->bias ? job->bias + n0 : NULL;
    for (int64_t r = r0; r < r1; r++) {
        int64_t row = r * GEMM_MR;
        int rows = (int)(job->m - row < GEMM_MR ? job->m - row : GEMM_MR);
        float *c = job->y + row * ldy + n0;
        /* The tile of y was last touched a k block ago and, its rows being 4N bytes apart,
         * has likely left the caches: fetch it while the microkernel runs. */
        if (!first)
            for (int i = 0; i < rows; i++) {
                _mm_prefetch((const char *)(c + i * ldy), _MM_HINT_T0);
                _mm_prefetch((const char *)(c + i * ldy + live - 1), _MM_HINT_T0);
            }
        if (rows == GEMM_MR && live == GEMM_NR) {
            gemm_kernel_6x16_store(kc, a + r * job->strip_floats, strip, c, ldy, first, first && bias ? bias : zero_bias);
        } else {
            gemm_tile tile;
            gemm_kernel_6x16(kc, a + r * job->strip_floats, strip, GEMM_NR, &tile);
            store_tile(&tile, c, ldy, rows, live, first, bias);
        }
    }
}

/* Strips [s, s + count) of a packed panel (strip s at `strips`, the next kc * 16 floats
 * on), through LINEAR_KERNEL_STRIPS-wide calls where the strips and rows are full. */
static void multiply_strips(const linear_job *job, const float *a, const float *strips, int64_t s, int64_t count,
                            int64_t kb, int64_t r0, int64_t r1)
{
    const int64_t kc = block_kc(job, kb);
#ifdef CANVAS_CPU_AVX512
    for (; count >= 2 && strip_live(job, s + 1) == GEMM_NR; s += 2, count -= 2, strips += 2 * kc * GEMM_NR) {
        const int64_t ldy = job->n, n0 = s * GEMM_NR;
        const int first = kb == 0;
        const float *add = first && job->bias ? job->bias + n0 : zero_bias;
        int64_t r = r0;
        for (; r < r1 && job->m - r * GEMM_MR >= GEMM_MR; r++) {
            float *c = job->y + r * GEMM_MR * ldy + n0;
            if (!first) /* as in multiply_tiles: y's tile has likely left the caches */
                for (int i = 0; i < GEMM_MR; i++) {
                    _mm_prefetch((const char *)(c + i * ldy), _MM_HINT_T0);
                    _mm_prefetch((const char *)(c + i * ldy + 2 * GEMM_NR - 1), _MM_HINT_T0);
                }
            gemm_kernel_6x32_store(kc, a + r * job->strip_floats, strips, c, ldy, first, add);
        }
        if (r < r1) { /* the last row strip, partial (its missing rows are packed as zeros):
                       * the sums into a buffer of -0.0f (x + -0.0f is x, bit for bit) */
            float sums[GEMM_MR * 2 * GEMM_NR];
            for (int i = 0; i < GEMM_MR * 2 * GEMM_NR; i++) sums[i] = -0.0f;
            gemm_kernel_6x32_store(kc, a + r * job->strip_floats, strips, sums, 2 * GEMM_NR, 0, zero_bias);
            store_sums(sums, 2 * GEMM_NR, job->y + r * GEMM_MR * ldy + n0, ldy, (int)(job->m - r * GEMM_MR),
                       2 * GEMM_NR, first, job->bias ? job->bias + n0 : NULL);
        }
    }
#endif
    for (int64_t i = 0; i < count; i++) multiply_tiles(job, a, strips + i * kc * GEMM_NR, s + i, kb, r0, r1);
}

/* Few rows (the text stream): the cost is streaming the weight from memory, so each strip
 * (each LINEAR_KERNEL_STRIPS strips) takes all its k blocks in turn (16 long sequential
 * row reads per strip), fetched two pieces ahead, and its column slab of y stays in cache.
 * x must be packed and shared (apack). */
static void multiply_item_few_rows(linear_job *job, int64_t s0, int64_t s1, int64_t r0, int64_t r1, float *panel)
{
    const int64_t nkb = job->kb1 - job->kb0, g = LINEAR_KERNEL_STRIPS;
    const int64_t units = (s1 - s0 + g - 1) / g * nkb;
    for (int64_t u = 0; u < units; u++) {
        /* the weight two units ahead (the first two before the first unit) */
        for (int64_t p = u == 0 ? 0 : u + 2; p <= u + 2 && p < units; p++) {
            int64_t pkb = job->kb0 + p % nkb;
            for (int64_t ps = s0 + p / nkb * g; ps < s0 + (p / nkb + 1) * g && ps < s1; ps++)
                prefetch_weight_strip(job->w, ps * GEMM_NR, strip_live(job, ps), pkb * GEMM_KC, block_kc(job, pkb));
        }
        int64_t s = s0 + u / nkb * g, kb = job->kb0 + u % nkb, kc = block_kc(job, kb);
        int64_t count = s1 - s < g ? s1 - s : g;
        for (int64_t i = 0; i < count; i++)
            pack_weight_strip(job->w, (s + i) * GEMM_NR, strip_live(job, s + i), kb * GEMM_KC, kc,
                              panel + i * kc * GEMM_NR);
        multiply_strips(job, job->apack + (kb - job->kb0) * job->kb_floats, panel, s, count, kb, r0, r1);
    }
}

/* Item: strips [s0, s1) of 16 columns x row strips [r0, r1). Per k block of the group:
 * pack the item's weight strips into the task's panel (L2/L3), then for each block of
 * GEMM_MC_STRIPS row strips of the shared packed x (it stays in L2), run every strip of
 * the panel (it stays in L1 while it goes down the block's rows). */
static void multiply_item(linear_job *job, int64_t item, float *panel)
{
    int64_t ci = item % job->col_items, ri = item / job->col_items;
    int64_t s0 = ci * job->strips_per_item, r0 = ri * job->rstrips_per_item;
    int64_t n_strips = (job->n + GEMM_NR - 1) / GEMM_NR;
    int64_t s1 = s0 + job->strips_per_item < n_strips ? s0 + job->strips_per_item : n_strips;
    int64_t r1 = r0 + job->rstrips_per_item < job->m_strips ? r0 + job->rstrips_per_item : job->m_strips;
    if (job->apack && r1 - r0 <= GEMM_MC_STRIPS) { /* few rows: a strip at a time, all its k blocks */
        multiply_item_few_rows(job, s0, s1, r0, r1, panel);
        return;
    }
    for (int64_t kb = job->kb0; kb < job->kb1; kb++) {
        int64_t kc = block_kc(job, kb);
        /* The weight comes in 16 short row pieces per strip, too short for the hardware
         * prefetcher: ask for them two strips ahead. */
        for (int64_t p = s0; p < s0 + 2 && p < s1; p++)
            prefetch_weight_strip(job->w, p * GEMM_NR, strip_live(job, p), kb * GEMM_KC, kc);
        for (int64_t s = s0; s < s1; s++) {
            if (s + 2 < s1) prefetch_weight_strip(job->w, (s + 2) * GEMM_NR, strip_live(job, s + 2), kb * GEMM_KC, kc);
            pack_weight_strip(job->w, s * GEMM_NR, strip_live(job, s), kb * GEMM_KC, kc, panel + (s - s0) * kc * GEMM_NR);
        }
        const float *a = job->apack ? job->apack + (kb - job->kb0) * job->kb_floats : NULL;
        for (int64_t rb = r0; rb < r1; rb += GEMM_MC_STRIPS) {
            int64_t rb1 = rb + GEMM_MC_STRIPS < r1 ? rb + GEMM_MC_STRIPS : r1;
            if (!job->apack) {
                float *block = panel + job->strip_buffer_floats;
                pack_x_strips(job, kb, rb, rb1, block);
                a = block - rb * job->strip_floats; /* strip r at a + r * strip_floats */
            }
            multiply_strips(job, a, panel, s0, s1 - s0, kb, rb, rb1);
        }
    }
}

static void multiply_task(void *ctx, int index, int n_tasks)
{
    linear_job *job = ctx;
    (void)n_tasks;
    float *strip = job->strips + (size_t)index * job->task_floats;
    int64_t items = job->col_items * job->row_items;
    for (;;) {
        int64_t item = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (item >= items) return;
        multiply_item(job, item, strip);
    }
}

/* ---- one or two rows: the GEMV of gemv.h ------------------------------------------- */

/* (the readers of each stored type are defined with its packing step, above) */
static __m256 no_row(const void *src, int64_t n)
{
    (void)src, (void)n;
    return _mm256_setzero_ps();
}

typedef struct plain_gemv {
    gemv_call call;
    const weight_view *w;
} plain_gemv;

static void plain_gemv_rows(const void *ctx, int64_t n0, int64_t n1)
{
    const plain_gemv *g = ctx;
    switch (g->w->type) {
    case DTYPE_BF16: gemv_rows(&g->call, (gemv_reader){no_row, bf16_load8, bf16_load1, g->w}, n0, n1); break;
    case DTYPE_F16: gemv_rows(&g->call, (gemv_reader){no_row, f16_load8, f16_load1, g->w}, n0, n1); break;
    default: gemv_rows(&g->call, (gemv_reader){no_row, f32_load8, f32_load1, g->w}, n0, n1); break;
    }
}

/* ---- blocking ---------------------------------------------------------------------- */

/* Everything about how a call is cut up, from m, n, k and the thread count alone (so that
 * op_linear_workspace_bytes can tell the scratch a call will take without making it). */
static void plan_blocking(linear_job *job, int n_threads)
{
    /* Work items: runs of at least LINEAR_MIN_ITEM_STRIPS 16-column strips (x's rows are
     * reused from L2 across an item's strips), about LINEAR_ITEMS_PER_THREAD per thread so
     * that a thread slowed down by another process takes fewer. Narrow outputs split the
     * rows too, into about two items per thread (each row item repacks the weight).
     * Items only choose which tiles a thread computes, never how. */
    int64_t n_strips = (job->n + GEMM_NR - 1) / GEMM_NR;
    job->m_strips = (job->m + GEMM_MR - 1) / GEMM_MR;
    int64_t want = n_threads > 1 ? (int64_t)LINEAR_ITEMS_PER_THREAD * n_threads : 1;
    int64_t col_items = n_strips / LINEAR_MIN_ITEM_STRIPS;
    if (col_items < 1) col_items = 1;
    if (col_items > want) col_items = want;
    if (col_items < (n_strips + LINEAR_MAX_ITEM_STRIPS - 1) / LINEAR_MAX_ITEM_STRIPS)
        col_items = (n_strips + LINEAR_MAX_ITEM_STRIPS - 1) / LINEAR_MAX_ITEM_STRIPS;
    job->strips_per_item = (n_strips + col_items - 1) / col_items;
    job->strips_per_item += (LINEAR_KERNEL_STRIPS - job->strips_per_item % LINEAR_KERNEL_STRIPS) % LINEAR_KERNEL_STRIPS;
    job->col_items = (n_strips + job->strips_per_item - 1) / job->strips_per_item;
    job->row_items = 1;
    if (job->col_items < 2 * (int64_t)n_threads && n_threads > 1) {
        int64_t row_items = (2 * (int64_t)n_threads + job->col_items - 1) / job->col_items;
        int64_t max_row_items = (job->m_strips + GEMM_MC_STRIPS - 1) / GEMM_MC_STRIPS;
        job->row_items = row_items < max_row_items ? row_items : max_row_items;
    }
    job->rstrips_per_item = (job->m_strips + job->row_items - 1) / job->row_items;
    job->row_items = (job->m_strips + job->rstrips_per_item - 1) / job->rstrips_per_item;

    /* x is packed once per k block for all threads, a group of k blocks at a time. */
    const int64_t kc_max = job->k < GEMM_KC ? job->k : GEMM_KC;
    job->k_blocks = (job->k + GEMM_KC - 1) / GEMM_KC;
    job->strip_floats = GEMM_MR * kc_max + 16; /* + the pack's 2-float overrun, 64-byte steps */
    job->kb_floats = job->m_strips * job->strip_floats;
    /* (few rows: an item walks its strips one at a time, so it needs all of x at once) */
    job->shared_x = job->col_items > 1 || job->m_strips <= GEMM_MC_STRIPS;
    job->per_group = job->k_blocks;
    if (job->shared_x) {
        job->per_group = (int64_t)(LINEAR_X_GROUP_BYTES / ((size_t)job->kb_floats * sizeof(float)));
        if (job->per_group < 1) job->per_group = 1;
        int64_t groups = (job->k_blocks + job->per_group - 1) / job->per_group;
        job->per_group = (job->k_blocks + groups - 1) / groups;
    }
    job->pack_chunks = (job->m_strips + PACK_CHUNK_STRIPS - 1) / PACK_CHUNK_STRIPS;

    int64_t items = job->col_items * job->row_items;
    job->n_tasks = (int64_t)n_threads < items ? n_threads : (int)items;
    job->strip_buffer_floats = (size_t)(job->strips_per_item * kc_max * GEMM_NR);
    job->task_floats = job->strip_buffer_floats + (job->shared_x ? 0 : (size_t)(GEMM_MC_STRIPS * job->strip_floats));
    job->x_floats = job->shared_x ? (size_t)(job->per_group * job->kb_floats) : 0;
}

/* ---- entry ------------------------------------------------------------------------ */

canvas_status op_linear(op_backend *be, const float *x, int64_t m, const weight_view *w, const float *bias, float *y)
{
    thread_pool *pool = op_backend_pool(be);
    if (w->quant) TRY(quant_view_check(w));
    else if (w->type != DTYPE_F32 && w->type != DTYPE_F16 && w->type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "op_linear: no kernel for %s weights [%lld, %lld]",
                           dtype_name(w->type), (long long)w->out_features, (long long)w->in_features);
    if (m <= 0 || w->out_features <= 0) return CANVAS_OK;
    int n_threads = thread_pool_size(pool);
    linear_job job = {.x = x, .m = m, .n = w->out_features, .k = w->in_features, .w = w, .bias = bias, .y = y};
    atomic_init(&job.next_item, 0);
    if (job.k <= 0) { /* an empty sum: y = bias */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < job.n; j++) y[i * job.n + j] = bias ? bias[j] : 0.0f;
        return CANVAS_OK;
    }
    if (m <= GEMV_MAX_ROWS) {
        if (w->quant) {
            quant_gemv(pool, x, m, w, bias, y);
        } else {
            plain_gemv g = {{x, m, job.k, job.n, bias, y}, w};
            gemv_run(pool, job.n, plain_gemv_rows, &g);
        }
        return CANVAS_OK;
    }

    plan_blocking(&job, n_threads);
    float *workspace;
    TRY(mem_alloc((void **)&workspace, (job.x_floats + (size_t)job.n_tasks * job.task_floats) * sizeof(float),
                   MEM_SCRATCH));
    job.apack = job.shared_x ? workspace : NULL;
    job.strips = workspace + job.x_floats;
    for (int64_t kb0 = 0; kb0 < job.k_blocks; kb0 += job.per_group) {
        job.kb0 = kb0;
        job.kb1 = kb0 + job.per_group < job.k_blocks ? kb0 + job.per_group : job.k_blocks;
        int64_t pack_units = (job.kb1 - job.kb0) * job.pack_chunks;
        if (job.shared_x) {
            atomic_store_explicit(&job.next_item, 0, memory_order_relaxed);
            thread_pool_run(pool, pack_x_task, &job, (int64_t)n_threads < pack_units ? n_threads : (int)pack_units);
        }
        atomic_store_explicit(&job.next_item, 0, memory_order_relaxed);
        thread_pool_run(pool, multiply_task, &job, job.n_tasks);
    }
    mem_free(workspace);
    return CANVAS_OK;
}

size_t op_linear_workspace_bytes(int64_t m, int64_t n, int64_t k, int threads)
{
    if (m <= GEMV_MAX_ROWS || n <= 0 || k <= 0) return 0; /* GEMV and empty calls take none */
    linear_job job = {.m = m, .n = n, .k = k};
    plan_blocking(&job, threads < 1 ? 1 : threads);
    return (job.x_floats + (size_t)job.n_tasks * job.task_floats) * sizeof(float);
}
