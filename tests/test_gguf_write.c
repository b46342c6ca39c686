/* SPDX-License-Identifier: Apache-2.0 */
/* test_gguf_write.c — io/gguf_write.h: a file with a tensor of every ggml type and
 * metadata of every kind the writer has, its data given in pieces that straddle tensors,
 * read back by io/gguf.c (the strict reader) with the same names, types, shapes, values
 * and payload bytes; the writer's refusals leave no file and no temporary file behind. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "tensor/ggml_quantize.h"

static char dir[64];

static const char *in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* Files in the test folder (a refused write must leave none behind). */
static int files_in_dir(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

typedef struct spec {
    const char *name;
    ggml_type type;
    int ndim;
    int64_t shape[GGUF_MAX_DIMS];
} spec;

static const spec SPECS[] = {
    {"blk.f32", GGML_TYPE_F32, 1, {7}},
    {"blk.f16", GGML_TYPE_F16, 2, {3, 5}},
    {"blk.bf16", GGML_TYPE_BF16, 3, {2, 3, 3}},
    {"blk.q4_0", GGML_TYPE_Q4_0, 2, {5, 64}},
    {"blk.q4_1", GGML_TYPE_Q4_1, 2, {3, 32}},
    {"blk.q5_0", GGML_TYPE_Q5_0, 4, {1, 2, 1, 96}},
    {"blk.q5_1", GGML_TYPE_Q5_1, 2, {1, 32}},
    {"blk.q8_0", GGML_TYPE_Q8_0, 2, {3, 64}},
    {"blk.q2_k", GGML_TYPE_Q2_K, 2, {3, 256}},
    {"blk.q3_k", GGML_TYPE_Q3_K, 1, {256}},
    {"blk.q4_k", GGML_TYPE_Q4_K, 2, {5, 512}},
    {"blk.q5_k", GGML_TYPE_Q5_K, 2, {2, 256}},
    {"blk.q6_k", GGML_TYPE_Q6_K, 2, {3, 256}},
    {"empty", GGML_TYPE_F32, 1, {0}}, /* a marker: no bytes, at the end too */
};
#define N_SPECS (sizeof SPECS / sizeof SPECS[0])

static uint64_t numel(const spec *s)
{
    uint64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= (uint64_t)s->shape[d];
    return n;
}

static void test_round_trip(void)
{
    char path[128];
    in_dir(path, sizeof path, "every_type.gguf");
    unsigned char *payload[N_SPECS];
    uint64_t bytes[N_SPECS], total = 0;
    uint32_t rng = 99;
    for (size_t i = 0; i < N_SPECS; i++) {
        uint64_t n = numel(&SPECS[i]);
        float *x = malloc(n * sizeof *x + 1);
        for (uint64_t k = 0; k < n; k++) x[k] = test_uniform(&rng) * (float)(1 + i);
        CHECK_OK(ggml_type_bytes(SPECS[i].type, n, &bytes[i]));
        payload[i] = malloc(bytes[i] + 1);
        CHECK_OK(ggml_quantize_row(SPECS[i].type, x, (int64_t)n, payload[i]));
        total += bytes[i];
        free(x);
    }
    /* all payloads back to back, given in 7-byte pieces: every tensor boundary falls inside one */
    unsigned char *all = malloc(total), *at = all;
    for (size_t i = 0; i < N_SPECS; i++) memcpy(at, payload[i], bytes[i]), at += bytes[i];
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_create(path, &w));
    const char *names[] = {"first", "", "third, with a comma"};
    CHECK_OK(gguf_writer_add_string(w, "general.architecture", "qwen_image"));
    CHECK_OK(gguf_writer_add_u32(w, "general.quantization_version", 2));
    CHECK_OK(gguf_writer_add_strings(w, "test.names", names, 3));
    for (size_t i = 0; i < N_SPECS; i++)
        CHECK_OK(gguf_writer_add_tensor(w, SPECS[i].name, SPECS[i].type, SPECS[i].ndim, SPECS[i].shape));
    CHECK(files_in_dir() == 0); /* nothing on disk before the data */
    for (uint64_t done = 0; done < total; done += 7) CHECK_OK(gguf_writer_write(w, all + done, total - done < 7 ? total - done : 7));
    CHECK_OK(gguf_writer_finish(w, CANVAS_OK));
    CHECK(files_in_dir() == 1);

    gguf_file *file = NULL;
    CHECK_OK(gguf_open(path, &file));
    if (file) {
        CHECK(file->version == 3 && file->alignment == 32 && file->n_kv == 4 && file->n_tensors == (int)N_SPECS);
        const gguf_kv *kv = gguf_find_kv(file, "general.architecture");
        CHECK(kv && kv->type == GGUF_STRING && kv->value.s.length == 10 && !memcmp(kv->value.s.data, "qwen_image", 10));
        kv = gguf_find_kv(file, "general.alignment");
        CHECK(kv && kv->type == GGUF_UINT32 && kv->value.u == 32);
        kv = gguf_find_kv(file, "general.quantization_version");
        CHECK(kv && kv->type == GGUF_UINT32 && kv->value.u == 2);
        kv = gguf_find_kv(file, "test.names");
        CHECK(kv && kv->type == GGUF_ARRAY && kv->value.array.type == GGUF_STRING && kv->value.array.count == 3);
        if (kv && kv->type == GGUF_ARRAY) { /* the elements as stored: u64 length, bytes */
            const unsigned char *p = kv->value.array.data;
            for (int i = 0; i < 3; i++) {
                uint64_t len = 0;
                for (int b = 0; b < 8; b++) len |= (uint64_t)p[b] << (8 * b);
                CHECK(len == strlen(names[i]) && !memcmp(p + 8, names[i], len));
                p += 8 + len;
            }
        }
        for (size_t i = 0; i < N_SPECS; i++) {
            const gguf_tensor *t = gguf_find(file, SPECS[i].name);
            CHECK_MSG(t != NULL, "tensor %s missing", SPECS[i].name);
            if (!t) continue;
            CHECK(t->type == SPECS[i].type && t->ndim == SPECS[i].ndim && t->nbytes == bytes[i]);
            CHECK(!memcmp(t->shape, SPECS[i].shape, (size_t)t->ndim * sizeof *t->shape));
            CHECK(t->data_offset % 32 == 0);
            CHECK_MSG(!memcmp(t->data, payload[i], bytes[i]), "tensor %s: payload differs", SPECS[i].name);
        }
        gguf_close(file);
    }
    /* writing onto an existing file replaces it whole */
    CHECK_OK(gguf_writer_create(path, &w));
    CHECK_OK(gguf_writer_add_tensor(w, "only", GGML_TYPE_Q8_0, 1, (int64_t[]){32}));
    CHECK_OK(gguf_writer_write(w, payload[7], 34));
    CHECK_OK(gguf_writer_finish(w, CANVAS_OK));
    CHECK_OK(gguf_open(path, &file));
    CHECK(file && file->n_tensors == 1 && file->n_kv == 1 && !memcmp(file->tensors[0].data, payload[7], 34));
    gguf_close(file);
    CHECK(unlink(path) == 0);
    for (size_t i = 0; i < N_SPECS; i++) free(payload[i]);
    free(all);
}

/* Each refusal names the key or tensor, and finishing after it leaves no file. */
static void test_refusals(void)
{
    char path[128], link_path[128];
    in_dir(path, sizeof path, "bad.gguf");
    gguf_writer *w = NULL;
    const unsigned char data[64] = {0};
    CHECK_OK(gguf_writer_create(path, &w));
    CHECK_FAILS(gguf_writer_add_u32(w, "general.alignment", 64), CANVAS_ERR_USAGE, "'general.alignment' given twice");
    CHECK_OK(gguf_writer_add_string(w, "a", "x"));
    CHECK_FAILS(gguf_writer_add_u32(w, "a", 1), CANVAS_ERR_USAGE, "'a' given twice");
    CHECK_FAILS(gguf_writer_add_string(w, "", "x"), CANVAS_ERR_USAGE, "empty name");
    CHECK_OK(gguf_writer_add_tensor(w, "t", GGML_TYPE_F16, 1, (int64_t[]){4}));
    CHECK_FAILS(gguf_writer_add_tensor(w, "t", GGML_TYPE_F16, 1, (int64_t[]){4}), CANVAS_ERR_USAGE, "'t' given twice");
    CHECK_FAILS(gguf_writer_add_tensor(w, "u", 9, 1, (int64_t[]){32}), CANVAS_ERR_USAGE, "ggml type 9");
    CHECK_FAILS(gguf_writer_add_tensor(w, "u", GGML_TYPE_Q4_K, 2, (int64_t[]){256, 64}), CANVAS_ERR_USAGE,
                "rows of 64 are not whole Q4_K blocks");
    CHECK_FAILS(gguf_writer_add_tensor(w, "u", GGML_TYPE_F32, 0, (int64_t[]){1}), CANVAS_ERR_USAGE, "0 dims");
    CHECK_FAILS(gguf_writer_add_tensor(w, "u", GGML_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}), CANVAS_ERR_USAGE, "5 dims");
    CHECK_FAILS(gguf_writer_add_tensor(w, "u", GGML_TYPE_F32, 2, (int64_t[]){3, -1}), CANVAS_ERR_USAGE, "dim 1 is -1");
    char long_name[300];
    memset(long_name, 'n', 299);
    long_name[299] = '\0';
    CHECK_FAILS(gguf_writer_add_tensor(w, long_name, GGML_TYPE_F32, 1, (int64_t[]){1}), CANVAS_ERR_USAGE, "longer than 255");
    CHECK_OK(gguf_writer_write(w, data, 3));
    CHECK_FAILS(gguf_writer_add_tensor(w, "late", GGML_TYPE_F32, 1, (int64_t[]){1}), CANVAS_ERR_USAGE, "after the tensor data");
    CHECK_FAILS(gguf_writer_add_string(w, "late", "x"), CANVAS_ERR_USAGE, "after the tensor data");
    CHECK_FAILS(gguf_writer_finish(w, CANVAS_OK), CANVAS_ERR_USAGE, "tensor 't' has 3 of its 8 bytes");
    CHECK(files_in_dir() == 0);

    CHECK_OK(gguf_writer_create(path, &w));
    CHECK_OK(gguf_writer_add_tensor(w, "t", GGML_TYPE_F16, 1, (int64_t[]){4}));
    CHECK_OK(gguf_writer_add_tensor(w, "v", GGML_TYPE_F32, 1, (int64_t[]){1}));
    CHECK_OK(gguf_writer_write(w, data, 8));
    CHECK_FAILS(gguf_writer_finish(w, CANVAS_OK), CANVAS_ERR_USAGE, "tensor 'v' has 0 of its 4 bytes");
    CHECK_OK(gguf_writer_create(path, &w));
    CHECK_OK(gguf_writer_add_tensor(w, "t", GGML_TYPE_F16, 1, (int64_t[]){4}));
    CHECK_FAILS(gguf_writer_write(w, data, 9), CANVAS_ERR_USAGE, "more tensor data than the 1 tensors");
    CHECK_FAILS(gguf_writer_write(w, data, 1), CANVAS_ERR_USAGE, "more tensor data"); /* stays failed */
    CHECK_FAILS(gguf_writer_finish(w, CANVAS_OK), CANVAS_ERR_USAGE, "more tensor data");
    /* a caller's own failure: the file is dropped */
    CHECK_OK(gguf_writer_create(path, &w));
    CHECK_OK(gguf_writer_add_tensor(w, "t", GGML_TYPE_F16, 1, (int64_t[]){4}));
    CHECK_OK(gguf_writer_write(w, data, 8));
    CHECK(gguf_writer_finish(w, CANVAS_ERR_INPUT) == CANVAS_ERR_INPUT);
    CHECK(files_in_dir() == 0);
    CHECK(gguf_writer_finish(NULL, CANVAS_ERR_IO) == CANVAS_ERR_IO);

    /* a link at the path is not written through */
    in_dir(link_path, sizeof link_path, "link.gguf");
    CHECK(symlink("/nonexistent/target.gguf", link_path) == 0);
    CHECK_OK(gguf_writer_create(link_path, &w));
    CHECK(gguf_writer_finish(w, CANVAS_OK) != CANVAS_OK);
    CHECK(files_in_dir() == 1);
    unlink(link_path);
    /* a folder that is not there */
    in_dir(path, sizeof path, "no/such/folder.gguf");
    CHECK_OK(gguf_writer_create(path, &w));
    CHECK(gguf_writer_finish(w, CANVAS_OK) != CANVAS_OK);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/canvas_gguf_write_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_round_trip);
    RUN(test_refusals);
    rmdir(dir);
    return check_summary();
}
