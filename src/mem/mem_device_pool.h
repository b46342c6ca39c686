/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_pool.h — a device over one region carved by mem_range (first fit with
 * coalescing), shared by the capped pool, the measure device and any device whose memory
 * comes as one region (a CUDA device over one cudaMalloc).
 *
 * The pool owns the accounting (per class and in total, peaks, refusals), the cap and the
 * lock; the implementation owns the region: it maps it, hands its base to
 * mem_pool_init, and releases it after mem_pool_finish. Blocks are region + offset. */
#ifndef CANVAS_MEM_DEVICE_POOL_H
#define CANVAS_MEM_DEVICE_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "mem/mem_device_impl.h"
#include "mem/mem_range.h"

typedef struct mem_pool_class_counters {
    atomic_size_t current, peak;
    atomic_uint_fast64_t allocations, live;
} mem_pool_class_counters;

typedef struct mem_pool {
    mem_device device; /* first: a mem_pool is a mem_device */
    pthread_mutex_t lock;
    mem_range range;
    char *base;
    size_t region_bytes;
    atomic_size_t cap;
    mem_pool_class_counters classes[MEM_CLASS_COUNT];
    atomic_size_t current, peak;
    atomic_uint_fast64_t refused;
} mem_pool;

/* Manage [base, base + region_bytes) with a cap of `cap` bytes (0: none); the header is
 * set up with mem_device_init(ops, name, fallback). On failure nothing is left to undo. */
canvas_status mem_pool_init(mem_pool *pool, const mem_device_ops *ops, const char *name, const char *fallback,
                            void *base, size_t region_bytes, size_t cap);
/* Undo mem_pool_init (the region itself is the implementation's). */
void mem_pool_finish(mem_pool *pool);

/* The common case of the CPU build: a struct of `struct_bytes` (>= sizeof(mem_pool), zeroed;
 * room for the implementation's own fields after the pool) over a region mapped from the
 * kernel: `cap` bytes readable and writable (accessible 1), or untouchable (accessible 0:
 * cap bytes, or with cap 0 the largest reservation mem_region_reserve_untouchable gets).
 * mem_pool_destroy_mapped undoes it (an ops table's destroy). */
canvas_status mem_pool_create_mapped(const mem_device_ops *ops, const char *name, const char *fallback, size_t cap,
                                     int accessible, size_t struct_bytes, mem_pool **out);
void mem_pool_destroy_mapped(mem_device *device);

/* Free a block; its requested size in *requested. -1 when it is not a block of the pool. */
int mem_pool_release(mem_pool *pool, void *block, size_t *requested);

/* Functions for a mem_device_ops table (the device is a mem_pool). mem_pool_alloc injects
 * faults when the ops' flags have MEM_DEVICE_HOLDS_DATA. */
canvas_status mem_pool_alloc(mem_device *device, mem_class cls, size_t size, size_t align, void **out);
int mem_pool_free(mem_device *device, void *block);
int mem_pool_holds(const mem_device *device, const void *block, size_t bytes);
void mem_pool_get_stats(const mem_device *device, mem_device_stats *out);
void mem_pool_reset_peaks(mem_device *device);
canvas_status mem_pool_set_cap(mem_device *device, size_t cap);
void mem_pool_count_virtual(mem_device *device, mem_class cls, size_t add, size_t remove, int blocks);

#endif
