/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_cpu.c — host RAM as a device: the pool of mem_host.c behind the interface,
 * the whole process's (mem_device_cpu) or one owner's (a host scope device). Its blocks are
 * host memory, so copies are plain memcpy and a host pointer is already one of its blocks
 * (MEM_DEVICE_IS_HOST: the residency manager uses weights in place). */
#include <string.h>

#include "base/status.h"
#include "mem/mem_device_impl.h"
#include "mem/mem_internal.h"

static canvas_status cpu_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    (void)device;
    return mem_alloc_aligned(out, size, align, cls);
}

static int cpu_free(mem_device *device, void *block)
{
    (void)device;
    mem_free(block);
    return 0;
}

static int cpu_holds(const mem_device *device, const void *block, size_t bytes)
{
    (void)device, (void)block, (void)bytes;
    return 1; /* host memory: anything addressable */
}

static void cpu_get_stats(const mem_device *device, mem_device_stats *out)
{
    (void)device;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) mem_get_stats((mem_class)c, &out->classes[c]);
    mem_host_totals(&out->current_bytes, &out->peak_bytes, &out->refused);
    out->cap_bytes = mem_host_cap();
    out->reserved_bytes = out->current_bytes;
    out->free_bytes = out->cap_bytes > out->current_bytes ? out->cap_bytes - out->current_bytes : 0;
    out->largest_free_block = out->free_bytes;
}

static void cpu_reset_peaks(mem_device *device)
{
    (void)device;
    mem_reset_peaks();
}

static canvas_status cpu_set_cap(mem_device *device, size_t cap)
{
    (void)device;
    mem_host_set_cap(cap);
    return CANVAS_OK;
}

/* Host to host, in either direction. */
static canvas_status cpu_copy(mem_device *device, void *dst, const void *src, size_t bytes, mem_device_event *event)
{
    mem_device_paced_copy(dst, src, bytes, device->link_bytes_per_second);
    *event = 0;
    return CANVAS_OK;
}

static canvas_status cpu_wait(mem_device *device, mem_device_event event)
{
    (void)device, (void)event;
    return CANVAS_OK;
}

static const mem_device_ops cpu_ops = {
    .flags = MEM_DEVICE_HOST_ADDRESSABLE | MEM_DEVICE_HOLDS_DATA | MEM_DEVICE_IS_HOST,
    .alloc_block = cpu_alloc,
    .free_block = cpu_free,
    .holds = cpu_holds,
    .get_stats = cpu_get_stats,
    .reset_peaks = cpu_reset_peaks,
    .set_cap = cpu_set_cap,
    .copy_to_device = cpu_copy,
    .copy_to_host = cpu_copy,
    .wait = cpu_wait,
};

static mem_device cpu_device = {.ops = &cpu_ops, .name = "cpu"};

mem_device *mem_device_cpu(void) { return &cpu_device; }

/* ---- a host scope device: the same memory, one scope's counters ---- */

typedef struct scope_device {
    mem_device base;
    mem_scope *scope;
} scope_device;

static mem_scope *scope_of(const mem_device *device) { return ((const scope_device *)device)->scope; }

static canvas_status scope_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out)
{
    mem_scope *outer = mem_scope_enter(scope_of(device));
    canvas_status st = mem_alloc_aligned(out, size, align, cls);
    mem_scope_leave(outer);
    return st;
}

static void scope_get_stats(const mem_device *device, mem_device_stats *out)
{
    mem_scope_stats(scope_of(device), out->classes, &out->current_bytes, &out->peak_bytes, &out->refused);
    out->cap_bytes = mem_scope_cap(scope_of(device));
    out->reserved_bytes = out->current_bytes;
    out->free_bytes = out->cap_bytes > out->current_bytes ? out->cap_bytes - out->current_bytes : 0;
    out->largest_free_block = out->free_bytes;
}

static void scope_reset_peaks(mem_device *device) { mem_scope_reset_peaks(scope_of(device)); }

static canvas_status scope_set_cap(mem_device *device, size_t cap)
{
    mem_scope_set_cap(scope_of(device), cap);
    return CANVAS_OK;
}

static void scope_destroy(mem_device *device)
{
    mem_scope_release(scope_of(device));
    mem_free(device);
}

static const mem_device_ops scope_ops = {
    .flags = MEM_DEVICE_HOST_ADDRESSABLE | MEM_DEVICE_HOLDS_DATA | MEM_DEVICE_IS_HOST,
    .alloc_block = scope_alloc,
    .free_block = cpu_free,
    .holds = cpu_holds,
    .get_stats = scope_get_stats,
    .reset_peaks = scope_reset_peaks,
    .set_cap = scope_set_cap,
    .copy_to_device = cpu_copy,
    .copy_to_host = cpu_copy,
    .wait = cpu_wait,
    .destroy = scope_destroy,
};

canvas_status mem_device_create_host_scope(const char *name, size_t cap, mem_device **out)
{
    *out = NULL;
    scope_device *d;
    /* outside any scope: the device is its creator's, not its own */
    mem_scope *outer = mem_scope_enter(NULL);
    canvas_status st = mem_calloc((void **)&d, 1, sizeof *d, MEM_SCRATCH);
    mem_scope_leave(outer);
    TRY(st);
    st = mem_scope_create(cap, &d->scope);
    if (st != CANVAS_OK) {
        mem_free(d);
        return st;
    }
    mem_device_init(&d->base, &scope_ops, name, "host");
    *out = &d->base;
    return CANVAS_OK;
}

mem_scope *mem_device_host_scope(const mem_device *device)
{
    return device && device->ops == &scope_ops ? scope_of(device) : NULL;
}
