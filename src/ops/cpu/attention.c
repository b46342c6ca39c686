/* attention.c — op_attention (simple version): online softmax per query row. */
#include <math.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/ops.h"

typedef struct attention_simple_job {
    const float *q, *k, *v;
    int64_t seq;
    int heads, head_dim;
    const uint8_t *key_mask;
    float *out;
    float *acc; /* per task: head_dim floats */
} attention_simple_job;

static void attention_simple_task(void *ctx, int index, int n_tasks)
{
    attention_simple_job *job = ctx;
    int64_t ld = (int64_t)job->heads * job->head_dim;
    int hd = job->head_dim;
    float scale = 1.0f / sqrtf((float)hd);
    float *acc = job->acc + (int64_t)index * hd;
    int64_t total = job->seq * job->heads;
    for (int64_t item = total * index / n_tasks; item < total * (index + 1) / n_tasks; item++) {
        int64_t i = item / job->heads;
        int h = (int)(item % job->heads);
        const float *qi = job->q + i * ld + (int64_t)h * hd;
        float running_max = -INFINITY, denom = 0.0f;
        for (int d = 0; d < hd; d++) acc[d] = 0.0f;
        for (int64_t j = 0; j < job->seq; j++) {
            if (job->key_mask && !job->key_mask[j]) continue;
            const float *kj = job->k + j * ld + (int64_t)h * hd;
            const float *vj = job->v + j * ld + (int64_t)h * hd;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qi[d] * kj[d];
            s *= scale;
            if (s > running_max) {
                float alpha = expf(running_max - s);
                denom *= alpha;
                for (int d = 0; d < hd; d++) acc[d] *= alpha;
                running_max = s;
            }
            float p = expf(s - running_max);
            denom += p;
            for (int d = 0; d < hd; d++) acc[d] += p * vj[d];
        }
        float *oi = job->out + i * ld + (int64_t)h * hd;
        float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
        for (int d = 0; d < hd; d++) oi[d] = acc[d] * inv;
    }
}

canvas_status op_attention(thread_pool *pool, const float *q, const float *k, const float *v, int64_t seq, int heads,
                           int head_dim, const uint8_t *key_mask, float *out)
{
    if (seq <= 0 || heads <= 0 || head_dim <= 0) return CANVAS_OK;
    int n_tasks = thread_pool_size(pool);
    attention_simple_job job = {q, k, v, seq, heads, head_dim, key_mask, out, NULL};
    TRY(mem_alloc((void **)&job.acc, (size_t)n_tasks * (size_t)head_dim * sizeof(float), MEM_SCRATCH));
    thread_pool_run(pool, attention_simple_task, &job, n_tasks);
    mem_free(job.acc);
    return CANVAS_OK;
}
