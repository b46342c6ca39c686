/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit.h — QwenImageTransformer2DModel (the MMDiT of Qwen-Image and the
 * Qwen-Image-Edit family), config-driven: any layer count, width, head count and RoPE axes.
 *
 * Three things are kept apart, as in llama2.c:
 *   qwen_dit_config      what never changes (io/config.h, parsed from transformer/config.json)
 *   qwen_dit_weights     views into the mmapped safetensors (big matrices stay in their stored
 *                   format: F32, F16 or BF16) plus small f32 vectors (biases, norm weights)
 *                   converted once at load into MEM_WEIGHTS blocks, one block per weight group
 *   qwen_dit_state       the activations of one forward, one MEM_ACTIVATIONS arena per call
 *
 * The forward (spec/qwen-image-transformer.md §3), with D = inner dim, N = L_txt + L_img:
 *   c = txt_in(RMSNorm(E)),  x = img_in(X),  temb = MLP(sinusoid256(t)) (+ a row for t = 0
 *   when zero_cond_t); then per block: modulation from SiLU(temb), LN-modulate both streams,
 *   joint attention over [text, image] with per-head q/k RMSNorm and the interleaved
 *   3-axis RoPE, gated residual, LN-modulate, GELU-tanh MLP, gated residual; then
 *   norm_out (AdaLayerNormContinuous, scale first) and proj_out on the image stream.
 *
 * Weight groups: group -1 is the top level (img_in, txt_norm, txt_in, time embedder,
 * norm_out, proj_out), group i is transformer_blocks.i. The forward reaches weights only
 * through qwen_dit_top_acquire and qwen_dit_block_acquire / _release, which go to the residency
 * manager (mem/mem_residency.h): qwen_dit_place puts the model on a device with a resident
 * prefix of blocks and streams the others through a double buffer; the activations of a
 * forward are one arena on the same device (docs/memory.md, docs/transformer.md). */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"
#include "io/config.h"
#include "io/model_dir.h"
#include "mem/mem_device.h"
#include "ops/ops.h"
#include "ops/threadpool.h"

/* Hard-coded constants of the reference model (spec §1.1). */
#define QWEN_DIT_NORM_EPS 1e-6f          /* txt_norm, block LayerNorms, q/k RMSNorms, norm_out */
#define QWEN_DIT_TIME_CHANNELS 256       /* sinusoidal timestep projection width */
#define QWEN_DIT_ROPE_THETA 10000.0f
#define QWEN_DIT_MLP_MULT 4

/* One transformer block (prefix transformer_blocks.i.). D = inner dim, H = 4 D.
 * Matrices are [out_features, in_features] as stored; vectors are f32. */
typedef struct qwen_dit_block_weights {
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
} qwen_dit_block_weights;

/* Top level. C = in_channels, J = joint_attention_dim, P = patch² x out_channels. */
typedef struct qwen_dit_weights {
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
    qwen_dit_block_weights *blocks;  /* [num_layers] */
} qwen_dit_weights;

typedef struct qwen_dit_model {
    qwen_dit_config config;
    char *component_dir;        /* e.g. ".../transformer" */
    weight_set *files;          /* the mmapped safetensors; weight views point into them */
    qwen_dit_weights weights;        /* the weights' homes: views into the mapping, f32 vectors in RAM */
    struct qwen_dit_memory *memory;  /* private: weight groups, placement, residency manager */
    struct quant_store *quant;  /* quantised copies of the matrices (io/quant_loader.h), MEM_WEIGHTS */
    quant_choice weights_format; /* the format asked for at load (QUANT_NONE: as stored) */
} qwen_dit_model;

/* Load a transformer component folder: qwen_dit_config_load(config.json), weights_open,
 * arch_check against arch_dit, then wire the views. A regular file instead of a folder is
 * one weights file (io/weights_file.h) whose config is read from its tensors
 * (qwen_dit_config_infer). Errors: CANVAS_ERR_INPUT (bad or
 * missing config / file / tensor, named), CANVAS_ERR_UNSUPPORTED (a weight dtype or a
 * config feature this build has no path for), CANVAS_ERR_OUT_OF_MEMORY. The model starts
 * placed on the cpu device: weights read where they lie, no copy. */
canvas_status qwen_dit_load(const char *component_dir, qwen_dit_model **out);
/* The same, the blocks' matrices quantised on load into `weights` (tensor/quant.h: fp8,
 * nf4, q8_0) held in MEM_WEIGHTS blocks; matrices already stored quantised (fp8, bnb nf4,
 * q8_0 files) are read as stored. The top level (img_in, txt_in, time embedder, norm_out,
 * proj_out), biases and norms stay in their stored precision (docs/quantization.md).
 * {QUANT_NONE} is qwen_dit_load. */
canvas_status qwen_dit_load_quantized(const char *component_dir, quant_choice weights, qwen_dit_model **out);
void qwen_dit_free(qwen_dit_model *model);

/* A transformer file's config and weight set from what its header says (a GGUF file may hold
 * the header alone: weights_open_file_header), checked as qwen_dit_load checks them: what the
 * planner needs of a checkpoint it does not load. weights_close(*files) releases the set.
 * Errors as qwen_dit_load's. */
canvas_status qwen_dit_header_load(const char *file, qwen_dit_config *config, weight_set **files);

/* A model of `config` with no weights, for the planner's shape models: its block homes
 * zeroed and its weight groups empty, to be recorded through qwen_dit_weight_groups
 * (models/weight_groups.h: group 0 the top level, 1 + i block i), then placed with
 * qwen_dit_place. qwen_dit_free frees it. */
canvas_status qwen_dit_shape_create(const qwen_dit_config *config, quant_choice weights, qwen_dit_model **out);
struct weight_groups *qwen_dit_weight_groups(const qwen_dit_model *model);

/* ---- rewriting matrices (LoRA merging: pipeline/lora.h; qwen_image_dit_matrices.c) ---- */

/* The model's Linear matrices, numbered in load order: the top level's, then block 0's,
 * block 1's... */
int qwen_dit_matrix_count(const qwen_dit_model *model);

typedef struct qwen_dit_matrix_info {
    char name[96];          /* the tensor name, "transformer_blocks.3.attn.to_q.weight", "proj_out.weight" */
    weight_view home;       /* where it lives now: the mapping, a quantised blob or a replaced copy */
    size_t bytes;           /* bytes at home.data: what the residency manager moves */
    int block;              /* its transformer block, or -1 for the top level */
    int replaced;           /* 1: its home was given by qwen_dit_matrix_set_home */
} qwen_dit_matrix_info;

/* Matrix `index` (0 <= index < qwen_dit_matrix_count). */
void qwen_dit_matrix_get(const qwen_dit_model *model, int index, qwen_dit_matrix_info *out);

/* Give matrix `index` a new home: `view` (same shape; type, data and quant may change) of
 * `bytes` bytes that lie inside `owned`, a MEM_WEIGHTS block the model now owns (freed by
 * qwen_dit_free, or when the matrix is given another home). The residency manager reads
 * homes when the model is placed: call qwen_dit_place after the last replacement.
 * CANVAS_ERR_USAGE for an index out of range or a view of another shape (nothing taken). */
canvas_status qwen_dit_matrix_set_home(qwen_dit_model *model, int index, const weight_view *view, size_t bytes, void *owned);

/* resident_blocks meaning "every block" */
#define QWEN_DIT_ALL_BLOCKS (-1)

/* Put the weights on `device` (NULL: the cpu device) for the forwards that follow: the
 * top level and blocks [0, resident_blocks) are copied onto it and stay; the other blocks
 * stream through two slots, the next one prefetched on a copy thread while a block
 * computes. Allocates exactly qwen_dit_weight_device_bytes(model, resident_blocks) of
 * MEM_WEIGHTS on a pooled device (nothing after), none on the cpu device (zero copy,
 * resident_blocks ignored). The previous placement is dropped first; on failure
 * (CANVAS_ERR_OUT_OF_MEMORY, nothing left on the device) the model is not placed and a
 * forward fails until qwen_dit_place succeeds. The forward's activations go to the same device. */
canvas_status qwen_dit_place(qwen_dit_model *model, mem_device *device, int resident_blocks);
/* The device the model is placed on (NULL when not placed) and its resident prefix. */
mem_device *qwen_dit_device(const qwen_dit_model *model);
int qwen_dit_resident_blocks(const qwen_dit_model *model);

/* MEM_WEIGHTS bytes qwen_dit_place allocates on a pooled device for this resident prefix:
 * top level + resident blocks + 2 slots of the largest block (each group packed with
 * 256-byte aligned tensors; residency_plan_device_bytes). */
size_t qwen_dit_weight_device_bytes(const qwen_dit_model *model, int resident_blocks);

/* The seam for weight residency. Acquire before using a group's weights, release after;
 * the views point into the device the model is placed on. Every acquire is paired with
 * one release, also on failure paths; at most two streamed blocks are held at once. */
canvas_status qwen_dit_top_acquire(qwen_dit_model *model, const qwen_dit_weights **out);
void qwen_dit_top_release(qwen_dit_model *model);
canvas_status qwen_dit_block_acquire(qwen_dit_model *model, int block, const qwen_dit_block_weights **out);
void qwen_dit_block_release(qwen_dit_model *model, int block);

/* One image in the joint sequence, in patches (tokens): frames x height x width. */
typedef struct qwen_dit_image_shape {
    int frames, height, width;
} qwen_dit_image_shape;

/* Inputs of one forward (batch 1). Image tokens: the target first, then each reference
 * image, each in (frame, row, column) order, as img_shapes lists them. */
typedef struct qwen_dit_inputs {
    const float *hidden_states;         /* [n_img, in_channels] packed latent tokens */
    int64_t n_img;
    int64_t hidden_channels;            /* must equal config in_channels */
    const float *encoder_hidden_states; /* [n_txt, joint_attention_dim] text encoder output */
    int64_t n_txt;
    int64_t text_dim;                   /* must equal config joint_attention_dim */
    const uint8_t *text_mask;           /* [n_txt], 1 = token, 0 = padding; NULL = all tokens */
    float timestep;                     /* sigma = t / 1000, as the pipeline passes it */
    const qwen_dit_image_shape *img_shapes;  /* [n_images]; sum of f*h*w must equal n_img */
    int n_images;
} qwen_dit_inputs;

/* Observer of intermediates (optional): called with "img_in" [1, L_img, D], "txt_in"
 * [1, L_txt, D], "temb" [T, D] (T = 2 with zero_cond_t: rows t and 0), and after block K
 * "block.K.img" [1, L_img, D] and "block.K.txt" [1, L_txt, D]. The data is valid only
 * during the call; a non-OK return stops the forward with that status. */
typedef canvas_status (*qwen_dit_tap_fn)(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape);
typedef struct qwen_dit_tap {
    qwen_dit_tap_fn fn;
    void *ctx;
} qwen_dit_tap;

/* Output channels per image token: patch_size² x out_channels. */
int64_t qwen_dit_output_channels(const qwen_dit_config *config);

/* The hot function. output: [n_img, qwen_dit_output_channels] in host memory (every image
 * token, references included; the pipeline keeps the first L_target rows). be (the op backend)
 * may be NULL: the CPU, one thread; tap may be NULL. Inputs are checked against the config first
 * (CANVAS_ERR_INPUT naming the mismatch). Activation memory is one MEM_ACTIVATIONS arena
 * of qwen_dit_forward_arena_bytes() on the model's device, freed before returning; the inputs
 * are copied into it and the output out of it through mem_copy (the link). A failure
 * (out of memory included) frees everything the forward took; the placement stays.
 *
 * On a measure device (a model placed by qwen_dit_place on mem_device_create_measure) this is
 * the dry run: the same allocations, acquires, prefetches and copies, no kernels, no tap;
 * output may be NULL. Its peaks per class equal the real run's for the same plan. */
canvas_status qwen_dit_forward(qwen_dit_model *model, op_backend *be, const qwen_dit_inputs *inputs, const qwen_dit_tap *tap,
                          float *output);

/* The arena of one forward, in bytes, exact. With D = inner dim, J =
 * joint_attention_dim, C = in_channels, P = qwen_dit_output_channels, N = n_txt + n_img,
 * M = max(n_txt, n_img), T = 2 with zero_cond_t else 1, hd = head dim:
 *
 *   4 x ( 5·N·D                    stream, normed/attention out, q, k, v
 *       + max(4·D·M, J·n_txt)      MLP hidden (one stream at a time) / txt_norm output
 *       + N·hd                     RoPE cos and sin, [N, hd/2] each
 *       + T·256 + 3·T·D            sinusoid, time hidden, temb, SiLU(temb)
 *       + 6·D·T + 6·D + 2·D        image / text modulation, norm_out modulation
 *       + n_img·C + n_txt·J        the inputs, copied onto the device
 *       + n_img·P )                the output, before it is copied back
 *   + N rounded up to 64           key mask bytes
 *
 * where each of those 18 float buffers is rounded up to a multiple of 16 floats (64-byte
 * alignment; a no-op for the real model and whenever D, N·hd/2 are multiples of 16).
 * O(N·D): attention never holds an N x N matrix (op_attention is flash-style). Not
 * included: the kernels' own workspace while they run (qwen_dit_attention_workspace_bytes;
 * the GEMM's packing panels, MEM_SCRATCH on the host). */
size_t qwen_dit_activation_bytes(const qwen_dit_config *config, int64_t n_img, int64_t n_txt);

/* op_attention's own workspace over a joint sequence of `seq` tokens with `threads`
 * workers: its per-thread K/V/Q/score/output tiles (MEM_ACTIVATIONS) plus its per-key
 * bias row (MEM_SCRATCH), both taken from the host pool while it runs: the kernel's own
 * op_attention_workspace_bytes; tests/test_dit.c checks it against the measured
 * allocations.
 * `tiles_only` 1: the MEM_ACTIVATIONS part alone. */
size_t qwen_dit_attention_workspace_bytes(int64_t seq, int heads, int head_dim, int threads, int tiles_only);

/* The GEMMs' packing scratch (MEM_SCRATCH, host) at its largest over the forward's
 * op_linear calls for these token counts and `threads` workers: op_linear_workspace_bytes
 * of the biggest. tests/test_dit.c checks it against the forward's measured peak. */
size_t qwen_dit_linear_workspace_bytes(const qwen_dit_config *config, int64_t n_img, int64_t n_txt, int threads);

/* The forward's arena on the model's device: qwen_dit_activation_bytes, plus, when the device
 * is not the cpu device, a reservation of qwen_dit_attention_workspace_bytes for the backend's
 * workers (op_backend_workers). The CPU kernels take that workspace from the host pool; a GPU's attention
 * kernel would take it from device memory, so a device-capped run budgets and counts it
 * on the device (a reservation the CPU build leaves untouched). */
size_t qwen_dit_forward_arena_bytes(const qwen_dit_model *model, const op_backend *be, int64_t n_img, int64_t n_txt);

/* The planner's choice for a device of `cap` bytes: the largest resident prefix whose
 * dry run (qwen_dit_forward on a measure device with that cap, same allocator, so the same
 * placement, alignment holes and fragmentation) fits; every smaller prefix needs less.
 * CANVAS_ERR_OUT_OF_MEMORY naming the minimum when even streaming every block does not
 * fit. The model is left placed on the cpu device. */
canvas_status qwen_dit_plan_resident_blocks(qwen_dit_model *model, op_backend *be, const qwen_dit_inputs *inputs, size_t cap,
                                       int *out_resident_blocks);

/* Building blocks, exposed for tests. */

/* Sinusoidal timestep projection (spec §3.3): out[k] = cos(arg_k), out[128 + k] = sin(arg_k)
 * with arg_k = 1000 * (t * exp(-ln(10000) k / 128)), computed in float32 as torch does. */
void qwen_dit_timestep_sinusoid(float t, float out[QWEN_DIT_TIME_CHANNELS]);

/* RoPE rotations of the joint sequence [text, image] (spec §3.4): cos, sin [N, hd/2] with
 * N = n_txt + sum f*h*w. Image k's tokens get frame idx k + f and centred row/column
 * positions; text token j gets max over images of max(h/2, w/2) + j on all three axes.
 * Pairs are [frame axis | height axis | width axis] as axes_dims_rope splits them. */
void qwen_dit_rope_tables(const qwen_dit_config *config, const qwen_dit_image_shape *shapes, int n_images, int64_t n_txt,
                     float *cos_out, float *sin_out);

#endif
