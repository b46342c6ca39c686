/* SPDX-License-Identifier: Apache-2.0 */
/* cuda_kernels.cu — the few kernels the CUDA backend writes itself (cuda_kernels.h); every
 * GEMM is cuBLASLt's (cuda_backend.c). Kept plain on purpose: one thread per element, or one
 * block (or warp) per row with a shared-memory reduction, f32 arithmetic throughout, no
 * tensor-core or shuffle tricks beyond a warp sum. They have not yet run on a GPU; each is
 * compared with its CPU twin by tests/cuda/test_cuda_ops.c (tools/device-check.sh). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "ops/cuda/cuda_kernels.h"

#define THREADS 256

/* Blocks for n elements at THREADS each, capped: the kernels loop with a grid stride. */
static unsigned blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

static cudaError_t launched(void) { return cudaGetLastError(); }

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
                               i += (int64_t)gridDim.x * blockDim.x)

/* ---- conversions and weight decoding ---- */

__global__ void k_f32_to_bf16(const float *x, __nv_bfloat16 *out, int64_t n)
{
    GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(x[i]);
}

extern "C" cudaError_t cuda_f32_to_bf16(const float *x, uint16_t *out, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_f32_to_bf16<<<blocks_for(n), THREADS, 0, stream>>>(x, (__nv_bfloat16 *)out, n);
    return launched();
}

/* The fp8 codes' values, from their bits (tensor/dtype's decoders, written out). */
__device__ float e4m3_value(unsigned code)
{
    unsigned e = (code >> 3) & 15u, m = code & 7u;
    float v = e == 15u && m == 7u ? nanf("") : e == 0u ? ldexpf((float)m, -9) : ldexpf(8.0f + (float)m, (int)e - 10);
    return code & 0x80u ? -v : v;
}

__device__ float e5m2_value(unsigned code)
{
    unsigned e = (code >> 2) & 31u, m = code & 3u;
    float v = e == 31u ? (m ? nanf("") : INFINITY) : e == 0u ? ldexpf((float)m, -16) : ldexpf(4.0f + (float)m, (int)e - 17);
    return code & 0x80u ? -v : v;
}

/* NF4's 16 values, passed by value from tensor/quant.c's table (one source for both). */
struct nf4_table {
    float v[16];
};

__global__ void k_dequant_bf16(int format, const unsigned char *data, int64_t row0, int64_t rows, int64_t k,
                               uint64_t scales_offset, int per_row, float tensor_scale, nf4_table nf4,
                               __nv_bfloat16 *out)
{
    GRID_STRIDE(i, rows * k) {
        const int64_t row = row0 + i / k, flat = row0 * k + i;
        float w;
        switch (format) {
        case CUDA_W_F32: w = ((const float *)data)[flat]; break;
        case CUDA_W_F16: w = __half2float(((const __half *)data)[flat]); break;
        case CUDA_W_FP8_E4M3:
        case CUDA_W_FP8_E5M2: {
            float scale = per_row ? ((const float *)(data + scales_offset))[row] : tensor_scale;
            float v = format == CUDA_W_FP8_E4M3 ? e4m3_value(data[flat]) : e5m2_value(data[flat]);
            w = v * scale;
            break;
        }
        case CUDA_W_NF4: {
            unsigned byte = data[flat / 2], code = flat % 2 == 0 ? byte >> 4 : byte & 15u;
            w = nf4.v[code] * ((const float *)(data + scales_offset))[flat / 64];
            break;
        }
        default: /* CUDA_W_Q8_0 */
            w = (float)(signed char)data[flat] * __half2float(((const __half *)(data + scales_offset))[flat / 32]);
            break;
        }
        out[i] = __float2bfloat16_rn(w);
    }
}

extern "C" cudaError_t cuda_dequant_bf16(int format, const void *data, int64_t row0, int64_t rows, int64_t k,
                                         uint64_t scales_offset, int per_row, float tensor_scale, const float *nf4_values,
                                         uint16_t *out, cudaStream_t stream)
{
    if (rows <= 0 || k <= 0) return cudaSuccess;
    nf4_table nf4;
    for (int i = 0; i < 16; i++) nf4.v[i] = nf4_values[i];
    k_dequant_bf16<<<blocks_for(rows * k), THREADS, 0, stream>>>(format, (const unsigned char *)data, row0, rows, k,
                                                                 scales_offset, per_row, tensor_scale, nf4,
                                                                 (__nv_bfloat16 *)out);
    return launched();
}

/* ---- elementwise ---- */

__global__ void k_bias_add(float *y, const float *bias, int64_t m, int64_t n)
{
    GRID_STRIDE(i, m * n) y[i] += bias[i % n];
}

extern "C" cudaError_t cuda_bias_add(float *y, const float *bias, int64_t m, int64_t n, cudaStream_t stream)
{
    if (m <= 0 || n <= 0) return cudaSuccess;
    k_bias_add<<<blocks_for(m * n), THREADS, 0, stream>>>(y, bias, m, n);
    return launched();
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    GRID_STRIDE(i, n) y[i] += x[i];
}

extern "C" cudaError_t cuda_add(float *y, const float *x, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_add<<<blocks_for(n), THREADS, 0, stream>>>(y, x, n);
    return launched();
}

__global__ void k_gelu_tanh(float *x, int64_t n)
{
    GRID_STRIDE(i, n) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

extern "C" cudaError_t cuda_gelu_tanh(float *x, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_gelu_tanh<<<blocks_for(n), THREADS, 0, stream>>>(x, n);
    return launched();
}

__global__ void k_silu(float *x, int64_t n)
{
    GRID_STRIDE(i, n) x[i] = x[i] / (1.0f + expf(-x[i]));
}

extern "C" cudaError_t cuda_silu(float *x, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_silu<<<blocks_for(n), THREADS, 0, stream>>>(x, n);
    return launched();
}

__global__ void k_gated_add(float *y, const float *x, int64_t rows, int64_t d, const float *gate0,
                            const float *gate1, int64_t split)
{
    GRID_STRIDE(i, rows * d) {
        const float *gate = i / d < split ? gate0 : gate1;
        y[i] += gate[i % d] * x[i];
    }
}

extern "C" cudaError_t cuda_gated_add(float *y, const float *x, int64_t rows, int64_t d, const float *gate0,
                                      const float *gate1, int64_t split, cudaStream_t stream)
{
    if (rows <= 0 || d <= 0) return cudaSuccess;
    k_gated_add<<<blocks_for(rows * d), THREADS, 0, stream>>>(y, x, rows, d, gate0, gate1, split);
    return launched();
}

__global__ void k_copy_columns(const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols, float *dst)
{
    GRID_STRIDE(i, rows * cols) dst[i] = src[(i / cols) * src_cols + col0 + i % cols];
}

extern "C" cudaError_t cuda_copy_columns(const float *src, int64_t rows, int64_t src_cols, int64_t col0, int64_t cols,
                                         float *dst, cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    k_copy_columns<<<blocks_for(rows * cols), THREADS, 0, stream>>>(src, rows, src_cols, col0, cols, dst);
    return launched();
}

/* ---- the text encoder's: one thread per element (per rotated pair for RoPE) ---- */

__global__ void k_rope_half(float *x, int64_t seq, int heads, int head_dim, const float *cos, const float *sin)
{
    const int64_t pairs = head_dim / 2;
    GRID_STRIDE(i, seq * heads * pairs) {
        const int64_t t = i / (heads * pairs), j = i % pairs;
        float *lo = x + (i / pairs) * head_dim, *hi = lo + pairs;
        const float c = cos[t * pairs + j], s = sin[t * pairs + j], a = lo[j], b = hi[j];
        lo[j] = a * c - b * s;
        hi[j] = b * c + a * s;
    }
}

extern "C" cudaError_t cuda_rope_half(float *x, int64_t seq, int heads, int head_dim, const float *cos,
                                      const float *sin, cudaStream_t stream)
{
    const int64_t pairs = seq * heads * (head_dim / 2);
    if (pairs <= 0) return cudaSuccess;
    k_rope_half<<<blocks_for(pairs), THREADS, 0, stream>>>(x, seq, heads, head_dim, cos, sin);
    return launched();
}

__global__ void k_swiglu(float *gate, const float *up, int64_t n)
{
    GRID_STRIDE(i, n) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

extern "C" cudaError_t cuda_swiglu(float *gate, const float *up, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_swiglu<<<blocks_for(n), THREADS, 0, stream>>>(gate, up, n);
    return launched();
}

__global__ void k_gelu_erf(float *x, int64_t n)
{
    GRID_STRIDE(i, n) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

extern "C" cudaError_t cuda_gelu_erf(float *x, int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    k_gelu_erf<<<blocks_for(n), THREADS, 0, stream>>>(x, n);
    return launched();
}

__global__ void k_permute_rows(const float *src, const int64_t *index, int64_t n, int64_t width, int scatter,
                               float *dst)
{
    GRID_STRIDE(i, n * width) {
        const int64_t k = i / width, c = i % width;
        if (scatter) dst[index[k] * width + c] = src[i];
        else dst[i] = src[index[k] * width + c];
    }
}

extern "C" cudaError_t cuda_permute_rows(const float *src, const int64_t *index, int64_t n, int64_t width,
                                         int scatter, float *dst, cudaStream_t stream)
{
    if (n <= 0 || width <= 0) return cudaSuccess;
    k_permute_rows<<<blocks_for(n * width), THREADS, 0, stream>>>(src, index, n, width, scatter, dst);
    return launched();
}

/* ---- rows: one block of THREADS per row ---- */

/* The sum of v over the block (every thread gets it). `shared` holds THREADS floats. */
__device__ float block_sum(float v, float *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    float total = shared[0];
    __syncthreads(); /* before `shared` is written again */
    return total;
}

/* LayerNorm (biased variance, two passes like the CPU's), then * (1 + scale) + shift. */
__global__ void k_norm_modulate(const float *x, int64_t d, float eps, const float *shift0, const float *scale0,
                                const float *shift1, const float *scale1, int64_t split, float *y)
{
    __shared__ float shared[THREADS];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) s += xr[i];
    const float mean = block_sum(s, shared) / (float)d;
    s = 0.0f;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) s += (xr[i] - mean) * (xr[i] - mean);
    const float inv = 1.0f / sqrtf(block_sum(s, shared) / (float)d + eps);
    const float *shift = r < split ? shift0 : shift1, *scale = r < split ? scale0 : scale1;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) yr[i] = (xr[i] - mean) * inv * (1.0f + scale[i]) + shift[i];
}

extern "C" cudaError_t cuda_norm_modulate(const float *x, int64_t rows, int64_t d, float eps, const float *shift0,
                                          const float *scale0, const float *shift1, const float *scale1, int64_t split,
                                          float *y, cudaStream_t stream)
{
    if (rows <= 0 || d <= 0) return cudaSuccess;
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    k_norm_modulate<<<(unsigned)rows, THREADS, 0, stream>>>(x, d, eps, shift0, scale0, shift1, scale1, split, y);
    return launched();
}

/* RMSNorm of one row per block: x / sqrt(mean(x^2) + eps) * weight. Every thread has read its
 * elements into the sum before any writes (block_sum synchronises), so y may be x. */
__global__ void k_rms_norm(const float *x, int64_t dim, float eps, const float *weight, float *y)
{
    __shared__ float shared[THREADS];
    const float *xr = x + blockIdx.x * dim;
    float *yr = y + blockIdx.x * dim;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += THREADS) s += xr[i] * xr[i];
    const float inv = 1.0f / sqrtf(block_sum(s, shared) / (float)dim + eps);
    for (int64_t i = threadIdx.x; i < dim; i += THREADS) yr[i] = weight ? xr[i] * inv * weight[i] : xr[i] * inv;
}

extern "C" cudaError_t cuda_rms_norm(const float *x, int64_t rows, int64_t dim, float eps, const float *weight,
                                     float *y, cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return cudaSuccess;
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    k_rms_norm<<<(unsigned)rows, THREADS, 0, stream>>>(x, dim, eps, weight, y);
    return launched();
}

/* One block per (row, head): RMSNorm over head_dim, then the interleaved rotation of each
 * pair (x0, x1) -> (x0 c - x1 s, x0 s + x1 c). */
__global__ void k_rms_norm_rope(float *x, int heads, int head_dim, float eps, const float *w0, const float *w1,
                                int64_t split, const float *cos, const float *sin)
{
    __shared__ float shared[THREADS];
    const int64_t r = blockIdx.x / heads;
    const int pairs = head_dim / 2;
    float *xh = x + blockIdx.x * (int64_t)head_dim;
    const float *w = r < split ? w0 : w1;
    float s = 0.0f;
    for (int i = threadIdx.x; i < head_dim; i += THREADS) s += xh[i] * xh[i];
    const float inv = 1.0f / sqrtf(block_sum(s, shared) / (float)head_dim + eps);
    const float *c = cos + r * pairs, *sn = sin + r * pairs;
    for (int j = threadIdx.x; j < pairs; j += THREADS) {
        float a = xh[2 * j] * inv, b = xh[2 * j + 1] * inv;
        if (w) a *= w[2 * j], b *= w[2 * j + 1];
        xh[2 * j] = a * c[j] - b * sn[j];
        xh[2 * j + 1] = a * sn[j] + b * c[j];
    }
}

extern "C" cudaError_t cuda_rms_norm_rope(float *x, int64_t rows, int heads, int head_dim, float eps, const float *w0,
                                          const float *w1, int64_t split, const float *cos, const float *sin,
                                          cudaStream_t stream)
{
    if (rows <= 0 || heads <= 0 || head_dim <= 0) return cudaSuccess;
    if (rows * heads > 0x7fffffff || head_dim % 2) return cudaErrorInvalidValue;
    k_rms_norm_rope<<<(unsigned)(rows * heads), THREADS, 0, stream>>>(x, heads, head_dim, eps, w0, w1, split, cos, sin);
    return launched();
}

/* ---- attention: one warp per (query, head), online softmax over the keys ---- */

#define ATT_WARPS 4
#define ATT_MAX_PER_LANE 16 /* head_dim <= 32 x 16 (the VAE's mid-block attention: one head of 384) */

__global__ void k_attention(const float *q, const float *k, const float *v, int64_t seq, int heads, int kv_heads,
                            int head_dim, const uint8_t *key_mask, int causal, float *out)
{
    const int lane = threadIdx.x % 32;
    const int64_t item = (int64_t)blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    if (item >= seq * heads) return; /* the whole warp leaves together */
    const int64_t i = item / heads;
    const int h = (int)(item % heads), kvh = h / (heads / kv_heads);
    const int64_t q_stride = (int64_t)heads * head_dim, kv_stride = (int64_t)kv_heads * head_dim;
    const float scale = 1.0f / sqrtf((float)head_dim);
    float qd[ATT_MAX_PER_LANE], acc[ATT_MAX_PER_LANE];
    for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
        int d = lane + 32 * j;
        qd[j] = d < head_dim ? q[i * q_stride + (int64_t)h * head_dim + d] : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int64_t keys = causal ? i + 1 : seq;
    for (int64_t t = 0; t < keys; t++) {
        if (key_mask && !key_mask[t]) continue;
        const float *kt = k + t * kv_stride + (int64_t)kvh * head_dim;
        float dot = 0.0f;
        for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
            int d = lane + 32 * j;
            if (d < head_dim) dot += qd[j] * kt[d];
        }
        for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        const float s = dot * scale, m_new = fmaxf(m, s);
        const float correction = expf(m - m_new), p = expf(s - m_new);
        l = l * correction + p;
        const float *vt = v + t * kv_stride + (int64_t)kvh * head_dim;
        for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
            int d = lane + 32 * j;
            if (d < head_dim) acc[j] = acc[j] * correction + p * vt[d];
        }
        m = m_new;
    }
    for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
        int d = lane + 32 * j;
        if (d < head_dim) out[i * q_stride + (int64_t)h * head_dim + d] = l > 0.0f ? acc[j] / l : 0.0f;
    }
}

extern "C" cudaError_t cuda_attention(const float *q, const float *k, const float *v, int64_t seq, int heads,
                                      int kv_heads, int head_dim, const uint8_t *key_mask, int causal, float *out,
                                      cudaStream_t stream)
{
    if (seq <= 0 || heads <= 0) return cudaSuccess;
    if (kv_heads <= 0 || heads % kv_heads || head_dim <= 0 || head_dim > 32 * ATT_MAX_PER_LANE)
        return cudaErrorInvalidValue;
    int64_t blocks = (seq * heads + ATT_WARPS - 1) / ATT_WARPS;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    k_attention<<<(unsigned)blocks, 32 * ATT_WARPS, 0, stream>>>(q, k, v, seq, heads, kv_heads, head_dim, key_mask,
                                                                causal, out);
    return launched();
}

/* ---- the VAE's ops (ops_conv.h, ops_layout.h) ---- */

/* The VAE norm's divisor per pixel: max(||x||_2, 1e-12) over its channels, one block per pixel. */
__global__ void k_channel_norms(const float *x, int channels, float *norms)
{
    __shared__ float shared[THREADS];
    const float *xp = x + (int64_t)blockIdx.x * channels;
    float s = 0.0f;
    for (int c = threadIdx.x; c < channels; c += THREADS) s += xp[c] * xp[c];
    const float total = block_sum(s, shared);
    if (threadIdx.x == 0) norms[blockIdx.x] = fmaxf(sqrtf(total), 1e-12f);
}

/* The CPU's order, each product rounded on its own: x / norm, * sqrt(C), * gamma. */
__device__ float vae_norm_value(float x, float norm, float root, float gamma)
{
    return __fmul_rn(__fmul_rn(__fdiv_rn(x, norm), root), gamma);
}

/* op_channel_rms_norm with each pixel's divisor already in norms; y may be x. */
__global__ void k_channel_rms_norm(const float *x, int64_t pixels, int channels, const float *norms,
                                   const float *gamma, float *y)
{
    const float root = sqrtf((float)channels);
    GRID_STRIDE(i, pixels * channels) y[i] = vae_norm_value(x[i], norms[i / channels], root, gamma[i % channels]);
}

extern "C" cudaError_t cuda_channel_norms(const float *x, int64_t pixels, int channels, float *norms,
                                          cudaStream_t stream)
{
    if (pixels <= 0 || channels <= 0) return cudaSuccess;
    if (pixels > 0x7fffffff) return cudaErrorInvalidValue;
    k_channel_norms<<<(unsigned)pixels, THREADS, 0, stream>>>(x, channels, norms);
    return launched();
}

extern "C" cudaError_t cuda_channel_rms_norm(const float *x, int64_t pixels, int channels, const float *norms,
                                             const float *gamma, float *y, cudaStream_t stream)
{
    if (pixels <= 0 || channels <= 0) return cudaSuccess;
    k_channel_rms_norm<<<blocks_for(pixels * channels), THREADS, 0, stream>>>(x, pixels, channels, norms, gamma, y);
    return launched();
}

/* One element of the im2col matrix of rows [row0, row0 + rows) of the output (the
 * output's pixels, row-major), columns in (ky, kx, c) order: the input pixel under that tap
 * after the nearest 2x upsample and the zero padding, through norm + SiLU when norms is set. */
__global__ void k_conv_im2col(const float *x, cuda_conv_geometry g, const float *norms, const float *gamma,
                              int64_t row0, int64_t rows, float *col)
{
    const int64_t k = (int64_t)g.kernel * g.kernel * g.in_channels;
    const int up_h = g.upsample ? 2 * g.height : g.height, up_w = g.upsample ? 2 * g.width : g.width;
    const float root = sqrtf((float)g.in_channels);
    GRID_STRIDE(i, rows * k) {
        const int64_t pixel = row0 + i / k;
        const int tap = (int)(i % k), c = tap % g.in_channels, kx = (tap / g.in_channels) % g.kernel,
                  ky = tap / g.in_channels / g.kernel;
        const int uy = (int)(pixel / g.out_width) * g.stride + ky - g.pad_top;
        const int ux = (int)(pixel % g.out_width) * g.stride + kx - g.pad_left;
        float v = 0.0f;
        if (uy >= 0 && uy < up_h && ux >= 0 && ux < up_w) {
            const int64_t at = (int64_t)(g.upsample ? uy / 2 : uy) * g.width + (g.upsample ? ux / 2 : ux);
            v = x[at * g.in_channels + c];
            if (norms) {
                v = vae_norm_value(v, norms[at], root, gamma[c]);
                v = v / (1.0f + expf(-v));
            }
        }
        col[i] = v;
    }
}

extern "C" cudaError_t cuda_conv_im2col(const float *x, const cuda_conv_geometry *g, const float *norms,
                                        const float *gamma, int64_t row0, int64_t rows, float *col,
                                        cudaStream_t stream)
{
    const int64_t n = rows * g->kernel * g->kernel * g->in_channels;
    if (n <= 0) return cudaSuccess;
    k_conv_im2col<<<blocks_for(n), THREADS, 0, stream>>>(x, *g, norms, gamma, row0, rows, col);
    return launched();
}

__device__ float clamp_unit(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

/* One thread per element of the output of either layout change. */
__global__ void k_channels_last(const float *src, int64_t pixels, int channels, float *dst)
{
    GRID_STRIDE(i, pixels * channels) dst[i] = src[(i % channels) * pixels + i / channels];
}

__global__ void k_channels_first(const float *src, int64_t pixels, int channels, int clamp, float *dst)
{
    GRID_STRIDE(i, pixels * channels) {
        const float v = src[(i % pixels) * channels + i / pixels];
        dst[i] = clamp ? clamp_unit(v) : v;
    }
}

extern "C" cudaError_t cuda_to_channels_last(const float *src, int64_t pixels, int channels, float *dst,
                                             cudaStream_t stream)
{
    if (pixels <= 0 || channels <= 0) return cudaSuccess;
    k_channels_last<<<blocks_for(pixels * channels), THREADS, 0, stream>>>(src, pixels, channels, dst);
    return launched();
}

extern "C" cudaError_t cuda_to_channels_first(const float *src, int64_t pixels, int channels, int clamp, float *dst,
                                              cudaStream_t stream)
{
    if (pixels <= 0 || channels <= 0) return cudaSuccess;
    k_channels_first<<<blocks_for(pixels * channels), THREADS, 0, stream>>>(src, pixels, channels, clamp, dst);
    return launched();
}

/* One thread per element of the window. */
__global__ void k_copy_window(cuda_window w, const float *src, float *dst)
{
    const int64_t plane = (int64_t)w.height * w.width;
    GRID_STRIDE(i, w.channels * plane) {
        const int64_t c = i / plane;
        const int y = (int)(i % plane / w.width), x = (int)(i % w.width);
        const float v = src[(c * w.src_height + w.src_y + y) * w.src_width + w.src_x + x];
        dst[(c * w.dst_height + w.dst_y + y) * w.dst_width + w.dst_x + x] = w.clamp ? clamp_unit(v) : v;
    }
}

extern "C" cudaError_t cuda_copy_window(const cuda_window *w, const float *src, float *dst, cudaStream_t stream)
{
    const int64_t n = (int64_t)w->channels * w->height * w->width;
    if (n <= 0) return cudaSuccess;
    k_copy_window<<<blocks_for(n), THREADS, 0, stream>>>(*w, src, dst);
    return launched();
}

/* One thread per element of b's seam (e rows of b_width, or b_height rows of e): the CPU's
 * weights (through double) and its two products rounded apart (no fused multiply-add). */
__global__ void k_blend_seam(const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                             int channels, int e, int columns)
{
    const int64_t plane = columns ? (int64_t)b_height * e : (int64_t)e * b_width;
    GRID_STRIDE(i, channels * plane) {
        const int64_t c = i / plane;
        const int inner = columns ? e : b_width;
        const int y = (int)(i % plane / inner), x = (int)(i % inner), at = columns ? x : y;
        const float keep = (float)(1.0 - (double)at / e), take = (float)((double)at / e);
        const float from = columns ? a[(c * a_height + y) * a_width + (a_width - e) + x]
                                   : a[(c * a_height + (a_height - e + y)) * a_width + x];
        float *to = b + (c * b_height + y) * b_width + x;
        *to = __fadd_rn(__fmul_rn(from, keep), __fmul_rn(*to, take));
    }
}

extern "C" cudaError_t cuda_blend_seam(const float *a, int a_height, int a_width, float *b, int b_height, int b_width,
                                       int channels, int extent, int columns, cudaStream_t stream)
{
    const int a_size = columns ? a_width : a_height, b_size = columns ? b_width : b_height;
    int e = extent < a_size ? extent : a_size;
    if (b_size < e) e = b_size;
    const int64_t n = (int64_t)channels * e * (columns ? b_height : b_width);
    if (n <= 0 || e <= 0) return cudaSuccess;
    k_blend_seam<<<blocks_for(n), THREADS, 0, stream>>>(a, a_height, a_width, b, b_height, b_width, channels, e,
                                                        columns);
    return launched();
}
