/* SPDX-License-Identifier: Apache-2.0 */
/* arch_size.c — what a component would weigh in each weight format (rule in arch.h and
 * docs/cli-inspect.md). Estimates for planning and `canvas inspect`, not a layout. */
#include <string.h>

#include "models/arch.h"
#include "tensor/ggml_blocks.h"

const quant_format ARCH_SIZE_FORMATS[ARCH_SIZE_FORMAT_COUNT] = {QUANT_NONE, QUANT_FP8_E4M3, QUANT_NF4, QUANT_Q8_0};

const char *arch_format_name(quant_format format)
{
    switch (format) {
    case QUANT_NONE: return "bf16";
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2: return "fp8";
    case QUANT_NF4: return "nf4";
    case QUANT_Q8_0: return "q8";
    case QUANT_GGUF_Q8_0: return "gguf-q8_0";
    case QUANT_GGUF_Q4_K: return "gguf-q4_k";
    case QUANT_GGUF_Q4_0: return "gguf-q4_0";
    case QUANT_GGUF_Q4_1: return "gguf-q4_1";
    case QUANT_GGUF_Q5_0: return "gguf-q5_0";
    case QUANT_GGUF_Q5_1: return "gguf-q5_1";
    case QUANT_GGUF_Q2_K: return "gguf-q2_k";
    case QUANT_GGUF_Q3_K: return "gguf-q3_k";
    case QUANT_GGUF_Q5_K: return "gguf-q5_k";
    case QUANT_GGUF_Q6_K: return "gguf-q6_k";
    default: return "?";
    }
}

/* A Linear-style weight: 2-D and named "*.weight". */
static int is_matrix(const tensor_spec *spec)
{
    size_t length = strlen(spec->name);
    return spec->ndim == 2 && length >= 7 && strcmp(spec->name + length - 7, ".weight") == 0;
}

uint64_t arch_tensor_bytes_as(const tensor_spec *spec, quant_format format)
{
    uint64_t n = arch_numel(spec), in = spec->ndim == 2 ? (uint64_t)spec->shape[1] : 0;
    if (!is_matrix(spec)) return 2 * n;
    switch (format) {
    case QUANT_FP8_E4M3:
    case QUANT_FP8_E5M2: return n + 4;                            /* + f32 per-tensor scale */
    case QUANT_NF4: return in % 64 ? 2 * n : n / 64 * 36;         /* 32 B codes + 4 B absmax */
    case QUANT_Q8_0: return in % 32 ? 2 * n : n / 32 * 34;        /* 32 int8 + f16 scale */
    case QUANT_NONE: return 2 * n;
    default: { /* a GGUF type: its blocks (ggml_blocks.h's bytes per block), when rows are whole blocks */
        int type = quant_ggml_type(format);
        if (type < 0) return 2 * n;
        uint64_t block = ggml_type_block_elements((uint32_t)type);
        return in % block ? 2 * n : n / block * ggml_type_block_bytes((uint32_t)type);
    }
    }
}

uint64_t arch_bytes_as(const tensor_spec_list *list, int group, quant_format format)
{
    uint64_t bytes = 0;
    for (int i = 0; i < list->count; i++)
        if (group == ARCH_ANY_GROUP || list->items[i].group == group)
            bytes += arch_tensor_bytes_as(&list->items[i], format);
    return bytes;
}
