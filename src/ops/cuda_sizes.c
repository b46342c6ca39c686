/* SPDX-License-Identifier: Apache-2.0 */
/* cuda_sizes.c — the device memory the CUDA backend's op_linear and op_conv2d need (ops/ops_cuda.h),
 * compiled in every build: the CUDA backend sizes its scratch by it, and a planner without a
 * GPU counts the same bytes through op_backend_cuda_sizes. */
#include <string.h>

#include "ops/ops_cuda.h"

int64_t op_cuda_tile_rows(int64_t n, int64_t k)
{
    int64_t tile = (int64_t)(CUDA_TILE_BYTES / 2 / (size_t)k);
    tile = tile >= 16 ? tile / 16 * 16 : 1; /* 64-byte aligned output columns */
    return tile < n ? tile : n;
}

/* One block: cuBLASLt's workspace, then x in bf16 (256-byte aligned), then, for weights not
 * stored as bf16, a tile of decoded bf16 rows of at most CUDA_TILE_BYTES (whole multiples of
 * 16 rows, at most the matrix). An operand too large for size_t gives SIZE_MAX: no device
 * has it, so a reservation of it fails as out of memory. */
size_t op_cuda_linear_scratch_bytes(int64_t m, const weight_view *w)
{
    const int64_t n = w->out_features, k = w->in_features;
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    if ((uint64_t)m > (SIZE_MAX - CUDA_LT_WORKSPACE - CUDA_TILE_BYTES - 255) / 2 / (uint64_t)k) return SIZE_MAX;
    const size_t x_bytes = ((size_t)m * (size_t)k * 2 + 255) & ~(size_t)255;
    const int decoded = w->quant || w->type != DTYPE_BF16;
    const size_t tile_bytes = decoded ? (size_t)op_cuda_tile_rows(n, k) * (size_t)k * 2 : 0;
    return CUDA_LT_WORKSPACE + x_bytes + tile_bytes;
}

static size_t align256(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

int op_cuda_conv2d_layout(const conv2d_params *p, const weight_view *w, op_cuda_conv_layout *out)
{
    memset(out, 0, sizeof *out);
    const int out_h = conv2d_out_height(p), out_w = conv2d_out_width(p);
    const int64_t k = (int64_t)p->kernel * p->kernel * p->in_channels;
    if (out_h <= 0 || out_w <= 0 || k <= 0 || p->out_channels <= 0 || p->height <= 0 || p->width <= 0) return 0;
    int64_t band = (int64_t)(CUDA_CONV_BAND_FLOATS / (uint64_t)k) / out_w;
    if (band < 1) band = 1;
    if (band > out_h) band = out_h;
    out->band_rows = band;
    const uint64_t band_pixels = (uint64_t)band * (uint64_t)out_w, pixels = (uint64_t)p->height * (uint64_t)p->width;
    /* band x out_w x k is at most max(CUDA_CONV_BAND_FLOATS, out_w x k): far inside 64 bits */
    const uint64_t col = band_pixels * (uint64_t)k * sizeof(float);
    const uint64_t tmp = p->accumulate ? band_pixels * (uint64_t)p->out_channels * sizeof(float) : 0;
    const uint64_t norm = p->norm_gamma ? pixels * sizeof(float) : 0;
    const size_t gemm = op_cuda_linear_scratch_bytes((int64_t)band_pixels, w);
    if (col > SIZE_MAX / 4 || tmp > SIZE_MAX / 4 || norm > SIZE_MAX / 4 || gemm == SIZE_MAX) {
        out->col_bytes = out->own_bytes = out->gemm_bytes = SIZE_MAX;
        return 0;
    }
    out->col_bytes = align256((size_t)col);
    out->tmp_bytes = align256((size_t)tmp);
    out->norm_bytes = align256((size_t)norm);
    out->own_bytes = out->col_bytes + out->tmp_bytes + out->norm_bytes;
    out->gemm_bytes = gemm;
    return 1;
}

size_t op_cuda_conv2d_scratch_bytes(const conv2d_params *p, const weight_view *w)
{
    op_cuda_conv_layout layout;
    if (!op_cuda_conv2d_layout(p, w, &layout)) return layout.own_bytes == SIZE_MAX ? SIZE_MAX : 0;
    return layout.own_bytes + layout.gemm_bytes;
}

op_backend op_backend_cuda_sizes(void)
{
    static const op_backend_table sizes = {.name = "cuda (sizes only)",
                                           .linear_scratch_bytes = op_cuda_linear_scratch_bytes,
                                           .conv2d_scratch_bytes = op_cuda_conv2d_scratch_bytes};
    return op_backend_table_make(&sizes, NULL);
}
