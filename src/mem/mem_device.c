/* mem_device.c — the cpu device over mem_host.c, and the pooled devices (capped, measure)
 * over mem_range.c inside a region mapped from the kernel. */
#define _DEFAULT_SOURCE
#include "mem/mem_device.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/status.h"
#include "mem/mem_fault.h"
#include "mem/mem_internal.h"
#include "mem/mem_range.h"

/* Address space of an untouchable reservation (a measure device without a cap, a sizing
 * arena): far more than any model here needs, and free (PROT_NONE + MAP_NORESERVE costs
 * page tables only when touched, and it is never touched). */
#define UNTOUCHABLE_SPACE ((size_t)1 << 40)
#define UNTOUCHABLE_SPACE_MIN ((size_t)1 << 30)

typedef struct device_class_counters {
    atomic_size_t current, peak;
    atomic_uint_fast64_t allocations, live;
} device_class_counters;

struct mem_device {
    mem_device_kind kind;
    char name[32];
    /* Pooled devices only. */
    pthread_mutex_t lock;
    mem_range range;
    char *base;
    size_t region_bytes;
    atomic_size_t cap;
    device_class_counters classes[MEM_CLASS_COUNT];
    atomic_size_t current, peak;
    atomic_uint_fast64_t refused, foreign_frees;
    /* Every kind. */
    atomic_uint_fast64_t bytes_in, bytes_out;
    double link_bytes_per_second;
};

static mem_device cpu_device = {.kind = MEM_DEVICE_CPU, .name = "cpu"};

mem_device *mem_device_cpu(void) { return &cpu_device; }

/* ---- regions from the kernel ---- */

static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

static size_t page_round(size_t bytes)
{
    size_t p = page_size();
    return (bytes + p - 1) / p * p;
}

canvas_status mem_region_reserve(size_t bytes, int accessible, void **out)
{
    *out = NULL;
    size_t length = page_round(bytes);
    void *base = mmap(NULL, length, accessible ? PROT_READ | PROT_WRITE : PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: could not map a region of %zu bytes (%s)", bytes,
                           strerror(errno));
    *out = base;
    return CANVAS_OK;
}

canvas_status mem_region_reserve_untouchable(size_t *out_bytes, void **out)
{
    canvas_status status = CANVAS_ERR_OUT_OF_MEMORY;
    for (size_t bytes = UNTOUCHABLE_SPACE; bytes >= UNTOUCHABLE_SPACE_MIN; bytes /= 2) {
        status = mem_region_reserve(bytes, 0, out);
        if (status == CANVAS_OK) {
            *out_bytes = bytes;
            break;
        }
    }
    return status;
}

void mem_region_release(void *base, size_t bytes)
{
    if (base) munmap(base, page_round(bytes));
}

void mem_region_discard(void *start, size_t bytes)
{
    uintptr_t page = page_size();
    uintptr_t first = ((uintptr_t)start + page - 1) & ~(page - 1);
    uintptr_t last = ((uintptr_t)start + bytes) & ~(page - 1);
    if (last > first) madvise((void *)first, last - first, MADV_DONTNEED);
}

/* ---- creation ---- */

static canvas_status create_pooled(mem_device_kind kind, const char *name, size_t cap, size_t region_bytes,
                                   mem_device **out)
{
    *out = NULL;
    mem_device *device;
    TRY(mem_calloc((void **)&device, 1, sizeof *device, MEM_SCRATCH));
    device->kind = kind;
    snprintf(device->name, sizeof device->name, "%s", name && *name ? name : (kind == MEM_DEVICE_MEASURE ? "measure" : "gpu"));
    canvas_status status = CANVAS_OK;
    void *base = NULL;
    if (kind == MEM_DEVICE_MEASURE && region_bytes == 0) {
        status = mem_region_reserve_untouchable(&region_bytes, &base);
    } else {
        status = mem_region_reserve(region_bytes, kind == MEM_DEVICE_CAPPED, &base);
    }
    if (status == CANVAS_OK) {
        status = mem_range_init(&device->range, region_bytes);
        if (status != CANVAS_OK) mem_region_release(base, region_bytes);
    }
    if (status != CANVAS_OK) {
        status_wrap(status, "creating device '%s' of %zu bytes: ", device->name, region_bytes);
        mem_free(device);
        return status;
    }
    device->base = base;
    device->region_bytes = region_bytes;
    atomic_store(&device->cap, cap);
    pthread_mutex_init(&device->lock, NULL);
    *out = device;
    return CANVAS_OK;
}

canvas_status mem_device_create_capped(const char *name, size_t cap, mem_device **out)
{
    if (cap == 0) return status_fail(CANVAS_ERR_USAGE, "device '%s': a capped device needs a cap above 0", name ? name : "gpu");
    return create_pooled(MEM_DEVICE_CAPPED, name, cap, cap, out);
}

canvas_status mem_device_create_measure(const char *name, size_t cap, mem_device **out)
{
    return create_pooled(MEM_DEVICE_MEASURE, name, cap, cap, out);
}

void mem_device_destroy(mem_device *device)
{
    if (!device || device->kind == MEM_DEVICE_CPU) return;
    mem_range_destroy(&device->range);
    mem_region_release(device->base, device->region_bytes);
    pthread_mutex_destroy(&device->lock);
    mem_free(device);
}

canvas_status mem_device_set_cap(mem_device *device, size_t cap)
{
    if (device->kind == MEM_DEVICE_CPU) {
        mem_host_set_cap(cap);
        return CANVAS_OK;
    }
    if (cap == 0 || cap > device->range.capacity)
        return status_fail(CANVAS_ERR_USAGE, "device '%s': cap %zu must be between 1 and the %zu bytes it was created with",
                           device->name, cap, device->range.capacity);
    atomic_store(&device->cap, cap);
    return CANVAS_OK;
}

/* ---- allocation ---- */

/* Bytes of class cls in use grow by `size` (class and device totals, with their peaks). */
static void counters_grow(mem_device *device, mem_class cls, size_t size)
{
    mem_counter_add(&device->classes[cls].current, &device->classes[cls].peak, size);
    mem_counter_add(&device->current, &device->peak, size);
}

static void counters_add(mem_device *device, mem_class cls, size_t size)
{
    counters_grow(device, cls, size);
    atomic_fetch_add(&device->classes[cls].allocations, 1);
    atomic_fetch_add(&device->classes[cls].live, 1);
}

static void counters_remove(mem_device *device, mem_class cls, size_t size)
{
    atomic_fetch_sub(&device->classes[cls].current, size);
    atomic_fetch_sub(&device->classes[cls].live, 1);
    atomic_fetch_sub(&device->current, size);
}

canvas_status mem_device_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    *out = NULL;
    if (device->kind == MEM_DEVICE_CPU) return mem_alloc_aligned(out, size, align, cls);
    if ((unsigned)cls >= MEM_CLASS_COUNT)
        return status_fail(CANVAS_ERR_INTERNAL, "device '%s': unknown class %d", device->name, (int)cls);
    if (align < MEM_ALIGNMENT) align = MEM_ALIGNMENT;
    if (align & (align - 1))
        return status_fail(CANVAS_ERR_INTERNAL, "device '%s': alignment %zu is not a power of two", device->name, align);
    if (device->kind != MEM_DEVICE_MEASURE && mem_fault_should_fail(cls))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory on %s: %zu bytes of %s (injected)", device->name,
                           size, mem_class_name(cls));
    size_t cap = atomic_load(&device->cap);
    size_t rounded = mem_range_rounded(size);
    pthread_mutex_lock(&device->lock);
    size_t reserved = device->range.used_bytes;
    size_t offset = 0;
    canvas_status status = CANVAS_ERR_OUT_OF_MEMORY;
    int over_cap = size > device->range.capacity || (cap && rounded > cap - (reserved < cap ? reserved : cap));
    if (!over_cap) status = mem_range_alloc(&device->range, size, align, (int)cls, &offset);
    size_t largest = status == CANVAS_OK ? 0 : mem_range_largest_free(&device->range);
    pthread_mutex_unlock(&device->lock);
    if (status != CANVAS_OK) {
        atomic_fetch_add(&device->refused, 1);
        if (over_cap)
            return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                               "out of memory on %s: %zu bytes of %s do not fit under its cap of %zu bytes "
                               "(%zu in use, %zu free)",
                               device->name, size, mem_class_name(cls), cap ? cap : device->range.capacity, reserved,
                               (cap ? cap : device->range.capacity) - reserved);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory on %s: %zu bytes of %s do not fit: the largest free block is %zu bytes "
                           "(%zu in use of %zu; fragmented)",
                           device->name, size, mem_class_name(cls), largest, reserved,
                           cap ? cap : device->range.capacity);
    }
    counters_add(device, cls, size);
    *out = device->base + offset;
    return CANVAS_OK;
}

void mem_device_free(mem_device *device, void *block)
{
    if (!block) return;
    if (device->kind == MEM_DEVICE_CPU) {
        mem_free(block);
        return;
    }
    char *p = block;
    if (p < device->base || p >= device->base + device->region_bytes) {
        atomic_fetch_add(&device->foreign_frees, 1);
        return;
    }
    size_t requested = 0;
    int cls = 0;
    pthread_mutex_lock(&device->lock);
    int result = mem_range_free(&device->range, (size_t)(p - device->base), &requested, &cls);
    pthread_mutex_unlock(&device->lock);
    if (result != 0) {
        atomic_fetch_add(&device->foreign_frees, 1);
        return;
    }
    counters_remove(device, (mem_class)cls, requested);
    /* Large blocks give their pages back, so the process RSS follows the pool's use. */
    if (device->kind == MEM_DEVICE_CAPPED && requested >= ((size_t)1 << 20)) mem_region_discard(block, requested);
}

/* ---- statistics ---- */

void mem_device_get_stats(const mem_device *device, mem_device_stats *out)
{
    memset(out, 0, sizeof *out);
    out->bytes_in = atomic_load(&device->bytes_in);
    out->bytes_out = atomic_load(&device->bytes_out);
    if (device->kind == MEM_DEVICE_CPU) {
        for (int c = 0; c < MEM_CLASS_COUNT; c++) mem_get_stats((mem_class)c, &out->classes[c]);
        mem_host_totals(&out->current_bytes, &out->peak_bytes, &out->refused);
        out->cap_bytes = mem_host_cap();
        out->reserved_bytes = out->current_bytes;
        out->free_bytes = out->cap_bytes > out->current_bytes ? out->cap_bytes - out->current_bytes : 0;
        out->largest_free_block = out->free_bytes;
        return;
    }
    mem_device *d = (mem_device *)device; /* the lock is not part of the value */
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        out->classes[c].current_bytes = atomic_load(&d->classes[c].current);
        out->classes[c].peak_bytes = atomic_load(&d->classes[c].peak);
        out->classes[c].allocations = atomic_load(&d->classes[c].allocations);
        out->classes[c].live_blocks = atomic_load(&d->classes[c].live);
    }
    out->current_bytes = atomic_load(&d->current);
    out->peak_bytes = atomic_load(&d->peak);
    out->refused = atomic_load(&d->refused);
    size_t cap = atomic_load(&d->cap);
    out->cap_bytes = cap;
    pthread_mutex_lock(&d->lock);
    out->reserved_bytes = d->range.used_bytes;
    size_t largest = mem_range_largest_free(&d->range);
    pthread_mutex_unlock(&d->lock);
    size_t limit = cap ? cap : d->range.capacity;
    out->free_bytes = limit > out->reserved_bytes ? limit - out->reserved_bytes : 0;
    out->largest_free_block = largest < out->free_bytes ? largest : out->free_bytes;
    out->fragmentation = out->free_bytes ? 1.0 - (double)out->largest_free_block / (double)out->free_bytes : 0.0;
}

void mem_device_reset_peaks(mem_device *device)
{
    if (device->kind == MEM_DEVICE_CPU) {
        mem_reset_peaks();
        return;
    }
    for (int c = 0; c < MEM_CLASS_COUNT; c++)
        atomic_store(&device->classes[c].peak, atomic_load(&device->classes[c].current));
    atomic_store(&device->peak, atomic_load(&device->current));
}

mem_device_kind mem_device_kind_of(const mem_device *device) { return device->kind; }

const char *mem_device_name(const mem_device *device) { return device->name; }

int mem_device_is_addressable(const mem_device *device) { return device->kind != MEM_DEVICE_MEASURE; }

uint64_t mem_device_live_blocks(const mem_device *device)
{
    mem_device_stats stats;
    mem_device_get_stats(device, &stats);
    uint64_t live = 0;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) live += stats.classes[c].live_blocks;
    return live;
}

uint64_t mem_device_foreign_frees(const mem_device *device)
{
    return atomic_load(&((mem_device *)device)->foreign_frees);
}

void mem_device_set_link_bandwidth(mem_device *device, double bytes_per_second)
{
    device->link_bytes_per_second = bytes_per_second > 0 ? bytes_per_second : 0;
}

double mem_device_link_bandwidth(const mem_device *device) { return device->link_bytes_per_second; }

/* ---- for mem_transfer.c ---- */

int mem_device_holds(const mem_device *device, const void *block, size_t bytes)
{
    if (device->kind == MEM_DEVICE_CPU) return 1; /* host memory: anything addressable */
    const char *p = block;
    return p >= device->base && bytes <= device->region_bytes && (size_t)(p - device->base) <= device->region_bytes - bytes;
}

void mem_device_count_copy(mem_device *device, uint64_t bytes_in, uint64_t bytes_out)
{
    if (bytes_in) atomic_fetch_add(&device->bytes_in, bytes_in);
    if (bytes_out) atomic_fetch_add(&device->bytes_out, bytes_out);
}

void mem_device_count_virtual(mem_device *device, mem_class cls, size_t add, size_t remove, int blocks)
{
    if (device->kind == MEM_DEVICE_CPU) return;
    if (blocks > 0) {
        counters_add(device, cls, add);
        return;
    }
    if (add) counters_grow(device, cls, add);
    if (blocks < 0) counters_remove(device, cls, remove);
}
