/* SPDX-License-Identifier: Apache-2.0 */
/* threadpool.c — a fixed set of worker threads that run one batch of tasks at a time.
 *
 * A batch is published under the mutex with a new generation number; each thread (the
 * caller included) then claims task indices from one atomic counter until none are left,
 * so a slow or descheduled thread simply runs fewer tasks. The caller waits for the
 * workers to leave the batch before returning, so the task and its context may live on
 * the caller's stack.
 *
 * Waking sleeping threads costs tens of microseconds, which matters for small kernels
 * (norms of a few rows): a worker therefore spins for a short while on the generation
 * before it sleeps on the condition variable. The spin is short on purpose: this runs on
 * machines shared with other processes, where a long spin steals a core. */
#define _POSIX_C_SOURCE 200809L
#include "ops/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/status.h"
#include "base/sysinfo.h"
#include "mem/mem.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { SPIN_ITERATIONS = 20000, MAX_THREADS = 1024 };

struct thread_pool {
    int n_threads;                 /* including the calling thread */
    int spin;                      /* spin iterations before sleeping: 0 when there are more
                                    * threads than CPUs (a spinning thread then holds the CPU
                                    * the thread with work needs: runs went 30x slower) */
    pthread_t *workers;            /* n_threads - 1 */
    pthread_mutex_t mutex;
    pthread_cond_t wake;           /* a new batch or shutdown */
    pthread_cond_t done;           /* the last worker left the batch */
    pthread_mutex_t run_lock;      /* one batch at a time, even from several callers */

    atomic_uint generation;        /* bumped per batch, under mutex */
    atomic_int next_task;          /* next unclaimed task index of the batch */
    atomic_int busy_workers;       /* workers still inside the batch */
    int shutdown;

    void (*task)(void *ctx, int index, int n_tasks);
    void *ctx;
    int n_tasks;
};

static void run_claimed_tasks(thread_pool *pool)
{
    for (;;) {
        int index = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (index >= pool->n_tasks) return;
        pool->task(pool->ctx, index, pool->n_tasks);
    }
}

static void *worker_main(void *arg)
{
    thread_pool *pool = arg;
    unsigned seen = 0;
    for (;;) {
        /* Spin a little: the next batch usually follows quickly within one op. */
        for (int spin = 0; spin < pool->spin; spin++) {
            if (atomic_load_explicit(&pool->generation, memory_order_acquire) != seen) break;
            CPU_RELAX();
        }
        pthread_mutex_lock(&pool->mutex);
        while (!pool->shutdown && atomic_load_explicit(&pool->generation, memory_order_acquire) == seen)
            pthread_cond_wait(&pool->wake, &pool->mutex);
        if (pool->shutdown) {
            pthread_mutex_unlock(&pool->mutex);
            return NULL;
        }
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        pthread_mutex_unlock(&pool->mutex);

        run_claimed_tasks(pool);

        if (atomic_fetch_sub_explicit(&pool->busy_workers, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
}

static int threads_from_environment(void)
{
    const char *text = getenv("CANVAS_THREADS");
    if (text && *text) {
        char *end = NULL;
        long n = strtol(text, &end, 10);
        if (end && *end == '\0' && n >= 1 && n <= MAX_THREADS) return (int)n;
    }
    int online = sysinfo_online_cpus();
    return online < MAX_THREADS ? online : MAX_THREADS;
}

canvas_status thread_pool_create(int n_threads, thread_pool **out)
{
    *out = NULL;
    if (n_threads < 0 || n_threads > MAX_THREADS)
        return status_fail(CANVAS_ERR_USAGE, "thread pool: %d threads requested (1..%d, or 0 for the machine)",
                           n_threads, MAX_THREADS);
    if (n_threads == 0) n_threads = threads_from_environment();

    thread_pool *pool;
    TRY(mem_calloc((void **)&pool, 1, sizeof *pool, MEM_SCRATCH));
    pool->n_threads = n_threads;
    pool->spin = n_threads <= sysinfo_online_cpus() ? SPIN_ITERATIONS : 0;
    if (n_threads > 1) {
        canvas_status st = mem_calloc((void **)&pool->workers, (size_t)(n_threads - 1), sizeof(pthread_t), MEM_SCRATCH);
        if (st != CANVAS_OK) {
            mem_free(pool);
            return st;
        }
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_mutex_init(&pool->run_lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->generation, 0u);
    atomic_init(&pool->next_task, 0);
    atomic_init(&pool->busy_workers, 0);

    for (int i = 0; i < n_threads - 1; i++) {
        int err = pthread_create(&pool->workers[i], NULL, worker_main, pool);
        if (err != 0) {
            pool->n_threads = i + 1; /* the workers that did start, plus the caller */
            thread_pool_destroy(pool);
            return status_fail(CANVAS_ERR_INTERNAL, "thread pool: starting worker %d of %d failed (error %d)", i + 1,
                               n_threads - 1, err);
        }
    }
    *out = pool;
    return CANVAS_OK;
}

void thread_pool_destroy(thread_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    pool->shutdown = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 0; i < pool->n_threads - 1; i++) pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mutex);
    pthread_mutex_destroy(&pool->run_lock);
    mem_free(pool->workers);
    mem_free(pool);
}

int thread_pool_size(const thread_pool *pool) { return pool ? pool->n_threads : 1; }

void thread_pool_run(thread_pool *pool, void (*task)(void *ctx, int index, int n_tasks), void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) task(ctx, i, n_tasks);
        return;
    }
    pthread_mutex_lock(&pool->run_lock);

    pthread_mutex_lock(&pool->mutex);
    pool->task = task;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->busy_workers, pool->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1u, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);

    run_claimed_tasks(pool);

    /* Wait for every worker to leave the batch (they may still be claiming). */
    for (int spin = 0; spin < pool->spin; spin++) {
        if (atomic_load_explicit(&pool->busy_workers, memory_order_acquire) == 0) break;
        CPU_RELAX();
    }
    pthread_mutex_lock(&pool->mutex);
    while (atomic_load_explicit(&pool->busy_workers, memory_order_acquire) != 0)
        pthread_cond_wait(&pool->done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);

    pthread_mutex_unlock(&pool->run_lock);
}
