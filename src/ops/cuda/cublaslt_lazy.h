/* SPDX-License-Identifier: Apache-2.0 */
/* cublaslt_lazy.h — cuBLASLt, loaded when the first CUDA backend is made (cublaslt_lazy.c),
 * not when the program starts: loading libcublasLt.so costs a tenth of a second at every
 * start, which a CPU run should not pay, and a CUDA build then starts where cuBLASLt is not
 * installed at all. The functions the backend calls are reached through `lt` (same names
 * without the cublasLt prefix). */
#ifndef CANVAS_OPS_CUDA_CUBLASLT_LAZY_H
#define CANVAS_OPS_CUDA_CUBLASLT_LAZY_H

#include <cublasLt.h>

#include "canvas.h"

#define CUBLASLT_FUNCTIONS(X)                                                                                         \
    X(cublasStatus_t, Create, (cublasLtHandle_t *))                                                                   \
    X(cublasStatus_t, Destroy, (cublasLtHandle_t))                                                                    \
    X(cublasStatus_t, MatmulDescCreate, (cublasLtMatmulDesc_t *, cublasComputeType_t, cudaDataType_t))                \
    X(cublasStatus_t, MatmulDescSetAttribute, (cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void *,   \
                                               size_t))                                                              \
    X(cublasStatus_t, MatmulDescDestroy, (cublasLtMatmulDesc_t))                                                      \
    X(cublasStatus_t, MatrixLayoutCreate, (cublasLtMatrixLayout_t *, cudaDataType, uint64_t, uint64_t, int64_t))      \
    X(cublasStatus_t, MatrixLayoutDestroy, (cublasLtMatrixLayout_t))                                                  \
    X(cublasStatus_t, MatmulPreferenceCreate, (cublasLtMatmulPreference_t *))                                         \
    X(cublasStatus_t, MatmulPreferenceSetAttribute, (cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, \
                                                     const void *, size_t))                                           \
    X(cublasStatus_t, MatmulPreferenceDestroy, (cublasLtMatmulPreference_t))                                          \
    X(cublasStatus_t, MatmulAlgoGetHeuristic, (cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,        \
                                               cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, \
                                               cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *,    \
                                               int *))                                                                \
    X(cublasStatus_t, Matmul, (cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *,                    \
                               cublasLtMatrixLayout_t, const void *, cublasLtMatrixLayout_t, const void *, void *,    \
                               cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t *,  \
                               void *, size_t, cudaStream_t))                                                         \
    X(const char *, GetStatusName, (cublasStatus_t))                                                                  \
    X(const char *, GetStatusString, (cublasStatus_t))

#define CUBLASLT_FIELD(ret, name, params) ret(*name) params;
typedef struct cublaslt_api {
    CUBLASLT_FUNCTIONS(CUBLASLT_FIELD)
} cublaslt_api;
#undef CUBLASLT_FIELD

/* Load the library once (thread-safe) and set *out to its functions. CANVAS_ERR_UNSUPPORTED
 * naming the library when it or one of the functions cannot be found. */
canvas_status cublaslt_load(const cublaslt_api **out);

#endif
