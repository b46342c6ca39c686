/* SPDX-License-Identifier: Apache-2.0 */
/* mem_range.h — a first-fit allocator of offsets inside one range, with coalescing.
 *
 * It manages numbers, not memory: the capped pool puts it over one mmapped region (as a
 * CUDA build will over one cudaMalloc), the measure device over an address range that
 * cannot be touched. Both therefore place blocks identically, so a dry run predicts
 * fragmentation and "largest free block" of the real pool exactly. Metadata lives on the
 * host (a table of segments sorted by offset), never inside the managed range.
 *
 * Every block's size is rounded up to MEM_RANGE_GRANULE; a block starts at a multiple
 * of its alignment. Not thread-safe: the owning device holds a lock. */
#ifndef CANVAS_MEM_RANGE_H
#define CANVAS_MEM_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

#define MEM_RANGE_GRANULE 64

/* What a block of `size` bytes spends in the range (at least one granule): the device
 * checks its cap against this, mem_range_alloc places this many bytes. */
static inline size_t mem_range_rounded(size_t size)
{
    return ((size ? size : 1) + MEM_RANGE_GRANULE - 1) / MEM_RANGE_GRANULE * MEM_RANGE_GRANULE;
}

typedef struct mem_range_segment {
    size_t offset;
    size_t size;      /* granule-rounded */
    int used;         /* 0: free */
    int cls;          /* the class of a used segment */
    size_t requested; /* what the caller asked for (used segments) */
} mem_range_segment;

typedef struct mem_range {
    size_t capacity;
    size_t used_bytes;           /* sum of used segment sizes (rounded) */
    int n_segments;
    int table_size;
    mem_range_segment *segments; /* sorted by offset, covering [0, capacity) without gaps */
} mem_range;

/* An empty range of `capacity` bytes (a multiple of the granule after rounding down). */
canvas_status mem_range_init(mem_range *range, size_t capacity);
void mem_range_destroy(mem_range *range);

/* Place `size` bytes at a multiple of `align` (a power of two). CANVAS_ERR_OUT_OF_MEMORY,
 * without a message (the device writes one), when no free segment fits or when the
 * segment table cannot grow. */
canvas_status mem_range_alloc(mem_range *range, size_t size, size_t align, int cls, size_t *out_offset);

/* Free the block that starts at `offset`; 0 on success, -1 when no block starts there
 * (the requested size and class are returned for the accounting). */
int mem_range_free(mem_range *range, size_t offset, size_t *out_requested, int *out_cls);

/* The largest free segment (the largest block that fits at alignment <= granule). */
size_t mem_range_largest_free(const mem_range *range);

#endif
