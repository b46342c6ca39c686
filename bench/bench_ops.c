/* SPDX-License-Identifier: Apache-2.0 */
/* bench_ops.c — GFLOP/s of the CPU kernels on the Qwen-Image DiT shapes.
 *
 *   build-D/bench_ops            all shapes (a few minutes on 2 loaded cores)
 *   build-D/bench_ops --quick    the big shapes at M = 544 and attention
 *   build-D/bench_ops --runs 9   medians of 9 rounds instead of 5 (1..15)
 *   build-D/bench_ops --m 8192   the three big shapes at M = 8192 rows (a 1024x1024 edit)
 *   build-D/bench_ops --kernel   the 6x16 microkernel alone, data in L1/L2, on 1 and on
 *                                all threads: the ceiling the GEMM figures are read against
 *   CANVAS_THREADS=1 build-D/bench_ops
 *
 * For each linear shape [N, K] at M rows: op_linear with bf16, f16 and f32 weights and
 * OpenBLAS sgemm (f32, same thread count) as the yardstick, each the median of 5 runs (--runs),
 * the four timed in turn within each round so that they see the same machine load, with
 * the ratio bf16 / OpenBLAS of the medians. Then attention (24 heads x 128) at 544 and
 * 2080 tokens, FLOPs = 4 seq^2 head_dim heads. The load average is printed first: the
 * machine is shared, read the same-run ratios. Benches may print and use malloc; the
 * library does neither. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/threadpool.h"
#include "ops/cpu/gemm_kernel.h"
#include "ops/ops_cpu.h"
#include "tensor/dtype.h"
#include "bench_util.h"

#ifdef CANVAS_HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
#endif

#define MAX_RUNS 15
static int runs = 5;
static thread_pool *pool;

/* The stored weight in three formats. */
typedef struct bench_weight {
    int64_t n, k;
    float *f32;
    uint16_t *f16, *bf16;
} bench_weight;

static bench_weight make_weight(int64_t n, int64_t k)
{
    bench_weight w = {n, k, xmalloc((size_t)(n * k) * 4), xmalloc((size_t)(n * k) * 2), xmalloc((size_t)(n * k) * 2)};
    float scale = 1.0f / sqrtf((float)k);
    for (int64_t i = 0; i < n * k; i++) {
        w.f32[i] = rand_float() * scale;
        w.f16[i] = f32_to_f16(w.f32[i]);
        w.bf16[i] = f32_to_bf16(w.f32[i]);
    }
    return w;
}

static void free_weight(bench_weight *w)
{
    free(w->f32), free(w->f16), free(w->bf16);
}

static double time_linear_once(const float *x, int64_t m, const bench_weight *bw, dtype type, float *y)
{
    const void *data = type == DTYPE_F32 ? (const void *)bw->f32 : type == DTYPE_F16 ? (const void *)bw->f16 : (const void *)bw->bf16;
    weight_view w = {type, data, bw->n, bw->k, NULL};
    double t0 = now_seconds();
    if (op_linear(OP_BACKEND_CPU(pool), x, m, &w, NULL, y) != CANVAS_OK) {
        fprintf(stderr, "op_linear failed: %s\n", canvas_last_error());
        exit(1);
    }
    return now_seconds() - t0;
}

#ifdef CANVAS_HAVE_OPENBLAS
static double time_openblas_once(const float *x, int64_t m, const bench_weight *bw, float *y)
{
    double t0 = now_seconds();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)bw->n, (int)bw->k, 1.0f, x, (int)bw->k, bw->f32,
                (int)bw->k, 0.0f, y, (int)bw->n);
    return now_seconds() - t0;
}
#endif

static void bench_linear(const char *name, int64_t n, int64_t k, const int64_t *ms, int n_ms)
{
    bench_weight w = make_weight(n, k);
    for (int i = 0; i < n_ms; i++) {
        int64_t m = ms[i];
        float *x = xmalloc((size_t)(m * k) * 4), *y = xmalloc((size_t)(m * n) * 4);
        for (int64_t j = 0; j < m * k; j++) x[j] = rand_float();
        double flops = 2.0 * (double)m * (double)n * (double)k;
        double bf16[MAX_RUNS], f16[MAX_RUNS], f32[MAX_RUNS], blas[MAX_RUNS];
        time_linear_once(x, m, &w, DTYPE_BF16, y); /* warm-up */
        for (int r = 0; r < runs; r++) { /* one of each per round: the same load for all four */
            bf16[r] = time_linear_once(x, m, &w, DTYPE_BF16, y);
            f16[r] = time_linear_once(x, m, &w, DTYPE_F16, y);
            f32[r] = time_linear_once(x, m, &w, DTYPE_F32, y);
#ifdef CANVAS_HAVE_OPENBLAS
            blas[r] = time_openblas_once(x, m, &w, y);
#else
            blas[r] = 0.0;
#endif
        }
        double t_bf16 = median(bf16, runs), t_f16 = median(f16, runs), t_f32 = median(f32, runs);
        printf("%-10s %6lld x %-6lld M=%-5lld  bf16 %7.1f  f16 %7.1f  f32 %7.1f", name, (long long)n, (long long)k,
               (long long)m, flops / t_bf16 * 1e-9, flops / t_f16 * 1e-9, flops / t_f32 * 1e-9);
#ifdef CANVAS_HAVE_OPENBLAS
        double t_blas = median(blas, runs);
        printf("  openblas %7.1f  bf16/openblas %.2f", flops / t_blas * 1e-9, t_blas / t_bf16);
#endif
        printf("   GFLOP/s\n");
        fflush(stdout);
        free(x), free(y);
    }
    free_weight(&w);
}

/* The plain loop a first version would write: convert a weight row, dot it with every row. */
static void bench_plain_linear(int64_t m, int64_t n, int64_t k)
{
    bench_weight w = make_weight(n, k);
    float *x = xmalloc((size_t)(m * k) * 4), *y = xmalloc((size_t)(m * n) * 4), *row = xmalloc((size_t)k * 4);
    for (int64_t j = 0; j < m * k; j++) x[j] = rand_float();
    double t0 = now_seconds();
    for (int64_t j = 0; j < n; j++) {
        for (int64_t t = 0; t < k; t++) row[t] = bf16_to_f32(w.bf16[j * k + t]);
        for (int64_t i = 0; i < m; i++) {
            float sum = 0.0f;
            for (int64_t t = 0; t < k; t++) sum += x[i * k + t] * row[t];
            y[i * n + j] = sum;
        }
    }
    double t = now_seconds() - t0;
    printf("plain loop (1 thread, bf16) %lld x %lld M=%lld: %.1f GFLOP/s\n", (long long)n, (long long)k, (long long)m,
           2.0 * (double)m * (double)n * (double)k / t * 1e-9);
    free(x), free(y), free(row);
    free_weight(&w);
}

static void bench_attention(int64_t seq, int heads, int head_dim)
{
    int64_t n = seq * heads * head_dim;
    float *q = xmalloc((size_t)n * 4), *k = xmalloc((size_t)n * 4), *v = xmalloc((size_t)n * 4), *o = xmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) q[i] = rand_float(), k[i] = rand_float(), v[i] = rand_float();
    double times[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        double t0 = now_seconds();
        if (op_attention(OP_BACKEND_CPU(pool), q, k, v, seq, heads, head_dim, NULL, o) != CANVAS_OK) {
            fprintf(stderr, "op_attention failed: %s\n", canvas_last_error());
            exit(1);
        }
        times[r] = now_seconds() - t0;
    }
    double t = median(times, runs);
    double flops = 4.0 * (double)seq * (double)seq * head_dim * heads;
    printf("attention  seq=%-5lld %d heads x %d: %7.1f GFLOP/s (%.3f s)\n", (long long)seq, heads, head_dim,
           flops / t * 1e-9, t);
    fflush(stdout);
    free(q), free(k), free(v), free(o);
}

/* ---- the microkernel alone ---------------------------------------------------------- */

enum { KERNEL_KC = 384, KERNEL_STRIPS = 24, KERNEL_REPEATS = 400 };

typedef struct kernel_job {
    double seconds[64];
} kernel_job;

/* One weight strip (24 KiB, L1) against 24 row strips of x (216 KiB, L2), as op_linear's
 * inner loop sees them, a tile of y in L1; timed per task. */
static void kernel_task(void *ctx, int index, int n_tasks)
{
    kernel_job *job = ctx;
    (void)n_tasks;
    float *a = xmalloc(sizeof(float) * GEMM_MR * KERNEL_KC * KERNEL_STRIPS + 64);
    float *b = xmalloc(sizeof(float) * GEMM_NR * KERNEL_KC);
    float c[GEMM_MR * GEMM_NR] = {0}, zero[GEMM_NR] = {0};
    for (int i = 0; i < GEMM_MR * KERNEL_KC * KERNEL_STRIPS; i++) a[i] = 1e-3f * (float)(i % 7);
    for (int i = 0; i < GEMM_NR * KERNEL_KC; i++) b[i] = 1e-3f * (float)(i % 5);
    double t0 = now_seconds();
    for (int rep = 0; rep < KERNEL_REPEATS; rep++)
        for (int r = 0; r < KERNEL_STRIPS; r++)
            gemm_kernel_6x16_store(KERNEL_KC, a + r * GEMM_MR * KERNEL_KC, b, c, GEMM_NR, 0, zero);
    if (index < 64) job->seconds[index] = now_seconds() - t0;
    free(a), free(b);
}

/* GFLOP/s of `tasks` copies of the kernel loop running at once (the median over rounds of
 * the summed per-task rates). */
static double kernel_rate(int tasks)
{
    double rates[MAX_RUNS];
    const double flops = 2.0 * GEMM_MR * GEMM_NR * KERNEL_KC * KERNEL_STRIPS * KERNEL_REPEATS;
    for (int r = 0; r < runs; r++) {
        kernel_job job = {{0}};
        thread_pool_run(pool, kernel_task, &job, tasks);
        rates[r] = 0;
        for (int t = 0; t < tasks && t < 64; t++) rates[r] += flops / job.seconds[t] * 1e-9;
    }
    return median(rates, runs);
}

static void bench_kernel(int threads)
{
    double one = kernel_rate(1), all = kernel_rate(threads);
    printf("microkernel 6x16, kc %d, data in L1/L2: 1 thread %.1f GFLOP/s; %d threads %.1f GFLOP/s (%.1f a thread)\n",
           KERNEL_KC, one, threads, all, all / threads);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int quick = 0, plain = 0, kernel = 0;
    int64_t rows = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--plain")) plain = 1;
        else if (!strcmp(argv[i], "--kernel")) kernel = 1;
        else if (!strcmp(argv[i], "--m") && i + 1 < argc && atoll(argv[i + 1]) >= 1) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc && atoi(argv[i + 1]) >= 1 && atoi(argv[i + 1]) <= MAX_RUNS)
            runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_ops [--quick] [--plain] [--kernel] [--m M] [--runs N (1..%d)]\n", MAX_RUNS);
            return 2;
        }
    }
    if (thread_pool_create(0, &pool) != CANVAS_OK) {
        fprintf(stderr, "thread pool: %s\n", canvas_last_error());
        return 1;
    }
    int threads = thread_pool_size(pool);
#ifdef CANVAS_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#endif
    double load[3];
    load_average(load);
    printf("bench_ops: %d threads (CANVAS_THREADS), median of %d runs, GFLOP/s; load average %.2f %.2f %.2f\n", threads,
           runs, load[0], load[1], load[2]);

    if (kernel) {
        bench_kernel(threads);
        thread_pool_destroy(pool);
        return 0;
    }
    if (rows > 0) { /* the three big shapes at the given row count */
        bench_linear("qkv/out", 3072, 3072, &rows, 1);
        bench_linear("fc1", 12288, 3072, &rows, 1);
        bench_linear("fc2", 3072, 12288, &rows, 1);
        thread_pool_destroy(pool);
        return 0;
    }
    const int64_t m544[] = {544}, m_both[] = {544, 2080}, m_gemv[] = {1, 2};
    const int64_t m_text[] = {32};
    bench_linear("qkv/out", 3072, 3072, quick ? m544 : m_both, quick ? 1 : 2);
    bench_linear("fc1", 12288, 3072, quick ? m544 : m_both, quick ? 1 : 2);
    bench_linear("fc2", 3072, 12288, m544, 1);
    if (!quick) {
        bench_linear("qkv text", 3072, 3072, m_text, 1);
        bench_linear("txt_in", 3072, 3584, m_text, 1);
        bench_linear("img_in", 3072, 64, m544, 1);
        bench_linear("proj_out", 64, 3072, m_both, 2);
        bench_linear("modulation", 18432, 3072, m_gemv, 2);
    }
    bench_attention(544, 24, 128);
    bench_attention(2080, 24, 128);
    if (plain) bench_plain_linear(544, 3072, 3072);
    thread_pool_destroy(pool);
    return 0;
}
