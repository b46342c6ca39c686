/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_variant.h — first include of every file in ops/cpu: which build of the kernels this
 * is, and the names its functions link under.
 *
 * ops/cpu is compiled three times (CMakeLists.txt): the fast variant with -mavx2 -mfma
 * -mf16c against <immintrin.h>, the avx512 one (CANVAS_CPU_AVX512 defined) with AVX-512
 * F/DQ/BW/VL on top (its GEMM takes a 6x32 zmm microkernel; the rest is the AVX2 code),
 * the portable one (CANVAS_CPU_PORTABLE defined) with no ISA flags against
 * simd_portable.h. Every function the directory exports is renamed here to NAME_fast,
 * NAME_avx512 or NAME_portable, so the variants link into one library; ops/cpu_dispatch.c
 * defines the plain names and sends each call to the variant chosen once at start.
 * A function exported from ops/cpu that is missing here is a duplicate symbol at link. */
#ifndef CANVAS_OPS_CPU_VARIANT_H
#define CANVAS_OPS_CPU_VARIANT_H

#ifdef CANVAS_CPU_PORTABLE
#include "ops/cpu/simd_portable.h"
#define OPS_CPU_NAME(name) name##_portable
#elif defined(CANVAS_CPU_AVX512)
#include <immintrin.h>
#define OPS_CPU_NAME(name) name##_avx512
#else
#include <immintrin.h>
#define OPS_CPU_NAME(name) name##_fast
#endif

/* ops.h */
#define op_linear OPS_CPU_NAME(op_linear)
#define op_linear_workspace_bytes OPS_CPU_NAME(op_linear_workspace_bytes)
#define op_attention OPS_CPU_NAME(op_attention)
#define op_attention_grouped OPS_CPU_NAME(op_attention_grouped)
#define op_attention_workspace_bytes OPS_CPU_NAME(op_attention_workspace_bytes)
#define op_layer_norm OPS_CPU_NAME(op_layer_norm)
#define op_rms_norm OPS_CPU_NAME(op_rms_norm)
#define op_gelu_tanh OPS_CPU_NAME(op_gelu_tanh)
#define op_silu OPS_CPU_NAME(op_silu)
#define op_gelu_erf OPS_CPU_NAME(op_gelu_erf)
#define op_swiglu OPS_CPU_NAME(op_swiglu)
#define op_add OPS_CPU_NAME(op_add)
#define op_rope_interleaved OPS_CPU_NAME(op_rope_interleaved)
#define op_rope_half OPS_CPU_NAME(op_rope_half)
#define op_backend_workers OPS_CPU_NAME(op_backend_workers)
/* ops_conv.h */
#define conv2d_out_height OPS_CPU_NAME(conv2d_out_height)
#define conv2d_out_width OPS_CPU_NAME(conv2d_out_width)
#define conv_pack_taps OPS_CPU_NAME(conv_pack_taps)
#define op_conv2d OPS_CPU_NAME(op_conv2d)
#define op_conv2d_work_bytes OPS_CPU_NAME(op_conv2d_work_bytes)
#define op_channel_rms_norm OPS_CPU_NAME(op_channel_rms_norm)
#define op_channel_rms_norm_silu_pixel OPS_CPU_NAME(op_channel_rms_norm_silu_pixel)
#define op_add_inplace OPS_CPU_NAME(op_add_inplace)
/* ops_rows.h */
#define op_norm_modulate OPS_CPU_NAME(op_norm_modulate)
#define op_gated_add OPS_CPU_NAME(op_gated_add)
#define op_gelu_tanh_rows OPS_CPU_NAME(op_gelu_tanh_rows)
#define op_qk_norm_rope OPS_CPU_NAME(op_qk_norm_rope)
#define op_rms_norm_rows OPS_CPU_NAME(op_rms_norm_rows)
#define op_silu_rows OPS_CPU_NAME(op_silu_rows)
/* ops_layout.h */
#define op_copy_columns OPS_CPU_NAME(op_copy_columns)
#define op_gather_rows OPS_CPU_NAME(op_gather_rows)
#define op_scatter_rows OPS_CPU_NAME(op_scatter_rows)
#define op_to_channels_last OPS_CPU_NAME(op_to_channels_last)
#define op_to_channels_first OPS_CPU_NAME(op_to_channels_first)
#define op_copy_window OPS_CPU_NAME(op_copy_window)
#define op_blend_seam OPS_CPU_NAME(op_blend_seam)
/* private to ops/cpu (gemv.h, quant_pack.h) */
#define gemv_run OPS_CPU_NAME(gemv_run)
#define quant_gemv OPS_CPU_NAME(quant_gemv)
#define quant_pack_panel OPS_CPU_NAME(quant_pack_panel)
#define quant_view_check OPS_CPU_NAME(quant_view_check)

#endif
