/* SPDX-License-Identifier: Apache-2.0 */
/* test_gguf_blocks.c — ggml block decoding is bit-exact with llama.cpp's gguf-py.
 *
 * tests/gguf/vectors.gguf (tools/gguf_vectors.py vectors) holds, for each decodable type T,
 * a tensor "T" of blocks in which every code of every field occurs (rows of 3 or 5 blocks)
 * and "T.expected": what gguf-py's quants.dequantize makes of them. Every value must have
 * the same bits (a NaN only needs to be a NaN: NaN payloads through inf x 0 are the FPU's).
 * Each tensor is decoded whole, row by row from an unaligned copy, and one block at a time,
 * so a decoder that depends on alignment or on where a run starts shows up. */
#include <stdint.h>

#include "check.h"
#include "io/gguf.h"

static const ggml_type TYPES[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};

static int same_value(float a, float b)
{
    if (a != a || b != b) return a != a && b != b;
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

/* How many of n decoded values differ from the expected ones; prints the first. */
static size_t count_mismatches(const char *what, const float *got, const unsigned char *expected, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want;
        memcpy(&want, expected + 4 * i, 4);
        if (same_value(got[i], want)) continue;
        if (bad++ == 0) fprintf(stderr, "%s: element %zu is %.9g, gguf-py says %.9g\n", what, i, got[i], want);
    }
    return bad;
}

static void check_type(const gguf_file *file, ggml_type type)
{
    const char *name = ggml_type_name(type);
    char expected_name[64];
    snprintf(expected_name, sizeof expected_name, "%s.expected", name);
    const gguf_tensor *t = gguf_find(file, name), *e = gguf_find(file, expected_name);
    CHECK_MSG(t && e, "%s: tensors missing from vectors.gguf", name);
    if (!t || !e) return;
    uint64_t n = gguf_numel(t);
    uint32_t block = ggml_type_block_elements(type), block_bytes = ggml_type_block_bytes(type);
    CHECK(t->type == type && e->type == GGML_TYPE_F32 && gguf_numel(e) == n && t->ndim == 2);
    CHECK_MSG(n >= 6 * 256 || block == 1, "%s: only %llu elements", name, (unsigned long long)n);
    size_t row = (size_t)t->shape[1], row_bytes = row / block * block_bytes;
    float *out = malloc(n * sizeof(float));
    unsigned char *copy = malloc(row_bytes + 1);
    if (!out || !copy) return;

    /* whole */
    CHECK_OK(ggml_to_f32(type, t->data, out, (size_t)n));
    CHECK_MSG(count_mismatches(name, out, e->data, (size_t)n) == 0, "%s: whole tensor", name);

    /* each row from a copy one byte past an aligned address */
    memset(out, 0xFF, n * sizeof(float));
    for (int64_t r = 0; r < t->shape[0]; r++) {
        memcpy(copy + 1, (const unsigned char *)t->data + (size_t)r * row_bytes, row_bytes);
        CHECK_OK(ggml_to_f32(type, copy + 1, out + (size_t)r * row, row));
    }
    CHECK_MSG(count_mismatches(name, out, e->data, (size_t)n) == 0, "%s: row by row, unaligned", name);

    /* one block at a time, last block first */
    memset(out, 0xFF, n * sizeof(float));
    for (size_t b = (size_t)n / block; b-- > 0;)
        CHECK_OK(ggml_to_f32(type, (const unsigned char *)t->data + b * block_bytes, out + b * block, block));
    CHECK_MSG(count_mismatches(name, out, e->data, (size_t)n) == 0, "%s: block by block", name);
    free(copy);
    free(out);
}

static void test_vectors(void)
{
    char path[512];
    gguf_file *file = NULL;
    CHECK_OK(gguf_open(test_path(path, sizeof path, "gguf/vectors.gguf"), &file));
    if (!file) return;
    CHECK(file->n_tensors == 2 * (int)(sizeof TYPES / sizeof TYPES[0]) + 2);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) check_type(file, TYPES[i]);
    gguf_close(file);
}

/* Hand-made blocks whose values are known without the reference: a decoder that agrees
 * with gguf-py for the wrong reason (both reading the same wrong bytes) fails here. */
static void test_known_blocks(void)
{
    float y[256];
    /* Q4_0: d = 2 (0x4000), byte j = j | (15 - j) << 4: element j is 2 (j - 8), element
     * j + 16 is 2 (7 - j) */
    unsigned char q4_0[18] = {0x00, 0x40};
    for (int j = 0; j < 16; j++) q4_0[2 + j] = (unsigned char)(j | (15 - j) << 4);
    CHECK_OK(ggml_to_f32(GGML_TYPE_Q4_0, q4_0, y, 32));
    CHECK(y[0] == -16.0f && y[15] == 14.0f && y[16] == 14.0f && y[31] == -16.0f);
    /* Q4_K: d = 1, dmin = 0.5 (0x3800); sub-block 5's scale 33 and min 2 sit in bytes 1, 5
     * and 9 (scale 33 = 0b100001: low nibble 1 in byte 9, high bits 10 in byte 1's top two;
     * min 2: low nibble 2 in byte 9's top, high bits 00); all codes 3 */
    unsigned char q4_k[144] = {0x00, 0x3C, 0x00, 0x38};
    q4_k[4 + 1] = 2 << 6;
    q4_k[4 + 9] = 1 | 2 << 4;
    memset(q4_k + 16, 0x33, 128);
    CHECK_OK(ggml_to_f32(GGML_TYPE_Q4_K, q4_k, y, 256));
    CHECK(y[160] == 33.0f * 3 - 0.5f * 2 && y[191] == 33.0f * 3 - 1.0f && y[0] == 0.0f && y[192] == 0.0f);
    /* Q6_K: d = 1, scale of sub-block 0 = -2, element 0 code 63 (ql nibble 15, qh bits 3) */
    unsigned char q6_k[210] = {0};
    q6_k[0] = 0x0F;
    q6_k[128] = 0x03;
    q6_k[192] = (unsigned char)-2;
    q6_k[208] = 0x00;
    q6_k[209] = 0x3C;
    CHECK_OK(ggml_to_f32(GGML_TYPE_Q6_K, q6_k, y, 256));
    CHECK(y[0] == -2.0f * 31 && y[1] == -2.0f * -32 && y[16] == 0.0f * -32);
}

static void test_refusals(void)
{
    float y[32];
    unsigned char block[34] = {0};
    CHECK_FAILS(ggml_to_f32(GGML_TYPE_Q8_0, block, y, 31), CANVAS_ERR_USAGE, "31 elements");
    CHECK_FAILS(ggml_to_f32(9, block, y, 32), CANVAS_ERR_USAGE, "ggml type 9");
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_known_blocks);
    RUN(test_refusals);
    return check_summary();
}
