/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_groups.h — private to the transformer: its weight groups
 * (models/weight_groups.h) and the views a forward acquired from them.
 *
 * Group 0 is the top level, group 1 + i is transformer_blocks.i (arch_dit's group i). */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H

#include <stdint.h>

#include "models/qwen_image_dit.h"
#include "models/weight_groups.h"

/* The transformer's tensors, declared once (arch_dit.c): a tensor's name after its group's
 * prefix ("" or "transformer_blocks.i."), its shape as multiples of the config's sizes, and
 * the field it is wired into: a weight_view (a matrix) or a const float * (a vector, f32)
 * in dit_weights (the top level) or dit_block_weights (a block). arch_dit lists them in
 * table order, and the loader wires them, and so groups them, in the same order. */
typedef enum dit_extent {
    DIT_X_NONE,     /* no such dimension: a vector's columns */
    DIT_X_D,        /* inner dim */
    DIT_X_J,        /* joint_attention_dim */
    DIT_X_IN,       /* in_channels */
    DIT_X_TIME,     /* DIT_TIME_CHANNELS */
    DIT_X_OUT,      /* dit_output_channels */
    DIT_X_HEAD,     /* attention_head_dim */
} dit_extent;
typedef struct dit_size {
    uint8_t times, of;          /* times x the dit_extent `of` */
} dit_size;
typedef struct dit_tensor {
    const char *suffix;         /* "img_in.weight", "attn.to_q.bias" */
    uint16_t field;             /* byte offset of its field in the group's struct */
    dit_size rows, cols;        /* cols of DIT_X_NONE: a vector of `rows` */
} dit_tensor;
#define DIT_TOP_TENSORS 13
#define DIT_BLOCK_TENSORS 32
extern const dit_tensor *const dit_top_tensors;   /* [DIT_TOP_TENSORS] */
extern const dit_tensor *const dit_block_tensors; /* [DIT_BLOCK_TENSORS] */
/* A size of the config in elements (0 for DIT_X_NONE). */
int64_t dit_tensor_size(const dit_config *config, dit_size size);

/* Where the model's weights are and what the forward acquired. */
typedef struct dit_memory {
    weight_groups set;              /* [1 + num_layers]; .resident counts blocks */
    dit_weights top;                /* the top level's views on the device, filled at acquire */
    dit_block_weights *blocks;      /* [num_layers]: block i's views on the device, filled at acquire */
} dit_memory;

/* The tables for a model whose config is loaded (groups zeroed, nothing placed);
 * dit_memory_destroy frees them, whatever is placed and the blocks dit_matrix_set_home
 * gave the model (called by dit_free). */
canvas_status dit_memory_create(dit_model *model);
void dit_memory_destroy(dit_model *model);

#endif
