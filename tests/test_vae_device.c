/* SPDX-License-Identifier: Apache-2.0 */
/* test_vae_device.c — the VAE with its weights and activations on a device the CPU cannot
 * address (the sealed probe device, tests/probe_device.h), computing through the relay
 * backend (tests/relay_backend.h): vae_place_on_device, then the golden cases
 * vae-32x48-encode and vae-32x48-decode give the host run's output bit for bit (and so
 * diffusers' within the golden bound, checked too), as do a tiled encode and decode. Also:
 * the refusals (a placed model with the CPU backend, a host model with a table backend, a
 * second placement), a failed placement leaves the model on the host and working, and
 * vae_free leaves no block on the device. vae_leave_device brings the weights back into host
 * memory, the same bytes (the host run's bits again).
 *
 * The device peak: with the relay taking scratch by the CUDA backend's rules
 * (relay_backend_make_scratch: op_cuda_conv2d_scratch_bytes for each convolution,
 * op_cuda_linear_scratch_bytes for each GEMM), an encode and a decode on a fresh sealed probe
 * peak at vae_device_weight_bytes + vae_device_bytes to the byte, counted before the model is
 * placed, with the pass's one lent block serving every op (the relay took none of its own);
 * the sizes-only CUDA backend counts the same. */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "io/safetensors.h"
#include "models/qwen_image_vae.h"
#include "ops/ops_cuda.h"
#include "probe_device.h"
#include "relay_backend.h"

#define MiB ((size_t)1024 * 1024)

static mem_device *sealed;
static thread_pool *pool;
static relay_backend relay;

/* A tensor of a golden case's file, as f32 (NULL if missing). */
static float *case_tensor(const char *case_name, const char *file, const char *name, size_t *count)
{
    char path[4200];
    test_path(path, sizeof path, "golden/cases");
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s/%s", case_name, file);
    st_file *f = NULL;
    CHECK_OK(st_open(path, &f));
    if (!f) return NULL;
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL, "%s: no tensor '%s'", path, name);
    float *out = NULL;
    if (t) {
        *count = (size_t)st_numel(t);
        out = malloc(*count * sizeof *out);
        dtype_to_f32(t->type, t->data, out, *count);
    }
    st_close(f);
    return out;
}

static vae_model *load_tiny(void)
{
    char dir[4096];
    vae_model *m = NULL;
    CHECK_OK(vae_load(test_path(dir, sizeof dir, "golden/models/vae-tiny/vae"), &m));
    return m;
}

/* One golden case on the host (CPU backend) and on the sealed device (relay backend). */
static void golden_case(vae_model *host, vae_model *placed, int encode)
{
    const char *name = encode ? "vae-32x48-encode" : "vae-32x48-decode";
    size_t in_count = 0, want_count = 0;
    float *in = case_tensor(name, "inputs.safetensors", encode ? "image" : "latent", &in_count);
    float *expected = case_tensor(name, "expected.safetensors", encode ? "latent" : "image", &want_count);
    if (!in || !expected) return;
    float *a = calloc(want_count, sizeof *a), *b = calloc(want_count, sizeof *b);
    op_backend be = relay_backend_make(&relay);
    const uint64_t ops_before = relay.ops;
    if (encode) {
        CHECK_OK(vae_encode(host, OP_BACKEND_CPU(pool), in, 32, 48, a));
        CHECK_OK(vae_encode(placed, &be, in, 32, 48, b));
    } else {
        CHECK_OK(vae_decode(host, OP_BACKEND_CPU(pool), in, 4, 6, a));
        CHECK_OK(vae_decode(placed, &be, in, 4, 6, b));
    }
    CHECK_MSG(!memcmp(a, b, want_count * sizeof *a), "%s: the device run differs from the host run", name);
    const double ratio = test_relative_error(b, expected, want_count);
    CHECK_MSG(ratio <= 1e-4, "%s: max|diff|/max|ref| %.3e against diffusers", name, ratio);
    CHECK(relay.ops > ops_before + 10); /* it did compute on the device, op by op */
    free(in), free(expected), free(a), free(b);
}

static void test_golden_on_device(void)
{
    vae_model *host = load_tiny(), *placed = load_tiny();
    if (!host || !placed) return;
    const probe_counts before = probe_counts_of(sealed);
    CHECK_OK(vae_place_on_device(placed, sealed));
    CHECK(placed->device == sealed && placed->device_bytes > 0 && placed->weight_bytes == 0);
    CHECK(probe_counts_of(sealed).copies_in > before.copies_in);
    golden_case(host, placed, 1);
    golden_case(host, placed, 0);
    /* only the weights stay on the device between runs */
    CHECK(mem_device_live_blocks(sealed) == 1);
    vae_free(placed);
    vae_free(host);
    CHECK(mem_device_live_blocks(sealed) == 0);
}

/* Tiled runs on the device: crops, blends and the output stay host memory (the CPU's
 * copies), each tile's forward crosses to the device. */
static void test_tiled_on_device(void)
{
    vae_model *host = load_tiny(), *placed = load_tiny();
    if (!host || !placed) return;
    CHECK_OK(vae_place_on_device(placed, sealed));
    op_backend be = relay_backend_make(&relay);
    const vae_tiling t = {16, 24, 8, 16};
    uint32_t seed = 91;
    float in[3 * 32 * 48], a[3 * 32 * 48], b[3 * 32 * 48];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) in[i] = test_uniform(&seed);
    CHECK_OK(vae_encode_tiled(host, OP_BACKEND_CPU(pool), &t, in, 32, 48, a));
    CHECK_OK(vae_encode_tiled(placed, &be, &t, in, 32, 48, b));
    CHECK(!memcmp(a, b, 16 * 4 * 6 * sizeof(float)));
    const vae_tiling td = {16, 16, 8, 8};
    CHECK_OK(vae_decode_tiled(host, OP_BACKEND_CPU(pool), &td, a, 4, 6, in));
    CHECK_OK(vae_decode_tiled(placed, &be, &td, a, 4, 6, b));
    CHECK(!memcmp(in, b, sizeof b));
    vae_free(placed);
    vae_free(host);
    CHECK(mem_device_live_blocks(sealed) == 0);
}

static void test_refusals(void)
{
    vae_model *host = load_tiny(), *placed = load_tiny();
    if (!host || !placed) return;
    float image[3 * 16 * 16] = {0}, latent[16 * 2 * 2];
    op_backend be = relay_backend_make(&relay);
    CHECK_FAILS(vae_encode(host, &be, image, 16, 16, latent), CANVAS_ERR_USAGE, "vae_place_on_device");

    /* a placement that fails (the device full) leaves the model on the host, working */
    CHECK_OK(mem_device_set_cap(sealed, 4096));
    CHECK_FAILS(vae_place_on_device(placed, sealed), CANVAS_ERR_OUT_OF_MEMORY, "");
    CHECK_OK(mem_device_set_cap(sealed, 64 * MiB));
    CHECK(placed->device == NULL && placed->weight_bytes > 0);
    float host_latent[16 * 2 * 2];
    CHECK_OK(vae_encode(placed, OP_BACKEND_CPU(pool), image, 16, 16, latent));
    CHECK_OK(vae_encode(host, OP_BACKEND_CPU(pool), image, 16, 16, host_latent));
    CHECK(!memcmp(latent, host_latent, sizeof latent));

    CHECK_OK(vae_place_on_device(placed, sealed));
    CHECK_FAILS(vae_place_on_device(placed, sealed), CANVAS_ERR_USAGE, "already on device");
    CHECK_FAILS(vae_encode(placed, OP_BACKEND_CPU(pool), image, 16, 16, latent), CANVAS_ERR_USAGE,
                "the CPU backend cannot compute on device");
    vae_free(placed);
    vae_free(host);
    CHECK(mem_device_live_blocks(sealed) == 0);
}

/* Placed and taken back: the host run's bits, the device left empty. */
static void test_leave_device(void)
{
    vae_model *host = load_tiny(), *moved = load_tiny();
    if (!host || !moved) return;
    CHECK_OK(vae_leave_device(moved)); /* on the host already: nothing to do */
    const size_t bytes = vae_device_weight_bytes(moved);
    CHECK(bytes > 0 && bytes >= moved->weight_bytes);
    CHECK_OK(vae_place_on_device(moved, sealed));
    CHECK(vae_device_weight_bytes(moved) == bytes && moved->device_bytes == bytes);
    CHECK_OK(vae_leave_device(moved));
    CHECK(moved->device == NULL && moved->weight_bytes == bytes && mem_device_live_blocks(sealed) == 0);
    uint32_t seed = 7;
    float image[3 * 32 * 48], a[16 * 4 * 6], b[16 * 4 * 6], da[3 * 32 * 48], db[3 * 32 * 48];
    for (size_t i = 0; i < sizeof image / sizeof image[0]; i++) image[i] = test_uniform(&seed);
    CHECK_OK(vae_encode(host, OP_BACKEND_CPU(pool), image, 32, 48, a));
    CHECK_OK(vae_encode(moved, OP_BACKEND_CPU(pool), image, 32, 48, b));
    CHECK(!memcmp(a, b, sizeof a));
    CHECK_OK(vae_decode(host, OP_BACKEND_CPU(pool), a, 4, 6, da));
    CHECK_OK(vae_decode(moved, OP_BACKEND_CPU(pool), a, 4, 6, db));
    CHECK(!memcmp(da, db, sizeof da));
    /* and to the device again: the relay's run equals the host's too */
    CHECK_OK(vae_place_on_device(moved, sealed));
    op_backend be = relay_backend_make(&relay);
    CHECK_OK(vae_decode(moved, &be, a, 4, 6, db));
    CHECK(!memcmp(da, db, sizeof da));
    vae_free(moved);
    vae_free(host);
    CHECK(mem_device_live_blocks(sealed) == 0);
}

/* One pass on a fresh sealed probe with the relay taking CUDA scratch: its measured device
 * peak (placement included) against the count made before placing. */
static void peak_case(int encode, int height, int width, uint64_t *largest_scratch)
{
    vae_model *model = load_tiny();
    if (!model) return;
    mem_device *fresh = NULL;
    CHECK_OK(probe_create(1, 256 * MiB, &fresh));
    if (!fresh) {
        vae_free(model);
        return;
    }
    relay_backend scratch_relay = {.device = fresh, .pool = pool};
    op_backend be = relay_backend_make_scratch(&scratch_relay), cuda = op_backend_cuda_sizes();
    const uint64_t weights = vae_device_weight_bytes(model), pass = vae_device_bytes(model, &be, encode, height, width);
    const uint64_t planned = weights + pass;
    CHECK(vae_device_bytes(model, &cuda, encode, height, width) == pass);
    /* the CPU backend's count on a device holds no scratch block, but its bands */
    CHECK(vae_device_bytes(model, NULL, encode, height, width) < pass);
    /* encode: 3 image planes in, 16 latent planes at an 8th of the side out; decode the reverse */
    const size_t pixels = (size_t)height * width;
    const size_t in_count = pixels * (encode ? 3 : 16), out_count = encode ? pixels / 64 * 16 : pixels * 64 * 3;
    float *in = calloc(in_count, sizeof *in), *out = calloc(out_count, sizeof *out);
    uint32_t seed = 3;
    for (size_t i = 0; i < in_count; i++) in[i] = test_uniform(&seed);
    CHECK_OK(vae_place_on_device(model, fresh));
    CHECK(vae_device_bytes(model, &be, encode, height, width) == pass); /* placed or not: the same */
    CHECK_OK(encode ? vae_encode(model, &be, in, height, width, out) : vae_decode(model, &be, in, height, width, out));
    mem_device_stats stats;
    mem_device_get_stats(fresh, &stats);
    CHECK_MSG(stats.peak_bytes == planned, "%s %dx%d: planned device peak %llu bytes, measured %llu",
              encode ? "encode" : "decode", width, height, (unsigned long long)planned,
              (unsigned long long)stats.peak_bytes);
    /* one lent block served every op: the relay took no scratch of its own */
    CHECK(scratch_relay.own_bytes == 0 && scratch_relay.most_needed > 32 * MiB);
    *largest_scratch = scratch_relay.most_needed;
    printf("  %s %dx%d: device peak planned %llu = measured %llu bytes (weights %llu, largest op scratch %zu)\n",
           encode ? "encode" : "decode", width, height, (unsigned long long)planned,
           (unsigned long long)stats.peak_bytes, (unsigned long long)weights, scratch_relay.most_needed);
    relay_backend_release(&scratch_relay);
    vae_free(model);
    CHECK(mem_device_live_blocks(fresh) == 0);
    mem_device_destroy(fresh);
    free(in), free(out);
}

static void test_planned_peak_is_measured(void)
{
    uint64_t scratch_encode = 0, scratch_decode = 0;
    peak_case(1, 32, 48, &scratch_encode);
    peak_case(0, 4, 6, &scratch_decode);
    uint64_t larger = 0;
    peak_case(1, 64, 64, &larger);
    CHECK(larger > scratch_encode);
}

/* The rule for one convolution, worked by hand: a 3x3 conv of 128 channels over a 1024x1024
 * image (k = 1152; a band of 16 Mi / 1152 / 1024 = 14 rows; bf16 weights, so no decoded tile). */
static void test_conv_rule(void)
{
    const conv2d_params p = {.height = 1024, .width = 1024, .in_channels = 128, .out_channels = 128, .kernel = 3,
                             .stride = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                             .norm_gamma = (const float *)&p, .accumulate = 1};
    const weight_view w = {.type = DTYPE_BF16, .out_features = 128, .in_features = 1152};
    op_cuda_conv_layout l;
    CHECK(op_cuda_conv2d_layout(&p, &w, &l));
    CHECK(l.band_rows == 14);
    CHECK(l.col_bytes == (size_t)14 * 1024 * 1152 * 4);         /* a multiple of 256 */
    CHECK(l.tmp_bytes == (size_t)14 * 1024 * 128 * 4);
    CHECK(l.norm_bytes == (size_t)1024 * 1024 * 4);
    CHECK(l.gemm_bytes == op_cuda_linear_scratch_bytes(14 * 1024, &w));
    CHECK(l.gemm_bytes == ((size_t)32 << 20) + (size_t)14 * 1024 * 1152 * 2);
    CHECK(op_cuda_conv2d_scratch_bytes(&p, &w) == l.own_bytes + l.gemm_bytes);
    /* no norm, no accumulation: the band and its GEMM alone */
    conv2d_params plain = p;
    plain.norm_gamma = NULL;
    plain.accumulate = 0;
    CHECK(op_cuda_conv2d_scratch_bytes(&plain, &w) == l.col_bytes + l.gemm_bytes);
    /* no output: nothing; the CPU backend declares none */
    conv2d_params empty = p;
    empty.height = 0;
    CHECK(op_cuda_conv2d_scratch_bytes(&empty, &w) == 0);
    CHECK(op_backend_conv2d_scratch_bytes(OP_BACKEND_CPU(pool), &p, &w) == 0);
    op_backend cuda = op_backend_cuda_sizes();
    CHECK(op_backend_conv2d_scratch_bytes(&cuda, &p, &w) == op_cuda_conv2d_scratch_bytes(&p, &w));
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    CHECK_OK(probe_create(1, 64 * MiB, &sealed));
    if (!sealed) return check_summary();
    relay = (relay_backend){.device = sealed, .pool = pool};
    RUN(test_golden_on_device);
    RUN(test_tiled_on_device);
    RUN(test_refusals);
    RUN(test_leave_device);
    RUN(test_conv_rule);
    RUN(test_planned_peak_is_measured);
    mem_device_destroy(sealed);
    thread_pool_destroy(pool);
    return check_summary();
}
