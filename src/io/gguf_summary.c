/* SPDX-License-Identifier: Apache-2.0 */
/* gguf_summary.c — what a GGUF checkpoint weighs, per type and per block (gguf.h). */
#include <string.h>

#include "base/status.h"
#include "io/gguf.h"
#include "mem/mem.h"

#define COMFY_PREFIX "model.diffusion_model."

/* The block index of "<prefix>N.<rest>" (after an optional ComfyUI prefix), or -1; -2 for an
 * index above GGUF_MAX_BLOCKS. */
static long block_index(const char *name, const char *prefix)
{
    if (strncmp(name, COMFY_PREFIX, strlen(COMFY_PREFIX)) == 0) name += strlen(COMFY_PREFIX);
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] < '0' || name[n] > '9') return -1;
    long index = 0;
    const char *p = name + n;
    for (; *p >= '0' && *p <= '9'; p++) {
        index = index * 10 + (*p - '0');
        if (index >= GGUF_MAX_BLOCKS) return -2;
    }
    return *p == '.' ? index : -1;
}

canvas_status gguf_summarize(const gguf_file *file, const char *block_prefix, gguf_weight_summary *out)
{
    memset(out, 0, sizeof *out);
    uint64_t *per_block;
    TRY(mem_calloc((void **)&per_block, GGUF_MAX_BLOCKS, sizeof *per_block, MEM_SCRATCH));
    for (int i = 0; i < file->n_tensors; i++) {
        const gguf_tensor *t = &file->tensors[i];
        /* sums of spans that lie in one file (or, header only, are each below 2^64): they
         * cannot wrap for a real file, and a header-only one is what the planner was given */
        out->params += gguf_numel(t);
        out->stored_bytes += t->nbytes;
        if ((unsigned)t->type < GGUF_TYPE_CODES) {
            out->bytes_by_type[t->type] += t->nbytes;
            out->params_by_type[t->type] += gguf_numel(t);
            out->tensors_by_type[t->type]++;
        }
        long b = block_index(t->name, block_prefix);
        if (b == -2) {
            mem_free(per_block);
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': block index at or above %d", file->path, t->name,
                               GGUF_MAX_BLOCKS);
        }
        if (b < 0) {
            out->other_bytes += t->nbytes;
            continue;
        }
        per_block[b] += t->nbytes;
        out->block_bytes_total += t->nbytes;
        if (b + 1 > out->n_blocks) out->n_blocks = (int)b + 1;
    }
    for (int b = 0; b < out->n_blocks; b++)
        if (per_block[b] > out->block_bytes_max) out->block_bytes_max = per_block[b];
    mem_free(per_block);
    return CANVAS_OK;
}
