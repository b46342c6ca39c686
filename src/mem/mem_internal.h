/* SPDX-License-Identifier: Apache-2.0 */
/* mem_internal.h — what the files of mem/ share and nothing outside mem/ should call. */
#ifndef CANVAS_MEM_INTERNAL_H
#define CANVAS_MEM_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/mem.h"

/* Raise a peak to `now` when it is below (the devices' and the host pool's accounting:
 * current and peak are separate atomics, so a racing reader may see a peak a moment late). */
static inline void mem_peak_raise(atomic_size_t *peak, size_t now)
{
    size_t seen = atomic_load(peak);
    while (now > seen && !atomic_compare_exchange_weak(peak, &seen, now)) {
    }
}

/* Add `size` to a byte counter and raise its peak to the new value. */
static inline void mem_counter_add(atomic_size_t *current, atomic_size_t *peak, size_t size)
{
    mem_peak_raise(peak, atomic_fetch_add(current, size) + size);
}

/* The host pool's cap over all classes together (0: none); the cpu device's cap. */
void mem_host_set_cap(size_t bytes);
size_t mem_host_cap(void);
/* Host bytes in use and their peak over all classes; allocations refused by the cap. */
void mem_host_totals(size_t *current, size_t *peak, uint64_t *refusals);

/* Record a refusal for lack of room as the calling thread's last (mem_last_refusal). */
void mem_refusal_note(const char *device, mem_class cls, size_t asked, size_t in_use, size_t cap, size_t largest_free);

/* Host accounting scopes (mem.h), for the device that shows one (mem_device_cpu.c). create:
 * a scope with a cap (0: none), held by its creator; release: the creator lets go, and the
 * scope is freed with its last block (blocks may outlive their owner: a result the caller
 * frees later). stats: the scope's counters as the host pool's (mem_host_totals). */
canvas_status mem_scope_create(size_t cap, mem_scope **out);
void mem_scope_release(mem_scope *scope);
void mem_scope_set_cap(mem_scope *scope, size_t cap);
size_t mem_scope_cap(const mem_scope *scope);
void mem_scope_stats(const mem_scope *scope, mem_class_stats classes[MEM_CLASS_COUNT], size_t *current, size_t *peak,
                     uint64_t *refusals);
void mem_scope_reset_peaks(mem_scope *scope);

/* Address space from the kernel (mmap), not from the C heap: `accessible` 0 gives a
 * PROT_NONE reservation whose addresses fault when touched (the measure device's
 * tokens); 1 gives zero-filled read/write memory committed page by page on first touch
 * (the capped pool that plays a GPU). `bytes` is rounded up to pages. */
canvas_status mem_region_reserve(size_t bytes, int accessible, void **out);
/* The largest PROT_NONE reservation the kernel grants, from 1 TiB down to 1 GiB (a measure
 * device without a cap, a sizing arena); *out_bytes gets its size. */
canvas_status mem_region_reserve_untouchable(size_t *out_bytes, void **out);
void mem_region_release(void *base, size_t bytes);
/* Give the pages of [start, start + bytes) inside an accessible region back to the kernel
 * (they read as zero afterwards); only whole pages inside the range are returned. */
void mem_region_discard(void *start, size_t bytes);

/* For mem_transfer.c: does [block, block + bytes) lie inside the device's region (always
 * 1 on the cpu device); count bytes copied onto / off a device. */
struct mem_device;
void mem_device_count_copy(struct mem_device *device, uint64_t bytes_in, uint64_t bytes_out);
/* For a sizing arena: count bytes on a dry-run device that no block holds (it grows as one
 * block): `add` and `remove` bytes of class cls, `blocks` +1 at creation, -1 at destruction,
 * 0 otherwise. Nothing on a device without count_virtual (mem_device_impl.h). */
void mem_device_count_virtual(struct mem_device *device, mem_class cls, size_t add, size_t remove, int blocks);

#endif
