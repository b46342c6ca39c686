/* SPDX-License-Identifier: Apache-2.0 */
/* mem_host.c — the host pool behind mem.h: the only place that calls the C allocator.
 *
 * Each block carries a small header in front of the aligned pointer that records the
 * requested size, the class and the raw pointer, so mem_free needs no size and the
 * accounting is exact. Counters are atomics: threads of the pool allocate too. The
 * host pool is the "cpu" device of mem_device.h; its optional cap (--ram) is checked
 * here, against the total of all classes. A block made inside a host accounting scope
 * (mem.h) is charged to the scope too, and checked against the scope's cap. */
#include "mem/mem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem_fault.h"
#include "mem/mem_internal.h"

typedef struct block_header {
    void *raw;          /* what malloc returned */
    size_t size;        /* what the caller asked for */
    mem_scope *scope;   /* charged to it too; NULL: the process only */
    uint32_t cls;
    uint32_t magic;
} block_header;

#define BLOCK_MAGIC 0xCA57A11Cu
/* Header space in front of each block: a multiple of the alignment. */
#define HEADER_SPACE ((sizeof(block_header) + MEM_ALIGNMENT - 1) / MEM_ALIGNMENT * MEM_ALIGNMENT)

typedef struct class_counters {
    atomic_size_t current;
    atomic_size_t peak;
    atomic_uint_fast64_t allocations;
    atomic_uint_fast64_t live;
} class_counters;

/* The counters of a pool of host memory: the process's, or a scope's. */
typedef struct pool_counters {
    class_counters classes[MEM_CLASS_COUNT];
    /* All classes together: what the cap is checked against. */
    atomic_size_t total_current, total_peak;
    atomic_size_t cap; /* 0: no cap */
    atomic_uint_fast64_t refusals;
} pool_counters;

static pool_counters process;

struct mem_scope {
    pool_counters counters;
    atomic_uint_fast64_t holders; /* its creator (until mem_scope_release) + one per live block */
};

static _Thread_local mem_scope *thread_scope;
static _Thread_local mem_refusal last_refusal;

static const char *const class_names[MEM_CLASS_COUNT] = {"weights", "activations", "staging", "scratch"};

const char *mem_class_name(mem_class cls) { return (unsigned)cls < MEM_CLASS_COUNT ? class_names[cls] : "?"; }

static void account_add(pool_counters *pool, mem_class cls, size_t size)
{
    class_counters *c = &pool->classes[cls];
    mem_counter_add(&c->current, &c->peak, size);
    atomic_fetch_add(&c->allocations, 1);
    atomic_fetch_add(&c->live, 1);
}

/* Claim `size` bytes of the pool's total; 0 when that would pass its cap (nothing claimed;
 * the refusal recorded as the thread's last, under `name`). */
static int claim_total(pool_counters *pool, size_t size, mem_class cls, const char *name)
{
    size_t cap = atomic_load_explicit(&pool->cap, memory_order_relaxed);
    size_t now = atomic_fetch_add(&pool->total_current, size) + size;
    if (cap && now > cap) {
        atomic_fetch_sub(&pool->total_current, size);
        atomic_fetch_add(&pool->refusals, 1);
        mem_refusal_note(name, cls, size, now - size, cap, 0);
        return 0;
    }
    mem_peak_raise(&pool->total_peak, now);
    return 1;
}

void mem_refusal_note(const char *device, mem_class cls, size_t asked, size_t in_use, size_t cap, size_t largest_free)
{
    const uint64_t count = last_refusal.count + 1;
    last_refusal = (mem_refusal){count, asked, in_use, cap, largest_free, cls, ""};
    snprintf(last_refusal.device, sizeof last_refusal.device, "%s", device);
}

void mem_last_refusal(mem_refusal *out) { *out = last_refusal; }

int mem_refusal_same(const mem_refusal *a, const mem_refusal *b)
{
    return a->asked == b->asked && a->in_use == b->in_use && a->cap == b->cap && a->largest_free == b->largest_free &&
           a->cls == b->cls && !strcmp(a->device, b->device);
}

static void account_remove(pool_counters *pool, mem_class cls, size_t size)
{
    atomic_fetch_sub(&pool->total_current, size);
    atomic_fetch_sub(&pool->classes[cls].current, size);
    atomic_fetch_sub(&pool->classes[cls].live, 1);
}

/* Claim `size` bytes for a block of class cls: the process's total, and the scope's when
 * there is one. The reason names the cap it would pass. */
static canvas_status claim(mem_scope *scope, size_t size, mem_class cls)
{
    /* the message says the numbers recorded (mem_last_refusal) */
    if (!claim_total(&process, size, cls, "host"))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory: %zu bytes of %s would pass the host RAM cap of %zu bytes (%zu in use); "
                           "raise --ram or choose a plan that keeps less in RAM",
                           size, class_names[cls], last_refusal.cap, last_refusal.in_use);
    if (scope && !claim_total(&scope->counters, size, cls, "host scope")) {
        atomic_fetch_sub(&process.total_current, size);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY,
                           "out of memory: %zu bytes of %s would pass the model's host RAM cap of %zu bytes (%zu in "
                           "use by the model); raise --ram or choose a plan that keeps less in RAM",
                           size, class_names[cls], last_refusal.cap, last_refusal.in_use);
    }
    return CANVAS_OK;
}

static void unclaim(mem_scope *scope, size_t size)
{
    atomic_fetch_sub(&process.total_current, size);
    if (scope) atomic_fetch_sub(&scope->counters.total_current, size);
}

static block_header *header_of(void *block) { return (block_header *)((char *)block - HEADER_SPACE); }

canvas_status mem_alloc_aligned(void **out, size_t size, size_t alignment, mem_class cls)
{
    *out = NULL;
    if ((unsigned)cls >= MEM_CLASS_COUNT) return status_fail(CANVAS_ERR_INTERNAL, "mem_alloc: unknown class %d", (int)cls);
    if (alignment < MEM_ALIGNMENT) alignment = MEM_ALIGNMENT;
    if (alignment & (alignment - 1))
        return status_fail(CANVAS_ERR_INTERNAL, "mem_alloc: alignment %zu is not a power of two", alignment);
    if (size > SIZE_MAX / 2 - HEADER_SPACE - alignment)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: %zu bytes of %s is more than can be addressed",
                           size, class_names[cls]);
    if (mem_fault_should_fail(cls))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: %zu bytes of %s (injected)", size, class_names[cls]);
    mem_scope *scope = thread_scope;
    TRY(claim(scope, size, cls));
    void *raw = malloc(size + HEADER_SPACE + alignment);
    if (!raw) {
        unclaim(scope, size);
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: could not allocate %zu bytes of %s in host RAM",
                           size, class_names[cls]);
    }
    uintptr_t start = ((uintptr_t)raw + HEADER_SPACE + alignment - 1) & ~(uintptr_t)(alignment - 1);
    void *block = (void *)start;
    block_header *h = header_of(block);
    h->raw = raw;
    h->size = size;
    h->scope = scope;
    h->cls = (uint32_t)cls;
    h->magic = BLOCK_MAGIC;
    account_add(&process, cls, size);
    if (scope) {
        account_add(&scope->counters, cls, size);
        atomic_fetch_add(&scope->holders, 1);
    }
    *out = block;
    return CANVAS_OK;
}

canvas_status mem_alloc(void **out, size_t size, mem_class cls) { return mem_alloc_aligned(out, size, MEM_ALIGNMENT, cls); }

canvas_status mem_calloc(void **out, size_t count, size_t size, mem_class cls)
{
    *out = NULL;
    if (size != 0 && count > SIZE_MAX / size)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: %zu x %zu bytes of %s overflows", count, size,
                           class_names[cls]);
    TRY(mem_alloc(out, count * size, cls));
    memset(*out, 0, count * size);
    return CANVAS_OK;
}

canvas_status mem_realloc(void **block, size_t new_size, mem_class cls)
{
    void *fresh;
    TRY(mem_alloc(&fresh, new_size, cls));
    if (*block) {
        size_t old_size = header_of(*block)->size;
        memcpy(fresh, *block, old_size < new_size ? old_size : new_size);
        mem_free(*block);
    }
    *block = fresh;
    return CANVAS_OK;
}

canvas_status mem_strdup(char **out, const char *text)
{
    size_t n = strlen(text) + 1;
    void *copy;
    TRY(mem_alloc(&copy, n, MEM_SCRATCH));
    memcpy(copy, text, n);
    *out = copy;
    return CANVAS_OK;
}

void mem_free(void *block)
{
    if (!block) return;
    block_header *h = header_of(block);
    /* A pointer that did not come from mem_alloc is a bug; leaking it (LSan reports it
     * in the test builds) is safer than corrupting the counters or the C heap. */
    if (h->magic != BLOCK_MAGIC) return;
    h->magic = 0;
    account_remove(&process, (mem_class)h->cls, h->size);
    if (h->scope) {
        account_remove(&h->scope->counters, (mem_class)h->cls, h->size);
        mem_scope_release(h->scope); /* the block's hold */
    }
    free(h->raw);
}

static void class_stats(const class_counters *c, mem_class_stats *out)
{
    out->current_bytes = atomic_load(&c->current);
    out->peak_bytes = atomic_load(&c->peak);
    out->allocations = atomic_load(&c->allocations);
    out->live_blocks = atomic_load(&c->live);
}

void mem_get_stats(mem_class cls, mem_class_stats *out) { class_stats(&process.classes[cls], out); }

static size_t pool_current(const pool_counters *pool)
{
    size_t total = 0;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) total += atomic_load(&pool->classes[c].current);
    return total;
}

size_t mem_total_current(void) { return pool_current(&process); }

size_t mem_thread_current(void) { return thread_scope ? pool_current(&thread_scope->counters) : pool_current(&process); }

static void reset_peaks(pool_counters *pool)
{
    for (int c = 0; c < MEM_CLASS_COUNT; c++)
        atomic_store(&pool->classes[c].peak, atomic_load(&pool->classes[c].current));
    atomic_store(&pool->total_peak, atomic_load(&pool->total_current));
}

void mem_reset_peaks(void) { reset_peaks(&process); }

void mem_host_set_cap(size_t bytes) { atomic_store(&process.cap, bytes); }

size_t mem_host_cap(void) { return atomic_load(&process.cap); }

void mem_host_totals(size_t *current, size_t *peak, uint64_t *refusals)
{
    *current = atomic_load(&process.total_current);
    *peak = atomic_load(&process.total_peak);
    *refusals = atomic_load(&process.refusals);
}

/* ---- host accounting scopes ---- */

mem_scope *mem_scope_enter(mem_scope *scope)
{
    mem_scope *previous = thread_scope;
    thread_scope = scope;
    return previous;
}

void mem_scope_leave(mem_scope *previous) { thread_scope = previous; }

mem_scope *mem_scope_current(void) { return thread_scope; }

canvas_status mem_scope_create(size_t cap, mem_scope **out)
{
    /* the scope's own few hundred bytes are the allocator's bookkeeping, outside every count */
    mem_scope *scope = calloc(1, sizeof *scope);
    *out = scope;
    if (!scope) return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "out of memory: no room for a host accounting scope");
    atomic_store(&scope->counters.cap, cap);
    atomic_store(&scope->holders, 1);
    return CANVAS_OK;
}

void mem_scope_release(mem_scope *scope)
{
    if (scope && atomic_fetch_sub(&scope->holders, 1) == 1) free(scope);
}

void mem_scope_set_cap(mem_scope *scope, size_t cap) { atomic_store(&scope->counters.cap, cap); }

size_t mem_scope_cap(const mem_scope *scope) { return atomic_load(&((mem_scope *)scope)->counters.cap); }

void mem_scope_stats(const mem_scope *scope, mem_class_stats classes[MEM_CLASS_COUNT], size_t *current, size_t *peak,
                     uint64_t *refusals)
{
    pool_counters *pool = &((mem_scope *)scope)->counters;
    for (int c = 0; c < MEM_CLASS_COUNT; c++) class_stats(&pool->classes[c], &classes[c]);
    *current = atomic_load(&pool->total_current);
    *peak = atomic_load(&pool->total_peak);
    *refusals = atomic_load(&pool->refusals);
}

void mem_scope_reset_peaks(mem_scope *scope) { reset_peaks(&scope->counters); }
