/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc.h — the Qwen2.5-VL encoder of the Qwen-Image pipelines (spec part B): the
 * vision tower turns image patches into tokens of the text width, those are scattered into
 * the <|image_pad|> runs of the prompt, and the Qwen2 decoder runs over the mixed sequence
 * with M-RoPE positions. The output is the final RMSNorm's (hidden_states[-1]); lm_head is
 * never loaded. Image preprocessing (pixel_values) and the tokenizer live elsewhere.
 *
 * Kept apart as for the transformer (models/qwen_image_dit.h):
 *   textenc_config   what never changes (io/config.h, text_encoder/config.json)
 *   weights          views into the mmapped safetensors (matrices in their stored format:
 *                    F32, F16, BF16, or stored quantised) or quantised copies made on
 *                    load (textenc_open_quantized), f32 vectors (biases, norms)
 *                    converted once at open into MEM_WEIGHTS blocks, one per weight group
 *                    (a decoder layer, a vision block, the top level), reached by the
 *                    forward only through the residency manager (textenc_place)
 *   state            the activations of one forward, one arena per call
 *
 * Both checkpoint namings are read (model.* / visual.* and model.language_model.* /
 * model.visual.*; arch.h textenc_naming). */
#ifndef CANVAS_MODELS_QWEN_TEXTENC_H
#define CANVAS_MODELS_QWEN_TEXTENC_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "ops/ops.h"
#include "mem/mem_device.h"
#include "tensor/quant.h"

typedef struct textenc_model textenc_model;

/* Open a text_encoder/ component folder (config.json + safetensors, single or sharded):
 * textenc_config_load, weights_open, arch_check against arch_text_encoder, then wire the
 * views. A regular file instead of a folder is one weights file (io/weights_file.h) whose
 * config is read from its tensors (textenc_config_infer). Errors: CANVAS_ERR_INPUT (bad or missing config / file / tensor, named),
 * CANVAS_ERR_UNSUPPORTED (a weight dtype with no kernel, hidden_act other than silu,
 * use_sliding_window), CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status textenc_open(const char *component_dir, textenc_model **out);
/* The same with the decoder layers' and vision blocks' plain (F32 / F16 / BF16) matrices
 * quantised on load to `weights` (QUANT_NONE: textenc_open) by the transformer's quantisers
 * (io/quant_loader.h): each one whose width the format holds (quant_fits; nf4 and q8_0 leave
 * the real vision down_proj, 3,420 wide, as stored), into MEM_WEIGHTS blobs in host memory
 * that the residency manager then moves like any weight. The top level (patch embedding,
 * merger, final norm) and the embedding table stay as stored, as plan/plan.h sizes them.
 * Matrices already stored quantised stay as they are. CANVAS_ERR_INPUT for a matrix holding
 * NaN or infinity (named); otherwise as textenc_open. */
canvas_status textenc_open_quantized(const char *component_dir, quant_choice weights, textenc_model **out);
void textenc_close(textenc_model *model);

const textenc_config *textenc_model_config(const textenc_model *model);
/* The format it was opened with (QUANT_NONE: as stored) and the bytes of its quantised
 * blobs (host MEM_WEIGHTS; 0 as stored from float files). */
quant_choice textenc_weights_format(const textenc_model *model);
size_t textenc_quantized_bytes(const textenc_model *model);

/* resident_groups meaning "every group" */
#define TEXTENC_ALL_GROUPS (-1)

/* Put the weights on `device` (NULL: the cpu device, where textenc_open leaves them: read
 * where they lie, zero copy) through the residency manager: the top level (patch
 * embedding, merger, final norm) and the first `resident_groups` of the vision blocks
 * then the decoder layers (the order a forward uses them) stay on the device, the others
 * stream through two slots, the next one prefetched while one computes. The embedding
 * table stays in the mapping (a forward reads only its ids' rows). The previous placement
 * is dropped first; on failure (CANVAS_ERR_OUT_OF_MEMORY) the model is not placed and a
 * forward fails until textenc_place succeeds. A forward's activations are one arena on the
 * same device (textenc_activation_bytes). On a measure device (mem_device_create_measure)
 * a forward is the dry run: the same arena, acquires, prefetches and copies, no kernels,
 * no tap, hidden may be NULL; its peaks per class equal the real run's for the same plan. */
canvas_status textenc_place(textenc_model *model, mem_device *device, int resident_groups);
/* The device the model is placed on (NULL when not placed). */
mem_device *textenc_device(const textenc_model *model);

/* One forward's inputs, as textenc_forward takes them (for the planner). */
typedef struct textenc_inputs {
    const int32_t *ids;
    int64_t n_ids;
    const float *pixel_values;
    const int64_t (*grid_thw)[3];
    int n_images;
} textenc_inputs;

/* The planner's choice for a device of `cap` bytes: the largest number of resident groups
 * (after the top level, in textenc_place's order) whose dry run (a forward on a measure
 * device with that cap: same allocator, same placement) fits. CANVAS_ERR_OUT_OF_MEMORY
 * naming the minimum when even streaming every group does not fit. *out_peak (may be
 * NULL) gets the chosen dry run's device peak: what the real run's will be. The model is left on
 * the cpu device (unplaced after a failure). */
canvas_status textenc_plan_resident_groups(textenc_model *model, const textenc_inputs *inputs, size_t cap,
                                           int *out_resident_groups, uint64_t *out_peak);

/* The activations of one forward, in bytes, exact: one MEM_ACTIVATIONS arena on the
 * model's device, for inputs textenc_forward accepts. With n = n_ids, T = image tokens
 * (sum t*h*w / U), S = patches, D, KV, F, hd as the config gives them, and every buffer
 * rounded up to 64 bytes:
 *     4 (T D + n D)                                 kept: vision output, the output
 *   + max( 4 n (5 D + 2 KV + 2 F + hd),             the decoder
 *          vision: 8 (T + windows + 1 + frames + 1) window bookkeeping (windows counted
 *                                                   before the empty ones are dropped)
 *                + 4 S (P + 10 Dv + 2 Fv + hd_v)    pixels, stream, qkv, attention, MLP, rotary
 *                + 4 T D )                          the merger's output
 * Not included: the kernels' own workspace while they run (op_attention, op_linear: host
 * MEM_ACTIVATIONS / MEM_SCRATCH) and the host bookkeeping (positions, 24 n bytes). */
size_t textenc_activation_bytes(const textenc_config *config, int64_t n_ids, const int64_t (*grid_thw)[3],
                                int n_images);

/* Values in the patch rows of pixel_values: in_channels x temporal_patch_size x
 * patch_size² (1176 for the real model), columns ordered (c, t, y, x) as the processor
 * writes them (spec B.6). */
int64_t textenc_patch_values(const textenc_config *config);

/* Observer of intermediates (optional, for the golden tests): "vision.patch_embed" and
 * "vision.block.K" [S, vision hidden] (rows in pixel_values order, put back from the
 * window order the tower computes in), "vision.window_index" [S/U, 1],
 * "vision.cu_window_seqlens" and "vision.cu_seqlens" [n, 1] (the window permutation and
 * the attention segments' row bounds, integers as floats), "vision_embeds"
 * [n_image_tokens, hidden] (raster order), "inputs_embeds" [n_ids, hidden], "layer.K"
 * [n_ids, hidden] (decoder layer K's output, before the final norm). Data valid only during
 * the call; a non-OK return stops the forward with that status. */
typedef canvas_status (*textenc_tap_fn)(void *ctx, const char *name, const float *data, int64_t rows,
                                        int64_t cols);
typedef struct textenc_tap {
    textenc_tap_fn fn;
    void *ctx;
} textenc_tap;

/* The hot function. Batch 1, no padding (every id is a token).
 *   ids          [n_ids] token ids, each in [0, vocab_size)
 *   pixel_values [S, textenc_patch_values] for all images concatenated, S = sum over images
 *                of t*h*w of grid_thw (NULL when n_images is 0)
 *   grid_thw     [n_images][3] (t, h, w) in patches; h and w multiples of spatial_merge_size
 *   hidden       [n_ids, text hidden_size] out: the final RMSNorm's output
 * The ids must hold exactly sum t*h*w / merge² <|image_pad|> (config image_token_id)
 * tokens, image k's features going to its run in order, each run preceded by
 * <|vision_start|> (spec B.5.2, B.8); CANVAS_ERR_INPUT naming the mismatch otherwise.
 * be (the op backend) may be NULL: the CPU, one thread. The activations are one MEM_ACTIVATIONS arena of
 * textenc_activation_bytes on the model's device, freed before returning; pixel_values
 * are copied into it and the output out of it through mem_copy (the link). Every byte of
 * the device is written by an op of `be` or by mem_copy: on a device the host cannot
 * address, `be` is the device's own backend (CUDA's) and the tables host code computes are
 * staged in host memory (MEM_STAGING) and sent (docs/text-encoder.md, "On any device").
 * CANVAS_ERR_OUT_OF_MEMORY when memory cannot be had (nothing is left allocated);
 * CANVAS_ERR_UNSUPPORTED on a device that holds data the host cannot address given the CPU
 * backend, or when `be` has no kernel for one of the ops. */
canvas_status textenc_forward(textenc_model *model, op_backend *be, const int32_t *ids, int64_t n_ids,
                              const float *pixel_values, const int64_t (*grid_thw)[3], int n_images,
                              float *hidden);
/* The same with an observer (tap may be NULL). */
canvas_status textenc_forward_tapped(textenc_model *model, op_backend *be, const int32_t *ids, int64_t n_ids,
                                     const float *pixel_values, const int64_t (*grid_thw)[3], int n_images,
                                     const textenc_tap *tap, float *hidden);

/* Progress of a forward (not a dry run): called after each vision block (when the forward
 * has images) and each decoder layer, done of total, the groups this forward runs. A non-OK
 * return stops the forward with that status, everything it holds released
 * (CANVAS_ERR_CANCELLED to cancel). fn NULL: none (the default). */
typedef canvas_status (*textenc_progress_fn)(void *ctx, int done, int total);
void textenc_set_progress(textenc_model *model, textenc_progress_fn fn, void *ctx);

/* M-RoPE position ids of get_rope_index (spec B.5.2): pos [3][n_ids] (rows t, h, w),
 * stored as pos[axis * n_ids + i]. Checks the image runs as textenc_forward does. */
canvas_status textenc_position_ids(const textenc_config *config, const int32_t *ids, int64_t n_ids,
                                   const int64_t (*grid_thw)[3], int n_images, int64_t *pos);

#endif
