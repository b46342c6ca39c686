/* SPDX-License-Identifier: Apache-2.0 */
/* test_safetensors.c — the strict reader and the writer.
 *
 * Round trips through files the test writes itself, then a corpus of malformed files
 * built byte by byte in a temporary folder: each must fail with CANVAS_ERR_INPUT and a
 * message that starts with the file's path and names the tensor concerned, both from
 * the library and from `canvas inspect FILE` (exit code 4, first stderr line naming
 * the file). The ASan build of this test is what shows that no check reads outside
 * the header (jansson gets exactly the header bytes). */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"
#include "mem/mem.h"

/* ---- a temporary folder and the files in it ------------------------------------- */

static char temp_dir[64];
static char created[64][256];
static int n_created;

static const char *temp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", temp_dir, name);
    return buf;
}

static void remember(const char *path)
{
    for (int i = 0; i < n_created; i++)
        if (strcmp(created[i], path) == 0) return;
    if (n_created < 64) snprintf(created[n_created++], sizeof created[0], "%s", path);
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, size, f) == size);
    fclose(f);
    remember(path);
}

/* A file with the given header text, header length field (or strlen when ~0) and
 * `data_bytes` bytes of data (value i & 0xFF). */
static void write_raw(const char *path, const char *header, uint64_t length_field, size_t data_bytes)
{
    size_t header_bytes = strlen(header);
    if (length_field == UINT64_MAX) length_field = header_bytes;
    size_t size = 8 + header_bytes + data_bytes;
    unsigned char *bytes = malloc(size);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(length_field >> (8 * i));
    memcpy(bytes + 8, header, header_bytes);
    for (size_t i = 0; i < data_bytes; i++) bytes[8 + header_bytes + i] = (unsigned char)i;
    write_bytes(path, bytes, size);
    free(bytes);
}

static int file_exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size ? *size : 1);
    if (fread(bytes, 1, *size, f) != *size) *size = 0;
    fclose(f);
    return bytes;
}

/* ---- round trips ----------------------------------------------------------------- */

/* Deterministic bytes for tensor k. */
static void fill_pattern(unsigned char *bytes, size_t n, int k)
{
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)(i * 31u + (unsigned)k * 7u + 1u);
}

static uint64_t expected_bytes(const st_write_tensor *t)
{
    uint64_t n = dtype_size(t->type);
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

static void test_round_trip_every_dtype(void)
{
    /* Every dtype, in an order that is not sorted by name, with a scalar, 0-sized dims,
     * odd sizes (so later tensors sit at unaligned offsets) and the maximum rank. */
    enum { N = DTYPE_COUNT + 4 };
    st_write_tensor tensors[N];
    unsigned char *buffers[N];
    memset(tensors, 0, sizeof tensors);
    static const char *const names[N] = {"z.f64", "y.f32", "x.f16", "w.bf16", "v.i64", "u.i32", "t.i16", "s.i8",
                                         "r.u8", "q.bool", "p.e4m3", "o.e5m2", "scalar", "empty", "empty.too",
                                         "rank8"};
    for (int k = 0; k < N; k++) {
        st_write_tensor *t = &tensors[k];
        t->name = names[k];
        t->type = k < DTYPE_COUNT ? (dtype)k : DTYPE_F32;
        t->ndim = 2;
        t->shape[0] = 3;
        t->shape[1] = k + 1;
    }
    tensors[DTYPE_COUNT].ndim = 0;                 /* scalar: one element */
    tensors[DTYPE_COUNT + 1].shape[1] = 0;          /* [3, 0] */
    tensors[DTYPE_COUNT + 2].type = DTYPE_BF16;
    tensors[DTYPE_COUNT + 2].ndim = 1;
    tensors[DTYPE_COUNT + 2].shape[0] = 0;          /* [0] */
    tensors[DTYPE_COUNT + 3].ndim = ST_MAX_DIMS;
    for (int d = 0; d < ST_MAX_DIMS; d++) tensors[DTYPE_COUNT + 3].shape[d] = d % 3 == 0 ? 2 : 1;
    for (int k = 0; k < N; k++) {
        size_t n = (size_t)expected_bytes(&tensors[k]);
        buffers[k] = malloc(n ? n : 1);
        fill_pattern(buffers[k], n, k);
        tensors[k].data = n ? buffers[k] : NULL;
    }
    st_metadata_entry metadata[2] = {{"format", "pt"}, {"note", "written by test_safetensors \"quoted\""}};

    char path[256], tmp[300];
    temp_path(path, sizeof path, "round_trip.safetensors");
    remember(path);
    size_t scratch_before = mem_total_current();
    CHECK_OK(st_write(path, tensors, N, metadata, 2));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!file_exists(tmp));

    st_file *file = NULL;
    CHECK_OK(st_open(path, &file));
    if (file) {
        CHECK(file->n_tensors == N);
        CHECK(file->data_start % 8 == 0);
        for (int i = 1; i < file->n_tensors; i++) CHECK(strcmp(file->tensors[i - 1].name, file->tensors[i].name) < 0);
        uint64_t offset = 0;
        for (int k = 0; k < N; k++) {
            const st_tensor *t = st_find(file, names[k]);
            CHECK_MSG(t != NULL, "%s missing", names[k]);
            if (!t) continue;
            CHECK(t->type == tensors[k].type);
            CHECK(t->ndim == tensors[k].ndim);
            for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == tensors[k].shape[d]);
            CHECK(t->nbytes == expected_bytes(&tensors[k]));
            CHECK(st_numel(t) * dtype_size(t->type) == t->nbytes);
            CHECK(t->data_offset == offset); /* packed in the order written */
            CHECK((const unsigned char *)t->data == (const unsigned char *)file->map + file->data_start + offset);
            CHECK(t->nbytes == 0 || memcmp(t->data, buffers[k], (size_t)t->nbytes) == 0);
            offset += t->nbytes;
        }
        CHECK(file->map_bytes == file->data_start + offset);
        CHECK(st_numel(st_find(file, "scalar")) == 1);
        CHECK(st_numel(st_find(file, "empty")) == 0);
        CHECK(st_find(file, "nope") == NULL);
        CHECK(st_find(file, "") == NULL);
        CHECK(file->n_metadata == 2);
        CHECK(st_metadata(file, "format") && strcmp(st_metadata(file, "format"), "pt") == 0);
        CHECK(st_metadata(file, "note") && strcmp(st_metadata(file, "note"), metadata[1].value) == 0);
        CHECK(st_metadata(file, "absent") == NULL);
        st_close(file);
    }
    CHECK(mem_total_current() == scratch_before); /* everything built by open is freed by close */

    /* The header on disk: length field multiple of 8, JSON then only spaces. */
    size_t size = 0;
    unsigned char *bytes = read_whole(path, &size);
    CHECK(bytes != NULL && size > 8);
    if (bytes && size > 8) {
        uint64_t header_bytes = 0;
        for (int i = 7; i >= 0; i--) header_bytes = (header_bytes << 8) | bytes[i];
        CHECK(header_bytes % 8 == 0 && header_bytes <= size - 8);
        size_t end = (size_t)header_bytes + 8;
        while (end > 8 && bytes[end - 1] == ' ') end--;
        CHECK(bytes[8] == '{' && bytes[end - 1] == '}');
        CHECK(8 + header_bytes - end < 8);
    }
    free(bytes);
    for (int k = 0; k < N; k++) free(buffers[k]);
}

static void test_empty_files(void)
{
    char path[256];
    st_file *file = NULL;
    CHECK_OK(st_write(temp_path(path, sizeof path, "no_tensors.safetensors"), NULL, 0, NULL, 0));
    remember(path);
    CHECK_OK(st_open(path, &file));
    if (file) {
        CHECK(file->n_tensors == 0 && file->n_metadata == 0 && st_find(file, "x") == NULL);
        st_close(file);
    }
    write_raw(temp_path(path, sizeof path, "bare_braces.safetensors"), "{}", UINT64_MAX, 0);
    CHECK_OK(st_open(path, &file));
    if (file) st_close(file);
    /* Only metadata, and only empty tensors. */
    write_raw(temp_path(path, sizeof path, "metadata_only.safetensors"), "{\"__metadata__\":{}}", UINT64_MAX, 0);
    CHECK_OK(st_open(path, &file));
    if (file) st_close(file);
    write_raw(temp_path(path, sizeof path, "all_empty.safetensors"),
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
              "\"b\":{\"dtype\":\"I8\",\"shape\":[4,0,9],\"data_offsets\":[0,0]}}",
              UINT64_MAX, 0);
    CHECK_OK(st_open(path, &file));
    if (file) {
        CHECK(file->n_tensors == 2 && st_find(file, "b") && st_find(file, "b")->nbytes == 0);
        st_close(file);
    }
}

/* Gaps between spans and unused bytes at the end are accepted (see safetensors.h). */
static void test_gaps_accepted(void)
{
    char path[256];
    st_file *file = NULL;
    write_raw(temp_path(path, sizeof path, "gaps.safetensors"),
              "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
              "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
              UINT64_MAX, 24);
    CHECK_OK(st_open(path, &file));
    if (file) {
        const st_tensor *a = st_find(file, "a");
        CHECK(a && ((const unsigned char *)a->data)[0] == 2 && ((const unsigned char *)a->data)[1] == 3);
        CHECK(file->tensors[0].name[0] == 'a'); /* sorted by name */
        st_close(file);
    }
}

static void test_write_errors(void)
{
    char path[256], tmp[300];
    float values[4] = {1, 2, 3, 4};
    st_write_tensor t[2] = {{"w", DTYPE_F32, 1, {4}, values}, {"w", DTYPE_F32, 1, {2}, values}};
    CHECK_FAILS(st_write(temp_path(path, sizeof path, "dup.safetensors"), t, 2, NULL, 0), CANVAS_ERR_USAGE,
                "duplicate tensor name");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!file_exists(path) && !file_exists(tmp));
    t[1].name = "__metadata__";
    CHECK_FAILS(st_write(path, t, 2, NULL, 0), CANVAS_ERR_USAGE, "__metadata__");
    t[1].name = "v";
    t[1].shape[0] = -1;
    CHECK_FAILS(st_write(path, t, 2, NULL, 0), CANVAS_ERR_USAGE, "'v'");
    t[1].shape[0] = 2;
    t[1].ndim = ST_MAX_DIMS + 1;
    CHECK_FAILS(st_write(path, t, 2, NULL, 0), CANVAS_ERR_USAGE, "dims");
    t[1].ndim = 1;
    t[1].data = NULL;
    CHECK_FAILS(st_write(path, t, 2, NULL, 0), CANVAS_ERR_USAGE, "no data");
    CHECK(!file_exists(path) && !file_exists(tmp));
    /* The folder does not exist: an I/O error, nothing left behind. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", temp_dir);
    CHECK_FAILS(st_write(missing, t, 1, NULL, 0), CANVAS_ERR_IO, "x.safetensors");
    /* The target is a folder: refused before anything is written (a device such as
     * /dev/null likewise: a rename would replace the node), no tmp file. */
    char folder[256];
    temp_path(folder, sizeof folder, "a_folder.safetensors");
    CHECK(mkdir(folder, 0755) == 0);
    CHECK_FAILS(st_write(folder, t, 1, NULL, 0), CANVAS_ERR_USAGE, "exists and is not a regular file");
    snprintf(tmp, sizeof tmp, "%s.tmp", folder);
    CHECK(!file_exists(tmp));
    rmdir(folder);
    /* A symbolic link there is refused too (the CLI's rule): the link and its target stay. */
    char target[256], link_path[256];
    temp_path(target, sizeof target, "link_target.safetensors");
    temp_path(link_path, sizeof link_path, "a_link.safetensors");
    CHECK_OK(st_write(target, t, 1, NULL, 0));
    CHECK(symlink(target, link_path) == 0);
    CHECK_FAILS(st_write(link_path, t, 1, NULL, 0), CANVAS_ERR_USAGE, "is a symbolic link");
    struct stat sb;
    CHECK(lstat(link_path, &sb) == 0 && S_ISLNK(sb.st_mode));
    unlink(link_path);
    unlink(target);
    /* Overwriting an existing file works and replaces it whole. */
    temp_path(path, sizeof path, "overwrite.safetensors");
    remember(path);
    CHECK_OK(st_write(path, t, 1, NULL, 0));
    t[0].shape[0] = 2;
    CHECK_OK(st_write(path, t, 1, NULL, 0));
    st_file *file = NULL;
    CHECK_OK(st_open(path, &file));
    if (file) {
        CHECK(file->n_tensors == 1 && file->tensors[0].shape[0] == 2 && file->map_bytes == file->data_start + 8);
        st_close(file);
    }
}

/* ---- the malformed corpus -------------------------------------------------------- */

typedef struct bad_case {
    const char *file;      /* name in the temp folder */
    const char *header;    /* NULL: raw bytes below */
    uint64_t length_field; /* UINT64_MAX: strlen(header) */
    size_t data_bytes;
    const char *tensor;    /* tensor the message must name ("" when none) */
    const char *needle;    /* the message must contain this too */
} bad_case;

#define E(dtype_, shape_, offsets_) "{\"dtype\":\"" dtype_ "\",\"shape\":" shape_ ",\"data_offsets\":" offsets_ "}"

static const bad_case bad_cases[] = {
    {"truncated_file.safetensors", NULL, 0, 0, "", "shorter than"},
    {"truncated_header.safetensors", "{\"a\":" E("F32", "[1]", "[0,4]") "}", 200, 0, "", "runs past the end"},
    {"huge_header.safetensors", "{}", (uint64_t)1 << 40, 0, "", "above the"},
    {"header_beyond_file.safetensors", "{}", 3, 0, "", "runs past the end"},
    {"offsets_out_of_range.safetensors", "{\"a.weight\":" E("F32", "[2]", "[4,12]") "}", UINT64_MAX, 8, "a.weight",
     "past the data area"},
    /* one byte past the end (the other overruns are 4 or more; an off-by-one went unseen) */
    {"one_byte_past.safetensors", "{\"a\":" E("U8", "[8]", "[1,9]") "}", UINT64_MAX, 8, "a", "past the data area"},
    {"overlapping.safetensors",
     "{\"a\":" E("F32", "[2]", "[0,8]") ",\"b\":" E("F32", "[2]", "[4,12]") "}", UINT64_MAX, 12, "b", "overlap"},
    {"overlap_inside.safetensors",
     "{\"big\":" E("U8", "[16]", "[0,16]") ",\"small\":" E("U8", "[2]", "[8,10]") "}", UINT64_MAX, 16, "small",
     "overlap"},
    {"bad_dtype.safetensors", "{\"w\":" E("F33", "[1]", "[0,4]") "}", UINT64_MAX, 4, "w", "unknown dtype \"F33\""},
    {"shape_mismatch.safetensors", "{\"x.weight\":" E("F32", "[2,2]", "[0,12]") "}", UINT64_MAX, 16, "x.weight",
     "span 12 bytes but shape [2, 2] of F32 needs 16"},
    {"bad_json.safetensors", "{\"a\": {\"dtype\": ", UINT64_MAX, 0, "", "not valid JSON"},
    {"not_object.safetensors", "[1, 2, 3]", UINT64_MAX, 0, "", "not a JSON object"},
    {"duplicate_names.safetensors", "{\"w\":" E("U8", "[1]", "[0,1]") ",\"w\":" E("U8", "[1]", "[1,2]") "}",
     UINT64_MAX, 2, "w", "duplicate tensor name"},
    {"negative_dim.safetensors", "{\"n\":" E("F32", "[-1]", "[0,0]") "}", UINT64_MAX, 0, "n", "shape dim 0"},
    {"fractional_dim.safetensors", "{\"f\":" E("F32", "[2.0]", "[0,8]") "}", UINT64_MAX, 8, "f", "shape dim 0"},
    {"too_many_dims.safetensors", "{\"deep\":" E("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", UINT64_MAX, 1, "deep",
     "9 dims"},
    {"metadata_not_strings.safetensors", "{\"__metadata__\":{\"epoch\":3}}", UINT64_MAX, 0, "epoch",
     "not a string"},
    {"metadata_not_object.safetensors", "{\"__metadata__\":\"x\"}", UINT64_MAX, 0, "", "__metadata__"},
    {"end_before_begin.safetensors", "{\"r\":" E("U8", "[0]", "[8,4]") "}", UINT64_MAX, 8, "r", "end before begin"},
    {"entry_not_object.safetensors", "{\"e\":[1,2]}", UINT64_MAX, 0, "e", "not an object"},
    {"missing_dtype.safetensors", "{\"m\":{\"shape\":[1],\"data_offsets\":[0,1]}}", UINT64_MAX, 1, "m",
     "missing \"dtype\""},
    {"dtype_not_string.safetensors", "{\"m\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", UINT64_MAX, 1,
     "m", "\"dtype\" is not a string"},
    {"shape_not_array.safetensors", "{\"s\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", UINT64_MAX, 1,
     "s", "\"shape\" is not an array"},
    {"missing_offsets.safetensors", "{\"o\":{\"dtype\":\"U8\",\"shape\":[1]}}", UINT64_MAX, 1, "o",
     "missing \"data_offsets\""},
    {"three_offsets.safetensors", "{\"o\":" E("U8", "[1]", "[0,1,2]") "}", UINT64_MAX, 2, "o", "pair"},
    {"negative_offset.safetensors", "{\"o\":" E("U8", "[1]", "[-1,0]") "}", UINT64_MAX, 2, "o", "pair"},
    {"shape_overflow.safetensors", "{\"huge\":" E("F32", "[4611686018427387904,4611686018427387904]", "[0,0]") "}",
     UINT64_MAX, 0, "huge", "overflow"},
    {"offset_huge.safetensors", "{\"h\":" E("U8", "[1]", "[9223372036854775806,9223372036854775807]") "}",
     UINT64_MAX, 0, "h", "past the data area"},
};

static void write_bad_case(const bad_case *c, char *path, size_t size)
{
    temp_path(path, size, c->file);
    if (c->header) write_raw(path, c->header, c->length_field, c->data_bytes);
    else write_bytes(path, "\x05\x00\x00", 3);
}

/* Run `$CANVAS_CLI inspect FILE`, return its exit code and the first line of stderr. */
static int run_inspect(const char *cli, const char *file, char *first_line, size_t size)
{
    char err_path[256];
    temp_path(err_path, sizeof err_path, "inspect.stderr");
    remember(err_path);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null_fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || null_fd < 0) _exit(127);
        dup2(fd, 2);
        dup2(null_fd, 1);
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
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

static void test_malformed_corpus(void)
{
    const char *cli = getenv("CANVAS_CLI");
    if (!cli || access(cli, X_OK) != 0) {
        fprintf(stderr, "note: CANVAS_CLI not set or not executable; CLI checks skipped\n");
        cli = NULL;
    }
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char path[256];
        write_bad_case(c, path, sizeof path);
        st_file *file = (st_file *)&file; /* must come back NULL */
        size_t scratch_before = mem_total_current();
        canvas_status status = st_open(path, &file);
        const char *message = canvas_last_error();
        CHECK_MSG(status == CANVAS_ERR_INPUT, "%s: got %s \"%s\"", c->file, canvas_status_name(status), message);
        CHECK_MSG(file == NULL, "%s: out not cleared", c->file);
        CHECK_MSG(strncmp(message, path, strlen(path)) == 0, "%s: message does not start with the path: %s", c->file,
                  message);
        CHECK_MSG(strstr(message, c->needle) != NULL, "%s: message lacks \"%s\": %s", c->file, c->needle, message);
        if (c->tensor[0]) {
            char quoted[128];
            snprintf(quoted, sizeof quoted, "'%s'", c->tensor);
            CHECK_MSG(strstr(message, quoted) != NULL, "%s: message does not name %s: %s", c->file, quoted, message);
        }
        CHECK_MSG(mem_total_current() == scratch_before, "%s: a failed open leaked", c->file);
        if (status == CANVAS_OK) st_close(file);
        if (!cli) continue;
        char first_line[1024];
        int code = run_inspect(cli, path, first_line, sizeof first_line);
        CHECK_MSG(code == 4, "%s: canvas inspect exit code %d (stderr: %s)", c->file, code, first_line);
        CHECK_MSG(strstr(first_line, c->file) != NULL, "%s: canvas inspect's first stderr line does not name it: %s",
                  c->file, first_line);
    }
}

/* Missing files and folders are bad input too, named in the message. */
static void test_not_a_file(void)
{
    char path[256];
    st_file *file = NULL;
    CHECK_FAILS(st_open(temp_path(path, sizeof path, "does_not_exist.safetensors"), &file), CANVAS_ERR_INPUT,
                "does_not_exist.safetensors: cannot open");
    CHECK_FAILS(st_open(temp_dir, &file), CANVAS_ERR_INPUT, "not a regular file");
    CHECK(file == NULL);
}

/* A real file from the golden set opens and agrees with its own layout. */
static void test_golden_file(void)
{
    char path[512];
    st_file *file = NULL;
    CHECK_OK(st_open(test_path(path, sizeof path, "golden/models/vae-tiny/vae/diffusion_pytorch_model.safetensors"),
                     &file));
    if (!file) return;
    CHECK(file->n_tensors > 0);
    uint64_t total = 0;
    for (int i = 0; i < file->n_tensors; i++) {
        const st_tensor *t = &file->tensors[i];
        CHECK(st_find(file, t->name) == t);
        CHECK(t->nbytes == st_numel(t) * dtype_size(t->type));
        total += t->nbytes;
    }
    CHECK(file->data_start + total <= file->map_bytes);
    st_close(file);
}

static void remove_temp_dir(void)
{
    for (int i = 0; i < n_created; i++) unlink(created[i]);
    CHECK_MSG(rmdir(temp_dir) == 0, "temp folder %s not empty at the end", temp_dir);
}

int main(void)
{
    snprintf(temp_dir, sizeof temp_dir, "/tmp/canvas_test_st_XXXXXX");
    if (!mkdtemp(temp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip_every_dtype);
    RUN(test_empty_files);
    RUN(test_gaps_accepted);
    RUN(test_write_errors);
    RUN(test_malformed_corpus);
    RUN(test_not_a_file);
    RUN(test_golden_file);
    remove_temp_dir();
    return check_summary();
}
