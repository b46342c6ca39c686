/* SPDX-License-Identifier: Apache-2.0 */
/* mem.h — the one allocation interface of the library.
 *
 * Every byte the library allocates goes through mem_alloc with a class, so that it is
 * counted, can be capped and can be made to fail on purpose. Nothing in src/ calls
 * malloc/calloc/realloc/free directly (tests/test_no_raw_alloc.sh checks this).
 *
 * This is the host ("cpu") pool. mem_device.h puts devices with caps (a capped pool that
 * plays a GPU, the measure device for dry runs) behind the same classes, accounting and
 * fault injector; docs/memory.md describes the whole model. */
#ifndef CANVAS_MEM_H
#define CANVAS_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

typedef enum mem_class {
    MEM_WEIGHTS = 0,   /* model weights living in RAM (not the mmapped files)  */
    MEM_ACTIVATIONS,   /* tensors of a forward pass                           */
    MEM_STAGING,       /* transfer buffers (pinned on CUDA)                    */
    MEM_SCRATCH,       /* small host bookkeeping: names, JSON, tables          */
    MEM_CLASS_COUNT
} mem_class;

/* Alignment of every block: enough for AVX-512 loads and cache lines. */
#define MEM_ALIGNMENT 64

/* Allocate `size` bytes (64-byte aligned, uninitialised). On failure *out is NULL and
 * the status is CANVAS_ERR_OUT_OF_MEMORY with a reason naming the class and size. */
canvas_status mem_alloc(void **out, size_t size, mem_class cls);

/* Same with a larger alignment (a power of two; below MEM_ALIGNMENT means MEM_ALIGNMENT).
 * The block is freed with mem_free like any other. */
canvas_status mem_alloc_aligned(void **out, size_t size, size_t alignment, mem_class cls);

/* Same, zero-filled; count*size is checked for overflow. */
canvas_status mem_calloc(void **out, size_t count, size_t size, mem_class cls);

/* Grow or shrink a block from mem_alloc (contents kept up to the smaller size). On
 * failure the old block is untouched and still owned by the caller. */
canvas_status mem_realloc(void **block, size_t new_size, mem_class cls);

/* Copy a string into a new MEM_SCRATCH block. */
canvas_status mem_strdup(char **out, const char *text);

/* Free a block from mem_alloc; NULL is ignored. */
void mem_free(void *block);

/* Accounting, exact to the byte of what callers asked for. */
typedef struct mem_class_stats {
    size_t current_bytes;
    size_t peak_bytes;
    uint64_t allocations;   /* successful allocations so far */
    uint64_t live_blocks;   /* allocated and not yet freed   */
} mem_class_stats;

void mem_get_stats(mem_class cls, mem_class_stats *out);
size_t mem_total_current(void);
/* The bytes held by the calling thread's scope (mem_scope_enter), or by the process when it
 * is in none: what a step of its own work added, measured around it. */
size_t mem_thread_current(void);
/* Reset every class's peak to its current value (at the start of a phase). */
void mem_reset_peaks(void);
const char *mem_class_name(mem_class cls);

/* The calling thread's last refusal for lack of room (a cap or, on a device, no free block
 * large enough; not an injected failure, not the C allocator's): its numbers, so that a
 * caller can tell whether two out-of-memories were the same (a retry that changed nothing)
 * without reading their messages. The host pool's --ram cap is device "host", a model's
 * host scope "host scope", a device pool its own name. */
typedef struct mem_refusal {
    uint64_t count;          /* refusals on this thread so far (0: none yet, the rest is zero) */
    size_t asked;            /* the bytes asked for */
    size_t in_use;           /* bytes in use under the cap then */
    size_t cap;              /* the cap (a device pool without one: its capacity) */
    size_t largest_free;     /* a device pool's largest free block when it was fragmented; else 0 */
    mem_class cls;
    char device[32];         /* where (cut to 31 bytes) */
} mem_refusal;

void mem_last_refusal(mem_refusal *out);
/* 1 when two refusals asked the same bytes of the same class of the same device with the same
 * in use, cap and largest free block (their counts aside). */
int mem_refusal_same(const mem_refusal *a, const mem_refusal *b);

/* Host accounting scopes: the host memory of one owner (an open model, canvas_options.ram_bytes).
 * While a thread is inside a scope (mem_scope_enter), every allocation it makes is charged
 * to the scope as well as to the process's counters above, and refused with
 * CANVAS_ERR_OUT_OF_MEMORY when it would pass the scope's cap; each block remembers its
 * scope, so mem_free credits it back from any thread. A scope sees the allocations of the
 * threads inside it only: the library allocates on the thread that called it (the thread
 * pool's workers and the copy thread allocate nothing), so that is all of a model's work.
 * The scope's counters are read through its device (mem_device_create_host_scope). */
typedef struct mem_scope mem_scope;

/* Make `scope` (NULL: none) the calling thread's; returns the one it replaces, to give back
 * to mem_scope_leave (scopes nest: an allocation that belongs to the caller, like a result,
 * is made after mem_scope_enter(NULL)). */
mem_scope *mem_scope_enter(mem_scope *scope);
void mem_scope_leave(mem_scope *previous);
/* The calling thread's scope (NULL: none). */
mem_scope *mem_scope_current(void);

/* Fault injection (SQLite-style): fail the n-th allocation counted from when it is armed
 * (1-based), only counting allocations of class `only_class` when that is >= 0. Transient
 * fails that one allocation; persistent fails it and every later counted one. Failed
 * allocations return CANVAS_ERR_OUT_OF_MEMORY with "(injected)" in the reason. */
typedef struct mem_fault_plan {
    uint64_t nth;
    int persistent;
    int only_class;   /* a mem_class, or -1 for every class */
} mem_fault_plan;

void mem_fault_arm(const mem_fault_plan *plan);
void mem_fault_disarm(void);
/* Injected failures since the plan was armed. */
uint64_t mem_fault_hits(void);
/* Parse CANVAS_FAIL_ALLOC ("N", "N+", "N:weights", "N+:activations"); CANVAS_ERR_USAGE
 * naming the variable when malformed. */
canvas_status mem_fault_parse(const char *text, mem_fault_plan *out);
/* Arm from the environment variable CANVAS_FAIL_ALLOC when it is set (CLI start-up). */
canvas_status mem_fault_arm_from_env(void);
/* Allocations made between begin and end on the calling thread are not counted by the
 * fault injector: bookkeeping (tables that grow, the profiler's exports) is not an
 * allocation site of the model, so CANVAS_FAIL_ALLOC=N keeps meaning "the N-th allocation
 * the model asked for". */
void mem_fault_exempt_begin(void);
void mem_fault_exempt_end(void);

#endif
