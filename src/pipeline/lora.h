/* SPDX-License-Identifier: Apache-2.0 */
/* lora.h — LoRA files for the Qwen-Image transformer: reading every naming people use,
 * and merging them into the weights at load (docs/lora.md).
 *
 * A LoRA changes a Linear W [out, in] by W += scale · (alpha / rank) · up @ down with
 * down [rank, in] and up [out, rank]; alpha is the file's per-module `.alpha` scalar, or
 * the rank when the file has none (PEFT files keep alpha in their config). Namings:
 *
 *   peft      transformer.<module>.lora_A.weight / .lora_B.weight   (diffusers; also the
 *             prefixes base_model.model. and base_model.model.transformer.)
 *   kohya     lora_unet_<module, dots as underscores>.lora_down.weight / .lora_up.weight
 *             (also the prefix lora_transformer_); resolved against the model's own
 *             module list, converted to that form
 *   lightx2v  <module>.lora_down.weight / .lora_up.weight (Qwen-Image-Lightning files)
 *   comfy     diffusion_model.<module>.lora_down.weight / .lora_up.weight
 *
 * Every naming accepts both suffix pairs (lora_down / lora_up and lora_A / lora_B) and an
 * optional `<module>.alpha`. Every key of a file must name a Linear of the model with
 * matching shapes; anything else is CANVAS_ERR_INPUT naming the file and the key, never
 * skipped.
 *
 * Merging (lora_apply): for each matrix some file touches, the deltas of every file are
 * summed in f32 (one GEMM over the stacked ranks), added to the f32 base and stored in a
 * new MEM_WEIGHTS home the model owns: in the stored float type (F32 / F16 / BF16, round
 * to nearest even), or, for a quantised matrix, quantised again in its own format (from
 * the file's float weight when the blocks were quantised on load, else from the
 * dequantised blob). The residency manager streams the new homes like any other. */
#ifndef CANVAS_PIPELINE_LORA_H
#define CANVAS_PIPELINE_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/safetensors.h"
#include "models/qwen_image_dit.h"
#include "ops/threadpool.h"

typedef enum lora_naming {
    LORA_NAMING_AUTO = 0,   /* recognised from the keys */
    LORA_NAMING_PEFT,
    LORA_NAMING_KOHYA,
    LORA_NAMING_LIGHTX2V,
    LORA_NAMING_COMFY,
    LORA_NAMING_COUNT
} lora_naming;

/* "auto", "peft", "kohya", "lightx2v", "comfy" (also "diffusers" for peft). CANVAS_ERR_INPUT
 * naming the text otherwise. */
canvas_status lora_naming_parse(const char *text, lora_naming *out);
const char *lora_naming_name(lora_naming naming);

/* What a key of a LoRA file is. */
typedef enum lora_role { LORA_ROLE_DOWN = 0, LORA_ROLE_UP, LORA_ROLE_ALPHA } lora_role;

/* The naming of a file, from its first key (LORA_NAMING_LIGHTX2V when no prefix is known). */
lora_naming lora_naming_detect(const st_file *file);

/* Split `key` under `naming` into its module (as the naming writes it: "transformer_blocks.0.attn.to_q",
 * kohya "transformer_blocks_0_attn_to_q") and role. 0 when the key does not follow the naming. */
int lora_key_split(lora_naming naming, const char *key, char *module, size_t module_size, lora_role *role);

/* The module of a model tensor ("transformer_blocks.0.attn.to_q.weight") as `naming` writes it. */
void lora_module_name(lora_naming naming, const char *tensor_name, char *out, size_t size);

/* One LoRA file to apply. */
typedef struct lora_spec {
    const char *path;
    float scale;
    lora_naming naming;
} lora_spec;

/* "FILE" or "FILE:SCALE" (the last ':' followed by a number; a path with ':' and no scale
 * stays whole). path[path_size] receives the file name. CANVAS_ERR_USAGE for an empty
 * name or a scale that is not finite. */
canvas_status lora_spec_parse(const char *text, char *path, size_t path_size, float *scale);

/* One module a file changes. */
typedef struct lora_pair {
    int matrix;                 /* dit_matrix index */
    const st_tensor *down;      /* [rank, in] */
    const st_tensor *up;        /* [out, rank] */
    const st_tensor *alpha;     /* NULL: alpha = rank */
    int64_t rank;
    float factor;               /* scale · alpha / rank */
} lora_pair;

typedef struct lora_file {
    st_file *file;              /* mapped: the pairs point into it */
    lora_naming naming;         /* as given, or detected */
    float scale;
    int n_pairs;
    lora_pair *pairs;           /* in the order of the model's matrices */
} lora_file;

/* Read and check a file against the model (nothing is merged). CANVAS_ERR_INPUT naming the
 * file and the key for a key that is not LoRA, a module the model does not have, a missing
 * up or down, a duplicate, a shape or rank mismatch, a bad alpha. */
canvas_status lora_open(const qwen_dit_model *model, const lora_spec *spec, lora_file **out);
void lora_close(lora_file *lora);

/* Merge the files into the model's weights (stacked in order: deltas add up). All or
 * nothing: every new home is computed before any is installed; on failure the model is
 * unchanged and nothing is left allocated. Then the model is placed again on its device
 * with its resident prefix, so the residency manager reads the new homes (a failure of
 * that leaves the model unplaced, as qwen_dit_place does). pool may be NULL. */
canvas_status lora_apply(qwen_dit_model *model, thread_pool *pool, lora_file *const *loras, int n_loras);

/* lora_open every spec (each file checked), lora_apply those at a strength other than 0, lora_close. */
canvas_status lora_apply_specs(qwen_dit_model *model, thread_pool *pool, const lora_spec *specs, int n_specs);

#endif
