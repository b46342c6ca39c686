/* SPDX-License-Identifier: Apache-2.0 */
/* threadpool.h — a fixed set of worker threads for the kernels.
 *
 * The size comes from the machine (online CPUs) unless CANVAS_THREADS or the caller says
 * otherwise. thread_pool_run splits work into n_tasks pieces and returns when all have
 * run; the calling thread works too. Not reentrant: a task must not call run again. */
#ifndef CANVAS_OPS_THREADPOOL_H
#define CANVAS_OPS_THREADPOOL_H

#include "canvas.h"

typedef struct thread_pool thread_pool;

/* n_threads 0: CANVAS_THREADS if set, else the number of online CPUs. */
canvas_status thread_pool_create(int n_threads, thread_pool **out);
void thread_pool_destroy(thread_pool *pool);
int thread_pool_size(const thread_pool *pool);

/* Run task(ctx, i, n_tasks) for i in [0, n_tasks); blocks until every call returned.
 * pool may be NULL: then everything runs on the calling thread. */
void thread_pool_run(thread_pool *pool, void (*task)(void *ctx, int index, int n_tasks), void *ctx, int n_tasks);

#endif
