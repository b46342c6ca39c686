/* SPDX-License-Identifier: Apache-2.0 */
/* test_residency.c — weight groups resident, streamed through the double buffer, or used
 * in place: the data is byte-identical under every plan, the device never passes its cap,
 * prefetch overlaps compute, and a failed creation leaves nothing behind. */
#include <stdint.h>

#include "base/clock.h"
#include "check.h"
#include "mem/mem_device.h"
#include "mem/mem_residency.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

enum { N_GROUPS = 6, MAX_TENSORS = 5 };

typedef struct fake_model {
    residency_group groups[N_GROUPS];
    residency_tensor tensors[N_GROUPS][MAX_TENSORS];
    void *homes[N_GROUPS][MAX_TENSORS];
    char names[N_GROUPS][32];
} fake_model;

/* Groups of 1..5 tensors of random bytes; tensor sizes vary so slots and offsets vary. */
static void fake_model_init(fake_model *m, size_t max_tensor_bytes)
{
    uint32_t seed = 2024;
    memset(m, 0, sizeof *m);
    for (int g = 0; g < N_GROUPS; g++) {
        int n = 1 + g % MAX_TENSORS;
        for (int i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            size_t bytes = 1 + (seed >> 4) % max_tensor_bytes;
            if (g == 2 && i == 1) bytes = 0; /* an empty tensor is allowed */
            unsigned char *home = NULL;
            if (bytes) CHECK_OK(mem_alloc((void **)&home, bytes, MEM_WEIGHTS));
            for (size_t b = 0; b < bytes; b++) {
                seed = seed * 1664525u + 1013904223u;
                home[b] = (unsigned char)(seed >> 24);
            }
            m->homes[g][i] = home;
            m->tensors[g][i] = (residency_tensor){home, bytes};
        }
        snprintf(m->names[g], sizeof m->names[g], "block.%d", g);
        m->groups[g] = (residency_group){m->names[g], m->tensors[g], n};
    }
}

static void fake_model_free(fake_model *m)
{
    for (int g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < MAX_TENSORS; i++) mem_free(m->homes[g][i]);
}

/* Denoising-like loop: every step acquires groups 0..n-1; returns mismatching tensors. */
static int run_steps(residency_manager *mgr, const fake_model *m, int steps, int check_bytes)
{
    int mismatches = 0;
    for (int step = 0; step < steps; step++)
        for (int g = 0; g < N_GROUPS; g++) {
            void *const *w;
            CHECK_OK(residency_acquire(mgr, g, &w));
            if (!w) return -1;
            for (int i = 0; check_bytes && i < m->groups[g].n_tensors; i++) {
                const residency_tensor *t = &m->tensors[g][i];
                if (t->bytes == 0) mismatches += w[i] != NULL;
                else mismatches += memcmp(w[i], t->home, t->bytes) != 0;
                /* Device copies are aligned; in place (zero copy) they are where the home is. */
                if (w[i] != t->home) mismatches += ((uintptr_t)w[i] % RESIDENCY_TENSOR_ALIGNMENT) != 0;
            }
            residency_release(mgr, g);
        }
    return mismatches;
}

/* A cap that holds what the plan needs: each block rounds up to the 64-byte granule and
 * may leave a hole of up to 192 bytes before the next 256-aligned one. */
static size_t cap_for(const fake_model *m, int n_resident)
{
    residency_plan plan = {n_resident};
    return residency_plan_device_bytes(m->groups, N_GROUPS, &plan) + (size_t)(N_GROUPS + 2) * RESIDENCY_TENSOR_ALIGNMENT;
}

static void test_every_plan_gives_identical_bytes(void)
{
    fake_model m;
    fake_model_init(&m, 20 * KiB);
    /* Zero copy on the cpu device: the home pointers themselves. */
    residency_manager *mgr;
    CHECK_OK(residency_create(mem_device_cpu(), m.groups, N_GROUPS, &(residency_plan){0}, &mgr));
    void *const *w;
    CHECK_OK(residency_acquire(mgr, 3, &w));
    CHECK(w[0] == m.homes[3][0] && w[3] == m.homes[3][3]);
    residency_release(mgr, 3);
    CHECK(run_steps(mgr, &m, 2, 1) == 0);
    residency_stats st;
    residency_get_stats(mgr, &st);
    CHECK(st.device_bytes == 0 && st.streamed_loads == 0);
    residency_destroy(mgr);

    int prefixes[] = {N_GROUPS, 4, 1, 0};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        int k = prefixes[p];
        size_t cap = cap_for(&m, k);
        mem_device *gpu;
        CHECK_OK(mem_device_create_capped("gpu", cap, &gpu));
        CHECK_OK(residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){k}, &mgr));
        if (!mgr) break;
        CHECK_MSG(run_steps(mgr, &m, 3, 1) == 0, "prefix %d", k);
        residency_get_stats(mgr, &st);
        mem_device_stats ds;
        mem_device_get_stats(gpu, &ds);
        CHECK(ds.peak_bytes <= cap);
        CHECK(ds.classes[MEM_WEIGHTS].peak_bytes == st.device_bytes);
        CHECK(st.device_bytes == residency_plan_device_bytes(m.groups, N_GROUPS, &(residency_plan){k}));
        if (k == N_GROUPS) CHECK(st.streamed_loads == 0 && st.slot_bytes == 0);
        /* 5 streamed groups, 3 steps: each group is loaded once per step (no reuse with 2
         * slots), plus the prefetch of the first streamed group for a step that never came. */
        if (k == 1) CHECK_MSG(st.streamed_loads == 16, "%llu loads", (unsigned long long)st.streamed_loads);
        residency_destroy(mgr);
        CHECK(mem_device_live_blocks(gpu) == 0);

        /* One byte less and the plan does not fit: a clean out-of-memory, nothing left. */
        CHECK_OK(mem_device_set_cap(gpu, st.device_bytes - 1));
        CHECK_FAILS(residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){k}, &mgr), CANVAS_ERR_OUT_OF_MEMORY,
                    "gpu");
        CHECK(mgr == NULL && mem_device_live_blocks(gpu) == 0);
        mem_device_destroy(gpu);
    }
    fake_model_free(&m);
}

static void test_dry_run_matches(void)
{
    fake_model m;
    fake_model_init(&m, 20 * KiB);
    for (int k = 0; k <= N_GROUPS; k += 3) {
        mem_device *measure, *gpu;
        CHECK_OK(mem_device_create_measure("dry", 0, &measure));
        CHECK_OK(mem_device_create_capped("gpu", cap_for(&m, k), &gpu));
        residency_manager *dry, *real;
        CHECK_OK(residency_create(measure, m.groups, N_GROUPS, &(residency_plan){k}, &dry));
        CHECK(run_steps(dry, &m, 2, 0) == 0); /* tokens: acquire works, bytes are not read */
        CHECK_OK(residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){k}, &real));
        CHECK(run_steps(real, &m, 2, 1) == 0);
        residency_destroy(dry);
        residency_destroy(real); /* waits for the last prefetch */
        mem_device_stats predicted, measured;
        mem_device_get_stats(measure, &predicted);
        mem_device_get_stats(gpu, &measured);
        CHECK(predicted.peak_bytes == measured.peak_bytes && predicted.peak_bytes > 0);
        CHECK(predicted.bytes_in == measured.bytes_in); /* transfer bytes predicted too */
        mem_device_destroy(measure);
        mem_device_destroy(gpu);
    }
    fake_model_free(&m);
}

static void test_holding_and_misuse(void)
{
    fake_model m;
    fake_model_init(&m, 4 * KiB);
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", cap_for(&m, 2), &gpu));
    residency_manager *mgr;
    CHECK_OK(residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){2}, &mgr));
    void *const *a, *const *b, *const *c;
    /* Two streamed groups may be held together (a block reading the next one's weights). */
    CHECK_OK(residency_acquire(mgr, 3, &a));
    CHECK_OK(residency_acquire(mgr, 4, &b));
    CHECK(memcmp(a[0], m.tensors[3][0].home, m.tensors[3][0].bytes) == 0);
    CHECK(memcmp(b[1], m.tensors[4][1].home, m.tensors[4][1].bytes) == 0);
    CHECK_FAILS(residency_acquire(mgr, 5, &c), CANVAS_ERR_INTERNAL, "two streamed groups are held");
    CHECK(c == NULL);
    /* Resident groups are always available. */
    CHECK_OK(residency_acquire(mgr, 1, &c));
    residency_release(mgr, 1);
    residency_release(mgr, 3);
    CHECK_OK(residency_acquire(mgr, 5, &c)); /* the pending prefetch or a load on demand */
    CHECK(memcmp(c[0], m.tensors[5][0].home, m.tensors[5][0].bytes) == 0);
    residency_release(mgr, 4);
    residency_release(mgr, 5);
    residency_release(mgr, 5); /* an extra release is ignored */
    CHECK_FAILS(residency_acquire(mgr, N_GROUPS, &c), CANVAS_ERR_INTERNAL, "does not exist");
    /* Out of order works too. */
    for (int g = N_GROUPS - 1; g >= 0; g--) {
        CHECK_OK(residency_acquire(mgr, g, &c));
        CHECK(memcmp(c[0], m.tensors[g][0].home, m.tensors[g][0].bytes) == 0);
        residency_release(mgr, g);
    }
    residency_destroy(mgr);
    CHECK_FAILS(residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){N_GROUPS + 1}, &mgr), CANVAS_ERR_USAGE,
                "plan");
    mem_device_destroy(gpu);
    fake_model_free(&m);
}

static void test_fail_at_every_allocation(void)
{
    fake_model m;
    fake_model_init(&m, 4 * KiB);
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", cap_for(&m, 3), &gpu));
    mem_class_stats scratch_before, scratch_after;
    mem_get_stats(MEM_SCRATCH, &scratch_before);
    int completed = 0;
    for (uint64_t n = 1; n < 100 && !completed; n++) {
        for (int persistent = 0; persistent <= 1; persistent++) {
            residency_manager *mgr = NULL;
            mem_fault_arm(&(mem_fault_plan){n, persistent, -1});
            canvas_status st = residency_create(gpu, m.groups, N_GROUPS, &(residency_plan){3}, &mgr);
            uint64_t hits = mem_fault_hits();
            mem_fault_disarm();
            if (st == CANVAS_OK) {
                CHECK(hits == 0);
                CHECK(run_steps(mgr, &m, 1, 1) == 0);
                residency_destroy(mgr);
                completed = 1;
            } else {
                CHECK_MSG(st == CANVAS_ERR_OUT_OF_MEMORY && strstr(canvas_last_error(), "injected"), "N=%llu: %s",
                          (unsigned long long)n, canvas_last_error());
                CHECK(mgr == NULL);
            }
            CHECK(mem_device_live_blocks(gpu) == 0);
            mem_get_stats(MEM_SCRATCH, &scratch_after);
            CHECK(scratch_after.current_bytes == scratch_before.current_bytes);
        }
    }
    CHECK(completed);
    mem_device_destroy(gpu);
    fake_model_free(&m);
}

static void test_prefetch_overlaps_compute(void)
{
    /* 4 streamed groups of 1 MiB over a 40 MiB/s link (25 ms each), 25 ms of "compute"
     * each, 2 steps: serial would take 8 x 50 = 400 ms, overlapped about 225 ms. */
    enum { N = 4 };
    residency_tensor tensors[N];
    residency_group groups[N];
    void *homes[N];
    for (int g = 0; g < N; g++) {
        CHECK_OK(mem_calloc(&homes[g], 1, MiB, MEM_WEIGHTS));
        ((unsigned char *)homes[g])[g] = (unsigned char)(g + 1);
        tensors[g] = (residency_tensor){homes[g], MiB};
        groups[g] = (residency_group){"block", &tensors[g], 1};
    }
    mem_device *gpu;
    CHECK_OK(mem_device_create_capped("gpu", 2 * MiB + 4096, &gpu));
    mem_device_set_link_bandwidth(gpu, 40.0 * MiB);
    residency_manager *mgr;
    CHECK_OK(residency_create(gpu, groups, N, &(residency_plan){0}, &mgr));
    double start = clock_seconds();
    for (int step = 0; step < 2; step++)
        for (int g = 0; g < N; g++) {
            void *const *w;
            CHECK_OK(residency_acquire(mgr, g, &w));
            CHECK(((unsigned char *)w[0])[g] == g + 1);
            clock_sleep(0.025);
            residency_release(mgr, g);
        }
    double total = clock_seconds() - start;
    residency_stats st;
    residency_get_stats(mgr, &st);
    CHECK_MSG(total < 0.34, "streamed %.3f s, serial would be 0.400 s", total);
    CHECK(st.streamed_loads == 9 && st.bytes_streamed == 9 * MiB); /* + the next step's first */
    CHECK_MSG(st.wait_seconds < 0.15, "waited %.3f s", st.wait_seconds);
    residency_destroy(mgr);
    mem_device_destroy(gpu);
    for (int g = 0; g < N; g++) mem_free(homes[g]);
}

int main(void)
{
    RUN(test_every_plan_gives_identical_bytes);
    RUN(test_dry_run_matches);
    RUN(test_holding_and_misuse);
    RUN(test_fail_at_every_allocation);
    RUN(test_prefetch_overlaps_compute);
    return check_summary();
}
