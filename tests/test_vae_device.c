/* SPDX-License-Identifier: Apache-2.0 */
/* test_vae_device.c — the VAE with its weights and activations on a device the CPU cannot
 * address (the sealed probe device, tests/probe_device.h), computing through the relay
 * backend (tests/relay_backend.h): vae_place_on_device, then the golden cases
 * vae-32x48-encode and vae-32x48-decode give the host run's output bit for bit (and so
 * diffusers' within the golden bound, checked too), as do a tiled encode and decode. Also:
 * the refusals (a placed model with the CPU backend, a host model with a table backend, a
 * second placement), a failed placement leaves the model on the host and working, and
 * vae_free leaves no block on the device. */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "io/safetensors.h"
#include "models/qwen_image_vae.h"
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

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    CHECK_OK(probe_create(1, 64 * MiB, &sealed));
    if (!sealed) return check_summary();
    relay = (relay_backend){.device = sealed, .pool = pool};
    RUN(test_golden_on_device);
    RUN(test_tiled_on_device);
    RUN(test_refusals);
    mem_device_destroy(sealed);
    thread_pool_destroy(pool);
    return check_summary();
}
