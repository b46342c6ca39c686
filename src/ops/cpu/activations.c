/* SPDX-License-Identifier: Apache-2.0 */
/* activations.c — elementwise GELU (tanh approximation and exact), SiLU, the SwiGLU gate
 * and the residual add, in place.
 *
 * Both are written as x * sigmoid(z), which avoids the cancellation of 1 + tanh(u) for
 * negative inputs:  gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),
 * u = sqrt(2/pi) (x + 0.044715 x^3);  silu(x) = x / (1 + exp(-x)). */
#include "ops/cpu/cpu_variant.h" /* first: which variant, and its function names */

#include <math.h>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

static inline __m256 sigmoid_times(__m256 x, __m256 z)
{
    __m256 e = simd_exp(_mm256_sub_ps(_mm256_setzero_ps(), z));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void op_gelu_tanh(float *x, int64_t n)
{
    const __m256 k0x2 = _mm256_set1_ps(2.0f * GELU_K0), k1 = _mm256_set1_ps(GELU_K1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(k1, v), _mm256_mul_ps(v, v), v); /* x + k1 x^3 */
        _mm256_storeu_ps(x + i, sigmoid_times(v, _mm256_mul_ps(k0x2, inner)));
    }
    for (; i < n; i++) {
        float v = x[i];
        float z = 2.0f * GELU_K0 * (v + GELU_K1 * v * v * v);
        x[i] = v / (1.0f + expf(-z));
    }
}

void op_silu(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, sigmoid_times(v, v));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

/* Exact GELU through erf (libm's erff; only the vision merger uses it, on few rows). */
void op_gelu_erf(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void op_swiglu(float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(sigmoid_times(g, g), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void op_add(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}
