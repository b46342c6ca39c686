/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device.c — the calls of mem_device.h, dispatched through each device's table of
 * functions (mem_device_impl.h), what every device shares (name, link, copy counters),
 * and regions mapped from the kernel for the pooled devices and sizing arenas. */
#define _DEFAULT_SOURCE
#include "mem/mem_device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/status.h"
#include "mem/mem_device_impl.h"
#include "mem/mem_internal.h"

/* Address space of an untouchable reservation (a measure device without a cap, a sizing
 * arena): far more than any model here needs, and free (PROT_NONE + MAP_NORESERVE costs
 * page tables only when touched, and it is never touched). */
#define UNTOUCHABLE_SPACE ((size_t)1 << 40)
#define UNTOUCHABLE_SPACE_MIN ((size_t)1 << 30)

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

/* ---- the header every device shares ---- */

void mem_device_init(mem_device *device, const mem_device_ops *ops, const char *name, const char *fallback)
{
    device->ops = ops;
    snprintf(device->name, sizeof device->name, "%s", name && *name ? name : fallback);
}

/* Paced copies sleep after each chunk: small enough that a copy's pace is smooth, large
 * enough that memcpy runs at full speed between sleeps. */
#define PACE_CHUNK ((size_t)1 << 20)

void mem_device_paced_copy(void *dst, const void *src, size_t bytes, double bytes_per_second)
{
    if (bytes_per_second <= 0) {
        memcpy(dst, src, bytes);
        return;
    }
    uint64_t start = clock_ns();
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < PACE_CHUNK ? bytes - done : PACE_CHUNK;
        memcpy((char *)dst + done, (const char *)src + done, n);
        done += n;
        clock_sleep_until_ns(start + (uint64_t)((double)done / bytes_per_second * 1e9));
    }
}

/* ---- the calls of mem_device.h ---- */

void mem_device_destroy(mem_device *device)
{
    if (device && device->ops->destroy) device->ops->destroy(device);
}

canvas_status mem_device_set_cap(mem_device *device, size_t cap) { return device->ops->set_cap(device, cap); }

canvas_status mem_device_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    *out = NULL;
    return device->ops->alloc_block(device, cls, size, align, out);
}

void mem_device_free(mem_device *device, void *block)
{
    if (block && device->ops->free_block(device, block) != 0) atomic_fetch_add(&device->foreign_frees, 1);
}

void mem_device_get_stats(const mem_device *device, mem_device_stats *out)
{
    memset(out, 0, sizeof *out);
    device->ops->get_stats(device, out);
    out->bytes_in = atomic_load(&((mem_device *)device)->bytes_in);
    out->bytes_out = atomic_load(&((mem_device *)device)->bytes_out);
}

void mem_device_reset_peaks(mem_device *device) { device->ops->reset_peaks(device); }

const char *mem_device_name(const mem_device *device) { return device->name; }

unsigned mem_device_flags(const mem_device *device) { return device->ops->flags; }

int mem_device_is_addressable(const mem_device *device) { return (device->ops->flags & MEM_DEVICE_HOST_ADDRESSABLE) != 0; }

int mem_device_is_host(const mem_device *device) { return (device->ops->flags & MEM_DEVICE_IS_HOST) != 0; }

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

/* ---- for the other files of mem/ ---- */

void mem_device_count_copy(mem_device *device, uint64_t bytes_in, uint64_t bytes_out)
{
    if (bytes_in) atomic_fetch_add(&device->bytes_in, bytes_in);
    if (bytes_out) atomic_fetch_add(&device->bytes_out, bytes_out);
}

void mem_device_count_virtual(mem_device *device, mem_class cls, size_t add, size_t remove, int blocks)
{
    if (device->ops->count_virtual) device->ops->count_virtual(device, cls, add, remove, blocks);
}
