/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_shard_index.c — a component folder's *.safetensors.index.json (io/model_dir.h),
 * next to two small valid shards a.safetensors (tensors x, y) and b.safetensors (z). */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "io/model_dir.h"

static int write_shard(const char *name, const char *const *tensors, int n)
{
    float values[4] = {1, 2, 3, 4};
    st_write_tensor list[2];
    for (int i = 0; i < n; i++)
        list[i] = (st_write_tensor){.name = tensors[i], .type = DTYPE_F32, .ndim = 1, .shape = {4}, .data = values};
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return st_write(path, list, n, NULL, 0) == CANVAS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        const char *a[] = {"x", "y"}, *b[] = {"z"};
        if (!fuzz_dir() || !write_shard("a.safetensors", a, 2) || !write_shard("b.safetensors", b, 1)) return 0;
        ready = 1;
    }
    if (!fuzz_file("model.safetensors.index.json", data, size)) return 0;
    weight_set *set = NULL;
    if (weights_open(fuzz_dir(), &set) != CANVAS_OK) return 0;
    for (int i = 0; i < set->n_tensors; i++)
        if (weights_find(set, set->tensors[i]->name) != set->tensors[i]) __builtin_trap();
    weights_close(set);
    return 0;
}
