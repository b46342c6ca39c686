/* SPDX-License-Identifier: Apache-2.0 */
/* arch.h — a component's architecture derived from its config alone: the tensors it
 * expects (names, shapes), so that a model folder can be checked — and sized — before
 * or without its weights.
 *
 * Names are the state-dict keys of the real checkpoints (diffusers names for the
 * transformer and the VAE, the Qwen2.5-VL checkpoint names for the text encoder).
 * The dtype is not part of the architecture: any float storage type is accepted.
 *
 * Weight groups (what the residency manager streams as a unit):
 *   transformer   block i -> group i; everything else -> -1
 *   vae           encoder.* and quant_conv -> 0 (VAE encode); post_quant_conv and
 *                 decoder.* -> 1 (VAE decode)
 *   text encoder  decoder layer L -> group L; vision block B -> group
 *                 num_hidden_layers + B (dense numbering, vision after text); embeddings,
 *                 final norm, lm_head, patch_embed, merger -> -1 */
#ifndef CANVAS_MODELS_ARCH_H
#define CANVAS_MODELS_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "tensor/quant.h"

#define ARCH_MAX_DIMS 5

/* tensor_spec.flags */
#define ARCH_UNUSED 1   /* in the checkpoint but not needed to run (VAE time_conv at T=1, lm_head) */

typedef struct tensor_spec {
    char *name;                    /* full state-dict key */
    int ndim;
    int64_t shape[ARCH_MAX_DIMS];
    int group;                     /* weight group: DiT block / decoder layer index, or -1 */
    int flags;                     /* ARCH_UNUSED or 0 */
} tensor_spec;

typedef struct tensor_spec_list {
    int count;
    int capacity;
    tensor_spec *items;
} tensor_spec_list;

/* The expected tensors of each component, appended to `out` (start from {0}; free with
 * arch_free, also after a failure). CANVAS_ERR_UNSUPPORTED for configs this project
 * does not run (the Qwen-Image-Layered flags; VAE attn_scales). */
canvas_status arch_dit(const qwen_dit_config *config, tensor_spec_list *out);
canvas_status arch_vae(const vae_config *config, tensor_spec_list *out);

/* Key prefixes of the text encoder: the released checkpoints use model.* and visual.*;
 * transformers >= 4.52 saves model.language_model.* and model.visual.*. lm_head.weight
 * in both. Both hold the same tensors. */
typedef enum textenc_naming { TEXTENC_NAMES_CHECKPOINT = 0, TEXTENC_NAMES_NESTED } textenc_naming;
/* lm_head.weight is listed (flagged ARCH_UNUSED: encoding never projects to the vocabulary)
 * unless tie_word_embeddings, where it shares embed_tokens and is not stored. */
canvas_status arch_text_encoder(const textenc_config *config, textenc_naming naming, tensor_spec_list *out);
/* Which naming a set of files uses (NESTED when model.language_model.embed_tokens.weight
 * is there, else CHECKPOINT). */
textenc_naming textenc_naming_of(const weight_set *files);
/* Prefix of the language model's keys under a naming ("model." / "model.language_model.")
 * and of the vision tower's ("visual." / "model.visual."). */
const char *textenc_text_prefix(textenc_naming naming);
const char *textenc_vision_prefix(textenc_naming naming);
/* The top-level tensors outside the tables of qwen_textenc_internal.h, under the text and
 * the vision prefix: spelled here once for the listing, the loader and the inference. */
#define TEXTENC_EMBED_TOKENS "embed_tokens.weight"
#define TEXTENC_PATCH_EMBED "patch_embed.proj.weight"

void arch_free(tensor_spec_list *list);
uint64_t arch_numel(const tensor_spec *spec);

/* Append one tensor; the name is printf-formatted. Used by the arch_* builders. */
canvas_status arch_add(tensor_spec_list *list, int group, int flags, int ndim, const int64_t *shape,
                       const char *name_format, ...) CANVAS_PRINTF(6, 7);

/* Format a (partial) tensor name into buf; CANVAS_ERR_INTERNAL when it does not fit. */
canvas_status arch_name(char *buf, size_t size, const char *name_format, ...) CANVAS_PRINTF(3, 4);

/* Totals over a selection of the list. */
typedef struct arch_count {
    uint64_t params;
    int tensors;
} arch_count;
#define ARCH_ANY_GROUP INT32_MIN
/* Tensors of `group` (ARCH_ANY_GROUP: all), skipping those with any of `skip_flags`. */
arch_count arch_count_group(const tensor_spec_list *list, int group, int skip_flags);
/* Tensors whose name starts with `prefix`. */
arch_count arch_count_prefix(const tensor_spec_list *list, const char *prefix);
/* Highest group number + 1 (0 when every tensor is top level). */
int arch_group_count(const tensor_spec_list *list);

/* What the tensors would weigh in a weight format (docs/cli-inspect.md states the rule):
 * quantised formats apply to 2-D weights ("*.weight", [out, in]) whose in is a multiple
 * of the format's block; everything else (biases, norms, convolutions, odd widths)
 * stays bf16.
 *   bf16  2 bytes per parameter
 *   fp8   1 byte per parameter + one f32 scale per tensor (any in)
 *   nf4   blocks of 64: 32 bytes of 4-bit codes + an f32 absmax = 4.5 bits/param
 *   q8    q8_0, blocks of 32: 32 int8 + an f16 scale = 34 bytes = 8.5 bits/param
 * The formats are tensor/quant.h's (one weight-format enum for the whole runtime): QUANT_NONE
 * is bf16 here, both fp8 variants count as fp8. ARCH_SIZE_FORMATS lists the four a size
 * table shows, in that order. */
#define ARCH_SIZE_FORMAT_COUNT 4
extern const quant_format ARCH_SIZE_FORMATS[ARCH_SIZE_FORMAT_COUNT]; /* none, fp8_e4m3, nf4, q8_0 */
const char *arch_format_name(quant_format format); /* "bf16", "fp8", "nf4", "q8" */
uint64_t arch_tensor_bytes_as(const tensor_spec *spec, quant_format format);
/* Sum over the tensors of `group` (ARCH_ANY_GROUP: all). */
uint64_t arch_bytes_as(const tensor_spec_list *list, int group, quant_format format);

/* Check the files against the expected tensors: every expected tensor present with that
 * shape and a float dtype, nothing unexpected. CANVAS_ERR_INPUT naming the component,
 * tensor and file; the message reports the first problem and how many more there are. */
canvas_status arch_check(const tensor_spec_list *expected, const weight_set *files, const char *component);

#endif
