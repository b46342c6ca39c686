/* SPDX-License-Identifier: Apache-2.0 */
/* test_model_dir.c — component weight folders: single files, sharded indexes, and
 * indexes that disagree with their shards. Counts come from reading the golden index
 * with jansson here, never from numbers typed into the test. Broken folders are built
 * in a temporary folder (mkdtemp under /tmp) that is removed at the end. */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/json_file.h"
#include "io/model_dir.h"
#include "mem/mem.h"

#define INDEX_NAME "diffusion_pytorch_model.safetensors.index.json"

static char temp_root[64];
static int temp_counter;

/* ---- helpers --------------------------------------------------------------------- */

/* Index of the file of `set` whose map holds t's bytes, or -1. */
static int file_of(const weight_set *set, const st_tensor *t)
{
    for (int f = 0; f < set->n_files; f++) {
        const unsigned char *begin = set->files[f]->map, *data = t->data;
        if (data >= begin && data + t->nbytes <= begin + set->files[f]->map_bytes) return f;
    }
    return -1;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void new_folder(char *dir, size_t size)
{
    snprintf(dir, size, "%s/c%d", temp_root, temp_counter++);
    CHECK(mkdir(dir, 0755) == 0);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    if (in && out) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    }
    if (in) fclose(in);
    if (out) fclose(out);
}

/* The golden sharded transformer's index, parsed. */
static json_t *golden_index(void)
{
    char path[512];
    json_error_t error;
    json_t *root = json_load_file(test_path(path, sizeof path, "golden/models/dit-tiny/transformer/" INDEX_NAME), 0,
                                  &error);
    CHECK_MSG(root != NULL, "%s: %s", path, error.text);
    return root;
}

/* A folder holding copies of the golden shards and `index` as its index. */
static void folder_with_index(char *dir, size_t size, json_t *index)
{
    char golden[512], from[700], to[700];
    new_folder(dir, size);
    test_path(golden, sizeof golden, "golden/models/dit-tiny/transformer");
    static const char *const shards[] = {"diffusion_pytorch_model-00001-of-00002.safetensors",
                                         "diffusion_pytorch_model-00002-of-00002.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", golden, shards[i]);
        snprintf(to, sizeof to, "%s/%s", dir, shards[i]);
        copy_file(from, to);
    }
    snprintf(to, sizeof to, "%s/%s", dir, INDEX_NAME);
    CHECK(json_dump_file(index, to, JSON_INDENT(1)) == 0);
}

/* weights_open on `dir` must fail with bad input, a message naming `needle1` and
 * `needle2`, and free everything it built. */
static void check_open_fails(const char *dir, const char *needle1, const char *needle2)
{
    size_t before = mem_total_current();
    weight_set *set = (weight_set *)&set;
    canvas_status status = weights_open(dir, &set);
    const char *message = canvas_last_error();
    CHECK_MSG(status == CANVAS_ERR_INPUT, "%s: got %s \"%s\"", dir, canvas_status_name(status), message);
    CHECK(set == NULL);
    CHECK_MSG(strstr(message, needle1) && strstr(message, needle2), "message lacks \"%s\" / \"%s\": %s", needle1,
              needle2, message);
    CHECK(mem_total_current() == before);
    if (status == CANVAS_OK) weights_close(set);
}

/* ---- golden folders -------------------------------------------------------------- */

static void test_sharded_golden(void)
{
    char dir[512];
    test_path(dir, sizeof dir, "golden/models/dit-tiny/transformer");
    json_t *index = golden_index();
    if (!index) return;
    json_t *weight_map = json_object_get(index, "weight_map");
    json_t *total_size = json_object_get(json_object_get(index, "metadata"), "total_size");
    /* Distinct shard names, derived from the index. */
    const char *shards[16];
    int n_shards = 0;
    const char *name;
    json_t *shard;
    json_object_foreach(weight_map, name, shard) {
        int seen = 0;
        for (int i = 0; i < n_shards; i++) seen |= strcmp(shards[i], json_string_value(shard)) == 0;
        if (!seen && n_shards < 16) shards[n_shards++] = json_string_value(shard);
    }

    size_t before = mem_total_current();
    CHECK(weights_present(dir) == 1);
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (set) {
        CHECK(set->n_tensors == (int)json_object_size(weight_map));
        CHECK(set->n_files == n_shards && n_shards >= 2);
        for (int i = 1; i < set->n_tensors; i++) CHECK(strcmp(set->tensors[i - 1]->name, set->tensors[i]->name) < 0);
        uint64_t sum = 0;
        for (int i = 0; i < set->n_tensors; i++) sum += set->tensors[i]->nbytes;
        CHECK(set->stored_bytes == sum);
        if (json_is_integer(total_size)) CHECK(set->stored_bytes == (uint64_t)json_integer_value(total_size));
        int misplaced = 0, missing = 0;
        json_object_foreach(weight_map, name, shard) {
            const st_tensor *t = weights_find(set, name);
            if (!t) {
                missing++;
                continue;
            }
            int f = file_of(set, t);
            misplaced += f < 0 || strcmp(base_name(set->files[f]->path), json_string_value(shard)) != 0;
        }
        CHECK(missing == 0 && misplaced == 0);
        CHECK(weights_find(set, "no.such.tensor") == NULL);
        CHECK(weights_find(set, "") == NULL);
        weights_close(set);
    }
    CHECK(mem_total_current() == before);
    json_decref(index);
}

static void test_single_golden(void)
{
    char dir[512], file_path[600];
    test_path(dir, sizeof dir, "golden/models/vae-tiny/vae");
    snprintf(file_path, sizeof file_path, "%s/diffusion_pytorch_model.safetensors", dir);
    st_file *file = NULL;
    CHECK_OK(st_open(file_path, &file));
    if (!file) return;
    CHECK(weights_present(dir) == 1);
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (set) {
        CHECK(set->n_files == 1 && set->n_tensors == file->n_tensors);
        uint64_t sum = 0;
        for (int i = 0; i < file->n_tensors; i++) {
            const st_tensor *t = weights_find(set, file->tensors[i].name);
            CHECK(t != NULL && t->nbytes == file->tensors[i].nbytes && t->type == file->tensors[i].type);
            sum += file->tensors[i].nbytes;
        }
        CHECK(set->stored_bytes == sum);
        CHECK(strcmp(set->dir, dir) == 0);
        weights_close(set);
    }
    st_close(file);
}

static void test_no_weights(void)
{
    char dir[512];
    test_path(dir, sizeof dir, "golden/models/edit-tiny/scheduler");
    CHECK(weights_present(dir) == 0);
    check_open_fails(dir, dir, "no weights");
    CHECK(weights_present("/nonexistent/folder") == 0);
    check_open_fails("/nonexistent/folder", "/nonexistent/folder", "no weights");
}

/* ---- folders the test builds ------------------------------------------------------ */

static void test_transformers_names_and_preference(void)
{
    char dir[256], path[400];
    float values[3] = {1, 2, 3};
    st_write_tensor t = {"lm_head.weight", DTYPE_F32, 1, {3}, values};
    new_folder(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(st_write(path, &t, 1, NULL, 0));
    CHECK(weights_present(dir) == 1);
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (set) {
        const st_tensor *found = weights_find(set, "lm_head.weight");
        CHECK(found && found->nbytes == 12 && memcmp(found->data, values, 12) == 0);
        weights_close(set);
    }
    /* With an index next to a single file, the index wins (as in diffusers). */
    json_t *index = golden_index();
    if (!index) return;
    folder_with_index(dir, sizeof dir, index);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    CHECK_OK(st_write(path, &t, 1, NULL, 0));
    CHECK_OK(weights_open(dir, &set));
    if (set) {
        CHECK(set->n_files == 2 && weights_find(set, "lm_head.weight") == NULL);
        CHECK(set->n_tensors == (int)json_object_size(json_object_get(index, "weight_map")));
        weights_close(set);
    }
    json_decref(index);
}

/* Each broken index: the golden one with one change. */
static void test_broken_indexes(void)
{
    char dir[256];
    json_t *golden = golden_index();
    if (!golden) return;
    const char *first_name = NULL, *first_shard = NULL;
    json_t *weight_map = json_object_get(golden, "weight_map");
    void *iter = json_object_iter(weight_map);
    first_name = json_object_iter_key(iter);
    first_shard = json_string_value(json_object_iter_value(iter));

    /* A listed shard that does not exist. */
    json_t *index = json_deep_copy(golden);
    json_object_set_new(json_object_get(index, "weight_map"), first_name,
                        json_string("diffusion_pytorch_model-00003-of-00002.safetensors"));
    folder_with_index(dir, sizeof dir, index);
    check_open_fails(dir, "diffusion_pytorch_model-00003-of-00002.safetensors", "cannot open");
    json_decref(index);

    /* A listed tensor that its shard does not hold. */
    index = json_deep_copy(golden);
    json_object_set_new(json_object_get(index, "weight_map"), "ghost.weight", json_string(first_shard));
    folder_with_index(dir, sizeof dir, index);
    check_open_fails(dir, "'ghost.weight'", "does not hold it");
    json_decref(index);

    /* A stored tensor the index does not list. */
    index = json_deep_copy(golden);
    json_object_del(json_object_get(index, "weight_map"), first_name);
    folder_with_index(dir, sizeof dir, index);
    char quoted[256];
    snprintf(quoted, sizeof quoted, "'%s'", first_name);
    check_open_fails(dir, quoted, "not listed in the index");
    json_decref(index);

    /* Shard names that leave the folder. */
    static const char *const escaping[] = {"../diffusion_pytorch_model-00001-of-00002.safetensors",
                                           "sub/x.safetensors", "/etc/passwd", "..", ""};
    for (size_t i = 0; i < sizeof escaping / sizeof escaping[0]; i++) {
        index = json_deep_copy(golden);
        json_object_set_new(json_object_get(index, "weight_map"), first_name, json_string(escaping[i]));
        folder_with_index(dir, sizeof dir, index);
        check_open_fails(dir, INDEX_NAME, "not a plain file name");
        json_decref(index);
    }

    /* No weight_map, an empty one, a non-string shard, and bad JSON. */
    index = json_pack("{s:{s:i}}", "metadata", "total_size", 0);
    folder_with_index(dir, sizeof dir, index);
    check_open_fails(dir, INDEX_NAME, "weight_map");
    json_decref(index);
    index = json_pack("{s:{}}", "weight_map");
    folder_with_index(dir, sizeof dir, index);
    check_open_fails(dir, INDEX_NAME, "lists no tensors");
    json_decref(index);
    index = json_deep_copy(golden);
    json_object_set_new(json_object_get(index, "weight_map"), first_name, json_integer(1));
    folder_with_index(dir, sizeof dir, index);
    check_open_fails(dir, quoted, "not a file name");
    json_decref(index);
    folder_with_index(dir, sizeof dir, golden);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, INDEX_NAME);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"weight_map\": {", f);
        fclose(f);
    }
    check_open_fails(dir, INDEX_NAME, "bad JSON");
    json_decref(golden);
}

/* Two shards that both store "shared": whichever the index names, the other is wrong. */
static void test_tensor_in_two_shards(void)
{
    char dir[256], path[400];
    float a[2] = {1, 2}, b[2] = {3, 4};
    st_write_tensor first[2] = {{"a", DTYPE_F32, 1, {2}, a}, {"shared", DTYPE_F32, 1, {2}, a}};
    st_write_tensor second[2] = {{"b", DTYPE_F32, 1, {2}, b}, {"shared", DTYPE_F32, 1, {2}, b}};
    new_folder(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    CHECK_OK(st_write(path, first, 2, NULL, 0));
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    CHECK_OK(st_write(path, second, 2, NULL, 0));
    json_t *index = json_pack("{s:{s:s,s:s,s:s}}", "weight_map", "a", "model-00001-of-00002.safetensors", "b",
                              "model-00002-of-00002.safetensors", "shared", "model-00001-of-00002.safetensors");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(json_dump_file(index, path, 0) == 0);
    check_open_fails(dir, "'shared'", "stored in both");
    /* Without the duplicate the same layout opens. */
    second[1].name = "c";
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    CHECK_OK(st_write(path, second, 2, NULL, 0));
    json_object_set_new(json_object_get(index, "weight_map"), "c", json_string("model-00002-of-00002.safetensors"));
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(json_dump_file(index, path, 0) == 0);
    weight_set *set = NULL;
    CHECK_OK(weights_open(dir, &set));
    if (set) {
        CHECK(set->n_files == 2 && set->n_tensors == 4 && set->stored_bytes == 32);
        const st_tensor *c = weights_find(set, "c");
        CHECK(c && ((const float *)c->data)[1] == 4.0f);
        weights_close(set);
    }
    json_decref(index);
}

/* A shard that is itself malformed: the shard's own error comes through. */
static void test_malformed_shard(void)
{
    char dir[256], path[400];
    json_t *golden = golden_index();
    if (!golden) return;
    folder_with_index(dir, sizeof dir, golden);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model-00002-of-00002.safetensors", dir);
    CHECK(truncate(path, 100) == 0);
    check_open_fails(dir, "diffusion_pytorch_model-00002-of-00002.safetensors", "runs past the end");
    json_decref(golden);
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
    (void)info;
    (void)flag;
    (void)walk;
    return remove(path);
}

int main(void)
{
    snprintf(temp_root, sizeof temp_root, "/tmp/canvas_test_model_dir_XXXXXX");
    if (!mkdtemp(temp_root)) {
        perror("mkdtemp");
        return 1;
    }
    /* jansson's allocator is process-wide and the library switches it to mem/ on first
     * use; switch before the test makes JSON of its own, so that every value is freed
     * by the allocator that made it. */
    json_use_canvas_allocator();
    RUN(test_sharded_golden);
    RUN(test_single_golden);
    RUN(test_no_weights);
    RUN(test_transformers_names_and_preference);
    RUN(test_broken_indexes);
    RUN(test_tensor_in_two_shards);
    RUN(test_malformed_shard);
    CHECK(nftw(temp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return check_summary();
}
