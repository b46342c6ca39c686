/* SPDX-License-Identifier: Apache-2.0 */
/* test_mem_device.c — devices (cpu, capped, measure), their accounting, caps, fragmentation,
 * fault injection, the copy path with its throttle and the copy thread. */
#include <stdint.h>

#include "base/clock.h"
#include "base/status.h"
#include "check.h"
#include "mem/mem_arena.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static void test_capped_accounting_and_cap(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &gpu));
    CHECK(mem_device_flags(gpu) == (MEM_DEVICE_HOST_ADDRESSABLE | MEM_DEVICE_HOLDS_DATA) && mem_device_is_addressable(gpu));
    void *w, *a, *b;
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 300 * KiB, 4096, &w));
    CHECK(((uintptr_t)w % 4096) == 0);
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 100, 0, &a));
    CHECK(((uintptr_t)a % MEM_ALIGNMENT) == 0);
    memset(w, 0x5a, 300 * KiB); /* device memory of the CPU build is real memory */
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.current_bytes == 300 * KiB + 100);
    CHECK(st.classes[MEM_WEIGHTS].current_bytes == 300 * KiB && st.classes[MEM_WEIGHTS].live_blocks == 1);
    CHECK(st.classes[MEM_ACTIVATIONS].current_bytes == 100 && st.classes[MEM_ACTIVATIONS].allocations == 1);
    CHECK(st.reserved_bytes == 300 * KiB + 128); /* 100 rounds up to two 64-byte granules */
    CHECK(st.cap_bytes == 1 * MiB && st.free_bytes == 1 * MiB - st.reserved_bytes);

    /* Over the cap: a clean out-of-memory naming the device, nothing allocated. */
    CHECK_FAILS(mem_device_alloc(gpu, MEM_WEIGHTS, 800 * KiB, 0, &b), CANVAS_ERR_OUT_OF_MEMORY, "gpu");
    CHECK(b == NULL);
    CHECK(strstr(canvas_last_error(), "cap") != NULL);
    mem_device_get_stats(gpu, &st);
    CHECK(st.refused == 1 && st.current_bytes == 300 * KiB + 100 && st.peak_bytes == 300 * KiB + 100);

    /* Peaks: reset to current, then follow a bigger block. */
    mem_device_free(gpu, a);
    mem_device_reset_peaks(gpu);
    mem_device_get_stats(gpu, &st);
    CHECK(st.peak_bytes == 300 * KiB && st.classes[MEM_ACTIVATIONS].peak_bytes == 0);
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 500 * KiB, 0, &b));
    mem_device_free(gpu, b);
    mem_device_get_stats(gpu, &st);
    CHECK(st.peak_bytes == 800 * KiB && st.classes[MEM_ACTIVATIONS].peak_bytes == 500 * KiB);
    CHECK(st.current_bytes == 300 * KiB);

    /* A lowered cap (another process took memory) applies to later allocations. */
    CHECK_OK(mem_device_set_cap(gpu, 512 * KiB));
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 300 * KiB, 0, &b), CANVAS_ERR_OUT_OF_MEMORY, "cap");
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 200 * KiB, 0, &b));
    mem_device_free(gpu, b);
    CHECK_FAILS(mem_device_set_cap(gpu, 2 * MiB), CANVAS_ERR_USAGE, "between 1 and");

    /* A pointer that is not a block of this device is ignored and counted. */
    int local;
    mem_device_free(gpu, &local);
    mem_device_free(gpu, (char *)w + 64);
    CHECK(mem_device_foreign_frees(gpu) == 2);
    mem_device_free(gpu, w);
    CHECK(mem_device_live_blocks(gpu) == 0);
    mem_device_destroy(gpu);
}

/* A cap that is not a multiple of the 64-byte granule: a block counts rounded up, so
 * 970 bytes (1024 reserved) do not fit under a cap of 1000 although 970 < 1000, and 960
 * (exactly 15 granules) does. Every other cap in these tests is a multiple of 64. */
static void test_cap_counts_rounded_blocks(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &gpu));
    CHECK_OK(mem_device_set_cap(gpu, 1000));
    void *b = NULL;
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 970, 0, &b), CANVAS_ERR_OUT_OF_MEMORY,
                "970 bytes of activations do not fit under its cap of 1000 bytes");
    CHECK(b == NULL);
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 960, 0, &b));
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.reserved_bytes == 960 && st.reserved_bytes <= st.cap_bytes);
    void *c = NULL;
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 1, 0, &c), CANVAS_ERR_OUT_OF_MEMORY, "cap of 1000");
    mem_device_free(gpu, b);
    /* an alignment request after a block that leaves the next free byte unaligned (every
     * other aligned block in these tests starts at offset 0) */
    CHECK_OK(mem_device_set_cap(gpu, 1 * MiB));
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 100, 0, &b));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 1000, 4096, &c));
    CHECK_MSG(((uintptr_t)c % 4096) == 0 && (uintptr_t)c >= (uintptr_t)b + 128, "4096-aligned block at %p after %p", c, b);
    mem_device_free(gpu, c);
    mem_device_free(gpu, b);
    mem_device_destroy(gpu);
}

static void test_fragmentation_first_fit(void)
{
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 64 * KiB, &gpu));
    void *blocks[8];
    for (int i = 0; i < 8; i++) CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 8 * KiB, 0, &blocks[i]));
    /* First fit packs blocks back to back. */
    for (int i = 1; i < 8; i++) CHECK((char *)blocks[i] == (char *)blocks[0] + (size_t)i * 8 * KiB);
    void *x;
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 1, 0, &x), CANVAS_ERR_OUT_OF_MEMORY, "cap");
    /* Free every other block: 32 KiB free, but in 8 KiB holes. */
    for (int i = 0; i < 8; i += 2) mem_device_free(gpu, blocks[i]);
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.free_bytes == 32 * KiB && st.largest_free_block == 8 * KiB);
    CHECK_NEAR(st.fragmentation, 0.75, 1e-12);
    CHECK_FAILS(mem_device_alloc(gpu, MEM_ACTIVATIONS, 16 * KiB, 0, &x), CANVAS_ERR_OUT_OF_MEMORY, "fragmented");
    /* Freeing a neighbour coalesces three holes into one of 24 KiB. */
    mem_device_free(gpu, blocks[1]);
    mem_device_get_stats(gpu, &st);
    CHECK(st.largest_free_block == 24 * KiB);
    CHECK_OK(mem_device_alloc(gpu, MEM_ACTIVATIONS, 24 * KiB, 0, &x));
    CHECK(x == blocks[0]);
    mem_device_free(gpu, x);
    for (int i = 3; i < 8; i += 2) mem_device_free(gpu, blocks[i]);
    mem_device_get_stats(gpu, &st);
    CHECK(st.current_bytes == 0 && st.reserved_bytes == 0 && st.largest_free_block == 64 * KiB && st.fragmentation == 0);
    mem_device_destroy(gpu);
}

/* A fixed, irregular allocation pattern: sizes, alignments, frees in between. *placement
 * gets a digest of where the blocks landed (offsets from the first block, which starts the
 * region), *held the device's stats before the blocks still live are freed. */
static canvas_status allocation_pattern(mem_device *device, int *steps_done, uint64_t *placement,
                                        mem_device_stats *held)
{
    enum { N = 40 };
    void *live[N] = {0};
    canvas_status status = CANVAS_OK;
    uint32_t seed = 12345;
    *steps_done = 0;
    *placement = 0;
    for (int i = 0; i < N && status == CANVAS_OK; i++) {
        seed = seed * 1664525u + 1013904223u;
        size_t size = 1 + (seed >> 8) % (20 * KiB);
        size_t align = (size_t)64 << (seed % 4);
        mem_class cls = (mem_class)(seed % 3);
        status = mem_device_alloc(device, cls, size, align, &live[i]);
        if (status == CANVAS_OK) {
            ++*steps_done;
            *placement = *placement * 1000003u + (uint64_t)((char *)live[i] - (char *)live[0]);
        }
        if (i % 3 == 2) {
            mem_device_free(device, live[i - 1]);
            live[i - 1] = NULL;
        }
    }
    mem_device_get_stats(device, held);
    for (int i = 0; i < N; i++) mem_device_free(device, live[i]);
    return status;
}

static void test_measure_predicts_capped_exactly(void)
{
    mem_device *measure, *gpu;
    CHECK_OK(mem_device_create_measure("dry", 0, &measure));
    CHECK(!mem_device_is_addressable(measure) && mem_device_flags(measure) == 0);
    int steps;
    uint64_t predicted_placement, measured_placement;
    mem_device_stats predicted, measured, predicted_held, measured_held;
    CHECK_OK(allocation_pattern(measure, &steps, &predicted_placement, &predicted_held));
    mem_device_get_stats(measure, &predicted);
    CHECK(predicted.peak_bytes > 0 && predicted.current_bytes == 0);

    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &gpu));
    CHECK_OK(allocation_pattern(gpu, &steps, &measured_placement, &measured_held));
    mem_device_get_stats(gpu, &measured);
    /* the same places, so the same rounded bytes in use */
    CHECK(predicted_placement == measured_placement && predicted_placement != 0);
    CHECK(predicted_held.reserved_bytes == measured_held.reserved_bytes);
    CHECK(predicted.peak_bytes == measured.peak_bytes);
    for (int c = 0; c < MEM_CLASS_COUNT; c++) {
        CHECK(predicted.classes[c].peak_bytes == measured.classes[c].peak_bytes);
        CHECK(predicted.classes[c].allocations == measured.classes[c].allocations);
    }
    mem_device_destroy(gpu);

    /* A measure device with a cap refuses what a capped device of that size refuses, with
     * the same free bytes in the same pieces. */
    mem_device *small_measure, *small_gpu;
    int measure_steps, gpu_steps;
    CHECK_OK(mem_device_create_measure("dry", 64 * KiB, &small_measure));
    CHECK_OK(mem_device_create_capped("gpu", 64 * KiB, &small_gpu));
    CHECK(allocation_pattern(small_measure, &measure_steps, &predicted_placement, &predicted_held) ==
          CANVAS_ERR_OUT_OF_MEMORY);
    CHECK(allocation_pattern(small_gpu, &gpu_steps, &measured_placement, &measured_held) == CANVAS_ERR_OUT_OF_MEMORY);
    CHECK(measure_steps == gpu_steps && measure_steps > 0);
    CHECK(predicted_placement == measured_placement);
    CHECK(predicted_held.free_bytes == measured_held.free_bytes && predicted_held.free_bytes > 0);
    CHECK(predicted_held.largest_free_block == measured_held.largest_free_block);
    CHECK(predicted_held.fragmentation == measured_held.fragmentation && predicted_held.refused == 1);
    mem_device_destroy(small_gpu);
    mem_device_destroy(small_measure);

    /* Measure blocks are unique tokens; a huge dry-run allocation costs nothing. */
    void *a, *b;
    CHECK_OK(mem_device_alloc(measure, MEM_WEIGHTS, (size_t)40 << 30, 0, &a));
    CHECK_OK(mem_device_alloc(measure, MEM_WEIGHTS, 1, 0, &b));
    CHECK(a != NULL && b != NULL && a != b);
    mem_device_get_stats(measure, &predicted);
    CHECK(predicted.current_bytes == ((size_t)40 << 30) + 1);
    mem_device_free(measure, a);
    mem_device_free(measure, b);
    CHECK(mem_device_live_blocks(measure) == 0);
    mem_device_destroy(measure);
}

static void test_cpu_device_and_host_cap(void)
{
    mem_device *cpu = mem_device_cpu();
    CHECK(mem_device_is_host(cpu) && mem_device_is_addressable(cpu) && !strcmp(mem_device_name(cpu), "cpu"));
    mem_device_stats before, st;
    mem_device_get_stats(cpu, &before);
    void *p, *q;
    CHECK_OK(mem_device_alloc(cpu, MEM_STAGING, 10000, 4096, &p));
    CHECK(((uintptr_t)p % 4096) == 0);
    mem_device_get_stats(cpu, &st);
    CHECK(st.classes[MEM_STAGING].current_bytes == before.classes[MEM_STAGING].current_bytes + 10000);
    CHECK(st.current_bytes == before.current_bytes + 10000);
    /* --ram: the cap covers every host allocation, mem_alloc included. */
    CHECK_OK(mem_device_set_cap(cpu, st.current_bytes + 5000));
    CHECK_FAILS(mem_alloc(&q, 6000, MEM_SCRATCH), CANVAS_ERR_OUT_OF_MEMORY, "--ram");
    CHECK_OK(mem_alloc(&q, 4000, MEM_SCRATCH));
    mem_free(q);
    CHECK_OK(mem_device_set_cap(cpu, 0));
    CHECK_OK(mem_alloc(&q, 6000, MEM_SCRATCH));
    mem_free(q);
    mem_device_free(cpu, p);
    mem_device_get_stats(cpu, &st);
    CHECK(st.current_bytes == before.current_bytes);
}

static void test_fault_injection_on_devices(void)
{
    mem_device *gpu, *measure;
    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &gpu));
    CHECK_OK(mem_device_create_measure("dry", 0, &measure));
    void *a = NULL, *b = NULL, *c = NULL, *m = NULL;
    mem_fault_arm(&(mem_fault_plan){2, 0, MEM_WEIGHTS});
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 100, 0, &a));
    CHECK_OK(mem_device_alloc(measure, MEM_WEIGHTS, 100, 0, &m)); /* the dry run is never injected */
    CHECK_FAILS(mem_device_alloc(gpu, MEM_WEIGHTS, 100, 0, &b), CANVAS_ERR_OUT_OF_MEMORY, "injected");
    CHECK(b == NULL);
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, 100, 0, &c)); /* transient */
    CHECK(mem_fault_hits() == 1);
    mem_fault_disarm();
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.refused == 0 && st.classes[MEM_WEIGHTS].live_blocks == 2);
    mem_device_free(gpu, a);
    mem_device_free(gpu, c);
    mem_device_free(measure, m);
    mem_device_destroy(gpu);
    mem_device_destroy(measure);
}

static void test_copy_and_throttle(void)
{
    mem_device *gpu, *cpu = mem_device_cpu();
    CHECK_OK(mem_device_create_capped("gpu", 4 * MiB, &gpu));
    size_t n = 2 * MiB;
    unsigned char *host, *back;
    void *dev;
    CHECK_OK(mem_alloc((void **)&host, n, MEM_STAGING));
    CHECK_OK(mem_alloc((void **)&back, n, MEM_STAGING));
    for (size_t i = 0; i < n; i++) host[i] = (unsigned char)(i * 7 + (i >> 11));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, n, 0, &dev));

    mem_transfer_stats t0, t1;
    mem_transfer_get_stats(&t0);
    CHECK_OK(mem_copy(gpu, dev, cpu, host, n));
    CHECK_OK(mem_copy(cpu, back, gpu, dev, n));
    CHECK(memcmp(host, back, n) == 0);
    mem_transfer_get_stats(&t1);
    CHECK(t1.bytes - t0.bytes == 2 * n && t1.copies - t0.copies == 2);

    /* 2 MiB over a 40 MiB/s link takes at least 50 ms. */
    mem_device_set_link_bandwidth(gpu, 40.0 * MiB);
    double start = clock_seconds();
    CHECK_OK(mem_copy(gpu, dev, cpu, host, n));
    double took = clock_seconds() - start;
    CHECK_MSG(took >= 0.05 && took < 1.0, "took %.3f s", took);
    mem_transfer_get_stats(&t0);
    CHECK(t0.copy_seconds - t1.copy_seconds >= 0.05);
    mem_device_stats st;
    mem_device_get_stats(gpu, &st);
    CHECK(st.bytes_in == 2 * n && st.bytes_out == n);

    /* Copies outside the device or overlapping are refused before anything moves. */
    CHECK_FAILS(mem_copy(gpu, (char *)dev + 3 * MiB, cpu, host, 2 * MiB), CANVAS_ERR_INTERNAL, "not inside device 'gpu'");
    CHECK_FAILS(mem_copy(cpu, host + 10, cpu, host, 100), CANVAS_ERR_INTERNAL, "overlap");
    CHECK_OK(mem_copy(cpu, NULL, cpu, NULL, 0));

    /* To a measure device: counted, nothing moved, no time. */
    mem_device *measure;
    void *token;
    CHECK_OK(mem_device_create_measure("dry", 0, &measure));
    mem_device_set_link_bandwidth(measure, 1.0); /* one byte per second: would take weeks */
    CHECK_OK(mem_device_alloc(measure, MEM_WEIGHTS, n, 0, &token));
    mem_transfer_get_stats(&t0);
    CHECK_OK(mem_copy(measure, token, cpu, host, n));
    mem_transfer_get_stats(&t1);
    CHECK(t1.measured_bytes - t0.measured_bytes == n && t1.bytes == t0.bytes);
    mem_device_free(measure, token);
    mem_device_destroy(measure);

    mem_device_free(gpu, dev);
    mem_free(host);
    mem_free(back);
    mem_device_destroy(gpu);
}

static void test_copier_overlaps(void)
{
    mem_device *gpu, *cpu = mem_device_cpu();
    CHECK_OK(mem_device_create_capped("gpu", 4 * MiB, &gpu));
    mem_device_set_link_bandwidth(gpu, 10.0 * MiB); /* 1 MiB: 100 ms */
    size_t n = 1 * MiB;
    unsigned char *host;
    void *dev;
    CHECK_OK(mem_alloc((void **)&host, n, MEM_STAGING));
    for (size_t i = 0; i < n; i++) host[i] = (unsigned char)(i ^ (i >> 9));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, n, 0, &dev));
    mem_copier *copier;
    CHECK_OK(mem_copier_create(4, &copier));

    /* Submit returns at once; work done meanwhile overlaps the copy. */
    double start = clock_seconds();
    mem_ticket halves[2];
    CHECK_OK(mem_copier_submit(copier, gpu, dev, cpu, host, n / 2, &halves[0]));
    CHECK_OK(mem_copier_submit(copier, gpu, (char *)dev + n / 2, cpu, host + n / 2, n / 2, &halves[1]));
    CHECK(halves[1] == halves[0] + 1);
    CHECK(clock_seconds() - start < 0.02);
    clock_sleep(0.1); /* "compute" */
    double waited = -1;
    mem_copier_wait(copier, halves[1], &waited);
    double total = clock_seconds() - start;
    CHECK(mem_copier_done(copier, halves[0]) && mem_copier_done(copier, halves[1]));
    CHECK(memcmp(dev, host, n) == 0);
    /* Serial would be 200 ms; overlapped is about 100 ms. Only "it overlapped" is asserted
     * (machines are busy); bench/bench_streaming.c measures the ratio. */
    CHECK_MSG(total >= 0.1 && total < 0.17, "copy 100 ms + compute 100 ms overlapped took %.3f s", total);
    CHECK_MSG(waited >= 0 && waited < 0.07, "waited %.3f s", waited);
    mem_copier_wait(copier, 0, NULL);       /* no copy: returns at once */
    mem_copier_wait(copier, 1000000, NULL); /* never submitted: returns at once */

    /* Bad arguments fail at submit, not later. */
    mem_ticket t;
    CHECK_FAILS(mem_copier_submit(copier, gpu, (char *)dev + n, cpu, host, 4 * MiB, &t), CANVAS_ERR_INTERNAL, "inside");
    CHECK(t == 0);

    /* A full queue makes submit wait instead of failing; destroy drains the queue. */
    mem_device_set_link_bandwidth(gpu, 0);
    for (int i = 0; i < 20; i++) CHECK_OK(mem_copier_submit(copier, gpu, dev, cpu, host, n, &t));
    mem_copier_destroy(copier);
    CHECK(memcmp(dev, host, n) == 0);
    mem_device_free(gpu, dev);
    mem_free(host);
    mem_device_destroy(gpu);
}

/* Transfers per device: each model's device counts its own copies, the process all of them;
 * a copier's wait counts on the devices of the copy waited for. */
static void test_transfers_per_device(void)
{
    mem_device *a, *b, *cpu = mem_device_cpu();
    CHECK_OK(mem_device_create_capped("a", 1 * MiB, &a));
    CHECK_OK(mem_device_create_capped("b", 1 * MiB, &b));
    const size_t n = 64 * 1024;
    unsigned char *host;
    void *on_a, *on_b;
    CHECK_OK(mem_alloc((void **)&host, n, MEM_STAGING));
    memset(host, 5, n);
    CHECK_OK(mem_device_alloc(a, MEM_WEIGHTS, n, 0, &on_a));
    CHECK_OK(mem_device_alloc(b, MEM_WEIGHTS, n, 0, &on_b));
    mem_transfer_stats p0, p1, sa, sb, c0, c1;
    mem_transfer_get_stats(&p0);
    mem_transfer_get_device_stats(cpu, &c0);
    CHECK_OK(mem_copy(a, on_a, cpu, host, n));
    CHECK_OK(mem_copy(b, on_b, cpu, host, n / 2));
    CHECK_OK(mem_copy(cpu, host, b, on_b, n / 4));
    mem_transfer_get_stats(&p1);
    mem_transfer_get_device_stats(a, &sa);
    mem_transfer_get_device_stats(b, &sb);
    mem_transfer_get_device_stats(cpu, &c1);
    CHECK(sa.copies == 1 && sa.bytes == n);
    CHECK(sb.copies == 2 && sb.bytes == n / 2 + n / 4);
    CHECK(c1.bytes - c0.bytes == n + n / 2 + n / 4 && p1.bytes - p0.bytes == n + n / 2 + n / 4);

    /* a wait on a queued copy to b counts on b, not on a */
    mem_device_set_link_bandwidth(b, 1.0 * MiB); /* 64 KiB: about 60 ms */
    mem_copier *copier;
    CHECK_OK(mem_copier_create(4, &copier));
    mem_ticket t;
    CHECK_OK(mem_copier_submit(copier, b, on_b, cpu, host, n, &t));
    double waited = 0;
    CHECK_OK(mem_copier_wait(copier, t, &waited));
    mem_copier_destroy(copier);
    mem_transfer_stats wa, wb;
    mem_transfer_get_device_stats(a, &wa);
    mem_transfer_get_device_stats(b, &wb);
    CHECK(waited > 0.01 && wb.wait_seconds - sb.wait_seconds >= waited * 0.999 && wa.wait_seconds == sa.wait_seconds);
    CHECK(wb.bytes == sb.bytes + n && wa.bytes == sa.bytes);

    mem_device_free(a, on_a);
    mem_device_free(b, on_b);
    mem_free(host);
    mem_device_destroy(a);
    mem_device_destroy(b);
}

/* A host scope device: what is allocated inside its scope counts there (and the process),
 * up to its cap; outside it counts for the process only; a block outliving the device
 * keeps the scope until it is freed. */
static void test_host_scope(void)
{
    mem_device *one, *two;
    mem_device_stats s1, s2, cpu0, cpu1, created;
    mem_device_get_stats(mem_device_cpu(), &cpu0);
    CHECK_OK(mem_device_create_host_scope("cpu", 10000, &one));
    CHECK_OK(mem_device_create_host_scope("cpu", 0, &two));
    CHECK(mem_device_is_host(one) && mem_device_host_scope(one) && !mem_device_host_scope(mem_device_cpu()));
    mem_device_get_stats(mem_device_cpu(), &created);
    void *a, *b, *c, *outside, *result;
    mem_scope *outer = mem_scope_enter(mem_device_host_scope(one));
    CHECK(mem_scope_current() == mem_device_host_scope(one));
    CHECK_OK(mem_alloc(&a, 6000, MEM_ACTIVATIONS));
    CHECK_FAILS(mem_alloc(&b, 5000, MEM_SCRATCH), CANVAS_ERR_OUT_OF_MEMORY, "the model's host RAM cap of 10000 bytes");
    CHECK_OK(mem_alloc(&b, 4000, MEM_WEIGHTS));
    mem_scope *inner = mem_scope_enter(mem_device_host_scope(two)); /* nested: the other owner */
    CHECK_OK(mem_alloc(&c, 50000, MEM_SCRATCH));
    mem_scope_leave(inner);
    mem_scope *model = mem_scope_enter(NULL); /* a result for the caller */
    CHECK_OK(mem_alloc(&outside, 20000, MEM_SCRATCH));
    mem_scope_leave(model);
    CHECK_OK(mem_alloc(&result, 0, MEM_SCRATCH));
    mem_scope_leave(outer);
    CHECK(mem_scope_current() == outer);
    mem_device_get_stats(one, &s1);
    mem_device_get_stats(two, &s2);
    mem_device_get_stats(mem_device_cpu(), &cpu1);
    CHECK(s1.current_bytes == 10000 && s1.cap_bytes == 10000 && s1.free_bytes == 0 && s1.refused == 1);
    CHECK(s1.classes[MEM_WEIGHTS].current_bytes == 4000 && s1.classes[MEM_ACTIVATIONS].live_blocks == 1);
    CHECK(s2.current_bytes == 50000 && s2.cap_bytes == 0);
    CHECK(cpu1.current_bytes == created.current_bytes + 80000);
    /* peaks restart per device */
    mem_free(a);
    mem_device_reset_peaks(one);
    mem_device_get_stats(one, &s1);
    CHECK(s1.peak_bytes == 4000 && s1.current_bytes == 4000);
    /* through the device's own alloc: inside its scope */
    void *d;
    CHECK_OK(mem_device_alloc(two, MEM_STAGING, 1000, 0, &d));
    mem_device_get_stats(two, &s2);
    CHECK(s2.classes[MEM_STAGING].current_bytes == 1000);
    mem_device_free(two, d);
    mem_device_destroy(one); /* b still lives: the scope stays until it goes (ASan checks) */
    mem_free(b);
    mem_free(c);
    mem_free(outside);
    mem_free(result);
    mem_device_destroy(two);
    mem_device_get_stats(mem_device_cpu(), &cpu1);
    CHECK(cpu1.current_bytes == cpu0.current_bytes);
}

/* A forward pass's activation pattern: persistent buffers, per-layer temporaries freed by
 * rewinding, odd sizes and alignments. The same code runs on the sizing and real arenas. */
static canvas_status fake_forward(mem_arena *arena, int layers, size_t tokens, int touch)
{
    void *hidden, *out;
    TRY(mem_arena_alloc(arena, tokens * 3072 * 2, 0, &hidden));
    for (int l = 0; l < layers; l++) {
        size_t mark = mem_arena_mark(arena);
        void *qkv, *scores, *mlp;
        TRY(mem_arena_alloc(arena, tokens * 3 * 3072 * 2, 256, &qkv));
        TRY(mem_arena_alloc(arena, tokens * (tokens + (size_t)l) * 4 + 3, 64, &scores));
        TRY(mem_arena_alloc(arena, tokens * 12288 * 2 + 1, 4096, &mlp));
        if (touch) memset(mlp, l, tokens * 12288 * 2 + 1);
        mem_arena_rewind(arena, mark);
    }
    TRY(mem_arena_alloc(arena, tokens * 64 * 4, 128, &out));
    if (touch) memset(out, 1, tokens * 64 * 4);
    return CANVAS_OK;
}

static void test_arena_sized_by_dry_run(void)
{
    /* Dry run: a sizing arena on the measure device. */
    mem_device *measure;
    CHECK_OK(mem_device_create_measure("dry", 0, &measure));
    mem_arena *sizing;
    CHECK_OK(mem_arena_create(measure, MEM_ACTIVATIONS, 0, &sizing));
    CHECK_OK(fake_forward(sizing, 5, 7, 0));
    size_t size = mem_arena_high_water(sizing);
    CHECK(size > 0 && mem_arena_capacity(sizing) == 0);
    mem_device_stats predicted;
    mem_device_get_stats(measure, &predicted);
    CHECK(predicted.classes[MEM_ACTIVATIONS].peak_bytes == size);
    mem_arena_destroy(sizing);
    mem_device_get_stats(measure, &predicted);
    CHECK(predicted.current_bytes == 0 && mem_device_live_blocks(measure) == 0);
    mem_device_destroy(measure);

    /* Real run: one block of exactly that size; the measured peak equals the prediction. */
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 4 * MiB, &gpu));
    mem_arena *arena;
    CHECK_OK(mem_arena_create(gpu, MEM_ACTIVATIONS, size, &arena));
    for (int forward = 0; forward < 3; forward++) {
        mem_arena_reset(arena);
        CHECK_OK(fake_forward(arena, 5, 7, 1));
        CHECK(mem_arena_high_water(arena) == size);
    }
    mem_device_stats measured;
    mem_device_get_stats(gpu, &measured);
    CHECK(measured.classes[MEM_ACTIVATIONS].peak_bytes == size);
    CHECK(measured.classes[MEM_ACTIVATIONS].allocations == 1);
    mem_arena_destroy(arena);

    /* One byte less does not do: the last allocation fails cleanly. */
    CHECK_OK(mem_arena_create(gpu, MEM_ACTIVATIONS, size - 1, &arena));
    CHECK_FAILS(fake_forward(arena, 5, 7, 1), CANVAS_ERR_OUT_OF_MEMORY, "arena");
    mem_arena_destroy(arena);

    /* Every arena allocation is a fault-injection point. */
    CHECK_OK(mem_arena_create(gpu, MEM_ACTIVATIONS, size, &arena));
    mem_fault_arm(&(mem_fault_plan){3, 0, MEM_ACTIVATIONS});
    CHECK_FAILS(fake_forward(arena, 5, 7, 1), CANVAS_ERR_OUT_OF_MEMORY, "injected");
    mem_fault_disarm();
    void *p;
    CHECK_FAILS(mem_arena_alloc(arena, 1, 3, &p), CANVAS_ERR_INTERNAL, "power of two");
    CHECK_FAILS(mem_arena_create(gpu, MEM_ACTIVATIONS, 0, &sizing), CANVAS_ERR_USAGE, "measure device");
    CHECK_FAILS(mem_arena_create(gpu, MEM_ACTIVATIONS, 8 * MiB, &sizing), CANVAS_ERR_OUT_OF_MEMORY, "arena");
    mem_arena_destroy(arena);
    CHECK(mem_device_live_blocks(gpu) == 0);
    mem_device_destroy(gpu);
}

int main(void)
{
    RUN(test_capped_accounting_and_cap);
    RUN(test_cap_counts_rounded_blocks);
    RUN(test_fragmentation_first_fit);
    RUN(test_measure_predicts_capped_exactly);
    RUN(test_cpu_device_and_host_cap);
    RUN(test_fault_injection_on_devices);
    RUN(test_copy_and_throttle);
    RUN(test_copier_overlaps);
    RUN(test_transfers_per_device);
    RUN(test_host_scope);
    RUN(test_arena_sized_by_dry_run);
    return check_summary();
}
