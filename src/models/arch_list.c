/* SPDX-License-Identifier: Apache-2.0 */
/* arch_list.c — the tensor_spec_list container: appending, freeing, counting. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem/mem.h"
#include "models/arch.h"

static canvas_status grow(tensor_spec_list *list)
{
    if (list->count < list->capacity) return CANVAS_OK;
    int capacity = list->capacity ? list->capacity * 2 : 64;
    void *items = list->items;
    if (items) TRY(mem_realloc(&items, (size_t)capacity * sizeof(tensor_spec), MEM_SCRATCH));
    else TRY(mem_alloc(&items, (size_t)capacity * sizeof(tensor_spec), MEM_SCRATCH));
    list->items = items;
    list->capacity = capacity;
    return CANVAS_OK;
}

canvas_status arch_add(tensor_spec_list *list, int group, int flags, int ndim, const int64_t *shape,
                       const char *name_format, ...)
{
    if (ndim < 0 || ndim > ARCH_MAX_DIMS)
        return status_fail(CANVAS_ERR_INTERNAL, "arch_add: %d dimensions (at most %d)", ndim, ARCH_MAX_DIMS);
    char name[256];
    va_list args;
    va_start(args, name_format);
    int length = vsnprintf(name, sizeof name, name_format, args);
    va_end(args);
    if (length < 0 || (size_t)length >= sizeof name)
        return status_fail(CANVAS_ERR_INTERNAL, "arch_add: tensor name too long");
    TRY(grow(list));
    tensor_spec *spec = &list->items[list->count];
    *spec = (tensor_spec){.ndim = ndim, .group = group, .flags = flags};
    for (int d = 0; d < ndim; d++) spec->shape[d] = shape[d];
    TRY(mem_strdup(&spec->name, name));
    list->count++;
    return CANVAS_OK;
}

canvas_status arch_name(char *buf, size_t size, const char *name_format, ...)
{
    va_list args;
    va_start(args, name_format);
    int length = vsnprintf(buf, size, name_format, args);
    va_end(args);
    if (length < 0 || (size_t)length >= size) return status_fail(CANVAS_ERR_INTERNAL, "arch: tensor name too long");
    return CANVAS_OK;
}

void arch_free(tensor_spec_list *list)
{
    for (int i = 0; i < list->count; i++) mem_free(list->items[i].name);
    mem_free(list->items);
    *list = (tensor_spec_list){0};
}

uint64_t arch_numel(const tensor_spec *spec)
{
    uint64_t n = 1;
    for (int d = 0; d < spec->ndim; d++) n *= (uint64_t)spec->shape[d];
    return n;
}

arch_count arch_count_group(const tensor_spec_list *list, int group, int skip_flags)
{
    arch_count count = {0, 0};
    for (int i = 0; i < list->count; i++) {
        const tensor_spec *spec = &list->items[i];
        if ((group != ARCH_ANY_GROUP && spec->group != group) || (spec->flags & skip_flags)) continue;
        count.params += arch_numel(spec);
        count.tensors++;
    }
    return count;
}

arch_count arch_count_prefix(const tensor_spec_list *list, const char *prefix)
{
    arch_count count = {0, 0};
    size_t length = strlen(prefix);
    for (int i = 0; i < list->count; i++) {
        if (strncmp(list->items[i].name, prefix, length) != 0) continue;
        count.params += arch_numel(&list->items[i]);
        count.tensors++;
    }
    return count;
}

int arch_group_count(const tensor_spec_list *list)
{
    int groups = 0;
    for (int i = 0; i < list->count; i++)
        if (list->items[i].group + 1 > groups) groups = list->items[i].group + 1;
    return groups;
}
