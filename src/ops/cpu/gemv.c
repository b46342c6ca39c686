/* SPDX-License-Identifier: Apache-2.0 */
/* gemv.c — the threading of the GEMV loop (gemv.h): items of 32 outputs, claimed. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <stdatomic.h>

#include "ops/cpu/gemv.h"

#define GEMV_ROWS_PER_ITEM 32

typedef struct gemv_job {
    int64_t n_out;
    void (*rows)(const void *ctx, int64_t n0, int64_t n1);
    const void *ctx;
    atomic_int_fast64_t next_item;
} gemv_job;

static void gemv_task(void *arg, int index, int n_tasks)
{
    gemv_job *job = arg;
    (void)index, (void)n_tasks;
    int64_t items = (job->n_out + GEMV_ROWS_PER_ITEM - 1) / GEMV_ROWS_PER_ITEM;
    for (;;) {
        int64_t item = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (item >= items) return;
        int64_t n0 = item * GEMV_ROWS_PER_ITEM;
        job->rows(job->ctx, n0, n0 + GEMV_ROWS_PER_ITEM < job->n_out ? n0 + GEMV_ROWS_PER_ITEM : job->n_out);
    }
}

void gemv_run(thread_pool *pool, int64_t n_out, void (*rows)(const void *ctx, int64_t n0, int64_t n1),
              const void *ctx)
{
    gemv_job job = {.n_out = n_out, .rows = rows, .ctx = ctx};
    atomic_init(&job.next_item, 0);
    thread_pool_run(pool, gemv_task, &job, thread_pool_size(pool));
}
