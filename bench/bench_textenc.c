/* SPDX-License-Identifier: Apache-2.0 */
/* bench_textenc.c — the Qwen2.5-VL encoder at the real width on a one-reference Edit-Plus
 * prompt, timed part by part and scaled to the whole encoder.
 *
 *   build-D/bench_textenc             median of 5 forwards after a warm-up
 *   build-D/bench_textenc --runs N    median of N (1..16)
 *   build-D/bench_textenc --serve     for bench/torch_textenc.py: "ready ..." with the
 *                                     kernels and the window bounds, then one forward per input line,
 *                                     answered "seconds T window W full F layer L scaled S cpu C"
 *
 * Builds a random encoder of the real width (text: hidden 3584, 28 heads x 128, 4 kv heads,
 * intermediate 18944, M-RoPE [16, 24, 24]; vision: hidden 1280, 16 heads x 80,
 * intermediate 3420, window 112 px, merger to 3584; every tensor BF16 as stored) with ONE
 * decoder layer and TWO vision blocks, block 0 windowed and block 1 full attention (the
 * real tower has both kinds: 28 windowed, 4 full), as a text_encoder/ folder in a temporary
 * directory (about 0.6 GB, removed at exit; tests/textenc_random_model.h), and runs
 * textenc_forward on the sequence of a one-reference Edit-Plus prompt:
 *   one 384x384-area condition image -> 392x392 -> grid (1, 28, 28): 784 patches, 196
 *   merged tokens, 16 windows of at most 8x8 patches (spec B.6, B.7);
 *   64 system-template tokens + "Picture 1: " (5) + <|vision_start|> + 196 <|image_pad|>
 *   + <|vision_end|> + an 18-token instruction + 5 closing tokens = 290 ids (counted with
 *   the real tokenizer on "Replace the red car with a blue bicycle and make the sky look
 *   like a warm sunset.").
 * The vocabulary is cut to 1024 rows with the special tokens renumbered inside it (only
 * the ids' rows are ever read, so the real 152,064 rows would cost a 1 GB file and no time).
 *
 * An observer (textenc_tap) stamps the clock at the part boundaries, so one forward gives
 *   total   the whole call: patch embedding, both blocks, merger, embeddings, the layer, norm
 *   window  vision block 0,  full  vision block 1,  layer  decoder layer 0
 * and the whole encoder (28 layers, 32 blocks of which 4 full) is estimated as
 *   scaled = total + 27 window + 3 full + 27 layer.
 * (The observer's own work, two 4 MB row permutations, is under 0.1 % of a forward.)
 * FLOPs: linears 2 M N K, attention 4 L^2 D per segment of L rows (2 L (L + 1) D when
 * causal). GFLOP/s = FLOPs / seconds of the same part; the process CPU time is printed as
 * in bench_dit (CPU / (wall x threads) well under 100 %: the cores were shared). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/textenc_random_model.h"
#include "ops/threadpool.h"
#include "models/qwen_textenc.h"
#include "ops/ops_cpu.h"
#include "bench_util.h"

enum {
    D = 3584, KV = 4 * 128, F = 18944, DV = 1280, FV = 3420, P = 1176, /* text and vision widths */
    GRID = 28, PATCHES = GRID * GRID, IMAGE_TOKENS = PATCHES / 4,
    SYSTEM = 64, PICTURE = 5, INSTRUCTION = 18, CLOSING = 5,
    IDS = SYSTEM + PICTURE + 1 + IMAGE_TOKENS + 1 + INSTRUCTION + CLOSING,
    REAL_LAYERS = 28, REAL_BLOCKS = 32, REAL_FULL = 4, MAX_WINDOWS = 64, MAX_RUNS = 16
};

/* One decoder layer and two vision blocks (windowed, full) at Qwen2.5-VL-7B's widths. */
static const textenc_random_shape SHAPE = {
    TEXTENC_RANDOM_TEST_IDS, .hidden = 3584, .intermediate = 18944, .layers = 1, .heads = 28, .kv_heads = 4,
    .mrope = {16, 24, 24}, .max_window_layers = 28, .vision_depth = 2, .vision_hidden = 1280, .vision_heads = 16,
    .vision_intermediate = 3420, .window = 112};

static void die(const char *what)
{
    fprintf(stderr, "bench_textenc: %s: %s\n", what, canvas_last_error());
    exit(1);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The clock at the part boundaries of one forward, and the window bounds (patch rows). */
typedef struct stamps {
    double blocks_start, block0, block1, layers_start, layer0;
    int64_t windows[MAX_WINDOWS + 1];
    int n_windows;
} stamps;

static canvas_status stamp(void *ctx, const char *name, const float *data, int64_t rows, int64_t cols)
{
    stamps *s = ctx;
    double t = now_seconds();
    (void)cols;
    if (!strcmp(name, "vision.cu_seqlens")) s->blocks_start = t; /* the last thing before block 0 */
    else if (!strcmp(name, "vision.block.0")) s->block0 = t;
    else if (!strcmp(name, "vision.block.1")) s->block1 = t;
    else if (!strcmp(name, "inputs_embeds")) s->layers_start = t;
    else if (!strcmp(name, "layer.0")) s->layer0 = t;
    else if (!strcmp(name, "vision.cu_window_seqlens") && rows <= MAX_WINDOWS + 1) {
        s->n_windows = (int)rows - 1;
        for (int64_t i = 0; i < rows; i++) s->windows[i] = (int64_t)data[i];
    }
    return CANVAS_OK;
}

/* One forward's figures (seconds). */
typedef struct timing {
    double total, window, full, layer, scaled, cpu;
} timing;

typedef struct bench {
    textenc_model *model;
    thread_pool *pool;
    int32_t ids[IDS];
    float *pixels, *hidden;
    int64_t grid[1][3];
    stamps s;
} bench;

static timing forward(bench *b)
{
    textenc_tap tap = {stamp, &b->s};
    double c0 = cpu_seconds(), t0 = now_seconds();
    if (textenc_forward_tapped(b->model, OP_BACKEND_CPU(b->pool), b->ids, IDS, b->pixels, (const int64_t(*)[3])b->grid, 1, &tap,
                               b->hidden) != CANVAS_OK)
        die("forward");
    timing t = {.total = now_seconds() - t0, .cpu = cpu_seconds() - c0};
    t.window = b->s.block0 - b->s.blocks_start;
    t.full = b->s.block1 - b->s.block0;
    t.layer = b->s.layer0 - b->s.layers_start;
    t.scaled = t.total + (REAL_BLOCKS - REAL_FULL - 1) * t.window + (REAL_FULL - 1) * t.full +
               (REAL_LAYERS - 1) * t.layer;
    return t;
}

/* FLOPs of the parts (see the header comment). */
static double block_flops(const stamps *s, int full)
{
    double f = 2.0 * PATCHES * (4.0 * DV * DV + 3.0 * DV * FV);
    if (full) return f + 4.0 * PATCHES * PATCHES * DV;
    for (int i = 0; i < s->n_windows; i++) {
        double l = (double)(s->windows[i + 1] - s->windows[i]);
        f += 4.0 * l * l * DV;
    }
    return f;
}

static double layer_flops(void)
{
    return 2.0 * IDS * (2.0 * D * D + 2.0 * D * KV + 3.0 * D * F) + 2.0 * IDS * (IDS + 1.0) * D;
}

static double once_flops(void) /* patch embedding and merger (the rest is memory traffic) */
{
    return 2.0 * PATCHES * P * DV + 2.0 * IMAGE_TOKENS * (4.0 * DV) * (4.0 * DV + D);
}

static double scaled_flops(const stamps *s)
{
    return once_flops() + (REAL_BLOCKS - REAL_FULL) * block_flops(s, 0) + REAL_FULL * block_flops(s, 1) +
           REAL_LAYERS * layer_flops();
}

/* The Edit-Plus prompt's ids (text ids random below the special ones) and random pixels. */
static void inputs_make(bench *b, const textenc_config *c)
{
    int k = 0;
    for (int i = 0; i < SYSTEM + PICTURE; i++) b->ids[k++] = (int32_t)((rand_float() + 1.0f) * 499.0f);
    b->ids[k++] = c->vision_start_token_id;
    for (int i = 0; i < IMAGE_TOKENS; i++) b->ids[k++] = c->image_token_id;
    b->ids[k++] = c->vision_end_token_id;
    while (k < IDS) b->ids[k++] = (int32_t)((rand_float() + 1.0f) * 499.0f);
    b->pixels = xmalloc((size_t)PATCHES * P * sizeof(float));
    b->hidden = xmalloc((size_t)IDS * D * sizeof(float));
    for (int64_t i = 0; i < (int64_t)PATCHES * P; i++) b->pixels[i] = 2.0f * rand_float();
    b->grid[0][0] = 1, b->grid[0][1] = b->grid[0][2] = GRID;
}

static void serve(bench *b)
{
    char line[64];
    forward(b); /* warm-up, and the window bounds */
    printf("ready %d threads kernels %s ids %d patches %d windows", thread_pool_size(b->pool), ops_cpu_kernels(), IDS,
           PATCHES);
    for (int i = 0; i <= b->s.n_windows; i++) printf("%s%lld", i ? "," : " ", (long long)b->s.windows[i]);
    printf(" gflop %.3f\n", scaled_flops(&b->s) * 1e-9);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) && strncmp(line, "quit", 4)) {
        timing t = forward(b);
        printf("seconds %.6f window %.6f full %.6f layer %.6f scaled %.6f cpu %.6f\n", t.total, t.window, t.full,
               t.layer, t.scaled, t.cpu);
        fflush(stdout);
    }
}

static void report(bench *b, int runs)
{
    timing t[MAX_RUNS];
    double v[6][MAX_RUNS];
    forward(b); /* warm-up */
    print_load("before");
    for (int r = 0; r < runs; r++) t[r] = forward(b);
    print_load("after");
    for (int r = 0; r < runs; r++) {
        v[0][r] = t[r].total, v[1][r] = t[r].window, v[2][r] = t[r].full;
        v[3][r] = t[r].layer, v[4][r] = t[r].scaled, v[5][r] = t[r].cpu;
    }
    double m[6];
    for (int i = 0; i < 6; i++) m[i] = median(v[i], runs);
    const stamps *s = &b->s;
    printf("%d ids (%d image tokens), %d patches in %d windows; %d threads, %s kernels; medians of %d forwards\n",
           IDS, IMAGE_TOKENS, PATCHES, s->n_windows, thread_pool_size(b->pool), ops_cpu_kernels(), runs);
    printf("  vision block, windowed   %7.3f s  %6.1f GFLOP/s\n", m[1], block_flops(s, 0) / m[1] * 1e-9);
    printf("  vision block, full       %7.3f s  %6.1f GFLOP/s\n", m[2], block_flops(s, 1) / m[2] * 1e-9);
    printf("  decoder layer            %7.3f s  %6.1f GFLOP/s\n", m[3], layer_flops() / m[3] * 1e-9);
    printf("  1 layer + 2 blocks       %7.3f s  (patch embedding, merger, embeddings, norm: %.3f s)\n", m[0],
           m[0] - m[1] - m[2] - m[3]);
    printf("  whole encoder (scaled)   %7.3f s  %6.1f GFLOP/s  (%.0f GFLOP; CPU %.0f%% of %d threads)\n", m[4],
           scaled_flops(s) / m[4] * 1e-9, scaled_flops(s) * 1e-9,
           100.0 * m[5] / (m[0] * thread_pool_size(b->pool)), thread_pool_size(b->pool));
}

int main(int argc, char **argv)
{
    int serving = 0, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--serve")) serving = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_textenc [--serve] [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "bench_textenc: --runs takes 1..%d\n", MAX_RUNS);
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bench_textenc.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    fprintf(serving ? stderr : stdout,
            "bench_textenc: writing a random bf16 encoder (1 layer, 2 vision blocks, real widths) to %s\n", dir);
    fflush(stdout);
    bench b = {0};
    canvas_status st = textenc_random_model_write(dir, &SHAPE, 0);
    if (st == CANVAS_OK) st = textenc_open(dir, &b.model);
    if (st != CANVAS_OK) {
        fprintf(stderr, "bench_textenc: the model: %s\n", canvas_last_error());
        textenc_random_model_remove(dir);
        return 1;
    }
    if (thread_pool_create(0, &b.pool) != CANVAS_OK) die("thread pool");
    inputs_make(&b, textenc_model_config(b.model));
    if (serving) serve(&b);
    else report(&b, runs);
    free(b.pixels);
    free(b.hidden);
    thread_pool_destroy(b.pool);
    textenc_close(b.model);
    textenc_random_model_remove(dir);
    return 0;
}
