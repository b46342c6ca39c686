/* SPDX-License-Identifier: Apache-2.0 */
/* model_dir.c — opening the weights of one component folder (single file or shards).
 *
 * Which file is used: an index (diffusers name first, then transformers name) when one
 * exists, else a single file (same order). diffusers itself prefers the index when
 * both are present, and so do we. Every shard is opened with the strict reader, then
 * the index and the shards are checked against each other in both directions, so a
 * tensor can only ever be found in the one file the index promises. */
#define _POSIX_C_SOURCE 200809L

#include "io/model_dir.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "base/status.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "mem/mem.h"

static const char *const index_names[] = {"diffusion_pytorch_model.safetensors.index.json",
                                          "model.safetensors.index.json"};
static const char *const single_names[] = {"diffusion_pytorch_model.safetensors", "model.safetensors"};
#define N_NAMES 2

/* ---- paths ----------------------------------------------------------------------- */

static int is_regular_file(const char *dir, const char *name)
{
    char path[PATH_BUFFER_SIZE];
    if (path_join(path, sizeof path, dir, name) != CANVAS_OK) {
        status_clear();
        return 0;
    }
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

static const char *first_present(const char *dir, const char *const *names)
{
    for (int i = 0; i < N_NAMES; i++)
        if (is_regular_file(dir, names[i])) return names[i];
    return NULL;
}

int weights_present(const char *component_dir)
{
    return first_present(component_dir, index_names) || first_present(component_dir, single_names);
}

/* A shard name from an index must name a file inside the folder itself. */
static int shard_name_safe(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strchr(name, '\\') == NULL &&
           strstr(name, "..") == NULL;
}

/* ---- the merged, sorted table ---------------------------------------------------- */

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

canvas_status weights_build_table(weight_set *set)
{
    int total = set->renamed ? set->n_renamed : 0;
    for (int f = 0; f < set->n_files && !set->renamed; f++) total += set->files[f]->n_tensors;
    TRY(mem_alloc((void **)&set->tensors, (size_t)(total ? total : 1) * sizeof *set->tensors, MEM_SCRATCH));
    for (int i = 0; i < set->n_renamed; i++) {
        set->tensors[set->n_tensors++] = &set->renamed[i];
        set->stored_bytes += set->renamed[i].nbytes;
    }
    for (int f = 0; f < set->n_files && !set->renamed; f++) {
        for (int i = 0; i < set->files[f]->n_tensors; i++) {
            const st_tensor *t = &set->files[f]->tensors[i];
            set->tensors[set->n_tensors++] = t;
            set->stored_bytes += t->nbytes;
        }
    }
    qsort(set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, compare_tensor_names);
    for (int i = 1; i < set->n_tensors; i++) /* folders: unreachable after the index checks; renamed: possible */
        if (strcmp(set->tensors[i - 1]->name, set->tensors[i]->name) == 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s' is stored twice", set->dir, set->tensors[i]->name);
    return CANVAS_OK;
}

/* ---- single file ----------------------------------------------------------------- */

static canvas_status open_single(weight_set *set, const char *file_name)
{
    char path[PATH_BUFFER_SIZE];
    TRY(path_join(path, sizeof path, set->dir, file_name));
    TRY(mem_alloc((void **)&set->files, sizeof *set->files, MEM_SCRATCH));
    TRY(st_open(path, &set->files[0]));
    set->n_files = 1;
    return CANVAS_OK;
}

/* ---- sharded --------------------------------------------------------------------- */

typedef struct shard_list {
    int count;
    const char **names;   /* point into the index JSON */
} shard_list;

static int shard_position(const shard_list *shards, const char *name)
{
    for (int i = 0; i < shards->count; i++)
        if (strcmp(shards->names[i], name) == 0) return i;
    return -1;
}

/* Distinct shard names in order of first appearance, each checked to stay in the folder. */
static canvas_status collect_shards(const char *index_path, json_t *weight_map, shard_list *shards)
{
    TRY(mem_alloc((void **)&shards->names, json_object_size(weight_map) * sizeof *shards->names, MEM_SCRATCH));
    const char *tensor;
    json_t *value;
    json_object_foreach(weight_map, tensor, value) {
        if (!json_is_string(value))
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': weight_map value is not a file name",
                               index_path, tensor);
        const char *shard = json_string_value(value);
        if (!shard_name_safe(shard))
            return status_fail(CANVAS_ERR_INPUT,
                               "%s: tensor '%s': shard '%s' is not a plain file name inside the folder",
                               index_path, tensor, shard);
        if (shard_position(shards, shard) < 0) shards->names[shards->count++] = shard;
    }
    return CANVAS_OK;
}

static canvas_status open_shards(weight_set *set, const shard_list *shards)
{
    TRY(mem_calloc((void **)&set->files, (size_t)shards->count, sizeof *set->files, MEM_SCRATCH));
    for (int i = 0; i < shards->count; i++) {
        char path[PATH_BUFFER_SIZE];
        TRY(path_join(path, sizeof path, set->dir, shards->names[i]));
        TRY(st_open(path, &set->files[i]));
        set->n_files++;
    }
    return CANVAS_OK;
}

/* Index -> shards: every listed tensor is in the shard named for it. */
static canvas_status check_listed_present(const weight_set *set, const char *index_path, json_t *weight_map,
                                          const shard_list *shards)
{
    const char *tensor;
    json_t *value;
    json_object_foreach(weight_map, tensor, value) {
        int shard = shard_position(shards, json_string_value(value));
        if (!st_find(set->files[shard], tensor))
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': listed in shard '%s', which does not hold it",
                               index_path, tensor, shards->names[shard]);
    }
    return CANVAS_OK;
}

/* Shards -> index: every stored tensor is listed, and listed for this very shard (so
 * no name is stored in two shards, since the listed one was checked to hold it). */
static canvas_status check_stored_listed(const weight_set *set, const char *index_path, json_t *weight_map,
                                         const shard_list *shards)
{
    for (int f = 0; f < set->n_files; f++) {
        const st_file *file = set->files[f];
        for (int i = 0; i < file->n_tensors; i++) {
            const char *name = file->tensors[i].name;
            json_t *listed = json_object_get(weight_map, name);
            if (!listed)
                return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': stored in shard '%s' but not listed in the index",
                                   index_path, name, shards->names[f]);
            if (strcmp(json_string_value(listed), shards->names[f]) != 0)
                return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': stored in both shard '%s' and shard '%s'",
                                   index_path, name, json_string_value(listed), shards->names[f]);
        }
    }
    return CANVAS_OK;
}

static canvas_status open_indexed_with(weight_set *set, const char *index_path, json_t *root, shard_list *shards)
{
    json_t *weight_map = json_object_get(root, "weight_map");
    if (!json_is_object(weight_map))
        return status_fail(CANVAS_ERR_INPUT, "%s: no \"weight_map\" object", index_path);
    if (json_object_size(weight_map) == 0)
        return status_fail(CANVAS_ERR_INPUT, "%s: \"weight_map\" lists no tensors", index_path);
    TRY(collect_shards(index_path, weight_map, shards));
    TRY(open_shards(set, shards));
    TRY(check_listed_present(set, index_path, weight_map, shards));
    return check_stored_listed(set, index_path, weight_map, shards);
}

static canvas_status open_indexed(weight_set *set, const char *index_name)
{
    char index_path[PATH_BUFFER_SIZE];
    TRY(path_join(index_path, sizeof index_path, set->dir, index_name));
    json_t *root = NULL;
    shard_list shards = {0, NULL};
    canvas_status status = json_file_load(index_path, &root);
    if (status == CANVAS_OK && !json_is_object(root))
        status = status_fail(CANVAS_ERR_INPUT, "%s: not a JSON object", index_path);
    if (status == CANVAS_OK) status = open_indexed_with(set, index_path, root, &shards);
    mem_free(shards.names);
    json_decref(root);
    return status;
}

/* ---- public ---------------------------------------------------------------------- */

canvas_status weights_open(const char *component_dir, weight_set **out)
{
    *out = NULL;
    weight_set *set;
    TRY(mem_calloc((void **)&set, 1, sizeof *set, MEM_SCRATCH));
    canvas_status status = mem_strdup(&set->dir, component_dir);
    if (status == CANVAS_OK) {
        const char *index_name = first_present(component_dir, index_names);
        const char *single_name = first_present(component_dir, single_names);
        if (index_name) status = open_indexed(set, index_name);
        else if (single_name) status = open_single(set, single_name);
        else
            status = status_fail(CANVAS_ERR_INPUT,
                                 "%s: no weights here (looked for %s, %s, %s and %s)", component_dir,
                                 index_names[0], index_names[1], single_names[0], single_names[1]);
    }
    if (status == CANVAS_OK) status = weights_build_table(set);
    if (status != CANVAS_OK) {
        weights_close(set);
        return status;
    }
    *out = set;
    return CANVAS_OK;
}

void weights_close(weight_set *set)
{
    if (!set) return;
    for (int f = 0; f < set->n_files; f++) st_close(set->files[f]);
    mem_free(set->files);
    mem_free(set->tensors);
    mem_free(set->renamed);
    mem_free(set->renamed_names);
    gguf_close(set->gguf);
    mem_free(set->dir);
    mem_free(set);
}

static int compare_name_to_entry(const void *name, const void *entry)
{
    return strcmp(name, (*(const st_tensor *const *)entry)->name);
}

const st_tensor *weights_find(const weight_set *set, const char *name)
{
    const st_tensor *const *found =
        bsearch(name, set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, compare_name_to_entry);
    return found ? *found : NULL;
}
