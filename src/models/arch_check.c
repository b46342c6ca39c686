/* SPDX-License-Identifier: Apache-2.0 */
/* arch_check.c — checking a component's files against the tensors its config implies.
 *
 * Every problem is counted, the first one is reported: a user fixing a broken download
 * wants to know where to start and how bad it is. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/quant_loader.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "tensor/ggml_blocks.h"

typedef struct check_state {
    const char *component;
    int problems;
    char first[1024];
    char out_of_memory[1024];   /* a check that could not run for memory: that, not a bad file */
} check_state;

/* Count a problem; keep the text of the first (long paths are cut, not overflowed). */
static void note(check_state *state, const char *format, ...) CANVAS_PRINTF(2, 3);
static void note(check_state *state, const char *format, ...)
{
    if (state->problems++ > 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(state->first, sizeof state->first, format, args);
    va_end(args);
}

/* The file holding a tensor (each tensor is in exactly one file of a weight set). */
static const char *file_of(const weight_set *files, const char *name)
{
    for (int f = 0; f < files->n_files; f++)
        if (st_find(files->files[f], name)) return files->files[f]->path;
    return files->dir;
}

static void shape_text(char *out, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < size) snprintf(out + used, size - used, "]");
}

static int same_shape(const tensor_spec *spec, const st_tensor *t)
{
    if (spec->ndim != t->ndim) return 0;
    for (int d = 0; d < spec->ndim; d++)
        if (spec->shape[d] != t->shape[d]) return 0;
    return 1;
}

static void check_expected(check_state *state, const tensor_spec *spec, const weight_set *files)
{
    char want[128], got[128];
    const st_tensor *t = weights_find(files, spec->name);
    shape_text(want, sizeof want, spec->ndim, spec->shape);
    if (!t) {
        note(state, "%s: tensor '%s' %s is missing from %s", state->component, spec->name, want, files->dir);
    } else if (spec->ndim == 2 && quant_is_stored_quantized(files, spec->name)) { /* fp8 / nf4 / q8_0 storage */
        canvas_status st = quant_check_stored(files, spec->name, spec->shape[0], spec->shape[1]);
        if (st == CANVAS_ERR_OUT_OF_MEMORY && !state->out_of_memory[0])
            snprintf(state->out_of_memory, sizeof state->out_of_memory, "%s: %s", state->component, canvas_last_error());
        else if (st != CANVAS_OK)
            note(state, "%s: %s", state->component, canvas_last_error());
    } else if (!same_shape(spec, t)) {
        shape_text(got, sizeof got, t->ndim, t->shape);
        note(state, "%s: tensor '%s' in %s has shape %s, the config implies %s", state->component, spec->name,
             file_of(files, spec->name), got, want);
    } else if (!dtype_is_float(t->type)) {
        note(state, "%s: tensor '%s' in %s is stored as %s; weights must be a float type", state->component,
             spec->name, file_of(files, spec->name),
             weights_ggml_type(files, t) >= 0 ? ggml_type_name((uint32_t)weights_ggml_type(files, t)) : dtype_name(t->type));
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tensors in the files that the architecture does not name. */
static canvas_status check_unexpected(check_state *state, const tensor_spec_list *expected, const weight_set *files)
{
    const char **names;
    TRY(mem_alloc((void **)&names, (size_t)(expected->count ? expected->count : 1) * sizeof *names, MEM_SCRATCH));
    for (int i = 0; i < expected->count; i++) names[i] = expected->items[i].name;
    qsort(names, (size_t)expected->count, sizeof *names, by_name);
    for (int i = 0; i < files->n_tensors; i++) {
        const char *name = files->tensors[i]->name;
        if (bsearch(&name, names, (size_t)expected->count, sizeof *names, by_name)) continue;
        if (quant_is_auxiliary(files, name)) continue; /* scales, bitsandbytes state of an expected weight */
        note(state, "%s: unexpected tensor '%s' in %s (not part of the architecture its config.json describes)",
             state->component, name, file_of(files, name));
    }
    mem_free(names);
    return CANVAS_OK;
}

canvas_status arch_check(const tensor_spec_list *expected, const weight_set *files, const char *component)
{
    check_state state = {.component = component};
    for (int i = 0; i < expected->count; i++) check_expected(&state, &expected->items[i], files);
    TRY(check_unexpected(&state, expected, files));
    if (state.out_of_memory[0]) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "%s", state.out_of_memory);
    if (state.problems == 0) return CANVAS_OK;
    if (state.problems == 1) return status_fail(CANVAS_ERR_INPUT, "%s", state.first);
    return status_fail(CANVAS_ERR_INPUT, "%s (and %d more problem%s)", state.first, state.problems - 1,
                       state.problems > 2 ? "s" : "");
}
