/* SPDX-License-Identifier: Apache-2.0 */
/* convert_gguf.c — the transformer as one GGUF file (cli/convert_gguf.h). */
#include "cli/convert_gguf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "cli/convert_comfy.h"
#include "cli/stop_signal.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "mem/mem.h"
#include "tensor/ggml_blocks.h"
#include "tensor/ggml_quantize.h"

#define MARKER "__index_timestep_zero__"
#define NOT_STORABLE UINT32_MAX

int convert_gguf_type(const char *name, uint32_t *ggml_type)
{
    for (uint32_t code = 0; code < GGUF_TYPE_CODES; code++) {
        if (!ggml_type_supported(code)) continue;
        char lower[16];
        const char *upper = ggml_type_name(code);
        size_t i = 0;
        for (; upper[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)upper[i]);
        lower[i] = '\0';
        if (!strcmp(name, lower)) {
            *ggml_type = code;
            return 1;
        }
    }
    return 0;
}

const char *convert_gguf_type_names(void)
{
    return "f32, f16, bf16, q8_0, q6_k, q5_k, q5_1, q5_0, q4_k, q4_1, q4_0, q3_k or q2_k";
}

static uint32_t stored_type(dtype t)
{
    return t == DTYPE_F32 ? GGML_TYPE_F32 : t == DTYPE_F16 ? GGML_TYPE_F16 : t == DTYPE_BF16 ? GGML_TYPE_BF16 : NOT_STORABLE;
}

/* What tensor t becomes (convert_gguf.h). */
static uint32_t planned_type(const st_tensor *t, uint32_t type)
{
    if (convert_block_matrix(t) && t->shape[1] % ggml_type_block_elements(type) == 0) return type;
    if (t->ndim == 1 && stored_type(t->type) != NOT_STORABLE) return GGML_TYPE_F32;
    return stored_type(t->type);
}

/* Tensor t's data as `type`, row by row (a row: its innermost dim), or as stored. */
static canvas_status write_tensor(gguf_writer *w, const st_tensor *t, uint32_t type)
{
    if (type == stored_type(t->type)) return gguf_writer_write(w, t->data, (size_t)t->nbytes);
    const int64_t width = t->shape[t->ndim - 1];
    if (width == 0) return CANVAS_OK;
    const int64_t rows = (int64_t)(t->nbytes / dtype_size(t->type)) / width;
    uint64_t row_bytes;
    TRY(ggml_type_bytes(type, (uint64_t)width, &row_bytes));
    float *row = NULL;
    void *blocks = NULL;
    canvas_status st = mem_alloc((void **)&row, (size_t)width * sizeof *row, MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc(&blocks, (size_t)row_bytes, MEM_SCRATCH);
    const size_t in_bytes = (size_t)width * dtype_size(t->type);
    for (int64_t r = 0; st == CANVAS_OK && r < rows; r++) {
        dtype_to_f32(t->type, (const char *)t->data + (size_t)r * in_bytes, row, (size_t)width);
        st = ggml_quantize_row((int)type, row, width, blocks);
        if (st != CANVAS_OK) st = status_wrap(st, "tensor '%s' row %lld: ", t->name, (long long)r);
        else st = gguf_writer_write(w, blocks, (size_t)row_bytes);
    }
    mem_free(blocks);
    mem_free(row);
    return st;
}

/* Every tensor of the file as planned: name, type and shape. */
static canvas_status check_written(const weight_set *files, const qwen_dit_config *config, uint32_t type, const char *path)
{
    gguf_file *file;
    TRY(gguf_open(path, &file));
    int expected = config->zero_cond_t != 0;
    canvas_status st = CANVAS_OK;
    for (int i = 0; st == CANVAS_OK && i < files->n_tensors; i++) {
        const st_tensor *t = files->tensors[i];
        if (!strcmp(t->name, MARKER)) continue;
        expected++;
        const gguf_tensor *g = gguf_find(file, t->name);
        if (!g || g->type != planned_type(t, type) || g->ndim != t->ndim ||
            memcmp(g->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) != 0)
            st = status_fail(CANVAS_ERR_INTERNAL, "%s: tensor '%s' read back otherwise than written", path, t->name);
    }
    if (st == CANVAS_OK && (file->n_tensors != expected || (config->zero_cond_t && !gguf_find(file, MARKER))))
        st = status_fail(CANVAS_ERR_INTERNAL, "%s: %d tensors read back, %d written", path, file->n_tensors, expected);
    gguf_close(file);
    return st;
}

canvas_status convert_write_gguf(const weight_set *files, const qwen_dit_config *config, uint32_t ggml_type,
                                 const char *out_path)
{
    gguf_writer *w;
    TRY(gguf_writer_create(out_path, &w));
    canvas_status st = gguf_writer_add_string(w, "general.architecture", "qwen_image");
    if (st == CANVAS_OK) st = gguf_writer_add_u32(w, "general.quantization_version", 2);
    if (st == CANVAS_OK) st = gguf_writer_add_string(w, "general.quantized_by", "canvas convert");
    for (int i = 0; st == CANVAS_OK && i < files->n_tensors; i++) {
        const st_tensor *t = files->tensors[i];
        uint32_t type = planned_type(t, ggml_type);
        if (!strcmp(t->name, MARKER)) continue;
        if (type == NOT_STORABLE)
            st = status_fail(CANVAS_ERR_INPUT, "tensor '%s': %s has no GGUF type here", t->name, dtype_name(t->type));
        else
            st = gguf_writer_add_tensor(w, t->name, type, t->ndim, t->shape);
    }
    if (st == CANVAS_OK && config->zero_cond_t) st = gguf_writer_add_tensor(w, MARKER, GGML_TYPE_F32, 1, (int64_t[]){0});
    for (int i = 0; st == CANVAS_OK && i < files->n_tensors; i++) {
        st = cli_check_stop("while converting the transformer");
        if (st == CANVAS_OK && strcmp(files->tensors[i]->name, MARKER) != 0)
            st = write_tensor(w, files->tensors[i], planned_type(files->tensors[i], ggml_type));
    }
    TRY(gguf_writer_finish(w, st));
    st = check_written(files, config, ggml_type, out_path);
    if (st != CANVAS_OK) remove(out_path);
    return st;
}
