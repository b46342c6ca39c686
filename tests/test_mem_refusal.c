/* SPDX-License-Identifier: Apache-2.0 */
/* test_mem_refusal.c — the allocator's record of the calling thread's last refusal for lack of
 * room (mem_last_refusal): its numbers for the host pool's cap, a model's host scope and a
 * capped device (over the cap and fragmented), left alone by injected failures and by what
 * succeeds, and per thread. The edit pipeline compares two of them to stop a retry that
 * changed nothing (tests/test_fallback_chain.c). */
#include <pthread.h>

#include "check.h"
#include "mem/mem.h"
#include "mem/mem_device.h"

#define KiB ((size_t)1024)

static void test_host_cap(void)
{
    mem_refusal before, r;
    mem_last_refusal(&before);
    void *held, *more;
    const size_t cap = mem_total_current() + 100 * KiB;
    CHECK_OK(mem_device_set_cap(mem_device_cpu(), cap));
    CHECK_OK(mem_alloc(&held, 60 * KiB, MEM_WEIGHTS));
    const size_t in_use = mem_total_current();
    CHECK_FAILS(mem_alloc(&more, 50 * KiB, MEM_ACTIVATIONS), CANVAS_ERR_OUT_OF_MEMORY, "host RAM cap");
    mem_last_refusal(&r);
    CHECK(r.count == before.count + 1);
    CHECK(r.asked == 50 * KiB && r.in_use == in_use && r.cap == cap && r.largest_free == 0);
    CHECK(r.cls == MEM_ACTIVATIONS && !strcmp(r.device, "host"));
    /* the message says the same numbers */
    char text[128];
    snprintf(text, sizeof text, "%zu bytes of activations would pass the host RAM cap of %zu bytes (%zu in use)",
             (size_t)(50 * KiB), cap, in_use);
    CHECK(strstr(canvas_last_error(), text) != NULL);

    /* the same refusal again: the same numbers, one more count */
    mem_refusal again;
    CHECK_FAILS(mem_alloc(&more, 50 * KiB, MEM_ACTIVATIONS), CANVAS_ERR_OUT_OF_MEMORY, "host RAM cap");
    mem_last_refusal(&again);
    CHECK(again.count == r.count + 1 && mem_refusal_same(&again, &r));
    /* one byte less in use, or another class: not the same */
    CHECK_FAILS(mem_alloc(&more, 50 * KiB, MEM_SCRATCH), CANVAS_ERR_OUT_OF_MEMORY, "host RAM cap");
    mem_last_refusal(&again);
    CHECK(again.cls == MEM_SCRATCH && !mem_refusal_same(&again, &r));
    mem_free(held);
    CHECK_OK(mem_alloc(&held, 60 * KiB - 1, MEM_WEIGHTS));
    CHECK_FAILS(mem_alloc(&more, 50 * KiB, MEM_ACTIVATIONS), CANVAS_ERR_OUT_OF_MEMORY, "host RAM cap");
    mem_last_refusal(&again);
    CHECK(again.in_use == in_use - 1 && !mem_refusal_same(&again, &r));

    /* an allocation that succeeds, and an injected failure, leave the record as it was */
    void *small;
    CHECK_OK(mem_alloc(&small, 16, MEM_SCRATCH));
    mem_free(small);
    mem_fault_arm(&(mem_fault_plan){1, 0, -1});
    CHECK_FAILS(mem_alloc(&small, 16, MEM_SCRATCH), CANVAS_ERR_OUT_OF_MEMORY, "(injected)");
    mem_fault_disarm();
    mem_refusal after;
    mem_last_refusal(&after);
    CHECK(after.count == again.count && mem_refusal_same(&after, &again));
    mem_free(held);
    CHECK_OK(mem_device_set_cap(mem_device_cpu(), 0));
}

/* A model's host scope: its own cap and in use, named "host scope". */
static void test_host_scope(void)
{
    mem_device *scope;
    CHECK_OK(mem_device_create_host_scope("model", 10000, &scope));
    mem_scope *outer = mem_scope_enter(mem_device_host_scope(scope));
    void *a, *b;
    CHECK_OK(mem_alloc(&a, 6000, MEM_WEIGHTS));
    CHECK_FAILS(mem_alloc(&b, 5000, MEM_STAGING), CANVAS_ERR_OUT_OF_MEMORY, "the model's host RAM cap");
    mem_scope_leave(outer);
    mem_refusal r;
    mem_last_refusal(&r);
    CHECK(r.asked == 5000 && r.in_use == 6000 && r.cap == 10000 && r.cls == MEM_STAGING);
    CHECK(!strcmp(r.device, "host scope") && r.largest_free == 0);
    mem_free(a);
    mem_device_destroy(scope);
}

/* A capped device: over its cap (in use = what its blocks reserve), then fragmented (the
 * largest free block recorded). */
static void test_device(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu0", 64 * KiB, &gpu));
    void *x, *y, *z, *big;
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 20 * KiB, 0, &x));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 20 * KiB, 0, &y));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 20 * KiB, 0, &z));
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 8 * KiB, 0, &big), CANVAS_ERR_OUT_OF_MEMORY, "under its cap");
    mem_refusal r;
    mem_last_refusal(&r);
    CHECK(r.asked == 8 * KiB && r.in_use == 60 * KiB && r.cap == 64 * KiB && r.largest_free == 0);
    CHECK(r.cls == MEM_ACTIVATIONS && !strcmp(r.device, "gpu0"));
    /* 44 KiB free under the cap, but as a 20 KiB hole and 24 KiB at the end (z's and the tail) */
    mem_device_free(gpu, x);
    mem_device_free(gpu, z);
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 30 * KiB, 0, &big), CANVAS_ERR_OUT_OF_MEMORY, "fragmented");
    mem_last_refusal(&r);
    CHECK(r.asked == 30 * KiB && r.in_use == 20 * KiB && r.cap == 64 * KiB);
    CHECK_MSG(r.largest_free == 24 * KiB, "largest free %zu", r.largest_free);
    mem_device_free(gpu, y);
    mem_device_destroy(gpu);
}

/* The record is the calling thread's: a refusal on another thread leaves this one's alone. */
static void *refuse_on_a_thread(void *arg)
{
    mem_device *gpu = arg;
    void *block;
    if (mem_device_alloc(gpu, MEM_SCRATCH, 4 * KiB, 0, &block) == CANVAS_OK) mem_device_free(gpu, block);
    mem_refusal *seen = NULL;
    if (mem_alloc((void **)&seen, sizeof *seen, MEM_SCRATCH) == CANVAS_OK) mem_last_refusal(seen);
    return seen;
}

static void test_per_thread(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("tiny", 1 * KiB, &gpu));
    mem_refusal mine, after;
    mem_last_refusal(&mine);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, refuse_on_a_thread, gpu) == 0);
    void *result = NULL;
    pthread_join(thread, &result);
    mem_refusal *theirs = result;
    CHECK(theirs && theirs->count == 1 && !strcmp(theirs->device, "tiny") && theirs->asked == 4 * KiB);
    mem_free(theirs);
    mem_last_refusal(&after);
    CHECK(after.count == mine.count && mem_refusal_same(&after, &mine));
    mem_device_destroy(gpu);
}

int main(void)
{
    RUN(test_host_cap);
    RUN(test_host_scope);
    RUN(test_device);
    RUN(test_per_thread);
    return check_summary();
}
