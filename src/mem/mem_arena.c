/* SPDX-License-Identifier: Apache-2.0 */
/* mem_arena.c — bump allocation inside one device block (or inside nothing: sizing). */
#include "mem/mem_arena.h"

#include "base/status.h"
#include "mem/mem_fault.h"
#include "mem/mem_internal.h"

struct mem_arena {
    mem_device *device;
    mem_class cls;
    char *base;
    size_t capacity;       /* bytes usable; for a sizing arena the reserved address space */
    int sizing;
    size_t used, high_water;
    size_t counted;        /* sizing: bytes counted on the measure device so far */
};

canvas_status mem_arena_create(mem_device *device, mem_class cls, size_t capacity, mem_arena **out)
{
    *out = NULL;
    if ((unsigned)cls >= MEM_CLASS_COUNT) return status_fail(CANVAS_ERR_INTERNAL, "arena: unknown class %d", (int)cls);
    int sizing = capacity == 0;
    if (sizing && (mem_device_flags(device) & MEM_DEVICE_HOLDS_DATA))
        return status_fail(CANVAS_ERR_USAGE, "arena on '%s': capacity 0 (sizing) needs a measure device",
                           mem_device_name(device));
    mem_arena *a;
    TRY(mem_calloc((void **)&a, 1, sizeof *a, MEM_SCRATCH));
    a->device = device;
    a->cls = cls;
    a->sizing = sizing;
    canvas_status status;
    if (sizing) {
        /* it only needs distinct, untouchable addresses */
        status = mem_region_reserve_untouchable(&a->capacity, (void **)&a->base);
        if (status == CANVAS_OK) mem_device_count_virtual(device, cls, 0, 0, 1);
    } else {
        status = mem_device_alloc(device, cls, capacity, MEM_ARENA_ALIGNMENT, (void **)&a->base);
        a->capacity = capacity;
    }
    if (status != CANVAS_OK) {
        mem_free(a);
        return status_wrap(status, "activation arena of %zu bytes: ", capacity);
    }
    *out = a;
    return CANVAS_OK;
}

void mem_arena_destroy(mem_arena *a)
{
    if (!a) return;
    if (a->sizing) {
        mem_device_count_virtual(a->device, a->cls, 0, a->counted, -1);
        mem_region_release(a->base, a->capacity);
    } else {
        mem_device_free(a->device, a->base);
    }
    mem_free(a);
}

canvas_status mem_arena_alloc(mem_arena *a, size_t size, size_t align, void **out)
{
    *out = NULL;
    if (align == 0) align = MEM_ALIGNMENT;
    if ((align & (align - 1)) || align > MEM_ARENA_ALIGNMENT)
        return status_fail(CANVAS_ERR_INTERNAL, "arena: alignment %zu is not a power of two up to %d", align,
                           MEM_ARENA_ALIGNMENT);
    size_t offset = (a->used + align - 1) & ~(align - 1);
    if (offset < a->used || size > a->capacity || offset > a->capacity - size) {
        if (a->sizing)
            return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "sizing arena: %zu bytes of %s pass its %zu bytes of address space",
                               size, mem_class_name(a->cls), a->capacity);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory: the %s arena of %zu bytes on %s is full (%zu used, %zu more asked); "
                           "it was sized by a dry run of a different shape or plan",
                           mem_class_name(a->cls), a->capacity, mem_device_name(a->device), a->used, size);
    }
    if (!a->sizing && (mem_device_flags(a->device) & MEM_DEVICE_HOLDS_DATA) && mem_fault_should_fail(a->cls))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: %zu bytes of %s in the arena on %s (injected)",
                           size, mem_class_name(a->cls), mem_device_name(a->device));
    a->used = offset + size;
    if (a->used > a->high_water) {
        a->high_water = a->used;
        if (a->sizing) {
            mem_device_count_virtual(a->device, a->cls, a->high_water - a->counted, 0, 0);
            a->counted = a->high_water;
        }
    }
    *out = a->base + offset;
    return CANVAS_OK;
}

size_t mem_arena_mark(const mem_arena *a) { return a->used; }

void mem_arena_rewind(mem_arena *a, size_t mark)
{
    if (mark <= a->used) a->used = mark;
}

void mem_arena_reset(mem_arena *a) { a->used = 0; }

size_t mem_arena_used(const mem_arena *a) { return a->used; }

size_t mem_arena_high_water(const mem_arena *a) { return a->high_water; }

size_t mem_arena_capacity(const mem_arena *a) { return a->sizing ? 0 : a->capacity; }
