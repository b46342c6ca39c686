/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_pool.c — accounting, cap and first-fit placement of a region-backed device. */
#include "mem/mem_device_pool.h"

#include "base/status.h"
#include "mem/mem_fault.h"
#include "mem/mem_internal.h"

canvas_status mem_pool_init(mem_pool *pool, const mem_device_ops *ops, const char *name, const char *fallback,
                            void *base, size_t region_bytes, size_t cap)
{
    mem_device_init(&pool->device, ops, name, fallback);
    TRY(mem_range_init(&pool->range, region_bytes));
    pool->base = base;
    pool->region_bytes = region_bytes;
    atomic_store(&pool->cap, cap);
    pthread_mutex_init(&pool->lock, NULL);
    return CANVAS_OK;
}

void mem_pool_finish(mem_pool *pool)
{
    mem_range_destroy(&pool->range);
    pthread_mutex_destroy(&pool->lock);
}

canvas_status mem_pool_create_mapped(const mem_device_ops *ops, const char *name, const char *fallback, size_t cap,
                                     int accessible, size_t struct_bytes, mem_pool **out)
{
    *out = NULL;
    mem_pool *pool;
    TRY(mem_calloc((void **)&pool, 1, struct_bytes > sizeof *pool ? struct_bytes : sizeof *pool, MEM_SCRATCH));
    mem_device_init(&pool->device, ops, name, fallback);
    size_t region_bytes = cap;
    void *base = NULL;
    canvas_status status = accessible || cap ? mem_region_reserve(cap, accessible, &base)
                                             : mem_region_reserve_untouchable(&region_bytes, &base);
    if (status == CANVAS_OK) {
        status = mem_pool_init(pool, ops, name, fallback, base, region_bytes, cap);
        if (status != CANVAS_OK) mem_region_release(base, region_bytes);
    }
    if (status != CANVAS_OK) {
        status_wrap(status, "creating device '%s' of %zu bytes: ", pool->device.name, region_bytes);
        mem_free(pool);
        return status;
    }
    *out = pool;
    return CANVAS_OK;
}

void mem_pool_destroy_mapped(mem_device *device)
{
    mem_pool *pool = (mem_pool *)device;
    mem_pool_finish(pool);
    mem_region_release(pool->base, pool->region_bytes);
    mem_free(pool);
}

/* Bytes of class cls in use grow by `size` (class and device totals, with their peaks). */
static void counters_grow(mem_pool *pool, mem_class cls, size_t size)
{
    mem_counter_add(&pool->classes[cls].current, &pool->classes[cls].peak, size);
    mem_counter_add(&pool->current, &pool->peak, size);
}

static void counters_add(mem_pool *pool, mem_class cls, size_t size)
{
    counters_grow(pool, cls, size);
    atomic_fetch_add(&pool->classes[cls].allocations, 1);
    atomic_fetch_add(&pool->classes[cls].live, 1);
}

static void counters_remove(mem_pool *pool, mem_class cls, size_t size)
{
    atomic_fetch_sub(&pool->classes[cls].current, size);
    atomic_fetch_sub(&pool->classes[cls].live, 1);
    atomic_fetch_sub(&pool->current, size);
}

canvas_status mem_pool_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    mem_pool *pool = (mem_pool *)device;
    const char *name = device->name;
    *out = NULL;
    if ((unsigned)cls >= MEM_CLASS_COUNT) return status_fail(CANVAS_ERR_INTERNAL, "device '%s': unknown class %d", name, (int)cls);
    if (align < MEM_ALIGNMENT) align = MEM_ALIGNMENT;
    if (align & (align - 1))
        return status_fail(CANVAS_ERR_INTERNAL, "device '%s': alignment %zu is not a power of two", name, align);
    if ((device->ops->flags & MEM_DEVICE_HOLDS_DATA) && mem_fault_should_fail(cls))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory on %s: %zu bytes of %s (injected)", name, size,
                           mem_class_name(cls));
    size_t cap = atomic_load(&pool->cap);
    size_t rounded = mem_range_rounded(size);
    pthread_mutex_lock(&pool->lock);
    size_t reserved = pool->range.used_bytes;
    size_t offset = 0;
    canvas_status status = CANVAS_ERR_OUT_OF_MEMORY;
    int over_cap = size > pool->range.capacity || (cap && rounded > cap - (reserved < cap ? reserved : cap));
    if (!over_cap) status = mem_range_alloc(&pool->range, size, align, (int)cls, &offset);
    size_t largest = status == CANVAS_OK ? 0 : mem_range_largest_free(&pool->range);
    pthread_mutex_unlock(&pool->lock);
    if (status != CANVAS_OK) {
        atomic_fetch_add(&pool->refused, 1);
        size_t limit = cap ? cap : pool->range.capacity;
        mem_refusal_note(name, cls, size, reserved, limit, over_cap ? 0 : largest);
        if (over_cap)
            return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                               "out of memory on %s: %zu bytes of %s do not fit under its cap of %zu bytes "
                               "(%zu in use, %zu free)",
                               name, size, mem_class_name(cls), limit, reserved, reserved < limit ? limit - reserved : 0);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory on %s: %zu bytes of %s do not fit: the largest free block is %zu bytes "
                           "(%zu in use of %zu; fragmented)",
                           name, size, mem_class_name(cls), largest, reserved, limit);
    }
    counters_add(pool, cls, size);
    *out = pool->base + offset;
    return CANVAS_OK;
}

int mem_pool_release(mem_pool *pool, void *block, size_t *requested)
{
    char *p = block;
    *requested = 0;
    if (p < pool->base || p >= pool->base + pool->region_bytes) return -1;
    int cls = 0;
    pthread_mutex_lock(&pool->lock);
    int result = mem_range_free(&pool->range, (size_t)(p - pool->base), requested, &cls);
    pthread_mutex_unlock(&pool->lock);
    if (result != 0) return -1;
    counters_remove(pool, (mem_class)cls, *requested);
    return 0;
}

int mem_pool_free(mem_device *device, void *block)
{
    size_t requested;
    return mem_pool_release((mem_pool *)device, block, &requested);
}

int mem_pool_holds(const mem_device *device, const void *block, size_t bytes)
{
    const mem_pool *pool = (const mem_pool *)device;
    const char *p = block;
    return p >= pool->base && bytes <= pool->region_bytes && (size_t)(p - pool->base) <= pool->region_bytes - bytes;
}

void mem_pool_get_stats(const mem_device *device, mem_device_stats *out)
{
    mem_pool *pool = (mem_pool *)device; /* the lock is not part of the value */
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        out->classes[c].current_bytes = atomic_load(&pool->classes[c].current);
        out->classes[c].peak_bytes = atomic_load(&pool->classes[c].peak);
        out->classes[c].allocations = atomic_load(&pool->classes[c].allocations);
        out->classes[c].live_blocks = atomic_load(&pool->classes[c].live);
    }
    out->current_bytes = atomic_load(&pool->current);
    out->peak_bytes = atomic_load(&pool->peak);
    out->refused = atomic_load(&pool->refused);
    size_t cap = atomic_load(&pool->cap);
    out->cap_bytes = cap;
    pthread_mutex_lock(&pool->lock);
    out->reserved_bytes = pool->range.used_bytes;
    size_t largest = mem_range_largest_free(&pool->range);
    pthread_mutex_unlock(&pool->lock);
    size_t limit = cap ? cap : pool->range.capacity;
    out->free_bytes = limit > out->reserved_bytes ? limit - out->reserved_bytes : 0;
    out->largest_free_block = largest < out->free_bytes ? largest : out->free_bytes;
    out->fragmentation = out->free_bytes ? 1.0 - (double)out->largest_free_block / (double)out->free_bytes : 0.0;
}

void mem_pool_reset_peaks(mem_device *device)
{
    mem_pool *pool = (mem_pool *)device;
    for (int c = 0; c < MEM_CLASS_COUNT; c++)
        atomic_store(&pool->classes[c].peak, atomic_load(&pool->classes[c].current));
    atomic_store(&pool->peak, atomic_load(&pool->current));
}

canvas_status mem_pool_set_cap(mem_device *device, size_t cap)
{
    mem_pool *pool = (mem_pool *)device;
    if (cap == 0 || cap > pool->range.capacity)
        return status_fail(CANVAS_ERR_USAGE, "device '%s': cap %zu must be between 1 and the %zu bytes it was created with",
                           device->name, cap, pool->range.capacity);
    atomic_store(&pool->cap, cap);
    return CANVAS_OK;
}

void mem_pool_count_virtual(mem_device *device, mem_class cls, size_t add, size_t remove, int blocks)
{
    mem_pool *pool = (mem_pool *)device;
    if (blocks > 0) {
        counters_add(pool, cls, add);
        return;
    }
    if (add) counters_grow(pool, cls, add);
    if (blocks < 0) counters_remove(pool, cls, remove);
}
