/* SPDX-License-Identifier: Apache-2.0 */
/* test_pipeline_vae_device.c — the whole edit pipeline on a device the CPU cannot address (the
 * sealed probe, tests/probe_device.h) with the relay backend taking scratch by the CUDA
 * backend's rules (tests/relay_backend.h): the VAE's encode and decode go to the device with
 * the transformer, and the run gives the host run's latents and image bit for bit (the relay
 * computes with the CPU ops, so identical is the bound; a real GPU rounds differently:
 * tools/device-check.sh).
 *
 * What it proves of where the VAE ran, from the profiler's per-phase device stats:
 *   vae-encode   the device's MEM_WEIGHTS peak is the VAE's weights (vae_device_weight_bytes)
 *                and its whole peak is those plus vae_device_bytes of the pass: planned =
 *                measured, to the byte, the convolutions' scratch (op_cuda_conv2d_scratch_bytes)
 *                included;
 *   vae-decode   the MEM_WEIGHTS peak is the transformer's weights (the denoise phase's) plus
 *                the VAE's, and the whole peak those plus the decode's vae_device_bytes.
 * The planner (plan_make with limits.vae_on_device and the relay as the run's backend, or no
 * backend: the CUDA sizes) predicts the same two phases' device bytes. Where a pass does not
 * fit what the device has free, it runs in host memory, says so in a plan line, and the
 * image is the same. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mem/mem_profiler.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_vae.h"
#include "ops/ops_cpu.h"
#include "pipeline/edit_case.h"
#include "plan/plan.h"
#include "probe_device.h"
#include "relay_backend.h"

#define MiB ((size_t)1024 * 1024)

static thread_pool *pool;

/* The last tensor the sink got (the image) and every tensor's bits folded into one hash. */
typedef struct sunk {
    int n;
    uint64_t hash;
    char last[64];
} sunk;

static canvas_status sink(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape)
{
    sunk *s = ctx;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    s->hash = s->hash * 31 + fnv1a((const unsigned char *)data, n * sizeof(float)) + fnv1a((const unsigned char *)name, strlen(name));
    snprintf(s->last, sizeof s->last, "%s", name);
    s->n++;
    return CANVAS_OK;
}

static char said[8192];

static void plan_line(void *ctx, const char *message)
{
    (void)ctx;
    const size_t used = strlen(said);
    snprintf(said + used, sizeof said - used, "%s\n", message);
}

static const profiler_phase *phase_named(const profiler *prof, const char *name)
{
    for (int i = 0; i < profiler_phase_count(prof); i++)
        if (!strcmp(profiler_phase_at(prof, i)->name, name)) return profiler_phase_at(prof, i);
    CHECK_MSG(0, "no phase '%s'", name);
    return NULL;
}

typedef struct models {
    edit_case_shape shape;
    qwen_dit_model *dit;
    vae_model *vae;
} models;

/* The planner's VAE phases on a device of `cap` with `backend` (NULL: the CUDA sizes). */
static void planned_phases(const models *m, const op_backend *backend, uint64_t cap, uint64_t *encode,
                           uint64_t *decode)
{
    plan_work w;
    plan_work_edit(&w, &m->dit->config, &m->vae->config, m->shape.width, m->shape.height, m->shape.n_images,
                   m->shape.ref_width, m->shape.ref_height, m->shape.n_txt, m->shape.cfg, m->shape.steps,
                   thread_pool_size(pool));
    plan_work_loaded(&w, m->dit, NULL, m->vae);
    w.backend = backend;
    plan_limits l = {.device_bytes = cap, .vae_on_device = 1};
    plan_hardware hw = {0};
    plan_result result;
    *encode = *decode = 0;
    CHECK_OK(plan_make(&w, &hw, &l, PLAN_FULL, pool, &result));
    CHECK(result.chosen >= 0);
    if (result.chosen < 0) return;
    const plan_candidate *c = &result.candidates[result.chosen];
    CHECK(!c->point.vae_tiled);
    *encode = c->phases[PLAN_PHASE_VAE_ENCODE].device;
    *decode = c->phases[PLAN_PHASE_VAE_DECODE].device;
}

static models loaded;
static char case_dir[4096];
static sunk host_run;

static void test_pipeline_on_sealed(void)
{
    const models *m = &loaded;
    const sunk *host = &host_run;
    mem_device *device = NULL;
    CHECK_OK(probe_create(1, 128 * MiB, &device));
    if (!device) return;
    relay_backend relay = {.device = device, .pool = pool};
    op_backend relayed = relay_backend_make_scratch(&relay);
    profiler *prof = NULL;
    CHECK_OK(profiler_create(device, mem_device_cpu(), &prof));
    edit_case_plan plan = {.strategy = PLAN_AUTO, .fallback_enabled = 1, .dit_backend = &relayed};
    sunk got = {0};
    said[0] = '\0';
    CHECK_OK(edit_case_run_planned(case_dir, pool, device, -1, &plan, prof, plan_line, sink, &got));
    CHECK_MSG(got.n == host->n && got.hash == host->hash && !strcmp(got.last, "image"),
              "the sealed run's latents and image differ from the host run's");
    char want[128];
    snprintf(want, sizeof want, "plan: VAE encode of %dx%d on the device '%s'", m->shape.ref_width,
             m->shape.ref_height, mem_device_name(device));
    CHECK_MSG(strstr(said, want) != NULL, "no '%s' in:\n%s", want, said);
    snprintf(want, sizeof want, "plan: VAE decode of %dx%d on the device '%s'", m->shape.width, m->shape.height,
             mem_device_name(device));
    CHECK_MSG(strstr(said, want) != NULL, "no '%s' in:\n%s", want, said);
    CHECK(strstr(said, "whole, on the device for each pass that fits there") != NULL);
    CHECK(relay.own_bytes == 0); /* every op's scratch came from a block lent to it */

    const uint64_t weights = vae_device_weight_bytes(m->vae);
    const uint64_t encode = vae_device_bytes(m->vae, &relayed, 1, m->shape.ref_height, m->shape.ref_width);
    const uint64_t decode = vae_device_bytes(m->vae, &relayed, 0, m->shape.height / 8, m->shape.width / 8);
    const profiler_phase *e = phase_named(prof, "vae-encode"), *d = phase_named(prof, "vae-decode");
    const profiler_phase *step = phase_named(prof, "step 1");
    if (e && d && step) {
        CHECK_MSG(e->device_class_peak_bytes[MEM_WEIGHTS] == weights, "encode: %zu weight bytes on the device, the VAE has %llu",
                  e->device_class_peak_bytes[MEM_WEIGHTS], (unsigned long long)weights);
        CHECK_MSG(e->device_peak_bytes == weights + encode, "encode: device peak %zu, planned %llu",
                  e->device_peak_bytes, (unsigned long long)(weights + encode));
        const size_t dit_weights = step->device_class_peak_bytes[MEM_WEIGHTS];
        CHECK(dit_weights > 0);
        CHECK_MSG(d->device_class_peak_bytes[MEM_WEIGHTS] == dit_weights + weights,
                  "decode: %zu weight bytes on the device, the transformer's %zu + the VAE's %llu",
                  d->device_class_peak_bytes[MEM_WEIGHTS], dit_weights, (unsigned long long)weights);
        CHECK_MSG(d->device_peak_bytes == dit_weights + weights + decode, "decode: device peak %zu, planned %llu",
                  d->device_peak_bytes, (unsigned long long)(dit_weights + weights + decode));
        printf("  sealed probe: vae-encode device peak %zu = weights %llu + pass %llu; vae-decode %zu = transformer "
               "%zu + VAE weights %llu + pass %llu\n",
               e->device_peak_bytes, (unsigned long long)weights, (unsigned long long)encode, d->device_peak_bytes,
               dit_weights, (unsigned long long)weights, (unsigned long long)decode);
    }
    /* the planner: the same bytes for the VAE's phases (the table has the VAE alone on the device) */
    uint64_t plan_e, plan_d, cuda_e, cuda_d;
    planned_phases(m, &relayed, 128 * MiB, &plan_e, &plan_d);
    CHECK_MSG(plan_e == weights + encode && plan_d == weights + decode,
              "planned VAE phases %llu / %llu, counted %llu / %llu", (unsigned long long)plan_e,
              (unsigned long long)plan_d, (unsigned long long)(weights + encode), (unsigned long long)(weights + decode));
    planned_phases(m, NULL, 128 * MiB, &cuda_e, &cuda_d);
    CHECK(cuda_e == plan_e && cuda_d == plan_d);
    profiler_destroy(prof);
    CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
}

/* A device of 2 MiB with the relay taking no scratch: the encode (1.17 MiB there) fits the
 * empty device, the decode does not fit beside the transformer's weights (1.29 MiB): it runs
 * in host memory, saying so, and the image is the same. */
static void test_decode_left_on_host(void)
{
    const sunk *host = &host_run;
    mem_device *device = NULL;
    CHECK_OK(probe_create(1, 2 * MiB, &device));
    if (!device) return;
    relay_backend relay = {.device = device, .pool = pool};
    op_backend relayed = relay_backend_make(&relay);
    edit_case_plan plan = {.strategy = PLAN_AUTO, .fallback_enabled = 1, .dit_backend = &relayed};
    sunk got = {0};
    said[0] = '\0';
    CHECK_OK(edit_case_run_planned(case_dir, pool, device, -1, &plan, NULL, plan_line, sink, &got));
    CHECK(got.n == host->n && got.hash == host->hash);
    CHECK_MSG(strstr(said, "plan: VAE encode of 64x64 on the device 'sealed'") != NULL &&
                  strstr(said, "plan: VAE decode of 64x64 in host memory: it does not fit the device 'sealed'") != NULL,
              "no such plan lines in:\n%s", said);
    CHECK(mem_device_live_blocks(device) == 0);
    mem_device_destroy(device);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) return 1;
    char dir[4200];
    test_path(case_dir, sizeof case_dir, "golden/cases/edit-cfg");
    CHECK_OK(edit_case_shape_read(case_dir, &loaded.shape));
    snprintf(dir, sizeof dir, "%s/transformer", loaded.shape.model_dir);
    CHECK_OK(qwen_dit_load(dir, &loaded.dit));
    snprintf(dir, sizeof dir, "%s/vae", loaded.shape.model_dir);
    CHECK_OK(vae_load(dir, &loaded.vae));
    CHECK_OK(edit_case_run(case_dir, pool, sink, &host_run));
    CHECK(host_run.n > 1 && !strcmp(host_run.last, "image"));
    if (loaded.dit && loaded.vae) {
        RUN(test_pipeline_on_sealed);
        RUN(test_decode_left_on_host);
    }
    qwen_dit_free(loaded.dit);
    vae_free(loaded.vae);
    thread_pool_destroy(pool);
    return check_summary();
}
