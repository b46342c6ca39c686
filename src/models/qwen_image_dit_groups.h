/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_dit_groups.h — private to the transformer: its weight groups
 * (models/weight_groups.h) and the views a forward acquired from them.
 *
 * Group 0 is the top level, group 1 + i is transformer_blocks.i (arch_dit's group i). */
#ifndef CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H
#define CANVAS_MODELS_QWEN_IMAGE_DIT_GROUPS_H

#include "models/qwen_image_dit.h"
#include "models/weight_groups.h"

/* The transformer's tensors, declared once (arch_dit.c, models/weight_groups.h's
 * weight_tensor): the top level's fields are in qwen_dit_weights, a block's in qwen_dit_block_weights
 * (names after "transformer_blocks.i."). Their sizes are these extents of the config. */
enum {
    QWEN_DIT_X_D = 1,    /* inner dim */
    QWEN_DIT_X_J,        /* joint_attention_dim */
    QWEN_DIT_X_IN,       /* in_channels */
    QWEN_DIT_X_TIME,     /* QWEN_DIT_TIME_CHANNELS */
    QWEN_DIT_X_OUT,      /* qwen_dit_output_channels */
    QWEN_DIT_X_HEAD,     /* attention_head_dim */
};
#define QWEN_DIT_TOP_TENSORS 13
#define QWEN_DIT_BLOCK_TENSORS 32
extern const weight_tensor *const qwen_dit_top_tensors;   /* [QWEN_DIT_TOP_TENSORS] */
extern const weight_tensor *const qwen_dit_block_tensors; /* [QWEN_DIT_BLOCK_TENSORS] */
/* extents[WEIGHT_EXTENTS] of `config`. */
void qwen_dit_tensor_extents(const qwen_dit_config *config, int64_t *extents);

/* Where the model's weights are and what the forward acquired. */
typedef struct qwen_dit_memory {
    weight_groups set;              /* [1 + num_layers]; .resident counts blocks */
    qwen_dit_weights top;                /* the top level's views on the device, filled at acquire */
    qwen_dit_block_weights *blocks;      /* [num_layers]: block i's views on the device, filled at acquire */
} qwen_dit_memory;

/* The tables for a model whose config is loaded (groups zeroed, nothing placed);
 * qwen_dit_memory_destroy frees them, whatever is placed and the blocks qwen_dit_matrix_set_home
 * gave the model (called by qwen_dit_free). */
canvas_status qwen_dit_memory_create(qwen_dit_model *model);
void qwen_dit_memory_destroy(qwen_dit_model *model);

#endif
