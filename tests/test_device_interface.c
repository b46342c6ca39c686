/* SPDX-License-Identifier: Apache-2.0 */
/* test_device_interface.c — a device written only for this test, through the interface of
 * mem/mem_device_impl.h, to show that nothing outside mem/ reaches device memory except
 * through mem_copy and that the interface is enough for a device the CPU cannot address.
 *
 * The "probe" device (tests/probe_device.h) is a mem_pool (mem_device_pool.h) with its own copy
 * functions. Its copies are asynchronous: copy_to_device / copy_to_host only queue the copy and return
 * an event, and the bytes move in wait(), so a caller that used the data before waiting
 * would see it missing. It counts copies and bytes in each direction and sums a hash of
 * every copy into the device (order-free), so two runs can be shown to deliver the same
 * bytes. It comes in two modes:
 *
 *   open     its blocks are a read/write region (MEM_DEVICE_HOST_ADDRESSABLE): the CPU
 *            kernels compute in it, like on the capped pool. The whole edit pipeline and
 *            the transformer run on it and must give the host run's numbers bit for bit.
 *   sealed   its blocks are addresses of a PROT_NONE reservation (touching one faults);
 *            the bytes live in a separate store, XOR-ed with a key, and only its copy
 *            functions reach them (flags: MEM_DEVICE_HOLDS_DATA only, as a GPU's would
 *            be). Weights streamed through it by the residency manager come back intact
 *            through mem_copy, and a transformer forward's memory path (placement,
 *            streaming, inputs in, output out) runs on it without a fault.
 *
 * The limit, stated: the CPU kernels (ops/cpu and the transformer's row loops) compute on
 * device pointers, so they need host-addressable device memory. On a sealed device the
 * transformer takes the path it takes on a measure device (qwen_image_dit.c checks
 * mem_device_is_addressable): every allocation, acquire, prefetch and copy, no kernels. So
 * the sealed run shows the memory path carries exactly the bytes of the real run (same
 * copies, same bytes, same hash), not that the numbers can be computed there; computing
 * on memory the host cannot address takes an op backend of that device: test_relay_backend.c
 * runs every op of the backend table on the sealed device through one (tests/relay_backend.h). */
#include <pthread.h>
#include <stdint.h>

#include "ops/threadpool.h"
#include "check.h"
#include "mem/mem_device_pool.h"
#include "mem/mem_residency.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "ops/ops_cpu.h"
#include "pipeline/edit_case.h"
#include "probe_device.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static thread_pool *pool;

/* ---- the device alone ------------------------------------------------------------------- */

static void test_sealed_copies(void)
{
    mem_device *sealed = NULL, *gpu = NULL, *cpu = mem_device_cpu();
    CHECK_OK(probe_create(1, 1 * MiB, &sealed));
    CHECK_OK(mem_device_create_capped("gpu", 1 * MiB, &gpu));
    if (!sealed || !gpu) goto done;
    CHECK(!mem_device_is_addressable(sealed) && !mem_device_is_host(sealed));
    CHECK(mem_device_flags(sealed) == MEM_DEVICE_HOLDS_DATA);
    unsigned char host[3000], back[3000];
    for (size_t i = 0; i < sizeof host; i++) host[i] = (unsigned char)(i * 7 + 1);
    void *block = NULL, *other = NULL;
    CHECK_OK(mem_device_alloc(sealed, MEM_WEIGHTS, sizeof host, 0, &block));
    CHECK_OK(mem_device_alloc(gpu, MEM_WEIGHTS, sizeof host, 0, &other));
    if (!block || !other) goto done;

    CHECK_OK(mem_copy(sealed, block, cpu, host, sizeof host));
    memset(back, 0, sizeof back);
    CHECK_OK(mem_copy(cpu, back, sealed, block, sizeof back));
    CHECK(memcmp(host, back, sizeof host) == 0);
    /* the store does not hold the plain bytes: only the copy functions read it right */
    probe_device *d = (probe_device *)sealed;
    size_t at = (size_t)((char *)block - d->pool.base);
    CHECK(memcmp(d->store + at, host, sizeof host) != 0);
    probe_counts c = probe_counts_of(sealed);
    CHECK(c.copies_in == 1 && c.copies_out == 1 && c.bytes_in == sizeof host && c.bytes_out == sizeof host);
    CHECK(c.hash_in == fnv1a(host, sizeof host));
    mem_device_stats st;
    mem_device_get_stats(sealed, &st);
    CHECK(st.bytes_in == sizeof host && st.bytes_out == sizeof host);

    /* Part of a block, and through the copy thread: queued, done by the wait. */
    mem_copier *copier = NULL;
    CHECK_OK(mem_copier_create(4, &copier));
    if (copier) {
        mem_ticket t = 0;
        CHECK_OK(mem_copier_submit(copier, sealed, (char *)block + 1000, cpu, host, 500, &t));
        CHECK_OK(mem_copier_wait(copier, t, NULL));
        mem_copier_destroy(copier);
    }
    CHECK_OK(mem_copy(cpu, back, sealed, (char *)block + 1000, 500));
    CHECK(memcmp(back, host, 500) == 0);

    /* Device to device goes through host memory; outside the device is refused. */
    CHECK_FAILS(mem_copy(gpu, other, sealed, block, 100), CANVAS_ERR_INTERNAL, "through host memory");
    CHECK_FAILS(mem_copy(sealed, (char *)block + 1 * MiB, cpu, host, 100), CANVAS_ERR_INTERNAL, "not inside device 'sealed'");
    mem_device_free(sealed, block);
    mem_device_free(gpu, other);
    CHECK(mem_device_live_blocks(sealed) == 0);
done:
    mem_device_destroy(sealed);
    mem_device_destroy(gpu);
}

/* ---- the residency manager over a sealed device --------------------------------------- */

/* Five groups of two tensors (sizes differ), two resident, three streamed through the
 * slots for three rounds: every acquired tensor read back through mem_copy equals its
 * home; the device received exactly what a measure device predicts. */
static void test_residency_streams_through_sealed(void)
{
    enum { GROUPS = 5, TENSORS = 2, ROUNDS = 3 };
    unsigned char *homes = NULL, *back = NULL;
    const size_t most = 40 * KiB;
    CHECK_OK(mem_alloc((void **)&homes, GROUPS * TENSORS * most, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&back, most, MEM_SCRATCH));
    residency_tensor tensors[GROUPS][TENSORS];
    residency_group groups[GROUPS];
    for (int g = 0; g < GROUPS; g++) {
        for (int t = 0; t < TENSORS; t++) {
            unsigned char *home = homes ? homes + (size_t)(g * TENSORS + t) * most : NULL;
            size_t bytes = most - (size_t)(g * 4096 + t * 333);
            for (size_t i = 0; home && i < bytes; i++) home[i] = (unsigned char)(i * 31 + (size_t)g * 17 + (size_t)t);
            tensors[g][t] = (residency_tensor){home, bytes};
        }
        groups[g] = (residency_group){"group", tensors[g], TENSORS};
    }
    residency_plan plan = {2};
    mem_device *devices[2] = {NULL, NULL};
    CHECK_OK(probe_create(1, 1 * MiB, &devices[0]));
    CHECK_OK(mem_device_create_measure("dry", 1 * MiB, &devices[1]));
    mem_device_stats stats[2];
    for (int k = 0; k < 2 && homes && back && devices[k]; k++) {
        residency_manager *m = NULL;
        CHECK_OK(residency_create(devices[k], groups, GROUPS, &plan, &m));
        if (!m) continue;
        for (int r = 0; r < ROUNDS; r++)
            for (int g = 0; g < GROUPS; g++) {
                void *const *at = NULL;
                CHECK_OK(residency_acquire(m, g, &at));
                for (int t = 0; at && k == 0 && t < TENSORS; t++) {
                    CHECK_OK(mem_copy(mem_device_cpu(), back, devices[k], at[t], tensors[g][t].bytes));
                    CHECK_MSG(memcmp(back, tensors[g][t].home, tensors[g][t].bytes) == 0,
                              "round %d group %d tensor %d differs on the device", r, g, t);
                }
                residency_release(m, g);
            }
        residency_destroy(m);
        mem_device_get_stats(devices[k], &stats[k]);
    }
    if (devices[0] && devices[1]) {
        /* the read-backs are the only difference */
        uint64_t read_back = 0;
        for (int g = 0; g < GROUPS; g++) read_back += ROUNDS * (tensors[g][0].bytes + tensors[g][1].bytes);
        CHECK(stats[0].bytes_in == stats[1].bytes_in && stats[0].bytes_out == read_back);
        CHECK(stats[0].peak_bytes == stats[1].peak_bytes && stats[0].current_bytes == 0);
        probe_counts c = probe_counts_of(devices[0]);
        CHECK(c.bytes_in == stats[0].bytes_in && c.copies_out == ROUNDS * GROUPS * TENSORS);
    }
    mem_device_destroy(devices[0]);
    mem_device_destroy(devices[1]);
    mem_free(homes);
    mem_free(back);
}

/* ---- the transformer ------------------------------------------------------------------- */

typedef struct forward_run {
    canvas_status status;
    mem_device_stats stats;
    probe_counts counts;
} forward_run;

/* Place `model` on a fresh probe device with k resident blocks, one forward, back to host. */
static forward_run forward_on_probe(dit_model *model, int sealed, int k, const dit_inputs *in, float *out)
{
    forward_run r = {0};
    mem_device *device = NULL;
    r.status = probe_create(sealed, 16 * MiB, &device);
    if (r.status != CANVAS_OK) return r;
    r.status = dit_place(model, device, k);
    if (r.status == CANVAS_OK) r.status = dit_forward(model, OP_BACKEND_CPU(pool), in, NULL, out);
    CHECK_OK(dit_place(model, NULL, DIT_ALL_BLOCKS));
    mem_device_get_stats(device, &r.stats);
    r.counts = probe_counts_of(device);
    CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
    return r;
}

/* On the open probe the forward gives the host's output bit for bit, streamed or not; on
 * the sealed probe its memory path allocates, streams and copies exactly the same. */
static void test_transformer_on_probe(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/dit-edit-two-refs");
    dit_case *dc = NULL;
    dit_model *model = NULL;
    float *want = NULL, *got = NULL;
    CHECK_OK(dit_case_open(case_dir, &dc));
    if (dc) CHECK_OK(dit_load(dc->model_dir, &model));
    if (!model) goto done;
    const size_t out_bytes = (size_t)dc->inputs.n_img * (size_t)dit_output_channels(&model->config) * sizeof(float);
    CHECK_OK(mem_alloc((void **)&want, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&got, out_bytes, MEM_SCRATCH));
    if (!want || !got) goto done;
    CHECK_OK(dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, NULL, want));
    for (int k = 0; k <= model->config.num_layers; k++) {
        memset(got, 0xff, out_bytes);
        forward_run open = forward_on_probe(model, 0, k, &dc->inputs, got);
        CHECK_MSG(open.status == CANVAS_OK, "open k=%d: %s", k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, out_bytes) == 0, "open k=%d: the output differs from the host run", k);
        forward_run sealed = forward_on_probe(model, 1, k, &dc->inputs, got);
        CHECK_MSG(sealed.status == CANVAS_OK, "sealed k=%d: %s", k, canvas_last_error());
        CHECK(open.counts.copies_in > 0 && open.counts.copies_out == 1 && open.counts.bytes_out == out_bytes);
        CHECK_MSG(sealed.counts.copies_in == open.counts.copies_in && sealed.counts.bytes_in == open.counts.bytes_in &&
                      sealed.counts.hash_in == open.counts.hash_in,
                  "k=%d: the sealed run copied %llu bytes in, the open run %llu", k,
                  (unsigned long long)sealed.counts.bytes_in, (unsigned long long)open.counts.bytes_in);
        CHECK(sealed.counts.copies_out == open.counts.copies_out && sealed.counts.bytes_out == open.counts.bytes_out);
        CHECK(sealed.stats.peak_bytes == open.stats.peak_bytes);
        for (int c = 0; c < MEM_CLASS_COUNT; c++)
            CHECK(sealed.stats.classes[c].peak_bytes == open.stats.classes[c].peak_bytes &&
                  sealed.stats.classes[c].allocations == open.stats.classes[c].allocations);
        CHECK(open.stats.bytes_in == open.counts.bytes_in && sealed.stats.bytes_out == sealed.counts.bytes_out);
    }
done:
    mem_free(want);
    mem_free(got);
    dit_free(model);
    dit_case_free(dc);
}

/* ---- the edit pipeline ------------------------------------------------------------------ */

typedef struct captured {
    int n;
    char names[16][64];
    float *data[16];
    size_t bytes[16];
} captured;

static canvas_status capture(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    captured *c = ctx;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (c->n == 16) return status_fail(CANVAS_ERR_INTERNAL, "more than 16 tensors");
    int i = c->n;
    TRY(mem_alloc((void **)&c->data[i], n * sizeof(float), MEM_SCRATCH));
    memcpy(c->data[i], data, n * sizeof(float));
    snprintf(c->names[i], sizeof c->names[i], "%s", name);
    c->bytes[i] = n * sizeof(float);
    c->n++;
    return CANVAS_OK;
}

static void captured_free(captured *c)
{
    for (int i = 0; i < c->n; i++) mem_free(c->data[i]);
    c->n = 0;
}

/* The edit-cfg golden case (true CFG: two transformer calls a step; VAE encode and
 * decode) on the open probe, every block streamed and with the planner's prefix: every
 * latent and the image equal the host run's bit for bit. */
static void test_edit_pipeline_on_probe(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    captured host = {0};
    CHECK_OK(edit_case_run_on(case_dir, pool, NULL, -1, NULL, NULL, capture, &host));
    CHECK(host.n > 1);
    const int prefixes[2] = {0, -1};
    for (int p = 0; p < 2; p++) {
        mem_device *device = NULL;
        CHECK_OK(probe_create(0, 64 * MiB, &device));
        if (!device) continue;
        captured got = {0};
        CHECK_OK(edit_case_run_on(case_dir, pool, device, prefixes[p], NULL, NULL, capture, &got));
        CHECK_MSG(got.n == host.n, "%d tensors, the host run gave %d", got.n, host.n);
        for (int i = 0; i < got.n && i < host.n; i++)
            CHECK_MSG(!strcmp(got.names[i], host.names[i]) && got.bytes[i] == host.bytes[i] &&
                          memcmp(got.data[i], host.data[i], got.bytes[i]) == 0,
                      "resident blocks %d: '%s' differs from the host run", prefixes[p], got.names[i]);
        probe_counts c = probe_counts_of(device);
        mem_device_stats st;
        mem_device_get_stats(device, &st);
        /* every byte moved went through the probe's copy functions */
        CHECK(c.copies_in > 0 && c.copies_out > 0 && st.bytes_in == c.bytes_in && st.bytes_out == c.bytes_out);
        printf("  edit-cfg on the probe device, resident blocks %d: %llu copies in (%llu bytes), %llu out\n",
               prefixes[p], (unsigned long long)c.copies_in, (unsigned long long)c.bytes_in,
               (unsigned long long)c.copies_out);
        CHECK(mem_device_live_blocks(device) == 0);
        captured_free(&got);
        mem_device_destroy(device);
    }
    captured_free(&host);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    RUN(test_sealed_copies);
    RUN(test_residency_streams_through_sealed);
    RUN(test_transformer_on_probe);
    RUN(test_edit_pipeline_on_probe);
    thread_pool_destroy(pool);
    return check_summary();
}
