/* SPDX-License-Identifier: Apache-2.0 */
/* mem_range.c — first fit over a sorted segment table; neighbours merge on free.
 *
 * Cost: alloc and free are O(segments) (a scan and a memmove). A forward keeps tens to a
 * few hundred blocks live on a device, and the hot path (activations) goes through an
 * arena, so a tree is not worth its code here. */
#include "mem/mem_range.h"

#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "mem/mem_internal.h"

static size_t round_up(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

canvas_status mem_range_init(mem_range *range, size_t capacity)
{
    memset(range, 0, sizeof *range);
    range->capacity = capacity / MEM_RANGE_GRANULE * MEM_RANGE_GRANULE;
    void *table;
    mem_fault_exempt_begin();
    canvas_status status = mem_alloc(&table, 64 * sizeof(mem_range_segment), MEM_SCRATCH);
    mem_fault_exempt_end();
    if (status != CANVAS_OK) return status;
    range->segments = table;
    range->table_size = 64;
    range->n_segments = 1;
    range->segments[0] = (mem_range_segment){0, range->capacity, 0, 0, 0};
    return CANVAS_OK;
}

void mem_range_destroy(mem_range *range)
{
    mem_free(range->segments);
    memset(range, 0, sizeof *range);
}

/* Room for two more segments (a split makes at most two). */
static canvas_status reserve_two(mem_range *range)
{
    if (range->n_segments + 2 <= range->table_size) return CANVAS_OK;
    void *table = range->segments;
    mem_fault_exempt_begin();
    canvas_status status = mem_realloc(&table, (size_t)range->table_size * 2 * sizeof(mem_range_segment), MEM_SCRATCH);
    mem_fault_exempt_end();
    if (status != CANVAS_OK) return status;
    range->segments = table;
    range->table_size *= 2;
    return CANVAS_OK;
}

static void insert_at(mem_range *range, int index, mem_range_segment segment)
{
    memmove(&range->segments[index + 1], &range->segments[index],
            (size_t)(range->n_segments - index) * sizeof(mem_range_segment));
    range->segments[index] = segment;
    range->n_segments++;
}

static void remove_at(mem_range *range, int index)
{
    memmove(&range->segments[index], &range->segments[index + 1],
            (size_t)(range->n_segments - index - 1) * sizeof(mem_range_segment));
    range->n_segments--;
}

canvas_status mem_range_alloc(mem_range *range, size_t size, size_t align, int cls, size_t *out_offset)
{
    if (align < MEM_RANGE_GRANULE) align = MEM_RANGE_GRANULE;
    if (size > range->capacity) return CANVAS_ERR_OUT_OF_MEMORY;
    size_t rounded = mem_range_rounded(size);
    for (int i = 0; i < range->n_segments; i++) {
        mem_range_segment *s = &range->segments[i];
        if (s->used || s->size < rounded) continue;
        size_t start = round_up(s->offset, align);
        size_t end = s->offset + s->size;
        if (start > end || end - start < rounded) continue;
        TRY(reserve_two(range));
        s = &range->segments[i]; /* the table may have moved */
        size_t lead = start - s->offset, tail = end - start - rounded;
        if (lead) {
            s->size = lead;
            insert_at(range, ++i, (mem_range_segment){start, rounded, 0, 0, 0});
        }
        s = &range->segments[i];
        *s = (mem_range_segment){start, rounded, 1, cls, size};
        if (tail) insert_at(range, i + 1, (mem_range_segment){start + rounded, tail, 0, 0, 0});
        range->used_bytes += rounded;
        *out_offset = start;
        return CANVAS_OK;
    }
    return CANVAS_ERR_OUT_OF_MEMORY;
}

int mem_range_free(mem_range *range, size_t offset, size_t *out_requested, int *out_cls)
{
    int lo = 0, hi = range->n_segments - 1, found = -1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (range->segments[mid].offset == offset) {
            found = mid;
            break;
        }
        if (range->segments[mid].offset < offset) lo = mid + 1;
        else hi = mid - 1;
    }
    if (found < 0 || !range->segments[found].used) return -1;
    mem_range_segment *s = &range->segments[found];
    *out_requested = s->requested;
    *out_cls = s->cls;
    range->used_bytes -= s->size;
    s->used = 0;
    s->requested = 0;
    if (found + 1 < range->n_segments && !range->segments[found + 1].used) {
        s->size += range->segments[found + 1].size;
        remove_at(range, found + 1);
    }
    if (found > 0 && !range->segments[found - 1].used) {
        range->segments[found - 1].size += range->segments[found].size;
        remove_at(range, found);
    }
    return 0;
}

size_t mem_range_largest_free(const mem_range *range)
{
    size_t largest = 0;
    for (int i = 0; i < range->n_segments; i++)
        if (!range->segments[i].used && range->segments[i].size > largest) largest = range->segments[i].size;
    return largest;
}
