/* SPDX-License-Identifier: Apache-2.0 */
/* inspect_gguf.c — `canvas inspect FILE.gguf [--json]`: a GGUF checkpoint checked strictly
 * (io/gguf.h), then its totals per ggml type, its transformer blocks, and every tensor:
 * name, type, shape (outermost first), bytes. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "cli/commands.h"
#include "cli/inspect.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "mem/mem.h"
#include "text/unicode.h"

int inspect_is_gguf(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, ".gguf") == 0;
}

static const char *shape_text(const gguf_tensor *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* general.architecture when it is a string, else "" (written into buf, NUL-terminated). */
static const char *architecture(const gguf_file *file, char *buf, size_t size)
{
    const gguf_kv *kv = gguf_find_kv(file, "general.architecture");
    buf[0] = '\0';
    if (kv && kv->type == GGUF_STRING) {
        size_t n = kv->value.s.length < size - 1 ? (size_t)kv->value.s.length : size - 1;
        memcpy(buf, kv->value.s.data, n);
        buf[n] = '\0';
        if (memchr(buf, '\0', n) || !utf8_valid(buf)) buf[0] = '\0';
    }
    return buf;
}

static void print_table(const gguf_file *file, const gguf_weight_summary *s)
{
    char a[64], b[64], arch[64], shape[96];
    printf("%s: GGUF v%u, %d tensors, %d metadata entries, alignment %u, %s bytes\n", file->path, file->version,
           file->n_tensors, file->n_kv, file->alignment, inspect_commas(file->map_bytes, a, sizeof a));
    if (architecture(file, arch, sizeof arch)[0]) printf("architecture: %s\n", arch);
    printf("\n%-8s %8s %18s %18s %11s\n", "type", "tensors", "parameters", "bytes", "bits/param");
    for (int c = 0; c < GGUF_TYPE_CODES; c++) {
        if (!s->tensors_by_type[c]) continue;
        uint32_t block = ggml_type_block_elements((uint32_t)c);
        printf("%-8s %8d %18s %18s %11.4g\n", ggml_type_name((uint32_t)c), s->tensors_by_type[c],
               inspect_commas(s->params_by_type[c], a, sizeof a), inspect_commas(s->bytes_by_type[c], b, sizeof b),
               8.0 * ggml_type_block_bytes((uint32_t)c) / (double)block);
    }
    printf("%-8s %8d %18s %18s\n", "total", file->n_tensors, inspect_commas(s->params, a, sizeof a),
           inspect_commas(s->stored_bytes, b, sizeof b));
    if (s->n_blocks)
        printf("\ntransformer_blocks: %d, the largest %s bytes; outside the blocks %s bytes\n", s->n_blocks,
               inspect_commas(s->block_bytes_max, a, sizeof a), inspect_commas(s->other_bytes, b, sizeof b));
    printf("\n%-48s %-8s %-24s %15s\n", "tensor", "type", "shape", "bytes");
    for (int i = 0; i < file->n_tensors; i++) {
        const gguf_tensor *t = &file->tensors[i];
        printf("%-48s %-8s %-24s %15llu\n", t->name, ggml_type_name(t->type), shape_text(t, shape, sizeof shape),
               (unsigned long long)t->nbytes);
    }
}

static json_t *report_json(const gguf_file *file, const gguf_weight_summary *s)
{
    char arch[64];
    json_t *types = json_object(), *tensors = json_array();
    for (int c = 0; c < GGUF_TYPE_CODES; c++)
        if (s->tensors_by_type[c])
            json_object_set_new(types, ggml_type_name((uint32_t)c),
                                json_pack("{s:i, s:I, s:I}", "tensors", s->tensors_by_type[c], "params",
                                          (json_int_t)s->params_by_type[c], "bytes", (json_int_t)s->bytes_by_type[c]));
    for (int i = 0; i < file->n_tensors; i++) {
        const gguf_tensor *t = &file->tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I}", "name", t->name, "type",
                                                 ggml_type_name(t->type), "shape", shape, "bytes",
                                                 (json_int_t)t->nbytes));
    }
    return json_pack("{s:s, s:s, s:i, s:s, s:I, s:i, s:i, s:I, s:I, s:i, s:I, s:I, s:o, s:o}", "kind", "gguf",
                     "path", file->path, "version", (int)file->version, "architecture",
                     architecture(file, arch, sizeof arch), "file_bytes", (json_int_t)file->map_bytes,
                     "alignment", (int)file->alignment, "metadata_entries", file->n_kv, "params",
                     (json_int_t)s->params, "tensor_bytes", (json_int_t)s->stored_bytes, "blocks", s->n_blocks,
                     "block_bytes_max", (json_int_t)s->block_bytes_max, "other_bytes", (json_int_t)s->other_bytes,
                     "types", types, "tensors", tensors);
}

static canvas_status print_json(const gguf_file *file, const gguf_weight_summary *s)
{
    if (!utf8_valid(file->path))
        return status_fail(CANVAS_ERR_USAGE, "inspect --json: the path '%s' is not valid UTF-8, which JSON cannot hold",
                           file->path);
    for (int i = 0; i < file->n_tensors; i++)
        if (!utf8_valid(file->tensors[i].name))
            return status_fail(CANVAS_ERR_INPUT, "%s: tensor '%s': the name is not valid UTF-8, which JSON cannot hold",
                               file->path, file->tensors[i].name);
    json_use_canvas_allocator();
    json_t *root = report_json(file, s);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "inspect: out of memory building the JSON report");
    printf("%s\n", text);
    mem_free(text);
    return CANVAS_OK;
}

int inspect_gguf(const char *path, int json)
{
    gguf_file *file;
    canvas_status status = gguf_open(path, &file);
    if (status != CANVAS_OK) return cli_fail(status, NULL);
    gguf_weight_summary summary;
    status = gguf_summarize(file, "transformer_blocks.", &summary);
    if (status == CANVAS_OK) {
        if (json) status = print_json(file, &summary);
        else print_table(file, &summary);
    }
    gguf_close(file);
    return status == CANVAS_OK ? 0 : cli_fail(status, NULL);
}
