/* SPDX-License-Identifier: Apache-2.0 */
/* test_device_interface.c — a device written only for this test, through the interface of
 * mem/mem_device_impl.h, to show that nothing outside mem/ and ops/ reaches device memory
 * except through mem_copy and the op backend, and that the two interfaces are enough to run
 * the transformer and the whole edit pipeline on a device the CPU cannot address.
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
 *            the transformer run on it with the CPU backend and must give the host run's
 *            numbers bit for bit.
 *   sealed   its blocks are addresses of a PROT_NONE reservation (touching one faults);
 *            the bytes live in a separate store, XOR-ed with a key, and only its copy
 *            functions reach them (flags: MEM_DEVICE_HOLDS_DATA only, as a GPU's would
 *            be). Weights streamed through it by the residency manager come back intact
 *            through mem_copy; the transformer computes on it through the relay backend
 *            (tests/relay_backend.h: each op's operands copied out with mem_copy, the CPU op,
 *            its outputs copied back), so a forward, its taps and the whole edit pipeline
 *            (transformer and VAE on the sealed probe), resident or streamed, give
 *            the host run's bits. Any host access to the device's memory from model or
 *            pipeline code would fault here. Given the CPU backend instead, the transformer
 *            refuses the device (CANVAS_ERR_UNSUPPORTED) before computing anything.
 *
 * What this does not show: that a real GPU backend computes the same numbers (CUDA rounds
 * differently: tests/cuda and tools/device-check.sh). The relay computes with the CPU ops. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/threadpool.h"
#include "check.h"
#include "dit_random_model.h"
#include "mem/mem_device_pool.h"
#include "mem/mem_residency.h"
#include "mem/mem_transfer.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "ops/ops_cpu.h"
#include "pipeline/edit_case.h"
#include "plan/plan.h"
#include "probe_device.h"
#include "relay_backend.h"

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

/* ---- what a run hands back -------------------------------------------------------------- */

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

/* Every tensor of `got` is the one of `want` (names, sizes, bits). */
static void check_same(const captured *got, const captured *want, const char *what)
{
    CHECK_MSG(got->n == want->n, "%s: %d tensors, the host run gave %d", what, got->n, want->n);
    for (int i = 0; i < got->n && i < want->n; i++)
        CHECK_MSG(!strcmp(got->names[i], want->names[i]) && got->bytes[i] == want->bytes[i] &&
                      memcmp(got->data[i], want->data[i], got->bytes[i]) == 0,
                  "%s: '%s' differs from the host run", what, got->names[i]);
}

/* ---- the transformer ------------------------------------------------------------------- */

enum { OPEN, SEALED, MEASURE }; /* the device */

typedef struct forward_run {
    canvas_status status;
    mem_device_stats stats;
    probe_counts counts;
    uint64_t relayed; /* ops the relay backend ran */
} forward_run;

/* Place `model` with k resident blocks on a fresh device of `kind` (a measure device: the
 * dry run), one forward with the relay backend over it or the CPU backend, back to host. */
static forward_run forward_on(qwen_dit_model *model, int kind, int use_relay, int k, const qwen_dit_inputs *in,
                              const qwen_dit_tap *tap, float *out)
{
    forward_run r = {0};
    mem_device *device = NULL;
    r.status = kind == MEASURE ? mem_device_create_measure("dry", 16 * MiB, &device)
                               : probe_create(kind != OPEN, 16 * MiB, &device);
    if (r.status != CANVAS_OK) return r;
    relay_backend relay = {.device = device, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    r.status = qwen_dit_place(model, device, k);
    if (r.status == CANVAS_OK)
        r.status = qwen_dit_forward(model, use_relay ? &relayed : OP_BACKEND_CPU(pool), in, tap, out);
    CHECK_OK(qwen_dit_place(model, NULL, QWEN_DIT_ALL_BLOCKS));
    mem_device_get_stats(device, &r.stats);
    if (kind != MEASURE) r.counts = probe_counts_of(device);
    r.relayed = relay.ops;
    CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
    return r;
}

/* For every resident prefix (0: every block streamed through the two slots): on the open
 * probe (CPU backend, computing in place) and on the sealed probe (relay backend: nothing
 * but mem_copy reaches its memory) the forward gives the host's output bit for bit, and
 * with k = 0 every tap too. The open run copies exactly what the dry run predicts (the
 * host-computed tables are written in place: no staging on an addressable device); each
 * run takes the device memory per class its dry run predicts. The sealed probe with the CPU backend
 * is refused before anything is computed. */
static void test_transformer_on_probe(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/dit-edit-two-refs");
    qwen_dit_case *dc = NULL;
    qwen_dit_model *model = NULL;
    float *want = NULL, *got = NULL;
    captured host_taps = {0}, sealed_taps = {0};
    CHECK_OK(qwen_dit_case_open(case_dir, &dc));
    if (dc) CHECK_OK(qwen_dit_load(dc->model_dir, &model));
    if (!model) goto done;
    const size_t out_bytes = (size_t)dc->inputs.n_img * (size_t)qwen_dit_output_channels(&model->config) * sizeof(float);
    CHECK_OK(mem_alloc((void **)&want, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&got, out_bytes, MEM_SCRATCH));
    if (!want || !got) goto done;
    const qwen_dit_tap host_tap = {capture, &host_taps}, sealed_tap = {capture, &sealed_taps};
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, &host_tap, want));
    CHECK(host_taps.n == 3 + 2 * model->config.num_layers);
    for (int k = 0; k <= model->config.num_layers; k++) {
        memset(got, 0xff, out_bytes);
        forward_run open = forward_on(model, OPEN, 0, k, &dc->inputs, NULL, got);
        CHECK_MSG(open.status == CANVAS_OK, "open k=%d: %s", k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, out_bytes) == 0, "open k=%d: the output differs from the host run", k);

        memset(got, 0xff, out_bytes);
        forward_run sealed = forward_on(model, SEALED, 1, k, &dc->inputs, k == 0 ? &sealed_tap : NULL, got);
        CHECK_MSG(sealed.status == CANVAS_OK, "sealed k=%d: %s", k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, out_bytes) == 0, "sealed k=%d: the output differs from the host run", k);
        CHECK(sealed.relayed > 0 && open.relayed == 0);

        /* the arena reserves attention workspace for the backend's workers: 2 on the CPU's, 1 on the relay's */
        forward_run dry = forward_on(model, MEASURE, 0, k, &dc->inputs, NULL, NULL);
        forward_run dry_relay = forward_on(model, MEASURE, 1, k, &dc->inputs, NULL, NULL);
        CHECK_MSG(dry.status == CANVAS_OK && dry_relay.status == CANVAS_OK, "dry k=%d: %s", k, canvas_last_error());
        CHECK(open.counts.copies_in > 0 && open.counts.copies_out == 1 && open.counts.bytes_out == out_bytes);
        CHECK_MSG(open.stats.bytes_in == dry.stats.bytes_in && open.counts.bytes_in == open.stats.bytes_in,
                  "k=%d: the open run copied %llu bytes in, the dry run %llu", k,
                  (unsigned long long)open.stats.bytes_in, (unsigned long long)dry.stats.bytes_in);
        /* the sealed run copies more (the staged tables, every relayed operand), in the same memory */
        CHECK(sealed.counts.bytes_in > open.counts.bytes_in && sealed.stats.bytes_in == sealed.counts.bytes_in);
        CHECK(dry_relay.relayed == 0 && dry_relay.stats.bytes_in == dry.stats.bytes_in);
        for (int c = 0; c < MEM_CLASS_COUNT; c++) {
            CHECK(open.stats.classes[c].peak_bytes == dry.stats.classes[c].peak_bytes &&
                  open.stats.classes[c].allocations == dry.stats.classes[c].allocations);
            CHECK(sealed.stats.classes[c].peak_bytes == dry_relay.stats.classes[c].peak_bytes &&
                  sealed.stats.classes[c].allocations == dry_relay.stats.classes[c].allocations);
        }

        memset(got, 0xff, out_bytes);
        forward_run refused = forward_on(model, SEALED, 0, k, &dc->inputs, NULL, got);
        CHECK(refused.status == CANVAS_ERR_UNSUPPORTED && strstr(canvas_last_error(), "not host-addressable"));
        CHECK(refused.stats.classes[MEM_ACTIVATIONS].allocations == 0 && ((unsigned char *)got)[0] == 0xff);
        status_clear();
    }
    check_same(&sealed_taps, &host_taps, "sealed taps, every block streamed");
done:
    captured_free(&host_taps);
    captured_free(&sealed_taps);
    mem_free(want);
    mem_free(got);
    qwen_dit_free(model);
    qwen_dit_case_free(dc);
}

/* A six-block random model (tests/dit_random_model.h) with two padded text tokens, placed
 * with two resident blocks: the other four stream through the two slots, so every forward
 * copies them onto the sealed probe again (evicting each other). Two forwards in a row on
 * one placement, relay backend: both give the host's output bit for bit. */
static void test_streamed_model_on_sealed(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "/tmp/canvas_test_device_interface_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    char model_dir[340];
    snprintf(model_dir, sizeof model_dir, "%s/transformer", dir);
    mkdir(model_dir, 0700);
    const dit_random_shape shape = {.layers = 6, .heads = 4, .head_dim = 16, .joint_dim = 32, .in_channels = 64,
                                    .out_channels = 16, .matrix_type = DTYPE_BF16, .seed = 11};
    qwen_dit_model *model = NULL;
    mem_device *sealed = NULL;
    float want[48 * 64], got[48 * 64];
    static dit_random_two_images buffers;
    qwen_dit_inputs in;
    dit_random_two_images_make(&buffers, &in);
    CHECK_OK(dit_random_model_write(model_dir, &shape));
    CHECK_OK(qwen_dit_load(model_dir, &model));
    CHECK_OK(probe_create(1, 4 * MiB, &sealed));
    if (!model || !sealed) goto done;
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &in, NULL, want));
    relay_backend relay = {.device = sealed, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    /* bytes copied onto the device by the second forward, all blocks resident and two */
    uint64_t second[2] = {0, 0};
    const int resident[2] = {QWEN_DIT_ALL_BLOCKS, 2};
    for (int p = 0; p < 2; p++) {
        CHECK_OK(qwen_dit_place(model, sealed, resident[p]));
        for (int round = 0; round < 2; round++) {
            const uint64_t before = probe_counts_of(sealed).bytes_in;
            memset(got, 0xff, sizeof got);
            CHECK_OK(qwen_dit_forward(model, &relayed, &in, NULL, got));
            CHECK_MSG(memcmp(got, want, sizeof want) == 0, "resident %d, forward %d: differs from the host run",
                      resident[p], round);
            second[p] = probe_counts_of(sealed).bytes_in - before;
        }
        CHECK_OK(qwen_dit_place(model, NULL, QWEN_DIT_ALL_BLOCKS));
        CHECK(mem_device_live_blocks(sealed) == 0);
    }
    /* the relay's copies are the same in both: the difference is weights streamed in again,
     * at least three of the four streamed blocks (the copy thread's prefetches cross the
     * forwards' boundaries: a block may be counted in the forward before or after) */
    const uint64_t block = qwen_dit_weight_device_bytes(model, 3) - qwen_dit_weight_device_bytes(model, 2);
    CHECK_MSG(second[1] >= second[0] + 3 * block, "the second streamed forward copied %llu bytes, resident %llu",
              (unsigned long long)second[1], (unsigned long long)second[0]);
    printf("  six blocks on the sealed probe, second forward: %llu bytes in with 2 resident, %llu with all "
           "(a block: %llu)\n", (unsigned long long)second[1], (unsigned long long)second[0],
           (unsigned long long)block);
done:
    mem_device_destroy(sealed);
    qwen_dit_free(model);
    dit_random_model_remove(model_dir);
    rmdir(dir);
}

/* ---- the edit pipeline ------------------------------------------------------------------ */

/* The edit-cfg golden case (true CFG: two transformer calls a step; VAE encode and decode)
 * with the transformer on the open probe (CPU backend) and on the sealed probe (relay
 * backend, and the VAE with it), every block streamed through the two slots
 * (resident prefix 0) and with the planner's prefix: every latent and the image equal the
 * host run's bit for bit. The case's model has two blocks, so under any cap the planner
 * keeps both resident (two slots cost as much): the streamed placement is the fixed prefix
 * 0. The sealed probe with the CPU backend ends the run with the transformer's refusal. */
static void test_edit_pipeline_on_probe(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    captured host = {0};
    CHECK_OK(edit_case_run_on(case_dir, pool, NULL, -1, NULL, NULL, capture, &host));
    CHECK(host.n > 1);
    const int prefixes[2] = {0, -1};
    for (int sealed = 0; sealed < 2; sealed++)
        for (int p = 0; p < 2; p++) {
            mem_device *device = NULL;
            CHECK_OK(probe_create(sealed, 64 * MiB, &device));
            if (!device) continue;
            relay_backend relay = {.device = device, .pool = pool};
            op_backend relayed = relay_backend_make(&relay);
            edit_case_plan plan = {.strategy = PLAN_AUTO, .fallback_enabled = 1,
                                   .dit_backend = sealed ? &relayed : NULL};
            captured got = {0};
            CHECK_OK(edit_case_run_planned(case_dir, pool, device, prefixes[p], &plan, NULL, NULL, capture, &got));
            char what[64];
            snprintf(what, sizeof what, "%s probe, resident blocks %d", sealed ? "sealed" : "open", prefixes[p]);
            check_same(&got, &host, what);
            CHECK(sealed ? relay.ops > 0 : relay.ops == 0);
            probe_counts c = probe_counts_of(device);
            mem_device_stats st;
            mem_device_get_stats(device, &st);
            /* every byte moved went through the probe's copy functions */
            CHECK(c.copies_in > 0 && c.copies_out > 0 && st.bytes_in == c.bytes_in && st.bytes_out == c.bytes_out);
            printf("  edit-cfg, %s: %llu copies in (%llu bytes), %llu out, %llu ops relayed\n", what,
                   (unsigned long long)c.copies_in, (unsigned long long)c.bytes_in, (unsigned long long)c.copies_out,
                   (unsigned long long)relay.ops);
            CHECK(mem_device_live_blocks(device) == 0);
            captured_free(&got);
            mem_device_destroy(device);
        }
    mem_device *device = NULL;
    CHECK_OK(probe_create(1, 64 * MiB, &device));
    captured got = {0};
    if (device)
        CHECK_FAILS(edit_case_run_on(case_dir, pool, device, 0, NULL, NULL, capture, &got), CANVAS_ERR_UNSUPPORTED,
                    "not host-addressable");
    CHECK(got.n == 0 || strcmp(got.names[got.n - 1], "image") != 0);
    captured_free(&got);
    if (device) CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
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
    RUN(test_streamed_model_on_sealed);
    RUN(test_edit_pipeline_on_probe);
    thread_pool_destroy(pool);
    return check_summary();
}
