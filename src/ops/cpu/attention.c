/* SPDX-License-Identifier: Apache-2.0 */
/* attention.c — op_attention: softmax(q k^T / sqrt(d)) v per head, flash style.
 *
 * A work item is one head and ATTN_QB query rows. For it a thread keeps, in its own
 * buffers (O(seq x head_dim) per thread, never O(seq^2)):
 *   kt  the head's keys transposed into 16-key strips   [seq16/16][head_dim][16]  (packed once
 *   v   the head's values in 16-column strips           [hd16/16][seq16][16]      per head)
 *   q   the item's queries in 6-row strips, times        [QB/6][head_dim][6]
 *       log2(e)/sqrt(head_dim)
 *   s   scores (base-2 exponents), then probabilities    [QB][KB]
 *   o   the running output                              [QB][head_dim16]
 * and walks the keys in blocks of ATTN_KB:
 *   s = q kt + bias                 (6x16 microkernel with the store fused: the tile goes
 *                                    from registers to s with the key bias added)
 *   online softmax per row, in base 2:  m' = max(m, max_j s), p = 2^(s - m'),
 *                            l = l 2^(m-m') + sum p, o *= 2^(m-m')
 *   o += p v                        (6x16 microkernel reading p row-major in place, the
 *                                    tile added to o in registers)
 * and finally writes o / l (0 for a query whose keys are all masked). Working in base 2
 * with the scale folded into q leaves the softmax pass one subtraction and a 2^x per score
 * (no separate scale pass, no Cody-Waite reduction).
 *
 * Masked keys and the padding up to a multiple of 16 keys get a score of -inf through a
 * per-key additive bias. Grouped-query attention reads key/value head h / group for query
 * head h (items run head-major, so a thread packs each key/value head once per group);
 * the causal mask sets the scores of later keys to -inf in the blocks that cross the
 * diagonal and skips the blocks after it. With one key/value head per query head and no
 * causal mask (op_attention) those steps are not taken. Every item is computed the same way whichever thread runs it,
 * so the result does not depend on the number of threads. */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/status.h"
#include "mem/mem.h"
#include "ops/cpu/gemm_kernel.h"
#include "ops/cpu/simd.h"
#include "ops/ops_cpu.h"

#define ATTN_QB 96   /* queries per item: 16 strips of 6 */
#define ATTN_KB 128  /* keys per block */

typedef struct attention_job {
    const float *q, *k, *v;
    float *out;
    int64_t seq, seq16;       /* seq16: seq rounded up to 16 */
    int heads, head_dim, hd16;/* hd16: head_dim rounded up to 16 */
    int64_t ld;               /* heads * head_dim: q and out rows */
    int64_t kv_ld;            /* kv_heads * head_dim: k and v rows */
    int group;                /* query heads per key/value head */
    int causal;               /* 1: query i sees keys 0..i */
    float scale;
    const float *key_bias;    /* [seq16]: 0 for a live key, -inf for masked or padding */
    int64_t q_blocks;
    atomic_int_fast64_t next_item;

    float *workspace;
    size_t per_task_floats;
} attention_job;

typedef struct attention_buffers {
    float *kt, *v, *q, *s, *o, *m, *l;
    int packed_head; /* key/value head whose keys and values are in kt and v, -1 for none */
} attention_buffers;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static void carve_buffers(const attention_job *job, float *base, attention_buffers *b)
{
    size_t hd = (size_t)job->head_dim, hd16 = (size_t)job->hd16, seq16 = (size_t)job->seq16;
    b->kt = base;
    b->v = b->kt + round16(seq16 * hd);
    b->q = b->v + round16(seq16 * hd16);
    b->s = b->q + round16(ATTN_QB * hd + 2);
    b->o = b->s + round16(ATTN_QB * ATTN_KB);
    b->m = b->o + round16(ATTN_QB * hd16);
    b->l = b->m + round16(ATTN_QB);
    b->packed_head = -1;
}

static size_t buffer_floats(int64_t seq16, int head_dim, int hd16)
{
    size_t hd = (size_t)head_dim;
    return round16((size_t)seq16 * hd) + round16((size_t)seq16 * (size_t)hd16) + round16(ATTN_QB * hd + 2) +
           round16(ATTN_QB * ATTN_KB) + round16(ATTN_QB * (size_t)hd16) + 2 * round16(ATTN_QB);
}

/* Keys of key/value head h transposed into 16-key strips, values copied with padded rows. */
static void pack_head(const attention_job *job, int h, attention_buffers *b)
{
    int hd = job->head_dim;
    const int64_t ld = job->kv_ld;
    const float *k = job->k + (int64_t)h * hd, *v = job->v + (int64_t)h * hd;
    for (int64_t j0 = 0; j0 < job->seq16; j0 += 16) {
        float *strip = b->kt + j0 * hd;
        int64_t live = job->seq - j0 < 16 ? job->seq - j0 : 16;
        int d = 0;
        if (live == 16) {
            for (; d + 8 <= hd; d += 8)
                for (int half = 0; half < 2; half++) {
                    __m256 r[8];
                    GEMM_UNROLL8 for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (j0 + half * 8 + i) * ld + d);
                    gemm_transpose8x8(r);
                    GEMM_UNROLL8 for (int i = 0; i < 8; i++) _mm256_storeu_ps(strip + (d + i) * 16 + half * 8, r[i]);
                }
        }
        for (; d < hd; d++)
            for (int c = 0; c < 16; c++) strip[d * 16 + c] = c < live ? k[(j0 + c) * ld + d] : 0.0f;
    }
    for (int d0 = 0; d0 < job->hd16; d0 += 16) {
        float *strip = b->v + (int64_t)d0 * job->seq16;
        int cols = hd - d0 < 16 ? hd - d0 : 16;
        for (int64_t j = 0; j < job->seq16; j++) {
            float *row = strip + j * 16;
            if (j < job->seq && cols == 16) {
                memcpy(row, v + j * ld + d0, 16 * sizeof(float));
            } else {
                for (int c = 0; c < 16; c++) row[c] = j < job->seq && c < cols ? v[j * ld + d0 + c] : 0.0f;
            }
        }
    }
    b->packed_head = h;
}

/* 2^x for 8 lanes with x <= 0 or -inf: x = n + r, n = round(x) by the 1.5*2^23 trick
 * (the sum's low mantissa bits are n + 127, the biased exponent of 2^n), |r| <= 1/2
 * exactly, 2^r by a degree-6 minimax polynomial (truncation error < 4e-9 relative; with
 * the float roundings the result is within ~2 ulp, about 1.5e-7 relative). Inputs below
 * -126 (and -inf) give exactly 0. */
static inline __m256 exp2_nonpositive(__m256 x)
{
    const __m256 lo_limit = _mm256_set1_ps(-126.0f);
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    __m256 underflow = _mm256_cmp_ps(x, lo_limit, _CMP_LT_OQ);
    __m256 xc = _mm256_max_ps(x, lo_limit);
    __m256 t = _mm256_add_ps(xc, magic);
    __m256 r = _mm256_sub_ps(xc, _mm256_sub_ps(t, magic));
    __m256 p = _mm256_set1_ps(1.5469732e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3410001e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.6180308e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.5502973e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.4022651e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.9314723e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, scale));
}

/* Exponentiate one row of a score block (base-2 exponents, bias already added) in place;
 * updates the row's running maximum *m and sum *l and returns the factor the output row
 * must be multiplied by. */
static float softmax_row(float *s, int64_t kb, float *m, float *l)
{
    __m256 vmax0 = _mm256_set1_ps(-INFINITY), vmax1 = vmax0;
    int64_t j = 0;
    for (; j + 16 <= kb; j += 16) {
        vmax0 = _mm256_max_ps(vmax0, _mm256_loadu_ps(s + j));
        vmax1 = _mm256_max_ps(vmax1, _mm256_loadu_ps(s + j + 8));
    }
    for (; j < kb; j += 8) vmax0 = _mm256_max_ps(vmax0, _mm256_loadu_ps(s + j));
    float m_new = simd_hmax(_mm256_max_ps(vmax0, vmax1));
    if (m_new < *m) m_new = *m;
    if (m_new == -INFINITY) { /* every key so far masked */
        memset(s, 0, (size_t)kb * sizeof(float));
        return 1.0f;
    }
    float alpha = *m == -INFINITY ? 0.0f : exp2f(*m - m_new);
    __m256 vm = _mm256_set1_ps(m_new), vsum = _mm256_setzero_ps();
    for (j = 0; j < kb; j += 8) {
        __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, p);
        vsum = _mm256_add_ps(vsum, p);
    }
    *l = *l * alpha + simd_hsum(vsum);
    *m = m_new;
    return alpha;
}

/* Scores of keys after their query (key j0 + c > query i0 + i) to -inf. */
static void mask_future(float *s, int64_t rows6, int64_t i0, int64_t j0, int64_t kb)
{
    for (int64_t i = 0; i < rows6; i++) {
        int64_t first = i0 + i + 1 - j0; /* first masked column of row i */
        for (int64_t c = first < 0 ? 0 : first; c < kb; c++) s[i * ATTN_KB + c] = -INFINITY;
    }
}

static void attention_item(const attention_job *job, int64_t item, attention_buffers *b)
{
    int h = (int)(item / job->q_blocks);
    int64_t i0 = (item % job->q_blocks) * ATTN_QB;
    int64_t rows = job->seq - i0 < ATTN_QB ? job->seq - i0 : ATTN_QB;
    int64_t strips = (rows + GEMM_MR - 1) / GEMM_MR;
    int hd = job->head_dim, hd16 = job->hd16;
    if (b->packed_head != h / job->group) pack_head(job, h / job->group, b);

    const float *q = job->q + i0 * job->ld + (int64_t)h * hd;
    for (int64_t r = 0; r < strips; r++) {
        int live = (int)(rows - r * GEMM_MR < GEMM_MR ? rows - r * GEMM_MR : GEMM_MR);
        gemm_pack_a6(q + r * GEMM_MR * job->ld, job->ld, live, hd, b->q + r * GEMM_MR * hd);
    }
    int64_t rows6 = strips * GEMM_MR;
    const __m256 qscale = _mm256_set1_ps(job->scale * 1.44269504088896341f);
    int64_t qi = 0;
    for (; qi + 8 <= rows6 * hd; qi += 8)
        _mm256_storeu_ps(b->q + qi, _mm256_mul_ps(_mm256_loadu_ps(b->q + qi), qscale));
    for (; qi < rows6 * hd; qi++) b->q[qi] *= _mm256_cvtss_f32(qscale);
    memset(b->o, 0, (size_t)(rows6 * hd16) * sizeof(float));
    for (int64_t i = 0; i < rows6; i++) b->m[i] = -INFINITY, b->l[i] = 0.0f;

    /* causal: the item's last query sees keys up to i0 + rows - 1, later blocks are all masked */
    const int64_t key_end = job->causal && i0 + rows < job->seq16 ? i0 + rows : job->seq16;
    for (int64_t j0 = 0; j0 < key_end; j0 += ATTN_KB) {
        int64_t kb = job->seq16 - j0 < ATTN_KB ? job->seq16 - j0 : ATTN_KB;
        /* scores: s[i][j] = q_i . k_j + bias_j (q already scaled) */
        for (int64_t c = 0; c < kb; c += 16) {
            const float *strip = b->kt + (j0 + c) * hd;
            for (int64_t r = 0; r < strips; r++)
                gemm_kernel_6x16_store(hd, b->q + r * GEMM_MR * hd, strip, b->s + r * GEMM_MR * ATTN_KB + c, ATTN_KB,
                                       1, job->key_bias + j0 + c);
        }
        if (job->causal && j0 + kb - 1 > i0) mask_future(b->s, rows6, i0, j0, kb);
        /* online softmax, rescaling the output rows whose maximum moved */
        for (int64_t i = 0; i < rows6; i++) {
            float alpha = softmax_row(b->s + i * ATTN_KB, kb, &b->m[i], &b->l[i]);
            if (alpha != 1.0f) {
                __m256 va = _mm256_set1_ps(alpha);
                float *o = b->o + i * hd16;
                for (int d = 0; d < hd16; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), va));
            }
        }
        /* o += p v */
        for (int d = 0; d < hd16; d += 16) {
            const float *vstrip = b->v + (int64_t)d * job->seq16 + j0 * 16;
            for (int64_t r = 0; r < strips; r++)
                gemm_kernel_6x16_rows_store(kb, b->s + r * GEMM_MR * ATTN_KB, ATTN_KB, vstrip,
                                            b->o + r * GEMM_MR * hd16 + d, hd16);
        }
    }

    float *out = job->out + i0 * job->ld + (int64_t)h * hd;
    for (int64_t i = 0; i < rows; i++) {
        float inv = b->l[i] > 0.0f ? 1.0f / b->l[i] : 0.0f;
        const float *o = b->o + i * hd16;
        float *dst = out + i * job->ld;
        int d = 0;
        __m256 vinv = _mm256_set1_ps(inv);
        for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(dst + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), vinv));
        for (; d < hd; d++) dst[d] = o[d] * inv;
    }
}

static void attention_task(void *ctx, int index, int n_tasks)
{
    attention_job *job = ctx;
    (void)n_tasks;
    attention_buffers buffers;
    carve_buffers(job, job->workspace + (size_t)index * job->per_task_floats, &buffers);
    int64_t items = (int64_t)job->heads * job->q_blocks;
    for (;;) {
        int64_t item = atomic_fetch_add_explicit(&job->next_item, 1, memory_order_relaxed);
        if (item >= items) return;
        attention_item(job, item, &buffers);
    }
}

size_t op_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only)
{
    if (seq <= 0 || heads <= 0 || head_dim <= 0) return 0;
    int64_t seq16 = (seq + 15) / 16 * 16, items = (int64_t)heads * ((seq + ATTN_QB - 1) / ATTN_QB);
    int64_t tasks = threads < 1 ? 1 : threads;
    if (tasks > items) tasks = items;
    size_t tiles = (size_t)tasks * buffer_floats(seq16, head_dim, (head_dim + 15) / 16 * 16) * sizeof(float);
    return tiles_only ? tiles : tiles + (size_t)seq16 * sizeof(float);
}

static canvas_status attention(thread_pool *pool, const float *q, const float *k, const float *v, int64_t seq,
                               int heads, int kv_heads, int head_dim, int causal, const uint8_t *key_mask, float *out)
{
    if (seq <= 0 || heads <= 0 || head_dim <= 0) return CANVAS_OK;
    if (kv_heads <= 0 || heads % kv_heads)
        return status_fail(CANVAS_ERR_INTERNAL, "attention: %d key/value heads do not divide %d heads", kv_heads, heads);
    attention_job job = {.q = q, .k = k, .v = v, .out = out, .seq = seq, .seq16 = (seq + 15) / 16 * 16,
                         .heads = heads, .head_dim = head_dim, .hd16 = (head_dim + 15) / 16 * 16,
                         .ld = (int64_t)heads * head_dim, .kv_ld = (int64_t)kv_heads * head_dim,
                         .group = heads / kv_heads, .causal = causal, .scale = 1.0f / sqrtf((float)head_dim)};
    job.q_blocks = (seq + ATTN_QB - 1) / ATTN_QB;
    atomic_init(&job.next_item, 0);
    int64_t items = (int64_t)heads * job.q_blocks;
    int n_tasks = thread_pool_size(pool);
    if ((int64_t)n_tasks > items) n_tasks = (int)items;
    job.per_task_floats = buffer_floats(job.seq16, head_dim, job.hd16);

    float *key_bias;
    TRY(mem_alloc((void **)&key_bias, (size_t)job.seq16 * sizeof(float), MEM_SCRATCH));
    for (int64_t j = 0; j < job.seq16; j++) key_bias[j] = j < seq && (!key_mask || key_mask[j]) ? 0.0f : -INFINITY;
    job.key_bias = key_bias;
    canvas_status st = mem_alloc((void **)&job.workspace, (size_t)n_tasks * job.per_task_floats * sizeof(float),
                                 MEM_ACTIVATIONS);
    if (st != CANVAS_OK) {
        mem_free(key_bias);
        return st;
    }
    thread_pool_run(pool, attention_task, &job, n_tasks);
    mem_free(job.workspace);
    mem_free(key_bias);
    return CANVAS_OK;
}

canvas_status op_attention(op_backend *be, const float *q, const float *k, const float *v, int64_t seq, int heads,
                           int head_dim, const uint8_t *key_mask, float *out)
{
    return attention(op_backend_pool(be), q, k, v, seq, heads, heads, head_dim, 0, key_mask, out);
}

canvas_status op_attention_grouped(op_backend *be, const float *q, const float *k, const float *v, int64_t seq,
                                   int heads, int kv_heads, int head_dim, int causal, float *out)
{
    return attention(op_backend_pool(be), q, k, v, seq, heads, kv_heads, head_dim, causal, NULL, out);
}
