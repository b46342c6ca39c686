/* SPDX-License-Identifier: Apache-2.0 */
/* mem_device_impl.h — the device interface, for the files that implement a device.
 *
 * A device is a table of functions (mem_device_ops) and a header (struct mem_device) that
 * every implementation puts first in its own struct. mem_device.c dispatches the calls of
 * mem_device.h and mem_transfer.h through the table and keeps what is common to every
 * device: its name, its link bandwidth and the counters of bytes copied in and out.
 *
 * Implementations: mem_device_cpu.c (host RAM), mem_device_capped.c (a pool that plays a
 * GPU), mem_device_measure.c (dry runs); the last two share mem_device_pool.h. A CUDA
 * device is one more file: cudaMalloc'ed region under mem_device_pool.h, copies as
 * cudaMemcpyAsync on a copy stream, an event per copy, wait = cudaEventSynchronize.
 *
 * Code outside mem/ never includes this header (a test may, to build a device of its own). */
#ifndef CANVAS_MEM_DEVICE_IMPL_H
#define CANVAS_MEM_DEVICE_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "mem/mem_device.h"

/* A copy in flight: what copy_to_device / copy_to_host return and wait takes. 0 means
 * "already complete" (the host implementations copy synchronously). */
typedef uint64_t mem_device_event;

typedef struct mem_device_ops {
    unsigned flags; /* MEM_DEVICE_* of mem_device.h */

    /* `size` bytes of class cls at a multiple of `align`; the accounting, the cap and (on a
     * device that holds data) one fault-injection point per call are the implementation's.
     * On failure *out is NULL and the reason is set. */
    canvas_status (*alloc_block)(mem_device *device, mem_class cls, size_t size, size_t align, void **out);
    /* Free a block (not NULL). Returns -1, changing nothing, when it is not a block of the
     * device (mem_device.c counts it as a foreign free). */
    int (*free_block)(mem_device *device, void *block);
    /* 1 when [block, block + bytes) lies inside the device's memory (a copy's range check). */
    int (*holds)(const mem_device *device, const void *block, size_t bytes);

    /* Fill every field of *out except bytes_in / bytes_out (zeroed before the call). */
    void (*get_stats)(const mem_device *device, mem_device_stats *out);
    void (*reset_peaks)(mem_device *device);
    canvas_status (*set_cap)(mem_device *device, size_t cap);

    /* Start copying `bytes` (> 0) from host memory to a block range of the device
     * (copy_to_device) or from the device to host memory (copy_to_host); the ranges were
     * checked with holds(). *event gets the copy's event (0 when it is already done).
     * Neither the source nor the destination may be touched until wait returns. A device
     * without MEM_DEVICE_HOLDS_DATA is never asked to copy. */
    canvas_status (*copy_to_device)(mem_device *device, void *dst, const void *src, size_t bytes,
                                    mem_device_event *event);
    canvas_status (*copy_to_host)(mem_device *device, void *dst, const void *src, size_t bytes,
                                  mem_device_event *event);
    /* Block until the copy of `event` is complete; its failure, if it failed. */
    canvas_status (*wait)(mem_device *device, mem_device_event event);

    /* Dry-run devices only (may be NULL): count bytes that no block holds, for a sizing
     * arena (mem_arena.h) that grows as one block: `add` and `remove` bytes of class cls,
     * `blocks` +1 at the arena's creation, -1 at its destruction, 0 otherwise. */
    void (*count_virtual)(mem_device *device, mem_class cls, size_t add, size_t remove, int blocks);

    /* Release what the implementation holds, the struct included (NULL: never destroyed). */
    void (*destroy)(mem_device *device);
} mem_device_ops;

/* The header every device starts with. */
struct mem_device {
    const mem_device_ops *ops;
    char name[32];
    atomic_uint_fast64_t bytes_in, bytes_out, foreign_frees;
    double link_bytes_per_second;
    /* the transfers with this device at one end (mem_transfer.h), kept by mem_transfer.c */
    atomic_uint_fast64_t copies, moved_bytes, measured_bytes, copy_ns, wait_ns;
};

/* Set up the header: `name`, or `fallback` when name is NULL or empty. */
void mem_device_init(mem_device *device, const mem_device_ops *ops, const char *name, const char *fallback);

/* A memcpy paced to `bytes_per_second` (0: unpaced): done in 1 MiB chunks with sleeps, so
 * that it takes at least bytes / bytes_per_second seconds. The copy of the devices that
 * play a GPU on the CPU build, over their link (mem_device_set_link_bandwidth). */
void mem_device_paced_copy(void *dst, const void *src, size_t bytes, double bytes_per_second);

#endif
