/* SPDX-License-Identifier: Apache-2.0 */
/* test_gguf.c — the strict GGUF reader (io/gguf.h).
 *
 * tests/gguf/small.gguf (tools/gguf_vectors.py corpus) holds metadata of every value type,
 * nested arrays, general.alignment 64 and three tensors; every value is checked. The same
 * file cut short at every length must be refused, and so must each file of the malformed
 * corpus tests/gguf/bad/ (bad/expected.txt gives the phrase its message must hold): with
 * CANVAS_ERR_INPUT, a message starting with the path, nothing leaked, and `canvas inspect`
 * exiting 4. The ASan build of this test is what shows that no check reads outside the
 * file. */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"
#include "mem/mem.h"

static char temp_dir[64];

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(n > 0 ? (size_t)n : 1);
    *size = bytes && n > 0 && fread(bytes, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return bytes;
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data, 1, size, f) == size);
    if (f) fclose(f);
}

static const gguf_kv *kv_of(const gguf_file *file, const char *key, gguf_value_type type)
{
    const gguf_kv *kv = gguf_find_kv(file, key);
    CHECK_MSG(kv && kv->type == type, "%s: missing or not %s", key, gguf_value_type_name(type));
    return kv && kv->type == type ? kv : NULL;
}

static void check_small_metadata(const gguf_file *file)
{
    CHECK(file->version == 3 && file->alignment == 64 && file->n_kv == 15);
    const gguf_kv *kv;
    if ((kv = kv_of(file, "general.architecture", GGUF_STRING)))
        CHECK(kv->value.s.length == 10 && memcmp(kv->value.s.data, "qwen_image", 10) == 0);
    if ((kv = kv_of(file, "test.u8", GGUF_UINT8))) CHECK(kv->value.u == 200);
    if ((kv = kv_of(file, "test.i8", GGUF_INT8))) CHECK(kv->value.i == -100);
    if ((kv = kv_of(file, "test.u16", GGUF_UINT16))) CHECK(kv->value.u == 60000);
    if ((kv = kv_of(file, "test.i16", GGUF_INT16))) CHECK(kv->value.i == -30000);
    if ((kv = kv_of(file, "test.u32", GGUF_UINT32))) CHECK(kv->value.u == 4000000000u);
    if ((kv = kv_of(file, "test.i32", GGUF_INT32))) CHECK(kv->value.i == -2000000000);
    if ((kv = kv_of(file, "test.f32", GGUF_FLOAT32))) CHECK(kv->value.f == 0.15625);
    if ((kv = kv_of(file, "test.bool", GGUF_BOOL))) CHECK(kv->value.b == 1);
    if ((kv = kv_of(file, "test.u64", GGUF_UINT64))) CHECK(kv->value.u == ((uint64_t)1 << 63) + 5);
    if ((kv = kv_of(file, "test.i64", GGUF_INT64))) CHECK(kv->value.i == -((int64_t)1 << 62));
    if ((kv = kv_of(file, "test.f64", GGUF_FLOAT64))) CHECK(kv->value.f == -2.5);
    if ((kv = kv_of(file, "test.strings", GGUF_ARRAY))) {
        CHECK(kv->value.array.type == GGUF_STRING && kv->value.array.count == 3);
        /* the first element as stored: a u64 length 1, then "a" */
        CHECK(kv->value.array.data[0] == 1 && kv->value.array.data[8] == 'a');
    }
    if ((kv = kv_of(file, "test.nested", GGUF_ARRAY)))
        CHECK(kv->value.array.type == GGUF_ARRAY && kv->value.array.count == 3);
    CHECK(gguf_find_kv(file, "test.missing") == NULL);
}

static void check_small_tensors(const gguf_file *file, int header_only)
{
    CHECK(file->n_tensors == 3);
    const gguf_tensor *w = gguf_find(file, "blk.0.weight"), *b = gguf_find(file, "bias"), *e = gguf_find(file, "empty");
    CHECK(w && b && e && gguf_find(file, "missing") == NULL);
    if (!w || !b || !e) return;
    /* stored ne = {32, 2}: read outermost first */
    CHECK(w->type == GGML_TYPE_Q8_0 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 32);
    CHECK(w->nbytes == 68 && w->data_offset == 0 && gguf_numel(w) == 64);
    CHECK(b->type == GGML_TYPE_F32 && b->shape[0] == 2 && b->shape[1] == 3 && b->nbytes == 24 && b->data_offset == 128);
    CHECK(e->type == GGML_TYPE_F16 && e->shape[0] == 4 && e->shape[1] == 0 && e->nbytes == 0);
    CHECK(file->data_start % 64 == 0 && (header_only || file->data_start + 128 + 24 <= file->map_bytes));
    if (header_only) {
        CHECK(w->data == NULL && b->data == NULL);
        return;
    }
    CHECK(w->data == (const unsigned char *)file->map + file->data_start);
    float q8[64], f32[6];
    CHECK_OK(ggml_to_f32(w->type, w->data, q8, 64));
    CHECK(q8[0] == 0.0f && q8[31] == 31.0f && q8[32] == 0.0f && q8[33] == 0.5f * 1 && q8[63] == -0.5f * -31);
    CHECK_OK(ggml_to_f32(b->type, b->data, f32, 6));
    CHECK(f32[0] == 1.0f && f32[5] == -6.0f);
}

static void test_small_file(void)
{
    char path[512];
    gguf_file *file = NULL;
    CHECK_OK(gguf_open(test_path(path, sizeof path, "gguf/small.gguf"), &file));
    if (!file) return;
    check_small_metadata(file);
    check_small_tensors(file, 0);
    gguf_close(file);
}

/* The header alone (the data cut off) opens with gguf_open_header, not with gguf_open. */
static void test_header_only(void)
{
    char path[512], cut[128];
    size_t size = 0;
    unsigned char *bytes = read_whole(test_path(path, sizeof path, "gguf/small.gguf"), &size);
    CHECK(bytes && size > 0);
    if (!bytes) return;
    gguf_file *file = NULL;
    CHECK_OK(gguf_open_header(path, &file));
    uint64_t data_start = file ? file->data_start : 0;
    gguf_close(file);
    snprintf(cut, sizeof cut, "%s/header.gguf", temp_dir);
    write_bytes(cut, bytes, (size_t)data_start);
    file = NULL;
    CHECK_FAILS(gguf_open(cut, &file), CANVAS_ERR_INPUT, "tensor 'blk.0.weight': offset 0 + 68 bytes runs past the data area (0 bytes)");
    CHECK(file == NULL);
    CHECK_OK(gguf_open_header(cut, &file));
    if (file) {
        check_small_metadata(file);
        check_small_tensors(file, 1);
        gguf_close(file);
    }
    unlink(cut);
    free(bytes);
}

/* Every prefix of the valid file is refused, naming the file, without a leak. */
static void test_every_truncation(void)
{
    char path[512], cut[128];
    size_t size = 0;
    unsigned char *bytes = read_whole(test_path(path, sizeof path, "gguf/small.gguf"), &size);
    CHECK(bytes && size > 100);
    if (!bytes) return;
    snprintf(cut, sizeof cut, "%s/cut.gguf", temp_dir);
    int refused = 0;
    for (size_t n = 0; n < size; n++) {
        write_bytes(cut, bytes, n);
        gguf_file *file = NULL;
        size_t before = mem_total_current();
        canvas_status status = gguf_open(cut, &file);
        if (status == CANVAS_ERR_INPUT && file == NULL && strncmp(canvas_last_error(), cut, strlen(cut)) == 0 &&
            mem_total_current() == before)
            refused++;
        else
            CHECK_MSG(0, "cut at %zu: %s \"%s\"", n, canvas_status_name(status), canvas_last_error());
        gguf_close(file);
    }
    CHECK(refused == (int)size);
    unlink(cut);
    free(bytes);
}

/* Run `$CANVAS_CLI inspect FILE`, stdout into out_path (NULL: dropped); its exit code and
 * the first line of stderr. */
static int run_inspect(const char *cli, const char *file, const char *out_path, char *first_line, size_t size)
{
    char err_path[128];
    snprintf(err_path, sizeof err_path, "%s/inspect.stderr", temp_dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int out_fd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open("/dev/null", O_WRONLY);
        if (fd < 0 || out_fd < 0) _exit(127);
        dup2(fd, 2);
        dup2(out_fd, 1);
        execl(cli, cli, "inspect", file, (char *)NULL);
        _exit(127);
    }
    int wstatus = 0;
    if (pid < 0 || waitpid(pid, &wstatus, 0) != pid) return -1;
    first_line[0] = '\0';
    FILE *f = fopen(err_path, "r");
    if (f) {
        if (!fgets(first_line, (int)size, f)) first_line[0] = '\0';
        first_line[strcspn(first_line, "\n")] = '\0';
        fclose(f);
    }
    unlink(err_path);
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

static void check_bad_file(const char *path, const char *name, const char *phrase, const char *cli)
{
    gguf_file *file = (gguf_file *)&file; /* must come back NULL */
    size_t before = mem_total_current();
    canvas_status status = gguf_open(path, &file);
    const char *message = canvas_last_error();
    CHECK_MSG(status == CANVAS_ERR_INPUT, "%s: got %s \"%s\"", name, canvas_status_name(status), message);
    CHECK_MSG(file == NULL, "%s: out not cleared", name);
    CHECK_MSG(strncmp(message, path, strlen(path)) == 0, "%s: message does not start with the path: %s", name,
              message);
    CHECK_MSG(strstr(message, phrase) != NULL, "%s: message lacks \"%s\": %s", name, phrase, message);
    CHECK_MSG(mem_total_current() == before, "%s: a failed open leaked", name);
    if (status == CANVAS_OK) gguf_close(file);
    if (!cli) return;
    char first_line[1024];
    int code = run_inspect(cli, path, NULL, first_line, sizeof first_line);
    CHECK_MSG(code == 4, "%s: canvas inspect exit code %d (stderr: %s)", name, code, first_line);
    CHECK_MSG(strstr(first_line, name) != NULL, "%s: canvas inspect's first stderr line does not name it: %s", name,
              first_line);
}

static void test_malformed_corpus(void)
{
    const char *cli = getenv("CANVAS_CLI");
    if (!cli || access(cli, X_OK) != 0) {
        fprintf(stderr, "note: CANVAS_CLI not set or not executable; CLI checks skipped\n");
        cli = NULL;
    }
    char manifest[512], line[512];
    FILE *f = fopen(test_path(manifest, sizeof manifest, "gguf/bad/expected.txt"), "r");
    CHECK(f != NULL);
    if (!f) return;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        CHECK_MSG(tab != NULL, "bad manifest line: %s", line);
        if (!tab) continue;
        *tab = '\0';
        char relative[600], path[800];
        snprintf(relative, sizeof relative, "gguf/bad/%s", line);
        check_bad_file(test_path(path, sizeof path, relative), line, tab + 1, cli);
        n++;
    }
    fclose(f);
    CHECK(n >= 40);
}

/* `canvas inspect small.gguf` lists what the file holds. */
static void test_inspect_cli(void)
{
    const char *cli = getenv("CANVAS_CLI");
    if (!cli || access(cli, X_OK) != 0) return; /* noted by test_malformed_corpus */
    char path[512], out_path[128], first_line[1024];
    snprintf(out_path, sizeof out_path, "%s/inspect.stdout", temp_dir);
    int code = run_inspect(cli, test_path(path, sizeof path, "gguf/small.gguf"), out_path, first_line,
                           sizeof first_line);
    CHECK_MSG(code == 0, "canvas inspect small.gguf: exit %d (%s)", code, first_line);
    size_t size = 0;
    char *text = (char *)read_whole(out_path, &size);
    CHECK(text && size > 0);
    if (text) {
        text[size - 1] = '\0';
        CHECK(strstr(text, "GGUF v3, 3 tensors, 15 metadata entries, alignment 64, 896 bytes") != NULL);
        CHECK(strstr(text, "architecture: qwen_image") != NULL);
        const char *row = strstr(text, "\nblk.0.weight ");
        CHECK_MSG(row && strstr(row, "Q8_0") && strstr(row, "[2, 32]") && strstr(row, " 68\n"), "%s", text);
    }
    free(text);
    unlink(out_path);
}

/* The smallest valid file: the fixed header, nothing else. */
static void test_empty_file(void)
{
    static const unsigned char bytes[24] = {'G', 'G', 'U', 'F', 3};
    char path[128];
    snprintf(path, sizeof path, "%s/empty.gguf", temp_dir);
    write_bytes(path, bytes, sizeof bytes);
    gguf_file *file = NULL;
    CHECK_OK(gguf_open(path, &file));
    CHECK(file && file->n_tensors == 0 && file->n_kv == 0 && file->alignment == 32 && file->data_start == 32);
    if (file) CHECK(gguf_find(file, "x") == NULL && gguf_find_kv(file, "x") == NULL);
    gguf_close(file);
    unlink(path);
}

/* Counts one over the caps are refused from the fixed header, before any table is made (a
 * header claiming a million small tensors would otherwise cost hundreds of MB of tables). */
static void test_count_caps(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/caps.gguf", temp_dir);
    for (int keys = 0; keys < 2; keys++) {
        unsigned char bytes[24] = {'G', 'G', 'U', 'F', 3};
        const uint64_t count = (keys ? GGUF_MAX_KEYS : GGUF_MAX_TENSORS) + 1;
        for (int b = 0; b < 8; b++) bytes[(keys ? 16 : 8) + b] = (unsigned char)(count >> (8 * b));
        write_bytes(path, bytes, sizeof bytes);
        gguf_file *file = NULL;
        CHECK_FAILS(gguf_open(path, &file), CANVAS_ERR_INPUT, keys ? "metadata count 65537: more keys than the 65536"
                                                                    : "tensor count 65537: more tensors than the 65536");
        CHECK(file == NULL);
    }
    unlink(path);
}

static void test_not_a_file(void)
{
    char path[256];
    gguf_file *file = NULL;
    snprintf(path, sizeof path, "%s/does_not_exist.gguf", temp_dir);
    CHECK_FAILS(gguf_open(path, &file), CANVAS_ERR_INPUT, "does_not_exist.gguf: cannot open");
    CHECK_FAILS(gguf_open(temp_dir, &file), CANVAS_ERR_INPUT, "not a regular file");
    CHECK(file == NULL);
}

/* The planner's summary: per type, per block. */
static void test_summary(void)
{
    char path[512];
    gguf_file *file = NULL;
    CHECK_OK(gguf_open_header(test_path(path, sizeof path, "gguf/small.gguf"), &file));
    if (!file) return;
    gguf_weight_summary s;
    CHECK_OK(gguf_summarize(file, "blk.", &s));
    CHECK(s.params == 70 && s.stored_bytes == 92 && s.n_blocks == 1 && s.block_bytes_max == 68);
    CHECK(s.block_bytes_total == 68 && s.other_bytes == 24);
    CHECK(s.tensors_by_type[GGML_TYPE_Q8_0] == 1 && s.bytes_by_type[GGML_TYPE_F32] == 24);
    CHECK(s.params_by_type[GGML_TYPE_F16] == 0 && s.tensors_by_type[GGML_TYPE_F16] == 1);
    CHECK_OK(gguf_summarize(file, "transformer_blocks.", &s));
    CHECK(s.n_blocks == 0 && s.other_bytes == 92);
    gguf_close(file);
}

/* The byte counts the planner uses. */
static void test_type_bytes(void)
{
    uint64_t bytes = 1;
    CHECK_OK(ggml_type_bytes(GGML_TYPE_Q4_K, 3072 * 3072, &bytes));
    CHECK(bytes == 3072ull * 3072 / 256 * 144);
    CHECK_OK(ggml_type_bytes(GGML_TYPE_Q8_0, 64, &bytes));
    CHECK(bytes == 68);
    CHECK_OK(ggml_type_bytes(GGML_TYPE_BF16, 0, &bytes));
    CHECK(bytes == 0);
    CHECK_FAILS(ggml_type_bytes(GGML_TYPE_Q6_K, 100, &bytes), CANVAS_ERR_INPUT, "Q6_K: 100 elements");
    CHECK_FAILS(ggml_type_bytes(GGML_TYPE_F32, UINT64_MAX / 2, &bytes), CANVAS_ERR_INPUT, "overflow");
    CHECK_FAILS(ggml_type_bytes(16, 256, &bytes), CANVAS_ERR_INPUT, "IQ2_XXS");
    CHECK(ggml_type_supported(GGML_TYPE_Q5_1) && !ggml_type_supported(9) && !ggml_type_supported(1000));
    CHECK(strcmp(ggml_type_name(GGML_TYPE_Q3_K), "Q3_K") == 0 && ggml_type_name(4) == NULL);
}

int main(void)
{
    snprintf(temp_dir, sizeof temp_dir, "/tmp/canvas_test_gguf_XXXXXX");
    if (!mkdtemp(temp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_small_file);
    RUN(test_header_only);
    RUN(test_every_truncation);
    RUN(test_malformed_corpus);
    RUN(test_inspect_cli);
    RUN(test_empty_file);
    RUN(test_count_caps);
    RUN(test_not_a_file);
    RUN(test_summary);
    RUN(test_type_bytes);
    CHECK_MSG(rmdir(temp_dir) == 0, "temp folder %s not empty at the end", temp_dir);
    return check_summary();
}
