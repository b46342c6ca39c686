/* SPDX-License-Identifier: Apache-2.0 */
/* lora.c — reading LoRA files against the transformer's matrices, and merging them into
 * new homes of those matrices (lora.h, docs/lora.md). */
#include "pipeline/lora.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "io/quant_loader.h"
#include "mem/mem.h"
#include "ops/ops_cpu.h"
#include "tensor/quant.h"

enum { MODULE_SIZE = 128 };

/* ---- "FILE[:scale]" ------------------------------------------------------------------ */

canvas_status lora_spec_parse(const char *text, char *path, size_t path_size, float *scale)
{
    *scale = 1.0f;
    size_t length = strlen(text);
    const char *colon = strrchr(text, ':');
    if (colon && colon[1]) {
        errno = 0;
        char *end;
        double value = strtod(colon + 1, &end);
        if (*end == '\0' && errno == 0) {
            if (!isfinite(value) || fabs(value) > 1e6)
                return status_fail(CANVAS_ERR_USAGE, "LoRA '%s': the scale must be a finite number", text);
            *scale = (float)value;
            length = (size_t)(colon - text);
        }
    }
    if (length == 0) return status_fail(CANVAS_ERR_USAGE, "LoRA '%s': no file name", text);
    if (length + 1 > path_size) return status_fail(CANVAS_ERR_USAGE, "LoRA '%s': path too long", text);
    memcpy(path, text, length);
    path[length] = '\0';
    return CANVAS_OK;
}

/* ---- the model's modules, as a naming writes them ------------------------------------ */

typedef struct module_entry {
    char name[MODULE_SIZE];
    int matrix;
} module_entry;

static int compare_modules(const void *a, const void *b)
{
    return strcmp(((const module_entry *)a)->name, ((const module_entry *)b)->name);
}

static canvas_status module_table(const qwen_dit_model *model, lora_naming naming, module_entry **out, int *count)
{
    int n = qwen_dit_matrix_count(model);
    module_entry *table;
    TRY(mem_calloc((void **)&table, (size_t)(n > 0 ? n : 1), sizeof *table, MEM_SCRATCH));
    for (int i = 0; i < n; i++) {
        qwen_dit_matrix_info info;
        qwen_dit_matrix_get(model, i, &info);
        lora_module_name(naming, info.name, table[i].name, sizeof table[i].name);
        table[i].matrix = i;
    }
    qsort(table, (size_t)n, sizeof *table, compare_modules);
    *out = table;
    *count = n;
    return CANVAS_OK;
}

static int find_module(const module_entry *table, int count, const char *module)
{
    module_entry key;
    snprintf(key.name, sizeof key.name, "%s", module);
    const module_entry *hit = bsearch(&key, table, (size_t)count, sizeof *table, compare_modules);
    return hit ? hit->matrix : -1;
}

/* ---- reading a file ------------------------------------------------------------------ */

void lora_close(lora_file *lora)
{
    if (!lora) return;
    mem_free(lora->pairs);
    st_close(lora->file);
    mem_free(lora);
}

static const char *role_suffix(const lora_file *lora, lora_role role)
{
    if (role == LORA_ROLE_ALPHA) return ".alpha";
    if (lora->naming == LORA_NAMING_PEFT) return role == LORA_ROLE_DOWN ? ".lora_A.weight" : ".lora_B.weight";
    return role == LORA_ROLE_DOWN ? ".lora_down.weight" : ".lora_up.weight";
}

/* Shapes, ranks and alpha of one module whose keys are all read. */
static canvas_status check_pair(const qwen_dit_model *model, lora_file *lora, lora_pair *p)
{
    const char *path = lora->file->path;
    qwen_dit_matrix_info info;
    qwen_dit_matrix_get(model, p->matrix, &info);
    const st_tensor *some = p->down ? p->down : p->up ? p->up : p->alpha;
    if (!p->down || !p->up)
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': the module '%s' has no %s matrix (a LoRA needs both down "
                           "and up)", path, some->name, info.name, p->down ? "up" : "down");
    const int64_t out = info.home.out_features, in = info.home.in_features;
    if (!dtype_is_float(p->down->type) || !dtype_is_float(p->up->type))
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': LoRA matrices must be float tensors", path,
                           dtype_is_float(p->down->type) ? p->up->name : p->down->name);
    if (p->down->ndim != 2 || p->down->shape[1] != in || p->down->shape[0] < 1)
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' must be [rank, %lld] for '%s' [%lld, %lld]", path,
                           p->down->name, (long long)in, info.name, (long long)out, (long long)in);
    p->rank = p->down->shape[0];
    /* a rank above the matrix's smaller side adds nothing a full-rank delta would not, and
     * the merge's scratch rows are sized by the matrix: refused, not read past */
    if (p->rank > (out < in ? out : in))
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': rank %lld is more than '%s' [%lld, %lld] can use (at most %lld)",
                           path, p->down->name, (long long)p->rank, info.name, (long long)out, (long long)in,
                           (long long)(out < in ? out : in));
    if (p->up->ndim != 2 || p->up->shape[0] != out || p->up->shape[1] != p->rank)
        return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' must be [%lld, %lld] (out, rank) for '%s' [%lld, %lld]",
                           path, p->up->name, (long long)out, (long long)p->rank, info.name, (long long)out,
                           (long long)in);
    float alpha = (float)p->rank;
    if (p->alpha) {
        if (st_numel(p->alpha) != 1 || !dtype_is_float(p->alpha->type))
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' must be one float (the alpha)", path, p->alpha->name);
        dtype_to_f32(p->alpha->type, p->alpha->data, &alpha, 1);
        if (!isfinite(alpha))
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': the alpha is not finite", path, p->alpha->name);
    }
    p->factor = lora->scale * (alpha / (float)p->rank);
    return CANVAS_OK;
}

static canvas_status read_keys(const qwen_dit_model *model, lora_file *lora, const module_entry *table, int count,
                               int *pair_of)
{
    const st_file *f = lora->file;
    const char *path = f->path;
    if (f->n_tensors == 0) return status_fail(CANVAS_ERR_INPUT, "%s: the file holds no tensors", path);
    TRY(mem_calloc((void **)&lora->pairs, (size_t)f->n_tensors, sizeof *lora->pairs, MEM_SCRATCH));
    for (int t = 0; t < f->n_tensors; t++) {
        const st_tensor *tensor = &f->tensors[t];
        char module[MODULE_SIZE];
        lora_role role;
        if (!lora_key_split(lora->naming, tensor->name, module, sizeof module, &role))
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s' is not a %s LoRA key (<module>%s / %s / .alpha)", path,
                               tensor->name, lora_naming_name(lora->naming), role_suffix(lora, LORA_ROLE_DOWN),
                               role_suffix(lora, LORA_ROLE_UP));
        int matrix = find_module(table, count, module);
        if (matrix < 0)
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': the transformer has no Linear '%s'", path, tensor->name,
                               module);
        if (pair_of[matrix] < 0) {
            pair_of[matrix] = lora->n_pairs;
            lora->pairs[lora->n_pairs++] = (lora_pair){.matrix = matrix};
        }
        lora_pair *p = &lora->pairs[pair_of[matrix]];
        const st_tensor **slot = role == LORA_ROLE_DOWN ? &p->down : role == LORA_ROLE_UP ? &p->up : &p->alpha;
        if (*slot)
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': the module '%s' already has that tensor (key '%s')",
                               path, tensor->name, module, (*slot)->name);
        *slot = tensor;
    }
    for (int i = 0; i < lora->n_pairs; i++) TRY(check_pair(model, lora, &lora->pairs[i]));
    return CANVAS_OK;
}

static int compare_pairs(const void *a, const void *b)
{
    return ((const lora_pair *)a)->matrix - ((const lora_pair *)b)->matrix;
}

canvas_status lora_open(const qwen_dit_model *model, const lora_spec *spec, lora_file **out)
{
    *out = NULL;
    if (!isfinite(spec->scale)) return status_fail(CANVAS_ERR_USAGE, "LoRA %s: the scale is not finite", spec->path);
    lora_file *lora;
    TRY(mem_calloc((void **)&lora, 1, sizeof *lora, MEM_SCRATCH));
    lora->scale = spec->scale;
    canvas_status st = st_open(spec->path, &lora->file);
    module_entry *table = NULL;
    int *pair_of = NULL, count = 0;
    if (st == CANVAS_OK) {
        lora->naming = spec->naming == LORA_NAMING_AUTO ? lora_naming_detect(lora->file) : spec->naming;
        st = module_table(model, lora->naming, &table, &count);
    }
    if (st == CANVAS_OK) st = mem_alloc((void **)&pair_of, (size_t)(count > 0 ? count : 1) * sizeof *pair_of, MEM_SCRATCH);
    if (st == CANVAS_OK) {
        for (int i = 0; i < count; i++) pair_of[i] = -1;
        st = read_keys(model, lora, table, count, pair_of);
    }
    mem_free(pair_of);
    mem_free(table);
    if (st != CANVAS_OK) {
        lora_close(lora);
        return st;
    }
    qsort(lora->pairs, (size_t)lora->n_pairs, sizeof *lora->pairs, compare_pairs);
    *out = lora;
    return CANVAS_OK;
}

/* ---- merging --------------------------------------------------------------------------- */

/* A new home, made before any is installed. */
typedef struct new_home {
    int matrix;
    weight_view view;
    size_t bytes;
    void *owned;
} new_home;

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* n f32 values converted from a LoRA tensor: a NaN or an infinity would spread through the
 * whole merged matrix (and every image after it), so it is refused here, where it is cheap. */
static canvas_status lora_row(const lora_file *lora, const st_tensor *t, size_t row, size_t n, float *out)
{
    dtype_to_f32(t->type, (const char *)t->data + row * n * dtype_size(t->type), out, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return status_fail(CANVAS_ERR_INPUT, "%s: key '%s': value %zu is %s (the LoRA is damaged)", lora->file->path,
                               t->name, row * n + i, isnan(out[i]) ? "NaN" : "infinite");
    return CANVAS_OK;
}

/* delta [out, in] = sum over the pairs touching `matrix` of factor · up @ down, as one GEMM
 * over the stacked ranks: x = [factor·up | ...] [out, R], weight = [down | ...]ᵀ [in, R]. */
static canvas_status lora_delta(thread_pool *pool, lora_file *const *loras, int n_loras, int matrix, int64_t out,
                                int64_t in, float *delta)
{
    int64_t ranks = 0;
    for (int f = 0; f < n_loras; f++)
        for (int i = 0; i < loras[f]->n_pairs; i++)
            if (loras[f]->pairs[i].matrix == matrix) ranks += loras[f]->pairs[i].rank;
    float *ups = NULL, *downs = NULL, *row = NULL;
    canvas_status st = mem_alloc((void **)&ups, (size_t)(out * ranks) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&downs, (size_t)(in * ranks) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&row, (size_t)(in > out ? in : out) * sizeof(float), MEM_SCRATCH);
    int64_t at = 0;
    for (int f = 0; st == CANVAS_OK && f < n_loras; f++)
        for (int i = 0; st == CANVAS_OK && i < loras[f]->n_pairs; i++) {
            const lora_pair *p = &loras[f]->pairs[i];
            if (p->matrix != matrix) continue;
            /* row holds max(in, out) floats; check_pair keeps every rank within min(in, out) */
            for (int64_t o = 0; st == CANVAS_OK && o < out; o++) {
                st = lora_row(loras[f], p->up, (size_t)o, (size_t)p->rank, row);
                for (int64_t r = 0; st == CANVAS_OK && r < p->rank; r++) ups[o * ranks + at + r] = p->factor * row[r];
            }
            for (int64_t r = 0; st == CANVAS_OK && r < p->rank; r++) {
                st = lora_row(loras[f], p->down, (size_t)r, (size_t)in, row);
                for (int64_t c = 0; st == CANVAS_OK && c < in; c++) downs[c * ranks + at + r] = row[c];
            }
            at += p->rank;
        }
    if (st == CANVAS_OK) {
        weight_view w = {DTYPE_F32, downs, in, ranks, NULL};
        op_backend be = op_backend_cpu(pool);
        st = op_linear(&be, ups, out, &w, NULL, delta);
    }
    mem_free(row);
    mem_free(downs);
    mem_free(ups);
    return st;
}

/* merged [out, in] f32 = delta + the matrix as it is now. A matrix quantised on load from a
 * float file, and not yet replaced, starts from the file's float weight: merging before
 * quantising, as if the checkpoint had the LoRA baked in. */
static canvas_status add_base(const qwen_dit_model *model, const qwen_dit_matrix_info *info, float *merged, float *row)
{
    const weight_view *w = &info->home;
    const int64_t out = w->out_features, in = w->in_features;
    const st_tensor *stored = NULL;
    if (w->quant && !info->replaced && !quant_is_stored_quantized(model->files, info->name)) {
        stored = weights_find(model->files, info->name);
        if (stored && (stored->type != DTYPE_F32 && stored->type != DTYPE_F16 && stored->type != DTYPE_BF16))
            stored = NULL;
    }
    for (int64_t r = 0; r < out; r++) {
        if (stored)
            dtype_to_f32(stored->type, (const char *)stored->data + (size_t)(r * in) * dtype_size(stored->type), row,
                         (size_t)in);
        else if (w->quant)
            quant_dequantize_row(w->quant, w->data, r, row);
        else
            dtype_to_f32(w->type, (const char *)w->data + (size_t)(r * in) * dtype_size(w->type), row, (size_t)in);
        float *m = merged + r * in;
        for (int64_t c = 0; c < in; c++) m[c] = row[c] + m[c];
    }
    return CANVAS_OK;
}

/* The merged matrix in the format of its current home. */
static canvas_status store_merged(const qwen_dit_matrix_info *info, const float *merged, new_home *out)
{
    const weight_view *w = &info->home;
    const int64_t rows = w->out_features, cols = w->in_features;
    if (!w->quant) {
        size_t bytes = (size_t)(rows * cols) * dtype_size(w->type);
        TRY(mem_alloc(&out->owned, bytes, MEM_WEIGHTS));
        TRY(dtype_from_f32(w->type, merged, out->owned, (size_t)(rows * cols)));
        out->view = (weight_view){w->type, out->owned, rows, cols, NULL};
        out->bytes = bytes;
        return CANVAS_OK;
    }
    /* one block: the layout first, the blob 64 bytes in (scales stay aligned) */
    quant_params params;
    TRY(quant_layout(w->quant->format, w->quant->per_channel, rows, cols, &params));
    const size_t header = round64(sizeof params);
    TRY(mem_alloc(&out->owned, header + params.bytes, MEM_WEIGHTS));
    char *blob = (char *)out->owned + header;
    TRY(quant_quantize(&params, DTYPE_F32, merged, blob, info->name));
    memcpy(out->owned, &params, sizeof params);
    out->view = (weight_view){w->type, blob, rows, cols, (const quant_params *)out->owned};
    out->bytes = params.bytes;
    return CANVAS_OK;
}

static canvas_status merge_matrix(const qwen_dit_model *model, thread_pool *pool, lora_file *const *loras, int n_loras,
                                  int matrix, new_home *out)
{
    qwen_dit_matrix_info info;
    qwen_dit_matrix_get(model, matrix, &info);
    const int64_t rows = info.home.out_features, cols = info.home.in_features;
    float *merged = NULL, *row = NULL;
    canvas_status st = mem_alloc((void **)&merged, (size_t)(rows * cols) * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = mem_alloc((void **)&row, (size_t)cols * sizeof(float), MEM_SCRATCH);
    if (st == CANVAS_OK) st = lora_delta(pool, loras, n_loras, matrix, rows, cols, merged);
    if (st == CANVAS_OK) st = add_base(model, &info, merged, row);
    out->matrix = matrix;
    if (st == CANVAS_OK) st = store_merged(&info, merged, out);
    if (st != CANVAS_OK) {
        mem_free(out->owned);
        out->owned = NULL;
        st = status_wrap(st, "merging LoRA into '%s': ", info.name);
    }
    mem_free(row);
    mem_free(merged);
    return st;
}

canvas_status lora_apply(qwen_dit_model *model, thread_pool *pool, lora_file *const *loras, int n_loras)
{
    const int n = qwen_dit_matrix_count(model);
    uint8_t *touched = NULL;
    new_home *homes = NULL;
    int n_homes = 0;
    canvas_status st = mem_calloc((void **)&touched, (size_t)(n > 0 ? n : 1), 1, MEM_SCRATCH);
    for (int f = 0; st == CANVAS_OK && f < n_loras; f++)
        for (int i = 0; i < loras[f]->n_pairs; i++) touched[loras[f]->pairs[i].matrix] = 1;
    int count = 0;
    for (int i = 0; st == CANVAS_OK && i < n; i++) count += touched[i];
    if (st == CANVAS_OK && count) st = mem_calloc((void **)&homes, (size_t)count, sizeof *homes, MEM_SCRATCH);
    for (int i = 0; st == CANVAS_OK && i < n; i++) {
        if (!touched[i]) continue;
        st = merge_matrix(model, pool, loras, n_loras, i, &homes[n_homes]);
        if (st == CANVAS_OK) n_homes++;
    }
    /* all computed: install them (cannot fail: same shapes, valid indices) */
    for (int i = 0; st == CANVAS_OK && i < n_homes; i++) {
        st = qwen_dit_matrix_set_home(model, homes[i].matrix, &homes[i].view, homes[i].bytes, homes[i].owned);
        if (st == CANVAS_OK) homes[i].owned = NULL;
    }
    for (int i = 0; i < n_homes; i++) mem_free(homes[i].owned);
    mem_free(homes);
    mem_free(touched);
    TRY(st);
    mem_device *device = qwen_dit_device(model);
    if (!device || !count) return CANVAS_OK;
    return qwen_dit_place(model, device, qwen_dit_resident_blocks(model));
}

canvas_status lora_apply_specs(qwen_dit_model *model, thread_pool *pool, const lora_spec *specs, int n_specs)
{
    if (n_specs <= 0) return CANVAS_OK;
    lora_file **loras;
    TRY(mem_calloc((void **)&loras, (size_t)n_specs, sizeof *loras, MEM_SCRATCH));
    canvas_status st = CANVAS_OK;
    for (int i = 0; st == CANVAS_OK && i < n_specs; i++) st = lora_open(model, &specs[i], &loras[i]);
    /* every file is checked; one at strength 0 adds nothing and is not merged (merging
     * w + 0 x delta could still turn -0 into +0 or spread a NaN of the file) */
    int n_merged = 0;
    for (int i = 0; st == CANVAS_OK && i < n_specs; i++)
        if (specs[i].scale != 0.0f) {
            lora_file *keep = loras[i];
            loras[i] = loras[n_merged];
            loras[n_merged++] = keep;
        }
    if (st == CANVAS_OK) st = lora_apply(model, pool, loras, n_merged);
    for (int i = 0; i < n_specs; i++) lora_close(loras[i]);
    mem_free(loras);
    return st;
}
