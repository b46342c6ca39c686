/* linear.c — op_linear: y[m, n] = sum_k x[m, k] W[n, k] + bias[n], W stored F32/F16/BF16.
 *
 * Blocked GEMM in the manner of GotoBLAS/BLIS, with the weight converted while packing:
 *
 *   work item = (a block of cols_per_item output columns, a block of rows), claimed by threads
 *   for each k block of GEMM_KC:
 *       pack W[n block, k block] -> f32 panel, transposed into 16-column strips  (L2)
 *       for each GEMM_MC rows of x:
 *           pack x[rows, k block] -> 6-row strips                                (L2)
 *           for each 16-column strip, for each 6-row strip: 6x16 microkernel     (L1)
 *
 * Each weight element is converted once per row block (usually once per call: a row
 * block is all of M unless N is too narrow to keep every thread busy). No full f32 copy
 * of a weight exists; each thread owns a KC x NB panel and an MC x KC block.
 *
 * Reduction order: every output element is the sum over k blocks in increasing order,
 * each block summed by the microkernel in increasing k, the bias added to the first
 * block. Threads only split M and N, so the result is bit-identical for any thread count.
 *
 * One or two rows (the modulation GEMV) take a streaming path instead: it is bound by
 * reading the weight, so it converts 8 weights at a time and uses them for both rows. */
#include <stdatomic.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/cpu/gemm_kernel.h"
#include "ops/cpu/quant_pack.h"
#include "ops/cpu/simd.h"
#include "ops/ops.h"

#define GEMM_KC 256
#define GEMM_MC 144         /* 24 strips of 6 rows: the packed x block is 144 KiB */
/* Columns per work item: about three items per thread, so that dynamic claiming evens
 * out a slow thread, but as wide as possible because every item repacks its rows of x.
 * The packed weight panel (KC x cols) only needs L3: each 16-column strip of it is
 * reused from L1 by all the rows of an MC block. None of this changes the arithmetic. */
#define LINEAR_MIN_COLS 64
#define LINEAR_MAX_COLS 1024
#define GEMV_MAX_ROWS 2
#define GEMV_ROWS_PER_ITEM 32

typedef struct linear_job {
    const float *x;
    int64_t m, n, k;
    const weight_view *w;
    const float *bias;
    float *y;

    int64_t rows_per_item;     /* row block of a work item */
    int64_t cols_per_item;     /* column block of a work item, a multiple of 16 */
    int64_t row_blocks, col_blocks;
    atomic_int_fast64_t next_item;

    float *workspace;          /* per task: panel then block */
    size_t panel_floats, block_floats;
} linear_job;

/* ---- packing the weight ------------------------------------------------------------ */

/* 8 consecutive weights of row n starting at column k, as f32. */
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

/* Pack W[n0 .. n0+cols) x [k0 .. k0+kc) into 16-column strips: strip s holds
 * panel[s*kc*16 + kk*16 + c] = W[n0 + 16s + c][k0 + kk], zero past the last column. */
static void pack_weight_panel(const weight_view *w, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float *panel)
{
    size_t elem = dtype_size(w->type), row_bytes = (size_t)kc * elem;
    for (int64_t s = 0; s * GEMM_NR < cols; s++) {
        float *strip = panel + s * kc * GEMM_NR;
        int64_t c0 = n0 + s * GEMM_NR;
        int64_t live = cols - s * GEMM_NR < GEMM_NR ? cols - s * GEMM_NR : GEMM_NR;
        /* The weight comes from DRAM in 16 short row pieces per strip, too short for the
         * hardware prefetcher: ask for the next strip's pieces now. */
        int64_t next_live = cols - (s + 1) * GEMM_NR < GEMM_NR ? cols - (s + 1) * GEMM_NR : GEMM_NR;
        for (int64_t i = 0; i < next_live; i++) {
            const char *row = (const char *)w->data + ((size_t)(c0 + GEMM_NR + i) * (size_t)w->in_features + (size_t)k0) * elem;
            for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
        }
        for (int half = 0; half < 2; half++) {
            int64_t h0 = half * 8;
            int64_t rows = live - h0; /* live columns of W in this 8-row half */
            int64_t kk = 0;
            if (rows >= 8) {
                for (; kk + 8 <= kc; kk += 8) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++) r[i] = load8_weight(w, c0 + h0 + i, k0 + kk);
                    gemm_transpose8x8(r);
                    for (int j = 0; j < 8; j++) _mm256_storeu_ps(strip + (kk + j) * GEMM_NR + h0, r[j]);
                }
            }
            for (; kk < kc; kk++)
                for (int i = 0; i < 8; i++)
                    strip[kk * GEMM_NR + h0 + i] = i < rows ? load1_weight(w, c0 + h0 + i, k0 + kk) : 0.0f;
        }
    }
}

/* ---- writing a tile --------------------------------------------------------------- */

/* C[rows x cols] (row stride ldc) = tile (+ bias) when first, else += tile. */
static inline void store_tile(const gemm_tile *tile, float *c, int64_t ldc, int rows, int cols, int first,
                              const float *bias)
{
    if (rows == GEMM_MR && cols == GEMM_NR) {
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        if (first && bias) b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        for (int r = 0; r < GEMM_MR; r++) {
            float *cr = c + r * ldc;
            if (first) {
                _mm256_storeu_ps(cr, _mm256_add_ps(tile->c[r][0], b0));
                _mm256_storeu_ps(cr + 8, _mm256_add_ps(tile->c[r][1], b1));
            } else {
                _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), tile->c[r][0]));
                _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), tile->c[r][1]));
            }
        }
        return;
    }
    float buffer[GEMM_MR * GEMM_NR];
    for (int r = 0; r < GEMM_MR; r++) {
        _mm256_storeu_ps(buffer + r * GEMM_NR, tile->c[r][0]);
        _mm256_storeu_ps(buffer + r * GEMM_NR + 8, tile->c[r][1]);
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = buffer[r * GEMM_NR + j];
            if (first)
                c[r * ldc + j] = bias ? v + bias[j] : v + 0.0f;
            else
                c[r * ldc + j] += v;
        }
}

/* ---- the blocked GEMM ------------------------------------------------------------- */

static void gemm_item(linear_job *job, int64_t item, float *panel, float *block)
{
    int64_t rb = item % job->row_blocks, cb = item / job->row_blocks;
    int64_t n0 = cb * job->cols_per_item;
    int64_t cols = job->n - n0 < job->cols_per_item ? job->n - n0 : job->cols_per_item;
    int64_t m0 = rb * job->rows_per_item;
    int64_t m1 = m0 + job->rows_per_item < job->m ? m0 + job->rows_per_item : job->m;
    int64_t ldy = job->n, ldx = job->k;

    for (int64_t k0 = 0; k0 < job->k; k0 += GEMM_KC) {
        int64_t kc = job->k - k0 < GEMM_KC ? job->k - k0 : GEMM_KC;
        int first = k0 == 0;
        if (job->w->quant) /* quantised formats decode here (quant_pack.c) */
            quant_pack_panel(job->w, n0, cols, k0, kc, panel);
        else
            pack_weight_panel(job->w, n0, cols, k0, kc, panel);
        for (int64_t i0 = m0; i0 < m1; i0 += GEMM_MC) {
            int64_t mc = m1 - i0 < GEMM_MC ? m1 - i0 : GEMM_MC;
            for (int64_t r = 0; r < mc; r += GEMM_MR) {
                int rows = (int)(mc - r < GEMM_MR ? mc - r : GEMM_MR);
                gemm_pack_a6(job->x + (i0 + r) * ldx + k0, ldx, rows, kc, block + r * kc);
            }
            for (int64_t s = 0; s * GEMM_NR < cols; s++) {
                int ncols = (int)(cols - s * GEMM_NR < GEMM_NR ? cols - s * GEMM_NR : GEMM_NR);
                const float *strip = panel + s * kc * GEMM_NR;
                const float *bias = job->bias ? job->bias + n0 + s * GEMM_NR : NULL;
                for (int64_t r = 0; r < mc; r += GEMM_MR) {
                    int rows = (int)(mc - r < GEMM_MR ? mc - r : GEMM_MR);
                    float *c = job->y + (i0 + r) * ldy + n0 + s * GEMM_NR;
                    /* The tile of y was last touched a whole k block ago and has left
                     * L1/L2: fetch it while the microkernel runs. */
                    if (!first)
                        for (int i = 0; i < rows; i++) {
                            _mm_prefetch((const char *)(c + i * ldy), _MM_HINT_T0);
                            _mm_prefetch((const char *)(c + i * ldy + ncols - 1), _MM_HINT_T0);
                        }
                    gemm_tile tile;
                    gemm_kernel_6x16(kc, block + r * kc, strip, GEMM_NR, &tile);
                    store_tile(&tile, c, ldy, rows, ncols, first, bias);
                }
            }
        }
    }
}

static void gemm_task(void *ctx, int index, int n_tasks)
{
    linear_job *job = ctx;
    (void)n_tasks;
    float *panel = job->workspace + (size_t)index * (job->panel_floats + job->block_floats);
    float *block = panel + job->panel_floats;
    int64_t items = job->row_blocks * job->col_blocks;
    for (;;) {
        int64_t item = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (item >= items) return;
        gemm_item(job, item, panel, block);
    }
}

/* ---- few rows: stream the weight once --------------------------------------------- */

/* Four weight rows at a time: four streams in flight hide more memory latency than one,
 * and each converted weight vector serves both rows of x. */
static void gemv_rows(const linear_job *job, int64_t n_begin, int64_t n_end)
{
    const weight_view *w = job->w;
    int64_t k = job->k, m = job->m;
    int64_t n = n_begin;
    for (; n + 4 <= n_end; n += 4) {
        __m256 acc[GEMV_MAX_ROWS][4];
        for (int r = 0; r < GEMV_MAX_ROWS; r++)
            for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256 w0 = load8_weight(w, n, t), w1 = load8_weight(w, n + 1, t);
            __m256 w2 = load8_weight(w, n + 2, t), w3 = load8_weight(w, n + 3, t);
            for (int r = 0; r < m; r++) {
                __m256 xv = _mm256_loadu_ps(job->x + r * k + t);
                acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
                acc[r][2] = _mm256_fmadd_ps(xv, w2, acc[r][2]);
                acc[r][3] = _mm256_fmadd_ps(xv, w3, acc[r][3]);
            }
        }
        for (int r = 0; r < m; r++)
            for (int j = 0; j < 4; j++) {
                float sum = simd_hsum(acc[r][j]);
                for (int64_t u = t; u < k; u++) sum += job->x[r * k + u] * load1_weight(w, n + j, u);
                job->y[r * job->n + n + j] = job->bias ? sum + job->bias[n + j] : sum;
            }
    }
    for (; n < n_end; n++) {
        __m256 acc[GEMV_MAX_ROWS];
        for (int r = 0; r < GEMV_MAX_ROWS; r++) acc[r] = _mm256_setzero_ps();
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256 w0 = load8_weight(w, n, t);
            for (int r = 0; r < m; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(job->x + r * k + t), w0, acc[r]);
        }
        for (int r = 0; r < m; r++) {
            float sum = simd_hsum(acc[r]);
            for (int64_t u = t; u < k; u++) sum += job->x[r * k + u] * load1_weight(w, n, u);
            job->y[r * job->n + n] = job->bias ? sum + job->bias[n] : sum;
        }
    }
}

static void gemv_task(void *ctx, int index, int n_tasks)
{
    linear_job *job = ctx;
    (void)index, (void)n_tasks;
    int64_t items = (job->n + GEMV_ROWS_PER_ITEM - 1) / GEMV_ROWS_PER_ITEM;
    for (;;) {
        int64_t item = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (item >= items) return;
        int64_t n0 = item * GEMV_ROWS_PER_ITEM;
        gemv_rows(job, n0, n0 + GEMV_ROWS_PER_ITEM < job->n ? n0 + GEMV_ROWS_PER_ITEM : job->n);
    }
}

/* ---- entry ------------------------------------------------------------------------ */

canvas_status op_linear(thread_pool *pool, const float *x, int64_t m, const weight_view *w, const float *bias, float *y)
{
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
        if (w->quant) quant_gemv(pool, x, m, w, bias, y);
        else thread_pool_run(pool, gemv_task, &job, n_threads);
        return CANVAS_OK;
    }

    /* Work items: column blocks first; split rows too when there are too few of them to
     * keep every thread busy (narrow outputs such as proj_out). */
    int64_t cols_per_item = (job.n + 3 * n_threads - 1) / (3 * n_threads);
    cols_per_item = (cols_per_item + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    if (cols_per_item < LINEAR_MIN_COLS) cols_per_item = LINEAR_MIN_COLS;
    if (cols_per_item > LINEAR_MAX_COLS) cols_per_item = LINEAR_MAX_COLS;
    job.cols_per_item = cols_per_item;
    job.col_blocks = (job.n + cols_per_item - 1) / cols_per_item;
    int64_t want_items = 2 * (int64_t)n_threads;
    int64_t row_blocks = job.col_blocks >= want_items || n_threads == 1 ? 1 : (want_items + job.col_blocks - 1) / job.col_blocks;
    int64_t rows_per_item = (m + row_blocks - 1) / row_blocks;
    rows_per_item = (rows_per_item + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    if (rows_per_item < 4 * GEMM_MR) rows_per_item = 4 * GEMM_MR;
    job.rows_per_item = rows_per_item;
    job.row_blocks = (m + rows_per_item - 1) / rows_per_item;

    int64_t kc = job.k < GEMM_KC ? job.k : GEMM_KC;
    int64_t cols = job.n < cols_per_item ? (job.n + GEMM_NR - 1) / GEMM_NR * GEMM_NR : cols_per_item;
    int64_t rows = m < GEMM_MC ? (m + GEMM_MR - 1) / GEMM_MR * GEMM_MR : GEMM_MC;
    job.panel_floats = (size_t)(kc * cols + 16) / 16 * 16;
    job.block_floats = (size_t)(kc * rows + 2 + 16) / 16 * 16;
    int n_tasks = (int64_t)n_threads < job.row_blocks * job.col_blocks ? n_threads : (int)(job.row_blocks * job.col_blocks);
    TRY(mem_alloc((void **)&job.workspace, (size_t)n_tasks * (job.panel_floats + job.block_floats) * sizeof(float),
                  MEM_SCRATCH));
    thread_pool_run(pool, gemm_task, &job, n_tasks);
    mem_free(job.workspace);
    return CANVAS_OK;
}
