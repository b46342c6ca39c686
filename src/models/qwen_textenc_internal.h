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
#include "models/arch.h"
#include "models/qwen_textenc.h"
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

struct textenc_model {
    textenc_config config;
    textenc_naming naming;
    weight_set *files;           /* the mmapped safetensors; the views point into them */
    struct quant_store *quant;   /* quantised matrices stored as such (io/quant_loader.h) */
    textenc_weights weights;
};

/* The vision tower (qwen_textenc_vision.c): pixel_values [S, P] of n_images images ->
 * out [S / U, D], merged tokens in raster order, images one after another. Inputs checked
 * by the caller. */
canvas_status textenc_vision_forward(const textenc_model *model, thread_pool *pool, const float *pixel_values,
                                     const int64_t (*grid_thw)[3], int n_images, const textenc_tap *tap, float *out);

/* Allocate n MEM_ACTIVATIONS float buffers: *slots[i] gets floats[i] floats (NULL for 0).
 * All or nothing: on failure every one is freed and NULL. */
canvas_status textenc_buffers_alloc(float **slots[], const int64_t floats[], int n);
void textenc_buffers_free(float **slots[], int n);

#endif
