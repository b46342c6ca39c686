/* SPDX-License-Identifier: Apache-2.0 */
/* mem_arena.h — one block per forward for activations, carved by a bump pointer.
 *
 * The size comes from a dry run: run the forward once with a *sizing* arena (created on a
 * measure device with capacity 0: it hands out non-dereferenceable addresses and grows
 * without bound), read mem_arena_high_water(), then create the real arena with exactly
 * that capacity on the real device and run the same code. Offsets depend only on the
 * sequence of calls (the block starts at MEM_ARENA_ALIGNMENT, alignments are at most
 * that), so the real run's high water equals the dry run's to the byte.
 *
 * Inside a forward: mem_arena_mark() before a layer's temporaries, mem_arena_rewind()
 * after them (stack order), mem_arena_reset() between forwards. No per-op allocation in
 * hot loops: an arena allocation is an add and a compare. Not thread-safe (one arena per
 * forward, allocated from the forward's thread). */
#ifndef CANVAS_MEM_ARENA_H
#define CANVAS_MEM_ARENA_H

#include <stddef.h>

#include "canvas.h"
#include "mem/mem_device.h"

#define MEM_ARENA_ALIGNMENT 4096

typedef struct mem_arena mem_arena;

/* capacity > 0: one block of `capacity` bytes of class `cls` on `device` (fails like any
 * allocation: out of memory, capped, injected). capacity 0 on a measure device: a sizing
 * arena, whose growth is counted on the device as one block of class `cls`. */
canvas_status mem_arena_create(mem_device *device, mem_class cls, size_t capacity, mem_arena **out);
void mem_arena_destroy(mem_arena *arena);

/* `size` bytes at a multiple of `align` (a power of two up to MEM_ARENA_ALIGNMENT; 0 means
 * MEM_ALIGNMENT). CANVAS_ERR_OUT_OF_MEMORY when the arena is full, with the sizes in the
 * reason; a fault-injection point like any allocation (except in a sizing arena). */
canvas_status mem_arena_alloc(mem_arena *arena, size_t size, size_t align, void **out);

/* Stack discipline: rewind to a mark frees everything allocated after it. */
size_t mem_arena_mark(const mem_arena *arena);
void mem_arena_rewind(mem_arena *arena, size_t mark);
/* Everything is free again (start of a forward); the high water is kept. */
void mem_arena_reset(mem_arena *arena);

size_t mem_arena_used(const mem_arena *arena);
size_t mem_arena_high_water(const mem_arena *arena);
size_t mem_arena_capacity(const mem_arena *arena); /* 0 for a sizing arena */

#endif
