/* qwen_image_dit.h — QwenImageTransformer2DModel (the MMDiT of Qwen-Image and the
 * Qwen-Image-Edit family), config-driven: any layer count, width, head count and RoPE axes.
 *
 * Three things are kept apart, as in llama2.c:
 *   dit_config      what never changes (io/config.h, parsed from transformer/config.json)
 *   dit_weights     views into the mmapped safetensors (big matrices stay in their stored
 *                   format: F32, F16 or BF16) plus small f32 vectors (biases, norm weights)
 *                   converted once at load into MEM_WEIGHTS blocks, one block per weight group
 *   dit_state       the activations of one forward, one MEM_ACTIVATIONS arena per call
 *
 * The forward (spec/qwen-image-transformer.md §3), with D = inner dim, N = L_txt + L_img:
 *   c = txt_in(RMSNorm(E)),  x = img_in(X),  temb = MLP(sinusoid256(t)) (+ a row for t = 0
 *   when zero_cond_t); then per block: modulation from SiLU(temb), LN-modulate both streams,
 *   joint attention over [text, image] with per-head q/k RMSNorm and the interleaved
 *   3-axis RoPE, gated residual, LN-modulate, GELU-tanh MLP, gated residual; then
 *   norm_out (AdaLayerNormContinuous, scale first) and proj_out on the image stream.
 *
 * Weight groups: group -1 is the top level (img_in, txt_norm, txt_in, time embedder,
 * norm_out, proj_out), group i is transformer_blocks.i. The forward reaches a block's
 * weights only through dit_block_acquire / dit_block_release: the one seam where the
 * residency manager (streaming blocks in and out of a device) plugs in. */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "ops/ops.h"

/* Hard-coded constants of the reference model (spec §1.1). */
#define DIT_NORM_EPS 1e-6f          /* txt_norm, block LayerNorms, q/k RMSNorms, norm_out */
#define DIT_TIME_CHANNELS 256       /* sinusoidal timestep projection width */
#define DIT_ROPE_THETA 10000.0f
#define DIT_MLP_MULT 4

/* One transformer block (prefix transformer_blocks.i.). D = inner dim, H = 4 D.
 * Matrices are [out_features, in_features] as stored; vectors are f32. */
typedef struct dit_block_weights {
    weight_view img_mod;        /* img_mod.1.weight      [6D, D] */
    const float *img_mod_bias;  /* img_mod.1.bias        [6D]    */
    weight_view txt_mod;        /* txt_mod.1.weight      [6D, D] */
    const float *txt_mod_bias;  /* txt_mod.1.bias        [6D]    */

    weight_view to_q, to_k, to_v;                 /* attn.to_{q,k,v}.weight      [D, D] image stream */
    const float *to_q_bias, *to_k_bias, *to_v_bias;           /*               [D]    */
    weight_view add_q, add_k, add_v;              /* attn.add_{q,k,v}_proj.weight [D, D] text stream */
    const float *add_q_bias, *add_k_bias, *add_v_bias;        /*               [D]    */
    const float *norm_q, *norm_k;                 /* attn.norm_{q,k}.weight       [head_dim] */
    const float *norm_added_q, *norm_added_k;     /* attn.norm_added_{q,k}.weight [head_dim] */
    weight_view to_out;         /* attn.to_out.0.weight  [D, D] */
    const float *to_out_bias;   /*                       [D]    */
    weight_view to_add_out;     /* attn.to_add_out.weight [D, D] */
    const float *to_add_out_bias; /*                     [D]    */

    weight_view img_mlp_in;     /* img_mlp.net.0.proj.weight [H, D] */
    const float *img_mlp_in_bias;  /*                        [H]    */
    weight_view img_mlp_out;    /* img_mlp.net.2.weight      [D, H] */
    const float *img_mlp_out_bias; /*                        [D]    */
    weight_view txt_mlp_in;     /* txt_mlp.net.0.proj.weight [H, D] */
    const float *txt_mlp_in_bias;
    weight_view txt_mlp_out;    /* txt_mlp.net.2.weight      [D, H] */
    const float *txt_mlp_out_bias;

    float *small;               /* the MEM_WEIGHTS block holding this block's f32 vectors */
} dit_block_weights;

/* Top level. C = in_channels, J = joint_attention_dim, P = patch² x out_channels. */
typedef struct dit_weights {
    weight_view img_in;         /* img_in.weight   [D, C] */
    const float *img_in_bias;   /* img_in.bias     [D]    */
    const float *txt_norm;      /* txt_norm.weight [J]    */
    weight_view txt_in;         /* txt_in.weight   [D, J] */
    const float *txt_in_bias;   /*                 [D]    */
    weight_view time_linear_1;  /* time_text_embed.timestep_embedder.linear_1.weight [D, 256] */
    const float *time_linear_1_bias; /*                                              [D] */
    weight_view time_linear_2;  /* time_text_embed.timestep_embedder.linear_2.weight [D, D] */
    const float *time_linear_2_bias; /*                                              [D] */
    weight_view norm_out;       /* norm_out.linear.weight [2D, D] (output rows: scale, then shift) */
    const float *norm_out_bias; /*                        [2D]    */
    weight_view proj_out;       /* proj_out.weight [P, D] */
    const float *proj_out_bias; /* proj_out.bias   [P]    */

    float *small;               /* MEM_WEIGHTS block holding the top-level f32 vectors */
    dit_block_weights *blocks;  /* [num_layers] */
} dit_weights;

typedef struct dit_model {
    dit_config config;
    char *component_dir;        /* e.g. ".../transformer" */
    weight_set *files;          /* the mmapped safetensors; weight views point into them */
    dit_weights weights;
} dit_model;

/* Load a transformer component folder: dit_config_load(config.json), weights_open,
 * arch_check against arch_dit, then wire the views. Errors: CANVAS_ERR_INPUT (bad or
 * missing config / file / tensor, named), CANVAS_ERR_UNSUPPORTED (a weight dtype or a
 * config feature this build has no path for), CANVAS_ERR_OUT_OF_MEMORY. */
canvas_status dit_load(const char *component_dir, dit_model **out);
void dit_free(dit_model *model);

/* The seam for weight residency. Acquire before using block i's weights, release after;
 * today the weights are the mmapped file and the small vectors in RAM, so acquire only
 * returns them. Every acquire is paired with one release, also on failure paths. */
canvas_status dit_block_acquire(dit_model *model, int block, const dit_block_weights **out);
void dit_block_release(dit_model *model, int block);

/* One image in the joint sequence, in patches (tokens): frames x height x width. */
typedef struct dit_image_shape {
    int frames, height, width;
} dit_image_shape;

/* Inputs of one forward (batch 1). Image tokens: the target first, then each reference
 * image, each in (frame, row, column) order, as img_shapes lists them. */
typedef struct dit_inputs {
    const float *hidden_states;         /* [n_img, in_channels] packed latent tokens */
    int64_t n_img;
    int64_t hidden_channels;            /* must equal config in_channels */
    const float *encoder_hidden_states; /* [n_txt, joint_attention_dim] text encoder output */
    int64_t n_txt;
    int64_t text_dim;                   /* must equal config joint_attention_dim */
    const uint8_t *text_mask;           /* [n_txt], 1 = token, 0 = padding; NULL = all tokens */
    float timestep;                     /* sigma = t / 1000, as the pipeline passes it */
    const dit_image_shape *img_shapes;  /* [n_images]; sum of f*h*w must equal n_img */
    int n_images;
} dit_inputs;

/* Observer of intermediates (optional): called with "img_in" [1, L_img, D], "txt_in"
 * [1, L_txt, D], "temb" [T, D] (T = 2 with zero_cond_t: rows t and 0), and after block K
 * "block.K.img" [1, L_img, D] and "block.K.txt" [1, L_txt, D]. The data is valid only
 * during the call; a non-OK return stops the forward with that status. */
typedef canvas_status (*dit_tap_fn)(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape);
typedef struct dit_tap {
    dit_tap_fn fn;
    void *ctx;
} dit_tap;

/* Output channels per image token: patch_size² x out_channels. */
int64_t dit_output_channels(const dit_config *config);

/* The hot function. output: [n_img, dit_output_channels] (every image token, references
 * included; the pipeline keeps the first L_target rows). pool may be NULL (one thread);
 * tap may be NULL. Inputs are checked against the config first (CANVAS_ERR_INPUT naming
 * the mismatch). Activation memory is one MEM_ACTIVATIONS block of
 * dit_activation_bytes(config, n_img, n_txt) bytes (plus the kernels' workspace while
 * they run), freed before returning. */
canvas_status dit_forward(dit_model *model, thread_pool *pool, const dit_inputs *inputs, const dit_tap *tap,
                          float *output);

/* Peak activation memory of one forward, in bytes, exact. With D = inner dim, J =
 * joint_attention_dim, N = n_txt + n_img, M = max(n_txt, n_img), T = 2 with zero_cond_t
 * else 1, hd = head dim:
 *
 *   4 x ( 5·N·D                    stream, normed/attention out, q, k, v
 *       + max(4·D·M, J·n_txt)      MLP hidden (one stream at a time) / txt_norm output
 *       + N·hd                     RoPE cos and sin, [N, hd/2] each
 *       + T·256 + 3·T·D            sinusoid, time hidden, temb, SiLU(temb)
 *       + 6·D·T + 6·D + 2·D )      image / text modulation, norm_out modulation
 *   + N rounded up to 64           key mask bytes
 *
 * where each of those 15 float buffers is rounded up to a multiple of 16 floats (64-byte
 * alignment; a no-op for the real model and whenever D, N·hd/2 are multiples of 16).
 * O(N·D): attention never holds an N x N matrix (op_attention is flash-style). Not
 * included: the kernels' own workspace while they run — today op_attention's per-thread
 * tiles, MEM_ACTIVATIONS, O(threads · N · head_dim) (ops.h does not size it yet), and the
 * GEMM's packing panels (MEM_SCRATCH). */
size_t dit_activation_bytes(const dit_config *config, int64_t n_img, int64_t n_txt);

/* Building blocks, exposed for tests. */

/* Sinusoidal timestep projection (spec §3.3): out[k] = cos(arg_k), out[128 + k] = sin(arg_k)
 * with arg_k = 1000 * (t * exp(-ln(10000) k / 128)), computed in float32 as torch does. */
void dit_timestep_sinusoid(float t, float out[DIT_TIME_CHANNELS]);

/* RoPE rotations of the joint sequence [text, image] (spec §3.4): cos, sin [N, hd/2] with
 * N = n_txt + sum f*h*w. Image k's tokens get frame idx k + f and centred row/column
 * positions; text token j gets max over images of max(h/2, w/2) + j on all three axes.
 * Pairs are [frame axis | height axis | width axis] as axes_dims_rope splits them. */
void dit_rope_tables(const dit_config *config, const dit_image_shape *shapes, int n_images, int64_t n_txt,
                     float *cos_out, float *sin_out);

#endif
