/* SPDX-License-Identifier: Apache-2.0 */
/* quant_loader.h — quantised weights as users have them on disk, and quantise-on-load.
 *
 * Recognised storage of a Linear weight "L.weight" [out, in] in a weight set:
 *
 *   plain float      F32 / F16 / BF16 [out, in], no scale tensors
 *   fp8              F8_E4M3 or F8_E5M2 [out, in], optionally with a scale:
 *                    "L.scale_weight" (ComfyUI scaled fp8; the file also holds a "scaled_fp8"
 *                    marker tensor) or "L.weight_scale" (the newer ComfyUI layout, with
 *                    "L.comfy_quant", a U8 tensor of UTF-8 JSON {"format": "float8_e4m3fn" |
 *                    "float8_e5m2"}; also compressed-tensors / plain fp8 files). One value:
 *                    per-tensor; [out] or [out, 1]: per output channel. No scale: 1.
 *                    "L.scale_input" / "L.input_scale" (fp8 activations) are accepted and
 *                    ignored: activations stay f32 here.
 *   nf4 (bnb)        bitsandbytes 4-bit as diffusers / transformers save it: "L.weight" U8
 *                    [out*in/2, 1] (high nibble first), "L.weight.absmax", "L.weight.quant_map"
 *                    (the 16 NF4 values), "L.weight.quant_state.bitsandbytes__nf4" (U8 JSON:
 *                    quant_type, blocksize, dtype, shape, and with double quantisation
 *                    nested_blocksize, nested_offset), and with double quantisation absmax as
 *                    U8 codes plus "L.weight.nested_absmax" and "L.weight.nested_quant_map":
 *                    absmax = nested_quant_map[code] x nested_absmax[block / nested_blocksize]
 *                    + nested_offset (float32, as bitsandbytes computes it). Blocksize 64 only.
 *   q8_0 (canvas)    "L.weight" I8 [out, in] and "L.weight_scale" F16 [out, in / 32]
 *                    (what `canvas convert --weights q8` writes).
 *   GGUF blocks      a weight set opened from a GGUF file (io/weights_file.h) whose "L.weight"
 *                    is a ggml block type (Q8_0, Q4_K, Q4_0 ... Q6_K) [out, in]: the QUANT_GGUF_*
 *                    format of that type, its blob the tensor where it lies in the mapping.
 *
 * Anything else next to a weight (bitsandbytes fp4, another blocksize, a quant_map that is
 * not NF4, comfy_quant formats such as nvfp4, a scale on a float weight, an integer weight
 * without its scales) is CANVAS_ERR_UNSUPPORTED or CANVAS_ERR_INPUT naming the tensor:
 * never decoded as something it is not.
 *
 * Quantised blobs built here live in MEM_WEIGHTS blocks owned by a quant_store, except a
 * per-tensor fp8 weight and a GGUF block tensor, used where they lie in the mapped file. */
#ifndef CANVAS_IO_QUANT_LOADER_H
#define CANVAS_IO_QUANT_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "tensor/quant.h"

/* How one weight is stored (quant_describe). */
typedef struct quant_stored {
    quant_format format;          /* QUANT_NONE: a plain float matrix */
    int per_channel;              /* fp8 */
    int64_t out_features, in_features;   /* the logical shape */
    const st_tensor *weight;
    const st_tensor *scale;       /* fp8 scale (NULL: 1), q8_0 scales */
    const st_tensor *absmax, *quant_map, *nested_absmax, *nested_quant_map; /* nf4 */
    int nested_blocksize;         /* 0: absmax stored as floats */
    float nested_offset;
} quant_stored;

/* Describe the storage of weight `name` ("...weight"). CANVAS_ERR_INPUT when it is
 * missing or inconsistent, CANVAS_ERR_UNSUPPORTED for quantisation this build does not
 * read; both name the tensor. */
canvas_status quant_describe(const weight_set *files, const char *name, quant_stored *out);

/* 1 when `name` has scale / bitsandbytes tensors next to it or a non-float dtype, i.e.
 * arch_check must ask quant_describe rather than compare dtype and shape itself. */
int quant_is_stored_quantized(const weight_set *files, const char *name);

/* quant_describe, and the logical shape must be [rows, cols] (CANVAS_ERR_INPUT naming the
 * tensor otherwise). arch_check's test for a weight stored quantised. */
canvas_status quant_check_stored(const weight_set *files, const char *name, int64_t rows, int64_t cols);

/* 1 when tensor `name` belongs to the quantisation of a weight in the set (its scales,
 * absmax, quant_map, quant_state, comfy_quant, input scale) or is the "scaled_fp8" marker. */
int quant_is_auxiliary(const weight_set *files, const char *name);

/* The quantised blobs of one model. */
typedef struct quant_store quant_store;
canvas_status quant_store_create(quant_store **out);
void quant_store_free(quant_store *store);
/* MEM_WEIGHTS bytes the store holds. */
size_t quant_store_bytes(const quant_store *store);
/* The host bytes a store of `entries` weights holds besides their blobs (MEM_SCRATCH: its
 * two tables, grown by doubling from 64, and one quant_params per weight): what a plan that
 * quantises at load holds on top of the blobs. */
size_t quant_store_table_bytes(int entries);

/* A weight as the model wiring takes it (io sits below ops: the wiring makes the
 * weight_view from this). */
typedef struct quant_weight {
    dtype type;                  /* the stored float type, or DTYPE_U8 for a quantised blob */
    const void *data;
    const quant_params *quant;   /* NULL: plain F32 / F16 / BF16 */
    size_t bytes;                /* bytes at data: what the residency manager moves */
} quant_weight;

/* Matrix `name` [rows, cols] for the forward:
 *   stored quantised           -> its blob (built in the store, or the mapped fp8 codes)
 *   plain, target set and fits -> quantised now into a blob in the store (quant_quantize)
 *   plain otherwise            -> the tensor in the mapping, as before
 * CANVAS_ERR_INPUT naming the tensor for a wrong logical shape or a plain weight stored
 * in another type than F32 / F16 / BF16. */
canvas_status quant_weight_from_view(quant_store *store, const weight_set *files, const char *name, int64_t rows,
                                     int64_t cols, quant_choice target, quant_weight *out);

/* The safetensors tensors that store a quantised weight `name` in the layouts above
 * (fp8: "L.weight" + "L.weight_scale" (a scalar per tensor, [out] per channel); nf4: the
 * bitsandbytes layout without double quantisation; q8_0: I8 + F16 scales). Names and
 * small tensors are written into `scratch` (quant_export_scratch_bytes); data pointers
 * point into `blob`, `params` and `scratch`. Returns the number of tensors (<= 4). */
#define QUANT_EXPORT_MAX_TENSORS 4
size_t quant_export_scratch_bytes(const char *name);
int quant_export_tensors(const quant_params *params, const void *blob, const char *name, void *scratch,
                         st_write_tensor *out);

#endif
