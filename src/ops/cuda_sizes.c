/* SPDX-License-Identifier: Apache-2.0 */
/* cuda_sizes.c — the device memory the CUDA backend's op_linear needs (ops/ops_cuda.h),
 * compiled in every build: the CUDA backend sizes its scratch by it, and a planner without a
 * GPU counts the same bytes through op_backend_cuda_sizes. */
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

op_backend op_backend_cuda_sizes(void)
{
    static const op_backend_table sizes = {.name = "cuda (sizes only)",
                                           .linear_scratch_bytes = op_cuda_linear_scratch_bytes};
    return op_backend_table_make(&sizes, NULL);
}
