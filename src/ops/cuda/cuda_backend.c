/* SPDX-License-Identifier: Apache-2.0 */
/* cuda_backend.c — the CUDA op backend (ops/ops_cuda.h): a compute stream, cuBLASLt for every
 * GEMM, the kernels of cuda_kernels.cu for the rest, as the entries of the "cuda" op backend
 * table (ops/ops_backend_impl.h). Written to be the least likely to be wrong before it has run
 * on a GPU: one GEMM configuration, every CUDA and cuBLAS return checked and turned into a
 * status, and at the end of every op a synchronisation of the backend's own compute stream
 * (never of the whole device: the device's copy stream keeps copying meanwhile).
 *
 * op_linear's GEMM: y[m, n] = x[m, k] W[n, k]^T in cuBLASLt's column-major terms is
 * D (n x m, ld n) = A^T B with A = W (k x n, ld k, transposed) and B = x (k x m, ld k): A and B
 * bf16, D f32, CUBLAS_COMPUTE_32F (f32 accumulation on tensor cores). x is rounded to bf16
 * (RNE) into scratch; weights not stored as bf16 (f32, f16, fp8, nf4, q8_0) are decoded to
 * bf16 in tiles of rows of at most CUDA_TILE_BYTES, one GEMM per tile, so the scratch never holds a
 * whole decoded matrix. fp8 weights are decoded too, on every GPU: cuBLASLt's fp8 GEMM needs
 * fp8 activations as well, a second rounding this backend does not make. */
#include <cuda_runtime.h>

#include "base/status.h"
#include "ops/cuda/cublaslt_lazy.h"
#include "ops/cuda/cuda_kernels.h"
#include "ops/ops_backend_impl.h"
#include "ops/ops_cuda.h"
#include "tensor/quant.h"

/* An op_linear's scratch (op_cuda_linear_scratch_bytes, ops/cuda_sizes.c): CUDA_LT_WORKSPACE
 * bytes of cuBLASLt workspace, then x in bf16, then a decoded weight tile. It comes from the
 * block lent to the backend when that is large enough (the transformer's forward lends one
 * sized for its largest GEMM, so the planner's dry run counts it), else from the backend's own
 * block, grown on demand. */
struct op_cuda {
    mem_device *device;
    const cublaslt_api *lt_api; /* cuBLASLt, loaded at the first backend */
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lent;               /* lent_bytes of the device lent by the caller (NULL: none) */
    size_t lent_bytes;
    void *scratch;            /* scratch_bytes of the device of its own */
    size_t scratch_bytes;
    void *conv_scratch;       /* conv_scratch_bytes of the device: op_conv2d's band and norms */
    size_t conv_scratch_bytes;
};

static canvas_status cuda_fail(cudaError_t err, const char *what)
{
    canvas_status st = err == cudaErrorMemoryAllocation ? CANVAS_ERR_OUT_OF_MEMORY : CANVAS_ERR_IO;
    return status_fail(st, "cuda: %s: CUDA error %d (%s)", what, (int)err, cudaGetErrorString(err));
}

static canvas_status lt_fail(const cublaslt_api *lt, cublasStatus_t err, const char *what)
{
    canvas_status st = err == CUBLAS_STATUS_ALLOC_FAILED ? CANVAS_ERR_OUT_OF_MEMORY
                       : err == CUBLAS_STATUS_NOT_SUPPORTED ? CANVAS_ERR_UNSUPPORTED
                                                            : CANVAS_ERR_IO;
    return status_fail(st, "cuda: %s: cuBLASLt %s (%s)", what, lt->GetStatusName(err), lt->GetStatusString(err));
}

#define CUDA_TRY(call, what)                                    \
    do {                                                        \
        cudaError_t cuda_try_err_ = (call);                     \
        if (cuda_try_err_ != cudaSuccess) return cuda_fail(cuda_try_err_, what); \
    } while (0)

/* End of an op: wait for its work on the compute stream (only that stream: copies queued on
 * the device's copy stream go on), so its buffers are free again when it returns. */
static canvas_status op_done(op_cuda *c, cudaError_t launch, const char *what)
{
    if (launch != cudaSuccess) return cuda_fail(launch, what);
    cudaError_t err = cudaStreamSynchronize(c->stream);
    return err == cudaSuccess ? CANVAS_OK : cuda_fail(err, what);
}

canvas_status op_cuda_create(mem_device *device, op_cuda **out)
{
    *out = NULL;
    if (!mem_device_is_cuda(device))
        return status_fail(CANVAS_ERR_UNSUPPORTED, "cuda: device '%s' is not a CUDA device", mem_device_name(device));
    op_cuda *c;
    const cublaslt_api *lt_api;
    TRY(cublaslt_load(&lt_api));
    TRY(mem_calloc((void **)&c, 1, sizeof *c, MEM_SCRATCH));
    c->device = device;
    c->lt_api = lt_api;
    canvas_status st = CANVAS_OK;
    cudaError_t err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
        c->stream = NULL;
        st = cuda_fail(err, "creating the compute stream");
    }
    if (st == CANVAS_OK) {
        cublasStatus_t lt = lt_api->Create(&c->lt);
        if (lt != CUBLAS_STATUS_SUCCESS) {
            c->lt = NULL;
            st = lt_fail(lt_api, lt, "creating the cuBLASLt handle");
        }
    }
    if (st != CANVAS_OK) {
        op_cuda_destroy(c);
        return st;
    }
    *out = c;
    return CANVAS_OK;
}

void op_cuda_destroy(op_cuda *c)
{
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->scratch) mem_device_free(c->device, c->scratch);
    if (c->conv_scratch) mem_device_free(c->device, c->conv_scratch);
    if (c->lt) c->lt_api->Destroy(c->lt);
    if (c->stream) cudaStreamDestroy(c->stream);
    mem_free(c);
}

/* *block (*have bytes of the device) made at least `need` bytes: freed and taken again when
 * smaller (the old contents are not kept); on failure nothing is held. */
static canvas_status grow_block(op_cuda *c, void **block, size_t *have, size_t need)
{
    if (need <= *have) return CANVAS_OK;
    if (*block) mem_device_free(c->device, *block);
    *block = NULL;
    *have = 0;
    TRY(mem_device_alloc(c->device, MEM_SCRATCH, need, 256, block));
    *have = need;
    return CANVAS_OK;
}

/* `bytes` of scratch: the lent block when it is large enough, else the backend's own, grown
 * to at least `bytes` (the old contents are not kept). */
static canvas_status scratch_take(op_cuda *c, size_t bytes, void **out)
{
    *out = NULL;
    if (c->lent && bytes <= c->lent_bytes) {
        *out = c->lent;
        return CANVAS_OK;
    }
    TRY(grow_block(c, &c->scratch, &c->scratch_bytes, bytes));
    *out = c->scratch;
    return CANVAS_OK;
}

/* The caller's block for the ops' scratch, or (NULL, 0) to take it back: the stream is idle
 * between ops (each one synchronises), so nothing still reads the block. */
static canvas_status entry_lend_scratch(void *ctx, void *at, size_t bytes)
{
    op_cuda *c = ctx;
    c->lent = at;
    c->lent_bytes = at ? bytes : 0;
    return CANVAS_OK;
}

/* ---- op_linear ---- */

/* One GEMM: D[rows, m] (ld ldd) = A[rows x k bf16, row-major]^T-as-stored x B[m x k bf16]. */
static canvas_status gemm_bf16(op_cuda *c, void *workspace_at, const void *a, const void *b, float *d, int64_t rows,
                               int64_t m, int64_t k, int64_t ldd)
{
    const cublaslt_api *lt = c->lt_api;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    const size_t workspace = CUDA_LT_WORKSPACE;
    cublasStatus_t s = lt->MatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = lt->MatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = lt->MatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb);
    if (s == CUBLAS_STATUS_SUCCESS) s = lt->MatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)k, (uint64_t)rows, k);
    if (s == CUBLAS_STATUS_SUCCESS) s = lt->MatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)k, (uint64_t)m, k);
    if (s == CUBLAS_STATUS_SUCCESS) s = lt->MatrixLayoutCreate(&ld, CUDA_R_32F, (uint64_t)rows, (uint64_t)m, ldd);
    if (s == CUBLAS_STATUS_SUCCESS) s = lt->MatmulPreferenceCreate(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = lt->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                 sizeof workspace);
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = lt->MatmulAlgoGetHeuristic(c->lt, op, la, lb, ld, ld, pref, 1, &heuristic, &found);
    canvas_status st = CANVAS_OK;
    if (s != CUBLAS_STATUS_SUCCESS) st = lt_fail(lt, s, "setting up a bf16 GEMM");
    else if (found < 1)
        st = status_fail(CANVAS_ERR_UNSUPPORTED, "cuda: cuBLASLt has no bf16 GEMM for [%lld x %lld] x [%lld x %lld]^T",
                         (long long)m, (long long)k, (long long)rows, (long long)k);
    if (st == CANVAS_OK) {
        const float alpha = 1.0f, beta = 0.0f;
        s = lt->Matmul(c->lt, op, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &heuristic.algo, workspace_at,
                           workspace, c->stream);
        if (s != CUBLAS_STATUS_SUCCESS) st = lt_fail(lt, s, "bf16 GEMM");
    }
    if (pref) lt->MatmulPreferenceDestroy(pref);
    if (ld) lt->MatrixLayoutDestroy(ld);
    if (lb) lt->MatrixLayoutDestroy(lb);
    if (la) lt->MatrixLayoutDestroy(la);
    if (op) lt->MatmulDescDestroy(op);
    return st;
}

/* The cuda_dequant_bf16 format of a weight, or -1 for bf16 (used in place). */
static canvas_status weight_format(const weight_view *w, int *out)
{
    if (!w->quant) {
        switch (w->type) {
        case DTYPE_BF16: *out = -1; return CANVAS_OK;
        case DTYPE_F32: *out = CUDA_W_F32; return CANVAS_OK;
        case DTYPE_F16: *out = CUDA_W_F16; return CANVAS_OK;
        default: break;
        }
        return status_fail(CANVAS_ERR_UNSUPPORTED, "cuda: op_linear has no kernel for weights of type %s",
                           dtype_name(w->type));
    }
    switch (w->quant->format) {
    case QUANT_FP8_E4M3: *out = CUDA_W_FP8_E4M3; return CANVAS_OK;
    case QUANT_FP8_E5M2: *out = CUDA_W_FP8_E5M2; return CANVAS_OK;
    case QUANT_NF4: *out = CUDA_W_NF4; return CANVAS_OK;
    case QUANT_Q8_0: *out = CUDA_W_Q8_0; return CANVAS_OK;
    default: break;
    }
    return status_fail(CANVAS_ERR_UNSUPPORTED, "cuda: op_linear has no kernel for %s weights",
                       quant_format_name(w->quant->format));
}

static canvas_status entry_linear(void *ctx, const float *x, int64_t m, const weight_view *w, const float *bias,
                                 float *y)
{
    op_cuda *c = ctx;
    const int64_t n = w->out_features, k = w->in_features;
    if (m == 0) return CANVAS_OK;
    if (m < 0 || n <= 0 || k <= 0)
        return status_fail(CANVAS_ERR_INTERNAL, "cuda: op_linear of [%lld x %lld] x [%lld x %lld]^T", (long long)m,
                           (long long)k, (long long)n, (long long)k);
    int format = -1;
    TRY(weight_format(w, &format));
    if (w->quant && (w->quant->out_features != n || w->quant->in_features != k))
        return status_fail(CANVAS_ERR_INTERNAL, "cuda: op_linear: the weight's layout is not [%lld, %lld]",
                           (long long)n, (long long)k);
    /* scratch (op_cuda_linear_scratch_bytes): cuBLASLt's workspace, x in bf16, then (decoded
     * weights) a tile of `tile` rows */
    const size_t scratch_bytes = op_cuda_linear_scratch_bytes(m, w);
    if (scratch_bytes == SIZE_MAX)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "cuda: op_linear: x of [%lld x %lld] is too large", (long long)m,
                           (long long)k);
    const size_t x_bytes = ((size_t)m * (size_t)k * 2 + 255) & ~(size_t)255;
    const int64_t tile = format >= 0 ? op_cuda_tile_rows(n, k) : n;
    void *scratch;
    TRY(scratch_take(c, scratch_bytes, &scratch));
    void *workspace = scratch;
    uint16_t *xb = (uint16_t *)((char *)scratch + CUDA_LT_WORKSPACE), *wb = (uint16_t *)((char *)xb + x_bytes);
    CUDA_TRY(cuda_f32_to_bf16(x, xb, m * k, c->stream), "op_linear: x to bf16");
    if (format < 0) {
        TRY(gemm_bf16(c, workspace, w->data, xb, y, n, m, k, n));
    } else {
        const quant_params *q = w->quant;
        for (int64_t n0 = 0; n0 < n; n0 += tile) {
            const int64_t rows = n - n0 < tile ? n - n0 : tile;
            CUDA_TRY(cuda_dequant_bf16(format, w->data, n0, rows, k, q ? q->scales_offset : 0, q ? q->per_channel : 0,
                                       q ? q->tensor_scale : 1.0f, quant_nf4_values, wb, c->stream),
                     "op_linear: decoding weights to bf16");
            TRY(gemm_bf16(c, workspace, wb, xb, y + n0, rows, m, k, n));
        }
    }
    cudaError_t err = bias ? cuda_bias_add(y, bias, m, n, c->stream) : cudaSuccess;
    return op_done(c, err, "op_linear");
}

/* ---- the rest: one kernel each ---- */

static canvas_status entry_attention(void *ctx, const float *q, const float *k, const float *v, int64_t seq,
                                       int heads, int kv_heads, int head_dim, const uint8_t *key_mask, int causal,
                                       float *out)
{
    op_cuda *c = ctx;
    if (kv_heads <= 0 || heads % kv_heads || head_dim <= 0 || head_dim > 512)
        return status_fail(CANVAS_ERR_INTERNAL, "cuda: attention with %d heads, %d key/value heads of %d", heads,
                           kv_heads, head_dim);
    return op_done(c, cuda_attention(q, k, v, seq, heads, kv_heads, head_dim, key_mask, causal, out, c->stream),
                   "op_attention");
}

static canvas_status entry_add_inplace(void *ctx, float *y, const float *x, int64_t n)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_add(y, x, n, c->stream), "op_add_inplace");
}

static canvas_status entry_norm_modulate(void *ctx, const float *x, int64_t rows, int64_t d, float eps,
                                           const float *const shift[2], const float *const scale[2], int64_t split,
                                           float *y)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_norm_modulate(x, rows, d, eps, shift[0], scale[0], shift[1], scale[1], split, y, c->stream),
                   "op_norm_modulate");
}

static canvas_status entry_gated_add(void *ctx, float *y, const float *x, int64_t rows, int64_t d,
                                       const float *const gate[2], int64_t split)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_gated_add(y, x, rows, d, gate[0], gate[1], split, c->stream), "op_gated_add");
}

static canvas_status entry_gelu_tanh_rows(void *ctx, float *x, int64_t rows, int64_t width)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_gelu_tanh(x, rows * width, c->stream), "op_gelu_tanh_rows");
}

static canvas_status entry_qk_norm_rope(void *ctx, float *q, float *k, int64_t rows, const op_qk_norm_rope_params *p)
{
    op_cuda *c = ctx;
    cudaError_t err = cuda_rms_norm_rope(q, rows, p->heads, p->head_dim, p->eps, p->norm_q[0], p->norm_q[1], p->split,
                                         p->cos, p->sin, c->stream);
    if (err == cudaSuccess)
        err = cuda_rms_norm_rope(k, rows, p->heads, p->head_dim, p->eps, p->norm_k[0], p->norm_k[1], p->split, p->cos,
                                 p->sin, c->stream);
    return op_done(c, err, "op_qk_norm_rope");
}

static canvas_status entry_copy_columns(void *ctx, const float *src, int64_t rows, int64_t src_cols, int64_t col0,
                                          int64_t cols, float *dst)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_copy_columns(src, rows, src_cols, col0, cols, dst, c->stream), "op_copy_columns");
}

static canvas_status entry_rms_norm_rows(void *ctx, const float *x, int64_t rows, int64_t dim, float eps,
                                        const float *weight, float *y)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_rms_norm(x, rows, dim, eps, weight, y, c->stream), "op_rms_norm_rows");
}

static canvas_status entry_silu_rows(void *ctx, float *x, int64_t n)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_silu(x, n, c->stream), "op_silu_rows");
}

static canvas_status entry_rope_half_rows(void *ctx, float *x, int64_t seq, int heads, int head_dim,
                                          const float *cos, const float *sin)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_rope_half(x, seq, heads, head_dim, cos, sin, c->stream), "op_rope_half_rows");
}

static canvas_status entry_swiglu_rows(void *ctx, float *gate, const float *up, int64_t n)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_swiglu(gate, up, n, c->stream), "op_swiglu_rows");
}

static canvas_status entry_gelu_erf_rows(void *ctx, float *x, int64_t n)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_gelu_erf(x, n, c->stream), "op_gelu_erf_rows");
}

static canvas_status entry_gather_rows(void *ctx, const float *src, const int64_t *index, int64_t n, int64_t width,
                                       float *dst)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_permute_rows(src, index, n, width, 0, dst, c->stream), "op_gather_rows");
}

static canvas_status entry_scatter_rows(void *ctx, const float *src, const int64_t *index, int64_t n, int64_t width,
                                        float *dst)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_permute_rows(src, index, n, width, 1, dst, c->stream), "op_scatter_rows");
}

/* ---- the VAE's ops ---- */

/* Per band of output rows: the im2col matrix in f32 (cuda_conv_im2col), then op_linear's GEMM
 * (entry_linear: x rounded to bf16, weights bf16, f32 accumulation, the bias) into y, or into
 * a temporary added to y when accumulating. The pieces and the band are
 * op_cuda_conv2d_layout's (ops/cuda_sizes.c, the planner's count): the band keeps the im2col
 * block at 64 MiB whatever the image. */
static canvas_status conv_bands(op_cuda *c, const conv2d_params *p, const op_cuda_conv_layout *l, char *own,
                                const float *x, const weight_view *weight, const float *bias, float *y)
{
    const int out_h = conv2d_out_height(p), out_w = conv2d_out_width(p);
    const int64_t pixels = (int64_t)p->height * p->width;
    float *col = (float *)own, *tmp = (float *)(own + l->col_bytes);
    float *norms = p->norm_gamma ? (float *)(own + l->col_bytes + l->tmp_bytes) : NULL;
    if (norms) CUDA_TRY(cuda_channel_norms(x, pixels, p->in_channels, norms, c->stream), "op_conv2d: norms");
    const cuda_conv_geometry g = {.height = p->height, .width = p->width, .in_channels = p->in_channels,
                                  .kernel = p->kernel, .stride = p->stride, .pad_top = p->pad_top,
                                  .pad_left = p->pad_left, .upsample = p->upsample, .out_width = out_w};
    for (int64_t row = 0; row < out_h; row += l->band_rows) {
        const int64_t rows = out_h - row < l->band_rows ? out_h - row : l->band_rows, m = rows * out_w;
        float *y_band = y + row * out_w * p->out_channels;
        CUDA_TRY(cuda_conv_im2col(x, &g, norms, p->norm_gamma, row * out_w, m, col, c->stream), "op_conv2d: im2col");
        TRY(entry_linear(c, col, m, weight, bias, p->accumulate ? tmp : y_band));
        if (p->accumulate) TRY(op_done(c, cuda_add(y_band, tmp, m * p->out_channels, c->stream), "op_conv2d"));
    }
    return CANVAS_OK;
}

/* The scratch (op_cuda_conv2d_scratch_bytes): the band's own pieces at the start of the lent
 * block and the GEMMs' scratch lent on from just after them, when the lent block holds both
 * (the VAE lends one sized for its largest op); else conv_scratch of the backend's own for
 * the pieces and the GEMMs' scratch as op_linear takes it. */
static canvas_status entry_conv2d(void *ctx, const conv2d_params *p, const float *x, const weight_view *weight,
                                  const float *bias, float *y)
{
    op_cuda *c = ctx;
    const int64_t k = (int64_t)p->kernel * p->kernel * p->in_channels;
    op_cuda_conv_layout l;
    const int shaped = op_cuda_conv2d_layout(p, weight, &l);
    if (!shaped && l.own_bytes == SIZE_MAX)
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "cuda: op_conv2d: a %dx%d x %d image is too large", p->height,
                           p->width, p->in_channels);
    if (!shaped || p->kernel < 1 || p->stride < 1 || p->pad_top < 0 || p->pad_left < 0 ||
        weight->out_features != p->out_channels || weight->in_features != k)
        return status_fail(CANVAS_ERR_USAGE, "cuda: op_conv2d: a geometry or weight of the wrong shape");
    if (c->lent && l.own_bytes + l.gemm_bytes <= c->lent_bytes) {
        char *lent = c->lent;
        const size_t lent_bytes = c->lent_bytes;
        c->lent = lent + l.own_bytes;
        c->lent_bytes = lent_bytes - l.own_bytes;
        canvas_status st = conv_bands(c, p, &l, lent, x, weight, bias, y);
        c->lent = lent;
        c->lent_bytes = lent_bytes;
        return st;
    }
    TRY(grow_block(c, &c->conv_scratch, &c->conv_scratch_bytes, l.own_bytes));
    return conv_bands(c, p, &l, c->conv_scratch, x, weight, bias, y);
}

/* The per-pixel norms come from the lent block when it holds them (the VAE's always does:
 * it is at least cuBLASLt's 32 MiB workspace, and the norms of its attention's pixels are
 * 16 MiB at a 16384-pixel side), else from a block taken for the op. */
static canvas_status entry_channel_rms_norm_rows(void *ctx, const float *x, int64_t pixels, int channels,
                                                 const float *gamma, float *y)
{
    op_cuda *c = ctx;
    if (pixels <= 0 || channels <= 0) return CANVAS_OK;
    if ((uint64_t)pixels > SIZE_MAX / sizeof(float))
        return status_fail(CANVAS_ERR_OUT_OF_MEMORY, "cuda: op_channel_rms_norm_rows: %lld pixels", (long long)pixels);
    const size_t bytes = (size_t)pixels * sizeof(float);
    const int lent = c->lent && bytes <= c->lent_bytes;
    float *norms = lent ? c->lent : NULL;
    if (!lent) TRY(mem_device_alloc(c->device, MEM_SCRATCH, bytes, 256, (void **)&norms));
    cudaError_t err = cuda_channel_norms(x, pixels, channels, norms, c->stream);
    if (err == cudaSuccess) err = cuda_channel_rms_norm(x, pixels, channels, norms, gamma, y, c->stream);
    canvas_status st = op_done(c, err, "op_channel_rms_norm_rows");
    if (!lent) mem_device_free(c->device, norms); /* after op_done: the kernels have finished with it */
    return st;
}

static canvas_status entry_to_channels_last(void *ctx, const float *src, int64_t pixels, int channels, float *dst)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_to_channels_last(src, pixels, channels, dst, c->stream), "op_to_channels_last");
}

static canvas_status entry_to_channels_first(void *ctx, const float *src, int64_t pixels, int channels, int clamp,
                                             float *dst)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_to_channels_first(src, pixels, channels, clamp, dst, c->stream), "op_to_channels_first");
}

static canvas_status entry_copy_window(void *ctx, const op_window *w, const float *src, float *dst)
{
    op_cuda *c = ctx;
    const cuda_window cw = {w->channels, w->height, w->width, w->src_height, w->src_width, w->src_y, w->src_x,
                            w->dst_height, w->dst_width, w->dst_y, w->dst_x, w->clamp};
    return op_done(c, cuda_copy_window(&cw, src, dst, c->stream), "op_copy_window");
}

static canvas_status entry_blend_seam(void *ctx, const float *a, int a_height, int a_width, float *b, int b_height,
                                      int b_width, int channels, int extent, int columns)
{
    op_cuda *c = ctx;
    return op_done(c, cuda_blend_seam(a, a_height, a_width, b, b_height, b_width, channels, extent, columns, c->stream),
                   "op_blend_seam");
}

static const op_backend_table cuda_table = {
    .name = "cuda",
    .linear = entry_linear,
    .attention = entry_attention,
    .add_inplace = entry_add_inplace,
    .norm_modulate = entry_norm_modulate,
    .gated_add = entry_gated_add,
    .gelu_tanh_rows = entry_gelu_tanh_rows,
    .qk_norm_rope = entry_qk_norm_rope,
    .copy_columns = entry_copy_columns,
    .rms_norm_rows = entry_rms_norm_rows,
    .silu_rows = entry_silu_rows,
    .linear_scratch_bytes = op_cuda_linear_scratch_bytes,
    .lend_scratch = entry_lend_scratch,
    .conv2d_scratch_bytes = op_cuda_conv2d_scratch_bytes,
    .rope_half_rows = entry_rope_half_rows,
    .swiglu_rows = entry_swiglu_rows,
    .gelu_erf_rows = entry_gelu_erf_rows,
    .gather_rows = entry_gather_rows,
    .scatter_rows = entry_scatter_rows,
    .conv2d = entry_conv2d,
    .channel_rms_norm_rows = entry_channel_rms_norm_rows,
    .to_channels_last = entry_to_channels_last,
    .to_channels_first = entry_to_channels_first,
    .copy_window = entry_copy_window,
    .blend_seam = entry_blend_seam,
};

op_backend op_backend_cuda(op_cuda *cuda) { return op_backend_table_make(&cuda_table, cuda); }
