/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_gguf.c — a GGUF file: header, metadata, tensor infos, blocks (io/gguf.h). */
#include "fuzz.h"
#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("input.gguf", data, size);
    gguf_file *file = NULL;
    if (!path || gguf_open(path, &file) != CANVAS_OK) return 0;
    /* What callers do next: look every tensor and key up, count bytes, decode the data. */
    float out[1024];
    for (int i = 0; i < file->n_tensors; i++) {
        const gguf_tensor *t = gguf_find(file, file->tensors[i].name);
        uint64_t bytes = 0;
        if (t != &file->tensors[i] || ggml_type_bytes(t->type, gguf_numel(t), &bytes) != CANVAS_OK ||
            bytes != t->nbytes)
            __builtin_trap();
        uint32_t block = ggml_type_block_elements(t->type);
        uint64_t n = gguf_numel(t);
        if (n > sizeof out / sizeof out[0]) n = sizeof out / sizeof out[0] / block * block;
        if (ggml_to_f32(t->type, t->data, out, (size_t)n) != CANVAS_OK) __builtin_trap();
    }
    for (int i = 0; i < file->n_kv; i++)
        if (gguf_find_kv(file, file->kv[i].key) == NULL) __builtin_trap();
    gguf_close(file);
    return 0;
}
