/* SPDX-License-Identifier: Apache-2.0 */
/* bench_dit.c — one full-width Qwen-Image transformer forward, timed.
 *
 *   build-D/bench_dit            544 and 2080 tokens, median of 5 forwards each
 *   build-D/bench_dit --quick    544 tokens only, median of 3
 *   build-D/bench_dit --side S   one size: two S x S patch images + 32 text tokens
 *   build-D/bench_dit --serve    for bench/torch_dit.py: reads a side per line on stdin,
 *                                answers "seconds T cpu C gflop G" per forward
 *   build-D/bench_dit --weights F    the same model quantised on load to F (fp8, fp8-channel,
 *                                    fp8-e5m2, nf4, q8) timed against bf16: rounds
 *                                    (bf16, F) interleaved, medians and the ratio to bf16
 *   build-D/bench_dit --all-formats  rounds (bf16, fp8, fp8-channel, nf4, q8) interleaved
 *     with either: --side S (one size; default 544 tokens, --both adds 2080), --runs N
 *     (rounds, default 5). Each format is loaded with qwen_dit_load_quantized from the same
 *     bf16 folder (blocks' matrices quantised, top-level layers as stored:
 *     docs/quantization.md); the output's max|q - bf16| / max|bf16| is printed as a check
 *     that the format really was used. The load average is printed before and after.
 *
 * Builds a random model the width of the real one (hidden 3072, 24 heads x 128, joint
 * dim 3584, 2 blocks, zero_cond_t, every tensor BF16) as a diffusers folder in a
 * temporary directory (about 1.4 GB, removed at exit), loads it with qwen_dit_load and times
 * qwen_dit_forward for
 *   a 256x256 edit: 16x16 target patches + one 16x16 reference + 32 text tokens = 544
 *   a 512x512 edit: 32x32 + 32x32 + 32 text tokens                              = 2080
 * printing seconds and achieved GFLOP/s (FLOPs of the linears and of attention), and the
 * process CPU time of the forward: on a machine shared with other work, CPU time / wall
 * time well under the thread count means the forward did not have the cores to itself.
 * bench/torch_dit.py runs PyTorch's equivalent forward interleaved with this one. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tests/dit_random_model.h"
#include "ops/threadpool.h"
#include "io/safetensors.h"
#include "models/qwen_image_dit.h"
#include "ops/ops_cpu.h"
#include "tensor/quant.h"
#include "tensor/dtype.h"
#include "bench_util.h"

enum { HIDDEN = 3072, HEADS = 24, HEAD_DIM = 128, JOINT = 3584, IN_CHANNELS = 64, OUT_CHANNELS = 16, LAYERS = 2 };

static void die(const char *what)
{
    fprintf(stderr, "bench_dit: %s: %s\n", what, canvas_last_error());
    exit(1);
}

/* FLOPs of one forward: the linears (2 per multiply-add) and attention (4 seq^2 D). */
static double forward_flops(int64_t n_img, int64_t n_txt)
{
    double d = HIDDEN, n = (double)(n_img + n_txt);
    double per_block = 2.0 * n * (3 * d * d + d * d + 8 * d * d) /* qkv, out, MLP of both streams */
                       + 4.0 * n * n * d                          /* attention */
                       + 2.0 * 2 * 2 * 6 * d * d;                 /* modulation, 2 streams, t and 0 */
    double top = 2.0 * (double)n_img * IN_CHANNELS * d + 2.0 * (double)n_txt * JOINT * d +
                 2.0 * (double)n_img * d * 4 * OUT_CHANNELS + 2.0 * 2 * (256 * d + d * d) + 2.0 * 2 * d * d;
    return LAYERS * per_block + top;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random inputs for two side x side images and 32 text tokens. */
typedef struct bench_inputs {
    int side;
    int64_t n_img, n_txt;
    qwen_dit_image_shape shapes[2];
    float *hidden, *text, *output;
    qwen_dit_inputs in;
} bench_inputs;

static void inputs_make(bench_inputs *b, int side)
{
    b->side = side;
    b->n_txt = 32;
    b->n_img = 2 * (int64_t)side * side;
    b->shapes[0] = b->shapes[1] = (qwen_dit_image_shape){1, side, side};
    b->hidden = malloc((size_t)(b->n_img * IN_CHANNELS) * 4);
    b->text = malloc((size_t)(b->n_txt * JOINT) * 4);
    b->output = malloc((size_t)(b->n_img * 4 * OUT_CHANNELS) * 4);
    if (!b->hidden || !b->text || !b->output) {
        fprintf(stderr, "bench_dit: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < b->n_img * IN_CHANNELS; i++) b->hidden[i] = rand_float();
    for (int64_t i = 0; i < b->n_txt * JOINT; i++) b->text[i] = rand_float();
    b->in = (qwen_dit_inputs){.hidden_states = b->hidden, .n_img = b->n_img, .hidden_channels = IN_CHANNELS,
                         .encoder_hidden_states = b->text, .n_txt = b->n_txt, .text_dim = JOINT,
                         .timestep = 0.5f, .img_shapes = b->shapes, .n_images = 2};
}

static void inputs_free(bench_inputs *b) { free(b->hidden), free(b->text), free(b->output); }

/* One forward: wall seconds, *cpu = process CPU seconds. */
static double time_forward(qwen_dit_model *model, thread_pool *pool, bench_inputs *b, double *cpu)
{
    double c0 = cpu_seconds(), t0 = now_seconds();
    if (qwen_dit_forward(model, OP_BACKEND_CPU(pool), &b->in, NULL, b->output) != CANVAS_OK) die("forward");
    double t = now_seconds() - t0;
    *cpu = cpu_seconds() - c0;
    return t;
}

static void bench_forward(qwen_dit_model *model, thread_pool *pool, int side, int runs)
{
    bench_inputs b;
    inputs_make(&b, side);
    double cpu, times[16], cpus[16];
    time_forward(model, pool, &b, &cpu); /* warm-up */
    for (int r = 0; r < runs; r++) times[r] = time_forward(model, pool, &b, &cpus[r]);
    qsort(times, (size_t)runs, sizeof(double), compare_doubles);
    qsort(cpus, (size_t)runs, sizeof(double), compare_doubles);
    double t = times[runs / 2], flops = forward_flops(b.n_img, b.n_txt);
    printf("forward %4lld tokens (%lld image + %lld text, %dx%d edit): %.3f s, %.1f GFLOP/s "
           "(min %.3f s; CPU %.2f s = %.0f%% of %d threads)\n",
           (long long)(b.n_img + b.n_txt), (long long)b.n_img, (long long)b.n_txt, side * 16, side * 16, t,
           flops / t * 1e-9, times[0], cpus[runs / 2], 100.0 * cpus[runs / 2] / (t * thread_pool_size(pool)),
           thread_pool_size(pool));
    fflush(stdout);
    inputs_free(&b);
}

/* --serve: one forward per line "SIDE" on stdin (the first of each size is preceded by a
 * warm-up), answered on stdout; "quit" or end of input stops. */
static void serve(qwen_dit_model *model, thread_pool *pool)
{
    bench_inputs b = {0};
    char line[64];
    printf("ready %d threads kernels %s\n", thread_pool_size(pool), ops_cpu_kernels());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int side = atoi(line);
        if (side <= 0) break;
        double cpu;
        if (b.side != side) {
            if (b.side) inputs_free(&b);
            inputs_make(&b, side);
            time_forward(model, pool, &b, &cpu);
        }
        double t = time_forward(model, pool, &b, &cpu);
        printf("seconds %.6f cpu %.6f gflop %.3f\n", t, cpu, forward_flops(b.n_img, b.n_txt) * 1e-9);
        fflush(stdout);
    }
    if (b.side) inputs_free(&b);
}

enum { MAX_FORMATS = 8, MAX_RUNS = 16 };

/* Every model of `choices` loaded from `dir` and timed in interleaved rounds at each side:
 * one warm-up forward per model, then `runs` rounds of one forward per model in order. */
static int compare_formats(const char *dir, thread_pool *pool, const quant_choice *choices, int n, const int *sides,
                           int n_sides, int runs)
{
    qwen_dit_model *models[MAX_FORMATS] = {0};
    for (int f = 0; f < n; f++) {
        double t0 = now_seconds();
        if (qwen_dit_load_quantized(dir, choices[f], &models[f]) != CANVAS_OK) {
            fprintf(stderr, "bench_dit: loading as %s: %s\n", quant_choice_name(choices[f]), canvas_last_error());
            for (int g = 0; g < f; g++) qwen_dit_free(models[g]);
            return 1;
        }
        printf("loaded %-11s in %.1f s\n", choices[f].format == QUANT_NONE ? "bf16" : quant_choice_name(choices[f]),
               now_seconds() - t0);
    }
    printf("%d threads, %s kernels, rounds of (", thread_pool_size(pool), ops_cpu_kernels());
    for (int f = 0; f < n; f++) printf("%s%s", f ? ", " : "", choices[f].format == QUANT_NONE ? "bf16" : quant_choice_name(choices[f]));
    printf(") x %d after one warm-up each; medians\n", runs);
    print_load("before");
    for (int si = 0; si < n_sides; si++) {
        bench_inputs b;
        inputs_make(&b, sides[si]);
        size_t out_count = (size_t)(b.n_img * 4 * OUT_CHANNELS);
        float *reference = malloc(out_count * 4);
        double error[MAX_FORMATS] = {0}, times[MAX_FORMATS][MAX_RUNS], cpus[MAX_FORMATS][MAX_RUNS], cpu;
        if (!reference) {
            fprintf(stderr, "bench_dit: out of memory\n");
            exit(1);
        }
        for (int f = 0; f < n; f++) { /* warm-up; the first model's output is the reference */
            time_forward(models[f], pool, &b, &cpu);
            if (f == 0) memcpy(reference, b.output, out_count * 4);
            double amax = 0, dmax = 0;
            for (size_t i = 0; i < out_count; i++) {
                double r = fabs((double)reference[i]), d = fabs((double)b.output[i] - (double)reference[i]);
                amax = r > amax ? r : amax;
                dmax = d > dmax ? d : dmax;
            }
            error[f] = amax > 0 ? dmax / amax : 0;
        }
        for (int r = 0; r < runs; r++)
            for (int f = 0; f < n; f++) times[f][r] = time_forward(models[f], pool, &b, &cpus[f][r]);
        double flops = forward_flops(b.n_img, b.n_txt), base = 0;
        printf("forward %lld tokens (%dx%d edit):\n", (long long)(b.n_img + b.n_txt), sides[si] * 16, sides[si] * 16);
        for (int f = 0; f < n; f++) {
            qsort(times[f], (size_t)runs, sizeof(double), compare_doubles);
            qsort(cpus[f], (size_t)runs, sizeof(double), compare_doubles);
            double t = times[f][runs / 2];
            if (f == 0) base = t;
            printf("  %-11s median %7.3f s  min %7.3f  max %7.3f  %6.1f GFLOP/s  CPU %3.0f%%  x bf16 %.3f  "
                   "out err %.4f\n",
                   choices[f].format == QUANT_NONE ? "bf16" : quant_choice_name(choices[f]), t, times[f][0],
                   times[f][runs - 1], flops / t * 1e-9, 100.0 * cpus[f][runs / 2] / (t * thread_pool_size(pool)),
                   t / base, error[f]);
        }
        fflush(stdout);
        free(reference);
        inputs_free(&b);
    }
    print_load("after");
    for (int f = 0; f < n; f++) qwen_dit_free(models[f]);
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, serving = 0, side = 0, all_formats = 0, both = 0, runs = 5;
    quant_choice choices[MAX_FORMATS] = {{QUANT_NONE, 0}};
    int n_choices = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--serve")) serving = 1;
        else if (!strcmp(argv[i], "--all-formats")) all_formats = 1;
        else if (!strcmp(argv[i], "--both")) both = 1;
        else if (!strcmp(argv[i], "--side") && i + 1 < argc) side = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc) {
            if (n_choices >= MAX_FORMATS || quant_choice_parse(argv[++i], &choices[n_choices]) != CANVAS_OK) {
                fprintf(stderr, "bench_dit: %s\n", canvas_last_error());
                return 2;
            }
            if (choices[n_choices].format != QUANT_NONE) n_choices++;
        } else {
            fprintf(stderr, "usage: bench_dit [--quick | --serve | --side S | --weights FMT ... | --all-formats] "
                            "[--both] [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "bench_dit: --runs takes 1..%d\n", MAX_RUNS);
        return 2;
    }
    if (all_formats) {
        const char *names[] = {"fp8", "fp8-channel", "nf4", "q8"};
        n_choices = 1;
        for (int i = 0; i < 4; i++) quant_choice_parse(names[i], &choices[n_choices++]);
    }
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bench_dit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    fprintf(serving ? stderr : stdout,
            "bench_dit: writing a random %d-block bf16 model (hidden %d, %d heads x %d, joint %d) to %s\n", LAYERS,
            HIDDEN, HEADS, HEAD_DIM, JOINT, dir);
    fflush(stdout);
    const dit_random_shape shape = {.layers = LAYERS, .heads = HEADS, .head_dim = HEAD_DIM, .joint_dim = JOINT,
                                    .in_channels = IN_CHANNELS, .out_channels = OUT_CHANNELS,
                                    .matrix_type = DTYPE_BF16, .seed = 1};
    if (dit_random_model_write(dir, &shape) != CANVAS_OK) die("writing the model");

    thread_pool *pool;
    if (thread_pool_create(0, &pool) != CANVAS_OK) die("thread pool");
    canvas_status st = CANVAS_OK;
    if (n_choices > 1) {
        int sides[2] = {side > 0 ? side : 16, 32};
        st = compare_formats(dir, pool, choices, n_choices, sides, side > 0 || !both ? 1 : 2, runs) ? CANVAS_ERR_INPUT
                                                                                                    : CANVAS_OK;
    } else {
        qwen_dit_model *model;
        st = qwen_dit_load(dir, &model);
        if (st == CANVAS_OK) {
            if (serving) {
                serve(model, pool);
            } else {
                printf("%d threads, %s kernels, median of %d forwards after one warm-up\n", thread_pool_size(pool),
                       ops_cpu_kernels(), quick ? 3 : 5);
                if (side > 0) {
                    bench_forward(model, pool, side, 5);
                } else {
                    bench_forward(model, pool, 16, quick ? 3 : 5);
                    if (!quick) bench_forward(model, pool, 32, 5);
                }
            }
            qwen_dit_free(model);
        } else {
            fprintf(stderr, "bench_dit: loading: %s\n", canvas_last_error());
        }
    }
    thread_pool_destroy(pool);
    dit_random_model_remove(dir);
    return st == CANVAS_OK ? 0 : 1;
}
