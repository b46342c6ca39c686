/* SPDX-License-Identifier: Apache-2.0 */
/* weight_groups.c — a model's weight groups under the residency manager (weight_groups.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/quant_loader.h"
#include "io/weights_file.h"
#include "mem/mem.h"
#include "models/arch.h"
#include "models/weight_groups.h"

canvas_status weight_groups_create(weight_groups *w, int count, const char *owner, const char *place_call)
{
    memset(w, 0, sizeof *w);
    w->owner = owner;
    w->place_call = place_call;
    w->count = count;
    TRY(mem_calloc((void **)&w->groups, (size_t)count, sizeof *w->groups, MEM_SCRATCH));
    return mem_calloc((void **)&w->table, (size_t)count, sizeof *w->table, MEM_SCRATCH);
}

void weight_groups_destroy(weight_groups *w)
{
    /* the placement goes first: its copy thread may be reading a home */
    weight_groups_unplace(w);
    for (int g = 0; w->groups && g < w->count; g++)
        for (int i = 0; i < WEIGHT_GROUP_MAX_MATRICES; i++) mem_free(w->groups[g].matrix_owned[i]);
    mem_free(w->groups);
    mem_free(w->table);
    memset(w, 0, sizeof *w);
}

canvas_status weight_tensors_list(const weight_tensor *table, int n, const int64_t *extents, int group,
                                  const char *prefix, tensor_spec_list *out)
{
    for (int i = 0; i < n; i++) {
        const weight_tensor *t = &table[i];
        const int64_t shape[2] = {weight_size_of(t->rows, extents), weight_size_of(t->cols, extents)};
        TRY(arch_add(out, group, 0, weight_tensor_is_vector(t) ? 1 : 2, shape, "%s%s", prefix, t->suffix));
    }
    return CANVAS_OK;
}

/* Vector `field` (inside the struct at `home`), `at` floats into the group's vectors. */
static canvas_status add_vector(weight_group *g, const void *home, const float *const *field, size_t at, const char *name)
{
    if (g->n_vectors == WEIGHT_GROUP_MAX_VECTORS)
        return status_fail(CANVAS_ERR_INTERNAL, "%s: too many vectors in one weight group", name);
    g->vector_field[g->n_vectors] = (uint16_t)((const char *)field - (const char *)home);
    g->vector_at[g->n_vectors] = (uint32_t)at;
    g->n_vectors++;
    return CANVAS_OK;
}

static canvas_status wire_matrix(weight_wiring *w, const weight_tensor *t, const char *name)
{
    const int64_t rows = weight_size_of(t->rows, w->extents), cols = weight_size_of(t->cols, w->extents);
    quant_weight q;
    TRY(quant_weight_from_view(w->quant, w->files, name, rows, cols, w->quantize, &q));
    weight_view *out = (weight_view *)(void *)(w->home + t->field);
    *out = (weight_view){q.type, q.data, rows, cols, q.quant};
    return weight_group_add_matrix(w->group, w->home, out, (residency_tensor){q.data, q.bytes}, t->suffix, name);
}

static canvas_status wire_vector(weight_wiring *w, const weight_tensor *t, const char *name)
{
    const st_tensor *stored = weights_find(w->files, name);
    if (!stored) return status_fail(CANVAS_ERR_INTERNAL, "%s: wired but not in %s", name, w->arch);
    const float **out = (const float **)(void *)(w->home + t->field);
    float *dst = w->vectors + w->used;
    dtype_to_f32(stored->type, stored->data, dst, (size_t)weight_size_of(t->rows, w->extents));
    *out = dst;
    return add_vector(w->group, w->home, out, w->used, name);
}

canvas_status weight_wire_table(weight_wiring *w, const weight_tensor *table, int n)
{
    for (int i = 0; i < n; i++) {
        const weight_tensor *t = &table[i];
        if (w->vectors) {
            char name[256];
            int length = snprintf(name, sizeof name, "%s%s", w->prefix, t->suffix);
            if (length < 0 || (size_t)length >= sizeof name)
                return status_fail(CANVAS_ERR_INTERNAL, "%s%s: tensor name too long", w->prefix, t->suffix);
            TRY(weight_tensor_is_vector(t) ? wire_vector(w, t, name) : wire_matrix(w, t, name));
        }
        if (weight_tensor_is_vector(t)) w->used += weight_group_padded_floats(weight_size_of(t->rows, w->extents));
    }
    return CANVAS_OK;
}

void weight_group_begin(weight_groups *w, int index, const char *name_format, ...)
{
    weight_group *g = &w->groups[index];
    memset(g, 0, sizeof *g);
    va_list args;
    va_start(args, name_format);
    vsnprintf(g->name, sizeof g->name, name_format, args);
    va_end(args);
}

canvas_status weight_group_add_matrix(weight_group *g, const void *home, const weight_view *field,
                                      residency_tensor tensor, const char *suffix, const char *name)
{
    if (g->n_matrices == WEIGHT_GROUP_MAX_MATRICES)
        return status_fail(CANVAS_ERR_INTERNAL, "%s: too many matrices in one weight group", name);
    g->matrix_field[g->n_matrices] = (uint16_t)((const char *)field - (const char *)home);
    g->tensors[g->n_matrices] = tensor;
    g->matrix_suffix[g->n_matrices] = suffix;
    g->n_matrices++;
    return CANVAS_OK;
}

void weight_group_seal(weight_groups *w, int index, const void *vectors, size_t bytes)
{
    weight_group *g = &w->groups[index];
    g->tensors[g->n_matrices] = (residency_tensor){vectors, bytes};
    w->table[index] = (residency_group){g->name, g->tensors, g->n_matrices + 1};
}

void weight_groups_copy_sizes(weight_groups *to, const weight_groups *from)
{
    for (int g = 0; g < from->count && g < to->count; g++) {
        const residency_group *f = &from->table[g];
        to->groups[g].n_matrices = f->n_tensors - 1;
        for (int t = 0; t < f->n_tensors; t++) to->groups[g].tensors[t].bytes = f->tensors[t].bytes;
        to->table[g].n_tensors = f->n_tensors;
    }
}

/* ---- placement ----------------------------------------------------------------------- */

void weight_groups_unplace(weight_groups *w)
{
    residency_destroy(w->manager);
    w->manager = NULL;
    w->device = NULL;
    w->resident = 0;
}

canvas_status weight_groups_place(weight_groups *w, mem_device *device, int resident)
{
    if (!device) device = mem_device_cpu();
    weight_groups_unplace(w);
    const residency_plan plan = {1 + resident};
    TRY(residency_create(device, w->table, w->count, &plan, &w->manager));
    w->device = device;
    w->resident = mem_device_is_host(device) ? w->count - 1 : resident; /* used in place: all */
    return CANVAS_OK;
}

size_t weight_groups_device_bytes(const weight_groups *w, int resident)
{
    const residency_plan plan = {1 + resident};
    return residency_plan_device_bytes(w->table, w->count, &plan);
}

/* Copy `home` into `out` with every view and vector pointing into the device tensors. */
static void remap(const weight_group *group, void *const *device_tensors, const void *home, void *out,
                  size_t struct_bytes)
{
    char *o = out;
    memcpy(o, home, struct_bytes);
    for (int i = 0; i < group->n_matrices; i++) {
        const void *data = device_tensors[i];
        memcpy(o + group->matrix_field[i] + offsetof(weight_view, data), &data, sizeof data);
    }
    const float *vectors = device_tensors[group->n_matrices];
    for (int i = 0; i < group->n_vectors; i++) {
        const float *at = vectors + group->vector_at[i];
        memcpy(o + group->vector_field[i], &at, sizeof at);
    }
}

canvas_status weight_groups_acquire(weight_groups *w, int group, const void *home, void *out, size_t struct_bytes)
{
    if (!w->manager)
        return status_fail(CANVAS_ERR_USAGE, "%s: the weights are not placed on a device (the last %s failed; place "
                                             "the model again before a forward)", w->owner, w->place_call);
    void *const *tensors;
    TRY(residency_acquire(w->manager, group, &tensors));
    remap(&w->groups[group], tensors, home, out, struct_bytes);
    return CANVAS_OK;
}

void weight_groups_release(weight_groups *w, int group)
{
    if (w->manager) residency_release(w->manager, group);
}

/* ---- the planner's choice ------------------------------------------------------------ */

canvas_status weight_groups_largest_prefix(int n, weight_prefix_fits fits, void *ctx, int *out)
{
    /* fewer resident groups never need more: bisect for the largest k that fits */
    int ok, lo = -1, hi = n;
    TRY(fits(ctx, hi, &ok));
    if (ok) {
        *out = hi;
        return CANVAS_OK;
    }
    while (hi - lo > 1) { /* lo fits (or is -1), hi does not */
        int mid = lo + (hi - lo) / 2;
        TRY(fits(ctx, mid < 0 ? 0 : mid, &ok));
        if (ok) lo = mid;
        else hi = mid;
    }
    *out = lo;
    return CANVAS_OK;
}

canvas_status weight_groups_dry_run(size_t cap, weight_dry_run_fn run, void *ctx, int *fits, uint64_t *peak)
{
    *fits = 0;
    mem_device *measure;
    TRY(mem_device_create_measure("gpu (dry run)", cap, &measure));
    canvas_status st = run(ctx, measure);
    mem_device_stats stats;
    mem_device_get_stats(measure, &stats);
    mem_device_destroy(measure);
    if (peak) *peak = stats.peak_bytes;
    *fits = st == CANVAS_OK && stats.refused == 0;
    if (st == CANVAS_ERR_OUT_OF_MEMORY && stats.refused) {
        status_clear(); /* the device's refusal: this plan does not fit */
        st = CANVAS_OK;
    }
    return st;
}
