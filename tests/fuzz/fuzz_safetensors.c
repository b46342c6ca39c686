/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_safetensors.c — a .safetensors file: header, spans, metadata (io/safetensors.h). */
#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("input.safetensors", data, size);
    st_file *file = NULL;
    if (!path || st_open(path, &file) != CANVAS_OK) return 0;
    /* What callers do next: look every tensor up by name, count, read the metadata. */
    for (int i = 0; i < file->n_tensors; i++) {
        const st_tensor *t = st_find(file, file->tensors[i].name);
        if (t != &file->tensors[i] || st_numel(t) * dtype_size(t->type) != t->nbytes) __builtin_trap();
    }
    (void)st_metadata(file, "format");
    st_close(file);
    return 0;
}
