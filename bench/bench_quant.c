/* SPDX-License-Identifier: Apache-2.0 */
/* bench_quant.c — op_linear with quantised weights (fp8 e4m3 per tensor and per row, nf4,
 * q8_0, GGUF's Q8_0 and Q4_K blocks) against bf16 weights on the Qwen-Image DiT shapes, in the same run.
 *
 *   build-I/bench_quant            all shapes
 *   build-I/bench_quant --quick    fewer shapes and runs
 *   build-I/bench_quant --ms 1,2,544 [--runs N]   these row counts (the mod GEMV shape
 *                                  always runs its M <= 2 ones), N interleaved rounds
 *
 * Per shape [N, K] at M rows: GFLOP/s of each format (median of runs, interleaved with the
 * bf16 runs so that a noisy neighbour hits both; a call shorter than 50 ms is repeated
 * within each timing, the same count for every format) and the ratio to bf16 (target >= 0.9);
 * then bytes per parameter as planned (models/arch_size.c) and as measured (the blob). M = 1
 * and 2 are the modulation GEMV, where the ratio is a bandwidth ratio. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/threadpool.h"
#include "models/arch.h"
#include "ops/ops_cpu.h"
#include "tensor/quant.h"
#include "bench_util.h"

static int runs = 5;
enum { MAX_RUNS = 31 };
static thread_pool *pool;

enum { N_FORMATS = 9 }; /* bf16, fp8, fp8-channel, nf4, q8, GGUF's Q8_0, Q4_K, Q4_0 (the generic path) and Q6_K */
static const char *const format_names[N_FORMATS] = {"bf16", "fp8", "fp8-ch", "nf4", "q8", "gq8_0", "gq4_k", "gq4_0", "gq6_k"};

static void run_once(const weight_view *w, const float *x, int64_t m, float *y)
{
    if (op_linear(OP_BACKEND_CPU(pool), x, m, w, NULL, y) != CANVAS_OK) {
        fprintf(stderr, "op_linear failed: %s\n", canvas_last_error());
        exit(1);
    }
}

static void bench_shape(const char *name, int64_t n, int64_t k, const int64_t *ms, int n_ms)
{
    float *f32 = xmalloc((size_t)(n * k) * 4);
    uint16_t *bf16 = xmalloc((size_t)(n * k) * 2);
    for (int64_t i = 0; i < n * k; i++) f32[i] = rand_float() / sqrtf((float)k);
    dtype_from_f32(DTYPE_BF16, f32, bf16, (size_t)(n * k));
    weight_view views[N_FORMATS] = {{DTYPE_BF16, bf16, n, k, NULL}};
    quant_params params[N_FORMATS];
    void *blobs[N_FORMATS] = {0};
    const quant_choice choices[N_FORMATS] = {{QUANT_NONE, 0}, {QUANT_FP8_E4M3, 0}, {QUANT_FP8_E4M3, 1}, {QUANT_NF4, 0}, {QUANT_Q8_0, 0},
                                             {QUANT_GGUF_Q8_0, 0}, {QUANT_GGUF_Q4_K, 0}, {QUANT_GGUF_Q4_0, 0},
                                             {QUANT_GGUF_Q6_K, 0}};
    for (int f = 1; f < N_FORMATS; f++) {
        if (quant_layout(choices[f].format, choices[f].per_channel, n, k, &params[f]) != CANVAS_OK) exit(1);
        blobs[f] = xmalloc(params[f].bytes);
        if (quant_quantize(&params[f], DTYPE_BF16, bf16, blobs[f], name) != CANVAS_OK) exit(1);
        views[f] = (weight_view){DTYPE_U8, blobs[f], n, k, &params[f]};
    }
    for (int i = 0; i < n_ms; i++) {
        int64_t m = ms[i];
        float *x = xmalloc((size_t)(m * k) * 4), *y = xmalloc((size_t)(m * n) * 4);
        for (int64_t j = 0; j < m * k; j++) x[j] = rand_float();
        double times[N_FORMATS][MAX_RUNS];
        for (int f = 0; f < N_FORMATS; f++) run_once(&views[f], x, m, y); /* warm up */
        /* short calls (the GEMV) are repeated so that one timing covers >= 50 ms of bf16 */
        double t0 = now_seconds();
        run_once(&views[0], x, m, y);
        double once = now_seconds() - t0;
        int reps = once >= 0.05 ? 1 : once < 5e-5 ? 1000 : (int)(0.05 / once) + 1;
        for (int r = 0; r < runs; r++)
            for (int f = 0; f < N_FORMATS; f++) {
                t0 = now_seconds();
                for (int j = 0; j < reps; j++) run_once(&views[f], x, m, y);
                times[f][r] = (now_seconds() - t0) / reps;
            }
        double flops = 2.0 * (double)m * (double)n * (double)k, gflops[N_FORMATS];
        for (int f = 0; f < N_FORMATS; f++) {
            qsort(times[f], (size_t)runs, sizeof(double), compare_doubles);
            gflops[f] = flops / times[f][runs / 2] * 1e-9;
        }
        printf("%-22s M=%-5lld", name, (long long)m);
        for (int f = 0; f < N_FORMATS; f++) printf(" %s %7.1f", format_names[f], gflops[f]);
        printf("   x bf16:");
        for (int f = 1; f < N_FORMATS; f++) printf(" %s %.2f", format_names[f], gflops[f] / gflops[0]);
        printf("\n");
        fflush(stdout);
        free(x), free(y);
    }
    for (int f = 1; f < N_FORMATS; f++) free(blobs[f]);
    free(f32), free(bf16);
}

static void bytes_per_parameter(void)
{
    const int64_t d = 3072;
    tensor_spec spec = {.name = "transformer_blocks.0.attn.to_q.weight", .ndim = 2, .shape = {d, d}};
    printf("\nbytes per parameter of a [3072, 3072] matrix: planned (arch_size.c) / measured (blob)\n");
    const struct { const char *name; quant_format f; int per_channel; } rows[] = {
        {"fp8", QUANT_FP8_E4M3, 0}, {"fp8-channel", QUANT_FP8_E4M3, 1}, {"nf4", QUANT_NF4, 0}, {"q8", QUANT_Q8_0, 0},
        {"gguf q8_0", QUANT_GGUF_Q8_0, 0}, {"gguf q4_k", QUANT_GGUF_Q4_K, 0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        quant_params p;
        quant_layout(rows[i].f, rows[i].per_channel, d, d, &p);
        printf("  %-12s planned %.4f  measured %.4f\n", rows[i].name,
               (double)arch_tensor_bytes_as(&spec, rows[i].f) / (double)(d * d), (double)p.bytes / (double)(d * d));
    }
}

int main(int argc, char **argv)
{
    int quick = 0, n_ms = 5;
    int64_t ms[16] = {1, 2, 256, 2080, 4096};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1, runs = 3, n_ms = 2, ms[0] = 2, ms[1] = 544;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ms") && i + 1 < argc) {
            char *p = argv[++i];
            for (n_ms = 0; n_ms < 16 && *p;) {
                ms[n_ms++] = strtoll(p, &p, 10);
                if (*p == ',') p++;
                else break;
            }
        } else {
            fprintf(stderr, "usage: bench_quant [--quick] [--ms M,M,...] [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || n_ms < 1) {
        fprintf(stderr, "bench_quant: --runs takes 1..%d, --ms at least one row count\n", MAX_RUNS);
        return 2;
    }
    for (int i = 0; i < n_ms; i++)
        if (ms[i] < 1) {
            fprintf(stderr, "bench_quant: bad row count in --ms\n");
            return 2;
        }
    if (thread_pool_create(0, &pool) != CANVAS_OK) return 1;
    printf("bench_quant: %d threads, GFLOP/s (median of %d interleaved rounds)\n", thread_pool_size(pool), runs);
    print_load("before");
    const int64_t d = 3072;
    bench_shape("attn [3072, 3072]", d, d, ms, n_ms);
    bench_shape("mlp_in [12288, 3072]", 4 * d, d, ms, n_ms);
    bench_shape("mlp_out [3072, 12288]", d, 4 * d, ms, n_ms);
    if (!quick) {
        int64_t gemv[16];
        int n_gemv = 0;
        for (int i = 0; i < n_ms; i++)
            if (ms[i] <= 2) gemv[n_gemv++] = ms[i];
        if (n_gemv) bench_shape("mod [18432, 3072]", 6 * d, d, gemv, n_gemv);
    }
    print_load("after");
    bytes_per_parameter();
    thread_pool_destroy(pool);
    return 0;
}
