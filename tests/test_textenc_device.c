/* SPDX-License-Identifier: Apache-2.0 */
/* test_textenc_device.c — the Qwen2.5-VL text encoder on a device the CPU cannot address: the
 * sealed probe device (tests/probe_device.h: its blocks fault when touched, only mem_copy
 * reaches its bytes) computing through the relay backend (tests/relay_backend.h: each op's
 * operands copied out, the CPU op, the outputs copied back).
 *
 * For the textenc-tiny golden cases (text only, one image, two images), every group resident
 * and every group streamed through the two slots: the forward's output and every tap (the
 * vision tower's rows and layout lists, the embeddings, each decoder layer) are the host run's
 * bit for bit; the sealed run's device peaks per memory class are the dry run's on a measure
 * device (what host code computes is staged in host memory, never on the device); the open
 * probe (host-addressable) with the CPU backend gives the same bits with nothing relayed. The
 * sealed probe with the CPU backend is refused before anything is copied. The prompt encoder
 * (pipeline/prompt.h) given the sealed probe and the relay as its device and backend encodes an
 * edit prompt with its image to the host's embeddings, the measured device peak its plan's
 * predicted one; on a probe too small for the encoder it falls back to host memory and the CPU
 * backend. textenc_case_run_on (`canvas debug case --device cuda`) on the sealed probe hands
 * the host run's tensors. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mem/mem_device.h"
#include "mem/mem_transfer.h"
#include "models/qwen_textenc.h"
#include "models/qwen_textenc_case.h"
#include "ops/ops_cpu.h"
#include "pipeline/prompt.h"
#include "probe_device.h"
#include "relay_backend.h"

#define MiB ((size_t)1024 * 1024)

static thread_pool *pool;

/* The taps a forward hands, in order, as a count and one hash of their names, shapes and bits. */
typedef struct taps_seen {
    int n;
    uint64_t hash;
} taps_seen;

static canvas_status see(void *ctx, const char *name, const float *data, int64_t rows, int64_t cols)
{
    taps_seen *t = ctx;
    const int64_t shape[2] = {rows, cols};
    t->hash = t->hash * 1099511628211ull ^ fnv1a((const unsigned char *)name, strlen(name));
    t->hash = t->hash * 1099511628211ull ^ fnv1a((const unsigned char *)shape, sizeof shape);
    t->hash = t->hash * 1099511628211ull ^ fnv1a((const unsigned char *)data, (size_t)(rows * cols) * sizeof(float));
    t->n++;
    return CANVAS_OK;
}

enum { OPEN, SEALED, MEASURE };

typedef struct run_result {
    canvas_status status;
    mem_device_stats stats;
    taps_seen taps;
    uint64_t relayed;
} run_result;

/* One forward on a fresh device of `kind` with k resident groups (TEXTENC_ALL_GROUPS: all),
 * through the relay backend or the CPU one; the model goes back to host memory after. */
static run_result run_on(textenc_model *m, const textenc_case *c, int kind, int use_relay, int k, float *out)
{
    run_result r = {0};
    mem_device *device = NULL;
    r.status = kind == MEASURE ? mem_device_create_measure("dry", 64 * MiB, &device)
                               : probe_create(kind == SEALED, 64 * MiB, &device);
    if (r.status != CANVAS_OK) return r;
    relay_backend relay = {.device = device, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    const textenc_tap tap = {see, &r.taps};
    const int64_t(*grid)[3] = (const int64_t(*)[3])c->grid_thw;
    r.status = textenc_place(m, device, k);
    if (r.status == CANVAS_OK)
        r.status = textenc_forward_tapped(m, use_relay ? &relayed : OP_BACKEND_CPU(pool), c->ids, c->n_ids,
                                          c->pixel_values, grid, c->n_images, kind == MEASURE ? NULL : &tap,
                                          kind == MEASURE ? NULL : out);
    CHECK_OK(textenc_place(m, NULL, TEXTENC_ALL_GROUPS));
    mem_device_get_stats(device, &r.stats);
    r.relayed = relay.ops;
    CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
    return r;
}

static void same_peaks(const mem_device_stats *got, const mem_device_stats *want, const char *what)
{
    for (int cls = 0; cls < MEM_CLASS_COUNT; cls++)
        CHECK_MSG(got->classes[cls].peak_bytes == want->classes[cls].peak_bytes,
                  "%s: class %d peak %zu bytes, the dry run's %zu", what, cls, got->classes[cls].peak_bytes,
                  want->classes[cls].peak_bytes);
}

static void check_case(const char *name)
{
    char relative[256], case_dir[4096];
    snprintf(relative, sizeof relative, "golden/cases/%s", name);
    textenc_case *c = NULL;
    textenc_model *m = NULL;
    CHECK_OK(textenc_case_open(test_path(case_dir, sizeof case_dir, relative), &c));
    if (c) CHECK_OK(textenc_open(c->model_dir, &m));
    if (!c || !m) goto done;
    const int64_t d = textenc_model_config(m)->text.hidden_size;
    const size_t bytes = (size_t)(c->n_ids * d) * sizeof(float);
    float *want = NULL, *got = NULL;
    CHECK_OK(mem_alloc((void **)&want, bytes, MEM_SCRATCH));
    CHECK_OK(mem_calloc((void **)&got, 1, bytes, MEM_SCRATCH));
    if (!want || !got) goto free_out;

    taps_seen host_taps = {0};
    const textenc_tap host_tap = {see, &host_taps};
    CHECK_OK(textenc_forward_tapped(m, OP_BACKEND_CPU(pool), c->ids, c->n_ids, c->pixel_values,
                                    (const int64_t(*)[3])c->grid_thw, c->n_images, &host_tap, want));
    CHECK(host_taps.n >= 1 + textenc_model_config(m)->text.num_hidden_layers);

    const int groups = textenc_model_config(m)->vision.depth + textenc_model_config(m)->text.num_hidden_layers;
    const int prefixes[2] = {groups, 0};
    for (int i = 0; i < 2; i++) {
        const int k = prefixes[i];
        const run_result dry = run_on(m, c, MEASURE, 0, k, NULL);
        CHECK_MSG(dry.status == CANVAS_OK, "%s k=%d dry run: %s", name, k, canvas_last_error());

        memset(got, 0, bytes);
        const run_result sealed = run_on(m, c, SEALED, 1, k, got);
        CHECK_MSG(sealed.status == CANVAS_OK, "%s k=%d sealed: %s", name, k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, bytes) == 0, "%s k=%d sealed: the output differs from the host run", name, k);
        CHECK_MSG(sealed.taps.n == host_taps.n && sealed.taps.hash == host_taps.hash,
                  "%s k=%d sealed: %d taps, the host run %d; %s", name, k, sealed.taps.n, host_taps.n,
                  sealed.taps.hash == host_taps.hash ? "same bits" : "other bits");
        CHECK(sealed.relayed > 0);
        same_peaks(&sealed.stats, &dry.stats, "sealed");

        memset(got, 0, bytes);
        const run_result open = run_on(m, c, OPEN, 0, k, got);
        CHECK_MSG(open.status == CANVAS_OK, "%s k=%d open: %s", name, k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, bytes) == 0, "%s k=%d open: the output differs from the host run", name, k);
        CHECK(open.taps.n == host_taps.n && open.taps.hash == host_taps.hash);
        CHECK(open.relayed == 0);
        same_peaks(&open.stats, &dry.stats, "open");
        printf("  %s, %d of %d groups resident: %llu ops relayed, device peak %zu bytes (dry run %zu)\n", name, k,
               groups, (unsigned long long)sealed.relayed, sealed.stats.peak_bytes, dry.stats.peak_bytes);
    }

    /* the sealed device with the CPU backend: refused, nothing computed over its addresses */
    const run_result refused = run_on(m, c, SEALED, 0, 0, got);
    CHECK(refused.status == CANVAS_ERR_UNSUPPORTED && strstr(canvas_last_error(), "not host-addressable"));
    CHECK(refused.stats.classes[MEM_ACTIVATIONS].peak_bytes == 0);
free_out:
    mem_free(want);
    mem_free(got);
done:
    textenc_close(m);
    textenc_case_free(c);
}

static void test_text_only(void) { check_case("textenc-text-only"); }
static void test_with_image(void) { check_case("textenc-with-image"); }
static void test_two_images(void) { check_case("textenc-two-images"); }

static canvas_status see_tensor(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return see(ctx, name, data, n, 1);
}

/* textenc_case_run_on (canvas debug case --device cuda) on the sealed probe through the relay
 * hands the sink the tensors textenc_case_run does on the host, bit for bit. */
static void test_case_runner(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/textenc-two-images");
    mem_device *sealed = NULL;
    CHECK_OK(probe_create(1, 64 * MiB, &sealed));
    if (!sealed) return;
    relay_backend relay = {.device = sealed, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    taps_seen host = {0}, device = {0};
    CHECK_OK(textenc_case_run(case_dir, OP_BACKEND_CPU(pool), see_tensor, &host));
    CHECK_OK(textenc_case_run_on(case_dir, &relayed, sealed, see_tensor, &device));
    CHECK(host.n > 10 && device.n == host.n && device.hash == host.hash && relay.ops > 0);
    CHECK(mem_device_live_blocks(sealed) == 0);
    mem_device_destroy(sealed);
}

/* prompt_encode on the sealed probe through the relay, then on a probe too small to hold it. */
static void test_prompt_encoder(void)
{
    char tok[4096], enc[4096], proc[4096], image[4096];
    test_path(tok, sizeof tok, "real-configs/qwen-image-edit-2511/tokenizer");
    test_path(enc, sizeof enc, "golden/models/prompt-tiny/text_encoder");
    test_path(proc, sizeof proc, "real-configs/qwen-image-edit-2511/processor/preprocessor_config.json");
    test_path(image, sizeof image, "golden/cases/prompt-edit-plus-one/image0.png");
    prompt_encoder *pe = NULL;
    canvas_image img = {0};
    mem_device *sealed = NULL, *tiny = NULL;
    CHECK_OK(prompt_encoder_open(tok, enc, proc, PROMPT_EDIT_PLUS, (quant_choice){QUANT_NONE, 0}, &pe));
    CHECK_OK(canvas_image_load(image, &img));
    CHECK_OK(probe_create(1, 64 * MiB, &sealed));
    CHECK_OK(probe_create(1, 4096, &tiny));
    float *want = NULL, *got = NULL;
    int64_t lw = 0, l = 0, d = 0;
    if (!pe || !img.pixels || !sealed || !tiny) goto done;
    const char *text = "Make the sky purple";
    CHECK_OK(prompt_encode(pe, pool, text, &img, 1, NULL, NULL, &want, &lw, &d));
    relay_backend relay = {.device = sealed, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    pe->device = sealed;
    pe->backend = &relayed;
    CHECK_OK(prompt_encode(pe, pool, text, &img, 1, NULL, NULL, &got, &l, &d));
    mem_device_stats s;
    mem_device_get_stats(sealed, &s);
    CHECK_MSG(pe->resident_groups == pe->total_groups && relay.ops > 0, "%d of %d groups, %llu ops relayed: %s",
              pe->resident_groups, pe->total_groups, (unsigned long long)relay.ops, pe->plan_line);
    CHECK_MSG(s.peak_bytes == pe->predicted_device_peak, "measured %zu, predicted %llu", s.peak_bytes,
              (unsigned long long)pe->predicted_device_peak);
    CHECK(got && l == lw && !memcmp(got, want, (size_t)(l * d) * sizeof *got));
    mem_free(got);
    got = NULL;
    /* too small for even every group streamed: host memory, the CPU backend (the relay unused) */
    const uint64_t relayed_before = relay.ops;
    pe->device = tiny;
    CHECK_OK(prompt_encode(pe, pool, text, &img, 1, NULL, NULL, &got, &l, &d));
    CHECK(pe->resident_groups == -1 && strstr(pe->plan_line, "in host memory") != NULL);
    CHECK(relay.ops == relayed_before);
    CHECK(got && l == lw && !memcmp(got, want, (size_t)(l * d) * sizeof *got));
done:
    if (pe) pe->device = NULL, pe->backend = NULL;
    mem_free(want);
    mem_free(got);
    canvas_image_free(&img);
    prompt_encoder_close(pe);
    if (sealed) mem_device_destroy(sealed);
    if (tiny) mem_device_destroy(tiny);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    RUN(test_text_only);
    RUN(test_with_image);
    RUN(test_two_images);
    RUN(test_case_runner);
    RUN(test_prompt_encoder);
    thread_pool_destroy(pool);
    return check_summary();
}
