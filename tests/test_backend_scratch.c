/* SPDX-License-Identifier: Apache-2.0 */
/* test_backend_scratch.c — the device memory a table backend takes for its GEMMs is in the
 * planner's device peak, to the byte, without a GPU.
 *
 * The CUDA backend's op_linear needs scratch on the device (cuBLASLt's workspace, x in bf16,
 * a decoded weight tile: op_cuda_linear_scratch_bytes, compiled in every build). The
 * transformer's forward takes one block of the largest its GEMMs need and lends it to the
 * backend (op_backend_lend_scratch), in its dry run too; the planner dry-runs with the run's
 * backend (plan_work.backend: its workers and scratch). Here the relay backend
 * (tests/relay_backend.h) over the sealed probe device takes scratch by the CUDA rule the
 * way the CUDA backend does (from the lent block, else a block of its own grown on demand),
 * so the measured peak of a forward on the probe is what a CUDA run would take; the
 * planner's predicted peak must equal it, every block resident, some and none; and a device
 * cap below the model makes the planner stream the blocks the scratch leaves no room for. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dit_random_model.h"
#include "models/qwen_image_dit.h"
#include "models/qwen_image_dit_case.h"
#include "ops/ops_cpu.h"
#include "ops/ops_cuda.h"
#include "ops/threadpool.h"
#include "plan/plan.h"
#include "probe_device.h"
#include "relay_backend.h"

#define MiB ((size_t)1024 * 1024)

static thread_pool *pool;

/* The rule's numbers, worked by hand: the MLP's second GEMM of a 1024x1024 edit with one
 * reference (8,192 image + 300 text tokens: m 8,492, k 12,288, n 3,072). */
static void test_cuda_rule(void)
{
    const weight_view bf16 = {.type = DTYPE_BF16, .out_features = 3072, .in_features = 12288};
    const quant_params fp8_layout = {.format = QUANT_FP8_E4M3, .out_features = 3072, .in_features = 12288};
    const weight_view fp8 = {.type = DTYPE_U8, .out_features = 3072, .in_features = 12288, .quant = &fp8_layout};
    const weight_view f32 = {.type = DTYPE_F32, .out_features = 20, .in_features = 5};
    /* 32 MiB workspace + 8492 x 12288 x 2 bytes of x (a multiple of 256) */
    CHECK(op_cuda_linear_scratch_bytes(8492, &bf16) == 33554432u + 208699392u);
    /* + a tile of 2,720 rows (64 MiB / 2 / 12288 = 2730, down to a multiple of 16) x 12288 x 2 */
    CHECK(op_cuda_tile_rows(3072, 12288) == 2720);
    CHECK(op_cuda_linear_scratch_bytes(8492, &fp8) == 33554432u + 208699392u + 66846720u);
    /* x of 3 x 5 bf16 rounds up to 256 bytes; the tile is the whole [20, 5] matrix */
    CHECK(op_cuda_tile_rows(20, 5) == 20);
    CHECK(op_cuda_linear_scratch_bytes(3, &f32) == 33554432u + 256u + 200u);
    CHECK(op_cuda_linear_scratch_bytes(0, &bf16) == 0);
    CHECK(op_cuda_linear_scratch_bytes((int64_t)1 << 62, &bf16) == SIZE_MAX);

    /* the CPU backend declares none (its packing scratch is host memory); the sizes-only
     * CUDA backend declares the rule's, with one worker and no kernels */
    CHECK(op_backend_linear_scratch_bytes(OP_BACKEND_CPU(pool), 8492, &bf16) == 0);
    CHECK(op_backend_linear_scratch_bytes(NULL, 8492, &bf16) == 0);
    CHECK_OK(op_backend_lend_scratch(OP_BACKEND_CPU(pool), NULL, 0));
    op_backend sizes = op_backend_cuda_sizes();
    CHECK(op_backend_linear_scratch_bytes(&sizes, 8492, &fp8) == op_cuda_linear_scratch_bytes(8492, &fp8));
    CHECK(op_backend_workers(&sizes) == 1 && !op_backend_on_host(&sizes));
    CHECK_OK(op_backend_lend_scratch(&sizes, NULL, 0));
    float x[5] = {0}, y[20];
    CHECK_FAILS(op_linear(&sizes, x, 1, &f32, NULL, y), CANVAS_ERR_UNSUPPORTED, "no kernel");
}

typedef struct measured {
    canvas_status status;
    uint64_t peak;        /* the probe's device peak */
    size_t most_needed;   /* the largest scratch an op asked for */
    size_t own_bytes;     /* scratch the relay took of its own: none when the forward lent enough */
} measured;

/* One forward on a fresh sealed probe with k resident blocks, the relay taking CUDA scratch. */
static measured forward_measured(qwen_dit_model *model, int k, const qwen_dit_inputs *in, float *out)
{
    measured r = {0};
    mem_device *sealed = NULL;
    r.status = probe_create(1, 64 * MiB, &sealed);
    if (r.status != CANVAS_OK) return r;
    relay_backend relay = {.device = sealed, .pool = pool};
    op_backend be = relay_backend_make_scratch(&relay);
    r.status = qwen_dit_place(model, sealed, k);
    if (r.status == CANVAS_OK) r.status = qwen_dit_forward(model, &be, in, NULL, out);
    r.most_needed = relay.most_needed;
    r.own_bytes = relay.own_bytes;
    relay_backend_release(&relay);
    CHECK_OK(qwen_dit_place(model, NULL, QWEN_DIT_ALL_BLOCKS));
    mem_device_stats stats;
    mem_device_get_stats(sealed, &stats);
    r.peak = stats.peak_bytes;
    CHECK(mem_device_live_blocks(sealed) == 0);
    mem_device_destroy(sealed);
    return r;
}

/* The planner's dry run of the same forward with `backend` (NULL: the CPU's over `workers`). */
static uint64_t predicted(qwen_dit_model *model, const qwen_dit_inputs *in, const op_backend *backend, thread_pool *workers,
                          int k)
{
    plan_work w;
    plan_work_transformer(&w, &model->config, in->n_img, in->n_txt, thread_pool_size(workers));
    plan_work_loaded(&w, model, NULL, NULL);
    w.backend = backend;
    uint64_t peak = 0;
    int fits = 0;
    CHECK_OK(plan_dit_dry_run(&w, model->weights_format, k, 0, workers, &peak, &fits));
    CHECK(fits);
    return peak;
}

/* The planner's largest resident prefix for a device of `cap` bytes with `backend`. */
static int planned_prefix(qwen_dit_model *model, const qwen_dit_inputs *in, const op_backend *backend, uint64_t cap)
{
    plan_work w;
    plan_work_transformer(&w, &model->config, in->n_img, in->n_txt, thread_pool_size(pool));
    plan_work_loaded(&w, model, NULL, NULL);
    w.backend = backend;
    int k = -2;
    CHECK_OK(plan_dit_largest_prefix(&w, model->weights_format, cap, pool, &k));
    return k;
}

/* A six-block random model with f32 matrices (every GEMM decodes a tile), two padded text
 * tokens: planned = measured with 6, 2 and 0 blocks resident; a cap halfway between the
 * planned peaks with 2 and 3 resident (the pool's alignment holes take some of the room above
 * the peak) gives 2, where the CPU backend's plan, which counts no scratch, keeps all 6. */
static void test_streamed_random_model(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "/tmp/canvas_test_backend_scratch_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    char model_dir[340];
    snprintf(model_dir, sizeof model_dir, "%s/transformer", dir);
    mkdir(model_dir, 0700);
    const dit_random_shape shape = {.layers = 6, .heads = 4, .head_dim = 16, .joint_dim = 32, .in_channels = 64,
                                    .out_channels = 16, .matrix_type = DTYPE_F32, .seed = 11};
    qwen_dit_model *model = NULL;
    static float want[48 * 64], got[48 * 64];
    static dit_random_two_images buffers;
    qwen_dit_inputs in;
    dit_random_two_images_make(&buffers, &in);
    CHECK_OK(dit_random_model_write(model_dir, &shape));
    CHECK_OK(qwen_dit_load(model_dir, &model));
    if (!model) goto done;
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &in, NULL, want));
    /* a shape model from the config alone (4 bytes an element) has the loaded model's matrices */
    qwen_dit_model *from_config = NULL;
    CHECK_OK(plan_dit_shape_model(&model->config, model->weights_format, 4, &from_config));
    if (from_config) {
        const weight_view *a[3] = {&from_config->weights.proj_out, &from_config->weights.blocks[5].img_mlp_out,
                                   &from_config->weights.blocks[0].img_mod};
        const weight_view *b[3] = {&model->weights.proj_out, &model->weights.blocks[5].img_mlp_out,
                                   &model->weights.blocks[0].img_mod};
        for (int i = 0; i < 3; i++)
            CHECK(a[i]->out_features == b[i]->out_features && a[i]->in_features == b[i]->in_features &&
                  a[i]->type == b[i]->type && a[i]->type == DTYPE_F32 && !a[i]->quant);
        CHECK(b[1]->in_features == 4 * 64 && b[1]->out_features == 64);
    }
    qwen_dit_free(from_config);
    relay_backend described = {0};
    const op_backend relay = relay_backend_make_scratch(&described);
    const int prefixes[3] = {6, 2, 0};
    uint64_t peak[3] = {0};
    for (int p = 0; p < 3; p++) {
        memset(got, 0xff, sizeof got);
        measured run = forward_measured(model, prefixes[p], &in, got);
        CHECK_MSG(run.status == CANVAS_OK, "k=%d: %s", prefixes[p], canvas_last_error());
        CHECK_MSG(memcmp(got, want, sizeof want) == 0, "k=%d: the output differs from the host run", prefixes[p]);
        CHECK(run.most_needed > 32 * MiB && run.own_bytes == 0);
        peak[p] = predicted(model, &in, &relay, pool, prefixes[p]);
        CHECK_MSG(peak[p] == run.peak, "k=%d: planned device peak %llu bytes, measured %llu", prefixes[p],
                  (unsigned long long)peak[p], (unsigned long long)run.peak);
        printf("  six blocks, %d resident: device peak planned %llu = measured %llu bytes\n", prefixes[p],
               (unsigned long long)peak[p], (unsigned long long)run.peak);
    }
    CHECK(peak[0] > peak[1] && peak[1] > peak[2]);
    const uint64_t three = predicted(model, &in, &relay, pool, 3), cap = (peak[1] + three) / 2;
    CHECK(cap < three);
    const int chosen = planned_prefix(model, &in, &relay, cap);
    CHECK_MSG(chosen == 2, "a cap of %llu bytes: %d resident", (unsigned long long)cap, chosen);
    CHECK(planned_prefix(model, &in, NULL, cap) == 6);
done:
    qwen_dit_free(model);
    dit_random_model_remove(model_dir);
    rmdir(dir);
}

static void test_planned_peak_is_measured(void)
{
    char case_dir[4096];
    test_path(case_dir, sizeof case_dir, "golden/cases/dit-edit-two-refs");
    qwen_dit_case *dc = NULL;
    qwen_dit_model *model = NULL;
    float *want = NULL, *got = NULL;
    CHECK_OK(qwen_dit_case_open(case_dir, &dc));
    if (dc) CHECK_OK(qwen_dit_load(dc->model_dir, &model));
    if (!model) goto done;
    const size_t out_bytes = (size_t)dc->inputs.n_img * (size_t)qwen_dit_output_channels(&model->config) * sizeof(float);
    CHECK_OK(mem_alloc((void **)&want, out_bytes, MEM_SCRATCH));
    CHECK_OK(mem_alloc((void **)&got, out_bytes, MEM_SCRATCH));
    if (!want || !got) goto done;
    CHECK_OK(qwen_dit_forward(model, OP_BACKEND_CPU(pool), &dc->inputs, NULL, want));
    relay_backend described = {0}; /* never computes: the planner only reads its table */
    const op_backend relay = relay_backend_make_scratch(&described), cuda = op_backend_cuda_sizes();
    const int layers = model->config.num_layers, prefixes[2] = {layers, 0};
    for (int p = 0; p < 2; p++) {
        const int k = prefixes[p];
        memset(got, 0xff, out_bytes);
        measured run = forward_measured(model, k, &dc->inputs, got);
        CHECK_MSG(run.status == CANVAS_OK, "k=%d: %s", k, canvas_last_error());
        CHECK_MSG(memcmp(got, want, out_bytes) == 0, "k=%d: the output differs from the host run", k);
        /* the forward lent the largest scratch its GEMMs asked for before the first one */
        CHECK(run.most_needed > 32 * MiB && run.own_bytes == 0);

        const uint64_t planned = predicted(model, &dc->inputs, &relay, pool, k);
        CHECK_MSG(planned == run.peak, "k=%d: planned device peak %llu bytes, measured %llu", k,
                  (unsigned long long)planned, (unsigned long long)run.peak);
        /* planning for CUDA without a GPU gives the same bytes */
        CHECK(predicted(model, &dc->inputs, &cuda, pool, k) == planned);
        /* the CPU backend's plan counts no scratch and the arena's attention reservation for
         * its pool's workers: with one worker it is the scratch block short of the CUDA plan */
        const uint64_t cpu_one = predicted(model, &dc->inputs, NULL, NULL, k);
        CHECK_MSG(planned - cpu_one == run.most_needed, "k=%d: the scratch counts %llu bytes, the GEMMs asked %zu", k,
                  (unsigned long long)(planned - cpu_one), run.most_needed);
        const uint64_t cpu_pool = predicted(model, &dc->inputs, NULL, pool, k);
        CHECK(cpu_pool != planned);
        printf("  %d of %d blocks resident: device peak planned %llu = measured %llu bytes (scratch %zu; the CPU "
               "backend's plan: %llu)\n",
               k, layers, (unsigned long long)planned, (unsigned long long)run.peak, run.most_needed,
               (unsigned long long)cpu_pool);
    }
done:
    mem_free(want);
    mem_free(got);
    qwen_dit_free(model);
    qwen_dit_case_free(dc);
}

int main(void)
{
    if (thread_pool_create(2, &pool) != CANVAS_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    RUN(test_cuda_rule);
    RUN(test_planned_peak_is_measured);
    RUN(test_streamed_random_model);
    thread_pool_destroy(pool);
    return check_summary();
}
