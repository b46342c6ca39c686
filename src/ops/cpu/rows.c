/* SPDX-License-Identifier: Apache-2.0 */
/* rows.c — the fused row kernels of ops_rows.h: one job type, split by rows over the
 * pool; each pass calls the single-thread kernels of norms.c, rope.c and activations.c
 * on its row range. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include "ops/ops_cpu.h"
#include "ops/ops_rows.h"

typedef enum row_pass {
    PASS_NORM_MODULATE, PASS_GATED_ADD, PASS_GELU, PASS_QK_PREP, PASS_RMS_NORM, PASS_SILU
} row_pass;

typedef struct row_job {
    row_pass pass;
    int64_t rows, d;
    int64_t split;                    /* rows below use set [0] of the vectors, the rest [1] */
    int64_t n;                        /* SILU: elements (its rows are runs of SILU_RUN of them) */
    const float *x;                   /* NORM_MODULATE / RMS_NORM input, GATED_ADD delta */
    float *y;                         /* NORM_MODULATE / RMS_NORM output; the other passes in place (q) */
    float eps;                        /* NORM_MODULATE, RMS_NORM */
    const float *weight;              /* RMS_NORM (or NULL) */
    const float *const *shift, *const *scale; /* NORM_MODULATE */
    const float *const *gate;         /* GATED_ADD */
    float *k;                         /* QK_PREP */
    const op_qk_norm_rope_params *qk; /* QK_PREP */
} row_job;

static void norm_modulate_rows(const row_job *j, int64_t r0, int64_t r1)
{
    const int64_t d = j->d;
    op_layer_norm(j->x + r0 * d, r1 - r0, d, j->eps, NULL, NULL, j->y + r0 * d);
    for (int64_t r = r0; r < r1; r++) {
        const int set = r < j->split ? 0 : 1;
        const float *shift = j->shift[set], *scale = j->scale[set];
        float *row = j->y + r * d;
        for (int64_t i = 0; i < d; i++) row[i] = row[i] * (1.0f + scale[i]) + shift[i];
    }
}

static void gated_add_rows(const row_job *j, int64_t r0, int64_t r1)
{
    const int64_t d = j->d;
    for (int64_t r = r0; r < r1; r++) {
        const float *gate = j->gate[r < j->split ? 0 : 1];
        float *row = j->y + r * d;
        const float *add = j->x + r * d;
        for (int64_t i = 0; i < d; i++) row[i] += gate[i] * add[i];
    }
}

/* Runs of rows on one side of the split take one op_rms_norm / op_rope_interleaved call each. */
static void qk_prep_rows(const row_job *j, int64_t r0, int64_t r1)
{
    const op_qk_norm_rope_params *p = j->qk;
    const int64_t d = j->d, hd = p->head_dim, pairs = hd / 2;
    for (int64_t r = r0; r < r1;) {
        const int set = r < p->split ? 0 : 1;
        const int64_t end = set == 0 && p->split < r1 ? p->split : r1, n = end - r;
        float *q = j->y + r * d, *k = j->k + r * d;
        op_rms_norm(q, n * p->heads, hd, p->eps, p->norm_q[set], q);
        op_rms_norm(k, n * p->heads, hd, p->eps, p->norm_k[set], k);
        op_rope_interleaved(q, n, p->heads, p->head_dim, p->cos + r * pairs, p->sin + r * pairs);
        op_rope_interleaved(k, n, p->heads, p->head_dim, p->cos + r * pairs, p->sin + r * pairs);
        r = end;
    }
}

/* op_silu takes 8 elements at a time and the rest one by one, which round differently: runs
 * of a multiple of 8 keep every element on the side of that line op_silu puts it on. */
enum { SILU_RUN = 64 };

static void silu_runs(const row_job *j, int64_t r0, int64_t r1)
{
    const int64_t start = r0 * SILU_RUN, end = r1 * SILU_RUN < j->n ? r1 * SILU_RUN : j->n;
    op_silu(j->y + start, end - start);
}

static void row_task(void *ctx, int index, int n_tasks)
{
    const row_job *j = ctx;
    int64_t r0 = j->rows * index / n_tasks, r1 = j->rows * (index + 1) / n_tasks;
    if (r0 == r1) return;
    switch (j->pass) {
    case PASS_NORM_MODULATE: norm_modulate_rows(j, r0, r1); break;
    case PASS_GATED_ADD: gated_add_rows(j, r0, r1); break;
    case PASS_GELU: op_gelu_tanh(j->y + r0 * j->d, (r1 - r0) * j->d); break;
    case PASS_QK_PREP: qk_prep_rows(j, r0, r1); break;
    case PASS_RMS_NORM: op_rms_norm(j->x + r0 * j->d, r1 - r0, j->d, j->eps, j->weight, j->y + r0 * j->d); break;
    case PASS_SILU: silu_runs(j, r0, r1); break;
    }
}

static void run_rows(op_backend *be, const row_job *job)
{
    thread_pool *pool = op_backend_pool(be);
    int n_tasks = pool ? thread_pool_size(pool) : 1;
    if (job->rows < n_tasks) n_tasks = job->rows > 0 ? (int)job->rows : 1;
    thread_pool_run(pool, row_task, (void *)job, n_tasks);
}

void op_norm_modulate(op_backend *be, const float *x, int64_t rows, int64_t d, float eps,
                      const float *const shift[2], const float *const scale[2], int64_t split, float *y)
{
    row_job job = {.pass = PASS_NORM_MODULATE, .rows = rows, .d = d, .split = split, .x = x, .y = y, .eps = eps,
                   .shift = shift, .scale = scale};
    run_rows(be, &job);
}

void op_gated_add(op_backend *be, float *y, const float *x, int64_t rows, int64_t d, const float *const gate[2],
                  int64_t split)
{
    row_job job = {.pass = PASS_GATED_ADD, .rows = rows, .d = d, .split = split, .x = x, .y = y, .gate = gate};
    run_rows(be, &job);
}

void op_gelu_tanh_rows(op_backend *be, float *x, int64_t rows, int64_t width)
{
    row_job job = {.pass = PASS_GELU, .rows = rows, .d = width, .y = x};
    run_rows(be, &job);
}

void op_qk_norm_rope(op_backend *be, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p)
{
    row_job job = {.pass = PASS_QK_PREP, .rows = rows, .d = (int64_t)p->heads * p->head_dim, .y = q, .k = k, .qk = p};
    run_rows(be, &job);
}

void op_rms_norm_rows(op_backend *be, const float *x, int64_t rows, int64_t dim, float eps, const float *weight,
                      float *y)
{
    row_job job = {.pass = PASS_RMS_NORM, .rows = rows, .d = dim, .x = x, .y = y, .eps = eps, .weight = weight};
    run_rows(be, &job);
}

void op_silu_rows(op_backend *be, float *x, int64_t n)
{
    if (n <= 0) return;
    row_job job = {.pass = PASS_SILU, .rows = (n + SILU_RUN - 1) / SILU_RUN, .n = n, .y = x};
    run_rows(be, &job);
}
