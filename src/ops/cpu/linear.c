/* linear.c — op_linear: y = x W^T + b with W in its stored format (simple version). */
#include "base/status.h"
#include "mem/mem.h"
#include "ops/cpu/simd.h"
#include "ops/ops.h"

typedef struct linear_simple_job {
    const float *x;
    int64_t m;
    const weight_view *w;
    const float *bias;
    float *y;
    float *row_buffers; /* per task: in_features floats */
} linear_simple_job;

static void weight_row_to_f32(const weight_view *w, int64_t n, float *out)
{
    int64_t k = w->in_features;
    if (w->type == DTYPE_F32) {
        memcpy(out, (const float *)w->data + n * k, (size_t)k * sizeof(float));
    } else if (w->type == DTYPE_BF16) {
        const uint16_t *row = (const uint16_t *)w->data + n * k;
        for (int64_t i = 0; i < k; i++) out[i] = simd_bf16_to_f32(row[i]);
    } else {
        const uint16_t *row = (const uint16_t *)w->data + n * k;
        for (int64_t i = 0; i < k; i++) out[i] = simd_f16_to_f32(row[i]);
    }
}

static void linear_simple_task(void *ctx, int index, int n_tasks)
{
    linear_simple_job *job = ctx;
    int64_t n_out = job->w->out_features, k = job->w->in_features;
    int64_t begin = n_out * index / n_tasks, end = n_out * (index + 1) / n_tasks;
    float *wrow = job->row_buffers + (int64_t)index * k;
    for (int64_t n = begin; n < end; n++) {
        weight_row_to_f32(job->w, n, wrow);
        for (int64_t i = 0; i < job->m; i++) {
            const float *xr = job->x + i * k;
            float sum = 0.0f;
            for (int64_t j = 0; j < k; j++) sum += xr[j] * wrow[j];
            job->y[i * n_out + n] = sum + (job->bias ? job->bias[n] : 0.0f);
        }
    }
}

canvas_status op_linear(thread_pool *pool, const float *x, int64_t m, const weight_view *w, const float *bias, float *y)
{
    if (w->type != DTYPE_F32 && w->type != DTYPE_F16 && w->type != DTYPE_BF16)
        return status_fail(CANVAS_ERR_UNSUPPORTED, "op_linear: no kernel for %s weights", dtype_name(w->type));
    if (m <= 0 || w->out_features <= 0) return CANVAS_OK;
    int n_tasks = thread_pool_size(pool);
    linear_simple_job job = {x, m, w, bias, y, NULL};
    TRY(mem_alloc((void **)&job.row_buffers, (size_t)n_tasks * (size_t)w->in_features * sizeof(float) + 64,
                  MEM_SCRATCH));
    thread_pool_run(pool, linear_simple_task, &job, n_tasks);
    mem_free(job.row_buffers);
    return CANVAS_OK;
}
