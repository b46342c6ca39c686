/* SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
/* test_threadpool.c — every task index runs exactly once, batches follow each other,
 * a NULL pool runs inline, and the size comes from the caller or CANVAS_THREADS. */
#include <stdatomic.h>
#include <stdlib.h>

#include "ops/threadpool.h"
#include "check.h"
#include "mem/mem.h"

typedef struct count_job {
    atomic_int *hits;
    atomic_int calls;
    int bad_n_tasks;
} count_job;

static void count_task(void *ctx, int index, int n_tasks)
{
    count_job *job = ctx;
    atomic_fetch_add(&job->hits[index], 1);
    atomic_fetch_add(&job->calls, 1);
    (void)n_tasks;
}

static void check_batch(thread_pool *pool, int n_tasks)
{
    atomic_int hits[257];
    for (int i = 0; i < 257; i++) atomic_init(&hits[i], 0);
    count_job job = {hits, 0, 0};
    thread_pool_run(pool, count_task, &job, n_tasks);
    int all_once = 1;
    for (int i = 0; i < n_tasks; i++) all_once &= atomic_load(&hits[i]) == 1;
    CHECK_MSG(all_once && atomic_load(&job.calls) == n_tasks, "%d tasks", n_tasks);
}

static void test_every_index_once(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(4, &pool));
    CHECK(thread_pool_size(pool) == 4);
    const int sizes[] = {0, 1, 2, 3, 4, 5, 17, 256};
    for (int round = 0; round < 200; round++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) check_batch(pool, sizes[s]);
    thread_pool_destroy(pool);
}

static void test_null_pool_runs_inline(void)
{
    CHECK(thread_pool_size(NULL) == 1);
    check_batch(NULL, 7);
}

static void test_single_thread_pool(void)
{
    thread_pool *pool;
    CHECK_OK(thread_pool_create(1, &pool));
    CHECK(thread_pool_size(pool) == 1);
    check_batch(pool, 9);
    thread_pool_destroy(pool);
}

static void test_size_from_environment(void)
{
    thread_pool *pool;
    setenv("CANVAS_THREADS", "3", 1);
    CHECK_OK(thread_pool_create(0, &pool));
    CHECK(thread_pool_size(pool) == 3);
    check_batch(pool, 10);
    thread_pool_destroy(pool);
    unsetenv("CANVAS_THREADS");
    CHECK_OK(thread_pool_create(0, &pool));
    CHECK(thread_pool_size(pool) >= 1);
    thread_pool_destroy(pool);
    CHECK_FAILS(thread_pool_create(-2, &pool), CANVAS_ERR_USAGE, "thread pool");
    CHECK(pool == NULL);
}

static void test_no_leak(void)
{
    mem_class_stats before, after;
    mem_get_stats(MEM_SCRATCH, &before);
    thread_pool *pool;
    CHECK_OK(thread_pool_create(2, &pool));
    check_batch(pool, 5);
    thread_pool_destroy(pool);
    mem_get_stats(MEM_SCRATCH, &after);
    CHECK(after.current_bytes == before.current_bytes);
}

int main(void)
{
    RUN(test_every_index_once);
    RUN(test_null_pool_runs_inline);
    RUN(test_single_thread_pool);
    RUN(test_size_from_environment);
    RUN(test_no_leak);
    return check_summary();
}
