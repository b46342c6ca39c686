/* bench_quant.c — op_linear with quantised weights (fp8 e4m3 per tensor and per row, nf4,
 * q8_0) against bf16 weights on the Qwen-Image DiT shapes, in the same run.
 *
 *   build-I/bench_quant            all shapes
 *   build-I/bench_quant --quick    fewer shapes and runs
 *
 * Per shape [N, K] at M rows: GFLOP/s of each format (median of runs, interleaved with the
 * bf16 runs so that a noisy neighbour hits both) and the ratio to bf16 (target >= 0.9);
 * then bytes per parameter as planned (models/arch_size.c) and as measured (the blob). M = 1
 * and 2 are the modulation GEMV, where the ratio is a bandwidth ratio. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "models/arch.h"
#include "ops/ops.h"
#include "tensor/quant.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float rand_float(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench_quant: out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

static int runs = 5;
static thread_pool *pool;

enum { N_FORMATS = 5 }; /* bf16, fp8, fp8-channel, nf4, q8 */
static const char *const format_names[N_FORMATS] = {"bf16", "fp8", "fp8-ch", "nf4", "q8"};

static void run_once(const weight_view *w, const float *x, int64_t m, float *y)
{
    if (op_linear(pool, x, m, w, NULL, y) != CANVAS_OK) {
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
    const quant_choice choices[N_FORMATS] = {{QUANT_NONE, 0}, {QUANT_FP8_E4M3, 0}, {QUANT_FP8_E4M3, 1}, {QUANT_NF4, 0}, {QUANT_Q8_0, 0}};
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
        double times[N_FORMATS][16];
        for (int f = 0; f < N_FORMATS; f++) run_once(&views[f], x, m, y); /* warm up */
        for (int r = 0; r < runs; r++)
            for (int f = 0; f < N_FORMATS; f++) {
                double t0 = now_seconds();
                run_once(&views[f], x, m, y);
                times[f][r] = now_seconds() - t0;
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
    const struct { const char *name; arch_format planned; quant_format f; int per_channel; } rows[] = {
        {"fp8", ARCH_FORMAT_FP8, QUANT_FP8_E4M3, 0}, {"fp8-channel", ARCH_FORMAT_FP8, QUANT_FP8_E4M3, 1},
        {"nf4", ARCH_FORMAT_NF4, QUANT_NF4, 0},      {"q8", ARCH_FORMAT_Q8, QUANT_Q8_0, 0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        quant_params p;
        quant_layout(rows[i].f, rows[i].per_channel, d, d, &p);
        printf("  %-12s planned %.4f  measured %.4f\n", rows[i].name,
               (double)arch_tensor_bytes_as(&spec, rows[i].planned) / (double)(d * d), (double)p.bytes / (double)(d * d));
    }
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    if (quick) runs = 3;
    if (thread_pool_create(0, &pool) != CANVAS_OK) return 1;
    printf("bench_quant: %d threads, GFLOP/s (median of %d)\n", thread_pool_size(pool), runs);
    const int64_t d = 3072;
    const int64_t ms_full[] = {1, 2, 256, 2080, 4096}, ms_quick[] = {2, 544};
    const int64_t *ms = quick ? ms_quick : ms_full;
    int n_ms = quick ? 2 : 5;
    bench_shape("attn [3072, 3072]", d, d, ms, n_ms);
    bench_shape("mlp_in [12288, 3072]", 4 * d, d, ms, n_ms);
    bench_shape("mlp_out [3072, 12288]", d, 4 * d, ms, n_ms);
    if (!quick) {
        const int64_t gemv[] = {1, 2};
        bench_shape("mod [18432, 3072]", 6 * d, d, gemv, 2);
    }
    bytes_per_parameter();
    thread_pool_destroy(pool);
    return 0;
}
