/* SPDX-License-Identifier: Apache-2.0 */
/* test_gguf_run.c — a transformer given as a GGUF file runs (issue 16).
 *
 * GGUF files are built here from the golden tiny transformers the way city96's ComfyUI-GGUF
 * tools leave a checkpoint: 1-D tensors in F32, the matrices in the file's type, and for a
 * block type a matrix whose input width is not whole blocks (at width 64, every K type's
 * matrix but the k = 256 ones: the MLP down projections and the timestep embedder's first
 * linear) in F16, the tools' fallback. Each must give:
 *   - F32 / BF16 / F16 files whose values are the folder's: the folder's output bit for bit;
 *   - every type: bit for bit the output of a safetensors twin holding the same weights
 *     decoded to f32 (the kernels decode in place to exactly those values, same op order);
 *   - every block type: within its stated error of the folder's output (the table of
 *     docs/quantization.md is what this test prints).
 * Also: the kernels of the types after Q4_K (Q5_K, Q6_K and the generic path) against the
 * dequantised matrix, every type's bytes told alike everywhere, loading in place (no copy), the header alone refused for a run but
 * enough for the config, and hostile files (a type or shape that does not fit) refused
 * naming the file and the tensor. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"
#include "io/model_dir.h"
#include "io/quant_loader.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/arch_infer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "models/weight_groups.h"
#include "ops/ops_cpu.h"
#include "ops/threadpool.h"
#include "plan/plan.h"
#include "tensor/ggml_blocks.h"
#include "tensor/ggml_quantize.h"
#include "tensor/quant.h"

enum { MAX_TENSORS = 256, NAME = 256 };

static thread_pool *pool;
static char work[4096];

/* ---- writing GGUF files ------------------------------------------------------------------ */

typedef struct gguf_out {
    char name[NAME];
    uint32_t type;
    int ndim;
    int64_t shape[4];   /* outermost first */
    void *data;         /* malloc'd */
    uint64_t bytes;
} gguf_out;

/* The format's integers are little-endian, as this host's are (x86-64). */
static void put(FILE *f, const void *p, size_t n) { CHECK(fwrite(p, 1, n, f) == n); }
static void put_u32(FILE *f, uint32_t v) { put(f, &v, sizeof v); }
static void put_u64(FILE *f, uint64_t v) { put(f, &v, sizeof v); }
static void put_string(FILE *f, const char *s)
{
    put_u64(f, strlen(s));
    put(f, s, strlen(s));
}
static void pad_to(FILE *f, long at)
{
    while (ftell(f) < at) CHECK(fputc(0, f) != EOF);
}

/* A GGUF v3 file (alignment 32) holding `t`; header_only: no data section at all. */
static void write_gguf(const char *path, const gguf_out *t, int n, int header_only)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    put(f, "GGUF", 4);
    put_u32(f, 3);
    put_u64(f, (uint64_t)n);
    put_u64(f, 1);
    put_string(f, "general.architecture"); /* what ComfyUI-GGUF's convert writes */
    put_u32(f, 8);                          /* STRING */
    put_string(f, "qwen_image");
    uint64_t offset = 0;
    uint64_t *offsets = calloc((size_t)n + 1, sizeof *offsets);
    for (int i = 0; i < n; i++) {
        put_string(f, t[i].name);
        put_u32(f, (uint32_t)t[i].ndim);
        for (int d = t[i].ndim - 1; d >= 0; d--) put_u64(f, (uint64_t)t[i].shape[d]); /* ne[0] innermost */
        put_u32(f, t[i].type);
        offsets[i] = offset;
        put_u64(f, offset);
        offset = (offset + t[i].bytes + 31) / 32 * 32;
    }
    long data_start = (ftell(f) + 31) / 32 * 32;
    pad_to(f, data_start);
    for (int i = 0; i < n && !header_only; i++) {
        pad_to(f, data_start + (long)offsets[i]);
        put(f, t[i].data, (size_t)t[i].bytes);
    }
    free(offsets);
    CHECK(fclose(f) == 0);
}

/* n f32 values into `type` (whole blocks) at dst. */
static void encode(uint32_t type, const float *src, int64_t n, void *dst)
{
    if (type == GGML_TYPE_F32) memcpy(dst, src, (size_t)n * sizeof *src);
    else if (type == GGML_TYPE_F16 || type == GGML_TYPE_BF16)
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = type == GGML_TYPE_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    else CHECK_OK(ggml_quantize_row((int)type, src, n, dst));
}

/* The type city96's tools give a tensor of this shape in a file of `type`. */
static uint32_t type_for(const st_tensor *t, uint32_t type)
{
    if (t->ndim == 1) return GGML_TYPE_F32;
    if (t->shape[t->ndim - 1] % ggml_type_block_elements(type)) return GGML_TYPE_F16;
    return type;
}

/* The GGUF file of component folder `dir` in `type`, under ComfyUI's prefix with the
 * Edit-2511 marker when `marker`; its tensors in *out (the caller frees their data). */
static int gguf_tensors_of(const char *dir, uint32_t type, int marker, gguf_out *out)
{
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (!set) return 0;
    int n = 0;
    for (int i = 0; i < set->n_tensors && n < MAX_TENSORS - 1; i++, n++) {
        const st_tensor *t = set->tensors[i];
        const int64_t numel = (int64_t)st_numel(t);
        gguf_out *o = &out[n];
        snprintf(o->name, NAME, "model.diffusion_model.%s", t->name);
        o->type = type_for(t, type);
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
        CHECK_OK(ggml_type_bytes(o->type, (uint64_t)numel, &o->bytes));
        float *values = malloc((size_t)numel * sizeof *values);
        o->data = malloc((size_t)o->bytes);
        dtype_to_f32(t->type, t->data, values, (size_t)numel);
        encode(o->type, values, numel, o->data);
        free(values);
    }
    if (marker) { /* ComfyUI's Edit-2511 marker, one F32 */
        gguf_out *o = &out[n++];
        *o = (gguf_out){.type = GGML_TYPE_F32, .ndim = 1, .shape = {1}, .data = calloc(1, 4), .bytes = 4};
        snprintf(o->name, NAME, "model.diffusion_model.__index_timestep_zero__");
    }
    weights_close(set);
    return n;
}

/* The same tensors as a safetensors file (the twin a run is held to): F32 / F16 / BF16 as
 * they are, a block type decoded to f32. */
static void write_twin(const gguf_out *t, int n, const char *path)
{
    static st_write_tensor out[MAX_TENSORS];
    float *values[MAX_TENSORS] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        const dtype plain = t[i].type == GGML_TYPE_F16 ? DTYPE_F16 : t[i].type == GGML_TYPE_BF16 ? DTYPE_BF16 : DTYPE_F32;
        const void *data = t[i].data;
        if (quant_format_of_ggml(t[i].type) != QUANT_NONE) {
            values[i] = malloc((size_t)numel * sizeof(float));
            CHECK_OK(ggml_to_f32(t[i].type, t[i].data, values[i], (size_t)numel));
            data = values[i];
        }
        out[i] = (st_write_tensor){t[i].name, plain, t[i].ndim, {0}, data};
        memcpy(out[i].shape, t[i].shape, sizeof t[i].shape);
    }
    CHECK_OK(st_write(path, out, n, NULL, 0));
    for (int i = 0; i < n; i++) free(values[i]);
}

static void free_tensors(gguf_out *t, int n)
{
    for (int i = 0; i < n; i++) free(t[i].data);
}

/* ---- the generic kernel path -------------------------------------------------------------- */

static uint32_t seed = 7;
static uint32_t next_random(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

/* Offsets of the f16 scales inside a block of the type (the other bytes are codes, any
 * value valid): filled with finite scales so that decoded weights are ordinary numbers. */
static void sane_scales(uint32_t type, uint8_t *block)
{
    static const struct { uint32_t type; int at[2]; } scales[] = {
        {GGML_TYPE_Q4_0, {0, -1}}, {GGML_TYPE_Q4_1, {0, 2}},    {GGML_TYPE_Q5_0, {0, -1}}, {GGML_TYPE_Q5_1, {0, 2}},
        {GGML_TYPE_Q2_K, {80, 82}}, {GGML_TYPE_Q3_K, {108, -1}}, {GGML_TYPE_Q5_K, {0, 2}},  {GGML_TYPE_Q6_K, {208, -1}},
    };
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
        for (int j = 0; j < 2 && scales[i].type == type; j++)
            if (scales[i].at[j] >= 0) {
                uint16_t h = f32_to_f16(((float)(next_random() % 1000) + 1.0f) / 64000.0f * (j ? -1.0f : 1.0f));
                memcpy(block + scales[i].at[j], &h, sizeof h);
            }
}

/* op_linear on every GGUF type after Q4_K (random blocks: Q5_K and Q6_K through their SIMD
 * decoders, the others through the generic path) gives bit for bit what it gives on the
 * dequantised f32 matrix: GEMV (1, 2 rows) and GEMM row counts, several blocks per row, 1 and
 * 3 threads. */
static void test_generic_kernel(void)
{
    static const int64_t rows[] = {1, 2, 3, 7, 150};
    thread_pool *one = NULL;
    CHECK_OK(thread_pool_create(1, &one));
    for (int f = QUANT_GGUF_Q4_0; f < QUANT_FORMAT_COUNT; f++) {
        const uint32_t type = (uint32_t)quant_ggml_type((quant_format)f);
        const int64_t n = 37, k = ggml_type_block_elements(type) == 32 ? 544 : 768; /* 17 or 3 blocks a row */
        quant_params p;
        CHECK_OK(quant_layout((quant_format)f, 0, n, k, &p));
        uint8_t *blob = malloc(p.bytes);
        for (size_t i = 0; i < p.bytes; i++) blob[i] = (uint8_t)next_random();
        for (size_t b = 0; b < p.bytes; b += ggml_type_block_bytes(type)) sane_scales(type, blob + b);
        float *dense = malloc((size_t)(n * k) * sizeof *dense), *bias = malloc((size_t)n * sizeof *bias);
        for (int64_t r = 0; r < n; r++) quant_dequantize_row(&p, blob, r, dense + r * k);
        for (int64_t i = 0; i < n; i++) bias[i] = (float)(next_random() % 100) / 100.0f;
        weight_view qv = {DTYPE_U8, blob, n, k, &p}, fv = {DTYPE_F32, dense, n, k, NULL};
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            const int64_t m = rows[ri];
            float *x = malloc((size_t)(m * k) * sizeof *x), *y[3];
            for (int j = 0; j < 3; j++) y[j] = malloc((size_t)(m * n) * sizeof *y[j]);
            for (int64_t i = 0; i < m * k; i++) x[i] = (float)(next_random() % 2001) / 1000.0f - 1.0f;
            CHECK_OK(op_linear(OP_BACKEND_CPU(pool), x, m, &fv, bias, y[0]));
            CHECK_OK(op_linear(OP_BACKEND_CPU(pool), x, m, &qv, bias, y[1]));
            CHECK_OK(op_linear(OP_BACKEND_CPU(one), x, m, &qv, bias, y[2]));
            CHECK_MSG(!memcmp(y[0], y[1], (size_t)(m * n) * sizeof *y[0]), "%s m=%lld: differs from its f32 matrix",
                      quant_format_name(p.format), (long long)m);
            CHECK_MSG(!memcmp(y[1], y[2], (size_t)(m * n) * sizeof *y[1]), "%s m=%lld: depends on the thread count",
                      quant_format_name(p.format), (long long)m);
            int finite = 1;
            for (int64_t i = 0; i < m * n; i++) finite &= isfinite(y[1][i]) && y[1][i] != bias[i % n];
            CHECK_MSG(finite, "%s m=%lld: not ordinary numbers", quant_format_name(p.format), (long long)m);
            free(x);
            for (int j = 0; j < 3; j++) free(y[j]);
        }
        free(blob);
        free(dense);
        free(bias);
    }
    thread_pool_destroy(one);
}

/* Every GGUF format weighs what its ggml type takes, wherever a size is told: the blob's layout,
 * the size estimate of `canvas inspect` / arch_size, ggml_type_bytes. */
static void test_bytes_per_type(void)
{
    tensor_spec spec = {.name = "transformer_blocks.0.attn.to_q.weight", .ndim = 2, .shape = {3072, 3072}};
    for (int f = QUANT_GGUF_Q8_0; f < QUANT_FORMAT_COUNT; f++) {
        quant_params p;
        uint64_t bytes = 0;
        const int type = quant_ggml_type((quant_format)f);
        CHECK(type >= 0 && quant_format_of_ggml((uint32_t)type) == (quant_format)f);
        CHECK_OK(quant_layout((quant_format)f, 0, 3072, 3072, &p));
        CHECK_OK(ggml_type_bytes((uint32_t)type, 3072u * 3072u, &bytes));
        CHECK_MSG(p.bytes == bytes && arch_tensor_bytes_as(&spec, (quant_format)f) == bytes &&
                      bytes == 3072u * 3072u / ggml_type_block_elements((uint32_t)type) * ggml_type_block_bytes((uint32_t)type),
                  "%s: layout %zu, arch_size %llu, ggml %llu", quant_format_name((quant_format)f), p.bytes,
                  (unsigned long long)arch_tensor_bytes_as(&spec, (quant_format)f), (unsigned long long)bytes);
        CHECK(strncmp(arch_format_name((quant_format)f), "gguf-", 5) == 0);
    }
    CHECK(quant_format_of_ggml(GGML_TYPE_BF16) == QUANT_NONE && quant_ggml_type(QUANT_NF4) == -1);
}

/* ---- running ------------------------------------------------------------------------------ */

/* The forward of a dit golden case with the transformer from `source` (folder or file). */
static float *forward(const qwen_dit_case *dc, const char *source, int64_t *n_out)
{
    qwen_dit_model *model = NULL;
    float *output = NULL;
    CHECK_OK(qwen_dit_load(source, &model));
    if (!model) return NULL;
    *n_out = dc->inputs.n_img * qwen_dit_output_channels(&model->config);
    output = malloc((size_t)*n_out * sizeof(float));
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, NULL, output));
    qwen_dit_free(model);
    return output;
}

static double max_abs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* max|got - want| / max|want| */
static double relative_error(const float *got, const float *want, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)got[i] - (double)want[i]));
    return m / max_abs(want, n);
}

/* The types of the table: the stated bound of each (max|GGUF - folder| / max|folder| on
 * dit-edit-basic; docs/quantization.md), about twice what was measured. At width 64 a K type
 * holds only the five k = 256 matrices (the rest F16), a 32-block type every matrix: the rows
 * compare files, not the types' precision. */
static const struct {
    uint32_t type;
    double bound;
} quantised[] = {
    {GGML_TYPE_Q8_0, 0.02}, {GGML_TYPE_Q6_K, 0.02}, {GGML_TYPE_Q5_K, 0.04}, {GGML_TYPE_Q5_1, 0.15},
    {GGML_TYPE_Q5_0, 0.15}, {GGML_TYPE_Q4_K, 0.08}, {GGML_TYPE_Q4_1, 0.30}, {GGML_TYPE_Q4_0, 0.30},
    {GGML_TYPE_Q3_K, 0.15}, {GGML_TYPE_Q2_K, 0.30},
};

static void test_lossless(void)
{
    static const struct {
        const char *case_name;
        uint32_t type;
    } runs[] = {{"golden/cases/dit-edit-basic", GGML_TYPE_F32}, /* an F32 folder */
                {"golden/cases/dit-bf16", GGML_TYPE_BF16},       /* a BF16 folder */
                {"golden/cases/dit-bf16", GGML_TYPE_F16}};       /* bf16 values are f16 values here */
    static gguf_out t[MAX_TENSORS];
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char case_dir[4096], file[4200], twin[4200];
        qwen_dit_case *dc = NULL;
        CHECK_OK(qwen_dit_case_open(test_path(case_dir, sizeof case_dir, runs[r].case_name), &dc));
        if (!dc) return;
        int n = gguf_tensors_of(dc->model_dir, runs[r].type, 1, t); /* both folders are Edit-2511's */
        /* F16 from bf16 is lossless only where every value survives: check that first */
        for (int i = 0; i < n && runs[r].type == GGML_TYPE_F16; i++) {
            if (t[i].type != GGML_TYPE_F16) continue;
            for (uint64_t e = 0; e < t[i].bytes / 2; e++) {
                float v = f16_to_f32(((uint16_t *)t[i].data)[e]);
                if (bf16_to_f32(f32_to_bf16(v)) != v) {
                    CHECK_MSG(0, "%s: element %llu of '%s' is not a bf16 value", runs[r].case_name,
                              (unsigned long long)e, t[i].name);
                    break;
                }
            }
        }
        snprintf(file, sizeof file, "%s/lossless-%s.gguf", work, ggml_type_name(runs[r].type));
        snprintf(twin, sizeof twin, "%s/lossless-%s.safetensors", work, ggml_type_name(runs[r].type));
        write_gguf(file, t, n, 0);
        write_twin(t, n, twin);
        free_tensors(t, n);
        int64_t n_a = 0, n_b = 0, n_c = 0;
        float *a = forward(dc, dc->model_dir, &n_a), *b = forward(dc, file, &n_b), *c = forward(dc, twin, &n_c);
        CHECK_MSG(a && b && c && n_a == n_b && n_b == n_c && n_a > 0 && !memcmp(b, c, (size_t)n_b * sizeof *b),
                  "%s GGUF of %s: not its safetensors twin's output bit for bit", ggml_type_name(runs[r].type),
                  runs[r].case_name);
        /* the folder's dtype (F32, BF16): the folder's output; F16 runs the f16 kernel, whose
         * sums are ordered otherwise than bf16's */
        if (a && b && n_a == n_b) {
            if (runs[r].type != GGML_TYPE_F16)
                CHECK_MSG(!memcmp(a, b, (size_t)n_a * sizeof *a), "%s GGUF of %s: not the folder's output bit for bit",
                          ggml_type_name(runs[r].type), runs[r].case_name);
            else
                CHECK_MSG(relative_error(b, a, n_a) < 1e-5, "F16 GGUF of %s: %g from the folder", runs[r].case_name,
                          relative_error(b, a, n_a));
        }
        free(a);
        free(b);
        free(c);
        qwen_dit_case_free(dc);
    }
}

static void test_quantised(void)
{
    char case_dir[4096], file[4200], twin[4200];
    qwen_dit_case *dc = NULL;
    CHECK_OK(qwen_dit_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/dit-edit-basic"), &dc));
    if (!dc) return;
    int64_t n_folder = 0;
    float *folder = forward(dc, dc->model_dir, &n_folder);
    static gguf_out t[MAX_TENSORS];
    printf("  type   error vs folder   bound   (max|GGUF - folder| / max|folder|, dit-edit-basic)\n");
    for (size_t q = 0; q < sizeof quantised / sizeof quantised[0]; q++) {
        const char *name = ggml_type_name(quantised[q].type);
        int n = gguf_tensors_of(dc->model_dir, quantised[q].type, 1, t);
        int blocks = 0;
        for (int i = 0; i < n; i++) blocks += t[i].type == quantised[q].type;
        CHECK_MSG(blocks >= 2, "%s: only %d tensors in the type", name, blocks); /* the test tests the type */
        snprintf(file, sizeof file, "%s/%s.gguf", work, name);
        snprintf(twin, sizeof twin, "%s/%s-decoded.safetensors", work, name);
        write_gguf(file, t, n, 0);
        write_twin(t, n, twin);
        free_tensors(t, n);
        int64_t n_g = 0, n_t = 0;
        float *g = forward(dc, file, &n_g), *d = forward(dc, twin, &n_t);
        CHECK_MSG(g && d && n_g == n_t && n_g == n_folder && !memcmp(g, d, (size_t)n_g * sizeof *g),
                  "%s: the GGUF run differs from its weights decoded to f32", name);
        if (g && folder && n_g == n_folder) {
            double error = relative_error(g, folder, n_folder);
            printf("  %-6s %15.5f %7.2f\n", name, error, quantised[q].bound);
            CHECK_MSG(error > 0 && error <= quantised[q].bound, "%s: error %.5f, bound %.2f", name, error,
                      quantised[q].bound);
        }
        free(g);
        free(d);
    }
    free(folder);
    qwen_dit_case_free(dc);
}

/* `canvas ARGS` with stdout into out_path; its exit code. */
static int run_cli(const char *args, const char *out_path)
{
    const char *cli = getenv("CANVAS_CLI");
    CHECK_MSG(cli && access(cli, X_OK) == 0, "CANVAS_CLI is not set to the canvas binary");
    if (!cli) return -1;
    char command[16384];
    snprintf(command, sizeof command, "'%s' %s > '%s' 2>&1", cli, args, out_path);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Index of the tensor named "model.diffusion_model." + name, or -1. */
static int index_of(const gguf_out *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name + strlen("model.diffusion_model."), name)) return i;
    return -1;
}

/* A Q4_K file's matrices are used where they lie in the mapping (nothing copied or quantised
 * on load); hostile files, a block tensor whose shape or type does not fit the model, are
 * refused naming the file and the tensor (the library, and `canvas plan`: exit 4). */
static void test_in_place_and_hostile(void)
{
    char case_dir[4096], file[4200], out[4200], args[9000];
    qwen_dit_case *dc = NULL;
    CHECK_OK(qwen_dit_case_open(test_path(case_dir, sizeof case_dir, "golden/cases/dit-edit-basic"), &dc));
    if (!dc) return;
    static gguf_out t[MAX_TENSORS];
    int n = gguf_tensors_of(dc->model_dir, GGML_TYPE_Q4_K, 1, t);
    snprintf(file, sizeof file, "%s/in-place.gguf", work);
    write_gguf(file, t, n, 0);
    free_tensors(t, n);
    qwen_dit_model *model = NULL;
    CHECK_OK(qwen_dit_load(file, &model));
    if (model) {
        const char *map = model->files->gguf->map;
        int in_place = 0, q4_k = 0;
        for (int i = 0; i < qwen_dit_matrix_count(model); i++) {
            qwen_dit_matrix_info info;
            qwen_dit_matrix_get(model, i, &info);
            const char *at = info.home.data;
            in_place += at >= map && at + info.bytes <= map + model->files->gguf->map_bytes;
            q4_k += info.home.quant && info.home.quant->format == QUANT_GGUF_Q4_K;
        }
        CHECK_MSG(in_place == qwen_dit_matrix_count(model) && q4_k == 5 && quant_store_bytes(model->quant) == 0,
                  "%d of %d matrices in the mapping, %d Q4_K, %zu bytes copied", in_place, qwen_dit_matrix_count(model), q4_k,
                  quant_store_bytes(model->quant));
    }
    qwen_dit_free(model);

    /* a Q8_0 matrix of the right size under another shape; a bias in Q8_0 */
    static const struct {
        const char *tensor;
        int64_t shape0, shape1; /* 0: a bias made Q8_0 */
        const char *phrase;
    } bad[] = {
        {"transformer_blocks.0.attn.to_q.weight", 32, 128, "tensor 'transformer_blocks.0.attn.to_q.weight' (gguf_q8_0) "
                                                           "holds a [32, 128] matrix, the config implies [64, 64]"},
        {"transformer_blocks.1.attn.to_k.bias", 0, 0, "tensor 'transformer_blocks.1.attn.to_k.bias' in"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        n = gguf_tensors_of(dc->model_dir, GGML_TYPE_Q8_0, 1, t);
        int i = index_of(t, n, bad[b].tensor);
        CHECK(i >= 0);
        if (i < 0) break;
        if (bad[b].shape0) {
            t[i].shape[0] = bad[b].shape0;
            t[i].shape[1] = bad[b].shape1;
        } else { /* 64 floats as two Q8_0 blocks */
            float values[64];
            CHECK_OK(ggml_to_f32(t[i].type, t[i].data, values, 64));
            t[i].type = GGML_TYPE_Q8_0;
            t[i].bytes = 68;
            encode(GGML_TYPE_Q8_0, values, 64, t[i].data);
        }
        snprintf(file, sizeof file, "%s/hostile-%zu.gguf", work, b);
        write_gguf(file, t, n, 0);
        free_tensors(t, n);
        model = NULL;
        CHECK_FAILS(qwen_dit_load(file, &model), CANVAS_ERR_INPUT, bad[b].phrase);
        CHECK(strstr(canvas_last_error(), file) != NULL);
        if (!bad[b].shape0) CHECK(strstr(canvas_last_error(), "stored as Q8_0; weights must be a float type") != NULL);
        snprintf(out, sizeof out, "%s/hostile.txt", work);
        snprintf(args, sizeof args, "plan --transformer '%s' --size 64x64", file);
        int code = run_cli(args, out);
        char *text = read_text(out);
        CHECK_MSG(code == 4 && text && strstr(text, bad[b].tensor) && strstr(text, file), "exit %d: %s", code,
                  text ? text : "");
    }
    qwen_dit_case_free(dc);
}

/* ---- planning from a header ----------------------------------------------------------------- */

/* The type a Q4_K_M file of city96's tools gives a tensor of the real model: 1-D and tiny
 * (<= 1024 elements) F32; a K type needs rows of whole 256-blocks, else F16 (img_in, 64 wide);
 * the value projections Q6_K (llama-quantize's Q4_K_M rule for ".to_v.weight", which ComfyUI-GGUF's
 * patch keeps); the other matrices Q4_K. */
static uint32_t q4_k_m_type(const tensor_spec *t)
{
    if (t->ndim == 1 || arch_numel(t) <= 1024) return GGML_TYPE_F32;
    if (t->shape[t->ndim - 1] % GGML_QK_K) return GGML_TYPE_F16;
    if (strstr(t->name, ".to_v.weight") || strstr(t->name, ".add_v_proj.weight")) return GGML_TYPE_Q6_K;
    return GGML_TYPE_Q4_K;
}

/* A header-only GGUF of the full-size Qwen-Image-Edit-2511 transformer (60 blocks, width
 * 3072), as a ComfyUI-GGUF Q4_K_M file would have it: 190 kB on disk for 11 GiB of tensors. */
static int write_real_header(const char *path, uint64_t *stored)
{
    char config_path[4096];
    qwen_dit_config config;
    CHECK_OK(qwen_dit_config_load(test_path(config_path, sizeof config_path, "real-configs/qwen-image-edit-2511/transformer/config.json"),
                             &config));
    tensor_spec_list specs = {0};
    CHECK_OK(arch_dit(&config, &specs));
    gguf_out *t = calloc((size_t)specs.count + 1, sizeof *t);
    int n = 0;
    *stored = 0;
    for (int i = 0; i < specs.count && t; i++, n++) {
        const tensor_spec *spec = &specs.items[i];
        snprintf(t[n].name, NAME, "model.diffusion_model.%s", spec->name);
        t[n].type = q4_k_m_type(spec);
        t[n].ndim = spec->ndim;
        memcpy(t[n].shape, spec->shape, (size_t)spec->ndim * sizeof spec->shape[0]);
        CHECK_OK(ggml_type_bytes(t[n].type, arch_numel(spec), &t[n].bytes));
        *stored += t[n].bytes;
    }
    if (t) {
        t[n] = (gguf_out){.type = GGML_TYPE_F32, .ndim = 1, .shape = {1}, .bytes = 4};
        snprintf(t[n++].name, NAME, "model.diffusion_model.__index_timestep_zero__");
        write_gguf(path, t, n, 1);
    }
    free(t);
    arch_free(&specs);
    return n;
}

static void test_plan_from_header(void)
{
    char file[4200], out[4200], args[9000];
    snprintf(file, sizeof file, "%s/qwen-image-edit-2511-Q4_K_M.gguf", work);
    uint64_t stored = 0;
    int n = write_real_header(file, &stored);
    struct stat info;
    CHECK(n == 1934 && stat(file, &info) == 0 && info.st_size < (1 << 20)); /* 1,933 tensors and the marker */
    printf("  header %lld bytes for %.2f GiB of tensors\n", (long long)info.st_size, (double)stored / (1u << 30));

    /* the config from the header is the real one; the planner counts what each type takes */
    qwen_dit_config config;
    weight_set *files = NULL;
    CHECK_OK(qwen_dit_header_load(file, &config, &files));
    CHECK(config.num_layers == 60 && qwen_dit_inner_dim(&config) == 3072 && config.zero_cond_t);
    qwen_dit_model *shape = NULL;
    CHECK_OK(plan_dit_shape_model_files(&config, (quant_choice){QUANT_NONE, 0}, 2, files, &shape));
    uint64_t matrices = 0, want = 0;
    for (int i = 0; files && i < files->n_tensors; i++)
        if (files->tensors[i]->ndim == 2) want += files->tensors[i]->nbytes;
    const weight_groups *groups = shape ? qwen_dit_weight_groups(shape) : NULL;
    for (int g = 0; groups && g < groups->count; g++)
        for (int m = 0; m < groups->groups[g].n_matrices; m++) matrices += groups->groups[g].tensors[m].bytes;
    CHECK_MSG(matrices == want && want > (uint64_t)10 << 30 && want < (uint64_t)12 << 30,
              "the plan's matrices weigh %llu bytes, the header's %llu", (unsigned long long)matrices,
              (unsigned long long)want);
    qwen_dit_free(shape);
    weights_close(files);

    /* a run needs the data: refused, naming the file */
    qwen_dit_model *model = NULL;
    CHECK_FAILS(qwen_dit_load(file, &model), CANVAS_ERR_INPUT, "qwen-image-edit-2511-Q4_K_M.gguf");

    /* canvas plan on the header alone: the viability rows, 16, 12 and 8 GiB fitting as stored */
    snprintf(out, sizeof out, "%s/plan.txt", work);
    snprintf(args, sizeof args, "plan --transformer '%s' --viability", file);
    int code = run_cli(args, out);
    char *text = read_text(out);
    CHECK_MSG(code == 0 && text, "canvas plan --viability: exit %d: %s", code, text ? text : "");
    static const char *const rows[] = {"| 16 GiB | 32 GiB |", "| 12 GiB | 32 GiB |", "| 8 GiB | 32 GiB |"};
    for (size_t r = 0; r < 3 && text; r++) {
        const char *row = strstr(text, rows[r]);
        const char *cell = row ? strstr(row, "blocks resident") : NULL;
        CHECK_MSG(row && cell && cell < row + strcspn(row, "\n") && strncmp(row + strlen(rows[r]), " no:", 4) != 0,
                  "no fitting row '%s' in:\n%s", rows[r], text);
        if (row) printf("  %.*s\n", (int)strcspn(row, "\n"), row);
    }
}

int main(void)
{
    CHECK_OK(thread_pool_create(3, &pool));
    snprintf(work, sizeof work, "/tmp/canvas-gguf-run-XXXXXX");
    CHECK(mkdtemp(work) != NULL);
    RUN(test_bytes_per_type);
    RUN(test_generic_kernel);
    RUN(test_lossless);
    RUN(test_quantised);
    RUN(test_in_place_and_hostile);
    RUN(test_plan_from_header);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    CHECK(system(cmd) == 0);
    thread_pool_destroy(pool);
    return check_summary();
}
