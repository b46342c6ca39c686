/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_textenc_internal.h — inside the encoder (not for callers: qwen_textenc.h is the
 * contract): the weights' structs and the two halves of the forward.
 *
 * Shapes with D = text hidden_size, KV = num_key_value_heads x head_dim, F = text
 * intermediate_size, Dv = vision hidden_size, Fv = vision intermediate_size, P = the values
 * of one patch (in_channels x temporal_patch_size x patch_size²), U = spatial_merge_size².
 * Matrices are [out_features, in_features] as stored; vectors are f32. */
#ifndef CANVAS_MODELS_QWEN_TEXTENC_INTERNAL_H
#define CANVAS_MODELS_QWEN_TEXTENC_INTERNAL_H

#include "io/model_dir.h"
#include "mem/mem_arena.h"
#include "mem/mem_residency.h"
#include "models/arch.h"
#include "models/qwen_textenc.h"
#include "models/weight_groups.h"
#include "ops/ops.h"

/* The vision tower's RMSNorms and rotary use these whatever the config says (transformers). */
#define TEXTENC_VISION_NORM_EPS 1e-6f
#define TEXTENC_VISION_ROPE_THETA 10000.0f
/* Largest vision head_dim the rotary table takes (the real one is 80). */
#define TEXTENC_MAX_HEAD_DIM 512

/* Decoder layer L (prefix model.layers.L. or model.language_model.layers.L.). */
typedef struct textenc_layer_weights {
    const float *input_norm;     /* input_layernorm.weight           [D]     */
    weight_view q, k, v;         /* self_attn.{q,k,v}_proj.weight    [D, D], [KV, D], [KV, D] */
    const float *q_bias, *k_bias, *v_bias; /*                        [D], [KV], [KV] */
    weight_view o;               /* self_attn.o_proj.weight (no bias) [D, D] */
    const float *post_norm;      /* post_attention_layernorm.weight  [D]     */
    weight_view gate, up;        /* mlp.{gate,up}_proj.weight        [F, D]  */
    weight_view down;            /* mlp.down_proj.weight             [D, F]  */
    float *small;                /* the MEM_WEIGHTS block holding this layer's vectors */
} textenc_layer_weights;

/* Vision block B (prefix visual.blocks.B. or model.visual.blocks.B.). */
typedef struct textenc_block_weights {
    const float *norm1, *norm2;  /* norm{1,2}.weight                 [Dv]    */
    weight_view qkv;             /* attn.qkv.weight, rows q | k | v   [3Dv, Dv] */
    const float *qkv_bias;       /*                                  [3Dv]   */
    weight_view proj;            /* attn.proj.weight                 [Dv, Dv] */
    const float *proj_bias;      /*                                  [Dv]    */
    weight_view gate, up;        /* mlp.{gate,up}_proj.weight        [Fv, Dv] */
    const float *gate_bias, *up_bias; /*                             [Fv]    */
    weight_view down;            /* mlp.down_proj.weight             [Dv, Fv] */
    const float *down_bias;      /*                                  [Dv]    */
    float *small;
} textenc_block_weights;

/* The top level (group -1). */
typedef struct textenc_weights {
    const st_tensor *embed_tokens; /* embed_tokens.weight [vocab, D], rows converted on lookup */
    const float *norm;           /* norm.weight [D] */
    weight_view patch_embed;     /* patch_embed.proj.weight [Dv, C, T, p, p] read as [Dv, P] (Conv3d
                                    with kernel = stride over one patch is this Linear, no bias) */
    const float *merger_norm;    /* merger.ln_q.weight [Dv] */
    weight_view merger_fc1;      /* merger.mlp.0.weight [U Dv, U Dv] */
    const float *merger_fc1_bias;
    weight_view merger_fc2;      /* merger.mlp.2.weight [D, U Dv] */
    const float *merger_fc2_bias;
    float *small;
    textenc_layer_weights *layers; /* [num_hidden_layers] */
    textenc_block_weights *blocks; /* [vision depth] */
} textenc_weights;

/* The encoder's tensors, declared once (arch_text_encoder.c, models/weight_groups.h's
 * weight_tensor): a decoder layer's (names after "<text>layers.L.", fields of
 * textenc_layer_weights), a vision block's ("<vision>blocks.B.", textenc_block_weights),
 * and the top level's grouped f32 / matrix tensors (fields of textenc_weights): the final
 * norm after the text prefix, the merger after the vision prefix. embed_tokens, the 5-D
 * patch embedding and lm_head are spelled where they are listed and wired. Sizes are these
 * extents of the config. */
enum {
    TEXTENC_X_D = 1,   /* text hidden_size */
    TEXTENC_X_KV,      /* num_key_value_heads x head_dim */
    TEXTENC_X_F,       /* text intermediate_size */
    TEXTENC_X_DV,      /* vision hidden_size */
    TEXTENC_X_FV,      /* vision intermediate_size */
    TEXTENC_X_MERGED,  /* vision hidden_size x spatial_merge_size² */
    TEXTENC_X_OUT,     /* vision out_hidden_size (= text hidden_size) */
};
#define TEXTENC_LAYER_TENSORS 12
#define TEXTENC_BLOCK_TENSORS 12
#define TEXTENC_NORM_TENSORS 1
#define TEXTENC_MERGER_TENSORS 5
extern const weight_tensor *const textenc_layer_tensors;  /* [TEXTENC_LAYER_TENSORS] */
extern const weight_tensor *const textenc_block_tensors;  /* [TEXTENC_BLOCK_TENSORS] */
extern const weight_tensor *const textenc_norm_tensors;   /* [TEXTENC_NORM_TENSORS] */
extern const weight_tensor *const textenc_merger_tensors; /* [TEXTENC_MERGER_TENSORS] */
/* extents[WEIGHT_EXTENTS] of `config`. */
void textenc_tensor_extents(const textenc_config *config, int64_t *extents);

/* Residency groups in the order a forward uses them, so that the manager's prefetch of
 * "the next group" is the right one: 0 = top level (patch embedding, merger, final norm;
 * always resident), 1 + B = vision block B, 1 + depth + L = decoder layer L. (arch.h
 * numbers the same groups text first; embed_tokens is in no group: a forward reads only
 * its ids' rows, from the mapping on the host.) A group's tensors are its matrices, then
 * the block of its f32 vectors (models/weight_groups.h). */
typedef struct textenc_memory {
    weight_groups set;             /* [1 + depth + num_hidden_layers]; .resident counts groups after the top level */
    textenc_weights top;           /* views on the device, filled at acquire */
    textenc_block_weights *blocks; /* [depth] */
    textenc_layer_weights *layers; /* [num_hidden_layers] */
} textenc_memory;

struct textenc_model {
    textenc_config config;
    textenc_naming naming;
    weight_set *files;           /* the mmapped safetensors; the views point into them */
    struct quant_store *quant;   /* quantised matrices: stored as such, or quantised on load (io/quant_loader.h) */
    quant_choice weights_format; /* what the layer groups' plain matrices were quantised to (QUANT_NONE: as stored) */
    textenc_weights weights;     /* the weights' homes: views into the mapping, f32 vectors in RAM */
    textenc_memory *memory;
    textenc_progress_fn progress;  /* textenc_set_progress */
    void *progress_ctx;
    int progress_done, progress_total; /* of the running forward */
};

/* One more group done in a forward: the progress callback's verdict (CANVAS_OK without one). */
canvas_status textenc_progress_step(textenc_model *model);

/* qwen_textenc_memory.c: the tables (zeroed; textenc_memory_destroy frees them and the
 * placement), and the seam the forward reaches weights through. Every acquire is paired
 * with one release, also on failure paths. */
canvas_status textenc_memory_create(textenc_model *model);
void textenc_memory_destroy(textenc_model *model);
canvas_status textenc_top_acquire(textenc_model *model, const textenc_weights **out);
void textenc_top_release(textenc_model *model);
canvas_status textenc_block_acquire(textenc_model *model, int block, const textenc_block_weights **out);
void textenc_block_release(textenc_model *model, int block);
canvas_status textenc_layer_acquire(textenc_model *model, int layer, const textenc_layer_weights **out);
void textenc_layer_release(textenc_model *model, int layer);

/* One buffer of a forward's arena: *slot gets `bytes` bytes, rounded up to MEM_ALIGNMENT
 * so every buffer starts aligned and the arena's use is the sum (NULL for 0 bytes). */
typedef struct textenc_buffer {
    void **slot;
    size_t bytes;
} textenc_buffer;
#define TEXTENC_BUFFER(pointer, size) ((textenc_buffer){(void **)&(pointer), (size)})
size_t textenc_buffers_bytes(const textenc_buffer *buffers, int n);
canvas_status textenc_buffers_carve(mem_arena *arena, const textenc_buffer *buffers, int n);

/* Host-computed tables reach the model's device through host views (mem_host_view,
 * mem/mem_transfer.h). textenc_tap_rows hands a tap [rows, cols] of the device, through a
 * host copy where the CPU cannot address it (taps are for debugging: that copy is not planned
 * for). */
canvas_status textenc_tap_rows(mem_device *device, const textenc_tap *tap, const char *name, const float *data,
                               int64_t rows, int64_t cols);

/* The vision tower (qwen_textenc_vision.c): pixel_values [S, P] (host) of n_images
 * images -> out [S / U, D] (in the arena), merged tokens in raster order, images one after
 * another. Its activations take textenc_vision_bytes of the arena, given back before it
 * returns. Inputs checked by the caller. */
size_t textenc_vision_bytes(const textenc_config *config, const int64_t (*grid_thw)[3], int n_images);
canvas_status textenc_vision_forward(textenc_model *model, op_backend *be, const textenc_weights *top,
                                     mem_arena *arena, const float *pixel_values, const int64_t (*grid_thw)[3],
                                     int n_images, const textenc_tap *tap, float *out);

#endif
